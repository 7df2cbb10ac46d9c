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
    let path = layout::xtask_dir().join("services.lock");
    let file = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "services: another `cargo xtask services`/`itest` run holds {}; waiting",
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
