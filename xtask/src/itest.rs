//! `cargo xtask itest [-- test args]`: services up, the strongroom-itests package with their
//! environment, services down, even when the tests fail or Ctrl-C is pressed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::cargo;
use crate::services::{self, RuntimeChoice};

/// The package holding the suites.
pub(crate) const PACKAGE: &str = "strongroom-itests";

/// Set by the Ctrl-C handler; checked between steps.
fn interrupt_flag() -> Result<Arc<AtomicBool>, String> {
    // Installed once per process: `ci` runs the suites twice (native, then docker), and a
    // second `set_handler` is an error.
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(Arc::clone(flag));
    }
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&flag);
    // The terminal sends SIGINT to the whole foreground group: `cargo test` stops by itself,
    // and this handler keeps xtask alive long enough to stop the servers (which run in their
    // own process groups and never see the signal).
    ctrlc::set_handler(move || seen.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(Arc::clone(FLAG.get_or_init(|| flag)))
}

/// Leader kills in a row in `itest --cluster` (and CI) unless `--cluster-loops` says more;
/// `--cluster-loops 20` is the long form (docs/reliability.md).
pub(crate) const CI_CLUSTER_LOOPS: u32 = 2;

/// The cluster suite alone, against a fresh cluster of three nodes that is removed after,
/// even when the tests fail or Ctrl-C is pressed.
pub(crate) fn run_cluster(
    choice: RuntimeChoice,
    loops: u32,
    test_args: &[String],
) -> Result<(), String> {
    let interrupted = interrupt_flag()?;
    let _lock = crate::lock::acquire()?;
    let runtime = services::resolve(choice);
    let env = crate::cluster::up(runtime, 3);
    let outcome = match env {
        Err(e) => Err(e),
        Ok(_) if interrupted.load(Ordering::SeqCst) => Err("interrupted".to_owned()),
        Ok(mut env) => {
            env.insert(
                "STRONGROOM_ITEST_CLUSTER_LOOPS".to_owned(),
                loops.to_string(),
            );
            let mut command = cargo::command();
            command
                .args(["test", "-p", PACKAGE, "--test", "itest"])
                .envs(&env)
                .arg("--");
            if test_args.is_empty() {
                // One test at a time: the faults hit the one cluster every test uses.
                command.args(["cluster::", "--nocapture", "--test-threads=1"]);
            } else {
                command.args(test_args);
            }
            cargo::run(&mut command, &format!("cargo test -p {PACKAGE} (cluster)"))
        }
    };
    crate::cluster::down()?;
    if interrupted.load(Ordering::SeqCst) {
        return Err("interrupted by Ctrl-C; cluster stopped".to_owned());
    }
    outcome
}

/// Runs the suites; `test_args` go to `cargo test` after `--`.
pub(crate) fn run(choice: RuntimeChoice, test_args: &[String]) -> Result<(), String> {
    let interrupted = interrupt_flag()?;
    let _lock = crate::lock::acquire()?;
    let up = services::up(choice)?;
    let outcome = if interrupted.load(Ordering::SeqCst) {
        Err("interrupted".to_owned())
    } else {
        run_tests(&up.env, test_args)
    };
    // A server that died mid-run explains failures better than the tests' connection errors.
    let problems = services::problems();
    for problem in &problems {
        eprintln!("itest: {problem}");
    }
    if up.started {
        services::down()?;
    } else {
        eprintln!("itest: the servers were already running before itest; leaving them up");
    }
    if interrupted.load(Ordering::SeqCst) {
        return Err("interrupted by Ctrl-C; servers stopped".to_owned());
    }
    outcome?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err("a server died or became unhealthy during the run".to_owned())
    }
}

fn run_tests(
    env: &std::collections::BTreeMap<String, String>,
    test_args: &[String],
) -> Result<(), String> {
    // The CLI suite runs the binary; building it here keeps every cargo invocation in this
    // target folder one after another (a test that ran cargo would race the one running it).
    cargo::run(
        cargo::command().args(["build", "--quiet", "-p", "strongroom-cli"]),
        "cargo build -p strongroom-cli",
    )?;
    let cli = crate::layout::target_dir().join("debug").join("strongroom");
    let mut command = cargo::command();
    command
        .args(["test", "-p", PACKAGE])
        .envs(env)
        .env("STRONGROOM_ITEST_CLI", &cli);
    // The cluster suite needs the cluster (`itest --cluster`), not the single server.
    command
        .arg("--")
        .args(test_args)
        .args(["--skip", "cluster::"]);
    cargo::run(&mut command, &format!("cargo test -p {PACKAGE}"))?;
    gcp_drongo_suite(env, test_args)
}

/// strongroom-gcp's own drongo suite (crates/gcp/tests/drongo.rs, which reads
/// STRONGROOM_ITEST_GCP_ENDPOINT) runs with the others, when the crate has one.
fn gcp_drongo_suite(
    env: &std::collections::BTreeMap<String, String>,
    test_args: &[String],
) -> Result<(), String> {
    if !crate::layout::root().join(GCP_DRONGO_SUITE).is_file() {
        return Ok(());
    }
    let mut command = cargo::command();
    command
        .args(["test", "-p", "strongroom-gcp", "--test", "drongo"])
        .envs(env)
        .arg("--")
        .args(test_args);
    cargo::run(&mut command, "cargo test -p strongroom-gcp --test drongo")
}

/// The file of strongroom-gcp's suite against drongo.
const GCP_DRONGO_SUITE: &str = "crates/gcp/tests/drongo.rs";
