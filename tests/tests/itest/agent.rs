//! `strongroom serve` as a process over the real servers, called the way its users call it:
//! plain HTTP from Rust and from Python's standard library (as the AWS Secrets Manager
//! Agent's documentation does). The refusals, single flight and the outage behaviour are
//! checked here against OpenBao and LocalStack; crates/agent's own tests cover the same
//! rules over an in-memory store.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use strongroom_itests::ItestEnv;

use crate::raw;
use crate::vault::{self, DevServer};

/// The SSRF token every test agent is started with.
const TOKEN: &str = "itest-agent-token-5b1d0c";

/// A `strongroom serve` process on a free loopback port; killed on drop.
struct Served {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `strongroom ARGS serve` with only `vars` (and the token) in its environment,
    /// and waits until `/ping` answers.
    fn start(args: &[&str], vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let addr = SocketAddr::from(([127, 0, 0, 1], vault::free_port()));
        let child = Command::new(crate::cli::binary())
            .args(args)
            .args(["serve", "--listen", &addr.to_string()])
            .env_clear()
            .env("AWS_TOKEN", TOKEN)
            .env("STRONGROOM_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start strongroom serve");
        let mut served = Self {
            child,
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) = http_get(addr, "/ping", &[]) {
                assert_eq!(body, "healthy");
                return served;
            }
            if let Some(status) = served.child.try_wait().unwrap() {
                panic!("serve exited ({status}): {}", served.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "serve never answered /ping: {}",
                served.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `target` with the token.
    fn get(&self, target: &str) -> (u16, String) {
        http_get(
            self.addr,
            target,
            &[("X-Aws-Parameters-Secrets-Token", TOKEN)],
        )
        .unwrap_or_else(|e| panic!("GET {target}: {e}"))
    }

    /// SIGTERM, then the exit status and the whole log.
    fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        (code, self.log_text())
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`): status and body.
fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head: {answer:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {head:?}")))?;
    Ok((status, body.to_owned()))
}

fn http_get(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", target, headers)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// What every backend must answer: both read forms, the Python caller, and the refusals.
fn answers_like_the_aws_agent(served: &Served, name: &str, value: &str) {
    for target in [
        format!("/secretsmanager/get?secretId={name}"),
        format!("/v1/{name}"),
    ] {
        let (status, body) = served.get(&target);
        assert_eq!(status, 200, "{target}: {body}");
        let doc = json_of(&body);
        assert_eq!(doc["Name"], name, "{body}");
        assert_eq!(doc["SecretString"], value);
        assert_eq!(doc["VersionStages"], json!(["AWSCURRENT"]));
        assert!(doc["VersionId"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(doc["ARN"].as_str().is_some_and(|a| a.starts_with("arn:")));
        assert!(doc["CreatedDate"].is_number(), "{body}");
    }

    // The caller the AWS agent's documentation shows: urllib with the token header.
    let script = format!(
        "import json, urllib.request\n\
         req = urllib.request.Request('http://{addr}/secretsmanager/get?secretId={name}')\n\
         req.add_header('X-Aws-Parameters-Secrets-Token', '{TOKEN}')\n\
         print(json.loads(urllib.request.urlopen(req).read())['SecretString'], end='')\n",
        addr = served.addr,
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), value);

    let target = format!("/secretsmanager/get?secretId={name}");
    type Headers<'h> = &'h [(&'h str, &'h str)];
    let refusals: [(&str, Headers<'_>, u16); 5] = [
        ("GET", &[], 403),
        ("GET", &[("X-Aws-Parameters-Secrets-Token", "wrong")], 403),
        (
            "GET",
            &[
                ("X-Aws-Parameters-Secrets-Token", TOKEN),
                ("X-Forwarded-For", "10.0.0.1"),
            ],
            400,
        ),
        ("POST", &[("X-Aws-Parameters-Secrets-Token", TOKEN)], 405),
        ("DELETE", &[("X-Vault-Token", TOKEN)], 405),
    ];
    for (method, headers, want) in refusals {
        let (status, body) = http_request(served.addr, method, &target, headers).unwrap();
        assert_eq!(status, want, "{method} {headers:?}: {body}");
        assert!(!body.contains(value), "a refusal carried the value: {body}");
    }
    let (status, _) = served.get("/secretsmanager/get?secretId=itest/agent/not-there");
    assert_eq!(status, 404);
    let (status, body) = served.get("/health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["status"], "healthy", "{body}");
    let (status, body) = served.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("strongroom_operations_total"), "{body}");
}

/// The Python interpreter the xtask's venvs are made with (on PATH, as the xtask needs).
fn python() -> String {
    std::env::var("STRONGROOM_ITEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The environment the CLI reads for the shared OpenBao.
fn vault_vars(env: &ItestEnv) -> Vec<(&'static str, String)> {
    vec![
        ("VAULT_ADDR", env.vault_addr.clone()),
        ("VAULT_TOKEN", env.vault_token.clone()),
        ("VAULT_KV_MOUNT", env.vault_kv_mount.clone()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The log of a stopped agent holds neither the value nor the token, and it exited 0.
fn stopped_cleanly(served: Served, value: &str) {
    let (code, log) = served.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(value), "the value reached the log: {log}");
    assert!(!log.contains(TOKEN), "the token reached the log: {log}");
}

#[test]
fn serve_over_openbao_answers_rust_and_python_callers() {
    let env = ItestEnv::load();
    let name = format!("{}/db", raw::unique("agent-vault"));
    let value = "agent-vault-value-81f2";
    let vars = vault_vars(&env);
    let put = Command::new(crate::cli::binary())
        .args(["--backend", "vault", "put", &name, "--value", value])
        .env_clear()
        .envs(borrowed(&vars))
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let served = Served::start(&["--backend", "vault"], &borrowed(&vars));
    answers_like_the_aws_agent(&served, &name, value);
    stopped_cleanly(served, value);
}

#[test]
fn serve_over_localstack_answers_rust_and_python_callers() {
    let env = ItestEnv::load();
    let prefix = format!("{}/", raw::unique("agent-aws"));
    let name = "api/key";
    let value = "agent-aws-value-5e07";
    let vars = [
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            env.aws_endpoint.as_str(),
        ),
        ("AWS_REGION", env.aws_region.as_str()),
        ("AWS_ACCESS_KEY_ID", env.aws_access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", env.aws_secret_access_key.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("STRONGROOM_AWS_PREFIX", prefix.as_str()),
    ];
    let put = Command::new(crate::cli::binary())
        .args(["--backend", "aws", "put", name, "--value", value])
        .env_clear()
        .envs(vars)
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let served = Served::start(&["--backend", "aws"], &vars);
    answers_like_the_aws_agent(&served, name, value);
    stopped_cleanly(served, value);
}

/// A private dev server with a file audit device, so the test can count the reads that
/// really reached OpenBao.
pub(crate) async fn audited_dev_server(dir: &Path) -> (DevServer, String, PathBuf) {
    let root = raw::unique("root");
    let audit = dir.join("audit.log");
    let config = format!(
        "audit \"file\" \"itest\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        audit.display()
    );
    let server = vault::start_dev_server_with(vault::free_port(), &root, Some(&config));
    vault::wait_until_writable(&server.addr, &root).await;
    (server, root, audit)
}

/// KV v2 reads of `secret/data/{key}` in OpenBao's audit log.
fn audited_reads(audit: &Path, key: &str) -> usize {
    let path = format!("secret/data/{key}");
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["type"] == "request"
                && entry["request"]["operation"] == "read"
                && entry["request"]["path"] == path.as_str()
        })
        .count()
}

async fn write_kv(server: &DevServer, root: &str, key: &str, value: &str) {
    let reply = raw::vault(
        &server.addr,
        Some(root),
        None,
        Method::POST,
        &format!("secret/data/{key}"),
        Some(&json!({"data": {"value": value}})),
    )
    .await;
    assert!(reply.status.is_success(), "write {key}: {}", reply.body);
}

/// One thousand callers of one cold secret at once: OpenBao's own audit log shows exactly
/// one read of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_callers_cause_one_openbao_read() {
    let dir = tempfile::tempdir().unwrap();
    let (server, root, audit) = audited_dev_server(dir.path()).await;
    let value = "cold-value-77aa";
    write_kv(&server, &root, "agent/cold", value).await;
    let served = Served::start(
        &["--backend", "vault"],
        &[("VAULT_ADDR", &server.addr), ("VAULT_TOKEN", &root)],
    );
    let addr = served.addr;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(1000));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                http_get(
                    addr,
                    "/v1/agent/cold",
                    &[("X-Aws-Parameters-Secrets-Token", TOKEN)],
                )
            })
        })
        .collect();
    let mut answered = 0;
    for caller in callers {
        let (status, body) = caller.join().unwrap().expect("a caller's request failed");
        assert_eq!(status, 200, "{body}");
        assert_eq!(json_of(&body)["SecretString"], value);
        answered += 1;
    }
    assert_eq!(answered, 1000);
    assert_eq!(
        audited_reads(&audit, "agent/cold"),
        1,
        "OpenBao saw more than one read of the cold secret"
    );
    stopped_cleanly(served, value);
}

/// With OpenBao paused, a secret the agent has read is still served (stale, from the
/// cache) and one it never read gets 503, each within the request timeout and retry budget;
/// after the resume a fresh value is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_openbao_paused_the_agent_answers_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (server, root, _audit) = audited_dev_server(dir.path()).await;
    write_kv(&server, &root, "agent/warm", "warm-value-1").await;
    write_kv(&server, &root, "agent/never-read", "cold-value-1").await;
    let served = Served::start(
        &["--backend", "vault"],
        &[
            ("VAULT_ADDR", &server.addr),
            ("VAULT_TOKEN", &root),
            ("STRONGROOM_CACHE_TTL", "1"),
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "1"),
            ("STRONGROOM_RETRY_MAX_TOTAL_SECS", "2"),
        ],
    );
    let (status, body) = served.get("/v1/agent/warm");
    assert_eq!(
        (status, json_of(&body)["SecretString"].clone()),
        (200, json!("warm-value-1"))
    );

    vault::signal(&server, "-STOP");
    // Past the TTL, so the answer must come from the stale entry, not a fresh one.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (status, body) = served.get("/v1/agent/warm");
    let stale_took = started.elapsed();
    let (cold_status, cold_body) = served.get("/v1/agent/never-read");
    let (health_status, health) = served.get("/health");
    vault::signal(&server, "-CONT");

    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["SecretString"], "warm-value-1");
    assert!(
        stale_took < Duration::from_secs(10),
        "a stale answer took {stale_took:?}"
    );
    assert_eq!(cold_status, 503, "{cold_body}");
    assert!(!cold_body.contains("cold-value-1"));
    assert_eq!(health_status, 200, "{health}");
    assert_eq!(json_of(&health)["status"], "degraded", "{health}");

    // Back up: a new version is seen once the TTL has passed.
    write_kv(&server, &root, "agent/warm", "warm-value-2").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = served.get("/v1/agent/warm");
        if status == 200 && json_of(&body)["SecretString"] == "warm-value-2" {
            break;
        }
        assert!(Instant::now() < deadline, "never saw the new value: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    stopped_cleanly(served, "warm-value");
}
