//! Shared plumbing of strongroom's real-server integration suites.
//!
//! The suites in `tests/itest/` talk to real OpenBao, LocalStack and moto servers that
//! `cargo xtask itest` starts, seeds and stops. [`ItestEnv::load`] gives a suite the
//! addresses and credentials of those servers: from the process environment when xtask set
//! it, otherwise from `target/xtask/services.env` (written by `cargo xtask services up`).
//! With neither, it panics with a message naming `cargo xtask itest`: a suite that needs a
//! server never passes by skipping.
//!
//! [`ClusterEnv`] does the same for the three-node OpenBao cluster of
//! `cargo xtask itest --cluster`, with its per-node fault handles.
//!
//! [`hostile`] holds a lying HTTP server for the hostile-network suite (`tests/hostile/`),
//! which needs no external server.
//!
//! ```no_run
//! let env = strongroom_itests::ItestEnv::load();
//! assert!(env.vault_addr.starts_with("http://127.0.0.1:"));
//! ```

mod cluster;
mod env;
pub mod hostile;

pub use cluster::ClusterEnv;
pub use env::{ENV_FILE_VAR, EnvError, ItestEnv};
