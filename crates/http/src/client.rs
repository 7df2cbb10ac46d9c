//! The client, its builder, and one request's life: attempts, deadlines, retries.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use crate::error::{Error, Phase};
use crate::pool::{Body, Conn, Pool, SendError};
use crate::response::Response;
use crate::retry::{Idempotent, Jitter, Retry, RetryPolicy, full_jitter, is_retryable_status};
use crate::tls::TlsSettings;

/// Default time to open a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time for one attempt, from sending the request to the last byte of the body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest response body read: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default time an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Header names whose values are credentials. Their values are marked sensitive, so that
/// HTTP/2 never puts them in its compression table and `http`'s `Debug` prints `Sensitive`.
const SENSITIVE_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-vault-token",
    "x-amz-security-token",
    "x-aws-ec2-metadata-token",
    "x-aws-ec2-metadata-token-ttl-seconds",
];

/// hyper-util's pooled client, for `https` when HTTP/2 may be negotiated: an HTTP/2
/// connection carries many requests at once, so it needs a task of its own to drive it,
/// which is what that client gives it. HTTP/1.1 goes through [`Pool`].
#[cfg(feature = "http2")]
type SharedClient =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP/1.1 client (HTTP/2 too with the `http2` feature) over rustls, with timeouts,
/// capped bodies and retries.
///
/// Cloning is cheap and clones share one connection pool. Requests must run inside a Tokio
/// runtime with the time driver enabled. Redirects are never followed: a 3xx comes back as
/// a [`Response`] like any other status.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    #[cfg(feature = "http2")]
    http2: Option<SharedClient>,
    request_timeout: Duration,
    max_body_bytes: usize,
    retry: RetryPolicy,
    user_agent: HeaderValue,
    plain_http: PlainHttp,
    jitter: Jitter,
}

/// Where plain (unencrypted) `http` may go. Tokens travel in headers, so plain HTTP to a
/// remote host would expose them to the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlainHttp {
    /// Only `https`.
    Never,
    /// `http` only to this machine (`localhost`, 127.0.0.0/8, `::1`) and link-local
    /// addresses (169.254.0.0/16, `fe80::/10`: the EC2 and ECS metadata services, which speak
    /// only HTTP). The default: dev servers and local agents work, remote hosts need TLS.
    #[default]
    LocalOnly,
    /// `http` anywhere. For networks the operator trusts; say so explicitly.
    Anywhere,
}

impl PlainHttp {
    fn allows(self, host: &str) -> bool {
        match self {
            Self::Never => false,
            Self::Anywhere => true,
            Self::LocalOnly => is_local_host(host),
        }
    }
}

/// True for loopback and link-local hosts, named or numeric.
fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || ip.is_unicast_link_local(),
        Err(_) => false,
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("request_timeout", &self.inner.request_timeout)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .field("retry", &self.inner.retry)
            .field("plain_http", &self.inner.plain_http)
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpClient`]; every setting has a default (see the `DEFAULT_*` constants
/// and [`RetryPolicy::default`]). Files are read by [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
    retry: RetryPolicy,
    tls: TlsSettings,
    user_agent: String,
    #[cfg(feature = "http2")]
    http2: bool,
    plain_http: PlainHttp,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retry: RetryPolicy::default(),
            tls: TlsSettings {
                webpki_roots: true,
                ..TlsSettings::default()
            },
            user_agent: concat!("strongroom-http/", env!("CARGO_PKG_VERSION")).to_owned(),
            #[cfg(feature = "http2")]
            http2: true,
            plain_http: PlainHttp::default(),
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: 8,
        }
    }
}

impl ClientBuilder {
    /// Time allowed to open a TCP connection (default 2 s). A timeout here is retryable.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one attempt, connecting, sending, and reading the whole body
    /// (default 5 s). The retry policy's `max_total` also caps it.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest response body read (default 4 MiB); a longer one is an
    /// [`Error::BodyTooLarge`].
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// How retries are spaced and bounded (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Also trust the CA certificates in this PEM file (one or more certificates), for
    /// servers with a private CA (`VAULT_CACERT`). May be called several times.
    #[must_use]
    pub fn add_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_files.push(path.into());
        self
    }

    /// Whether to trust the Mozilla root certificates bundled from `webpki-roots` (default
    /// yes). Turn off to trust only the CA files added.
    #[must_use]
    pub fn webpki_roots(mut self, enabled: bool) -> Self {
        self.tls.webpki_roots = enabled;
        self
    }

    /// Present a client certificate (mTLS): a PEM certificate chain, leaf first, and its PEM
    /// private key (PKCS#8, PKCS#1 or SEC1). The key file's bytes are zeroized once parsed.
    #[must_use]
    pub fn client_identity_pem(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.tls.identity = Some((cert_path.into(), key_path.into()));
        self
    }

    /// The `User-Agent` sent when a request has none (default `strongroom-http/<version>`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Whether HTTP/2 may be negotiated over TLS (ALPN; default yes with the `http2`
    /// feature, which this method needs). Plain `http` always speaks HTTP/1.1.
    #[cfg(feature = "http2")]
    #[must_use]
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Where plain `http` URIs are allowed (default [`PlainHttp::LocalOnly`]). A refused
    /// request fails with [`Error::InvalidRequest`] before anything is sent.
    #[must_use]
    pub fn plain_http(mut self, policy: PlainHttp) -> Self {
        self.plain_http = policy;
        self
    }

    /// Shorthand: `true` is [`PlainHttp::Never`], `false` the default [`PlainHttp::LocalOnly`].
    #[must_use]
    pub fn https_only(self, enabled: bool) -> Self {
        self.plain_http(if enabled {
            PlainHttp::Never
        } else {
            PlainHttp::LocalOnly
        })
    }

    /// How long an idle pooled connection is kept (default 90 s).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Most idle connections kept per host (default 8).
    #[must_use]
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Reads the CA and identity files and builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file when a CA bundle, certificate or key cannot be read
    /// or parsed, when no root would be trusted, or when the user agent is not a valid
    /// header value.
    pub fn build(self) -> Result<HttpClient, Error> {
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|e| Error::config_with(None, "user agent is not a valid header value", e))?;
        let tls_config = self.tls.build()?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        #[cfg(feature = "http2")]
        let http2 = self.http2.then(|| {
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config.clone())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http.clone());
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(self.pool_idle_timeout)
                .pool_max_idle_per_host(self.pool_max_idle_per_host)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .build(connector)
        });
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Pool::new(
            connector,
            self.pool_idle_timeout,
            self.pool_max_idle_per_host,
        );

        Ok(HttpClient {
            inner: Arc::new(Inner {
                pool,
                #[cfg(feature = "http2")]
                http2,
                request_timeout: self.request_timeout,
                max_body_bytes: self.max_body_bytes,
                retry: self.retry,
                user_agent,
                plain_http: self.plain_http,
                jitter: Jitter::from_system(),
            }),
        })
    }
}

/// Where a request goes, as it may be logged: no user info, no query string. Borrowed from
/// the request's URI: checking where a request goes allocates nothing.
struct Target<'a> {
    authority: &'a str,
    host: &'a str,
    path: &'a str,
}

impl<'a> Target<'a> {
    fn of(uri: &'a Uri, plain_http: PlainHttp) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidRequest {
            reason: reason.to_owned(),
        };
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if !plain_http.allows(uri.host().unwrap_or_default()) => {
                return Err(invalid(
                    "plain http to a host that is not local is refused: use https, or allow it with PlainHttp::Anywhere",
                ));
            }
            Some("http") => {}
            Some(_) => return Err(invalid("the URI scheme must be http or https")),
            None => return Err(invalid("the URI must be absolute (scheme and host)")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the URI must be absolute (scheme and host)"))?;
        // Credentials in a URI would end up in logs and error messages; they belong in a
        // header, where they are marked sensitive.
        if authority.as_str().contains('@') {
            return Err(invalid(
                "credentials in the URI are not supported; send them in a header",
            ));
        }
        Ok(Self {
            authority: authority.as_str(),
            host: authority.host(),
            path: uri.path(),
        })
    }
}

/// How a request travels.
enum Route {
    /// An HTTP/1.1 connection of the [`Pool`] to this scheme and authority; the request
    /// line carries the path and query only (origin form), the `Host` header the rest.
    Pool { https: bool, origin: Uri },
    /// hyper-util's client, which negotiates HTTP/2 (see [`SharedClient`]).
    #[cfg(feature = "http2")]
    Shared,
}

/// The parts of a request kept to rebuild it for each attempt.
struct Prepared {
    method: Method,
    uri: Uri,
    route: Route,
    version: http::Version,
    headers: HeaderMap,
    extensions: http::Extensions,
    body: Bytes,
}

impl Prepared {
    fn request(&self) -> Request<Body> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = match &self.route {
            Route::Pool { origin, .. } => origin.clone(),
            #[cfg(feature = "http2")]
            Route::Shared => self.uri.clone(),
        };
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        request
    }
}

impl HttpClient {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with every default (webpki roots, 2 s connect, 5 s request, 4 MiB bodies,
    /// 3 attempts).
    ///
    /// # Errors
    /// Only if the default TLS configuration cannot be built, which does not happen in
    /// practice.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// The largest body this client reads.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// The retry policy this client follows.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Sends a request, retrying retryable failures when the request is safe to repeat
    /// ([`Retry::Auto`]: idempotent methods, or requests carrying [`Idempotent`]).
    ///
    /// # Errors
    /// See [`Error`]; an HTTP status is never an error.
    pub async fn send(&self, request: Request<Bytes>) -> Result<Response, Error> {
        self.send_with(request, Retry::Auto).await
    }

    /// Sends a request once, without retrying.
    ///
    /// # Errors
    /// See [`Error`]; an HTTP status is never an error.
    pub async fn send_once(&self, request: Request<Bytes>) -> Result<Response, Error> {
        self.send_with(request, Retry::Never).await
    }

    /// Sends a request, retrying as `retry` says. Retryable outcomes are the errors for which
    /// [`Error::is_retryable`] holds and the statuses 429, 500, 502, 503 and 504; after the last allowed attempt, or when the next wait
    /// would overrun the policy's `max_total`, the last outcome is returned as it is (a 503
    /// stays a `Response`).
    ///
    /// # Errors
    /// See [`Error`]; an HTTP status is never an error.
    pub async fn send_with(
        &self,
        request: Request<Bytes>,
        retry: Retry,
    ) -> Result<Response, Error> {
        let (mut parts, body) = request.into_parts();
        // Taken out, not read: every attempt clones the extensions, and an empty map clones
        // for free where one holding the mark allocates.
        let marked = parts.extensions.remove::<Idempotent>().is_some();
        let policy = self.inner.retry;
        let max_attempts = if retry.allows(&parts.method, marked) {
            policy.max_attempts.max(1)
        } else {
            1
        };
        let mut headers = parts.headers;
        mark_sensitive(&mut headers);
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, self.inner.user_agent.clone());
        }
        let route = self.route(&parts.uri, &mut headers);
        let prepared = Prepared {
            method: parts.method,
            uri: parts.uri,
            route,
            version: parts.version,
            headers,
            extensions: parts.extensions,
            body,
        };
        let target = Target::of(&prepared.uri, self.inner.plain_http)?;

        let started = Instant::now();
        let budget_end = instant_after(started, policy.max_total);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let attempt_started = Instant::now();
            let deadline =
                instant_after(attempt_started, self.inner.request_timeout).min(budget_end);
            let outcome = self.attempt(&prepared, &target, deadline).await;
            let elapsed_ms =
                u64::try_from(attempt_started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &outcome {
                Ok(response) => tracing::debug!(
                    method = %prepared.method,
                    host = %target.host,
                    path = %target.path,
                    status = response.status.as_u16(),
                    attempt,
                    elapsed_ms,
                    "http attempt"
                ),
                Err(error) => tracing::debug!(
                    method = %prepared.method,
                    host = %target.host,
                    path = %target.path,
                    error = %error,
                    attempt,
                    elapsed_ms,
                    "http attempt"
                ),
            }

            let retryable = match (&outcome, retry) {
                // A status means the server read the request: an unsent-only retry is over.
                (Ok(_), Retry::Unsent) => false,
                (Err(error), Retry::Unsent) => error.is_unsent(),
                (Ok(response), _) => is_retryable_status(response.status),
                (Err(error), _) => error.is_retryable(),
            };
            if !retryable || attempt >= max_attempts {
                return finish(outcome, attempt);
            }
            let wait = match &outcome {
                Ok(response) => response.retry_after(SystemTime::now()),
                Err(_) => None,
            }
            .unwrap_or_else(|| {
                full_jitter(
                    policy.backoff_ceiling(attempt),
                    self.inner.jitter.next_u64(),
                )
            });
            // Waiting past the budget, or waking with no time left for the attempt, would
            // only turn a clear answer into a timeout. A server's Retry-After is any number:
            // the addition is checked, and an overflow is past every budget.
            match Instant::now().checked_add(wait) {
                Some(wake) if wake < budget_end => {}
                _ => return finish(outcome, attempt),
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// How a request to `uri` travels; for the pool, the `Host` header it needs (unless the
    /// caller set one), as hyper-util's client adds it: the host, and the port when it is
    /// not the scheme's default. An invalid URI is refused afterwards by [`Target::of`].
    #[cfg_attr(
        not(feature = "http2"),
        expect(clippy::unused_self, reason = "the client is asked only with HTTP/2")
    )]
    fn route(&self, uri: &Uri, headers: &mut HeaderMap) -> Route {
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        #[cfg(feature = "http2")]
        if https && self.inner.http2.is_some() {
            return Route::Shared;
        }
        if let Some(authority) = uri.authority()
            && !headers.contains_key(header::HOST)
        {
            let default_port = if https { 443 } else { 80 };
            let host = match authority.port_u16() {
                Some(port) if port != default_port => authority.as_str(),
                _ => authority.host(),
            };
            if let Ok(value) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, value);
            }
        }
        let origin = match uri.path_and_query() {
            Some(path) if path.as_str() != "/" => Uri::from(path.clone()),
            _ => Uri::default(),
        };
        Route::Pool { https, origin }
    }

    /// One attempt: send, wait for the head, read the body under the cap, all by `deadline`.
    async fn attempt(
        &self,
        prepared: &Prepared,
        target: &Target<'_>,
        deadline: Instant,
    ) -> Result<Response, Error> {
        let authority = target.authority;
        let timeout = |phase| Error::Timeout {
            authority: authority.to_owned(),
            phase,
        };
        let (parts, body, pooled) = match &prepared.route {
            Route::Pool { https, .. } => {
                let head = self.pooled_head(prepared, *https, authority);
                match tokio::time::timeout_at(deadline, head).await {
                    Err(_) => return Err(timeout(Phase::Response)),
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok((parts, body, conn))) => (parts, body, Some((conn, *https))),
                }
            }
            #[cfg(feature = "http2")]
            Route::Shared => {
                let client = self
                    .inner
                    .http2
                    .as_ref()
                    .ok_or_else(|| Error::InvalidRequest {
                        reason: "HTTP/2 route without an HTTP/2 client".to_owned(),
                    })?;
                let sent = tokio::time::timeout_at(deadline, client.request(prepared.request()));
                match sent.await {
                    Err(_) => return Err(timeout(Phase::Response)),
                    Ok(Err(e)) => return Err(Error::from_client(authority, e)),
                    Ok(Ok(response)) => {
                        let (parts, body) = response.into_parts();
                        (parts, body, None)
                    }
                }
            }
        };
        let limit = self.inner.max_body_bytes;
        let too_large = || Error::BodyTooLarge {
            authority: authority.to_owned(),
            limit,
        };
        // A declared length over the cap fails at once, without reading anything. HEAD
        // responses declare the length of a body they do not send.
        if prepared.method != Method::HEAD
            && declared_length(&parts.headers).is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        let collect = Limited::new(body, limit).collect();
        let collected = match pooled {
            Some((mut conn, https)) => {
                let collected = tokio::time::timeout_at(deadline, conn.drive(collect)).await;
                // Only a connection whose body was read to the end can take another request.
                if matches!(collected, Ok(Ok(_))) {
                    conn.settle().await;
                    self.inner.pool.checkin(https, authority, conn);
                }
                collected
            }
            None => tokio::time::timeout_at(deadline, collect).await,
        };
        let body = match collected {
            Err(_) => return Err(timeout(Phase::Body)),
            Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(too_large()),
            Ok(Err(e)) => return Err(Error::from_exchange(authority, e)),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        Ok(Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            attempts: 1,
        })
    }

    /// Sends the request on a pooled connection (an idle one, or a new one) and waits for
    /// the response head. A request that an idle connection closed before writing any of it
    /// never left: it goes out on the next connection, without counting as an attempt.
    async fn pooled_head(
        &self,
        prepared: &Prepared,
        https: bool,
        authority: &str,
    ) -> Result<(http::response::Parts, Incoming, Conn), Error> {
        let pool = &self.inner.pool;
        let mut request = prepared.request();
        loop {
            let (mut conn, reused) = match pool.checkout(https, authority).await {
                Some(conn) => (conn, true),
                None => {
                    let conn = pool
                        .connect(&prepared.uri)
                        .await
                        .map_err(|e| Error::from_connect(authority, e))?;
                    (conn, false)
                }
            };
            match conn.send(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    return Ok((parts, body, conn));
                }
                Err(SendError {
                    unsent: Some(unsent),
                    ..
                }) if reused => request = unsent,
                Err(e) => return Err(Error::from_exchange(authority, Box::new(e.error))),
            }
        }
    }
}

fn finish(outcome: Result<Response, Error>, attempts: u32) -> Result<Response, Error> {
    outcome.map(|mut response| {
        response.attempts = attempts;
        response
    })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Marks every value of the credential headers ([`SENSITIVE_HEADERS`]) sensitive.
///
/// One pass over the request's few headers: cheaper than one map lookup per sensitive name,
/// which cost about 2,300 instructions a request (docs/performance.md).
fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE_HEADERS.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
}

/// `start + after`, or a point far enough away to be past any deadline when the sum
/// overflows (`after` comes from configuration, which may say anything).
fn instant_after(start: Instant, after: Duration) -> Instant {
    /// Far beyond any timeout a request could want, and small enough to add to any `Instant`
    /// the clock gives.
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    start
        .checked_add(after)
        .unwrap_or_else(|| start.checked_add(FAR).unwrap_or(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_strips_query_and_refuses_bad_uris() {
        let uri: Uri = "https://vault.example:8200/v1/kv/data/a?token=x"
            .parse()
            .unwrap();
        let target = Target::of(&uri, PlainHttp::LocalOnly).unwrap();
        assert_eq!(target.authority, "vault.example:8200");
        assert_eq!(target.host, "vault.example");
        assert_eq!(target.path, "/v1/kv/data/a");

        let refused = [
            ("/relative", PlainHttp::Anywhere),
            ("ftp://host/x", PlainHttp::Anywhere),
            ("http://127.0.0.1/x", PlainHttp::Never),
            ("http://vault.example/x", PlainHttp::LocalOnly),
            ("http://10.0.0.1:8200/x", PlainHttp::LocalOnly),
            ("https://user:pa55word@host/x", PlainHttp::Anywhere),
        ];
        for (uri, policy) in refused {
            let err = Target::of(&uri.parse().unwrap(), policy).err().expect(uri);
            assert!(matches!(err, Error::InvalidRequest { .. }), "{uri}");
            assert!(!err.to_string().contains("pa55word"));
        }
    }

    #[test]
    fn plain_http_goes_only_where_it_is_allowed() {
        let table = [
            ("http://127.0.0.1:8200/x", PlainHttp::LocalOnly, true),
            ("http://127.9.9.9/x", PlainHttp::LocalOnly, true),
            ("http://localhost:4566/x", PlainHttp::LocalOnly, true),
            ("http://[::1]:8200/x", PlainHttp::LocalOnly, true),
            ("http://169.254.169.254/latest", PlainHttp::LocalOnly, true),
            ("http://169.254.170.2/v2/creds", PlainHttp::LocalOnly, true),
            ("http://[fe80::1]/x", PlainHttp::LocalOnly, true),
            ("http://vault.internal:8200/x", PlainHttp::LocalOnly, false),
            ("http://192.168.1.10/x", PlainHttp::LocalOnly, false),
            ("http://vault.internal:8200/x", PlainHttp::Anywhere, true),
            ("http://localhost/x", PlainHttp::Never, false),
            ("https://vault.internal/x", PlainHttp::Never, true),
        ];
        for (uri, policy, allowed) in table {
            assert_eq!(
                Target::of(&uri.parse().unwrap(), policy).is_ok(),
                allowed,
                "{uri} {policy:?}"
            );
        }
    }

    #[test]
    fn credential_headers_are_marked_sensitive() {
        let mut headers = HeaderMap::new();
        headers.append("x-vault-token", HeaderValue::from_static("hvs.one"));
        headers.append("x-vault-token", HeaderValue::from_static("hvs.two"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 sig"),
        );
        mark_sensitive(&mut headers);
        assert!(
            headers
                .get_all("x-vault-token")
                .iter()
                .all(HeaderValue::is_sensitive)
        );
        assert!(headers["authorization"].is_sensitive());
        assert!(!headers["accept"].is_sensitive());
        let shown = format!("{headers:?}");
        assert!(!shown.contains("hvs.") && !shown.contains("sig"), "{shown}");
    }

    #[test]
    fn declared_lengths() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10485760"));
        assert_eq!(declared_length(&headers), Some(10_485_760));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("nope"));
        assert_eq!(declared_length(&headers), None);
    }
}
