// Included by main.rs with `--features aws`: strongroom-aws's store on LocalStack.

/// strongroom-aws's `SecretsManagerStore` on `endpoint` with static credentials, no prefix.
fn strongroom_aws_store(
    endpoint: &str,
    access: &str,
    secret_key: &str,
    region: &str,
) -> Result<strongroom_aws::SecretsManagerStore, String> {
    let credentials = strongroom_sigv4::Credentials::new(access, secret_key);
    let client = strongroom_aws::SecretsManagerClient::builder()
        .region(region)
        .endpoint(endpoint)
        .credentials(strongroom_sigv4::StaticProvider::new(credentials))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(strongroom_aws::SecretsManagerStore::new(client))
}
