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
//! | `versions` | DescribeSecret (a secret scheduled for deletion is `NotFound { deleted: true }`), then ListSecretVersionIds (deprecated versions included); labels are the stages |
//! | [`metadata`](SecretsManagerStore::metadata) | DescribeSecret: description and tags |
//! | `get_many` | BatchGetSecretValue, 20 ids per call |
//!
//! [`VersionId`]s are AWS's VersionIds (UUIDs); the current version is the one staged
//! `AWSCURRENT`. Text values are stored as `SecretString`, other bytes as `SecretBinary`.
//! `get` makes one call (GetSecretValue), so the [`Secret`] it returns carries the version
//! and creation time but not the description and tags (its `metadata` is empty, and
//! [`Capabilities::metadata_on_read`] is false): read those with
//! [`SecretsManagerStore::metadata`] (one DescribeSecret) when needed.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom_core::{
    Capabilities, Error, Metadata, Precondition, PutOptions, Scope, Secret, SecretName,
    SecretStore, SecretValue, VersionId, VersionInfo, async_trait,
};
use strongroom_sigv4::{Env, ProvideCredentials};

use crate::client_settings::ClientSettings;
use crate::error::{AwsError, BACKEND};
use crate::secretsmanager::{
    AWSCURRENT, AWSPREVIOUS, ClientBuilder, CreateSecret, DeleteMode, ListSecrets,
    SecretDescription, SecretValueOutput, SecretsManagerClient, VersionSelector,
    new_client_request_token,
};
use crate::sts::AssumeRoleRequest;

/// The recovery window `delete` uses unless configured (the AWS default).
pub const DEFAULT_RECOVERY_WINDOW_DAYS: u32 = 30;

/// A [`SecretStore`] on AWS Secrets Manager, optionally scoped to a folder
/// ([`StoreBuilder::prefix`]).
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
    scope: Scope,
    kms_key_id: Option<String>,
    recovery_window_days: u32,
}

impl fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("client", &self.client)
            .field("scope", &self.scope)
            .field("kms_key_id", &self.kms_key_id)
            .field("recovery_window_days", &self.recovery_window_days)
            .finish()
    }
}

/// The variable [`StoreBuilder::from_env`] reads the name prefix from.
pub const PREFIX_VAR: &str = "STRONGROOM_AWS_PREFIX";

/// Configures a [`SecretsManagerStore`]: the one way to build one.
/// [`from_env`](Self::from_env) fills it from the environment; the facade fills it from its
/// TOML and `StoreSpec`; code calls the setters. Region, endpoint and credentials that no
/// setter names are found the AWS way when the store is built (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, the default credential chain).
#[derive(Default)]
#[must_use]
pub struct StoreBuilder {
    client: Option<SecretsManagerClient>,
    env: Option<Env>,
    region: Option<String>,
    endpoint: Option<String>,
    profile: Option<String>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    assume_role: Option<AssumeRoleRequest>,
    request_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry_max_attempts: Option<u32>,
    retry_max_total: Option<Duration>,
    prefix: String,
    kms_key_id: Option<String>,
    recovery_window_days: Option<u32>,
    check_credentials: bool,
}

impl fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("profile", &self.profile)
            .field("assume_role", &self.assume_role)
            .field("request_timeout", &self.request_timeout)
            .field("retry_max_attempts", &self.retry_max_attempts)
            .field("retry_max_total", &self.retry_max_total)
            .field("prefix", &self.prefix)
            .field("kms_key_id", &self.kms_key_id)
            .field("recovery_window_days", &self.recovery_window_days)
            .finish_non_exhaustive()
    }
}

impl StoreBuilder {
    /// A builder with what the process environment says; see
    /// [`from_env_with`](Self::from_env_with).
    ///
    /// # Errors
    /// As [`from_env_with`](Self::from_env_with).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_with(Env::process())
    }

    /// A builder with the strongroom settings `env` holds (region, endpoint, profile and
    /// credentials are read from `env` the AWS way when the store is built):
    ///
    /// | Variable | Setter |
    /// |---|---|
    /// | `STRONGROOM_AWS_PREFIX` | [`prefix`](Self::prefix) |
    /// | `STRONGROOM_AWS_KMS_KEY_ID` | [`kms_key_id`](Self::kms_key_id) |
    /// | `STRONGROOM_AWS_RECOVERY_WINDOW_DAYS` | [`recovery_window_days`](Self::recovery_window_days) |
    /// | `STRONGROOM_AWS_ASSUME_ROLE_ARN`, `STRONGROOM_AWS_ROLE_SESSION_NAME`, `STRONGROOM_AWS_ROLE_DURATION_SECS`, `STRONGROOM_AWS_ROLE_EXTERNAL_ID` | [`assume_role`](Self::assume_role) |
    /// | `STRONGROOM_REQUEST_TIMEOUT_SECS` | [`request_timeout`](Self::request_timeout) |
    /// | `STRONGROOM_CONNECT_TIMEOUT_SECS` | [`connect_timeout`](Self::connect_timeout) |
    /// | `STRONGROOM_RETRY_MAX_ATTEMPTS` (else `AWS_MAX_ATTEMPTS`) | [`retry_max_attempts`](Self::retry_max_attempts) |
    /// | `STRONGROOM_RETRY_MAX_TOTAL_SECS` | [`retry_max_total`](Self::retry_max_total) |
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is not a number.
    pub fn from_env_with(env: Env) -> Result<Self, Error> {
        let shared = ClientSettings::from_env(&env)?;
        let mut builder = Self {
            assume_role: shared.assume_role,
            request_timeout: shared.request_timeout,
            connect_timeout: shared.connect_timeout,
            retry_max_attempts: shared.retry_max_attempts,
            retry_max_total: shared.retry_max_total,
            ..Self::default()
        };
        if let Some(prefix) = env.get(PREFIX_VAR) {
            builder = builder.prefix(prefix);
        }
        if let Some(key) = env.get("STRONGROOM_AWS_KMS_KEY_ID") {
            builder = builder.kms_key_id(key);
        }
        if let Some(days) = env.get("STRONGROOM_AWS_RECOVERY_WINDOW_DAYS") {
            const NAME: &str = "STRONGROOM_AWS_RECOVERY_WINDOW_DAYS";
            let days = days.trim().parse::<u64>().map_err(|_| {
                Error::config(format!("{NAME} must be a whole number, got {days:?}"))
            })?;
            let days = u32::try_from(days)
                .map_err(|_| Error::config(format!("{NAME} is too large: {days}")))?;
            builder = builder.recovery_window_days(days);
        }
        Ok(builder.env(env))
    }

    /// Uses this client (its region, endpoint, credentials and HTTP settings); the client
    /// settings below are then ignored.
    pub fn client(mut self, client: SecretsManagerClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Reads the AWS variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint URL (else `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, the
    /// region's).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The shared-config profile whose credentials (and region, unless `AWS_REGION` or
    /// [`region`](Self::region) says otherwise) are used, instead of `AWS_PROFILE` and the
    /// default chain.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// The credentials provider (else the profile's, else the default chain).
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// Assume this IAM role (STS AssumeRole) with the credentials found otherwise; the
    /// role's credentials are cached and refreshed before they expire.
    pub fn assume_role(mut self, request: AssumeRoleRequest) -> Self {
        self.assume_role = Some(request);
        self
    }

    /// Time for one attempt of one request (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Time to open a connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Attempts per call, the first included (default 3; 1 never retries).
    pub fn retry_max_attempts(mut self, attempts: u32) -> Self {
        self.retry_max_attempts = Some(attempts);
        self
    }

    /// Budget of one call, every attempt and wait included (default 10 s).
    pub fn retry_max_total(mut self, total: Duration) -> Self {
        self.retry_max_total = Some(total);
        self
    }

    /// Scopes the store to the folder `prefix` (a [`Scope`]): `prod/app`, `prod/app/` and
    /// `/prod/app` all make key `db/pw` the secret `prod/app/db/pw`, and nothing outside
    /// `prod/app/` (not `prod/application/...`) can be listed, read, written or deleted.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The KMS key (id, ARN or alias) that secrets this store creates are encrypted with
    /// (default: the account's `aws/secretsmanager` key). Existing secrets keep theirs.
    pub fn kms_key_id(mut self, key: impl Into<String>) -> Self {
        self.kms_key_id = Some(key.into());
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
            crate::json_api::check_credentials(
                &**store.client.credentials_provider(),
                "AWS Secrets Manager",
            )
            .await?;
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
        let scope = Scope::new(&self.prefix).map_err(|e| {
            Error::config(format!(
                "the Secrets Manager name prefix {:?} is not a folder name: {e}",
                self.prefix
            ))
        })?;
        let kms_key_id = self.kms_key_id.clone();
        let client = match self.client {
            Some(c) => c,
            None => self
                .client_builder()
                .and_then(ClientBuilder::build)
                .map_err(|e| Error::config(format!("AWS Secrets Manager: {e}")))?,
        };
        Ok(SecretsManagerStore {
            client,
            scope,
            kms_key_id,
            recovery_window_days: days,
        })
    }

    /// The client settings, with the profile and the role turned into a credentials provider
    /// (resolved as for SSM: [`ClientSettings::resolve`]).
    fn client_builder(self) -> Result<ClientBuilder, AwsError> {
        let resolved = ClientSettings {
            env: self.env,
            region: self.region,
            profile: self.profile,
            credentials: self.credentials,
            assume_role: self.assume_role,
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            retry_max_attempts: self.retry_max_attempts,
            retry_max_total: self.retry_max_total,
        }
        .resolve()?;
        let mut builder = SecretsManagerClient::builder().env(resolved.env);
        if let Some(region) = resolved.region {
            builder = builder.region(region);
        }
        if let Some(endpoint) = self.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(credentials) = resolved.credentials {
            builder = builder.credentials(credentials);
        }
        if let Some(http) = resolved.http {
            builder = builder.http_client(http);
        }
        Ok(builder)
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
            scope: Scope::root(),
            kms_key_id: None,
            recovery_window_days: DEFAULT_RECOVERY_WINDOW_DAYS,
        }
    }

    /// A builder.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// A store configured from the process environment: region (`AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, profile), endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`,
    /// `AWS_ENDPOINT_URL`), credentials (the default chain, checked now), and the
    /// strongroom settings of [`StoreBuilder::from_env_with`] (the folder prefix
    /// `STRONGROOM_AWS_PREFIX`, ...).
    ///
    /// # Errors
    /// [`Error::Config`] naming what is missing when no region or no credentials are found,
    /// or the variable that is malformed.
    pub async fn from_env() -> Result<Self, Error> {
        StoreBuilder::from_env()?
            .check_credentials(true)
            .build()
            .await
    }

    /// The client underneath, for operations the trait does not have.
    pub fn client(&self) -> &SecretsManagerClient {
        &self.client
    }

    /// The folder every name of this store is in, with its trailing `/` (`prod/app/`), or
    /// `""` for an unscoped store.
    pub fn prefix(&self) -> &str {
        self.scope.folder()
    }

    /// The scope (see [`StoreBuilder::prefix`]).
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The AWS secret name of `key`.
    pub fn secret_name(&self, key: &SecretName) -> String {
        self.scope.full_str(key)
    }

    /// The description and tags of `key` (one DescribeSecret): what `put_with` stored as
    /// [`Metadata`]. [`get`](SecretStore::get) does not report them (GetSecretValue carries
    /// neither, and a second request per read would double the hot path; see
    /// [`Capabilities::metadata_on_read`]), so read them here when needed.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`deleted: true` for a secret scheduled for deletion), or any
    /// transport or authentication error.
    pub async fn metadata(&self, key: &SecretName) -> Result<Metadata, Error> {
        let started = Instant::now();
        let result = self.describe(key).await.map(|d| {
            let mut metadata = Metadata::default();
            metadata.description = d.description;
            for (name, value) in d.tags {
                metadata = metadata.tag(name, value);
            }
            metadata
        });
        record("metadata", key.as_str(), started, &result);
        result
    }

    /// DescribeSecret of `key`, a secret scheduled for deletion being `NotFound { deleted:
    /// true }` as `get` reports it.
    async fn describe(&self, key: &SecretName) -> Result<SecretDescription, Error> {
        let description = self
            .client
            .describe_secret(&self.secret_name(key))
            .await
            .map_err(|e| e.into_core(Some(key.as_str()), None))?;
        if description.deleted.is_some() {
            return Err(Error::NotFound {
                key: key.as_str().to_owned(),
                version: None,
                deleted: true,
            });
        }
        Ok(description)
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
        if let Some(key) = &self.kms_key_id {
            input = input.kms_key_id(key.as_str());
        }
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

/// Oldest first: by creation time, then (AWS records whole seconds, so versions written
/// within one tie, and LocalStack then lists them in any order) by staging label, unlabelled
/// and other labels before `AWSPREVIOUS` before `AWSCURRENT`, then by id.
fn version_order(a: &VersionInfo, b: &VersionInfo) -> std::cmp::Ordering {
    fn rank(info: &VersionInfo) -> u8 {
        if info.current {
            2
        } else if info.labels.iter().any(|l| l == AWSPREVIOUS) {
            1
        } else {
            0
        }
    }
    a.created
        .cmp(&b.created)
        .then_with(|| rank(a).cmp(&rank(b)))
        .then_with(|| a.version.cmp(&b.version))
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
        let mut capabilities = Capabilities::ALL;
        // GetSecretValue carries no description or tags: see `metadata`.
        capabilities.metadata_on_read = false;
        capabilities
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
        let full = self.scope.list_prefix(prefix);
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
                        let rest = self.scope.strip(&name)?;
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
        let result = async {
            // Describe first (versions is not a hot path): a secret scheduled for deletion
            // is NotFound { deleted: true } on every server, although moto still lists its
            // versions, and a missing one is NotFound, although moto answers
            // ListSecretVersionIds for it with a 500.
            self.describe(key).await?;
            self.client
                .list_secret_version_ids(&self.secret_name(key), true)
                .await
                .map_err(|e| e.into_core(Some(key.as_str()), None))
        }
        .await
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
            infos.sort_by(version_order);
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
        let by_name: BTreeMap<String, SecretValueOutput> = batch
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
                // Looked up, not taken: a name asked for twice gets the same answer twice.
                if let Some(v) = by_name.get(name) {
                    return Ok(Self::to_secret(key, v.clone()));
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

    /// LocalStack lists versions written within one second in any order, all with the same
    /// whole-second time: the order must come from the stages, then the ids.
    #[test]
    fn versions_of_one_second_order_by_stage_then_id() {
        let second = std::time::UNIX_EPOCH
            .checked_add(Duration::from_secs(1_700_000_000))
            .unwrap();
        let version = |id: &str, stage: Option<&str>| {
            let mut info =
                VersionInfo::new(VersionId::from(id), Some(second), stage == Some(AWSCURRENT));
            info.labels = stage.map(str::to_owned).into_iter().collect();
            info
        };
        let mut listed = vec![
            version("b", None),
            version("c", Some(AWSCURRENT)),
            version("d", Some(AWSPREVIOUS)),
            version("a", None),
        ];
        listed.sort_by(version_order);
        let ids: Vec<&str> = listed.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d", "c"]);

        // An older second still comes first, whatever its stage.
        let mut older = version("z", Some(AWSCURRENT));
        older.created = second.checked_sub(Duration::from_secs(1));
        listed.push(older);
        listed.sort_by(version_order);
        assert_eq!(listed.first().map(|v| v.version.as_str()), Some("z"));
    }

    #[tokio::test]
    async fn builder_checks_prefix_and_window() {
        for prefix in ["app/prod/", "app/prod", "/app/prod", "/app/prod/"] {
            let ok = SecretsManagerStore::builder()
                .client(client())
                .prefix(prefix)
                .build()
                .await
                .unwrap();
            assert_eq!(
                ok.secret_name(&SecretName::new("db/pw").unwrap()),
                "app/prod/db/pw",
                "{prefix}"
            );
            assert_eq!(ok.prefix(), "app/prod/");
        }
        let root = SecretsManagerStore::builder()
            .client(client())
            .build()
            .await
            .unwrap();
        assert_eq!(root.secret_name(&SecretName::new("db").unwrap()), "db");
        for bad in [
            SecretsManagerStore::builder()
                .client(client())
                .prefix("a//b"),
            SecretsManagerStore::builder()
                .client(client())
                .prefix("a/../b"),
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

    #[test]
    fn from_env_reads_every_strongroom_setting() {
        let env = Env::from_vars([
            ("STRONGROOM_AWS_PREFIX", "prod/app"),
            ("STRONGROOM_AWS_KMS_KEY_ID", "alias/app"),
            ("STRONGROOM_AWS_RECOVERY_WINDOW_DAYS", "7"),
            (
                "STRONGROOM_AWS_ASSUME_ROLE_ARN",
                "arn:aws:iam::123456789012:role/app",
            ),
            ("STRONGROOM_AWS_ROLE_SESSION_NAME", "app-session"),
            ("STRONGROOM_AWS_ROLE_DURATION_SECS", "900"),
            ("STRONGROOM_AWS_ROLE_EXTERNAL_ID", "ext-1"),
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "9"),
            ("STRONGROOM_CONNECT_TIMEOUT_SECS", "1"),
            ("AWS_MAX_ATTEMPTS", "5"),
            ("STRONGROOM_RETRY_MAX_TOTAL_SECS", "20"),
        ]);
        let b = StoreBuilder::from_env_with(env).unwrap();
        assert_eq!(b.prefix, "prod/app");
        assert_eq!(b.kms_key_id.as_deref(), Some("alias/app"));
        assert_eq!(b.recovery_window_days, Some(7));
        let role = b.assume_role.as_ref().unwrap();
        assert_eq!(role.role_arn, "arn:aws:iam::123456789012:role/app");
        assert_eq!(role.session_name, "app-session");
        assert_eq!(role.duration, Some(Duration::from_secs(900)));
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        assert_eq!(b.request_timeout, Some(Duration::from_secs(9)));
        assert_eq!(b.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(b.retry_max_attempts, Some(5));
        assert_eq!(b.retry_max_total, Some(Duration::from_secs(20)));

        let env = Env::from_vars([
            ("STRONGROOM_RETRY_MAX_ATTEMPTS", "2"),
            ("AWS_MAX_ATTEMPTS", "5"),
        ]);
        assert_eq!(
            StoreBuilder::from_env_with(env).unwrap().retry_max_attempts,
            Some(2)
        );
    }

    #[test]
    fn from_env_names_a_malformed_variable() {
        for (name, value) in [
            ("STRONGROOM_AWS_RECOVERY_WINDOW_DAYS", "seven"),
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "-1"),
            ("STRONGROOM_RETRY_MAX_ATTEMPTS", "99999999999"),
        ] {
            let err = StoreBuilder::from_env_with(Env::from_vars([(name, value)])).unwrap_err();
            assert!(
                matches!(&err, Error::Config { message } if message.contains(name)),
                "{err}"
            );
        }
    }

    #[test]
    fn a_named_profile_gives_region_and_credentials_without_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(aws.join("config"), "[profile team]\nregion = eu-north-1\n").unwrap();
        std::fs::write(
            aws.join("credentials"),
            "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = S\n",
        )
        .unwrap();
        let env = Env::from_vars([("HOME", dir.path().to_str().unwrap())]);
        let store = SecretsManagerStore::builder()
            .env(env)
            .profile("team")
            .build_lazy()
            .unwrap();
        assert_eq!(store.client().region(), "eu-north-1");
    }
}
