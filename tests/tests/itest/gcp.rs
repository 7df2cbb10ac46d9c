//! Google Cloud Secret Manager through `GcpStore` on drongo (the v1 REST API on loopback):
//! the conformance suite, directly and scoped; names with `/` stored under the encoded ids
//! the official client sees; versions; and interop with the official Python client
//! (google-cloud-secret-manager, REST transport, anonymous credentials) both ways, through
//! the store and through `strongroom --backend gcp`, binary values included.
//!
//! drongo accepts any bearer token, so what these tests prove about auth is only that the
//! store sends one; the token paths (service-account JWT, metadata server) are tested in
//! strongroom-gcp against responders that check them (docs/gcp.md says so plainly).

use std::process::{Command, Output, Stdio};

use strongroom_core::testing::conformance;
use strongroom_core::{
    Error, MAX_NAME_LEN, Metadata, PutOptions, Scoped, SecretName, SecretStore, SecretValue,
};
use strongroom_gcp::{Credentials, GcpStore};
use strongroom_itests::ItestEnv;

use crate::raw;

/// drongo's endpoint, the project the suites use, and the Python with the official client.
struct Drongo {
    endpoint: String,
    project: String,
    python: String,
}

fn drongo(env: &ItestEnv) -> Drongo {
    let var = |name: &str| {
        env.var(name)
            .unwrap_or_else(|| panic!("{name} is not set: rerun `cargo xtask itest`"))
            .to_owned()
    };
    Drongo {
        endpoint: var("STRONGROOM_ITEST_GCP_ENDPOINT"),
        project: var("STRONGROOM_ITEST_GCP_PROJECT"),
        python: var("STRONGROOM_ITEST_GCP_PYTHON"),
    }
}

/// A store on drongo. drongo checks no token; the store sends this one.
fn store(d: &Drongo) -> GcpStore {
    GcpStore::builder()
        .project(&d.project)
        .endpoint(&d.endpoint)
        .credentials(Credentials::access_token("drongo-accepts-any-token").expect("token"))
        .build()
        .expect("gcp store")
}

fn key(name: &str) -> SecretName {
    SecretName::new(name).expect("name")
}

/// Every secret under `folder/` purged, so drongo's state does not grow run after run.
async fn clean(store: &GcpStore, folder: &str) {
    for k in store.list(&format!("{folder}/")).await.expect("list") {
        store.purge(&k).await.expect("clean up");
    }
}

#[tokio::test]
async fn drongo_keeps_the_contract() {
    let d = drongo(&ItestEnv::load());
    let store = store(&d);
    assert_eq!(store.backend(), "gcp");
    let namespace = format!("conformance/{}", raw::unique("gcp"));
    let ns = namespace.as_str();
    // conformance::run but `longest_name` and `metadata`. drongo 0.8.0 drops annotations
    // (it stores and returns none), and the store keeps two things there: the name of a
    // secret whose id would pass 255 characters (its id is then a hash, so `list` cannot
    // name it on drongo) and the description. The tests below run what drongo can serve of
    // those two checks: the longest name by its hashed id, and tags as labels.
    conformance::read_write(&store, ns).await;
    conformance::values(&store, ns).await;
    conformance::list(&store, ns).await;
    conformance::versions(&store, ns).await;
    conformance::check_and_set(&store, ns).await;
    conformance::delete(&store, ns).await;
    let folder = format!("{namespace}/scoped/app");
    let scoped = Scoped::new(store.clone(), &folder).expect("prefix");
    conformance::scoped(&store, &scoped, &folder).await;
    clean(&store, &namespace).await;
}

/// The id of a name whose encoding passes 255 characters (docs/gcp.md): `___h` and the
/// lower-case hex SHA-256 of the name.
fn hashed(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("___h{hex}")
}

#[tokio::test]
async fn the_longest_name_round_trips_by_its_hashed_id() {
    let d = drongo(&ItestEnv::load());
    let store = store(&d);
    let base = format!("{}/longest/", raw::unique("gcp-long"));
    let name = format!("{base}{}", "k".repeat(MAX_NAME_LEN - base.len()));
    let k = key(&name);
    store
        .put(&k, "long".into())
        .await
        .expect("put the longest name");
    store
        .put(&k, "longer".into())
        .await
        .expect("a second version");
    assert_eq!(store.get(&k).await.expect("get").value.expose(), b"longer");
    let out = python(
        &d,
        &format!(
            "r = c.access_secret_version(request={{'name': P + '/secrets/{}/versions/1'}})\n\
             print(r.payload.data.decode())\n",
            hashed(&name)
        ),
    );
    assert_eq!(
        out, "long\n",
        "the official client finds it under the hashed id"
    );
    assert_eq!(store.versions(&k).await.expect("versions").len(), 2);
    store.purge(&k).await.expect("purge");
    assert!(matches!(store.get(&k).await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn version_states_are_what_the_official_client_sees() {
    let d = drongo(&ItestEnv::load());
    let store = store(&d);
    let folder = raw::unique("gcp-states").replace('_', "-");
    let k = key(&format!("{folder}/db/password"));
    let id = encoded(k.as_str());
    for value in ["one", "two", "three"] {
        store.put(&k, value.into()).await.expect("put");
    }
    let states = || {
        python(
            &d,
            &format!(
                "vs = c.list_secret_versions(request={{'parent': P + '/secrets/{id}'}})\n\
                 print(' '.join(sorted(v.name.rsplit('/', 1)[1] + '=' + v.state.name for v in vs)))\n\
                 print(sorted(c.get_secret(request={{'name': P + '/secrets/{id}'}}).labels.items()))\n"
            ),
        )
    };
    let v = |n: u64| strongroom_core::VersionId::from(n);

    store.disable_version(&k, &v(1)).await.expect("disable 1");
    store.destroy_version(&k, &v(2)).await.expect("destroy 2");
    assert_eq!(states(), "1=DISABLED 2=DESTROYED 3=ENABLED\n[]\n");
    let listed = store.versions(&k).await.expect("versions");
    let flags: Vec<(Option<u64>, bool, bool, bool)> = listed
        .iter()
        .map(|i| (i.version.as_u64(), i.deleted, i.destroyed, i.current))
        .collect();
    assert!(flags.contains(&(Some(1), true, false, false)), "{flags:?}");
    assert!(flags.contains(&(Some(2), false, true, false)), "{flags:?}");
    assert!(flags.contains(&(Some(3), false, false, true)), "{flags:?}");
    assert!(
        store.get_version(&k, &v(1)).await.is_err(),
        "a disabled version does not read"
    );
    assert!(
        store.get_version(&k, &v(2)).await.is_err(),
        "a destroyed version does not read"
    );
    store.enable_version(&k, &v(1)).await.expect("enable 1");
    assert_eq!(
        store
            .get_version(&k, &v(1))
            .await
            .expect("v1 again")
            .value
            .expose(),
        b"one"
    );

    // delete is recoverable: the current version disabled, the secret labelled.
    store.delete(&k).await.expect("delete");
    assert!(matches!(
        store.get(&k).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    assert_eq!(
        states(),
        "1=ENABLED 2=DESTROYED 3=DISABLED\n[('strongroom-deleted', '3')]\n"
    );
    store.undelete(&k).await.expect("undelete");
    assert_eq!(store.get(&k).await.expect("back").value.expose(), b"three");
    assert_eq!(states(), "1=ENABLED 2=DESTROYED 3=ENABLED\n[]\n");

    // Tags that are valid labels are labels the official client reads.
    let options = PutOptions::default().with_metadata(Metadata::default().tag("team", "core"));
    store
        .put_with(&k, "four".into(), &options)
        .await
        .expect("put with a tag");
    assert_eq!(
        store
            .get(&k)
            .await
            .expect("get")
            .metadata
            .tags
            .get("team")
            .map(String::as_str),
        Some("core")
    );
    assert!(states().ends_with("[('team', 'core')]\n"), "{}", states());
    store.purge(&k).await.expect("purge");
}

/// Runs `script` with the official client as `c` (and `P`, the project's resource name);
/// returns stdout.
fn python(d: &Drongo, script: &str) -> String {
    let program = format!(
        "import os, sys\n\
         from google.cloud import secretmanager\n\
         from google.api_core.client_options import ClientOptions\n\
         from google.auth.credentials import AnonymousCredentials\n\
         c = secretmanager.SecretManagerServiceClient(transport='rest', \
         credentials=AnonymousCredentials(), \
         client_options=ClientOptions(api_endpoint=os.environ['E']))\n\
         P = 'projects/' + os.environ['PROJECT']\n{script}"
    );
    let out = Command::new(&d.python)
        .arg("-c")
        .arg(program)
        .env("E", &d.endpoint)
        .env("PROJECT", &d.project)
        .stdin(Stdio::null())
        .output()
        .expect("run the drongo venv's python");
    assert!(
        out.status.success(),
        "google-cloud-secret-manager: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The id a folder name gets (docs/gcp.md): `__`, then `/` as `__` and `-` as itself.
fn encoded(name: &str) -> String {
    format!("__{}", name.replace('/', "__"))
}

#[tokio::test]
async fn the_official_client_and_the_store_read_each_other() {
    let d = drongo(&ItestEnv::load());
    let store = store(&d);
    // Letters, digits and `-` only: the ids stay readable to the test.
    let folder = raw::unique("gcp-py").replace('_', "-");

    // The official client writes two versions under a plain id and a binary value under
    // the encoded id of `FOLDER/from-python/bin`; the store reads them.
    let plain = format!("{folder}-plain");
    let bin_id = encoded(&format!("{folder}/from-python/bin"));
    python(
        &d,
        &format!(
            "for sid, values in [('{plain}', [b'first', 'zweite \\u00fc'.encode()]), \
             ('{bin_id}', [bytes([0, 1, 0xfe, 0xff])])]:\n    \
             s = c.create_secret(request={{'parent': P, 'secret_id': sid, \
             'secret': {{'replication': {{'automatic': {{}}}}}}}})\n    \
             for v in values:\n        \
             c.add_secret_version(request={{'parent': s.name, 'payload': {{'data': v}}}})\n"
        ),
    );
    let k = key(&plain);
    let got = store.get(&k).await.expect("get what the client wrote");
    assert_eq!(got.value.expose_str().expect("text"), "zweite ü");
    assert_eq!(got.version.as_u64(), Some(2));
    let first = store.get_version(&k, &1u64.into()).await.expect("v1");
    assert_eq!(first.value.expose(), b"first");
    let bin = key(&format!("{folder}/from-python/bin"));
    assert_eq!(
        store.get(&bin).await.expect("binary").value.expose(),
        [0, 1, 0xfe, 0xff]
    );
    assert_eq!(
        store.list(&format!("{folder}/")).await.expect("list"),
        std::slice::from_ref(&bin),
        "list decodes the client's encoded id back to the name"
    );

    // The store writes a name with `/` and a binary value; the client finds them under
    // the encoded ids and reads the bytes as they are.
    let text = key(&format!("{folder}/to-python/text"));
    store.put(&text, "plain text".into()).await.expect("put");
    let raw_bytes = key(&format!("{folder}/to-python/bin"));
    store
        .put(&raw_bytes, SecretValue::new(vec![0, 1, 0xfe, 0xff, b'\n']))
        .await
        .expect("put binary");
    store
        .put(&raw_bytes, SecretValue::new(vec![0xc3, 0x28]))
        .await
        .expect("second version");
    let out = python(
        &d,
        &format!(
            "for sid in ['{}', '{}']:\n    \
             r = c.access_secret_version(request={{'name': P + '/secrets/' + sid + '/versions/latest'}})\n    \
             print(r.name.rsplit('/', 1)[1], r.payload.data.hex())\n\
             v1 = c.access_secret_version(request={{'name': P + '/secrets/{}/versions/1'}})\n\
             print(v1.payload.data.hex())\n",
            encoded(text.as_str()),
            encoded(raw_bytes.as_str()),
            encoded(raw_bytes.as_str()),
        ),
    );
    assert_eq!(
        out,
        format!(
            "1 {}\n2 c328\n0001feff0a\n",
            b"plain text"
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    );
    store.purge(&k).await.expect("clean up");
    clean(&store, &folder).await;
    assert!(matches!(
        store.get(&text).await,
        Err(Error::NotFound { .. })
    ));
}

/// `strongroom --backend gcp` on drongo, configured the Google way.
fn gcp_cli(d: &Drongo, scope: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(crate::cli::binary());
    command
        .args(["--backend", "gcp"])
        .args(args)
        .env_clear()
        .env("GOOGLE_CLOUD_PROJECT", &d.project)
        .env("STRONGROOM_GCP_ENDPOINT", &d.endpoint)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "drongo-accepts-any-token")
        .stdin(Stdio::null());
    if let Some(scope) = scope {
        command.env("STRONGROOM_PREFIX", scope);
    }
    command.output().expect("start strongroom")
}

#[tokio::test]
async fn the_cli_reads_and_writes_gcp_and_the_official_client_agrees() {
    let d = drongo(&ItestEnv::load());
    let folder = raw::unique("gcp-cli").replace('_', "-");
    let run = |args: &[&str]| {
        let out = gcp_cli(&d, Some(&folder), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    assert_eq!(run(&["put", "db/password", "--value", "one"]).trim(), "1");
    run(&["put", "db/password", "--value", "two"]);
    assert_eq!(run(&["get", "db/password"]), "two");
    assert_eq!(run(&["get", "db/password", "--version", "1"]), "one");
    assert_eq!(run(&["ls"]), "db/password\n");

    // The client reads what the CLI wrote, and writes what the CLI reads (binary too).
    let id = encoded(&format!("{folder}/db/password"));
    let from_python = encoded(&format!("{folder}/from/python"));
    let out = python(
        &d,
        &format!(
            "r = c.access_secret_version(request={{'name': P + '/secrets/{id}/versions/latest'}})\n\
             print(r.payload.data.decode())\n\
             s = c.create_secret(request={{'parent': P, 'secret_id': '{from_python}', \
             'secret': {{'replication': {{'automatic': {{}}}}}}}})\n\
             c.add_secret_version(request={{'parent': s.name, 'payload': {{'data': bytes([0xff, 0, 0x80])}}}})\n"
        ),
    );
    assert_eq!(out, "two\n");
    let out = gcp_cli(&d, Some(&folder), &["get", "from/python"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        [0xff, 0, 0x80],
        "the CLI prints the bytes as they are"
    );

    // migrate from a StoreSpec `gcp:PROJECT/PREFIX` into another folder of the project.
    let target = raw::unique("gcp-migrate").replace('_', "-");
    let out = Command::new(crate::cli::binary())
        .args([
            "migrate",
            "--from",
            &format!("gcp:{}/{folder}", d.project),
            "--to",
            &format!("gcp:/{target}"),
        ])
        .env_clear()
        .env("GOOGLE_CLOUD_PROJECT", &d.project)
        .env("STRONGROOM_GCP_ENDPOINT", &d.endpoint)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "drongo-accepts-any-token")
        .stdin(Stdio::null())
        .output()
        .expect("start strongroom");
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = store(&d);
    let copied = Scoped::new(store.clone(), &target).expect("prefix");
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
        [key("db/password"), key("from/python")]
    );

    run(&["rm", "db/password"]);
    assert_ne!(
        gcp_cli(&d, Some(&folder), &["get", "db/password"])
            .status
            .code(),
        Some(0),
        "a deleted secret does not read"
    );
    clean(&store, &folder).await;
    clean(&store, &target).await;
}

#[tokio::test]
async fn a_missing_project_is_a_config_error_before_any_request() {
    let d = drongo(&ItestEnv::load());
    let out = Command::new(crate::cli::binary())
        .args(["--backend", "gcp", "get", "x"])
        .env_clear()
        .env("STRONGROOM_GCP_ENDPOINT", &d.endpoint)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "drongo-accepts-any-token")
        .stdin(Stdio::null())
        .output()
        .expect("start strongroom");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GOOGLE_CLOUD_PROJECT"), "{stderr}");
    assert!(
        !stderr.contains("drongo-accepts-any-token"),
        "the token never appears in errors"
    );
}

/// `strongroom --backend gcp serve`: the agent answers the AWS Secrets Manager Agent's
/// request for a secret held in Secret Manager (on drongo), and its log holds neither the
/// value nor the tokens.
#[tokio::test]
async fn serve_over_drongo_answers_the_agent_api() {
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    const AGENT_TOKEN: &str = "itest-gcp-agent-token-77a1";
    let d = drongo(&ItestEnv::load());
    let folder = raw::unique("gcp-agent").replace('_', "-");
    let value = "gcp-agent-value-3c9e";
    let put = gcp_cli(&d, Some(&folder), &["put", "api/key", "--value", value]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let addr: SocketAddr = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(crate::cli::binary())
        .args(["--backend", "gcp", "serve", "--listen", &addr.to_string()])
        .env_clear()
        .env("GOOGLE_CLOUD_PROJECT", &d.project)
        .env("STRONGROOM_GCP_ENDPOINT", &d.endpoint)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "drongo-accepts-any-token")
        .env("STRONGROOM_PREFIX", &folder)
        .env("AWS_TOKEN", AGENT_TOKEN)
        .env("STRONGROOM_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start strongroom serve");
    let request = |target: &str| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             X-Aws-Parameters-Secrets-Token: {AGENT_TOKEN}\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while request("/ping").map_or(true, |a| !a.starts_with("HTTP/1.1 200")) {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "serve exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "serve never answered /ping");
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = request("/secretsmanager/get?secretId=api/key").expect("get");
    let _ = child.kill();
    let _ = child.wait();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(json["SecretString"], value);
    assert_eq!(json["Name"], "api/key");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains(value),
        "the value reached the log: {logged}"
    );
    assert!(
        !logged.contains("drongo-accepts-any-token"),
        "the token reached the log"
    );

    let store = store(&d);
    store
        .purge(&key(&format!("{folder}/api/key")))
        .await
        .expect("clean up");
}
