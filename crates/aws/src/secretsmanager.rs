//! [`SecretsManagerClient`]: AWS Secrets Manager over its JSON 1.1 protocol
//! (`POST /` with `X-Amz-Target: secretsmanager.<Operation>`), signed with SigV4.
//!
//! Every operation the backend needs is here with AWS's own names and shapes; the
//! [`SecretStore`](strongroom_core::SecretStore) on top is in [`SecretsManagerStore`](crate::SecretsManagerStore).
//!
//! Retries: reads are safe to repeat and are retried by the shared HTTP client; so are
//! CreateSecret and PutSecretValue, because every one carries a `ClientRequestToken`
//! (generated per logical write when the caller gives none) which makes a repeat a no-op on
//! the server. Delete, restore and stage moves are sent once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strongroom_core::SecretValue;
use strongroom_http::{HttpClient, Retry};
use strongroom_sigv4::{Env, ProvideCredentials};
use zeroize::Zeroizing;

use crate::error::AwsError;
use crate::json_api::{JsonApi, Service, Settings};
use crate::timestamp::from_epoch_seconds;

const SERVICE: &str = "secretsmanager";
/// The stage Secrets Manager gives the current version.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The stage Secrets Manager gives the version before the current one.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// BatchGetSecretValue takes at most this many secret ids per call.
pub const BATCH_GET_MAX_IDS: usize = 20;
/// The most pages one paged call (ListSecrets, ListSecretVersionIds, one BatchGetSecretValue
/// chunk) reads: a server that keeps handing out fresh `NextToken`s would otherwise keep the
/// loop, and the memory it fills, growing for ever. 1,000 pages of ListSecrets is 100,000
/// secrets at the largest page size; past it the call fails with [`AwsError::Malformed`].
pub const MAX_PAGES: usize = 1000;

/// The error of a listing that did not end within [`MAX_PAGES`].
fn too_many_pages(operation: &'static str) -> AwsError {
    AwsError::Malformed {
        service: SERVICE,
        operation,
        reason: format!("NextToken did not end within {MAX_PAGES} pages"),
    }
}

/// A Secrets Manager client. Cheap to clone.
#[derive(Clone)]
pub struct SecretsManagerClient {
    inner: Arc<JsonApi>,
}

impl fmt::Debug for SecretsManagerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerClient")
            .field("endpoint", self.inner.endpoint())
            .field("region", &self.inner.region())
            .finish_non_exhaustive()
    }
}

/// Configures a [`SecretsManagerClient`].
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    env: Option<Env>,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    http: Option<HttpClient>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Reads variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint (else `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, the
    /// region's public endpoint).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The credentials (else the cached [`default_provider`](crate::default_provider)).
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// The HTTP client (else [`HttpClient::new`]: 5 s timeouts, 3 attempts).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`AwsError::Config`] when no region is found, the region is not a region name
    /// (`[a-z0-9-]`, at most 32 characters), or the endpoint is not a URL.
    pub fn build(self) -> Result<SecretsManagerClient, AwsError> {
        let settings = Settings {
            env: self.env,
            region: self.region,
            endpoint: self.endpoint,
            credentials: self.credentials,
            http: self.http,
        };
        let service = Service {
            name: SERVICE,
            endpoint_id: "SECRETS_MANAGER",
            target: "secretsmanager",
        };
        Ok(SecretsManagerClient {
            inner: Arc::new(JsonApi::build(settings, service)?),
        })
    }
}

/// Which version GetSecretValue reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VersionSelector {
    /// `AWSCURRENT`.
    #[default]
    Current,
    /// A version by its id.
    Id(String),
    /// The version holding a staging label.
    Stage(String),
}

/// A secret's value as GetSecretValue or BatchGetSecretValue returned it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecretValueOutput {
    /// The secret's ARN.
    pub arn: String,
    /// The secret's name.
    pub name: String,
    /// The version read.
    pub version_id: String,
    /// Its staging labels.
    pub version_stages: Vec<String>,
    /// When the version was created.
    pub created: Option<SystemTime>,
    /// The value: `SecretString`'s UTF-8 bytes, or `SecretBinary` decoded.
    pub value: SecretValue,
    /// Whether it came as `SecretBinary`.
    pub binary: bool,
}

/// One secret BatchGetSecretValue could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchGetError {
    /// The id asked for.
    pub secret_id: String,
    /// AWS's error code, such as `ResourceNotFoundException`.
    pub code: String,
    /// AWS's message.
    pub message: String,
}

/// What BatchGetSecretValue returned, over all its pages.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BatchGetOutput {
    /// The secrets read.
    pub values: Vec<SecretValueOutput>,
    /// The ids that failed, with why.
    pub errors: Vec<BatchGetError>,
}

/// The result of CreateSecret, PutSecretValue, UpdateSecret, RestoreSecret, DeleteSecret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct WriteOutput {
    /// The secret's ARN.
    #[serde(rename = "ARN", default)]
    pub arn: String,
    /// The secret's name.
    #[serde(default)]
    pub name: String,
    /// The version written, when the call made one.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Its staging labels (PutSecretValue).
    #[serde(default)]
    pub version_stages: Vec<String>,
}

/// CreateSecret's input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreateSecret {
    /// The secret's name.
    pub name: String,
    /// Its first value.
    pub value: SecretValue,
    /// A description.
    pub description: Option<String>,
    /// The KMS key to encrypt with (else `aws/secretsmanager`).
    pub kms_key_id: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The idempotency token, which becomes the first VersionId (generated when absent).
    pub client_request_token: Option<String>,
}

impl CreateSecret {
    /// A secret `name` with first value `value`.
    pub fn new(name: impl Into<String>, value: SecretValue) -> Self {
        Self {
            name: name.into(),
            value,
            description: None,
            kms_key_id: None,
            tags: BTreeMap::new(),
            client_request_token: None,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Sets the KMS key.
    #[must_use]
    pub fn kms_key_id(mut self, key: impl Into<String>) -> Self {
        self.kms_key_id = Some(key.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the idempotency token (32 to 64 characters).
    #[must_use]
    pub fn client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }
}

/// How DeleteSecret deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteMode {
    /// Schedule deletion after this many days (7 to 30); RestoreSecret undoes it meanwhile.
    RecoveryWindow(u32),
    /// Delete at once, for good (`ForceDeleteWithoutRecovery`).
    Force,
}

/// DescribeSecret's answer (also the shape of a ListSecrets entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretDescription {
    /// The ARN.
    pub arn: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The KMS key, when not the default.
    pub kms_key_id: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Version id to its staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
    /// When the secret was created.
    pub created: Option<SystemTime>,
    /// When it last changed.
    pub last_changed: Option<SystemTime>,
    /// When it was scheduled for deletion, if it is.
    pub deleted: Option<SystemTime>,
    /// Whether Secrets Manager rotates it on a schedule (`RotationEnabled`).
    pub rotation_enabled: bool,
    /// The rotation Lambda function (`RotationLambdaARN`), when one is set.
    pub rotation_lambda_arn: Option<String>,
    /// The rotation schedule (`RotationRules`), when one is set.
    pub rotation_rules: Option<RotationRules>,
    /// When the next scheduled rotation is (`NextRotationDate`).
    pub next_rotation: Option<SystemTime>,
    /// When it was last rotated (`LastRotatedDate`).
    pub last_rotated: Option<SystemTime>,
}

/// A secret's rotation schedule, Secrets Manager's `RotationRules`: every N days, or a
/// `rate()` / `cron()` schedule expression (evaluated by AWS, in UTC), with an optional
/// window (`Duration`, such as `"3h"`) the rotation must start within.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RotationRules {
    /// Rotate this many days after the last rotation (1 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<u32>,
    /// The window the rotation starts within, such as `"3h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// `rate(10 days)` or `cron(0 16 1,15 * ? *)`, instead of `automatically_after_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

impl RotationRules {
    /// Every `days` days.
    pub fn after_days(days: u32) -> Self {
        Self {
            automatically_after_days: Some(days),
            ..Self::default()
        }
    }

    /// On a schedule expression: `rate(30 days)`, `cron(0 3 ? * SUN *)`.
    pub fn schedule(expression: impl Into<String>) -> Self {
        Self {
            schedule_expression: Some(expression.into()),
            ..Self::default()
        }
    }

    /// Starting within `window` (such as `"3h"`) of the scheduled time.
    #[must_use]
    pub fn window(mut self, window: impl Into<String>) -> Self {
        self.duration = Some(window.into());
        self
    }
}

/// RotateSecret's input: turn on (or change) Secrets Manager's own rotation of a secret.
///
/// ```
/// use strongroom_aws::{RotateSecret, RotationRules};
///
/// let rotation = RotateSecret::new()
///     .lambda("arn:aws:lambda:eu-west-1:123456789012:function:rotate-db")
///     .rules(RotationRules::after_days(30))
///     .rotate_immediately(false);
/// assert_eq!(rotation.rules.unwrap().automatically_after_days, Some(30));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotateSecret {
    /// The rotation Lambda function's ARN (needed unless the secret is managed by another
    /// service or already has one).
    pub lambda_arn: Option<String>,
    /// The schedule.
    pub rules: Option<RotationRules>,
    /// Rotate now as well (AWS's default, `None`, is true); false only tests the function
    /// and waits for the schedule.
    pub rotate_immediately: Option<bool>,
    /// The idempotency token, which becomes the new version's id (generated when absent).
    pub client_request_token: Option<String>,
}

impl RotateSecret {
    /// No function, no schedule: as is, RotateSecret rotates once with what the secret has.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rotation Lambda function.
    #[must_use]
    pub fn lambda(mut self, arn: impl Into<String>) -> Self {
        self.lambda_arn = Some(arn.into());
        self
    }

    /// The schedule.
    #[must_use]
    pub fn rules(mut self, rules: RotationRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Whether to rotate now too.
    #[must_use]
    pub fn rotate_immediately(mut self, now: bool) -> Self {
        self.rotate_immediately = Some(now);
        self
    }

    /// The idempotency token (32 to 64 characters).
    #[must_use]
    pub fn client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }
}

/// RotateSecret's body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotateBody<'a> {
    secret_id: &'a str,
    client_request_token: &'a str,
    #[serde(rename = "RotationLambdaARN", skip_serializing_if = "Option::is_none")]
    rotation_lambda_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_rules: Option<&'a RotationRules>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotate_immediately: Option<bool>,
}

impl SecretDescription {
    /// The version holding `AWSCURRENT`.
    pub fn current_version(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
            .map(|(id, _)| id.as_str())
    }
}

/// ListSecrets' input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListSecrets {
    /// Only names starting with this (AWS matches it case-insensitively; the store filters
    /// exactly afterwards).
    pub name_prefix: Option<String>,
    /// Page size (1 to 100).
    pub max_results: Option<u32>,
    /// Also list secrets scheduled for deletion.
    pub include_planned_deletion: bool,
}

impl ListSecrets {
    /// Lists names starting with `prefix`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            name_prefix: Some(prefix.into()),
            ..Self::default()
        }
    }

    /// Sets the page size.
    #[must_use]
    pub fn max_results(mut self, n: u32) -> Self {
        self.max_results = Some(n);
        self
    }
}

/// One page of ListSecrets.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListSecretsPage {
    /// The secrets on this page.
    pub secrets: Vec<SecretDescription>,
    /// The token for the next page, if there is one.
    pub next_token: Option<String>,
}

/// One version from ListSecretVersionIds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretVersion {
    /// The version id.
    pub version_id: String,
    /// Its staging labels; none for a deprecated version.
    pub stages: Vec<String>,
    /// When it was created.
    pub created: Option<SystemTime>,
}

// ---- wire shapes -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireValue {
    #[serde(rename = "ARN", default)]
    arn: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version_id: String,
    #[serde(default)]
    version_stages: Vec<String>,
    created_date: Option<f64>,
    secret_string: Option<Zeroizing<String>>,
    secret_binary: Option<Zeroizing<String>>,
}

impl WireValue {
    pub(crate) fn into_output(self) -> Result<SecretValueOutput, String> {
        let (value, binary) = match (self.secret_string, self.secret_binary) {
            (Some(text), _) => (SecretValue::from(text.as_bytes()), false),
            (None, Some(b64)) => {
                let bytes = Zeroizing::new(
                    STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|_| "SecretBinary is not valid base64".to_owned())?,
                );
                (SecretValue::from(bytes), true)
            }
            (None, None) => return Err("neither SecretString nor SecretBinary".to_owned()),
        };
        Ok(SecretValueOutput {
            arn: self.arn,
            name: self.name,
            version_id: self.version_id,
            version_stages: self.version_stages,
            created: self.created_date.and_then(from_epoch_seconds),
            value,
            binary,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct WireTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireDescription {
    #[serde(rename = "ARN")]
    arn: String,
    name: String,
    description: Option<String>,
    kms_key_id: Option<String>,
    tags: Vec<WireTag>,
    version_ids_to_stages: BTreeMap<String, Vec<String>>,
    #[serde(rename = "SecretVersionsToStages")]
    secret_versions_to_stages: BTreeMap<String, Vec<String>>,
    created_date: Option<f64>,
    last_changed_date: Option<f64>,
    deleted_date: Option<f64>,
    rotation_enabled: Option<bool>,
    #[serde(rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<String>,
    rotation_rules: Option<RotationRules>,
    next_rotation_date: Option<f64>,
    last_rotated_date: Option<f64>,
}

impl From<WireDescription> for SecretDescription {
    fn from(w: WireDescription) -> Self {
        let mut versions = w.version_ids_to_stages;
        versions.extend(w.secret_versions_to_stages);
        Self {
            arn: w.arn,
            name: w.name,
            description: w.description,
            kms_key_id: w.kms_key_id,
            tags: w.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            versions,
            created: w.created_date.and_then(from_epoch_seconds),
            last_changed: w.last_changed_date.and_then(from_epoch_seconds),
            deleted: w.deleted_date.and_then(from_epoch_seconds),
            rotation_enabled: w.rotation_enabled.unwrap_or(false),
            rotation_lambda_arn: w.rotation_lambda_arn.filter(|arn| !arn.is_empty()),
            rotation_rules: w.rotation_rules,
            next_rotation: w.next_rotation_date.and_then(from_epoch_seconds),
            last_rotated: w.last_rotated_date.and_then(from_epoch_seconds),
        }
    }
}

/// A secret value as the wire carries it: `SecretString` when it is UTF-8 (borrowed from
/// the value, no copy), else `SecretBinary` (its base64, in a buffer wiped on drop).
enum WireSecret<'a> {
    Text(&'a str),
    Binary(Zeroizing<String>),
}

impl<'a> WireSecret<'a> {
    fn of(value: &'a SecretValue) -> Self {
        match std::str::from_utf8(value.expose()) {
            Ok(text) => Self::Text(text),
            Err(_) => {
                // Sized once: `encode_string` into a buffer of the final length never
                // reallocates, so no unwiped partial copy is left behind.
                let mut b64 = Zeroizing::new(String::with_capacity(
                    base64::encoded_len(value.expose().len(), true).unwrap_or_default(),
                ));
                STANDARD.encode_string(value.expose(), &mut b64);
                Self::Binary(b64)
            }
        }
    }

    fn string(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    fn binary(&self) -> Option<&str> {
        match self {
            Self::Text(_) => None,
            Self::Binary(b64) => Some(b64.as_str()),
        }
    }
}

/// The body of CreateSecret and PutSecretValue. It borrows the secret value instead of
/// copying it into a JSON tree (whose strings would be freed without being wiped); it is
/// serialised straight into the wiped request body (see `transport::json_body`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WriteBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_id: Option<&'a str>,
    client_request_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_stages: Option<&'a [String]>,
}

impl<'a> WriteBody<'a> {
    fn new(token: &'a str, secret: &'a WireSecret<'a>) -> Self {
        Self {
            name: None,
            secret_id: None,
            client_request_token: token,
            secret_string: secret.string(),
            secret_binary: secret.binary(),
            description: None,
            kms_key_id: None,
            tags: None,
            version_stages: None,
        }
    }
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// A fresh idempotency token: a random UUID v4 (36 characters, in AWS's 32 to 64 range).
pub fn new_client_request_token() -> String {
    let mut b = [0u8; 16];
    // SystemRandom only fails if the OS has no randomness source; fall back to the clock
    // so a write still gets a distinct token.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_lower(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(
        String::with_capacity(bytes.len().saturating_mul(2)),
        |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        },
    )
}

impl SecretsManagerClient {
    /// A builder; every setting falls back to the AWS environment conventions.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the process environment.
    ///
    /// # Errors
    /// See [`ClientBuilder::build`].
    pub fn from_env() -> Result<Self, AwsError> {
        Self::builder().build()
    }

    /// The credentials provider this client signs with.
    pub fn credentials_provider(&self) -> &Arc<dyn ProvideCredentials> {
        self.inner.credentials()
    }

    /// The region this client signs for.
    pub fn region(&self) -> &str {
        self.inner.region()
    }

    /// Sends one JSON 1.1 call; returns the parsed answer.
    async fn call<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        operation: &'static str,
        input: &I,
        retry: Retry,
    ) -> Result<O, AwsError> {
        self.inner.call(operation, input, retry).await
    }

    /// GetSecretValue.
    ///
    /// # Errors
    /// `ResourceNotFoundException` for a missing secret or version; `InvalidRequestException`
    /// for a secret scheduled for deletion; transport and auth errors.
    pub async fn get_secret_value(
        &self,
        secret_id: &str,
        version: &VersionSelector,
    ) -> Result<SecretValueOutput, AwsError> {
        let mut input = json!({"SecretId": secret_id});
        match version {
            // Named, not left out: AWS reads AWSCURRENT either way, but moto answers the bare
            // form from a default that UpdateSecretVersionStage does not move, so after a
            // check-and-set it served the version the label had left.
            VersionSelector::Current => input["VersionStage"] = json!(AWSCURRENT),
            VersionSelector::Id(id) => input["VersionId"] = json!(id),
            VersionSelector::Stage(stage) => input["VersionStage"] = json!(stage),
        }
        let wire: WireValue = self.call("GetSecretValue", &input, Retry::Always).await?;
        wire.into_output().map_err(|reason| AwsError::Malformed {
            service: SERVICE,
            operation: "GetSecretValue",
            reason,
        })
    }

    /// BatchGetSecretValue for `secret_ids`, in calls of at most [`BATCH_GET_MAX_IDS`] and
    /// following `NextToken`.
    ///
    /// # Errors
    /// Errors of the whole call; per-secret failures are in [`BatchGetOutput::errors`].
    pub async fn batch_get_secret_value(
        &self,
        secret_ids: &[String],
    ) -> Result<BatchGetOutput, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            secret_values: Vec<WireValue>,
            #[serde(default)]
            errors: Vec<WireError>,
            next_token: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct WireError {
            #[serde(default)]
            secret_id: String,
            #[serde(default)]
            error_code: String,
            #[serde(default)]
            message: String,
        }
        let mut out = BatchGetOutput::default();
        for chunk in secret_ids.chunks(BATCH_GET_MAX_IDS) {
            let mut next: Option<String> = None;
            let mut pages = 0..MAX_PAGES;
            loop {
                if pages.next().is_none() {
                    return Err(too_many_pages("BatchGetSecretValue"));
                }
                let mut input = json!({"SecretIdList": chunk});
                if let Some(t) = &next {
                    input["NextToken"] = json!(t);
                }
                let page: Page = self
                    .call("BatchGetSecretValue", &input, Retry::Always)
                    .await?;
                for wire in page.secret_values {
                    out.values
                        .push(wire.into_output().map_err(|reason| AwsError::Malformed {
                            service: SERVICE,
                            operation: "BatchGetSecretValue",
                            reason,
                        })?);
                }
                out.errors
                    .extend(page.errors.into_iter().map(|e| BatchGetError {
                        secret_id: e.secret_id,
                        code: e.error_code,
                        message: e.message,
                    }));
                match page.next_token.filter(|t| !t.is_empty()) {
                    Some(t) => next = Some(t),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// CreateSecret.
    ///
    /// Retried like a read when no answer came (a connection reset, a timeout, a 5xx), with
    /// the same `ClientRequestToken` (the caller's, or one generated for this call). The
    /// first attempt may have created the secret all the same: a retry that then meets
    /// `ResourceExistsException` looks at the secret (DescribeSecret) and counts as success
    /// when one of its versions carries this token, since only this call knows the token
    /// (AWS's own idempotency, which LocalStack and moto lack). A secret without that
    /// version was created by someone else: the `ResourceExistsException` stands.
    ///
    /// # Errors
    /// `ResourceExistsException` when the name is taken; `InvalidRequestException` when a
    /// secret of that name is scheduled for deletion.
    pub async fn create_secret(&self, input: &CreateSecret) -> Result<WriteOutput, AwsError> {
        let token = input
            .client_request_token
            .clone()
            .unwrap_or_else(new_client_request_token);
        let secret = WireSecret::of(&input.value);
        let body = WriteBody {
            name: Some(&input.name),
            description: input.description.as_deref(),
            kms_key_id: input.kms_key_id.as_deref(),
            tags: (!input.tags.is_empty()).then(|| tags_json(&input.tags)),
            ..WriteBody::new(&token, &secret)
        };
        let created = self
            .call::<_, WriteOutput>("CreateSecret", &body, Retry::Always)
            .await;
        drop(secret);
        match created {
            Err(exists) if exists.code() == Some("ResourceExistsException") => {
                match self.describe_secret(&input.name).await {
                    Ok(mut described) => match described.versions.remove(&token) {
                        Some(stages) => {
                            tracing::debug!(
                                service = SERVICE,
                                operation = "CreateSecret",
                                "the secret exists with this call's ClientRequestToken: an earlier attempt created it"
                            );
                            Ok(WriteOutput {
                                arn: described.arn,
                                name: described.name,
                                version_id: Some(token),
                                version_stages: stages,
                            })
                        }
                        None => Err(exists),
                    },
                    Err(_) => Err(exists),
                }
            }
            other => other,
        }
    }

    /// PutSecretValue: a new version, staged `AWSCURRENT` unless `stages` says otherwise.
    /// `client_request_token` (generated when `None`) becomes the VersionId and makes a
    /// repeated call a no-op.
    ///
    /// # Errors
    /// `ResourceNotFoundException`; `InvalidRequestException` for a secret scheduled for
    /// deletion.
    pub async fn put_secret_value(
        &self,
        secret_id: &str,
        value: &SecretValue,
        client_request_token: Option<&str>,
        stages: Option<&[String]>,
    ) -> Result<WriteOutput, AwsError> {
        let token = client_request_token.map_or_else(new_client_request_token, str::to_owned);
        let secret = WireSecret::of(value);
        let body = WriteBody {
            secret_id: Some(secret_id),
            version_stages: stages,
            ..WriteBody::new(&token, &secret)
        };
        self.call("PutSecretValue", &body, Retry::Always).await
    }

    /// UpdateSecret for the description and/or the KMS key (not the value: use
    /// [`put_secret_value`](Self::put_secret_value)).
    ///
    /// # Errors
    /// `ResourceNotFoundException`, `InvalidRequestException`.
    pub async fn update_secret(
        &self,
        secret_id: &str,
        description: Option<&str>,
        kms_key_id: Option<&str>,
    ) -> Result<WriteOutput, AwsError> {
        // LocalStack requires a token on every UpdateSecret, as the AWS SDKs always send
        // one; without a new value it creates no version.
        let mut input =
            json!({"SecretId": secret_id, "ClientRequestToken": new_client_request_token()});
        if let Some(d) = description {
            input["Description"] = json!(d);
        }
        if let Some(k) = kms_key_id {
            input["KmsKeyId"] = json!(k);
        }
        // Without a new value, repeating the update changes nothing more.
        self.call("UpdateSecret", &input, Retry::Always).await
    }

    /// DeleteSecret.
    ///
    /// # Errors
    /// `ResourceNotFoundException`; `InvalidRequestException` when already scheduled.
    pub async fn delete_secret(
        &self,
        secret_id: &str,
        mode: DeleteMode,
    ) -> Result<WriteOutput, AwsError> {
        let mut input = json!({"SecretId": secret_id});
        match mode {
            DeleteMode::RecoveryWindow(days) => input["RecoveryWindowInDays"] = json!(days),
            DeleteMode::Force => input["ForceDeleteWithoutRecovery"] = json!(true),
        }
        self.call("DeleteSecret", &input, Retry::Never).await
    }

    /// RestoreSecret: cancels a scheduled deletion.
    ///
    /// # Errors
    /// `ResourceNotFoundException`, `InvalidRequestException`.
    pub async fn restore_secret(&self, secret_id: &str) -> Result<WriteOutput, AwsError> {
        self.call(
            "RestoreSecret",
            &json!({"SecretId": secret_id}),
            Retry::Never,
        )
        .await
    }

    /// DescribeSecret.
    ///
    /// # Errors
    /// `ResourceNotFoundException`.
    pub async fn describe_secret(&self, secret_id: &str) -> Result<SecretDescription, AwsError> {
        let wire: WireDescription = self
            .call(
                "DescribeSecret",
                &json!({"SecretId": secret_id}),
                Retry::Always,
            )
            .await?;
        Ok(wire.into())
    }

    /// RotateSecret: sets the secret's rotation function and schedule and, unless
    /// `rotate_immediately` is false, starts a rotation now (the function writes the new
    /// version). Retried with the same `ClientRequestToken`, so a retry does not start a
    /// second rotation.
    ///
    /// # Errors
    /// `ResourceNotFoundException` for a missing secret or function,
    /// `InvalidRequestException` while a rotation is under way or without a function,
    /// `InvalidParameterException` for bad rules.
    pub async fn rotate_secret(
        &self,
        secret_id: &str,
        input: &RotateSecret,
    ) -> Result<WriteOutput, AwsError> {
        let token = input
            .client_request_token
            .clone()
            .unwrap_or_else(new_client_request_token);
        let body = RotateBody {
            secret_id,
            client_request_token: &token,
            rotation_lambda_arn: input.lambda_arn.as_deref(),
            rotation_rules: input.rules.as_ref(),
            rotate_immediately: input.rotate_immediately,
        };
        self.call("RotateSecret", &body, Retry::Always).await
    }

    /// CancelRotateSecret: turns the secret's scheduled rotation off (a rotation under way
    /// is left as it is).
    ///
    /// # Errors
    /// `ResourceNotFoundException`; `InvalidRequestException` when the secret has no
    /// rotation function.
    pub async fn cancel_rotate_secret(&self, secret_id: &str) -> Result<WriteOutput, AwsError> {
        self.call(
            "CancelRotateSecret",
            &json!({"SecretId": secret_id}),
            Retry::Always,
        )
        .await
    }

    /// CreateSecret, then RotateSecret on it: a new secret with Secrets Manager's rotation
    /// turned on. Two calls: when the second fails the secret exists without rotation (the
    /// error says so; call [`rotate_secret`](Self::rotate_secret) again).
    ///
    /// # Errors
    /// As [`create_secret`](Self::create_secret), then as
    /// [`rotate_secret`](Self::rotate_secret).
    pub async fn create_secret_with_rotation(
        &self,
        secret: &CreateSecret,
        rotation: &RotateSecret,
    ) -> Result<WriteOutput, AwsError> {
        let created = self.create_secret(secret).await?;
        self.rotate_secret(&created.arn, rotation).await
    }

    /// One page of ListSecrets.
    ///
    /// # Errors
    /// Transport and auth errors.
    pub async fn list_secrets_page(
        &self,
        request: &ListSecrets,
        next_token: Option<&str>,
    ) -> Result<ListSecretsPage, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            secret_list: Vec<WireDescription>,
            next_token: Option<String>,
        }
        let mut input = json!({});
        if let Some(prefix) = request.name_prefix.as_deref().filter(|p| !p.is_empty()) {
            input["Filters"] = json!([{"Key": "name", "Values": [prefix]}]);
        }
        if let Some(n) = request.max_results {
            input["MaxResults"] = json!(n);
        }
        if request.include_planned_deletion {
            input["IncludePlannedDeletion"] = json!(true);
        }
        if let Some(t) = next_token {
            input["NextToken"] = json!(t);
        }
        let page: Page = self.call("ListSecrets", &input, Retry::Always).await?;
        Ok(ListSecretsPage {
            secrets: page.secret_list.into_iter().map(Into::into).collect(),
            next_token: page.next_token.filter(|t| !t.is_empty()),
        })
    }

    /// ListSecrets over every page.
    ///
    /// # Errors
    /// As [`list_secrets_page`](Self::list_secrets_page).
    pub async fn list_secrets(
        &self,
        request: &ListSecrets,
    ) -> Result<Vec<SecretDescription>, AwsError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_secrets_page(request, next.as_deref()).await?;
            out.extend(page.secrets);
            match page.next_token {
                Some(t) if next.as_deref() != Some(t.as_str()) => next = Some(t),
                _ => return Ok(out),
            }
        }
        Err(too_many_pages("ListSecrets"))
    }

    /// ListSecretVersionIds over every page, deprecated versions included when asked.
    ///
    /// # Errors
    /// `ResourceNotFoundException`.
    pub async fn list_secret_version_ids(
        &self,
        secret_id: &str,
        include_deprecated: bool,
    ) -> Result<Vec<SecretVersion>, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            versions: Vec<WireVersion>,
            next_token: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct WireVersion {
            version_id: String,
            #[serde(default)]
            version_stages: Vec<String>,
            created_date: Option<f64>,
        }
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut input = json!({"SecretId": secret_id, "MaxResults": 100});
            if include_deprecated {
                input["IncludeDeprecated"] = json!(true);
            }
            if let Some(t) = &next {
                input["NextToken"] = json!(t);
            }
            let page: Page = self
                .call("ListSecretVersionIds", &input, Retry::Always)
                .await?;
            out.extend(page.versions.into_iter().map(|v| SecretVersion {
                version_id: v.version_id,
                stages: v.version_stages,
                created: v.created_date.and_then(from_epoch_seconds),
            }));
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) if next.as_deref() != Some(t.as_str()) => next = Some(t),
                _ => return Ok(out),
            }
        }
        Err(too_many_pages("ListSecretVersionIds"))
    }

    /// UpdateSecretVersionStage: moves `stage` to `move_to` (if given) and off
    /// `remove_from` (if given). Secrets Manager refuses the move when `stage` is attached
    /// to a version other than `remove_from`, which makes this a compare-and-swap.
    ///
    /// # Errors
    /// `InvalidParameterException` when `remove_from` does not hold `stage`;
    /// `ResourceNotFoundException`.
    pub async fn update_secret_version_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<WriteOutput, AwsError> {
        let mut input = json!({"SecretId": secret_id, "VersionStage": stage});
        if let Some(v) = move_to {
            input["MoveToVersionId"] = json!(v);
        }
        if let Some(v) = remove_from {
            input["RemoveFromVersionId"] = json!(v);
        }
        self.call("UpdateSecretVersionStage", &input, Retry::Never)
            .await
    }

    /// TagResource: adds or overwrites tags.
    ///
    /// # Errors
    /// `ResourceNotFoundException`.
    pub async fn tag_resource(
        &self,
        secret_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let input = json!({"SecretId": secret_id, "Tags": tags_json(tags)});
        let _: Value = self.call("TagResource", &input, Retry::Always).await?;
        Ok(())
    }

    /// UntagResource: removes tags by key.
    ///
    /// # Errors
    /// `ResourceNotFoundException`.
    pub async fn untag_resource(&self, secret_id: &str, keys: &[String]) -> Result<(), AwsError> {
        let input = json!({"SecretId": secret_id, "TagKeys": keys});
        let _: Value = self.call("UntagResource", &input, Retry::Always).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_secret_body_names_the_fields_as_aws_does() {
        let input = RotateSecret::new()
            .lambda("arn:aws:lambda:eu-west-1:1:function:f")
            .rules(RotationRules::schedule("cron(0 3 ? * SUN *)").window("2h"))
            .rotate_immediately(false);
        let body = RotateBody {
            secret_id: "app/db",
            client_request_token: "t",
            rotation_lambda_arn: input.lambda_arn.as_deref(),
            rotation_rules: input.rules.as_ref(),
            rotate_immediately: input.rotate_immediately,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "SecretId": "app/db",
                "ClientRequestToken": "t",
                "RotationLambdaARN": "arn:aws:lambda:eu-west-1:1:function:f",
                "RotationRules": {"ScheduleExpression": "cron(0 3 ? * SUN *)", "Duration": "2h"},
                "RotateImmediately": false
            })
        );
        let bare = RotateBody {
            secret_id: "s",
            client_request_token: "t",
            rotation_lambda_arn: None,
            rotation_rules: Some(&RotationRules::after_days(30)),
            rotate_immediately: None,
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"SecretId": "s", "ClientRequestToken": "t", "RotationRules": {"AutomaticallyAfterDays": 30}})
        );
    }

    #[test]
    fn describe_secret_reads_the_rotation_fields() {
        let wire: WireDescription = serde_json::from_value(json!({
            "ARN": "arn", "Name": "n",
            "RotationEnabled": true,
            "RotationLambdaARN": "arn:aws:lambda:eu-west-1:1:function:f",
            "RotationRules": {"AutomaticallyAfterDays": 7, "Duration": "3h"},
            "NextRotationDate": 1_700_000_000.5,
            "LastRotatedDate": 1_690_000_000
        }))
        .unwrap();
        let d = SecretDescription::from(wire);
        assert!(d.rotation_enabled);
        assert_eq!(
            d.rotation_rules,
            Some(RotationRules::after_days(7).window("3h"))
        );
        assert_eq!(
            d.next_rotation,
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_500))
        );
        assert!(d.last_rotated.is_some());
        // Without rotation (and moto's empty ARN) nothing is claimed.
        let plain: WireDescription =
            serde_json::from_value(json!({"ARN": "a", "Name": "n", "RotationLambdaARN": ""}))
                .unwrap();
        let plain = SecretDescription::from(plain);
        assert!(!plain.rotation_enabled && plain.rotation_lambda_arn.is_none());
        assert!(plain.next_rotation.is_none() && plain.rotation_rules.is_none());
        // A day count that is not a u32 is a malformed answer, not a panic.
        assert!(
            serde_json::from_value::<WireDescription>(
                json!({"RotationRules": {"AutomaticallyAfterDays": -1}})
            )
            .is_err()
        );
    }

    #[test]
    fn a_region_that_is_not_a_region_name_is_refused() {
        for region in ["evil.example/", "x.attacker.net#", "US-EAST-1", ""] {
            let err = SecretsManagerClient::builder()
                .region(region)
                .credentials(strongroom_sigv4::StaticProvider::new(
                    strongroom_sigv4::Credentials::new("AKID", "secret"),
                ))
                .env(Env::from_vars([("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]))
                .build()
                .unwrap_err();
            assert!(matches!(err, AwsError::Config(_)), "{region:?}: {err}");
        }
    }

    #[test]
    fn tokens_are_distinct_uuids() {
        let a = new_client_request_token();
        let b = new_client_request_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn values_go_as_string_or_binary() {
        let text = SecretValue::from("te\"xt");
        let secret = WireSecret::of(&text);
        let body = WriteBody {
            secret_id: Some("app"),
            ..WriteBody::new("tok", &secret)
        };
        let json: Value =
            serde_json::from_slice(&crate::transport::json_body(&body).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"SecretId": "app", "ClientRequestToken": "tok", "SecretString": "te\"xt"})
        );

        let binary = SecretValue::from(vec![0xff, 0x00]);
        let secret = WireSecret::of(&binary);
        let stages = ["AWSPENDING".to_owned()];
        let body = WriteBody {
            name: Some("app"),
            description: Some("d"),
            version_stages: Some(&stages),
            ..WriteBody::new("tok", &secret)
        };
        let json: Value =
            serde_json::from_slice(&crate::transport::json_body(&body).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"Name": "app", "ClientRequestToken": "tok", "SecretBinary": "/wA=",
                   "Description": "d", "VersionStages": ["AWSPENDING"]})
        );
    }

    #[test]
    fn wire_values_decode() {
        let w: WireValue = serde_json::from_str(
            r#"{"ARN":"a","Name":"n","VersionId":"v","VersionStages":["AWSCURRENT"],"SecretBinary":"/wA=","CreatedDate":1.7e9}"#,
        )
        .unwrap();
        let out = w.into_output().unwrap();
        assert!(out.binary);
        assert_eq!(out.value.expose(), [0xff, 0x00]);
        assert!(out.created.is_some());
        let w: WireValue = serde_json::from_str(r#"{"SecretBinary":"!!"}"#).unwrap();
        assert!(w.into_output().is_err());
    }

    #[test]
    fn missing_region_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SecretsManagerClient::builder()
            .env(Env::from_vars([("HOME", dir.path().to_str().unwrap())]))
            .build()
            .unwrap_err();
        assert!(matches!(err, AwsError::Config(m) if m.contains("AWS_REGION")));
    }
}
