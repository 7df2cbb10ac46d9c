//! Crash-safe file replacement and the writer lock.
//!
//! A store file is never written in place: the new content goes to a temporary file in the
//! same directory, which is flushed to disk and renamed over the old one, and then the
//! directory itself is flushed so the rename survives a power cut. A crash at any instant
//! leaves either the old file or the new one, never a mix.

#[cfg(not(unix))]
use std::fs::OpenOptions;
use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fs::{FileSystem as _, Fs};

/// Replaces `path` with `contents` atomically; the file gets mode 0600 on Unix.
///
/// Returns the new file, open, so the caller can `stat` and hold the very file it wrote
/// without opening the path again.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    #[cfg(test)]
    if let Some(broken) = Fs::broken_variant(path) {
        return crate::crash_explore::broken::replace(broken, path, &temp, contents);
    }

    let written = (|| {
        let mut file = Fs::create_private(&temp)?;
        Fs::write_all(&mut file, &temp, contents)?;
        Fs::sync_all(&file, &temp)?;
        Fs::rename(&temp, path)?;
        Ok(file)
    })();
    match written {
        Ok(file) => {
            Fs::sync_dir(dir)?;
            Ok(file)
        }
        Err(err) => {
            // Best effort: the temp file holds only ciphertext, but leaving it would litter.
            let _ = Fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Removes temporary files a crashed writer left beside `path`.
///
/// Only call this while holding the [`WriterLock`]: temporary files are written only under
/// the lock, so any that exist then belong to a writer that died before renaming its file.
/// Returns how many were removed.
pub(crate) fn remove_stale_temps(path: &Path) -> io::Result<usize> {
    let prefix = format!(
        ".{}.",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut removed = 0;
    for entry in Fs::read_dir(parent(path))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_own_temp(&name, &prefix) {
            Fs::remove_file(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `name` is exactly a temporary name [`replace`] makes for the store whose temp
/// prefix is `prefix` (`.<store name>.`): the prefix, a process id, a counter, `.tmp`. A
/// store named `s.enc` must not remove `.s.enc.bak.1.2.tmp`, the write in progress of its
/// neighbour `s.enc.bak`.
fn is_own_temp(name: &str, prefix: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    matches!(rest.split_once('.'), Some((pid, counter)) if digits(pid) && digits(counter))
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An exclusive advisory lock on `<store>.lock`, held until dropped.
///
/// The lock lives in a file of its own because the store file is replaced on every write:
/// a lock on it would be a lock on a file that no longer has that name.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    Io(io::Error),
    Timeout(Duration),
}

impl WriterLock {
    /// Waits up to `timeout` for the lock on `path`.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, LockError> {
        let file = Fs::open_lock(path).map_err(LockError::Io)?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match Fs::try_lock(&file, path) {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => return Err(LockError::Timeout(start.elapsed())),
                Err(TryLockError::Error(err)) => return Err(LockError::Io(err)),
            }
        }
    }
}

/// Opens (creating, mode 0600) the lock file without following a symbolic link, and refuses
/// one that another user owns: a lock file planted by someone else could be held by them
/// for ever, or point the open at a file of the user's choosing.
#[cfg(unix)]
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt as _;
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?);
    let owner = file.metadata()?.uid();
    let me = rustix::process::geteuid().as_raw();
    if owner != me && owner != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the lock file belongs to user id {owner}, not to this user; remove it if no \
                 writer of yours is running"
            ),
        ));
    }
    Ok(file)
}

#[cfg(not(unix))]
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// `<path>.lock`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn replace_swaps_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.enc");
        replace(&path, b"one").unwrap();
        let written = replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let (held, named) = (written.metadata().unwrap(), fs::metadata(&path).unwrap());
            assert_eq!((held.dev(), held.ino()), (named.dev(), named.ino()));
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["store.enc"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn stale_temp_files_of_this_store_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.enc");
        for name in [
            ".store.enc.123.0.tmp",
            ".store.enc.9.7.tmp",
            ".other.enc.1.1.tmp",
            ".store.enc.bak.5.5.tmp",
            ".store.enc.x.1.tmp",
            ".store.enc.1.tmp",
            "store.enc",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&path).unwrap(), 2);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other.enc.1.1.tmp",
                ".store.enc.1.tmp",
                ".store.enc.bak.5.5.tmp",
                ".store.enc.x.1.tmp",
                "store.enc"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        fs::write(&target, b"keep").unwrap();
        let lock = dir.path().join("store.enc.lock");
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let err = WriterLock::acquire(&lock, Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, LockError::Io(_)), "{err:?}");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_of_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            // Only root can hand a file to another user; CI runs as root.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("store.enc.lock");
        fs::write(&lock, b"").unwrap();
        std::os::unix::fs::chown(&lock, Some(4242), None).unwrap();
        match WriterLock::acquire(&lock, Duration::from_millis(10)) {
            Err(LockError::Io(err)) => {
                assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn replace_into_a_missing_directory_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("store.enc");
        assert!(replace(&path, b"x").is_err());
        assert!(!path.exists());
    }

    #[test]
    fn a_second_lock_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("store.enc"));
        let held = WriterLock::acquire(&path, Duration::from_secs(1)).unwrap();
        match WriterLock::acquire(&path, Duration::from_millis(30)) {
            Err(LockError::Timeout(waited)) => assert!(waited >= Duration::from_millis(30)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        drop(held);
        WriterLock::acquire(&path, Duration::from_millis(30)).unwrap();
    }
}
