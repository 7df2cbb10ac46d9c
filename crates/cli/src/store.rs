//! Opening the store the global options name, through the facade's configuration: the
//! options fill a [`BackendConfig`] (or `--config` names a file holding one), and the
//! facade opens it exactly as a library user's configuration would be opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_core::{Error, SecretStore};
use strongroom_facade::{
    AwsConfig, BackendConfig, Config, DirConfig, EnvConfig, GcpConfig, KeyOrigin, KeySource,
    LocalConfig, SsmConfig, VaultConfig, open_store, scoped,
};
use strongroom_local::FileStore;

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

/// The backend configuration the global options describe: the `[backend]` of `--config`
/// when given, else `--backend` and `--store`; the other options then replace what they
/// name.
pub(crate) fn backend_config(global: &Global) -> Result<BackendConfig, Error> {
    let mut config = match &global.config {
        Some(file) => Config::from_toml_file(file)?.backend,
        None => match global.backend {
            Backend::Local => {
                BackendConfig::Local(LocalConfig::new(local_path(global)?, KeySource::default()))
            }
            Backend::Env => BackendConfig::Env(EnvConfig::default()),
            Backend::Dir => {
                let dir = global
                    .store
                    .as_ref()
                    .ok_or_else(|| Error::config("the dir backend needs --store DIRECTORY"))?;
                BackendConfig::Dir(DirConfig::new(dir))
            }
            Backend::Vault => BackendConfig::Vault(VaultConfig::default()),
            Backend::Aws => BackendConfig::Aws(AwsConfig::default()),
            Backend::Ssm => BackendConfig::Ssm(SsmConfig::default()),
            Backend::Gcp => BackendConfig::Gcp(GcpConfig::default()),
        },
    };
    let prefix = global.scope.clone();
    let remote = &global.remote;
    match &mut config {
        BackendConfig::Local(local) => {
            if let Some(file) = &global.key_file {
                local.key_file = Some(file.clone());
            }
            if !global.keys.is_empty() {
                local.keys.clone_from(&global.keys);
            }
            set(&mut local.prefix, prefix);
        }
        BackendConfig::Env(env) => {
            let store = global
                .store
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned());
            set(&mut env.prefix, prefix.or(store));
        }
        BackendConfig::Dir(dir) => set(&mut dir.prefix, prefix),
        BackendConfig::Vault(vault) => {
            set(&mut vault.prefix, prefix);
            set(&mut vault.mount, remote.vault_mount.clone());
            set(&mut vault.namespace, remote.vault_namespace.clone());
            if remote.vault_allow_plain_http {
                vault.allow_plain_http = Some(true);
            }
            set(&mut vault.request_timeout_secs, remote.request_timeout);
            set(&mut vault.retry_max_attempts, remote.retry_max_attempts);
            set(&mut vault.retry_max_total_secs, remote.retry_max_total);
        }
        BackendConfig::Aws(aws) => {
            set(&mut aws.prefix, prefix);
            set(&mut aws.region, remote.aws_region.clone());
            set(&mut aws.profile, remote.aws_profile.clone());
            set(&mut aws.request_timeout_secs, remote.request_timeout);
            set(&mut aws.retry_max_attempts, remote.retry_max_attempts);
            set(&mut aws.retry_max_total_secs, remote.retry_max_total);
        }
        BackendConfig::Ssm(ssm) => {
            set(&mut ssm.prefix, prefix);
            set(&mut ssm.region, remote.aws_region.clone());
            set(&mut ssm.profile, remote.aws_profile.clone());
            set(&mut ssm.request_timeout_secs, remote.request_timeout);
            set(&mut ssm.retry_max_attempts, remote.retry_max_attempts);
            set(&mut ssm.retry_max_total_secs, remote.retry_max_total);
        }
        BackendConfig::Gcp(gcp) => {
            set(&mut gcp.prefix, prefix);
            set(&mut gcp.project, remote.gcp_project.clone());
        }
        _ => {}
    }
    Ok(config)
}

/// Replaces `slot` when the option was given.
fn set<T>(slot: &mut Option<T>, option: Option<T>) {
    if option.is_some() {
        *slot = option;
    }
}

/// Opens the store for any command but `init` and `rekey`.
pub(crate) fn open(global: &Global) -> Result<Arc<dyn SecretStore>, Error> {
    open_config(&backend_config(global)?)
}

/// Opens `config`; a local store whose key is a passphrase asks for it on a terminal.
pub(crate) fn open_config(config: &BackendConfig) -> Result<Arc<dyn SecretStore>, Error> {
    match config {
        BackendConfig::Local(local) => {
            let (store, _) = open_local_config(local)?;
            scoped(store, local.prefix.as_deref())
        }
        other => open_store(other),
    }
}

/// The local store's file, as the configuration or the options name it.
pub(crate) fn local_path_of(global: &Global) -> Result<PathBuf, Error> {
    match backend_config(global)? {
        BackendConfig::Local(local) => Ok(local.path),
        other => Err(Error::config(format!(
            "this command needs a local store, not {}",
            other.kind()
        ))),
    }
}

/// Opens the local store (unscoped, for `rekey`), returning where its key came from.
pub(crate) fn open_local(global: &Global) -> Result<(FileStore, KeyOrigin), Error> {
    match backend_config(global)? {
        BackendConfig::Local(local) => open_local_config(&local),
        other => Err(Error::config(format!(
            "this command needs a local store, not {}",
            other.kind()
        ))),
    }
}

fn open_local_config(local: &LocalConfig) -> Result<(FileStore, KeyOrigin), Error> {
    let ask = || keys::passphrase(keys::PASSPHRASE_VAR, "passphrase", false);
    strongroom_facade::open_local(local, Some(&ask))
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
