//! [`SecretStore`]: the one trait every backend implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Error, PutOptions, Secret, SecretName, SecretValue, VersionId, VersionInfo};

/// What a backend can do beyond the required operations.
///
/// Calling an operation a backend lacks returns [`Error::Unsupported`]; this struct lets a
/// caller find out beforehand (the CLI uses it to explain, a migration to plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `put`, `delete` work (false for read-only stores such as the environment).
    pub write: bool,
    /// Old versions are kept and can be read (`get_version`, `versions`). Without it, a store
    /// either answers both with [`Error::Unsupported`], or keeps only the current version:
    /// `versions` lists just that one and `get_version` reads just that one (the environment
    /// and directory stores do so).
    pub versions: bool,
    /// `delete` is recoverable and `undelete` works.
    pub undelete: bool,
    /// `purge` removes a secret and its history for good.
    pub purge: bool,
    /// `put_with` honours a [`Precondition`](crate::Precondition).
    pub check_and_set: bool,
    /// `put_with` stores [`Metadata`](crate::Metadata).
    pub metadata: bool,
    /// `get` and `get_version` report the [`Metadata`](crate::Metadata) `put_with` stored in
    /// [`Secret::metadata`](crate::Secret::metadata). Without it (AWS Secrets Manager, whose
    /// read call carries neither description nor tags, and which would need a second request
    /// per read), reads leave `Secret::metadata` empty and the backend has its own method to
    /// read the metadata (`SecretsManagerStore::metadata`). Meaningless without
    /// [`metadata`](Self::metadata).
    pub metadata_on_read: bool,
}

impl Capabilities {
    /// Nothing beyond reads.
    pub const READ_ONLY: Self = Self {
        write: false,
        versions: false,
        undelete: false,
        purge: false,
        check_and_set: false,
        metadata: false,
        metadata_on_read: false,
    };

    /// Everything.
    pub const ALL: Self = Self {
        write: true,
        versions: true,
        undelete: true,
        purge: true,
        check_and_set: true,
        metadata: true,
        metadata_on_read: true,
    };
}

/// A place secrets live: Vault, AWS Secrets Manager, an encrypted file, the environment.
///
/// The trait is object safe; an application usually holds an `Arc<dyn SecretStore>`, and
/// `Arc<S>` and `Box<S>` are stores themselves. Every method takes `&self`: stores are shared
/// between tasks and synchronise inside.
///
/// ```
/// use std::sync::Arc;
/// use strongroom_core::{SecretName, SecretStore};
///
/// async fn database_url(store: &dyn SecretStore) -> Result<String, strongroom_core::Error> {
///     let secret = store.get(&SecretName::new("app/db/url")?).await?;
///     Ok(secret.value.expose_str()?.to_owned())
/// }
///
/// fn hold(_store: Arc<dyn SecretStore>) {}
/// ```
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// A short stable name for logs, metrics and errors: `vault`, `aws`, `local`, `env`.
    fn backend(&self) -> &'static str;

    /// What this backend supports beyond the required operations.
    fn capabilities(&self) -> Capabilities;

    /// The current version of `key`.
    ///
    /// # Errors
    /// [`Error::NotFound`] (with `deleted: true` when soft-deleted), or any transport,
    /// authentication or decryption error of the backend.
    async fn get(&self, key: &SecretName) -> Result<Secret, Error>;

    /// A given version of `key`.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`Error::Unsupported`] where versions are not kept.
    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error>;

    /// Writes a new version of `key` and returns its identifier.
    ///
    /// # Errors
    /// As [`put_with`](Self::put_with).
    async fn put(&self, key: &SecretName, value: SecretValue) -> Result<VersionId, Error> {
        self.put_with(key, value, &PutOptions::default()).await
    }

    /// Writes a new version of `key` under `options` (check-and-set, metadata).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the precondition does not hold; [`Error::Unsupported`] when an
    /// option is not supported (see [`Capabilities`]) or the store is read-only.
    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error>;

    /// Deletes `key`: softly where the backend can (recoverable with
    /// [`undelete`](Self::undelete)), for good otherwise.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such secret.
    async fn delete(&self, key: &SecretName) -> Result<(), Error>;

    /// The keys whose names start with `prefix` (a plain string prefix; `""` lists all),
    /// sorted, without deleted ones.
    ///
    /// # Errors
    /// Transport, authentication or decryption errors of the backend.
    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error>;

    /// The version history of `key`, oldest first.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Unsupported`] where versions are not kept.
    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error>;

    /// Restores a soft-deleted `key`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] unless [`Capabilities::undelete`].
    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        let _ = key;
        Err(Error::unsupported(self.backend(), "undelete"))
    }

    /// Removes `key` and all its versions for good.
    ///
    /// # Errors
    /// [`Error::Unsupported`] unless [`Capabilities::purge`].
    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        let _ = key;
        Err(Error::unsupported(self.backend(), "purge"))
    }

    /// The servers behind this store and what each answered to a health probe, for a store
    /// that talks to several (a Vault/OpenBao cluster); empty for every other store.
    /// Credentials are never sent with the probe. Wrappers (a scope, a cache) pass it on.
    async fn nodes(&self) -> Vec<NodeReport> {
        Vec::new()
    }

    /// Reads several secrets; one result per key, in order.
    ///
    /// Backends with a batch call override this; the default reads one at a time.
    async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await);
        }
        out
    }
}

/// One server of a store that runs as several, as a health probe found it
/// ([`SecretStore::nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeReport {
    /// The server's configured address.
    pub address: String,
    /// What it answered, in the backend's words (`active`, `standby`, `sealed`,
    /// `unreachable: connection refused`, ...).
    pub state: String,
    /// Whether it can serve requests (directly or by forwarding them).
    pub serving: bool,
    /// Whether the store sends its requests to this server now.
    pub current: bool,
}

impl NodeReport {
    /// A report on the server at `address`.
    pub fn new(
        address: impl Into<String>,
        state: impl Into<String>,
        serving: bool,
        current: bool,
    ) -> Self {
        Self {
            address: address.into(),
            state: state.into(),
            serving,
            current,
        }
    }
}

macro_rules! forward_store {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<S: SecretStore + ?Sized> SecretStore for $ptr<S> {
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
                (**self).get(key).await
            }
            async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
                (**self).get_version(key, version).await
            }
            async fn put(&self, key: &SecretName, value: SecretValue) -> Result<VersionId, Error> {
                (**self).put(key, value).await
            }
            async fn put_with(&self, key: &SecretName, value: SecretValue, options: &PutOptions) -> Result<VersionId, Error> {
                (**self).put_with(key, value, options).await
            }
            async fn delete(&self, key: &SecretName) -> Result<(), Error> {
                (**self).delete(key).await
            }
            async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
                (**self).list(prefix).await
            }
            async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
                (**self).versions(key).await
            }
            async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
                (**self).undelete(key).await
            }
            async fn purge(&self, key: &SecretName) -> Result<(), Error> {
                (**self).purge(key).await
            }
            async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
                (**self).get_many(keys).await
            }
            async fn nodes(&self) -> Vec<NodeReport> {
                (**self).nodes().await
            }
        }
    )*};
}

forward_store!(Arc, Box);
