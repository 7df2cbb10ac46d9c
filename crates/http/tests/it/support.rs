//! Loopback responders for protocol faults no real service can be made to produce on demand
//! (a server that never answers, one that sends 10 MiB, one that answers 503 then 200).
//! They are servers on real sockets speaking real HTTP through hyper; they stand in for no
//! API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What a responder answers to request number `n` (1-based, across connections).
pub(crate) type Handler =
    Arc<dyn Fn(u32, &http::Request<Incoming>) -> http::Response<Full<Bytes>> + Send + Sync>;

/// A running loopback server; stops when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    requests: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
    task: JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:port` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:port` followed by `path`.
    pub(crate) fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Requests answered so far.
    pub(crate) fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// An HTTP/1.1 + HTTP/2 server (hyper) answering with `handler`.
pub(crate) async fn http(
    handler: impl Fn(u32, &http::Request<Incoming>) -> http::Response<Full<Bytes>>
    + Send
    + Sync
    + 'static,
) -> Server {
    serve(Arc::new(handler), None).await
}

/// The same over TLS with `config` (tokio-rustls).
pub(crate) async fn https(
    handler: impl Fn(u32, &http::Request<Incoming>) -> http::Response<Full<Bytes>>
    + Send
    + Sync
    + 'static,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
) -> Server {
    serve(
        Arc::new(handler),
        Some(tokio_rustls::TlsAcceptor::from(config)),
    )
    .await
}

async fn serve(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = listener().await;
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU32::new(0));
    let connections = Arc::new(AtomicU32::new(0));
    let (req_count, conn_count) = (requests.clone(), connections.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            conn_count.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let req_count = req_count.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(stream, handler, req_count).await,
                    Some(acceptor) => {
                        // A refused handshake (untrusted client, missing client certificate)
                        // just ends this connection.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_connection(stream, handler, req_count).await;
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        requests,
        connections,
        task,
    }
}

async fn serve_connection<S>(stream: S, handler: Handler, requests: Arc<AtomicU32>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: http::Request<Incoming>| {
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let response = handler(n, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A raw TCP responder: each accepted connection is handed to `behave`. For faults hyper's
/// server will not produce (silence, a reset, garbage, a stalled body).
pub(crate) async fn raw<F, Fut>(behave: F) -> Server
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = listener().await;
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU32::new(0));
    let connections = Arc::new(AtomicU32::new(0));
    let conn_count = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            conn_count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(behave(stream));
        }
    });
    Server {
        addr,
        requests,
        connections,
        task,
    }
}

/// Reads until the end of a request head (bodies in these tests are small enough to arrive
/// with it).
pub(crate) async fn read_head(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Writes all of `bytes`, ignoring a peer that went away.
pub(crate) async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

/// A port on loopback where nothing listens (bound, then released).
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = listener().await;
    listener.local_addr().unwrap()
}

/// A plain response with `status` and `body`.
pub(crate) fn reply(status: u16, body: &'static str) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// Collects every event this crate emits on the current thread, as `field=value` text.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    pub(crate) events: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    pub(crate) fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target().starts_with("strongroom_http") {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.events.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
