//! strongroom-vault against the real OpenBao that `cargo xtask itest` starts: every KV v2
//! operation, the SecretStore, check-and-set between two writers, AppRole and Kubernetes
//! logins, renewal and re-login with a 5 s token TTL, a policy that denies, a namespace, a
//! sealed server (its own dev server, so the shared one stays up for the other tests), a
//! stopped server, and tracing output that holds no token, credential or value.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use strongroom_core::{
    ErrorKind, Metadata, PutOptions, SecretName, SecretStore, SecretValue, VersionId,
};
use strongroom_itests::ItestEnv;
use strongroom_vault::{
    AppRole, Credential, Kubernetes, MetadataUpdate, Method, RenewPolicy, RetryPolicy, SecretData,
    VaultClient, VaultStore,
};

use crate::raw;

fn root_client(env: &ItestEnv) -> VaultClient {
    VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .build()
        .expect("root client")
}

fn approle_client(env: &ItestEnv, policy: RenewPolicy) -> VaultClient {
    VaultClient::builder()
        .address(&env.vault_addr)
        .approle(AppRole::new(
            Credential::value(&env.approle_role_id),
            Credential::value(&env.approle_secret_id),
        ))
        .renew_policy(policy)
        .build()
        .expect("approle client")
}

/// A path under the AppRole policy's prefix, fresh for each test.
fn allowed(env: &ItestEnv, name: &str) -> String {
    format!("{}{}", env.vault_allowed_prefix, raw::unique(name))
}

fn key(path: &str) -> SecretName {
    SecretName::new(path).expect("valid key")
}

#[tokio::test]
async fn kv2_every_operation_on_two_mounts() {
    let env = ItestEnv::load();
    let client = root_client(&env);
    for mount in [&env.vault_kv_mount, &env.vault_team_mount] {
        let kv = client.kv2(mount).unwrap();
        let base = format!("strongroom-itest/{}", raw::unique("kv"));
        let path = format!("{base}/db password");

        let v1 = kv
            .write(
                &path,
                &SecretData::new().with("value", "one").with("user", "app"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(v1.version, 1);
        let v2 = kv
            .write(&path, &SecretData::new().with("value", "two"), Some(1))
            .await
            .unwrap();
        assert_eq!(v2.version, 2);

        let latest = kv.read(&path).await.unwrap();
        assert_eq!(latest.metadata.version, 2);
        assert_eq!(latest.data.get_str("value"), Some("two"));
        assert!(latest.metadata.created_time.is_some());
        let first = kv.read_version(&path, 1).await.unwrap();
        assert_eq!(first.data.get_str("user"), Some("app"));

        // JSON merge patch: keep `value`, add `extra`.
        let mut patch = Map::new();
        patch.insert("extra".into(), json!("x"));
        let v3 = kv.patch(&path, &patch, Some(2)).await.unwrap();
        assert_eq!(v3.version, 3);
        let patched = kv.read(&path).await.unwrap();
        assert_eq!(patched.data.fields(), ["extra", "value"]);
        assert_eq!(patched.data.get_str("value"), Some("two"));

        // Soft delete of latest, then undelete.
        kv.delete_latest(&path).await.unwrap();
        match kv.read(&path).await {
            Err(strongroom_core::Error::NotFound { deleted: true, .. }) => {}
            other => panic!("expected NotFound(deleted) after soft delete, got {other:?}"),
        }
        kv.undelete_versions(&path, &[3]).await.unwrap();
        assert_eq!(kv.read(&path).await.unwrap().metadata.version, 3);

        // Delete and destroy given versions.
        kv.delete_versions(&path, &[2]).await.unwrap();
        kv.destroy_versions(&path, &[1]).await.unwrap();
        match kv.read_version(&path, 1).await {
            Err(strongroom_core::Error::NotFound {
                deleted: false,
                version: Some(v),
                ..
            }) => {
                assert_eq!(v, VersionId::from(1));
            }
            other => panic!("expected NotFound for a destroyed version, got {other:?}"),
        }
        let meta = kv.read_metadata(&path).await.unwrap();
        assert_eq!(meta.current_version, 3);
        assert!(meta.versions[&1].destroyed);
        assert!(meta.versions[&2].is_deleted());
        assert!(!meta.versions[&3].is_deleted());

        // Custom metadata and settings.
        let mut update =
            MetadataUpdate::custom([("owner".to_owned(), "team-core".to_owned())].into());
        update.max_versions = Some(7);
        kv.write_metadata(&path, &update).await.unwrap();
        let meta = kv.read_metadata(&path).await.unwrap();
        assert_eq!(meta.max_versions, 7);
        assert_eq!(meta.custom_metadata["owner"], "team-core");
        assert_eq!(
            kv.read(&path).await.unwrap().metadata.custom_metadata["owner"],
            "team-core"
        );

        // List one folder and walk the tree.
        kv.write(
            &format!("{base}/nested/deeper/leaf"),
            &SecretData::new().with("value", "l"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(kv.list(&base).await.unwrap(), ["db password", "nested/"]);
        assert_eq!(
            kv.walk(&base).await.unwrap(),
            [
                format!("{base}/db password"),
                format!("{base}/nested/deeper/leaf")
            ]
        );
        assert!(
            kv.list(&format!("{base}/missing"))
                .await
                .unwrap()
                .is_empty()
        );

        // Purge.
        kv.delete_metadata(&path).await.unwrap();
        assert_eq!(
            kv.read_metadata(&path).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        match kv.read(&path).await {
            Err(strongroom_core::Error::NotFound { deleted: false, .. }) => {}
            other => panic!("expected NotFound after purge, got {other:?}"),
        }

        // A key that would leave the mount never reaches the server.
        for bad in ["../sys/seal", "a/../../b", "a//b"] {
            assert_eq!(
                kv.read(bad).await.unwrap_err().kind(),
                ErrorKind::InvalidKey,
                "{bad}"
            );
        }
    }
}

#[tokio::test]
async fn secret_store_round_trip() {
    let env = ItestEnv::load();
    let store = VaultStore::new(&root_client(&env), &env.vault_kv_mount).unwrap();
    assert_eq!(store.backend(), "vault");
    let base = format!("strongroom-itest/{}", raw::unique("store"));
    let k = key(&format!("{base}/db/password"));

    let v1 = store.put(&k, SecretValue::from("first")).await.unwrap();
    let v2 = store
        .put_with(
            &k,
            SecretValue::from("second"),
            &PutOptions::default()
                .if_version(v1.clone())
                .with_metadata(Metadata::with_description("primary db").tag("team", "core")),
        )
        .await
        .unwrap();
    assert_eq!((v1.as_u64(), v2.as_u64()), (Some(1), Some(2)));

    let got = store.get(&k).await.unwrap();
    assert_eq!(got.value, SecretValue::from("second"));
    assert_eq!(got.version, v2);
    assert!(got.created.is_some());
    assert_eq!(got.metadata.description.as_deref(), Some("primary db"));
    assert_eq!(got.metadata.tags["team"], "core");
    assert_eq!(
        store.get_version(&k, &v1).await.unwrap().value,
        SecretValue::from("first")
    );

    // Binary values travel as value_base64.
    let bin = key(&format!("{base}/bin"));
    let bytes = SecretValue::from(vec![0u8, 0xff, 0x10, 0x80]);
    store.put(&bin, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&bin).await.unwrap().value, bytes);
    assert_eq!(
        store.read_data(&bin).await.unwrap().fields(),
        ["value_base64"]
    );

    // Multi-field secrets through the data map.
    let multi = key(&format!("{base}/multi"));
    store
        .write_data(
            &multi,
            &SecretData::new()
                .with("username", "app")
                .with("password", "pw"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.read_data(&multi).await.unwrap().get_str("password"),
        Some("pw")
    );
    assert_eq!(
        store.get(&multi).await.unwrap_err().kind(),
        ErrorKind::InvalidValue
    );

    let versions = store.versions(&k).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[1].current && !versions[0].current);

    assert_eq!(
        store.list(&format!("{base}/")).await.unwrap(),
        [bin.clone(), k.clone(), multi.clone()]
    );
    assert_eq!(
        store.list(&format!("{base}/d")).await.unwrap(),
        std::slice::from_ref(&k)
    );

    store.delete(&k).await.unwrap();
    match store.get(&k).await {
        Err(strongroom_core::Error::NotFound { deleted: true, .. }) => {}
        other => panic!("expected a soft-deleted NotFound, got {other:?}"),
    }
    assert_eq!(
        store.list(&format!("{base}/")).await.unwrap(),
        [bin.clone(), multi.clone()]
    );
    assert!(store.versions(&k).await.unwrap()[1].deleted);
    store.undelete(&k).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value,
        SecretValue::from("second")
    );

    store.purge(&k).await.unwrap();
    match store.get(&k).await {
        Err(strongroom_core::Error::NotFound { deleted: false, .. }) => {}
        other => panic!("expected NotFound after purge, got {other:?}"),
    }
    assert_eq!(
        store.delete(&k).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    for extra in [&bin, &multi] {
        store.purge(extra).await.unwrap();
    }
}

#[tokio::test]
async fn check_and_set_lets_only_one_of_two_writers_win() {
    let env = ItestEnv::load();
    let a = VaultStore::new(&root_client(&env), &env.vault_kv_mount).unwrap();
    let b = VaultStore::new(&root_client(&env), &env.vault_kv_mount).unwrap();
    let k = key(&format!("strongroom-itest/{}", raw::unique("cas")));

    let v1 = a
        .put_with(
            &k,
            SecretValue::from("v1"),
            &PutOptions::default().if_absent(),
        )
        .await
        .unwrap();
    let err = b
        .put_with(
            &k,
            SecretValue::from("again"),
            &PutOptions::default().if_absent(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // Both read version 1 and race to write on top of it.
    let if_v1 = PutOptions::default().if_version(v1);
    let (ra, rb) = tokio::join!(
        a.put_with(&k, SecretValue::from("from-a"), &if_v1),
        b.put_with(&k, SecretValue::from("from-b"), &if_v1),
    );
    let outcomes = [ra.map_err(|e| e.kind()), rb.map_err(|e| e.kind())];
    let wins = outcomes.iter().filter(|r| r.is_ok()).count();
    let conflicts = outcomes
        .iter()
        .filter(|r| matches!(r, Err(ErrorKind::Conflict)))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{outcomes:?}");
    let winner = if outcomes[0].is_ok() {
        "from-a"
    } else {
        "from-b"
    };
    let got = a.get(&k).await.unwrap();
    assert_eq!(got.value, SecretValue::from(winner));
    assert_eq!(got.version.as_u64(), Some(2));
    let err_text = format!("{err} {err:?}");
    assert!(!err_text.contains("again"), "{err_text}");
    a.purge(&k).await.unwrap();
}

#[tokio::test]
async fn approle_login_and_a_policy_that_denies() {
    let env = ItestEnv::load();
    let client = approle_client(&env, RenewPolicy::default());
    client.login().await.unwrap();
    let info = client.lookup_self().await.unwrap();
    assert!(info.policies.iter().any(|p| p == "itest-app"), "{info:?}");
    assert!(
        info.ttl
            .is_some_and(|t| t <= Duration::from_secs(env.approle_token_ttl_secs))
    );

    let store = VaultStore::new(&client, &env.vault_kv_mount).unwrap();
    let inside = key(&allowed(&env, "approle"));
    store.put(&inside, SecretValue::from("ok")).await.unwrap();
    assert_eq!(
        store.get(&inside).await.unwrap().value,
        SecretValue::from("ok")
    );

    let outside = key(&format!("strongroom-itest/{}", raw::unique("denied")));
    let err = store
        .put(&outside, SecretValue::from("no"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    let err = store.get(&outside).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    // The token was fine: no login was wasted on the refusals.
    let stats = client.stats();
    assert_eq!((stats.logins, stats.retries_after_403), (1, 0), "{stats:?}");

    let wrong = VaultClient::builder()
        .address(&env.vault_addr)
        .approle(AppRole::new(
            Credential::value(&env.approle_role_id),
            Credential::value("not-the-secret-id"),
        ))
        .build()
        .unwrap();
    let err = wrong.login().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(wrong.stats().login_failures, 1);

    let bogus = VaultClient::builder()
        .address(&env.vault_addr)
        .token("not-a-real-token")
        .build()
        .unwrap();
    let err = bogus
        .kv2("secret")
        .unwrap()
        .read("anything")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-a-real-token"));
}

#[tokio::test]
async fn a_short_ttl_token_stays_usable_through_renewal() {
    let env = ItestEnv::load();
    let ttl = Duration::from_secs(env.approle_token_ttl_secs);
    let client = approle_client(&env, RenewPolicy::default());
    let kv = client.kv2(&env.vault_kv_mount).unwrap();
    let path = allowed(&env, "renew");
    kv.write(&path, &SecretData::new().with("value", "v"), None)
        .await
        .unwrap();

    let until = Instant::now() + ttl * 3 + Duration::from_secs(1);
    let mut reads = 0;
    while Instant::now() < until {
        let read = kv
            .read(&path)
            .await
            .unwrap_or_else(|e| panic!("read {reads} failed: {e}"));
        assert_eq!(read.data.get_str("value"), Some("v"));
        reads += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let stats = client.stats();
    assert_eq!(stats.logins, 1, "renewal kept the first token: {stats:?}");
    assert!(stats.renewals >= 3, "{stats:?}");
    assert_eq!(
        stats.renewal_failures + stats.retries_after_403,
        0,
        "{stats:?}"
    );
    kv.delete_metadata(&path).await.unwrap();
}

#[tokio::test]
async fn logs_in_again_when_the_max_ttl_is_reached() {
    let env = ItestEnv::load();
    let root = root_client(&env);
    let role = raw::unique("maxttl");
    root.request_json(
        Method::POST,
        &format!("auth/approle/role/{role}"),
        Some(&json!({"token_policies": ["itest-app"], "token_ttl": "2s", "token_max_ttl": "4s"})),
    )
    .await
    .unwrap();
    let role_id = root
        .request_json(
            Method::GET,
            &format!("auth/approle/role/{role}/role-id"),
            None,
        )
        .await
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = root
        .request_json(
            Method::POST,
            &format!("auth/approle/role/{role}/secret-id"),
            Some(&json!({})),
        )
        .await
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let client = VaultClient::builder()
        .address(&env.vault_addr)
        .approle(AppRole::new(
            Credential::value(role_id),
            Credential::value(secret_id),
        ))
        .build()
        .unwrap();
    let kv = client.kv2(&env.vault_kv_mount).unwrap();
    let path = allowed(&env, "maxttl");
    kv.write(&path, &SecretData::new().with("value", "v"), None)
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_secs(13);
    while Instant::now() < until {
        kv.read(&path).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let stats = client.stats();
    assert!(
        stats.logins >= 3,
        "the 4 s max TTL forces new logins: {stats:?}"
    );
    assert!(stats.renewals >= 1, "{stats:?}");
    kv.delete_metadata(&path).await.unwrap();
    root.request_json(Method::DELETE, &format!("auth/approle/role/{role}"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revoked_or_expired_token_means_one_login_and_one_retry() {
    let env = ItestEnv::load();
    let client = approle_client(&env, RenewPolicy::Never);
    let kv = client.kv2(&env.vault_kv_mount).unwrap();
    let path = allowed(&env, "revoked");
    kv.write(&path, &SecretData::new().with("value", "v"), None)
        .await
        .unwrap();
    assert_eq!(client.stats().logins, 1);

    // Revoked behind the client's back: eight concurrent reads share one new login.
    client.revoke_self().await.unwrap();
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let kv = kv.clone();
            let path = path.clone();
            tokio::spawn(async move { kv.read(&path).await.map(|s| s.metadata.version) })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), 1);
    }
    let stats = client.stats();
    assert_eq!(stats.logins, 2, "{stats:?}");
    assert!(stats.retries_after_403 >= 1, "{stats:?}");

    // Expired without renewal: the next request logs in first.
    tokio::time::sleep(
        Duration::from_secs(env.approle_token_ttl_secs) + Duration::from_millis(500),
    )
    .await;
    kv.read(&path).await.unwrap();
    assert_eq!(client.stats().logins, 3);
    kv.delete_metadata(&path).await.unwrap();
}

#[tokio::test]
async fn a_namespace_is_its_own_world() {
    let env = ItestEnv::load();
    let root = root_client(&env);
    let in_ns = root.with_namespace(Some(&env.vault_namespace)).unwrap();
    let path = format!("strongroom-itest/{}", raw::unique("ns"));
    let ns_kv = in_ns.kv2("secret").unwrap();
    ns_kv
        .write(&path, &SecretData::new().with("value", "in-ns"), None)
        .await
        .unwrap();
    assert_eq!(
        ns_kv.read(&path).await.unwrap().data.get_str("value"),
        Some("in-ns")
    );
    assert_eq!(
        root.kv2("secret")
            .unwrap()
            .read(&path)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // The same through from_env, as the CLI builds it.
    let store = VaultStore::from_lookup(|name| match name {
        "VAULT_ADDR" => Some(env.vault_addr.clone()),
        "VAULT_TOKEN" => Some(env.vault_token.clone()),
        "VAULT_NAMESPACE" => Some(env.vault_namespace.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        store.get(&key(&path)).await.unwrap().value,
        SecretValue::from("in-ns")
    );
    ns_kv.delete_metadata(&path).await.unwrap();
}

/// A service-account JWT in a file, as a pod has it.
fn jwt_file(env: &ItestEnv, signing_key: &[u8]) -> (tempfile::TempDir, PathBuf, String) {
    let jwt = raw::service_account_jwt(
        signing_key,
        &env.k8s_issuer,
        &env.k8s_audience,
        &env.k8s_subject,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{jwt}\n")).unwrap();
    (dir, path, jwt)
}

#[tokio::test]
async fn kubernetes_login_with_a_service_account_token() {
    let env = ItestEnv::load();
    let signing_key = std::fs::read(&env.k8s_signing_key).expect("the signing key xtask wrote");
    let (_dir, token_path, _) = jwt_file(&env, &signing_key);
    let store = VaultStore::from_lookup(|name| match name {
        "VAULT_ADDR" => Some(env.vault_addr.clone()),
        "VAULT_K8S_ROLE" => Some(env.k8s_role.clone()),
        "VAULT_K8S_MOUNT" => Some(env.k8s_mount.clone()),
        "VAULT_K8S_TOKEN_PATH" => Some(token_path.display().to_string()),
        "VAULT_KV_MOUNT" => Some(env.vault_kv_mount.clone()),
        _ => None,
    })
    .unwrap();
    let k = key(&allowed(&env, "k8s"));
    store
        .put(&k, SecretValue::from("from-a-pod"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value,
        SecretValue::from("from-a-pod")
    );
    assert_eq!(store.client().stats().logins, 1);
    store.purge(&k).await.unwrap();

    // A token signed by a key the server does not trust is refused.
    let (_dir2, forged_path, _) = jwt_file(&env, &raw::untrusted_key());
    let forged = VaultClient::builder()
        .address(&env.vault_addr)
        .kubernetes(
            Kubernetes::new(&env.k8s_role)
                .mount(&env.k8s_mount)
                .jwt_file(&forged_path),
        )
        .build()
        .unwrap();
    assert_eq!(
        forged.login().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
}

/// A private dev server (in memory) for tests that seal, pause or kill it; killed on drop.
pub(crate) struct DevServer {
    pub(crate) child: Child,
    pub(crate) addr: String,
    unseal_key: String,
    _home: tempfile::TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start_dev_server(root_token: &str) -> DevServer {
    start_dev_server_on(free_port(), root_token)
}

/// A dev server on `port` (to restart one where its clients expect it).
pub(crate) fn start_dev_server_on(port: u16, root_token: &str) -> DevServer {
    start_dev_server_with(port, root_token, None)
}

/// A dev server that also reads the HCL `config` (OpenBao 2 takes audit devices only from
/// its configuration, not through the API).
pub(crate) fn start_dev_server_with(
    port: u16,
    root_token: &str,
    config: Option<&str>,
) -> DevServer {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(crate::support::bao_binary());
    command.args([
        "server",
        "-dev",
        &format!("-dev-root-token-id={root_token}"),
        &format!("-dev-listen-address=127.0.0.1:{port}"),
        "-dev-no-store-token",
    ]);
    if let Some(config) = config {
        let file = home.path().join("extra.hcl");
        std::fs::write(&file, config).unwrap();
        command.arg(format!("-config={}", file.display()));
    }
    let mut child = command
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bao");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                let _ = tx.send(key.trim().to_owned());
            }
        }
    });
    let unseal_key = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the dev server prints its unseal key");
    DevServer {
        child,
        addr: format!("http://127.0.0.1:{port}"),
        unseal_key,
        _home: home,
    }
}

#[tokio::test]
async fn a_sealed_server_is_unavailable_until_unsealed() {
    let root_token = raw::unique("root");
    let server = start_dev_server(&root_token);
    let client = VaultClient::builder()
        .address(&server.addr)
        .token(root_token.as_str())
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_secs(2)))
        .build()
        .unwrap();
    let kv = client.kv2("secret").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match kv
            .write("sealed/x", &SecretData::new().with("value", "kept"), None)
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the private dev server never accepted a write: {e}"),
        }
    }

    client
        .request_json(Method::PUT, "sys/seal", None)
        .await
        .unwrap();
    let started = Instant::now();
    let err = kv.read("sealed/x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().to_lowercase().contains("sealed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    client
        .request_json(
            Method::PUT,
            "sys/unseal",
            Some(&json!({"key": server.unseal_key})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match kv.read("sealed/x").await {
            Ok(read) => {
                assert_eq!(read.data.get_str("value"), Some("kept"));
                break;
            }
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("not readable after unseal: {e}"),
        }
    }
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_within_the_timeout() {
    // Nothing listens: connection refused.
    let closed = format!("http://127.0.0.1:{}", free_port());
    // Listens but never accepts nor answers: only the timeout ends the request.
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = format!("http://{}", black_hole.local_addr().unwrap());
    for addr in [closed, hole] {
        let client = VaultClient::builder()
            .address(&addr)
            .token("t")
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(700))
            .retry_policy(RetryPolicy::default().with_max_total(Duration::from_secs(2)))
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client.kv2("secret").unwrap().read("x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{addr}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{addr}: took {:?}",
            started.elapsed()
        );
    }
    drop(black_hole);
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_output_holds_no_token_credential_or_value() {
    let env = ItestEnv::load();
    let capture = crate::support::capture();

    let value = format!("value-{}", raw::unique("traced"));
    let signing_key = std::fs::read(&env.k8s_signing_key).unwrap();
    let (_dir, token_path, jwt) = jwt_file(&env, &signing_key);
    let mut shown = Vec::new();
    {
        // AppRole: login, write, read, a refusal, a renewal.
        let client = approle_client(&env, RenewPolicy::default());
        let store = VaultStore::new(&client, &env.vault_kv_mount).unwrap();
        let k = key(&allowed(&env, "traced"));
        store
            .put(&k, SecretValue::from(value.as_str()))
            .await
            .unwrap();
        let got = store.get(&k).await.unwrap();
        shown.push(format!("{got:?} {store:?} {client:?}"));
        let denied = store
            .get(&key("strongroom-itest/denied"))
            .await
            .unwrap_err();
        shown.push(format!("{denied} {denied:?}"));
        tokio::time::sleep(Duration::from_secs(env.approle_token_ttl_secs)).await;
        store.get(&k).await.unwrap();
        assert!(client.stats().renewals >= 1);
        store.delete(&k).await.unwrap();

        // Kubernetes.
        let k8s = VaultClient::builder()
            .address(&env.vault_addr)
            .kubernetes(
                Kubernetes::new(&env.k8s_role)
                    .mount(&env.k8s_mount)
                    .jwt_file(&token_path),
            )
            .build()
            .unwrap();
        let k8s_kv = k8s.kv2(&env.vault_kv_mount).unwrap();
        let path = allowed(&env, "traced-k8s");
        k8s_kv
            .write(
                &path,
                &SecretData::new().with("value", value.as_str()),
                None,
            )
            .await
            .unwrap();
        let read = k8s_kv.read(&path).await.unwrap();
        shown.push(format!("{read:?} {k8s:?}"));
        k8s_kv.delete_metadata(&path).await.unwrap();

        // A static token.
        let root = root_client(&env);
        root.lookup_self().await.unwrap();
        shown.push(format!("{root:?}"));
    }
    let logs = capture.text();
    assert!(
        logs.contains("vault login"),
        "no login event captured:\n{logs}"
    );
    assert!(
        logs.contains("secret access"),
        "no access event captured:\n{logs}"
    );
    // The renewal's own request; its "vault token renewed" event can be lost when another
    // test thread registers that callsite at the same instant (tracing-core's interest
    // cache), so the request line is what proves a renewal ran under capture.
    assert!(
        logs.contains("/v1/auth/token/renew-self"),
        "no renewal captured:\n{logs}"
    );

    // The tokens the server issues: learn their shape from one raw login.
    let sample = raw::vault(
        &env.vault_addr,
        None,
        None,
        http::Method::POST,
        "auth/approle/login",
        Some(&json!({"role_id": env.approle_role_id, "secret_id": env.approle_secret_id})),
    )
    .await
    .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_prefix = sample.split('.').next().unwrap().to_owned() + ".";

    let everything = format!("{logs}\n{}", shown.join("\n"));
    for secret in [
        value.as_str(),
        env.approle_secret_id.as_str(),
        env.vault_token.as_str(),
        jwt.as_str(),
        jwt.split('.').nth(2).unwrap(),
    ] {
        assert!(
            !everything.contains(secret),
            "a secret leaked into logs or Debug output"
        );
    }
    // No issued token: its prefix followed by a long run of token characters.
    for (i, _) in everything.match_indices(&token_prefix) {
        let run = everything[i + token_prefix.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count();
        assert!(run < 16, "something token-shaped leaked near byte {i}");
    }
}

/// Waits until a fresh private dev server accepts a write with its root token.
pub(crate) async fn wait_until_writable(addr: &str, root_token: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = raw::vault(
            addr,
            Some(root_token),
            None,
            Method::POST,
            "secret/data/ready",
            Some(&json!({"data": {"value": "ready"}})),
        )
        .await;
        if reply.status.is_success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the private dev server never accepted a write: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A periodic token (as `VAULT_TOKEN` would hold) with `period`, allowed to use `secret/`.
async fn periodic_token(addr: &str, root_token: &str, period: Duration) -> String {
    let policy = raw::vault(
        addr,
        Some(root_token),
        None,
        Method::PUT,
        "sys/policies/acl/kv-all",
        Some(&json!({"policy": "path \"secret/*\" { capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"] }"})),
    )
    .await;
    assert!(policy.status.is_success(), "policy: {}", policy.body);
    let created = raw::vault(
        addr,
        Some(root_token),
        None,
        Method::POST,
        "auth/token/create",
        Some(&json!({"policies": ["kv-all"], "period": format!("{}s", period.as_secs())})),
    )
    .await;
    assert!(created.status.is_success(), "token: {}", created.body);
    created.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends SIGSTOP or SIGCONT to a server this test started.
pub(crate) fn signal(server: &DevServer, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

/// A periodic static token (VAULT_TOKEN) is renewed through a server
/// that stops answering across a refresh point. The server (a dev server of this test's
/// own, so the shared one keeps serving the other tests) is SIGSTOPped right after one
/// renewal for most of the rest of the token's period: the renewal due inside the pause
/// fails (timeouts), is retried with backoff, succeeds once the server is back, and the
/// token is still good well past the expiry it had when the pause began.
#[tokio::test]
async fn renewal_of_a_periodic_token_survives_a_paused_server() {
    const PERIOD: Duration = Duration::from_secs(8);
    let root_token = raw::unique("root");
    let server = start_dev_server(&root_token);
    wait_until_writable(&server.addr, &root_token).await;
    let token = periodic_token(&server.addr, &root_token, PERIOD).await;
    let client = VaultClient::builder()
        .address(&server.addr)
        .token(token.as_str())
        .connect_timeout(Duration::from_millis(300))
        .request_timeout(Duration::from_millis(500))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_secs(1)))
        .build()
        .unwrap();
    let kv = client.kv2("secret").unwrap();
    kv.write("pause/x", &SecretData::new().with("value", "v"), None)
        .await
        .unwrap();
    assert!(client.renewal_task_running());

    // Wait for the first renewal (at two thirds of the period), then pause at once: the
    // token now expires PERIOD after that renewal, and the next one is due inside the pause.
    let deadline = Instant::now() + PERIOD * 2;
    while client.stats().renewals == 0 {
        assert!(
            Instant::now() < deadline,
            "never renewed: {:?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let renewed_at = Instant::now();
    let expiry_before_pause = renewed_at + PERIOD;
    signal(&server, "-STOP");
    // Resume 1.5 s before that expiry: the renewal due at 2/3 of the period fell in the pause.
    tokio::time::sleep((PERIOD - Duration::from_millis(1500)).saturating_sub(renewed_at.elapsed()))
        .await;
    let during = client.stats();
    signal(&server, "-CONT");
    assert!(
        during.renewal_failures >= 1,
        "no renewal was attempted in the pause: {during:?}"
    );
    assert_eq!(during.renewals, 1, "{during:?}");

    // Past the expiry the token had when the pause began, it still works: renewal went on.
    let until = expiry_before_pause + PERIOD;
    while Instant::now() < until {
        let read = kv
            .read("pause/x")
            .await
            .unwrap_or_else(|e| panic!("read after the pause failed: {e} ({:?})", client.stats()));
        assert_eq!(read.data.get_str("value"), Some("v"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = client.stats();
    assert!(stats.renewals >= 2, "{stats:?}");
    assert_eq!(stats.renewal_task_panics, 0, "{stats:?}");
    assert!(
        client.renewal_error().is_none(),
        "{:?}",
        client.renewal_error()
    );
    assert!(client.renewal_task_running());
    let info = client.lookup_self().await.unwrap();
    assert!(info.ttl.is_some_and(|ttl| ttl > Duration::ZERO), "{info:?}");
}

/// The control for the test above: a definitive refusal (the token revoked) stops the
/// renewal of a static token, and says so, instead of retrying for ever.
#[tokio::test]
async fn renewal_of_a_revoked_token_stops_with_a_clear_error() {
    const PERIOD: Duration = Duration::from_secs(3);
    let root_token = raw::unique("root");
    let server = start_dev_server(&root_token);
    wait_until_writable(&server.addr, &root_token).await;
    let token = periodic_token(&server.addr, &root_token, PERIOD).await;
    let client = VaultClient::builder()
        .address(&server.addr)
        .token(token.as_str())
        .build()
        .unwrap();
    client.lookup_self().await.unwrap();
    let revoked = raw::vault(
        &server.addr,
        Some(&root_token),
        None,
        Method::POST,
        "auth/token/revoke",
        Some(&json!({"token": token})),
    )
    .await;
    assert!(revoked.status.is_success(), "revoke: {}", revoked.body);
    let deadline = Instant::now() + PERIOD * 3;
    let error = loop {
        if let Some(error) = client.renewal_error() {
            break error;
        }
        assert!(
            Instant::now() < deadline,
            "renewal never stopped: {:?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(!error.to_string().contains(&token), "{error}");
    let read = client
        .kv2("secret")
        .unwrap()
        .read("ready")
        .await
        .unwrap_err();
    assert_eq!(read.kind(), ErrorKind::Unauthenticated, "{read}");
    assert!(read.to_string().contains("renewal stopped"), "{read}");
}

/// The Vault policy in docs/security.md, read at compile time so doc and test cannot drift.
const SECURITY_DOC: &str = include_str!("../../../docs/security.md");

/// The `hcl` block of the "Vault / OpenBao" section of docs/security.md; there must be
/// exactly one (one copy of the policy).
fn documented_vault_policy() -> &'static str {
    let section = SECURITY_DOC
        .split("### Vault / OpenBao")
        .nth(1)
        .expect("docs/security.md has a Vault / OpenBao section");
    let section = section.split("\n### ").next().unwrap();
    let blocks: Vec<&str> = section
        .split("```hcl\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 1, "one copy of the Vault policy: {blocks:?}");
    blocks[0]
}

/// A token with exactly the documented policy (and `default`) runs every
/// SecretStore operation on `secret/app/...`, including check-and-set writes, tags, soft
/// delete, undelete and purge; and the policy is no wider than it says.
#[tokio::test]
async fn the_documented_policy_allows_every_store_operation() {
    let env = ItestEnv::load();
    assert_eq!(
        env.vault_kv_mount, "secret",
        "the documented policy names the mount `secret`"
    );
    let policy_text = documented_vault_policy();
    let name = raw::unique("documented-policy");
    let created = raw::vault(
        &env.vault_addr,
        Some(&env.vault_token),
        None,
        Method::PUT,
        &format!("sys/policies/acl/{name}"),
        Some(&json!({ "policy": policy_text })),
    )
    .await;
    assert!(created.status.is_success(), "policy: {}", created.body);
    let token = raw::vault(
        &env.vault_addr,
        Some(&env.vault_token),
        None,
        Method::POST,
        "auth/token/create",
        Some(&json!({"policies": [name], "ttl": "10m"})),
    )
    .await;
    assert!(token.status.is_success(), "token: {}", token.body);
    let token = token.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = VaultClient::builder()
        .address(&env.vault_addr)
        .token(token.as_str())
        .build()
        .unwrap();
    let info = client.lookup_self().await.unwrap();
    let mut policies = info.policies.clone();
    policies.sort();
    let mut want = vec!["default".to_owned(), name.clone()];
    want.sort();
    assert_eq!(policies, want, "only the documented policy and default");
    let store = VaultStore::new(&client, "secret").unwrap();

    let base = format!("app/{}", raw::unique("policy"));
    let k = key(&format!("{base}/db/password"));
    let other = key(&format!("{base}/other"));
    // put, then a check-and-set put with description and tags (metadata write).
    let v1 = store
        .put_with(
            &k,
            SecretValue::from("first"),
            &PutOptions::default().if_absent(),
        )
        .await
        .unwrap();
    let v2 = store
        .put_with(
            &k,
            SecretValue::from("second"),
            &PutOptions::default()
                .if_version(v1.clone())
                .with_metadata(Metadata::with_description("db").tag("team", "core")),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .put_with(
                &k,
                SecretValue::from("late"),
                &PutOptions::default().if_version(v1.clone())
            )
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    store.put(&other, SecretValue::from("o")).await.unwrap();
    // get, get_version, get_many
    let got = store.get(&k).await.unwrap();
    assert_eq!(got.value, SecretValue::from("second"));
    assert_eq!(got.metadata.tags["team"], "core");
    assert_eq!(
        store.get_version(&k, &v1).await.unwrap().value,
        SecretValue::from("first")
    );
    let many = store.get_many(&[k.clone(), other.clone()]).await;
    assert!(many.iter().all(Result::is_ok), "{many:?}");
    // versions, list
    assert_eq!(store.versions(&k).await.unwrap().len(), 2);
    assert_eq!(
        store.list(&format!("{base}/")).await.unwrap(),
        [k.clone(), other.clone()]
    );
    // delete, undelete, purge
    store.delete(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    store.undelete(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().version, v2);
    store.purge(&k).await.unwrap();
    store.purge(&other).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);

    // No wider than documented: outside app/ is refused.
    let outside = key(&format!("strongroom-itest/{}", raw::unique("outside")));
    let refused = store
        .put(&outside, SecretValue::from("x"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
}
