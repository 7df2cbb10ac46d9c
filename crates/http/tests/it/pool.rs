//! The HTTP/1.1 connection pool: connections a server closed while idle are replaced
//! without the request noticing, idle connections are closed after the idle timeout, and no
//! more than `pool_max_idle_per_host` are kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strongroom_http::{HttpClient, Retry};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support;

/// Reads one request head; false when the client closed the connection instead.
async fn next_head(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// A keep-alive responder: answers every request on a connection after `delay`, and counts
/// the connections the client closed in `closed`.
async fn keep_alive(delay: Duration, closed: Arc<AtomicU32>) -> support::Server {
    support::raw(move |mut stream| {
        let closed = closed.clone();
        async move {
            while next_head(&mut stream).await {
                tokio::time::sleep(delay).await;
                if !support::write(&mut stream, OK).await {
                    break;
                }
            }
            closed.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await
}

fn post(url: &str) -> http::Request<Bytes> {
    http::Request::post(url)
        .body(Bytes::from_static(b"{\"write\":1}"))
        .unwrap()
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    // Answers one request per connection, keep-alive in form, then closes: the next
    // request finds its pooled connection closed. Sent once, without retries (a POST), it
    // must still succeed: the closed connection is noticed before anything is written.
    let server = support::raw(|mut stream| async move {
        if next_head(&mut stream).await && support::write(&mut stream, OK).await {
            // Closed once the client has put the connection back in its pool.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let client = HttpClient::new().unwrap();
    for round in 1..=3 {
        let response = client
            .send_with(post(&server.url("/write")), Retry::Never)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!((response.status.as_u16(), response.attempts), (200, 1));
        // The close arrives while the connection is idle, as between two reads of an
        // application.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let closed = Arc::new(AtomicU32::new(0));
    let server = keep_alive(Duration::ZERO, closed.clone()).await;
    let client = HttpClient::builder()
        .pool_idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    client.send(post(&server.url("/"))).await.unwrap();
    client.send(post(&server.url("/"))).await.unwrap();
    assert_eq!(server.connections(), 1, "reused while fresh");
    assert_eq!(closed.load(Ordering::SeqCst), 0);

    // The reaper runs every idle timeout: the connection is gone within two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.send(post(&server.url("/"))).await.unwrap();
    assert_eq!(
        server.connections(),
        2,
        "a new connection after the timeout"
    );
}

#[tokio::test]
async fn at_most_max_idle_per_host_connections_are_kept() {
    let closed = Arc::new(AtomicU32::new(0));
    let server = keep_alive(Duration::from_millis(100), closed.clone()).await;
    let client = HttpClient::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = server.url("/");
    // Joined on this task: the client's futures run where they are awaited.
    let (a, b, c) = tokio::join!(
        client.send(post(&url)),
        client.send(post(&url)),
        client.send(post(&url)),
    );
    for response in [a, b, c] {
        assert_eq!(response.unwrap().status, 200);
    }
    assert_eq!(
        server.connections(),
        3,
        "three at once need three connections"
    );
    // One is kept, two are closed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(closed.load(Ordering::SeqCst), 2);
    for _ in 0..3 {
        client.send(post(&url)).await.unwrap();
    }
    assert_eq!(server.connections(), 3, "the kept one serves one at a time");
}
