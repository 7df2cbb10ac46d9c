//! `Secrets`: the one object an application holds to read, write, rotate and watch its
//! secrets, whichever store keeps them.
//!
//! [`Secrets`] wraps a primary [`SecretStore`](strongroom_core::SecretStore) (the local
//! encrypted file, the environment, a directory, Vault or AWS Secrets Manager) in a
//! [`CachedStore`](strongroom_cache::CachedStore) and adds:
//!
//! - **an audit trail**: one event per operation (time, operation, key, backend, outcome,
//!   cache status, latency; never the value) to `tracing` under the target
//!   [`AUDIT_TARGET`], and optionally as JSON lines appended to a file by a writer thread;
//! - **metrics** through the `metrics` facade (see [`meter`] for the names), so any exporter works;
//! - **rotation** ([`Secrets::rotate`], policies by age or cron schedule: [`Secrets::start_rotation`]) and change notifications
//!   ([`Secrets::subscribe`]);
//! - **health** ([`Secrets::health`]) and [`Secrets::stats`];
//! - **degradation**: while the primary is unavailable, reads come from the cache (stale) and
//!   a local encrypted mirror of what was read; writes fail with `Unavailable`;
//! - **configuration** from a TOML file or the environment ([`Config`], documented in
//!   `docs/facade.md`), and [`StoreSpec`] strings like `local:/path` for tools;
//! - **migration** between stores ([`migrate`]).
//!
//! # Quickstart
//!
//! ```
//! use strongroom_core::SecretName;
//! use strongroom_envelope::MasterKey;
//! use strongroom_facade::Secrets;
//! use strongroom_local::FileStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), strongroom_core::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("secrets.enc");
//! // In production: `Secrets::from_env()?` or `Secrets::from_config(&Config::from_toml_file(..)?)?`.
//! let store = FileStore::create(&path, MasterKey::generate().map_err(strongroom_local::key_error)?)?;
//! let secrets = Secrets::builder().store(store).build()?;
//!
//! let key = SecretName::new("app/db/password")?; // validate once, reuse on the hot path
//! secrets.put(&key, "hunter2").await?;
//! assert_eq!(secrets.get(&key).await?.value.expose_str()?, "hunter2");
//!
//! let mut changes = secrets.subscribe(key.clone());
//! let version = secrets.rotate(&key).await?; // 32 random bytes, base64
//! assert_eq!(changes.recv().await.unwrap().version, Some(version));
//! assert_ne!(secrets.get(&key).await?.value.expose_str()?, "hunter2");
//! # Ok(()) }
//! ```
//!
//! # Decisions
//!
//! - **The hot path**: `get(&SecretName)` on a cache hit looks the key up in the cache,
//!   bumps a per-thread counter and a statically labelled metric, and returns: no
//!   allocation, no formatting, no clock read. The audit event and its latency are produced
//!   only when a tracing subscriber wants [`AUDIT_TARGET`] events or an audit file is set.
//! - **Errors** are strongroom-core's [`Error`](strongroom_core::Error): an application deals
//!   in one error type whatever the backend; configuration problems are `Error::Config`.
//! - **Writes while the primary is down fail** (see [`Secrets`]); the mirror is only ever a
//!   copy of what the primary said.
//! - **Vault** is opened behind the `vault` feature (strongroom-vault); without it a
//!   configuration naming it fails with `Error::Config("built without the vault feature")`.
//!   **AWS Secrets Manager** likewise behind the `aws` feature (strongroom-aws).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod audit;
#[cfg(feature = "aws")]
mod aws;
mod backend;
mod config;
#[cfg(feature = "gcp")]
mod gcp;
mod health;
mod json;
mod key_arg;
mod key_spec;
mod keyring;
mod master_key;
pub mod meter;
mod migrate;
mod mirror;
mod rotation;
mod secrets;
mod spec;
mod stats;
mod striped;
mod subscription;
#[cfg(feature = "vault")]
mod vault;

pub use audit::AUDIT_TARGET;
pub use backend::{open_local, open_store, scoped};
pub use config::{
    AssumeRoleConfig, AuditSettings, AwsConfig, BREAKER_COOL_DOWN_VAR, BREAKER_THRESHOLD_VAR,
    BREAKER_VAR, BackendConfig, CONFIG_VAR, CacheSettings, Config, DirConfig, EnvConfig, GcpConfig,
    HealthSettings, KeySource, LocalConfig, MAX_BREAKER_COOL_DOWN, MAX_BREAKER_THRESHOLD,
    MIN_BREAKER_COOL_DOWN, MirrorSettings, PREFIX_VAR, ROTATION_VAR, RequestSettings,
    RotationSettings, SsmConfig, VaultAuthConfig, VaultConfig,
};
pub use health::{Health, HealthStatus};
pub use key_arg::IntoSecretName;
pub use key_spec::{DEFAULT_TRANSIT_MOUNT, KEY_VAR, KeySpec};
pub use keyring::{create_keyed, key_provider, local_key, new_slot, open_keyed, slot_spec};
pub use master_key::{
    KeyOrigin, MASTER_KEY_VAR, PASSPHRASE_VAR, PassphrasePrompt, resolve_key, wrapping_key,
};
pub use migrate::{
    KeyOutcome, MigrationFailure, MigrationOptions, MigrationReport, Progress, migrate,
};
pub use mirror::{DEFAULT_MIRROR_MAX_AGE, MIRROR_CONFIRMED_TAG, MIRROR_VERSION_TAG};
/// The old name of [`Scoped`]: a store seen under a folder prefix.
#[deprecated(
    since = "0.2.0",
    note = "moved to strongroom-core as `Scoped` (prefix() is now scope())"
)]
pub type Prefixed<S> = Scoped<S>;
pub use rotation::{
    CronSchedule, DEFAULT_PASSWORD_ALPHABET, DEFAULT_ROTATION_BYTES, Generator, MAX_CHECK_INTERVAL,
    MAX_GENERATED_LEN, MIN_CHECK_INTERVAL, RETRY_AFTER_FAILURE, RotationHandle, RotationOutcome,
    RotationPolicy, RotationSchedule, parse_age, rotate_if_due,
};
pub use secrets::{CacheControl, DEFAULT_HEALTH_KEY, DEFAULT_MAX_STALE, Secrets, SecretsBuilder};
pub use spec::StoreSpec;
pub use stats::Stats;
pub use strongroom_cache::{
    BreakerState, CacheConfig, CacheStats, CacheStatus, Change, ChangeCause,
};
pub use strongroom_core::{Scope, Scoped};
pub use subscription::Subscription;
