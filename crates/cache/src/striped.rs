//! [`StripedCounters`]: counters many threads bump without fighting over a cache line.
//!
//! Each thread adds to its own padded stripe (threads are spread over the stripes round
//! robin on first use); reading a counter sums the stripes. The cache counts its hits this
//! way, so a hot read costs one uncontended atomic add. strongroom-facade keeps its own copy
//! for its operation counters rather than this crate exporting internals as public API.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const MAX_STRIPES: usize = 64;

/// One thread's share of `N` counters, on a cache line (two, for adjacent-line prefetch) of
/// its own.
#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Stripe<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// `N` counters, striped per thread; counter `i` is bumped with [`add`](Self::add) and read
/// with [`sum`](Self::sum).
pub(crate) struct StripedCounters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
    mask: usize,
}

thread_local! {
    /// This thread's stripe number, handed out round robin on first use.
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
}

impl<const N: usize> StripedCounters<N> {
    /// Zeroed counters, with one stripe per available CPU (a power of two, at most 64).
    pub(crate) fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(4, usize::from);
        let stripes = threads.next_power_of_two().clamp(1, MAX_STRIPES);
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
            mask: stripes - 1,
        }
    }

    /// Adds one to counter `index` (`index < N`).
    #[inline]
    pub(crate) fn add(&self, index: usize) {
        let stripe = STRIPE.with(|s| *s) & self.mask;
        self.stripes[stripe].0[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counter `index`, summed over every thread.
    pub(crate) fn sum(&self, index: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[index].load(Ordering::Relaxed))
            .sum()
    }
}

impl<const N: usize> Default for StripedCounters<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for StripedCounters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..N).map(|i| self.sum(i))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_what_every_thread_added() {
        let counters = std::sync::Arc::new(StripedCounters::<2>::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counters = std::sync::Arc::clone(&counters);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counters.add(1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!((counters.sum(0), counters.sum(1)), (0, 8000));
    }
}
