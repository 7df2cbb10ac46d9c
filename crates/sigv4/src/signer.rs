//! [`Signer`]: signs an `http::Request` in place, or presigns its URL, with aws-sigv4.
//!
//! This module only adapts: aws-sigv4 builds the canonical request, derives the key and
//! computes the signature. What it adds is a small, owned configuration, errors instead of
//! the panics aws-sigv4 has for a request without a host, and silence: aws-sigv4 logs the
//! canonical request at TRACE level, session token included, so its events are suppressed.
//! (A side effect: tracing may then cache aws-sigv4's TRACE callsites as disabled, so an AWS
//! SDK in the same process logs no canonical requests either; nothing else is affected.)

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SignatureLocation, SigningInstructions, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, Method, Request, Uri};

use crate::credentials::Credentials;
use crate::error::SigningError;

/// The longest a presigned URL may live: 7 days, as SigV4 allows.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The header the session token of temporary credentials goes in.
const SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");

/// What the signature says about the body.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// These bytes are the body: their SHA-256 is signed.
    Bytes(&'a [u8]),
    /// The body is not signed (`UNSIGNED-PAYLOAD`), for streaming uploads and services that
    /// allow it (S3). Most services, Secrets Manager among them, reject it.
    Unsigned,
    /// The body's SHA-256, already computed, as 64 lowercase hex digits.
    Sha256Hex(&'a str),
}

impl fmt::Debug for Payload<'_> {
    // The body may be a secret value: show its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Self::Unsigned => f.write_str("Unsigned"),
            Self::Sha256Hex(hash) => f.debug_tuple("Sha256Hex").field(hash).finish(),
        }
    }
}

/// A SigV4 signature: 64 lowercase hex digits. Not a secret (it travels with the request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature(String);

impl Signature {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Signs requests for one service in one region.
///
/// The defaults suit every AWS service except S3: the body is hashed and signed, the path is
/// normalized and percent-encoded a second time, and the session token is signed. The time
/// is an argument of each call, so tests are deterministic and a skewed clock can be
/// corrected by the caller.
///
/// ```
/// use std::time::SystemTime;
/// use strongroom_sigv4::{Credentials, Signer};
///
/// let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
/// let mut request = http::Request::post("https://sts.us-east-1.amazonaws.com/")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())?;
/// Signer::new("us-east-1", "sts").sign(&mut request, &credentials, SystemTime::now())?;
/// assert!(request.headers().contains_key("authorization"));
/// assert!(request.headers().contains_key("x-amz-date"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    region: String,
    service: String,
    unsigned_payload: bool,
    content_sha256_header: bool,
    normalize_path: bool,
    double_encode_path: bool,
    sign_session_token: bool,
}

impl Signer {
    /// A signer for `service` (the signing name, e.g. `secretsmanager`, `sts`, `s3`) in
    /// `region` (e.g. `us-east-1`).
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            service: service.into(),
            unsigned_payload: false,
            content_sha256_header: false,
            normalize_path: true,
            double_encode_path: true,
            sign_session_token: true,
        }
    }

    /// The region signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service signed for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Sign `UNSIGNED-PAYLOAD` instead of the body's hash in [`Signer::sign`] and
    /// [`Signer::presign`]. Default: off.
    #[must_use]
    pub fn unsigned_payload(mut self, on: bool) -> Self {
        self.unsigned_payload = on;
        self
    }

    /// Also send (and sign) the payload hash in an `x-amz-content-sha256` header, as S3
    /// requires. Default: off.
    #[must_use]
    pub fn content_sha256_header(mut self, on: bool) -> Self {
        self.content_sha256_header = on;
        self
    }

    /// Normalize the path (`/a/./b/../c` -> `/a/c`) before signing. Default: on; S3 wants off.
    #[must_use]
    pub fn normalize_path(mut self, on: bool) -> Self {
        self.normalize_path = on;
        self
    }

    /// Percent-encode the already encoded path again in the canonical request. Default: on;
    /// S3 wants off.
    #[must_use]
    pub fn double_encode_path(mut self, on: bool) -> Self {
        self.double_encode_path = on;
        self
    }

    /// Include the session token in the signature. Default: on. A few services (IoT
    /// websockets) want the token added but left out of the signature.
    #[must_use]
    pub fn sign_session_token(mut self, on: bool) -> Self {
        self.sign_session_token = on;
        self
    }

    /// Signs `request` in place: adds `x-amz-date`, `authorization`, the session token
    /// header for temporary credentials and, if configured, `x-amz-content-sha256`. The body
    /// is hashed unless [`Signer::unsigned_payload`] is on.
    ///
    /// An `authorization`, `x-amz-date` or `x-amz-security-token` header already present is
    /// replaced, so a request can be signed again (a retry, fresh credentials).
    pub fn sign<B: AsRef<[u8]>>(
        &self,
        request: &mut Request<B>,
        credentials: &Credentials,
        time: SystemTime,
    ) -> Result<Signature, SigningError> {
        strip_signing_headers(request.headers_mut());
        let (instructions, signature) = {
            let payload = self.default_payload(request.body().as_ref());
            self.instructions(
                Parts::of(request),
                payload,
                credentials,
                time,
                SignatureLocation::Headers,
                None,
            )?
        };
        instructions.apply_to_request_http1x(request);
        Ok(signature)
    }

    /// Like [`Signer::sign`] for a body that is not in memory as bytes (a stream, a body
    /// type without `AsRef<[u8]>`): the caller says what to sign for it.
    pub fn sign_with_payload<B>(
        &self,
        request: &mut Request<B>,
        payload: Payload<'_>,
        credentials: &Credentials,
        time: SystemTime,
    ) -> Result<Signature, SigningError> {
        strip_signing_headers(request.headers_mut());
        let (instructions, signature) = self.instructions(
            Parts::of(request),
            payload,
            credentials,
            time,
            SignatureLocation::Headers,
            None,
        )?;
        instructions.apply_to_request_http1x(request);
        Ok(signature)
    }

    /// A presigned URL for `request`: its URI with the signature in the query string
    /// (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
    /// `X-Amz-SignedHeaders`, `X-Amz-Security-Token`, `X-Amz-Signature`), valid for
    /// `expires_in` (at most [`MAX_PRESIGN_EXPIRY`]). Whoever uses the URL must send the same
    /// method and the request's headers, which are signed.
    pub fn presign<B: AsRef<[u8]>>(
        &self,
        request: &Request<B>,
        credentials: &Credentials,
        time: SystemTime,
        expires_in: Duration,
    ) -> Result<Uri, SigningError> {
        let payload = self.default_payload(request.body().as_ref());
        self.presign_with_payload(request, payload, credentials, time, expires_in)
    }

    /// Like [`Signer::presign`], saying what to sign for the body.
    pub fn presign_with_payload<B>(
        &self,
        request: &Request<B>,
        payload: Payload<'_>,
        credentials: &Credentials,
        time: SystemTime,
        expires_in: Duration,
    ) -> Result<Uri, SigningError> {
        if expires_in < Duration::from_secs(1) || expires_in > MAX_PRESIGN_EXPIRY {
            return Err(SigningError::InvalidParams {
                reason: "a presigned URL must expire in 1 second to 7 days",
            });
        }
        let (instructions, _) = self.instructions(
            Parts::of(request),
            payload,
            credentials,
            time,
            SignatureLocation::QueryParams,
            Some(expires_in),
        )?;
        let mut carrier = Request::new(());
        *carrier.uri_mut() = request.uri().clone();
        instructions.apply_to_request_http1x(&mut carrier);
        Ok(carrier.into_parts().0.uri)
    }

    fn default_payload<'a>(&self, body: &'a [u8]) -> Payload<'a> {
        if self.unsigned_payload {
            Payload::Unsigned
        } else {
            Payload::Bytes(body)
        }
    }

    fn settings(
        &self,
        location: SignatureLocation,
        expires_in: Option<Duration>,
    ) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.signature_location = location;
        settings.expires_in = expires_in;
        settings.payload_checksum_kind = if self.content_sha256_header {
            PayloadChecksumKind::XAmzSha256
        } else {
            PayloadChecksumKind::NoHeader
        };
        settings.uri_path_normalization_mode = if self.normalize_path {
            UriPathNormalizationMode::Enabled
        } else {
            UriPathNormalizationMode::Disabled
        };
        settings.percent_encoding_mode = if self.double_encode_path {
            PercentEncodingMode::Double
        } else {
            PercentEncodingMode::Single
        };
        settings.session_token_mode = if self.sign_session_token {
            SessionTokenMode::Include
        } else {
            SessionTokenMode::Exclude
        };
        settings
    }

    fn check_scope(&self) -> Result<(), SigningError> {
        // Region and service go into the credential scope `date/region/service/aws4_request`.
        let bad = |s: &str| {
            s.is_empty()
                || s.chars()
                    .any(|c| c == '/' || c.is_whitespace() || c.is_control())
        };
        if bad(&self.region) {
            return Err(SigningError::InvalidParams {
                reason: "the region is empty or holds `/`, whitespace or control characters",
            });
        }
        if bad(&self.service) {
            return Err(SigningError::InvalidParams {
                reason: "the service is empty or holds `/`, whitespace or control characters",
            });
        }
        Ok(())
    }

    fn instructions(
        &self,
        parts: Parts<'_>,
        payload: Payload<'_>,
        credentials: &Credentials,
        time: SystemTime,
        location: SignatureLocation,
        expires_in: Option<Duration>,
    ) -> Result<(SigningInstructions, Signature), SigningError> {
        self.check_scope()?;
        // aws-sigv4 panics on a request without a host; refuse it here instead.
        if parts.uri.host().is_none() && !parts.headers.contains_key(HOST) {
            return Err(SigningError::MissingHost);
        }
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in parts.headers {
            let value = value
                .to_str()
                .map_err(|_| SigningError::InvalidHeaderValue {
                    name: name.as_str().to_owned(),
                })?;
            headers.push((name.as_str(), value));
        }
        let body = match payload {
            Payload::Bytes(bytes) => SignableBody::Bytes(bytes),
            Payload::Unsigned => SignableBody::UnsignedPayload,
            Payload::Sha256Hex(hash) => {
                if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return Err(SigningError::InvalidParams {
                        reason: "a precomputed payload hash must be 64 lowercase hex digits",
                    });
                }
                SignableBody::Precomputed(hash.to_owned())
            }
        };
        let signable = SignableRequest::new(
            parts.method.as_str(),
            parts.uri.to_string(),
            headers.into_iter(),
            body,
        )
        .map_err(|e| SigningError::Sign {
            source: Box::new(e),
        })?;

        let identity = credentials.to_identity();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(self.settings(location, expires_in))
            .build()
            .map_err(|e| SigningError::Sign {
                source: Box::new(e),
            })?
            .into();

        // aws-sigv4 traces the canonical request, which holds the session token: run it
        // with no subscriber so that no TRACE filter can leak the token.
        let output = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            aws_sigv4::http_request::sign(signable, &params)
        })
        .map_err(|e| SigningError::Sign {
            source: Box::new(e),
        })?;
        let (instructions, signature) = output.into_parts();
        tracing::debug!(
            service = %self.service,
            region = %self.region,
            method = %parts.method,
            host = parts.uri.host().unwrap_or_default(),
            presigned = expires_in.is_some(),
            "signed request"
        );
        Ok((instructions, Signature(signature)))
    }
}

/// The borrowed parts of a request that are signed.
#[derive(Clone, Copy)]
struct Parts<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl<'a> Parts<'a> {
    fn of<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
        }
    }
}

/// Removes what a previous signing added, so that it is not signed again.
fn strip_signing_headers(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    headers.remove(AMZ_DATE);
    headers.remove(SECURITY_TOKEN);
}
