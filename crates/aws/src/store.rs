//! [`SecretsManagerStore`]: the [`SecretStore`] over AWS Secrets Manager.
//!
//! | `SecretStore` | Secrets Manager |
//! |---|---|
//! | `get` / `get_version` | GetSecretValue (`AWSCURRENT` / a `VersionId`) |
//! | `put` | PutSecretValue; CreateSecret when the secret does not exist yet |
//! | `put_with(if_absent)` | CreateSecret; `ResourceExistsException` is [`Error::Conflict`] |
//! | `put_with(if_version(v))` | PutSecretValue staged under a private label, then UpdateSecretVersionStage moving `AWSCURRENT` *from `v`*: a real compare-and-swap (below) |
//! | metadata | Description (CreateSecret / UpdateSecret) and Tags (TagResource / UntagResource) |
//! | `delete` / `undelete` | DeleteSecret with a recovery window / RestoreSecret |
//! | `purge` | DeleteSecret with `ForceDeleteWithoutRecovery` |
//! | `list` | ListSecrets with a `name` filter, every page, then an exact prefix match |
//! | `versions` | ListSecretVersionIds (deprecated versions included); labels are the stages |
//! | `get_many` | BatchGetSecretValue, 20 ids per call |
//!
//! [`VersionId`]s are AWS's VersionIds (UUIDs); the current version is the one staged
//! `AWSCURRENT`. Text values are stored as `SecretString`, other bytes as `SecretBinary`.
//! `get` makes one call (GetSecretValue), so the [`Secret`] it returns carries the version
//! and creation time but not the description and tags: read those with
//! [`SecretsManagerClient::describe_secret`] when needed.
//!
//! A put to a secret scheduled for deletion is refused by AWS; the store reports it as
//! [`Error::Conflict`] ("undelete or purge it first"). (LocalStack and moto accept such a
//! put, so the suites cannot show this.)
//!
//! # Writes and races
//!
//! `put` tries PutSecretValue first (the usual case: the secret exists); on
//! `ResourceNotFoundException` it calls CreateSecret, and if that answers
//! `ResourceExistsException` (another writer created it in between) it adds the version with
//! PutSecretValue after all. Each logical put has one `ClientRequestToken`, so the HTTP
//! client's retries of these calls never write twice.
//!
//! Secrets Manager has no conditional PutSecretValue. `if_version(v)` therefore writes the
//! new version under a staging label of its own (not `AWSCURRENT`, so readers do not see
//! it), then asks UpdateSecretVersionStage to move `AWSCURRENT` to it with
//! `RemoveFromVersionId = v`. Secrets Manager refuses that move when `AWSCURRENT` is no
//! longer on `v`, so of two concurrent writers expecting `v` exactly one wins; the loser gets
//! [`Error::Conflict`], and its version is left without stages (deprecated: readable by id
//! until Secrets Manager removes it). Between the two calls the new version exists but is
//! not current.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use strongroom_core::{
    Capabilities, Error, Metadata, Precondition, PutOptions, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo, async_trait,
};
use strongroom_sigv4::{CredentialsError, Env};

use crate::error::{AwsError, BACKEND};
use crate::secretsmanager::{
    AWSCURRENT, ClientBuilder, CreateSecret, DeleteMode, ListSecrets, SecretValueOutput,
    SecretsManagerClient, VersionSelector, new_client_request_token,
};

/// The recovery window `delete` uses unless configured (the AWS default).
pub const DEFAULT_RECOVERY_WINDOW_DAYS: u32 = 30;

/// A [`SecretStore`] on AWS Secrets Manager, optionally scoped to a name prefix.
///
/// ```no_run
/// use strongroom_aws::SecretsManagerStore;
/// use strongroom_core::{SecretName, SecretStore, SecretValue};
///
/// # async fn demo() -> Result<(), strongroom_core::Error> {
/// // Region, endpoint and credentials the AWS way (AWS_REGION, AWS_PROFILE, IMDS, ...).
/// let store = SecretsManagerStore::builder().prefix("myapp/prod/").build().await?;
/// let key = SecretName::new("db/password")?; // the AWS secret `myapp/prod/db/password`
/// store.put(&key, SecretValue::from("s3cret")).await?;
/// assert_eq!(store.get(&key).await?.value.expose(), b"s3cret");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecretsManagerStore {
    client: SecretsManagerClient,
    prefix: String,
    recovery_window_days: u32,
}

impl fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("client", &self.client)
            .field("prefix", &self.prefix)
            .field("recovery_window_days", &self.recovery_window_days)
            .finish()
    }
}

/// Configures a [`SecretsManagerStore`].
#[derive(Debug, Default)]
#[must_use]
pub struct StoreBuilder {
    client: Option<SecretsManagerClient>,
    client_builder: ClientBuilder,
    prefix: String,
    recovery_window_days: Option<u32>,
    check_credentials: bool,
}

impl StoreBuilder {
    /// Uses this client (its region, endpoint and credentials); the client settings below
    /// are then ignored.
    pub fn client(mut self, client: SecretsManagerClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Reads the AWS variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.client_builder = self.client_builder.env(env);
        self
    }

    /// The region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.client_builder = self.client_builder.region(region);
        self
    }

    /// The endpoint URL.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.client_builder = self.client_builder.endpoint(endpoint);
        self
    }

    /// The credentials provider.
    pub fn credentials(
        mut self,
        provider: impl strongroom_sigv4::ProvideCredentials + 'static,
    ) -> Self {
        self.client_builder = self.client_builder.credentials(provider);
        self
    }

    /// Scopes the store: key `db/pw` is the secret `<prefix>db/pw`, and `list` sees only
    /// names under the prefix (e.g. `myapp/prod/`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Days (7 to 30) `delete` leaves for `undelete`.
    pub fn recovery_window_days(mut self, days: u32) -> Self {
        self.recovery_window_days = Some(days);
        self
    }

    /// Load credentials once while building, so that "no credentials" is reported now, as
    /// [`Error::Config`], rather than at the first call.
    pub fn check_credentials(mut self, on: bool) -> Self {
        self.check_credentials = on;
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    /// [`Error::Config`] for no region, a bad endpoint, a bad prefix or recovery window, or
    /// (with [`check_credentials`](Self::check_credentials)) no credentials.
    pub async fn build(self) -> Result<SecretsManagerStore, Error> {
        let check = self.check_credentials;
        let store = self.build_lazy()?;
        if check {
            match store
                .client
                .credentials_provider()
                .provide_credentials()
                .await
            {
                Ok(_) => {}
                Err(
                    e @ (CredentialsError::NotLoaded { .. }
                    | CredentialsError::InvalidConfiguration { .. }
                    | CredentialsError::Profile(_)),
                ) => {
                    return Err(Error::config(format!("AWS Secrets Manager: {e}")));
                }
                Err(e) => return Err(AwsError::from(e).into_core(None, None)),
            }
        }
        Ok(store)
    }

    /// Builds the store without loading credentials (they load on the first call), for
    /// callers that cannot wait here, such as configuration read at startup.
    ///
    /// # Errors
    /// As [`build`](Self::build), except that missing credentials are found on first use.
    pub fn build_lazy(self) -> Result<SecretsManagerStore, Error> {
        let days = self
            .recovery_window_days
            .unwrap_or(DEFAULT_RECOVERY_WINDOW_DAYS);
        if !(7..=30).contains(&days) {
            return Err(Error::config(format!(
                "the Secrets Manager recovery window must be 7 to 30 days, not {days}"
            )));
        }
        if self.prefix.starts_with('/') || self.prefix.chars().any(char::is_control) {
            return Err(Error::config(format!(
                "the Secrets Manager name prefix {:?} must not start with `/` or hold control characters",
                self.prefix
            )));
        }
        let client = match self.client {
            Some(c) => c,
            None => self
                .client_builder
                .build()
                .map_err(|e| Error::config(format!("AWS Secrets Manager: {e}")))?,
        };
        Ok(SecretsManagerStore {
            client,
            prefix: self.prefix,
            recovery_window_days: days,
        })
    }
}

/// Whether an error is AWS's `code`.
fn is_code(e: &AwsError, code: &str) -> bool {
    e.code() == Some(code)
}

impl SecretsManagerStore {
    /// A store on `client`, without prefix, with the default recovery window.
    pub fn new(client: SecretsManagerClient) -> Self {
        Self {
            client,
            prefix: String::new(),
            recovery_window_days: DEFAULT_RECOVERY_WINDOW_DAYS,
        }
    }

    /// A builder.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// A store configured from the process environment: region (`AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, profile), endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`,
    /// `AWS_ENDPOINT_URL`), credentials (the default chain, checked now), and the optional
    /// name prefix `STRONGROOM_AWS_PREFIX`.
    ///
    /// # Errors
    /// [`Error::Config`] naming what is missing when no region or no credentials are found.
    pub async fn from_env() -> Result<Self, Error> {
        let mut builder = Self::builder().check_credentials(true);
        if let Some(prefix) = Env::process().get("STRONGROOM_AWS_PREFIX") {
            builder = builder.prefix(prefix);
        }
        builder.build().await
    }

    /// The client underneath, for operations the trait does not have.
    pub fn client(&self) -> &SecretsManagerClient {
        &self.client
    }

    /// The name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The AWS secret name of `key`.
    pub fn secret_name(&self, key: &SecretName) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn to_secret(key: &SecretName, out: SecretValueOutput) -> Secret {
        let mut secret = Secret::new(key.clone(), out.value, VersionId::from(out.version_id));
        if let Some(at) = out.created {
            secret = secret.created(at);
        }
        secret
    }

    async fn create(
        &self,
        name: &str,
        value: &SecretValue,
        metadata: Option<&Metadata>,
        token: &str,
    ) -> Result<String, AwsError> {
        let mut input = CreateSecret::new(name, value.clone()).client_request_token(token);
        if let Some(m) = metadata {
            input.description.clone_from(&m.description);
            input.tags.clone_from(&m.tags);
        }
        let out = self.client.create_secret(&input).await?;
        Ok(out.version_id.unwrap_or_else(|| token.to_owned()))
    }

    /// Sets the description and makes the tags exactly `metadata.tags`.
    async fn apply_metadata(&self, name: &str, metadata: &Metadata) -> Result<(), AwsError> {
        if let Some(d) = &metadata.description {
            self.client.update_secret(name, Some(d), None).await?;
        }
        let current = self.client.describe_secret(name).await?.tags;
        let stale: Vec<String> = current
            .keys()
            .filter(|k| !metadata.tags.contains_key(*k))
            .cloned()
            .collect();
        if !stale.is_empty() {
            self.client.untag_resource(name, &stale).await?;
        }
        if !metadata.tags.is_empty() && current != metadata.tags {
            self.client.tag_resource(name, &metadata.tags).await?;
        }
        Ok(())
    }

    /// `put` without precondition: add a version, creating the secret if needed.
    async fn put_any(
        &self,
        key: &SecretName,
        name: &str,
        value: &SecretValue,
        metadata: Option<&Metadata>,
        token: &str,
    ) -> Result<(String, bool), Error> {
        match self
            .client
            .put_secret_value(name, value, Some(token), None)
            .await
        {
            Ok(out) => return Ok((out.version_id.unwrap_or_else(|| token.to_owned()), false)),
            Err(e) if is_code(&e, "ResourceNotFoundException") => {}
            Err(e) if e.is_marked_for_deletion() => return Err(scheduled_for_deletion(key)),
            Err(e) => return Err(e.into_core(Some(key.as_str()), None)),
        }
        match self.create(name, value, metadata, token).await {
            Ok(version) => Ok((version, true)),
            // Created by another writer since our PutSecretValue: add our version to it.
            Err(e) if is_code(&e, "ResourceExistsException") => {
                let out = self
                    .client
                    .put_secret_value(name, value, Some(token), None)
                    .await
                    .map_err(|e| e.into_core(Some(key.as_str()), None))?;
                Ok((out.version_id.unwrap_or_else(|| token.to_owned()), false))
            }
            Err(e) if e.is_marked_for_deletion() => Err(scheduled_for_deletion(key)),
            Err(e) => Err(e.into_core(Some(key.as_str()), None)),
        }
    }

    /// `put` if `AWSCURRENT` is on `expected`: see the module docs.
    async fn put_if_version(
        &self,
        key: &SecretName,
        name: &str,
        value: &SecretValue,
        expected: &VersionId,
        token: &str,
    ) -> Result<String, Error> {
        let conflict = |message: String| Error::Conflict {
            key: key.as_str().to_owned(),
            message,
        };
        let pending = format!("strongroom-pending-{}", &token[..8]);
        let written = match self
            .client
            .put_secret_value(
                name,
                value,
                Some(token),
                Some(std::slice::from_ref(&pending)),
            )
            .await
        {
            Ok(out) => out.version_id.unwrap_or_else(|| token.to_owned()),
            Err(e) if is_code(&e, "ResourceNotFoundException") => {
                return Err(conflict(format!(
                    "expected version {expected}, but the secret does not exist"
                )));
            }
            Err(e) if e.is_marked_for_deletion() => return Err(scheduled_for_deletion(key)),
            Err(e) => return Err(e.into_core(Some(key.as_str()), None)),
        };
        let moved = self
            .client
            .update_secret_version_stage(name, AWSCURRENT, Some(&written), Some(expected.as_str()))
            .await;
        // Whatever happened, the private label has done its job.
        if let Err(e) = self
            .client
            .update_secret_version_stage(name, &pending, None, Some(&written))
            .await
        {
            tracing::warn!(backend = BACKEND, key = %key, error = %e, "could not remove a pending staging label");
        }
        match moved {
            Ok(_) => Ok(written),
            Err(e)
                if is_code(&e, "InvalidParameterException")
                    || is_code(&e, "InvalidRequestException")
                    || is_code(&e, "ResourceNotFoundException") =>
            {
                Err(conflict(format!(
                    "the current version is no longer {expected}"
                )))
            }
            Err(e) => Err(e.into_core(Some(key.as_str()), None)),
        }
    }
}

fn scheduled_for_deletion(key: &SecretName) -> Error {
    Error::Conflict {
        key: key.as_str().to_owned(),
        message: "the secret is scheduled for deletion: undelete or purge it first".to_owned(),
    }
}

/// One `debug` event per store operation: key, operation, outcome, latency; never a value.
fn record<T>(operation: &'static str, key: &str, started: Instant, result: &Result<T, Error>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    };
    tracing::debug!(
        backend = BACKEND,
        operation,
        key,
        outcome,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "secret store operation"
    );
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = self
            .client
            .get_secret_value(&self.secret_name(key), &VersionSelector::Current)
            .await
            .map(|out| Self::to_secret(key, out))
            .map_err(|e| e.into_core(Some(key.as_str()), None));
        record("get", key.as_str(), started, &result);
        result
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = self
            .client
            .get_secret_value(
                &self.secret_name(key),
                &VersionSelector::Id(version.as_str().to_owned()),
            )
            .await
            .map(|out| Self::to_secret(key, out))
            .map_err(|e| {
                // A VersionId that is not even well formed cannot exist.
                if is_code(&e, "InvalidParameterException") || is_code(&e, "ValidationException") {
                    Error::NotFound {
                        key: key.as_str().to_owned(),
                        version: Some(version.clone()),
                        deleted: false,
                    }
                } else {
                    e.into_core(Some(key.as_str()), Some(version))
                }
            });
        record("get_version", key.as_str(), started, &result);
        result
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        let started = Instant::now();
        let name = self.secret_name(key);
        let token = new_client_request_token();
        let metadata = options.metadata.as_ref();
        let result = async {
            let (version, created) = match &options.precondition {
                Some(Precondition::Absent) => {
                    let version =
                        self.create(&name, &value, metadata, &token)
                            .await
                            .map_err(|e| {
                                if is_code(&e, "ResourceExistsException") {
                                    Error::Conflict {
                                        key: key.as_str().to_owned(),
                                        message: "the secret already exists".to_owned(),
                                    }
                                } else if e.is_marked_for_deletion() {
                                    scheduled_for_deletion(key)
                                } else {
                                    e.into_core(Some(key.as_str()), None)
                                }
                            })?;
                    (version, true)
                }
                Some(Precondition::Version(expected)) => (
                    self.put_if_version(key, &name, &value, expected, &token)
                        .await?,
                    false,
                ),
                None => self.put_any(key, &name, &value, metadata, &token).await?,
                Some(_) => return Err(Error::unsupported(BACKEND, "this precondition")),
            };
            if let (Some(m), false) = (metadata, created) {
                self.apply_metadata(&name, m)
                    .await
                    .map_err(|e| e.into_core(Some(key.as_str()), None))?;
            }
            Ok(VersionId::from(version))
        }
        .await;
        record("put", key.as_str(), started, &result);
        result
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = self
            .client
            .delete_secret(
                &self.secret_name(key),
                DeleteMode::RecoveryWindow(self.recovery_window_days),
            )
            .await
            .map(drop)
            .map_err(|e| e.into_core(Some(key.as_str()), None));
        record("delete", key.as_str(), started, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let started = Instant::now();
        let full = format!("{}{prefix}", self.prefix);
        let request = if full.is_empty() {
            ListSecrets::default()
        } else {
            ListSecrets::with_prefix(full.clone())
        };
        let result = self
            .client
            .list_secrets(&request)
            .await
            .map_err(|e| e.into_core(None, None))
            .map(|secrets| {
                let mut keys: Vec<SecretName> = secrets
                    .into_iter()
                    .filter(|s| s.deleted.is_none())
                    // AWS's name filter is case-insensitive; the store's prefix is exact.
                    .filter_map(|s| s.name.strip_prefix(&full).map(|_| s.name.clone()))
                    .filter_map(|name| {
                        let rest = &name[self.prefix.len()..];
                        match SecretName::new(rest) {
                            Ok(k) => Some(k),
                            Err(_) => {
                                tracing::debug!(backend = BACKEND, name = %name, "skipping a secret whose name is not a valid key");
                                None
                            }
                        }
                    })
                    .collect();
                keys.sort();
                keys.dedup();
                keys
            });
        record("list", prefix, started, &result);
        result
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let started = Instant::now();
        let result = self
            .client
            .list_secret_version_ids(&self.secret_name(key), true)
            .await
            .map_err(|e| e.into_core(Some(key.as_str()), None))
            .map(|versions| {
                let mut infos: Vec<VersionInfo> = versions
                    .into_iter()
                    .map(|v| {
                        let current = v.stages.iter().any(|s| s == AWSCURRENT);
                        let mut info =
                            VersionInfo::new(VersionId::from(v.version_id), v.created, current);
                        info.labels = v.stages;
                        info
                    })
                    .collect();
                infos.sort_by(|a, b| {
                    a.created
                        .cmp(&b.created)
                        .then_with(|| a.version.cmp(&b.version))
                });
                infos
            });
        record("versions", key.as_str(), started, &result);
        result
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = self
            .client
            .restore_secret(&self.secret_name(key))
            .await
            .map(drop)
            .map_err(|e| e.into_core(Some(key.as_str()), None));
        record("undelete", key.as_str(), started, &result);
        result
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let name = self.secret_name(key);
        let core = |e: AwsError| e.into_core(Some(key.as_str()), None);
        let result = async {
            // Describe first: a forced delete of a missing secret succeeds silently on AWS,
            // and one already scheduled for deletion must be restored before it can be forced.
            let description = self.client.describe_secret(&name).await.map_err(core)?;
            if description.deleted.is_some() {
                self.client.restore_secret(&name).await.map_err(core)?;
            }
            self.client
                .delete_secret(&name, DeleteMode::Force)
                .await
                .map(drop)
                .map_err(core)
        }
        .await;
        record("purge", key.as_str(), started, &result);
        result
    }

    async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
        let started = Instant::now();
        let names: Vec<String> = keys.iter().map(|k| self.secret_name(k)).collect();
        let batch = match self.client.batch_get_secret_value(&names).await {
            Ok(batch) => batch,
            Err(e) => {
                // The batch call itself failed (or is not offered): read one at a time, so
                // each key gets its own answer.
                tracing::debug!(backend = BACKEND, error = %e, "BatchGetSecretValue failed; reading one at a time");
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    out.push(self.get(key).await);
                }
                return out;
            }
        };
        let mut by_name: BTreeMap<String, SecretValueOutput> = batch
            .values
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect();
        let errors: BTreeMap<String, (String, String)> = batch
            .errors
            .into_iter()
            .map(|e| (e.secret_id, (e.code, e.message)))
            .collect();
        let out: Vec<Result<Secret, Error>> = keys
            .iter()
            .zip(&names)
            .map(|(key, name)| {
                if let Some(v) = by_name.remove(name) {
                    return Ok(Self::to_secret(key, v));
                }
                match errors.get(name) {
                    Some((code, message)) => Err(AwsError::service(
                        "secretsmanager",
                        "BatchGetSecretValue",
                        http::StatusCode::BAD_REQUEST,
                        code,
                        message,
                        None,
                    )
                    .into_core(Some(key.as_str()), None)),
                    None => Err(Error::not_found(key)),
                }
            })
            .collect();
        let summary: Result<(), Error> = Ok(());
        record("get_many", "", started, &summary);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_sigv4::{Credentials, StaticProvider};

    fn client() -> SecretsManagerClient {
        SecretsManagerClient::builder()
            .region("us-east-1")
            .endpoint("http://127.0.0.1:9")
            .credentials(StaticProvider::new(Credentials::new("A", "S")))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn builder_checks_prefix_and_window() {
        let ok = SecretsManagerStore::builder()
            .client(client())
            .prefix("app/prod/")
            .build()
            .await
            .unwrap();
        assert_eq!(
            ok.secret_name(&SecretName::new("db/pw").unwrap()),
            "app/prod/db/pw"
        );
        for bad in [
            SecretsManagerStore::builder()
                .client(client())
                .prefix("/abs"),
            SecretsManagerStore::builder()
                .client(client())
                .recovery_window_days(3),
        ] {
            assert!(matches!(bad.build().await, Err(Error::Config { .. })));
        }
    }

    #[tokio::test]
    async fn no_credentials_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_vars([
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let err = SecretsManagerStore::builder()
            .env(env)
            .check_credentials(true)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { message } if message.contains("no AWS credentials")),
            "{err}"
        );
    }
}
