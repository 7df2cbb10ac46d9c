//! SSM Parameter Store through `SsmStore` on moto, which checks SigV4 signatures: the
//! calls the store makes (GetParameter with decryption and by version, PutParameter with
//! and without overwrite and with a named KMS key, GetParametersByPath, GetParameterHistory,
//! LabelParameterVersion, DeleteParameter), the value encoding, the refusals made before any
//! call, and interop with boto3 both ways.

use std::path::PathBuf;
use std::process::Command;

use strongroom_aws::ssm::{BINARY_MARKER, ParameterTier};
use strongroom_aws::{SsmClient, SsmStore};
use strongroom_core::{Error, NameProblem, PutOptions, SecretName, SecretStore, SecretValue};
use strongroom_itests::ItestEnv;
use strongroom_sigv4::{Credentials, StaticProvider};

use crate::raw;

fn client(env: &ItestEnv, secret_key: &str) -> SsmClient {
    SsmClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.moto_endpoint)
        .credentials(StaticProvider::new(Credentials::new(
            &env.moto_access_key_id,
            secret_key,
        )))
        .build()
        .expect("ssm client")
}

/// An SSM store on moto under a fresh folder.
fn store(env: &ItestEnv, name: &str) -> (SsmStore, String) {
    let folder = format!("itest/{}", raw::unique(name));
    let store = SsmStore::builder()
        .client(client(env, &env.moto_secret_access_key))
        .prefix(folder.as_str())
        .build_lazy()
        .expect("store");
    (store, folder)
}

fn key(name: &str) -> SecretName {
    SecretName::new(name).expect("name")
}

#[tokio::test]
async fn values_versions_and_labels_round_trip() {
    let env = ItestEnv::load();
    let (store, folder) = store(&env, "ssm-rt");
    let k = key("app/db/password");
    assert_eq!(
        store.parameter_name(&k),
        format!("/{folder}/app/db/password")
    );

    let v1 = store.put(&k, "hunter2".into()).await.expect("put");
    assert_eq!(v1.as_u64(), Some(1), "SSM numbers versions from 1");
    let got = store.get(&k).await.expect("get");
    assert_eq!(got.value.expose(), b"hunter2");
    assert_eq!(got.version, v1);
    assert!(
        got.created.is_some(),
        "LastModifiedDate is the creation time"
    );

    // Binary, empty and marker-lookalike values round-trip through the encoding.
    let binary: Vec<u8> = (0..=255u8).collect();
    let v2 = store
        .put(&k, SecretValue::new(binary.clone()))
        .await
        .expect("put binary");
    let got = store.get(&k).await.expect("get binary");
    assert!(got.value.expose() == binary && !got.value.is_text());
    assert_eq!(got.version, v2);
    let v3 = store
        .put(&k, SecretValue::new(Vec::new()))
        .await
        .expect("put empty");
    assert!(store.get(&k).await.expect("get empty").value.is_empty());
    let lookalike = format!("{BINARY_MARKER}aGk=");
    let v4 = store
        .put(&k, lookalike.as_str().into())
        .await
        .expect("put lookalike");
    assert_eq!(
        store.get(&k).await.expect("get").value.expose(),
        lookalike.as_bytes()
    );

    // Old versions by number; one never made is NotFound naming it.
    assert_eq!(
        store
            .get_version(&k, &v1)
            .await
            .expect("version 1")
            .value
            .expose(),
        b"hunter2"
    );
    let never = strongroom_core::VersionId::from(99u64);
    assert!(matches!(
        store.get_version(&k, &never).await,
        Err(Error::NotFound { version: Some(ref v), .. }) if *v == never
    ));

    let history = store.versions(&k).await.expect("history");
    let ids: Vec<_> = history.iter().map(|v| v.version.clone()).collect();
    assert_eq!(ids, [v1.clone(), v2.clone(), v3, v4.clone()]);
    assert!(history.last().is_some_and(|v| v.current));
    assert_eq!(history.iter().filter(|v| v.current).count(), 1);

    // Labels: LabelParameterVersion, then GetParameter `name:label` and the history.
    store
        .label(&k, &v2, &["blue".to_owned()])
        .await
        .expect("label");
    let blue = store.get_label(&k, "blue").await.expect("by label");
    assert_eq!(blue.version, v2);
    assert!(blue.value.expose() == binary);
    let history = store.versions(&k).await.expect("history");
    assert!(
        history
            .iter()
            .any(|v| v.version == v2 && v.labels == ["blue"]),
        "{history:?}"
    );
    assert!(matches!(
        store.get_label(&k, "green").await,
        Err(Error::NotFound { .. })
    ));

    store.delete(&k).await.expect("delete");
    assert!(matches!(
        store.get(&k).await,
        Err(Error::NotFound { deleted: false, .. })
    ));
    assert!(matches!(
        store.versions(&k).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete(&k).await,
        Err(Error::NotFound { .. })
    ));
}

/// SSM has no conditional overwrite, so the store offers no check-and-set: every
/// precondition is refused before any write, and nothing is written.
#[tokio::test]
async fn preconditions_are_refused_and_write_nothing() {
    let env = ItestEnv::load();
    let (store, _) = store(&env, "ssm-cas");
    assert!(!store.capabilities().check_and_set);
    let k = key("cas");
    let first = store.put(&k, "first".into()).await.expect("put");
    for options in [
        PutOptions::default().if_absent(),
        PutOptions::default().if_version(first.clone()),
    ] {
        assert!(
            matches!(
                store.put_with(&k, "refused".into(), &options).await,
                Err(Error::Unsupported { .. })
            ),
            "{options:?}"
        );
    }
    let got = store.get(&k).await.expect("get");
    assert_eq!((got.value.expose(), got.version), (&b"first"[..], first));
    assert_eq!(store.versions(&k).await.expect("history").len(), 1);
    store.purge(&k).await.expect("purge");
}

#[tokio::test]
async fn list_is_a_prefix_over_every_page() {
    let env = ItestEnv::load();
    let (store, _) = store(&env, "ssm-list");
    // 23 parameters: three pages of GetParametersByPath (10 per page).
    let mut names: Vec<String> = (0..20).map(|i| format!("many/p{i:02}")).collect();
    names.extend([
        "many/deep/er/x".to_owned(),
        "manyx".to_owned(),
        "other".to_owned(),
    ]);
    for name in &names {
        store.put(&key(name), "v".into()).await.expect("put");
    }
    let listed = store.list("many/").await.expect("list");
    assert_eq!(listed.len(), 21, "{listed:?}");
    assert!(listed.is_sorted());
    let listed = store.list("many").await.expect("list");
    assert_eq!(
        listed.len(),
        22,
        "a string prefix, not a folder: {listed:?}"
    );
    assert_eq!(store.list("").await.expect("list").len(), 23);
    assert!(store.list("nothing/").await.expect("list").is_empty());
    assert!(store.list("no such/").await.expect("list").is_empty());
    for name in &names {
        store.delete(&key(name)).await.expect("delete");
    }
    assert!(store.list("").await.expect("list").is_empty());
}

#[tokio::test]
async fn ssm_rules_are_refused_before_any_call() {
    let env = ItestEnv::load();
    let (store, _) = store(&env, "ssm-rules");
    for bad in ["with space", "pässwort", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"] {
        assert!(
            matches!(
                store.put(&key(bad), "v".into()).await,
                Err(Error::InvalidKey {
                    problem: NameProblem::Unsupported,
                    ..
                })
            ),
            "{bad}"
        );
    }
    let root = SsmStore::new(client(&env, &env.moto_secret_access_key));
    assert!(matches!(
        root.get(&key("aws/thing")).await,
        Err(Error::InvalidKey { .. })
    ));
    let k = key("big");
    assert!(matches!(
        store.put(&k, "x".repeat(4097).as_str().into()).await,
        Err(Error::InvalidValue { .. })
    ));
    store
        .put(&k, "x".repeat(4096).as_str().into())
        .await
        .expect("4096 bytes fit a standard parameter");
    let advanced = SsmStore::builder()
        .client(client(&env, &env.moto_secret_access_key))
        .prefix(store.scope().as_str())
        .tier(ParameterTier::Advanced)
        .build_lazy()
        .expect("advanced store");
    advanced
        .put(&k, "y".repeat(8192).as_str().into())
        .await
        .expect("8192 bytes fit an advanced parameter");
    assert_eq!(store.get(&k).await.expect("get").value.len(), 8192);
    assert!(matches!(
        advanced.put(&k, "y".repeat(8193).as_str().into()).await,
        Err(Error::InvalidValue { .. })
    ));
    store.delete(&k).await.expect("delete");
}

#[tokio::test]
async fn a_named_kms_key_is_used() {
    let env = ItestEnv::load();
    let folder = format!("itest/{}", raw::unique("ssm-kms"));
    let store = SsmStore::builder()
        .client(client(&env, &env.moto_secret_access_key))
        .prefix(folder.as_str())
        .kms_key_id("alias/aws/ssm")
        .build_lazy()
        .expect("store");
    let k = key("kms");
    store.put(&k, "enc".into()).await.expect("put with key");
    assert_eq!(store.get(&k).await.expect("get").value.expose(), b"enc");
    store.delete(&k).await.expect("delete");
}

#[tokio::test]
async fn a_wrong_secret_key_is_unauthenticated() {
    let env = ItestEnv::load();
    let store = SsmStore::new(client(&env, "not-the-secret-key"));
    match store.get(&key("itest/anything")).await {
        Err(Error::Unauthenticated { .. }) => {}
        other => panic!("a bad signature must be Unauthenticated, got {other:?}"),
    }
}

/// The moto venv's Python, which has boto3.
fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("xtask/venvs/moto/bin/python")
}

/// Runs `script` with boto3's SSM client on moto as `c`; returns stdout.
fn boto3(env: &ItestEnv, script: &str) -> String {
    let program = format!(
        "import boto3, os, sys\n\
         c = boto3.client('ssm', endpoint_url=os.environ['E'], region_name=os.environ['R'], \
         aws_access_key_id=os.environ['K'], aws_secret_access_key=os.environ['S'])\n{script}"
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(program)
        .env("E", &env.moto_endpoint)
        .env("R", &env.aws_region)
        .env("K", &env.moto_access_key_id)
        .env("S", &env.moto_secret_access_key)
        .output()
        .expect("run the moto venv's python");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn boto3_and_the_store_read_each_other() {
    let env = ItestEnv::load();
    let (store, folder) = store(&env, "ssm-boto3");
    // boto3 writes (two versions), the store reads.
    boto3(
        &env,
        &format!(
            "c.put_parameter(Name='/{folder}/from/boto3', Value='first', Type='SecureString')\n\
             c.put_parameter(Name='/{folder}/from/boto3', Value='zweite ü', Type='SecureString', Overwrite=True)\n"
        ),
    );
    let k = key("from/boto3");
    let got = store.get(&k).await.expect("get what boto3 wrote");
    assert_eq!(got.value.expose_str().expect("text"), "zweite ü");
    assert_eq!(got.version.as_u64(), Some(2));
    assert_eq!(
        store
            .get_version(&k, &1u64.into())
            .await
            .expect("v1")
            .value
            .expose(),
        b"first"
    );
    assert_eq!(
        store.list("from/").await.expect("list"),
        std::slice::from_ref(&k)
    );

    // The store writes; boto3 reads text as it is, and binary as the marker and base64.
    let text = key("to/boto3/text");
    store.put(&text, "plain text".into()).await.expect("put");
    let bin = key("to/boto3/bin");
    store
        .put(&bin, SecretValue::new(vec![0, 1, 0xfe, 0xff]))
        .await
        .expect("put binary");
    let out = boto3(
        &env,
        &format!(
            "for n in ['text', 'bin']:\n    \
             p = c.get_parameter(Name='/{folder}/to/boto3/' + n, WithDecryption=True)['Parameter']\n    \
             print(p['Type'], p['Version'], p['Value'])\n"
        ),
    );
    assert_eq!(
        out,
        format!("SecureString 1 plain text\nSecureString 1 {BINARY_MARKER}AAH+/w==\n")
    );
    for k in [k, text, bin] {
        store.delete(&k).await.expect("delete");
    }
}

/// `strongroom --backend ssm` on moto, configured the AWS way.
fn ssm_cli(env: &ItestEnv, prefix: &str, args: &[&str]) -> std::process::Output {
    Command::new(crate::cli::binary())
        .args(["--backend", "ssm"])
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL_SSM", &env.moto_endpoint)
        .env("AWS_REGION", &env.aws_region)
        .env("AWS_ACCESS_KEY_ID", &env.moto_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &env.moto_secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("STRONGROOM_SSM_PREFIX", prefix)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("start strongroom")
}

#[tokio::test]
async fn the_cli_reads_and_writes_ssm_and_boto3_agrees() {
    let env = ItestEnv::load();
    let folder = format!("itest/{}", raw::unique("ssm-cli"));
    let run = |args: &[&str]| {
        let out = ssm_cli(&env, &folder, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let first = run(&["put", "db/password", "--value", "one"]);
    assert_eq!(first.trim(), "1");
    run(&["put", "db/password", "--value", "two"]);
    assert_eq!(run(&["get", "db/password"]), "two");
    assert_eq!(run(&["get", "db/password", "--version", "1"]), "one");
    assert_eq!(run(&["ls"]), "db/password\n");
    // boto3 reads what the CLI wrote, and writes what the CLI reads.
    let out = boto3(
        &env,
        &format!(
            "print(c.get_parameter(Name='/{folder}/db/password', WithDecryption=True)['Parameter']['Value'])\n\
             c.put_parameter(Name='/{folder}/from/boto3', Value='b0t0', Type='SecureString')\n"
        ),
    );
    assert_eq!(out, "two\n");
    assert_eq!(run(&["get", "from/boto3"]), "b0t0");

    // migrate into a StoreSpec `ssm:/PREFIX`.
    let target = format!("itest/{}", raw::unique("ssm-migrate"));
    let out = Command::new(crate::cli::binary())
        .args([
            "migrate",
            "--from",
            &format!("ssm:/{folder}"),
            "--to",
            &format!("ssm:/{target}"),
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL_SSM", &env.moto_endpoint)
        .env("AWS_REGION", &env.aws_region)
        .env("AWS_ACCESS_KEY_ID", &env.moto_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &env.moto_secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("start strongroom");
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = SsmStore::builder()
        .client(client(&env, &env.moto_secret_access_key))
        .prefix(target.as_str())
        .build_lazy()
        .expect("store");
    assert_eq!(
        copied
            .get(&key("db/password"))
            .await
            .expect("migrated")
            .value
            .expose(),
        b"two"
    );
    assert_eq!(
        copied.list("").await.expect("list"),
        [key("db/password"), key("from/boto3")]
    );

    run(&["rm", "db/password"]);
    assert_eq!(
        ssm_cli(&env, &folder, &["get", "db/password"])
            .status
            .code(),
        Some(3),
        "a deleted parameter is not found"
    );
    run(&["rm", "from/boto3"]);
    for k in ["db/password", "from/boto3"] {
        copied.delete(&key(k)).await.expect("clean up");
    }
}

/// The store builder's AssumeRole on moto: the builder's own path (an STS client from the
/// environment it is given, the role provider on top of the seeded user's key), then a
/// write and a read signed with the role's session credentials, which moto checks against
/// the role's policy.
#[tokio::test]
async fn the_builder_assumes_a_role_as_secrets_manager_does() {
    let env = ItestEnv::load();
    let role_arn = env
        .var("STRONGROOM_ITEST_MOTO_ROLE_ARN")
        .expect("cargo xtask seeds a role in moto")
        .to_owned();
    // STS and SSM both at moto, through AWS_ENDPOINT_URL: nothing leaves loopback.
    let aws_env = strongroom_sigv4::Env::from_vars([
        ("AWS_ENDPOINT_URL", env.moto_endpoint.as_str()),
        ("AWS_REGION", env.aws_region.as_str()),
    ]);
    let folder = format!("itest/{}", raw::unique("ssm-role"));
    let store = SsmStore::builder()
        .env(aws_env)
        .credentials(StaticProvider::new(Credentials::new(
            &env.moto_access_key_id,
            &env.moto_secret_access_key,
        )))
        .assume_role(strongroom_aws::AssumeRoleRequest::new(&role_arn).session_name("itest-ssm"))
        .prefix(folder.as_str())
        .build()
        .await
        .expect("store with a role");
    let session = store
        .client()
        .credentials_provider()
        .provide_credentials()
        .await
        .expect("AssumeRole on moto");
    assert_ne!(session.access_key_id(), env.moto_access_key_id);
    assert!(session.session_token().is_some_and(|t| !t.is_empty()));

    let k = key("db/password");
    let version = store.put(&k, "via role".into()).await.unwrap();
    let got = store.get(&k).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "via role");
    assert_eq!(got.version, version);
    store.delete(&k).await.unwrap();
}
