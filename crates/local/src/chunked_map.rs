//! [`ChunkedMap`]: a sorted map from [`SecretName`]s that is cheap to copy and to re-encode.
//!
//! A store's writes copy its whole document (readers keep the old one until the new file is
//! in place), change a secret or two and encode everything again. With a `BTreeMap` the copy
//! visits every entry, and so does dropping the old one. Here the entries live in sorted
//! chunks of a few dozen, each behind an `Arc`: a copy takes one pointer per chunk, a change
//! copies the one chunk it touches, and each chunk keeps its own encoding (its JSON, for the
//! document) until it changes, so a write re-encodes one chunk rather than every secret.

use std::fmt;
use std::sync::{Arc, OnceLock};

use strongroom_core::SecretName;

use crate::secret_buf::SecretBuf;

/// Entries per chunk when a map is built, and half the most a chunk holds before it splits.
/// Small enough that copying and re-encoding one chunk is cheap, large enough that a store
/// of 100,000 secrets is a few thousand chunks. Tests use tiny chunks to exercise splits.
const CHUNK: usize = if cfg!(test) { 3 } else { 64 };

/// A sorted map of [`SecretName`] to `V` in shared chunks.
///
/// Invariants: `chunks` are non-empty, sorted within and between each other, and
/// `firsts[i]` is the first key of `chunks[i]`.
pub(crate) struct ChunkedMap<V> {
    /// The first key of each chunk, so a lookup compares keys without visiting chunks.
    firsts: Vec<SecretName>,
    chunks: Vec<Arc<Chunk<V>>>,
}

struct Chunk<V> {
    entries: Vec<(SecretName, V)>,
    /// What [`ChunkedMap::encoded`] made of `entries`; emptied by every change.
    encoded: OnceLock<SecretBuf>,
}

impl<V: Clone> Clone for Chunk<V> {
    /// A copy to change: the encoding is not copied, since the copy is about to differ.
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            encoded: OnceLock::new(),
        }
    }
}

impl<V> Clone for ChunkedMap<V> {
    fn clone(&self) -> Self {
        Self {
            firsts: self.firsts.clone(),
            chunks: self.chunks.clone(),
        }
    }
}

impl<V> Default for ChunkedMap<V> {
    fn default() -> Self {
        Self {
            firsts: Vec::new(),
            chunks: Vec::new(),
        }
    }
}

impl<V: Clone + fmt::Debug> fmt::Debug for ChunkedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The encodings are left out: they hold the values.
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Clone> ChunkedMap<V> {
    /// A map of `entries`, which must be sorted by key without duplicates.
    pub(crate) fn from_sorted(entries: Vec<(SecretName, V)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let mut map = Self::default();
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let chunk: Vec<_> = entries.by_ref().take(CHUNK).collect();
            map.firsts.push(chunk[0].0.clone());
            map.chunks.push(Arc::new(Chunk {
                entries: chunk,
                encoded: OnceLock::new(),
            }));
        }
        map
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        let chunk = &self.chunks.get(self.chunk_for(key))?.entries;
        let at = search(chunk, key, |(k, _)| k).ok()?;
        Some(&chunk[at].1)
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: SecretName, value: V) -> Option<V> {
        if self.chunks.is_empty() {
            *self = Self::from_sorted(vec![(key, value)]);
            return None;
        }
        let index = self.chunk_for(key.as_str());
        let chunk = self.chunk_mut(index);
        let old = match search(chunk, key.as_str(), |(k, _)| k) {
            Ok(at) => Some(std::mem::replace(&mut chunk[at].1, value)),
            Err(at) => {
                chunk.insert(at, (key, value));
                None
            }
        };
        if chunk.len() > 2 * CHUNK {
            let upper = chunk.split_off(chunk.len() / 2);
            self.firsts.insert(index + 1, upper[0].0.clone());
            self.chunks.insert(
                index + 1,
                Arc::new(Chunk {
                    entries: upper,
                    encoded: OnceLock::new(),
                }),
            );
        }
        self.firsts[index] = self.chunks[index].entries[0].0.clone();
        old
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let index = self.chunk_for(key);
        let at = search(&self.chunks.get(index)?.entries, key, |(k, _)| k).ok()?;
        let chunk = self.chunk_mut(index);
        let (_, value) = chunk.remove(at);
        if chunk.is_empty() {
            self.chunks.remove(index);
            self.firsts.remove(index);
        } else {
            self.firsts[index] = chunk[0].0.clone();
        }
        Some(value)
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SecretName, &V)> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.entries.iter().map(|(k, v)| (k, v)))
    }

    /// The entries whose keys are `start` or after, in key order.
    pub(crate) fn range_from<'a>(
        &'a self,
        start: &str,
    ) -> impl Iterator<Item = (&'a SecretName, &'a V)> {
        let index = self.chunk_for(start);
        let skip = self.chunks.get(index).map_or(0, |chunk| {
            chunk.entries.partition_point(|(k, _)| k.as_str() < start)
        });
        self.chunks
            .get(index..)
            .unwrap_or_default()
            .iter()
            .flat_map(|chunk| chunk.entries.iter().map(|(k, v)| (k, v)))
            .skip(skip)
    }

    /// Each chunk's encoding, in key order: made by `encode` from the chunk's entries when
    /// the chunk has none since it last changed, else the one made before. Every call must
    /// pass the same `encode`.
    pub(crate) fn encoded<'a>(
        &'a self,
        encode: impl Fn(&[(SecretName, V)]) -> SecretBuf + 'a,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.chunks
            .iter()
            .map(move |chunk| &chunk.encoded.get_or_init(|| encode(&chunk.entries))[..])
    }

    /// The chunk that holds `key` or would hold it: the last whose first key is not after
    /// it, or the first chunk. Out of range only when the map is empty.
    fn chunk_for(&self, key: &str) -> usize {
        match search(&self.firsts, key, |first| first) {
            Ok(index) => index,
            Err(after) => after.saturating_sub(1),
        }
    }

    /// Chunk `index`'s entries to change: copied first if another map shares the chunk, and
    /// with its encoding dropped either way.
    fn chunk_mut(&mut self, index: usize) -> &mut Vec<(SecretName, V)> {
        let chunk = Arc::make_mut(&mut self.chunks[index]);
        chunk.encoded.take();
        &mut chunk.entries
    }
}

/// Where `key` is in `items`, sorted by `key_of`: `Ok(index)`, or `Err(index)` where it
/// would go. A binary search written with branches rather than `slice::binary_search_by`,
/// whose branch-free steps each wait for the previous string comparison: when the same few
/// keys are read again and again, as applications read their secrets, predicted branches
/// let the processor run ahead. With `binary_search_by` the `file_store/get` benchmark
/// (10,000 secrets) took 290 ns, against 192 ns with the `BTreeMap` this map replaced.
fn search<T>(items: &[T], key: &str, key_of: impl Fn(&T) -> &SecretName) -> Result<usize, usize> {
    let (mut low, mut high) = (0, items.len());
    while low < high {
        let mid = low + (high - low) / 2;
        match key_of(&items[mid]).as_str().cmp(key) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(low)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u16) -> SecretName {
        SecretName::new(format!("k{n:03}")).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        Copy,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..60u16, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0..60u16).prop_map(Op::Remove),
            1 => Just(Op::Copy),
        ]
    }

    /// Encodes a chunk as its values, one byte each, counting the calls.
    fn encoder(calls: &Cell<usize>) -> impl Fn(&[(SecretName, u8)]) -> SecretBuf + '_ {
        move |entries| {
            calls.set(calls.get() + 1);
            let mut out = SecretBuf::with_capacity(entries.len());
            out.push(&entries.iter().map(|(_, v)| *v).collect::<Vec<_>>());
            out
        }
    }

    fn check(map: &ChunkedMap<u8>, model: &BTreeMap<SecretName, u8>) -> Result<(), TestCaseError> {
        let all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
        prop_assert_eq!(&all, &expected);
        for n in 0..62 {
            prop_assert_eq!(map.get(key(n).as_str()), model.get(key(n).as_str()));
        }
        for start in ["", "k", "k00", "k010", "k0105", "k059", "k06", "l"] {
            let got: Vec<_> = map.range_from(start).map(|(k, _)| k.clone()).collect();
            let want: Vec<_> = model
                .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
                .map(|(k, _)| k.clone())
                .collect();
            prop_assert_eq!(got, want, "from {:?}", start);
        }
        prop_assert!(
            map.chunks
                .iter()
                .all(|c| !c.entries.is_empty() && c.entries.len() <= 2 * CHUNK)
        );
        let firsts: Vec<_> = map.chunks.iter().map(|c| c.entries[0].0.clone()).collect();
        prop_assert_eq!(&map.firsts, &firsts);
        let calls = Cell::new(0);
        let bytes: Vec<u8> = map.encoded(encoder(&calls)).flatten().copied().collect();
        prop_assert_eq!(bytes, model.values().copied().collect::<Vec<_>>());
        Ok(())
    }

    proptest! {
        /// Against a `BTreeMap`, through splits, chunks emptied and copies that share
        /// chunks: every copy keeps its own contents and encodes them correctly.
        #[test]
        fn behaves_as_a_sorted_map_and_copies_stay_apart(
            start in proptest::collection::btree_map(0..60u16, any::<u8>(), 0..20),
            ops in proptest::collection::vec(op(), 0..120),
        ) {
            let mut model: BTreeMap<SecretName, u8> =
                start.iter().map(|(k, v)| (key(*k), *v)).collect();
            let mut map = ChunkedMap::from_sorted(model.iter().map(|(k, v)| (k.clone(), *v)).collect());
            let mut copies = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(map.insert(key(k), v), model.insert(key(k), v));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(map.remove(key(k).as_str()), model.remove(key(k).as_str()));
                    }
                    Op::Copy => copies.push((map.clone(), model.clone())),
                }
                check(&map, &model)?;
            }
            for (copy, model) in &copies {
                check(copy, model)?;
            }
        }
    }

    #[test]
    fn only_a_changed_chunk_is_encoded_again() {
        let map = ChunkedMap::from_sorted(
            (0..30)
                .map(|n| (key(n), u8::try_from(n).unwrap()))
                .collect(),
        );
        let chunks = map.chunks.len();
        let calls = Cell::new(0);
        assert_eq!(map.encoded(encoder(&calls)).count(), chunks);
        assert_eq!(calls.get(), chunks);
        let mut copy = map.clone();
        copy.insert(key(7), 70);
        calls.set(0);
        let bytes: Vec<u8> = copy.encoded(encoder(&calls)).flatten().copied().collect();
        assert_eq!(calls.get(), 1);
        assert_eq!(bytes[7], 70);
        // The original keeps its own chunk and encoding.
        calls.set(0);
        let bytes: Vec<u8> = map.encoded(encoder(&calls)).flatten().copied().collect();
        assert_eq!((calls.get(), bytes[7]), (0, 7));
    }
}
