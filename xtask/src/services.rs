//! `cargo xtask services up|down|status|env`: the real servers the integration suites use.
//!
//! `up` provisions what is missing, starts OpenBao, LocalStack, moto and drongo on free loopback
//! ports, waits (bounded) until each is healthy, seeds them, then writes
//! target/xtask/services.env and prints it. `down` stops exactly what `up` recorded.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::process::{self, Launch};
use crate::provision::{self, Venv};
use crate::{docker, drongo, layout, localstack, moto, openbao, versions};

/// Where the servers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// Processes on this machine, from venvs under target/xtask/.
    Native,
    /// Containers started through the docker CLI (see [`crate::docker`]).
    Docker,
}

/// What `--runtime` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuntimeChoice {
    Auto,
    Fixed(Runtime),
}

impl RuntimeChoice {
    /// Parses the value of `--runtime`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "native" => Ok(Self::Fixed(Runtime::Native)),
            "docker" => Ok(Self::Fixed(Runtime::Docker)),
            other => Err(format!(
                "unknown runtime {other:?}: use docker, native or auto"
            )),
        }
    }
}

/// The servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Service {
    OpenBao,
    LocalStack,
    Moto,
    /// Google Cloud Secret Manager's REST API (drongo).
    Drongo,
}

impl Service {
    /// Every server, in start order (the slowest first, so the others start meanwhile).
    pub(crate) const ALL: [Self; 4] = [Self::LocalStack, Self::OpenBao, Self::Moto, Self::Drongo];

    /// Name in messages, logs, state and compose.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::OpenBao => "openbao",
            Self::LocalStack => "localstack",
            Self::Moto => "moto",
            Self::Drongo => "drongo",
        }
    }

    /// The server called `name` (as in [`Self::name`]).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The venv the native runtime runs it from (OpenBao's only holds the `bao` binary).
    pub(crate) fn venv(self) -> Venv {
        match self {
            Self::OpenBao => Venv {
                name: "openbao",
                pins: versions::OPENBAO_PIP,
                needs_python: None,
            },
            Self::LocalStack => Venv {
                name: "localstack",
                pins: versions::LOCALSTACK_PIP,
                needs_python: Some(versions::PYTHON_VERSION),
            },
            Self::Moto => Venv {
                name: "moto",
                pins: versions::MOTO_PIP,
                needs_python: None,
            },
            Self::Drongo => Venv {
                name: "drongo",
                pins: versions::DRONGO_PIP,
                needs_python: None,
            },
        }
    }

    /// Whether the server at `addr` answers its health check.
    pub(crate) fn healthy(self, addr: SocketAddr) -> bool {
        match self {
            Self::OpenBao => openbao::healthy(addr),
            Self::LocalStack => localstack::healthy(addr),
            Self::Moto => moto::healthy(addr),
            Self::Drongo => drongo::healthy(addr),
        }
    }

    /// Bounded health wait: LocalStack imports a lot of Python on a cold start.
    fn health_timeout(self) -> Duration {
        match self {
            Self::OpenBao => Duration::from_secs(60),
            Self::LocalStack => Duration::from_secs(180),
            Self::Moto => Duration::from_secs(90),
            Self::Drongo => Duration::from_secs(60),
        }
    }
}

/// One started server as recorded in the state file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Running {
    pub(crate) service: Service,
    /// Process (group) id; 0 on the docker runtime, where the engine owns the processes.
    pub(crate) pid: u32,
    pub(crate) port: u16,
    /// Native: text `/proc/<pid>/cmdline` must contain for the PID to be trusted.
    /// Docker: the container's name.
    pub(crate) marker: String,
}

impl Running {
    /// The loopback address the server is reached at.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// Everything `up` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) runtime: Runtime,
    pub(crate) servers: Vec<Running>,
}

impl State {
    fn render(&self) -> String {
        let runtime = match self.runtime {
            Runtime::Native => "native",
            Runtime::Docker => "docker",
        };
        let mut text = format!("runtime {runtime}\n");
        for s in &self.servers {
            text.push_str(&format!(
                "server {} {} {} {}\n",
                s.service.name(),
                s.pid,
                s.port,
                s.marker
            ));
        }
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let runtime = match lines.next()?.strip_prefix("runtime ")? {
            "native" => Runtime::Native,
            "docker" => Runtime::Docker,
            _ => return None,
        };
        let mut servers = Vec::new();
        for line in lines {
            let mut parts = line.strip_prefix("server ")?.splitn(4, ' ');
            servers.push(Running {
                service: Service::from_name(parts.next()?)?,
                pid: parts.next()?.parse().ok()?,
                port: parts.next()?.parse().ok()?,
                marker: parts.next()?.to_owned(),
            });
        }
        Some(Self { runtime, servers })
    }

    /// What the state file records, if anything.
    pub(crate) fn load() -> Option<Self> {
        Self::parse(&std::fs::read_to_string(layout::state_file()).ok()?)
    }

    /// Records the state (at once after each start, so `down` can stop it).
    pub(crate) fn save(&self) -> Result<(), String> {
        layout::ensure_dir(&layout::xtask_dir())?;
        let path = layout::state_file();
        std::fs::write(&path, self.render())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Whether a recorded server's process (or container, paused or not) is still there.
pub(crate) fn alive(runtime: Runtime, server: &Running) -> bool {
    match runtime {
        Runtime::Native => process::is_ours(server.pid, &server.marker),
        Runtime::Docker => docker::running(&server.marker),
    }
}

/// A free loopback port: bind port 0 and let the kernel choose. Ports in `avoid` (ones a
/// server already failed to bind) are skipped.
pub(crate) fn free_port(avoid: &[u16]) -> Result<u16, String> {
    for _ in 0..20 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err("no free loopback port found".to_owned())
}

/// Why a wait for health ended without it.
pub(crate) enum Unhealthy {
    /// The process is gone; `bind` says whether its log blames the port.
    Died {
        bind: bool,
    },
    TimedOut,
}

/// Polls until `service` answers healthy, the process dies, or the timeout passes.
pub(crate) fn wait_healthy(runtime: Runtime, server: &Running) -> Result<(), Unhealthy> {
    let deadline = Instant::now() + server.service.health_timeout();
    loop {
        if server.service.healthy(server.addr()) {
            return Ok(());
        }
        if !alive(runtime, server) {
            let log = std::fs::read_to_string(layout::log_file(server.service.name()))
                .unwrap_or_default()
                .to_lowercase();
            let bind = log.contains("address already in use") || log.contains("address in use");
            return Err(Unhealthy::Died { bind });
        }
        if Instant::now() > deadline {
            return Err(Unhealthy::TimedOut);
        }
        sleep(Duration::from_millis(250));
    }
}

/// The tail of a server's log, wherever the runtime keeps it.
pub(crate) fn logs(runtime: Runtime, server: &Running) -> String {
    match runtime {
        Runtime::Native => process::log_tail(&layout::log_file(server.service.name()), 30),
        Runtime::Docker => docker::log_tail(&server.marker),
    }
}

/// What `up` found or made.
pub(crate) struct Up {
    /// The environment the suites read.
    pub(crate) env: BTreeMap<String, String>,
    /// False when the servers were already running and were left as they were.
    pub(crate) started: bool,
}

/// `services up`: reuse healthy running servers, or start and seed new ones.
pub(crate) fn up(choice: RuntimeChoice) -> Result<Up, String> {
    if let Some(state) = State::load() {
        let healthy = !state.servers.is_empty()
            && state
                .servers
                .iter()
                .all(|s| alive(state.runtime, s) && s.service.healthy(s.addr()));
        let wanted = match choice {
            RuntimeChoice::Auto => true,
            RuntimeChoice::Fixed(runtime) => runtime == state.runtime,
        };
        if healthy && let Ok(env) = read_env() {
            if !wanted {
                // Someone's healthy servers: stopping them would break their run.
                return Err(format!(
                    "healthy {} servers from an earlier `services up` are running ({}); stop \
                     them with `cargo xtask services down`, or set STRONGROOM_XTASK_DIR to \
                     run another set beside them",
                    runtime_name(state.runtime),
                    layout::state_file().display()
                ));
            }
            eprintln!(
                "services: already running ({}, {}), reusing them",
                runtime_name(state.runtime),
                layout::state_file().display()
            );
            return Ok(Up {
                env,
                started: false,
            });
        }
        eprintln!("services: stopping the leftovers of an earlier run");
        down()?;
    }
    let runtime = resolve(choice);
    let _ = std::fs::remove_file(layout::env_file());
    let result = match runtime {
        Runtime::Native => up_native(),
        Runtime::Docker => up_docker(),
    };
    match result {
        Ok(env) => {
            write_env(&env)?;
            Ok(Up { env, started: true })
        }
        Err(e) => {
            // Stop whatever this attempt already started; report the first error.
            if let Err(down_error) = down() {
                eprintln!("services: cleanup after the failure: {down_error}");
            }
            Err(e)
        }
    }
}

/// The runtime `choice` means here: auto is docker only when the engine answers and the
/// images are present.
pub(crate) fn resolve(choice: RuntimeChoice) -> Runtime {
    match choice {
        RuntimeChoice::Fixed(runtime) => runtime,
        RuntimeChoice::Auto => match docker::usable() {
            Ok(()) => {
                eprintln!("services: runtime auto -> docker (engine answers, images present)");
                Runtime::Docker
            }
            Err(why) => {
                eprintln!("services: runtime auto -> native ({why})");
                Runtime::Native
            }
        },
    }
}

/// `native` or `docker`, as the state file and messages spell it.
pub(crate) fn runtime_name(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Native => "native",
        Runtime::Docker => "docker",
    }
}

/// How the native runtime starts `service` on `port` (venvs already provisioned).
pub(crate) fn native_launch(service: Service, port: u16, token: &str) -> Result<Launch, String> {
    let dir = layout::venv_dir(service.name());
    Ok(match service {
        Service::OpenBao => {
            let home = layout::xtask_dir().join("openbao-home");
            layout::ensure_dir(&home)?;
            openbao::launch(&openbao::binary(&dir)?, port, token, &home)
        }
        Service::LocalStack => {
            let volume = layout::xtask_dir().join("localstack-volume");
            layout::ensure_dir(&volume)?;
            localstack::launch(&dir, port, &volume)
        }
        Service::Moto => moto::launch(&dir, port),
        Service::Drongo => drongo::launch(&dir, port),
    })
}

/// Provisions the venvs (in parallel: mostly waiting on PyPI), then starts the servers.
fn up_native() -> Result<BTreeMap<String, String>, String> {
    let started = Instant::now();
    let venvs: Vec<Result<(PathBuf, bool), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = Service::ALL
            .into_iter()
            .map(|s| scope.spawn(move || provision::ensure(&s.venv())))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("provisioning thread panicked".to_owned()))
            })
            .collect()
    });
    let mut errors = Vec::new();
    for (service, venv) in Service::ALL.into_iter().zip(venvs) {
        match venv {
            Ok((dir, reused)) => {
                eprintln!(
                    "services: {} venv {} ({})",
                    service.name(),
                    if reused { "reused" } else { "installed" },
                    dir.display()
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    eprintln!(
        "services: provisioned in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let token = openbao::random_token()?;
    let launch = |service: Service, port: u16| native_launch(service, port, &token);

    let mut state = State {
        runtime: Runtime::Native,
        servers: Vec::new(),
    };
    let mut taken = Vec::new();
    for service in Service::ALL {
        let port = free_port(&taken)?;
        taken.push(port);
        let spec = launch(service, port)?;
        let pid = process::spawn(&spec)?;
        state.servers.push(Running {
            service,
            pid,
            port,
            marker: spec.program.display().to_string(),
        });
        // Recorded at once, so `down` can stop it even if a later step fails.
        state.save()?;
    }
    for index in 0..state.servers.len() {
        let mut attempts = 0;
        loop {
            let server = state.servers[index].clone();
            let name = server.service.name();
            match wait_healthy(Runtime::Native, &server) {
                Ok(()) => {
                    eprintln!(
                        "services: {name} healthy on 127.0.0.1:{} (pid {})",
                        server.port, server.pid
                    );
                    break;
                }
                Err(Unhealthy::Died { bind: true }) if attempts < 3 => {
                    // Another program took the port between our probe and the bind.
                    attempts += 1;
                    taken.push(server.port);
                    let port = free_port(&taken)?;
                    eprintln!(
                        "services: {name} could not bind {}, retrying on {port}",
                        server.port
                    );
                    let spec = launch(server.service, port)?;
                    let pid = process::spawn(&spec)?;
                    state.servers[index].pid = pid;
                    state.servers[index].port = port;
                    state.save()?;
                }
                Err(Unhealthy::Died { .. }) => {
                    return Err(format!(
                        "{name} exited before it became healthy\n{}",
                        logs(Runtime::Native, &server)
                    ));
                }
                Err(Unhealthy::TimedOut) => {
                    return Err(format!(
                        "{name} did not become healthy within {}s\n{}",
                        server.service.health_timeout().as_secs(),
                        logs(Runtime::Native, &server)
                    ));
                }
            }
        }
    }
    seed(&state, &token)
}

/// Starts the servers as labelled containers on free loopback ports and waits for them.
fn up_docker() -> Result<BTreeMap<String, String>, String> {
    let started = Instant::now();
    let images = docker::prepare()?;
    eprintln!(
        "services: docker images ready in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        images
            .iter()
            .map(|(service, image)| format!("{}: {image}", service.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let removed = docker::sweep()?;
    if removed > 0 {
        eprintln!("services: removed {removed} leftover container(s) of an earlier run");
    }
    let run = docker::run_id()?;
    let token = openbao::random_token()?;
    let mut state = State {
        runtime: Runtime::Docker,
        servers: Vec::new(),
    };
    // Recorded before anything exists, so `down` knows to sweep the docker labels.
    state.save()?;
    docker::create_network(&run)?;
    let mut taken = Vec::new();
    for service in Service::ALL {
        let mut attempts = 0;
        loop {
            let port = free_port(&taken)?;
            taken.push(port);
            let spec = docker::Spec {
                run: &run,
                service,
                image: &images[&service],
                port,
                env: container_env(service, port),
                args: container_args(service, &token),
            };
            match docker::start(&spec) {
                Ok(name) => {
                    state.servers.push(Running {
                        service,
                        pid: 0,
                        port,
                        marker: name,
                    });
                    state.save()?;
                    break;
                }
                // Another program took the port between our probe and docker's bind.
                Err(e) if attempts < 3 && e.contains("already") => {
                    attempts += 1;
                    docker::remove(&docker::container_name(&run, service))?;
                    eprintln!(
                        "services: {} could not publish {port}, retrying",
                        service.name()
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
    for server in &state.servers {
        let name = server.service.name();
        match wait_healthy(Runtime::Docker, server) {
            Ok(()) => eprintln!(
                "services: {name} healthy on 127.0.0.1:{} (container {})",
                server.port, server.marker
            ),
            Err(_) => {
                return Err(format!(
                    "{name} did not become healthy\n{}",
                    logs(Runtime::Docker, server)
                ));
            }
        }
    }
    seed(&state, &token)
}

/// The environment of a server's container: what the native runtime sets, with the
/// container's own listen address.
fn container_env(service: Service, host_port: u16) -> BTreeMap<String, String> {
    let port = crate::images::container_port(service);
    match service {
        Service::OpenBao => BTreeMap::new(),
        Service::LocalStack => localstack::server_env(
            &format!("0.0.0.0:{port}"),
            &format!("127.0.0.1:{host_port}"),
            "/var/lib/localstack",
        ),
        Service::Moto => {
            let mut env = moto::server_env();
            // The upstream image reads its port from here; ours passes `-p` too.
            env.insert("MOTO_PORT".to_owned(), port.to_string());
            env
        }
        Service::Drongo => BTreeMap::new(),
    }
}

/// The command arguments of a server's container (after the image's entrypoint).
fn container_args(service: Service, token: &str) -> Vec<String> {
    match service {
        Service::OpenBao => vec![
            "server".into(),
            "-dev".into(),
            format!("-dev-root-token-id={token}"),
            format!(
                "-dev-listen-address=0.0.0.0:{}",
                crate::images::container_port(service)
            ),
            "-dev-no-store-token".into(),
        ],
        Service::LocalStack | Service::Moto | Service::Drongo => Vec::new(),
    }
}

/// Seeds every server and gathers the suites' environment.
fn seed(state: &State, token: &str) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for server in &state.servers {
        let more = match server.service {
            Service::OpenBao => openbao::seed(server.addr(), token, &layout::xtask_dir())?,
            Service::LocalStack => {
                localstack::warm(server.addr())?;
                localstack::env(server.addr())
            }
            Service::Moto => moto::seed(server.addr())?,
            Service::Drongo => drongo::seed(server.addr(), &interop_python()?)?,
        };
        env.extend(more);
    }
    env.insert(
        "STRONGROOM_ITEST_ENV".to_owned(),
        layout::env_file().display().to_string(),
    );
    Ok(env)
}

/// The Python with the official Google client, for the interop suite: the native drongo
/// venv's, provisioned here on the docker runtime too (reused when present).
fn interop_python() -> Result<PathBuf, String> {
    let (dir, _) = provision::ensure(&Service::Drongo.venv())?;
    Ok(dir.join("bin/python"))
}

/// Writes the env file the suites fall back to: `KEY=VALUE` lines.
pub(crate) fn write_env(env: &BTreeMap<String, String>) -> Result<(), String> {
    let mut text = String::from(
        "# Written by `cargo xtask services up`; read by the strongroom-itests suites.\n",
    );
    for (key, value) in env {
        text.push_str(&format!("{key}={value}\n"));
    }
    let path = layout::env_file();
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads the env file back.
pub(crate) fn read_env() -> Result<BTreeMap<String, String>, String> {
    let path = layout::env_file();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run `cargo xtask services up`)", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// Prints the environment as `KEY=VALUE` lines (what `services up` and `services env` show).
pub(crate) fn print_env(env: &BTreeMap<String, String>) {
    for (key, value) in env {
        println!("{key}={value}");
    }
}

/// `services down`: stops exactly what the state file recorded.
pub(crate) fn down() -> Result<(), String> {
    let Some(state) = State::load() else {
        eprintln!("services: nothing recorded, nothing to stop");
        return Ok(());
    };
    match state.runtime {
        Runtime::Native => {
            for server in &state.servers {
                let name = server.service.name();
                if process::stop(server.pid, &server.marker)? {
                    eprintln!("services: stopped {name} (pid {})", server.pid);
                } else {
                    eprintln!("services: {name} (pid {}) was not running", server.pid);
                }
            }
        }
        Runtime::Docker => {
            for server in &state.servers {
                docker::save_log(&server.marker, server.service);
            }
            let removed = docker::sweep()?;
            eprintln!("services: removed {removed} container(s) and their network");
        }
    }
    let _ = std::fs::remove_file(layout::env_file());
    std::fs::remove_file(layout::state_file())
        .map_err(|e| format!("cannot remove {}: {e}", layout::state_file().display()))
}

/// Servers that were recorded but are gone or unhealthy, with their log tails.
pub(crate) fn problems() -> Vec<String> {
    let Some(state) = State::load() else {
        return vec!["no services are recorded as running".to_owned()];
    };
    state
        .servers
        .iter()
        .filter_map(|s| {
            let name = s.service.name();
            if !alive(state.runtime, s) {
                Some(format!(
                    "{name} (pid {}) has exited\n{}",
                    s.pid,
                    logs(state.runtime, s)
                ))
            } else if !s.service.healthy(s.addr()) {
                Some(format!(
                    "{name} is running but not healthy\n{}",
                    logs(state.runtime, s)
                ))
            } else {
                None
            }
        })
        .collect()
}

/// `services status`: one line per server; an error when any is down.
pub(crate) fn status() -> Result<(), String> {
    let Some(state) = State::load() else {
        println!("services: not running");
        return Ok(());
    };
    for s in &state.servers {
        let health = if !alive(state.runtime, s) {
            "exited"
        } else if s.service.healthy(s.addr()) {
            "healthy"
        } else {
            "unhealthy"
        };
        println!(
            "{:<11} {:?} pid {:<7} http://{}  {health}",
            s.service.name(),
            state.runtime,
            s.pid,
            s.addr()
        );
    }
    let problems = problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let state = State {
            runtime: Runtime::Native,
            servers: vec![Running {
                service: Service::Moto,
                pid: 42,
                port: 4242,
                marker: "/a b/venvs/moto/bin/python".to_owned(),
            }],
        };
        assert_eq!(State::parse(&state.render()), Some(state));
        assert_eq!(State::parse("runtime elsewhere\n"), None);
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy = held.local_addr().unwrap().port();
        for _ in 0..50 {
            let port = free_port(&[]).unwrap();
            assert_ne!(port, busy);
        }
        let avoid = free_port(&[]).unwrap();
        assert_ne!(free_port(&[avoid]).unwrap(), avoid);
    }

    #[test]
    fn runtime_choice_parses() {
        assert_eq!(RuntimeChoice::parse("auto"), Ok(RuntimeChoice::Auto));
        assert_eq!(
            RuntimeChoice::parse("docker"),
            Ok(RuntimeChoice::Fixed(Runtime::Docker))
        );
        assert!(RuntimeChoice::parse("podman").is_err());
    }
}
