//! [`MemoryStore`]: the reference implementation of the [`SecretStore`] contract, in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::{
    Capabilities, Error, Metadata, Precondition, PutOptions, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo,
};

const BACKEND: &str = "memory";

/// A [`SecretStore`] kept in memory: the reference for what the trait's contract means.
///
/// Versions count up from `1` and are all kept; `delete` is soft (`get` then answers
/// `NotFound { deleted: true }` and `undelete` brings the secret back with its history);
/// `purge` forgets it; `list` is a sorted plain-string prefix match without deleted secrets;
/// a `put` on a deleted secret revives it with a new version; check-and-set and metadata
/// work. [`with_capabilities`](Self::with_capabilities) narrows what it supports, and the
/// missing operations then answer [`Error::Unsupported`], as a backend without them would
/// (without `undelete`, `delete` is for good).
///
/// A [`Hook`] sees every call and can count it, fail it or hold it, which is what a test of
/// a wrapper (a cache, a facade) needs from the store underneath.
///
/// Clones share the same secrets.
///
/// ```
/// use strongroom_core::testing::MemoryStore;
/// use strongroom_core::{Error, SecretName, SecretStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = SecretName::new("app/db")?;
/// let v1 = store.put(&key, "one".into()).await?;
/// store.put(&key, "two".into()).await?;
/// assert_eq!(store.get_version(&key, &v1).await?.value.expose_str()?, "one");
/// store.delete(&key).await?;
/// assert!(matches!(store.get(&key).await, Err(Error::NotFound { deleted: true, .. })));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    secrets: Arc<Mutex<BTreeMap<SecretName, Entry>>>,
    capabilities: Capabilities,
    hook: Option<Arc<dyn Hook>>,
}

#[derive(Clone)]
struct Entry {
    /// The number the next version gets; never reused.
    next: u64,
    deleted: bool,
    metadata: Arc<Metadata>,
    /// Oldest first; the last is current. Never empty.
    versions: Vec<Version>,
}

#[derive(Clone)]
struct Version {
    number: u64,
    created: SystemTime,
    value: SecretValue,
}

/// Which [`SecretStore`] method a [`MemoryStore`] is running, for its [`Hook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`SecretStore::get`] (and each key of `get_many`).
    Get,
    /// [`SecretStore::get_version`].
    GetVersion,
    /// [`SecretStore::put`] and [`SecretStore::put_with`].
    Put,
    /// [`SecretStore::delete`].
    Delete,
    /// [`SecretStore::list`].
    List,
    /// [`SecretStore::versions`].
    Versions,
    /// [`SecretStore::undelete`].
    Undelete,
    /// [`SecretStore::purge`].
    Purge,
}

/// Sees every call a [`MemoryStore`] serves, to count, fail or hold it.
///
/// A read (`get`, `get_version`, `list`, `versions`) calls the hook once it has looked up its
/// answer, so a hook that waits holds a read with the value it found; a write calls it before
/// it changes anything. When the hook returns an error, the call returns that error instead
/// and a write changes nothing.
#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// Called once per operation, with the key it is about (`None` for `list`).
    ///
    /// # Errors
    /// The error the operation should fail with.
    async fn call(&self, operation: Operation, key: Option<&SecretName>) -> Result<(), Error>;
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and counts only; values never.
        f.debug_struct("MemoryStore")
            .field("secrets", &self.lock().len())
            .field("capabilities", &self.capabilities)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with every capability.
    pub fn new() -> Self {
        Self {
            secrets: Arc::default(),
            capabilities: Capabilities::ALL,
            hook: None,
        }
    }

    /// This store (sharing its secrets) supporting only `capabilities`; the other operations
    /// answer [`Error::Unsupported`].
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// This store (sharing its secrets) with `hook` seeing every call.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn Hook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Writes a new version of `key` at once, without the hook, a precondition or a
    /// capability check: for a test to arrange what the store holds, behind the back of
    /// whatever wraps it.
    pub fn insert(&self, key: &SecretName, value: impl Into<SecretValue>) -> VersionId {
        let mut secrets = self.lock();
        write(&mut secrets, key, value.into(), None).into()
    }

    /// The number of secrets held, deleted ones included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no secret is held, not even a deleted one.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<SecretName, Entry>> {
        // Every change is made in one step under the lock: a panic elsewhere leaves it whole.
        self.secrets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn hook(&self, operation: Operation, key: Option<&SecretName>) -> Result<(), Error> {
        match &self.hook {
            Some(hook) => hook.call(operation, key).await,
            None => Ok(()),
        }
    }

    fn needs(granted: bool, operation: &'static str) -> Result<(), Error> {
        if granted {
            Ok(())
        } else {
            Err(Error::unsupported(BACKEND, operation))
        }
    }

    /// A read: look up under the lock, then let the hook see it.
    async fn read<T>(
        &self,
        operation: Operation,
        key: Option<&SecretName>,
        lookup: impl FnOnce(&BTreeMap<SecretName, Entry>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let answer = lookup(&self.lock());
        self.hook(operation, key).await?;
        answer
    }

    /// A write: let the hook see it, then change under the lock.
    async fn write<T>(
        &self,
        operation: Operation,
        key: &SecretName,
        change: impl FnOnce(&mut BTreeMap<SecretName, Entry>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.hook(operation, Some(key)).await?;
        change(&mut self.lock())
    }
}

fn not_found(key: &SecretName, version: Option<&VersionId>, deleted: bool) -> Error {
    Error::NotFound {
        key: key.to_string(),
        version: version.cloned(),
        deleted,
    }
}

fn live<'m>(
    secrets: &'m BTreeMap<SecretName, Entry>,
    key: &SecretName,
    version: Option<&VersionId>,
) -> Result<&'m Entry, Error> {
    match secrets.get(key) {
        Some(entry) if !entry.deleted => Ok(entry),
        Some(_) => Err(not_found(key, version, true)),
        None => Err(not_found(key, version, false)),
    }
}

fn secret(key: &SecretName, entry: &Entry, version: &Version) -> Secret {
    let mut secret = Secret::new(key.clone(), version.value.clone(), version.number.into())
        .created(version.created);
    secret.metadata = Arc::clone(&entry.metadata);
    secret
}

/// Adds a version of `key`, reviving it if deleted; returns its number.
fn write(
    secrets: &mut BTreeMap<SecretName, Entry>,
    key: &SecretName,
    value: SecretValue,
    metadata: Option<&Metadata>,
) -> u64 {
    let entry = secrets.entry(key.clone()).or_insert_with(|| Entry {
        next: 1,
        deleted: false,
        metadata: Arc::default(),
        versions: Vec::new(),
    });
    let number = entry.next;
    entry.next += 1;
    entry.deleted = false;
    if let Some(metadata) = metadata {
        entry.metadata = Arc::new(metadata.clone());
    }
    entry.versions.push(Version {
        number,
        created: SystemTime::now(),
        value,
    });
    number
}

fn current(entry: &Entry) -> Option<&Version> {
    entry.versions.last()
}

#[async_trait]
impl SecretStore for MemoryStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        self.read(Operation::Get, Some(key), |secrets| {
            let entry = live(secrets, key, None)?;
            let version = current(entry).ok_or_else(|| not_found(key, None, false))?;
            Ok(secret(key, entry, version))
        })
        .await
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        Self::needs(self.capabilities.versions, "get_version")?;
        self.read(Operation::GetVersion, Some(key), |secrets| {
            let entry = live(secrets, key, Some(version))?;
            version
                .as_u64()
                .and_then(|n| entry.versions.iter().find(|v| v.number == n))
                .map(|found| secret(key, entry, found))
                .ok_or_else(|| not_found(key, Some(version), false))
        })
        .await
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        Self::needs(self.capabilities.write, "put")?;
        if options.precondition.is_some() {
            Self::needs(self.capabilities.check_and_set, "check-and-set")?;
        }
        if options.metadata.is_some() {
            Self::needs(self.capabilities.metadata, "metadata")?;
        }
        self.write(Operation::Put, key, |secrets| {
            let live_version = secrets
                .get(key)
                .filter(|e| !e.deleted)
                .and_then(current)
                .map(|v| v.number);
            let conflict = |message: String| Error::Conflict {
                key: key.to_string(),
                message,
            };
            match (&options.precondition, live_version) {
                (Some(Precondition::Absent), Some(current)) => {
                    return Err(conflict(format!("it already exists (version {current})")));
                }
                (Some(Precondition::Version(expected)), current)
                    if current.is_none() || expected.as_u64() != current =>
                {
                    return Err(conflict(format!(
                        "expected version {expected}, but {}",
                        current.map_or_else(
                            || "it does not exist".to_owned(),
                            |c| format!("the current version is {c}")
                        )
                    )));
                }
                _ => {}
            }
            Ok(write(secrets, key, value, options.metadata.as_ref()).into())
        })
        .await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        Self::needs(self.capabilities.write, "delete")?;
        let soft = self.capabilities.undelete;
        self.write(Operation::Delete, key, |secrets| {
            live(secrets, key, None)?;
            if soft {
                if let Some(entry) = secrets.get_mut(key) {
                    entry.deleted = true;
                }
            } else {
                secrets.remove(key);
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        self.read(Operation::List, None, |secrets| {
            Ok(secrets
                .range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(key, _)| key.has_prefix(prefix))
                .filter(|(_, entry)| !entry.deleted)
                .map(|(key, _)| key.clone())
                .collect())
        })
        .await
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        Self::needs(self.capabilities.versions, "versions")?;
        self.read(Operation::Versions, Some(key), |secrets| {
            let entry = secrets
                .get(key)
                .ok_or_else(|| not_found(key, None, false))?;
            let current = current(entry).map(|v| v.number);
            Ok(entry
                .versions
                .iter()
                .map(|v| {
                    let mut info = VersionInfo::new(
                        v.number.into(),
                        Some(v.created),
                        Some(v.number) == current,
                    );
                    info.deleted = entry.deleted;
                    info
                })
                .collect())
        })
        .await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        Self::needs(self.capabilities.undelete, "undelete")?;
        self.write(Operation::Undelete, key, |secrets| {
            match secrets.get_mut(key) {
                Some(entry) if entry.deleted => {
                    entry.deleted = false;
                    Ok(())
                }
                Some(_) => Err(Error::Conflict {
                    key: key.to_string(),
                    message: "it is not deleted".to_owned(),
                }),
                None => Err(not_found(key, None, false)),
            }
        })
        .await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        Self::needs(self.capabilities.purge, "purge")?;
        self.write(Operation::Purge, key, |secrets| {
            secrets
                .remove(key)
                .map(drop)
                .ok_or_else(|| not_found(key, None, false))
        })
        .await
    }
}
