//! Behaviour of `CachedStore` over strongroom-core's reference `MemoryStore`: single flight,
//! TTL, stale-if-error, refresh-ahead, negative caching, invalidation, bounds, redaction, and
//! the store contract (`conformance`).
//!
//! A [`Probe`] hook on the memory store counts backend reads, can switch the backend to fail,
//! and can hold reads at a gate or slow them with a tokio sleep so that concurrent readers
//! really overlap.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use strongroom_cache::{
    BreakerState, CacheConfig, CacheStatus, CachedStore, Change, ChangeCause, Clock, ManualClock,
};
use strongroom_core::testing::{Hook, MemoryStore, Operation, conformance};
use strongroom_core::{
    Capabilities, Error, Result, Secret, SecretName, SecretStore, SecretValue, VersionId,
    async_trait,
};
use tokio::sync::RwLock;

const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const DENIED: u8 = 2;

/// Watches the memory store's calls: counts reads, fails them when switched, holds them.
#[derive(Default)]
struct Probe {
    gets: AtomicUsize,
    puts: AtomicUsize,
    version_gets: AtomicUsize,
    mode: AtomicU8,
    delay_ms: AtomicU64,
    /// Reads wait here after reading the map: a test holds the write side to keep loads in flight.
    gate: RwLock<()>,
}

impl Probe {
    fn error(&self, key: Option<&SecretName>) -> Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            UNAVAILABLE => Err(Error::unavailable("memory", "switched off")),
            DENIED => Err(Error::PermissionDenied {
                backend: "memory",
                key: key.map(ToString::to_string),
                message: "switched off".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Hook for Probe {
    async fn call(&self, operation: Operation, key: Option<&SecretName>) -> Result<()> {
        match operation {
            Operation::Get => {
                self.gets.fetch_add(1, Ordering::SeqCst);
                let answer = self.error(key);
                let ms = self.delay_ms.load(Ordering::SeqCst);
                if ms > 0 {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                drop(self.gate.read().await);
                answer
            }
            Operation::GetVersion => {
                self.version_gets.fetch_add(1, Ordering::SeqCst);
                self.error(key)
            }
            Operation::Put => {
                self.puts.fetch_add(1, Ordering::SeqCst);
                self.error(key)
            }
            _ => Ok(()),
        }
    }
}

/// The memory store under a cache, and its probe.
#[derive(Clone)]
struct Backend {
    store: MemoryStore,
    probe: Arc<Probe>,
}

impl Default for Backend {
    /// A store that keeps no metadata: then a `put` through the cache caches what it wrote
    /// even for a key never read, which these tests of read-your-writes rely on. (Over a
    /// store with metadata, such a put only drops the entry; the conformance test covers it.)
    fn default() -> Self {
        let probe = Arc::new(Probe::default());
        let mut capabilities = Capabilities::ALL;
        capabilities.metadata = false;
        let store = MemoryStore::new()
            .with_capabilities(capabilities)
            .with_hook(Arc::clone(&probe) as Arc<dyn Hook>);
        Self { store, probe }
    }
}

impl Deref for Backend {
    type Target = Probe;
    fn deref(&self) -> &Probe {
        &self.probe
    }
}

impl Backend {
    fn puts(&self) -> usize {
        self.probe.puts.load(Ordering::SeqCst)
    }
    /// Writes a version behind the cache's back.
    fn set(&self, key: &SecretName, value: &str) {
        self.store.insert(key, value);
    }
    fn gets(&self) -> usize {
        self.probe.gets.load(Ordering::SeqCst)
    }
    fn fail(&self, mode: u8) {
        self.probe.mode.store(mode, Ordering::SeqCst);
    }
    fn delay(&self, ms: u64) {
        self.probe.delay_ms.store(ms, Ordering::SeqCst);
    }
    async fn get(&self, key: &SecretName) -> Result<Secret> {
        self.store.get(key).await
    }
    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret> {
        self.store.get_version(key, version).await
    }
}

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

fn text(secret: &Secret) -> &str {
    secret.value.expose_str().unwrap()
}

/// A cache over a fresh memory store (with its probe) and a manual clock.
fn cached(
    builder: strongroom_cache::CacheConfigBuilder,
) -> (CachedStore<MemoryStore>, Backend, ManualClock) {
    let clock = ManualClock::new();
    let backend = Backend::default();
    let config = builder.clock(clock.clock()).build().unwrap();
    (
        CachedStore::with_config(backend.store.clone(), config),
        backend,
        clock,
    )
}

/// Waits until `done` holds, polling; fails the test after five seconds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..5000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_reads_make_one_backend_call() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/db/password");
    store.set(&k, "s3cret");
    let hold = store.gate.write().await;

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, k) = (cache.clone(), k.clone());
            tokio::spawn(async move { cache.get_with_status(&k).await })
        })
        .collect();
    // Every reader has joined the one load before the backend is allowed to answer.
    eventually("1000 readers to wait", || cache.stats().misses == 1000).await;
    assert_eq!(store.gets(), 1);
    drop(hold);

    for task in tasks {
        let (result, status) = task.await.unwrap();
        assert_eq!(text(&result.unwrap()), "s3cret");
        assert_eq!(status, CacheStatus::Miss);
    }
    assert_eq!(store.gets(), 1, "single flight made more than one call");
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.misses, stats.hits), (1, 1000, 0));

    let (again, status) = cache.get_with_status(&k).await;
    assert_eq!(text(&again.unwrap()), "s3cret");
    assert_eq!(status, CacheStatus::Hit);
    assert_eq!(store.gets(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_reads_of_a_failing_key_make_one_call_and_all_see_the_error() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/down");
    store.set(&k, "unused");
    store.fail(UNAVAILABLE);
    // A slow backend (a real tokio sleep), and the gate held until every reader has joined,
    // so that a busy machine spawning the tasks slowly cannot let the load finish early.
    store.delay(50);
    let hold = store.gate.write().await;

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, k) = (cache.clone(), k.clone());
            tokio::spawn(async move { cache.get(&k).await })
        })
        .collect();
    eventually("1000 readers to wait", || cache.stats().misses == 1000).await;
    drop(hold);
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unavailable {
                    backend: "memory",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(
        store.gets(),
        1,
        "readers retried the failing backend one after another"
    );
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.load_errors, stats.misses), (1, 1, 1000));

    // The error was not cached: the next read asks again, and sees the recovery.
    store.fail(OK);
    store.delay(0);
    assert_eq!(text(&cache.get(&k).await.unwrap()), "unused");
    assert_eq!(store.gets(), 2);
}

#[tokio::test]
async fn values_expire_after_the_ttl() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)));
    let k = key("app/token");
    store.set(&k, "one");

    assert_eq!(cache.get_with_status(&k).await.1, CacheStatus::Miss);
    store.set(&k, "two"); // behind the cache's back
    clock.advance(SECS(9));
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("one", CacheStatus::Hit));
    assert_eq!(store.gets(), 1);

    clock.advance(SECS(1));
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("two", CacheStatus::Miss));
    assert_eq!(store.gets(), 2);
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("two", CacheStatus::Hit));
    assert_eq!(store.gets(), 2);
}

#[tokio::test]
async fn the_default_coarse_clock_expires_entries_in_real_time() {
    let store = Backend::default();
    let config = CacheConfig::builder()
        .ttl(Duration::from_millis(50))
        .clock(Clock::coarse())
        .build()
        .unwrap();
    let cache = CachedStore::with_config(store.store.clone(), config);
    let k = key("app/short");
    store.set(&k, "v");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    assert_eq!(store.gets(), 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    cache.get(&k).await.unwrap();
    assert_eq!(store.gets(), 2);
}

#[tokio::test]
async fn stale_values_are_served_while_the_backend_is_unavailable_until_max_stale() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).max_stale(SECS(30)));
    let k = key("app/db");
    store.set(&k, "cached");
    cache.get(&k).await.unwrap();

    store.fail(UNAVAILABLE);
    clock.advance(SECS(15));
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("cached", CacheStatus::Stale)
    );
    clock.advance(SECS(24)); // 39 s old: 10 s TTL + 29 s
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("cached", CacheStatus::Stale)
    );
    assert_eq!(cache.stats().stale_served, 2);
    assert_eq!(
        store.gets(),
        3,
        "each stale read still asked the backend first"
    );

    clock.advance(SECS(1)); // 40 s: past TTL + max_stale
    let (result, status) = cache.get_with_status(&k).await;
    assert!(matches!(result, Err(Error::Unavailable { .. })));
    assert_eq!(status, CacheStatus::Miss);
    assert_eq!(cache.stats().stale_served, 2);
    assert_eq!(
        cache.stats().entries,
        0,
        "a value too old to serve was kept"
    );

    // Recovery: the backend answers again and the cache fills.
    store.fail(OK);
    assert_eq!(cache.get_with_status(&k).await.1, CacheStatus::Miss);
    assert_eq!(cache.get_with_status(&k).await.1, CacheStatus::Hit);
}

#[tokio::test]
async fn only_unavailable_falls_back_to_stale_and_only_when_enabled() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).max_stale(SECS(30)));
    let k = key("app/db");
    store.set(&k, "cached");
    cache.get(&k).await.unwrap();
    clock.advance(SECS(11));
    store.fail(DENIED);
    assert!(matches!(
        cache.get(&k).await,
        Err(Error::PermissionDenied { .. })
    ));

    let (off, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)));
    store.set(&k, "cached");
    off.get(&k).await.unwrap();
    clock.advance(SECS(11));
    store.fail(UNAVAILABLE);
    assert!(matches!(off.get(&k).await, Err(Error::Unavailable { .. })));
    assert_eq!(off.stats().stale_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_of_an_expired_key_all_get_the_stale_value_from_one_call() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).max_stale(SECS(60)));
    let k = key("app/db");
    store.set(&k, "old");
    cache.get(&k).await.unwrap();
    clock.advance(SECS(20));
    store.fail(UNAVAILABLE);
    let hold = store.gate.write().await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, k) = (cache.clone(), k.clone());
            tokio::spawn(async move { cache.get_with_status(&k).await })
        })
        .collect();
    eventually("100 readers to wait", || cache.stats().misses == 101).await;
    drop(hold);
    for task in tasks {
        let (secret, status) = task.await.unwrap();
        assert_eq!(
            (text(&secret.unwrap()), status),
            ("old", CacheStatus::Stale)
        );
    }
    assert_eq!(store.gets(), 2);
    assert_eq!(cache.stats().stale_served, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_reloads_once_in_the_background() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).refresh_ahead(0.2));
    let k = key("app/hot");
    store.set(&k, "v1");
    cache.get(&k).await.unwrap();
    store.set(&k, "v2");

    clock.advance(SECS(7)); // before the last 20 %: a plain hit
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(cache.stats().refreshes, 0);

    clock.advance(Duration::from_millis(1500)); // 8.5 s: in the refresh window
    let hold = store.gate.write().await;
    for _ in 0..200 {
        let (secret, status) = cache.get_with_status(&k).await;
        assert_eq!((text(&secret.unwrap()), status), ("v1", CacheStatus::Hit));
    }
    eventually("the refresh to reach the backend", || store.gets() == 2).await;
    drop(hold);
    eventually("the refresh to land", || {
        cache
            .get_if_cached(&k)
            .is_some_and(|(s, _)| text(&s.unwrap()) == "v2")
    })
    .await;

    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("v2", CacheStatus::Hit));
    let stats = cache.stats();
    assert_eq!(stats.refreshes, 1, "more than one refresh for one key");
    assert_eq!(stats.misses, 1, "a read missed despite refresh-ahead");
    assert_eq!(store.gets(), 2);

    // The refreshed entry has a whole new TTL: 9 s later it is still a hit, no refresh yet.
    clock.advance(SECS(7));
    assert_eq!(cache.get_with_status(&k).await.1, CacheStatus::Hit);
    assert_eq!(cache.stats().refreshes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_value_and_does_not_retry_on_every_hit() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(100)).refresh_ahead(0.2));
    let k = key("app/hot");
    store.set(&k, "v1");
    cache.get(&k).await.unwrap();
    store.fail(UNAVAILABLE);
    clock.advance(SECS(85));
    cache.get(&k).await.unwrap();
    eventually("the refresh to fail", || cache.stats().load_errors == 1).await;
    for _ in 0..100 {
        let (secret, status) = cache.get_with_status(&k).await;
        assert_eq!((text(&secret.unwrap()), status), ("v1", CacheStatus::Hit));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.gets(), 2, "a failing backend was asked on every hit");
    // After the retry delay (a quarter of the 20 s window) one more refresh is tried.
    store.fail(OK);
    store.set(&k, "v2");
    clock.advance(SECS(6));
    cache.get(&k).await.unwrap();
    eventually("the second refresh", || store.gets() == 3).await;
    eventually("the new value", || {
        cache
            .get_if_cached(&k)
            .is_some_and(|(s, _)| text(&s.unwrap()) == "v2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_writes_and_what_loads_discover() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).refresh_ahead(0.2));
    let mut changes = cache.subscribe();
    let k = key("app/watched");
    let change = |version: Option<u64>, previous: Option<u64>, cause| {
        (
            k.clone(),
            version.map(VersionId::from),
            previous.map(VersionId::from),
            cause,
        )
    };
    let fields = |c: Change| (c.key, c.version, c.previous, c.cause);

    cache.put(&k, SecretValue::from("v1")).await.unwrap();
    assert_eq!(
        fields(changes.recv().await.unwrap()),
        change(Some(1), None, ChangeCause::Put)
    );
    cache.get(&k).await.unwrap();
    cache.put(&k, SecretValue::from("v2")).await.unwrap();
    assert_eq!(
        fields(changes.recv().await.unwrap()),
        change(Some(2), Some(1), ChangeCause::Put)
    );

    // Someone else writes v3; the refresh-ahead finds it.
    cache.get(&k).await.unwrap();
    store.set(&k, "v3");
    clock.advance(SECS(9));
    cache.get(&k).await.unwrap();
    let found = tokio::time::timeout(SECS(5), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fields(found),
        change(Some(3), Some(2), ChangeCause::Discovered)
    );

    // A reload after the TTL that finds the same version is not a change; one that finds the
    // secret gone is.
    clock.advance(SECS(11));
    cache.get(&k).await.unwrap();
    store.store.purge(&k).await.unwrap(); // behind the cache's back
    clock.advance(SECS(11));
    assert!(cache.get(&k).await.is_err());
    let gone = changes.recv().await.unwrap();
    assert!(!format!("{gone:?}").contains("v3"), "{gone:?}");
    assert_eq!(fields(gone), change(None, Some(3), ChangeCause::Discovered));

    cache.put(&k, SecretValue::from("again")).await.unwrap();
    cache.delete(&k).await.unwrap();
    assert_eq!(changes.recv().await.unwrap().cause, ChangeCause::Put);
    assert_eq!(
        fields(changes.recv().await.unwrap()),
        change(None, Some(1), ChangeCause::Delete)
    );
    assert!(changes.try_recv().is_err(), "an unexpected change was sent");
}

#[tokio::test]
async fn cached_answers_only_a_fresh_value_and_counts_only_hits() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).negative_ttl(SECS(10)));
    let k = key("app/hot");
    let gone = key("app/gone");
    assert!(cache.cached(&k).is_none(), "nothing cached yet");
    store.set(&k, "v1");
    cache.get(&k).await.unwrap();
    assert!(cache.get(&gone).await.unwrap_err().is_not_found());

    assert_eq!(text(&cache.cached(&k).unwrap()), "v1");
    assert!(
        cache.cached(&gone).is_none(),
        "a cached NotFound is for get_if_cached, not a value"
    );
    assert!(cache.get_if_cached(&gone).is_some());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.negative_hits), (1, 1));

    clock.advance(SECS(10));
    assert!(cache.cached(&k).is_none(), "an expired entry is not fresh");
    assert_eq!(
        cache.stats().hits,
        1,
        "a lookup that found nothing fresh counted"
    );
    assert_eq!(store.gets(), 2, "cached never asks the backend");
}

#[tokio::test]
async fn not_found_is_cached_only_when_asked_and_only_for_its_ttl() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(300)).negative_ttl(SECS(5)));
    let k = key("app/later");
    let (result, status) = cache.get_with_status(&k).await;
    assert!(matches!(
        result,
        Err(Error::NotFound { deleted: false, .. })
    ));
    assert_eq!(status, CacheStatus::Miss);
    store.set(&k, "now-here");
    let (result, status) = cache.get_with_status(&k).await;
    assert!(matches!(result, Err(Error::NotFound { ref key, .. }) if key == "app/later"));
    assert_eq!(status, CacheStatus::NegativeHit);
    assert_eq!(store.gets(), 1);
    assert_eq!(cache.stats().negative_hits, 1);
    clock.advance(SECS(5));
    let (result, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&result.unwrap()), status),
        ("now-here", CacheStatus::Miss)
    );

    // Off by default: every read of a missing key asks the backend.
    let (off, store, _) = cached(CacheConfig::builder());
    for _ in 0..3 {
        assert!(off.get(&k).await.unwrap_err().is_not_found());
    }
    assert_eq!(store.gets(), 3);
    assert_eq!(off.stats().negative_hits, 0);
}

#[tokio::test]
async fn a_put_of_a_missing_key_replaces_its_negative_entry() {
    let (cache, _, _) = cached(CacheConfig::builder().negative_ttl(SECS(60)));
    let k = key("app/new");
    assert!(cache.get(&k).await.is_err());
    cache.put(&k, SecretValue::from("created")).await.unwrap();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "created");
}

#[tokio::test]
async fn writes_through_the_cache_update_it() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/rotated");
    let version = cache.put(&k, SecretValue::from("v1")).await.unwrap();
    assert_eq!(version, VersionId::from(1));
    // Read your writes: the written value is cached, with the version the backend gave,
    // so reading it back costs no backend call.
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(store.gets(), 0);

    cache.put(&k, SecretValue::from("v2")).await.unwrap();
    let secret = cache.get(&k).await.unwrap();
    assert_eq!(
        (text(&secret), secret.version.clone()),
        ("v2", VersionId::from(2))
    );
    assert_eq!(store.gets(), 0);

    cache.delete(&k).await.unwrap();
    assert!(cache.get(&k).await.unwrap_err().is_not_found());

    // A write straight to the backend is not seen until invalidate() or clear().
    store.set(&k, "direct");
    cache.get(&k).await.unwrap();
    store.set(&k, "direct-2");
    assert_eq!(text(&cache.get(&k).await.unwrap()), "direct");
    cache.invalidate(&k);
    assert_eq!(text(&cache.get(&k).await.unwrap()), "direct-2");
    store.set(&k, "direct-3");
    cache.clear();
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(text(&cache.get(&k).await.unwrap()), "direct-3");

    // A failed write still invalidates: it may have reached the backend.
    assert_eq!(cache.stats().entries, 1);
    assert!(matches!(
        cache.undelete(&k).await,
        Err(Error::Conflict { .. }) // it is not deleted
    ));
    assert_eq!(cache.stats().entries, 0);
}

#[tokio::test]
async fn a_failed_write_keeps_the_cached_value_as_a_stale_fallback() {
    let (cache, store, _) = cached(CacheConfig::builder().ttl(SECS(10)).max_stale(SECS(30)));
    let k = key("app/fallback");
    store.set(&k, "cached");
    cache.get(&k).await.unwrap();

    store.fail(UNAVAILABLE);
    assert!(cache.put(&k, SecretValue::from("lost")).await.is_err());
    // The write may have landed, so the next read asks the backend first; the backend is
    // down, so the cached value is served as stale instead of an error.
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("cached", CacheStatus::Stale)
    );
    assert_eq!(store.gets(), 2);

    // Back up: the backend's answer replaces the fallback.
    store.fail(OK);
    store.set(&k, "landed");
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("landed", CacheStatus::Miss)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_racing_a_write_is_not_cached() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/race");
    store.set(&k, "old");
    let hold = store.gate.write().await;
    let reader = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move { cache.get(&k).await })
    };
    eventually("the load to read the old value", || store.gets() == 1).await;
    cache.put(&k, SecretValue::from("new")).await.unwrap();
    drop(hold);
    // The reader started before the write finished: the old value is a fair answer for it.
    assert_eq!(text(&reader.await.unwrap().unwrap()), "old");
    // But it must not have been cached over the write: the write's own value is.
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("new", CacheStatus::Hit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_loader_hands_the_load_to_a_waiter() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/cancel");
    store.set(&k, "v");
    let hold = store.gate.write().await;
    let first = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move { cache.get(&k).await })
    };
    eventually("the first load", || store.gets() == 1).await;
    let second = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move { cache.get(&k).await })
    };
    eventually("the second reader to wait", || cache.stats().misses == 2).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    drop(hold);
    assert_eq!(text(&second.await.unwrap().unwrap()), "v");
    assert_eq!(store.gets(), 2);
    assert_eq!(cache.get_with_status(&k).await.1, CacheStatus::Hit);
}

#[tokio::test]
async fn versions_are_cached_per_version_and_dropped_on_delete() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/versioned");
    cache.put(&k, SecretValue::from("first")).await.unwrap();
    cache.put(&k, SecretValue::from("second")).await.unwrap();
    let v1 = VersionId::from(1);
    for _ in 0..3 {
        let (secret, _) = cache.get_version_with_status(&k, &v1).await;
        assert_eq!(text(&secret.unwrap()), "first");
    }
    assert_eq!(store.version_gets.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get_version_with_status(&k, &v1).await.1,
        CacheStatus::Hit
    );
    // A put leaves older versions cached: they do not change.
    cache.put(&k, SecretValue::from("third")).await.unwrap();
    assert_eq!(text(&cache.get_version(&k, &v1).await.unwrap()), "first");
    assert_eq!(store.version_gets.load(Ordering::SeqCst), 1);
    // list and versions pass through.
    assert_eq!(cache.list("app/").await.unwrap(), vec![k.clone()]);
    assert_eq!(cache.versions(&k).await.unwrap().len(), 3);
    // A delete drops them.
    cache.delete(&k).await.unwrap();
    assert!(cache.get_version(&k, &v1).await.unwrap_err().is_not_found());
    assert_eq!(store.version_gets.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_byte_bound_evicts() {
    let (cache, store, _) = cached(CacheConfig::builder().max_entries(64).max_bytes(4096));
    let keys: Vec<_> = (0..100).map(|i| key(&format!("app/k{i:03}"))).collect();
    for k in &keys {
        store.set(k, &"x".repeat(200));
    }
    for k in &keys {
        cache.get(k).await.unwrap();
    }
    let stats = cache.stats();
    assert!(stats.weight <= 4096, "{stats:?}");
    assert!(stats.evictions > 0, "{stats:?}");
    assert!(stats.entries < 100 && stats.entries > 0, "{stats:?}");
    assert_eq!(stats.loads, 100);

    let (by_count, store, _) = cached(CacheConfig::builder().max_entries(10));
    for k in &keys {
        store.set(k, "v");
        by_count.get(k).await.unwrap();
    }
    let stats = by_count.stats();
    assert!(stats.entries <= 10 && stats.evictions >= 90, "{stats:?}");
}

#[tokio::test]
async fn nothing_prints_a_secret_value() {
    let (cache, store, clock) = cached(
        CacheConfig::builder()
            .ttl(SECS(1))
            .max_stale(SECS(10))
            .negative_ttl(SECS(1)),
    );
    let k = key("app/visible-name");
    store.set(&k, "hunter2-very-secret");
    let secret = cache.get(&k).await.unwrap();
    let (hit, status) = cache.get_with_status(&k).await;
    clock.advance(SECS(2));
    store.fail(UNAVAILABLE);
    let (stale, _) = cache.get_with_status(&k).await;
    let texts = [
        format!("{cache:?}"),
        format!("{cache:#?}"),
        format!("{secret:?}"),
        format!("{hit:?} {status} {status:?}"),
        format!("{stale:?}"),
        format!("{:?}", cache.stats()),
        format!("{:?}", cache.config()),
    ];
    for text in &texts {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(
        texts[0].contains("memory") && texts[0].contains("entries"),
        "{}",
        texts[0]
    );
    store.fail(DENIED);
    clock.advance(SECS(20));
    let err = cache.get(&k).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn works_over_a_trait_object_and_as_one() {
    let store = Backend::default();
    let k = key("app/dyn");
    store.set(&k, "v");
    let backend: Arc<dyn SecretStore> = Arc::new(store.store.clone());
    let cache: CachedStore<Arc<dyn SecretStore>> = CachedStore::new(backend);
    let as_dyn: Box<dyn SecretStore> = Box::new(cache.clone());
    assert_eq!(as_dyn.backend(), "memory");
    assert_eq!(as_dyn.capabilities(), store.store.capabilities());
    assert_eq!(text(&as_dyn.get(&k).await.unwrap()), "v");
    let many = as_dyn
        .get_many(&[k.clone(), k.clone(), key("app/none")])
        .await;
    assert!(many[0].is_ok() && many[1].is_ok() && many[2].is_err());
    assert_eq!(store.gets(), 2, "get_many did not go through the cache");
    assert_eq!(cache.stats().hits, 2);
}

#[tokio::test]
async fn hits_on_one_thread_share_the_value_instead_of_copying_it() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/shared");
    store.set(&k, "bytes");
    let a = cache.get(&k).await.unwrap();
    let b = cache.get(&k).await.unwrap();
    assert!(std::ptr::eq(
        a.value.expose().as_ptr(),
        b.value.expose().as_ptr()
    ));
    // From the third read on, this thread reads its own copy: one more allocation, shared
    // by every later hit on this thread.
    let c = cache.get(&k).await.unwrap();
    let d = cache.get(&k).await.unwrap();
    assert!(std::ptr::eq(
        c.value.expose().as_ptr(),
        d.value.expose().as_ptr()
    ));
    assert_eq!((text(&c), cache.stats().thread_copies), ("bytes", 1));
}

#[tokio::test]
async fn hit_rate_counts_hits_against_misses() {
    let (cache, store, _) = cached(CacheConfig::builder());
    let k = key("app/rate");
    store.set(&k, "v");
    for _ in 0..4 {
        cache.get(&k).await.unwrap();
    }
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (3, 1));
    assert!((stats.hit_rate() - 0.75).abs() < 1e-9);
}

#[tokio::test]
async fn the_cache_keeps_the_store_contract() {
    for builder in [
        CacheConfig::builder(),
        CacheConfig::builder().negative_ttl(SECS(60)),
        CacheConfig::builder()
            .refresh_ahead(0.5)
            .max_stale(SECS(60)),
    ] {
        let cache = CachedStore::with_config(MemoryStore::new(), builder.build().unwrap());
        conformance::run(&cache, "conformance").await;
    }
    let mut narrow = Capabilities::ALL;
    narrow.undelete = false;
    narrow.versions = false;
    let cache = CachedStore::new(MemoryStore::new().with_capabilities(narrow));
    conformance::run(&cache, "narrow").await;
}

#[tokio::test]
async fn every_reader_of_a_failed_load_gets_the_error_with_its_cause() {
    use std::error::Error as _;

    struct Broken;
    #[async_trait]
    impl Hook for Broken {
        async fn call(&self, _: Operation, _: Option<&SecretName>) -> Result<()> {
            Err(Error::backend(
                "memory",
                "read failed",
                std::io::Error::other("disk"),
            ))
        }
    }
    let cache = CachedStore::new(MemoryStore::new().with_hook(Arc::new(Broken)));
    let k = key("app/broken");
    let (a, b) = tokio::join!(cache.get(&k), cache.get(&k));
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        let io = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(ToString::to_string).as_deref(), Some("disk"));
    }
}

/// One step of the model-based property below.
#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Put(u8, u8),
    Delete(u8),
    GetVersion(u8, u8),
    Advance(u16),
    Invalidate(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8).prop_map(Op::Get),
        2 => (0..4u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (0..4u8).prop_map(Op::Delete),
        1 => (0..4u8, 1..4u8).prop_map(|(k, v)| Op::GetVersion(k, v)),
        1 => (0..20_000u16).prop_map(Op::Advance),
        1 => (0..4u8).prop_map(Op::Invalidate),
    ]
}

/// The answer of a read, comparable across stores.
fn seen(result: Result<Secret>) -> std::result::Result<(String, VersionId), bool> {
    result
        .map(|s| (text(&s).to_owned(), s.version))
        .map_err(|e| e.is_not_found())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// When every write goes through the cache, every read answers exactly what the backend
    /// would, whatever the TTLs, the bound and the order of operations.
    #[test]
    fn reads_through_the_cache_match_the_backend(
        ops in proptest::collection::vec(op(), 1..60),
        negative in any::<bool>(),
        max_entries in 1..8u64,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut builder = CacheConfig::builder().ttl(SECS(10)).max_entries(max_entries);
            if negative {
                builder = builder.negative_ttl(SECS(3));
            }
            let (cache, store, clock) = cached(builder);
            let keys: Vec<_> = (0..4).map(|i| key(&format!("p/{i}"))).collect();
            for op in ops {
                match op {
                    Op::Get(k) => {
                        let k = &keys[usize::from(k)];
                        let want = seen(store.get(k).await);
                        prop_assert_eq!(seen(cache.get(k).await), want);
                    }
                    Op::GetVersion(k, v) => {
                        let (k, v) = (&keys[usize::from(k)], VersionId::from(u64::from(v)));
                        let want = seen(store.get_version(k, &v).await);
                        prop_assert_eq!(seen(cache.get_version(k, &v).await), want);
                    }
                    Op::Put(k, v) => {
                        cache.put(&keys[usize::from(k)], SecretValue::from(v.to_string())).await.unwrap();
                    }
                    Op::Delete(k) => {
                        let _ = cache.delete(&keys[usize::from(k)]).await;
                    }
                    Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
                    Op::Invalidate(k) => cache.invalidate(&keys[usize::from(k)]),
                }
            }
            Ok(())
        })?;
    }
}

// ---- circuit breaker ----

/// A cache with a breaker of 3 failures and a 5 s cool-down, holding `app/db` = "old",
/// expired (but within max_stale) and the backend down.
async fn open_breaker() -> (CachedStore<MemoryStore>, Backend, ManualClock, SecretName) {
    let (cache, store, clock) = cached(
        CacheConfig::builder()
            .ttl(SECS(10))
            .max_stale(SECS(600))
            .breaker(3, SECS(5)),
    );
    let k = key("app/db");
    store.set(&k, "old");
    cache.get(&k).await.unwrap();
    clock.advance(SECS(11));
    store.fail(UNAVAILABLE);
    for n in 1..=3 {
        let (secret, status) = cache.get_with_status(&k).await;
        assert_eq!(
            (text(&secret.unwrap()), status),
            ("old", CacheStatus::Stale)
        );
        assert_eq!(store.gets(), 1 + n, "read {n} asked the store");
    }
    assert_eq!(cache.breaker_state(), BreakerState::Open);
    (cache, store, clock, k)
}

#[tokio::test]
async fn an_open_breaker_answers_stale_reads_without_asking_the_store() {
    let (cache, store, _clock, k) = open_breaker().await;
    for _ in 0..100 {
        let (secret, status) = cache.get_with_status(&k).await;
        assert_eq!(
            (text(&secret.unwrap()), status),
            ("old", CacheStatus::Stale)
        );
    }
    assert_eq!(store.gets(), 4, "an open breaker let reads through");
    let stats = cache.stats();
    assert!(stats.breaker_open, "{stats:?}");
    assert_eq!((stats.breaker_opened, stats.stale_served), (1, 103));

    // A key with nothing stale fails at once, without a call.
    let cold = key("app/cold");
    store.set(&cold, "never-read");
    let err = cache.get(&cold).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("circuit breaker open"), "{err}");
    assert_eq!(store.gets(), 4);
    assert_eq!(cache.stats().breaker_refused, 1);
}

#[tokio::test]
async fn an_open_breaker_fails_writes_fast_without_touching_the_cache() {
    let (cache, store, _clock, k) = open_breaker().await;
    let err = cache.put(&k, SecretValue::from("new")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        store.puts(),
        0,
        "a write reached the store while the breaker was open"
    );
    assert!(cache.delete(&k).await.unwrap_err().is_retryable());
    assert!(cache.list("app").await.unwrap_err().is_retryable());
    // The stale entry is still there to serve.
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("old", CacheStatus::Stale)
    );
    assert_eq!(cache.stats().breaker_refused, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_probe_per_cool_down_and_a_success_closes_the_breaker() {
    let (cache, store, clock, k) = open_breaker().await;
    // Cool-down over, store still down: the next read answers stale at once and one probe
    // goes out in the background; it fails and the breaker opens again.
    clock.advance(SECS(5));
    assert_eq!(cache.breaker_state(), BreakerState::HalfOpen);
    store.delay(50);
    for _ in 0..20 {
        let (secret, status) = cache.get_with_status(&k).await;
        assert_eq!(
            (text(&secret.unwrap()), status),
            ("old", CacheStatus::Stale)
        );
    }
    eventually("the probe", || store.gets() == 5).await;
    eventually("the breaker to open again", || {
        cache.breaker_state() == BreakerState::Open
    })
    .await;
    assert_eq!(store.gets(), 5, "more than one probe in a cool-down");

    // The store is back; within one cool-down a probe finds it, fills the cache and
    // closes the breaker, and reads are fresh again.
    store.delay(0);
    store.fail(OK);
    store.set(&k, "new");
    clock.advance(SECS(5));
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!(
        (text(&secret.unwrap()), status),
        ("old", CacheStatus::Stale)
    );
    eventually("the breaker to close", || {
        cache.breaker_state() == BreakerState::Closed
    })
    .await;
    let (secret, status) = cache.get_with_status(&k).await;
    assert_eq!((text(&secret.unwrap()), status), ("new", CacheStatus::Hit));
    assert_eq!(store.gets(), 6);
    assert!(!cache.stats().breaker_open);
}

#[tokio::test]
async fn only_unavailable_counts_toward_the_breaker() {
    let (cache, store, clock) = cached(CacheConfig::builder().ttl(SECS(10)).breaker(2, SECS(5)));
    let k = key("app/denied");
    store.set(&k, "v");
    store.fail(DENIED);
    for _ in 0..10 {
        assert!(cache.get(&k).await.is_err());
    }
    assert_eq!(cache.breaker_state(), BreakerState::Closed);
    assert_eq!(store.gets(), 10);

    // Failures must be consecutive: one success in between resets the count.
    store.fail(UNAVAILABLE);
    assert!(cache.get(&k).await.is_err());
    store.fail(OK);
    cache.get(&k).await.unwrap();
    clock.advance(SECS(11));
    store.fail(UNAVAILABLE);
    assert!(cache.get(&k).await.is_err());
    assert_eq!(cache.breaker_state(), BreakerState::Closed);

    let (off, store, _) = cached(CacheConfig::builder().no_breaker());
    store.fail(UNAVAILABLE);
    for _ in 0..20 {
        assert!(off.get(&k).await.is_err());
    }
    assert_eq!(
        (store.gets(), off.breaker_state()),
        (20, BreakerState::Closed)
    );
}

// ---- sweeping ----

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn expired_values_are_swept_within_one_interval_of_no_longer_being_servable() {
    const INTERVAL: Duration = Duration::from_millis(20);
    let (cache, store, clock) = cached(
        CacheConfig::builder()
            .ttl(SECS(10))
            .max_stale(SECS(20))
            .sweep_interval(INTERVAL),
    );
    let k = key("app/short-lived");
    store.set(&k, "wipe-me");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap(); // from this thread's copy
    assert_eq!((cache.stats().entries, cache.stats().thread_copies), (1, 1));

    // Past the TTL the copy may not be served any more, and goes; the entry stays as a
    // stale fallback until TTL + max_stale.
    clock.advance(SECS(10));
    tokio::time::sleep(INTERVAL * 5).await;
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.thread_copies), (1, 0), "{stats:?}");
    clock.advance(SECS(20) - Duration::from_nanos(1));
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(cache.stats().entries, 1, "swept while still servable");

    clock.advance(Duration::from_nanos(1));
    let servable_until = std::time::Instant::now();
    eventually("the sweep", || cache.stats().entries == 0).await;
    let took = servable_until.elapsed();
    // The measured bound, for the report.
    eprintln!(
        "value left memory {took:?} after it could no longer be served (interval {INTERVAL:?})"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let stats = cache.stats();
    assert_eq!((stats.swept, stats.weight), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn copies_of_threads_that_ended_are_swept_and_cleared_with_the_cache() {
    let (cache, store, _) =
        cached(CacheConfig::builder().sweep_interval(Duration::from_millis(20)));
    let k = key("app/thread");
    store.set(&k, "v");
    cache.get(&k).await.unwrap();
    let reader = cache.clone();
    let k2 = k.clone();
    std::thread::spawn(move || {
        for _ in 0..3 {
            assert_eq!(text(&reader.cached(&k2).unwrap()), "v");
        }
    })
    .join()
    .unwrap();
    eventually("the ended thread's copy to be swept", || {
        cache.stats().thread_copies == 0
    })
    .await;

    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    assert_eq!(cache.stats().thread_copies, 1);
    cache.clear();
    assert_eq!(cache.stats().thread_copies, 0);
}

// ---- per-thread copies ----

#[test]
fn every_thread_sees_an_invalidation_and_a_write_at_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (cache, store, _) = cached(CacheConfig::builder().ttl(SECS(3600)));
    let k = key("app/rotated");
    store.set(&k, "v0");
    runtime.block_on(cache.get(&k)).unwrap();
    let round = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, k, round, stop) = (cache.clone(), k.clone(), round.clone(), stop.clone());
            let total = Arc::clone(&total);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    // The round is read before the value: a write that finished before this
                    // read started must be seen, never the value before it.
                    let at_least = round.load(Ordering::SeqCst);
                    if let Some(secret) = cache.cached(&k) {
                        let seen: u64 = text(&secret)[1..].parse().unwrap();
                        assert!(
                            seen >= at_least,
                            "read v{seen} after v{at_least} was written"
                        );
                        reads += 1;
                        total.fetch_add(1, Ordering::SeqCst);
                    }
                }
                reads
            })
        })
        .collect();
    'writes: for n in 1..=200u64 {
        // Let the readers read (from their copies) between writes; a reader that stopped
        // has failed, and joining it below says why.
        let before = total.load(Ordering::SeqCst);
        while total.load(Ordering::SeqCst) < before + 4 {
            if readers.iter().any(std::thread::JoinHandle::is_finished) {
                break 'writes;
            }
            std::thread::yield_now();
        }
        runtime
            .block_on(cache.put(&k, SecretValue::from(format!("v{n}"))))
            .unwrap();
        round.store(n, Ordering::SeqCst);
        if n % 50 == 0 {
            cache.invalidate(&k);
            runtime.block_on(cache.get(&k)).unwrap();
        }
    }
    stop.store(true, Ordering::SeqCst);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
}

#[tokio::test]
async fn copies_are_bounded_per_thread_and_can_be_turned_off() {
    let (cache, store, _) = cached(CacheConfig::builder().thread_copies(4));
    for n in 0..10 {
        let k = key(&format!("app/k{n}"));
        store.set(&k, "v");
        for _ in 0..3 {
            cache.get(&k).await.unwrap();
        }
        assert!(cache.stats().thread_copies <= 4, "{:?}", cache.stats());
    }
    let (off, store, _) = cached(CacheConfig::builder().thread_copies(0));
    let k = key("app/k");
    store.set(&k, "v");
    for _ in 0..5 {
        off.get(&k).await.unwrap();
    }
    assert_eq!(off.stats().thread_copies, 0);
    assert_eq!(off.stats().hits, 4);
}
