//! [`Change`]: what a [`CachedStore`](crate::CachedStore) tells its subscribers.

use strongroom_core::{SecretName, VersionId};

/// How many changes a slow subscriber may fall behind before it misses some (it then gets
/// `RecvError::Lagged` and should re-read what it cares about).
pub const CHANGE_CAPACITY: usize = 1024;

/// A secret changed: written through the cache, or found different by a load.
///
/// Carries the key and versions only, never the value: a subscriber that wants the value
/// reads it (from the cache, usually).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The secret that changed.
    pub key: SecretName,
    /// Its version now; `None` when it was deleted or purged or found missing, and after an
    /// undelete (whose answer does not say which version is current).
    pub version: Option<VersionId>,
    /// The version the cache held before, if it held one.
    pub previous: Option<VersionId>,
    /// What revealed the change.
    pub cause: ChangeCause,
}

/// What revealed a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeCause {
    /// A `put` through the cache succeeded.
    Put,
    /// A `delete` through the cache succeeded.
    Delete,
    /// An `undelete` through the cache succeeded.
    Undelete,
    /// A `purge` through the cache succeeded.
    Purge,
    /// A load (a refresh-ahead, or a read after the TTL) found a different version or value
    /// than the cached one, or found the secret gone: someone changed it elsewhere.
    Discovered,
}

impl ChangeCause {
    /// A short lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Delete => "delete",
            Self::Undelete => "undelete",
            Self::Purge => "purge",
            Self::Discovered => "discovered",
        }
    }
}
