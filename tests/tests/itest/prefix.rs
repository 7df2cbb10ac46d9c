//! A prefix scopes a store to a folder, on the real servers: `prod/app`
//! is the folder `prod/app/` whichever way it is written; a write lands inside it with one
//! separator; nothing of a neighbour whose name merely starts with the same characters
//! (`prod/application/...`) can be listed, read, written or deleted. Each case reproduces a
//! bug that shipped: `prod/appdb/password` written, `lication/key` listed, `migrate --to
//! aws:prod/app` writing `prod/appweb/token`, `STRONGROOM_AWS_PREFIX` ignored by the library.

use std::process::{Command, Output, Stdio};

use strongroom_aws::{ListSecrets, SecretsManagerStore};
use strongroom_core::{ErrorKind, SecretName, SecretStore, SecretValue};
use strongroom_itests::ItestEnv;
use strongroom_vault::{VaultClient, VaultStore};

use crate::aws::localstack;
use crate::cli::binary;
use crate::raw;

fn key(name: &str) -> SecretName {
    SecretName::new(name).expect("valid key")
}

/// Every secret name LocalStack holds under `base`.
async fn aws_names(env: &ItestEnv, base: &str) -> Vec<String> {
    let mut names: Vec<String> = localstack(env)
        .list_secrets(&ListSecrets::with_prefix(base))
        .await
        .expect("list")
        .into_iter()
        .filter(|s| s.deleted.is_none())
        .map(|s| s.name)
        .filter(|name| name.starts_with(base))
        .collect();
    names.sort();
    names
}

async fn aws_store(env: &ItestEnv, prefix: &str) -> SecretsManagerStore {
    SecretsManagerStore::builder()
        .client(localstack(env))
        .prefix(prefix)
        .recovery_window_days(7)
        .build()
        .await
        .expect("store")
}

/// The checks every backend must pass: `app` and `application` under `base`.
async fn app_never_touches_application(app: &dyn SecretStore, application: &dyn SecretStore) {
    application
        .put(&key("key"), SecretValue::from("theirs"))
        .await
        .unwrap();
    app.put(&key("db/password"), SecretValue::from("ours"))
        .await
        .unwrap();
    assert_eq!(app.list("").await.unwrap(), [key("db/password")]);
    assert!(app.list("lication").await.unwrap().is_empty());
    assert_eq!(application.list("").await.unwrap(), [key("key")]);
    for err in [
        app.get(&key("lication/key")).await.unwrap_err(),
        app.delete(&key("lication/key")).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    // A write through `app` under the neighbour's tail lands inside `app`'s folder.
    app.put(&key("lication/key"), SecretValue::from("ours too"))
        .await
        .unwrap();
    assert_eq!(
        application.get(&key("key")).await.unwrap().value.expose(),
        b"theirs"
    );
    assert_eq!(application.list("").await.unwrap(), [key("key")]);
}

#[tokio::test]
async fn aws_prefix_is_a_folder_on_localstack() {
    let env = ItestEnv::load();
    let base = raw::unique("itest-prefix-aws");
    // Written three ways, one folder.
    let app = aws_store(&env, &format!("{base}/app")).await;
    let app_slash = aws_store(&env, &format!("/{base}/app/")).await;
    let application = aws_store(&env, &format!("{base}/application")).await;
    app_never_touches_application(&app, &application).await;
    assert_eq!(
        aws_names(&env, &base).await,
        [
            format!("{base}/app/db/password"),
            format!("{base}/app/lication/key"),
            format!("{base}/application/key"),
        ]
    );
    assert_eq!(
        app_slash
            .get(&key("db/password"))
            .await
            .unwrap()
            .value
            .expose(),
        b"ours"
    );
    for (store, name) in [
        (&app, "db/password"),
        (&app, "lication/key"),
        (&application, "key"),
    ] {
        store.purge(&key(name)).await.unwrap();
    }
}

fn vault_store(env: &ItestEnv, prefix: &str) -> VaultStore {
    VaultStore::builder()
        .client(|c| c.address(&env.vault_addr).token(env.vault_token.as_str()))
        .mount(&env.vault_kv_mount)
        .prefix(prefix)
        .build()
        .expect("vault store")
}

#[tokio::test]
async fn vault_prefix_is_a_folder_on_openbao() {
    let env = ItestEnv::load();
    let base = format!("strongroom-itest/{}", raw::unique("prefix"));
    let app = vault_store(&env, &format!("{base}/app"));
    let app_slash = vault_store(&env, &format!("/{base}/app/"));
    let application = vault_store(&env, &format!("{base}/application"));
    app_never_touches_application(&app, &application).await;
    let kv = VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .build()
        .unwrap()
        .kv2(&env.vault_kv_mount)
        .unwrap();
    let mut paths = kv.walk(&format!("{base}/")).await.unwrap();
    paths.sort();
    assert_eq!(
        paths,
        [
            format!("{base}/app/db/password"),
            format!("{base}/app/lication/key"),
            format!("{base}/application/key"),
        ]
    );
    assert_eq!(
        app_slash
            .get(&key("db/password"))
            .await
            .unwrap()
            .value
            .expose(),
        b"ours"
    );
    // STRONGROOM_VAULT_PREFIX through from_lookup, the library's environment path.
    let from_env = VaultStore::from_lookup(|name| match name {
        "VAULT_ADDR" => Some(env.vault_addr.clone()),
        "VAULT_TOKEN" => Some(env.vault_token.clone()),
        "VAULT_KV_MOUNT" => Some(env.vault_kv_mount.clone()),
        "STRONGROOM_VAULT_PREFIX" => Some(format!("{base}/app/")),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        from_env.list("").await.unwrap(),
        [key("db/password"), key("lication/key")]
    );
    for (store, name) in [
        (&app, "db/password"),
        (&app, "lication/key"),
        (&application, "key"),
    ] {
        store.purge(&key(name)).await.unwrap();
    }
}

/// The CLI on LocalStack with `vars` set (besides the AWS connection).
fn aws_cli(env: &ItestEnv, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &env.aws_endpoint)
        .env("AWS_REGION", &env.aws_region)
        .env("AWS_ACCESS_KEY_ID", &env.aws_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &env.aws_secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("start strongroom")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn the_cli_and_migrate_keep_to_the_aws_folder() {
    let env = ItestEnv::load();
    let base = raw::unique("itest-prefix-cli");
    let other = aws_store(&env, &format!("{base}/application")).await;
    other
        .put(&key("key"), SecretValue::from("theirs"))
        .await
        .unwrap();

    let app_prefix = format!("{base}/app");
    let scoped = [("STRONGROOM_AWS_PREFIX", app_prefix.as_str())];
    ok(&aws_cli(
        &env,
        &scoped,
        &["--backend", "aws", "put", "db/password", "--value", "v"],
    ));
    assert_eq!(
        ok(&aws_cli(&env, &scoped, &["--backend", "aws", "ls"])),
        "db/password\n"
    );
    // --scope wins over the variable and means the same folder.
    assert_eq!(
        ok(&aws_cli(
            &env,
            &[("STRONGROOM_AWS_PREFIX", "elsewhere")],
            &[
                "--backend",
                "aws",
                "--scope",
                &format!("/{app_prefix}/"),
                "ls"
            ],
        )),
        "db/password\n"
    );

    // migrate --to aws:PREFIX writes inside the folder.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("s.enc");
    let local_vars = [("STRONGROOM_STORE", local.to_str().unwrap())];
    ok(&aws_cli(&env, &local_vars, &["init"]));
    ok(&aws_cli(
        &env,
        &local_vars,
        &["put", "web/token", "--value", "t"],
    ));
    ok(&aws_cli(
        &env,
        &local_vars,
        &[
            "migrate",
            "--from",
            &format!("local:{}", local.display()),
            "--to",
            &format!("aws:{app_prefix}"),
        ],
    ));
    assert_eq!(
        aws_names(&env, &base).await,
        [
            format!("{base}/app/db/password"),
            format!("{base}/app/web/token"),
            format!("{base}/application/key"),
        ]
    );
    let app = aws_store(&env, &app_prefix).await;
    for name in ["db/password", "web/token"] {
        app.purge(&key(name)).await.unwrap();
    }
    other.purge(&key("key")).await.unwrap();
}

#[test]
fn the_cli_keeps_to_the_vault_folder() {
    let env = ItestEnv::load();
    let base = format!("strongroom-itest/{}", raw::unique("prefix-cli"));
    let run = |prefix: &str, args: &[&str]| {
        let out = Command::new(binary())
            .args(["--backend", "vault"])
            .args(args)
            .env_clear()
            .env("VAULT_ADDR", &env.vault_addr)
            .env("VAULT_TOKEN", &env.vault_token)
            .env("VAULT_KV_MOUNT", &env.vault_kv_mount)
            .env("STRONGROOM_VAULT_PREFIX", prefix)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&out)
    };
    run(
        &format!("{base}/application"),
        &["put", "key", "--value", "theirs"],
    );
    run(
        &format!("{base}/app/"),
        &["put", "db/password", "--value", "ours"],
    );
    assert_eq!(run(&format!("{base}/app"), &["ls"]), "db/password\n");
    assert_eq!(run(&base, &["ls"]), "app/db/password\napplication/key\n");
    run(&format!("{base}/app"), &["rm", "--purge", "db/password"]);
    run(&format!("{base}/application"), &["rm", "--purge", "key"]);
}
