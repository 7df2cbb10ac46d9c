//! `cargo xtask fuzz [--seconds N] [--target NAME]`: builds the cargo-fuzz targets in
//! `fuzz/` (their own workspace) and runs each for N seconds, then prints executions,
//! coverage (libFuzzer's `cov`: edges, `ft`: features) and crashes per target. CI runs it for
//! [`CI_SECONDS`] per target; docs/reliability.md quotes a longer run.
//!
//! cargo-fuzz wants nightly-only rustc flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain
//! accept them. The targets are built without a sanitizer (`-s none`: the code is
//! `forbid(unsafe_code)`, and AddressSanitizer would double the build for little), with debug
//! assertions on so overflows panic. cargo-fuzz itself is installed once under
//! `target/tools`, and the fuzz build lives in `target/fuzz`, so both are cached with `target/`.
//!
//! Fuzzing keeps what it learns. Each target starts from its committed, minimised corpus in
//! `fuzz/corpus/<target>` (seeded with real envelopes, store files and server answers, then
//! minimised to a set cover of its edges); what a run discovers goes to `target/fuzz/corpus/<target>`, and
//! outside CI the inputs that reach new edges are merged back into `fuzz/corpus/<target>`
//! (libFuzzer `-set_cover_merge=1 -use_counters=0`), ready to commit. CI (the `CI`
//! variable set) reads the committed corpus and writes nothing into the tree. A crash leaves
//! its input in `fuzz/artifacts/<target>/` and fails the command: turn it into a regression
//! test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{cargo, layout};

/// The cargo-fuzz release installed under `target/tools` (it lives here rather than in
/// versions.rs because only this command uses it).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target in `cargo xtask ci`: 12 targets x 5 s, within the 70 s the phase took
/// with 7 targets x 10 s before the corpus and the new targets.
pub(crate) const CI_SECONDS: u64 = 5;

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
    "envelope_slot_table",
    "kms_ssm_responses",
    "vault_transit",
    "gcp_responses",
    "agent_request",
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
    coverage: Option<Coverage>,
    crashed: bool,
}

/// libFuzzer's coverage at the end of a run: `cov` (edges reached) and `ft` (features: edges
/// with hit counts, value profiles), from its `#N DONE cov: X ft: Y corp: ...` line.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Coverage {
    edges: u64,
    features: u64,
}

/// The last status line with `cov:` and `ft:` (the `DONE` line when the run ended on time).
fn parse_coverage(output: &str) -> Option<Coverage> {
    output.lines().rev().find_map(|line| {
        let line = line.trim();
        if !line.starts_with('#') {
            return None;
        }
        let field = |name: &str| -> Option<u64> {
            let mut words = line.split_whitespace();
            words.find(|w| *w == name)?;
            words.next()?.parse().ok()
        };
        Some(Coverage {
            edges: field("cov:")?,
            features: field("ft:")?,
        })
    })
}

/// The committed corpus of `target`, which every run starts from.
fn committed_corpus(target: &str) -> std::path::PathBuf {
    layout::root().join("fuzz/corpus").join(target)
}

/// Where a run writes what it discovers (inside `target/`, never committed by accident).
fn scratch_corpus(target: &str) -> std::path::PathBuf {
    layout::target_dir().join("fuzz/corpus").join(target)
}

/// Merges the inputs of the scratch corpus that reach new edges into the committed one.
/// libFuzzer's set-cover merge over edges only (`-use_counters=0`) keeps the committed corpus
/// small: hit-count features would keep hundreds of near-copies of each JSON answer.
fn keep_discoveries(target: &str) -> Result<(), String> {
    let status = fuzz_command("run")
        .arg(target)
        .arg(committed_corpus(target))
        .arg(scratch_corpus(target))
        .args(["--", "-set_cover_merge=1", "-use_counters=0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot merge the corpus of {target}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("merging the corpus of {target} failed ({status})"))
    }
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
    let keep = std::env::var_os("CI").is_none();
    for target in targets {
        let (committed, scratch) = (committed_corpus(target), scratch_corpus(target));
        for dir in [&committed, &scratch] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        eprintln!("fuzz: {target} for {seconds}s");
        // libFuzzer writes new inputs into the first directory and reads all of them.
        let output = fuzz_command("run")
            .arg(target)
            .arg(&scratch)
            .arg(&committed)
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
        if keep && !crashed {
            keep_discoveries(target)?;
        }
        runs.push(Run {
            target,
            execs: parse_done(&stderr),
            coverage: parse_coverage(&stderr),
            crashed,
        });
    }
    println!("| target | seconds | executions | cov (edges) | ft (features) | crashes |");
    println!("|---|---|---|---|---|---|");
    for run in &runs {
        let unknown = || "?".to_owned();
        let execs = run.execs.map_or_else(unknown, |n| n.to_string());
        let edges = run.coverage.map_or_else(unknown, |c| c.edges.to_string());
        let features = run
            .coverage
            .map_or_else(unknown, |c| c.features.to_string());
        println!(
            "| {} | {seconds} | {execs} | {edges} | {features} | {} |",
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
    fn reads_the_coverage_of_the_last_status_line() {
        let out = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #1024\tpulse  cov: 40 ft: 90 corp: 5/40b lim: 4 exec/s: 512 rss: 31Mb\n\
                   #52731\tDONE   cov: 283 ft: 1127 corp: 96/5399b lim: 4096 exec/s: 5273 rss: 58Mb\n\
                   Done 52731 runs in 11 second(s)\n";
        assert_eq!(
            parse_coverage(out),
            Some(Coverage {
                edges: 283,
                features: 1127
            })
        );
        assert_eq!(parse_coverage("Done 10 runs in 1 second(s)"), None);
        assert_eq!(parse_coverage("#3 NEW cov: x ft: 2"), None);
    }

    #[test]
    fn every_target_has_a_committed_corpus() {
        for target in TARGETS {
            let entries = std::fs::read_dir(committed_corpus(target))
                .map_or(0, |dir| dir.filter_map(Result::ok).count());
            assert!(entries > 0, "fuzz/corpus/{target} is empty or missing");
        }
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
