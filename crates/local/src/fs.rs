//! The file operations of a [`FileStore`](crate::FileStore), behind one small interface.
//!
//! Every create, write, fsync, rename, unlink, directory fsync, lock and read the store does
//! goes through [`Fs`]. In the library [`Fs`] is [`StdFs`]: a zero-sized type whose
//! functions are the std::fs calls themselves, chosen at compile time, so the interface
//! costs nothing. Test builds swap in a recording implementation
//! (`crash_explore::recording`) that passes every call through to std::fs and also logs the
//! exact operation sequence, with the bytes written, for the crash-state checker.
//!
//! Functions that act on an open file also take the file's path: std ignores it, the
//! recorder needs it to say which file an fsync or a write was for.

use std::fs::{self, File, Metadata, OpenOptions, ReadDir, TryLockError};
use std::io::{self, Write as _};
use std::path::Path;

/// The file operations the store's write and read paths use.
///
/// Associated functions, not methods: the implementation is a type chosen at compile time
/// ([`Fs`]), never a value passed around.
pub(crate) trait FileSystem {
    /// Creates a new file (failing if one exists) that only its owner can read and write.
    fn create_private(path: &Path) -> io::Result<File>;
    /// Writes all of `bytes` at the file's position.
    fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Flushes the file's data and metadata to disk (fsync).
    fn sync_all(file: &File, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(path: &Path) -> io::Result<()>;
    /// Flushes a directory's entries (creates, renames, unlinks) to disk.
    fn sync_dir(dir: &Path) -> io::Result<()>;
    /// The entries of a directory.
    fn read_dir(dir: &Path) -> io::Result<ReadDir>;
    /// Opens (creating if needed) the writer's lock file.
    fn open_lock(path: &Path) -> io::Result<File>;
    /// Tries to take an exclusive advisory lock on an open lock file.
    fn try_lock(file: &File, path: &Path) -> Result<(), TryLockError>;
    /// Opens a file for reading.
    fn open_read(path: &Path) -> io::Result<File>;
    /// The metadata of the file a path names.
    fn metadata(path: &Path) -> io::Result<Metadata>;
}

/// The file system itself: std::fs, with nothing in between.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFs;

/// The implementation the store uses: [`StdFs`] in the library, the recorder in tests.
#[cfg(not(test))]
pub(crate) type Fs = StdFs;
/// The implementation the store uses: [`StdFs`] in the library, the recorder in tests.
#[cfg(test)]
pub(crate) type Fs = crate::crash_explore::recording::Recording;

impl FileSystem for StdFs {
    #[inline]
    fn create_private(path: &Path) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    }

    #[inline]
    fn write_all(file: &mut File, _path: &Path, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    #[inline]
    fn sync_all(file: &File, _path: &Path) -> io::Result<()> {
        file.sync_all()
    }

    #[inline]
    fn rename(from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    #[inline]
    fn remove_file(path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    /// Only Unix can open a directory for this; elsewhere the rename's durability is the
    /// file system's.
    #[inline]
    fn sync_dir(dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    #[inline]
    fn read_dir(dir: &Path) -> io::Result<ReadDir> {
        fs::read_dir(dir)
    }

    #[inline]
    fn open_lock(path: &Path) -> io::Result<File> {
        crate::atomic::open_lock_file(path)
    }

    #[inline]
    fn try_lock(file: &File, _path: &Path) -> Result<(), TryLockError> {
        file.try_lock()
    }

    #[inline]
    fn open_read(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    #[inline]
    fn metadata(path: &Path) -> io::Result<Metadata> {
        fs::metadata(path)
    }
}
