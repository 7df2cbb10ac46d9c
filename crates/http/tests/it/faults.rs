//! Timeouts, body limits, retries, redirects and broken connections, against loopback
//! responders.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use strongroom_http::{Error, HttpClient, Idempotent, Phase, Retry, RetryPolicy};

use crate::support::{self, reply};

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

fn post(url: &str) -> http::Request<Bytes> {
    http::Request::post(url)
        .body(Bytes::from_static(b"{\"write\":1}"))
        .unwrap()
}

/// A client with short timeouts and near-zero backoff so the suite runs fast.
fn quick() -> HttpClient {
    HttpClient::builder()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(400))
        .retry_policy(
            RetryPolicy::default()
                .with_base_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20)),
        )
        .build()
        .unwrap()
}

fn silent() -> impl Fn(tokio::net::TcpStream) -> std::future::Ready<()> + Send + Sync + 'static {
    // Accept and hold the connection open without answering, until the client gives up.
    |stream| {
        tokio::spawn(async move {
            let _held = stream;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        std::future::ready(())
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = support::raw(silent()).await;
    let started = Instant::now();
    let err = quick().send_once(get(&server.url("/"))).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Response,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn timeouts_are_retried_for_idempotent_requests() {
    let server = support::raw(silent()).await;
    let err = quick().send(get(&server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(
        server.connections(),
        3,
        "three attempts, each on a new connection"
    );
}

#[tokio::test]
async fn max_total_caps_the_whole_call() {
    let server = support::raw(silent()).await;
    let client = HttpClient::builder()
        .request_timeout(Duration::from_secs(5))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_millis(300)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.send(get(&server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_body_times_out_in_the_body_phase() {
    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        support::write(
            &mut stream,
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let err = quick().send_once(get(&server.url("/"))).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Body,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_declared_10_mib_body_is_refused() {
    let server = support::http(|_, _| {
        http::Response::new(Full::new(Bytes::from(vec![b'x'; 10 * 1024 * 1024])))
    })
    .await;
    let client = HttpClient::new().unwrap();
    let err = client.send(get(&server.url("/big"))).await.unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit, .. } if limit == strongroom_http::DEFAULT_MAX_BODY_BYTES),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.requests(), 1, "not retried");
    assert!(err.to_string().contains("4194304"), "{err}");
}

#[tokio::test]
async fn a_chunked_body_past_the_limit_is_refused() {
    // No content-length: the limit must hold while streaming.
    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        if !support::write(
            &mut stream,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "y".repeat(64 * 1024));
        for _ in 0..160 {
            if !support::write(&mut stream, chunk.as_bytes()).await {
                return;
            }
        }
        support::write(&mut stream, b"0\r\n\r\n").await;
    })
    .await;
    let client = HttpClient::builder()
        .max_body_bytes(1024 * 1024)
        .build()
        .unwrap();
    let err = client.send(get(&server.url("/"))).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BodyTooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_body_at_the_limit_is_read() {
    let server =
        support::http(|_, _| http::Response::new(Full::new(Bytes::from(vec![b'z'; 1000])))).await;
    let client = HttpClient::builder().max_body_bytes(1000).build().unwrap();
    let response = client.send(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.body.len(), 1000);
}

#[tokio::test]
async fn a_503_then_200_is_retried_and_counted() {
    let server = support::http(|n, _| {
        if n == 1 {
            reply(503, "sealed")
        } else {
            reply(200, "ok")
        }
    })
    .await;
    let response = quick().send(get(&server.url("/v1/x"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"ok");
    assert_eq!(response.attempts, 2);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_attempts_run_out() {
    for code in [429u16, 500, 502, 503, 504] {
        let server = support::http(move |_, _| reply(code, "busy")).await;
        let response = quick().send(get(&server.url("/"))).await.unwrap();
        assert_eq!(
            response.status, code,
            "the last answer is returned as a response"
        );
        assert_eq!(response.attempts, 3, "{code}");
        assert_eq!(server.requests(), 3, "{code}");
    }
}

#[tokio::test]
async fn other_statuses_are_not_retried() {
    for code in [400u16, 401, 403, 404, 409, 501] {
        let server = support::http(move |_, _| reply(code, "no")).await;
        let response = quick().send(get(&server.url("/"))).await.unwrap();
        assert_eq!(response.status, code);
        assert_eq!(server.requests(), 1, "{code}");
    }
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = support::http(|n, _| {
        if n == 1 {
            http::Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(Full::new(Bytes::new()))
                .unwrap()
        } else {
            reply(200, "ok")
        }
    })
    .await;
    let started = Instant::now();
    let response = quick().send(get(&server.url("/"))).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status, 200);
    assert!(
        elapsed >= Duration::from_secs(1),
        "waited as asked: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    let server = support::http(|n, _| {
        if n == 1 {
            let when = std::time::SystemTime::now() + Duration::from_secs(2);
            http::Response::builder()
                .status(503)
                .header("retry-after", httpdate::fmt_http_date(when))
                .body(Full::new(Bytes::new()))
                .unwrap()
        } else {
            reply(200, "ok")
        }
    })
    .await;
    let started = Instant::now();
    let response = quick().send(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.status, 200);
    // HTTP dates have one-second resolution: the wait is between 1 and 2 s.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_past_the_budget_returns_the_answer_at_once() {
    let server = support::http(|_, _| {
        http::Response::builder()
            .status(503)
            .header("retry-after", "60")
            .body(Full::new(Bytes::new()))
            .unwrap()
    })
    .await;
    let client = HttpClient::builder()
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_secs(5)))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client.send(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.attempts, 1);
    assert_eq!(
        response.header_str("retry-after"),
        Some("60"),
        "the caller sees the server's wish"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A broken proxy's Retry-After must end the call with the answer in hand, never overflow
/// the clock: a number past u64, one just under it, and a date past year 9999.
#[tokio::test]
async fn an_absurd_retry_after_returns_the_answer_at_once() {
    for value in [
        "99999999999999999999",
        "18446744073709551615",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let server = support::http(move |_, _| {
            http::Response::builder()
                .status(503)
                .header("retry-after", value)
                .body(Full::new(Bytes::new()))
                .unwrap()
        })
        .await;
        let started = Instant::now();
        let response = quick().send(get(&server.url("/"))).await.unwrap();
        assert_eq!(
            (response.status.as_u16(), response.attempts),
            (503, 1),
            "{value}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{value}");
    }
}

/// `Retry::Unsent` repeats a request only when no connection was made: a 503 or a reset
/// after the request was sent ends the call, a refused connection is tried again.
#[tokio::test]
async fn unsent_retries_only_requests_that_never_left() {
    let server = support::http(|_, _| reply(503, "later")).await;
    let response = quick()
        .send_with(post(&server.url("/write")), Retry::Unsent)
        .await
        .unwrap();
    assert_eq!((response.attempts, server.requests()), (1, 1));

    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        drop(stream);
    })
    .await;
    let err = quick()
        .send_with(post(&server.url("/write")), Retry::Unsent)
        .await
        .unwrap_err();
    assert!(!err.is_unsent(), "{err:?}");
    assert_eq!(server.connections(), 1);

    let addr = support::closed_port().await;
    let capture = support::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let err = quick()
        .send_with(post(&format!("http://{addr}/write")), Retry::Unsent)
        .await
        .unwrap_err();
    assert!(err.is_unsent(), "{err:?}");
    assert_eq!(
        capture.events().len(),
        3,
        "a refused connection is tried again"
    );
}

#[tokio::test]
async fn connection_refused_is_a_retried_connect_error() {
    let addr = support::closed_port().await;
    let capture = support::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let err = quick()
        .send(get(&format!("http://{addr}/v1/sys/health")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let events = capture.events();
    assert_eq!(events.len(), 3, "one event per attempt: {events:?}");
    for (i, event) in events.iter().enumerate() {
        assert!(event.contains(&format!("attempt={}", i + 1)), "{event}");
        assert!(event.contains("path=/v1/sys/health"), "{event}");
        assert!(event.contains("method=GET"), "{event}");
    }
}

#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    let server = support::http(|_, _| {
        http::Response::builder()
            .status(302)
            .header("location", "/elsewhere")
            .body(Full::new(Bytes::new()))
            .unwrap()
    })
    .await;
    let response = quick().send(get(&server.url("/start"))).await.unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(response.header_str("location"), Some("/elsewhere"));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_post_is_retried_only_when_marked() {
    let unavailable = |_: u32, _: &http::Request<hyper::body::Incoming>| reply(503, "later");

    let server = support::http(unavailable).await;
    let response = quick().send(post(&server.url("/write"))).await.unwrap();
    assert_eq!(
        (
            response.status.as_u16(),
            response.attempts,
            server.requests()
        ),
        (503, 1, 1)
    );

    let server = support::http(unavailable).await;
    let mut marked = post(&server.url("/read"));
    marked.extensions_mut().insert(Idempotent);
    let response = quick().send(marked).await.unwrap();
    assert_eq!((response.attempts, server.requests()), (3, 3));

    let server = support::http(unavailable).await;
    let response = quick()
        .send_with(post(&server.url("/read")), Retry::Always)
        .await
        .unwrap();
    assert_eq!((response.attempts, server.requests()), (3, 3));

    let server = support::http(unavailable).await;
    let response = quick().send_once(get(&server.url("/"))).await.unwrap();
    assert_eq!((response.attempts, server.requests()), (1, 1));
}

#[tokio::test]
async fn a_post_is_not_retried_after_a_connection_reset() {
    // The server read the request and then dropped the connection: the write may have
    // happened, so an unmarked POST must not be repeated.
    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        drop(stream);
    })
    .await;
    let err = quick().send(post(&server.url("/write"))).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.is_retryable(),
        "retryable in kind, but not for this request"
    );
    assert_eq!(server.connections(), 1);

    let err = quick().send(get(&server.url("/read"))).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(
        server.connections(),
        4,
        "a GET is retried: three more connections"
    );
}

#[tokio::test]
async fn garbage_is_a_protocol_error_and_not_retried() {
    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        support::write(&mut stream, b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    })
    .await;
    let err = quick().send(get(&server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn connections_are_reused() {
    let server = support::http(|_, _| reply(200, "ok")).await;
    let client = quick();
    let other_handle = client.clone();
    for _ in 0..3 {
        assert_eq!(
            client.send(get(&server.url("/"))).await.unwrap().status,
            200
        );
        assert_eq!(
            other_handle
                .send(get(&server.url("/")))
                .await
                .unwrap()
                .status,
            200
        );
    }
    assert_eq!(server.requests(), 6);
    assert_eq!(server.connections(), 1, "clones share one pool");
}

#[tokio::test]
async fn head_with_a_large_declared_length_is_fine() {
    let server = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        support::write(
            &mut stream,
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let request = http::Request::head(server.url("/"))
        .body(Bytes::new())
        .unwrap();
    let response = quick().send(request).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn user_agent_is_sent_unless_the_request_has_one() {
    let server = support::http(|_, request| {
        let agent = request
            .headers()
            .get("user-agent")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        http::Response::new(Full::new(Bytes::from(agent)))
    })
    .await;
    let client = HttpClient::builder()
        .user_agent("my-app/1")
        .build()
        .unwrap();
    let response = client.send(get(&server.url("/"))).await.unwrap();
    assert_eq!(&response.body[..], b"my-app/1");
    let own = http::Request::get(server.url("/"))
        .header("user-agent", "caller/2")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(&client.send(own).await.unwrap().body[..], b"caller/2");
}

#[tokio::test]
async fn invalid_requests_send_nothing() {
    let err = quick().send(get("/relative")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    let client = HttpClient::builder().https_only(true).build().unwrap();
    let server = support::http(|_, _| reply(200, "ok")).await;
    let err = client.send(get(&server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(server.connections(), 0);
}
