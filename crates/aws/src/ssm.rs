//! AWS Systems Manager Parameter Store: an [`SsmClient`] for the calls the store needs
//! (over the JSON 1.1 protocol, `X-Amz-Target: AmazonSSM.<Operation>`, signed with SigV4
//! for the service `ssm`, sent by the same transport as Secrets Manager), and the
//! [`SsmStore`] implementing [`SecretStore`] on it.
//!
//! | `SecretStore` | Parameter Store |
//! |---|---|
//! | `get` / `get_version` | GetParameter `WithDecryption` (`/name` / `/name:N`) |
//! | `put` | PutParameter, `Type: SecureString`, `Overwrite: true` |
//! | `put_with(if_absent)` | PutParameter, `Overwrite: false`: atomic on the server |
//! | `put_with` with a precondition | refused: `Unsupported` (see "Check-and-set") |
//! | `delete` / `purge` | DeleteParameter (for good: SSM has no soft delete, so no `undelete`) |
//! | `list` | GetParametersByPath, recursive, every page, then an exact prefix match |
//! | `versions` | GetParameterHistory, every page; labels are the parameter's labels |
//! | [`label`](SsmStore::label) / [`get_label`](SsmStore::get_label) | LabelParameterVersion / GetParameter `/name:label` |
//!
//! # Names
//!
//! A key `app/db/password` is the parameter `/app/db/password`: the store's prefix (a
//! folder, as for Secrets Manager) comes first, and the leading `/` puts every parameter in
//! the hierarchy GetParametersByPath lists. SSM's rules are narrower than a
//! [`SecretName`]'s, and a key that breaks them is refused before any call with
//! [`Error::InvalidKey`] ([`NameProblem::Unsupported`]); [`check_parameter_name`] tells which
//! rule ([`ParameterNameError`]):
//!
//! - only ASCII letters, digits, `_`, `.`, `-` and `/`;
//! - the first segment may not begin with `aws` or `ssm` (in any case);
//! - at most 15 levels (segments);
//! - at most 1011 characters *counting the ARN* `arn:aws:ssm:<region>:<account>:parameter`
//!   that AWS puts before the name (AWS's own rule; computed for the store's region in the
//!   `aws` partition: in `aws-cn` or `aws-us-gov` a name a few characters shorter may be the
//!   limit, and AWS's own refusal then comes back as an error of the call).
//!
//! # Values
//!
//! Every value is a `SecureString`, encrypted with the account's `aws/ssm` key or the KMS key
//! of [`SsmStoreBuilder::kms_key_id`]. Parameters hold text only, so a value that is not
//! UTF-8, is empty (SSM refuses an empty value), or happens to begin with
//! [`BINARY_MARKER`] is stored as that marker followed by its base64; reads undo it. Other
//! text is stored as it is, so parameters written by the AWS CLI or boto3 read back
//! unchanged (one written elsewhere that begins with the marker and continues with valid
//! base64 would be decoded: choose another marker-free text there).
//!
//! A standard parameter holds at most 4096 bytes, an advanced one 8192
//! ([`ParameterTier`]); a value that does not fit, after encoding, is refused before any call
//! with [`Error::InvalidValue`] naming both sizes (never the value).
//!
//! # Check-and-set: not offered
//!
//! SSM's only conditional write is `Overwrite: false` (create if absent); there is no
//! conditional overwrite, and LabelParameterVersion moves a label unconditionally. A
//! read-then-write `if_version` cannot stop a concurrent writer: six writers racing on moto
//! all passed the check, all their writes landed, and the last to land, not the one told it
//! won, ended up current. A `Conflict` that has nevertheless written would break the
//! contract every other store keeps ("a refused write changes nothing"), and "once per
//! fleet" rotation would silently rotate twice. So [`Capabilities::check_and_set`] is false
//! and every precondition, `if_absent` included, is [`Error::Unsupported`], as the core
//! contract says for a store without check-and-set: a caller that needs it chooses a store
//! that has it (Secrets Manager, Vault, the local file).
//!
//! # Secrets
//!
//! Request bodies carrying a value are built once into a buffer of their final size and
//! wiped when dropped; response bodies are wiped after parsing, and values go straight into
//! zeroized strings. [`Parameter`]'s `Debug` prints no value, and no error carries one.
//!
//! # Arithmetic
//!
//! Versions from the server are read as unsigned integers and compared, never used in
//! unchecked arithmetic (`v + 1` is `checked_add`); `LastModifiedDate` must lie in
//! `0..=1e12` epoch seconds; paged calls stop with an error after [`SSM_MAX_PAGES`] pages.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use strongroom_core::{
    Capabilities, Error, NameProblem, PutOptions, Scope, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo, async_trait,
};
use strongroom_http::{HttpClient, Retry};
use strongroom_sigv4::{Env, ProvideCredentials};
use zeroize::Zeroizing;

use crate::client_settings::ClientSettings;
use crate::error::AwsError;
use crate::json_api::{JsonApi, Service, Settings, check_credentials, elapsed_ms};
use crate::sts::AssumeRoleRequest;
use crate::timestamp::from_epoch_seconds;

const SERVICE: &str = "ssm";
/// The name [`SsmStore`] reports as its backend.
const BACKEND: &str = "ssm";

/// The most pages one paged call (GetParametersByPath, GetParameterHistory) reads before
/// failing with [`AwsError::Malformed`]: 10,000 pages of GetParametersByPath are 100,000
/// parameters. A server that keeps handing out `NextToken`s cannot keep the loop going.
pub const SSM_MAX_PAGES: usize = 10_000;

/// The prefix of a value stored as base64 (binary, empty, or itself beginning with this).
pub const BINARY_MARKER: &str = "strongroom:base64:";

/// The most levels (segments) SSM allows in a parameter name.
pub const MAX_PARAMETER_LEVELS: usize = 15;

/// The most characters of a parameter's ARN, which contains its name.
pub const MAX_PARAMETER_ARN_LEN: usize = 1011;

/// An SSM client. Cheap to clone.
#[derive(Clone)]
pub struct SsmClient {
    inner: Arc<JsonApi>,
}

impl fmt::Debug for SsmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmClient")
            .field("endpoint", self.inner.endpoint())
            .field("region", &self.inner.region())
            .finish_non_exhaustive()
    }
}

/// Configures an [`SsmClient`].
#[derive(Default)]
#[must_use]
pub struct SsmClientBuilder {
    env: Option<Env>,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    http: Option<HttpClient>,
}

impl fmt::Debug for SsmClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmClientBuilder")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SsmClientBuilder {
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

    /// The endpoint (else `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`, the region's).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The credentials (else the cached [`default_provider`](crate::default_provider)).
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// The credentials, shared.
    pub fn credentials_arc(mut self, provider: Arc<dyn ProvideCredentials>) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// The HTTP client (else [`HttpClient::new`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`AwsError::Config`] when no region is found, the region is not a region name, or the
    /// endpoint is not a URL.
    pub fn build(self) -> Result<SsmClient, AwsError> {
        let settings = Settings {
            env: self.env,
            region: self.region,
            endpoint: self.endpoint,
            credentials: self.credentials,
            http: self.http,
        };
        let service = Service {
            name: SERVICE,
            endpoint_id: "SSM",
            target: "AmazonSSM",
        };
        Ok(SsmClient {
            inner: Arc::new(JsonApi::build(settings, service)?),
        })
    }
}

/// A parameter as GetParameter, GetParametersByPath or GetParameterHistory returned it.
#[derive(Clone)]
#[non_exhaustive]
pub struct Parameter {
    /// The full name, such as `/app/db/password`.
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// The value as SSM holds it (decrypted when asked; otherwise ciphertext for a
    /// `SecureString`). Not decoded: see [`decode_value`].
    pub value: SecretValue,
    /// The version.
    pub version: u64,
    /// When this version was written.
    pub last_modified: Option<SystemTime>,
    /// The labels on this version (GetParameterHistory only).
    pub labels: Vec<String>,
}

impl fmt::Debug for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parameter")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("value", &"[REDACTED]")
            .field("version", &self.version)
            .field("last_modified", &self.last_modified)
            .field("labels", &self.labels)
            .finish()
    }
}

/// The storage tier of the parameters a store writes: it sets the largest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParameterTier {
    /// Values up to 4096 bytes, no charge (the default). `Tier` is then not sent, and AWS
    /// applies the account's default tier; AWS never turns an advanced parameter back into a
    /// standard one.
    #[default]
    Standard,
    /// Values up to 8192 bytes (charged by AWS; cannot be turned back into standard).
    Advanced,
}

impl ParameterTier {
    /// The largest value, in bytes, a parameter of this tier holds.
    pub fn max_value_len(self) -> usize {
        match self {
            Self::Standard => 4096,
            Self::Advanced => 8192,
        }
    }

    /// Parses `standard` or `advanced` (any case).
    ///
    /// # Errors
    /// [`Error::Config`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.trim().to_ascii_lowercase().as_str() {
            "standard" => Ok(Self::Standard),
            "advanced" => Ok(Self::Advanced),
            other => Err(Error::config(format!(
                "the SSM parameter tier must be `standard` or `advanced`, not {other:?}"
            ))),
        }
    }
}

/// PutParameter's input (always `Type: SecureString`).
#[derive(Clone)]
#[non_exhaustive]
pub struct PutParameter<'a> {
    /// The full name.
    pub name: &'a str,
    /// The value, as it is to be stored.
    pub value: &'a str,
    /// Replace an existing parameter (`false`: fail with `ParameterAlreadyExists`).
    pub overwrite: bool,
    /// The KMS key (else `alias/aws/ssm`).
    pub kms_key_id: Option<&'a str>,
    /// The tier; `Standard` is not sent.
    pub tier: ParameterTier,
}

impl fmt::Debug for PutParameter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutParameter")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .field("overwrite", &self.overwrite)
            .field("kms_key_id", &self.kms_key_id)
            .field("tier", &self.tier)
            .finish()
    }
}

impl<'a> PutParameter<'a> {
    /// A SecureString `name` = `value`, without overwrite, with the default key.
    pub fn new(name: &'a str, value: &'a str) -> Self {
        Self {
            name,
            value,
            overwrite: false,
            kms_key_id: None,
            tier: ParameterTier::Standard,
        }
    }
}

// ---- wire shapes -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireParameter {
    #[serde(default)]
    name: String,
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(default)]
    value: Option<Zeroizing<String>>,
    #[serde(default)]
    version: Option<u64>,
    last_modified_date: Option<f64>,
    #[serde(default)]
    labels: Vec<String>,
}

impl WireParameter {
    pub(crate) fn into_parameter(self, operation: &'static str) -> Result<Parameter, AwsError> {
        let malformed = |reason: &str| AwsError::Malformed {
            service: SERVICE,
            operation,
            reason: reason.to_owned(),
        };
        let version = self.version.ok_or_else(|| malformed("no Version"))?;
        let last_modified = match self.last_modified_date {
            Some(s) => Some(
                from_epoch_seconds(s).ok_or_else(|| malformed("LastModifiedDate out of range"))?,
            ),
            None => None,
        };
        let value = match self.value {
            Some(mut text) => SecretValue::new(std::mem::take(&mut *text).into_bytes()),
            None => SecretValue::new(Vec::new()),
        };
        Ok(Parameter {
            name: self.name,
            kind: self.kind,
            value,
            version,
            last_modified,
            labels: self.labels,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WirePut<'a> {
    name: &'a str,
    value: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    overwrite: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'static str>,
}

fn too_many_pages(operation: &'static str) -> AwsError {
    AwsError::Malformed {
        service: SERVICE,
        operation,
        reason: format!("NextToken did not end within {SSM_MAX_PAGES} pages"),
    }
}

impl SsmClient {
    /// A builder.
    pub fn builder() -> SsmClientBuilder {
        SsmClientBuilder::default()
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        self.inner.region()
    }

    /// The credentials provider.
    pub fn credentials_provider(&self) -> &Arc<dyn ProvideCredentials> {
        self.inner.credentials()
    }

    async fn call<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        operation: &'static str,
        input: &I,
        retry: Retry,
    ) -> Result<O, AwsError> {
        self.inner.call(operation, input, retry).await
    }

    /// GetParameter of `name` (with `:version` or `:label` appended for another version).
    ///
    /// # Errors
    /// `ParameterNotFound`, `ParameterVersionNotFound`; transport and auth errors.
    pub async fn get_parameter(
        &self,
        name: &str,
        with_decryption: bool,
    ) -> Result<Parameter, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            parameter: Option<WireParameter>,
        }
        let input = json!({"Name": name, "WithDecryption": with_decryption});
        let out: Out = self.call("GetParameter", &input, Retry::Always).await?;
        out.parameter
            .ok_or_else(|| AwsError::Malformed {
                service: SERVICE,
                operation: "GetParameter",
                reason: "no Parameter".to_owned(),
            })?
            .into_parameter("GetParameter")
    }

    /// PutParameter; returns the version written. Sent once: a repeat would write another
    /// version (or, without overwrite, fail with `ParameterAlreadyExists` after success).
    ///
    /// # Errors
    /// `ParameterAlreadyExists` (no overwrite), `ValidationException` (value or name),
    /// `TooManyUpdates`; transport and auth errors.
    pub async fn put_parameter(&self, input: &PutParameter<'_>) -> Result<u64, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            #[serde(default)]
            version: Option<u64>,
        }
        let wire = WirePut {
            name: input.name,
            value: input.value,
            kind: "SecureString",
            overwrite: input.overwrite,
            key_id: input.kms_key_id,
            tier: match input.tier {
                ParameterTier::Standard => None,
                ParameterTier::Advanced => Some("Advanced"),
            },
        };
        let out: Out = self.call("PutParameter", &wire, Retry::Unsent).await?;
        out.version.ok_or_else(|| AwsError::Malformed {
            service: SERVICE,
            operation: "PutParameter",
            reason: "no Version".to_owned(),
        })
    }

    /// DeleteParameter (for good, with its history).
    ///
    /// # Errors
    /// `ParameterNotFound`; transport and auth errors.
    pub async fn delete_parameter(&self, name: &str) -> Result<(), AwsError> {
        let _: serde_json::Value = self
            .call("DeleteParameter", &json!({"Name": name}), Retry::Unsent)
            .await?;
        Ok(())
    }

    /// GetParametersByPath under `path`, every page (values not decrypted).
    ///
    /// # Errors
    /// Transport and auth errors; [`AwsError::Malformed`] past [`SSM_MAX_PAGES`] pages.
    pub async fn get_parameters_by_path(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<Vec<Parameter>, AwsError> {
        let input = json!({
            "Path": path,
            "Recursive": recursive,
            "WithDecryption": false,
            "MaxResults": 10,
        });
        self.every_page("GetParametersByPath", input).await
    }

    /// GetParameterHistory of `name`, every page, oldest first as SSM lists it.
    ///
    /// # Errors
    /// `ParameterNotFound`; transport and auth errors; [`AwsError::Malformed`] past
    /// [`SSM_MAX_PAGES`] pages.
    pub async fn get_parameter_history(
        &self,
        name: &str,
        with_decryption: bool,
    ) -> Result<Vec<Parameter>, AwsError> {
        let input = json!({
            "Name": name,
            "WithDecryption": with_decryption,
            "MaxResults": 50,
        });
        self.every_page("GetParameterHistory", input).await
    }

    /// Calls `operation` with `input` and each `NextToken` in turn, gathering the
    /// `Parameters` of every page; at most [`SSM_MAX_PAGES`] pages.
    async fn every_page(
        &self,
        operation: &'static str,
        mut input: Value,
    ) -> Result<Vec<Parameter>, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            parameters: Vec<WireParameter>,
            next_token: Option<String>,
        }
        let mut out = Vec::new();
        for _ in 0..SSM_MAX_PAGES {
            let page: Page = self.call(operation, &input, Retry::Always).await?;
            for p in page.parameters {
                out.push(p.into_parameter(operation)?);
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => input["NextToken"] = json!(t),
                None => return Ok(out),
            }
        }
        Err(too_many_pages(operation))
    }

    /// LabelParameterVersion: puts `labels` on `version` (else the latest), moving them from
    /// the version that had them. Returns the labels SSM refused as invalid.
    ///
    /// # Errors
    /// `ParameterNotFound`, `ParameterVersionNotFound`, `ParameterVersionLabelLimitExceeded`;
    /// transport and auth errors.
    pub async fn label_parameter_version(
        &self,
        name: &str,
        version: Option<u64>,
        labels: &[String],
    ) -> Result<Vec<String>, AwsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            #[serde(default)]
            invalid_labels: Vec<String>,
        }
        let mut input = json!({"Name": name, "Labels": labels});
        if let Some(v) = version {
            input["ParameterVersion"] = json!(v);
        }
        let out: Out = self
            .call("LabelParameterVersion", &input, Retry::Always)
            .await?;
        Ok(out.invalid_labels)
    }
}

// ---- names and values --------------------------------------------------------------------

/// Which SSM naming rule a parameter name breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParameterNameError {
    /// A character other than ASCII letters, digits, `_`, `.`, `-`, `/`.
    #[error("SSM parameter names allow only letters, digits, `_`, `.`, `-` and `/`")]
    Character,
    /// The first segment begins with `aws` or `ssm`.
    #[error("SSM parameter names may not begin with `aws` or `ssm`")]
    ReservedPrefix,
    /// More than [`MAX_PARAMETER_LEVELS`] segments.
    #[error("SSM parameter names have at most {MAX_PARAMETER_LEVELS} levels")]
    TooDeep,
    /// Longer than [`MAX_PARAMETER_ARN_LEN`] once in its ARN.
    #[error("SSM parameter names are at most {MAX_PARAMETER_ARN_LEN} characters with their ARN")]
    TooLong,
}

/// The characters of an ARN before a hierarchical name in `region`:
/// `arn:aws:ssm:<region>:<12-digit account>:parameter`.
fn arn_prefix_len(region: &str) -> usize {
    "arn:aws:ssm::123456789012:parameter"
        .len()
        .saturating_add(region.len())
}

/// Checks `name` (a full parameter name, with its leading `/`) against SSM's rules for
/// `region`.
///
/// # Errors
/// The first rule `name` breaks.
pub fn check_parameter_name(name: &str, region: &str) -> Result<(), ParameterNameError> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
    {
        return Err(ParameterNameError::Character);
    }
    let first = name
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(ParameterNameError::ReservedPrefix);
    }
    if name.trim_start_matches('/').split('/').count() > MAX_PARAMETER_LEVELS {
        return Err(ParameterNameError::TooDeep);
    }
    if arn_prefix_len(region).saturating_add(name.len()) > MAX_PARAMETER_ARN_LEN {
        return Err(ParameterNameError::TooLong);
    }
    Ok(())
}

/// `value` as the text SSM stores: itself when it is non-empty UTF-8 not beginning with
/// [`BINARY_MARKER`], else the marker and its base64.
pub fn encode_value(value: &SecretValue) -> Zeroizing<String> {
    if let Ok(text) = value.expose_str()
        && !text.is_empty()
        && !text.starts_with(BINARY_MARKER)
    {
        return Zeroizing::new(text.to_owned());
    }
    let encoded = base64::encoded_len(value.len(), true).unwrap_or(0);
    let mut out = Zeroizing::new(String::with_capacity(
        BINARY_MARKER.len().saturating_add(encoded),
    ));
    out.push_str(BINARY_MARKER);
    STANDARD.encode_string(value.expose(), &mut out);
    out
}

/// What [`encode_value`] stored, back: text after [`BINARY_MARKER`] that is valid base64 is
/// decoded; anything else is the value itself.
pub fn decode_value(stored: &SecretValue) -> SecretValue {
    if let Some(rest) = stored.expose().strip_prefix(BINARY_MARKER.as_bytes()) {
        let mut bytes =
            Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(rest.len())));
        if STANDARD.decode_vec(rest, &mut bytes).is_ok() {
            return SecretValue::new(std::mem::take(&mut *bytes));
        }
    }
    stored.clone()
}

/// The store's error for an SSM error: SSM's own codes first, then the shared AWS mapping.
fn core_error(e: AwsError, key: &SecretName, version: Option<&VersionId>) -> Error {
    let not_found = |version: Option<&VersionId>| Error::NotFound {
        key: key.as_str().to_owned(),
        version: version.cloned(),
        deleted: false,
    };
    match e.code() {
        Some("ParameterNotFound") => not_found(version),
        Some("ParameterVersionNotFound") => not_found(version),
        Some("ParameterAlreadyExists") => Error::Conflict {
            key: key.as_str().to_owned(),
            message: "the parameter already exists".to_owned(),
        },
        // SSM's answer to concurrent PutParameters on one parameter: try again later.
        Some("TooManyUpdates") => Error::Unavailable {
            backend: BACKEND,
            message: e.to_string(),
            retry_after: None,
        },
        _ => e.into_core(Some(key.as_str()), version),
    }
}

// ---- the store ---------------------------------------------------------------------------

/// The variable [`SsmStoreBuilder::from_env_with`] reads the name prefix from.
pub const SSM_PREFIX_VAR: &str = "STRONGROOM_SSM_PREFIX";

/// A [`SecretStore`] on SSM Parameter Store, optionally scoped to a folder; see the
/// [module docs](self) for how each operation maps.
///
/// ```no_run
/// use strongroom_aws::SsmStore;
/// use strongroom_core::{SecretName, SecretStore, SecretValue};
///
/// # async fn demo() -> Result<(), strongroom_core::Error> {
/// let store = SsmStore::builder().prefix("myapp/prod").build().await?;
/// let key = SecretName::new("db/password")?; // the parameter `/myapp/prod/db/password`
/// store.put(&key, SecretValue::from("s3cret")).await?;
/// assert_eq!(store.get(&key).await?.value.expose(), b"s3cret");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SsmStore {
    client: SsmClient,
    scope: Scope,
    kms_key_id: Option<String>,
    tier: ParameterTier,
}

impl fmt::Debug for SsmStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmStore")
            .field("client", &self.client)
            .field("scope", &self.scope)
            .field("kms_key_id", &self.kms_key_id)
            .field("tier", &self.tier)
            .finish()
    }
}

/// Configures an [`SsmStore`]. Region, endpoint and credentials no setter names are found
/// the AWS way (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_SSM`, the default chain);
/// timeouts, retries and AssumeRole work as for Secrets Manager's
/// [`StoreBuilder`](crate::StoreBuilder), from the same variables.
#[derive(Default)]
#[must_use]
pub struct SsmStoreBuilder {
    client: Option<SsmClient>,
    connection: ClientSettings,
    endpoint: Option<String>,
    prefix: String,
    kms_key_id: Option<String>,
    tier: ParameterTier,
    check_credentials: bool,
}

impl fmt::Debug for SsmStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmStoreBuilder")
            .field("connection", &self.connection)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("kms_key_id", &self.kms_key_id)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

impl SsmStoreBuilder {
    /// A builder with the strongroom settings `env` holds; AWS's own variables (region,
    /// profile, endpoint, credentials) are read from `env` when the store is built.
    ///
    /// | Variable | Setter |
    /// |---|---|
    /// | `STRONGROOM_SSM_PREFIX` | [`prefix`](Self::prefix) |
    /// | `STRONGROOM_SSM_KMS_KEY_ID` | [`kms_key_id`](Self::kms_key_id) |
    /// | `STRONGROOM_SSM_TIER` (`standard` or `advanced`) | [`tier`](Self::tier) |
    /// | `STRONGROOM_AWS_ASSUME_ROLE_ARN`, `STRONGROOM_AWS_ROLE_SESSION_NAME`, `STRONGROOM_AWS_ROLE_DURATION_SECS`, `STRONGROOM_AWS_ROLE_EXTERNAL_ID` | [`assume_role`](Self::assume_role) |
    /// | `STRONGROOM_REQUEST_TIMEOUT_SECS` | [`request_timeout`](Self::request_timeout) |
    /// | `STRONGROOM_CONNECT_TIMEOUT_SECS` | [`connect_timeout`](Self::connect_timeout) |
    /// | `STRONGROOM_RETRY_MAX_ATTEMPTS` (else `AWS_MAX_ATTEMPTS`) | [`retry_max_attempts`](Self::retry_max_attempts) |
    /// | `STRONGROOM_RETRY_MAX_TOTAL_SECS` | [`retry_max_total`](Self::retry_max_total) |
    ///
    /// # Errors
    /// [`Error::Config`] for a tier that is neither, or a number that does not parse.
    pub fn from_env_with(env: Env) -> Result<Self, Error> {
        let mut builder = Self {
            connection: ClientSettings::from_env(&env)?,
            ..Self::default()
        };
        if let Some(prefix) = env.get(SSM_PREFIX_VAR) {
            builder = builder.prefix(prefix);
        }
        if let Some(key) = env.get("STRONGROOM_SSM_KMS_KEY_ID") {
            builder = builder.kms_key_id(key);
        }
        if let Some(tier) = env.get("STRONGROOM_SSM_TIER") {
            builder = builder.tier(ParameterTier::parse(&tier)?);
        }
        Ok(builder.env(env))
    }

    /// Uses this client; the client settings below are then ignored.
    pub fn client(mut self, client: SsmClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Reads the AWS variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.connection.env = Some(env);
        self
    }

    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.connection.region = Some(region.into());
        self
    }

    /// The endpoint URL (else `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`, the region's).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The shared-config profile whose credentials (and region, unless `AWS_REGION` or
    /// [`region`](Self::region) says otherwise) are used, instead of `AWS_PROFILE` and the
    /// default chain.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.connection.profile = Some(profile.into());
        self
    }

    /// The credentials provider (else the profile's, else the default chain).
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.connection.credentials = Some(Arc::new(provider));
        self
    }

    /// Assume this IAM role (STS AssumeRole) with the credentials found otherwise; the
    /// role's credentials are cached and refreshed before they expire.
    pub fn assume_role(mut self, request: AssumeRoleRequest) -> Self {
        self.connection.assume_role = Some(request);
        self
    }

    /// Time for one attempt of one request (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.connection.request_timeout = Some(timeout);
        self
    }

    /// Time to open a connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection.connect_timeout = Some(timeout);
        self
    }

    /// Attempts per call, the first included (default 3; 1 never retries).
    pub fn retry_max_attempts(mut self, attempts: u32) -> Self {
        self.connection.retry_max_attempts = Some(attempts);
        self
    }

    /// Budget of one call, every attempt and wait included (default 10 s).
    pub fn retry_max_total(mut self, total: Duration) -> Self {
        self.connection.retry_max_total = Some(total);
        self
    }

    /// Scopes the store to the folder `prefix`: `prod/app`, `/prod/app` and `prod/app/` all
    /// make key `db/pw` the parameter `/prod/app/db/pw`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The KMS key (id, ARN or alias) new versions are encrypted with (default
    /// `alias/aws/ssm`).
    pub fn kms_key_id(mut self, key: impl Into<String>) -> Self {
        self.kms_key_id = Some(key.into());
        self
    }

    /// The tier of the parameters written (default [`ParameterTier::Standard`]).
    pub fn tier(mut self, tier: ParameterTier) -> Self {
        self.tier = tier;
        self
    }

    /// Load credentials while building, so that none is an [`Error::Config`] now.
    pub fn check_credentials(mut self, on: bool) -> Self {
        self.check_credentials = on;
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    /// [`Error::Config`] for no region, a bad endpoint or prefix, or (with
    /// [`check_credentials`](Self::check_credentials)) no credentials.
    pub async fn build(self) -> Result<SsmStore, Error> {
        let check = self.check_credentials;
        let store = self.build_lazy()?;
        if check {
            check_credentials(&**store.client.credentials_provider(), "AWS SSM").await?;
        }
        Ok(store)
    }

    /// Builds the store without loading credentials.
    ///
    /// # Errors
    /// As [`build`](Self::build), except that missing credentials are found on first use.
    pub fn build_lazy(self) -> Result<SsmStore, Error> {
        let scope = Scope::new(&self.prefix).map_err(|e| {
            Error::config(format!(
                "the SSM name prefix {:?} is not a folder name: {e}",
                self.prefix
            ))
        })?;
        let client = match self.client {
            Some(c) => c,
            None => Self::client_builder(self.connection, self.endpoint)
                .and_then(SsmClientBuilder::build)
                .map_err(|e| Error::config(format!("AWS SSM: {e}")))?,
        };
        if !scope.is_root() {
            let folder = format!("/{}", scope.as_str());
            check_parameter_name(&folder, client.region()).map_err(|e| {
                Error::config(format!("the SSM name prefix {:?}: {e}", self.prefix))
            })?;
        }
        Ok(SsmStore {
            client,
            scope,
            kms_key_id: self.kms_key_id,
            tier: self.tier,
        })
    }

    /// The client settings, with the profile's region and credentials and the role resolved.
    fn client_builder(
        connection: ClientSettings,
        endpoint: Option<String>,
    ) -> Result<SsmClientBuilder, AwsError> {
        let resolved = connection.resolve()?;
        let mut builder = SsmClient::builder().env(resolved.env);
        if let Some(region) = resolved.region {
            builder = builder.region(region);
        }
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(credentials) = resolved.credentials {
            builder = builder.credentials_arc(credentials);
        }
        if let Some(http) = resolved.http {
            builder = builder.http_client(http);
        }
        Ok(builder)
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
        elapsed_ms = elapsed_ms(started),
        "secret store operation"
    );
}

impl SsmStore {
    /// A store on `client`, without prefix, standard tier, default key.
    pub fn new(client: SsmClient) -> Self {
        Self {
            client,
            scope: Scope::root(),
            kms_key_id: None,
            tier: ParameterTier::Standard,
        }
    }

    /// A builder.
    pub fn builder() -> SsmStoreBuilder {
        SsmStoreBuilder::default()
    }

    /// A store from the process environment (see [`SsmStoreBuilder::from_env_with`]),
    /// credentials checked now.
    ///
    /// # Errors
    /// [`Error::Config`] naming what is missing or malformed.
    pub async fn from_env() -> Result<Self, Error> {
        SsmStoreBuilder::from_env_with(Env::process())?
            .check_credentials(true)
            .build()
            .await
    }

    /// The client underneath.
    pub fn client(&self) -> &SsmClient {
        &self.client
    }

    /// The scope (folder) of this store.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The parameter name of `key`: `/`, the prefix, the key.
    pub fn parameter_name(&self, key: &SecretName) -> String {
        format!("/{}", self.scope.full_str(key))
    }

    /// The parameter name of `key`, checked against SSM's rules.
    fn checked_name(&self, key: &SecretName) -> Result<String, Error> {
        let name = self.parameter_name(key);
        check_parameter_name(&name, self.client.region()).map_err(|e| {
            tracing::debug!(backend = BACKEND, key = %key, reason = %e, "key refused");
            Error::invalid_key(key.as_str(), NameProblem::Unsupported)
        })?;
        Ok(name)
    }

    fn to_secret(key: &SecretName, p: &Parameter) -> Secret {
        let mut secret = Secret::new(
            key.clone(),
            decode_value(&p.value),
            VersionId::from(p.version),
        );
        if let Some(at) = p.last_modified {
            secret = secret.created(at);
        }
        secret
    }

    /// The version labelled `label` (GetParameter `/name:label`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no version has the label; transport and auth errors.
    pub async fn get_label(&self, key: &SecretName, label: &str) -> Result<Secret, Error> {
        let name = self.checked_name(key)?;
        let p = self
            .client
            .get_parameter(&format!("{name}:{label}"), true)
            .await
            .map_err(|e| core_error(e, key, None))?;
        Ok(Self::to_secret(key, &p))
    }

    /// Puts `labels` on `version` of `key` (LabelParameterVersion), moving them from the
    /// version that had them.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing parameter or version; [`Error::InvalidValue`] naming
    /// the labels SSM refused; transport and auth errors.
    pub async fn label(
        &self,
        key: &SecretName,
        version: &VersionId,
        labels: &[String],
    ) -> Result<(), Error> {
        let name = self.checked_name(key)?;
        let number = version.as_u64().ok_or_else(|| Error::NotFound {
            key: key.as_str().to_owned(),
            version: Some(version.clone()),
            deleted: false,
        })?;
        let invalid = self
            .client
            .label_parameter_version(&name, Some(number), labels)
            .await
            .map_err(|e| core_error(e, key, Some(version)))?;
        if invalid.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidValue {
                message: format!("SSM refused the labels {invalid:?}"),
            })
        }
    }

    /// The encoded value, refused when it does not fit the tier.
    fn encoded(&self, value: &SecretValue) -> Result<Zeroizing<String>, Error> {
        let stored = encode_value(value);
        let max = self.tier.max_value_len();
        if stored.len() > max {
            return Err(Error::InvalidValue {
                message: format!(
                    "the value takes {} bytes as stored (base64 for binary values), more than \
                     the {max} a {} SSM parameter holds",
                    stored.len(),
                    match self.tier {
                        ParameterTier::Standard => "standard",
                        ParameterTier::Advanced => "advanced",
                    }
                ),
            });
        }
        Ok(stored)
    }
}

#[async_trait]
impl SecretStore for SsmStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::ALL;
        // DeleteParameter is for good: nothing to undelete.
        caps.undelete = false;
        // Description and tags are not written (PutParameter refuses tags with overwrite).
        caps.metadata = false;
        caps.metadata_on_read = false;
        // No conditional overwrite: see "Check-and-set" in the module docs.
        caps.check_and_set = false;
        caps
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = async {
            let name = self.checked_name(key)?;
            let p = self
                .client
                .get_parameter(&name, true)
                .await
                .map_err(|e| core_error(e, key, None))?;
            Ok(Self::to_secret(key, &p))
        }
        .await;
        record("get", key.as_str(), started, &result);
        result
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = async {
            let name = self.checked_name(key)?;
            let not_found = || Error::NotFound {
                key: key.as_str().to_owned(),
                version: Some(version.clone()),
                deleted: false,
            };
            let number = version.as_u64().ok_or_else(not_found)?;
            let p = self
                .client
                .get_parameter(&format!("{name}:{number}"), true)
                .await
                .map_err(|e| core_error(e, key, Some(version)))?;
            if p.version != number {
                return Err(not_found());
            }
            Ok(Self::to_secret(key, &p))
        }
        .await;
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
        let result = async {
            if options.metadata.is_some() {
                return Err(Error::unsupported(BACKEND, "metadata"));
            }
            let name = self.checked_name(key)?;
            let stored = self.encoded(&value)?;
            if options.precondition.is_some() {
                return Err(Error::unsupported(
                    BACKEND,
                    "check-and-set (SSM has no conditional overwrite)",
                ));
            }
            let input = PutParameter {
                name: &name,
                value: &stored,
                overwrite: true,
                kms_key_id: self.kms_key_id.as_deref(),
                tier: self.tier,
            };
            let version = self
                .client
                .put_parameter(&input)
                .await
                .map_err(|e| core_error(e, key, None))?;
            Ok(VersionId::from(version))
        }
        .await;
        record("put", key.as_str(), started, &result);
        result
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = async {
            let name = self.checked_name(key)?;
            self.client
                .delete_parameter(&name)
                .await
                .map_err(|e| core_error(e, key, None))
        }
        .await;
        record("delete", key.as_str(), started, &result);
        result
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        // DeleteParameter removes the parameter with its history: delete is already a purge.
        self.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let started = Instant::now();
        let full = format!("/{}", self.scope.list_prefix(prefix));
        // The folder the prefix is in: `/a/b/c` and `/a/b/` are listed under `/a/b`.
        let folder = match full.rfind('/') {
            Some(0) | None => "/",
            Some(i) => full.get(..i).unwrap_or("/"),
        };
        let result = if folder != "/" && check_parameter_name(folder, self.client.region()).is_err()
        {
            // No parameter can live under a folder SSM would not accept.
            Ok(Vec::new())
        } else {
            self.client
                .get_parameters_by_path(folder, true)
                .await
                .map_err(|e| e.into_core(None, None))
                .map(|parameters| {
                    let mut keys: Vec<SecretName> = parameters
                        .into_iter()
                        .filter(|p| p.name.starts_with(&full))
                        .filter_map(|p| {
                            let key = p
                                .name
                                .strip_prefix('/')
                                .and_then(|n| self.scope.key_of(n));
                            if key.is_none() {
                                tracing::debug!(backend = BACKEND, name = %p.name, "skipping a parameter whose name is not a valid key");
                            }
                            key
                        })
                        .collect();
                    keys.sort();
                    keys.dedup();
                    keys
                })
        };
        record("list", prefix, started, &result);
        result
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let started = Instant::now();
        let result = async {
            let name = self.checked_name(key)?;
            let history = self
                .client
                .get_parameter_history(&name, false)
                .await
                .map_err(|e| core_error(e, key, None))?;
            let latest = history.iter().map(|p| p.version).max();
            let mut infos: Vec<(u64, VersionInfo)> = history
                .into_iter()
                .map(|p| {
                    let mut info = VersionInfo::new(
                        VersionId::from(p.version),
                        p.last_modified,
                        Some(p.version) == latest,
                    );
                    info.labels = p.labels;
                    (p.version, info)
                })
                .collect();
            infos.sort_by_key(|(n, _)| *n);
            Ok(infos.into_iter().map(|(_, info)| info).collect())
        }
        .await;
        record("versions", key.as_str(), started, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ssm_rules() {
        let r = "us-east-1";
        assert_eq!(check_parameter_name("/app/db/password", r), Ok(()));
        assert_eq!(check_parameter_name("/a_b.c-d/E9", r), Ok(()));
        assert_eq!(
            check_parameter_name("/app/db password", r),
            Err(ParameterNameError::Character)
        );
        assert_eq!(
            check_parameter_name("/app/pässwort", r),
            Err(ParameterNameError::Character)
        );
        for reserved in ["/aws/x", "/AWSome", "/ssm/x", "/SsmThing/y"] {
            assert_eq!(
                check_parameter_name(reserved, r),
                Err(ParameterNameError::ReservedPrefix),
                "{reserved}"
            );
        }
        // Only the first segment is reserved.
        assert_eq!(check_parameter_name("/app/aws/ssm", r), Ok(()));
        let fifteen = format!("/{}", vec!["l"; 15].join("/"));
        assert_eq!(check_parameter_name(&fifteen, r), Ok(()));
        let sixteen = format!("/{}", vec!["l"; 16].join("/"));
        assert_eq!(
            check_parameter_name(&sixteen, r),
            Err(ParameterNameError::TooDeep)
        );
        // arn:aws:ssm:us-east-1:123456789012:parameter is 44 characters.
        assert_eq!(arn_prefix_len(r), 44);
        let longest = format!("/{}", "k".repeat(1011 - 44 - 1));
        assert_eq!(check_parameter_name(&longest, r), Ok(()));
        let over = format!("/{}", "k".repeat(1011 - 44));
        assert_eq!(
            check_parameter_name(&over, r),
            Err(ParameterNameError::TooLong)
        );
    }

    #[test]
    fn values_are_stored_as_text_or_marked_base64() {
        let text = SecretValue::from("hunter2");
        assert_eq!(encode_value(&text).as_str(), "hunter2");
        assert!(decode_value(&SecretValue::from("hunter2")) == text);

        let binary = SecretValue::new(vec![0, 159, 146, 150, 255]);
        let stored = encode_value(&binary);
        assert_eq!(stored.as_str(), "strongroom:base64:AJ+Slv8=");
        let back = decode_value(&SecretValue::from(stored.as_str()));
        assert!(back == binary);
        assert!(!back.is_text());

        // Empty values (which SSM refuses) and text that looks encoded are encoded too.
        let empty = SecretValue::new(Vec::new());
        let stored = encode_value(&empty);
        assert_eq!(stored.as_str(), BINARY_MARKER);
        assert!(decode_value(&SecretValue::from(stored.as_str())).is_empty());
        let tricky = SecretValue::from("strongroom:base64:aGk=");
        let stored = encode_value(&tricky);
        assert_ne!(stored.as_str(), "strongroom:base64:aGk=");
        assert!(decode_value(&SecretValue::from(stored.as_str())) == tricky);

        // Marker followed by something that is not base64: the text as it is.
        let odd = SecretValue::from("strongroom:base64:not base64!");
        assert!(decode_value(&odd) == odd);
    }

    #[test]
    fn tiers_bound_values() {
        assert_eq!(ParameterTier::Standard.max_value_len(), 4096);
        assert_eq!(ParameterTier::Advanced.max_value_len(), 8192);
        assert_eq!(
            ParameterTier::parse(" Advanced ").ok(),
            Some(ParameterTier::Advanced)
        );
        assert!(matches!(
            ParameterTier::parse("intelligent"),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn wire_parameters_parse_and_bound() {
        let p: WireParameter = serde_json::from_str(
            r#"{"Name":"/a/b","Type":"SecureString","Value":"v","Version":3,"LastModifiedDate":1700000000.5,"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/a/b","DataType":"text"}"#,
        )
        .unwrap();
        let p = p.into_parameter("GetParameter").unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.value.expose(), b"v");
        assert!(p.last_modified.is_some());
        assert!(!format!("{p:?}").contains("\"v\""));

        for bad in [
            r#"{"Name":"/a","Value":"v","Version":-1}"#,
            r#"{"Name":"/a","Value":"v","Version":1.5}"#,
        ] {
            assert!(serde_json::from_str::<WireParameter>(bad).is_err(), "{bad}");
        }
        let no_version: WireParameter =
            serde_json::from_str(r#"{"Name":"/a","Value":"v"}"#).unwrap();
        assert!(matches!(
            no_version.into_parameter("GetParameter"),
            Err(AwsError::Malformed { .. })
        ));
        let far: WireParameter =
            serde_json::from_str(r#"{"Name":"/a","Version":1,"LastModifiedDate":1e300}"#).unwrap();
        assert!(far.into_parameter("GetParameter").is_err());
    }

    #[test]
    fn ssm_codes_map_to_core_errors() {
        let key = SecretName::new("app/db").unwrap();
        let e = |code: &str, status: u16| {
            AwsError::service(
                SERVICE,
                "GetParameter",
                http::StatusCode::from_u16(status).unwrap(),
                code,
                "m",
                None,
            )
        };
        assert!(matches!(
            core_error(e("ParameterNotFound", 400), &key, None),
            Error::NotFound { deleted: false, .. }
        ));
        let v = VersionId::from(7u64);
        assert!(matches!(
            core_error(e("ParameterVersionNotFound", 400), &key, Some(&v)),
            Error::NotFound { version: Some(ref got), .. } if *got == v
        ));
        assert!(matches!(
            core_error(e("ParameterAlreadyExists", 400), &key, None),
            Error::Conflict { .. }
        ));
        assert!(matches!(
            core_error(e("AccessDeniedException", 400), &key, None),
            Error::PermissionDenied { .. }
        ));
        let throttled = core_error(e("ThrottlingException", 400), &key, None);
        assert!(matches!(throttled, Error::Unavailable { .. }));
        assert!(throttled.is_retryable());
        assert!(core_error(e("TooManyUpdates", 400), &key, None).is_retryable());
    }

    #[test]
    fn names_map_under_the_prefix() {
        let client = SsmClient::builder()
            .region("eu-west-1")
            .endpoint("http://127.0.0.1:1")
            .credentials(strongroom_sigv4::StaticProvider::new(
                strongroom_sigv4::Credentials::new("AKID", "secret"),
            ))
            .build()
            .unwrap();
        let store = SsmStore::new(client.clone());
        let key = SecretName::new("app/db/password").unwrap();
        assert_eq!(store.parameter_name(&key), "/app/db/password");
        let scoped = SsmStore::builder()
            .client(client.clone())
            .prefix("/prod/app/")
            .build_lazy()
            .unwrap();
        assert_eq!(scoped.parameter_name(&key), "/prod/app/app/db/password");
        assert!(matches!(
            SsmStore::builder()
                .client(client)
                .prefix("aws/x")
                .build_lazy(),
            Err(Error::Config { .. })
        ));
    }

    #[tokio::test]
    async fn refusals_come_before_any_call() {
        // The endpoint is closed: an error other than the ones below would mean a call.
        let client = SsmClient::builder()
            .region("eu-west-1")
            .endpoint("http://127.0.0.1:1")
            .credentials(strongroom_sigv4::StaticProvider::new(
                strongroom_sigv4::Credentials::new("AKID", "secret"),
            ))
            .build()
            .unwrap();
        let store = SsmStore::new(client);
        let bad = SecretName::new("app/db password").unwrap();
        assert!(matches!(
            store.get(&bad).await,
            Err(Error::InvalidKey {
                problem: NameProblem::Unsupported,
                ..
            })
        ));
        let key = SecretName::new("app/db").unwrap();
        let big = SecretValue::from("x".repeat(4097).as_str());
        match store.put(&key, big).await {
            Err(Error::InvalidValue { message }) => {
                assert!(
                    message.contains("4097") && message.contains("4096"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Binary grows by a third in base64: 3,060 bytes take 4,098.
        let binary = SecretValue::new(vec![0xff; 3060]);
        assert!(matches!(
            store.put(&key, binary).await,
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            store.undelete(&key).await,
            Err(Error::Unsupported { .. })
        ));
        let options =
            PutOptions::default().with_metadata(strongroom_core::Metadata::with_description("d"));
        assert!(matches!(
            store.put_with(&key, "v".into(), &options).await,
            Err(Error::Unsupported { .. })
        ));
    }

    /// A shared config and credentials file under a temporary HOME with the profile `team`.
    fn team_profile() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(aws.join("config"), "[profile team]\nregion = eu-north-1\n").unwrap();
        std::fs::write(
            aws.join("credentials"),
            "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = S\n",
        )
        .unwrap();
        dir
    }

    #[tokio::test]
    async fn a_named_profile_gives_region_and_credentials_without_the_environment() {
        let dir = team_profile();
        let home = dir.path().to_str().unwrap();
        let store = SsmStore::builder()
            .env(Env::from_vars([("HOME", home)]))
            .profile("team")
            .build_lazy()
            .unwrap();
        assert_eq!(store.client().region(), "eu-north-1");
        let credentials = store
            .client()
            .credentials_provider()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDTEAM");

        // AWS_REGION, then the region set, win over the profile's.
        let env = Env::from_vars([("HOME", home), ("AWS_REGION", "ap-south-1")]);
        let store = SsmStore::builder()
            .env(env.clone())
            .profile("team")
            .build_lazy()
            .unwrap();
        assert_eq!(store.client().region(), "ap-south-1");
        let store = SsmStore::builder()
            .env(env)
            .profile("team")
            .region("sa-east-1")
            .build_lazy()
            .unwrap();
        assert_eq!(store.client().region(), "sa-east-1");
    }

    #[test]
    fn from_env_reads_the_request_and_role_settings_secrets_manager_reads() {
        let env = Env::from_vars([
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "9"),
            ("STRONGROOM_CONNECT_TIMEOUT_SECS", "1"),
            ("AWS_MAX_ATTEMPTS", "5"),
            ("STRONGROOM_RETRY_MAX_TOTAL_SECS", "20"),
            (
                "STRONGROOM_AWS_ASSUME_ROLE_ARN",
                "arn:aws:iam::123456789012:role/app",
            ),
            ("STRONGROOM_AWS_ROLE_SESSION_NAME", "app"),
            ("STRONGROOM_AWS_ROLE_DURATION_SECS", "900"),
            ("STRONGROOM_AWS_ROLE_EXTERNAL_ID", "ext"),
        ]);
        let shown = format!("{:?}", SsmStoreBuilder::from_env_with(env).unwrap());
        for want in [
            "request_timeout: Some(9s)",
            "connect_timeout: Some(1s)",
            "retry_max_attempts: Some(5)",
            "retry_max_total: Some(20s)",
            "role_arn: \"arn:aws:iam::123456789012:role/app\"",
            "session_name: \"app\"",
            "duration: Some(900s)",
            "external_id: Some(\"ext\")",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        for (name, value) in [
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "-1"),
            ("STRONGROOM_RETRY_MAX_ATTEMPTS", "99999999999"),
            ("STRONGROOM_AWS_ROLE_DURATION_SECS", "soon"),
        ] {
            let vars = [("STRONGROOM_AWS_ASSUME_ROLE_ARN", "arn:r"), (name, value)];
            let err = SsmStoreBuilder::from_env_with(Env::from_vars(vars)).unwrap_err();
            assert!(
                matches!(&err, Error::Config { message } if message.contains(name)),
                "{err}"
            );
        }
    }

    /// A listener that accepts connections and never answers: each attempt of a read runs
    /// into the request timeout, and the retry budget says how many attempts there are.
    #[tokio::test]
    async fn the_request_timeout_and_retry_budget_reach_the_client() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        let store = SsmStore::builder()
            .env(Env::from_vars([("X", "y")]))
            .region("us-east-1")
            .endpoint(format!("http://{address}"))
            .credentials(strongroom_sigv4::StaticProvider::new(
                strongroom_sigv4::Credentials::new("AKID", "S"),
            ))
            .request_timeout(Duration::from_millis(300))
            .retry_max_attempts(2)
            .retry_max_total(Duration::from_secs(5))
            .build_lazy()
            .unwrap();
        let started = Instant::now();
        let err = store
            .get(&SecretName::new("app/slow").unwrap())
            .await
            .unwrap_err();
        let took = started.elapsed();
        server.abort();
        assert_eq!(err.kind(), strongroom_core::ErrorKind::Unavailable, "{err}");
        assert!(took < Duration::from_secs(4), "took {took:?}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "two attempts, then no more"
        );
    }
}
