//! The `SecretStore` contract (strongroom-core's `testing::conformance`) against the real
//! servers: OpenBao's KV v2, AWS Secrets Manager on LocalStack and on moto (which checks
//! signatures), each directly and scoped to a folder with core's `Scoped`, and a
//! `Secrets` over OpenBao. Each run writes under a namespace of its own and cleans up.

use strongroom_aws::SecretsManagerStore;
use strongroom_core::Scoped;
use strongroom_core::SecretStore;
use strongroom_core::testing::conformance;
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

/// Secrets Manager: every check but the ones named in `gaps`, each a known difference from
/// the contract reported where it belongs (remove it from the list when it is fixed).
async fn secrets_manager(store: SecretsManagerStore, name: &str, gaps: &[&str]) {
    let namespace = format!("conformance/{}", raw::unique(name));
    let ns = namespace.as_str();
    conformance::read_write(&store, ns).await;
    conformance::values(&store, ns).await;
    conformance::longest_name(&store, ns).await;
    conformance::list(&store, ns).await;
    if !gaps.contains(&"versions") {
        conformance::versions(&store, ns).await;
    }
    conformance::check_and_set(&store, ns).await;
    if !gaps.contains(&"metadata") {
        conformance::metadata(&store, ns).await;
    }
    if !gaps.contains(&"delete") {
        conformance::delete(&store, ns).await;
    }
    let folder = format!("{namespace}/scoped/app");
    let scoped = Scoped::new(store.clone(), &folder).expect("prefix");
    conformance::scoped(&store, &scoped, &folder).await;
    for key in store.list(&format!("{namespace}/")).await.expect("list") {
        store.purge(&key).await.expect("clean up");
    }
}

// Known gap, both servers: `get` does not report the description and tags `put_with` stored
// (GetSecretValue carries neither; the store would need a DescribeSecret per read, or
// `Capabilities` a way to say metadata is write-only). Reported with the conformance work.

#[tokio::test]
async fn localstack_secrets_manager_keeps_the_contract() {
    let env = ItestEnv::load();
    let store = SecretsManagerStore::new(aws::localstack(&env));
    secrets_manager(store, "localstack", &["metadata"]).await;
}

#[tokio::test]
async fn moto_secrets_manager_keeps_the_contract() {
    let env = ItestEnv::load();
    let client = aws::moto(&env, &env.moto_secret_access_key);
    // moto 5.1.22 answers ListSecretVersionIds for a secret that does not exist with a 500
    // (real Secrets Manager and LocalStack: ResourceNotFoundException), which the store
    // rightly reports as Unavailable, and lists the versions of a secret scheduled for
    // deletion, which the store then reports as live (LocalStack refuses the call with
    // NotFound { deleted: true }). Those checks run on LocalStack.
    let gaps = ["metadata", "versions", "delete"];
    secrets_manager(SecretsManagerStore::new(client), "moto", &gaps).await;
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
