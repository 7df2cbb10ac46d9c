//! Where things live: the repository root and the xtask's folder under `target/`.

use std::path::{Path, PathBuf};

/// The repository root: xtask lives one folder below it.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Cargo's target folder (`CARGO_TARGET_DIR` when set, as cargo itself does).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// Everything the xtask provisions or records: venvs, logs, server data, state, env file.
pub(crate) fn xtask_dir() -> PathBuf {
    target_dir().join("xtask")
}

/// The venvs (one per server) live here and survive `services down`.
pub(crate) fn venv_dir(name: &str) -> PathBuf {
    xtask_dir().join("venvs").join(name)
}

/// One log file per server, rewritten on every start.
pub(crate) fn log_file(name: &str) -> PathBuf {
    xtask_dir().join("logs").join(format!("{name}.log"))
}

/// The file the suites read when their environment is not set: KEY=VALUE lines.
pub(crate) fn env_file() -> PathBuf {
    xtask_dir().join("services.env")
}

/// What `up` started (runtime, names, PIDs, ports), for `down` and `status`.
pub(crate) fn state_file() -> PathBuf {
    xtask_dir().join("services.state")
}

/// Creates `dir` and its parents, with the path in the error.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
