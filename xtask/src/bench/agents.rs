//! Local agents side by side: `strongroom serve` and OpenBao's own `bao proxy`, both in
//! front of the same OpenBao, called by the same HTTP client (`strongroom-bench-peers
//! http-load`: the same number of kept-alive connections, interleaved rounds), plus OpenBao
//! itself as the floor a forwarding proxy cannot beat. Then the agent's resident memory
//! with [`MEMORY_SECRETS`] secrets cached, next to the proxy's after the same reads.
//!
//! `bao proxy` caches only leased secrets and tokens it created; a KV v2 read goes through
//! to the server every time (OpenBao's proxy caching docs), which is what its users get.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::layout;

/// Connections the load generator keeps open to each target.
const CONNECTIONS: usize = 16;
/// Seconds of load per target per round, and rounds.
const SECONDS: f64 = 5.0;
const ROUNDS: usize = 3;
/// Secrets read through each agent before its resident memory is measured.
pub(crate) const MEMORY_SECRETS: usize = 10_000;
/// The SSRF token the agent is started with.
const TOKEN: &str = "bench-agent-token";
/// A 64-byte value, like the other end-to-end benchmarks.
const VALUE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A child process killed (and reaped) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Resident set size from /proc, in KiB.
    fn rss_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .map_err(|e| format!("cannot read the status of pid {}: {e}", self.0.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS in /proc/PID/status".to_owned())
    }
}

fn free_addr() -> Result<SocketAddr, String> {
    let port = crate::services::free_port(&[])?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Waits until `addr` answers `GET path` with 200.
fn wait_ready(addr: SocketAddr, path: &str, child: &mut Running, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if crate::http::request(addr, "GET", path, &[], "").is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("{what} exited early ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} never became ready on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs one `strongroom-bench-peers` mode and parses its JSON line.
fn peers(bin: &Path, args: &[String]) -> Result<Value, String> {
    let what = format!("peers {}", args.first().map_or("", String::as_str));
    super::json_line(&super::run_ok(Command::new(bin).args(args), &what)?, &what)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The comparison; `env` is the running services' environment, `cli` the release
/// `strongroom` binary, `bao` the `bao` binary.
pub(crate) fn run(
    peers_bin: &Path,
    cli: &Path,
    bao: &Path,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Value, String> {
    let vault_addr = env.get("VAULT_ADDR").ok_or("no VAULT_ADDR")?.clone();
    let root = env.get("VAULT_TOKEN").ok_or("no VAULT_TOKEN")?.clone();
    let body = json!({ "data": { "value": VALUE } }).to_string();

    eprintln!("bench: agents: seeding {MEMORY_SECRETS} secrets in OpenBao");
    let kv = format!("{vault_addr}/v1/secret/data/bench-agent/");
    peers(
        peers_bin,
        &[
            strings(&["http-put", "16"]),
            vec![kv.clone(), MEMORY_SECRETS.to_string()],
            strings(&["X-Vault-Token", &root, &body]),
        ]
        .concat(),
    )?;

    let dir = layout::target_dir().join("bench").join("agents");
    layout::ensure_dir(&dir)?;
    let agent_addr = free_addr()?;
    let mut agent = Running(
        Command::new(cli)
            .args(["--backend", "vault", "serve", "--listen"])
            .arg(agent_addr.to_string())
            .env_clear()
            .env("VAULT_ADDR", &vault_addr)
            .env("VAULT_TOKEN", &root)
            .env("AWS_TOKEN", TOKEN)
            // No per-read audit line on stderr: the proxy logs nothing per request either.
            .env("STRONGROOM_LOG", "warn")
            .env(
                "STRONGROOM_CACHE_MAX_ENTRIES",
                (MEMORY_SECRETS * 2).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log(&dir, "serve.log")?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cli.display()))?,
    );
    wait_ready(agent_addr, "/ping", &mut agent, "strongroom serve")?;

    let proxy_addr = free_addr()?;
    let config = dir.join("proxy.hcl");
    std::fs::write(
        &config,
        format!(
            "vault {{\n  address = \"{vault_addr}\"\n}}\n\
             listener \"tcp\" {{\n  address = \"{proxy_addr}\"\n  tls_disable = true\n}}\n\
             api_proxy {{\n  use_auto_auth_token = false\n}}\n"
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut proxy = Running(
        Command::new(bao)
            .args(["proxy", &format!("-config={}", config.display())])
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log(&dir, "proxy.log")?)
            .spawn()
            .map_err(|e| format!("cannot start bao proxy: {e}"))?,
    );
    wait_ready(proxy_addr, "/v1/sys/health", &mut proxy, "bao proxy")?;

    eprintln!(
        "bench: agents: {CONNECTIONS} connections, {ROUNDS} rounds of {SECONDS} s per target"
    );
    let hot = "bench-agent/0";
    let load = peers(
        peers_bin,
        &[
            strings(&[
                "http-load",
                &CONNECTIONS.to_string(),
                &SECONDS.to_string(),
                &ROUNDS.to_string(),
            ]),
            strings(&[
                "strongroom serve",
                &format!("http://{agent_addr}/v1/{hot}"),
                "X-Aws-Parameters-Secrets-Token",
                TOKEN,
            ]),
            strings(&[
                "bao proxy",
                &format!("http://{proxy_addr}/v1/secret/data/{hot}"),
                "X-Vault-Token",
                &root,
            ]),
            strings(&[
                "OpenBao direct",
                &format!("{vault_addr}/v1/secret/data/{hot}"),
                "X-Vault-Token",
                &root,
            ]),
        ]
        .concat(),
    )?;

    eprintln!("bench: agents: resident memory after reading {MEMORY_SECRETS} secrets");
    let before = (agent.rss_kib()?, proxy.rss_kib()?);
    for (url, header, token) in [
        (
            format!("http://{agent_addr}/v1/bench-agent/"),
            "X-Aws-Parameters-Secrets-Token",
            TOKEN,
        ),
        (
            format!("http://{proxy_addr}/v1/secret/data/bench-agent/"),
            "X-Vault-Token",
            root.as_str(),
        ),
    ] {
        peers(
            peers_bin,
            &strings(&[
                "http-sweep",
                "16",
                &url,
                &MEMORY_SECRETS.to_string(),
                header,
                token,
            ]),
        )?;
    }
    let after = (agent.rss_kib()?, proxy.rss_kib()?);
    Ok(json!({
        "load": load,
        "connections": CONNECTIONS,
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "memory": {
            "secrets": MEMORY_SECRETS,
            "agent_kib_before": before.0,
            "agent_kib_after": after.0,
            "proxy_kib_before": before.1,
            "proxy_kib_after": after.1,
        },
    }))
}

fn log(dir: &Path, name: &str) -> Result<std::fs::File, String> {
    let path = dir.join(name);
    std::fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// The table for docs/performance.md.
pub(crate) fn render(result: &Value) -> String {
    let load = &result["load"];
    let row = |name: &str| {
        let r = &load[name];
        (
            r["rps"].as_f64().unwrap_or(f64::NAN),
            r["p50_us"].as_f64().unwrap_or(f64::NAN),
            r["p99_us"].as_f64().unwrap_or(f64::NAN),
        )
    };
    let agent = row("strongroom serve");
    let mut out = format!(
        "### Local agents: `strongroom serve` and `bao proxy` in front of the same OpenBao\n\n\
         The same client (`strongroom-bench-peers http-load`), {} kept-alive connections, {} \
         rounds of {} s per target, interleaved; one 64-byte KV v2 secret read over and over. \
         `bao proxy` forwards every KV v2 read (it caches only leased secrets); the agent \
         answers from its cache.\n\n\
         | target | requests/s | p50 | p99 | requests/s vs agent | p99 vs agent |\n\
         |---|---|---|---|---|---|\n",
        result["connections"], result["rounds"], result["seconds"]
    );
    for name in ["strongroom serve", "bao proxy", "OpenBao direct"] {
        let (rps, p50, p99) = row(name);
        out.push_str(&format!(
            "| {name} | {rps:.0} | {p50:.0} µs | {p99:.0} µs | {:.2}x | {:.2}x |\n",
            rps / agent.0,
            p99 / agent.2
        ));
    }
    let memory = &result["memory"];
    let mib = |k: &str| memory[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
    out.push_str(&format!(
        "\nResident memory after reading {} different secrets through each (VmRSS): agent \
         {:.1} MiB (at start {:.1} MiB), bao proxy {:.1} MiB (at start {:.1} MiB).\n",
        memory["secrets"],
        mib("agent_kib_after"),
        mib("agent_kib_before"),
        mib("proxy_kib_after"),
        mib("proxy_kib_before"),
    ));
    out
}
