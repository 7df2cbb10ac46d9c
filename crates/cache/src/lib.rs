//! A TTL cache over any strongroom [`SecretStore`](strongroom_core::SecretStore):
//! [`CachedStore`] wraps a store and is one itself, so an application reads secrets on a hot
//! path without asking Vault or AWS every time.
//!
//! It is built on [quick_cache] and adds what a secrets cache needs: a TTL, a bound on entries
//! or bytes, single flight for concurrent misses (errors included), stale-if-error while the
//! backend is unavailable, a circuit breaker, refresh-ahead for hot keys, optional negative
//! caching, invalidation on writes made through it, a sweep of expired values, per-thread
//! copies of hot entries, [`CacheStats`], and a feed of [`Change`]s.
//! [`CachedStore::get_with_status`] tells the caller whether a read was a hit, a miss or
//! stale, for audit trails.
//!
//! ```
//! use std::time::Duration;
//! use strongroom_cache::{CacheConfig, CacheStatus, CachedStore};
//! use strongroom_core::{SecretName, SecretStore, SecretValue};
//! # let backend = strongroom_core::testing::MemoryStore::new();
//! # backend.insert(&SecretName::new("app/db/password").unwrap(), "first");
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = CacheConfig::builder()
//!     .ttl(Duration::from_secs(60))
//!     .max_entries(1_000)
//!     .max_stale(Duration::from_secs(600))
//!     .refresh_ahead(0.2)
//!     .build()?;
//! let store = CachedStore::with_config(backend, config);
//! let key = SecretName::new("app/db/password")?;
//!
//! let (secret, status) = store.get_with_status(&key).await;
//! assert_eq!((secret?.value.expose_str()?, status), ("first", CacheStatus::Miss));
//! let again = store.get(&key).await?; // from the cache
//! assert_eq!(again.value.expose_str()?, "first");
//!
//! store.put(&key, SecretValue::from("second")).await?; // caches what it wrote
//! assert_eq!(store.get(&key).await?.value.expose_str()?, "second");
//! assert_eq!((store.stats().hits, store.stats().misses), (2, 1));
//! # Ok::<(), strongroom_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! `CachedStore<Arc<dyn SecretStore>>` works as well, for a backend chosen at run time.
//!
//! # Decisions
//!
//! - **Single flight is this crate's own**, a map of in-flight loads whose outcome every
//!   waiting reader shares. quick_cache's
//!   `get_value_or_guard_async` does not fit: an expired entry is still resident, so it yields
//!   the old value rather than a guard, and a guard dropped after a failed load wakes waiters
//!   one at a time to retry, which is N backend calls for N readers of a failing key. Errors
//!   are shared with the readers that waited, never cached (except `NotFound` with negative
//!   caching on).
//! - **A successful `put` caches what it wrote** (its version from the backend, the time of
//!   the write, the metadata it set or the cached one): a process reads its own writes without
//!   a round trip, and still has a value to serve if the backend goes down right after. A put
//!   without metadata of a key not cached, on a backend that keeps metadata, only drops the
//!   entry: the secret's description and tags are not known here, and the next read loads
//!   them (the conformance suite caught the cache serving them empty). A
//!   concurrent writer elsewhere is seen when the entry expires, as with any cached read.
//!   **A failed `put` only expires the entry**: the write may have reached the backend (a
//!   timeout after sending), so the next read asks the backend, and the old value is kept as
//!   a stale fallback for while the backend is unavailable. Loads racing a write are never
//!   cached over it.
//! - **Versions are cached per (key, version) with the normal TTL**: their value never changes,
//!   but they can be deleted or destroyed elsewhere; the TTL bounds how long that goes
//!   unseen. `list` and `versions` are never cached.
//! - **Time comes from a coarse clock** by default ([`Clock::coarse`]): reading
//!   `Instant::now()` costs as much as a whole hit. One bound applies at a time ([`Bound`]).
//! - **Stale serving and negative caching are off by default**: serving a secret past its TTL
//!   or hiding a new one is a choice the application makes.
//! - **A hit writes no memory another thread reads.** Each reading thread keeps its own
//!   copy of the entries it reads (a second zeroizing copy of each value, per thread, up to
//!   [`CacheConfig::thread_copies`]), valid while a generation counter that every change to
//!   the entries bumps is unchanged; so one hot key read on every core scales with the
//!   cores instead of passing quick_cache's lock word and the `Arc` counts between them.
//!   An invalidation or write is seen by every read that starts after it returns. The first
//!   hit on a thread reads quick_cache (its shard read lock) and makes the copy; neither
//!   path allocates after that. [`CachedStore::get_if_cached`] is the same without a future.
//! - **A circuit breaker per store**: after consecutive `Unavailable` answers the store is
//!   not asked for a cool-down ([`CacheConfigBuilder::breaker`]); reads answer from stale
//!   entries in microseconds, writes fail fast with `Unavailable`, one probe at a time
//!   notices recovery. An open breaker refuses writes rather than letting them wait out the
//!   client's timeout and retries: the store did not answer the last several calls, and a
//!   write that cannot be served locally is better refused at once than late.
//! - **Expired values leave memory on a schedule**: a sweep thread shared by every cache
//!   drops entries past TTL + `max_stale` every [`CacheConfig::sweep_interval`] and wipes
//!   their values, not only when the bound forces an eviction.

mod breaker;
mod change;
mod clock;
mod config;
mod entry;
mod error;
mod flight;
mod stats;
mod store;
mod striped;
mod sweep;
mod table;

pub use breaker::{BreakerState, DEFAULT_BREAKER_COOL_DOWN, DEFAULT_BREAKER_THRESHOLD};
pub use change::{CHANGE_CAPACITY, Change, ChangeCause};
pub use clock::{COARSE_RESOLUTION, Clock, ManualClock};
pub use config::{
    Bound, CacheConfig, CacheConfigBuilder, DEFAULT_MAX_ENTRIES, DEFAULT_SWEEP_INTERVAL,
    DEFAULT_THREAD_COPIES, DEFAULT_TTL,
};
pub use error::ConfigError;
pub use stats::CacheStats;
pub use store::{CacheStatus, CachedStore};
pub use table::MAX_COPY_BYTES;
