//! [`FileStore`]: secrets in one AES-256-GCM encrypted file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId,
    VersionInfo,
};
use strongroom_envelope::WrappingKey;

use crate::atomic::{self, LockError, WriterLock};
use crate::document::Document;
use crate::secret_buf::SecretBuf;
use crate::snapshot::{Snapshot, Stamp};

/// The backend name in errors, logs and metrics.
pub(crate) const BACKEND: &str = "local";

/// How many versions of each secret a store keeps unless told otherwise.
pub const DEFAULT_KEEP_VERSIONS: usize = 10;

/// How long a read trusts the last check that the file is unchanged, unless told otherwise.
pub const DEFAULT_REVALIDATE_AFTER: Duration = Duration::from_millis(1);

/// How long a write waits for another writer before giving up with
/// [`Error::Unavailable`] unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Secrets in one encrypted file, with versions, soft delete and check-and-set.
///
/// Every operation reads the file afresh, so several processes can share one store: writers
/// take an exclusive lock on `<file>.lock`, read, change and atomically replace the file;
/// readers need no lock because the file is only ever replaced whole. The whole file is one
/// [envelope](strongroom_envelope), so its size and the number of secrets are visible on
/// disk, but no name, value or metadata is.
///
/// Operations run on tokio's blocking thread pool (file I/O and fsync block), so they need a
/// tokio runtime.
///
/// ```no_run
/// use strongroom_envelope::MasterKey;
/// use strongroom_local::FileStore;
/// use strongroom_core::{SecretName, SecretStore};
///
/// # async fn run() -> Result<(), strongroom_core::Error> {
/// let key = MasterKey::from_file("/etc/myapp/master.key").map_err(strongroom_local::key_error)?;
/// let store = FileStore::builder("/var/lib/myapp/secrets.enc")
///     .keep_versions(5)
///     .create_if_missing(true)
///     .open(key)?;
/// let version = store.put(&SecretName::new("app/token")?, "t0k3n".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    key: RwLock<Arc<WrappingKey>>,
    keep_versions: usize,
    lock_timeout: Duration,
    revalidate_after: Duration,
    /// The last state read or written by this handle; see [`crate::snapshot`].
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// The zero of the snapshot's `checked` clock.
    epoch: Instant,
    /// What a write encodes the document into, wiped after each write but kept allocated:
    /// a fresh buffer the size of the store on every write costs more in page faults (the
    /// allocator maps and unmaps buffers this size) than encoding into it does.
    json: Mutex<SecretBuf>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.path)
            .field("keep_versions", &self.inner.keep_versions)
            .finish_non_exhaustive()
    }
}

/// Options for opening or creating a [`FileStore`]; see [`FileStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FileStoreBuilder {
    path: PathBuf,
    keep_versions: usize,
    lock_timeout: Duration,
    revalidate_after: Duration,
    create_if_missing: bool,
}

impl FileStoreBuilder {
    /// How many versions of each secret to keep (at least 1; default
    /// [`DEFAULT_KEEP_VERSIONS`]). Older ones are dropped on the next write of that secret.
    pub fn keep_versions(mut self, keep: usize) -> Self {
        self.keep_versions = keep.max(1);
        self
    }

    /// How long a write waits for the lock held by another writer (default
    /// [`DEFAULT_LOCK_TIMEOUT`]).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long reads trust the last check that no other process replaced the file (default
    /// [`DEFAULT_REVALIDATE_AFTER`], 1 ms). Each check is a `stat`, which costs more than
    /// the rest of a read; within the interval a read is answered from memory alone. This
    /// handle's own writes are always seen at once; another process's within the interval.
    /// `Duration::ZERO` checks on every read.
    pub fn revalidate_after(mut self, interval: Duration) -> Self {
        self.revalidate_after = interval;
        self
    }

    /// Create an empty store when the file does not exist (default: it must exist).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Opens the store, checking that `key` decrypts it.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no store file (and `create_if_missing` is off),
    /// [`Error::Decrypt`] for a wrong key or a modified file, [`Error::Backend`] for I/O
    /// errors and files that are not strongroom stores.
    pub fn open(self, key: impl Into<WrappingKey>) -> Result<FileStore, Error> {
        let store = self.build(key.into());
        let inner = &store.inner;
        match inner.load() {
            Ok(_) => Ok(store),
            Err(LoadError::Missing) if self.create_if_missing => {
                inner.create_empty()?;
                Ok(store)
            }
            Err(LoadError::Missing) => Err(Error::config(format!(
                "no store at {}; create one with `strongroom init` or FileStore::create",
                inner.path.display()
            ))),
            Err(LoadError::Other(err)) => Err(err),
        }
    }

    /// Creates a new, empty store; refuses to replace an existing one.
    ///
    /// # Errors
    /// [`Error::Config`] when a store already exists there; [`Error::Backend`] for I/O errors.
    pub fn create(self, key: impl Into<WrappingKey>) -> Result<FileStore, Error> {
        let store = self.build(key.into());
        store.inner.create_empty()?;
        Ok(store)
    }

    fn build(&self, key: WrappingKey) -> FileStore {
        FileStore {
            inner: Arc::new(Inner {
                lock_path: atomic::lock_path(&self.path),
                path: self.path.clone(),
                key: RwLock::new(Arc::new(key)),
                keep_versions: self.keep_versions,
                lock_timeout: self.lock_timeout,
                revalidate_after: self.revalidate_after,
                snapshot: RwLock::new(None),
                epoch: Instant::now(),
                json: Mutex::new(SecretBuf::with_capacity(0)),
            }),
        }
    }
}

impl FileStore {
    /// Options for opening or creating the store at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            path: path.into(),
            keep_versions: DEFAULT_KEEP_VERSIONS,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            revalidate_after: DEFAULT_REVALIDATE_AFTER,
            create_if_missing: false,
        }
    }

    /// Opens the existing store at `path` with default options.
    ///
    /// # Errors
    /// As [`FileStoreBuilder::open`].
    pub fn open(path: impl Into<PathBuf>, key: impl Into<WrappingKey>) -> Result<Self, Error> {
        Self::builder(path).open(key)
    }

    /// Creates a new, empty store at `path` with default options.
    ///
    /// # Errors
    /// As [`FileStoreBuilder::create`].
    pub fn create(path: impl Into<PathBuf>, key: impl Into<WrappingKey>) -> Result<Self, Error> {
        Self::builder(path).create(key)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Re-wraps the store under `new_key` and uses it from now on.
    ///
    /// Only the data key in the file's header is re-encrypted (see strongroom-envelope), and
    /// the file is replaced atomically: a crash leaves it readable with the old key or the new
    /// one. Other processes holding the old key can no longer read the store.
    ///
    /// # Errors
    /// As a write: [`Error::Decrypt`] if the current key no longer opens the file.
    pub async fn rotate_key(&self, new_key: impl Into<WrappingKey>) -> Result<(), Error> {
        let new_key = Arc::new(new_key.into());
        self.blocking(move |inner| inner.rotate_key(new_key)).await
    }

    /// Runs `op` on the current document: at once when the snapshot is fresh (a `stat`, no
    /// decryption), on the blocking pool when the file must be read.
    async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Document) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        if let Some(doc) = self.inner.recent() {
            return op(&doc);
        }
        if let Ok(Some(doc)) = self.inner.fresh() {
            return op(&doc);
        }
        self.blocking(move |inner| op(&*inner.load()?)).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|join| Error::backend(BACKEND, "a store operation panicked", join))?
    }
}

/// Why a store file could not be read: missing files are the one case `open` treats apart.
enum LoadError {
    Missing,
    Other(Error),
}

impl From<LoadError> for Error {
    fn from(err: LoadError) -> Self {
        match err {
            LoadError::Missing => Error::Backend {
                backend: BACKEND,
                message: "the store file has disappeared".to_owned(),
                source: None,
            },
            LoadError::Other(err) => err,
        }
    }
}

impl Inner {
    fn key(&self) -> Arc<WrappingKey> {
        Arc::clone(
            &self
                .key
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The current document: the snapshot when the file has not changed since it was taken
    /// (one `stat`), else the file read and decrypted afresh.
    fn load(&self) -> Result<Arc<Document>, LoadError> {
        if let Some(doc) = self.fresh()? {
            return Ok(doc);
        }
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(err) => return Err(LoadError::Other(self.io_error("read", err))),
        };
        let read = |file: &mut File| -> io::Result<(Stamp, Vec<u8>)> {
            let stamp = Stamp::of(&file.metadata()?);
            let mut sealed = Vec::new();
            file.read_to_end(&mut sealed)?;
            Ok((stamp, sealed))
        };
        let (stamp, sealed) =
            read(&mut file).map_err(|e| LoadError::Other(self.io_error("read", e)))?;
        let doc = Arc::new(
            self.decode(&sealed, &self.key())
                .map_err(LoadError::Other)?,
        );
        self.remember(Snapshot::new(file, stamp, Arc::clone(&doc), self.ticks()));
        Ok(doc)
    }

    /// The snapshot's document if the file is still the one it was taken from.
    fn fresh(&self) -> Result<Option<Arc<Document>>, LoadError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(err) => return Err(LoadError::Other(self.io_error("read", err))),
        };
        let snapshot = self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(snapshot
            .as_ref()
            .filter(|s| s.stamp == Stamp::of(&meta))
            .map(|s| {
                s.checked.store(self.ticks(), Ordering::Relaxed);
                Arc::clone(&s.doc)
            }))
    }

    /// The snapshot's document without a `stat`, if the file was found unchanged less than
    /// `revalidate_after` ago.
    fn recent(&self) -> Option<Arc<Document>> {
        let interval = u64::try_from(self.revalidate_after.as_nanos()).unwrap_or(u64::MAX);
        if interval == 0 {
            return None;
        }
        let snapshot = self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = snapshot.as_ref()?;
        let age = self
            .ticks()
            .saturating_sub(s.checked.load(Ordering::Relaxed));
        (age < interval).then(|| Arc::clone(&s.doc))
    }

    /// Nanoseconds since this handle was made: the clock of the snapshot's `checked`.
    fn ticks(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn remember(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(snapshot));
    }

    fn forget(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn decode(&self, sealed: &[u8], key: &WrappingKey) -> Result<Document, Error> {
        let json = strongroom_envelope::open(key, sealed).map_err(|e| self.envelope_error(e))?;
        Document::from_json(&json).map_err(|problem| Error::Backend {
            backend: BACKEND,
            message: format!("{} is not a valid store: {problem}", self.path.display()),
            source: None,
        })
    }

    /// Seals `doc` and replaces the store file with it; returns the new file, open.
    fn save(&self, doc: &Document, key: &WrappingKey) -> Result<File, Error> {
        let mut json = self.json.lock().unwrap_or_else(PoisonError::into_inner);
        doc.write_json(&mut json);
        let sealed = strongroom_envelope::seal(key, &json);
        json.clear();
        drop(json);
        let sealed = sealed.map_err(|e| self.envelope_error(e))?;
        atomic::replace(&self.path, &sealed).map_err(|e| self.io_error("write", e))
    }

    /// Takes the writer lock, then clears what a writer that crashed mid-write left behind.
    fn lock(&self) -> Result<WriterLock, Error> {
        let lock = self.acquire_lock()?;
        match atomic::remove_stale_temps(&self.path) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::debug!(removed, store = %self.path.display(), "removed temporary files of a crashed write");
            }
            Err(err) => {
                tracing::warn!(error = %err, store = %self.path.display(), "cannot remove temporary files of a crashed write");
            }
        }
        Ok(lock)
    }

    fn acquire_lock(&self) -> Result<WriterLock, Error> {
        WriterLock::acquire(&self.lock_path, self.lock_timeout).map_err(|err| match err {
            LockError::Timeout(waited) => Error::Unavailable {
                backend: BACKEND,
                message: format!(
                    "another writer has held {} for {waited:.1?}",
                    self.lock_path.display()
                ),
                retry_after: None,
            },
            LockError::Io(err) => self.io_error("lock", err),
        })
    }

    fn create_empty(&self) -> Result<(), Error> {
        let _lock = self.lock()?;
        if self.path.exists() {
            return Err(Error::config(format!(
                "a store already exists at {}; refusing to replace it",
                self.path.display()
            )));
        }
        self.save(&Document::default(), &self.key()).map(drop)
    }

    /// Read-modify-write under the writer lock; nothing is written when `op` fails.
    fn write<T>(&self, op: impl FnOnce(&mut Document) -> Result<T, Error>) -> Result<T, Error> {
        let _lock = self.lock()?;
        let mut doc = Document::clone(&*self.load()?);
        let out = op(&mut doc)?;
        let file = self.save(&doc, &self.key())?;
        // Pin and stamp the file just written, not whatever the path names now: if anything
        // has replaced it since (no writer can while we hold the lock), the stamps differ
        // and the next read loads the file afresh.
        match file.metadata() {
            Ok(meta) => {
                let stamp = Stamp::of(&meta);
                let checked = self.ticks();
                self.remember(Snapshot::new(file, stamp, Arc::new(doc), checked));
            }
            Err(_) => self.forget(),
        }
        Ok(out)
    }

    fn rotate_key(&self, new_key: Arc<WrappingKey>) -> Result<(), Error> {
        let _lock = self.lock()?;
        let sealed = std::fs::read(&self.path).map_err(|e| self.io_error("read", e))?;
        let rewrapped = strongroom_envelope::rewrap(&self.key(), &new_key, &sealed)
            .map_err(|e| self.envelope_error(e))?;
        atomic::replace(&self.path, &rewrapped).map_err(|e| self.io_error("write", e))?;
        self.forget();
        *self
            .key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new_key;
        Ok(())
    }

    fn io_error(&self, op: &str, err: io::Error) -> Error {
        let what = if op == "lock" {
            &self.lock_path
        } else {
            &self.path
        };
        Error::backend(BACKEND, format!("cannot {op} {}", what.display()), err)
    }

    fn envelope_error(&self, err: strongroom_envelope::Error) -> Error {
        match err {
            strongroom_envelope::Error::Decrypt => Error::Decrypt {
                what: self.path.display().to_string(),
            },
            // Not damage: a newer strongroom wrote it. Say so, so nobody "repairs" the file.
            strongroom_envelope::Error::UnsupportedVersion { version } => Error::Backend {
                backend: BACKEND,
                message: format!(
                    "{} uses envelope format version {version}, which this strongroom cannot read; \
                     upgrade strongroom to open it",
                    self.path.display()
                ),
                source: None,
            },
            other => Error::backend(
                BACKEND,
                format!("{} is not a strongroom store", self.path.display()),
                other,
            ),
        }
    }
}

#[async_trait]
impl SecretStore for FileStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let key = key.clone();
        self.read(move |doc| doc.get(&key)).await
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let (key, version) = (key.clone(), version.clone());
        self.read(move |doc| doc.get_version(&key, &version)).await
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        let (key, options) = (key.clone(), options.clone());
        self.blocking(move |inner| {
            let keep = inner.keep_versions;
            inner.write(|doc| doc.put(&key, value, &options, SystemTime::now(), keep))
        })
        .await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        let key = key.clone();
        self.blocking(move |inner| inner.write(|doc| doc.delete(&key, SystemTime::now())))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let prefix = prefix.to_owned();
        self.read(move |doc| Ok(doc.list(&prefix))).await
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let key = key.clone();
        self.read(move |doc| doc.versions(&key)).await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        let key = key.clone();
        self.blocking(move |inner| inner.write(|doc| doc.undelete(&key)))
            .await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        let key = key.clone();
        self.blocking(move |inner| inner.write(|doc| doc.purge(&key)))
            .await
    }

    async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
        // One read and one decryption of the file for the whole batch.
        let keys = keys.to_vec();
        let keys_again = keys.clone();
        let count = keys.len();
        let batch = self
            .blocking(move |inner| {
                let doc = inner.load()?;
                Ok(keys.iter().map(|key| doc.get(key)).collect::<Vec<_>>())
            })
            .await;
        match batch {
            Ok(results) => results,
            Err(_) => {
                // The store itself failed (unreadable, wrong key): give every key its own,
                // properly typed error rather than a copy of one message.
                let mut results = Vec::with_capacity(count);
                for key in keys_again {
                    results.push(self.get(&key).await);
                }
                results
            }
        }
    }
}

/// The key file that belongs beside a store: `<store>.key` (`strongroom init` writes it there,
/// and key lookups fall back to it).
pub fn default_key_file(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Converts an envelope error from handling a master key (generating one, reading it from a
/// key file or an environment variable, writing a key file) into
/// [`strongroom_core::Error::Config`], so applications deal in one error type.
///
/// This is the one conversion, used by the facade's key resolution and the CLI alike; it is a
/// function rather than `impl From<strongroom_envelope::Error> for strongroom_core::Error`
/// for two reasons: neither type belongs to this crate (so the orphan rule forbids the impl
/// here), and the mapping is only right for key handling. An envelope error while opening a
/// store (a wrong key, a modified file) is not a configuration mistake, and [`FileStore`]
/// maps it to `Decrypt` or `Backend` itself; a blanket `From` would let `?` turn those into
/// `Config` silently.
#[allow(
    clippy::needless_pass_by_value,
    reason = "made for `map_err(key_error)`"
)]
pub fn key_error(err: strongroom_envelope::Error) -> Error {
    Error::config(err.to_string())
}

#[cfg(test)]
mod tests {
    use strongroom_envelope::MasterKey;

    use super::*;

    fn put(store: &FileStore, name: &str, value: &str) {
        let key = SecretName::new(name).unwrap();
        store
            .inner
            .write(|doc| {
                doc.put(
                    &key,
                    value.into(),
                    &PutOptions::default(),
                    SystemTime::now(),
                    10,
                )
            })
            .unwrap();
    }

    #[test]
    fn a_write_leaves_a_snapshot_of_the_file_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.enc");
        let master = MasterKey::generate().unwrap();
        let store = FileStore::create(&path, master.clone()).unwrap();
        let other = FileStore::open(&path, master).unwrap();
        put(&store, "a", "1");
        // The writer's snapshot matches the file now at the path: no reload needed.
        assert!(matches!(store.inner.fresh(), Ok(Some(_))));
        put(&other, "b", "2");
        // Another handle replaced the file: the first one's snapshot no longer matches.
        assert!(matches!(store.inner.fresh(), Ok(None)));
        let doc = store.inner.load().ok().unwrap();
        assert_eq!(
            doc.list(""),
            [SecretName::new("a").unwrap(), SecretName::new("b").unwrap()]
        );
        assert!(matches!(store.inner.fresh(), Ok(Some(_))));
    }
}
