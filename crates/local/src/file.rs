//! [`FileStore`]: secrets in one AES-256-GCM encrypted file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId,
    VersionInfo,
};
use strongroom_envelope::{DataKey, SlotTable, WrappingKey};

use crate::atomic::{self, LockError, WriterLock};
use crate::document::Document;
use crate::fs::{FileSystem as _, Fs};
use crate::group_commit::{self, Answer, Change, Queue};
use crate::secret_buf::SecretBuf;
use crate::slots::FileKeys;
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
/// # Group commit
///
/// Writes (`put`, `put_with`, `delete`, `undelete`, `purge`) made at the same time through
/// one handle or its clones share one write and one fsync: each is queued, one of them
/// writes the batch, and each is answered `Ok` only once the file holding it is on disk.
/// Each change is checked alone (a failed check-and-set fails only that put); a failed
/// write fails the whole batch. A write whose future is dropped after it was queued may
/// still be applied. Open a store once per process and clone the handle; separate handles
/// take turns on the lock. docs/local-store.md, "Group commit", has the details.
///
/// # Key slots
///
/// The file is a slotted envelope (format version 2, docs/envelope-format.md): one data key
/// for the store, wrapped once per *key slot* (a master key, a passphrase, AWS KMS, Vault
/// Transit), any one of which opens it. A handle unwraps the data key once when it opens and
/// holds it, zeroized on drop, for its life: a save is one AES-256-GCM operation, and reading
/// a file another process wrote needs no key service or PBKDF2. [`open`](Self::open) and
/// [`create`](Self::create) take a master key or passphrase;
/// [`open_with_data_key`](Self::open_with_data_key) and
/// [`create_with_data_key`](Self::create_with_data_key) take a data key a key service has
/// unwrapped (the caller reads the slots first with [`read_slots`](Self::read_slots)).
/// [`add_key`](Self::add_key), [`add_slot`](Self::add_slot),
/// [`remove_slot`](Self::remove_slot) and [`replace_slot`](Self::replace_slot) change the
/// slots, each an atomic write under the writer lock.
///
/// A file in format version 1 (one key, written by earlier releases) opens with its key and
/// is rewritten in version 2 on this handle's next write: a new store id and data key, and
/// one slot for the key it was opened with.
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    lock_path: PathBuf,
    /// The master key or passphrase this handle opens with: it reads a version-1 file and
    /// finds its slot in a version-2 one. `None` for a handle opened with a data key.
    wrapping: RwLock<Option<Arc<WrappingKey>>>,
    /// The data key of the last file read or written, tried first on the next read: a file
    /// another process wrote opens with it without unwrapping any slot.
    data_key: RwLock<Option<Arc<DataKey>>>,
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
    /// The writes waiting for the next batch; see [`crate::group_commit`].
    pub(crate) queue: Queue,
    /// Makes every save fail, as a full or failing disk would (tests of the batch path).
    #[cfg(test)]
    pub(crate) fail_saves: std::sync::atomic::AtomicBool,
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
        let key = key.into();
        let store = self.build(Some(key.clone()), None);
        let inner = &store.inner;
        match inner.load() {
            Ok(_) => Ok(store),
            Err(LoadError::Missing) if self.create_if_missing => {
                inner.create_empty(FileKeys::new(&key)?)?;
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
        let key = key.into();
        let keys = FileKeys::new(&key)?;
        let store = self.build(Some(key), None);
        store.inner.create_empty(keys)?;
        Ok(store)
    }

    /// Opens the store with its data key, unwrapped by the caller from one of its slots
    /// (through a key service: see [`FileStore::read_slots`] and the crate's `key_context`).
    ///
    /// The handle holds the key for its life. It has no master key or passphrase, so it
    /// cannot read a version-1 file, [`rotate_key`](FileStore::rotate_key) or
    /// [`add_key`](FileStore::add_key) by itself from a key; every other operation,
    /// slot changes included, works. `create_if_missing` does not apply: creating needs the
    /// slots ([`create_with_data_key`](Self::create_with_data_key)).
    ///
    /// # Errors
    /// [`Error::Config`] when there is no store file; [`Error::Decrypt`] when `data_key` is
    /// not this store's, the file was modified, or it is a version-1 file;
    /// [`Error::Backend`] as for [`open`](Self::open).
    pub fn open_with_data_key(self, data_key: DataKey) -> Result<FileStore, Error> {
        let store = self.build(None, Some(data_key));
        match store.inner.load() {
            Ok(_) => Ok(store),
            Err(LoadError::Missing) => Err(Error::config(format!(
                "no store at {}; create one with `strongroom init` or FileStore::create_with_data_key",
                store.inner.path.display()
            ))),
            Err(LoadError::Other(err)) => Err(err),
        }
    }

    /// Creates a new, empty store sealed under `data_key`, with the slots of `slots` (each a
    /// copy of `data_key` wrapped by one provider; the store id of `slots` is the store's).
    /// Refuses to replace an existing store.
    ///
    /// Nothing here can check that a remote slot really holds `data_key`: unwrap it once
    /// through its service before relying on it.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_with_data_key(
        self,
        data_key: DataKey,
        slots: SlotTable,
    ) -> Result<FileStore, Error> {
        let keys = FileKeys::from_parts(data_key.clone(), slots);
        let store = self.build(None, Some(data_key));
        store.inner.create_empty(keys)?;
        Ok(store)
    }

    fn build(&self, key: Option<WrappingKey>, data_key: Option<DataKey>) -> FileStore {
        FileStore {
            inner: Arc::new(Inner {
                lock_path: atomic::lock_path(&self.path),
                path: self.path.clone(),
                wrapping: RwLock::new(key.map(Arc::new)),
                data_key: RwLock::new(data_key.map(Arc::new)),
                keep_versions: self.keep_versions,
                lock_timeout: self.lock_timeout,
                revalidate_after: self.revalidate_after,
                snapshot: RwLock::new(None),
                epoch: Instant::now(),
                json: Mutex::new(SecretBuf::with_capacity(0)),
                queue: Queue::new(),
                #[cfg(test)]
                fail_saves: std::sync::atomic::AtomicBool::new(false),
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

    /// Opens the existing store at `path` with its data key and default options; see
    /// [`FileStoreBuilder::open_with_data_key`].
    ///
    /// # Errors
    /// As [`FileStoreBuilder::open_with_data_key`].
    pub fn open_with_data_key(path: impl Into<PathBuf>, data_key: DataKey) -> Result<Self, Error> {
        Self::builder(path).open_with_data_key(data_key)
    }

    /// Creates a new, empty store at `path` with these slots and default options; see
    /// [`FileStoreBuilder::create_with_data_key`].
    ///
    /// # Errors
    /// As [`FileStoreBuilder::create_with_data_key`].
    pub fn create_with_data_key(
        path: impl Into<PathBuf>,
        data_key: DataKey,
        slots: SlotTable,
    ) -> Result<Self, Error> {
        Self::builder(path).create_with_data_key(data_key, slots)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|join| Error::backend(BACKEND, "a store operation panicked", join))?
    }
}

/// What a read-modify-write leaves to write.
enum Outcome {
    /// Nothing changed: no write.
    Unchanged,
    /// The document changed; the slots are as they were.
    Document,
    /// The slot table changed (and perhaps the document).
    Slots(SlotTable),
}

/// Why a store file could not be read: missing files are the one case `open` treats apart.
pub(crate) enum LoadError {
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
    /// The master key or passphrase of this handle, if it has one.
    pub(crate) fn wrapping_key(&self) -> Option<Arc<WrappingKey>> {
        self.wrapping
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_wrapping_key(&self, key: Arc<WrappingKey>) {
        *self
            .wrapping
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    fn data_key_hint(&self) -> Option<Arc<DataKey>> {
        self.data_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_data_key_hint(&self, key: &Arc<DataKey>) {
        *self
            .data_key
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(key));
    }

    /// The current document.
    fn load(&self) -> Result<Arc<Document>, LoadError> {
        self.load_snapshot()
            .map(|snapshot| Arc::clone(&snapshot.doc))
    }

    /// The current state: the snapshot when the file has not changed since it was taken
    /// (one `stat`), else the file read and decrypted afresh.
    pub(crate) fn load_snapshot(&self) -> Result<Arc<Snapshot>, LoadError> {
        if let Some(snapshot) = self.fresh_snapshot()? {
            return Ok(snapshot);
        }
        let mut file = match Fs::open_read(&self.path) {
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
        let (doc, keys) = self.decode(&sealed).map_err(LoadError::Other)?;
        Ok(self.remember(Snapshot::new(
            file,
            stamp,
            Arc::new(doc),
            keys,
            self.ticks(),
        )))
    }

    /// The snapshot's document if the file is still the one it was taken from.
    fn fresh(&self) -> Result<Option<Arc<Document>>, LoadError> {
        Ok(self
            .fresh_snapshot()?
            .map(|snapshot| Arc::clone(&snapshot.doc)))
    }

    /// The snapshot if the file is still the one it was taken from.
    fn fresh_snapshot(&self) -> Result<Option<Arc<Snapshot>>, LoadError> {
        let meta = match Fs::metadata(&self.path) {
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
                Arc::clone(s)
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

    fn remember(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&snapshot));
        snapshot
    }

    fn forget(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Decrypts a store file: a version-1 file with this handle's master key or passphrase;
    /// a version-2 file with the data key of the last file read, else with the first slot
    /// this handle's key opens. Returns the document and, for version 2, the keys that
    /// sealed it (the next write seals with them).
    fn decode(&self, sealed: &[u8]) -> Result<(Document, Option<Arc<FileKeys>>), Error> {
        let error = |e| self.envelope_error(e);
        let wrapping = self.wrapping_key();
        if strongroom_envelope::format_version(sealed).map_err(error)? == 1 {
            let key = wrapping.ok_or_else(|| self.decrypt_error())?;
            let json = strongroom_envelope::open(&key, sealed).map_err(error)?;
            return Ok((self.document(&json)?, None));
        }
        let slots = SlotTable::parse(sealed).map_err(error)?;
        if let Some(data_key) = self.data_key_hint() {
            match strongroom_envelope::open_slotted(&data_key, sealed) {
                Ok(json) => {
                    let keys = FileKeys::from_parts(DataKey::clone(&data_key), slots);
                    return Ok((self.document(&json)?, Some(Arc::new(keys))));
                }
                // Another data key: the store at this path was replaced; a slot may open it.
                Err(strongroom_envelope::Error::Decrypt) => {}
                Err(other) => return Err(error(other)),
            }
        }
        let key = wrapping.ok_or_else(|| self.decrypt_error())?;
        let (data_key, json) =
            strongroom_envelope::open_slotted_with_key(&key, sealed).map_err(error)?;
        let keys = Arc::new(FileKeys::from_parts(data_key, slots));
        self.set_data_key_hint(keys.data_key_arc());
        Ok((self.document(&json)?, Some(keys)))
    }

    fn document(&self, json: &[u8]) -> Result<Document, Error> {
        Document::from_json(json).map_err(|problem| Error::Backend {
            backend: BACKEND,
            message: format!("{} is not a valid store: {problem}", self.path.display()),
            source: None,
        })
    }

    pub(crate) fn decrypt_error(&self) -> Error {
        Error::Decrypt {
            what: self.path.display().to_string(),
        }
    }

    /// Seals `doc` with `keys` and replaces the store file with it; returns the new file,
    /// open.
    fn save(&self, doc: &Document, keys: &FileKeys) -> Result<File, Error> {
        #[cfg(test)]
        if self.fail_saves.load(Ordering::Relaxed) {
            return Err(self.io_error("write", io::Error::other("a test made saves fail")));
        }
        let mut json = self.json.lock().unwrap_or_else(PoisonError::into_inner);
        doc.write_json(&mut json);
        let sealed = strongroom_envelope::seal_slotted(keys.data_key(), keys.slots(), &json);
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

    fn create_empty(&self, keys: FileKeys) -> Result<(), Error> {
        let _lock = self.lock()?;
        if self.path.exists() {
            return Err(Error::config(format!(
                "a store already exists at {}; refusing to replace it",
                self.path.display()
            )));
        }
        let keys = Arc::new(keys);
        let file = self.save(&Document::default(), &keys)?;
        self.written(file, Arc::new(Document::default()), keys);
        Ok(())
    }

    /// Read-modify-write of the document under the writer lock; nothing is written when
    /// `op` fails.
    #[cfg(test)]
    fn write<T>(&self, op: impl FnOnce(&mut Document) -> Result<T, Error>) -> Result<T, Error> {
        self.transact(|doc, _| Ok((op(doc)?, None)))
    }

    /// Read-modify-write of the document and the slots under the writer lock: `op` changes
    /// the document in place and may return a new slot table. Nothing is written when `op`
    /// fails. A version-1 file is written as version 2 (docs/envelope-format.md).
    pub(crate) fn transact<T>(
        &self,
        op: impl FnOnce(&mut Document, &FileKeys) -> Result<(T, Option<SlotTable>), Error>,
    ) -> Result<T, Error> {
        self.update(|doc, keys| {
            let (out, slots) = op(doc, keys)?;
            Ok((out, slots.map_or(Outcome::Document, Outcome::Slots)))
        })
    }

    /// Applies a batch of changes in order under one writer lock and writes the file once
    /// ([`crate::group_commit`]). Each change gets its own answer; if the batch cannot be
    /// written, every change gets that error. Nothing is written when every change failed.
    pub(crate) fn apply_batch(&self, changes: Vec<Change>) -> Vec<Answer> {
        let count = changes.len();
        let keep = self.keep_versions;
        let written = self.update(|doc, _| {
            let answers: Vec<Answer> = changes
                .into_iter()
                .map(|change| change.apply(doc, keep))
                .collect();
            let outcome = if answers.iter().any(Result::is_ok) {
                Outcome::Document
            } else {
                Outcome::Unchanged
            };
            Ok((answers, outcome))
        });
        match written {
            Ok(answers) => answers,
            Err(err) => (0..count).map(|_| Err(err.clone())).collect(),
        }
    }

    /// The read-modify-write under the writer lock that every write is: `op` changes a copy
    /// of the current document and says what to write. Nothing is written when `op` fails
    /// or changed nothing.
    fn update<T>(
        &self,
        op: impl FnOnce(&mut Document, &FileKeys) -> Result<(T, Outcome), Error>,
    ) -> Result<T, Error> {
        let _lock = self.lock()?;
        let snapshot = self.load_snapshot()?;
        let keys = match &snapshot.keys {
            Some(keys) => Arc::clone(keys),
            None => Arc::new(self.upgrade_keys()?),
        };
        let mut doc = Document::clone(&snapshot.doc);
        drop(snapshot);
        let (out, outcome) = op(&mut doc, &keys)?;
        let keys = match outcome {
            Outcome::Unchanged => return Ok(out),
            Outcome::Document => keys,
            Outcome::Slots(slots) => {
                Arc::new(FileKeys::from_parts(DataKey::clone(keys.data_key()), slots))
            }
        };
        let file = self.save(&doc, &keys)?;
        self.written(file, Arc::new(doc), keys);
        Ok(out)
    }

    /// The keys of a version-1 file's first version-2 write: a new store id and data key,
    /// and one slot for this handle's master key or passphrase.
    fn upgrade_keys(&self) -> Result<FileKeys, Error> {
        // A version-1 file was read with this handle's wrapping key; a handle without one
        // never gets this far (decode refuses the file).
        let key = self.wrapping_key().ok_or_else(|| self.decrypt_error())?;
        tracing::info!(store = %self.path.display(), "writing the store in envelope format 2 (key slots)");
        FileKeys::new(&key)
    }

    /// Remembers the file just written as the snapshot, and its data key.
    fn written(&self, file: File, doc: Arc<Document>, keys: Arc<FileKeys>) {
        self.set_data_key_hint(keys.data_key_arc());
        // Pin and stamp the file just written, not whatever the path names now: if anything
        // has replaced it since (no writer can while we hold the lock), the stamps differ
        // and the next read loads the file afresh.
        match file.metadata() {
            Ok(meta) => {
                let stamp = Stamp::of(&meta);
                let checked = self.ticks();
                self.remember(Snapshot::new(file, stamp, doc, Some(keys), checked));
            }
            Err(_) => self.forget(),
        }
    }

    pub(crate) fn io_error(&self, op: &str, err: io::Error) -> Error {
        let what = if op == "lock" {
            &self.lock_path
        } else {
            &self.path
        };
        Error::backend(BACKEND, format!("cannot {op} {}", what.display()), err)
    }

    pub(crate) fn envelope_error(&self, err: strongroom_envelope::Error) -> Error {
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
        let change = Change::Put {
            key: key.clone(),
            value,
            options: options.clone(),
        };
        group_commit::commit(&self.inner, change)
            .await?
            .ok_or_else(|| Error::Backend {
                backend: BACKEND,
                message: "a put returned no version".to_owned(),
                source: None,
            })
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        group_commit::commit(&self.inner, Change::Delete(key.clone()))
            .await
            .map(drop)
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
        group_commit::commit(&self.inner, Change::Undelete(key.clone()))
            .await
            .map(drop)
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        group_commit::commit(&self.inner, Change::Purge(key.clone()))
            .await
            .map(drop)
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
    use std::time::SystemTime;

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
