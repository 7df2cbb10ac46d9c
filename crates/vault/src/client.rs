//! [`VaultClient`]: the address, namespace, token and HTTP client every request goes through.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};
use serde_json::Value;
use strongroom_core::Error;
use strongroom_http::{ClientBuilder, HttpClient, PlainHttp, Retry, RetryPolicy};

use crate::auth::{AppRole, Auth, Kubernetes, Token};
use crate::error::{self, Context, malformed};
use crate::json;
use crate::kv2::Kv2;
use crate::lifecycle::{RenewPolicy, TokenManager, TokenStats};
use crate::nodes::{self, NodeHealth, NodeState, Nodes};
use crate::path::{clean_mount, encode_path};

/// The base URLs and HTTP client: how one request reaches Vault.
#[derive(Clone)]
pub(crate) struct Transport {
    nodes: Arc<Nodes>,
    http: HttpClient,
    /// The budget of a request that may move between nodes (several addresses only).
    failover: RetryPolicy,
}

/// One request to Vault, before the token is attached. Cloning shares the body.
#[derive(Clone)]
pub(crate) struct Call {
    method: Method,
    /// The path after `/v1/`, already encoded.
    path: String,
    query: Option<String>,
    body: Option<Bytes>,
    content_type: &'static str,
    namespace: Option<Arc<str>>,
    retry: Retry,
    sensitive: bool,
    /// A check-and-set write: a second application is refused by the server, so it may be
    /// sent to another node after a timeout (several addresses only).
    check_and_set: bool,
}

impl Call {
    /// A call retried as [`retry_for`] says for its method.
    pub(crate) fn new(method: Method, path: String) -> Self {
        Self {
            retry: retry_for(&method),
            method,
            path,
            query: None,
            body: None,
            content_type: "application/json",
            namespace: None,
            sensitive: false,
            check_and_set: false,
        }
    }

    /// Marks a check-and-set write (see [`Call::check_and_set`]'s field).
    pub(crate) fn check_and_set(mut self) -> Self {
        self.check_and_set = true;
        self
    }

    /// Whether the call may be repeated after it may have reached a server.
    fn repeatable(&self) -> bool {
        self.check_and_set
            || self.retry == Retry::Always
            || (self.retry == Retry::Auto
                && (self.method == Method::GET || self.method == Method::HEAD))
    }

    pub(crate) fn query(mut self, query: String) -> Self {
        self.query = Some(query);
        self
    }

    pub(crate) fn json(mut self, body: &Value) -> Self {
        self.body = Some(json::to_bytes(body));
        self
    }

    /// A body holding a secret: wiped once the last copy of the call is dropped.
    pub(crate) fn sensitive_body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self.sensitive = true;
        self
    }

    pub(crate) fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    pub(crate) fn namespace(mut self, namespace: Option<Arc<str>>) -> Self {
        self.namespace = namespace;
        self
    }

    /// Overrides the retry mode chosen from the method (renew-self: see its docs).
    pub(crate) fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
}

/// How a Vault request may be retried, from its method: reads (`GET`, and `LIST`, sent as
/// `GET ?list=true`) with [`Retry::Auto`] (after a connection failure, a timeout or a
/// 429/5xx, with backoff and jitter); everything else (`POST`, `PUT`, which Vault treats as
/// `POST`, `PATCH`, `DELETE`: writes, deletes, metadata writes, logins) with
/// [`Retry::Unsent`]: only when no connection could be opened, so a write that may have
/// reached the server is never sent twice and a one-use AppRole `secret_id` is never burnt
/// by a retry.
pub(crate) fn retry_for(method: &Method) -> Retry {
    if *method == Method::GET || *method == Method::HEAD {
        Retry::Auto
    } else {
        Retry::Unsent
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.sensitive
            && let Some(body) = self.body.take()
        {
            json::wipe(body);
        }
    }
}

/// Vault's answer, any status. The body is wiped on drop when no one else holds it.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    body: Bytes,
    retry_after: Option<Duration>,
    /// An earlier attempt of this request (on another node) was sent and got no answer: it
    /// may have been applied.
    uncertain: bool,
}

impl Answer {
    /// `self` when 2xx, otherwise the mapped error.
    pub(crate) fn check(self, ctx: &Context<'_>, redact: Option<&str>) -> Result<Self, Error> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.error(ctx, redact))
        }
    }

    /// The body (shared, not copied).
    pub(crate) fn body(&self) -> Bytes {
        self.body.clone()
    }

    /// The mapped error of a non-2xx answer.
    pub(crate) fn error(&self, ctx: &Context<'_>, redact: Option<&str>) -> Error {
        let error = error::from_status(self.status, &self.body, self.retry_after, ctx, redact);
        match error {
            // The check-and-set failed against the version an earlier attempt of this very
            // request may have written: the caller must read back, not take it as someone
            // else's write (a counter would be incremented twice).
            Error::Conflict { message, .. } if self.uncertain => Error::Unavailable {
                backend: crate::BACKEND,
                message: format!(
                    "{message}; an earlier attempt of this check-and-set write timed out after \
                     it was sent and may have been applied: read the secret back"
                ),
                retry_after: None,
            },
            other => other,
        }
    }

    /// The body as JSON (`null` for an empty body, as with 204).
    pub(crate) fn json(&self, ctx: &Context<'_>) -> Result<Value, Error> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        // serde_json's message names a line and column, never the content.
        serde_json::from_slice(&self.body)
            .map_err(|e| malformed(ctx, &format!("invalid JSON ({e})")))
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        json::wipe(std::mem::take(&mut self.body));
    }
}

impl Transport {
    /// The addresses and which one requests go to now.
    pub(crate) fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// The request for `call` to the node at `base`.
    fn request(
        base: &str,
        call: &Call,
        token: Option<&Token>,
        ctx: &Context<'_>,
    ) -> Result<Request<Bytes>, Error> {
        // Pushed, not format!ted: this runs on every request (docs/performance.md).
        let query = call.query.as_deref().unwrap_or_default();
        let capacity = [base.len(), 4, call.path.len(), 1, query.len()]
            .into_iter()
            .fold(0usize, usize::saturating_add);
        let mut uri = String::with_capacity(capacity);
        for part in [base, "/v1/", &call.path] {
            uri.push_str(part);
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header("x-vault-request", "true");
        if let Some(token) = token {
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| Error::Unauthenticated {
                    backend: crate::BACKEND,
                    message: "the Vault token holds characters not allowed in a header".to_owned(),
                })?;
            value.set_sensitive(true);
            builder = builder.header("x-vault-token", value);
        }
        if let Some(namespace) = &call.namespace {
            builder = builder.header("x-vault-namespace", namespace.as_ref());
        }
        let body = match &call.body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, call.content_type);
                body.clone()
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| error::malformed(ctx, &format!("cannot build the request ({e})")))
    }

    fn answer(response: strongroom_http::Response, uncertain: bool) -> Answer {
        let retry_after = response.retry_after(SystemTime::now());
        Answer {
            status: response.status,
            body: response.body,
            retry_after,
            uncertain,
        }
    }

    /// Sends `call` with `token` (if any). Transport failures become `Unavailable` or
    /// `Backend`; statuses are left to the caller. With several addresses, moves between
    /// the nodes as [the nodes module](crate::nodes) describes.
    pub(crate) async fn send(
        &self,
        call: &Call,
        token: Option<&Token>,
        ctx: &Context<'_>,
    ) -> Result<Answer, Error> {
        if self.nodes.len() > 1 {
            return self.send_to_cluster(call, token, ctx).await;
        }
        let request = Self::request(self.nodes.base(0), call, token, ctx)?;
        let response = self
            .http
            .send_with(request, call.retry)
            .await
            .map_err(|e| error::from_http(e, ctx))?;
        Ok(Self::answer(response, false))
    }

    /// One request to a cluster: each attempt to one node, the next node when this one
    /// cannot serve it, a jittered pause after each full round, all within `failover`.
    async fn send_to_cluster(
        &self,
        call: &Call,
        token: Option<&Token>,
        ctx: &Context<'_>,
    ) -> Result<Answer, Error> {
        let policy = self.failover;
        let repeatable = call.repeatable();
        let started = tokio::time::Instant::now();
        // An overflowing budget is no budget: a day stands in for "never".
        let budget_end = started
            .checked_add(policy.max_total)
            .or_else(|| started.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(started);
        let nodes = &self.nodes;
        let mut index = nodes.current();
        let mut attempt: u32 = 0;
        let mut misses_in_round: usize = 0;
        let mut round: u32 = 0;
        let mut uncertain = false;
        loop {
            attempt = attempt.saturating_add(1);
            let request = Self::request(nodes.base(index), call, token, ctx)?;
            let outcome =
                tokio::time::timeout_at(budget_end, self.http.send_with(request, Retry::Never))
                    .await;
            let (last, location) = match outcome {
                Ok(Ok(response)) => {
                    let never_handled = nodes::not_handled(response.status);
                    let move_on =
                        never_handled || (repeatable && nodes::worth_another_node(response.status));
                    if !move_on {
                        nodes.answered(index);
                        return Ok(Self::answer(response, uncertain));
                    }
                    // A standby answers 307 or 5xx also when it forwarded the request and
                    // lost the active node before the answer came back, and a leader that
                    // steps down or seals mid-request answers 503 though its log entry may
                    // still be committed by the next leader: a write may have been applied
                    // (seen under load, with 307 and then with 503: a retried
                    // check-and-set found its own write and said Conflict, and the caller
                    // incremented twice).
                    if !is_read(&call.method) {
                        uncertain = true;
                    }
                    let location = response
                        .headers
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    (Ok(Self::answer(response, uncertain)), location)
                }
                Ok(Err(e)) => {
                    let unsent = e.is_unsent();
                    if !(unsent || repeatable && e.is_retryable()) {
                        return Err(error::from_http(e, ctx));
                    }
                    if !unsent && !is_read(&call.method) {
                        uncertain = true;
                    }
                    (Err(error::from_http(e, ctx)), None)
                }
                Err(_elapsed) => {
                    return Err(Error::Unavailable {
                        backend: crate::BACKEND,
                        message: format!(
                            "{}: no Vault node answered within the retry budget of {:?} \
                             ({attempt} attempt(s) over {} node(s)){}",
                            ctx.prefix(),
                            policy.max_total,
                            nodes.len(),
                            if uncertain {
                                "; an attempt timed out after it was sent and may have been \
                                 applied"
                            } else {
                                ""
                            }
                        ),
                        retry_after: None,
                    });
                }
            };
            let next = nodes.next(index, location.as_deref());
            nodes.failed(index, next);
            tracing::debug!(
                operation = ctx.operation,
                node = nodes.base(index),
                next = nodes.base(next),
                attempt,
                "vault node could not serve the request; trying the next one"
            );
            index = next;
            misses_in_round = misses_in_round.saturating_add(1);
            let wait = if misses_in_round >= nodes.len() {
                misses_in_round = 0;
                round = round.saturating_add(1);
                strongroom_http::full_jitter(
                    policy.backoff_ceiling(round),
                    crate::lifecycle::random_u64(),
                )
            } else {
                Duration::ZERO
            };
            let out_of_budget = tokio::time::Instant::now()
                .checked_add(wait)
                .is_none_or(|wake| wake >= budget_end);
            if attempt >= policy.max_attempts.max(1) || out_of_budget {
                return last;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether a request with this method only reads.
fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// The largest response the client reads: Vault's and OpenBao's default `max_request_size`
/// (32 MiB) plus room for the response envelope, so any secret the server accepted can be
/// read back (a smaller limit once let a 5 MiB write succeed and its read fail).
pub const MAX_RESPONSE_BYTES: usize = 33 * 1024 * 1024;

/// Builds a [`VaultClient`].
///
/// Only the address and an auth method are required. TLS and timeouts go to the shared
/// `strongroom-http` client ([`http`](Self::http) gives full control of it).
#[derive(Debug)]
pub struct VaultClientBuilder {
    addresses: Vec<String>,
    namespace: Option<String>,
    auth: Option<Auth>,
    auth_namespace: Option<Option<String>>,
    http: ClientBuilder,
    renew: RenewPolicy,
    ca_file: Option<PathBuf>,
    ca_path: Option<PathBuf>,
    retry: RetryPolicy,
    /// Whether [`retry_policy`](VaultClientBuilder::retry_policy) was called.
    retry_set: bool,
    allow_plain_http: bool,
}

impl Default for VaultClientBuilder {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            namespace: None,
            auth: None,
            auth_namespace: None,
            http: HttpClient::builder()
                .user_agent(concat!("strongroom-vault/", env!("CARGO_PKG_VERSION")))
                .max_body_bytes(MAX_RESPONSE_BYTES),
            renew: RenewPolicy::default(),
            ca_file: None,
            ca_path: None,
            retry: RetryPolicy::default(),
            retry_set: false,
            allow_plain_http: false,
        }
    }
}

impl VaultClientBuilder {
    /// The server, such as `https://vault.example.com:8200` (`VAULT_ADDR`), or the nodes
    /// of a cluster separated by commas (`https://a:8200,https://b:8200,https://c:8200`, as
    /// in `VAULT_ADDR`): see [`addresses`](Self::addresses). Replaces earlier addresses.
    #[must_use]
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.addresses = address
            .into()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }

    /// The nodes of a cluster (Raft integrated storage, or any servers sharing one
    /// storage). Requests go to the node that answered last; when a node is down, sealed,
    /// or a standby that cannot reach the active node, a request moves to the next
    /// address within its retry budget (reads and check-and-set writes also after a
    /// timeout; plain writes only when the node certainly did not handle them). A redirect
    /// is never followed, and the token goes only to these addresses. With several
    /// addresses and no [`retry_policy`](Self::retry_policy), the budget is
    /// [`default_cluster_retry`](crate::default_cluster_retry) (room for an election).
    /// Replaces earlier addresses.
    #[must_use]
    pub fn addresses<I, A>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.addresses = addresses.into_iter().map(Into::into).collect();
        self
    }

    /// The Vault Enterprise / OpenBao namespace every request is sent in
    /// (`X-Vault-Namespace`, `VAULT_NAMESPACE`).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How to authenticate.
    #[must_use]
    pub fn auth(mut self, auth: impl Into<Auth>) -> Self {
        self.auth = Some(auth.into());
        self
    }

    /// A static token (`VAULT_TOKEN`).
    #[must_use]
    pub fn token(self, token: impl Into<Token>) -> Self {
        self.auth(Auth::Token(token.into()))
    }

    /// AppRole login.
    #[must_use]
    pub fn approle(self, approle: AppRole) -> Self {
        self.auth(approle)
    }

    /// Kubernetes login.
    #[must_use]
    pub fn kubernetes(self, kubernetes: Kubernetes) -> Self {
        self.auth(kubernetes)
    }

    /// The namespace logins, renewals and token lookups are sent in, when the auth method
    /// is mounted elsewhere than [`namespace`](Self::namespace) (`None`: the root
    /// namespace). Default: the client's namespace, like the `vault` CLI.
    #[must_use]
    pub fn auth_namespace(mut self, namespace: Option<&str>) -> Self {
        self.auth_namespace = Some(namespace.map(str::to_owned));
        self
    }

    /// When the token is renewed (default: at two thirds of its TTL).
    #[must_use]
    pub fn renew_policy(mut self, policy: RenewPolicy) -> Self {
        self.renew = policy;
        self
    }

    /// Trust the CA certificates in this PEM file instead of the public (webpki) roots
    /// (`VAULT_CACERT`), as the vault CLI does. Wins over [`ca_path`](Self::ca_path).
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Trust the CA certificates in the PEM files of this directory instead of the public
    /// roots (`VAULT_CAPATH`), as the vault CLI does: every file in it must hold PEM
    /// certificates (subdirectories are skipped). Read when the client is built.
    #[must_use]
    pub fn ca_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(dir.into());
        self
    }

    /// Present a client certificate (`VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`).
    #[must_use]
    pub fn client_identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.http = self.http.client_identity_pem(cert, key);
        self
    }

    /// Time for one attempt of one request (default 5 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.request_timeout(timeout);
        self
    }

    /// Time to open a connection (default 2 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.connect_timeout(timeout);
        self
    }

    /// Retries of failed reads; writes and logins are retried only when no connection could
    /// be opened (see [the crate docs](crate#retries)).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self.retry_set = true;
        self.http = self.http.retry_policy(policy);
        self
    }

    /// Attempts per request, the first included (default 3; 1 never retries).
    #[must_use]
    pub fn retry_max_attempts(self, attempts: u32) -> Self {
        let policy = self.retry.with_max_attempts(attempts);
        self.retry_policy(policy)
    }

    /// Budget of one request, every attempt and wait included (default 10 s).
    #[must_use]
    pub fn retry_max_total(self, total: Duration) -> Self {
        let policy = self.retry.with_max_total(total);
        self.retry_policy(policy)
    }

    /// Allow a plain `http://` address that is not this machine, such as the in-cluster
    /// `http://vault.default.svc:8200` (default: refused, because the token would cross the
    /// network unencrypted; loopback addresses are always allowed). Also
    /// `STRONGROOM_VAULT_ALLOW_PLAIN_HTTP=true`, `allow_plain_http = true` in the facade's
    /// `[backend]` and the CLI's `--vault-allow-plain-http`.
    #[must_use]
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Replaces the HTTP client settings altogether.
    #[must_use]
    pub fn http(mut self, builder: ClientBuilder) -> Self {
        self.http = builder;
        self
    }

    /// Checks the settings, reads the TLS files and builds the client. No request is sent:
    /// the first login happens with the first request (or [`VaultClient::login`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or malformed address, a missing auth method, an
    /// invalid namespace or auth mount, or an unreadable CA or client certificate file.
    pub fn build(self) -> Result<VaultClient, Error> {
        if self.addresses.is_empty() {
            return Err(Error::config(
                "no Vault address: set VAULT_ADDR or call VaultClientBuilder::address",
            ));
        }
        let mut bases: Vec<String> = Vec::with_capacity(self.addresses.len());
        for address in &self.addresses {
            let base = parse_address(address)?;
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
        let mut http = self.http;
        if let Some(base) = bases.iter().find(|b| plain_http_to_another_host(b)) {
            if !self.allow_plain_http {
                return Err(Error::config(format!(
                    "plain http to the Vault server {base} is refused: the token would cross \
                     the network unencrypted. Use https, or opt in for this address with \
                     allow_plain_http = true ([backend] in the config file), \
                     STRONGROOM_VAULT_ALLOW_PLAIN_HTTP=true, --vault-allow-plain-http, or \
                     VaultClientBuilder::allow_plain_http(true)"
                )));
            }
            http = http.plain_http(PlainHttp::Anywhere);
        }
        let auth = self.auth.ok_or_else(|| {
            Error::config(
                "no Vault auth method: set VAULT_TOKEN, VAULT_ROLE_ID/VAULT_SECRET_ID or \
                 VAULT_K8S_ROLE, or call VaultClientBuilder::auth",
            )
        })?;
        match &auth {
            Auth::Token(token) if token.is_empty() => {
                return Err(Error::config("the Vault token is empty"));
            }
            Auth::AppRole(a) => {
                clean_mount(a.mount_path())?;
            }
            Auth::Kubernetes(k) => {
                clean_mount(k.mount_path())?;
            }
            Auth::Token(_) => {}
        }
        let namespace = self.namespace.map(|ns| check_namespace(&ns)).transpose()?;
        let auth_namespace = match self.auth_namespace {
            Some(explicit) => explicit.map(|ns| check_namespace(&ns)).transpose()?,
            None => namespace.clone(),
        };
        let ca_files = match (self.ca_file, self.ca_path) {
            (Some(file), _) => vec![file],
            (None, Some(dir)) => ca_dir_files(&dir)?,
            (None, None) => Vec::new(),
        };
        if !ca_files.is_empty() {
            http = http.webpki_roots(false);
        }
        for file in ca_files {
            http = http.add_ca_file(file);
        }
        let http = http
            .build()
            .map_err(|e| Error::config(format!("Vault HTTP client: {e}")))?;
        let failover = if self.retry_set {
            self.retry
        } else {
            crate::nodes::default_cluster_retry()
        };
        let transport = Transport {
            nodes: Arc::new(Nodes::new(bases)),
            http,
            failover,
        };
        let tokens = TokenManager::new(auth, transport.clone(), auth_namespace, self.renew);
        Ok(VaultClient {
            shared: Arc::new(Shared { transport, tokens }),
            namespace,
        })
    }
}

/// The files of a `VAULT_CAPATH` directory, sorted; an empty directory is an error (it
/// would trust nothing, and every connection would fail).
fn ca_dir_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, Error> {
    let unreadable = |e: std::io::Error| {
        Error::config(format!("cannot read VAULT_CAPATH {}: {e}", dir.display()))
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        // Follows symlinks, as c_rehash directories are made of them.
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::config(format!(
            "VAULT_CAPATH {} holds no CA certificate files",
            dir.display()
        )));
    }
    files.sort();
    Ok(files)
}

fn parse_address(address: &str) -> Result<String, Error> {
    let trimmed = address.trim().trim_end_matches('/');
    // An address with user info may hold a password: then it is not repeated.
    let shown = if trimmed.contains('@') {
        "(with user info)"
    } else {
        trimmed
    };
    let bad = |why: &str| Error::config(format!("invalid Vault address {shown:?}: {why}"));
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(bad("it must start with http:// or https://"));
    }
    let uri: http::Uri = trimmed.parse().map_err(|_| bad("not a valid URL"))?;
    if uri.authority().is_none_or(|a| a.as_str().contains('@')) {
        return Err(bad("it must name a host, without credentials"));
    }
    if uri.query().is_some() {
        return Err(bad("it cannot have a query string"));
    }
    Ok(trimmed.to_owned())
}

/// True for an `http://` address whose host is not loopback or link-local.
fn plain_http_to_another_host(address: &str) -> bool {
    let Ok(uri) = address.parse::<http::Uri>() else {
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => !(ip.is_loopback() || ip.is_link_local()),
        Ok(std::net::IpAddr::V6(ip)) => !(ip.is_loopback() || ip.is_unicast_link_local()),
        Err(_) => true,
    }
}

fn check_namespace(namespace: &str) -> Result<Arc<str>, Error> {
    let trimmed = namespace.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::config("the Vault namespace is empty"));
    }
    encode_path(trimmed)
        .map_err(|e| Error::config(format!("invalid Vault namespace {namespace:?}: {e}")))?;
    Ok(trimmed.into())
}

struct Shared {
    transport: Transport,
    tokens: Arc<TokenManager>,
}

impl Drop for Shared {
    /// The renewal task holds the token manager; stop it with the last client handle.
    fn drop(&mut self) {
        self.tokens.stop();
    }
}

/// A Vault/OpenBao client: one server, one auth method, one token kept fresh.
///
/// Cheap to clone; clones (and [`with_namespace`](Self::with_namespace) views) share the
/// connection pool, the token and its renewal task, which stops when the last handle drops.
///
/// Every request:
/// - carries the current token, logging in first if there is none or it has expired;
/// - on a 403, checks the token with `lookup-self`: when the token itself is bad (expired,
///   revoked) and the auth method can log in, logs in once (concurrent callers share that
///   one login) and retries the request once; otherwise the 403 is `PermissionDenied`, or
///   `Unauthenticated` for a bad static token.
#[derive(Clone)]
pub struct VaultClient {
    shared: Arc<Shared>,
    namespace: Option<Arc<str>>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field(
                "addresses",
                &self.shared.transport.nodes().all().collect::<Vec<_>>(),
            )
            .field("namespace", &self.namespace)
            .field("auth", &self.shared.tokens.auth_method())
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A builder.
    pub fn builder() -> VaultClientBuilder {
        VaultClientBuilder::default()
    }

    /// The base address requests go to now: the server's, or in a cluster the node that
    /// answered last (the first configured one until a request moved on).
    pub fn address(&self) -> &str {
        let nodes = self.shared.transport.nodes();
        nodes.base(nodes.current())
    }

    /// Every configured address, in order.
    pub fn addresses(&self) -> Vec<&str> {
        self.shared.transport.nodes().all().collect()
    }

    /// Asks every configured node's `sys/health` (unauthenticated: no token is sent),
    /// concurrently, each once within the request timeout.
    pub async fn node_health(&self) -> Vec<NodeHealth> {
        let transport = &self.shared.transport;
        let nodes = transport.nodes();
        let current = nodes.current();
        let checks = nodes.all().enumerate().map(|(index, base)| async move {
            let call = Call::new(Method::GET, "sys/health".to_owned())
                .query("standbyok=false&perfstandbyok=false".to_owned())
                .retry(Retry::Never);
            let ctx = Context::op("node health");
            let state = match Transport::request(base, &call, None, &ctx) {
                Ok(request) => match transport.http.send_with(request, Retry::Never).await {
                    Ok(response) => NodeState::from_status(response.status),
                    Err(e) => NodeState::Unreachable(e.to_string()),
                },
                Err(e) => NodeState::Unreachable(e.to_string()),
            };
            NodeHealth {
                address: base.to_owned(),
                state,
                current: index == current,
            }
        });
        join_all(checks.collect()).await
    }

    /// The namespace requests are sent in.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The same client (same token, same pool) sending requests in another namespace
    /// (`None`: the root namespace).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid namespace name.
    pub fn with_namespace(&self, namespace: Option<&str>) -> Result<Self, Error> {
        Ok(Self {
            shared: Arc::clone(&self.shared),
            namespace: namespace.map(check_namespace).transpose()?,
        })
    }

    /// The KV v2 engine mounted at `mount` (such as `secret`).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or malformed mount path.
    pub fn kv2(&self, mount: &str) -> Result<Kv2, Error> {
        Ok(Kv2::new(self.clone(), clean_mount(mount)?))
    }

    /// Logins, renewals and their failures so far: for health checks and tests.
    pub fn stats(&self) -> TokenStats {
        self.shared.tokens.stats()
    }

    /// Why the background renewal of a static token stopped for good: the server refused
    /// the renewal (401/403: the token is revoked or invalid), or the token expired while
    /// every renewal attempt failed. `None` while renewal runs, or was never needed. (A
    /// client that can log in never stops: it logs in again instead.)
    pub fn renewal_error(&self) -> Option<Error> {
        self.shared
            .tokens
            .renewal_stopped()
            .map(|message| Error::Unauthenticated {
                backend: crate::BACKEND,
                message: format!("Vault token renewal stopped: {message}"),
            })
    }

    /// Whether the background renewal task is alive: true from the first request on (in a
    /// tokio runtime, unless [`RenewPolicy::Never`]), until the last client handle drops.
    /// A panic inside it is caught and the task restarted
    /// ([`TokenStats::renewal_task_panics`]), so this stays true.
    pub fn renewal_task_running(&self) -> bool {
        self.shared.tokens.renewal_task_running()
    }

    /// Logs in now (or, for a static token, does nothing), so that bad credentials show at
    /// start-up rather than at the first read.
    ///
    /// # Errors
    /// `Unauthenticated` when the credentials are refused; `Unavailable`, `Config`.
    pub async fn login(&self) -> Result<(), Error> {
        self.shared.tokens.token().await.map(drop)
    }

    /// `auth/token/lookup-self`: what the server knows of the current token. A cheap
    /// health check that proves both reachability and a valid token.
    ///
    /// # Errors
    /// `Unauthenticated` for a bad token, `Unavailable` when Vault cannot answer.
    pub async fn lookup_self(&self) -> Result<TokenInfo, Error> {
        let ctx = Context::op("token lookup-self");
        let call = Call::new(Method::GET, "auth/token/lookup-self".to_owned());
        let answer = self.execute(call, &ctx).await?;
        let mut value = answer.json(&ctx)?;
        let info = TokenInfo::from_lookup(&value);
        json::scrub(&mut value);
        info.map_err(|what| malformed(&ctx, &what))
    }

    /// Revokes the current token (`auth/token/revoke-self`), for a clean shutdown. A client
    /// that can log in gets a new token at its next request.
    ///
    /// # Errors
    /// As any request.
    pub async fn revoke_self(&self) -> Result<(), Error> {
        let ctx = Context::op("token revoke-self");
        let call = Call::new(Method::POST, "auth/token/revoke-self".to_owned());
        let current = self.shared.tokens.token().await?;
        let call = call.namespace(self.shared.tokens.auth_namespace());
        self.shared
            .transport
            .send(&call, Some(&current.token), &ctx)
            .await?
            .check(&ctx, Some(current.token.expose()))?
            .json(&ctx)
            .map(drop)
    }

    /// Any Vault API call, for what this crate has no method for: `path` is relative to
    /// `/v1/` (`sys/policies/acl/app`), checked and percent-encoded segment by segment;
    /// `body` is sent as JSON. Returns the answer's JSON (`null` for 204).
    ///
    /// `GET` (reads, and lists with `?list=true`) is retried on transient failures; every
    /// other method only when no connection could be opened (see
    /// [the crate docs](crate#retries)).
    ///
    /// # Errors
    /// As for every request (see [the crate docs](crate#errors)).
    pub async fn request_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let ctx = Context::op("request");
        let mut call = Call::new(method, encode_path(path.trim_matches('/'))?);
        if let Some(body) = body {
            call = call.json(body);
        }
        self.execute(call, &ctx).await?.json(&ctx)
    }

    /// Sends `call` in this client's namespace with the current token; on a 403 caused by a
    /// bad token, logs in once and retries once. Returns 2xx answers; every other status is
    /// mapped to an error, except that a 404 comes back too when `keep_404`.
    pub(crate) async fn execute_keeping_404(
        &self,
        call: Call,
        ctx: &Context<'_>,
        keep_404: bool,
    ) -> Result<Answer, Error> {
        let call = call.namespace(self.namespace.clone());
        let tokens = &self.shared.tokens;
        let current = tokens.token().await?;
        let answer = self
            .shared
            .transport
            .send(&call, Some(&current.token), ctx)
            .await?;
        let (answer, token) = if answer.status == StatusCode::FORBIDDEN {
            if tokens.is_valid(&current).await {
                (answer, current)
            } else if tokens.can_login() {
                let fresh = tokens.relogin(Some(current.generation)).await?;
                tokens.count_retry_after_403();
                tracing::debug!(
                    operation = ctx.operation,
                    "vault token was refused; logged in again, retrying once"
                );
                let answer = self
                    .shared
                    .transport
                    .send(&call, Some(&fresh.token), ctx)
                    .await?;
                (answer, fresh)
            } else {
                let why = tokens
                    .renewal_stopped()
                    .map(|why| format!(" (its renewal stopped: {why})"))
                    .unwrap_or_default();
                return Err(Error::Unauthenticated {
                    backend: crate::BACKEND,
                    message: format!(
                        "{}: the Vault token is invalid, expired or revoked{why}",
                        ctx.operation
                    ),
                });
            }
        } else {
            (answer, current)
        };
        if keep_404 && answer.status == StatusCode::NOT_FOUND {
            return Ok(answer);
        }
        answer.check(ctx, Some(token.token.expose()))
    }

    /// [`execute_keeping_404`](Self::execute_keeping_404) mapping 404 to `NotFound`.
    pub(crate) async fn execute(&self, call: Call, ctx: &Context<'_>) -> Result<Answer, Error> {
        self.execute_keeping_404(call, ctx, false).await
    }
}

/// Runs `futures` concurrently on this task and returns their outputs in order (a few
/// lines instead of a dependency on `futures`).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *slot = Some(output),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// What `lookup-self` says about a token; nothing secret (no token, no accessor).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The token's display name (`approle`, `token`, `root`).
    pub display_name: String,
    /// Its policies.
    pub policies: Vec<String>,
    /// Time left; `None` for a token that never expires.
    pub ttl: Option<Duration>,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// The token type (`service`, `batch`).
    pub token_type: String,
}

impl TokenInfo {
    fn from_lookup(value: &Value) -> Result<Self, String> {
        let data = value
            .get("data")
            .ok_or_else(|| "no data in lookup-self".to_owned())?;
        let text = |name: &str| {
            data.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Self {
            display_name: text("display_name"),
            policies: data
                .get("policies")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ttl: crate::ttl::lease(data.get("ttl")).map_err(|bad| bad.describe("data.ttl"))?,
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            token_type: text("type"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            parse_address("http://127.0.0.1:8200/").unwrap(),
            "http://127.0.0.1:8200"
        );
        assert_eq!(
            parse_address(" https://vault.example.com ").unwrap(),
            "https://vault.example.com"
        );
        for bad in [
            "",
            "127.0.0.1:8200",
            "ftp://x",
            "http://user:pw@host",
            "http://h/?a=1",
        ] {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn builder_requires_address_and_auth() {
        let err = VaultClient::builder().token("t").build().unwrap_err();
        assert!(err.to_string().contains("VAULT_ADDR"), "{err}");
        let err = VaultClient::builder()
            .address("http://127.0.0.1:1")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("VAULT_TOKEN"), "{err}");
        let err = VaultClient::builder()
            .address("http://127.0.0.1:1")
            .token("")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let err = VaultClient::builder()
            .address("http://127.0.0.1:1")
            .token("t")
            .namespace("a/../b")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn debug_shows_no_token() {
        let client = VaultClient::builder()
            .address("http://127.0.0.1:1")
            .token("hvs.debug-secret")
            .namespace("team-a")
            .build()
            .unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("debug-secret"), "{text}");
        assert!(text.contains("team-a") && text.contains("token"), "{text}");
    }
}
