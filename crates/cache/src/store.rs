//! [`CachedStore`]: the cache itself, and its [`SecretStore`] implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Equivalent, OptionsBuilder};
use strongroom_core::{
    Capabilities, Error, NodeReport, PutOptions, Result, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo,
};

use crate::breaker::{Breaker, BreakerState};
use crate::change::{CHANGE_CAPACITY, Change, ChangeCause};
use crate::clock::nanos;
use crate::entry::{Answer, Entry, EvictionCounter, LatestQuery, Slot, Weigher};
use crate::flight::{Flight, Outcome};
use crate::stats::{Counter, Counters};
use crate::table::Table;
use crate::{Bound, CacheConfig, CacheStats, Clock};

/// Where a read's answer came from; for audit events and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheStatus {
    /// A fresh cached value.
    Hit,
    /// The backend was asked (by this read, or by a load this read waited for).
    Miss,
    /// The backend was unavailable and an expired value within `max_stale` was served.
    Stale,
    /// A cached `NotFound`.
    NegativeHit,
}

impl CacheStatus {
    /// A short lowercase name, stable for metrics labels and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::NegativeHit => "negative_hit",
        }
    }

    /// True when the backend was not asked (`Hit`, `NegativeHit`).
    pub fn is_cached(self) -> bool {
        matches!(self, Self::Hit | Self::NegativeHit)
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`SecretStore`] that caches the reads of another one.
///
/// - **TTL**: a value read from the backend is served for [`CacheConfig::ttl`] (default 300 s).
/// - **Bound**: at most so many entries or bytes ([`Bound`]); quick_cache's S3-FIFO-like policy
///   picks what to evict.
/// - **Single flight**: concurrent reads of a key that is not cached (or expired) make one
///   backend call; every reader gets its result, an error included.
/// - **Stale-if-error**: when that call fails with [`Error::Unavailable`], an expired value
///   younger than TTL + `max_stale` is served instead ([`CacheStatus::Stale`]).
/// - **Refresh-ahead**: a hit in the last part of the TTL starts one background reload of that
///   key; readers keep getting the cached value meanwhile, then the new one, without a miss.
/// - **Negative caching** of `NotFound` for the current version, with its own short TTL.
/// - **Writes through this object update it**: a successful `put` caches what it wrote as the
///   current version (with the metadata it set or the cached one; when neither is known and the
///   backend keeps metadata, it only drops the entry, and the next read loads it); a failed
///   `put` only expires the entry, keeping it as a stale fallback; `delete`, `undelete` and
///   `purge` drop every entry of the key. A load that was running when the write finished
///   still answers its waiting readers but is not cached.
/// - **Versions**: `get_version` is cached per (key, version) with the same TTL (a version's
///   value never changes, but it can be deleted or destroyed elsewhere, and the TTL bounds how
///   long that goes unnoticed). `list` and `versions` are not cached.
///
/// - **Circuit breaker**: after consecutive `Unavailable` answers calls are refused without
///   reaching the store for a cool-down; reads answer from stale entries, one probe at a
///   time notices recovery ([`CacheConfigBuilder::breaker`](crate::CacheConfigBuilder::breaker)).
/// - **Sweep**: entries past TTL + `max_stale` are dropped, their values wiped, every
///   [`CacheConfig::sweep_interval`].
///
/// Values stay zeroizing [`SecretValue`]s: a hit hands out a clone of the [`Secret`], which
/// shares the value's allocation rather than copying the bytes; from a thread's second hit
/// on a key on, the allocation is that thread's own copy (see
/// [`CacheConfig::thread_copies`]).
///
/// Clones share one cache. A hit on a thread's copy writes only memory of that thread (its
/// table's lock word, the copy's reference counts) and bumps a per-thread counter; it
/// allocates nothing.
pub struct CachedStore<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    inner: S,
    /// The entries, the per-thread copies of them and their sweep.
    table: Arc<Table>,
    breaker: Breaker,
    flights: Mutex<HashMap<Slot, Arc<Flight>>>,
    counters: Arc<Counters>,
    clock: Clock,
    config: CacheConfig,
    /// Config durations in clock ticks (nanoseconds).
    ttl: u64,
    negative_ttl: Option<u64>,
    max_stale: u64,
    refresh_after: Option<u64>,
    /// How long to wait before trying a failed refresh again.
    refresh_retry: u64,
    next_load: AtomicU64,
    /// Whether any `get_version` entry was ever cached: until then invalidating a key need
    /// not scan the cache for its versions.
    versions_cached: AtomicBool,
    /// Changes for subscribers; sending costs nothing when there are none.
    changes: tokio::sync::broadcast::Sender<Change>,
}

/// A fresh entry found by a lookup.
enum Fresh {
    Found { secret: Secret, refresh_due: bool },
    Missing { deleted: bool },
}

impl<S: SecretStore + 'static> CachedStore<S> {
    /// Caches `inner` with the default [`CacheConfig`].
    pub fn new(inner: S) -> Self {
        Self::with_config(inner, CacheConfig::default())
    }

    /// Caches `inner` as `config` says.
    pub fn with_config(inner: S, config: CacheConfig) -> Self {
        let counters = Arc::new(Counters::new());
        let (weight_capacity, estimated_items, by_bytes) = match config.bound() {
            Bound::Entries(n) => (n, n, false),
            Bound::Bytes {
                max_bytes,
                estimated_entries,
            } => (max_bytes, estimated_entries, true),
        };
        let options = OptionsBuilder::new()
            .estimated_items_capacity(usize::try_from(estimated_items).unwrap_or(usize::MAX))
            .weight_capacity(weight_capacity)
            .build()
            .expect("both capacities are set");
        let cache = Cache::with_options(
            options,
            Weigher { by_bytes },
            DefaultHashBuilder::default(),
            EvictionCounter(Arc::clone(&counters)),
        );
        let ttl = nanos(config.ttl());
        let refresh_after = config.refresh_after().map(nanos);
        let refresh_retry = refresh_after
            .map_or(0, |after| (ttl - after.min(ttl)) / 4)
            .max(1);
        let max_stale = nanos(config.max_stale());
        let table = Arc::new(Table::new(
            cache,
            config.thread_copies(),
            Arc::clone(&counters),
            config.clock().clone(),
            max_stale,
        ));
        table.start_sweeping(config.sweep_interval());
        let shared = Shared {
            clock: config.clock().clone(),
            ttl,
            negative_ttl: config.negative_ttl().map(nanos),
            max_stale,
            breaker: Breaker::new(config.breaker_threshold(), config.breaker_cool_down()),
            refresh_after,
            refresh_retry,
            config,
            inner,
            table,
            flights: Mutex::new(HashMap::new()),
            counters,
            next_load: AtomicU64::new(1),
            versions_cached: AtomicBool::new(false),
            changes: tokio::sync::broadcast::channel(CHANGE_CAPACITY).0,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The current version of `key`, and where the answer came from.
    ///
    /// This is [`SecretStore::get`] with the [`CacheStatus`] an audit trail wants. The cache
    /// is looked up when this is called, not when the future is first polled: a hit is then a
    /// ready future that allocates nothing, and only a miss boxes the load's state.
    pub fn get_with_status<'a>(
        &'a self,
        key: &'a SecretName,
    ) -> impl Future<Output = (Result<Secret>, CacheStatus)> + Send + 'a {
        let hit = self.get_if_cached(key);
        async move {
            match hit {
                Some(answer) => answer,
                None => Box::pin(self.read(Slot::Latest(key.clone()))).await,
            }
        }
    }

    /// The fresh cached current version of `key` (a `Hit`, counted as one), without awaiting
    /// anything; `None`, with nothing counted, when the cache has no fresh value for it
    /// (nothing, an expired entry, or a cached `NotFound`: see
    /// [`get_if_cached`](Self::get_if_cached)).
    ///
    /// The hot path of a read. It hands back the secret alone, 64 bytes with no tag to
    /// pack: returning `get_if_cached`'s `(Result, CacheStatus)` made every layer copy a
    /// pair whose payload starts at an odd offset, and those copies stalled on
    /// store-to-load forwarding (`perf annotate` of `probe facade-get`).
    #[inline]
    pub fn cached(&self, key: &SecretName) -> Option<Secret> {
        let shared = &*self.shared;
        // This thread's own copy first: a hit there writes no memory another thread reads.
        if let Some(secret) = shared.table.copy_hit(key, shared.clock.now()) {
            shared.counters.add(Counter::Hits);
            return Some(secret);
        }
        match shared.fresh_latest(key)? {
            Fresh::Found {
                secret,
                refresh_due,
            } => {
                self.shared.counters.add(Counter::Hits);
                if refresh_due {
                    self.start_refresh(key);
                }
                Some(secret)
            }
            Fresh::Missing { .. } => None,
        }
    }

    /// The answer for `key` if the cache has a fresh one (`Hit` or `NegativeHit`), without
    /// awaiting anything; `None` (and nothing counted) otherwise.
    #[inline]
    pub fn get_if_cached(&self, key: &SecretName) -> Option<(Result<Secret>, CacheStatus)> {
        let shared = &*self.shared;
        if let Some(secret) = shared.table.copy_hit(key, shared.clock.now()) {
            shared.counters.add(Counter::Hits);
            return Some((Ok(secret), CacheStatus::Hit));
        }
        let fresh = shared.fresh_latest(key)?;
        Some(self.answer(key, fresh))
    }

    /// Version `version` of `key`, and where the answer came from.
    pub async fn get_version_with_status(
        &self,
        key: &SecretName,
        version: &VersionId,
    ) -> (Result<Secret>, CacheStatus) {
        let slot = Slot::Version(key.clone(), version.clone());
        if let Some(Fresh::Found { secret, .. }) = self.shared.fresh(&slot) {
            self.shared.counters.add(Counter::Hits);
            return (Ok(secret), CacheStatus::Hit);
        }
        self.read(slot).await
    }

    /// Drops everything cached for `key` (current version and versions), and makes any load
    /// of it now running leave no entry behind.
    pub fn invalidate(&self, key: &SecretName) {
        self.shared.invalidate(key, true);
    }

    /// Drops every entry; loads now running leave no entry behind.
    pub fn clear(&self) {
        let shared = &self.shared;
        let mut flights = shared.lock_flights();
        for flight in flights.values() {
            flight.invalidate();
        }
        flights.clear();
        shared.table.clear();
        shared.versions_cached.store(false, Ordering::Relaxed);
    }

    /// Receives every [`Change`] from now on: successful writes through this cache, and
    /// changes its loads discover (a refresh-ahead or a reload after the TTL that finds another
    /// version or value, or finds the secret gone). Changes made elsewhere to keys that are not
    /// cached, or not read again, are not seen: this is not a watch on the backend.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.shared.changes.subscribe()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        CacheStats {
            hits: c.sum(Counter::Hits),
            misses: c.sum(Counter::Misses),
            stale_served: c.sum(Counter::StaleServed),
            loads: c.sum(Counter::Loads),
            load_errors: c.sum(Counter::LoadErrors),
            evictions: c.sum(Counter::Evictions),
            negative_hits: c.sum(Counter::NegativeHits),
            refreshes: c.sum(Counter::Refreshes),
            breaker_open: self.shared.breaker.is_open(),
            breaker_opened: c.sum(Counter::BreakerOpened),
            breaker_refused: c.sum(Counter::BreakerRefused),
            swept: c.sum(Counter::Swept),
            thread_copies: self.shared.table.copies(),
            entries: u64::try_from(self.shared.table.cache.len()).unwrap_or(u64::MAX),
            weight: self.shared.table.cache.weight(),
        }
    }

    /// The circuit breaker's state now: `Open` or `HalfOpen` while the store failed too often
    /// and calls are refused without reaching it (see
    /// [`CacheConfigBuilder::breaker`](crate::CacheConfigBuilder::breaker)).
    pub fn breaker_state(&self) -> BreakerState {
        self.shared.breaker.state(self.shared.clock.now())
    }

    /// Runs `call`, a request to the store made outside the cache (a health probe), whatever
    /// the breaker's state, and lets the breaker hear its answer as it hears its own calls':
    /// one that is not `Unavailable` closes an open breaker; an `Unavailable` counts towards
    /// opening it, and while it is open starts another cool-down. The call is never refused
    /// and takes no probe slot: its caller wants to see the store now, not the breaker's
    /// memory of it.
    pub async fn probe<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        let shared = &*self.shared;
        let permit = shared.breaker.bypass();
        let result = call.await;
        let reached = !matches!(&result, Err(err) if err.is_retryable());
        let backend = shared.inner.backend();
        permit.finish(reached, shared.clock.now(), backend, &shared.counters);
        result
    }

    /// Drops the entries past their TTL plus `max_stale` and the per-thread copies that may
    /// no longer be served, now; the background sweep does the same every
    /// [`CacheConfig::sweep_interval`].
    pub fn sweep(&self) {
        self.shared.table.sweep();
    }

    /// The configuration in force.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    /// The store being cached. Writes made directly to it bypass invalidation.
    pub fn inner(&self) -> &S {
        &self.shared.inner
    }

    /// Turns a fresh entry into a reader's answer, counting it.
    #[inline]
    fn answer(&self, key: &SecretName, fresh: Fresh) -> (Result<Secret>, CacheStatus) {
        let counters = &self.shared.counters;
        match fresh {
            Fresh::Found {
                secret,
                refresh_due,
            } => {
                counters.add(Counter::Hits);
                if refresh_due {
                    self.start_refresh(key);
                }
                (Ok(secret), CacheStatus::Hit)
            }
            Fresh::Missing { deleted } => {
                counters.add(Counter::NegativeHits);
                let err = Error::NotFound {
                    key: key.as_str().to_owned(),
                    version: None,
                    deleted,
                };
                (Err(err), CacheStatus::NegativeHit)
            }
        }
    }

    /// The slow path: join the slot's flight (or start one) and wait for its outcome.
    async fn read(&self, slot: Slot) -> (Result<Secret>, CacheStatus) {
        let shared = &*self.shared;
        if shared.breaker.is_open()
            && let Some(answer) = self.stale_while_open(&slot)
        {
            return answer;
        }
        let flight = {
            let mut flights = shared.lock_flights();
            // A load may have finished between the lookup and taking the lock: it inserts its
            // entry before leaving the map, so looking again under the lock cannot miss it.
            if let Some(fresh) = shared.fresh(&slot) {
                drop(flights);
                return self.answer(slot.key(), fresh);
            }
            Arc::clone(flights.entry(slot.clone()).or_default())
        };
        shared.counters.add(Counter::Misses);
        let outcome = flight
            .outcome
            .get_or_init(|| shared.load(&slot, &flight))
            .await;
        match outcome {
            Outcome::Loaded(secret) => (Ok(secret.clone()), CacheStatus::Miss),
            Outcome::Stale(secret) => {
                shared.counters.add(Counter::StaleServed);
                (Ok(secret.clone()), CacheStatus::Stale)
            }
            Outcome::Failed(err) => (Err(err.clone()), CacheStatus::Miss),
        }
    }

    /// While the breaker is open: the stale entry of `slot` to answer at once, if it has one
    /// within `max_stale`, instead of joining a load that would wait for the store (a probe
    /// can take the client's whole timeout). When a probe is due, one starts in the
    /// background, and its success fills the cache and closes the breaker.
    #[cold]
    #[inline(never)]
    fn stale_while_open(&self, slot: &Slot) -> Option<(Result<Secret>, CacheStatus)> {
        let shared = &*self.shared;
        // Without a runtime there is nothing to probe in the background: the read takes the
        // normal path, where the load asks the breaker itself.
        tokio::runtime::Handle::try_current().ok()?;
        let now = shared.clock.now();
        let entry = shared.table.cache.peek(slot)?;
        let Answer::Found(secret) = entry.answer else {
            return None;
        };
        if now < entry.expires || now >= entry.expires.saturating_add(shared.max_stale) {
            return None;
        }
        if shared.breaker.probe_due(now) {
            self.spawn_load(slot.clone(), None);
        }
        shared.counters.add(Counter::Misses);
        shared.counters.add(Counter::StaleServed);
        Some((Ok(secret), CacheStatus::Stale))
    }

    /// Starts one background reload of `key`, unless one is running or there is no runtime.
    #[cold]
    #[inline(never)]
    fn start_refresh(&self, key: &SecretName) {
        self.spawn_load(Slot::Latest(key.clone()), Some(Counter::Refreshes));
    }

    /// Starts one background load of `slot` (counting it in `counter`), unless one is
    /// running or there is no runtime.
    fn spawn_load(&self, slot: Slot, counter: Option<Counter>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let flight = {
            // A busy lock means another reader is in there, most likely starting this very
            // refresh; the next hit in the window looks again, so skipping loses nothing.
            let Ok(mut flights) = self.shared.flights.try_lock() else {
                return;
            };
            if flights.contains_key(&slot) {
                return;
            }
            let flight = Arc::new(Flight::default());
            flights.insert(slot.clone(), Arc::clone(&flight));
            flight
        };
        if let Some(counter) = counter {
            self.shared.counters.add(counter);
        }
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            flight
                .outcome
                .get_or_init(|| shared.load(&slot, &flight))
                .await;
        });
    }
}

impl<S: SecretStore> Shared<S> {
    /// Runs `call` to the store through the breaker: the outer error is the open breaker's
    /// refusal (the store was not asked), the inner result the store's answer.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<Result<T>> {
        let backend = self.inner.backend();
        let permit = self
            .breaker
            .admit(self.clock.now(), backend, &self.counters)?;
        let result = call.await;
        let reached = !matches!(&result, Err(err) if err.is_retryable());
        permit.finish(reached, self.clock.now(), backend, &self.counters);
        Ok(result)
    }

    fn lock_flights(&self) -> MutexGuard<'_, HashMap<Slot, Arc<Flight>>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh current-version entry of `key`, if any; a fresh secret found is also
    /// copied for this thread (see [`Table`]).
    #[inline]
    fn fresh_latest(&self, key: &SecretName) -> Option<Fresh> {
        let generation = self.table.generation();
        let now = self.clock.now();
        let entry = self.table.cache.get(&LatestQuery(key))?;
        if now >= entry.expires {
            return None;
        }
        if now < entry.refresh {
            self.table.install(key, &entry, generation);
        }
        Some(Self::fresh_answer(entry, now))
    }

    /// The fresh entry for `query`, if any.
    #[inline]
    fn fresh<Q: std::hash::Hash + Equivalent<Slot> + ?Sized>(&self, query: &Q) -> Option<Fresh> {
        let now = self.clock.now();
        let entry = self.table.cache.get(query)?;
        if now >= entry.expires {
            return None;
        }
        Some(Self::fresh_answer(entry, now))
    }

    #[inline]
    fn fresh_answer(entry: Entry, now: u64) -> Fresh {
        match entry.answer {
            Answer::Found(secret) => Fresh::Found {
                secret,
                refresh_due: now >= entry.refresh,
            },
            Answer::Missing { deleted } => Fresh::Missing { deleted },
        }
    }

    /// The one backend call of a flight: reads, updates the cache, removes the flight from the
    /// map, and returns what every reader of the flight gets.
    async fn load(&self, slot: &Slot, flight: &Arc<Flight>) -> Outcome {
        let backend = self.inner.backend();
        // An open breaker answers `Unavailable` without asking the store; the failure path
        // below then serves a stale entry as for any other outage.
        let result = match self
            .breaker
            .admit(self.clock.now(), backend, &self.counters)
        {
            Ok(permit) => {
                self.counters.add(Counter::Loads);
                let result = match slot {
                    Slot::Latest(key) => self.inner.get(key).await,
                    Slot::Version(key, version) => self.inner.get_version(key, version).await,
                };
                let reached = !matches!(&result, Err(err) if err.is_retryable());
                permit.finish(reached, self.clock.now(), backend, &self.counters);
                result
            }
            Err(refused) => Err(refused),
        };
        let now = self.clock.now();
        let load = self.next_load.fetch_add(1, Ordering::Relaxed);

        // Cache changes and the flight's removal happen under the map lock, so that an
        // invalidation either comes before (and the flight is flagged) or after (and removes
        // what was inserted).
        let mut flights = self.lock_flights();
        let current = !flight.is_invalidated();
        let outcome = match result {
            Ok(secret) => {
                if current {
                    let refresh = match (slot, self.refresh_after) {
                        (Slot::Latest(_), Some(after)) => now.saturating_add(after),
                        _ => u64::MAX,
                    };
                    if matches!(slot, Slot::Version(..)) {
                        self.versions_cached.store(true, Ordering::Relaxed);
                    }
                    if let (Slot::Latest(key), Some(previous)) = (slot, self.table.cache.peek(slot))
                    {
                        self.discovered(key, &previous, Some(&secret));
                    }
                    let entry = Entry {
                        answer: Answer::Found(secret.clone()),
                        expires: now.saturating_add(self.ttl),
                        refresh,
                        load,
                    };
                    self.table.insert(slot.clone(), entry);
                }
                tracing::debug!(key = %slot.key(), backend = self.inner.backend(), "cache load");
                Outcome::Loaded(secret)
            }
            Err(err) => {
                self.counters.add(Counter::LoadErrors);
                tracing::debug!(
                    key = %slot.key(),
                    backend = self.inner.backend(),
                    error = %err,
                    "cache load failed"
                );
                self.after_failed_load(slot, &err, now, load, current)
                    .unwrap_or_else(|| Outcome::Failed(err))
            }
        };
        if flights.get(slot).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(slot);
        }
        outcome
    }

    /// Updates the cache after a failed load (the map lock is held); returns a stale value
    /// to serve instead of the error, if one may be.
    fn after_failed_load(
        &self,
        slot: &Slot,
        err: &Error,
        now: u64,
        load: u64,
        current: bool,
    ) -> Option<Outcome> {
        let previous = self.table.cache.peek(slot);
        if err.is_not_found() {
            if current {
                if let (Slot::Latest(key), Some(previous)) = (slot, &previous) {
                    self.discovered(key, previous, None);
                }
                match (slot, self.negative_ttl) {
                    (Slot::Latest(_), Some(negative_ttl)) => {
                        let deleted = matches!(err, Error::NotFound { deleted: true, .. });
                        let entry = Entry {
                            answer: Answer::Missing { deleted },
                            expires: now.saturating_add(negative_ttl),
                            refresh: u64::MAX,
                            load,
                        };
                        self.table.insert(slot.clone(), entry);
                    }
                    // The secret is gone: whatever was cached for it must not be served.
                    _ => self.table.remove(slot),
                }
            }
            return None;
        }
        let previous = previous?;
        let Answer::Found(secret) = &previous.answer else {
            return None;
        };
        let stale_until = previous.expires.saturating_add(self.max_stale);
        if current {
            if now < previous.expires {
                // A refresh-ahead failed while the entry is still fresh: keep it, and wait a
                // while before the next refresh so a failing backend is not asked on every hit.
                let mut retry = previous.clone();
                retry.refresh = now.saturating_add(self.refresh_retry);
                self.table.replace(slot.clone(), retry);
            } else if now >= stale_until {
                // Too old to ever be served again: let it go (and its value be zeroized).
                let load = previous.load;
                self.table.remove_if(slot, load);
            }
        }
        let stale = err.is_retryable() && now < stale_until;
        if stale {
            tracing::warn!(
                key = %slot.key(),
                backend = self.inner.backend(),
                "backend unavailable: serving a stale cached value"
            );
        }
        stale.then(|| Outcome::Stale(secret.clone()))
    }

    /// Tells subscribers when a load finds something else than the cached entry held.
    fn discovered(&self, key: &SecretName, previous: &Entry, now: Option<&Secret>) {
        let Answer::Found(old) = &previous.answer else {
            return;
        };
        let changed = now.is_none_or(|new| new.version != old.version || new.value != old.value);
        if changed && self.changes.receiver_count() > 0 {
            let _ = self.changes.send(Change {
                key: key.clone(),
                version: now.map(|new| new.version.clone()),
                previous: Some(old.version.clone()),
                cause: ChangeCause::Discovered,
            });
        }
    }

    /// Tells subscribers about a successful write through the cache; call before invalidating.
    fn written(&self, key: &SecretName, version: Option<VersionId>, cause: ChangeCause) {
        if self.changes.receiver_count() == 0 {
            return;
        }
        let previous = match self.table.cache.peek(&LatestQuery(key)) {
            Some(Entry {
                answer: Answer::Found(old),
                ..
            }) => Some(old.version),
            _ => None,
        };
        let _ = self.changes.send(Change {
            key: key.clone(),
            version,
            previous,
            cause,
        });
    }

    /// Caches what a successful `put` wrote as the key's current version, and drops
    /// whatever else was cached for it.
    ///
    /// The metadata is the write's own, else the cached entry's (a put without metadata keeps
    /// it), else none where the backend keeps none. Otherwise what the backend holds is unknown
    /// here, so nothing is cached and the next read asks the backend: caching the value with
    /// empty metadata would hide the secret's description and tags.
    fn remember_written(
        &self,
        key: &SecretName,
        value: SecretValue,
        version: &VersionId,
        options: &PutOptions,
    ) {
        let caps = self.inner.capabilities();
        let metadata = match (&options.metadata, self.table.cache.peek(&LatestQuery(key))) {
            // A store whose reads carry no metadata (Secrets Manager) must look the same
            // cached or not: the entry holds none either.
            _ if caps.metadata && !caps.metadata_on_read => Some(Arc::default()),
            (Some(metadata), _) => Some(Arc::new(metadata.clone())),
            (
                None,
                Some(Entry {
                    answer: Answer::Found(old),
                    ..
                }),
            ) => Some(Arc::clone(&old.metadata)),
            (None, _) if !caps.metadata => Some(Arc::default()),
            (None, _) => None,
        };
        self.invalidate(key, false);
        let Some(metadata) = metadata else {
            return;
        };
        let mut secret =
            Secret::new(key.clone(), value, version.clone()).created(std::time::SystemTime::now());
        secret.metadata = metadata;
        let now = self.clock.now();
        let entry = Entry {
            answer: Answer::Found(secret),
            expires: now.saturating_add(self.ttl),
            refresh: self
                .refresh_after
                .map_or(u64::MAX, |after| now.saturating_add(after)),
            load: self.next_load.fetch_add(1, Ordering::Relaxed),
        };
        self.table.insert(Slot::Latest(key.clone()), entry);
    }

    /// Marks the key's current-version entry expired without dropping it: the next read
    /// goes to the backend, and the entry is served only as a stale fallback.
    fn expire(&self, key: &SecretName) {
        let _flights = self.lock_flights();
        if let Some(mut entry) = self.table.cache.peek(&LatestQuery(key)) {
            let now = self.clock.now();
            if entry.expires > now {
                entry.expires = now;
                self.table.insert(Slot::Latest(key.clone()), entry);
            }
        }
    }

    /// Drops the key's current-version entry, and with `versions` its version entries, and
    /// flags loads of them that are running.
    fn invalidate(&self, key: &SecretName, versions: bool) {
        let mut flights = self.lock_flights();
        flights.retain(|slot, flight| {
            let hit = match slot {
                Slot::Latest(k) => k == key,
                Slot::Version(k, _) => versions && k == key,
            };
            if hit {
                flight.invalidate();
            }
            !hit
        });
        self.table.remove(&LatestQuery(key));
        if versions && self.versions_cached.load(Ordering::Relaxed) {
            self.table
                .retain(|slot, _| !matches!(slot, Slot::Version(k, _) if k == key));
        }
    }
}

impl<S: SecretStore> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Entries are never listed: counts and settings only.
        let shared = &self.shared;
        f.debug_struct("CachedStore")
            .field("backend", &shared.inner.backend())
            .field("config", &shared.config)
            .field("entries", &shared.table.cache.len())
            .field("weight", &shared.table.cache.weight())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: SecretStore + 'static> SecretStore for CachedStore<S> {
    fn backend(&self) -> &'static str {
        self.shared.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.shared.inner.capabilities()
    }

    async fn nodes(&self) -> Vec<NodeReport> {
        self.shared.inner.nodes().await
    }

    async fn get(&self, key: &SecretName) -> Result<Secret> {
        self.get_with_status(key).await.0
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret> {
        self.get_version_with_status(key, version).await.0
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId> {
        // Refused by an open breaker, the write never reached the store: the cached value
        // stays as it was.
        let result = self
            .shared
            .guarded(self.shared.inner.put_with(key, value.clone(), options))
            .await?;
        match &result {
            Ok(version) => {
                self.shared
                    .written(key, Some(version.clone()), ChangeCause::Put);
                // Read your writes: the value just written is the current one. Metadata is
                // the write's own, else what was cached (a put without metadata keeps it).
                self.shared.remember_written(key, value, version, options);
            }
            // A failed write may still have reached the backend (a timeout after sending):
            // the cached value is no longer trusted as fresh, but it stays as a stale
            // fallback, so reads keep working while the backend is down.
            Err(_) => self.shared.expire(key),
        }
        result
    }

    async fn delete(&self, key: &SecretName) -> Result<()> {
        let result = self.shared.guarded(self.shared.inner.delete(key)).await?;
        if result.is_ok() {
            self.shared.written(key, None, ChangeCause::Delete);
        }
        self.shared.invalidate(key, true);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        self.shared.guarded(self.shared.inner.list(prefix)).await?
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>> {
        self.shared.guarded(self.shared.inner.versions(key)).await?
    }

    async fn undelete(&self, key: &SecretName) -> Result<()> {
        let result = self.shared.guarded(self.shared.inner.undelete(key)).await?;
        if result.is_ok() {
            self.shared.written(key, None, ChangeCause::Undelete);
        }
        self.shared.invalidate(key, true);
        result
    }

    async fn purge(&self, key: &SecretName) -> Result<()> {
        let result = self.shared.guarded(self.shared.inner.purge(key)).await?;
        if result.is_ok() {
            self.shared.written(key, None, ChangeCause::Purge);
        }
        self.shared.invalidate(key, true);
        result
    }
}
