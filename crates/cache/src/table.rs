//! [`Table`]: the cache's entries (a quick_cache), a generation counter bumped by every change
//! to them, each reading thread's private copies of hot entries, and the sweep that drops
//! what may no longer be served.
//!
//! # Why per-thread copies
//!
//! A hit in quick_cache takes its shard's read lock (an atomic add and subtract on the lock
//! word) and clones the `Secret` (four `Arc` reference counts up, and down again when the
//! caller drops it). Every one of those is a write to a cache line every other reader of the
//! same key writes too, so two threads reading one hot key spend their time passing the
//! lines back and forth: two threads together did 0.29-0.51x the reads of one
//! (docs/performance.md). A lock-free map would still share the `Arc`s.
//!
//! So each thread keeps its own copy of the entries it reads: its own `Secret` (name, value,
//! version and metadata allocated for that thread, the value zeroizing like any other), in a
//! table behind a mutex only that thread locks on a hit. A hit then writes only memory of
//! its own thread: the table's lock word and the copy's reference counts. What it reads from
//! shared memory is read-only on a hit: the table's generation, which every change to the
//! entries bumps (after the change), and the coarse clock.
//!
//! The guarantees stay those of quick_cache alone:
//!
//! - **Invalidation and rotation**: a copy is served only while the generation it was taken
//!   at is current. Every insert, replace, removal, eviction, sweep or clear bumps it after
//!   changing the entries, so a read that starts after such a change returns never sees a
//!   copy of what was there before: the bound is zero, not a TTL. (A change to one key makes
//!   every copy of every key check back once: a lookup in quick_cache, and no copy when the
//!   entry found is the one already copied.)
//! - **Bounded memory**: at most [`CacheConfig::thread_copies`](crate::CacheConfig::thread_copies)
//!   copies per thread and cache, of values up to [`MAX_COPY_BYTES`]; keys beyond that,
//!   and larger values, are served from quick_cache as before.
//! - **Zeroized, and gone when stale**: the sweep drops copies that are expired or that no
//!   longer match their entry, and the tables of threads that have ended; dropping the cache
//!   empties every thread's table. The sweep takes each table's lock (a hit that finds it
//!   taken reads quick_cache instead, never waits).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use quick_cache::DefaultHashBuilder;
use quick_cache::sync::Cache;
use strongroom_core::{Secret, SecretName, SecretValue, VersionId};

use crate::entry::{Answer, Entry, EvictionCounter, LatestQuery, Slot, Weigher};
use crate::stats::{Counter, Counters};
use crate::{Clock, sweep};

/// Values longer than this are not copied per thread (they are served from the shared
/// entry): a copy is a second allocation of the value per reading thread.
pub const MAX_COPY_BYTES: usize = 64 << 10;

pub(crate) type EntryCache = Cache<Slot, Entry, Weigher, DefaultHashBuilder, EvictionCounter>;

/// A counter on a cache line of its own (two, for adjacent-line prefetch): written only
/// when the entries change, read by every hit.
#[repr(align(128))]
struct Generation(AtomicU64);

/// The entries of one cache and everything that copies them.
pub(crate) struct Table {
    pub(crate) cache: EntryCache,
    generation: Generation,
    /// Tells this table's thread tables apart from other caches' in a thread.
    id: u64,
    per_thread: usize,
    /// Every thread table holding copies of this cache's entries, for the sweep and drop.
    threads: Mutex<Vec<Arc<ThreadTable>>>,
    counters: Arc<Counters>,
    clock: Clock,
    max_stale: u64,
}

/// One thread's copies of one cache's entries. Aligned so that two threads' tables never
/// share a cache line.
#[repr(align(128))]
struct ThreadTable {
    copies: Mutex<HashMap<SecretName, Copy, DefaultHashBuilder>>,
    /// Set when the cache is dropped: the thread forgets the table at its next install.
    dead: AtomicBool,
}

/// A thread's private copy of a current-version entry.
struct Copy {
    secret: Secret,
    /// The table generation at which this copy was last known to match the entry.
    generation: u64,
    load: u64,
    expires: u64,
    refresh: u64,
}

thread_local! {
    /// This thread's tables, one per cache it reads through (a handful at most).
    static TABLES: RefCell<Vec<(u64, Arc<ThreadTable>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Table {
    pub(crate) fn new(
        cache: EntryCache,
        per_thread: usize,
        counters: Arc<Counters>,
        clock: Clock,
        max_stale: u64,
    ) -> Self {
        Self {
            cache,
            generation: Generation(AtomicU64::new(0)),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            per_thread,
            threads: Mutex::new(Vec::new()),
            counters,
            clock,
            max_stale,
        }
    }

    /// Starts sweeping this table every `interval` on the process's sweep thread, until it
    /// is dropped.
    pub(crate) fn start_sweeping(self: &Arc<Self>, interval: std::time::Duration) {
        sweep::register(self, interval);
    }

    /// This thread's copy of `key`'s current entry, if it is still the entry, fresh, and not
    /// due for a refresh. Writes no shared memory.
    #[inline]
    pub(crate) fn copy_hit(&self, key: &SecretName, now: u64) -> Option<Secret> {
        if self.per_thread == 0 {
            return None;
        }
        // `try_with`: a read from another thread-local's destructor, after this one is gone,
        // reads quick_cache instead of panicking.
        TABLES
            .try_with(|tables| {
                let tables = tables.try_borrow().ok()?;
                let (_, table) = tables.iter().find(|(id, _)| *id == self.id)?;
                let copies = table.copies.try_lock().ok()?;
                let copy = copies.get(key)?;
                let current = self.generation.0.load(Ordering::Acquire);
                (copy.generation == current && now < copy.expires && now < copy.refresh)
                    .then(|| copy.secret.clone())
            })
            .ok()
            .flatten()
    }

    /// The generation to tag a copy with: read before the entry is looked up, so that a
    /// change between the two leaves the copy out of date rather than wrongly current.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.0.load(Ordering::Acquire)
    }

    /// Remembers `entry`, just read from quick_cache after `generation` was read, as this
    /// thread's copy of `key`. Copies the secret only when the entry is not the one the
    /// thread already holds.
    #[cold]
    #[inline(never)]
    pub(crate) fn install(&self, key: &SecretName, entry: &Entry, generation: u64) {
        let Answer::Found(secret) = &entry.answer else {
            return;
        };
        if self.per_thread == 0 || secret.value.len() > MAX_COPY_BYTES {
            return;
        }
        let _ = TABLES.try_with(|tables| {
            let Ok(mut tables) = tables.try_borrow_mut() else {
                return;
            };
            let table = match tables.iter().find(|(id, _)| *id == self.id) {
                Some((_, table)) => Arc::clone(table),
                None => {
                    tables.retain(|(_, table)| !table.dead.load(Ordering::Acquire));
                    let table = Arc::new(ThreadTable {
                        copies: Mutex::new(HashMap::default()),
                        dead: AtomicBool::new(false),
                    });
                    self.lock_threads().push(Arc::clone(&table));
                    tables.push((self.id, Arc::clone(&table)));
                    table
                }
            };
            drop(tables);
            let Ok(mut copies) = table.copies.try_lock() else {
                return;
            };
            if let Some(copy) = copies.get_mut(key)
                && copy.load == entry.load
            {
                copy.generation = generation;
                copy.expires = entry.expires;
                copy.refresh = entry.refresh;
                return;
            }
            if copies.len() >= self.per_thread && !copies.contains_key(key) {
                // Full: this key is read from quick_cache, as before copies existed, until
                // the sweep frees room (copies leave when their entry expires or changes).
                // Emptying the table instead would make a thread that reads many keys
                // copy a value on almost every read.
                return;
            }
            let Some(secret) = private_copy(secret) else {
                return;
            };
            copies.insert(
                secret.key.clone(),
                Copy {
                    secret,
                    generation,
                    load: entry.load,
                    expires: entry.expires,
                    refresh: entry.refresh,
                },
            );
        });
    }

    /// Marks every copy out of date; called after each change to the entries.
    #[inline]
    fn changed(&self) {
        self.generation.0.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn insert(&self, slot: Slot, entry: Entry) {
        self.cache.insert(slot, entry);
        self.changed();
    }

    pub(crate) fn replace(&self, slot: Slot, entry: Entry) {
        let _ = self.cache.replace(slot, entry, true);
        self.changed();
    }

    pub(crate) fn remove<Q>(&self, query: &Q)
    where
        Q: std::hash::Hash + quick_cache::Equivalent<Slot> + ?Sized,
    {
        let removed = self.cache.remove(query);
        self.changed();
        drop(removed);
    }

    pub(crate) fn remove_if(&self, slot: &Slot, load: u64) {
        let removed = self.cache.remove_if(slot, |e| e.load == load);
        self.changed();
        drop(removed);
    }

    pub(crate) fn retain(&self, keep: impl Fn(&Slot, &Entry) -> bool) {
        self.cache.retain(keep);
        self.changed();
    }

    pub(crate) fn clear(&self) {
        self.cache.clear();
        self.changed();
        for table in self.lock_threads().iter() {
            table
                .copies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    /// Copies held now, over every thread.
    pub(crate) fn copies(&self) -> u64 {
        let threads = self.lock_threads();
        let copies: usize = threads
            .iter()
            .map(|t| {
                t.copies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum();
        u64::try_from(copies).unwrap_or(u64::MAX)
    }

    /// One sweep: drops entries past their TTL plus `max_stale` (a `NotFound` entry: past its
    /// TTL), copies that are expired or no longer match their entry, and the tables of
    /// threads that ended. Visits each entry once (quick_cache locks one shard at a time) and
    /// each copy once: bounded by the cache's bound and `thread_copies` per thread.
    pub(crate) fn sweep(&self) {
        let now = self.clock.now();
        let max_stale = self.max_stale;
        let removed = std::cell::Cell::new(false);
        self.cache.retain(|_, entry| {
            let until = match entry.answer {
                Answer::Found(_) => entry.expires.saturating_add(max_stale),
                Answer::Missing { .. } => entry.expires,
            };
            let keep = now < until;
            if !keep {
                self.counters.add(Counter::Swept);
                removed.set(true);
            }
            keep
        });
        if removed.get() {
            self.changed();
        }
        let generation = self.generation();
        let mut threads = self.lock_threads();
        // A table only this list holds belongs to a thread that has ended.
        threads.retain(|table| Arc::strong_count(table) > 1);
        for table in threads.iter() {
            let mut copies = table.copies.lock().unwrap_or_else(PoisonError::into_inner);
            copies.retain(|key, copy| {
                if now >= copy.expires {
                    return false;
                }
                if copy.generation == generation {
                    return true;
                }
                // Out of date: keep it only if it is still the entry (the thread retags it
                // at its next read), else its value goes now.
                matches!(self.cache.peek(&LatestQuery(key)), Some(e) if e.load == copy.load)
            });
        }
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ThreadTable>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Table {
    /// Wipes every thread's copies now, rather than when each thread next reads or ends.
    fn drop(&mut self) {
        for table in self.lock_threads().drain(..) {
            table.dead.store(true, Ordering::Release);
            table
                .copies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }
}

/// A copy of `secret` that shares no allocation with it, so that cloning it touches only
/// this thread's reference counts. `None` if the name does not validate again (it always
/// does: it came from a `SecretName`).
fn private_copy(secret: &Secret) -> Option<Secret> {
    let key = SecretName::new(secret.key.as_str()).ok()?;
    let value = SecretValue::new(secret.value.expose().to_vec());
    let mut copy = Secret::new(key, value, VersionId::new(secret.version.as_str()));
    copy.created = secret.created;
    copy.metadata = Arc::new((*secret.metadata).clone());
    Some(copy)
}
