//! `cargo xtask crash [--kills N] [--only local|mirror]`: writer processes are killed with
//! SIGKILL at random instants N times and what they wrote is checked after every kill: the
//! local store (one writer, then two at once; crates/local/tests/crash.rs) and the facade's
//! mirror (crates/facade/tests/mirror_crash.rs). Each test prints a `crash:` line per
//! round; this command shows them as one table and fails on any corrupt, lost or blocked
//! count. See docs/reliability.md. `cargo xtask crash --explore` checks every crash state a
//! power cut may leave instead (crates/local/src/crash_explore).

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use crate::cargo;

/// The number of kills when none is given: what docs/reliability.md reports.
pub(crate) const DEFAULT_KILLS: usize = 500;

/// A kill-test binary: its package and test target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suite {
    /// The local file store's writers (crates/local/tests/crash.rs).
    Local,
    /// A `Secrets` process writing its mirror (crates/facade/tests/mirror_crash.rs).
    Mirror,
}

impl Suite {
    pub(crate) const ALL: [Self; 2] = [Self::Local, Self::Mirror];

    /// `--only NAME`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|suite| suite.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Mirror => "mirror",
        }
    }

    fn package_and_test(self) -> (&'static str, &'static str) {
        match self {
            Self::Local => ("strongroom-local", "crash"),
            Self::Mirror => ("strongroom-facade", "mirror_crash"),
        }
    }
}

/// One round's `crash:` line, as far as it could be read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    suite: &'static str,
    /// What was killed (`1 writer process(es)`, `the mirror's writer process`).
    mode: String,
    kills: Option<u64>,
    acknowledged: Option<u64>,
    corrupt: Option<u64>,
    lost: Option<u64>,
    blocked: Option<u64>,
    time: String,
}

impl Summary {
    /// Reads `crash: 500 kills of WHAT, 1234 acknowledged ..., 0 corrupt, 0 lost, 12.3s
    /// (seed ...)`: comma-separated counts, each a number then a word, and the duration.
    fn parse(suite: &'static str, line: &str) -> Option<Self> {
        let text = line.strip_prefix("crash: ")?;
        let mut summary = Self {
            suite,
            ..Self::default()
        };
        for part in text.split(", ") {
            let Some((number, words)) = part.split_once(' ') else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                // The duration, as `{:.1?}` prints it, then the seed.
                if number.ends_with('s') {
                    summary.time = number.to_owned();
                }
                continue;
            };
            let slot = match words.split(' ').next() {
                Some("kills") => {
                    summary.mode = words.strip_prefix("kills of ").unwrap_or(words).to_owned();
                    &mut summary.kills
                }
                Some("acknowledged") => &mut summary.acknowledged,
                Some("corrupt") => &mut summary.corrupt,
                Some("lost") => &mut summary.lost,
                Some("blocked") => &mut summary.blocked,
                _ => continue,
            };
            *slot = Some(number);
        }
        summary.kills.is_some().then_some(summary)
    }

    fn failed(&self) -> bool {
        [self.corrupt, self.lost, self.blocked]
            .into_iter()
            .any(|count| count.is_some_and(|n| n > 0))
    }
}

/// Runs `suite`'s kill test in release with `kills` kills per round, passing its output
/// through; returns the rounds' summaries, or why the run failed (with those it printed).
fn run_suite(suite: Suite, kills: usize) -> (Vec<Summary>, Result<(), String>) {
    let (package, test) = suite.package_and_test();
    let spawned = cargo::command()
        .args(["test", "-p", package, "--release", "--test", test, "--"])
        .args(["--nocapture", "--test-threads", "1"])
        .env("STRONGROOM_CRASH_KILLS", kills.to_string())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return (Vec::new(), Err(format!("cannot run cargo test: {err}"))),
    };
    let mut summaries = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(summary) = Summary::parse(suite.name(), &line) {
                summaries.push(summary);
            }
        }
    }
    let result = match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("the {} kill test failed ({status})", suite.name())),
        Err(err) => Err(format!("waiting for the {} kill test: {err}", suite.name())),
    };
    (summaries, result)
}

/// `cargo xtask crash [--kills N] [--only SUITE]`: the kill tests of `suites`, one after the
/// other, then a table of every round; an error if any test failed or counted a corrupt,
/// lost or blocked store.
pub(crate) fn run(kills: usize, suites: &[Suite]) -> Result<(), String> {
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for suite in suites {
        let (printed, result) = run_suite(*suite, kills);
        if result.is_ok() && printed.is_empty() {
            failures.push(format!("the {} kill test printed no summary", suite.name()));
        }
        summaries.extend(printed);
        failures.extend(result.err());
    }
    let show = |count: Option<u64>| count.map_or_else(|| "?".to_owned(), |n| n.to_string());
    println!("\n| suite | what was killed | kills | acknowledged | corrupt | lost | time |");
    println!("|---|---|---|---|---|---|---|");
    for summary in &summaries {
        let lost = match summary.blocked {
            Some(blocked) => format!("{} (blocked: {blocked})", show(summary.lost)),
            None => show(summary.lost),
        };
        println!(
            "| {} | {} | {} | {} | {} | {lost} | {} |",
            summary.suite,
            summary.mode,
            show(summary.kills),
            show(summary.acknowledged),
            show(summary.corrupt),
            summary.time,
        );
        if summary.failed() {
            failures.push(format!(
                "{}: {} lost or damaged data",
                summary.suite, summary.mode
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_local_store_line() {
        let line = "crash: 500 kills of 2 writer process(es), 16435 acknowledged puts, \
                    120 slot changes (up to 5 slots), 0 corrupt, 1 lost, 812.3s (seed 99)";
        let summary = Summary::parse("local", line).unwrap();
        assert_eq!(summary.mode, "2 writer process(es)");
        assert_eq!(summary.kills, Some(500));
        assert_eq!(summary.acknowledged, Some(16435));
        assert_eq!(
            (summary.corrupt, summary.lost, summary.blocked),
            (Some(0), Some(1), None)
        );
        assert_eq!(summary.time, "812.3s");
        assert!(summary.failed());
    }

    #[test]
    fn reads_the_mirror_line() {
        let line = "crash: 30 kills of the mirror's writer process, 136 acknowledged puts and \
                    deletes, 23 mirror confirmations, 93 mirror writes, 208 primary versions \
                    compared, 12 temporary files left by kills, 0 mirror errors, 0 corrupt, \
                    0 lost, 0 blocked, 1.6s (seed 974692700652287)";
        let summary = Summary::parse("mirror", line).unwrap();
        assert_eq!(summary.mode, "the mirror's writer process");
        assert_eq!((summary.kills, summary.acknowledged), (Some(30), Some(136)));
        assert_eq!(summary.blocked, Some(0));
        assert_eq!(summary.time, "1.6s");
        assert!(!summary.failed());
        assert_eq!(Summary::parse("mirror", "test foo ... ok"), None);
        assert_eq!(Summary::parse("mirror", "crash: something else"), None);
    }

    #[test]
    fn only_names_a_suite() {
        assert_eq!(Suite::parse("mirror"), Some(Suite::Mirror));
        assert_eq!(Suite::parse("local"), Some(Suite::Local));
        assert_eq!(Suite::parse("vault"), None);
    }
}
