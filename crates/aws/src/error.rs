//! [`AwsError`]: what an AWS call can fail with, and how it maps onto
//! [`strongroom_core::Error`].
//!
//! Messages carry the service, the operation, the HTTP status, AWS's error code and AWS's
//! own message (truncated); never a request body, a header value, a secret value or a key.

use std::time::Duration;

use http::StatusCode;
use strongroom_core::VersionId;
use strongroom_sigv4::{CredentialsError, SigningError};

/// The backend name used in [`strongroom_core::Error`]s.
pub(crate) const BACKEND: &str = "aws";

/// The longest AWS error message kept, in characters: enough to explain, bounded so a
/// misbehaving server cannot fill logs.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a call to Secrets Manager, STS, IMDS or the ECS credentials endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// No response: connect failure, timeout, TLS failure, oversized body.
    #[error("{service} {operation}: {source}")]
    Http {
        /// `secretsmanager`, `sts`, `imds`, `ecs`.
        service: &'static str,
        /// The operation, such as `GetSecretValue`.
        operation: &'static str,
        /// The transport error.
        #[source]
        source: strongroom_http::Error,
    },
    /// The service answered with an error.
    #[error("{service} {operation}: HTTP {status}: {code}: {message}")]
    Service {
        /// The service.
        service: &'static str,
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: StatusCode,
        /// AWS's error code (`ResourceNotFoundException`, `SignatureDoesNotMatch`, ...), or
        /// `Unknown` when the body named none.
        code: String,
        /// AWS's message, truncated.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The service answered success with a body this crate cannot read.
    #[error("{service} {operation}: malformed response: {reason}")]
    Malformed {
        /// The service.
        service: &'static str,
        /// The operation.
        operation: &'static str,
        /// What is wrong (never the body itself).
        reason: String,
    },
    /// No credentials to sign with.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The request could not be signed.
    #[error("signing failed: {0}")]
    Signing(#[from] SigningError),
    /// The client is configured wrongly (bad endpoint URL, no region).
    #[error("AWS configuration: {0}")]
    Config(String),
}

impl AwsError {
    /// A [`AwsError::Service`] with a message cut to a bounded length.
    pub(crate) fn service(
        service: &'static str,
        operation: &'static str,
        status: StatusCode,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let mut message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("error").to_owned();
        }
        Self::Service {
            service,
            operation,
            status,
            code: if code.is_empty() { "Unknown" } else { code }.to_owned(),
            message,
            retry_after,
        }
    }

    /// AWS's error code, for [`AwsError::Service`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for [`AwsError::Service`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the service said the secret is scheduled for deletion (Secrets Manager answers
    /// `InvalidRequestException` then, with a message about deletion).
    pub fn is_marked_for_deletion(&self) -> bool {
        match self {
            Self::Service { code, message, .. } if code == "InvalidRequestException" => {
                let m = message.to_ascii_lowercase();
                m.contains("deletion") || m.contains("deleted")
            }
            _ => false,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { source, .. } => source.is_retryable(),
            Self::Service { code, status, .. } => {
                status.is_server_error() || is_throttling(code) || *status == 429
            }
            _ => false,
        }
    }

    /// Converts into the vocabulary of [`strongroom_core`], naming `key` (and `version`) in
    /// not-found and conflict errors.
    pub fn into_core(
        self,
        key: Option<&str>,
        version: Option<&VersionId>,
    ) -> strongroom_core::Error {
        use strongroom_core::Error as E;
        let key_text = key.unwrap_or_default().to_owned();
        if self.is_marked_for_deletion() {
            return E::NotFound {
                key: key_text,
                version: version.cloned(),
                deleted: true,
            };
        }
        match self {
            Self::Service {
                code,
                status,
                message,
                retry_after,
                operation,
                ..
            } => {
                let text = format!("{operation}: {code}: {message}");
                match code.as_str() {
                    "ResourceNotFoundException" => E::NotFound {
                        key: key_text,
                        version: version.cloned(),
                        deleted: false,
                    },
                    "ResourceExistsException" => E::Conflict {
                        key: key_text,
                        message: text,
                    },
                    c if is_unauthenticated(c) => E::Unauthenticated {
                        backend: BACKEND,
                        message: text,
                    },
                    c if is_denied(c) => E::PermissionDenied {
                        backend: BACKEND,
                        key: key.map(str::to_owned),
                        message: text,
                    },
                    c if is_throttling(c) || status.is_server_error() || status == 429 => {
                        E::Unavailable {
                            backend: BACKEND,
                            message: text,
                            retry_after,
                        }
                    }
                    _ if status == StatusCode::FORBIDDEN => E::PermissionDenied {
                        backend: BACKEND,
                        key: key.map(str::to_owned),
                        message: text,
                    },
                    _ => E::Backend {
                        backend: BACKEND,
                        message: text,
                        source: None,
                    },
                }
            }
            Self::Http { ref source, .. } if source.is_retryable() => {
                E::unavailable(BACKEND, self.to_string())
            }
            Self::Credentials(inner) => match inner {
                CredentialsError::NotLoaded { .. }
                | CredentialsError::InvalidConfiguration { .. } => E::Unauthenticated {
                    backend: BACKEND,
                    message: inner.to_string(),
                },
                CredentialsError::TimedOut { .. } => E::unavailable(BACKEND, inner.to_string()),
                // A provider that failed on a transient error (a credentials endpoint or STS
                // answering 503, timing out, resetting) may succeed on the next call.
                CredentialsError::Provider { .. } if is_transient(&inner) => {
                    E::unavailable(BACKEND, inner.to_string())
                }
                other => E::Unauthenticated {
                    backend: BACKEND,
                    message: other.to_string(),
                },
            },
            Self::Config(message) => E::config(message),
            other => {
                let message = other.to_string();
                E::backend(BACKEND, message, other)
            }
        }
    }
}

/// Whether a credentials failure was caused by a retryable transport or service error,
/// anywhere in its chain of sources.
fn is_transient(error: &CredentialsError) -> bool {
    // The provider's source sits behind an `Arc`, whose own `Error::source` skips the error
    // it holds: start from the held error itself.
    let CredentialsError::Provider { source, .. } = error else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
    while let Some(current) = source {
        if let Some(aws) = current.downcast_ref::<AwsError>() {
            return aws.is_retryable();
        }
        if let Some(http) = current.downcast_ref::<strongroom_http::Error>() {
            return http.is_retryable();
        }
        source = current.source();
    }
    false
}

/// Codes that mean "who are you?": bad or expired keys, bad signatures.
fn is_unauthenticated(code: &str) -> bool {
    matches!(
        code,
        "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "RequestExpired"
            | "AuthFailure"
    )
}

/// Codes that mean "you may not".
fn is_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException" | "AccessDenied" | "NotAuthorized"
    )
}

/// Codes that mean "slow down".
fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalServiceError"
            | "InternalFailure"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::Error as E;

    fn service(code: &str, status: u16, message: &str) -> AwsError {
        AwsError::service(
            "secretsmanager",
            "GetSecretValue",
            StatusCode::from_u16(status).unwrap(),
            code,
            message,
            None,
        )
    }

    #[test]
    fn codes_map_to_core_errors() {
        let k = Some("app/db");
        assert!(matches!(
            service("ResourceNotFoundException", 400, "x").into_core(k, None),
            E::NotFound { deleted: false, .. }
        ));
        assert!(matches!(
            service(
                "InvalidRequestException",
                400,
                "You can't perform this operation on the secret because it was marked for deletion."
            )
            .into_core(k, None),
            E::NotFound { deleted: true, .. }
        ));
        assert!(matches!(
            service("ResourceExistsException", 400, "x").into_core(k, None),
            E::Conflict { .. }
        ));
        for code in [
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
        ] {
            assert!(matches!(
                service(code, 403, "x").into_core(k, None),
                E::Unauthenticated { .. }
            ));
        }
        assert!(matches!(
            service("AccessDeniedException", 400, "x").into_core(k, None),
            E::PermissionDenied { .. }
        ));
        assert!(matches!(
            service("ThrottlingException", 400, "x").into_core(k, None),
            E::Unavailable { .. }
        ));
        assert!(matches!(
            service("Whatever", 503, "x").into_core(k, None),
            E::Unavailable { .. }
        ));
        assert!(matches!(
            service("InvalidParameterException", 400, "x").into_core(k, None),
            E::Backend { .. }
        ));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "m".repeat(10_000);
        let err = service("X", 400, &long);
        assert!(err.to_string().len() < 500);
    }
}
