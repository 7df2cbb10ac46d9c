//! The docker runtime: docker/compose.yaml with pinned upstream images, ports published on
//! 127.0.0.1 only. Image names can be overridden with STRONGROOM_OPENBAO_IMAGE,
//! STRONGROOM_LOCALSTACK_IMAGE and STRONGROOM_MOTO_IMAGE (e.g. locally built ones).
//!
//! `--runtime auto` picks docker only when the engine answers AND every image is already
//! present locally: an engine with no registry cannot pull them.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use crate::layout;
use crate::services::Service;
use crate::versions;

/// Compose project name, so `down` only touches our containers.
const PROJECT: &str = "strongroom-itest";

/// The image a service runs, after the environment override.
fn image(service: Service) -> String {
    let (var, default) = match service {
        Service::OpenBao => ("STRONGROOM_OPENBAO_IMAGE", versions::OPENBAO_IMAGE),
        Service::LocalStack => ("STRONGROOM_LOCALSTACK_IMAGE", versions::LOCALSTACK_IMAGE),
        Service::Moto => ("STRONGROOM_MOTO_IMAGE", versions::MOTO_IMAGE),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Ok when the docker runtime can work here; otherwise why not.
pub(crate) fn usable() -> Result<(), String> {
    if !quiet("docker", &["info"]) {
        return Err("`docker info` fails: no usable Docker engine".to_owned());
    }
    let missing: Vec<String> = Service::ALL
        .into_iter()
        .map(image)
        .filter(|img| !quiet("docker", &["image", "inspect", img]))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Docker answers but these images are not present locally: {}",
            missing.join(", ")
        ))
    }
}

/// Whether the compose plugin (`docker compose`, v2) is there; otherwise the standalone
/// `docker-compose` (v1, as Debian ships it) is used, whose flags differ a little.
fn plugin() -> bool {
    quiet("docker", &["compose", "version"])
}

/// `docker compose` or `docker-compose`, with our file and project.
fn compose() -> Command {
    let file = layout::root().join("docker/compose.yaml");
    let mut command = if plugin() {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    command.arg("-p").arg(PROJECT).arg("-f").arg(file);
    for service in Service::ALL {
        let upper = service.name().to_uppercase();
        command.env(format!("STRONGROOM_{upper}_IMAGE"), image(service));
    }
    command
}

fn run(mut command: Command, what: &str) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run docker compose {what}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "docker compose {what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Starts the project with the given loopback ports and OpenBao root token.
pub(crate) fn up(ports: &BTreeMap<&str, u16>, root_token: &str) -> Result<(), String> {
    // Never pull: this checks what auto checks, and also guards an explicit --runtime docker.
    let missing: Vec<String> = Service::ALL
        .into_iter()
        .map(image)
        .filter(|img| !quiet("docker", &["image", "inspect", img]))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the docker runtime needs these images locally: {} (pull or build them, or use \
             --runtime native)",
            missing.join(", ")
        ));
    }
    let mut command = compose();
    for (name, port) in ports {
        command.env(
            format!("STRONGROOM_{}_PORT", name.to_uppercase()),
            port.to_string(),
        );
    }
    command.env("STRONGROOM_OPENBAO_ROOT_TOKEN", root_token);
    command.args(["up", "-d", "--no-build"]);
    if plugin() {
        command.args(["--pull", "never"]);
    }
    run(command, "up").map(drop)
}

/// Stops and removes the project's containers.
pub(crate) fn down() -> Result<(), String> {
    let mut command = compose();
    command.args(["down", "--volumes", "--timeout", "10"]);
    run(command, "down").map(drop)
}

/// Whether the service's container is running.
pub(crate) fn running(service: Service) -> bool {
    let mut command = compose();
    if plugin() {
        command.args(["ps", "--status", "running", "--services"]);
    } else {
        command.args(["ps", "--services", "--filter", "status=running"]);
    }
    run(command, "ps").is_ok_and(|out| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == service.name())
    })
}

/// The last lines of a service's container log.
pub(crate) fn log_tail(service: Service) -> String {
    let mut command = compose();
    command.args(["logs", "--tail", "30", service.name()]);
    match run(command, "logs") {
        Ok(out) => format!(
            "--- last lines of {} (docker) ---\n{}{}",
            service.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => e,
    }
}
