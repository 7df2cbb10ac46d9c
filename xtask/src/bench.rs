//! `cargo xtask bench [--runtime R] [-- --skip-build-cost]`: strongroom side by side with
//! its peers in one run, written to docs/performance.md.
//!
//! 1. Build cost (first, before anything else loads the machine): cold release builds of
//!    `strongroom` with only the `aws` / `vault` feature against aws-sdk-secretsmanager +
//!    aws-config / vaultrs, and with only `gcp` against google-cloud-secretmanager-v1, each a scratch package under `target/bench/build-cost/` with its
//!    own clean target folder; wall time and unique crates (`cargo tree`).
//! 2. In-process paths: the criterion benchmarks of `benches/` (`strongroom-benches`), read
//!    back from `target/criterion/*/new/estimates.json`, and its `probe` binary (single
//!    flight request counts, resident memory). Cached reads across threads ([`hot_key`],
//!    with AWS's caching client as the peer) and concurrent puts ([`group_commit`], when
//!    that bench target exists) have bench targets and tables of their own.
//! 3. End to end against the real servers (`services up`, as `itest` does): the Rust peers of
//!    `benches/peers` (its own workspace, built with `--target-dir target/peers` so it never
//!    holds the main target lock and never reaches `cargo build` or `cargo xtask ci`), and
//!    the Python peers (hvac, boto3) from a venv pinned in this file ([`PYTHON_PEERS`]; kept
//!    here, not in versions.rs, so the bench pins move with the bench). SSM Parameter
//!    Store's uncached read on moto has its own tables ([`ssm`]).
//!
//! Every figure is a ratio of two things measured in the same run. The generated tables go
//! between the `bench:begin` / `bench:end` markers of docs/performance.md; the text around
//! them (method, analysis of missed targets) is kept.
//! The same figures are drawn as SVG charts under docs/perf/ ([`charts`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::layout;
use crate::provision::{self, Venv};
use crate::services::{self, RuntimeChoice};

/// The Python peers, pinned: hvac (Vault) and boto3 (the version LocalStack 4.13.1's venv has).
pub(crate) const PYTHON_PEERS: &[&str] = &["hvac==2.3.0", "boto3==1.42.34"];

/// The venv the Python peers run from (under target/xtask/venvs).
const PYTHON_VENV: Venv = Venv {
    name: "bench-peers",
    pins: PYTHON_PEERS,
    needs_python: None,
};

const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench`; edits inside are lost) -->";
const END: &str = "<!-- bench:end -->";
/// The agents' table has markers of its own, so `--only-agents` rewrites only it.
const AGENTS_BEGIN: &str =
    "<!-- bench-agents:begin (written by `cargo xtask bench`; edits inside are lost) -->";
const AGENTS_END: &str = "<!-- bench-agents:end -->";

mod agents;
mod charts;
mod criterion;
mod gcp;
mod group_commit;
mod hot_key;
mod ssm;

/// What `cargo xtask bench` was asked to do.
pub(crate) struct BenchArgs {
    /// Leave out the cold builds (they take most of the run's time).
    skip_build_cost: bool,
    /// Run only the local agents' comparison (`strongroom serve`, `bao proxy`).
    only_agents: bool,
}

impl BenchArgs {
    /// Parses the arguments after `--`.
    pub(crate) fn parse(rest: &[String]) -> Result<Self, String> {
        let mut args = Self {
            skip_build_cost: false,
            only_agents: false,
        };
        for arg in rest {
            match arg.as_str() {
                "--skip-build-cost" => args.skip_build_cost = true,
                "--only-agents" => args.only_agents = true,
                other => return Err(format!("bench: unknown argument {other:?}")),
            }
        }
        Ok(args)
    }
}

/// Runs everything and writes docs/performance.md.
pub(crate) fn run(choice: RuntimeChoice, args: &BenchArgs) -> Result<(), String> {
    if args.only_agents {
        return run_agents(choice);
    }
    let started = Instant::now();
    let mut results = BTreeMap::<&str, Value>::new();

    let build_cost = if args.skip_build_cost {
        eprintln!("bench: build cost skipped (--skip-build-cost)");
        None
    } else {
        Some(build_cost()?)
    };

    eprintln!("bench: criterion benchmarks (benches/, strongroom-benches)");
    let criterion = run_criterion()?;
    eprintln!("bench: criterion hot_key (cached reads across threads)");
    let hot_key = hot_key::run_criterion()?;
    let group_commit = group_commit::run(criterion["file_store/put_disk"].as_f64())?;
    eprintln!("bench: probes (single flight, memory)");
    let single_flight = probe("single-flight")?;
    let memory = probe("memory")?;

    eprintln!("bench: building the Rust peers (benches/peers, target/peers)");
    let (peers_bin, aws_note) = build_peers()?;
    eprintln!(
        "bench: provisioning the Python peers ({})",
        PYTHON_PEERS.join(" ")
    );
    let (venv, _) = provision::ensure(&PYTHON_VENV)?;
    let (cli, bao) = agent_binaries()?;

    let (end_to_end, ssm, gcp, agents, aws_caching) = with_services(choice, |env| {
        Ok((
            end_to_end(&peers_bin, &venv, env)?,
            ssm::run(&peers_bin, env, &aws_note)?,
            gcp::run(&peers_bin, env, &aws_note)?,
            agents::run(&peers_bin, &cli, &bao, env)?,
            hot_key::run_aws_caching(&peers_bin, env),
        ))
    })?;

    results.insert("criterion", criterion);
    results.insert("single_flight", single_flight);
    results.insert("memory", memory);
    results.insert("hot_key", hot_key::with_aws_caching(hot_key, &aws_caching));
    results.insert("group_commit", group_commit);
    results.insert("end_to_end", end_to_end);
    if let Some(ssm) = ssm {
        results.insert("ssm", ssm);
    }
    if let Some(gcp) = gcp {
        results.insert("gcp", gcp);
    }
    results.insert("agents", agents.clone());
    if let Some(cost) = build_cost {
        results.insert("build_cost", cost);
    }
    let results = serde_json::to_value(&results).map_err(|e| e.to_string())?;
    let bench_dir = layout::target_dir().join("bench");
    layout::ensure_dir(&bench_dir)?;
    let raw = bench_dir.join("results.json");
    std::fs::write(
        &raw,
        serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("cannot write {}: {e}", raw.display()))?;

    let tables = render(&results, &aws_note, args.skip_build_cost);
    let doc = layout::root().join("docs/performance.md");
    write_between_markers(&doc, &tables, BEGIN, END)?;
    write_between_markers(&doc, &agents::render(&agents), AGENTS_BEGIN, AGENTS_END)?;
    let charts = charts::write(&results, &layout::root().join("docs"))?;
    eprintln!("bench: {} charts in docs/perf", charts.len());
    eprintln!(
        "bench: done in {:.0}s; tables in {}, raw figures in {}",
        started.elapsed().as_secs_f64(),
        doc.display(),
        raw.display()
    );
    Ok(())
}

/// `--only-agents`: the local agents' comparison alone, written between its own markers.
fn run_agents(choice: RuntimeChoice) -> Result<(), String> {
    eprintln!("bench: building the Rust peers (benches/peers, target/peers)");
    let (peers_bin, _) = build_peers()?;
    let (cli, bao) = agent_binaries()?;
    let agents = with_services(choice, |env| agents::run(&peers_bin, &cli, &bao, env))?;
    let bench_dir = layout::target_dir().join("bench");
    layout::ensure_dir(&bench_dir)?;
    let raw = bench_dir.join("agents.json");
    std::fs::write(&raw, agents.to_string())
        .map_err(|e| format!("cannot write {}: {e}", raw.display()))?;
    let doc = layout::root().join("docs/performance.md");
    write_between_markers(&doc, &agents::render(&agents), AGENTS_BEGIN, AGENTS_END)?;
    eprintln!(
        "bench: agents table in {}, raw figures in {}",
        doc.display(),
        raw.display()
    );
    Ok(())
}

/// The release `strongroom` binary (built here) and OpenBao's `bao` (for `bao proxy`).
fn agent_binaries() -> Result<(PathBuf, PathBuf), String> {
    eprintln!("bench: building the release strongroom CLI (for strongroom serve)");
    crate::cargo::run(
        crate::cargo::command().args(["build", "--release", "--quiet", "-p", "strongroom-cli"]),
        "cargo build --release -p strongroom-cli",
    )?;
    let cli = layout::target_dir().join("release").join("strongroom");
    let (venv, _) = provision::ensure(&services::Service::OpenBao.venv())?;
    Ok((cli, crate::openbao::binary(&venv)?))
}

/// Runs `work` with the servers up (started here, or left running if they already were).
fn with_services<T>(
    choice: RuntimeChoice,
    work: impl FnOnce(&BTreeMap<String, String>) -> Result<T, String>,
) -> Result<T, String> {
    let _lock = crate::lock::acquire()?;
    let up = services::up(choice)?;
    let outcome = work(&up.env);
    if up.started {
        services::down()?;
    } else {
        eprintln!("bench: the servers were already running; leaving them up");
    }
    outcome
}

// ---------------------------------------------------------------------------------------
// Running things

fn run_ok(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{what} failed ({})", output.status));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("{what} printed non-UTF-8"))
}

fn json_line(text: &str, what: &str) -> Result<Value, String> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("{what} printed no JSON"))?;
    serde_json::from_str(line).map_err(|e| format!("{what} printed bad JSON: {e}"))
}

/// The criterion benchmarks and the names their medians are read under.
const CRITERION: &[&str] = &[
    "cache_read/facade_1t",
    "cache_read/quick_cache_1t",
    "cache_read/facade_2t",
    "cache_read/quick_cache_2t",
    "sigv4/strongroom",
    "sigv4/aws_sigv4",
    "envelope/strongroom_datakey_seal_64B",
    "envelope/ring_seal_64B",
    "envelope/strongroom_datakey_open_64B",
    "envelope/ring_open_64B",
    "envelope/strongroom_datakey_seal_64KiB",
    "envelope/ring_seal_64KiB",
    "envelope/strongroom_datakey_open_64KiB",
    "envelope/ring_open_64KiB",
    "envelope/strongroom_seal_64B",
    "envelope/ring_envelope_seal_64B",
    "envelope/strongroom_open_64B",
    "envelope/ring_envelope_open_64B",
    "envelope/strongroom_seal_64KiB",
    "envelope/ring_envelope_seal_64KiB",
    "envelope/strongroom_open_64KiB",
    "envelope/ring_envelope_open_64KiB",
    "file_store/get",
    "file_store/hashmap_get",
    "file_store/stat",
    "file_store/put_disk",
    "file_store/put_tmpfs",
];

fn run_criterion() -> Result<Value, String> {
    let disk = layout::target_dir().join("bench/disk");
    layout::ensure_dir(&disk)?;
    let status = crate::cargo::command()
        .args(["bench", "-p", "strongroom-benches", "--bench", "hot_paths"])
        .env("STRONGROOM_BENCH_DISK_DIR", &disk)
        .stdout(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo bench -p strongroom-benches failed ({status})"
        ));
    }
    let root = layout::target_dir().join("criterion");
    let mut medians = serde_json::Map::new();
    for name in CRITERION {
        let path = root.join(name).join("new/estimates.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let estimates: Value =
            serde_json::from_str(&text).map_err(|e| format!("bad {}: {e}", path.display()))?;
        let median = estimates["median"]["point_estimate"]
            .as_f64()
            .ok_or_else(|| format!("no median in {}", path.display()))?;
        medians.insert((*name).to_owned(), Value::from(median));
    }
    Ok(Value::Object(medians))
}

fn probe(what: &str) -> Result<Value, String> {
    let out = run_ok(
        crate::cargo::command()
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "strongroom-benches",
                "--bin",
                "probe",
                "--",
            ])
            .arg(what),
        &format!("probe {what}"),
    )?;
    json_line(&out, &format!("probe {what}"))
}

fn peers_manifest() -> PathBuf {
    layout::root().join("benches/peers/Cargo.toml")
}

fn peers_target() -> PathBuf {
    layout::target_dir().join("peers")
}

/// Builds benches/peers, with strongroom-aws and strongroom-gcp when they build; the binary
/// and a note saying why they are absent, if they are.
fn build_peers() -> Result<(PathBuf, Option<String>), String> {
    let build = |features: &[&str]| {
        let mut command = crate::cargo::command();
        command
            .args(["build", "--release", "--manifest-path"])
            .arg(peers_manifest())
            .arg("--target-dir")
            .arg(peers_target())
            .args(features)
            .stdout(Stdio::null())
            .status()
    };
    let bin = peers_target().join("release/strongroom-bench-peers");
    match build(&["--features", "aws,gcp"]) {
        Ok(status) if status.success() => return Ok((bin, None)),
        Ok(_) | Err(_) => {}
    }
    eprintln!(
        "bench: benches/peers does not build with strongroom-aws and strongroom-gcp; building \
         without them"
    );
    let status = build(&[]).map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building benches/peers failed ({status})"));
    }
    Ok((
        bin,
        Some(
            "not measured: crates/aws or crates/gcp (strongroom-aws, strongroom-gcp) did not \
             build in this run"
                .to_owned(),
        ),
    ))
}

fn end_to_end(peers: &Path, venv: &Path, env: &BTreeMap<String, String>) -> Result<Value, String> {
    let script = layout::root().join("benches/peers/python/bench.py");
    let mut out = serde_json::Map::new();
    for server in ["vault", "aws"] {
        eprintln!("bench: end to end, {server}: Rust peers");
        let rust = json_line(
            &run_ok(
                Command::new(peers).arg(server).envs(env),
                &format!("peers {server}"),
            )?,
            "peers",
        )?;
        eprintln!("bench: end to end, {server}: Python peers");
        let python = json_line(
            &run_ok(
                Command::new(venv.join("bin/python"))
                    .arg(&script)
                    .arg(server)
                    .envs(env),
                &format!("bench.py {server}"),
            )?,
            "bench.py",
        )?;
        out.insert(
            server.to_owned(),
            serde_json::json!({"rust": rust, "python": python}),
        );
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// Build cost

/// One cold build: a name, what the scratch package depends on, which lockfile seeds it.
struct BuildCase {
    name: &'static str,
    dependencies: String,
    lockfile: PathBuf,
    note: Option<String>,
}

/// Whether the umbrella crate has `feature` (the peers' comparison needs its backend features).
fn umbrella_has_feature(feature: &str) -> bool {
    let manifest = layout::root().join("crates/strongroom/Cargo.toml");
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        text.lines()
            .any(|line| line.trim_start().starts_with(&format!("{feature} =")))
    })
}

fn strongroom_case(name: &'static str, feature: &str, backend_crate: &str) -> BuildCase {
    let root = layout::root();
    let (dependencies, note) = if umbrella_has_feature(feature) {
        (
            format!(
                "strongroom = {{ path = {:?}, default-features = false, features = [{feature:?}] }}",
                root.join("crates/strongroom").display().to_string()
            ),
            None,
        )
    } else {
        (
            format!(
                "{backend_crate} = {{ path = {:?} }}",
                root.join(format!("crates/{feature}")).display().to_string()
            ),
            Some(format!(
                "the umbrella has no `{feature}` feature yet: built {backend_crate} directly"
            )),
        )
    };
    BuildCase {
        name,
        dependencies,
        lockfile: root.join("Cargo.lock"),
        note,
    }
}

fn peer_case(name: &'static str, dependencies: &str) -> BuildCase {
    BuildCase {
        name,
        dependencies: dependencies.to_owned(),
        lockfile: layout::root().join("benches/peers/Cargo.lock"),
        note: None,
    }
}

fn build_cost() -> Result<Value, String> {
    let cases = [
        strongroom_case("strongroom_aws", "aws", "strongroom-aws"),
        // With their default features: what `cargo add aws-config aws-sdk-secretsmanager`
        // gives a user.
        peer_case(
            "aws_sdk",
            "aws-config = \"1\"\naws-sdk-secretsmanager = \"1\"",
        ),
        strongroom_case("strongroom_vault", "vault", "strongroom-vault"),
        peer_case("vaultrs", r#"vaultrs = "0.8""#),
        strongroom_case("strongroom_gcp", "gcp", "strongroom-gcp"),
        // Google's Rust client for Secret Manager (google-cloud-rust), default features.
        peer_case(
            "google_cloud_secretmanager",
            r#"google-cloud-secretmanager-v1 = "1""#,
        ),
    ];
    let base = layout::target_dir().join("bench/build-cost");
    let mut out = serde_json::Map::new();
    for case in &cases {
        eprintln!("bench: cold release build: {}", case.name);
        let dir = base.join(case.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
        }
        layout::ensure_dir(&dir.join("src"))?;
        let manifest = format!(
            "[package]\nname = \"build-cost-{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n{}\n",
            case.name.replace('_', "-"),
            case.dependencies
        );
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(dir.join("Cargo.toml"), &manifest)?;
        write(
            dir.join("src/lib.rs"),
            "//! Scratch package for a build-cost measurement.\n",
        )?;
        // The versions the rest of the run measured with; cargo drops what is not used.
        std::fs::copy(&case.lockfile, dir.join("Cargo.lock"))
            .map_err(|e| format!("cannot copy {}: {e}", case.lockfile.display()))?;
        let manifest_path = dir.join("Cargo.toml");
        // Download first, so the timed build compiles only.
        run_ok(
            crate::cargo::command()
                .args(["fetch", "--manifest-path"])
                .arg(&manifest_path),
            "cargo fetch",
        )?;
        let start = Instant::now();
        let status = crate::cargo::command()
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest_path)
            .arg("--target-dir")
            .arg(dir.join("target"))
            .status()
            .map_err(|e| format!("cannot run cargo build: {e}"))?;
        let seconds = start.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!("cold build of {} failed ({status})", case.name));
        }
        let tree = run_ok(
            crate::cargo::command()
                .args([
                    "tree",
                    "--prefix",
                    "none",
                    "-e",
                    "normal,build",
                    "--manifest-path",
                ])
                .arg(&manifest_path),
            "cargo tree",
        )?;
        let crates = unique_crates(&tree);
        // The target folder is hundreds of MB; the figure is what we keep.
        drop(std::fs::remove_dir_all(dir.join("target")));
        out.insert(
            case.name.to_owned(),
            serde_json::json!({
                "seconds": seconds,
                "unique_crates": crates,
                "dependencies": case.dependencies,
                "note": case.note,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// Distinct `name version` pairs in `cargo tree --prefix none` output, less the scratch
/// package itself.
fn unique_crates(tree: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for line in tree.lines() {
        let mut words = line.split_whitespace();
        if let (Some(name), Some(version)) = (words.next(), words.next())
            && !name.starts_with("build-cost-")
        {
            seen.insert(format!("{name} {version}"));
        }
    }
    seen.len()
}

// ---------------------------------------------------------------------------------------
// The document

/// `a / b`, or NaN when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => a / b,
        _ => f64::NAN,
    }
}

fn fmt_ns(ns: Option<f64>) -> String {
    match ns {
        None => "not measured".to_owned(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        Some(ns) => format!("{ns:.1} ns"),
    }
}

fn fmt_us(us: Option<f64>) -> String {
    us.map_or_else(|| "not measured".to_owned(), |us| format!("{us:.0} µs"))
}

fn fmt_ratio(r: f64) -> String {
    if r.is_nan() {
        "n/a".to_owned()
    } else {
        format!("{r:.2}x")
    }
}

/// `met` / `missed` for a ratio that must be at most (`upper`) or at least `bound`.
fn verdict(r: f64, bound: f64, upper: bool) -> &'static str {
    if r.is_nan() {
        "not measured"
    } else if (upper && r <= bound) || (!upper && r >= bound) {
        "met"
    } else {
        "**missed**"
    }
}

struct Table(String);

impl Table {
    fn new(title: &str) -> Self {
        let mut text = format!("\n### {title}\n\n");
        text.push_str("| figure | strongroom | peer | ratio | target | verdict |\n");
        text.push_str("|---|---|---|---|---|---|\n");
        Self(text)
    }

    fn row(&mut self, cells: [&str; 6]) {
        let _ = writeln!(self.0, "| {} |", cells.join(" | "));
    }
}

fn version_of(lockfile: &Path, name: &str) -> String {
    let Ok(text) = std::fs::read_to_string(lockfile) else {
        return "?".to_owned();
    };
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"")
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return version.trim_matches('"').to_owned();
        }
    }
    "?".to_owned()
}

fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!("{cpus} CPUs (nproc), {model}; load average {load} at the end of the run")
}

/// Today's UTC date, from the system clock (days since 1970 to a civil date).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[allow(clippy::too_many_lines)]
fn render(results: &Value, aws_note: &Option<String>, skipped_build: bool) -> String {
    let c = |name: &str| results["criterion"][name].as_f64();
    let root = layout::root();
    let main_lock = root.join("Cargo.lock");
    let peers_lock = root.join("benches/peers/Cargo.lock");
    let mut doc = String::new();
    let _ = writeln!(doc, "Run of {} on {}.\n", today(), machine_line());
    let _ = writeln!(
        doc,
        "Versions: quick_cache {}, ring {}, aws-sigv4 {} (wrapped by strongroom-sigv4), criterion {}; \
         peers: vaultrs {}, aws-sdk-secretsmanager {}, aws-config {}, aws-sigv4 {} (raw hyper AWS client), \
         hyper {}; Python: {}; servers: OpenBao, LocalStack as pinned in xtask/src/versions.rs.",
        version_of(&main_lock, "quick_cache"),
        version_of(&main_lock, "ring"),
        version_of(&main_lock, "aws-sigv4"),
        version_of(&main_lock, "criterion"),
        version_of(&peers_lock, "vaultrs"),
        version_of(&peers_lock, "aws-sdk-secretsmanager"),
        version_of(&peers_lock, "aws-config"),
        version_of(&peers_lock, "aws-sigv4"),
        version_of(&peers_lock, "hyper"),
        PYTHON_PEERS.join(", "),
    );

    // Cached read.
    let mut t = Table::new("Cached read through the `Secrets` facade (criterion medians)");
    for threads in ["1t", "2t"] {
        let facade = c(&format!("cache_read/facade_{threads}"));
        let bare = c(&format!("cache_read/quick_cache_{threads}"));
        let r = ratio(facade, bare);
        t.row([
            &format!(
                "cached read, {} thread(s), time per read per thread",
                &threads[..1]
            ),
            &fmt_ns(facade),
            &format!("quick_cache get {}", fmt_ns(bare)),
            &fmt_ratio(r),
            "≤ 2x",
            verdict(r, 2.0, true),
        ]);
    }
    for threads in ["1t", "2t"] {
        let per_second = c(&format!("cache_read/facade_{threads}")).map(|ns| 1e9 / ns);
        let bare = c(&format!("cache_read/quick_cache_{threads}")).map(|ns| 1e9 / ns);
        t.row([
            &format!("reads per second per thread, {} thread(s)", &threads[..1]),
            &per_second.map_or("not measured".to_owned(), |r| format!("{:.1} M", r / 1e6)),
            &bare.map_or("not measured".to_owned(), |r| {
                format!("quick_cache {:.1} M", r / 1e6)
            }),
            "",
            "≥ 10 M",
            verdict(per_second.unwrap_or(f64::NAN), 10e6, false),
        ]);
    }
    let sf = &results["single_flight"];
    let one = sf["one_key_requests"].as_f64();
    let many = sf["many_keys_requests"].as_f64();
    t.row([
        "single flight: 1,000 concurrent cold reads of one key, backend requests",
        &one.map_or("not measured".to_owned(), |v| format!("{v}")),
        "",
        "",
        "= 1",
        if one == Some(1.0) {
            "met"
        } else {
            "**missed**"
        },
    ]);
    t.row([
        "single flight: 10,000 keys by 64 tasks, backend requests",
        &many.map_or("not measured".to_owned(), |v| format!("{v}")),
        "",
        "",
        "= 10,000",
        if many == Some(10_000.0) {
            "met"
        } else {
            "**missed**"
        },
    ]);
    doc.push_str(&t.0);
    doc.push_str(&hot_key::render(
        &results["hot_key"],
        &version_of(&peers_lock, "aws_secretsmanager_caching"),
    ));

    // End to end.
    for (server, title, ours, peers) in [
        (
            "vault",
            "OpenBao KV v2 read, uncached, reused connection",
            "strongroom_vaultstore",
            &["strongroom_kv2", "raw_hyper", "vaultrs"][..],
        ),
        (
            "aws",
            "LocalStack GetSecretValue, uncached, reused connection",
            "strongroom_aws",
            &["raw_hyper", "aws_sdk"][..],
        ),
    ] {
        let e2e = &results["end_to_end"][server];
        let python_name = if server == "vault" { "hvac" } else { "boto3" };
        let python = &e2e["python"][python_name];
        for flavor in ["current_thread", "multi_thread"] {
            let rust = &e2e["rust"][flavor];
            let mut t = Table::new(&format!("{title}: tokio {flavor} runtime"));
            let p50 = |name: &str| rust[name]["p50_us"].as_f64();
            let cpu = |name: &str| rust[name]["cpu_us_per_read"].as_f64();
            let ours_p50 = p50(ours);
            let ours_cpu = cpu(ours);
            let missing = if server == "aws" {
                aws_note.clone()
            } else {
                None
            };
            let show = |v: Option<f64>| match (&missing, v) {
                (Some(note), None) => note.clone(),
                _ => fmt_us(v),
            };
            for peer in peers {
                let r = ratio(ours_p50, p50(peer));
                let (target, v) = match (server, *peer) {
                    ("vault", "raw_hyper") => ("≤ 1.15x", verdict(r, 1.15, true)),
                    ("aws", "aws_sdk") => ("≤ 1x", verdict(r, 1.0, true)),
                    _ => ("", ""),
                };
                t.row([
                    &format!("p50 per read vs {peer}"),
                    &show(ours_p50),
                    &fmt_us(p50(peer)),
                    &fmt_ratio(r),
                    target,
                    v,
                ]);
                let r = ratio(ours_cpu, cpu(peer));
                let (target, v) = match (server, *peer) {
                    ("vault", "raw_hyper") => ("≤ 1.3x", verdict(r, 1.3, true)),
                    ("vault", "vaultrs") => ("≤ 0.8x", verdict(r, 0.8, true)),
                    ("aws", "aws_sdk") => ("≤ 0.5x", verdict(r, 0.5, true)),
                    _ => ("", ""),
                };
                t.row([
                    &format!("client CPU per read vs {peer}"),
                    &show(ours_cpu),
                    &fmt_us(cpu(peer)),
                    &fmt_ratio(r),
                    target,
                    v,
                ]);
            }
            let py_p50 = python["p50_us"].as_f64();
            let py_cpu = python["cpu_us_per_read"].as_f64();
            t.row([
                &format!("p50 per read vs {python_name} (Python, one thread)"),
                &show(ours_p50),
                &fmt_us(py_p50),
                &fmt_ratio(ratio(ours_p50, py_p50)),
                "",
                "",
            ]);
            t.row([
                &format!("client CPU per read vs {python_name}"),
                &show(ours_cpu),
                &fmt_us(py_cpu),
                &fmt_ratio(ratio(ours_cpu, py_cpu)),
                "",
                "",
            ]);
            doc.push_str(&t.0);
        }
    }
    doc.push_str(&ssm::render(&results["ssm"], aws_note));
    doc.push_str(&gcp::render(&results["gcp"], aws_note));

    // Signing and envelope.
    let mut t = Table::new("Signing and envelope (criterion medians)");
    let r = ratio(c("sigv4/strongroom"), c("sigv4/aws_sigv4"));
    t.row([
        "SigV4-sign a GetSecretValue request",
        &fmt_ns(c("sigv4/strongroom")),
        &format!("aws-sigv4 direct {}", fmt_ns(c("sigv4/aws_sigv4"))),
        &fmt_ratio(r),
        "≤ 1.1x",
        verdict(r, 1.1, true),
    ]);
    // The target (within 1.2x) is for a data key already unwrapped: one DataKey seal/open against
    // one ring AES-256-GCM operation with a ready key. The whole envelope (a data key made
    // and wrapped, or unwrapped, on every call) is shown against the same envelope built by
    // hand in ring, with no target.
    for op in ["seal", "open"] {
        for size in ["64B", "64KiB"] {
            let ours = c(&format!("envelope/strongroom_datakey_{op}_{size}"));
            let one = c(&format!("envelope/ring_{op}_{size}"));
            let r = ratio(ours, one);
            t.row([
                &format!("DataKey {op} {size} (key unwrapped) vs one ring AES-256-GCM {op}"),
                &fmt_ns(ours),
                &fmt_ns(one),
                &fmt_ratio(r),
                "≤ 1.2x",
                verdict(r, 1.2, true),
            ]);
        }
    }
    for op in ["seal", "open"] {
        for size in ["64B", "64KiB"] {
            let ours = c(&format!("envelope/strongroom_{op}_{size}"));
            let env = c(&format!("envelope/ring_envelope_{op}_{size}"));
            t.row([
                &format!("whole envelope {op} {size} vs the same envelope in raw ring"),
                &fmt_ns(ours),
                &fmt_ns(env),
                &fmt_ratio(ratio(ours, env)),
                "",
                "",
            ]);
        }
    }
    doc.push_str(&t.0);

    // File store.
    let mut t = Table::new("Local file store holding 10,000 secrets (criterion medians)");
    let r = ratio(c("file_store/get"), c("file_store/hashmap_get"));
    t.row([
        "get of one secret, store open",
        &fmt_ns(c("file_store/get")),
        &format!(
            "HashMap get + clone {}",
            fmt_ns(c("file_store/hashmap_get"))
        ),
        &fmt_ratio(r),
        "< 10x",
        verdict(r, 10.0, true),
    ]);
    let r = ratio(c("file_store/stat"), c("file_store/hashmap_get"));
    t.row([
        "of which: one stat of the store file (the revalidation against other processes)",
        &fmt_ns(c("file_store/stat")),
        &format!(
            "HashMap get + clone {}",
            fmt_ns(c("file_store/hashmap_get"))
        ),
        &fmt_ratio(r),
        "",
        "",
    ]);
    let disk = c("file_store/put_disk");
    let tmpfs = c("file_store/put_tmpfs");
    let share = match (disk, tmpfs) {
        (Some(d), Some(t)) if d > 0.0 => (d - t) / d,
        _ => f64::NAN,
    };
    t.row([
        "put on disk (with fsync) vs the same put on tmpfs (fsync is free there)",
        &fmt_ns(disk),
        &fmt_ns(tmpfs),
        &fmt_ratio(ratio(disk, tmpfs)),
        "fsync > 50% of a put",
        verdict(share, 0.5, false),
    ]);
    let _ = writeln!(
        t.0,
        "| share of a disk put that is fsync and disk I/O: (disk − tmpfs) / disk | {} | | | | |",
        if share.is_nan() {
            "n/a".to_owned()
        } else {
            format!("{:.0}%", share * 100.0)
        }
    );
    doc.push_str(&t.0);
    doc.push_str(&group_commit::render(&results["group_commit"]));

    // Build cost.
    let mut t = Table::new("Build cost: cold release build, clean target folder each");
    if skipped_build {
        t.row(["(skipped with --skip-build-cost)", "", "", "", "", ""]);
    }
    let b = &results["build_cost"];
    for (ours, peer, label) in [
        (
            "strongroom_aws",
            "aws_sdk",
            "aws-sdk-secretsmanager + aws-config",
        ),
        ("strongroom_vault", "vaultrs", "vaultrs"),
        (
            "strongroom_gcp",
            "google_cloud_secretmanager",
            "google-cloud-secretmanager-v1",
        ),
    ] {
        if skipped_build {
            break;
        }
        let secs = |n: &str| b[n]["seconds"].as_f64();
        let crates = |n: &str| b[n]["unique_crates"].as_f64();
        let note = b[ours]["note"]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let r = ratio(secs(ours), secs(peer));
        t.row([
            &format!("wall time vs {label}{note}"),
            &secs(ours).map_or("not measured".to_owned(), |s| format!("{s:.0} s")),
            &secs(peer).map_or("not measured".to_owned(), |s| format!("{s:.0} s")),
            &fmt_ratio(r),
            "≤ 0.40x",
            verdict(r, 0.4, true),
        ]);
        let r = ratio(crates(ours), crates(peer));
        t.row([
            &format!("unique crates vs {label}"),
            &crates(ours).map_or("not measured".to_owned(), |s| format!("{s}")),
            &crates(peer).map_or("not measured".to_owned(), |s| format!("{s}")),
            &fmt_ratio(r),
            "≤ 0.5x",
            verdict(r, 0.5, true),
        ]);
    }
    doc.push_str(&t.0);

    // Memory.
    let m = &results["memory"];
    let payload = m["payload_bytes"].as_f64();
    let before = m["rss_before_kib"].as_f64().map(|k| k * 1024.0);
    let after = m["rss_after_kib"].as_f64().map(|k| k * 1024.0);
    let growth = match (before, after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let mut t = Table::new("Memory: a process holding 10,000 cached secrets (64-byte values)");
    let mib = |v: Option<f64>| {
        v.map_or("not measured".to_owned(), |v| {
            format!("{:.2} MiB", v / 1_048_576.0)
        })
    };
    t.row([
        "resident size growth while the cache fills vs sum of key + value sizes",
        &mib(growth),
        &mib(payload),
        &fmt_ratio(ratio(growth, payload)),
        "reported",
        "",
    ]);
    t.row([
        "resident size of the whole process after filling",
        &mib(after),
        "",
        "",
        "reported",
        "",
    ]);
    doc.push_str(&t.0);
    doc
}

/// Replaces the text between `begin` and `end` in `path` with `tables`; appends the pair
/// when the file does not have it yet.
fn write_between_markers(path: &Path, tables: &str, begin: &str, end: &str) -> Result<(), String> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let generated = format!("{begin}\n{tables}\n{end}");
    let text = match (existing.find(begin), existing.find(end)) {
        (Some(start), Some(stop)) if start < stop => format!(
            "{}{generated}{}",
            &existing[..start],
            &existing[stop + end.len()..]
        ),
        _ if existing.is_empty() => format!("# Performance\n\n{generated}\n"),
        _ => format!("{}\n{generated}\n", existing.trim_end()),
    };
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_crates_dedupes_and_skips_the_scratch_package() {
        let tree = "build-cost-x v0.0.0 (/tmp/x)\nserde v1.0.0\nserde v1.0.0 (*)\nitoa v1.0.1\n";
        assert_eq!(unique_crates(tree), 2);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(1.0, 2.0, true), "met");
        assert_eq!(verdict(3.0, 2.0, true), "**missed**");
        assert_eq!(verdict(3.0, 2.0, false), "met");
        assert_eq!(verdict(f64::NAN, 2.0, true), "not measured");
    }

    #[test]
    fn markers_keep_the_text_around_them() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.md");
        std::fs::write(&path, format!("intro\n{BEGIN}\nold\n{END}\noutro\n")).unwrap();
        write_between_markers(&path, "new", BEGIN, END).unwrap();
        write_between_markers(&path, "agents", AGENTS_BEGIN, AGENTS_END).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("intro\n"));
        assert!(text.contains("new\n<!-- bench:end -->\noutro\n"));
        assert!(text.contains("new") && !text.contains("old"));
        assert!(text.ends_with(&format!("{AGENTS_BEGIN}\nagents\n{AGENTS_END}\n")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vault_and_secrets_manager_targets_are_on_client_cpu_on_both_runtimes() {
        let read = |p50: f64, cpu: f64| serde_json::json!({"p50_us": p50, "cpu_us_per_read": cpu});
        let vault = serde_json::json!({
            "strongroom_vaultstore": read(334.0, 76.0),
            "strongroom_kv2": read(334.0, 76.0),
            "raw_hyper": read(321.0, 65.0),
            "vaultrs": read(366.0, 93.0),
        });
        let aws = serde_json::json!({
            "strongroom_aws": read(1026.0, 77.0),
            "raw_hyper": read(993.0, 67.0),
            "aws_sdk": read(1174.0, 164.0),
        });
        let results = serde_json::json!({"end_to_end": {
            "vault": {"rust": {"current_thread": vault, "multi_thread": vault}},
            "aws": {"rust": {"current_thread": aws, "multi_thread": aws}},
        }});
        let doc = render(&results, &None, true);
        let rows = |start: &str| doc.lines().filter(|l| l.starts_with(start)).count();
        let has = |row: &str| doc.lines().filter(|l| *l == row).count();
        // p50 against vaultrs is reported without a target; CPU has 0.8x on both runtimes.
        assert_eq!(
            has("| p50 per read vs vaultrs | 334 µs | 366 µs | 0.91x |  |  |"),
            2
        );
        assert_eq!(
            has("| client CPU per read vs vaultrs | 76 µs | 93 µs | 0.82x | ≤ 0.8x | **missed** |"),
            2,
            "{doc}"
        );
        assert_eq!(
            has("| client CPU per read vs aws_sdk | 77 µs | 164 µs | 0.47x | ≤ 0.5x | met |"),
            2,
            "{doc}"
        );
        assert!(!doc.contains("1.25x faster"));
        assert_eq!(rows("| p50 per read vs aws_sdk"), 2);
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
