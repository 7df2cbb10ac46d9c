//! One `services up|down` or `itest` at a time per target folder: several people (or agents)
//! share a checkout, and one run's `down` must not stop the servers another run is testing.

use std::fs::{File, TryLockError};

use crate::layout;

/// Held for as long as the run owns the servers; the OS releases it when the file closes,
/// also when xtask dies.
pub(crate) struct ServicesLock {
    _file: File,
}

/// Takes the lock, waiting (with a message) while another run holds it.
pub(crate) fn acquire() -> Result<ServicesLock, String> {
    layout::ensure_dir(&layout::xtask_dir())?;
    lock_at(
        &layout::xtask_dir().join("services.lock"),
        "`cargo xtask services`/`itest`",
    )
}

/// Takes the lock file `name` in the cache folder (shared by every run folder), waiting
/// while `holder` (as messages name it) holds it.
pub(crate) fn acquire_file(name: &str, holder: &str) -> Result<ServicesLock, String> {
    layout::ensure_dir(&layout::cache_dir())?;
    lock_at(&layout::cache_dir().join(name), holder)
}

fn lock_at(path: &std::path::Path, holder: &str) -> Result<ServicesLock, String> {
    let file = File::create(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "xtask: another {holder} run holds {}; waiting",
                path.display()
            );
            file.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    Ok(ServicesLock { _file: file })
}
