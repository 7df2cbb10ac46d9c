//! drongo's server: a mock of Google Cloud Secret Manager's v1 REST API on plain HTTP.
//!
//! drongo accepts any (or no) bearer token and keeps its state in memory; `POST
//! /drongo/reset` empties it. The suites get its endpoint, a project id, and the Python of
//! the native drongo venv, which also holds the official `google-cloud-secret-manager`
//! client for the interop tests (that venv is provisioned on the docker runtime too, for
//! that client alone).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::http;
use crate::process::Launch;

/// The project id the suites use: drongo serves any, Google would need a real one.
pub(crate) const PROJECT: &str = "strongroom-itest";

/// How to start drongo on `port` (through the venv's Python, whose path is the marker).
pub(crate) fn launch(venv: &Path, port: u16) -> Launch {
    Launch {
        program: venv.join("bin/python"),
        args: vec![
            venv.join("bin/drongo").display().to_string(),
            "server".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ],
        env: BTreeMap::new(),
        log: crate::layout::log_file("drongo"),
    }
}

/// Healthy once drongo's own health route answers.
pub(crate) fn healthy(addr: SocketAddr) -> bool {
    http::request(addr, "GET", "/drongo/health", &[], "").is_ok_and(|r| r.status == 200)
}

/// Empties drongo's state (every project's secrets).
pub(crate) fn reset(addr: SocketAddr) -> Result<(), String> {
    let response = http::request(addr, "POST", "/drongo/reset", &[], "")?;
    if response.status == 200 {
        Ok(())
    } else {
        Err(format!("drongo reset answered {}", response.status))
    }
}

/// Resets drongo and returns the suites' environment: endpoint, project, and the Python
/// that has the official client.
pub(crate) fn seed(addr: SocketAddr, python: &Path) -> Result<BTreeMap<String, String>, String> {
    reset(addr)?;
    let mut env = BTreeMap::new();
    env.insert(
        "STRONGROOM_ITEST_GCP_ENDPOINT".to_owned(),
        format!("http://{addr}"),
    );
    env.insert(
        "STRONGROOM_ITEST_GCP_PROJECT".to_owned(),
        PROJECT.to_owned(),
    );
    env.insert("GOOGLE_CLOUD_PROJECT".to_owned(), PROJECT.to_owned());
    env.insert(
        "STRONGROOM_ITEST_GCP_PYTHON".to_owned(),
        python.display().to_string(),
    );
    Ok(env)
}
