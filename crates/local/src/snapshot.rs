//! The last decrypted state of a store file, kept so reads need one `stat` instead of a read
//! and a decryption of the whole file.
//!
//! The store file is never changed in place, only replaced by rename, so "same file" means
//! "same content". A snapshot keeps the file it was read from open: while it is open, its
//! inode cannot be freed and reused by a later file, so an equal (device, inode) pair really
//! is the same file. Size and change times are compared too, so a file edited in place by
//! some other tool is noticed as well.

use std::fs::{File, Metadata};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::document::Document;
use crate::slots::FileKeys;

/// What identifies one version of the store file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime: (i64, i64),
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    pub(crate) fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Self {
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime: (meta.ctime(), meta.ctime_nsec()),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// A decrypted document, the keys that sealed it, and the open file it came from.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) stamp: Stamp,
    pub(crate) doc: Arc<Document>,
    /// The data key and slots that sealed the file: what the next write seals with, so a
    /// write never mixes one file's slots with another's data key. `None` for a version-1
    /// file (its next write makes them).
    pub(crate) keys: Option<Arc<FileKeys>>,
    /// When the file was last found unchanged, in nanoseconds since the store's epoch.
    pub(crate) checked: AtomicU64,
    /// Held only to pin the inode (see the module docs).
    _file: File,
}

impl Snapshot {
    pub(crate) fn new(
        file: File,
        stamp: Stamp,
        doc: Arc<Document>,
        keys: Option<Arc<FileKeys>>,
        checked: u64,
    ) -> Self {
        Self {
            stamp,
            doc,
            keys,
            checked: AtomicU64::new(checked),
            _file: file,
        }
    }
}
