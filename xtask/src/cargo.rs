//! Running cargo from xtask: the cargo that runs xtask, in the repository root.

use std::process::Command;

use crate::layout;

/// `cargo`, the same binary and toolchain as the one running xtask, in the repository root.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(layout::root());
    command
}

/// Runs `command` to completion; an error names `what` when it cannot start or fails.
pub(crate) fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}
