//! HTTP/1.1 connections kept per host, each driven by the request that is using it.
//!
//! hyper-util's pooled client spawns every connection as a task of its own: a request is
//! handed to that task through a channel and the response handed back through another. On
//! a multi-thread runtime each handoff wakes another thread, and those wake-ups were most
//! of a read's client CPU (docs/performance.md). Here the caller's own future polls its
//! connection while it waits: the request is written from the caller's thread, and the
//! response wakes the caller and nothing else.
//!
//! What that shape costs, and how it is paid:
//! - An idle connection is polled by nobody, so a close by the server is seen when the
//!   connection is next taken out: [`Pool::checkout`] polls it once and drops it when it
//!   has ended. A request that a connection closed before it was written comes back
//!   unsent ([`SendError::unsent`]) and the client sends it on another connection.
//! - A connection whose request is dropped (a timeout, a cancelled call) is closed with
//!   it, never returned half read.
//! - No task reads idle connections, so a reaper task started with the first idle
//!   connection drops those idle longer than the idle timeout, and ends when none is left.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower_service::Service;

use crate::error::BoxError;

/// The byte stream of one connection: TCP, or TLS over TCP.
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Request bodies: the client sends whole bodies it already holds.
pub(crate) type Body = Full<Bytes>;

/// Past this many hosts, hosts with no idle connection are forgotten when another is added.
const PRUNE_HOSTS_AT: usize = 32;

/// Idle HTTP/1.1 connections by host, and how new ones are opened. Cheap to share: one per
/// [`HttpClient`](crate::HttpClient).
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: HttpsConnector<HttpConnector>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
    hosts: Mutex<Vec<Host>>,
    /// Whether a reaper task is running. Read and written with `hosts` locked, so that a
    /// connection put back as the reaper decides to end is always seen by one of them.
    reaping: AtomicBool,
}

/// The idle connections to one `scheme://authority`, most recently used last.
struct Host {
    https: bool,
    authority: Box<str>,
    idle: Vec<Idle>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One HTTP/1.1 connection: the handle requests are sent through, and the connection's
/// state machine, which only makes progress while someone polls it ([`Conn::drive`]).
pub(crate) struct Conn {
    sender: http1::SendRequest<Body>,
    /// `None` once the connection has ended (closed, failed): it is dropped then, as
    /// hyper-util's task would drop it, which ends what was still waiting on it.
    driver: Option<http1::Connection<Io, Body>>,
}

/// A request that failed on a connection.
pub(crate) struct SendError {
    /// What hyper reported.
    pub(crate) error: hyper::Error,
    /// The request, when the connection ended before any of it was written.
    pub(crate) unsent: Option<Request<Body>>,
}

impl Pool {
    /// A pool opening connections with `connector`, keeping at most `max_idle_per_host` idle
    /// connections per host for at most `idle_timeout` each.
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        idle_timeout: Duration,
        max_idle_per_host: usize,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector,
                idle_timeout,
                max_idle_per_host,
                hosts: Mutex::new(Vec::new()),
                reaping: AtomicBool::new(false),
            }),
        }
    }

    /// The idle connection to `https`/`authority` used last, when one is still open.
    pub(crate) async fn checkout(&self, https: bool, authority: &str) -> Option<Conn> {
        loop {
            let idle = {
                let mut hosts = self.shared.lock();
                let host = hosts
                    .iter_mut()
                    .find(|h| h.https == https && *h.authority == *authority)?;
                host.idle.pop()?
            };
            // Dropped (closed) outside the lock when it is of no use.
            if idle.since.elapsed() >= self.shared.idle_timeout {
                continue;
            }
            let mut conn = idle.conn;
            if conn.is_open().await {
                return Some(conn);
            }
        }
    }

    /// Opens a connection to the scheme and authority of `uri` (TCP, and TLS for `https`).
    ///
    /// # Errors
    /// The connector's error (refused, unreachable, connect timeout, TLS handshake).
    pub(crate) async fn connect(&self, uri: &Uri) -> Result<Conn, Connect> {
        let mut connector = self.shared.connector.clone();
        let io = connector.call(uri.clone()).await.map_err(Connect::Open)?;
        let (sender, driver) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(Connect::Handshake)?;
        Ok(Conn {
            sender,
            driver: Some(driver),
        })
    }

    /// Keeps `conn` for the next request to `https`/`authority`, if it can take one and the
    /// host has room; otherwise drops (closes) it.
    pub(crate) fn checkin(&self, https: bool, authority: &str, conn: Conn) {
        let shared = &self.shared;
        if !conn.is_reusable() || shared.max_idle_per_host == 0 || shared.idle_timeout.is_zero() {
            return;
        }
        let refused = {
            let mut hosts = shared.lock();
            let index = match hosts
                .iter()
                .position(|h| h.https == https && *h.authority == *authority)
            {
                Some(index) => index,
                None => {
                    if hosts.len() >= PRUNE_HOSTS_AT {
                        hosts.retain(|h| !h.idle.is_empty());
                    }
                    hosts.push(Host {
                        https,
                        authority: authority.into(),
                        idle: Vec::new(),
                    });
                    hosts.len().saturating_sub(1)
                }
            };
            let refused = match hosts.get_mut(index) {
                Some(host) if host.idle.len() < shared.max_idle_per_host => {
                    host.idle.push(Idle {
                        conn,
                        since: Instant::now(),
                    });
                    None
                }
                _ => Some(conn),
            };
            if refused.is_none() && !shared.reaping.swap(true, Ordering::Relaxed) {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(reap(Arc::downgrade(shared)));
                    }
                    Err(_) => shared.reaping.store(false, Ordering::Relaxed),
                }
            }
            refused
        };
        drop(refused);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Host>> {
        // The list stays consistent whatever panicked while holding it: every change is one
        // push, pop or retain.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops idle connections past the idle timeout, every idle timeout, until none is left
/// or the pool is gone.
async fn reap(shared: Weak<Shared>) {
    /// Clears the running mark when the task is dropped unfinished (its runtime shut
    /// down), so that the next idle connection starts another reaper.
    struct Running {
        shared: Weak<Shared>,
        finished: bool,
    }
    impl Drop for Running {
        fn drop(&mut self) {
            if !self.finished
                && let Some(shared) = self.shared.upgrade()
            {
                let _hosts = shared.lock();
                shared.reaping.store(false, Ordering::Relaxed);
            }
        }
    }
    let Some(every) = shared.upgrade().map(|s| s.idle_timeout) else {
        return;
    };
    let mut running = Running {
        shared,
        finished: false,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = running.shared.upgrade() else {
            break;
        };
        let mut expired = Vec::new();
        let done = {
            let mut hosts = shared.lock();
            let now = Instant::now();
            for host in hosts.iter_mut() {
                let (old, fresh): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut host.idle)
                    .into_iter()
                    .partition(|idle| now.saturating_duration_since(idle.since) >= every);
                host.idle = fresh;
                expired.extend(old);
            }
            hosts.retain(|h| !h.idle.is_empty());
            let done = hosts.is_empty();
            if done {
                shared.reaping.store(false, Ordering::Relaxed);
            }
            done
        };
        // Closed outside the lock.
        drop(expired);
        if done {
            break;
        }
    }
    running.finished = true;
}

/// Why no connection could be opened.
pub(crate) enum Connect {
    /// The connector failed: TCP connect (refused, timed out, no such host) or TLS.
    Open(BoxError),
    /// hyper refused the stream (it does not, for HTTP/1.1; kept typed all the same).
    Handshake(hyper::Error),
}

impl Conn {
    /// Sends `request` and waits for the response head, driving the connection meanwhile.
    pub(crate) async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<http::Response<Incoming>, SendError> {
        let response = self.sender.try_send_request(request);
        self.drive(response).await.map_err(|mut e| SendError {
            unsent: e.take_message(),
            error: e.into_error(),
        })
    }

    /// Polls `future` (the response head, or the body) and the connection together until
    /// `future` is ready. The connection is polled first: what it reads is what `future`
    /// waits for.
    pub(crate) async fn drive<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = pin!(future);
        poll_fn(|cx| {
            if let Some(driver) = &mut self.driver
                && Pin::new(driver).poll(cx).is_ready()
            {
                // Ended: dropping it hands an error to anything still waiting on it.
                self.driver = None;
            }
            future.as_mut().poll(cx)
        })
        .await
    }

    /// Lets the connection finish the exchange (read the end of the body, turn ready for the
    /// next request) without waiting: one poll, when it is not ready yet.
    pub(crate) async fn settle(&mut self) {
        if !self.sender.is_ready() {
            self.poll_once().await;
        }
    }

    /// Whether a request may be sent now: the connection has not ended and waits for one.
    fn is_reusable(&self) -> bool {
        self.driver.is_some() && self.sender.is_ready()
    }

    /// For an idle connection: one poll reads a close (or anything else) the server sent
    /// while it sat in the pool, and ends it if there was one.
    async fn is_open(&mut self) -> bool {
        self.poll_once().await;
        self.is_reusable()
    }

    /// Polls the connection once, with the caller's waker.
    async fn poll_once(&mut self) {
        poll_fn(|cx| {
            if let Some(driver) = &mut self.driver
                && Pin::new(driver).poll(cx).is_ready()
            {
                self.driver = None;
            }
            Poll::Ready(())
        })
        .await;
    }
}
