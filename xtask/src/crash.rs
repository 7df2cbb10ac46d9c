//! `cargo xtask crash [--kills N]`: the local store's crash-safety run. Writer processes are
//! killed with SIGKILL at random instants N times (one writer, then two at once) and the
//! store is checked after every kill; see crates/local/tests/crash.rs and
//! docs/reliability.md.

use crate::cargo;

/// The number of kills when none is given: what docs/reliability.md reports.
pub(crate) const DEFAULT_KILLS: usize = 500;

pub(crate) fn run(kills: usize) -> Result<(), String> {
    cargo::run(
        cargo::command()
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
            .env("STRONGROOM_CRASH_KILLS", kills.to_string()),
        "the crash run",
    )
}
