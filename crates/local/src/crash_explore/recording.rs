//! The recording file system: std::fs, plus a log of every operation on files under a
//! directory a test registered.
//!
//! Store operations run on tokio's blocking pool, so the log cannot be per thread; it is
//! keyed by directory instead. Unit tests run in parallel in one process, each in its own
//! temporary directory, so each sees only its own operations.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions, ReadDir, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::Variant;
use super::model::Op;
use crate::fs::{FileSystem, StdFs};

/// The log of one registered directory.
pub(crate) struct Session {
    root: PathBuf,
    variant: Variant,
    state: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    ops: Vec<Op>,
    /// The write position of each open file, by name: writes are logged with their offset.
    positions: HashMap<String, u64>,
}

static SESSIONS: Mutex<Vec<Arc<Session>>> = Mutex::new(Vec::new());

/// Records every operation under `root` until the guard is dropped; `variant` selects the
/// write path [`crate::atomic::replace`] takes for stores in `root`.
pub(crate) fn record(root: &Path, variant: Variant) -> Recorder {
    let session = Arc::new(Session {
        root: root.to_path_buf(),
        variant,
        state: Mutex::new(SessionState::default()),
    });
    sessions().push(Arc::clone(&session));
    Recorder { session }
}

fn sessions() -> std::sync::MutexGuard<'static, Vec<Arc<Session>>> {
    SESSIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn session_for(path: &Path) -> Option<(Arc<Session>, String)> {
    let sessions = sessions();
    sessions.iter().find_map(|s| {
        let rest = path.strip_prefix(&s.root).ok()?;
        Some((Arc::clone(s), rest.to_string_lossy().into_owned()))
    })
}

/// A registered directory; unregisters it when dropped.
pub(crate) struct Recorder {
    session: Arc<Session>,
}

impl Recorder {
    /// Marks the store operation just finished as acknowledged.
    pub(crate) fn acknowledge(&self, what: &str) {
        self.session.log(Op::Acknowledged {
            what: what.to_owned(),
        });
    }

    /// The operations so far.
    pub(crate) fn ops(&self) -> Vec<Op> {
        self.session.lock().ops.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        sessions().retain(|s| !Arc::ptr_eq(s, &self.session));
    }
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, op: Op) {
        let mut state = self.lock();
        match &op {
            Op::Create { name } => {
                state.positions.insert(name.clone(), 0);
            }
            Op::Truncate { name, len } => {
                state.positions.insert(name.clone(), *len);
            }
            Op::Rename { from, to } => {
                if let Some(pos) = state.positions.remove(from) {
                    state.positions.insert(to.clone(), pos);
                }
            }
            _ => {}
        }
        state.ops.push(op);
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let mut state = self.lock();
        let pos = state.positions.entry(name.to_owned()).or_insert(0);
        let offset = *pos;
        *pos += bytes.len() as u64;
        state.ops.push(Op::Write {
            name: name.to_owned(),
            offset,
            bytes: bytes.to_vec(),
        });
    }
}

/// std::fs, logging every operation under a registered directory.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Recording;

impl Recording {
    /// The write path a test chose for the store at `path` (`None`: the real one).
    pub(crate) fn broken_variant(path: &Path) -> Option<Variant> {
        session_for(path)
            .map(|(s, _)| s.variant)
            .filter(|v| *v != Variant::Correct)
    }

    /// Opens an existing file for writing and cuts it to nothing (the in-place variant).
    pub(crate) fn open_truncate(path: &Path) -> io::Result<File> {
        let file = OpenOptions::new().write(true).truncate(true).open(path)?;
        if let Some((s, name)) = session_for(path) {
            s.log(Op::Truncate { name, len: 0 });
        }
        Ok(file)
    }
}

fn logged(path: &Path, op: impl FnOnce(String) -> Op) {
    if let Some((s, name)) = session_for(path) {
        s.log(op(name));
    }
}

impl FileSystem for Recording {
    fn create_private(path: &Path) -> io::Result<File> {
        let file = StdFs::create_private(path)?;
        logged(path, |name| Op::Create { name });
        Ok(file)
    }

    fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
        StdFs::write_all(file, path, bytes)?;
        if let Some((s, name)) = session_for(path) {
            s.write(&name, bytes);
        }
        Ok(())
    }

    fn sync_all(file: &File, path: &Path) -> io::Result<()> {
        StdFs::sync_all(file, path)?;
        logged(path, |name| Op::Fsync { name });
        Ok(())
    }

    fn rename(from: &Path, to: &Path) -> io::Result<()> {
        StdFs::rename(from, to)?;
        if let (Some((s, from)), Some((_, to))) = (session_for(from), session_for(to)) {
            s.log(Op::Rename { from, to });
        }
        Ok(())
    }

    fn remove_file(path: &Path) -> io::Result<()> {
        StdFs::remove_file(path)?;
        logged(path, |name| Op::Unlink { name });
        Ok(())
    }

    fn sync_dir(dir: &Path) -> io::Result<()> {
        StdFs::sync_dir(dir)?;
        if let Some((s, _)) = session_for(dir) {
            s.log(Op::DirFsync);
        }
        Ok(())
    }

    fn read_dir(dir: &Path) -> io::Result<ReadDir> {
        StdFs::read_dir(dir)
    }

    fn open_lock(path: &Path) -> io::Result<File> {
        // Opening creates the lock file the first time: a directory entry a crash may lose.
        let existed = path.symlink_metadata().is_ok();
        let file = StdFs::open_lock(path)?;
        if !existed {
            logged(path, |name| Op::Create { name });
        }
        Ok(file)
    }

    fn try_lock(file: &File, path: &Path) -> Result<(), TryLockError> {
        StdFs::try_lock(file, path)?;
        logged(path, |name| Op::Lock { name });
        Ok(())
    }

    fn open_read(path: &Path) -> io::Result<File> {
        StdFs::open_read(path)
    }

    fn metadata(path: &Path) -> io::Result<Metadata> {
        StdFs::metadata(path)
    }
}
