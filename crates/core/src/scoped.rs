//! Scoping a store to a folder: [`Scope`], the rule every backend's `prefix` setting
//! follows, and [`Scoped`], the wrapper that applies it to any [`SecretStore`].
//!
//! A prefix names a folder. `prod/app`, `prod/app/` and `/prod/app` are the same scope, the
//! folder `prod/app/`: the key `db/password` is `prod/app/db/password` underneath, the
//! separator is added once and never doubled, and nothing outside the folder can be listed,
//! read, written or deleted through the scoped store. In particular `prod/app` never sees
//! `prod/application/key`: the match is on the folder boundary, not on the characters.
//!
//! Backends whose server can filter by name (Secrets Manager, Vault) keep a [`Scope`]
//! inside and apply it themselves; any other store is scoped by wrapping it in [`Scoped`].
//! Both follow the same rules because both are this one type.

use std::fmt;

use async_trait::async_trait;

use crate::{
    Capabilities, Error, NodeReport, PutOptions, Secret, SecretName, SecretStore, SecretValue,
    VersionId, VersionInfo,
};

/// A folder that a store is scoped to, or the root (no scope).
///
/// ```
/// use strongroom_core::{Scope, SecretName};
///
/// let scope = Scope::new("prod/app/")?;
/// assert_eq!(scope, Scope::new("/prod/app")?);
/// assert_eq!(scope.folder(), "prod/app/");
/// let key = SecretName::new("db/password")?;
/// assert_eq!(scope.full(&key)?.as_str(), "prod/app/db/password");
/// assert_eq!(scope.strip("prod/app/db/password"), Some("db/password"));
/// assert_eq!(scope.strip("prod/application/key"), None);
/// assert!(Scope::new("")?.is_root());
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Empty for the root, else the folder with one trailing `/`.
    folder: String,
}

impl Scope {
    /// The root: every name, unchanged.
    pub fn root() -> Self {
        Self::default()
    }

    /// The folder `prefix` names. Leading and trailing `/` are ignored, so `prod/app`,
    /// `prod/app/` and `/prod/app` are one scope; an empty prefix (or `/`) is the root.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when what is left is not a valid [`SecretName`] (`a//b`, `..`,
    /// control characters).
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let trimmed = prefix.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        SecretName::new(trimmed)?;
        Ok(Self {
            folder: format!("{trimmed}/"),
        })
    }

    /// True for the root scope.
    pub fn is_root(&self) -> bool {
        self.folder.is_empty()
    }

    /// The folder with its trailing `/` (`prod/app/`), or `""` for the root: the string
    /// every name underneath starts with.
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The folder without the trailing `/` (`prod/app`), or `""` for the root.
    pub fn as_str(&self) -> &str {
        self.folder.strip_suffix('/').unwrap_or(&self.folder)
    }

    /// The name of `key` underneath: `prod/app/db/password` for `db/password`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the full name is longer than
    /// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN).
    pub fn full(&self, key: &SecretName) -> Result<SecretName, Error> {
        if self.is_root() {
            return Ok(key.clone());
        }
        SecretName::new(self.full_str(key))
    }

    /// The name of `key` underneath as a string, without re-validating it (for a backend
    /// whose own names are not [`SecretName`]s).
    pub fn full_str(&self, key: &SecretName) -> String {
        let mut name = String::with_capacity(self.folder.len() + key.as_str().len());
        name.push_str(&self.folder);
        name.push_str(key.as_str());
        name
    }

    /// The string to list underneath for a `list(prefix)` through the scope.
    pub fn list_prefix(&self, prefix: &str) -> String {
        format!("{}{prefix}", self.folder)
    }

    /// The name as the scoped store knows it, or `None` when `name` is outside the folder
    /// (or is the folder itself).
    pub fn strip<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.folder.as_str())
            .filter(|rest| !rest.is_empty())
    }

    /// [`strip`](Self::strip) as a [`SecretName`]; `None` for a name outside the folder or
    /// one that is not a valid name once stripped.
    pub fn key_of(&self, name: &str) -> Option<SecretName> {
        self.strip(name).and_then(|rest| SecretName::new(rest).ok())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.folder)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The secrets of `inner` under a [`Scope`], named without it: `db/password` here is
/// `prod/app/db/password` in `inner`. Nothing outside the folder is visible.
///
/// ```
/// use strongroom_core::{Error, SecretName, SecretStore, Scoped};
///
/// // With `store` holding prod/app/db/password and prod/application/key, `list("")` of the
/// // scoped store is `[db/password]`, and `get("db/password")` reads prod/app/db/password.
/// async fn app_names<S: SecretStore>(store: S) -> Result<Vec<SecretName>, Error> {
///     Scoped::new(store, "prod/app")?.list("").await
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Scoped<S> {
    inner: S,
    scope: Scope,
}

impl<S: SecretStore> Scoped<S> {
    /// `inner` scoped to the folder `prefix` (see [`Scope::new`]).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a prefix that is not a valid name.
    pub fn new(inner: S, prefix: &str) -> Result<Self, Error> {
        Ok(Self::with_scope(inner, Scope::new(prefix)?))
    }

    /// `inner` under `scope`.
    pub fn with_scope(inner: S, scope: Scope) -> Self {
        Self { inner, scope }
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The store underneath, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Names `secret` as the caller knows it.
fn renamed(mut secret: Secret, key: &SecretName) -> Secret {
    secret.key = key.clone();
    secret
}

#[async_trait]
impl<S: SecretStore> SecretStore for Scoped<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn nodes(&self) -> Vec<NodeReport> {
        self.inner.nodes().await
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let secret = self.inner.get(&self.scope.full(key)?).await?;
        Ok(renamed(secret, key))
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let secret = self
            .inner
            .get_version(&self.scope.full(key)?, version)
            .await?;
        Ok(renamed(secret, key))
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        self.inner
            .put_with(&self.scope.full(key)?, value, options)
            .await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.delete(&self.scope.full(key)?).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let names = self.inner.list(&self.scope.list_prefix(prefix)).await?;
        Ok(names
            .iter()
            .filter_map(|name| self.scope.key_of(name.as_str()))
            .collect())
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        self.inner.versions(&self.scope.full(key)?).await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.undelete(&self.scope.full(key)?).await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.purge(&self.scope.full(key)?).await
    }

    async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
        // Every key of a valid scope joins unless the result is too long; those few are
        // answered here and the rest go to the store in one batch.
        let full: Vec<Result<SecretName, Error>> =
            keys.iter().map(|key| self.scope.full(key)).collect();
        let valid: Vec<SecretName> = full
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .cloned()
            .collect();
        let mut answers = self.inner.get_many(&valid).await.into_iter();
        full.into_iter()
            .zip(keys)
            .map(|(name, key)| {
                name?;
                answers.next().map_or_else(
                    || {
                        Err(Error::unavailable(
                            self.inner.backend(),
                            "a batch read answered fewer results than keys",
                        ))
                    },
                    |answer| answer.map(|secret| renamed(secret, key)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ErrorKind;

    /// A map of names to values; just enough store to watch what the scope sends down.
    #[derive(Default, Clone)]
    struct Map(Arc<Mutex<BTreeMap<SecretName, SecretValue>>>);

    impl Map {
        fn with(names: &[&str]) -> Self {
            let map = Self::default();
            for name in names {
                map.0
                    .lock()
                    .unwrap()
                    .insert(SecretName::new(*name).unwrap(), SecretValue::from(*name));
            }
            map
        }
        fn names(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .keys()
                .map(|k| k.as_str().to_owned())
                .collect()
        }
    }

    #[async_trait]
    impl SecretStore for Map {
        fn backend(&self) -> &'static str {
            "map"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::READ_ONLY
        }
        async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
            let map = self.0.lock().unwrap();
            let value = map.get(key).ok_or_else(|| Error::not_found(key))?;
            Ok(Secret::new(key.clone(), value.clone(), VersionId::from(1)))
        }
        async fn get_version(&self, key: &SecretName, _: &VersionId) -> Result<Secret, Error> {
            self.get(key).await
        }
        async fn put_with(
            &self,
            key: &SecretName,
            value: SecretValue,
            _: &PutOptions,
        ) -> Result<VersionId, Error> {
            self.0.lock().unwrap().insert(key.clone(), value);
            Ok(VersionId::from(1))
        }
        async fn delete(&self, key: &SecretName) -> Result<(), Error> {
            self.0
                .lock()
                .unwrap()
                .remove(key)
                .map(drop)
                .ok_or_else(|| Error::not_found(key))
        }
        async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
            let map = self.0.lock().unwrap();
            Ok(map
                .keys()
                .filter(|k| k.has_prefix(prefix))
                .cloned()
                .collect())
        }
        async fn versions(&self, _: &SecretName) -> Result<Vec<VersionInfo>, Error> {
            Err(Error::unsupported("map", "versions"))
        }
    }

    fn name(text: &str) -> SecretName {
        SecretName::new(text).unwrap()
    }

    #[test]
    fn every_spelling_of_a_folder_is_one_scope() {
        let want = Scope::new("prod/app").unwrap();
        for spelling in ["prod/app/", "/prod/app", "/prod/app/", "prod/app//"] {
            assert_eq!(Scope::new(spelling).unwrap(), want, "{spelling}");
        }
        assert_eq!(want.folder(), "prod/app/");
        assert_eq!(want.as_str(), "prod/app");
        assert_eq!(
            want.full(&name("db/pw")).unwrap().as_str(),
            "prod/app/db/pw"
        );
        assert_eq!(want.full_str(&name("db/pw")), "prod/app/db/pw");
        for root in ["", "/", "//"] {
            assert!(Scope::new(root).unwrap().is_root(), "{root:?}");
        }
        assert_eq!(
            Scope::root().full(&name("db/pw")).unwrap().as_str(),
            "db/pw"
        );
    }

    #[test]
    fn a_prefix_that_is_not_a_name_is_refused() {
        for bad in ["a//b", "prod/../x", "a/./b", "a\nb"] {
            let err = Scope::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}");
        }
    }

    #[test]
    fn strip_keeps_to_the_folder_boundary() {
        let scope = Scope::new("prod/app").unwrap();
        assert_eq!(scope.strip("prod/app/key"), Some("key"));
        assert_eq!(scope.strip("prod/application/key"), None);
        assert_eq!(scope.strip("prod/appkey"), None);
        assert_eq!(scope.strip("prod/app/"), None);
        assert_eq!(scope.strip("prod/app"), None);
        assert_eq!(scope.strip("other/prod/app/key"), None);
    }

    #[test]
    fn a_name_too_long_once_joined_is_an_invalid_key() {
        let scope = Scope::new("prod/app").unwrap();
        let longest = name(&"k".repeat(crate::MAX_NAME_LEN));
        assert_eq!(
            scope.full(&longest).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }

    #[tokio::test]
    async fn app_never_sees_application() {
        let inner = Map::with(&[
            "prod/app/db/pw",
            "prod/application/key",
            "prod/appkey",
            "top",
        ]);
        for prefix in ["prod/app", "prod/app/", "/prod/app"] {
            let app = Scoped::new(inner.clone(), prefix).unwrap();
            assert_eq!(app.list("").await.unwrap(), vec![name("db/pw")], "{prefix}");
            assert_eq!(app.list("d").await.unwrap(), vec![name("db/pw")]);
            assert!(app.list("lication").await.unwrap().is_empty());
            assert!(app.list("key").await.unwrap().is_empty());
            let secret = app.get(&name("db/pw")).await.unwrap();
            assert_eq!(secret.key, name("db/pw"));
            assert_eq!(secret.value.expose(), b"prod/app/db/pw");
            // `lication/key` would be prod/app/lication/key, never prod/application/key.
            assert!(
                app.get(&name("lication/key"))
                    .await
                    .unwrap_err()
                    .is_not_found()
            );
            assert!(
                app.delete(&name("lication/key"))
                    .await
                    .unwrap_err()
                    .is_not_found()
            );
        }
        assert!(inner.names().contains(&"prod/application/key".to_owned()));
    }

    #[tokio::test]
    async fn writes_land_inside_the_folder_with_one_separator() {
        let inner = Map::default();
        for prefix in ["prod/app", "prod/app/", "/prod/app"] {
            let app = Scoped::new(inner.clone(), prefix).unwrap();
            app.put(&name("db/password"), SecretValue::from("x"))
                .await
                .unwrap();
        }
        assert_eq!(inner.names(), vec!["prod/app/db/password".to_owned()]);
        let app = Scoped::new(inner.clone(), "prod/app").unwrap();
        app.delete(&name("db/password")).await.unwrap();
        assert!(inner.names().is_empty());
    }

    #[tokio::test]
    async fn a_batch_read_is_renamed_and_keeps_its_order() {
        let inner = Map::with(&["prod/app/a", "prod/app/b", "prod/application/a"]);
        let app = Scoped::new(inner, "prod/app").unwrap();
        let longest = name(&"k".repeat(crate::MAX_NAME_LEN));
        let answers = app
            .get_many(&[name("b"), longest, name("missing"), name("a")])
            .await;
        assert_eq!(answers[0].as_ref().unwrap().key, name("b"));
        assert_eq!(
            answers[1].as_ref().unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert!(answers[2].as_ref().unwrap_err().is_not_found());
        let a = answers[3].as_ref().unwrap();
        assert_eq!(
            (a.key.as_str(), a.value.expose()),
            ("a", &b"prod/app/a"[..])
        );
    }

    #[test]
    fn debug_and_display_show_the_folder() {
        let scope = Scope::new("/prod/app/").unwrap();
        assert_eq!(scope.to_string(), "prod/app");
        assert_eq!(format!("{scope:?}"), "Scope(\"prod/app/\")");
    }
}
