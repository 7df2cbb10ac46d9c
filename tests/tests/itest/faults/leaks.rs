//! No secret reaches logs, audit, errors or Debug output: every operation of every backend (file, env and directory stores,
//! Vault with a static token and with AppRole, the facade with its audit file on over both a
//! file store and Vault), successes and failures, with tracing at TRACE captured into a
//! buffer. Everything a user or an operator could see (the captured logs, the audit file,
//! every error with `{}` and `{:?}`, the `Debug` of every handle and every result) is then
//! searched for the secret values, the master key (raw and base64), the passphrase, the
//! Vault root token, the AppRole secret_id and the token it logs in with. None may appear.
//!
//! AWS Secrets Manager runs on LocalStack and on moto (whose signatures are checked).
//!
//! Each operation that should succeed is checked to have succeeded: a run in which every
//! call failed early would have nothing to leak and would prove nothing.

use http::Method;
use serde_json::json;
use strongroom_aws::SecretsManagerStore;
use strongroom_core::{PutOptions, SecretStore, SecretValue};
use strongroom_envelope::{MasterKey, Passphrase};
use strongroom_facade::Secrets;
use strongroom_itests::ItestEnv;
use strongroom_local::{DirStore, EnvStore, FileStore};
use strongroom_vault::{AppRole, Credential, RenewPolicy, VaultClient, VaultStore};

use super::key;
use crate::raw;

/// Everything shown: results and errors with `{}` and `{:?}`.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn result<T: std::fmt::Debug, E: std::fmt::Display + std::fmt::Debug>(
        &mut self,
        result: &Result<T, E>,
    ) {
        match result {
            Ok(v) => self.0.push(format!("{v:?}")),
            Err(e) => self.0.push(format!("{e} {e:?}")),
        }
    }

    fn debug(&mut self, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
    }
}

/// Every `SecretStore` operation on `store`, including ones that fail. A writable store must
/// take the writes and hand the value back; a read-only one must refuse them as unsupported.
async fn every_operation(store: &dyn SecretStore, base: &str, value: &str, shown: &mut Shown) {
    let k = key(&format!("{base}/db/password"));
    let missing = key(&format!("{base}/missing"));
    let put = store.put(&k, SecretValue::from(value)).await;
    if store.capabilities().write {
        assert!(put.is_ok(), "{}: put failed: {put:?}", store.backend());
        let read = store.get(&k).await;
        assert_eq!(
            read.as_ref().map(|s| s.value.expose().to_vec()).ok(),
            Some(value.as_bytes().to_vec()),
            "{}: the value written does not read back",
            store.backend()
        );
    } else {
        assert!(
            matches!(put, Err(strongroom_core::Error::Unsupported { .. })),
            "{}: a read-only store took a write: {put:?}",
            store.backend()
        );
    }
    shown.result(&put);
    let v2 = store
        .put_with(
            &k,
            SecretValue::from(format!("{value}-2")),
            &PutOptions::default(),
        )
        .await;
    shown.result(&v2);
    if let Ok(v1) = &put {
        // A failed check-and-set.
        shown.result(
            &store
                .put_with(
                    &k,
                    SecretValue::from(format!("{value}-cas")),
                    &PutOptions::default().if_version(v1.clone()),
                )
                .await,
        );
        shown.result(&store.get_version(&k, v1).await);
    }
    shown.result(&store.get(&k).await);
    shown.result(&store.get(&missing).await);
    shown.result(&store.list(base).await);
    shown.result(&store.versions(&k).await);
    for r in store.get_many(&[k.clone(), missing.clone()]).await {
        shown.result(&r);
    }
    shown.result(&store.delete(&k).await);
    shown.result(&store.get(&k).await);
    shown.result(&store.undelete(&k).await);
    shown.result(&store.purge(&k).await);
    shown.debug(&store.capabilities());
}

#[tokio::test(flavor = "current_thread")]
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
async fn no_secret_reaches_logs_audit_errors_or_debug_output() {
    let env = ItestEnv::load();
    let capture = crate::support::capture();

    let unique = raw::unique("leak");
    let value = format!("leak-value-{unique}");
    let passphrase_text = format!("leak-passphrase-{unique}");
    let mut master_bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut master_bytes).unwrap();
    let master = MasterKey::from_bytes(&master_bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut shown = Shown::default();

    // File store: every operation, a key rotation to a passphrase, a wrong key.
    let path = dir.path().join("s.enc");
    let file = FileStore::create(&path, master.clone()).unwrap();
    every_operation(&file, "file", &value, &mut shown).await;
    file.put(&key("file/kept"), SecretValue::from(value.as_str()))
        .await
        .unwrap();
    let passphrase = Passphrase::new(passphrase_text.as_str()).with_iterations(1_000);
    shown.debug(&passphrase);
    shown.result(&file.rotate_key(passphrase).await);
    shown.result(&FileStore::open(&path, master.clone()));
    shown.result(&FileStore::open(
        &path,
        Passphrase::new("wrong").with_iterations(1_000),
    ));
    shown.debug(&file);
    shown.debug(&master);

    // Environment and directory stores (read-only: writes fail).
    let env_store = EnvStore::from_vars([("LEAK_DB_PASSWORD", value.as_str())]);
    every_operation(&env_store, "leak", &value, &mut shown).await;
    shown.result(&env_store.get(&key("leak/db/password")).await);
    shown.debug(&env_store);
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("dir/db")).unwrap();
    std::fs::write(tree.join("dir/db/password"), &value).unwrap();
    let dir_store = DirStore::new(&tree).unwrap();
    every_operation(&dir_store, "dir", &value, &mut shown).await;
    shown.result(&dir_store.get(&key("dir/db/password")).await);
    shown.debug(&dir_store);

    // Vault with the root token and with AppRole (login, renewal policy, a denied path).
    let root = VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .build()
        .unwrap();
    let vault = VaultStore::new(&root, &env.vault_kv_mount).unwrap();
    every_operation(
        &vault,
        &format!("strongroom-itest/{unique}"),
        &value,
        &mut shown,
    )
    .await;
    shown.debug(&vault);
    shown.debug(&root);
    let approle = VaultClient::builder()
        .address(&env.vault_addr)
        .approle(AppRole::new(
            Credential::value(&env.approle_role_id),
            Credential::value(&env.approle_secret_id),
        ))
        .renew_policy(RenewPolicy::default())
        .build()
        .unwrap();
    let approle_store = VaultStore::new(&approle, &env.vault_kv_mount).unwrap();
    let allowed = format!("{}{unique}", env.vault_allowed_prefix);
    let allowed = allowed.trim_end_matches('/');
    every_operation(&approle_store, allowed, &value, &mut shown).await;
    shown.result(&approle_store.get(&key("strongroom-itest/denied")).await);
    shown.result(&approle.lookup_self().await);
    shown.debug(&approle);
    shown.debug(&approle_store);

    // AWS Secrets Manager: LocalStack for every operation, moto (signatures checked) with a
    // random secret key to search for, and a wrong key that is refused.
    let aws_store = |client| {
        SecretsManagerStore::builder()
            .client(client)
            .prefix(format!("strongroom-itest/{unique}/"))
            .build_lazy()
            .unwrap()
    };
    let localstack = aws_store(crate::aws::localstack(&env));
    every_operation(&localstack, "aws", &value, &mut shown).await;
    shown.debug(&localstack);
    let moto = aws_store(crate::aws::moto(&env, &env.moto_secret_access_key));
    every_operation(&moto, "moto", &value, &mut shown).await;
    shown.debug(&moto);
    let forged = aws_store(crate::aws::moto(&env, "wrong-secret-key-for-leak-test"));
    shown.result(&forged.get(&key("moto/x")).await);

    // The facade with the audit file on, over a file store and over Vault.
    let audit = dir.path().join("audit.jsonl");
    for (name, store) in [
        (
            "facade-file",
            Box::new(FileStore::create(dir.path().join("f.enc"), master.clone()).unwrap())
                as Box<dyn SecretStore>,
        ),
        (
            "facade-vault",
            Box::new(VaultStore::new(&root, &env.vault_kv_mount).unwrap()),
        ),
    ] {
        let secrets = Secrets::builder()
            .store(store)
            .audit_file(&audit)
            .build()
            .unwrap();
        let base = format!("strongroom-itest/{unique}/{name}");
        let k = key(&format!("{base}/db"));
        let json_value = json!({"user": "app", "password": value}).to_string();
        shown.result(&secrets.put(&k, json_value.as_str()).await);
        shown.result(&secrets.get(&k).await);
        shown.result(&secrets.get(&k).await); // a cache hit
        shown.result(&secrets.get_field(&k, "password").await.map(|_| ()));
        shown.result(&secrets.get_field(&k, "nope").await);
        shown.result(
            &secrets
                .get_json::<std::collections::BTreeMap<String, u32>>(&k)
                .await,
        );
        shown.result(&secrets.list(&base).await);
        shown.result(&secrets.versions(&k).await);
        shown.result(&secrets.rotate(&k).await);
        shown.result(&secrets.get("bad//key").await);
        shown.result(&secrets.delete(&k).await);
        shown.result(&secrets.get(&k).await);
        shown.debug(&secrets.health().await);
        shown.debug(&secrets.stats());
        shown.debug(&secrets);
        secrets.flush_audit();
    }
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        audit_text.lines().count() >= 20,
        "the audit file holds too little to be a real check:\n{audit_text}"
    );

    // A token AppRole logs in with, to search for it too. The tokens the clients above used
    // cannot be read back from Vault; the search for anything token-shaped below (the
    // prefix and a long run of token characters) is what catches those.
    let login = raw::vault(
        &env.vault_addr,
        None,
        None,
        Method::POST,
        "auth/approle/login",
        Some(&json!({"role_id": env.approle_role_id, "secret_id": env.approle_secret_id})),
    )
    .await
    .json();
    let sample_token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let token_prefix = sample_token.split('.').next().unwrap().to_owned() + ".";

    let logs = capture.text();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "no low-level event captured"
    );
    assert!(logs.contains("secret access"), "no access event captured");
    let everything = format!("{logs}\n{audit_text}\n{}", shown.0.join("\n"));
    assert!(
        everything.contains(&unique),
        "the key names used should be visible (they are not secret)"
    );
    let master_b64 = master.to_base64();
    let needles: Vec<(&str, String)> = vec![
        ("secret value", value.clone()),
        ("passphrase", passphrase_text.clone()),
        ("master key (base64)", master_b64.to_string()),
        ("Vault root token", env.vault_token.clone()),
        ("AppRole secret_id", env.approle_secret_id.clone()),
        ("AppRole token", sample_token.clone()),
        ("moto secret access key", env.moto_secret_access_key.clone()),
        (
            "a refused secret access key",
            "wrong-secret-key-for-leak-test".to_owned(),
        ),
    ];
    for (what, needle) in &needles {
        assert!(!everything.contains(needle.as_str()), "the {what} leaked");
    }
    // The raw master key, as bytes and as the decimal list a derived Debug would print.
    assert!(
        !everything
            .as_bytes()
            .windows(master_bytes.len())
            .any(|w| w == master_bytes),
        "the raw master key leaked"
    );
    assert!(
        !everything.contains(&format!("{master_bytes:?}")[1..40]),
        "the master key leaked as a byte list"
    );
    // Any issued token: its prefix followed by a long run of token characters.
    for (i, _) in everything.match_indices(&token_prefix) {
        let run = everything[i + token_prefix.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count();
        assert!(run < 16, "something token-shaped leaked near byte {i}");
    }
    tracing::info!(
        bytes = everything.len(),
        lines = everything.lines().count(),
        "leak search done"
    );
}
