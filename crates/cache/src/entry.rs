//! What the cache holds: [`Slot`] (which read) -> [`Entry`] (its answer and its deadlines),
//! and the weigher and eviction hook quick_cache calls.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::{Equivalent, Lifecycle, Weighter};
use strongroom_core::{Secret, SecretName, VersionId};

use crate::stats::{Counter, Counters};

/// Which read an entry answers: the current version of a key, or one given version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    Latest(SecretName),
    Version(SecretName, VersionId),
}

impl Slot {
    pub(crate) fn key(&self) -> &SecretName {
        match self {
            Self::Latest(key) | Self::Version(key, _) => key,
        }
    }
}

// Written by hand so that `LatestQuery` can hash the same way without building a `Slot`.
// A latest slot hashes as its key alone, with no discriminant: that is one hasher round
// less on the hottest path (about 6% of a cached read under callgrind,
// docs/performance.md). A version slot hashes more after the key, and `Eq`/`Equivalent`
// tell the two apart, so sharing a hash with a latest slot costs nothing but a compare.
impl Hash for Slot {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Self::Latest(key) => key.hash(state),
            Self::Version(key, version) => {
                key.hash(state);
                version.hash(state);
            }
        }
    }
}

/// Looks up `Slot::Latest(key)` from a borrowed key: the hit path clones nothing to ask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LatestQuery<'a>(pub(crate) &'a SecretName);

impl Hash for LatestQuery<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<Slot> for LatestQuery<'_> {
    #[inline]
    fn equivalent(&self, slot: &Slot) -> bool {
        matches!(slot, Slot::Latest(key) if key == self.0)
    }
}

/// The answer an entry holds.
#[derive(Clone)]
pub(crate) enum Answer {
    /// The secret; its value is the store's zeroizing `SecretValue`, shared, never copied.
    Found(Secret),
    /// The backend said `NotFound` (negative caching).
    Missing { deleted: bool },
}

/// One cached answer with its deadlines, in ticks of the cache's [`Clock`](crate::Clock).
///
/// Cloned out of quick_cache on every hit, so it holds only the answer and three integers.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) answer: Answer,
    /// Served as fresh before this tick.
    pub(crate) expires: u64,
    /// A hit at or after this tick starts a background reload (`u64::MAX`: never).
    pub(crate) refresh: u64,
    /// Which load produced it, to tell it from a newer entry for the same slot.
    pub(crate) load: u64,
}

impl Entry {
    /// Bytes the entry counts for under a byte bound: key name plus value. Never zero,
    /// because quick_cache never evicts zero-weight entries.
    fn bytes(slot: &Slot, entry: &Self) -> u64 {
        let value = match &entry.answer {
            Answer::Found(secret) => secret.value.len(),
            Answer::Missing { .. } => 0,
        };
        let version = match slot {
            Slot::Latest(_) => 0,
            Slot::Version(_, v) => v.as_str().len(),
        };
        let total = slot.key().as_str().len() + version + value;
        u64::try_from(total).unwrap_or(u64::MAX).max(1)
    }
}

/// Weighs entries by bytes or counts them, as the configured bound says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weigher {
    pub(crate) by_bytes: bool,
}

impl Weighter<Slot, Entry> for Weigher {
    #[inline]
    fn weight(&self, slot: &Slot, entry: &Entry) -> u64 {
        if self.by_bytes {
            Entry::bytes(slot, entry)
        } else {
            1
        }
    }
}

/// Counts evictions; drops evicted entries after quick_cache releases its lock, as its
/// default lifecycle does (dropping the last copy of a value zeroizes it, which takes a moment).
#[derive(Clone)]
pub(crate) struct EvictionCounter(pub(crate) Arc<Counters>);

impl Lifecycle<Slot, Entry> for EvictionCounter {
    type RequestState = [Option<(Slot, Entry)>; 2];

    #[inline]
    fn on_evict(&self, state: &mut Self::RequestState, slot: Slot, entry: Entry) {
        self.0.add(Counter::Evictions);
        if let Some(free) = state.iter_mut().find(|s| s.is_none()) {
            *free = Some((slot, entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use strongroom_core::SecretValue;

    use super::*;

    #[test]
    fn latest_query_hashes_and_matches_like_its_slot() {
        let hasher = std::collections::hash_map::RandomState::new();
        let key = SecretName::new("app/db").unwrap();
        let slot = Slot::Latest(key.clone());
        assert_eq!(
            hasher.hash_one(&slot),
            hasher.hash_one(LatestQuery(&key)),
            "a hit would never find its entry"
        );
        assert!(LatestQuery(&key).equivalent(&slot));
        assert!(!LatestQuery(&key).equivalent(&Slot::Version(key.clone(), VersionId::from(1))));
        assert!(
            !LatestQuery(&key).equivalent(&Slot::Latest(SecretName::new("app/other").unwrap()))
        );
    }

    #[test]
    fn weights() {
        let key = SecretName::new("k1").unwrap();
        let secret = Secret::new(key.clone(), SecretValue::from("12345"), VersionId::from(7));
        let entry = Entry {
            answer: Answer::Found(secret),
            expires: 0,
            refresh: 0,
            load: 0,
        };
        let bytes = Weigher { by_bytes: true };
        assert_eq!(bytes.weight(&Slot::Latest(key.clone()), &entry), 7);
        assert_eq!(
            bytes.weight(&Slot::Version(key.clone(), VersionId::from(7)), &entry),
            8
        );
        assert_eq!(
            Weigher { by_bytes: false }.weight(&Slot::Latest(key), &entry),
            1
        );
    }
}
