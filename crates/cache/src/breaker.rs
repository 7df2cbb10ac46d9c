//! The circuit breaker in front of the cached store: after so many consecutive
//! `Unavailable` answers the store is not asked for a cool-down, and then only by one probe
//! at a time, so that an outage costs a reader microseconds instead of the client's request
//! timeout and retry budget.
//!
//! States, read from three atomics:
//!
//! - **closed** (`failures < threshold`): every call goes to the store.
//! - **open** (`failures >= threshold`, `now < open_until`): calls are refused at once with
//!   `Unavailable`; reads answer from a stale entry (or, in the facade, the mirror).
//! - **half-open** (`failures >= threshold`, `now >= open_until`): one call, the probe, goes
//!   to the store; the others are still refused. A probe that reaches the store (any answer
//!   but `Unavailable`) closes the breaker; one that fails opens it for another cool-down.
//!
//! Any answer from the store that is not `Unavailable` (`NotFound`, `PermissionDenied`...)
//! counts as reachable: the breaker is about the store answering, not about what it says.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use strongroom_core::Error;

use crate::clock::nanos;
use crate::stats::{Counter, Counters};

/// Consecutive `Unavailable` answers that open the breaker, unless configured otherwise.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before letting one probe through, unless
/// configured otherwise.
pub const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_secs(1);

/// The state of a [`CachedStore`](crate::CachedStore)'s circuit breaker; see
/// [`CachedStore::breaker_state`](crate::CachedStore::breaker_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go to the store.
    Closed,
    /// The store failed too often: calls are refused until the cool-down ends.
    Open,
    /// The cool-down is over: the next call (one at a time) probes the store.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// One store's breaker. `threshold == 0` never opens (the breaker is off).
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: u64,
    /// Consecutive `Unavailable` answers (saturating).
    failures: AtomicU32,
    /// Tick of the cache clock before which an open breaker refuses every call.
    open_until: AtomicU64,
    /// A probe is at the store.
    probing: AtomicBool,
}

/// Leave to call the store, from [`Breaker::admit`]; say how it went with
/// [`finish`](Self::finish). Dropped unfinished (a cancelled call), it frees the probe slot
/// and changes nothing else.
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold,
            cool_down: nanos(cool_down).max(1),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// True while calls are being refused or probed (open or half-open). One load on the
    /// closed path.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.threshold != 0 && self.failures.load(Ordering::Acquire) >= self.threshold
    }

    pub(crate) fn state(&self, now: u64) -> BreakerState {
        if !self.is_open() {
            BreakerState::Closed
        } else if now < self.open_until.load(Ordering::Acquire) {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }

    /// True when an open breaker would let a probe through now.
    pub(crate) fn probe_due(&self, now: u64) -> bool {
        self.is_open()
            && now >= self.open_until.load(Ordering::Acquire)
            && !self.probing.load(Ordering::Acquire)
    }

    /// Leave to call the store, or the `Unavailable` error to answer instead (counted in
    /// `breaker_refused`).
    pub(crate) fn admit(
        &self,
        now: u64,
        backend: &'static str,
        counters: &Counters,
    ) -> Result<Permit<'_>, Error> {
        if !self.is_open() {
            return Ok(Permit {
                breaker: self,
                probe: false,
            });
        }
        let until = self.open_until.load(Ordering::Acquire);
        if now >= until
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Ok(Permit {
                breaker: self,
                probe: true,
            });
        }
        counters.add(Counter::BreakerRefused);
        let wait_ms = until.saturating_sub(now) / 1_000_000;
        Err(Error::unavailable(
            backend,
            format!(
                "circuit breaker open after {} consecutive unavailable answers; the next probe goes out in {wait_ms} ms or when the one in flight returns",
                self.threshold
            ),
        ))
    }

    /// Leave for a call that must reach the store whatever the state (a health probe): it
    /// is never refused, takes no probe slot, and its answer counts as any other's.
    pub(crate) fn bypass(&self) -> Permit<'_> {
        Permit {
            breaker: self,
            probe: false,
        }
    }
}

impl Permit<'_> {
    /// Records the store's answer: `reached` is false for `Unavailable` (the store did not
    /// answer), true for anything else.
    pub(crate) fn finish(
        self,
        reached: bool,
        now: u64,
        backend: &'static str,
        counters: &Counters,
    ) {
        let breaker = self.breaker;
        if breaker.threshold == 0 {
            return;
        }
        if reached {
            // Most calls find the count at zero: reading first spares the shared line a write.
            if breaker.failures.load(Ordering::Acquire) == 0 {
                return;
            }
            let before = breaker.failures.swap(0, Ordering::AcqRel);
            if before >= breaker.threshold {
                tracing::info!(backend, "store reachable again: circuit breaker closed");
            }
        } else {
            let before = breaker
                .failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_add(1))
                })
                .unwrap_or(u32::MAX);
            let failures = before.saturating_add(1);
            if failures >= breaker.threshold {
                // Stored before a probe frees its slot, so no second probe slips in on the
                // old deadline.
                breaker
                    .open_until
                    .store(now.saturating_add(breaker.cool_down), Ordering::Release);
                if before < breaker.threshold {
                    counters.add(Counter::BreakerOpened);
                    tracing::warn!(
                        backend,
                        failures,
                        cool_down_ms = breaker.cool_down / 1_000_000,
                        "store unavailable: circuit breaker open, reads answer from stale entries"
                    );
                }
            }
        }
        // `Drop` frees the probe slot.
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn fail(breaker: &Breaker, now: u64, counters: &Counters) -> bool {
        match breaker.admit(now, "test", counters) {
            Ok(permit) => {
                permit.finish(false, now, "test", counters);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn opens_after_the_threshold_probes_one_at_a_time_and_closes_on_success() {
        let counters = Counters::new();
        let breaker = Breaker::new(3, Duration::from_millis(100));
        assert!(fail(&breaker, 0, &counters));
        assert!(fail(&breaker, 0, &counters));
        assert_eq!(breaker.state(0), BreakerState::Closed);
        assert!(fail(&breaker, 0, &counters));
        assert_eq!(breaker.state(0), BreakerState::Open);
        assert_eq!(counters.sum(Counter::BreakerOpened), 1);

        // Refused during the cool-down, without reaching the store.
        let err = breaker.admit(99 * MS, "test", &counters).err().unwrap();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(counters.sum(Counter::BreakerRefused), 1);

        // Half-open: one probe, the others refused while it runs.
        assert_eq!(breaker.state(100 * MS), BreakerState::HalfOpen);
        let probe = breaker.admit(100 * MS, "test", &counters).unwrap();
        assert!(breaker.admit(100 * MS, "test", &counters).is_err());
        // A failed probe opens it for another cool-down.
        probe.finish(false, 100 * MS, "test", &counters);
        assert_eq!(breaker.state(150 * MS), BreakerState::Open);
        assert_eq!(
            counters.sum(Counter::BreakerOpened),
            1,
            "a failed probe is not a new opening"
        );

        // A cancelled probe frees the slot.
        drop(breaker.admit(200 * MS, "test", &counters).unwrap());
        let probe = breaker.admit(200 * MS, "test", &counters).unwrap();
        probe.finish(true, 200 * MS, "test", &counters);
        assert_eq!(breaker.state(200 * MS), BreakerState::Closed);
        assert!(breaker.admit(200 * MS, "test", &counters).is_ok());
    }

    #[test]
    fn a_bypass_is_never_refused_and_its_answer_counts() {
        let counters = Counters::new();
        let breaker = Breaker::new(2, Duration::from_secs(60));
        // Two failures through bypasses open it, as any other two would.
        breaker.bypass().finish(false, 0, "test", &counters);
        breaker.bypass().finish(false, 0, "test", &counters);
        assert_eq!(breaker.state(MS), BreakerState::Open);
        assert!(breaker.admit(MS, "test", &counters).is_err());
        // Open, a bypass still goes through, and reaching the store closes it.
        breaker.bypass().finish(true, MS, "test", &counters);
        assert_eq!(breaker.state(MS), BreakerState::Closed);
        assert!(breaker.admit(MS, "test", &counters).is_ok());

        // While a probe is out, a bypass neither waits for its slot nor takes it.
        breaker.bypass().finish(false, 0, "test", &counters);
        breaker.bypass().finish(false, 0, "test", &counters);
        let later = 61_000 * MS;
        let probe = breaker.admit(later, "test", &counters).unwrap();
        breaker.bypass().finish(false, later, "test", &counters);
        assert!(
            breaker.admit(later, "test", &counters).is_err(),
            "the slot is still taken"
        );
        drop(probe);
        assert_eq!(
            counters.sum(Counter::BreakerOpened),
            2,
            "failed bypasses while open are not new openings"
        );
    }

    #[test]
    fn a_success_resets_the_count_and_zero_never_opens() {
        let counters = Counters::new();
        let breaker = Breaker::new(2, Duration::from_secs(1));
        assert!(fail(&breaker, 0, &counters));
        breaker
            .admit(0, "test", &counters)
            .unwrap()
            .finish(true, 0, "test", &counters);
        assert!(fail(&breaker, 0, &counters));
        assert_eq!(breaker.state(0), BreakerState::Closed, "not consecutive");

        let off = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            assert!(fail(&off, 0, &counters));
        }
        assert_eq!(off.state(0), BreakerState::Closed);
    }
}
