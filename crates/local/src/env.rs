//! [`EnvStore`]: read-only secrets from environment variables, for development and for
//! platforms that inject secrets as variables.

use std::collections::BTreeMap;
use std::ffi::OsString;

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId,
    VersionInfo,
};

const BACKEND: &str = "env";

/// The version every secret of an [`EnvStore`] reports: the environment keeps no history.
pub const ENV_VERSION: &str = "env";

/// Variables that hold strongroom's own credentials or those of the stores it talks to. An
/// [`EnvStore`] never reads or lists them, whatever its prefix, so `strongroom get` or a
/// `migrate --from env:` cannot hand the keys to the vault to someone who may only read
/// application secrets.
const CREDENTIAL_VARS: &[&str] = &[
    "STRONGROOM_MASTER_KEY",
    "STRONGROOM_PASSPHRASE",
    "VAULT_TOKEN",
    "VAULT_SECRET_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Secrets read from environment variables: `app/db_password` is `APP_DB_PASSWORD`, or
/// `MYAPP_APP_DB_PASSWORD` with the prefix `MYAPP`.
///
/// The name is upper-cased and every character that is not an ASCII letter or digit (the
/// `/` between segments included) becomes `_`. Several keys can therefore map to one
/// variable (`app/db` and `app_db`); [`var_name`](Self::var_name) shows the mapping.
/// [`list`](SecretStore::list) returns names in the flat lower-case form (`app_db_password`),
/// which `get` maps back to the same variable.
///
/// Read-only: writes return [`Error::Unsupported`].
///
/// The credentials of strongroom and of the stores it talks to are never secrets of this
/// store, whatever the prefix: `STRONGROOM_MASTER_KEY`, `STRONGROOM_PASSPHRASE`,
/// `VAULT_TOKEN`, `VAULT_SECRET_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` are neither read nor listed.
///
/// ```
/// use strongroom_local::EnvStore;
/// use strongroom_core::SecretName;
///
/// let store = EnvStore::new().with_prefix("MYAPP");
/// assert_eq!(store.var_name(&SecretName::new("db/password")?), "MYAPP_DB_PASSWORD");
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnvStore {
    prefix: Option<String>,
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    /// The live process environment, read on every call.
    #[default]
    Process,
    /// A fixed set of variables (tests, or a parsed `.env` file).
    Snapshot(BTreeMap<String, SecretValue>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process => f.write_str("Process"),
            // Names are not secret; values are redacted by SecretValue itself.
            Self::Snapshot(vars) => f.debug_map().entries(vars.iter()).finish(),
        }
    }
}

impl EnvStore {
    /// Reads the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads from a fixed set of variables instead of the process environment.
    pub fn from_vars<N, V>(vars: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<SecretValue>,
    {
        Self {
            prefix: None,
            source: Source::Snapshot(
                vars.into_iter()
                    .map(|(name, value)| (name.into(), value.into()))
                    .collect(),
            ),
        }
    }

    /// Only variables starting with `PREFIX_` are secrets, and the prefix is not part of the
    /// key. A folder prefix maps like a name, with the separator added once: `prod/app`,
    /// `prod/app/`, `/prod/app`, `PROD_APP` and `PROD_APP_` all select the variables
    /// `PROD_APP_*` (and never `PROD_APPLICATION_*`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = prefix.trim_start_matches('/').trim_end_matches(['/', '_']);
        self.prefix = (!prefix.is_empty()).then(|| format!("{}_", flatten(prefix)));
        self
    }

    /// The variable that holds `key`.
    pub fn var_name(&self, key: &SecretName) -> String {
        format!(
            "{}{}",
            self.prefix.as_deref().unwrap_or(""),
            flatten(key.as_str())
        )
    }

    fn read(&self, name: &str) -> Option<SecretValue> {
        if CREDENTIAL_VARS.contains(&name) {
            return None;
        }
        match &self.source {
            Source::Process => std::env::var_os(name).map(os_to_value),
            Source::Snapshot(vars) => vars.get(name).cloned(),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.source {
            Source::Process => std::env::vars_os()
                .filter_map(|(name, _)| name.into_string().ok())
                .collect(),
            Source::Snapshot(vars) => vars.keys().cloned().collect(),
        };
        names.retain(|name| !CREDENTIAL_VARS.contains(&name.as_str()));
        names
    }
}

fn flatten(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(unix)]
fn os_to_value(value: OsString) -> SecretValue {
    use std::os::unix::ffi::OsStringExt as _;
    SecretValue::new(value.into_vec())
}

#[cfg(not(unix))]
fn os_to_value(value: OsString) -> SecretValue {
    SecretValue::from(value.to_string_lossy().into_owned())
}

#[async_trait]
impl SecretStore for EnvStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let value = self
            .read(&self.var_name(key))
            .ok_or_else(|| Error::not_found(key))?;
        Ok(Secret::new(key.clone(), value, ENV_VERSION.into()))
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        if version.as_str() == ENV_VERSION {
            return self.get(key).await;
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
        let var_prefix = self.prefix.as_deref().unwrap_or("");
        let mut keys: Vec<SecretName> = self
            .names()
            .into_iter()
            .filter_map(|name| {
                let rest = name.strip_prefix(var_prefix)?;
                SecretName::new(rest.to_ascii_lowercase()).ok()
            })
            .filter(|key| key.has_prefix(prefix))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        self.get(key).await?;
        Ok(vec![VersionInfo::new(ENV_VERSION.into(), None, true)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SecretName {
        SecretName::new(name).unwrap()
    }

    #[test]
    fn keys_map_to_variable_names() {
        let table = [
            (None, "app/db_password", "APP_DB_PASSWORD"),
            (None, "app/db-password", "APP_DB_PASSWORD"),
            (None, "a.b/c", "A_B_C"),
            (Some("myapp"), "db", "MYAPP_DB"),
            (Some("MYAPP_"), "db", "MYAPP_DB"),
            (Some(""), "db", "DB"),
        ];
        for (prefix, name, expected) in table {
            let store = match prefix {
                Some(p) => EnvStore::new().with_prefix(p),
                None => EnvStore::new(),
            };
            assert_eq!(store.var_name(&key(name)), expected, "{prefix:?} {name}");
        }
    }

    #[tokio::test]
    async fn credential_variables_are_never_secrets_of_the_store() {
        let store = EnvStore::from_vars([
            ("VAULT_TOKEN", "hvs.root"),
            ("STRONGROOM_MASTER_KEY", "a2V5"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("APP_KEY", "app"),
        ]);
        assert_eq!(store.list("").await.unwrap(), vec![key("app_key")]);
        for name in [
            "vault/token",
            "strongroom/master_key",
            "aws_secret_access_key",
        ] {
            assert!(
                store.get(&key(name)).await.unwrap_err().is_not_found(),
                "{name}"
            );
        }
        let vault = EnvStore::from_vars([("VAULT_TOKEN", "hvs.root")]).with_prefix("VAULT");
        assert!(vault.get(&key("token")).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn a_folder_prefix_is_one_variable_prefix_on_its_boundary() {
        let vars = [
            ("PROD_APP_DB_PASSWORD", "app"),
            ("PROD_APPLICATION_KEY", "other"),
        ];
        for prefix in [
            "prod/app",
            "prod/app/",
            "/prod/app",
            "PROD_APP",
            "PROD_APP_",
        ] {
            let store = EnvStore::from_vars(vars).with_prefix(prefix);
            assert_eq!(
                store.var_name(&key("db/password")),
                "PROD_APP_DB_PASSWORD",
                "{prefix}"
            );
            assert_eq!(
                store.list("").await.unwrap(),
                vec![key("db_password")],
                "{prefix}"
            );
            assert!(
                store
                    .get(&key("lication/key"))
                    .await
                    .unwrap_err()
                    .is_not_found()
            );
        }
    }

    #[tokio::test]
    async fn reads_and_lists_a_snapshot() {
        let store = EnvStore::from_vars([
            ("MYAPP_DB_PASSWORD", "pw"),
            ("MYAPP_API_KEY", "k"),
            ("OTHER", "x"),
        ])
        .with_prefix("MYAPP");
        let secret = store.get(&key("db/password")).await.unwrap();
        assert_eq!(secret.value, "pw".into());
        assert_eq!(secret.version.as_str(), ENV_VERSION);
        let listed = store.list("").await.unwrap();
        assert_eq!(listed, [key("api_key"), key("db_password")]);
        // What list returns, get finds.
        for k in &listed {
            store.get(k).await.unwrap();
        }
        assert!(matches!(
            store.get(&key("missing")).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.put(&key("db/password"), "x".into()).await,
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            store.get_version(&key("db/password"), &"3".into()).await,
            Err(Error::NotFound {
                version: Some(_),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn reads_the_process_environment() {
        // PATH is set in every test environment; setting a variable would need `unsafe`.
        let expected = std::env::var_os("PATH").expect("PATH is set");
        let secret = EnvStore::new().get(&key("path")).await.unwrap();
        assert_eq!(secret.value, os_to_value(expected));
        assert!(
            EnvStore::new()
                .list("pat")
                .await
                .unwrap()
                .contains(&key("path"))
        );
    }

    #[test]
    fn debug_shows_names_but_not_values() {
        let store = EnvStore::from_vars([("TOKEN", "s3cr3t-value")]);
        let shown = format!("{store:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
