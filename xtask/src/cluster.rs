//! `cargo xtask services up --vault-nodes N` (and `itest --cluster`): an OpenBao cluster on
//! integrated storage (Raft), for the suite that kills, pauses and partitions its leader.
//!
//! Started only when asked, beside (not instead of) the single dev server the other suites
//! use, with its own state file (`cluster.state`), environment (`cluster.env`) and logs
//! (`logs/openbao-N.log`) in the run folder.
//!
//! - **native**: N `bao server -config` processes on free loopback ports, each with its own
//!   `storage "raft"` folder and `node_id`, `retry_join` blocks naming every node's API
//!   address, its own `address`/`cluster_address`, `api_addr`/`cluster_addr`,
//!   `disable_mlock = true`, and `disable_standby_reads = true`: OpenBao 2.x standbys
//!   otherwise answer reads from their own, possibly lagging, copy (eventual consistency),
//!   and a read right after an acknowledged write can miss it (seen: `NotFound` for a key
//!   written a moment before, through a node that had just rejoined).
//! - **docker**: N containers of the OpenBao image on one network of their own, each with
//!   its config and Raft folder bind-mounted, the API published on a loopback port; nodes
//!   reach each other by container name.
//!
//! Then: `sys/init` on node 1 (one unseal key, kept 0600 in the run folder for restarts),
//! unseal every node, wait until every node is a Raft voter (autopilot promotes a joined
//! node after its stabilisation time: before that, losing the leader loses the quorum),
//! mount KV v2 at `secret/` and seed the same fixtures as the single server
//! ([`crate::openbao::seed`]). `VAULT_ADDR` lists every node, comma-separated.
//!
//! Faults, per node (`openbao-1` .. `openbao-N`, or `leader` for whichever node is active
//! now; the node acted on is printed on stdout):
//! `services kill|restart|pause|resume|disconnect|connect <node>`. `kill` is SIGKILL (or
//! `docker kill`); `restart` starts it again on the same ports and folder, unseals it and
//! waits until it serves; `disconnect`/`connect` cut it from the cluster's network (docker
//! only: native nodes share the host's loopback).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{self, Launch};
use crate::services::{Runtime, Service, free_port, runtime_name};
use crate::{docker, http, images, layout, openbao, provision};

/// How long a probe of one node may take (a paused node never answers).
const PROBE: Duration = Duration::from_secs(2);

/// One node as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    /// 1-based, as in `openbao-1`.
    index: usize,
    /// Process group id (native); 0 on docker.
    pid: u32,
    /// Loopback port of the API.
    port: u16,
    /// Loopback port of the cluster listener (native); 0 on docker.
    cluster_port: u16,
    /// Native: the program path `/proc/<pid>/cmdline` must show. Docker: the container.
    marker: String,
}

impl Node {
    fn name(&self) -> String {
        format!("openbao-{}", self.index)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
}

/// What `up` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    runtime: Runtime,
    /// Docker run id (names and labels); `-` on native.
    run: String,
    nodes: Vec<Node>,
}

impl State {
    fn render(&self) -> String {
        let mut text = format!("runtime {}\nrun {}\n", runtime_name(self.runtime), self.run);
        for n in &self.nodes {
            text.push_str(&format!(
                "node {} {} {} {} {}\n",
                n.index, n.pid, n.port, n.cluster_port, n.marker
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
        let run = lines.next()?.strip_prefix("run ")?.to_owned();
        let mut nodes = Vec::new();
        for line in lines {
            let mut parts = line.strip_prefix("node ")?.splitn(5, ' ');
            nodes.push(Node {
                index: parts.next()?.parse().ok()?,
                pid: parts.next()?.parse().ok()?,
                port: parts.next()?.parse().ok()?,
                cluster_port: parts.next()?.parse().ok()?,
                marker: parts.next()?.to_owned(),
            });
        }
        Some(Self {
            runtime,
            run,
            nodes,
        })
    }

    fn load() -> Option<Self> {
        Self::parse(&std::fs::read_to_string(state_file()).ok()?)
    }

    fn save(&self) -> Result<(), String> {
        layout::ensure_dir(&layout::xtask_dir())?;
        std::fs::write(state_file(), self.render())
            .map_err(|e| format!("cannot write {}: {e}", state_file().display()))
    }

    fn node(&self, name: &str) -> Result<usize, String> {
        if name == "leader" {
            return self.leader();
        }
        self.nodes
            .iter()
            .position(|n| n.name() == name)
            .ok_or_else(|| format!("no cluster node {name:?} (openbao-1.. or leader)"))
    }
}

impl State {
    /// The active node as most nodes see it: each reachable node's `sys/leader` names one
    /// (`leader_address`), and the node most of them name wins. Not "whoever says 200":
    /// after a pause, OpenBao 2.7.2's old leader keeps answering `sys/health` 200 for a
    /// while after Raft stepped it down (docs/reliability.md).
    fn leader(&self) -> Result<usize, String> {
        let mut votes = vec![0usize; self.nodes.len()];
        for node in &self.nodes {
            let Ok(response) =
                http::request_within(node.addr(), "GET", "/v1/sys/leader", &[], "", PROBE)
            else {
                continue;
            };
            let Ok(value) = response.json("sys/leader") else {
                continue;
            };
            let Some(address) = value["leader_address"].as_str() else {
                continue;
            };
            if let Some(named) = self.nodes.iter().position(|n| {
                address.ends_with(&format!(":{}", n.port))
                    || (!n.marker.starts_with('/') && address.contains(&format!("{}:", n.marker)))
            }) {
                votes[named] += 1;
            }
        }
        let (best, count) = votes
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .map_or((0, 0), |(i, v)| (i, *v));
        if count * 2 > self.nodes.len() {
            Ok(best)
        } else {
            Err(format!(
                "no node is the leader for a majority of the cluster now (votes {votes:?})"
            ))
        }
    }
}

fn state_file() -> PathBuf {
    layout::xtask_dir().join("cluster.state")
}

/// The environment the cluster suite reads.
pub(crate) fn env_file() -> PathBuf {
    layout::xtask_dir().join("cluster.env")
}

fn key_file() -> PathBuf {
    layout::xtask_dir().join("cluster-unseal.key")
}

fn data_dir() -> PathBuf {
    layout::xtask_dir().join("cluster")
}

/// `sys/health` status of a node, if it answers within [`PROBE`].
fn health(addr: SocketAddr) -> Option<u16> {
    http::request_within(addr, "GET", "/v1/sys/health", &[], "", PROBE)
        .ok()
        .map(|r| r.status)
}

/// Whether the node is up (process or container present, paused or not).
fn alive(runtime: Runtime, node: &Node) -> bool {
    match runtime {
        Runtime::Native => process::is_ours(node.pid, &node.marker),
        Runtime::Docker => docker::running(&node.marker),
    }
}

/// The node's config: Raft storage, listener, addresses peers use.
fn config(
    raft_path: &str,
    node_id: &str,
    listen: (&str, &str),
    advertise: (&str, &str),
    peers: &[String],
) -> String {
    let mut joins = String::new();
    for peer in peers {
        joins.push_str(&format!(
            "  retry_join {{\n    leader_api_addr = \"{peer}\"\n  }}\n"
        ));
    }
    format!(
        "storage \"raft\" {{\n  path = \"{raft_path}\"\n  node_id = \"{node_id}\"\n{joins}}}\n\
         listener \"tcp\" {{\n  address = \"{}\"\n  cluster_address = \"{}\"\n  tls_disable = true\n}}\n\
         api_addr = \"{}\"\ncluster_addr = \"{}\"\ndisable_mlock = true\nui = false\n\
         disable_standby_reads = true\n",
        listen.0, listen.1, advertise.0, advertise.1
    )
}

fn native_launch(bao: &Path, dir: &Path, index: usize) -> Launch {
    let mut env = BTreeMap::new();
    env.insert("HOME".to_owned(), dir.display().to_string());
    Launch {
        program: bao.to_path_buf(),
        args: vec![
            "server".into(),
            format!("-config={}", dir.join("config.hcl").display()),
        ],
        env,
        log: layout::log_file(&format!("openbao-{index}")),
    }
}

fn container_name(run: &str, index: usize) -> String {
    format!("strongroom-{run}-openbao-{index}")
}

/// `docker run` of node `index` (its folder mounted at /bao).
fn start_container(
    run: &str,
    image: &str,
    index: usize,
    port: u16,
    dir: &Path,
) -> Result<String, String> {
    let name = container_name(run, index);
    let [run_label, dir_label] = docker::labels(run);
    let publish = format!(
        "127.0.0.1:{port}:{}",
        images::container_port(Service::OpenBao)
    );
    let volume = format!("{}:/bao", dir.display());
    docker::output(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--label",
        &run_label,
        "--label",
        &dir_label,
        "--label",
        "strongroom.xtask.service=openbao-cluster",
        "--network",
        &docker::network_name(run),
        "--publish",
        &publish,
        "--volume",
        &volume,
        image,
        "server",
        "-config=/bao/config.hcl",
    ])?;
    Ok(name)
}

/// `services up --vault-nodes N`: starts, initialises, unseals and seeds the cluster;
/// returns its environment (also written to [`env_file`]).
pub(crate) fn up(runtime: Runtime, count: usize) -> Result<BTreeMap<String, String>, String> {
    if !(3..=7).contains(&count) {
        return Err(format!("--vault-nodes takes 3 to 7 nodes, not {count}"));
    }
    if State::load().is_some() {
        eprintln!("cluster: stopping the leftovers of an earlier cluster");
        down()?;
    }
    let started = Instant::now();
    let result = start(runtime, count);
    match result {
        Ok(env) => {
            write_env(&env)?;
            eprintln!(
                "cluster: {count} {} nodes up in {:.1}s; environment written to {}",
                runtime_name(runtime),
                started.elapsed().as_secs_f64(),
                env_file().display()
            );
            Ok(env)
        }
        Err(e) => {
            if let Err(down_error) = down() {
                eprintln!("cluster: cleanup after the failure: {down_error}");
            }
            Err(e)
        }
    }
}

fn start(runtime: Runtime, count: usize) -> Result<BTreeMap<String, String>, String> {
    let root = data_dir();
    let _ = std::fs::remove_dir_all(&root);
    let mut taken = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..count {
        let api = free_port(&taken)?;
        taken.push(api);
        let cluster = free_port(&taken)?;
        taken.push(cluster);
        ports.push((api, cluster));
    }
    let mut state = State {
        runtime,
        run: "-".to_owned(),
        nodes: Vec::new(),
    };
    match runtime {
        Runtime::Native => {
            let (venv, _) = provision::ensure(&Service::OpenBao.venv())?;
            let bao = openbao::binary(&venv)?;
            let peers: Vec<String> = ports
                .iter()
                .map(|(api, _)| format!("http://127.0.0.1:{api}"))
                .collect();
            for (i, (api, cluster)) in ports.iter().enumerate() {
                let index = i + 1;
                let dir = root.join(format!("node-{index}"));
                layout::ensure_dir(&dir.join("raft"))?;
                let text = config(
                    &dir.join("raft").display().to_string(),
                    &format!("node{index}"),
                    (&format!("127.0.0.1:{api}"), &format!("127.0.0.1:{cluster}")),
                    (
                        &format!("http://127.0.0.1:{api}"),
                        &format!("https://127.0.0.1:{cluster}"),
                    ),
                    &peers,
                );
                write(&dir.join("config.hcl"), &text)?;
                let launch = native_launch(&bao, &dir, index);
                let pid = process::spawn(&launch)?;
                state.nodes.push(Node {
                    index,
                    pid,
                    port: *api,
                    cluster_port: *cluster,
                    marker: launch.program.display().to_string(),
                });
                state.save()?;
            }
        }
        Runtime::Docker => {
            let images = docker::prepare()?;
            let image = images
                .get(&Service::OpenBao)
                .ok_or("no OpenBao image")?
                .clone();
            let run = docker::run_id()?;
            state.run = run.clone();
            state.save()?;
            docker::create_network(&run)?;
            let port = images::container_port(Service::OpenBao);
            let peers: Vec<String> = (1..=count)
                .map(|i| format!("http://{}:{port}", container_name(&run, i)))
                .collect();
            for (i, (api, _)) in ports.iter().enumerate() {
                let index = i + 1;
                let dir = root.join(format!("node-{index}"));
                layout::ensure_dir(&dir.join("raft"))?;
                let me = container_name(&run, index);
                let text = config(
                    "/bao/raft",
                    &format!("node{index}"),
                    (&format!("0.0.0.0:{port}"), &format!("0.0.0.0:{}", port + 1)),
                    (
                        &format!("http://{me}:{port}"),
                        &format!("https://{me}:{}", port + 1),
                    ),
                    &peers,
                );
                write(&dir.join("config.hcl"), &text)?;
                let name = start_container(&run, &image, index, *api, &dir)?;
                state.nodes.push(Node {
                    index,
                    pid: 0,
                    port: *api,
                    cluster_port: 0,
                    marker: name,
                });
                state.save()?;
            }
        }
    }
    for node in &state.nodes {
        wait_for(
            &format!("{} to listen", node.name()),
            Duration::from_secs(60),
            || {
                if !alive(runtime, node) {
                    return Err(format!(
                        "{} exited\n{}",
                        node.name(),
                        log_tail(runtime, node)
                    ));
                }
                Ok(health(node.addr()).is_some())
            },
        )?;
    }
    let first = &state.nodes[0];
    let init = http::request(
        first.addr(),
        "PUT",
        "/v1/sys/init",
        &[("Content-Type", "application/json")],
        &json!({"secret_shares": 1, "secret_threshold": 1}).to_string(),
    )?;
    if init.status != 200 {
        return Err(format!(
            "sys/init answered {}: {}",
            init.status,
            init.body.trim()
        ));
    }
    let init = init.json("sys/init")?;
    let key = init["keys"][0]
        .as_str()
        .ok_or("sys/init gave no key")?
        .to_owned();
    let root_token = init["root_token"]
        .as_str()
        .ok_or("sys/init gave no root token")?
        .to_owned();
    write_private(&key_file(), &key)?;
    unseal(first, &key)?;
    wait_for(
        "openbao-1 to become active",
        Duration::from_secs(60),
        || Ok(health(first.addr()) == Some(200)),
    )?;
    for node in &state.nodes[1..] {
        // A node that has not joined yet refuses (400, not initialised): wait_serving
        // unseals it again until it has.
        let _ = unseal(node, &key);
    }
    for node in &state.nodes {
        wait_serving(runtime, node, &key)?;
    }
    wait_for(
        "every node to be a Raft voter",
        Duration::from_secs(90),
        || Ok(voters(first.addr(), &root_token).is_some_and(|v| v == state.nodes.len())),
    )?;
    // The active node may have changed while the others joined.
    let leader = state
        .nodes
        .iter()
        .find(|n| health(n.addr()) == Some(200))
        .ok_or("no active node after the cluster formed")?
        .addr();
    let response = http::request(
        leader,
        "POST",
        "/v1/sys/mounts/secret",
        &[
            ("X-Vault-Token", &root_token),
            ("Content-Type", "application/json"),
        ],
        &json!({"type": "kv", "options": {"version": "2"}}).to_string(),
    )?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "mounting secret/ answered {}: {}",
            response.status,
            response.body.trim()
        ));
    }
    let key_dir = data_dir();
    let mut env = openbao::seed(leader, &root_token, &key_dir)?;
    let addresses: Vec<String> = state.nodes.iter().map(Node::url).collect();
    env.insert("VAULT_ADDR".to_owned(), addresses.join(","));
    env.insert(
        "STRONGROOM_ITEST_CLUSTER_NODES".to_owned(),
        addresses.join(","),
    );
    env.insert(
        "STRONGROOM_ITEST_CLUSTER_RUNTIME".to_owned(),
        runtime_name(runtime).to_owned(),
    );
    if let Ok(me) = std::env::current_exe() {
        env.insert(
            "STRONGROOM_ITEST_XTASK".to_owned(),
            me.display().to_string(),
        );
    }
    // The fault commands find the cluster's state there (as STRONGROOM_XTASK_DIR).
    env.insert(
        "STRONGROOM_ITEST_XTASK_DIR".to_owned(),
        layout::xtask_dir().display().to_string(),
    );
    env.insert(
        "STRONGROOM_ITEST_ENV".to_owned(),
        env_file().display().to_string(),
    );
    Ok(env)
}

/// Number of voters in the Raft configuration, as the root token sees it.
fn voters(addr: SocketAddr, token: &str) -> Option<usize> {
    let response = http::request_within(
        addr,
        "GET",
        "/v1/sys/storage/raft/configuration",
        &[("X-Vault-Token", token)],
        "",
        PROBE,
    )
    .ok()?;
    let value: Value = response.json("raft configuration").ok()?;
    let servers = value["data"]["config"]["servers"].as_array()?;
    Some(
        servers
            .iter()
            .filter(|s| s["voter"] == Value::Bool(true))
            .count(),
    )
}

fn unseal(node: &Node, key: &str) -> Result<(), String> {
    let response = http::request_within(
        node.addr(),
        "PUT",
        "/v1/sys/unseal",
        &[("Content-Type", "application/json")],
        &json!({ "key": key }).to_string(),
        Duration::from_secs(10),
    )?;
    if response.status == 200 {
        Ok(())
    } else {
        Err(format!(
            "unsealing {} answered {}",
            node.name(),
            response.status
        ))
    }
}

/// Waits until the node is unsealed and active or standby, unsealing it again while it
/// says sealed (a node that is still joining may drop the first unseal).
fn wait_serving(runtime: Runtime, node: &Node, key: &str) -> Result<(), String> {
    let mut last_unseal = Instant::now();
    wait_for(
        &format!("{} to serve", node.name()),
        Duration::from_secs(90),
        || {
            if !alive(runtime, node) {
                return Err(format!(
                    "{} exited\n{}",
                    node.name(),
                    log_tail(runtime, node)
                ));
            }
            match health(node.addr()) {
                Some(200 | 429) => Ok(true),
                // Sealed, or not joined yet (501: not initialised): unseal (again).
                Some(501 | 503) if last_unseal.elapsed() > Duration::from_secs(2) => {
                    last_unseal = Instant::now();
                    let _ = unseal(node, key);
                    Ok(false)
                }
                _ => Ok(false),
            }
        },
    )
}

/// Polls `check` every 250 ms until it says true, fails, or `limit` passes.
fn wait_for(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {}s waiting for {what}",
                limit.as_secs()
            ));
        }
        sleep(Duration::from_millis(250));
    }
}

fn log_tail(runtime: Runtime, node: &Node) -> String {
    match runtime {
        Runtime::Native => process::log_tail(&layout::log_file(&node.name()), 30),
        Runtime::Docker => docker::log_tail(&node.marker),
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_env(env: &BTreeMap<String, String>) -> Result<(), String> {
    let mut text = String::from(
        "# Written by `cargo xtask services up --vault-nodes N`; read by the cluster suite.\n",
    );
    for (key, value) in env {
        text.push_str(&format!("{key}={value}\n"));
    }
    write_private(&env_file(), &text)
}

/// Whether a cluster is recorded (for `services down` and `status`).
pub(crate) fn recorded() -> bool {
    State::load().is_some()
}

/// Stops every node and removes the cluster's data, state, key and environment.
pub(crate) fn down() -> Result<(), String> {
    let Some(state) = State::load() else {
        return Ok(());
    };
    match state.runtime {
        Runtime::Native => {
            for node in &state.nodes {
                // A paused node ignores TERM until continued.
                if process::is_ours(node.pid, &node.marker) {
                    process::signal_group(node.pid, "CONT")?;
                }
                if process::stop(node.pid, &node.marker)? {
                    eprintln!("cluster: stopped {} (pid {})", node.name(), node.pid);
                }
            }
        }
        Runtime::Docker => {
            let mut names: Vec<&str> = state.nodes.iter().map(|n| n.marker.as_str()).collect();
            if !names.is_empty() {
                let mut args = vec!["rm", "--force", "--volumes"];
                args.append(&mut names);
                // Some may already be gone.
                let _ = docker::output(&args);
            }
            if state.run != "-" {
                let _ = docker::output(&["network", "rm", &docker::network_name(&state.run)]);
            }
            eprintln!(
                "cluster: removed {} container(s) and their network",
                state.nodes.len()
            );
        }
    }
    let _ = std::fs::remove_dir_all(data_dir());
    let _ = std::fs::remove_file(key_file());
    let _ = std::fs::remove_file(env_file());
    std::fs::remove_file(state_file())
        .map_err(|e| format!("cannot remove {}: {e}", state_file().display()))
}

/// `services status` for the cluster: one line per node.
pub(crate) fn status() {
    let Some(state) = State::load() else { return };
    for node in &state.nodes {
        let what = if !alive(state.runtime, node) {
            "exited".to_owned()
        } else {
            match health(node.addr()) {
                Some(200) => "active".to_owned(),
                Some(429) => "standby".to_owned(),
                Some(503) => "sealed".to_owned(),
                Some(other) => format!("status {other}"),
                None => "no answer".to_owned(),
            }
        };
        println!(
            "{:<11} {:?} pid {:<7} {}  {what}",
            node.name(),
            state.runtime,
            node.pid,
            node.url()
        );
    }
}

/// A fault on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeFault {
    Kill,
    Restart,
    Pause,
    Resume,
    Disconnect,
    Connect,
}

impl NodeFault {
    pub(crate) fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "kill" => Self::Kill,
            "restart" => Self::Restart,
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "disconnect" => Self::Disconnect,
            "connect" => Self::Connect,
            _ => return None,
        })
    }
}

/// Whether `name` names a cluster node (`openbao-N` or `leader`).
pub(crate) fn is_node_name(name: &str) -> bool {
    name == "leader"
        || name
            .strip_prefix("openbao-")
            .is_some_and(|n| n.parse::<usize>().is_ok())
}

/// Applies `fault` to the node `name`; prints the node's name on stdout.
pub(crate) fn fault(fault: NodeFault, name: &str) -> Result<(), String> {
    let mut state = State::load()
        .ok_or("no cluster is recorded as running (cargo xtask services up --vault-nodes 3)")?;
    let index = state.node(name)?;
    let node = state.nodes[index].clone();
    match (state.runtime, fault) {
        (Runtime::Native, NodeFault::Kill) => {
            if process::is_ours(node.pid, &node.marker) {
                process::signal_group(node.pid, "KILL")?;
                wait_for(
                    &format!("{} to exit", node.name()),
                    Duration::from_secs(10),
                    || Ok(!process::is_ours(node.pid, &node.marker)),
                )?;
            }
        }
        (Runtime::Native, NodeFault::Restart) => {
            if process::is_ours(node.pid, &node.marker) {
                return Err(format!(
                    "{} (pid {}) is still running",
                    node.name(),
                    node.pid
                ));
            }
            let dir = data_dir().join(format!("node-{}", node.index));
            let launch = native_launch(Path::new(&node.marker), &dir, node.index);
            state.nodes[index].pid = process::spawn(&launch)?;
            state.save()?;
        }
        (Runtime::Native, NodeFault::Pause | NodeFault::Resume) => {
            if !process::is_ours(node.pid, &node.marker) {
                return Err(format!("{} (pid {}) is not running", node.name(), node.pid));
            }
            let signal = if fault == NodeFault::Pause {
                "STOP"
            } else {
                "CONT"
            };
            process::signal_group(node.pid, signal)?;
        }
        (Runtime::Native, NodeFault::Disconnect | NodeFault::Connect) => {
            return Err(
                "a network partition needs the docker runtime (native nodes share the host's \
                 loopback); use pause or kill"
                    .to_owned(),
            );
        }
        (Runtime::Docker, _) => {
            let network = docker::network_name(&state.run);
            let c = node.marker.as_str();
            let args: Vec<&str> = match fault {
                NodeFault::Kill => vec!["kill", "--signal", "KILL", c],
                NodeFault::Restart => vec!["start", c],
                NodeFault::Pause => vec!["pause", c],
                NodeFault::Resume => vec!["unpause", c],
                NodeFault::Disconnect => vec!["network", "disconnect", &network, c],
                NodeFault::Connect => vec!["network", "connect", &network, c],
            };
            docker::output(&args)?;
        }
    }
    if fault == NodeFault::Restart {
        let node = &state.nodes[index];
        let key = std::fs::read_to_string(key_file())
            .map_err(|e| format!("cannot read {}: {e}", key_file().display()))?;
        wait_for(
            &format!("{} to listen", node.name()),
            Duration::from_secs(60),
            || {
                if !alive(state.runtime, node) {
                    return Err(format!(
                        "{} exited\n{}",
                        node.name(),
                        log_tail(state.runtime, node)
                    ));
                }
                Ok(health(node.addr()).is_some())
            },
        )?;
        // A node just started may refuse the first unseal (503 while its storage opens, seen
        // on docker): wait_serving unseals it again until it serves.
        let _ = unseal(node, key.trim());
        wait_serving(state.runtime, node, key.trim())?;
    }
    println!("{}", state.nodes[index].name());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let state = State {
            runtime: Runtime::Native,
            run: "-".to_owned(),
            nodes: vec![Node {
                index: 2,
                pid: 42,
                port: 4242,
                cluster_port: 4243,
                marker: "/a b/bao".to_owned(),
            }],
        };
        assert_eq!(State::parse(&state.render()), Some(state));
        assert_eq!(State::parse("runtime native\n"), None);
    }

    #[test]
    fn config_names_every_peer_and_both_addresses() {
        let peers = vec![
            "http://127.0.0.1:1".to_owned(),
            "http://127.0.0.1:3".to_owned(),
        ];
        let text = config(
            "/d/raft",
            "node1",
            ("127.0.0.1:1", "127.0.0.1:2"),
            ("http://127.0.0.1:1", "https://127.0.0.1:2"),
            &peers,
        );
        assert_eq!(text.matches("retry_join").count(), 2);
        for needle in [
            "path = \"/d/raft\"",
            "node_id = \"node1\"",
            "cluster_address = \"127.0.0.1:2\"",
            "api_addr = \"http://127.0.0.1:1\"",
            "cluster_addr = \"https://127.0.0.1:2\"",
            "disable_mlock = true",
            "disable_standby_reads = true",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }

    #[test]
    fn node_names() {
        assert!(is_node_name("leader") && is_node_name("openbao-2"));
        assert!(!is_node_name("openbao") && !is_node_name("openbao-x"));
        assert_eq!(NodeFault::parse("kill"), Some(NodeFault::Kill));
        assert_eq!(NodeFault::parse("stop"), None);
    }
}
