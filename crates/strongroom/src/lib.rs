//! Secrets for Rust applications.
//!
//! This crate gathers the strongroom crates behind one dependency, a cargo feature per
//! backend, so an application writes `strongroom = "0.1"` and links only what it enables:
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `local` | [`local`]: the encrypted file store, environment and directory stores | yes |
//! | `envelope` | [`envelope`]: AES-256-GCM envelope, master keys, passphrases | with `local` |
//!
//! The vocabulary every store shares is re-exported at the root from `strongroom-core`:
//! [`SecretStore`], [`SecretKey`], [`SecretValue`], [`Secret`], [`Error`].
//!
//! ```
//! # #[cfg(feature = "local")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use strongroom::envelope::MasterKey;
//! use strongroom::local::FileStore;
//! use strongroom::{SecretKey, SecretStore};
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("secrets.enc");
//! let store: Arc<dyn SecretStore> = Arc::new(FileStore::create(&path, MasterKey::generate()?)?);
//! let key = SecretKey::new("app/api-key")?;
//! store.put(&key, "k-123".into()).await?;
//! assert_eq!(store.get(&key).await?.value.expose_str()?, "k-123");
//! # Ok(()) }
//! # #[cfg(not(feature = "local"))]
//! # fn main() {}
//! ```

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

/// The README's examples are compiled and run as doc tests.
#[cfg(all(doctest, feature = "local"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
