//! Opening the store a [`BackendConfig`] names, and the master keys of encrypted files.

use std::path::Path;
use std::sync::Arc;

use strongroom_core::{Error, SecretStore};
use strongroom_envelope::{MasterKey, Passphrase, WrappingKey};
use strongroom_local::{DirStore, EnvStore, FileStore, default_key_file, key_error};

use crate::config::{BackendConfig, KeySource};

/// The base64 master key variable tried when a [`KeySource`] names nothing.
pub const MASTER_KEY_VAR: &str = "STRONGROOM_MASTER_KEY";
/// The passphrase variable tried when a [`KeySource`] names nothing.
pub const PASSPHRASE_VAR: &str = "STRONGROOM_PASSPHRASE";

/// Opens the store `config` names.
///
/// # Errors
/// [`Error::Config`] for a missing key or store file, or a backend this build lacks
/// (`vault`, `aws` without the cargo feature); the backend's own errors otherwise.
pub fn open_store(config: &BackendConfig) -> Result<Arc<dyn SecretStore>, Error> {
    match config {
        BackendConfig::Local(local) => {
            let key = wrapping_key(&local.key_source(), &local.path)?;
            let store = FileStore::builder(&local.path)
                .create_if_missing(local.create_if_missing)
                .open(key)?;
            Ok(Arc::new(store))
        }
        BackendConfig::Env(env) => {
            let store = match &env.prefix {
                Some(prefix) => EnvStore::new().with_prefix(prefix.as_str()),
                None => EnvStore::new(),
            };
            Ok(Arc::new(store))
        }
        BackendConfig::Dir(dir) => Ok(Arc::new(DirStore::new(&dir.path)?)),
        #[cfg(feature = "vault")]
        BackendConfig::Vault(vault) => crate::vault::open(vault),
        #[cfg(not(feature = "vault"))]
        BackendConfig::Vault(_) => Err(Error::config(
            "built without the vault feature: enable strongroom-facade's `vault` feature",
        )),
        #[cfg(feature = "aws")]
        BackendConfig::Aws(aws) => crate::aws::open(aws),
        #[cfg(not(feature = "aws"))]
        BackendConfig::Aws(_) => Err(Error::config(
            "built without the aws feature: enable strongroom-facade's `aws` feature",
        )),
    }
}

/// Opens (creating when missing) the mirror file at `path`. The mirror keeps one version per
/// secret: it is a copy of the latest value, not a history.
pub(crate) fn open_mirror(path: &Path, key: &KeySource) -> Result<FileStore, Error> {
    let key = wrapping_key(key, path)?;
    FileStore::builder(path)
        .keep_versions(1)
        .create_if_missing(true)
        .open(key)
}

/// The key `source` names; with nothing named, `STRONGROOM_MASTER_KEY`,
/// `STRONGROOM_PASSPHRASE`, then the file `<store>.key`.
///
/// # Errors
/// [`Error::Config`] naming the source that failed (never the key).
pub fn wrapping_key(source: &KeySource, store: &Path) -> Result<WrappingKey, Error> {
    if let Some(file) = &source.key_file {
        return Ok(MasterKey::from_file(file).map_err(key_error)?.into());
    }
    if let Some(var) = &source.key_env {
        return Ok(MasterKey::from_env(var).map_err(key_error)?.into());
    }
    if let Some(var) = &source.passphrase_env {
        return passphrase_from(var);
    }
    if std::env::var_os(MASTER_KEY_VAR).is_some() {
        return Ok(MasterKey::from_env(MASTER_KEY_VAR)
            .map_err(key_error)?
            .into());
    }
    if std::env::var_os(PASSPHRASE_VAR).is_some() {
        return passphrase_from(PASSPHRASE_VAR);
    }
    let default = default_key_file(store);
    MasterKey::from_file(&default)
        .map(WrappingKey::from)
        .map_err(|err| {
            Error::config(format!(
                "no master key for {}: set key_file, key_env or passphrase_env, set \
                 {MASTER_KEY_VAR}, or put the key in {} ({err})",
                store.display(),
                default.display()
            ))
        })
}

fn passphrase_from(var: &str) -> Result<WrappingKey, Error> {
    match std::env::var(var) {
        Ok(text) if !text.is_empty() => Ok(Passphrase::new(text).into()),
        _ => Err(Error::config(format!(
            "the passphrase variable {var} is unset, empty or not UTF-8"
        ))),
    }
}
