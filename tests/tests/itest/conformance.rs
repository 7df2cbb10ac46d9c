//! The `SecretStore` contract (strongroom-core's `testing::conformance`) against the real
//! servers: OpenBao's KV v2, AWS Secrets Manager on LocalStack and on moto (which checks
//! signatures), each directly and scoped to a folder with core's `Scoped`, and a
//! `Secrets` over OpenBao. Each run writes under a namespace of its own and cleans up.

use strongroom_aws::SecretsManagerStore;
use strongroom_core::Scoped;
use strongroom_core::testing::conformance;
use strongroom_core::{Error, Metadata, PutOptions, SecretName, SecretStore};
use strongroom_facade::Secrets;
use strongroom_itests::ItestEnv;
use strongroom_vault::{VaultClient, VaultStore};

use crate::{aws, raw};

fn vault(env: &ItestEnv) -> VaultStore {
    let client = VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .build()
        .expect("root client");
    VaultStore::new(&client, &env.vault_kv_mount).expect("vault store")
}

/// The whole suite, and the scoped check through `Scoped`, under a fresh namespace.
async fn whole_suite<S: SecretStore + Clone + 'static>(store: S, name: &str) {
    let namespace = format!("conformance/{}", raw::unique(name));
    conformance::run(&store, &namespace).await;
    let folder = format!("{namespace}/scoped/app");
    let scoped = Scoped::new(store.clone(), &folder).expect("prefix");
    conformance::scoped(&store, &scoped, &folder).await;
}

#[tokio::test]
async fn openbao_kv2_keeps_the_contract() {
    whole_suite(vault(&ItestEnv::load()), "openbao").await;
}

/// Secrets Manager: the whole suite (its reads carry no metadata, which
/// `conformance::metadata` checks through `Capabilities::metadata_on_read`), and
/// `write_only_metadata` for what `SecretsManagerStore::metadata` promises.
async fn secrets_manager(store: SecretsManagerStore, name: &str) {
    assert!(
        store.capabilities().metadata && !store.capabilities().metadata_on_read,
        "Secrets Manager stores metadata but does not read it back"
    );
    let namespace = format!("conformance/{}", raw::unique(name));
    let ns = namespace.as_str();
    conformance::run(&store, ns).await;
    write_only_metadata(&store, ns).await;
    let folder = format!("{namespace}/scoped/app");
    let scoped = Scoped::new(store.clone(), &folder).expect("prefix");
    conformance::scoped(&store, &scoped, &folder).await;
    for key in store.list(&format!("{namespace}/")).await.expect("list") {
        store.purge(&key).await.expect("clean up");
    }
}

/// Metadata where `Capabilities::metadata_on_read` is false: `put_with` stores the
/// description and tags, `SecretsManagerStore::metadata` reads them, `get` reports none
/// (as documented: one request per read), a `put` without metadata keeps them, a `put`
/// with other metadata replaces them, and a secret never written is NotFound.
async fn write_only_metadata(store: &SecretsManagerStore, namespace: &str) {
    let key = SecretName::new(format!("{namespace}/metadata/key")).expect("name");
    let metadata = Metadata::with_description("the database password").tag("team", "core");
    let options = PutOptions::default().with_metadata(metadata.clone());
    store
        .put_with(&key, "x".into(), &options)
        .await
        .expect("put with metadata (new secret)");
    assert_eq!(store.metadata(&key).await.expect("metadata"), metadata);
    let got = store.get(&key).await.expect("get");
    assert!(
        got.metadata.is_empty(),
        "get reports metadata, so metadata_on_read should be true: {:?}",
        got.metadata
    );
    store
        .put(&key, "y".into())
        .await
        .expect("put without metadata");
    assert_eq!(
        store.metadata(&key).await.expect("metadata"),
        metadata,
        "a put without metadata keeps it"
    );
    let other = Metadata::with_description("rotated").tag("owner", "ops");
    store
        .put_with(
            &key,
            "z".into(),
            &PutOptions::default().with_metadata(other.clone()),
        )
        .await
        .expect("put with other metadata (existing secret)");
    assert_eq!(
        store.metadata(&key).await.expect("metadata"),
        other,
        "put_with on an existing secret sets the description and exactly its tags"
    );
    let missing = SecretName::new(format!("{namespace}/metadata/never-written")).expect("name");
    assert!(
        matches!(
            store.metadata(&missing).await,
            Err(Error::NotFound { deleted: false, .. })
        ),
        "metadata of a name never written is NotFound"
    );
    store.delete(&key).await.expect("delete");
    assert!(
        matches!(
            store.metadata(&key).await,
            Err(Error::NotFound { deleted: true, .. })
        ),
        "metadata of a deleted secret is NotFound {{ deleted: true }}"
    );
    store.purge(&key).await.expect("purge");
}

#[tokio::test]
async fn localstack_secrets_manager_keeps_the_contract() {
    let env = ItestEnv::load();
    secrets_manager(
        SecretsManagerStore::new(aws::localstack(&env)),
        "localstack",
    )
    .await;
}

#[tokio::test]
async fn moto_secrets_manager_keeps_the_contract() {
    let env = ItestEnv::load();
    let client = aws::moto(&env, &env.moto_secret_access_key);
    secrets_manager(SecretsManagerStore::new(client), "moto").await;
}

#[tokio::test]
async fn secrets_over_openbao_keeps_the_contract() {
    let env = ItestEnv::load();
    let secrets = Secrets::builder()
        .store(vault(&env))
        .build()
        .expect("secrets");
    whole_suite(secrets, "secrets-openbao").await;
}

/// SSM Parameter Store on moto: every check but `values`, whose 60 KiB value no parameter
/// holds (4 KiB standard, 8 KiB advanced; `ssm.rs` checks binary values and both limits),
/// then the scoped check, then everything purged.
#[tokio::test]
async fn moto_ssm_keeps_the_contract() {
    let env = ItestEnv::load();
    let client = strongroom_aws::SsmClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.moto_endpoint)
        .credentials(strongroom_sigv4::StaticProvider::new(
            strongroom_sigv4::Credentials::new(
                &env.moto_access_key_id,
                &env.moto_secret_access_key,
            ),
        ))
        .build()
        .expect("ssm client");
    let store = strongroom_aws::SsmStore::new(client);
    let namespace = format!("conformance/{}", raw::unique("ssm"));
    let ns = namespace.as_str();
    conformance::read_write(&store, ns).await;
    conformance::longest_name(&store, ns).await;
    conformance::list(&store, ns).await;
    conformance::versions(&store, ns).await;
    conformance::check_and_set(&store, ns).await;
    conformance::metadata(&store, ns).await;
    conformance::delete(&store, ns).await;
    let folder = format!("{namespace}/scoped/app");
    let scoped = Scoped::new(store.clone(), &folder).expect("prefix");
    conformance::scoped(&store, &scoped, &folder).await;
    for key in store.list(&format!("{namespace}/")).await.expect("list") {
        store.purge(&key).await.expect("clean up");
    }
    assert!(
        store
            .list(&format!("{namespace}/"))
            .await
            .expect("list")
            .is_empty()
    );
}
