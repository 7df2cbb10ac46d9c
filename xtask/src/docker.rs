//! The docker runtime, driven through the `docker` CLI.
//!
//! Why the CLI and not compose: every container and network gets labels naming the run and
//! the run folder, so `down` (and the next `up`) removes exactly what xtask created, also
//! after an interrupted run; the fault commands (pause, stop, network disconnect) need the
//! exact container and network names, which compose v1 and v2 spell differently; and the
//! machines here only have the standalone docker-compose 1.29. `docker/compose.yaml` is kept
//! for people who want to start the same servers by hand (same images, same settings).
//!
//! Images, per server: `STRONGROOM_<SERVER>_IMAGE` when set (used as is; docker pulls it
//! if it is missing and the engine can); else the locally built image if present (see
//! [`crate::images`]); else the pinned upstream image if present (a user who pulled it);
//! else the local image is built. `STRONGROOM_DOCKER_IMAGES=upstream` asks for the upstream
//! images instead (docker pulls them), for engines that can reach a registry.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::images;
use crate::layout;
use crate::services::Service;

/// Label carrying the run id on every container and network xtask creates.
pub(crate) const RUN_LABEL: &str = "strongroom.xtask";
/// Label carrying the run folder, so one checkout's `down` never touches another's.
const DIR_LABEL: &str = "strongroom.xtask.dir";

/// Runs `docker args`; its stdout, or an error with its stderr.
pub(crate) fn output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let verb = args.first().copied().unwrap_or("");
        Err(format!(
            "docker {verb} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Ok when `docker info` answers.
pub(crate) fn engine() -> Result<(), String> {
    output(&["info", "--format", "{{.ServerVersion}}"])
        .map(drop)
        .map_err(|e| format!("no usable Docker engine: {e}"))
}

fn image_present(image: &str) -> bool {
    output(&["image", "inspect", "--format", "{{.Id}}", image]).is_ok()
}

/// Where a server's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Named by `STRONGROOM_<SERVER>_IMAGE` or `STRONGROOM_DOCKER_IMAGES=upstream`.
    Asked(String),
    /// The locally built image, present and current.
    Local,
    /// The pinned upstream image, already present.
    Upstream,
    /// Neither is present: the local image must be built.
    Build,
}

/// Where each server's image comes from, without building or pulling anything.
pub(crate) fn sources() -> BTreeMap<Service, Source> {
    let upstream = std::env::var("STRONGROOM_DOCKER_IMAGES").is_ok_and(|v| v == "upstream");
    Service::ALL
        .into_iter()
        .map(|service| {
            let var = format!("STRONGROOM_{}_IMAGE", service.name().to_uppercase());
            let source = match std::env::var(&var) {
                Ok(image) if !image.is_empty() => Source::Asked(image),
                _ if upstream => Source::Asked(images::upstream_name(service).to_owned()),
                _ if images::local_present(service) => Source::Local,
                _ if image_present(images::upstream_name(service)) => Source::Upstream,
                _ => Source::Build,
            };
            (service, source)
        })
        .collect()
}

/// What `--runtime auto` asks: Ok only when the engine answers AND every image is present
/// (an asked-for image counts when present). Auto never builds or pulls: a build takes
/// minutes and needs root, a pull needs a registry; `--runtime docker` does both.
pub(crate) fn usable() -> Result<(), String> {
    engine()?;
    let missing: Vec<String> = sources()
        .into_iter()
        .filter_map(|(service, source)| match source {
            Source::Local | Source::Upstream => None,
            Source::Asked(image) if image_present(&image) => None,
            Source::Asked(image) => Some(image),
            Source::Build => Some(images::local_name(service).to_owned()),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Docker answers but these images are not present: {} (`cargo xtask images` builds \
             them; auto never builds)",
            missing.join(", ")
        ))
    }
}

/// The image each server runs, building the local ones that are missing.
pub(crate) fn prepare() -> Result<BTreeMap<Service, String>, String> {
    engine()?;
    let sources = sources();
    let to_build: Vec<Service> = sources
        .iter()
        .filter(|(_, s)| **s == Source::Build)
        .map(|(service, _)| *service)
        .collect();
    if !to_build.is_empty() {
        images::ensure(&to_build)?;
    }
    Ok(sources
        .into_iter()
        .map(|(service, source)| {
            let image = match source {
                Source::Asked(image) => image,
                Source::Local | Source::Build => images::local_name(service).to_owned(),
                Source::Upstream => images::upstream_name(service).to_owned(),
            };
            (service, image)
        })
        .collect())
}

/// The labels every object of run `run` gets.
pub(crate) fn labels(run: &str) -> [String; 2] {
    [
        format!("{RUN_LABEL}={run}"),
        format!("{DIR_LABEL}={}", layout::xtask_dir().display()),
    ]
}

/// The network of run `run`: one bridge per run, so a partition cuts one server only.
pub(crate) fn network_name(run: &str) -> String {
    format!("strongroom-{run}")
}

/// The container of `service` in run `run`.
pub(crate) fn container_name(run: &str, service: Service) -> String {
    format!("strongroom-{run}-{}", service.name())
}

/// The run's network, from one of its container names.
pub(crate) fn network_of(container: &str) -> Option<String> {
    let run = container.strip_prefix("strongroom-")?.split('-').next()?;
    Some(network_name(run))
}

/// Creates the run's labelled bridge network.
pub(crate) fn create_network(run: &str) -> Result<String, String> {
    let name = network_name(run);
    let [run_label, dir_label] = labels(run);
    output(&[
        "network", "create", "--label", &run_label, "--label", &dir_label, &name,
    ])?;
    Ok(name)
}

/// One container to start.
pub(crate) struct Spec<'a> {
    pub(crate) run: &'a str,
    pub(crate) service: Service,
    pub(crate) image: &'a str,
    /// Host port, published on 127.0.0.1 only.
    pub(crate) port: u16,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) args: Vec<String>,
}

/// Starts a labelled container; returns its name.
pub(crate) fn start(spec: &Spec<'_>) -> Result<String, String> {
    let name = container_name(spec.run, spec.service);
    let network = network_name(spec.run);
    let [run_label, dir_label] = labels(spec.run);
    let publish = format!(
        "127.0.0.1:{}:{}",
        spec.port,
        images::container_port(spec.service)
    );
    let service_label = format!("strongroom.xtask.service={}", spec.service.name());
    let mut args: Vec<&str> = vec![
        "run",
        "--detach",
        "--name",
        &name,
        "--label",
        &run_label,
        "--label",
        &dir_label,
        "--label",
        &service_label,
        "--network",
        &network,
        "--publish",
        &publish,
    ];
    if spec.service == Service::OpenBao {
        // The upstream image mlocks memory when it can; harmless for the scratch image.
        args.extend(["--cap-add", "IPC_LOCK"]);
    }
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &env {
        args.extend(["--env", pair]);
    }
    args.push(spec.image);
    args.extend(spec.args.iter().map(String::as_str));
    output(&args)?;
    Ok(name)
}

/// A fresh random run id: eight hex digits, in every name and label of one `up`.
pub(crate) fn run_id() -> Result<String, String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 4];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness for the run id".to_owned())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes one container (a `docker run` that failed to start still leaves it created).
pub(crate) fn remove(container: &str) -> Result<(), String> {
    output(&["rm", "--force", container]).map(drop)
}

/// Removes every container and network labelled with this run folder (any run id): what a
/// finished, failed or interrupted run left. Returns how many containers were removed.
pub(crate) fn sweep() -> Result<usize, String> {
    let filter = format!("label={DIR_LABEL}={}", layout::xtask_dir().display());
    let containers = output(&["ps", "--all", "--quiet", "--filter", &filter])?;
    let ids: Vec<&str> = containers.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(&ids);
        output(&args)?;
    }
    let networks = output(&["network", "ls", "--quiet", "--filter", &filter])?;
    for id in networks.split_whitespace() {
        output(&["network", "rm", id])?;
    }
    Ok(ids.len())
}

/// The container's state as docker reports it: running, paused, exited, ... (None: gone).
pub(crate) fn state(container: &str) -> Option<String> {
    output(&["inspect", "--format", "{{.State.Status}}", container])
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Whether the container is up (running or paused: a paused server still exists).
pub(crate) fn running(container: &str) -> bool {
    matches!(state(container).as_deref(), Some("running" | "paused"))
}

/// The last lines of a container's log (stdout and stderr).
pub(crate) fn log_tail(container: &str) -> String {
    match Command::new("docker")
        .args(["logs", "--tail", "30", container])
        .output()
    {
        Ok(out) => format!(
            "--- last lines of container {container} ---\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("(cannot read the log of {container}: {e})"),
    }
}

/// Saves a container's whole log to `target/xtask/logs/<service>.log` (mode 0600: the
/// OpenBao dev server prints its root token), so it outlives the container.
pub(crate) fn save_log(container: &str, service: Service) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = layout::log_file(service.name());
    if let Some(dir) = path.parent()
        && layout::ensure_dir(dir).is_err()
    {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
    else {
        return;
    };
    let Ok(file2) = file.try_clone() else { return };
    let _ = Command::new("docker")
        .args(["logs", container])
        .stdout(file)
        .stderr(file2)
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_run_and_lead_back_to_the_network() {
        let container = container_name("ab12cd34", Service::LocalStack);
        assert_eq!(container, "strongroom-ab12cd34-localstack");
        assert_eq!(
            network_of(&container).as_deref(),
            Some("strongroom-ab12cd34")
        );
        assert_eq!(network_of("someone-elses"), None);
    }
}
