//! The vocabulary every strongroom crate shares: the [`SecretStore`] trait, the validated
//! [`SecretName`], the zeroizing [`SecretValue`], [`Secret`] with its [`VersionId`] and
//! [`Metadata`], and the [`Error`] a caller matches on.
//!
//! This crate does no I/O, no HTTP and no cryptography; backends (`strongroom-vault`,
//! `strongroom-aws`, `strongroom-local`) implement [`SecretStore`], and wrappers
//! (`strongroom-cache`, `strongroom-facade`) take any `SecretStore` and are one themselves.
//!
//! ```
//! use strongroom_core::{Error, SecretName, SecretStore, SecretValue};
//!
//! /// Reads a password, writing a first one when there is none yet.
//! async fn password(store: &dyn SecretStore) -> Result<SecretValue, Error> {
//!     let key = SecretName::new("app/db/password")?;
//!     match store.get(&key).await {
//!         Ok(secret) => Ok(secret.value),
//!         Err(Error::NotFound { deleted: false, .. }) => {
//!             let value = SecretValue::from("first-password");
//!             store.put(&key, value.clone()).await?;
//!             Ok(value)
//!         }
//!         Err(other) => Err(other),
//!     }
//! }
//! ```

mod error;
mod name;
mod scoped;
mod secret;
mod store;
mod value;

pub use async_trait::async_trait;
pub use error::{BoxError, Error, ErrorKind};
pub use name::{MAX_NAME_LEN, NameProblem, SecretName};
pub use scoped::{Scope, Scoped};
pub use secret::{Metadata, Precondition, PutOptions, Secret, VersionId, VersionInfo};
pub use store::{Capabilities, SecretStore};
pub use value::SecretValue;

/// The old name of [`SecretName`]; it names a secret and holds no key material.
#[deprecated(since = "0.2.0", note = "renamed to `SecretName`")]
pub type SecretKey = SecretName;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod object_safety {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The smallest store that satisfies the trait, to check that it can be boxed and shared
    /// and that the provided methods behave.
    #[derive(Default)]
    struct Map(Mutex<BTreeMap<SecretName, SecretValue>>);

    #[async_trait]
    impl SecretStore for Map {
        fn backend(&self) -> &'static str {
            "map"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::READ_ONLY
        }
        async fn get(&self, key: &SecretName) -> Result<Secret> {
            let map = self.0.lock().unwrap();
            let value = map.get(key).ok_or_else(|| Error::not_found(key))?;
            Ok(Secret::new(key.clone(), value.clone(), VersionId::from(1)))
        }
        async fn get_version(&self, key: &SecretName, _: &VersionId) -> Result<Secret> {
            self.get(key).await
        }
        async fn put_with(
            &self,
            key: &SecretName,
            value: SecretValue,
            _: &PutOptions,
        ) -> Result<VersionId> {
            self.0.lock().unwrap().insert(key.clone(), value);
            Ok(VersionId::from(1))
        }
        async fn delete(&self, key: &SecretName) -> Result<()> {
            self.0
                .lock()
                .unwrap()
                .remove(key)
                .map(drop)
                .ok_or_else(|| Error::not_found(key))
        }
        async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.has_prefix(prefix))
                .cloned()
                .collect())
        }
        async fn versions(&self, _: &SecretName) -> Result<Vec<VersionInfo>> {
            Err(Error::unsupported(self.backend(), "versions"))
        }
    }

    #[tokio::test]
    async fn boxed_and_shared_stores_work() {
        let key = SecretName::new("a/b").unwrap();
        let boxed: Box<dyn SecretStore> = Box::new(Map::default());
        boxed.put(&key, SecretValue::from("v")).await.unwrap();
        assert_eq!(boxed.get(&key).await.unwrap().value.expose(), b"v");

        let shared: Arc<dyn SecretStore> = Arc::new(Map::default());
        let twice: Arc<dyn SecretStore> = Arc::new(Arc::clone(&shared));
        twice.put(&key, SecretValue::from("w")).await.unwrap();
        assert_eq!(shared.get(&key).await.unwrap().value.expose(), b"w");
        assert_eq!(twice.list("a/").await.unwrap(), vec![key.clone()]);

        let results = shared
            .get_many(&[key.clone(), SecretName::new("nope").unwrap()])
            .await;
        assert!(results[0].is_ok());
        assert!(matches!(
            &results[1],
            Err(Error::NotFound { deleted: false, .. })
        ));

        assert!(matches!(
            shared.undelete(&key).await,
            Err(Error::Unsupported {
                backend: "map",
                operation: "undelete"
            })
        ));
        assert!(matches!(
            shared.purge(&key).await,
            Err(Error::Unsupported { .. })
        ));
    }
}
