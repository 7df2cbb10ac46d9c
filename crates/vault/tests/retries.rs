//! Which Vault requests are sent again after a failure: a real TCP server in the test reads
//! each request and then hangs up without answering (the request reached the server; its
//! outcome is unknown). Reads must be retried; writes, deletes, metadata writes and logins
//! must be seen exactly once. A refused connection (nothing reached the server) is retried
//! for writes too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strongroom_core::ErrorKind;
use strongroom_vault::{
    AppRole, Credential, Kv2, MetadataUpdate, RenewPolicy, RetryPolicy, SecretData, VaultClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ATTEMPTS: u32 = 4;

/// Reads one HTTP/1.1 request (head and `Content-Length` body); false when the peer left.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
    }
}

/// A server that counts the requests it reads and hangs up on each without an answer.
async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                if read_request(&mut stream).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                drop(stream);
            });
        }
    });
    (address, seen)
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(ATTEMPTS)
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
}

fn client(address: &str) -> VaultClient {
    VaultClient::builder()
        .address(address)
        .token("hvs.retry-test")
        .renew_policy(RenewPolicy::Never)
        .retry_policy(retry_policy())
        .build()
        .unwrap()
}

fn kv(address: &str) -> Kv2 {
    client(address).kv2("secret").unwrap()
}

/// Runs `op` against a fresh hang-up server; returns how many requests reached it.
async fn requests_seen<F, Fut, T>(op: F) -> usize
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T, strongroom_core::Error>>,
    T: std::fmt::Debug,
{
    let (address, seen) = hang_up_server().await;
    let err = op(address).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // The server task counts after reading; give it a moment to finish the last one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    seen.load(Ordering::SeqCst)
}

#[tokio::test]
async fn reads_that_reached_the_server_are_retried() {
    let reads = requests_seen(|a| async move { kv(&a).read("app/x").await }).await;
    assert_eq!(reads, ATTEMPTS as usize, "kv read");
    let lists = requests_seen(|a| async move { kv(&a).list("app/").await }).await;
    assert_eq!(lists, ATTEMPTS as usize, "kv list");
    let metadata = requests_seen(|a| async move { kv(&a).read_metadata("app/x").await }).await;
    assert_eq!(metadata, ATTEMPTS as usize, "kv metadata read");
    let lookup = requests_seen(|a| async move { client(&a).lookup_self().await }).await;
    assert_eq!(lookup, ATTEMPTS as usize, "lookup-self");
}

#[tokio::test]
async fn writes_that_reached_the_server_are_sent_once() {
    let data = SecretData::new().with("value", "v");
    let mut patch = serde_json::Map::new();
    patch.insert("value".to_owned(), "p".into());
    let update = MetadataUpdate::custom(BTreeMap::from([("owner".to_owned(), "t".to_owned())]));
    let cases = [
        (
            "kv write",
            requests_seen(|a| async move { kv(&a).write("app/x", &data, Some(3)).await }).await,
        ),
        (
            "kv patch",
            requests_seen(|a| async move { kv(&a).patch("app/x", &patch, None).await }).await,
        ),
        (
            "delete latest",
            requests_seen(|a| async move { kv(&a).delete_latest("app/x").await }).await,
        ),
        (
            "delete versions",
            requests_seen(|a| async move { kv(&a).delete_versions("app/x", &[1]).await }).await,
        ),
        (
            "undelete",
            requests_seen(|a| async move { kv(&a).undelete_versions("app/x", &[1]).await }).await,
        ),
        (
            "destroy",
            requests_seen(|a| async move { kv(&a).destroy_versions("app/x", &[1]).await }).await,
        ),
        (
            "metadata write",
            requests_seen(|a| async move { kv(&a).write_metadata("app/x", &update).await }).await,
        ),
        (
            "metadata delete",
            requests_seen(|a| async move { kv(&a).delete_metadata("app/x").await }).await,
        ),
        (
            "revoke-self",
            requests_seen(|a| async move { client(&a).revoke_self().await }).await,
        ),
    ];
    for (what, seen) in cases {
        assert_eq!(seen, 1, "{what}");
    }
}

#[tokio::test]
async fn a_login_that_reached_the_server_is_sent_once() {
    let logins = requests_seen(|a| async move {
        let client = VaultClient::builder()
            .address(a)
            .approle(AppRole::new(
                Credential::value("role"),
                Credential::value("one-use-secret-id"),
            ))
            .renew_policy(RenewPolicy::Never)
            .retry_policy(retry_policy())
            .build()
            .unwrap();
        client.login().await
    })
    .await;
    assert_eq!(logins, 1, "approle login");
}

/// Control for the tests above: with a policy of one attempt the same server sees a read
/// once, so the counts are per attempt (a read seen `ATTEMPTS` times was retried).
#[tokio::test]
async fn one_attempt_policy_sends_a_read_once() {
    let (address, seen) = hang_up_server().await;
    let kv = VaultClient::builder()
        .address(&address)
        .token("t")
        .renew_policy(RenewPolicy::Never)
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap()
        .kv2("secret")
        .unwrap();
    kv.read("app/x").await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// Nothing listens on the port when the write is first sent (connection refused: it cannot
/// have reached a server); a server appears there a moment later. The write is retried and
/// succeeds, and the server sees it once.
#[tokio::test]
async fn a_write_refused_at_connect_is_retried() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("http://127.0.0.1:{port}");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            if !read_request(&mut stream).await {
                continue;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"data":{"version":4,"created_time":"2024-05-01T10:00:00Z","deletion_time":"","destroyed":false}}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    let kv = VaultClient::builder()
        .address(&address)
        .token("t")
        .renew_policy(RenewPolicy::Never)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(30)
                .with_base_delay(Duration::from_millis(20))
                .with_max_delay(Duration::from_millis(50)),
        )
        .build()
        .unwrap()
        .kv2("secret")
        .unwrap();
    let written = kv
        .write("app/x", &SecretData::new().with("value", "v"), None)
        .await
        .unwrap();
    assert_eq!(written.version, 4);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    server.abort();
}
