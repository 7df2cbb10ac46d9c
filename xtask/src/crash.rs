//! `cargo xtask crash [--kills N]`: the local store's crash-safety run. Writer processes are
//! killed with SIGKILL at random instants N times (one writer, then two at once) and the
//! store is checked after every kill; see crates/local/tests/crash.rs and
//! docs/reliability.md. `cargo xtask crash --explore` checks every crash state a power cut
//! may leave instead (crates/local/src/crash_explore).

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

/// How much `cargo xtask crash --explore` explores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Explore {
    /// The form `cargo test` (and so CI's test phase) runs: small files, every combination
    /// up to 64 per crash point; seconds in a debug build.
    Bounded,
    /// Files of 20 to 100 blocks, up to 4096 combinations per crash point (sampled past
    /// that), in a release build: the figures in docs/reliability.md.
    Full,
}

/// `cargo xtask crash --explore [--bounded]`: every crash state a file system may leave
/// after each recorded store operation, under strict POSIX and ext4 data=ordered, opened
/// by the real store code; and the broken write paths, each of which must be reported. See
/// crates/local/src/crash_explore. Then the same for the facade's audit file
/// (crates/facade/src/audit/crash.rs).
pub(crate) fn explore(how: Explore) -> Result<(), String> {
    for package in ["strongroom-local", "strongroom-facade"] {
        let mut command = cargo::command();
        command.args(["test", "-p", package, "--lib"]);
        if how == Explore::Full {
            command.arg("--release");
        }
        command
            .args(["crash_explore", "--", "--nocapture", "--test-threads", "1"])
            .env(
                "STRONGROOM_CRASH_EXPLORE",
                match how {
                    Explore::Bounded => "bounded",
                    Explore::Full => "full",
                },
            );
        cargo::run(&mut command, "the crash-state exploration")?;
    }
    Ok(())
}
