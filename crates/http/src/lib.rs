//! The one HTTP client strongroom's remote backends share.
//!
//! `strongroom-vault` and `strongroom-aws` send every request through an [`HttpClient`], so
//! that timeouts, retries, TLS trust and body limits are written once and behave the same
//! for both. The client is general: it knows nothing of Vault or AWS.
//!
//! It is published as a building block rather than hidden: the Vault and AWS builders take
//! an `HttpClient` (to share one pool, or to set trust and timeouts once), and mirroring its
//! settings in a type of each backend would copy them three times over. Its API follows
//! semver with the rest of strongroom.
//!
//! - HTTP/1.1, and HTTP/2 negotiated by ALPN over TLS with the `http2` feature; one
//!   connection pool per client, cheap to clone. An HTTP/1.1 connection is driven inside the
//!   request future that is using it (`pool.rs`), not by a task of its own, so a response
//!   wakes the caller directly: on a multi-thread runtime that saves a hand-off between
//!   threads per request (docs/performance.md has the client-CPU figures).
//! - TLS by rustls with the `ring` provider: the Mozilla roots from `webpki-roots`, plus CA
//!   bundles from PEM files ([`ClientBuilder::add_ca_file`]), plus an optional client
//!   certificate for mTLS ([`ClientBuilder::client_identity_pem`]). Plain `http` goes only
//!   to loopback and link-local hosts (dev servers, the EC2/ECS metadata services) unless
//!   [`ClientBuilder::plain_http`] says otherwise.
//! - A connect timeout (2 s) and a whole-request timeout (5 s) covering the body too.
//! - Response bodies read in full up to a cap (4 MiB); past it, [`Error::BodyTooLarge`].
//! - Retries for retryable failures only (connection refused or reset, timeouts, 429, 500,
//!   502, 503, 504), with exponential backoff and full jitter, bounded in attempts and total
//!   time, honouring `Retry-After`. Which requests are repeated is the caller's choice per
//!   request ([`Retry`]): by default ([`Retry::Auto`]) the idempotent methods and requests
//!   marked [`Idempotent`]; [`Retry::Always`] for a request the caller knows is safe to repeat
//!   (AWS Secrets Manager sends reads as POST); [`Retry::Unsent`] for a write that must not
//!   be applied twice, retried only when no connection could be opened; [`Retry::Never`].
//! - Redirects are never followed; an HTTP status is never an [`Error`].
//! - One `debug` tracing event per attempt with method, host, path (no query string),
//!   status or error, attempt number and elapsed time; never headers or bodies. Credential
//!   headers (`Authorization`, `X-Vault-Token`, `X-Amz-Security-Token`, ...) are marked
//!   sensitive, and no error message or `Debug` output holds a header value or a body.
//!
//! # Arithmetic
//!
//! Numbers from the wire (`Retry-After` as seconds or as an HTTP date, read as at most
//! [`MAX_RETRY_AFTER`]; `Content-Length`)
//! and from configuration (timeouts, retry budgets) are never trusted in arithmetic: an
//! `Instant` or `SystemTime` is computed from one only with `checked_add` /
//! `checked_sub`, an overflow counts as "past every deadline" (the call ends with the last
//! outcome, never a panic), and a wait is never longer than what is left of the retry
//! budget. The crate is compiled with `#![deny(clippy::arithmetic_side_effects)]`, so an
//! unchecked `+`, `-`, `*`, `/` or `%` does not build: the rule stays true as the code
//! changes, not just today.
//!
//! ```
//! use bytes::Bytes;
//! use std::time::Duration;
//! use strongroom_http::{HttpClient, RetryPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpClient::builder()
//!     .request_timeout(Duration::from_secs(3))
//!     .retry_policy(RetryPolicy::default().with_max_attempts(4))
//!     .build()?;
//! let request = http::Request::get("http://127.0.0.1:8200/v1/sys/health")
//!     .header("x-vault-token", "hvs.example")
//!     .body(Bytes::new())?;
//! # drop((client, request));
//! // Inside a Tokio runtime:
//! // let response = client.send(request).await?;
//! // if response.status == http::StatusCode::NOT_FOUND { /* the caller's mapping */ }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
// docs.rs (`--cfg docsrs`) labels items that need a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Nothing from outside is trusted in arithmetic (see "Arithmetic" above): every `+ - * / %`
// in this crate is checked, saturating or wrapping, and clippy refuses one that is not.
// Unit tests compute their fixtures freely.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod client;
mod error;
mod pool;
mod response;
mod retry;
mod tls;

pub use client::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_POOL_IDLE_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, HttpClient, PlainHttp,
};
pub use error::{BoxError, Error, Phase};
pub use response::Response;
pub use retry::{Idempotent, MAX_RETRY_AFTER, Retry, RetryPolicy, full_jitter};

/// Re-exported so callers build requests with the same `http` and `bytes` versions.
pub use bytes;
/// Re-exported so callers build requests with the same `http` and `bytes` versions.
pub use http;
