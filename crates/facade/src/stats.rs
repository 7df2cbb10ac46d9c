//! [`Stats`]: what a [`Secrets`](crate::Secrets) did, with its cache's counters.
//!
//! Counters are striped per thread (as strongroom-cache's are) so that two threads reading
//! hot keys do not fight over one cache line.

use strongroom_cache::CacheStats;

use crate::striped::StripedCounters;

/// What one counter counts; the index into a stripe.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Get,
    GetVersion,
    Put,
    Delete,
    List,
    Versions,
    Rotate,
    Errors,
    MirrorReads,
    MirrorWrites,
    MirrorErrors,
}

const COUNTERS: usize = 11;

/// The facade's operation counters, striped per thread like the cache's.
#[derive(Default)]
pub(crate) struct Counters(StripedCounters<COUNTERS>);

impl Counters {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub(crate) fn add(&self, op: Op) {
        self.0.add(op as usize);
    }

    pub(crate) fn sum(&self, op: Op) -> u64 {
        self.0.sum(op as usize)
    }
}

/// A snapshot of a [`Secrets`](crate::Secrets)' counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// The cache's own counters (hits, misses, stale served, loads, evictions...).
    pub cache: CacheStats,
    /// `get` calls (hits included).
    pub gets: u64,
    /// `get_version` calls.
    pub get_versions: u64,
    /// `put` and `put_with` calls (rotations not included).
    pub puts: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// `list` calls.
    pub lists: u64,
    /// `versions` calls.
    pub version_lists: u64,
    /// Rotations, manual and scheduled.
    pub rotations: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Reads answered from the local mirror while the primary was unavailable.
    pub mirror_reads: u64,
    /// Secrets written to the mirror.
    pub mirror_writes: u64,
    /// Mirror writes or reads that failed.
    pub mirror_errors: u64,
    /// True while the primary is unavailable and reads are served from cache or mirror.
    pub degraded: bool,
}

impl Stats {
    pub(crate) fn collect(cache: CacheStats, counters: &Counters, degraded: bool) -> Self {
        Self {
            cache,
            gets: counters.sum(Op::Get),
            get_versions: counters.sum(Op::GetVersion),
            puts: counters.sum(Op::Put),
            deletes: counters.sum(Op::Delete),
            lists: counters.sum(Op::List),
            version_lists: counters.sum(Op::Versions),
            rotations: counters.sum(Op::Rotate),
            errors: counters.sum(Op::Errors),
            mirror_reads: counters.sum(Op::MirrorReads),
            mirror_writes: counters.sum(Op::MirrorWrites),
            mirror_errors: counters.sum(Op::MirrorErrors),
            degraded,
        }
    }
}
