//! LocalStack community in host mode (no container): Secrets Manager and STS on one port.
//!
//! LocalStack does not check SigV4 signatures (moto does that, see [`crate::moto`]); the
//! suites use it for Secrets Manager behaviour. Nothing needs seeding, but the first call
//! to each service loads its provider (seconds on a cold container), so [`warm`] makes
//! those first calls before any suite's request timeout is running.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::http;
use crate::process::Launch;

/// How to start LocalStack on `port`, keeping its state under `volume`.
pub(crate) fn launch(venv: &Path, port: u16, volume: &Path) -> Launch {
    let listen = format!("127.0.0.1:{port}");
    Launch {
        program: venv.join("bin/python"),
        args: vec!["-m".into(), "localstack.runtime.main".into()],
        env: server_env(&listen, &listen, &volume.display().to_string()),
        log: crate::layout::log_file("localstack"),
    }
}

/// LocalStack's settings on either runtime: listen on `listen`, advertise `host` (the
/// address the suites reach it at), keep state under `volume`.
pub(crate) fn server_env(listen: &str, host: &str, volume: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| env.insert(k.to_owned(), v.to_owned());
    set("GATEWAY_LISTEN", listen);
    set("LOCALSTACK_HOST", host);
    set("SERVICES", "secretsmanager,sts");
    set("LOCALSTACK_VOLUME_DIR", volume);
    // Loopback only: no analytics, no certificate download, no DNS server on port 53.
    set("DISABLE_EVENTS", "1");
    set("SKIP_SSL_CERT_DOWNLOAD", "1");
    set("SKIP_INFRA_DOWNLOADS", "1");
    set("DNS_ADDRESS", "0");
    env
}

/// Healthy once `/_localstack/health` answers 200 and lists Secrets Manager.
pub(crate) fn healthy(addr: SocketAddr) -> bool {
    http::request(addr, "GET", "/_localstack/health", &[], "")
        .is_ok_and(|r| r.status == 200 && r.body.contains("secretsmanager"))
}

/// How long the services' first calls may take in all, cold container included.
const WARM_BUDGET: Duration = Duration::from_secs(180);

/// Calls Secrets Manager (ListSecrets) and STS (GetCallerIdentity) until each answers 200,
/// so that LocalStack loads both providers now and not inside a suite's first request.
/// LocalStack routes on the `X-Amz-Target` header and the credential scope but checks no
/// signature, so the requests are not signed.
pub(crate) fn warm(addr: SocketAddr) -> Result<(), String> {
    let scope = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0",
            crate::moto::REGION
        )
    };
    let deadline = Instant::now() + WARM_BUDGET;
    let until_ok = |what: &str, headers: &[(&str, &str)], body: &str| loop {
        let last = match http::request(addr, "POST", "/", headers, body) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => format!("status {}: {}", r.status, r.body),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("LocalStack {what} never answered 200: {last}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    until_ok(
        "Secrets Manager ListSecrets",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "secretsmanager.ListSecrets"),
            ("Authorization", &scope("secretsmanager")),
        ],
        "{}",
    )?;
    until_ok(
        "STS GetCallerIdentity",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &scope("sts")),
        ],
        "Action=GetCallerIdentity&Version=2011-06-15",
    )?;
    Ok(())
}

/// The environment the suites read about LocalStack.
pub(crate) fn env(addr: SocketAddr) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "STRONGROOM_ITEST_AWS_ENDPOINT".to_owned(),
        format!("http://{addr}"),
    );
    // LocalStack accepts any key pair; these are the ones its docs use.
    env.insert(
        "STRONGROOM_ITEST_AWS_ACCESS_KEY_ID".to_owned(),
        "test".to_owned(),
    );
    env.insert(
        "STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY".to_owned(),
        "test".to_owned(),
    );
    env.insert("AWS_REGION".to_owned(), crate::moto::REGION.to_owned());
    env.insert("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned());
    env
}
