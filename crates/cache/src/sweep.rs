//! The sweep thread: one per process, shared by every cache, like the coarse clock's. Each
//! cache registers its [`Table`] with an interval; the thread sweeps each table when due and
//! forgets it once the cache is dropped (it holds a `Weak`), and ends when no cache is left.
//!
//! A thread rather than a tokio task: a cache can be built and used outside a runtime, and a
//! sweep is a short burst of CPU with no I/O. A sweep that panicked (it should not: it does
//! no arithmetic on input and no indexing) is caught, so the thread keeps sweeping the others.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::table::Table;

struct Registered {
    table: Weak<Table>,
    interval: Duration,
    next: Instant,
}

struct Registry {
    tables: Vec<Registered>,
    running: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    tables: Vec::new(),
    running: false,
});
static WAKE: Condvar = Condvar::new();

/// Sweeps `table` every `interval` until it is dropped. If the thread cannot be started,
/// nothing is swept and entries leave as before, when evicted or replaced (logged once).
pub(crate) fn register(table: &Arc<Table>, interval: Duration) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    registry.tables.push(Registered {
        table: Arc::downgrade(table),
        interval,
        next: later(Instant::now(), interval),
    });
    if registry.running {
        WAKE.notify_one();
        return;
    }
    let started = std::thread::Builder::new()
        .name("strongroom-cache-sweep".into())
        .spawn(run);
    match started {
        Ok(_) => registry.running = true,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start the cache sweep thread: expired entries stay until evicted");
            registry.tables.clear();
        }
    }
}

fn run() {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        registry.tables.retain(|r| r.table.strong_count() > 0);
        if registry.tables.is_empty() {
            registry.running = false;
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for r in &mut registry.tables {
            if r.next <= now {
                if let Some(table) = r.table.upgrade() {
                    due.push(table);
                }
                r.next = later(now, r.interval);
            }
        }
        if due.is_empty() {
            let next = registry.tables.iter().map(|r| r.next).min().unwrap_or(now);
            let wait = next.saturating_duration_since(now);
            registry = WAKE
                .wait_timeout(registry, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        drop(registry);
        for table in due {
            let _ = catch_unwind(AssertUnwindSafe(|| table.sweep()));
            // If this was the last reference, the table (and its values) is dropped and
            // wiped here, off the application's threads.
        }
        registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// `now + interval`, or a year from now for an interval too long to add (the thread wakes
/// then and looks again).
fn later(now: Instant, interval: Duration) -> Instant {
    now.checked_add(interval)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}
