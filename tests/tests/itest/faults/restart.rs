//! OpenBao SIGKILLed under load and restarted on the same port. Dev servers keep their data
//! in memory, so this one runs from a config file with integrated storage (`raft`, one node:
//! OpenBao 2.7 has no `file` backend) in a temporary directory, initialised and unsealed
//! through the HTTP API, and unsealed again after the restart.
//!
//! Each load task writes a fresh key per write (so KV v2's version limit never drops an old
//! one) and reads back earlier ones. After the restart every write the client acknowledged
//! must be there with its value; every failed call must be `Unavailable` and return within
//! the client's retry budget plus one request timeout.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use strongroom_core::{SecretStore, SecretValue};
use strongroom_vault::{RetryPolicy, VaultClient, VaultStore};

use super::{Tally, key};
use crate::raw;
use crate::support::bao_binary;
use crate::vault::free_port;

/// One OpenBao process over a data directory that outlives it.
struct Server {
    child: Child,
    config: std::path::PathBuf,
    home: tempfile::TempDir,
}

impl Server {
    fn start(config: &std::path::Path, home: tempfile::TempDir) -> Self {
        let child = Command::new(bao_binary())
            .args(["server", "-config"])
            .arg(config)
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao");
        Self {
            child,
            config: config.to_owned(),
            home,
        }
    }

    /// SIGKILL, then the same command again: same port, same data directory.
    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on unix
        self.child.wait().unwrap();
        self.child = Command::new(bao_binary())
            .args(["server", "-config"])
            .arg(&self.config)
            .env("HOME", self.home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart bao");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "bao never listened on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Unseals and waits until the node is active (raft elects itself leader).
async fn unseal_and_wait_active(addr: &str, unseal_key: &str, token: &str) {
    let unsealed = raw::vault(
        addr,
        None,
        None,
        Method::PUT,
        "sys/unseal",
        Some(&json!({"key": unseal_key})),
    )
    .await;
    assert!(unsealed.status.is_success(), "unseal: {}", unsealed.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = raw::vault(addr, Some(token), None, Method::GET, "sys/health", None).await;
        if health.status == http::StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never active: {} {}",
            health.status,
            health.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one load task until `stop`: returns its tally and the (key, value) pairs acknowledged.
async fn load(
    store: VaultStore,
    task: usize,
    stop: Arc<AtomicBool>,
) -> (Tally, Vec<(String, String)>) {
    let mut tally = Tally::default();
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let name = format!("load/t{task}/n{n}");
        let value = format!("t{task}-n{n}-value");
        let started = Instant::now();
        let put = store
            .put(&key(&name), SecretValue::from(value.as_str()))
            .await;
        tally.record(put.as_ref().map(|_| ()), started.elapsed());
        if put.is_ok() {
            acked.push((name, value));
        }
        if let Some((name, value)) = acked.get(acked.len() / 2) {
            let started = Instant::now();
            let got = store.get(&key(name)).await;
            if let Ok(secret) = &got {
                assert_eq!(secret.value.expose_str().unwrap(), value, "{name}");
            }
            tally.record(got.as_ref().map(|_| ()), started.elapsed());
        }
    }
    (tally, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[expect(
    clippy::print_stderr,
    reason = "the figures docs/reliability.md quotes"
)]
async fn openbao_killed_under_load_loses_no_acknowledged_write() {
    const TASKS: usize = 16;
    let request_timeout = Duration::from_secs(2);
    let retry_budget = Duration::from_secs(3);

    let dir = tempfile::tempdir().unwrap();
    let (port, cluster_port) = (free_port(), free_port());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let config = dir.path().join("bao.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n1\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  \
             cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster_port}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let mut server = Server::start(&config, tempfile::tempdir().unwrap());
    wait_for_port(port).await;
    let init = raw::vault(
        &addr,
        None,
        None,
        Method::PUT,
        "sys/init",
        Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await
    .json();
    let unseal_key = init["keys"][0].as_str().unwrap().to_owned();
    let token = init["root_token"].as_str().unwrap().to_owned();
    unseal_and_wait_active(&addr, &unseal_key, &token).await;
    let mounted = raw::vault(
        &addr,
        Some(&token),
        None,
        Method::POST,
        "sys/mounts/secret",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert!(mounted.status.is_success(), "mount: {}", mounted.body);

    let client = VaultClient::builder()
        .address(&addr)
        .token(token.as_str())
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(request_timeout)
        .retry_policy(RetryPolicy::default().with_max_total(retry_budget))
        .build()
        .unwrap();
    let store = VaultStore::new(&client, "secret").unwrap();
    // The mount is usable (KV v2 upgrades itself in the background right after mounting).
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.put(&key("ready"), "yes".into()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the new mount never took a write"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| tokio::spawn(load(store.clone(), i, Arc::clone(&stop))))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    server.kill_and_restart();
    wait_for_port(port).await;
    // Down (then sealed) for a while under load before the operator unseals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    unseal_and_wait_active(&addr, &unseal_key, &token).await;
    let back_after = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);

    let mut total = Tally::default();
    let mut acked = Vec::new();
    for task in tasks {
        let (tally, mine) = task.await.expect("a load task panicked");
        total.merge(&tally);
        acked.extend(mine);
    }
    // Every acknowledged write is there, with its value.
    let mut missing = 0;
    for (name, value) in &acked {
        match store.get(&key(name)).await {
            Ok(secret) => assert_eq!(secret.value.expose_str().unwrap(), value, "{name}"),
            Err(e) => {
                missing += 1;
                eprintln!("restart: acknowledged {name} is missing: {e}");
            }
        }
    }
    eprintln!(
        "restart: {TASKS} tasks, {} requests ({} ok), errors by kind {:?}, max latency {:.2}s, \
         {} acknowledged writes, {missing} missing, server back {:.1}s after the kill",
        total.requests(),
        total.ok,
        total.errors,
        total.max_latency.as_secs_f64(),
        acked.len(),
        back_after.as_secs_f64()
    );
    assert_eq!(missing, 0, "acknowledged writes were lost");
    assert!(!total.errors.is_empty(), "the kill was never noticed");
    assert!(
        total.errors.keys().all(|k| k == "unavailable"),
        "{:?}: {:?}",
        total.errors,
        total.examples
    );
    assert!(
        total.max_latency < retry_budget + request_timeout + Duration::from_secs(1),
        "a call hung for {:?}",
        total.max_latency
    );
    drop(server);
}
