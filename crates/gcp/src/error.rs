//! [`Error`]: what a call to Secret Manager or a Google token endpoint can fail with, and
//! how it maps onto [`strongroom_core::Error`].
//!
//! Messages carry the operation, the HTTP status, Google's status name (`NOT_FOUND`,
//! `FAILED_PRECONDITION`, ...) and Google's own message (truncated); never a request body, a
//! header value, a token or a secret value.

use std::time::Duration;

use http::StatusCode;
use strongroom_core::VersionId;

/// The backend name used in [`strongroom_core::Error`]s.
pub(crate) const BACKEND: &str = "gcp";

/// The longest server message kept, in characters: enough to explain, bounded so that a
/// misbehaving server cannot fill logs.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a call to Secret Manager, a token endpoint or the metadata server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response: connect failure, timeout, TLS failure, oversized body.
    #[error("{operation}: {source}")]
    Http {
        /// The operation, such as `access` or `token`.
        operation: &'static str,
        /// The transport error.
        #[source]
        source: strongroom_http::Error,
    },
    /// The server answered with an error status.
    #[error("{operation}: HTTP {status}: {code}: {message}")]
    Service {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: StatusCode,
        /// Google's status name (`NOT_FOUND`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`,
        /// ...), an OAuth error code (`invalid_grant`) from a token endpoint, or `UNKNOWN`.
        code: String,
        /// The server's message, truncated.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The server answered success with a body this crate cannot use.
    #[error("{operation}: malformed response: {reason}")]
    Malformed {
        /// The operation.
        operation: &'static str,
        /// What is wrong (never the body itself).
        reason: String,
    },
    /// A payload's `dataCrc32c` does not match its data: it was damaged on the way.
    #[error("{operation}: the payload does not match its dataCrc32c checksum")]
    Checksum {
        /// The operation.
        operation: &'static str,
    },
    /// No credentials could be found or loaded (no key file, an unreadable or invalid key,
    /// no metadata server).
    #[error("Google credentials: {0}")]
    Credentials(String),
    /// The store or a credential source is configured wrongly (no project, a bad endpoint).
    #[error("GCP configuration: {0}")]
    Config(String),
}

impl Error {
    /// A [`Error::Service`] with a message cut to a bounded length.
    pub(crate) fn service(
        operation: &'static str,
        status: StatusCode,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let mut message: String = message
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_MESSAGE_CHARS)
            .collect();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("error").to_owned();
        }
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        Self::Service {
            operation,
            status,
            code: if code.is_empty() {
                "UNKNOWN".to_owned()
            } else {
                code
            },
            message,
            retry_after,
        }
    }

    /// A [`Error::Malformed`].
    pub(crate) fn malformed(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            operation,
            reason: reason.into(),
        }
    }

    /// Google's status name, for [`Error::Service`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for [`Error::Service`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 / `NOT_FOUND`.
    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// True for a 409 / `ALREADY_EXISTS` (or `ABORTED`).
    pub(crate) fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// True when a write was refused because a condition (an etag, a version state) did not
    /// hold: 412, `FAILED_PRECONDITION`, `ABORTED`, or a 409 that is not `ALREADY_EXISTS`.
    pub(crate) fn is_precondition(&self) -> bool {
        match self {
            Self::Service { status, code, .. } => {
                *status == StatusCode::PRECONDITION_FAILED
                    || code == "FAILED_PRECONDITION"
                    || code == "ABORTED"
            }
            _ => false,
        }
    }

    /// A version could not be read because of its state; `Some(true)` when it is
    /// `DISABLED` (recoverable), `Some(false)` when `DESTROYED`, `None` for other errors.
    pub(crate) fn version_state(&self) -> Option<bool> {
        match self {
            Self::Service { code, message, .. } if code == "FAILED_PRECONDITION" => {
                let upper = message.to_ascii_uppercase();
                if upper.contains("DESTROYED") {
                    Some(false)
                } else if upper.contains("DISABLED") {
                    Some(true)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { source, .. } => source.is_retryable(),
            Self::Service { status, code, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || code == "UNAVAILABLE"
                    || code == "RESOURCE_EXHAUSTED"
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
        if let Some(disabled) = self.version_state() {
            return E::NotFound {
                key: key_text,
                version: version.cloned(),
                deleted: disabled,
            };
        }
        let retryable = self.is_retryable();
        match self {
            Self::Service {
                operation,
                status,
                code,
                message,
                retry_after,
            } => {
                let text = format!("{operation}: {code}: {message}");
                match status {
                    StatusCode::NOT_FOUND => E::NotFound {
                        key: key_text,
                        version: version.cloned(),
                        deleted: false,
                    },
                    StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => E::Conflict {
                        key: key_text,
                        message: text,
                    },
                    StatusCode::UNAUTHORIZED => E::Unauthenticated {
                        backend: BACKEND,
                        message: text,
                    },
                    StatusCode::FORBIDDEN => E::PermissionDenied {
                        backend: BACKEND,
                        key: key.map(str::to_owned),
                        message: text,
                    },
                    _ if retryable => E::Unavailable {
                        backend: BACKEND,
                        message: text,
                        retry_after,
                    },
                    // A token endpoint refusing a grant: the credentials are no good.
                    _ if code == "invalid_grant" || code == "invalid_client" => {
                        E::Unauthenticated {
                            backend: BACKEND,
                            message: text,
                        }
                    }
                    _ => E::Backend {
                        backend: BACKEND,
                        message: text,
                        source: None,
                    },
                }
            }
            Self::Http { .. } if retryable => E::Unavailable {
                backend: BACKEND,
                message: self.to_string(),
                retry_after: None,
            },
            Self::Credentials(message) => E::Unauthenticated {
                backend: BACKEND,
                message,
            },
            Self::Config(message) => E::config(format!("gcp: {message}")),
            other => E::backend(BACKEND, other.to_string(), other),
        }
    }
}

impl From<Error> for strongroom_core::Error {
    fn from(err: Error) -> Self {
        err.into_core(None, None)
    }
}

/// The error a non-2xx response from Secret Manager or a token endpoint describes: Google's
/// `{"error": {"code", "message", "status"}}`, or OAuth's `{"error": "...",
/// "error_description": "..."}`.
pub(crate) fn from_response(
    operation: &'static str,
    response: &strongroom_http::Response,
) -> Error {
    let mut code = String::new();
    let mut message = String::new();
    if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_slice::<serde_json::Value>(&response.body)
    {
        match map.get("error") {
            Some(serde_json::Value::Object(inner)) => {
                if let Some(s) = inner.get("status").and_then(|v| v.as_str()) {
                    s.clone_into(&mut code);
                }
                if let Some(s) = inner.get("message").and_then(|v| v.as_str()) {
                    s.clone_into(&mut message);
                }
            }
            // OAuth 2 error responses (RFC 6749, 5.2): the code is a string.
            Some(serde_json::Value::String(oauth)) => {
                oauth.clone_into(&mut code);
                if let Some(s) = map.get("error_description").and_then(|v| v.as_str()) {
                    s.clone_into(&mut message);
                }
            }
            _ => {}
        }
    }
    Error::service(
        operation,
        response.status,
        &code,
        &message,
        response.retry_after(std::time::SystemTime::now()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::HeaderMap;
    use strongroom_core::Error as E;

    fn response(status: u16, body: &str) -> strongroom_http::Response {
        strongroom_http::Response::new(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            Bytes::from(body.to_owned()),
        )
    }

    fn google(status: u16, code: &str, message: &str) -> Error {
        let body =
            format!(r#"{{"error":{{"code":{status},"message":"{message}","status":"{code}"}}}}"#);
        from_response("access", &response(status, &body))
    }

    #[test]
    fn google_errors_map_onto_the_core_vocabulary() {
        let key = Some("app/db");
        let v = VersionId::from(3);
        assert!(matches!(
            google(404, "NOT_FOUND", "Secret [x] not found.").into_core(key, Some(&v)),
            E::NotFound { deleted: false, version: Some(ref got), .. } if *got == v
        ));
        assert!(matches!(
            google(
                400,
                "FAILED_PRECONDITION",
                "Cannot access secret version in state DISABLED."
            )
            .into_core(key, Some(&v)),
            E::NotFound { deleted: true, .. }
        ));
        assert!(matches!(
            google(
                400,
                "FAILED_PRECONDITION",
                "projects/p/secrets/s/versions/1 is in DESTROYED state."
            )
            .into_core(key, None),
            E::NotFound { deleted: false, .. }
        ));
        assert!(matches!(
            google(409, "ALREADY_EXISTS", "exists").into_core(key, None),
            E::Conflict { .. }
        ));
        assert!(matches!(
            google(401, "UNAUTHENTICATED", "bad token").into_core(key, None),
            E::Unauthenticated { .. }
        ));
        assert!(matches!(
            google(403, "PERMISSION_DENIED", "no").into_core(key, None),
            E::PermissionDenied { key: Some(ref k), .. } if k == "app/db"
        ));
        assert!(matches!(
            google(503, "UNAVAILABLE", "later").into_core(key, None),
            E::Unavailable { .. }
        ));
        assert!(matches!(
            google(429, "RESOURCE_EXHAUSTED", "quota").into_core(key, None),
            E::Unavailable { .. }
        ));
        assert!(matches!(
            google(400, "INVALID_ARGUMENT", "bad").into_core(key, None),
            E::Backend { .. }
        ));
    }

    #[test]
    fn oauth_errors_say_unauthenticated() {
        let err = from_response(
            "token",
            &response(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT"}"#,
            ),
        );
        assert_eq!(err.code(), Some("invalid_grant"));
        assert!(matches!(
            err.into_core(None, None),
            E::Unauthenticated { .. }
        ));
    }

    #[test]
    fn garbage_bodies_and_huge_messages_are_bounded() {
        let err = from_response("list", &response(500, "<html>\u{1b}[31m oops"));
        assert_eq!(err.code(), Some("UNKNOWN"));
        let long = "x".repeat(10_000);
        let err = google(400, "INVALID_ARGUMENT", &long);
        let text = err.to_string();
        assert!(text.len() < 400, "{}", text.len());
        let odd = google(400, "[2J<evil>", "m");
        assert_eq!(odd.code(), Some("2Jevil"));
    }
}
