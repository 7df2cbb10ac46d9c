//! Cached reads across threads: one hot key and 64 keys read uniformly, on 1 and 2 threads,
//! through the `Secrets` facade and through `CachedStore::cached` (with the per-thread
//! copies, and without them: the path before them), beside bare quick_cache (a get that
//! clones the `Secret`, then drops it) in the same run.
//!
//! Every figure is the time per read per thread (the slowest thread's wall time over its
//! reads), so the aggregate throughput of 2 threads against 1 is `2 * t(1t) / t(2t)`.
//! Run with `cargo bench -p strongroom-benches --bench hot_key`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use strongroom_benches::{GenStore, poll_now, value_for};
use strongroom_cache::{CacheConfig, CachedStore};
use strongroom_core::{Secret, SecretName, SecretValue, VersionId};
use strongroom_facade::Secrets;

const VALUE_LEN: usize = 64;
const KEYS: usize = 64;

/// One way to read a cached key.
type Read<'a> = &'a (dyn Fn(&SecretName) + Sync);

/// Runs `read(thread, i)` for `i in 0..iters` on each of `threads` threads started
/// together; the slowest thread's time.
fn on_threads<F>(threads: usize, iters: u64, read: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, read) = (&barrier, &read);
                scope.spawn(move || {
                    // Warm this thread's view (its copies, its counter stripe) untimed.
                    for i in 0..64 {
                        read(thread, i);
                    }
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        read(thread, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .max()
            .unwrap_or_default()
    })
}

/// The key thread `thread` reads at step `i`: every thread walks all 64 keys, each from
/// its own offset.
#[inline]
fn pick(keys: &[SecretName], thread: usize, i: u64) -> &SecretName {
    #[allow(clippy::cast_possible_truncation)] // masked to 0..64
    let step = (i as usize).wrapping_add(thread * 17) & (KEYS - 1);
    &keys[step]
}

fn config(thread_copies: usize) -> CacheConfig {
    CacheConfig::builder()
        .ttl(Duration::from_secs(3600))
        .max_entries(20_000)
        .thread_copies(thread_copies)
        .build()
        .expect("cache config")
}

fn hot_key(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _guard = rt.enter();
    let keys: Vec<SecretName> = (0..KEYS)
        .map(|n| SecretName::new(format!("app/key{n:02}")).expect("key"))
        .collect();
    let hot = &keys[0];

    let secrets = Secrets::builder()
        .store(GenStore::new(VALUE_LEN))
        .cache(config(strongroom_cache::DEFAULT_THREAD_COPIES))
        .build()
        .expect("facade");
    let cache = CachedStore::with_config(GenStore::new(VALUE_LEN), config(256));
    let shared_only = CachedStore::with_config(GenStore::new(VALUE_LEN), config(0));
    let bare: quick_cache::sync::Cache<SecretName, Secret> = quick_cache::sync::Cache::new(20_000);
    for (n, key) in keys.iter().enumerate() {
        rt.block_on(secrets.get(key)).expect("warm the facade");
        rt.block_on(cache.get_with_status(key))
            .0
            .expect("warm the cache");
        rt.block_on(shared_only.get_with_status(key))
            .0
            .expect("warm the cache");
        let secret = Secret::new(
            key.clone(),
            SecretValue::new(value_for(n as u64, VALUE_LEN)),
            VersionId::from(1),
        );
        bare.insert(key.clone(), secret);
    }

    let facade = |key: &SecretName| {
        black_box(poll_now(secrets.get(black_box(key))).expect("cached read"));
    };
    let copies = |key: &SecretName| {
        black_box(cache.cached(black_box(key)).expect("cached read"));
    };
    let shared = |key: &SecretName| {
        black_box(shared_only.cached(black_box(key)).expect("cached read"));
    };
    let quick = |key: &SecretName| {
        black_box(bare.get(black_box(key)).expect("bare hit"));
    };
    let paths: [(&str, Read<'_>); 4] = [
        ("facade", &facade),
        ("cache", &copies),
        ("cache_no_copies", &shared),
        ("quick_cache", &quick),
    ];

    let mut group = c.benchmark_group("hot_key");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, read) in paths {
        for threads in [1, 2] {
            group.bench_function(format!("{name}_{threads}t"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, |_, _| read(hot)));
            });
            group.bench_function(format!("{name}_64keys_{threads}t"), |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |thread, i| read(pick(&keys, thread, i)))
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, hot_key);
criterion_main!(benches);
