//! The lying server itself, spoken to at the byte level: each mode does what it says, so the
//! client suites test the client, not a server that quietly behaves.

use std::time::Duration;

use strongroom_itests::hostile::{HostileServer, Mode, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request and reads whatever comes back within `wait`.
async fn raw(server: &HostileServer, wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    stream
        .write_all(
            b"POST /x HTTP/1.1\r\nHost: h\r\nX-Amz-Target: svc.Op\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 || out.len() > 100_000 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    out
}

#[tokio::test]
async fn modes_write_what_they_promise() {
    let server = HostileServer::start(Mode::RetryAfter("-5".into())).await;
    let text = String::from_utf8_lossy(&raw(&server, Duration::from_secs(2)).await).into_owned();
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(text.contains("Retry-After: -5\r\n"), "{text}");

    let table: [(Mode, &str); 5] = [
        (Mode::Status(999), "HTTP/1.1 999 "),
        (Mode::Informational, "HTTP/1.1 102 "),
        (Mode::TruncatedChunked, "Transfer-Encoding: chunked"),
        (Mode::Redirect, "Location: http://127.0.0.1:1/elsewhere"),
        (Mode::WrongContentType, "Content-Type: text/html"),
    ];
    for (mode, expected) in table {
        server.set_mode(mode.clone());
        let text =
            String::from_utf8_lossy(&raw(&server, Duration::from_secs(2)).await).into_owned();
        assert!(text.contains(expected), "{mode:?}: {text}");
    }

    server.set_mode(Mode::StalledBody);
    let bytes = raw(&server, Duration::from_millis(300)).await;
    assert!(
        bytes.ends_with(b"{\"partial\""),
        "a stalled body sends its first bytes only"
    );

    server.set_mode(Mode::EndlessBody);
    let bytes = raw(&server, Duration::from_millis(300)).await;
    assert!(bytes.len() > 100_000, "an endless body keeps coming");

    server.route("svc.Op", Mode::Reply(Reply::text(200, "routed")));
    let text = String::from_utf8_lossy(&raw(&server, Duration::from_secs(2)).await).into_owned();
    assert!(text.ends_with("routed"), "{text}");

    let requests = server.requests();
    assert_eq!(requests.len(), server.request_count());
    assert_eq!(requests.len(), 9);
    assert_eq!(requests[0].body, b"abc");
    assert_eq!(requests[0].header("X-AMZ-TARGET"), Some("svc.Op"));
}

#[tokio::test]
async fn reset_mid_body_resets() {
    let server = HostileServer::start(Mode::ResetMidBody).await;
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut saw_reset = false;
    for _ in 0..10 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                saw_reset = e.kind() == std::io::ErrorKind::ConnectionReset;
                break;
            }
        }
    }
    assert!(
        saw_reset,
        "the connection ends with a reset, not a clean close"
    );
}
