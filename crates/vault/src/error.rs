//! How Vault's answers become [`strongroom_core::Error`]s.
//!
//! | Vault says                                       | Error                                 |
//! |--------------------------------------------------|---------------------------------------|
//! | 404                                              | `NotFound` (`deleted` from KV metadata) |
//! | 403, token valid                                 | `PermissionDenied`                    |
//! | 403, token invalid/expired/revoked; 401          | `Unauthenticated`                     |
//! | 400 "check-and-set parameter did not match"      | `Conflict`                            |
//! | 400 other                                        | `InvalidValue`                        |
//! | 412, 429, 500, 502, 503 (sealed, standby), 504   | `Unavailable` (retryable)             |
//! | 307/308 from a standby pointing at the active node | `Unavailable` (redirects are not followed) |
//! | connection refused/reset, timeout                | `Unavailable`                         |
//! | TLS failure, malformed answer, oversized body    | `Backend`                             |
//!
//! Messages keep the server's `errors` array, the operation and the key; never the token
//! (it is cut out of the server's text should it ever appear there) and never a value.

use std::time::Duration;

use http::StatusCode;
use strongroom_core::Error;

/// The name this backend gives itself in errors, logs and metrics.
pub(crate) const BACKEND: &str = "vault";

/// The longest piece of server text kept in a message.
const MAX_SERVER_TEXT: usize = 600;

/// What a request was about, for its error message.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Context<'a> {
    /// A short name of the operation (`kv read`, `approle login`).
    pub(crate) operation: &'static str,
    /// The secret's path, when the request was about one secret.
    pub(crate) key: Option<&'a str>,
    /// The version asked for.
    pub(crate) version: Option<u64>,
}

impl<'a> Context<'a> {
    pub(crate) fn op(operation: &'static str) -> Self {
        Self {
            operation,
            key: None,
            version: None,
        }
    }

    pub(crate) fn key(operation: &'static str, key: &'a str) -> Self {
        Self {
            operation,
            key: Some(key),
            version: None,
        }
    }

    pub(crate) fn with_version(mut self, version: Option<u64>) -> Self {
        self.version = version;
        self
    }

    pub(crate) fn prefix(&self) -> String {
        match self.key {
            Some(key) => format!("{} {key:?}", self.operation),
            None => self.operation.to_owned(),
        }
    }
}

/// Maps a transport failure (no HTTP status) onto an [`Error`].
pub(crate) fn from_http(err: strongroom_http::Error, ctx: &Context<'_>) -> Error {
    use strongroom_http::Error as H;
    let message = format!("{}: {err}", ctx.prefix());
    match err {
        H::Connect { .. } | H::Timeout { .. } | H::Io { .. } => Error::Unavailable {
            backend: BACKEND,
            message,
            retry_after: None,
        },
        H::Config { .. } => Error::config(message),
        other => Error::backend(BACKEND, message, other),
    }
}

/// The server's `errors` array joined with `; ` (empty when there is none), with `redact`
/// cut out wherever it appears, and shortened to a readable length.
pub(crate) fn server_errors(body: &[u8], redact: Option<&str>) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let mut text = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(serde_json::Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    if let Some(secret) = redact.filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[REDACTED]");
    }
    if text.len() > MAX_SERVER_TEXT {
        let mut cut = MAX_SERVER_TEXT;
        while !text.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// True for the 400 Vault answers when a check-and-set write loses.
pub(crate) fn is_cas_mismatch(server_text: &str) -> bool {
    server_text.contains("check-and-set parameter did not match")
        || server_text.contains("check-and-set parameter required")
}

/// Maps a non-2xx status onto an [`Error`]. 403 maps to `PermissionDenied` here; the client
/// turns it into `Unauthenticated` once it has found the token itself is bad.
pub(crate) fn from_status(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    ctx: &Context<'_>,
    redact: Option<&str>,
) -> Error {
    let server = server_errors(body, redact);
    let detail = if server.is_empty() {
        format!("{}: HTTP {}", ctx.prefix(), status.as_u16())
    } else {
        format!("{}: HTTP {}: {server}", ctx.prefix(), status.as_u16())
    };
    match status.as_u16() {
        404 => Error::NotFound {
            key: ctx.key.unwrap_or(ctx.operation).to_owned(),
            version: ctx.version.map(Into::into),
            deleted: false,
        },
        401 => Error::Unauthenticated {
            backend: BACKEND,
            message: detail,
        },
        403 => Error::PermissionDenied {
            backend: BACKEND,
            key: ctx.key.map(str::to_owned),
            message: detail,
        },
        400 if is_cas_mismatch(&server) => Error::Conflict {
            key: ctx.key.unwrap_or_default().to_owned(),
            message: detail,
        },
        400 | 413 | 422 => Error::InvalidValue { message: detail },
        // A standby redirects to the active node, also for a moment while a restarted
        // single node takes over its own lock. Redirects are never followed (a token would
        // go wherever the Location says), so this is "not now, or not this node".
        307 | 308 => Error::Unavailable {
            backend: BACKEND,
            message: format!(
                "{detail}: the node is a standby and redirected to the active node; redirects \
                 are not followed, so point VAULT_ADDR at the active node or a load balancer"
            ),
            retry_after,
        },
        // 412: a performance standby has not caught up yet; 429: rate limited or a
        // standby refusing; 5xx: sealed, standby, or broken. All may pass.
        412 | 429 | 500..=599 => Error::Unavailable {
            backend: BACKEND,
            message: detail,
            retry_after,
        },
        _ => Error::Backend {
            backend: BACKEND,
            message: detail,
            source: None,
        },
    }
}

/// An answer that is not what Vault sends (bad JSON, a missing field).
pub(crate) fn malformed(ctx: &Context<'_>, what: &str) -> Error {
    Error::Backend {
        backend: BACKEND,
        message: format!("{}: malformed response from Vault: {what}", ctx.prefix()),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    fn map(status: u16, body: &str) -> Error {
        from_status(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            None,
            &Context::key("kv write", "app/db"),
            Some("hvs.TOKEN-TEXT"),
        )
    }

    #[test]
    fn statuses_map_onto_core_errors() {
        let table = [
            (404, "{\"errors\":[]}", ErrorKind::NotFound),
            (
                403,
                "{\"errors\":[\"permission denied\"]}",
                ErrorKind::PermissionDenied,
            ),
            (401, "", ErrorKind::Unauthenticated),
            (
                400,
                "{\"errors\":[\"check-and-set parameter did not match the current version\"]}",
                ErrorKind::Conflict,
            ),
            (
                400,
                "{\"errors\":[\"no data provided\"]}",
                ErrorKind::InvalidValue,
            ),
            (
                503,
                "{\"errors\":[\"Vault is sealed\"]}",
                ErrorKind::Unavailable,
            ),
            (500, "oops", ErrorKind::Unavailable),
            (429, "", ErrorKind::Unavailable),
            (412, "", ErrorKind::Unavailable),
            (307, "", ErrorKind::Unavailable),
            (405, "", ErrorKind::Backend),
        ];
        for (status, body, kind) in table {
            assert_eq!(map(status, body).kind(), kind, "{status} {body}");
        }
    }

    #[test]
    fn messages_keep_server_errors_but_not_the_token() {
        let err = map(
            503,
            "{\"errors\":[\"Vault is sealed\", \"token hvs.TOKEN-TEXT rejected\"]}",
        );
        let text = format!("{err} {err:?}");
        assert!(text.contains("Vault is sealed"), "{text}");
        assert!(text.contains("app/db"), "{text}");
        assert!(text.contains("503"), "{text}");
        assert!(!text.contains("TOKEN-TEXT"), "{text}");
    }

    #[test]
    fn long_server_text_is_shortened_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let text = server_errors(format!("{{\"errors\":[\"{long}\"]}}").as_bytes(), None);
        assert!(text.len() <= MAX_SERVER_TEXT + 3);
        assert!(text.ends_with("..."));
    }
}
