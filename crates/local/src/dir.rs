//! [`DirStore`]: read-only secrets from a directory holding one file per secret, the layout of
//! a mounted Kubernetes secret volume or of Docker secrets (`/run/secrets`).

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, NameProblem, PutOptions, Secret, SecretName, SecretStore, SecretValue,
    VersionId, VersionInfo,
};
use zeroize::Zeroizing;

const BACKEND: &str = "dir";

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How deep `list` descends, which also stops symlink loops.
const MAX_DEPTH: usize = 16;

/// Secrets as files under a directory: `app/db/password` is `<root>/app/db/password`.
///
/// Names starting with `.` are skipped: Kubernetes keeps its bookkeeping there (`..data`,
/// `..2025_01_01_...`) and makes each secret a symlink into it, which this store follows.
/// A file's bytes are the value, exactly (no newline is trimmed). Its version is its
/// modification time in nanoseconds, which changes when Kubernetes swaps in a new secret.
///
/// Read-only: writes return [`Error::Unsupported`].
///
/// ```no_run
/// use strongroom_local::DirStore;
/// use strongroom_core::{SecretName, SecretStore};
///
/// # async fn run() -> Result<(), strongroom_core::Error> {
/// let store = DirStore::new("/var/run/secrets/myapp")?;
/// let password = store.get(&SecretName::new("db-password")?).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store over the existing directory `root`.
    ///
    /// # Errors
    /// [`Error::Config`] when `root` is not a readable directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(Self { root }),
            Ok(_) => Err(Error::config(format!(
                "{} is not a directory",
                root.display()
            ))),
            Err(err) => Err(Error::config(format!(
                "cannot read {}: {err}",
                root.display()
            ))),
        }
    }

    /// The directory secrets are read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &SecretName) -> Result<PathBuf, Error> {
        if key.segments().any(|s| s.starts_with('.')) {
            // Hidden names are Kubernetes' bookkeeping, not secrets.
            return Err(Error::invalid_key(key, NameProblem::Unsupported));
        }
        Ok(key
            .segments()
            .fold(self.root.clone(), |path, s| path.join(s)))
    }

    fn read(&self, key: &SecretName) -> Result<Secret, Error> {
        let path = self.path_of(key)?;
        let io_error = |err: io::Error| match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Error::not_found(key),
            _ => Error::backend(BACKEND, format!("cannot read {}", path.display()), err),
        };
        let file = std::fs::File::open(&path).map_err(io_error)?;
        let meta = file.metadata().map_err(io_error)?;
        if !meta.is_file() {
            return Err(Error::not_found(key));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(Error::InvalidValue {
                message: format!(
                    "{} is {} bytes, more than the {MAX_FILE_BYTES} a secret file may have",
                    path.display(),
                    meta.len()
                ),
            });
        }
        let capacity = usize::try_from(meta.len()).unwrap_or(0);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        file.take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        let modified = meta.modified().ok();
        let version = modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or_else(|| "0".to_owned(), |d| d.as_nanos().to_string());
        let mut secret = Secret::new(
            key.clone(),
            SecretValue::from(bytes),
            VersionId::from(version),
        );
        secret.created = modified;
        Ok(secret)
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        depth: usize,
        out: &mut Vec<SecretName>,
    ) -> Result<(), Error> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::backend(BACKEND, format!("cannot list {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                Error::backend(BACKEND, format!("cannot list {}", dir.display()), e)
            })?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // Follows symlinks, as Kubernetes' `key -> ..data/key` needs.
            match std::fs::metadata(entry.path()) {
                Ok(meta) if meta.is_file() => {
                    if let Ok(key) = SecretName::new(relative) {
                        out.push(key);
                    }
                }
                Ok(meta) if meta.is_dir() && depth < MAX_DEPTH => {
                    self.walk(&entry.path(), &relative, depth + 1, out)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for DirStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        // Small local reads: not worth a trip to the blocking pool.
        self.read(key)
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let secret = self.read(key)?;
        if &secret.version == version {
            return Ok(secret);
        }
        Err(Error::NotFound {
            key: key.to_string(),
            version: Some(version.clone()),
            deleted: false,
        })
    }

    async fn put_with(
        &self,
        _: &SecretName,
        _: SecretValue,
        _: &PutOptions,
    ) -> Result<VersionId, Error> {
        Err(Error::unsupported(BACKEND, "put"))
    }

    async fn delete(&self, _: &SecretName) -> Result<(), Error> {
        Err(Error::unsupported(BACKEND, "delete"))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let mut keys = Vec::new();
        self.walk(&self.root, "", 0, &mut keys)?;
        keys.retain(|key| key.has_prefix(prefix));
        keys.sort();
        Ok(keys)
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let secret = self.read(key)?;
        Ok(vec![VersionInfo::new(secret.version, secret.created, true)])
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn key(name: &str) -> SecretName {
        SecretName::new(name).unwrap()
    }

    /// The layout the kubelet writes for a secret volume.
    #[cfg(unix)]
    fn kubernetes_volume(root: &Path) {
        use std::os::unix::fs::symlink;
        let data = root.join("..2026_11_25_10_00_00.123");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("db-password"), "pw\n").unwrap();
        fs::write(data.join("api-key"), "k").unwrap();
        symlink("..2026_11_25_10_00_00.123", root.join("..data")).unwrap();
        symlink("..data/db-password", root.join("db-password")).unwrap();
        symlink("..data/api-key", root.join("api-key")).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn reads_a_kubernetes_secret_volume() {
        let dir = tempfile::tempdir().unwrap();
        kubernetes_volume(dir.path());
        let store = DirStore::new(dir.path()).unwrap();
        assert_eq!(
            store.list("").await.unwrap(),
            [key("api-key"), key("db-password")]
        );
        let secret = store.get(&key("db-password")).await.unwrap();
        assert_eq!(secret.value, "pw\n".into(), "bytes are kept exactly");
        let again = store
            .get_version(&key("db-password"), &secret.version)
            .await
            .unwrap();
        assert_eq!(again.value, secret.value);
        assert!(matches!(
            store.get(&key("..data/api-key")).await,
            Err(Error::InvalidKey { .. })
        ));
    }

    #[tokio::test]
    async fn nested_directories_are_key_segments() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("app/db")).unwrap();
        fs::write(dir.path().join("app/db/password"), "x").unwrap();
        fs::write(dir.path().join("app/token"), "y").unwrap();
        fs::write(dir.path().join(".hidden"), "z").unwrap();
        let store = DirStore::new(dir.path()).unwrap();
        assert_eq!(
            store.list("").await.unwrap(),
            [key("app/db/password"), key("app/token")]
        );
        assert_eq!(store.list("app/d").await.unwrap(), [key("app/db/password")]);
        assert_eq!(
            store.get(&key("app/db/password")).await.unwrap().value,
            "x".into()
        );
        for missing in ["app/db", "app/nope", "app/token/deeper"] {
            assert!(
                matches!(store.get(&key(missing)).await, Err(Error::NotFound { .. })),
                "{missing}"
            );
        }
        assert!(matches!(
            store.put(&key("a"), "v".into()).await,
            Err(Error::Unsupported { .. })
        ));
    }

    #[tokio::test]
    async fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = fs::File::create(dir.path().join("big")).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let store = DirStore::new(dir.path()).unwrap();
        let err = store.get(&key("big")).await.unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
    }

    #[test]
    fn the_root_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        assert!(matches!(
            DirStore::new(dir.path().join("f")),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            DirStore::new(dir.path().join("none")),
            Err(Error::Config { .. })
        ));
    }
}
