//! One refresh shared by every caller that asks while it runs, on std primitives only.
//!
//! A [`Flight`] owns the refresh future. Each caller holds a [`Join`] and, when polled, polls
//! that one future itself under the flight's lock, so whichever caller is polled drives the
//! refresh: no task is spawned and no runtime is needed, and a caller that is dropped midway
//! leaves the future in place for the others (or the next caller) to finish. Every waiting
//! caller's waker is kept in a list that the refresh future's own waker wakes as a whole.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::credentials::Credentials;
use crate::error::CredentialsError;

pub(crate) type Outcome = Result<Credentials, CredentialsError>;
pub(crate) type RefreshFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// Locks, ignoring poisoning: every critical section here leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A refresh in progress, or its outcome.
pub(crate) struct Flight {
    slot: Mutex<Slot>,
    wakers: Arc<WakerList>,
}

enum Slot {
    /// The future, out of its slot only while being polled.
    Running(Option<RefreshFuture>),
    Done(Outcome),
}

impl Flight {
    pub(crate) fn new(future: RefreshFuture) -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(Slot::Running(Some(future))),
            wakers: Arc::new(WakerList::default()),
        })
    }

    /// Polls on behalf of one caller. `on_panic` runs if the refresh future panics (the
    /// panic then goes on in this caller; the others get an error).
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>, on_panic: impl FnOnce()) -> Poll<Outcome> {
        let mut slot = lock(&self.slot);
        let future = match &mut *slot {
            Slot::Done(outcome) => return Poll::Ready(outcome.clone()),
            Slot::Running(future) => future,
        };
        // Register before polling: a wake-up that happens after the poll then reaches us.
        self.wakers.register(cx.waker());
        let Some(mut running) = future.take() else {
            // Only reachable if a poll panicked without recording its outcome.
            return Poll::Ready(Err(panicked()));
        };
        let waker = Waker::from(Arc::clone(&self.wakers));
        let mut inner_cx = Context::from_waker(&waker);
        match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(&mut inner_cx))) {
            Ok(Poll::Pending) => {
                *future = Some(running);
                Poll::Pending
            }
            Ok(Poll::Ready(outcome)) => {
                *slot = Slot::Done(outcome.clone());
                drop(slot);
                self.wakers.wake_all();
                Poll::Ready(outcome)
            }
            Err(panic) => {
                *slot = Slot::Done(Err(panicked()));
                drop(slot);
                on_panic();
                self.wakers.wake_all();
                resume_unwind(panic)
            }
        }
    }
}

fn panicked() -> CredentialsError {
    CredentialsError::provider("cache", "the credentials refresh panicked")
}

/// The wakers of the callers waiting on a flight; waking it wakes them all.
#[derive(Default)]
struct WakerList(Mutex<Vec<Waker>>);

impl WakerList {
    fn register(&self, waker: &Waker) {
        let mut wakers = lock(&self.0);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *lock(&self.0));
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Wake for WakerList {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}
