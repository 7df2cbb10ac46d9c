//! The `features` phase of `cargo xtask ci`: each cargo feature of the umbrella crate builds
//! on its own (so `default-features = false, features = ["vault"]` really compiles only
//! that), and the doc tests, README included, pass with every feature on.

use std::process::Command;

use crate::layout;

/// The umbrella crate's features; each is checked alone.
const FEATURES: &[&str] = &[
    "local", "envelope", "vault", "aws", "sigv4", "cache", "facade",
];

pub(crate) fn run() -> Result<(), String> {
    let mut commands: Vec<Vec<String>> = vec![
        vec!["check", "-p", "strongroom", "--no-default-features"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
    ];
    for feature in FEATURES {
        commands.push(
            [
                "check",
                "-p",
                "strongroom",
                "--no-default-features",
                "--features",
                feature,
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        );
    }
    commands.push(
        ["test", "-p", "strongroom", "--all-features", "--doc"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
    );
    for args in commands {
        let status = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(layout::root())
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("`cargo {}` failed ({status})", args.join(" ")));
        }
    }
    Ok(())
}
