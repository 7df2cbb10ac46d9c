//! `cargo xtask crash [--kills N]`: the local store's crash-safety run. Writer processes are
//! killed with SIGKILL at random instants N times (one writer, then two at once) and the
//! store is checked after every kill; see crates/local/tests/crash.rs and
//! docs/reliability.md.

use std::process::Command;

use crate::layout;

/// The number of kills when none is given: what docs/reliability.md reports.
pub(crate) const DEFAULT_KILLS: usize = 500;

pub(crate) fn run(kills: usize) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "test",
            "-p",
            "strongroom-local",
            "--release",
            "--test",
            "crash",
            "--",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env("STRONGROOM_CRASH_KILLS", kills.to_string())
        .current_dir(layout::root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the crash run failed ({status})"))
    }
}
