//! Bad-input rows against the shared OpenBao: a static token revoked mid-run, and values
//! over the limits (the server's request size, the client's response body limit). Each is a
//! clear error of its own kind, and the stored data is untouched.

use http::Method;
use serde_json::json;
use strongroom_core::{ErrorKind, SecretStore, SecretValue};
use strongroom_itests::ItestEnv;
use strongroom_vault::{VaultClient, VaultStore};

use super::key;
use crate::raw;

fn store_with_token(env: &ItestEnv, token: &str) -> VaultStore {
    let client = VaultClient::builder()
        .address(&env.vault_addr)
        .token(token)
        .build()
        .unwrap();
    VaultStore::new(&client, &env.vault_kv_mount).unwrap()
}

#[tokio::test]
async fn a_static_token_revoked_mid_run_is_unauthenticated_and_loses_nothing() {
    let env = ItestEnv::load();
    let created = raw::vault(
        &env.vault_addr,
        Some(&env.vault_token),
        None,
        Method::POST,
        "auth/token/create",
        Some(&json!({"policies": ["root"], "ttl": "10m"})),
    )
    .await;
    let token = created.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = store_with_token(&env, &token);
    let k = key(&format!("strongroom-itest/{}", raw::unique("revoked")));
    store.put(&k, "before-revoke".into()).await.unwrap();

    let revoked = raw::vault(
        &env.vault_addr,
        Some(&env.vault_token),
        None,
        Method::POST,
        "auth/token/revoke",
        Some(&json!({"token": token})),
    )
    .await;
    assert!(revoked.status.is_success(), "revoke: {}", revoked.body);

    // A static token cannot log in again: every operation says so, the same way.
    let read = store.get(&k).await.unwrap_err();
    let write = store.put(&k, "after-revoke".into()).await.unwrap_err();
    for err in [&read, &write] {
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
        assert!(!err.is_retryable(), "{err}");
        assert!(
            !format!("{err} {err:?}").contains(&token),
            "the token leaked"
        );
    }
    // The data is as it was.
    let root = store_with_token(&env, &env.vault_token);
    let current = root.get(&k).await.unwrap();
    assert_eq!(current.value, "before-revoke".into());
    assert_eq!(current.version.as_u64(), Some(1));
    root.purge(&k).await.unwrap();
}

#[tokio::test]
async fn values_over_the_limits_are_refused_and_the_current_version_stays() {
    let env = ItestEnv::load();
    let store = store_with_token(&env, &env.vault_token);
    let k = key(&format!("strongroom-itest/{}", raw::unique("huge")));
    store.put(&k, "small".into()).await.unwrap();

    // Over OpenBao's max_request_size (32 MiB by default): the server's 413 as an error.
    let huge = SecretValue::new(vec![b'h'; 33 * 1024 * 1024]);
    let err = store.put(&k, huge).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    assert!(!err.is_retryable(), "{err}");
    let current = store.get(&k).await.unwrap();
    assert_eq!(
        (current.value, current.version.as_u64()),
        ("small".into(), Some(1))
    );
    store.purge(&k).await.unwrap();
}

#[tokio::test]
async fn a_value_the_client_cannot_read_back_is_refused_when_written() {
    let env = ItestEnv::load();
    let store = store_with_token(&env, &env.vault_token);
    let k = key(&format!("strongroom-itest/{}", raw::unique("five-mib")));
    let put = store
        .put(&k, SecretValue::new(vec![b'f'; 5 * 1024 * 1024]))
        .await;
    let read = store.get(&k).await;
    let _ = store.purge(&k).await;
    // Either the write is refused as too large, or what was written can be read.
    match put {
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
            assert!(!err.is_retryable(), "{err}");
        }
        Ok(_) => assert!(read.is_ok(), "written but unreadable: {:?}", read.err()),
    }
}
