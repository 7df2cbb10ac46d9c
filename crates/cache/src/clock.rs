//! [`Clock`]: where the cache reads the time, cheaply.
//!
//! Reading `Instant::now()` costs about as much as a whole cache hit (tens of nanoseconds on a
//! VM), so the default clock is *coarse*: one background thread per process stores the
//! elapsed time in an atomic every [`COARSE_RESOLUTION`], and a hit reads that atomic. Expiry is
//! then late by at most about one resolution step, which is nothing next to a TTL of minutes.
//! Tests drive a [`ManualClock`] instead, so expiry is deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How often the coarse clock's thread updates the time.
pub const COARSE_RESOLUTION: Duration = Duration::from_millis(10);

/// A monotonic time source for the cache, in nanoseconds since an origin of its own.
///
/// Clones share the same source. Choose one with [`CacheConfigBuilder::clock`](crate::CacheConfigBuilder::clock):
///
/// - [`Clock::coarse`] (the default): a hit reads one atomic; precision [`COARSE_RESOLUTION`].
/// - [`Clock::precise`]: `Instant::now()` on every read.
/// - [`ManualClock::clock`]: moves only when a test says so.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    Coarse(Arc<Ticker>),
    Precise(Instant),
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The coarse clock shared by every cache in the process; its thread stops when the
    /// last clock using it is dropped. Falls back to [`Clock::precise`] if the thread
    /// cannot be started.
    pub fn coarse() -> Self {
        Ticker::shared().map_or_else(Self::precise, |ticker| Self(Source::Coarse(ticker)))
    }

    /// A clock that reads `Instant::now()` every time.
    pub fn precise() -> Self {
        Self(Source::Precise(Instant::now()))
    }

    /// Nanoseconds since this clock's origin.
    #[inline]
    pub fn now(&self) -> u64 {
        match &self.0 {
            Source::Coarse(ticker) => ticker.now.load(Ordering::Relaxed),
            Source::Precise(origin) => nanos(origin.elapsed()),
            Source::Manual(now) => now.load(Ordering::Acquire),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::coarse()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Source::Coarse(_) => "Clock::Coarse",
            Source::Precise(_) => "Clock::Precise",
            Source::Manual(_) => "Clock::Manual",
        })
    }
}

/// A clock that only moves when told to: for tests of expiry, stale serving and refresh.
///
/// ```
/// use std::time::Duration;
/// use strongroom_cache::ManualClock;
///
/// let manual = ManualClock::new();
/// let clock = manual.clock();
/// manual.advance(Duration::from_secs(2));
/// assert_eq!(clock.now(), 2_000_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A [`Clock`] that reads this manual time.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(Arc::clone(&self.0)))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(nanos(by), Ordering::AcqRel);
    }
}

/// Converts a duration to whole nanoseconds, saturating (u64 nanoseconds last 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The shared state of the coarse clock: written by its thread, read by every hit.
struct Ticker {
    origin: Instant,
    now: AtomicU64,
}

/// The running ticker, if any; weak so that the thread stops once no cache uses it.
static RUNNING: Mutex<Weak<Ticker>> = Mutex::new(Weak::new());

impl Ticker {
    fn shared() -> Option<Arc<Self>> {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ticker) = running.upgrade() {
            return Some(ticker);
        }
        let ticker = Arc::new(Self {
            origin: Instant::now(),
            now: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&ticker);
        std::thread::Builder::new()
            .name("strongroom-cache-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(COARSE_RESOLUTION);
                    let Some(ticker) = weak.upgrade() else { break };
                    ticker
                        .now
                        .store(nanos(ticker.origin.elapsed()), Ordering::Relaxed);
                }
            })
            .ok()?;
        *running = Arc::downgrade(&ticker);
        Some(ticker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_moves_and_is_shared() {
        let a = Clock::coarse();
        let b = Clock::coarse();
        let start = a.now();
        std::thread::sleep(COARSE_RESOLUTION * 6);
        assert!(a.now() > start, "the coarse clock did not move");
        if let (Source::Coarse(x), Source::Coarse(y)) = (&a.0, &b.0) {
            assert!(Arc::ptr_eq(x, y), "two tickers running at once");
        } else {
            panic!("coarse clock fell back to precise");
        }
    }

    #[test]
    fn precise_and_manual_clocks() {
        let precise = Clock::precise();
        let t0 = precise.now();
        std::thread::sleep(Duration::from_millis(1));
        assert!(precise.now() >= t0 + 1_000_000);

        let manual = ManualClock::new();
        let clock = manual.clock();
        assert_eq!(clock.now(), 0);
        manual.advance(Duration::from_millis(3));
        assert_eq!(clock.now(), 3_000_000);
        assert_eq!(format!("{clock:?}"), "Clock::Manual");
    }
}
