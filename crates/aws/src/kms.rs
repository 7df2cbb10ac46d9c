//! [`KmsKeyProvider`]: a [`KeyProvider`] on AWS KMS, which wraps an encrypted store's data
//! key with a KMS key, so the key that opens the store lives in KMS and never on disk.
//!
//! It speaks KMS's JSON 1.1 API (`X-Amz-Target: TrentService.<Operation>`, signed with SigV4
//! for the service `kms`) through the same client as Secrets Manager and SSM, with the same
//! region, endpoint (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`) and credential resolution.
//!
//! | [`KeyProvider`] | KMS |
//! |---|---|
//! | [`wrap`](KeyProvider::wrap) | `Encrypt` (`KeyId`, `Plaintext`, `EncryptionContext`) |
//! | [`unwrap`](KeyProvider::unwrap) | `Decrypt` (`CiphertextBlob`, `EncryptionContext`, and `KeyId`, so that a ciphertext made by another key is refused) |
//! | [`generate`](KeyProvider::generate) | `GenerateDataKey` (`KeyId`, `NumberOfBytes`, `EncryptionContext`) |
//! | [`rewrap`](KeyProvider::rewrap) | `Decrypt` then `Encrypt` (the trait's default; a rotated KMS key decrypts its old ciphertexts itself, so rewrapping is never needed for KMS's own rotation) |
//!
//! The wrapped key is KMS's `CiphertextBlob` exactly as KMS returned it (the bytes, not
//! base64), so `aws kms decrypt` and every SDK can open it given the same encryption
//! context: each [`KeyContext`] pair becomes one `EncryptionContext` entry, name to value.
//! docs/keys-providers.md shows the commands.
//!
//! # Errors
//!
//! | KMS says | [`Error`] |
//! |---|---|
//! | `InvalidCiphertextException`, `IncorrectKeyException` (tampered, other key, other context) | `Decrypt` |
//! | `AccessDeniedException` (no `kms:Decrypt`, say) | `PermissionDenied` |
//! | `UnrecognizedClientException`, `InvalidSignatureException`, expired tokens, no credentials | `Unauthenticated` |
//! | `NotFoundException` (no such key or alias in this region) | `Config`, naming the key |
//! | `DisabledException`, `KMSInvalidStateException` (disabled, pending deletion or import) | `Backend`, naming the key and its state |
//! | `InvalidKeyUsageException` (a signing or HMAC key), `InvalidKeyUsage` | `Config`, naming the key |
//! | throttling, 5xx, `KeyUnavailableException`, `DependencyTimeoutException`, connection failures, timeouts | `Unavailable` (retried first, bounded, as every call of this crate) |
//!
//! # Secrets and sizes
//!
//! The data key travels base64-encoded in a request body that is built once at its final
//! size and wiped when the call ends; the base64 of a plaintext in a response is read into a
//! zeroized string and decoded straight into the [`SecretValue`] returned. Neither the key
//! nor a body is logged, put in an error or printed by `Debug`. Every size is checked before
//! use: a data key is 1 to [`MAX_PLAINTEXT_LEN`] bytes (KMS's own limit), a wrapped key 1 to
//! [`MAX_CIPHERTEXT_LEN`] bytes, and a generated key exactly the length asked for; anything
//! else from the server is a malformed answer.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use strongroom_core::{Error, GeneratedKey, KeyContext, KeyProvider, SecretValue, async_trait};
use strongroom_http::{HttpClient, Retry};
use strongroom_sigv4::{Env, ProvideCredentials};
use zeroize::Zeroizing;

use crate::client_settings::ClientSettings;
use crate::error::AwsError;
use crate::json_api::{JsonApi, Service, Settings, check_credentials, elapsed_ms};

/// The signing name of KMS, and its name in logs and errors.
const SERVICE: &str = "kms";

/// The kind a KMS key slot is written with, and the scheme of its `--key` value
/// (`aws-kms:alias/app`).
pub const KMS_KIND: &str = "aws-kms";

/// The largest data key KMS `Encrypt` takes (and `Decrypt` returns), in bytes.
pub const MAX_PLAINTEXT_LEN: usize = 4096;

/// The largest data key KMS `GenerateDataKey` makes, in bytes.
pub const MAX_GENERATED_LEN: usize = 1024;

/// The largest `CiphertextBlob` KMS takes, in bytes.
pub const MAX_CIPHERTEXT_LEN: usize = 6144;

/// The longest key id, ARN or alias KMS takes, in characters.
pub const MAX_KEY_ID_LEN: usize = 2048;

/// A [`KeyProvider`] that wraps data keys with one AWS KMS key; see the
/// [module docs](self) for the calls, the errors and how secrets are handled.
///
/// Cheap to clone (clones share the HTTP client and the credentials cache).
///
/// ```no_run
/// use strongroom_aws::KmsKeyProvider;
/// use strongroom_core::{KeyContext, KeyProvider};
///
/// # async fn demo() -> Result<(), strongroom_core::Error> {
/// // AWS_REGION, AWS_ENDPOINT_URL_KMS, credentials from the default chain.
/// let kms = KmsKeyProvider::builder("alias/app").build().await?;
/// let context = KeyContext::new().with("store", "/srv/app/secrets.sr");
/// let key = kms.generate(32, &context).await?.expect("KMS generates data keys");
/// let opened = kms.unwrap(&key.wrapped, &context).await?;
/// assert_eq!(opened.expose(), key.plaintext.expose());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KmsKeyProvider {
    api: Arc<JsonApi>,
    key_id: Arc<str>,
}

impl fmt::Debug for KmsKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKeyProvider")
            .field("key_id", &self.key_id)
            .field("region", &self.api.region())
            .field("endpoint", self.api.endpoint())
            .finish_non_exhaustive()
    }
}

/// Configures a [`KmsKeyProvider`]. What no setter names is found the AWS way: region from
/// `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile, endpoint from `AWS_ENDPOINT_URL_KMS` /
/// `AWS_ENDPOINT_URL` / the region's, credentials from the default chain (or the profile).
#[must_use]
pub struct KmsKeyProviderBuilder {
    key_id: String,
    env: Option<Env>,
    region: Option<String>,
    endpoint: Option<String>,
    profile: Option<String>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    http: Option<HttpClient>,
    check_credentials: bool,
}

impl fmt::Debug for KmsKeyProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKeyProviderBuilder")
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl KmsKeyProviderBuilder {
    /// Reads the AWS variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`). A key
    /// ARN names its own region; KMS still wants the request sent to that region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint URL (else `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, the region's).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The shared-config profile whose credentials (and, unless set otherwise, region)
    /// are used, instead of the default chain.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// The credentials provider.
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// The credentials provider, shared (with a Secrets Manager store, say).
    pub fn credentials_arc(mut self, provider: Arc<dyn ProvideCredentials>) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// The HTTP client (else [`HttpClient::new`]): its timeouts and retry policy bound
    /// every call.
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Load credentials while building (the default for [`build`](Self::build)), so that
    /// none is an [`Error::Config`] now rather than at the first wrap or unwrap.
    pub fn check_credentials(mut self, on: bool) -> Self {
        self.check_credentials = on;
        self
    }

    /// Builds the provider and, unless turned off with
    /// [`check_credentials`](Self::check_credentials), loads credentials once.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or overlong key id, no region, a region that is not a
    /// region name, a bad endpoint, or (when checked) no credentials.
    pub async fn build(self) -> Result<KmsKeyProvider, Error> {
        let check = self.check_credentials;
        let provider = self.build_lazy()?;
        if check {
            check_credentials(&**provider.api.credentials(), "AWS KMS").await?;
        }
        Ok(provider)
    }

    /// Builds the provider without loading credentials: missing ones are found on first
    /// use.
    ///
    /// # Errors
    /// As [`build`](Self::build), except for credentials.
    pub fn build_lazy(self) -> Result<KmsKeyProvider, Error> {
        let key_id = self.key_id.trim();
        if key_id.is_empty() || key_id.chars().count() > MAX_KEY_ID_LEN {
            return Err(Error::config(format!(
                "the AWS KMS key id must be 1 to {MAX_KEY_ID_LEN} characters: a key id, key \
                 ARN, alias name (alias/app) or alias ARN"
            )));
        }
        // A named profile's region and credentials, resolved as the store builders do.
        let resolved = ClientSettings {
            env: self.env,
            region: self.region,
            profile: self.profile,
            credentials: self.credentials,
            ..ClientSettings::default()
        }
        .resolve()
        .map_err(|e| Error::config(format!("AWS KMS: {e}")))?;
        let settings = Settings {
            env: Some(resolved.env),
            region: resolved.region,
            endpoint: self.endpoint,
            credentials: resolved.credentials,
            http: self.http,
        };
        let service = Service {
            name: SERVICE,
            endpoint_id: "KMS",
            target: "TrentService",
        };
        let api = JsonApi::build(settings, service)
            .map_err(|e| Error::config(format!("AWS KMS: {e}")))?;
        Ok(KmsKeyProvider {
            api: Arc::new(api),
            key_id: key_id.into(),
        })
    }
}

impl KmsKeyProvider {
    /// A builder for the KMS key `key_id`: a key id (`1234abcd-...`), key ARN, alias name
    /// (`alias/app`) or alias ARN, as KMS accepts them.
    pub fn builder(key_id: impl Into<String>) -> KmsKeyProviderBuilder {
        KmsKeyProviderBuilder {
            key_id: key_id.into(),
            env: None,
            region: None,
            endpoint: None,
            profile: None,
            credentials: None,
            http: None,
            check_credentials: true,
        }
    }

    /// A provider for `key_id` configured by the process environment (`AWS_REGION`,
    /// `AWS_PROFILE`, `AWS_ENDPOINT_URL_KMS`, the default credential chain), with the
    /// credentials loaded once now.
    ///
    /// # Errors
    /// As [`KmsKeyProviderBuilder::build`].
    pub async fn from_env(key_id: impl Into<String>) -> Result<Self, Error> {
        Self::builder(key_id).build().await
    }

    /// The region requests are signed for and sent to.
    pub fn region(&self) -> &str {
        self.api.region()
    }

    async fn call<I: Serialize, O: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        input: &I,
    ) -> Result<O, Error> {
        let started = Instant::now();
        // Encrypt, Decrypt and GenerateDataKey change nothing in KMS: repeating one after a
        // timeout or a 5xx is safe.
        let result = self
            .api
            .call(operation, input, Retry::Always)
            .await
            .map_err(|e| map_error(e, operation, &self.key_id));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        tracing::debug!(
            backend = KMS_KIND,
            operation,
            key_id = &*self.key_id,
            outcome,
            elapsed_ms = elapsed_ms(started),
            "key provider call"
        );
        result
    }
}

// ---- wire shapes -------------------------------------------------------------------------

/// `EncryptionContext`: the context's pairs as a JSON object, in name order.
struct WireContext<'a>(&'a KeyContext);

impl Serialize for WireContext<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.pairs().len()))?;
        for (name, value) in self.0.pairs() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptInput<'a> {
    key_id: &'a str,
    /// Base64 of the data key, borrowed from a zeroized string.
    plaintext: &'a str,
    #[serde(skip_serializing_if = "is_empty_context")]
    encryption_context: WireContext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptInput<'a> {
    key_id: &'a str,
    ciphertext_blob: &'a str,
    #[serde(skip_serializing_if = "is_empty_context")]
    encryption_context: WireContext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateInput<'a> {
    key_id: &'a str,
    number_of_bytes: usize,
    #[serde(skip_serializing_if = "is_empty_context")]
    encryption_context: WireContext<'a>,
}

fn is_empty_context(context: &WireContext<'_>) -> bool {
    context.0.pairs().len() == 0
}

/// What Encrypt, Decrypt and GenerateDataKey answer; each fills the fields it has.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Output {
    #[serde(default)]
    ciphertext_blob: Option<String>,
    #[serde(default)]
    plaintext: Option<Zeroizing<String>>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field(
                "ciphertext_blob",
                &self.ciphertext_blob.as_ref().map(String::len),
            )
            .field("plaintext", &self.plaintext.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

fn malformed(operation: &'static str, reason: &str) -> Error {
    AwsError::Malformed {
        service: SERVICE,
        operation,
        reason: reason.to_owned(),
    }
    .into_core(None, None)
}

/// The `CiphertextBlob` of an answer, decoded and bounded.
pub(crate) fn ciphertext_of(output: &Output, operation: &'static str) -> Result<Vec<u8>, Error> {
    let text = output
        .ciphertext_blob
        .as_deref()
        .ok_or_else(|| malformed(operation, "no CiphertextBlob"))?;
    // Base64 of MAX_CIPHERTEXT_LEN bytes is 8192 characters; refuse more before decoding.
    if text.len() > base64_len(MAX_CIPHERTEXT_LEN) {
        return Err(malformed(operation, "CiphertextBlob is too long"));
    }
    let blob = STANDARD
        .decode(text)
        .map_err(|_| malformed(operation, "CiphertextBlob is not base64"))?;
    if blob.is_empty() || blob.len() > MAX_CIPHERTEXT_LEN {
        return Err(malformed(
            operation,
            &format!(
                "CiphertextBlob has {} bytes, not 1 to {MAX_CIPHERTEXT_LEN}",
                blob.len()
            ),
        ));
    }
    Ok(blob)
}

/// The `Plaintext` of an answer, decoded into a zeroized buffer and bounded by `max` (and
/// exactly `exact` bytes when given). The base64 text is wiped when `output` drops.
pub(crate) fn plaintext_of(
    output: &Output,
    operation: &'static str,
    max: usize,
    exact: Option<usize>,
) -> Result<SecretValue, Error> {
    let text = output
        .plaintext
        .as_deref()
        .ok_or_else(|| malformed(operation, "no Plaintext"))?;
    if text.len() > base64_len(max) {
        return Err(malformed(operation, "Plaintext is too long"));
    }
    // Decoded into a buffer allocated once and never grown, so no partial copy is freed
    // unwiped; `Zeroizing` wipes it on every error path.
    let mut buffer = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let len = STANDARD
        .decode_slice(text.as_bytes(), &mut buffer[..])
        .map_err(|_| malformed(operation, "Plaintext is not base64 of a data key"))?;
    let wrong = match exact {
        Some(exact) => len != exact,
        None => len == 0,
    };
    if wrong {
        return Err(malformed(
            operation,
            &format!(
                "Plaintext has {len} bytes, expected {}",
                exact.map_or_else(|| format!("1 to {max}"), |n| n.to_string())
            ),
        ));
    }
    buffer.truncate(len);
    Ok(SecretValue::new(std::mem::take(&mut *buffer)))
}

/// The length of the padded base64 of `len` bytes.
fn base64_len(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4)
}

/// Maps a KMS failure onto the core vocabulary; see the module docs' table. Names the key,
/// never the data.
fn map_error(error: AwsError, operation: &'static str, key_id: &str) -> Error {
    let code = error.code().unwrap_or_default().to_owned();
    let message = error.to_string();
    match code.as_str() {
        "InvalidCiphertextException" | "IncorrectKeyException" => Error::Decrypt {
            what: format!(
                "the data key wrapped by AWS KMS key {key_id} (modified, made by another key, \
                 or bound to another encryption context; KMS {operation}: {code})"
            ),
        },
        "NotFoundException" => Error::config(format!(
            "AWS KMS key {key_id} was not found in this region (check the key id or alias and \
             the region): {message}"
        )),
        "InvalidKeyUsageException" | "InvalidKeyUsage" => Error::config(format!(
            "AWS KMS key {key_id} cannot encrypt and decrypt (it must be a symmetric \
             ENCRYPT_DECRYPT key): {message}"
        )),
        "DisabledException" | "KMSInvalidStateException" => Error::Backend {
            backend: KMS_KIND,
            message: format!(
                "AWS KMS key {key_id} cannot be used in its current state (disabled, pending \
                 deletion or pending import: enable it or cancel its deletion): {message}"
            ),
            source: None,
        },
        "KeyUnavailableException" | "DependencyTimeoutException" | "KMSInternalException" => {
            Error::Unavailable {
                backend: KMS_KIND,
                message,
                retry_after: None,
            }
        }
        _ => match error.into_core(Some(key_id), None) {
            // Re-labelled so that a caller holding several providers can tell which refused.
            Error::PermissionDenied { key, message, .. } => Error::PermissionDenied {
                backend: KMS_KIND,
                key,
                message: format!("AWS KMS key {key_id}: {message}"),
            },
            Error::Unauthenticated { message, .. } => Error::Unauthenticated {
                backend: KMS_KIND,
                message,
            },
            Error::Unavailable {
                message,
                retry_after,
                ..
            } => Error::Unavailable {
                backend: KMS_KIND,
                message,
                retry_after,
            },
            Error::Backend {
                message, source, ..
            } => Error::Backend {
                backend: KMS_KIND,
                message,
                source,
            },
            other => other,
        },
    }
}

/// A data key's length checked against what `Encrypt` takes.
fn check_data_key(data_key: &[u8]) -> Result<(), Error> {
    if data_key.is_empty() || data_key.len() > MAX_PLAINTEXT_LEN {
        return Err(Error::InvalidValue {
            message: format!(
                "a data key wrapped by AWS KMS must be 1 to {MAX_PLAINTEXT_LEN} bytes, not {}",
                data_key.len()
            ),
        });
    }
    Ok(())
}

#[async_trait]
impl KeyProvider for KmsKeyProvider {
    fn kind(&self) -> &'static str {
        KMS_KIND
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn wrap(&self, data_key: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        const OP: &str = "Encrypt";
        check_data_key(data_key)?;
        // Encoded once into a buffer of its final size, wiped on drop.
        let mut encoded = Zeroizing::new(String::with_capacity(base64_len(data_key.len())));
        STANDARD.encode_string(data_key, &mut encoded);
        let input = EncryptInput {
            key_id: &self.key_id,
            plaintext: &encoded,
            encryption_context: WireContext(context),
        };
        let output: Output = self.call(OP, &input).await?;
        ciphertext_of(&output, OP)
    }

    async fn unwrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<SecretValue, Error> {
        const OP: &str = "Decrypt";
        if wrapped.is_empty() || wrapped.len() > MAX_CIPHERTEXT_LEN {
            return Err(Error::Decrypt {
                what: format!(
                    "the data key wrapped by AWS KMS key {} ({} bytes: a KMS ciphertext has 1 \
                     to {MAX_CIPHERTEXT_LEN})",
                    self.key_id,
                    wrapped.len()
                ),
            });
        }
        let blob = STANDARD.encode(wrapped);
        let input = DecryptInput {
            key_id: &self.key_id,
            ciphertext_blob: &blob,
            encryption_context: WireContext(context),
        };
        let output: Output = self.call(OP, &input).await?;
        plaintext_of(&output, OP, MAX_PLAINTEXT_LEN, None)
    }

    async fn generate(
        &self,
        len: usize,
        context: &KeyContext,
    ) -> Result<Option<GeneratedKey>, Error> {
        const OP: &str = "GenerateDataKey";
        if !(1..=MAX_GENERATED_LEN).contains(&len) {
            return Err(Error::InvalidValue {
                message: format!(
                    "AWS KMS generates data keys of 1 to {MAX_GENERATED_LEN} bytes, not {len}"
                ),
            });
        }
        let input = GenerateInput {
            key_id: &self.key_id,
            number_of_bytes: len,
            encryption_context: WireContext(context),
        };
        let output: Output = self.call(OP, &input).await?;
        let plaintext = plaintext_of(&output, OP, len, Some(len))?;
        let wrapped = ciphertext_of(&output, OP)?;
        Ok(Some(GeneratedKey { plaintext, wrapped }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use strongroom_core::ErrorKind;
    use strongroom_sigv4::{Credentials, StaticProvider};

    const KEY: &str = "alias/strongroom-test";
    /// A data key that must never show up in any text.
    const DATA_KEY: &[u8; 32] = b"PLAINTEXT-DATA-KEY-0123456789abc";

    fn output(json: &str) -> Output {
        serde_json::from_str(json).unwrap()
    }

    fn service_error(code: &str, status: u16) -> AwsError {
        AwsError::service(
            SERVICE,
            "Decrypt",
            StatusCode::from_u16(status).unwrap(),
            code,
            "what KMS said",
            None,
        )
    }

    #[test]
    fn encryption_context_is_a_json_object_of_the_pairs() {
        let context = KeyContext::new()
            .with("strongroom:store", "/srv/app.sr")
            .with("strongroom:format", "2");
        let input = DecryptInput {
            key_id: KEY,
            ciphertext_blob: "AAEC",
            encryption_context: WireContext(&context),
        };
        let json: serde_json::Value = serde_json::to_value(&input).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "KeyId": KEY,
                "CiphertextBlob": "AAEC",
                "EncryptionContext": {"strongroom:format": "2", "strongroom:store": "/srv/app.sr"},
            })
        );
        // No context: the field is left out, as the AWS CLI does.
        let empty = KeyContext::new();
        let input = GenerateInput {
            key_id: KEY,
            number_of_bytes: 32,
            encryption_context: WireContext(&empty),
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            serde_json::json!({"KeyId": KEY, "NumberOfBytes": 32})
        );
    }

    #[test]
    fn answers_are_decoded_and_bounded() {
        let plain = STANDARD.encode(DATA_KEY);
        let out = output(&format!(
            r#"{{"CiphertextBlob":"AQIDBA==","Plaintext":"{plain}","KeyId":"arn:aws:kms:us-east-1:1:key/x"}}"#
        ));
        assert_eq!(
            ciphertext_of(&out, "GenerateDataKey").unwrap(),
            [1, 2, 3, 4]
        );
        let key = plaintext_of(&out, "GenerateDataKey", 32, Some(32)).unwrap();
        assert_eq!(key.expose(), DATA_KEY);
        // The length asked for, exactly.
        let err = plaintext_of(&out, "GenerateDataKey", 64, Some(64)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        // Longer than the bound: refused before decoding.
        let err = plaintext_of(&out, "GenerateDataKey", 16, Some(16)).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        // Decrypt: any length from 1 to the bound.
        assert_eq!(
            plaintext_of(&out, "Decrypt", MAX_PLAINTEXT_LEN, None)
                .unwrap()
                .len(),
            32
        );
        for bad in [
            r#"{}"#,
            r#"{"Plaintext":""}"#,
            r#"{"Plaintext":"not base64!"}"#,
            r#"{"CiphertextBlob":""}"#,
            r#"{"CiphertextBlob":"%%%"}"#,
        ] {
            let out = output(bad);
            let plain = plaintext_of(&out, "Decrypt", MAX_PLAINTEXT_LEN, None);
            let blob = ciphertext_of(&out, "Encrypt");
            assert!(plain.is_err() && blob.is_err(), "{bad}");
            assert_eq!(blob.unwrap_err().kind(), ErrorKind::Backend, "{bad}");
        }
        let long = STANDARD.encode(vec![0u8; MAX_CIPHERTEXT_LEN + 1]);
        let out = output(&format!(r#"{{"CiphertextBlob":"{long}"}}"#));
        assert!(ciphertext_of(&out, "Encrypt").is_err());
        let fits = STANDARD.encode(vec![7u8; MAX_CIPHERTEXT_LEN]);
        let out = output(&format!(r#"{{"CiphertextBlob":"{fits}"}}"#));
        assert_eq!(
            ciphertext_of(&out, "Encrypt").unwrap().len(),
            MAX_CIPHERTEXT_LEN
        );
    }

    #[test]
    fn kms_codes_map_onto_core_errors() {
        let table = [
            ("InvalidCiphertextException", 400, ErrorKind::Decrypt),
            ("IncorrectKeyException", 400, ErrorKind::Decrypt),
            ("AccessDeniedException", 400, ErrorKind::PermissionDenied),
            (
                "UnrecognizedClientException",
                400,
                ErrorKind::Unauthenticated,
            ),
            ("InvalidSignatureException", 400, ErrorKind::Unauthenticated),
            ("ExpiredTokenException", 400, ErrorKind::Unauthenticated),
            ("NotFoundException", 400, ErrorKind::Config),
            ("InvalidKeyUsageException", 400, ErrorKind::Config),
            ("DisabledException", 400, ErrorKind::Backend),
            ("KMSInvalidStateException", 400, ErrorKind::Backend),
            ("ThrottlingException", 400, ErrorKind::Unavailable),
            ("KeyUnavailableException", 500, ErrorKind::Unavailable),
            ("DependencyTimeoutException", 503, ErrorKind::Unavailable),
            ("KMSInternalException", 500, ErrorKind::Unavailable),
            ("Whatever", 503, ErrorKind::Unavailable),
            ("ValidationException", 400, ErrorKind::Backend),
        ];
        for (code, status, kind) in table {
            let err = map_error(service_error(code, status), "Decrypt", KEY);
            assert_eq!(err.kind(), kind, "{code}: {err}");
        }
        // The errors about the key name it.
        for code in [
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
            "InvalidCiphertextException",
            "AccessDeniedException",
        ] {
            let err = map_error(service_error(code, 400), "Decrypt", KEY);
            assert!(err.to_string().contains(KEY), "{code}: {err}");
        }
        // Transport failures and missing credentials.
        let refused = AwsError::Http {
            service: SERVICE,
            operation: "Decrypt",
            source: strongroom_http::Error::Timeout {
                authority: "127.0.0.1:1".into(),
                phase: strongroom_http::Phase::Connect,
            },
        };
        assert_eq!(
            map_error(refused, "Decrypt", KEY).kind(),
            ErrorKind::Unavailable
        );
        let none = AwsError::Credentials(strongroom_sigv4::CredentialsError::not_loaded(
            "env", "unset",
        ));
        assert_eq!(
            map_error(none, "Decrypt", KEY).kind(),
            ErrorKind::Unauthenticated
        );
    }

    fn provider() -> KmsKeyProvider {
        KmsKeyProvider::builder(KEY)
            .env(Env::from_vars([("AWS_REGION", "eu-west-1")]))
            .credentials(StaticProvider::new(Credentials::new("AKID", "SECRET-KEY")))
            .build_lazy()
            .unwrap()
    }

    #[test]
    fn builder_resolves_region_and_endpoint_and_checks_the_key_id() {
        let kms = provider();
        assert_eq!(kms.region(), "eu-west-1");
        assert_eq!(kms.kind(), "aws-kms");
        assert_eq!(kms.key_id(), KEY);
        assert_eq!(
            kms.api.endpoint().to_string(),
            "https://kms.eu-west-1.amazonaws.com/"
        );
        let local = KmsKeyProvider::builder(KEY)
            .env(Env::from_vars([
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:2"),
            ]))
            .credentials(StaticProvider::new(Credentials::new("AKID", "SECRET-KEY")))
            .build_lazy()
            .unwrap();
        assert_eq!(local.api.endpoint().port_u16(), Some(2));
        for bad in [String::new(), " ".into(), "k".repeat(MAX_KEY_ID_LEN + 1)] {
            let err = KmsKeyProvider::builder(bad)
                .env(Env::from_vars([("AWS_REGION", "us-east-1")]))
                .build_lazy()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
        }
        let err = KmsKeyProvider::builder(KEY)
            .env(Env::from_vars([("HOME", "/nonexistent")]))
            .build_lazy()
            .unwrap_err();
        assert!(err.to_string().contains("region"), "{err}");
    }

    #[test]
    fn a_profile_gives_the_region_unless_the_environment_does() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[profile prod]\nregion = eu-central-1\naws_access_key_id = AKID\n\
             aws_secret_access_key = SECRET-KEY\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let missing = dir.path().join("credentials").display().to_string();
        let vars = |region: Option<&str>| {
            let mut vars = vec![
                ("AWS_CONFIG_FILE", config.clone()),
                ("AWS_SHARED_CREDENTIALS_FILE", missing.clone()),
            ];
            if let Some(region) = region {
                vars.push(("AWS_REGION", region.to_owned()));
            }
            Env::from_vars(vars)
        };
        let kms = KmsKeyProvider::builder(KEY)
            .env(vars(None))
            .profile("prod")
            .build_lazy()
            .unwrap();
        assert_eq!(kms.region(), "eu-central-1");
        let kms = KmsKeyProvider::builder(KEY)
            .env(vars(Some("us-west-2")))
            .profile("prod")
            .build_lazy()
            .unwrap();
        assert_eq!(kms.region(), "us-west-2");
    }

    #[tokio::test]
    async fn sizes_are_refused_before_any_call() {
        // Nothing listens on the endpoint: each of these must fail before sending, and a
        // regression fails as Unavailable instead of reaching out.
        let kms = KmsKeyProvider::builder(KEY)
            .env(Env::from_vars([("AWS_REGION", "eu-west-1")]))
            .endpoint("http://127.0.0.1:1")
            .credentials(StaticProvider::new(Credentials::new("AKID", "SECRET-KEY")))
            .build_lazy()
            .unwrap();
        let context = KeyContext::new();
        for bad in [0, MAX_PLAINTEXT_LEN + 1] {
            let err = kms.wrap(&vec![1; bad], &context).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{bad}");
        }
        for bad in [0, MAX_CIPHERTEXT_LEN + 1] {
            let err = kms.unwrap(&vec![1; bad], &context).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decrypt, "{bad}");
        }
        for bad in [0, MAX_GENERATED_LEN + 1] {
            let err = kms.generate(bad, &context).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{bad}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_key_or_credentials() {
        let kms = provider();
        let shown = format!("{kms:?} {:?}", KmsKeyProvider::builder(KEY));
        assert!(shown.contains(KEY), "{shown}");
        assert!(!shown.contains("SECRET-KEY"), "{shown}");

        let plain = STANDARD.encode(DATA_KEY);
        let out = output(&format!(
            r#"{{"Plaintext":"{plain}","CiphertextBlob":"AQ=="}}"#
        ));
        let shown = format!("{out:?}");
        assert!(!shown.contains(&plain), "{shown}");
        // Every error made from an answer that carries the key leaves the key out.
        let errors = [
            plaintext_of(&out, "GenerateDataKey", 16, Some(16)).unwrap_err(),
            plaintext_of(&out, "GenerateDataKey", 64, Some(64)).unwrap_err(),
            plaintext_of(&out, "GenerateDataKey", 33, Some(33)).unwrap_err(),
        ];
        let key_text = String::from_utf8_lossy(DATA_KEY).into_owned();
        for err in errors {
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains(&plain) && !text.contains(&key_text),
                "{text}"
            );
        }
        // A wrong-typed Plaintext: serde's message must not quote it either.
        let parsed: Result<Output, _> =
            serde_json::from_str(&format!(r#"{{"Plaintext":["{plain}"]}}"#));
        let text = parsed.unwrap_err().to_string();
        assert!(!text.contains(&plain), "{text}");
        let key = GeneratedKey {
            plaintext: SecretValue::new(DATA_KEY.to_vec()),
            wrapped: vec![1],
        };
        assert!(!format!("{key:?}").contains(&key_text));
    }
}
