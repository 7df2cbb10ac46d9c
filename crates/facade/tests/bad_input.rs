//! The bad-input table of docs/reliability.md, facade rows, over a real encrypted file store:
//! invalid key names, a non-UTF-8 value read as text, and JSON that does not fit the caller's
//! type. Each gives its own error kind, says what is wrong without echoing the value, and
//! leaves the stored secret exactly as it was (checked by reading it back through a second,
//! uncached handle on the same file).

use serde::Deserialize;
use strongroom_core::{ErrorKind, SecretName, SecretStore, SecretValue};
use strongroom_envelope::MasterKey;
use strongroom_facade::Secrets;
use strongroom_local::FileStore;

#[derive(Debug, Deserialize)]
struct Db {
    #[allow(dead_code, reason = "only its shape matters")]
    port: u16,
}

/// Bytes that are not UTF-8 and contain a marker that must never show in an error.
fn binary() -> Vec<u8> {
    let mut bytes = b"leak-marker-binary".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3]);
    bytes
}

#[tokio::test]
async fn bad_input_through_the_facade_gets_distinct_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master = MasterKey::generate().unwrap();
    let secrets = Secrets::builder()
        .store(FileStore::create(&path, master.clone()).unwrap())
        .build()
        .unwrap();
    secrets
        .put("app/binary", SecretValue::new(binary()))
        .await
        .unwrap();
    secrets
        .put("app/db", r#"{"port": "leak-marker-port"}"#)
        .await
        .unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut seen = Vec::new();
    // Invalid key names never reach the store.
    for bad in ["", "/lead", "trail/", "a//b", "a/../b", "./a", "new\nline"] {
        let err = secrets.get(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}: {err}");
        let err = secrets.put(bad, "leak-marker-put").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}: {err}");
        seen.push(err);
    }
    // A non-UTF-8 value read as text, as JSON, or as a JSON field.
    let secret = secrets.get("app/binary").await.unwrap();
    let err = secret.value.expose_str().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    seen.push(err);
    let err = secrets.get_json::<Db>("app/binary").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    seen.push(err);
    let err = secrets.get_field("app/binary", "port").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    seen.push(err);
    // JSON that does not parse into the caller's type.
    let err = secrets.get_json::<Db>("app/db").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    assert!(err.to_string().contains("app/db"), "{err}");
    seen.push(err);

    for err in &seen {
        for shown in [format!("{err}"), format!("{err:?}")] {
            assert!(!shown.contains("leak-marker"), "a value leaked: {shown}");
        }
    }
    // Nothing was written, and both values read back as they were through a fresh handle.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let fresh = FileStore::open(&path, master).unwrap();
    let key = |k: &str| SecretName::new(k).unwrap();
    assert_eq!(
        fresh.get(&key("app/binary")).await.unwrap().value.expose(),
        binary()
    );
    assert_eq!(
        fresh
            .get(&key("app/db"))
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        r#"{"port": "leak-marker-port"}"#
    );
}
