//! Single flight: one backend load per slot at a time, its result handed to every reader
//! that waited for it, errors included.
//!
//! quick_cache's own `get_value_or_guard_async` coalesces misses, but it does not fit here:
//! an expired entry is still resident, so it hands out the old value instead of a guard, and
//! a guard dropped after a failed load wakes the waiters one by one to retry, which is N
//! backend calls for N readers when the backend is failing. A [`Flight`] instead holds the
//! load's [`Outcome`] in a `tokio::sync::OnceCell` that every reader of the slot awaits; if the
//! reader running the load is cancelled, the next waiter runs it (the cell allows that).

use std::sync::atomic::{AtomicBool, Ordering};

use strongroom_core::{Error, Secret};
use tokio::sync::OnceCell;

/// One load in progress (or just finished) for one slot.
#[derive(Default)]
pub(crate) struct Flight {
    pub(crate) outcome: OnceCell<Outcome>,
    /// Set by an invalidation that raced the load: its result is still handed to the readers
    /// that were waiting (they started before the write finished) but is not cached.
    invalidated: AtomicBool,
}

impl Flight {
    pub(crate) fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Release);
    }

    pub(crate) fn is_invalidated(&self) -> bool {
        self.invalidated.load(Ordering::Acquire)
    }
}

/// What one load produced, for all its readers.
pub(crate) enum Outcome {
    /// The backend answered with the secret.
    Loaded(Secret),
    /// The backend was unavailable; this expired value was within `max_stale`.
    Stale(Secret),
    /// The backend failed, and no stale value could stand in. Each reader gets a clone
    /// (the cause is shared).
    Failed(Error),
}
