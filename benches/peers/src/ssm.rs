//! `strongroom-bench-peers ssm` (with `--features aws`): uncached reads from moto, the one
//! server here that serves SSM (LocalStack runs Secrets Manager and STS only), so the three
//! clients see the same server:
//!
//! - `strongroom_ssm`: strongroom-aws's `SsmStore::get` of a `SecureString` (GetParameter
//!   with decryption, JSON parse, the value decoded);
//! - `raw_hyper`: the same GetParameter built by hand: aws-sigv4 signing, a POST over the
//!   pooled hyper client, JSON parse (the floor a client library can approach);
//! - `strongroom_aws`: strongroom-aws's `SecretsManagerStore::get` on the same moto, the
//!   other AWS store's uncached read next to SSM's.

use serde_json::Value;
use strongroom_core::{SecretName, SecretStore};

use super::{Client, VALUE, env, measure, raw_client, raw_json, signed_json_post};

/// The key every client reads; the parameter is `/bench/peer`.
const KEY: &str = "bench/peer";

pub(super) async fn ssm() -> Result<Value, String> {
    let endpoint = env("STRONGROOM_ITEST_MOTO_ENDPOINT")?;
    let access = env("STRONGROOM_ITEST_MOTO_ACCESS_KEY_ID")?;
    let secret_key = env("STRONGROOM_ITEST_MOTO_SECRET_ACCESS_KEY")?;
    let region = "us-east-1";
    let credentials = || {
        strongroom_sigv4::StaticProvider::new(strongroom_sigv4::Credentials::new(
            &access,
            &secret_key,
        ))
    };
    let ssm_client = strongroom_aws::SsmClient::builder()
        .region(region)
        .endpoint(&endpoint)
        .credentials(credentials())
        .build()
        .map_err(|e| e.to_string())?;
    let ssm = strongroom_aws::SsmStore::new(ssm_client);
    let sm_client = strongroom_aws::SecretsManagerClient::builder()
        .region(region)
        .endpoint(&endpoint)
        .credentials(credentials())
        .build()
        .map_err(|e| e.to_string())?;
    let sm = strongroom_aws::SecretsManagerStore::new(sm_client);
    let key = SecretName::new(KEY).map_err(|e| e.to_string())?;
    // Both written through strongroom: a SecureString parameter and a secret, same value.
    ssm.put(&key, VALUE.into())
        .await
        .map_err(|e| format!("ssm put: {e}"))?;
    sm.put(&key, VALUE.into())
        .await
        .map_err(|e| format!("secrets manager put: {e}"))?;

    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(&access, &secret_key, None, None, "bench").into();
    let raw_sender = raw_client();
    let body = format!(r#"{{"Name":"/{KEY}","WithDecryption":true}}"#);
    let (raw_sender, identity, endpoint, body) = (&raw_sender, &identity, &endpoint, &body);
    let (ssm, sm, key) = (&ssm, &sm, &key);

    let mut clients = vec![
        Client {
            name: "strongroom_ssm",
            read: Box::new(move || {
                Box::pin(async move {
                    let secret = ssm.get(key).await.map_err(|e| e.to_string())?;
                    Ok(secret.value.len())
                })
            }),
        },
        Client {
            name: "raw_hyper",
            read: Box::new(move || {
                Box::pin(async move {
                    let request = signed_json_post(
                        endpoint,
                        "AmazonSSM.GetParameter",
                        "ssm",
                        body,
                        identity,
                        region,
                    )?;
                    let parsed = raw_json(raw_sender, request).await?;
                    Ok(parsed["Parameter"]["Value"].as_str().map_or(0, str::len))
                })
            }),
        },
        Client {
            name: "strongroom_aws",
            read: Box::new(move || {
                Box::pin(async move {
                    let secret = sm.get(key).await.map_err(|e| e.to_string())?;
                    Ok(secret.value.len())
                })
            }),
        },
    ];
    measure(&mut clients, VALUE.len()).await
}
