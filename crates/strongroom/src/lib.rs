//! Secrets for Rust applications.
//!
//! This crate gathers the strongroom crates behind one dependency, a cargo feature per
//! backend, so an application writes `strongroom = "0.1"` and links only what it enables:
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `local` | [`local`]: the encrypted file store, environment and directory stores | yes |
//! | `envelope` | [`envelope`]: AES-256-GCM envelope, master keys, passphrases | with `local` |
//! | `vault` | [`vault`]: Vault / OpenBao KV v2, token, AppRole and Kubernetes auth | no |
//! | `aws` | [`aws`]: AWS Secrets Manager, credential providers (and `sigv4`) | no |
//! | `gcp` | [`gcp`]: Google Cloud Secret Manager, Google credentials | no |
//! | `sigv4` | [`sigv4`]: SigV4 signing and offline credential providers, alone | with `aws` |
//! | `cache` | [`cache`]: `CachedStore`, a TTL cache with single flight over any store | no |
//! | `facade` | [`facade`]: `Secrets`, the one object an application holds | no |
//! | `http2` | HTTP/2 (by ALPN over TLS) for `vault`, `aws` and `gcp`; HTTP/1.1 only without it | no |
//!
//! The vocabulary every store shares is re-exported at the root from `strongroom-core`:
//! [`SecretStore`], [`SecretName`], [`SecretValue`], [`Secret`], [`Error`].
//!
//! ```
//! # #[cfg(feature = "local")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use strongroom::envelope::MasterKey;
//! use strongroom::local::FileStore;
//! use strongroom::{SecretName, SecretStore};
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("secrets.enc");
//! let store: Arc<dyn SecretStore> = Arc::new(FileStore::create(&path, MasterKey::generate()?)?);
//! let key = SecretName::new("app/api-key")?;
//! store.put(&key, "k-123".into()).await?;
//! assert_eq!(store.get(&key).await?.value.expose_str()?, "k-123");
//! # Ok(()) }
//! # #[cfg(not(feature = "local"))]
//! # fn main() {}
//! ```

//! With the `facade` feature, an application holds one [`facade::Secrets`]: a store from
//! configuration (`Secrets::from_env()`, or a TOML file), cached, audited, rotatable.
//!
//! ```
//! # #[cfg(feature = "facade")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use strongroom::SecretName;
//! use strongroom::envelope::MasterKey;
//! use strongroom::facade::Secrets;
//! use strongroom::local::FileStore;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("secrets.enc");
//! let secrets = Secrets::builder()
//!     .store(FileStore::create(&path, MasterKey::generate()?)?)
//!     .build()?;
//! let key = SecretName::new("app/db/password")?;
//! secrets.put(&key, "hunter2").await?;
//! let mut changes = secrets.subscribe(key.clone());
//! let version = secrets.rotate(&key).await?;
//! assert_eq!(changes.recv().await.unwrap().version, Some(version));
//! # Ok(()) }
//! # #[cfg(not(feature = "facade"))]
//! # fn main() {}
//! ```

// docs.rs (`--cfg docsrs`) labels items that need a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use strongroom_core::*;

/// The AES-256-GCM envelope: seal bytes under a master key or a passphrase
/// (`strongroom-envelope`).
#[cfg(feature = "envelope")]
pub mod envelope {
    pub use strongroom_envelope::*;
}

/// Stores that need no server: the encrypted [`FileStore`](local::FileStore), the
/// [`EnvStore`](local::EnvStore) and the [`DirStore`](local::DirStore) (`strongroom-local`).
#[cfg(feature = "local")]
pub mod local {
    pub use strongroom_local::*;
}

/// Vault / OpenBao: [`VaultStore`](vault::VaultStore), the KV v2 client and its auth methods
/// (`strongroom-vault`).
#[cfg(feature = "vault")]
pub mod vault {
    pub use strongroom_vault::*;
}

/// AWS Secrets Manager: [`SecretsManagerStore`](aws::SecretsManagerStore), its client, and
/// the IMDS, ECS, STS, web-identity and profile credential providers (`strongroom-aws`).
#[cfg(feature = "aws")]
pub mod aws {
    pub use strongroom_aws::*;
}

/// Google Cloud Secret Manager: [`GcpStore`](gcp::GcpStore) and the Google credentials
/// (service-account keys, application default credentials, the metadata server)
/// (`strongroom-gcp`).
#[cfg(feature = "gcp")]
pub mod gcp {
    pub use strongroom_gcp::*;
}

/// SigV4 request signing with the offline credential providers (`strongroom-sigv4`): sign
/// any AWS request without the AWS SDK.
#[cfg(feature = "sigv4")]
pub mod sigv4 {
    pub use strongroom_sigv4::*;
}

/// [`CachedStore`](cache::CachedStore): a TTL cache with single flight, stale-if-error and
/// refresh-ahead over any store (`strongroom-cache`).
#[cfg(feature = "cache")]
pub mod cache {
    pub use strongroom_cache::*;
}

/// [`Secrets`](facade::Secrets): a store from configuration behind a cache, with audit,
/// metrics, rotation, change notifications, health and migration (`strongroom-facade`).
#[cfg(feature = "facade")]
pub mod facade {
    pub use strongroom_facade::*;
}

/// [`Agent`](agent::Agent): the local HTTP agent `strongroom serve` runs, inside your own
/// process (`strongroom-agent`).
#[cfg(feature = "agent")]
pub mod agent {
    pub use strongroom_agent::*;
}

/// The README's examples are compiled and run as doc tests.
#[cfg(all(doctest, feature = "facade", feature = "vault"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
