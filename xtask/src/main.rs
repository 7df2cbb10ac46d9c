//! `cargo xtask`: the project's automation, run the same way by people and by CI.
//!
//! - `cargo xtask ci`: format check, clippy with warnings denied, every test.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        _ => {
            eprintln!("usage: cargo xtask ci");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: xtask lives one folder below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

fn ci() -> Result<(), String> {
    let phases: [(&str, &[&str]); 3] = [
        ("fmt", &["fmt", "--all", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("test", &["test", "--workspace"]),
    ];
    let mut timings = Vec::new();
    for (name, args) in phases {
        let start = Instant::now();
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(root())
            .status()
            .map_err(|e| format!("cannot run cargo {name}: {e}"))?;
        timings.push((name, start.elapsed()));
        if !status.success() {
            return Err(format!("phase {name} failed ({status})"));
        }
    }
    for (name, took) in timings {
        println!("xtask ci: {name:<8} {:>7.1}s", took.as_secs_f64());
    }
    Ok(())
}
