//! [`ClusterEnv`]: what `cargo xtask itest --cluster` tells the cluster suite about the
//! three-node OpenBao cluster it started, and the fault handles on its nodes.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

/// The cluster's nodes, its root token and how to inject faults into one node.
#[non_exhaustive]
pub struct ClusterEnv {
    /// Every node's API address, `http://127.0.0.1:PORT`, in order (`openbao-1` first).
    pub nodes: Vec<String>,
    /// The root token (`VAULT_TOKEN`).
    pub token: String,
    /// The KV v2 mount (`secret`).
    pub kv_mount: String,
    /// `native` or `docker`.
    pub runtime: String,
    /// Leader kills in a row the long fault loop does (`--cluster-loops`).
    pub loops: u32,
    xtask: PathBuf,
    xtask_dir: PathBuf,
}

impl fmt::Debug for ClusterEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterEnv")
            .field("nodes", &self.nodes)
            .field("token", &"[REDACTED]")
            .field("runtime", &self.runtime)
            .field("loops", &self.loops)
            .finish_non_exhaustive()
    }
}

impl ClusterEnv {
    /// Reads the environment `cargo xtask itest --cluster` sets.
    ///
    /// # Panics
    /// When a variable is missing or a node is not a loopback address: the suite needs the
    /// cluster and never passes by skipping.
    pub fn load() -> Self {
        let get = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is unset: run the cluster suite with `cargo xtask itest --cluster`")
            })
        };
        let nodes: Vec<String> = get("STRONGROOM_ITEST_CLUSTER_NODES")
            .split(',')
            .map(str::to_owned)
            .collect();
        for node in &nodes {
            assert!(
                crate::env::is_loopback_http(node),
                "cluster node {node} is not a loopback http:// address"
            );
        }
        assert!(
            nodes.len() >= 3,
            "a cluster has at least three nodes: {nodes:?}"
        );
        Self {
            nodes,
            token: get("VAULT_TOKEN"),
            kv_mount: get("STRONGROOM_ITEST_VAULT_KV_MOUNT"),
            runtime: get("STRONGROOM_ITEST_CLUSTER_RUNTIME"),
            loops: std::env::var("STRONGROOM_ITEST_CLUSTER_LOOPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
            xtask: get("STRONGROOM_ITEST_XTASK").into(),
            xtask_dir: get("STRONGROOM_ITEST_XTASK_DIR").into(),
        }
    }

    /// `cargo xtask services <action> <node>`: `action` is kill, restart, pause, resume,
    /// disconnect or connect; `node` is `openbao-N` or `leader`. Returns the node acted on.
    ///
    /// # Panics
    /// When the command fails (its stderr is in the message).
    pub fn fault(&self, action: &str, node: &str) -> String {
        let out = Command::new(&self.xtask)
            .args(["services", action, node])
            .env("STRONGROOM_XTASK_DIR", &self.xtask_dir)
            .output()
            .expect("run xtask");
        assert!(
            out.status.success(),
            "xtask services {action} {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
