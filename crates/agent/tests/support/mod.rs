//! What the agent's tests share: a store that counts, delays and fails reads; an agent
//! running on 127.0.0.1:0; and an HTTP/1.1 client written by hand over a TcpStream.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of it"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use strongroom_agent::{Agent, AgentBuilder, Listen, SecretsSlot, Token};
use strongroom_core::testing::{Hook, MemoryStore, Operation};
use strongroom_core::{Error, SecretName};
use strongroom_facade::{CacheConfig, Secrets};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "t0ken-for-tests";

/// Counts the backend's reads, holds each for `delay`, fails them while `down`.
#[derive(Default)]
pub struct Backend {
    pub gets: AtomicU64,
    pub versions: AtomicU64,
    pub down: AtomicBool,
    pub delay_ms: AtomicU64,
}

#[async_trait]
impl Hook for Backend {
    async fn call(&self, operation: Operation, _key: Option<&SecretName>) -> Result<(), Error> {
        match operation {
            Operation::Get | Operation::GetVersion => {
                self.gets.fetch_add(1, Ordering::SeqCst);
            }
            Operation::Versions => {
                self.versions.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("memory", "connection refused (test)"));
        }
        Ok(())
    }
}

/// A memory store behind its [`Backend`] hook, and a `Secrets` over it.
pub struct Fixture {
    pub store: MemoryStore,
    pub backend: Arc<Backend>,
    pub secrets: Secrets,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_ttl(Duration::from_secs(300))
    }

    pub fn with_ttl(ttl: Duration) -> Self {
        let backend = Arc::new(Backend::default());
        let store = MemoryStore::new().with_hook(Arc::clone(&backend) as Arc<dyn Hook>);
        let secrets = Secrets::builder()
            .store(store.clone())
            .cache(
                CacheConfig::builder()
                    .ttl(ttl)
                    .max_stale(Duration::from_secs(3600))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        Self {
            store,
            backend,
            secrets,
        }
    }

    pub fn insert(&self, key: &str, value: impl Into<strongroom_core::SecretValue>) {
        self.store.insert(&SecretName::new(key).unwrap(), value);
    }

    pub fn builder(&self) -> AgentBuilder {
        Agent::builder(self.secrets.clone(), Token::new(TOKEN).unwrap())
            .listen("127.0.0.1:0".parse().unwrap())
    }
}

/// A running agent; dropping it does not stop it, [`stop`](Self::stop) does.
pub struct Running {
    pub listen: Listen,
    pub slot: SecretsSlot,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl Running {
    pub async fn start(builder: AgentBuilder) -> Self {
        let agent = builder.bind().await.unwrap();
        let listen = agent.local_addr().clone();
        let slot = agent.secrets();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(agent.serve(async {
            let _ = stopped.await;
        }));
        Self {
            listen,
            slot,
            stop: Some(stop),
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match &self.listen {
            Listen::Tcp(addr) => *addr,
            other => panic!("not TCP: {other}"),
        }
    }

    /// Asks for shutdown without waiting.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits until `serve` returns.
    pub async fn stop(mut self) {
        self.shutdown();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// An answer as the client read it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends `GET target` with the token (unless `None`) and `extra` header lines.
pub async fn get(addr: SocketAddr, target: &str, token: Option<&str>) -> Answer {
    let mut headers = String::new();
    if let Some(token) = token {
        headers.push_str(&format!("X-Aws-Parameters-Secrets-Token: {token}\r\n"));
    }
    raw(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"),
    )
    .await
}

/// Sends `request` as is on a new connection and reads the answer to the end.
pub async fn raw(addr: SocketAddr, request: &str) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    exchange(stream, request).await
}

pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Answer {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("the agent answers in time")
        .unwrap();
    parse(&bytes)
}

pub fn parse(bytes: &[u8]) -> Answer {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    Answer {
        status,
        head,
        body: bytes[split + 4..].to_vec(),
    }
}
