//! Secret stores that need no server: an encrypted file, the environment, a directory.
//!
//! - [`FileStore`]: the embedded default. All secrets of a store in one file sealed with
//!   [strongroom-envelope](strongroom_envelope) (AES-256-GCM under the store's data key,
//!   wrapped in one or more key slots: a master key, a passphrase, AWS KMS, Vault Transit),
//!   with versions, soft delete, check-and-set and metadata. Writes are atomic and safe
//!   between processes; docs/local-store.md describes the file and its guarantees, and
//!   [`FileStore`]'s docs the key slots ([`StoreSlots`], [`key_context`]).
//! - [`EnvStore`]: read-only, `app/db_password` from `APP_DB_PASSWORD`.
//! - [`DirStore`]: read-only, one file per secret, as a Kubernetes secret volume is laid out.
//!
//! All three implement [`SecretStore`](strongroom_core::SecretStore).
//!
//! ```
//! use strongroom_core::{SecretName, SecretStore};
//! use strongroom_envelope::MasterKey;
//! use strongroom_local::FileStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("secrets.enc");
//! let store = FileStore::create(&path, MasterKey::generate()?)?;
//! let key = SecretName::new("app/db/password")?;
//! let first = store.put(&key, "hunter2".into()).await?;
//! store.put(&key, "correct horse".into()).await?;
//!
//! assert_eq!(store.get(&key).await?.value.expose_str()?, "correct horse");
//! assert_eq!(store.get_version(&key, &first).await?.value.expose_str()?, "hunter2");
//! # Ok(()) }
//! ```

mod atomic;
mod chunked_map;
// The crash-state checker: its pure model is public (hidden) under the `crash-model`
// feature for the facade's audit-log tests; the rest exists in this crate's tests only.
#[cfg(any(test, feature = "crash-model"))]
#[doc(hidden)]
pub mod crash_explore;
mod dir;
mod document;
mod env;
mod file;
mod fs;
mod group_commit;
mod secret_buf;
mod slots;
mod snapshot;

pub use dir::{DirStore, MAX_FILE_BYTES};
pub use env::{ENV_VERSION, EnvStore};
pub use file::{
    DEFAULT_KEEP_VERSIONS, DEFAULT_LOCK_TIMEOUT, DEFAULT_REVALIDATE_AFTER, FileStore,
    FileStoreBuilder, default_key_file, key_error,
};
pub use slots::{StoreSlots, key_context};
