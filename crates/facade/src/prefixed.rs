//! [`Prefixed`]: a store seen under a fixed key prefix, as `vault:MOUNT/PREFIX` and
//! `aws:PREFIX` specs ask.

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId,
    VersionInfo,
};

/// The secrets of `inner` whose names start with `prefix/`, named without it: `db/password`
/// here is `prefix/db/password` in `inner`.
///
/// ```
/// use strongroom_core::SecretName;
/// use strongroom_facade::Prefixed;
/// use strongroom_local::EnvStore;
///
/// let store = Prefixed::new(EnvStore::new(), "apps/web")?;
/// assert_eq!(store.prefix().as_str(), "apps/web");
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Prefixed<S> {
    inner: S,
    prefix: SecretName,
}

impl<S: SecretStore> Prefixed<S> {
    /// `inner` under `prefix` (a valid key name, such as `apps/web`).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a prefix that is not a valid key name.
    pub fn new(inner: S, prefix: &str) -> Result<Self, Error> {
        Ok(Self {
            inner,
            prefix: SecretName::new(prefix.trim_matches('/'))?,
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &SecretName {
        &self.prefix
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn full(&self, key: &SecretName) -> Result<SecretName, Error> {
        self.prefix.join(key.as_str())
    }
}

#[async_trait]
impl<S: SecretStore> SecretStore for Prefixed<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let secret = self.inner.get(&self.full(key)?).await?;
        Ok(renamed(secret, key))
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let secret = self.inner.get_version(&self.full(key)?, version).await?;
        Ok(renamed(secret, key))
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        self.inner.put_with(&self.full(key)?, value, options).await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.delete(&self.full(key)?).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let base = format!("{}/", self.prefix.as_str());
        let keys = self.inner.list(&format!("{base}{prefix}")).await?;
        keys.iter()
            .filter_map(|k| k.as_str().strip_prefix(&base))
            .map(SecretName::new)
            .collect()
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        self.inner.versions(&self.full(key)?).await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.undelete(&self.full(key)?).await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.purge(&self.full(key)?).await
    }
}

/// Names `secret` as the caller knows it.
fn renamed(mut secret: Secret, key: &SecretName) -> Secret {
    secret.key = key.clone();
    secret
}
