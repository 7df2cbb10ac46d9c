//! Faults injected into the shared servers through xtask's services handle
//! (`cargo xtask services pause <server> --for SECS`), on whichever runtime `cargo xtask itest`
//! started (SIGSTOP/SIGCONT natively, `docker pause` in containers).
//!
//! A test binary of its own: cargo runs test binaries one after another, so pausing a shared
//! server here never disturbs the suites in `itest`. Within this binary the tests take turns
//! (`SERIAL`). Pausing keeps the servers' state, so every write acknowledged before or after
//! the pause must be there at the end.

#![allow(
    clippy::print_stderr,
    reason = "the fault figures are this suite's report"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strongroom_aws::{SecretsManagerClient, SecretsManagerStore};
use strongroom_core::{ErrorKind, SecretName, SecretStore};
use strongroom_facade::{CacheConfig, HealthStatus, Secrets};
use strongroom_http::{HttpClient, RetryPolicy};
use strongroom_itests::ItestEnv;
use strongroom_sigv4::{Credentials, StaticProvider};
use strongroom_vault::{VaultClient, VaultStore};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long each server is paused.
const PAUSE: Duration = Duration::from_secs(4);

/// How long the load runs inside the pause (it starts once the pause has taken hold).
const LOADED: Duration = Duration::from_secs(2);

/// `cargo xtask services pause <server> --for <secs>` in the background, through the xtask
/// binary that `cargo xtask itest` is running from.
fn pause_in_background(server: &str) -> std::process::Child {
    fault_in_background("pause", server, PAUSE)
}

/// `cargo xtask services <fault> <server> --for <secs>` in the background, through the xtask
/// binary that `cargo xtask itest` is running from.
fn fault_in_background(fault: &str, server: &str, lasting: Duration) -> std::process::Child {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let xtask: PathBuf = target.join("debug").join("xtask");
    assert!(
        xtask.is_file(),
        "no xtask binary at {}: run this suite with `cargo xtask itest`",
        xtask.display()
    );
    Command::new(xtask)
        .args([
            "services",
            fault,
            server,
            "--for",
            &lasting.as_secs().to_string(),
        ])
        .current_dir(root)
        .spawn()
        .expect("run xtask services")
}

/// How long load runs after the server is back. The cache's circuit breaker opened during
/// the outage and refuses writes (Unavailable, at once) until a probe gets through: one
/// cool-down (1 s) after the last failure, plus a probe that was in flight when the server
/// came back and fails at its timeout (the request budget, 1.2 s) before the next one.
const RECOVERY: Duration = Duration::from_secs(4);

fn cache() -> CacheConfig {
    CacheConfig::builder()
        .ttl(Duration::from_millis(200))
        .max_stale(Duration::from_secs(600))
        .build()
        .unwrap()
}

fn quick_http() -> HttpClient {
    HttpClient::builder()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(800))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_millis(1200)))
        .build()
        .unwrap()
}

fn localstack(env: &ItestEnv, prefix: &str) -> SecretsManagerStore {
    let client = SecretsManagerClient::builder()
        .region(env.aws_region.as_str())
        .endpoint(env.aws_endpoint.as_str())
        .credentials(StaticProvider::new(Credentials::new(
            env.aws_access_key_id.as_str(),
            env.aws_secret_access_key.as_str(),
        )))
        .http_client(quick_http())
        .build()
        .unwrap();
    SecretsManagerStore::builder()
        .client(client)
        .prefix(prefix)
        .build_lazy()
        .unwrap()
}

fn openbao(env: &ItestEnv) -> VaultStore {
    let client = VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(800))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_millis(1200)))
        .build()
        .unwrap();
    VaultStore::new(&client, &env.vault_kv_mount).unwrap()
}

fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "strongroom-faults/{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a load run saw.
#[derive(Debug, Default)]
struct Figures {
    reads: u64,
    reads_failed: u64,
    writes_acked: u64,
    writes_unavailable: u64,
    writes_other_errors: u64,
    slowest: Duration,
}

/// One task's key and what became of its writes, in order.
#[derive(Debug, Default)]
struct Writes {
    /// The last acknowledged value.
    acked: Option<String>,
    /// Values attempted after it that came back Unavailable: a request that reached a paused
    /// server may still be applied when it wakes, so any of these may be current too.
    unknown: Vec<String>,
}

/// Each of `keys.len()` tasks reads and writes its own key through `secrets` for `duration`
/// (one write per four calls), while the caller pauses the server underneath.
async fn load(
    secrets: &Secrets,
    keys: &[SecretName],
    writes: &mut [Writes],
    round: &str,
    duration: Duration,
) -> Figures {
    let handles: Vec<_> = keys
        .iter()
        .cloned()
        .zip(writes.iter_mut().map(std::mem::take))
        .enumerate()
        .map(|(task, (key, mut mine))| {
            let secrets = secrets.clone();
            let round = round.to_owned();
            tokio::spawn(async move {
                let mut figures = Figures::default();
                let end = Instant::now() + duration;
                let mut n = 0usize;
                while Instant::now() < end {
                    let started = Instant::now();
                    if n.is_multiple_of(4) {
                        let value = format!("{round}-t{task}-n{n}");
                        match secrets.put(&key, value.as_str()).await {
                            Ok(_) => {
                                figures.writes_acked += 1;
                                mine = Writes {
                                    acked: Some(value),
                                    unknown: Vec::new(),
                                };
                            }
                            Err(e) if e.kind() == ErrorKind::Unavailable => {
                                figures.writes_unavailable += 1;
                                mine.unknown.push(value);
                            }
                            Err(_) => figures.writes_other_errors += 1,
                        }
                    } else {
                        figures.reads += 1;
                        if secrets.get(&key).await.is_err() {
                            figures.reads_failed += 1;
                        }
                    }
                    figures.slowest = figures.slowest.max(started.elapsed());
                    n += 1;
                }
                (figures, mine)
            })
        })
        .collect();
    let mut total = Figures::default();
    for (slot, handle) in writes.iter_mut().zip(handles) {
        let (f, mine) = handle.await.unwrap();
        *slot = mine;
        total.reads += f.reads;
        total.reads_failed += f.reads_failed;
        total.writes_acked += f.writes_acked;
        total.writes_unavailable += f.writes_unavailable;
        total.writes_other_errors += f.writes_other_errors;
        total.slowest = total.slowest.max(f.slowest);
    }
    total
}

/// A `Secrets` over `store` with eight keys written and read once (so each is cached), and
/// the record of those writes.
async fn warmed(store: Arc<dyn SecretStore>) -> (Secrets, Vec<SecretName>, Vec<Writes>) {
    let secrets = Secrets::builder()
        .store(store)
        .cache(cache())
        .build()
        .unwrap();
    let keys: Vec<SecretName> = (0..8)
        .map(|n| SecretName::new(format!("k{n}")).unwrap())
        .collect();
    let mut writes = Vec::new();
    for key in &keys {
        secrets.put(key, "initial").await.unwrap();
        secrets.get(key).await.unwrap();
        writes.push(Writes {
            acked: Some("initial".to_owned()),
            unknown: Vec::new(),
        });
    }
    (secrets, keys, writes)
}

/// Pauses `server` under load through `secrets`, then checks: reads never failed (the
/// cache answers), writes during the pause failed Unavailable within the timeout and never
/// otherwise, every key's current value is its last acknowledged write (or a later write
/// whose answer was lost in the pause), and health recovered.
async fn ride_out_a_pause(server: &str, store: Arc<dyn SecretStore>) {
    let (secrets, keys, mut writes) = warmed(Arc::clone(&store)).await;

    let mut pause = pause_in_background(server);
    // Let the pause take hold, then load through it and past its end.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let during = load(&secrets, &keys, &mut writes, "during", LOADED).await;
    assert!(
        pause.wait().unwrap().success(),
        "xtask services pause {server} failed"
    );
    let after = load(&secrets, &keys, &mut writes, "after", RECOVERY).await;

    eprintln!(
        "faults: {server} paused {PAUSE:?}, {LOADED:?} of load inside the pause from {} tasks: {} reads ({} failed), {} writes acked, \
         {} writes Unavailable, {} other write errors, slowest call {:?}; after: {} writes acked",
        keys.len(),
        during.reads,
        during.reads_failed,
        during.writes_acked,
        during.writes_unavailable,
        during.writes_other_errors,
        during.slowest,
        after.writes_acked
    );
    assert_eq!(
        during.reads_failed, 0,
        "{server}: reads failed while it was paused"
    );
    assert!(
        during.writes_unavailable > 0,
        "{server}: the pause was never seen"
    );
    assert_eq!(
        during.writes_other_errors + after.writes_other_errors,
        0,
        "{server}: a write failed other than Unavailable"
    );
    assert!(
        during.slowest < Duration::from_secs(4),
        "{server}: a call hung for {:?}",
        during.slowest
    );
    assert!(after.writes_acked > 0, "{server}: writes did not recover");

    for (key, mine) in keys.iter().zip(&writes) {
        let current = store.get(key).await.unwrap();
        let current = current.value.expose_str().unwrap();
        let allowed =
            mine.acked.as_deref() == Some(current) || mine.unknown.iter().any(|v| v == current);
        assert!(
            allowed,
            "{server}: {key} is {current:?}, expected {:?} (or one of {:?})",
            mine.acked, mine.unknown
        );
    }
    assert_eq!(secrets.health().await.status, HealthStatus::Healthy);
    for key in &keys {
        let _ = store.purge(key).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_over_localstack_rides_out_a_pause() {
    let _turn = SERIAL.lock().await;
    let env = ItestEnv::load();
    let prefix = format!("{}/", unique("aws"));
    ride_out_a_pause("localstack", Arc::new(localstack(&env, &prefix))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_over_openbao_rides_out_a_pause() {
    let _turn = SERIAL.lock().await;
    let env = ItestEnv::load();
    let store = openbao(&env);
    // A prefix of its own, through a Scoped view.
    let scoped = strongroom_facade::Scoped::new(store, &unique("vault")).unwrap();
    ride_out_a_pause("openbao", Arc::new(scoped)).await;
}

/// LocalStack stopped (connection refused) and started again: reads go on from the cache,
/// writes fail fast with Unavailable, nothing hangs, and writes work again once it is back.
/// LocalStack community keeps its state in memory, so what was stored before the stop is
/// gone afterwards; that part is checked on OpenBao with raft storage (`faults::restart`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_over_localstack_rides_out_a_stop_and_start() {
    let _turn = SERIAL.lock().await;
    let env = ItestEnv::load();
    let store: Arc<dyn SecretStore> =
        Arc::new(localstack(&env, &format!("{}/", unique("aws-restart"))));
    let (secrets, keys, mut writes) = warmed(store).await;

    let mut outage = fault_in_background("stop", "localstack", Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let during = load(&secrets, &keys, &mut writes, "stopped", LOADED).await;
    assert!(
        outage.wait().unwrap().success(),
        "xtask services stop/start localstack failed"
    );
    let after = load(&secrets, &keys, &mut writes, "restarted", RECOVERY).await;

    eprintln!(
        "faults: localstack stopped and started, {LOADED:?} of load while down from {} tasks: \
         {} reads ({} failed), {} writes Unavailable, {} other write errors, slowest call {:?}; \
         after the restart: {} writes acked, {} other write errors",
        keys.len(),
        during.reads,
        during.reads_failed,
        during.writes_unavailable,
        during.writes_other_errors,
        during.slowest,
        after.writes_acked,
        after.writes_other_errors
    );
    assert_eq!(
        during.reads_failed, 0,
        "reads failed while LocalStack was down"
    );
    assert!(during.writes_unavailable > 0, "the outage was never seen");
    assert_eq!(
        during.writes_acked, 0,
        "a write was acknowledged by a stopped server"
    );
    assert_eq!(
        during.writes_other_errors, 0,
        "a write failed other than Unavailable"
    );
    assert!(
        during.slowest < Duration::from_secs(4),
        "a call hung for {:?}",
        during.slowest
    );
    assert!(
        after.writes_acked > 0,
        "writes did not recover after the restart"
    );
    assert_eq!(secrets.health().await.status, HealthStatus::Healthy);
}
