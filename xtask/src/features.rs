//! The `features` phase of `cargo xtask ci`: each cargo feature of the umbrella crate builds
//! on its own (so `default-features = false, features = ["vault"]` really compiles only
//! that), the HTTP client's tests pass with its opt-in `http2` feature, and the doc tests,
//! README included, pass with every feature on.

use crate::cargo;

/// The umbrella crate's features; each is checked alone.
const FEATURES: &[&str] = &[
    "local", "envelope", "vault", "aws", "gcp", "sigv4", "cache", "facade", "agent",
];

pub(crate) fn run() -> Result<(), String> {
    let check = ["check", "-p", "strongroom", "--no-default-features"];
    cargo::run(cargo::command().args(check), &check.join(" "))?;
    for feature in FEATURES {
        let alone = [&check[..], &["--features", feature]].concat();
        cargo::run(cargo::command().args(&alone), &alone.join(" "))?;
    }
    // HTTP/2 is opt-in, so the workspace test run never enables it: its TLS tests run here.
    let http2 = ["test", "-p", "strongroom-http", "--features", "http2"];
    cargo::run(cargo::command().args(http2), &http2.join(" "))?;
    // The agent without its Prometheus exporter (a caller brings its own renderer).
    let bare_agent = [
        "check",
        "-p",
        "strongroom-agent",
        "--no-default-features",
        "--all-targets",
    ];
    cargo::run(cargo::command().args(bare_agent), &bare_agent.join(" "))?;
    let docs = ["test", "-p", "strongroom", "--all-features", "--doc"];
    cargo::run(cargo::command().args(docs), &docs.join(" "))
}
