//! Deliberately broken write paths, for showing that the checker catches each mistake.
//! Only test builds have them, and only a store in a directory a test registered with one
//! of them takes them ([`Recording::broken_variant`]).

use std::fs::File;
use std::io;
use std::path::Path;

use super::Variant;
use super::recording::Recording;
use crate::atomic::parent;
use crate::fs::FileSystem as _;

/// Replaces `path` with `contents` the way `variant` gets wrong.
pub(crate) fn replace(
    variant: Variant,
    path: &Path,
    temp: &Path,
    contents: &[u8],
) -> io::Result<File> {
    let dir = parent(path);
    match variant {
        // The real path's own code is in atomic.rs; this arm is never taken.
        Variant::Correct => Err(io::Error::other("the correct write path is not broken")),
        Variant::NoDirFsync => {
            let mut file = Recording::create_private(temp)?;
            Recording::write_all(&mut file, temp, contents)?;
            Recording::sync_all(&file, temp)?;
            Recording::rename(temp, path)?;
            Ok(file)
        }
        Variant::InPlace => {
            // A new store is created under its own name and written there.
            let mut file = if path.exists() {
                Recording::open_truncate(path)?
            } else {
                Recording::create_private(path)?
            };
            Recording::write_all(&mut file, path, contents)?;
            Recording::sync_all(&file, path)?;
            Recording::sync_dir(dir)?;
            Ok(file)
        }
        Variant::RenameBeforeFsync => {
            let mut file = Recording::create_private(temp)?;
            Recording::write_all(&mut file, temp, contents)?;
            Recording::rename(temp, path)?;
            Recording::sync_all(&file, path)?;
            Recording::sync_dir(dir)?;
            Ok(file)
        }
    }
}
