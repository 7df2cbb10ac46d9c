//! The Google Cloud Secret Manager rows of `cargo xtask bench`: an uncached `GcpStore::get`
//! from drongo (the emulator the suites use) next to the one `versions/latest:access`
//! request built by hand over raw hyper, both measured in one process by
//! `strongroom-bench-peers gcp` (benches/peers).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::ssm::store_read_tables;
use super::{json_line, run_ok};

/// Runs `strongroom-bench-peers gcp` against the drongo of `env`; `None` (and no run) when
/// the peers were built without strongroom-gcp.
pub(super) fn run(
    peers: &Path,
    env: &BTreeMap<String, String>,
    note: &Option<String>,
) -> Result<Option<Value>, String> {
    if note.is_some() {
        return Ok(None);
    }
    eprintln!("bench: end to end, gcp (drongo): Rust peers");
    let out = run_ok(Command::new(peers).arg("gcp").envs(env), "peers gcp")?;
    json_line(&out, "peers gcp").map(Some)
}

/// The GCP tables, one per tokio runtime flavour; `gcp` is what [`run`] returned.
pub(super) fn render(gcp: &Value, note: &Option<String>) -> String {
    store_read_tables(
        gcp,
        note,
        "drongo Secret Manager read (latest version), uncached, reused connection",
        ("strongroom_gcp", "GcpStore::get"),
        &[(
            "raw_hyper",
            "versions/latest:access alone by hand (raw hyper); GcpStore also reads the secret's labels, in parallel",
        )],
    )
}
