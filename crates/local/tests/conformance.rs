//! The local stores keep the `SecretStore` contract (strongroom-core's
//! `testing::conformance`): the encrypted file store all of it, the environment and
//! directory stores the read-only part.

use strongroom_core::testing::conformance;
use strongroom_core::{SecretName, SecretStore as _, SecretValue};
use strongroom_envelope::MasterKey;
use strongroom_local::{DirStore, EnvStore, FileStore};

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

#[tokio::test]
async fn the_file_store_keeps_the_whole_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let store = FileStore::create(&path, MasterKey::generate().unwrap()).unwrap();
    conformance::run(&store, "conformance").await;
    conformance::run(&store, "conformance/again").await;
    assert!(
        store.list("").await.unwrap().is_empty(),
        "run cleans up after itself"
    );
}

#[tokio::test]
async fn the_env_store_keeps_the_read_only_contract() {
    let store = EnvStore::from_vars([
        ("APP_TOKEN", SecretValue::from("t0k3n")),
        ("APP_URL", SecretValue::from("https://example.test")),
        (
            "MYAPP_DB_PASSWORD",
            SecretValue::new(vec![0, 159, 146, 150]),
        ),
    ]);
    let present = [
        (key("app_token"), SecretValue::from("t0k3n")),
        (key("app_url"), SecretValue::from("https://example.test")),
        (
            key("myapp_db_password"),
            SecretValue::new(vec![0, 159, 146, 150]),
        ),
    ];
    conformance::read_only(&store, &present, &key("app_none")).await;

    let prefixed = store.with_prefix("MYAPP");
    let present = [(key("db_password"), SecretValue::new(vec![0, 159, 146, 150]))];
    conformance::read_only(&prefixed, &present, &key("token")).await;
}

#[tokio::test]
async fn the_dir_store_keeps_the_read_only_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("app/db")).unwrap();
    std::fs::create_dir_all(root.join("application")).unwrap();
    let binary: Vec<u8> = (0..=255u8).collect();
    std::fs::write(root.join("app/db/password"), "pw\n").unwrap();
    std::fs::write(root.join("app/binary"), &binary).unwrap();
    std::fs::write(root.join("application/key"), "other").unwrap();
    // The longest name, in folders: one file name can be at most 255 bytes.
    let last = strongroom_core::MAX_NAME_LEN - 2 * 201;
    let segments = ["k".repeat(200), "k".repeat(200), "k".repeat(last)];
    let longest = segments.join("/");
    assert_eq!(longest.len(), strongroom_core::MAX_NAME_LEN);
    std::fs::create_dir_all(root.join(&segments[0]).join(&segments[1])).unwrap();
    std::fs::write(root.join(&longest), "long").unwrap();

    let store = DirStore::new(root).unwrap();
    let present = [
        (key("app/db/password"), SecretValue::from("pw\n")),
        (key("app/binary"), SecretValue::new(binary)),
        (key("application/key"), SecretValue::from("other")),
        (key(&longest), SecretValue::from("long")),
    ];
    conformance::read_only(&store, &present, &key("app/none")).await;
}
