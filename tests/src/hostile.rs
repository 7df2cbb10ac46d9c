//! A lying HTTP server for the hostile-network suite (`tests/hostile/`).
//!
//! [`HostileServer`] listens on `127.0.0.1` on a free port and answers every request with
//! the [`Mode`] it is set to: a normal answer, or one of the ways a broken proxy, load
//! balancer or attacker-controlled endpoint misbehaves (absurd `Retry-After`, a body that
//! never ends or never arrives, invalid UTF-8, truncated chunked encoding, 1xx, 3xx and
//! unknown statuses, a reset mid-body). It speaks HTTP/1.1 over raw sockets, so it can lie
//! at the byte level where a real HTTP server library would refuse to.
//!
//! The API is small on purpose:
//! - [`HostileServer::start`]`(mode)` starts it; [`HostileServer::url`] is its base URL
//!   (`http://127.0.0.1:PORT`, no trailing slash).
//! - [`HostileServer::set_mode`] switches the default answer (to check that a client
//!   recovers once the server answers normally again).
//! - [`HostileServer::route`] gives one path (exact match, such as `/latest/api/token`) or
//!   one `X-Amz-Target` value (such as `secretsmanager.DescribeSecret`) its own mode; a
//!   request that matches no route gets the default mode. Endpoints reached in several
//!   steps (IMDSv2: token, role, credentials) use routes to answer the earlier steps well
//!   and lie on one.
//! - [`Mode::Sequence`] answers successive requests differently (a first attempt that is
//!   reset, then a retry that meets what it did); [`Mode::Numbered`] puts the request's
//!   number into the body (a `NextToken` that never repeats); [`Mode::catalogue`] lists
//!   the hostile modes with short names for tables.
//! - [`HostileServer::request_count`] and [`HostileServer::requests`] say what arrived;
//!   [`HostileServer::bytes_sent`] how many body bytes the endless modes wrote.
//!
//! Every answer closes the connection afterwards (`Connection: close`), so each request is
//! one connection and a client's pool never reuses a connection the server lied on.
//!
//! ```no_run
//! # async fn demo() {
//! use strongroom_itests::hostile::{HostileServer, Mode, Reply};
//! let server = HostileServer::start(Mode::RetryAfter("99999999999999999999".into())).await;
//! // ... point a client at server.url(), expect a typed error ...
//! server.set_mode(Mode::Reply(Reply::json(200, r#"{"ok":true}"#)));
//! // ... the same client now succeeds ...
//! assert!(server.request_count() >= 2);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest request head read (request line and headers); a longer one closes the connection.
const MAX_HEAD: usize = 64 * 1024;
/// Longest request body read and recorded.
const MAX_BODY: usize = 1024 * 1024;
/// How long a stalling mode keeps its connection open when the client never gives up.
const STALL: Duration = Duration::from_secs(120);
/// An endless body stops after this many bytes even if the client keeps reading: a client
/// that reads this much has failed its body limit anyway.
const ENDLESS_CAP: u64 = 1 << 30;

/// A well-formed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code (any of 100..=999 is written as given).
    pub status: u16,
    /// Extra headers, written as given (`Content-Length` and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with a JSON body (`Content-Type: application/json`).
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "application/json", body.into().into_bytes())
    }

    /// `status` with an AWS JSON 1.1 body (`Content-Type: application/x-amz-json-1.1`).
    pub fn amz_json(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(
            status,
            "application/x-amz-json-1.1",
            body.into().into_bytes(),
        )
    }

    /// `status` with a `text/xml` body (STS answers in XML).
    pub fn xml(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "text/xml", body.into().into_bytes())
    }

    /// `status` with a `text/plain` body (the IMDS token and role name).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "text/plain", body.into().into_bytes())
    }

    /// `status` with `content_type` and raw `body` bytes.
    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// How the server answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A well-formed answer.
    Reply(Reply),
    /// Each mode in turn, one per request that reaches this mode (the default, or one
    /// route), the last one repeated: a first attempt that fails and a retry that meets
    /// what the first attempt did (`Sequence(vec![Mode::ResetMidBody, Mode::Reply(..)])`).
    /// Setting the mode or the route again starts the sequence over.
    Sequence(Vec<Mode>),
    /// A well-formed answer whose body has every `{n}` replaced by the request's number
    /// (1 for the first request the server read): a `NextToken` that never repeats.
    Numbered(Reply),
    /// `503 Service Unavailable` with this `Retry-After` value (huge number, far-future
    /// date, negative, garbage: whatever is given, as is).
    RetryAfter(String),
    /// `200` with `Content-Type: application/json` and this body, for the TTL and
    /// expiration cases (2^64, negative, in the past); the same as a `Reply::json(200, ..)`.
    Json(String),
    /// A head announcing 1,000 body bytes, 10 of them, then silence: the connection stays
    /// open until the client gives up.
    StalledBody,
    /// Silence before any byte of the head: the request was read, no answer comes.
    StalledHead,
    /// `200` with a chunked body that never ends (up to 1 GiB, or until the client goes).
    EndlessBody,
    /// `200` with `Content-Type: application/json` and bytes that are not UTF-8.
    InvalidUtf8,
    /// `200` with `Content-Type: application/json` and a body that is not JSON.
    InvalidJson,
    /// `200` with `Content-Type: text/html` and an HTML page (a captive portal, a proxy's
    /// error page).
    WrongContentType,
    /// `200` with `Transfer-Encoding: chunked`, one partial chunk, then the connection closes.
    TruncatedChunked,
    /// `102 Processing`, then the connection closes with no final status.
    Informational,
    /// A `302 Found` to `http://127.0.0.1:1/elsewhere` (a client must not follow it).
    Redirect,
    /// This status with an empty JSON object as body (599, 999, ...).
    Status(u16),
    /// A head announcing 1,000 body bytes, 10 of them, then a TCP reset.
    ResetMidBody,
    /// Closes the connection as soon as the request is read, without a byte.
    CloseAtOnce,
}

impl Mode {
    /// The hostile modes of the issue, each with a short name for test messages and the
    /// docs table. The TTL/expiration modes are endpoint-specific bodies: build them with
    /// [`Mode::Json`].
    pub fn catalogue() -> Vec<(&'static str, Mode)> {
        vec![
            (
                "retry-after huge",
                Mode::RetryAfter("99999999999999999999".into()),
            ),
            (
                "retry-after far-future date",
                Mode::RetryAfter("Fri, 31 Dec 9999 23:59:59 GMT".into()),
            ),
            ("retry-after negative", Mode::RetryAfter("-5".into())),
            (
                "retry-after garbage",
                Mode::RetryAfter("soon, maybe".into()),
            ),
            ("stalled head", Mode::StalledHead),
            ("stalled body", Mode::StalledBody),
            ("endless body", Mode::EndlessBody),
            ("invalid utf-8", Mode::InvalidUtf8),
            ("invalid json", Mode::InvalidJson),
            ("wrong content type", Mode::WrongContentType),
            ("truncated chunked", Mode::TruncatedChunked),
            ("1xx only", Mode::Informational),
            ("302 redirect", Mode::Redirect),
            ("status 599", Mode::Status(599)),
            ("status 999", Mode::Status(999)),
            ("reset mid-body", Mode::ResetMidBody),
            ("close at once", Mode::CloseAtOnce),
        ]
    }
}

/// One request as the server read it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body (up to 1 MiB).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Debug for RecordedRequest {
    // Test traffic only, but a recorded body may still hold a test secret: print its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("target", &self.header("x-amz-target"))
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

struct State {
    default: Mode,
    routes: HashMap<String, Mode>,
    /// How far each [`Mode::Sequence`] has gone, by route key (`""` for the default).
    steps: HashMap<String, usize>,
    requests: Vec<RecordedRequest>,
}

struct Shared {
    state: Mutex<State>,
    count: AtomicUsize,
    bytes_sent: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lying server. Stops (and drops every open connection's task) when dropped.
pub struct HostileServer {
    url: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostileServer")
            .field("url", &self.url)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl HostileServer {
    /// Binds `127.0.0.1:0` and serves `mode` to every request. Must run inside a Tokio
    /// runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound (a test cannot go on without its server).
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the hostile server");
        let addr = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                default: mode,
                routes: HashMap::new(),
                steps: HashMap::new(),
                requests: Vec::new(),
            }),
            count: AtomicUsize::new(0),
            bytes_sent: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&accept_shared);
                connections.spawn(serve(stream, shared));
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            url: format!("http://{addr}"),
            shared,
            accept,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port`, for variables that take an authority.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Replaces the default mode (requests already being answered keep theirs).
    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.shared.lock();
        state.default = mode;
        state.steps.remove("");
    }

    /// Answers requests whose path (exactly, query included) or `X-Amz-Target` header equals
    /// `key` with `mode`, whatever the default mode is.
    pub fn route(&self, key: impl Into<String>, mode: Mode) {
        let key = key.into();
        let mut state = self.shared.lock();
        state.steps.remove(&key);
        state.routes.insert(key, mode);
    }

    /// Removes every route.
    pub fn clear_routes(&self) {
        let mut state = self.shared.lock();
        state.routes.clear();
        state.steps.clear();
    }

    /// Requests read so far (complete heads; a body cut short is recorded as read).
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// The requests read so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Body bytes written by [`Mode::EndlessBody`] over the server's life.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

/// Serves one connection: one request, one answer, close.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let mode = {
        let mut state = shared.lock();
        let target = request.header("x-amz-target").map(str::to_owned);
        let key = if state.routes.contains_key(&request.path) {
            request.path.clone()
        } else {
            target
                .filter(|t| state.routes.contains_key(t))
                .unwrap_or_default()
        };
        let mode = state.routes.get(&key).unwrap_or(&state.default).clone();
        let mode = match mode {
            Mode::Sequence(modes) => {
                let step = state.steps.entry(key).or_insert(0);
                let index = (*step).min(modes.len().saturating_sub(1));
                *step = step.saturating_add(1);
                modes.get(index).cloned().unwrap_or(Mode::CloseAtOnce)
            }
            other => other,
        };
        state.requests.push(request);
        mode
    };
    let number = shared
        .count
        .fetch_add(1, Ordering::SeqCst)
        .saturating_add(1);
    let mode = match mode {
        Mode::Numbered(mut reply) => {
            let body = String::from_utf8_lossy(&reply.body).replace("{n}", &number.to_string());
            reply.body = body.into_bytes();
            Mode::Reply(reply)
        }
        other => other,
    };
    // Write errors mean the client went away: that is the client's right, not a failure.
    let _ = answer(&mut stream, &mode, &shared).await;
}

async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn head(status: u16, reason: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut headers: Vec<(&str, String)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    headers.push(("Content-Length", reply.body.len().to_string()));
    stream
        .write_all(&head(reply.status, "Whatever", &headers))
        .await?;
    stream.write_all(&reply.body).await?;
    stream.flush().await
}

async fn answer(stream: &mut TcpStream, mode: &Mode, shared: &Shared) -> std::io::Result<()> {
    match mode {
        Mode::Reply(reply) | Mode::Numbered(reply) => write_reply(stream, reply).await,
        Mode::Json(body) => write_reply(stream, &Reply::json(200, body.clone())).await,
        Mode::RetryAfter(value) => {
            let reply = Reply::json(503, r#"{"__type":"ServiceUnavailable","message":"busy"}"#)
                .header("Retry-After", value);
            write_reply(stream, &reply).await
        }
        Mode::Status(code) => write_reply(stream, &Reply::json(*code, "{}")).await,
        Mode::Redirect => {
            let reply =
                Reply::text(302, "moved").header("Location", "http://127.0.0.1:1/elsewhere");
            write_reply(stream, &reply).await
        }
        Mode::InvalidUtf8 => {
            let body = vec![b'{', b'"', 0xff, 0xfe, 0xc3, 0x28, b'"', b':', 0x80, b'}'];
            write_reply(stream, &Reply::with_type(200, "application/json", body)).await
        }
        Mode::InvalidJson => {
            let body = br#"{"SecretString": "abc", "Expiration": [1, 2, "#.to_vec();
            write_reply(stream, &Reply::with_type(200, "application/json", body)).await
        }
        Mode::WrongContentType => {
            let body = b"<html><body><h1>Welcome to the hotel network</h1></body></html>".to_vec();
            write_reply(stream, &Reply::with_type(200, "text/html", body)).await
        }
        Mode::StalledHead => {
            stall(stream).await;
            Ok(())
        }
        Mode::StalledBody => {
            let headers = [
                ("Content-Type", "application/json".to_owned()),
                ("Content-Length", "1000".to_owned()),
            ];
            stream.write_all(&head(200, "OK", &headers)).await?;
            stream.write_all(b"{\"partial\"").await?;
            stream.flush().await?;
            stall(stream).await;
            Ok(())
        }
        Mode::EndlessBody => {
            let headers = [
                ("Content-Type", "application/json".to_owned()),
                ("Transfer-Encoding", "chunked".to_owned()),
            ];
            stream.write_all(&head(200, "OK", &headers)).await?;
            let chunk = {
                let data = [b' '; 16 * 1024];
                let mut c = format!("{:x}\r\n", data.len()).into_bytes();
                c.extend_from_slice(&data);
                c.extend_from_slice(b"\r\n");
                c
            };
            let mut sent = 0u64;
            while sent < ENDLESS_CAP {
                stream.write_all(&chunk).await?;
                sent = sent.saturating_add(16 * 1024);
                shared.bytes_sent.fetch_add(16 * 1024, Ordering::SeqCst);
            }
            Ok(())
        }
        Mode::TruncatedChunked => {
            let headers = [
                ("Content-Type", "application/json".to_owned()),
                ("Transfer-Encoding", "chunked".to_owned()),
            ];
            stream.write_all(&head(200, "OK", &headers)).await?;
            stream.write_all(b"40\r\n{\"AccessKeyId\":\"AK").await?;
            stream.flush().await?;
            stream.shutdown().await
        }
        Mode::Informational => {
            stream.write_all(b"HTTP/1.1 102 Processing\r\n\r\n").await?;
            stream.flush().await?;
            stream.shutdown().await
        }
        Mode::ResetMidBody => {
            let headers = [
                ("Content-Type", "application/json".to_owned()),
                ("Content-Length", "1000".to_owned()),
            ];
            stream.write_all(&head(200, "OK", &headers)).await?;
            stream.write_all(b"{\"partial\"").await?;
            stream.flush().await?;
            // Linger zero: closing sends RST instead of FIN.
            stream.set_zero_linger()?;
            Ok(())
        }
        // Resolved to one of its modes before `answer` is called.
        Mode::Sequence(_) | Mode::CloseAtOnce => Ok(()),
    }
}

/// Holds the connection open, reading and discarding, until the client closes it.
async fn stall(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(STALL, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
