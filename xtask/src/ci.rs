//! `cargo xtask ci`: format check, clippy with warnings denied, unit and doc tests, then the
//! real-server suites. Prints how long each phase took, also when one fails.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::itest;
use crate::layout;
use crate::services::RuntimeChoice;

/// Runs every phase in order and stops at the first failure.
pub(crate) fn run(choice: RuntimeChoice) -> Result<(), String> {
    let cargo_phases: [(&str, &[&str]); 3] = [
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
        (
            "test",
            &["test", "--workspace", "--exclude", itest::PACKAGE],
        ),
    ];
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut result = Ok(());
    for (name, args) in cargo_phases {
        let start = Instant::now();
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(layout::root())
            .status();
        timings.push((name, start.elapsed()));
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                result = Err(format!("phase {name} failed ({s})"));
                break;
            }
            Err(e) => {
                result = Err(format!("cannot run cargo {name}: {e}"));
                break;
            }
        }
    }
    if result.is_ok() {
        let start = Instant::now();
        result = itest::run(choice, &[]).map_err(|e| format!("phase itest failed: {e}"));
        timings.push(("itest", start.elapsed()));
    }
    let total: Duration = timings.iter().map(|(_, d)| *d).sum();
    for (name, took) in &timings {
        println!("xtask ci: {name:<8} {:>7.1}s", took.as_secs_f64());
    }
    println!("xtask ci: {:<8} {:>7.1}s", "total", total.as_secs_f64());
    result
}
