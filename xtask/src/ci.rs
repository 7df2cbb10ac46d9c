//! `cargo xtask ci`: format check, clippy with warnings denied, unit and doc tests (which
//! include the bounded crash-state exploration, `cargo xtask crash --explore --bounded`), each
//! umbrella feature alone (`features.rs`), docs without warnings and every publishable crate
//! packaged and built from its tarball (`publish.rs`), a short fuzz run of every target
//! (`fuzz.rs`), then the
//! real-server suites: on the native runtime, then (after building the local images) on the
//! docker runtime, then the cluster suite (three OpenBao nodes, `cluster.rs`) on the native
//! runtime. Prints how long each phase took, also when one fails.

use std::time::{Duration, Instant};

use crate::services::{Runtime, RuntimeChoice};
use crate::{cargo, features, fuzz, images, itest, publish};

/// Which runtimes the integration phase uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suites {
    /// Native first, then docker: both paths are exercised on every run.
    Both,
    /// Only the one asked for with `--runtime`.
    Only(RuntimeChoice),
}

/// Runs every phase in order and stops at the first failure.
pub(crate) fn run(suites: Suites) -> Result<(), String> {
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
        let status = cargo::command().args(args).status();
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
        result = features::run().map_err(|e| format!("phase features failed: {e}"));
        timings.push(("features", start.elapsed()));
    }
    if result.is_ok() {
        let start = Instant::now();
        result = publish::run().map_err(|e| format!("phase publish failed: {e}"));
        timings.push(("publish", start.elapsed()));
    }
    if result.is_ok() {
        // A short run of every fuzz target (cargo xtask fuzz runs longer ones).
        let start = Instant::now();
        result = fuzz::run(fuzz::CI_SECONDS, None).map_err(|e| format!("phase fuzz failed: {e}"));
        timings.push(("fuzz", start.elapsed()));
    }
    let itest_phases: Vec<(&str, RuntimeChoice)> = match suites {
        Suites::Both => vec![
            ("itest", RuntimeChoice::Fixed(Runtime::Native)),
            ("itest-docker", RuntimeChoice::Fixed(Runtime::Docker)),
        ],
        Suites::Only(choice) => vec![("itest", choice)],
    };
    for (name, choice) in itest_phases {
        if result.is_err() {
            break;
        }
        if choice == RuntimeChoice::Fixed(Runtime::Docker) {
            // Its own phase, so a cold image build is measured apart from the suites.
            let start = Instant::now();
            result = images::run().map_err(|e| format!("phase images failed: {e}"));
            timings.push(("images", start.elapsed()));
            if result.is_err() {
                break;
            }
        }
        let start = Instant::now();
        result = itest::run(choice, &[]).map_err(|e| format!("phase {name} failed: {e}"));
        timings.push((name, start.elapsed()));
    }
    if result.is_ok() {
        // The three-node OpenBao cluster with its leader killed and paused under load: native
        // (the runtime every machine has), or the one asked for; the long loop of leader
        // kills is `cargo xtask itest --cluster --cluster-loops 20`.
        let choice = match suites {
            Suites::Both => RuntimeChoice::Fixed(Runtime::Native),
            Suites::Only(choice) => choice,
        };
        let start = Instant::now();
        result = itest::run_cluster(choice, itest::CI_CLUSTER_LOOPS, &[])
            .map_err(|e| format!("phase itest-cluster failed: {e}"));
        timings.push(("itest-cluster", start.elapsed()));
    }
    let total: Duration = timings.iter().map(|(_, d)| *d).sum();
    for (name, took) in &timings {
        println!("xtask ci: {name:<13} {:>7.1}s", took.as_secs_f64());
    }
    println!("xtask ci: {:<13} {:>7.1}s", "total", total.as_secs_f64());
    result
}
