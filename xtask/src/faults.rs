//! `cargo xtask services pause|resume|stop|start|disconnect|connect <server> [--for SECS]`:
//! faults the reliability suites inject into a running server, on either runtime.
//!
//! | fault | docker runtime | native runtime | what a client sees |
//! |---|---|---|---|
//! | `pause` / `resume` | `docker pause` / `unpause` | SIGSTOP / SIGCONT to the process group | connects (the port is still bound) but gets no answer: timeouts |
//! | `stop` / `start` | `docker stop` / `start` | TERM (then KILL) / started again on the same port | connection refused, then the server is back |
//! | `disconnect` / `connect` | `docker network disconnect` / `connect` | not available | connection refused or reset: the port is published, the server unreachable |
//!
//! After `start` the servers come back on the same port with the same root token but with
//! empty in-memory storage (all three are dev/in-memory servers); xtask seeds them again:
//! OpenBao with the same AppRole ids and Kubernetes key as before, so the environment stays
//! valid; moto with a new access key, which is written to the env file and printed.
//!
//! These commands do not take the services lock: `itest` holds it while the suites run, and
//! the suites are who call them.

use std::thread::sleep;
use std::time::Duration;

use crate::services::{self, Runtime, Service, State};
use crate::{docker, layout, localstack, moto, openbao, process};

/// One fault (or its undoing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Pause,
    Resume,
    Stop,
    Start,
    Disconnect,
    Connect,
}

impl Fault {
    /// The command-line word, e.g. `pause`.
    pub(crate) fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "stop" => Self::Stop,
            "start" => Self::Start,
            "disconnect" => Self::Disconnect,
            "connect" => Self::Connect,
            _ => return None,
        })
    }

    /// What ends the fault (`--for`): None for the actions that already end one.
    fn undo(self) -> Option<Self> {
        match self {
            Self::Pause => Some(Self::Resume),
            Self::Stop => Some(Self::Start),
            Self::Disconnect => Some(Self::Connect),
            Self::Resume | Self::Start | Self::Connect => None,
        }
    }
}

/// The command: applies `fault` to `service`; with `for_secs`, waits and undoes it.
pub(crate) fn run(fault: Fault, service: Service, for_secs: Option<f64>) -> Result<(), String> {
    let undo = match (for_secs, fault.undo()) {
        (Some(_), None) => {
            return Err(format!(
                "--for goes with pause, stop or disconnect, not {fault:?}"
            ));
        }
        (Some(secs), Some(undo)) => Some((secs, undo)),
        (None, _) => None,
    };
    apply(fault, service)?;
    eprintln!("services: {fault:?} {}", service.name());
    if let Some((secs, undo)) = undo {
        sleep(Duration::from_secs_f64(secs));
        apply(undo, service)?;
        eprintln!("services: {undo:?} {} after {secs}s", service.name());
    }
    Ok(())
}

/// Applies one fault to the recorded server, on whichever runtime it runs.
pub(crate) fn apply(fault: Fault, service: Service) -> Result<(), String> {
    let mut state =
        State::load().ok_or("no services are recorded as running (cargo xtask services up)")?;
    let index = state
        .servers
        .iter()
        .position(|s| s.service == service)
        .ok_or_else(|| format!("{} is not recorded as running", service.name()))?;
    match state.runtime {
        Runtime::Docker => apply_docker(fault, &state, index)?,
        Runtime::Native => apply_native(fault, &mut state, index)?,
    }
    if fault == Fault::Start {
        let server = &state.servers[index];
        if services::wait_healthy(state.runtime, server).is_err() {
            return Err(format!(
                "{} did not become healthy after start\n{}",
                service.name(),
                services::logs(state.runtime, server)
            ));
        }
        reseed(server)?;
    }
    Ok(())
}

fn apply_docker(fault: Fault, state: &State, index: usize) -> Result<(), String> {
    let container = state.servers[index].marker.as_str();
    let network = docker::network_of(container)
        .ok_or_else(|| format!("{container} is not a container xtask named"))?;
    let args: Vec<&str> = match fault {
        Fault::Pause => vec!["pause", container],
        Fault::Resume => vec!["unpause", container],
        Fault::Stop => vec!["stop", "--time", "10", container],
        Fault::Start => vec!["start", container],
        Fault::Disconnect => vec!["network", "disconnect", &network, container],
        Fault::Connect => vec!["network", "connect", &network, container],
    };
    docker::output(&args).map(drop)
}

fn apply_native(fault: Fault, state: &mut State, index: usize) -> Result<(), String> {
    let server = state.servers[index].clone();
    let name = server.service.name();
    let ours = process::is_ours(server.pid, &server.marker);
    match fault {
        Fault::Pause | Fault::Resume => {
            if !ours {
                return Err(format!("{name} (pid {}) is not running", server.pid));
            }
            let signal = if fault == Fault::Pause {
                "STOP"
            } else {
                "CONT"
            };
            process::signal_group(server.pid, signal)
        }
        Fault::Stop => {
            // A stopped (SIGSTOP) process ignores TERM until continued.
            process::signal_group(server.pid, "CONT")?;
            process::stop(server.pid, &server.marker).map(drop)
        }
        Fault::Start => {
            if ours {
                return Err(format!("{name} (pid {}) is already running", server.pid));
            }
            let env = services::read_env()?;
            let token = env
                .get("VAULT_TOKEN")
                .ok_or("the env file has no VAULT_TOKEN")?;
            let spec = services::native_launch(server.service, server.port, token)?;
            state.servers[index].pid = process::spawn(&spec)?;
            state.save()
        }
        Fault::Disconnect | Fault::Connect => Err(
            "a network partition needs the docker runtime (native servers share the host's \
             loopback); use pause (no answer) or stop (connection refused) instead"
                .to_owned(),
        ),
    }
}

/// Seeds a restarted (empty) server again and updates the env file.
fn reseed(server: &services::Running) -> Result<(), String> {
    let mut env = services::read_env()?;
    match server.service {
        Service::OpenBao => {
            let token = env
                .get("VAULT_TOKEN")
                .ok_or("the env file has no VAULT_TOKEN")?
                .clone();
            let again = openbao::seed_again(server.addr(), &token, &env)?;
            env.extend(again);
        }
        Service::Moto => {
            env.extend(moto::seed(server.addr())?);
            eprintln!(
                "services: moto was seeded again with a new access key (written to {})",
                layout::env_file().display()
            );
        }
        Service::LocalStack => localstack::warm(server.addr())?,
        // A restarted drongo is empty and needs no seeding; its address did not change.
        Service::Drongo => {}
    }
    services::write_env(&env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_parses_and_the_lasting_ones_undo() {
        for word in ["pause", "resume", "stop", "start", "disconnect", "connect"] {
            assert!(Fault::parse(word).is_some(), "{word}");
        }
        assert_eq!(Fault::parse("kill"), None);
        assert_eq!(Fault::Pause.undo(), Some(Fault::Resume));
        assert_eq!(Fault::Stop.undo(), Some(Fault::Start));
        assert_eq!(Fault::Disconnect.undo(), Some(Fault::Connect));
        assert_eq!(Fault::Resume.undo(), None);
        assert!(run(Fault::Resume, Service::Moto, Some(1.0)).is_err());
    }
}
