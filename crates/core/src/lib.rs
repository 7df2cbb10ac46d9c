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
//!
//! # Features
//!
//! - `testing`: [`testing::MemoryStore`], an in-memory reference store, and
//!   [`testing::conformance`], the trait's contract as checks any store can run. For tests
//!   (a dev-dependency); nothing else needs it.

// docs.rs (`--cfg docsrs`) labels items that need a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod key_provider;
mod name;
mod scoped;
mod secret;
mod store;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod value;

pub use async_trait::async_trait;
pub use error::{BoxError, Error, ErrorKind, SharedError};
pub use key_provider::{GeneratedKey, KeyContext, KeyProvider};
pub use name::{MAX_NAME_LEN, NameProblem, SecretName};
pub use scoped::{Scope, Scoped};
pub use secret::{Metadata, Precondition, PutOptions, Secret, VersionId, VersionInfo};
pub use store::{Capabilities, NodeReport, SecretStore};
pub use value::SecretValue;

/// The old name of [`SecretName`]; it names a secret and holds no key material.
#[deprecated(since = "0.2.0", note = "renamed to `SecretName`")]
pub type SecretKey = SecretName;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod object_safety {
    use std::sync::Arc;

    use super::testing::{Hook, MemoryStore, Operation, conformance};
    use super::*;

    #[tokio::test]
    async fn boxed_and_shared_stores_work() {
        let key = SecretName::new("a/b").unwrap();
        let boxed: Box<dyn SecretStore> = Box::new(MemoryStore::new());
        boxed.put(&key, SecretValue::from("v")).await.unwrap();
        assert_eq!(boxed.get(&key).await.unwrap().value.expose(), b"v");

        let shared: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());
        let twice: Arc<dyn SecretStore> = Arc::new(Arc::clone(&shared));
        twice.put(&key, SecretValue::from("w")).await.unwrap();
        assert_eq!(shared.get(&key).await.unwrap().value.expose(), b"w");
        assert_eq!(twice.list("a/").await.unwrap(), vec![key.clone()]);
    }

    #[tokio::test]
    async fn the_reference_store_passes_the_conformance_suite() {
        conformance::run(&MemoryStore::new(), "conformance").await;
        let shared: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());
        conformance::run(&shared, "conformance/shared").await;
    }

    #[tokio::test]
    async fn narrower_capabilities_are_unsupported_exactly_where_they_say() {
        let mut narrow = Capabilities::ALL;
        narrow.versions = false;
        narrow.undelete = false;
        narrow.purge = false;
        narrow.check_and_set = false;
        narrow.metadata = false;
        conformance::run(&MemoryStore::new().with_capabilities(narrow), "narrow").await;
        for field in 0..5 {
            let mut one_off = Capabilities::ALL;
            match field {
                0 => one_off.versions = false,
                1 => one_off.undelete = false,
                2 => one_off.purge = false,
                3 => one_off.check_and_set = false,
                _ => one_off.metadata = false,
            }
            conformance::run(&MemoryStore::new().with_capabilities(one_off), "one-off").await;
        }
    }

    #[tokio::test]
    async fn a_read_only_store_passes_the_read_only_part() {
        let store = MemoryStore::new();
        let present = [
            (
                SecretName::new("app/token").unwrap(),
                SecretValue::from("t"),
            ),
            (SecretName::new("app/url").unwrap(), SecretValue::from("u")),
        ];
        for (key, value) in &present {
            store.insert(key, value.clone());
        }
        let missing = SecretName::new("app/none").unwrap();
        conformance::read_only(&store, &present, &missing).await;
        let read_only = store.with_capabilities(Capabilities::READ_ONLY);
        conformance::read_only(&read_only, &present, &missing).await;
    }

    #[tokio::test]
    #[should_panic(expected = "reads back another value")]
    async fn the_read_only_part_catches_a_wrong_value() {
        let store = MemoryStore::new();
        let key = SecretName::new("app/token").unwrap();
        store.insert(&key, "actual");
        let present = [(key, SecretValue::from("expected"))];
        let missing = SecretName::new("app/none").unwrap();
        conformance::read_only(&store, &present, &missing).await;
    }

    #[tokio::test]
    #[should_panic(expected = "get inside (scoped) failed")]
    async fn the_scoped_check_catches_a_store_that_is_not_scoped() {
        let store = MemoryStore::new();
        conformance::scoped(&store, &store, "ns/app").await;
    }

    /// A store claiming `purge` whose purge fails: the suite must notice.
    struct NoPurge;

    #[async_trait]
    impl Hook for NoPurge {
        async fn call(&self, operation: Operation, _: Option<&SecretName>) -> Result<()> {
            match operation {
                Operation::Purge => Err(Error::unsupported("memory", "purge")),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    #[should_panic(expected = "purge a deleted secret failed")]
    async fn the_suite_catches_a_capability_that_does_not_work() {
        let store = MemoryStore::new().with_hook(Arc::new(NoPurge));
        conformance::run(&store, "lying").await;
    }

    #[tokio::test]
    async fn a_hook_sees_reads_after_the_lookup_and_writes_before_the_change() {
        let store = MemoryStore::new();
        let key = SecretName::new("k").unwrap();
        store.insert(&key, "v");
        struct Refuse;
        #[async_trait]
        impl Hook for Refuse {
            async fn call(&self, _: Operation, _: Option<&SecretName>) -> Result<()> {
                Err(Error::unavailable("memory", "switched off"))
            }
        }
        let refusing = store.clone().with_hook(Arc::new(Refuse));
        assert!(matches!(
            refusing.put(&key, "lost".into()).await,
            Err(Error::Unavailable { .. })
        ));
        assert!(matches!(
            refusing.get(&key).await,
            Err(Error::Unavailable { .. })
        ));
        assert_eq!(store.get(&key).await.unwrap().value.expose(), b"v");
        assert_eq!(store.len(), 1);
    }
}
