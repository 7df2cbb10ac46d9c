//! [`Agent`], its [`AgentBuilder`] and [`SecretsSlot`]: the listening loop, the connection
//! limit, and graceful shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use strongroom_core::Error;
use strongroom_facade::Secrets;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::listen::{Accepted, Listen, Listener};
use crate::token::{Guard, Token};
use crate::{meter, routes};

/// How many connections the agent serves at once unless told otherwise (the AWS agent's
/// default `max_conn`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 800;
/// How long a client has to send a request head (also how long an idle keep-alive
/// connection stays open): slow clients cannot hold connections.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, the store's answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) the agent reads; larger gets 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// hyper's smallest read buffer, enough for [`MAX_REQUEST_HEAD`].
const MAX_BUFFER: usize = 16 * 1024;
/// Connections being refused with 429 at once; past this they are closed unanswered.
const MAX_REFUSING: usize = 64;

/// The state every request sees.
pub(crate) struct Shared {
    pub(crate) secrets: SecretsSlot,
    pub(crate) guard: Guard,
    pub(crate) metrics: Option<Render>,
    pub(crate) request_timeout: Duration,
}

/// Renders the metrics text `/metrics` answers.
pub(crate) type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The [`Secrets`] an agent serves, replaceable while it runs (a configuration reload):
/// requests that started keep the one they took, later ones get the new one.
#[derive(Clone)]
pub struct SecretsSlot(Arc<RwLock<Secrets>>);

impl fmt::Debug for SecretsSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretsSlot").field(&self.current()).finish()
    }
}

impl SecretsSlot {
    fn new(secrets: Secrets) -> Self {
        Self(Arc::new(RwLock::new(secrets)))
    }

    /// The `Secrets` served now (a cheap clone).
    pub fn current(&self) -> Secrets {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `secrets` from now on; returns the one it replaces.
    pub fn replace(&self, secrets: Secrets) -> Secrets {
        let mut slot = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, secrets)
    }
}

/// Builds an [`Agent`]; see [`Agent::builder`].
#[must_use]
pub struct AgentBuilder {
    secrets: Secrets,
    token: Token,
    listen: Listen,
    allow_non_loopback: bool,
    max_connections: usize,
    header_read_timeout: Duration,
    request_timeout: Duration,
    drain_timeout: Duration,
    metrics: Option<Render>,
}

impl fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("secrets", &self.secrets)
            .field("token", &self.token)
            .field("listen", &self.listen)
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl AgentBuilder {
    /// Where to listen (default [`DEFAULT_LISTEN`](crate::DEFAULT_LISTEN), `127.0.0.1:2773`).
    pub fn listen(mut self, listen: Listen) -> Self {
        self.listen = listen;
        self
    }

    /// Allow a TCP address that is not loopback (default: refused). Anyone who can reach it
    /// and holds the token can read every secret the agent can.
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// At most this many connections at once (default [`DEFAULT_MAX_CONNECTIONS`]); one more
    /// is answered 429 and closed.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a client has to send a request head, and how long an idle keep-alive
    /// connection stays open (default [`DEFAULT_HEADER_READ_TIMEOUT`]).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long one request may take before it is answered 503 (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long [`Agent::serve`] waits for requests in flight after shutdown is asked
    /// (default [`DEFAULT_DRAIN_TIMEOUT`]).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serve `/metrics` from this Prometheus handle (see
    /// [`install_prometheus`](crate::install_prometheus)). Without a handle or a
    /// [`metrics_renderer`](Self::metrics_renderer), `/metrics` answers 404.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics(self, handle: crate::PrometheusHandle) -> Self {
        self.metrics_renderer(move || {
            handle.run_upkeep();
            handle.render()
        })
    }

    /// Serve `/metrics` from `render`, which returns Prometheus text format (for a program
    /// that has its own exporter).
    pub fn metrics_renderer(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }

    /// Binds the listening socket.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-loopback address that is not allowed, a zero connection
    /// limit or timeout, a Unix socket path taken by another file or a live agent; an
    /// [`Error::Backend`] when the address cannot be bound.
    pub async fn bind(self) -> Result<Agent, Error> {
        // Drain waits for every place at once, and a semaphore takes at most u32::MAX.
        let most = Semaphore::MAX_PERMITS.min(usize::try_from(u32::MAX).unwrap_or(usize::MAX));
        if self.max_connections == 0 || self.max_connections > most {
            return Err(Error::config(format!(
                "the connection limit must be between 1 and {most}"
            )));
        }
        if self.header_read_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::config("the agent's timeouts must be more than zero"));
        }
        let guard = Guard::new(&self.token)?;
        drop(self.token);
        let listener = Listener::bind(&self.listen, self.allow_non_loopback).await?;
        let local = listener.local()?;
        Ok(Agent {
            listener,
            local,
            shared: Arc::new(Shared {
                secrets: SecretsSlot::new(self.secrets),
                guard,
                metrics: self.metrics,
                request_timeout: self.request_timeout,
            }),
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            drain_timeout: self.drain_timeout,
        })
    }
}

/// A bound agent, ready to [`serve`](Self::serve).
pub struct Agent {
    listener: Listener,
    local: Listen,
    shared: Arc<Shared>,
    max_connections: usize,
    header_read_timeout: Duration,
    drain_timeout: Duration,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("local", &self.local)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// A builder serving `secrets` to callers that present `token`.
    pub fn builder(secrets: Secrets, token: Token) -> AgentBuilder {
        AgentBuilder {
            secrets,
            token,
            listen: Listen::default(),
            allow_non_loopback: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            metrics: None,
        }
    }

    /// Where it listens (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> &Listen {
        &self.local
    }

    /// The slot holding the `Secrets` it serves: replace it to reload.
    pub fn secrets(&self) -> SecretsSlot {
        self.shared.secrets.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in flight
    /// finish (closing idle connections at once) for up to the drain timeout, and returns.
    ///
    /// # Errors
    /// None today: a failed `accept` (such as too many open files) is logged and retried.
    /// The `Result` leaves room for errors that must stop the agent.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Self {
            listener,
            local,
            shared,
            max_connections,
            header_read_timeout,
            drain_timeout,
        } = self;
        let limit = Arc::new(Semaphore::new(max_connections));
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let (drain, draining) = watch::channel(false);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(MAX_BUFFER)
            .max_header_size(MAX_REQUEST_HEAD)
            .keep_alive(true);
        let http = Arc::new(http);
        tracing::info!(listen = %local, max_connections, "agent listening");
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let accepted = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                meter::connection_refused();
                if let Ok(refusal) = Arc::clone(&refusing).try_acquire_owned() {
                    tokio::spawn(refuse(accepted, refusal));
                }
                continue;
            };
            let connection = Connection {
                shared: Arc::clone(&shared),
                http: Arc::clone(&http),
                draining: draining.clone(),
                _permit: permit,
            };
            match accepted {
                Accepted::Tcp(stream) => tokio::spawn(connection.run(stream)),
                #[cfg(unix)]
                Accepted::Unix(stream) => tokio::spawn(connection.run(stream)),
            };
        }
        listener.close();
        tracing::info!("agent stopping: draining connections");
        let _ = drain.send(true);
        let permits = u32::try_from(max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(drain_timeout, limit.acquire_many(permits))
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_secs = drain_timeout.as_secs(),
                "requests still in flight at the end of the drain timeout"
            );
        }
        Ok(())
    }
}

/// One accepted connection, holding its place under the limit.
struct Connection {
    shared: Arc<Shared>,
    http: Arc<http1::Builder>,
    draining: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        meter::connection_opened();
        let shared = Arc::clone(&self.shared);
        let service = service_fn(move |request| {
            let shared = Arc::clone(&shared);
            async move { Ok::<_, Infallible>(routes::answer(&shared, request).await) }
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut draining = self.draining.clone();
        let drained = async move {
            // An error means the agent is gone: drain too.
            let _ = draining.wait_for(|draining| *draining).await;
        };
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = drained => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(error = %err, "connection ended with an error");
        }
        meter::connection_closed();
    }
}

/// Answers one connection over the limit with 429 and closes it. The request head is read
/// first (a second at most), so that closing does not reset the connection under the
/// answer.
async fn refuse(accepted: Accepted, _refusing: OwnedSemaphorePermit) {
    match accepted {
        Accepted::Tcp(stream) => refuse_on(stream).await,
        #[cfg(unix)]
        Accepted::Unix(stream) => refuse_on(stream).await,
    }
}

async fn refuse_on<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    const BODY: &str = r#"{"__type":"TooManyRequestsException","message":"the agent serves its maximum number of connections: retry shortly"}"#;
    let deadline = Duration::from_secs(1);
    let mut head = [0_u8; MAX_REQUEST_HEAD];
    let mut read = 0;
    let _ = tokio::time::timeout(deadline, async {
        while read < head.len() {
            match io.read(&mut head[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    read += n;
                    if head[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let reply = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(deadline, async {
        let _ = io.write_all(reply.as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}
