//! Opening the store the global options name.

use std::path::{Path, PathBuf};

use strongroom_aws::SecretsManagerStore;
use strongroom_core::{Error, SecretStore};
use strongroom_local::{DirStore, EnvStore, FileStore};
use strongroom_vault::VaultStore;

use crate::args::{Backend, Global};
use crate::keys;

/// The local store's path: --store / STRONGROOM_STORE, else `<data dir>/secrets.enc`.
pub(crate) fn local_path(global: &Global) -> Result<PathBuf, Error> {
    if let Some(path) = &global.store {
        return Ok(path.clone());
    }
    directories::ProjectDirs::from("", "", "strongroom")
        .map(|dirs| dirs.data_dir().join("secrets.enc"))
        .ok_or_else(|| {
            Error::config(
                "no home directory to keep the store in: pass --store or set STRONGROOM_STORE",
            )
        })
}

/// Opens the store for any command but `init` and `rekey`.
pub(crate) async fn open(global: &Global) -> Result<Box<dyn SecretStore>, Error> {
    match global.backend {
        Backend::Local => Ok(Box::new(open_local(global)?.0)),
        Backend::Env => {
            let store = match &global.store {
                Some(prefix) => EnvStore::new().with_prefix(prefix.to_string_lossy()),
                None => EnvStore::new(),
            };
            Ok(Box::new(store))
        }
        Backend::Dir => {
            let dir = global
                .store
                .as_ref()
                .ok_or_else(|| Error::config("the dir backend needs --store DIRECTORY"))?;
            Ok(Box::new(DirStore::new(dir)?))
        }
        Backend::Vault => Ok(Box::new(VaultStore::from_env()?)),
        Backend::Aws => Ok(Box::new(SecretsManagerStore::from_env().await?)),
    }
}

/// Opens the local store, returning where its key came from.
pub(crate) fn open_local(global: &Global) -> Result<(FileStore, keys::Source), Error> {
    let path = local_path(global)?;
    let (key, source) = keys::for_existing(&path, global.key_file.as_deref())?;
    Ok((FileStore::open(&path, key)?, source))
}

/// Creates the directory a new store goes in, private to its owner.
pub(crate) fn create_parent(path: &Path) -> Result<(), Error> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| Error::config(format!("cannot create {}: {err}", dir.display())))
}
