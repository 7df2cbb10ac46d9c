//! [`CacheConfig`] and its builder: TTLs, the bound, stale-if-error, refresh-ahead.

use std::time::Duration;

use crate::breaker::{DEFAULT_BREAKER_COOL_DOWN, DEFAULT_BREAKER_THRESHOLD};
use crate::{Clock, ConfigError};

/// The TTL when none is set: five minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The entry bound when none is set.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// How often expired entries are swept out when not configured otherwise.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How many current-version entries each reading thread keeps its own copy of, unless
/// configured otherwise (see [`CacheConfigBuilder::thread_copies`]).
pub const DEFAULT_THREAD_COPIES: usize = 256;

/// What bounds the cache's size. One bound applies at a time: the last one set wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bound {
    /// At most this many entries (each version read through `get_version` is one entry).
    Entries(u64),
    /// At most this many bytes of key names plus values; `estimated_entries` only sizes the
    /// table up front.
    Bytes {
        /// The byte budget.
        max_bytes: u64,
        /// How many entries to expect, to size the table (not a limit).
        estimated_entries: u64,
    },
}

/// How a [`CachedStore`](crate::CachedStore) behaves. Build one with [`CacheConfig::builder`];
/// [`CacheConfig::default`] is a 300 s TTL, 10,000 entries, no stale serving, no
/// refresh-ahead, no negative caching, a circuit breaker that opens after 5 consecutive
/// `Unavailable` answers for 1 s, a sweep of expired entries every second, and 256 copies
/// per reading thread.
///
/// ```
/// use std::time::Duration;
/// use strongroom_cache::CacheConfig;
///
/// let config = CacheConfig::builder()
///     .ttl(Duration::from_secs(60))
///     .max_bytes(16 << 20)
///     .max_stale(Duration::from_secs(3600))
///     .refresh_ahead(0.2)
///     .negative_ttl(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(config.ttl(), Duration::from_secs(60));
/// # Ok::<(), strongroom_cache::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CacheConfig {
    ttl: Duration,
    bound: Bound,
    max_stale: Duration,
    refresh_ahead: Option<f64>,
    negative_ttl: Option<Duration>,
    breaker_threshold: u32,
    breaker_cool_down: Duration,
    sweep_interval: Duration,
    thread_copies: usize,
    clock: Clock,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            bound: Bound::Entries(DEFAULT_MAX_ENTRIES),
            max_stale: Duration::ZERO,
            refresh_ahead: None,
            negative_ttl: None,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cool_down: DEFAULT_BREAKER_COOL_DOWN,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            thread_copies: DEFAULT_THREAD_COPIES,
            clock: Clock::default(),
        }
    }
}

impl CacheConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CacheConfigBuilder {
        CacheConfigBuilder(Self::default())
    }

    /// How long a value read from the backend is served without asking again.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The size bound.
    pub fn bound(&self) -> Bound {
        self.bound
    }

    /// How long past its TTL a value may still be served while the backend is unavailable
    /// (zero: never).
    pub fn max_stale(&self) -> Duration {
        self.max_stale
    }

    /// The last part of the TTL, as a fraction, in which a hit starts a background reload.
    pub fn refresh_ahead(&self) -> Option<f64> {
        self.refresh_ahead
    }

    /// How long a `NotFound` is remembered, if at all.
    pub fn negative_ttl(&self) -> Option<Duration> {
        self.negative_ttl
    }

    /// Consecutive `Unavailable` answers that open the circuit breaker (0: no breaker).
    pub fn breaker_threshold(&self) -> u32 {
        self.breaker_threshold
    }

    /// How long an open breaker refuses calls before one probe goes to the store; also the
    /// time between probes while the store stays down.
    pub fn breaker_cool_down(&self) -> Duration {
        self.breaker_cool_down
    }

    /// How often entries past their TTL plus `max_stale` are swept out (real time).
    pub fn sweep_interval(&self) -> Duration {
        self.sweep_interval
    }

    /// How many current-version entries each reading thread keeps its own copy of (0: none).
    pub fn thread_copies(&self) -> usize {
        self.thread_copies
    }

    /// The time source.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The age at which refresh-ahead starts, if enabled.
    pub(crate) fn refresh_after(&self) -> Option<Duration> {
        self.refresh_ahead
            .map(|fraction| self.ttl.mul_f64(1.0 - fraction))
    }
}

/// Builds a [`CacheConfig`]; see there for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheConfigBuilder(CacheConfig);

impl CacheConfigBuilder {
    /// Time to live of a cached value (default 300 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.0.ttl = ttl;
        self
    }

    /// Bound the cache to `max` entries (the default bound, 10,000).
    pub fn max_entries(mut self, max: u64) -> Self {
        self.0.bound = Bound::Entries(max);
        self
    }

    /// Bound the cache to `max` bytes of key names and values, instead of an entry count.
    pub fn max_bytes(mut self, max: u64) -> Self {
        let estimated_entries = match self.0.bound {
            Bound::Entries(n) => n,
            Bound::Bytes {
                estimated_entries, ..
            } => estimated_entries,
        };
        self.0.bound = Bound::Bytes {
            max_bytes: max,
            estimated_entries,
        };
        self
    }

    /// Serve a value up to `max_stale` past its TTL when the backend answers `Unavailable`
    /// (default zero: never). Each such read is counted in `stale_served`.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.0.max_stale = max_stale;
        self
    }

    /// A hit in the last `fraction` of the TTL (0.2: the last 20 %) starts one background
    /// reload of that key, so that hot keys never miss. Needs a tokio runtime at the time of
    /// the hit; without one no refresh starts. Off by default.
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.0.refresh_ahead = Some(fraction);
        self
    }

    /// Remember a `NotFound` of the current version for `ttl` (off by default: a secret
    /// created elsewhere then shows up at once).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.0.negative_ttl = Some(ttl);
        self
    }

    /// The circuit breaker: after `threshold` consecutive `Unavailable` answers from the
    /// store, calls are refused at once for `cool_down` (reads answer from a stale entry when
    /// they have one, writes fail with `Unavailable` without reaching the store), then one
    /// probe at a time goes through; the first answer that is not `Unavailable` closes it.
    /// Default: 5 answers, 1 s.
    pub fn breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.0.breaker_threshold = threshold;
        self.0.breaker_cool_down = cool_down;
        self
    }

    /// No circuit breaker: every call goes to the store, however often it failed.
    pub fn no_breaker(mut self) -> Self {
        self.0.breaker_threshold = 0;
        self
    }

    /// How often a background sweep drops entries past their TTL plus `max_stale`, wiping
    /// their values (default 1 s). A value leaves memory at most about this long after it
    /// may no longer be served. The sweep runs on one thread shared by every cache in the
    /// process and visits the entries one shard at a time.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.0.sweep_interval = interval;
        self
    }

    /// How many current-version entries each thread that reads keeps a private copy of
    /// (default 256; 0 turns the copies off). A hit on a copy writes no memory another
    /// thread reads, so a hot key scales with cores; each copy is a second zeroizing copy of
    /// the value, wiped by the sweep once stale and when the cache drops.
    pub fn thread_copies(mut self, copies: usize) -> Self {
        self.0.thread_copies = copies;
        self
    }

    /// The time source (default [`Clock::coarse`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.0.clock = clock;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError`] for a zero TTL or bound, a refresh fraction outside (0, 1), a zero
    /// negative TTL, breaker cool-down or sweep interval.
    pub fn build(self) -> Result<CacheConfig, ConfigError> {
        let config = self.0;
        if config.ttl.is_zero() {
            return Err(ConfigError::ZeroTtl);
        }
        match config.bound {
            Bound::Entries(0) => {
                return Err(ConfigError::ZeroBound {
                    what: "max_entries",
                });
            }
            Bound::Bytes { max_bytes: 0, .. } => {
                return Err(ConfigError::ZeroBound { what: "max_bytes" });
            }
            _ => {}
        }
        if let Some(fraction) = config.refresh_ahead
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return Err(ConfigError::RefreshFraction { fraction });
        }
        if config.negative_ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(ConfigError::ZeroNegativeTtl);
        }
        if config.breaker_threshold > 0 && config.breaker_cool_down.is_zero() {
            return Err(ConfigError::ZeroDuration {
                what: "breaker cool_down",
            });
        }
        if config.sweep_interval.is_zero() {
            return Err(ConfigError::ZeroDuration {
                what: "sweep_interval",
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = CacheConfig::default();
        assert_eq!(config.ttl(), Duration::from_secs(300));
        assert_eq!(config.bound(), Bound::Entries(10_000));
        assert_eq!(config.max_stale(), Duration::ZERO);
        assert_eq!(config.refresh_ahead(), None);
        assert_eq!(config.negative_ttl(), None);
        assert_eq!(config.refresh_after(), None);
        assert_eq!(config.breaker_threshold(), 5);
        assert_eq!(config.breaker_cool_down(), Duration::from_secs(1));
        assert_eq!(config.sweep_interval(), Duration::from_secs(1));
        assert_eq!(config.thread_copies(), 256);
    }

    #[test]
    fn refresh_after_is_the_start_of_the_last_fraction() {
        let config = CacheConfig::builder()
            .ttl(Duration::from_secs(100))
            .refresh_ahead(0.2)
            .build()
            .unwrap();
        let after = config.refresh_after().unwrap();
        assert!((after.as_secs_f64() - 80.0).abs() < 1e-6, "{after:?}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let b = CacheConfig::builder;
        assert_eq!(
            b().ttl(Duration::ZERO).build().unwrap_err(),
            ConfigError::ZeroTtl
        );
        assert!(matches!(
            b().max_entries(0).build(),
            Err(ConfigError::ZeroBound {
                what: "max_entries"
            })
        ));
        assert!(matches!(
            b().max_bytes(0).build(),
            Err(ConfigError::ZeroBound { what: "max_bytes" })
        ));
        for fraction in [0.0, 1.0, -0.5, 2.0, f64::NAN] {
            assert!(
                matches!(
                    b().refresh_ahead(fraction).build(),
                    Err(ConfigError::RefreshFraction { .. })
                ),
                "{fraction}"
            );
        }
        assert_eq!(
            b().negative_ttl(Duration::ZERO).build().unwrap_err(),
            ConfigError::ZeroNegativeTtl
        );
        assert!(matches!(
            b().breaker(3, Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration { .. })
        ));
        assert!(matches!(
            b().sweep_interval(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration { .. })
        ));
        assert_eq!(
            b().breaker(0, Duration::ZERO)
                .build()
                .unwrap()
                .breaker_threshold(),
            0,
            "a breaker that is off needs no cool-down"
        );
        let err: strongroom_core::Error = ConfigError::ZeroTtl.into();
        assert!(matches!(err, strongroom_core::Error::Config { .. }));
    }

    #[test]
    fn max_bytes_keeps_the_entry_estimate() {
        let config = CacheConfig::builder()
            .max_entries(500)
            .max_bytes(1 << 20)
            .build()
            .unwrap();
        assert_eq!(
            config.bound(),
            Bound::Bytes {
                max_bytes: 1 << 20,
                estimated_entries: 500
            }
        );
    }
}
