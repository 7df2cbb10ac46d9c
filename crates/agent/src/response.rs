//! The bodies the agent answers with: the GetSecretValue document, JSON errors, health.
//!
//! A body that holds a secret is built in a buffer that is zeroized when hyper drops it
//! (sized in advance, so it is never reallocated and leaves no copy behind).

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use strongroom_core::{Error, ErrorKind, Secret};
use strongroom_facade::{Health, Stats};
use zeroize::Zeroizing;

/// A response as the agent sends it.
pub(crate) type Reply = Response<Full<Bytes>>;

/// The `ARN` the agent gives a secret: `arn:strongroom:<backend>:::secret:<name>`. The
/// `strongroom` partition says plainly that it is not an AWS ARN (none of the stores keeps
/// one the facade hands on); a caller may send it back as `secretId`.
pub(crate) fn arn(backend: &str, name: &str) -> String {
    format!("{ARN_PREFIX}{backend}:::secret:{name}")
}

/// What every ARN the agent makes starts with.
pub(crate) const ARN_PREFIX: &str = "arn:strongroom:";

/// The name inside an ARN the agent made, or `id` itself.
pub(crate) fn name_from_id(id: &str) -> &str {
    id.strip_prefix(ARN_PREFIX)
        .and_then(|rest| rest.split_once(":::secret:"))
        .map_or(id, |(_, name)| name)
}

/// The GetSecretValue document, in the AWS API's field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SecretDocument<'a> {
    #[serde(rename = "ARN")]
    arn: &'a str,
    name: &'a str,
    version_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<&'a str>,
    version_stages: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    created_date: Option<f64>,
}

/// The GetSecretValue answer for `secret`, asked for as `name`.
pub(crate) fn secret(backend: &str, name: &str, secret: &Secret, stages: &[&str]) -> Reply {
    let value = secret.value.expose();
    // Text goes as SecretString, anything else as base64 SecretBinary, as AWS stores them.
    let binary = match std::str::from_utf8(value) {
        Ok(_) => None,
        Err(_) => {
            let mut encoded = Zeroizing::new(String::with_capacity(
                base64::encoded_len(value.len(), true).unwrap_or(0),
            ));
            BASE64.encode_string(value, &mut encoded);
            Some(encoded)
        }
    };
    let arn = arn(backend, name);
    let document = SecretDocument {
        arn: &arn,
        name,
        version_id: secret.version.as_str(),
        secret_string: match &binary {
            None => std::str::from_utf8(value).ok(),
            Some(_) => None,
        },
        secret_binary: binary.as_deref().map(String::as_str),
        version_stages: stages,
        created_date: secret.created.and_then(epoch_seconds),
    };
    let body = zeroized_json(&document);
    let mut reply = Response::new(Full::new(body));
    let headers = reply.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// Seconds since the epoch with their fraction, as the AWS API gives `CreatedDate`.
fn epoch_seconds(at: SystemTime) -> Option<f64> {
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    Some(since.as_secs_f64())
}

/// `document` as JSON in a buffer zeroized when the body is dropped.
fn zeroized_json(document: &impl Serialize) -> Bytes {
    let mut counter = Counter(0);
    if serde_json::to_writer(&mut counter, document).is_err() {
        return Bytes::new();
    }
    let mut buffer = Zeroizing::new(Vec::with_capacity(counter.0));
    if serde_json::to_writer(&mut *buffer, document).is_err() {
        return Bytes::new();
    }
    Bytes::from_owner(buffer)
}

/// Counts what would be written.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A request the agent does not serve: the status, an error type in the AWS style (the
/// `__type` of the body) and a message. It never holds a secret value or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    pub(crate) fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    /// The refusal for a store's error (whose message never holds a value).
    pub(crate) fn from_store(err: &Error) -> Self {
        let message = err.to_string();
        match err.kind() {
            ErrorKind::NotFound => Self::not_found(message),
            ErrorKind::InvalidKey => Self::bad_parameter(message),
            ErrorKind::Unsupported => Self::bad_request(message),
            ErrorKind::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                format!("{message} (and no cached copy to serve)"),
            ),
            ErrorKind::PermissionDenied => Self::new(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!("the store refused the agent: {message}"),
            ),
            ErrorKind::Unauthenticated => Self::new(
                StatusCode::BAD_GATEWAY,
                "StoreAuthenticationException",
                format!("the store does not accept the agent's credentials: {message}"),
            ),
            ErrorKind::Backend => Self::new(StatusCode::BAD_GATEWAY, "StoreException", message),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                message,
            ),
        }
    }

    /// The JSON reply: `{"__type": ..., "message": ...}`, as AWS error bodies are.
    pub(crate) fn reply(&self) -> Reply {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            kind: &'a str,
            message: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            kind: self.kind,
            message: &self.message,
        })
        .unwrap_or_default();
        let mut reply = json(self.status, body);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            reply
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
        }
        reply
    }
}

/// A JSON reply with `status`.
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// A plain text reply with `status`.
pub(crate) fn text(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// The `/health` document: the facade's verdict and its counters. 200 while reads can be
/// served (healthy or degraded), 503 when they cannot.
pub(crate) fn health(health: &Health, stats: &Stats) -> Reply {
    #[derive(Serialize)]
    struct Cache {
        entries: u64,
        hits: u64,
        misses: u64,
        stale_served: u64,
        loads: u64,
        load_errors: u64,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        status: &'a str,
        backend: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        probe_latency_us: u64,
        degraded: bool,
        cache: Cache,
        mirror_reads: u64,
        errors: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<Node<'a>>,
    }
    #[derive(Serialize)]
    struct Node<'a> {
        address: &'a str,
        state: &'a str,
        serving: bool,
        current: bool,
    }
    let body = Body {
        status: health.status.as_str(),
        backend: health.backend,
        reason: health.reason.as_deref(),
        probe_latency_us: u64::try_from(health.latency.as_micros()).unwrap_or(u64::MAX),
        degraded: stats.degraded,
        cache: Cache {
            entries: stats.cache.entries,
            hits: stats.cache.hits,
            misses: stats.cache.misses,
            stale_served: stats.cache.stale_served,
            loads: stats.cache.loads,
            load_errors: stats.cache.load_errors,
        },
        mirror_reads: stats.mirror_reads,
        errors: stats.errors,
        nodes: health
            .nodes
            .iter()
            .map(|node| Node {
                address: &node.address,
                state: &node.state,
                serving: node.serving,
                current: node.current,
            })
            .collect(),
    };
    let status = match health.status {
        strongroom_facade::HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    json(status, serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use strongroom_core::{SecretName, SecretValue, VersionId};

    use super::*;

    fn body(reply: &Reply) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(reply.body().clone().collect())
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn text_goes_as_secret_string_and_bytes_as_base64_binary() {
        let key = SecretName::new("app/db").unwrap();
        let created = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_250);
        let text = Secret::new(
            key.clone(),
            SecretValue::from("hunter2"),
            VersionId::from(3),
        )
        .created(created);
        let doc = body(&secret("vault", "app/db", &text, &["AWSCURRENT"]));
        assert_eq!(
            doc,
            serde_json::json!({
                "ARN": "arn:strongroom:vault:::secret:app/db",
                "Name": "app/db",
                "VersionId": "3",
                "SecretString": "hunter2",
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": 1_700_000_000.25,
            })
        );
        let binary = Secret::new(
            key,
            SecretValue::from(&[0xff_u8, 0, 1][..]),
            VersionId::from(1),
        );
        let doc = body(&secret("local", "app/db", &binary, &[]));
        assert_eq!(doc["SecretBinary"], "/wAB");
        assert!(doc.get("SecretString").is_none());
        assert!(doc.get("CreatedDate").is_none());
        assert_eq!(doc["VersionStages"], serde_json::json!([]));
    }

    #[test]
    fn an_arn_the_agent_made_names_the_secret_again() {
        let made = arn("vault", "app/db/password");
        assert_eq!(name_from_id(&made), "app/db/password");
        assert_eq!(name_from_id("app/db"), "app/db");
        assert_eq!(
            name_from_id("arn:aws:secretsmanager:eu-west-1:1:secret:x"),
            "arn:aws:secretsmanager:eu-west-1:1:secret:x"
        );
    }

    #[test]
    fn store_errors_map_to_statuses() {
        let cases = [
            (Error::not_found("k"), StatusCode::NOT_FOUND),
            (
                Error::unavailable("vault", "sealed"),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::unsupported("env", "get_version"),
                StatusCode::BAD_REQUEST,
            ),
            (Error::config("bad"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (err, status) in cases {
            assert_eq!(Refusal::from_store(&err).status, status, "{err}");
        }
    }
}
