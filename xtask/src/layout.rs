//! Where things live: the repository root and the xtask's folders under `target/`.
//!
//! Two folders: the *cache* (`target/xtask`: venvs, image build inputs), shared by every run,
//! and the *run folder* (state, env file, logs, lock, server data), `target/xtask` too unless
//! `STRONGROOM_XTASK_DIR` names another one, so two sets of servers can run side by side in
//! one checkout (each run folder has its own lock, state and containers).

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

/// What the xtask provisions once and reuses: venvs and image build folders.
pub(crate) fn cache_dir() -> PathBuf {
    target_dir().join("xtask")
}

/// What one set of servers records: state, env file, logs, lock, server data.
pub(crate) fn xtask_dir() -> PathBuf {
    match std::env::var_os("STRONGROOM_XTASK_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => cache_dir(),
    }
}

/// The venvs (one per server) live here and survive `services down`.
pub(crate) fn venv_dir(name: &str) -> PathBuf {
    cache_dir().join("venvs").join(name)
}

/// Build folders of the local docker images (`cargo xtask images`).
pub(crate) fn images_dir() -> PathBuf {
    cache_dir().join("images")
}

/// One log file per server, rewritten on every start.
pub(crate) fn log_file(name: &str) -> PathBuf {
    xtask_dir().join("logs").join(format!("{name}.log"))
}

/// The file the suites read when their environment is not set: KEY=VALUE lines.
pub(crate) fn env_file() -> PathBuf {
    xtask_dir().join("services.env")
}

/// What `up` started (runtime, names, PIDs or containers, ports), for `down` and `status`.
pub(crate) fn state_file() -> PathBuf {
    xtask_dir().join("services.state")
}

/// Creates `dir` and its parents, with the path in the error.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
