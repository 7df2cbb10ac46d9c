//! `cargo xtask fuzz [--seconds N] [--target NAME]`: builds the cargo-fuzz targets in
//! `fuzz/` (their own workspace) and runs each for N seconds, then prints executions and
//! crashes per target. CI runs it for [`CI_SECONDS`] per target; docs/reliability.md quotes
//! a longer run.
//!
//! cargo-fuzz wants nightly-only rustc flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain
//! accept them. The targets are built without a sanitizer (`-s none`: the code is
//! `forbid(unsafe_code)`, and AddressSanitizer would double the build for little), with debug
//! assertions on so overflows panic. cargo-fuzz itself is installed once under
//! `target/tools`, and the fuzz build lives in `target/fuzz`, so both are cached with `target/`.
//! Corpora grow in `fuzz/corpus/<target>`; a crash leaves its input in
//! `fuzz/artifacts/<target>/` and fails the command: turn it into a regression test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{cargo, layout};

/// The cargo-fuzz release installed under `target/tools` (it lives here rather than in
/// versions.rs because only this command uses it).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target in `cargo xtask ci`.
pub(crate) const CI_SECONDS: u64 = 10;

/// Seconds per target when `--seconds` is not given.
pub(crate) const DEFAULT_SECONDS: u64 = 60;

/// The targets, in the order they run (fuzz/Cargo.toml's `[[bin]]`s).
const TARGETS: &[&str] = &[
    "envelope_open",
    "local_store_file",
    "local_store_document",
    "vault_secret_data",
    "sigv4_profile",
    "secret_name",
    "aws_responses",
];

fn cargo_fuzz() -> PathBuf {
    layout::target_dir().join("tools/bin/cargo-fuzz")
}

/// Installs cargo-fuzz under `target/tools` unless the pinned version is already there.
fn install() -> Result<(), String> {
    let bin = cargo_fuzz();
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION));
    if installed {
        return Ok(());
    }
    eprintln!("fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} into target/tools");
    cargo::run(
        cargo::command()
            .args([
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                CARGO_FUZZ_VERSION,
            ])
            .arg("--root")
            .arg(layout::target_dir().join("tools")),
        "cargo install cargo-fuzz",
    )
}

/// `cargo fuzz <sub> --fuzz-dir fuzz -s none --debug-assertions --target-dir target/fuzz`.
fn fuzz_command(sub: &str) -> Command {
    let mut command = Command::new(cargo_fuzz());
    command
        .arg(sub)
        .args(["--fuzz-dir", "fuzz", "-s", "none", "--debug-assertions"])
        .arg("--target-dir")
        .arg(layout::target_dir().join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(layout::root());
    command
}

/// What one target's run reported.
struct Run {
    target: &'static str,
    execs: Option<u64>,
    crashed: bool,
}

/// libFuzzer's closing line: `Done 123 runs in 10 second(s)`.
fn parse_done(output: &str) -> Option<u64> {
    output.lines().rev().find_map(|line| {
        line.trim()
            .strip_prefix("Done ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

pub(crate) fn run(seconds: u64, only: Option<&str>) -> Result<(), String> {
    let targets: Vec<&'static str> = match only {
        None => TARGETS.to_vec(),
        Some(name) => vec![
            *TARGETS
                .iter()
                .find(|t| **t == name)
                .ok_or_else(|| format!("no fuzz target {name:?}; there are {TARGETS:?}"))?,
        ],
    };
    install()?;
    let status = fuzz_command("build")
        .status()
        .map_err(|e| format!("cannot run cargo fuzz build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo fuzz build failed ({status})"));
    }
    let mut runs = Vec::new();
    for target in targets {
        let corpus = layout::root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        eprintln!("fuzz: {target} for {seconds}s");
        let output = fuzz_command("run")
            .arg(target)
            .args(["--", &format!("-max_total_time={seconds}")])
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo fuzz run {target}: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let crashed = !output.status.success();
        if crashed {
            // Show libFuzzer's report: the panic, the input's path, how to reproduce.
            eprintln!("{stderr}");
        }
        runs.push(Run {
            target,
            execs: parse_done(&stderr),
            crashed,
        });
    }
    println!("| target | seconds | executions | crashes |");
    println!("|---|---|---|---|");
    for run in &runs {
        let execs = run.execs.map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!(
            "| {} | {seconds} | {execs} | {} |",
            run.target,
            u8::from(run.crashed)
        );
    }
    let crashed: Vec<&str> = runs
        .iter()
        .filter(|r| r.crashed)
        .map(|r| r.target)
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets crashed: {crashed:?}; inputs are in fuzz/artifacts/"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_execution_count() {
        let out =
            "#2 INITED\nstat::number_of_executed_units: 5\nDone 10979368 runs in 11 second(s)\n";
        assert_eq!(parse_done(out), Some(10_979_368));
        assert_eq!(parse_done("==1== ERROR: libFuzzer: deadly signal"), None);
    }

    #[test]
    fn every_target_is_a_bin_of_the_fuzz_package() {
        let manifest = std::fs::read_to_string(layout::root().join("fuzz/Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target} is not in fuzz/Cargo.toml"
            );
        }
        assert_eq!(manifest.matches("[[bin]]").count(), TARGETS.len());
    }
}
