//! `cargo xtask`: the project's automation, run the same way by people and by CI.
//!
//! - `cargo xtask demo`: builds the CLI and stores and reads a secret in a scratch local
//!   store under `target/demo` (the README's first command).
//! - `cargo xtask bench [--runtime R] [-- --skip-build-cost]`: the criterion benchmarks and
//!   strongroom side by side with its peers, written to docs/performance.md.
//! - `cargo xtask fuzz [--seconds N] [--target NAME]`: runs each cargo-fuzz target in `fuzz/`
//!   for N seconds (docs/reliability.md).
//! - `cargo xtask crash [--kills N] [--only local|mirror]`: kill -9 the local store's
//!   writers, and a process writing the facade's mirror, N times each and check the stores
//!   after each kill (docs/reliability.md); `cargo xtask crash --explore
//!   [--bounded]`: every crash state of every recorded store operation, checked.
//! - `cargo xtask ci [--runtime R]`: format check, clippy with warnings denied, unit and doc
//!   tests, then the integration suites against real servers (`itest`): native, then docker
//!   (only the runtime asked for with `--runtime`).
//! - `cargo xtask services up|down|status|env [--runtime docker|native|auto]`: the real
//!   OpenBao, LocalStack, moto and drongo servers the suites use (see docs/testing.md).
//! - `cargo xtask services pause|resume|stop|start|disconnect|connect <server> [--for SECS]`:
//!   faults for the reliability suites, on either runtime.
//! - `cargo xtask services up --vault-nodes 3 [--runtime R]`: a three-node OpenBao Raft
//!   cluster instead (`cluster.rs`), and `cargo xtask services
//!   kill|restart|pause|resume|disconnect|connect openbao-N|leader`: faults on one node.
//! - `cargo xtask itest --cluster [--cluster-loops N]`: the cluster suite alone against a
//!   fresh cluster (leader killed N times in a row; default 2).
//! - `cargo xtask images`: builds the docker runtime's images locally, without a registry.
//! - `cargo xtask itest [--runtime R] [-- test args]`: services up, the suites, services down.
//!
//! Plain std Rust with few dependencies, in the manner of rust-analyzer's xtask: one small
//! module per command or server; pinned versions all live in `versions.rs`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod cargo;
mod ci;
mod cluster;
mod crash;
mod demo;
mod docker;
mod drongo;
mod faults;
mod features;
mod fuzz;
mod http;
mod images;
mod itest;
mod layout;
mod localstack;
mod lock;
mod moto;
mod openbao;
mod process;
mod provision;
mod publish;
mod services;
mod versions;

use std::process::ExitCode;
use std::time::Instant;

use services::RuntimeChoice;

const USAGE: &str = "\
usage:
  cargo xtask demo
  cargo xtask bench [--runtime docker|native|auto] [-- --skip-build-cost | --only-agents]
  cargo xtask crash [--kills N] [--only local|mirror]
  cargo xtask crash --explore [--bounded]
  cargo xtask fuzz [--seconds N] [--target NAME]
  cargo xtask ci [--runtime docker|native|auto]
  cargo xtask services up|down|status|env [--runtime docker|native|auto]   (default native)
  cargo xtask services pause|resume|stop|start|disconnect|connect openbao|localstack|moto|drongo [--for SECS]
  cargo xtask services up --vault-nodes 3 [--runtime docker|native|auto]   (an OpenBao Raft cluster)
  cargo xtask services kill|restart|pause|resume|disconnect|connect openbao-1|openbao-2|openbao-3|leader
  cargo xtask images
  cargo xtask itest [--runtime docker|native|auto] [-- <cargo test args>]
  cargo xtask itest --cluster [--cluster-loops N] [--runtime docker|native|auto] [-- <cargo test args>]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("xtask: {message}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command did not succeed.
enum Failure {
    /// The command line was wrong.
    Usage(String),
    /// The command ran and failed.
    Run(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Run(message)
    }
}

/// The options every command takes, and what follows `--`.
struct Options {
    runtime: RuntimeChoice,
    /// `--vault-nodes N` (services up): a cluster of N OpenBao nodes.
    vault_nodes: Option<usize>,
    /// `--cluster` (itest): the cluster suite against a fresh cluster.
    cluster: bool,
    /// `--cluster-loops N` (itest --cluster): leader kills in a row.
    cluster_loops: Option<u32>,
    rest: Vec<String>,
}

fn options(args: &[String]) -> Result<Options, Failure> {
    // Native by default: the same on every machine; docker and auto are asked for.
    let mut runtime = RuntimeChoice::Fixed(services::Runtime::Native);
    let mut iter = args.iter();
    let mut rest = Vec::new();
    let mut vault_nodes = None;
    let mut cluster = false;
    let mut cluster_loops = None;
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--vault-nodes" => {
                let value = iter
                    .next()
                    .ok_or_else(|| Failure::Usage("--vault-nodes needs a number".to_owned()))?;
                vault_nodes = Some(value.parse().map_err(|_| {
                    Failure::Usage(format!("--vault-nodes needs a number, got {value:?}"))
                })?);
            }
            "--cluster" => cluster = true,
            "--cluster-loops" => {
                let value = iter
                    .next()
                    .ok_or_else(|| Failure::Usage("--cluster-loops needs a number".to_owned()))?;
                cluster_loops = Some(value.parse().map_err(|_| {
                    Failure::Usage(format!("--cluster-loops needs a number, got {value:?}"))
                })?);
                cluster = true;
            }
            "--runtime" => {
                let value = iter
                    .next()
                    .ok_or_else(|| Failure::Usage("--runtime needs a value".to_owned()))?;
                runtime = RuntimeChoice::parse(value).map_err(Failure::Usage)?;
            }
            "--" => {
                rest.extend(iter.by_ref().cloned());
            }
            other => {
                if let Some(value) = other.strip_prefix("--runtime=") {
                    runtime = RuntimeChoice::parse(value).map_err(Failure::Usage)?;
                } else {
                    return Err(Failure::Usage(format!("unexpected argument {other:?}")));
                }
            }
        }
    }
    Ok(Options {
        runtime,
        vault_nodes,
        cluster,
        cluster_loops,
        rest,
    })
}

fn dispatch(args: &[String]) -> Result<(), Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::Usage("no command given".to_owned()));
    };
    match command.as_str() {
        "bench" => {
            let opts = options(rest)?;
            let args = bench::BenchArgs::parse(&opts.rest).map_err(Failure::Usage)?;
            Ok(bench::run(opts.runtime, &args)?)
        }
        "ci" => {
            let opts = options(rest)?;
            let suites = if rest.is_empty() {
                ci::Suites::Both
            } else {
                ci::Suites::Only(opts.runtime)
            };
            Ok(ci::run(suites)?)
        }
        "fuzz" => {
            let mut seconds = fuzz::DEFAULT_SECONDS;
            let mut target = None;
            let mut iter = rest.iter();
            while let Some(flag) = iter.next() {
                let value = iter
                    .next()
                    .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))?;
                match flag.as_str() {
                    "--seconds" => {
                        seconds = value.parse().map_err(|_| {
                            Failure::Usage(format!("--seconds needs a number, got {value:?}"))
                        })?;
                    }
                    "--target" => target = Some(value.as_str()),
                    other => return Err(Failure::Usage(format!("unexpected argument {other:?}"))),
                }
            }
            Ok(fuzz::run(seconds, target)?)
        }
        "crash" => {
            match rest {
                [flag] if flag == "--explore" => return Ok(crash::explore(crash::Explore::Full)?),
                [flag, bounded] if flag == "--explore" && bounded == "--bounded" => {
                    return Ok(crash::explore(crash::Explore::Bounded)?);
                }
                _ => {}
            }
            let (mut kills, mut suites) = (crash::DEFAULT_KILLS, crash::Suite::ALL.to_vec());
            let mut args = rest.iter();
            while let Some(flag) = args.next() {
                match (flag.as_str(), args.next()) {
                    ("--kills", Some(n)) => {
                        kills = n.parse().map_err(|_| {
                            Failure::Usage(format!("--kills needs a number, got {n:?}"))
                        })?;
                    }
                    ("--only", Some(name)) => {
                        suites = vec![crash::Suite::parse(name).ok_or_else(|| {
                            Failure::Usage(format!("--only takes local or mirror, got {name:?}"))
                        })?];
                    }
                    _ => return Err(Failure::Usage(format!("unexpected arguments {rest:?}"))),
                }
            }
            Ok(crash::run(kills, &suites)?)
        }
        "demo" => {
            if let Some(extra) = rest.first() {
                return Err(Failure::Usage(format!(
                    "demo takes no arguments, got {extra:?}"
                )));
            }
            Ok(demo::run()?)
        }
        "images" => {
            if let Some(extra) = rest.first() {
                return Err(Failure::Usage(format!(
                    "images takes no arguments, got {extra:?}"
                )));
            }
            Ok(images::run()?)
        }
        "itest" => {
            let opts = options(rest)?;
            if opts.cluster {
                let loops = opts.cluster_loops.unwrap_or(itest::CI_CLUSTER_LOOPS);
                return Ok(itest::run_cluster(opts.runtime, loops, &opts.rest)?);
            }
            Ok(itest::run(opts.runtime, &opts.rest)?)
        }
        "services" => {
            let Some((action, rest)) = rest.split_first() else {
                return Err(Failure::Usage(
                    "services needs up, down, status, env or a fault".to_owned(),
                ));
            };
            if let Some(fault) = cluster::NodeFault::parse(action)
                && let [name] = rest
                && cluster::is_node_name(name)
            {
                return Ok(cluster::fault(fault, name)?);
            }
            if let Some(fault) = faults::Fault::parse(action) {
                let (service, for_secs) = fault_args(rest)?;
                return Ok(faults::run(fault, service, for_secs)?);
            }
            let opts = options(rest)?;
            match action.as_str() {
                "up" if opts.vault_nodes.is_some() => {
                    let _lock = lock::acquire()?;
                    let runtime = services::resolve(opts.runtime);
                    let env = cluster::up(runtime, opts.vault_nodes.unwrap_or(3))?;
                    services::print_env(&env);
                    Ok(())
                }
                "up" => {
                    let _lock = lock::acquire()?;
                    let start = Instant::now();
                    let up = services::up(opts.runtime)?;
                    services::print_env(&up.env);
                    eprintln!(
                        "services: up in {:.1}s; environment written to {}",
                        start.elapsed().as_secs_f64(),
                        layout::env_file().display()
                    );
                    Ok(())
                }
                "down" => {
                    let _lock = lock::acquire()?;
                    let single = services::down();
                    cluster::down()?;
                    Ok(single?)
                }
                "status" => {
                    cluster::status();
                    if cluster::recorded() && services::State::load().is_none() {
                        return Ok(());
                    }
                    Ok(services::status()?)
                }
                "env" => {
                    services::print_env(&services::read_env()?);
                    Ok(())
                }
                other => Err(Failure::Usage(format!("unknown services action {other:?}"))),
            }
        }
        other => Err(Failure::Usage(format!("unknown command {other:?}"))),
    }
}

/// `<server> [--for SECS]` of a fault command.
fn fault_args(args: &[String]) -> Result<(services::Service, Option<f64>), Failure> {
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| Failure::Usage("which server? openbao, localstack or moto".to_owned()))?;
    let service = services::Service::from_name(name)
        .ok_or_else(|| Failure::Usage(format!("unknown server {name:?}")))?;
    match rest {
        [] => Ok((service, None)),
        [flag, secs] if flag == "--for" => secs
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (service, Some(s)))
            .ok_or_else(|| Failure::Usage(format!("--for needs seconds, got {secs:?}"))),
        other => Err(Failure::Usage(format!("unexpected arguments {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse_runtime_and_test_args() {
        let opts = options(&strings(&["--runtime", "native", "--", "--nocapture", "x"]))
            .ok()
            .unwrap();
        assert_eq!(
            opts.runtime,
            RuntimeChoice::Fixed(services::Runtime::Native)
        );
        assert_eq!(opts.rest, strings(&["--nocapture", "x"]));
        assert!(options(&strings(&["--runtime"])).is_err());
        assert!(options(&strings(&["--bogus"])).is_err());
        assert_eq!(
            options(&[]).ok().unwrap().runtime,
            RuntimeChoice::Fixed(services::Runtime::Native)
        );
    }

    #[test]
    fn fault_args_parse() {
        let (service, secs) = fault_args(&strings(&["openbao", "--for", "2.5"]))
            .ok()
            .unwrap();
        assert_eq!(service, services::Service::OpenBao);
        assert_eq!(secs, Some(2.5));
        assert!(fault_args(&strings(&["vault"])).is_err());
        assert!(fault_args(&strings(&["moto", "--for", "-1"])).is_err());
        assert!(fault_args(&strings(&[])).is_err());
    }
}
