//! Counters of what the cache did, and the [`CacheStats`] snapshot a caller reads.
//!
//! A hit must not make two threads fight over one cache line, so each counter is striped:
//! every thread adds to its own padded stripe, and a snapshot sums the stripes.

use crate::striped::StripedCounters;

/// What one counter counts; the index into a stripe.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Hits,
    Misses,
    StaleServed,
    Loads,
    LoadErrors,
    Evictions,
    NegativeHits,
    Refreshes,
    BreakerOpened,
    BreakerRefused,
    Swept,
}

const COUNTERS: usize = 11;

/// The cache's counters, striped per thread (see [`StripedCounters`]).
#[derive(Default)]
pub(crate) struct Counters(StripedCounters<COUNTERS>);

impl Counters {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        self.0.add(counter as usize);
    }

    pub(crate) fn sum(&self, counter: Counter) -> u64 {
        self.0.sum(counter as usize)
    }
}

/// A snapshot of a cache's counters, from [`CachedStore::stats`](crate::CachedStore::stats).
///
/// Every read of the current version counts once as a hit, a negative hit or a miss. A miss
/// waits for a backend load (its own, or one already running for the same key); when that
/// load fails with `Unavailable` and an expired entry is still within `max_stale`, the miss is
/// also counted in `stale_served`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from a fresh cached value.
    pub hits: u64,
    /// Reads that had to wait for the backend.
    pub misses: u64,
    /// Misses answered with an expired value because the backend was unavailable.
    pub stale_served: u64,
    /// Backend reads the cache made: misses after single flight, plus background refreshes.
    pub loads: u64,
    /// Backend reads that failed (`NotFound` included).
    pub load_errors: u64,
    /// Entries dropped to stay within the bound (not counting invalidations and `clear`).
    pub evictions: u64,
    /// Reads answered with a cached `NotFound`.
    pub negative_hits: u64,
    /// Background refresh-ahead reloads started.
    pub refreshes: u64,
    /// True while the circuit breaker is open or half-open: the store failed too often and
    /// calls are refused without reaching it (reads answer from stale entries).
    pub breaker_open: bool,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Calls the open breaker answered with `Unavailable` without asking the store.
    pub breaker_refused: u64,
    /// Entries the background sweep dropped because they were past TTL plus `max_stale`.
    pub swept: u64,
    /// Private per-thread copies of current-version entries held now, over all threads.
    pub thread_copies: u64,
    /// Entries in the cache now (expired ones included until replaced or evicted).
    pub entries: u64,
    /// Their total weight: bytes of key and value, or the entry count, as configured.
    pub weight: u64,
}

impl CacheStats {
    /// The share of reads answered from the cache (hits and negative hits), 0.0 to 1.0;
    /// 0.0 before the first read.
    pub fn hit_rate(&self) -> f64 {
        let answered = self.hits + self.negative_hits;
        let total = answered + self.misses;
        if total == 0 {
            0.0
        } else {
            // u64 -> f64 loses precision only past 2^53 reads, where a ratio does not care.
            #[allow(clippy::cast_precision_loss)]
            let rate = answered as f64 / total as f64;
            rate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striped_counters_sum_across_threads() {
        let counters = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.add(Counter::Hits);
                    }
                    counters.add(Counter::Misses);
                });
            }
        });
        assert_eq!(counters.sum(Counter::Hits), 4000);
        assert_eq!(counters.sum(Counter::Misses), 4);
        assert_eq!(counters.sum(Counter::Loads), 0);
    }

    #[test]
    fn hit_rate() {
        assert!(CacheStats::default().hit_rate().abs() < f64::EPSILON);
        let stats = CacheStats {
            hits: 6,
            negative_hits: 2,
            misses: 2,
            ..CacheStats::default()
        };
        assert!((stats.hit_rate() - 0.8).abs() < 1e-9);
    }
}
