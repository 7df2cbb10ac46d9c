//! No header value, request body or query string reaches an error message, a `Debug`
//! output or a tracing event, whatever goes wrong.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use strongroom_http::{HttpClient, RetryPolicy};

use crate::support;

const SECRETS: [&str; 4] = [
    "hvs.TOKEN-in-x-vault-token",
    "Bearer TOKEN-in-authorization",
    "BODY-secret-value",
    "QUERY-secret",
];

fn secret_request(url: &str) -> http::Request<Bytes> {
    http::Request::put(format!("{url}?sig=QUERY-secret"))
        .header("x-vault-token", "hvs.TOKEN-in-x-vault-token")
        .header("authorization", "Bearer TOKEN-in-authorization")
        .body(Bytes::from_static(b"{\"value\":\"BODY-secret-value\"}"))
        .unwrap()
}

fn assert_clean(text: &str) {
    // The whole secrets, and their distinctive parts in case one was cut or re-quoted.
    let parts = ["TOKEN-in", "BODY-secret", "QUERY-secret"];
    for needle in SECRETS.iter().chain(parts.iter()) {
        assert!(!text.contains(needle), "{needle:?} leaked into {text}");
    }
}

fn client() -> HttpClient {
    HttpClient::builder()
        .request_timeout(Duration::from_millis(300))
        .max_body_bytes(16)
        .retry_policy(RetryPolicy::default().with_base_delay(Duration::from_millis(1)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn errors_responses_and_events_hold_no_secret() {
    let capture = support::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let mut seen = Vec::new();

    let closed = support::closed_port().await;
    seen.push(
        client()
            .send(secret_request(&format!("http://{closed}/v1/kv")))
            .await
            .unwrap_err(),
    );

    let silent = support::raw(|stream| async move {
        let _held = stream;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    seen.push(
        client()
            .send(secret_request(&silent.url("/v1/kv")))
            .await
            .unwrap_err(),
    );

    // The server echoes the request's headers back in a body past the limit.
    let echo = support::http(|_, request| {
        let echoed = format!(
            "{:?}",
            request
                .headers()
                .iter()
                .map(|(_, v)| v.to_str().unwrap_or(""))
                .collect::<Vec<_>>()
        );
        http::Response::new(Full::new(Bytes::from(echoed)))
    })
    .await;
    seen.push(
        client()
            .send(secret_request(&echo.url("/v1/kv")))
            .await
            .unwrap_err(),
    );

    let garbage = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
        support::write(&mut stream, b"NOT HTTP AT ALL\r\n\r\n").await;
    })
    .await;
    seen.push(
        client()
            .send(secret_request(&garbage.url("/v1/kv")))
            .await
            .unwrap_err(),
    );

    let reset = support::raw(|mut stream| async move {
        support::read_head(&mut stream).await;
    })
    .await;
    seen.push(
        client()
            .send(secret_request(&reset.url("/v1/kv")))
            .await
            .unwrap_err(),
    );

    assert_eq!(seen.len(), 5);
    for err in &seen {
        let mut text = format!("{err} | {err:?} | {err:#?}");
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause} | {cause:?}"));
            source = cause.source();
        }
        assert_clean(&text);
    }

    // A response that carries a token in its body prints none of it.
    let login = support::http(|_, _| {
        http::Response::builder()
            .header("x-vault-token", "hvs.TOKEN-in-x-vault-token")
            .body(Full::new(Bytes::from_static(b"BODY-secret-value")))
            .unwrap()
    })
    .await;
    let response = HttpClient::new()
        .unwrap()
        .send(secret_request(&login.url("/v1/auth")))
        .await
        .unwrap();
    assert_eq!(
        &response.body[..],
        b"BODY-secret-value",
        "the caller gets the body"
    );
    assert_clean(&format!("{response:?}"));

    let events = capture.events();
    assert!(events.len() >= 6, "{events:?}");
    assert!(events.iter().all(|e| e.contains("path=/v1/")), "{events:?}");
    assert_clean(&events.join("\n"));
}
