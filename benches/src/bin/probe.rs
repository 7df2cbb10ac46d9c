//! What criterion cannot measure, printed as one JSON object for `cargo xtask bench`:
//!
//! - `probe single-flight`: backend requests for 1,000 concurrent cold reads of one key,
//!   and for 10,000 keys read by 64 concurrent tasks, through the `Secrets` facade;
//! - `probe memory`: resident size of this process before and after it holds 10,000
//!   cached secrets, and the sum of their key and value sizes;
//! - `probe envelope-open N`, `probe file-get N`, `probe facade-get N`, `probe
//!   quick-cache-get N`: N envelope opens of 64 bytes (or the size given after N) / file store gets / cached facade reads
//!   / bare quick_cache gets, nothing else, to count instructions under
//!   `valgrind --tool=callgrind` (docs/performance.md);
//! - `probe datakey-seal N [SIZE]`, `probe datakey-open N [SIZE]`, `probe ring-seal N
//!   [SIZE]`, `probe ring-open N [SIZE]`: N seals or opens of SIZE bytes (default 64) with an
//!   unwrapped `DataKey`, and the same with one raw ring AES-256-GCM operation as in
//!   `hot_paths.rs`, for the same purpose.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strongroom_benches::{GenStore, rss_kib};
use strongroom_core::SecretName;
use strongroom_facade::{CacheConfig, Secrets};

const KEYS: u64 = 10_000;
const VALUE_LEN: usize = 64;

fn facade(store: Arc<GenStore>) -> Secrets {
    let config = CacheConfig::builder()
        .ttl(Duration::from_secs(3600))
        .max_entries(2 * KEYS)
        .build()
        .expect("cache config");
    Secrets::builder()
        .store(store)
        .cache(config)
        .build()
        .expect("facade")
}

fn key(n: u64) -> SecretName {
    SecretName::new(format!("app/service-{n}/password")).expect("key")
}

async fn single_flight() -> serde_json::Value {
    // One key, 1,000 concurrent cold readers; the backend takes 50 ms so they all overlap.
    let store = Arc::new(GenStore::new(VALUE_LEN).with_delay(Duration::from_millis(50)));
    let secrets = facade(Arc::clone(&store));
    let one = key(0);
    let readers: Vec<_> = (0..1_000)
        .map(|_| {
            let (secrets, one) = (secrets.clone(), one.clone());
            tokio::spawn(async move { secrets.get(&one).await.is_ok() })
        })
        .collect();
    let mut ok = 0u64;
    for reader in readers {
        ok += u64::from(reader.await.expect("reader task"));
    }
    let one_key_requests = store.requests();

    // 10,000 keys, 64 tasks taking the next key from a shared counter.
    let store = Arc::new(GenStore::new(VALUE_LEN).with_delay(Duration::from_micros(200)));
    let secrets = facade(Arc::clone(&store));
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (secrets, next) = (secrets.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut ok = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= KEYS {
                        return ok;
                    }
                    ok += u64::from(secrets.get(&key(n)).await.is_ok());
                }
            })
        })
        .collect();
    let mut many_ok = 0u64;
    for task in tasks {
        many_ok += task.await.expect("loader task");
    }
    serde_json::json!({
        "one_key_readers": 1_000,
        "one_key_ok": ok,
        "one_key_requests": one_key_requests,
        "many_keys": KEYS,
        "many_keys_tasks": 64,
        "many_keys_ok": many_ok,
        "many_keys_requests": store.requests(),
    })
}

async fn memory() -> serde_json::Value {
    let keys: Vec<SecretName> = (0..KEYS).map(key).collect();
    let store = Arc::new(GenStore::new(VALUE_LEN));
    let secrets = facade(Arc::clone(&store));
    let before = rss_kib().expect("VmRSS");
    let mut payload = 0usize;
    for key in &keys {
        let secret = secrets.get(key).await.expect("read");
        payload += secret.key.as_str().len() + secret.value.len();
    }
    // Drop what the loop held so only the cache keeps the secrets.
    let after = rss_kib().expect("VmRSS");
    let hits_before = secrets.cache().stats().hits;
    for key in &keys {
        secrets.get(key).await.expect("cached read");
    }
    let all_cached = secrets.cache().stats().hits - hits_before == KEYS;
    serde_json::json!({
        "secrets": KEYS,
        "value_len": VALUE_LEN,
        "payload_bytes": payload,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "all_cached": all_cached,
        "backend_requests": store.requests(),
    })
}

fn count() -> u64 {
    std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

fn envelope_open(n: u64) -> serde_json::Value {
    let key = strongroom_envelope::WrappingKey::from(
        strongroom_envelope::MasterKey::generate().expect("master key"),
    );
    let size = std::env::args()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let sealed = strongroom_envelope::seal(&key, &vec![7u8; size]).expect("seal");
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += strongroom_envelope::open(&key, &sealed)
            .expect("open")
            .len();
    }
    serde_json::json!({ "opens": n, "bytes": bytes })
}

/// The size argument after N (default 64).
fn size_arg() -> usize {
    std::env::args()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

/// N seals (`open == false`) or opens of `size_arg()` bytes with an unwrapped `DataKey`.
fn data_key_ops(n: u64, open: bool) -> serde_json::Value {
    let key = strongroom_envelope::DataKey::generate().expect("data key");
    let plaintext = vec![7u8; size_arg()];
    let sealed = key.seal(&plaintext).expect("seal");
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += if open {
            key.open(std::hint::black_box(&sealed)).expect("open").len()
        } else {
            key.seal(std::hint::black_box(&plaintext))
                .expect("seal")
                .len()
        };
    }
    serde_json::json!({ "ops": n, "bytes": bytes })
}

/// The same with one raw ring AES-256-GCM operation per iteration, as `hot_paths.rs` does it:
/// a fresh `SystemRandom` nonce and a new buffer per seal, a copy into a new buffer per open.
fn ring_ops(n: u64, open: bool) -> serde_json::Value {
    use strongroom_benches::ring_baseline::{aes_key, ring_open, ring_seal};
    let key = aes_key(&[9u8; 32]);
    let rng = ring::rand::SystemRandom::new();
    let plaintext = vec![7u8; size_arg()];
    let sealed = ring_seal(&key, &rng, &plaintext);
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += if open {
            ring_open(&key, std::hint::black_box(&sealed)).len()
        } else {
            ring_seal(&key, &rng, std::hint::black_box(&plaintext)).len()
        };
    }
    serde_json::json!({ "ops": n, "bytes": bytes })
}

async fn file_get(n: u64) -> serde_json::Value {
    use strongroom_core::SecretStore;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = strongroom_local::FileStore::create(
        dir.path().join("s.enc"),
        strongroom_envelope::MasterKey::generate().expect("master key"),
    )
    .expect("store");
    let one = key(1);
    store.put(&one, "value".into()).await.expect("put");
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += strongroom_benches::poll_now(store.get(&one))
            .expect("get")
            .value
            .len();
    }
    serde_json::json!({ "gets": n, "bytes": bytes })
}

fn facade_get(rt: &tokio::runtime::Runtime, n: u64) -> serde_json::Value {
    let _guard = rt.enter();
    let secrets = facade(Arc::new(GenStore::new(VALUE_LEN)));
    let one = key(1);
    rt.block_on(secrets.get(&one)).expect("warm");
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += strongroom_benches::poll_now(secrets.get(std::hint::black_box(&one)))
            .expect("hit")
            .value
            .len();
    }
    serde_json::json!({ "gets": n, "bytes": bytes })
}

fn quick_cache_get(n: u64) -> serde_json::Value {
    let cache: quick_cache::sync::Cache<SecretName, strongroom_core::Secret> =
        quick_cache::sync::Cache::new(1_000);
    let one = key(1);
    cache.insert(
        one.clone(),
        strongroom_core::Secret::new(
            one.clone(),
            strongroom_core::SecretValue::new(vec![1; VALUE_LEN]),
            strongroom_core::VersionId::from(1),
        ),
    );
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += cache
            .get(std::hint::black_box(&one))
            .expect("hit")
            .value
            .len();
    }
    serde_json::json!({ "gets": n, "bytes": bytes })
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = match what.as_str() {
        "single-flight" => rt.block_on(single_flight()),
        "memory" => rt.block_on(memory()),
        "envelope-open" => envelope_open(count()),
        "datakey-seal" => data_key_ops(count(), false),
        "datakey-open" => data_key_ops(count(), true),
        "ring-seal" => ring_ops(count(), false),
        "ring-open" => ring_ops(count(), true),
        "file-get" => rt.block_on(file_get(count())),
        "facade-get" => facade_get(&rt, count()),
        "quick-cache-get" => quick_cache_get(count()),
        other => {
            eprintln!("probe: expected single-flight or memory, got {other:?}");
            std::process::exit(2);
        }
    };
    println!("{report}");
}
