//! Opening the store a [`BackendConfig`] names: the one path from configuration (TOML,
//! environment, [`StoreSpec`](crate::StoreSpec), the CLI's flags) to a store.

use std::path::Path;
use std::sync::Arc;

use strongroom_core::{Error, Scoped, SecretStore};
use strongroom_local::{DirStore, EnvStore, FileStore};

use crate::config::{BackendConfig, KeySource, LocalConfig};
use crate::keyring::{StoreFile, open_keyed_blocking, opens_through_slots};
use crate::master_key::{KeyOrigin, PassphrasePrompt, resolve_in};

/// Opens the store `config` names.
///
/// # Errors
/// [`Error::Config`] for a missing key or store file, a prefix that is not a folder name,
/// or a backend this build lacks (`vault`, `aws`, `gcp` without the cargo feature); the backend's
/// own errors otherwise.
pub fn open_store(config: &BackendConfig) -> Result<Arc<dyn SecretStore>, Error> {
    match config {
        BackendConfig::Local(local) => {
            let (store, _) = open_local(local, None)?;
            scoped(store, local.prefix.as_deref())
        }
        BackendConfig::Env(env) => {
            let store = match &env.prefix {
                Some(prefix) => EnvStore::new().with_prefix(prefix.as_str()),
                None => EnvStore::new(),
            };
            Ok(Arc::new(store))
        }
        BackendConfig::Dir(dir) => scoped(DirStore::new(&dir.path)?, dir.prefix.as_deref()),
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
        #[cfg(feature = "aws")]
        BackendConfig::Ssm(ssm) => crate::aws::open_ssm(ssm),
        #[cfg(not(feature = "aws"))]
        BackendConfig::Ssm(_) => Err(Error::config(
            "built without the aws feature (which holds SSM): enable strongroom-facade's `aws` feature",
        )),
        #[cfg(feature = "gcp")]
        BackendConfig::Gcp(gcp) => crate::gcp::open(gcp),
        #[cfg(not(feature = "gcp"))]
        BackendConfig::Gcp(_) => Err(Error::config(
            "built without the gcp feature: enable strongroom-facade's `gcp` feature",
        )),
    }
}

/// Opens the encrypted file `config` names (unscoped: apply
/// [`LocalConfig::prefix`] with [`Scoped`]), its key found by
/// [`resolve_key`](crate::resolve_key) with `prompt` for a passphrase store; also says where the key came from.
///
/// # Errors
/// As [`resolve_key`](crate::resolve_key) and [`FileStore`]'s open.
pub fn open_local(
    config: &LocalConfig,
    prompt: PassphrasePrompt<'_>,
) -> Result<(FileStore, KeyOrigin), Error> {
    let source = config.key_source();
    let builder = FileStore::builder(&config.path);
    // Read once for every decision below; the store's own load reads it again.
    let file = StoreFile::new(&config.path);
    if opens_through_slots(&file, &source) {
        return open_keyed_blocking(builder, &file, &source, config.create_if_missing, prompt);
    }
    let (key, origin) = resolve_in(&source, &file, prompt)?;
    let store = builder
        .create_if_missing(config.create_if_missing)
        .open(key)?;
    Ok((store, origin))
}

/// `store` scoped to `prefix` when there is one.
///
/// # Errors
/// [`Error::Config`] for a prefix that is not a folder name.
pub fn scoped(
    store: impl SecretStore + 'static,
    prefix: Option<&str>,
) -> Result<Arc<dyn SecretStore>, Error> {
    match prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(prefix) => Ok(Arc::new(Scoped::new(store, prefix).map_err(|e| {
            Error::config(format!("the prefix {prefix:?} is not a folder name: {e}"))
        })?)),
        None => Ok(Arc::new(store)),
    }
}

/// Opens (creating when missing) the mirror file at `path`. The mirror keeps one version per
/// secret: it is a copy of the latest value, not a history.
pub(crate) fn open_mirror(path: &Path, key: &KeySource) -> Result<FileStore, Error> {
    let builder = FileStore::builder(path).keep_versions(1);
    let file = StoreFile::new(path);
    if opens_through_slots(&file, key) {
        return open_keyed_blocking(builder, &file, key, true, None).map(|(store, _)| store);
    }
    let (key, _) = resolve_in(key, &file, None)?;
    builder.create_if_missing(true).open(key)
}
