//! The cache's circuit breaker against a real OpenBao paused with SIGSTOP under load: once
//! the breaker is open, reads that have a stale answer return in microseconds instead of
//! waiting out the client's timeout and retries; writes fail fast; health says so; and the
//! first fresh read comes within one probe interval of the server resuming. A private dev
//! server, so pausing it disturbs no other suite.

#![allow(clippy::print_stderr)] // the measured figures, for the record

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strongroom_core::{ErrorKind, SecretName, SecretStore};
use strongroom_facade::{CacheConfig, Secrets};
use strongroom_vault::{RetryPolicy, VaultClient, VaultStore};
use tokio::sync::Mutex;

use crate::raw;
use crate::vault::{free_port, signal, start_dev_server_on};

const KEYS: usize = 8;
const READERS: usize = 4;
const COOL_DOWN: Duration = Duration::from_secs(1);

fn key(n: usize) -> SecretName {
    SecretName::new(format!("breaker/k{n}")).unwrap()
}

/// A Vault store with the timeouts a production client would have: a read of a paused
/// server costs its whole retry budget, about 1.5 s.
fn vault_store(addr: &str, token: &str) -> VaultStore {
    let client = VaultClient::builder()
        .address(addr)
        .token(token)
        .connect_timeout(Duration::from_millis(300))
        .request_timeout(Duration::from_millis(800))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_millis(1500)))
        .build()
        .unwrap();
    VaultStore::new(&client, "secret").unwrap()
}

/// One read by a load task: when it started, how long it took, and whether it saw the value
/// written behind the cache's back (a fresh read from the server).
struct Sample {
    started: Instant,
    took: Duration,
    fresh: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_openbao_paused_an_open_breaker_answers_stale_reads_in_microseconds() {
    let token = raw::unique("root");
    let server = start_dev_server_on(free_port(), &token);
    let direct = vault_store(&server.addr, &token);
    let deadline = Instant::now() + Duration::from_secs(30);
    while direct.put(&key(0), "v1-0".into()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the dev server never became writable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let app = Secrets::builder()
        .store(vault_store(&server.addr, &token))
        .cache(
            CacheConfig::builder()
                .ttl(Duration::from_millis(300))
                .max_stale(Duration::from_secs(3600))
                .breaker(3, COOL_DOWN)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    for n in 0..KEYS {
        app.put(&key(n), format!("v1-{n}").as_str()).await.unwrap();
        assert_eq!(
            app.get(&key(n)).await.unwrap().value.expose_str().unwrap(),
            format!("v1-{n}")
        );
        // Behind the cache's back: a read that shows v2 reached the server.
        direct.put(&key(n), format!("v2-{n}").into()).await.unwrap();
    }
    assert!(app.health().await.is_healthy());

    // Pause the server, let the entries expire, and read all keys from several tasks.
    signal(&server, "-STOP");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let (app, stop, samples) = (app.clone(), stop.clone(), samples.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut n = reader;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let secret = app.get(&key(n % KEYS)).await.unwrap();
                    let took = started.elapsed();
                    let fresh = secret.value.expose_str().unwrap().starts_with("v2-");
                    mine.push(Sample {
                        started,
                        took,
                        fresh,
                    });
                    n += 1;
                    tokio::task::yield_now().await;
                }
                samples.lock().await.extend(mine);
            })
        })
        .collect();

    // The first reads wait out the retry budget; the breaker opens after three of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.stats().cache.breaker_open {
        assert!(Instant::now() < deadline, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Writes fail fast while it is open; health says so.
    let write_started = Instant::now();
    let err = app.put(&key(0), "lost").await.unwrap_err();
    let write_took = write_started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let health = app.health().await;
    assert!(health.breaker_open, "{health:?}");
    assert!(!health.is_healthy());

    signal(&server, "-CONT");
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(20);
    loop {
        let secret = app.get(&key(1)).await.unwrap();
        if secret.value.expose_str().unwrap() == "v2-1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never read a fresh value after the resume"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }

    let samples = samples.lock().await;
    let mut open: Vec<Duration> = samples
        .iter()
        .filter(|s| s.started >= opened && s.started + s.took <= resumed)
        .map(|s| s.took)
        .collect();
    open.sort();
    assert!(open.len() > 100, "only {} reads while open", open.len());
    let (p50, p99, max) = (
        percentile(&open, 0.50),
        percentile(&open, 0.99),
        open[open.len() - 1],
    );
    let first_fresh = samples
        .iter()
        .filter(|s| s.fresh && s.started >= resumed)
        .map(|s| s.started + s.took - resumed)
        .min();
    let stats = app.stats();
    eprintln!(
        "breaker: {} reads while open: p50 {p50:?}, p99 {p99:?}, max {max:?}; write refused in {write_took:?}; first fresh read by a load task {first_fresh:?} after the resume (cool-down {COOL_DOWN:?}); opened {} time(s), {} calls refused, {} stale answers",
        open.len(),
        stats.cache.breaker_opened,
        stats.cache.breaker_refused,
        stats.cache.stale_served,
    );
    // The target is 1 ms; the assertion leaves room for a noisy shared VM.
    assert!(p99 < Duration::from_millis(20), "p99 {p99:?}");
    assert!(write_took < Duration::from_millis(100), "{write_took:?}");
    let first_fresh = first_fresh.expect("no load task read a fresh value after the resume");
    // One probe interval: the cool-down, plus the probe's own round trip (a probe sent while
    // the server was paused is answered when it resumes).
    assert!(
        first_fresh < COOL_DOWN + Duration::from_millis(500),
        "first fresh read {first_fresh:?} after the resume"
    );
    assert!(!app.stats().cache.breaker_open);
    assert!(app.health().await.is_healthy());
}
