//! A response read in full.

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use crate::retry::parse_retry_after;

/// A response whose body has been read in full (up to the client's body limit).
///
/// Any status is a response, not an error: callers map 404, 403, 503 and the rest onto their
/// own errors. Its `Debug` prints the status, the header names and the body's length, never
/// header values or the body: a Vault login response carries a token in its body.
#[derive(Clone)]
#[non_exhaustive]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The HTTP version the server answered with.
    pub version: Version,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// How many attempts the client made to get this response (1 when it was not retried).
    pub attempts: u32,
}

impl Response {
    /// A response from its parts, with `version` HTTP/1.1 and `attempts` 1: for callers'
    /// unit tests of their status mapping.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            version: Version::HTTP_11,
            headers,
            body,
            attempts: 1,
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// A header's value as text, when present and visible ASCII.
    pub fn header_str(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// How long the server asked the client to wait, from its `Retry-After` header: either
    /// delay-seconds (`"120"`) or an HTTP date, counted from `now`, at most
    /// [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER) (a date in the past means no wait). `None`
    /// when the header is absent or not one of those forms (negative, fractional, garbage).
    pub fn retry_after(&self, now: SystemTime) -> Option<std::time::Duration> {
        self.header_str(http::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, now))
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(http::HeaderName::as_str).collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_header_values_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("x-vault-token", "hvs.header-secret".parse().unwrap());
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        let response = Response::new(
            StatusCode::OK,
            headers,
            Bytes::from_static(br#"{"auth":{"client_token":"hvs.body-secret"}}"#),
        );
        let shown = format!("{response:?} {response:#?}");
        assert!(!shown.contains("header-secret"), "{shown}");
        assert!(!shown.contains("body-secret"), "{shown}");
        assert!(shown.contains("x-vault-token"), "{shown}");
        assert_eq!(
            response.retry_after(SystemTime::now()),
            Some(std::time::Duration::from_secs(3))
        );
        assert!(response.is_success());
    }
}
