//! What the agent says about itself: logs and audit lines (never a value or the token),
//! and `/metrics`. Its own test binary: it installs the process's global tracing
//! subscriber and metrics recorder.

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strongroom_facade::{CacheConfig, Secrets};
use strongroom_vault::VaultStore;
use support::{Fixture, Running, TOKEN, get, raw};

const VALUE: &str = "correct-horse-battery-staple";

/// Everything the subscriber writes, kept for the test to search.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// One test, because the subscriber and the recorder are process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_or_token_reaches_logs_or_errors_and_metrics_are_exported() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    let handle = strongroom_agent::install_prometheus().unwrap();
    let breaker_handle = handle.clone();

    let fixture = Fixture::new();
    fixture.insert("app/secret", VALUE);
    fixture.insert("app/other", VALUE);
    let agent = Running::start(fixture.builder().metrics(handle)).await;
    let addr = agent.addr();

    let mut bodies = Vec::new();
    // Reads that succeed (a miss, a hit, a version), fail, and are refused.
    assert_eq!(get(addr, "/v1/app/secret", Some(TOKEN)).await.status, 200);
    assert_eq!(get(addr, "/v1/app/secret", Some(TOKEN)).await.status, 200);
    assert_eq!(
        get(addr, "/v1/app/secret?versionId=1", Some(TOKEN))
            .await
            .status,
        200
    );
    for target in [
        "/v1/app/missing",
        "/v1/app/secret?versionId=7",
        "/v1/app/secret?versionStage=NOPE",
    ] {
        bodies.push(get(addr, target, Some(TOKEN)).await.text());
    }
    bodies.push(
        get(addr, "/v1/app/secret", Some("not-the-token"))
            .await
            .text(),
    );
    bodies.push(
        raw(
            addr,
            &format!("POST /v1/app/secret HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{VALUE}", VALUE.len()),
        )
        .await
        .text(),
    );
    fixture.backend.down.store(true, Ordering::SeqCst);
    bodies.push(get(addr, "/v1/app/other", Some(TOKEN)).await.text());
    let health = get(addr, "/health", Some(TOKEN)).await.text();
    assert!(
        health.contains("degraded") && !health.contains(VALUE),
        "{health}"
    );
    fixture.backend.down.store(false, Ordering::SeqCst);

    let metrics = get(addr, "/metrics", Some(TOKEN)).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        metrics.header("content-type")
    );
    let text = metrics.text();
    for expected in [
        r#"strongroom_agent_requests_total{route="get",status="200"} 3"#,
        r#"strongroom_agent_requests_total{route="get",status="404"} 3"#,
        r#"strongroom_agent_requests_total{route="refused",status="403"} 1"#,
        r#"strongroom_agent_requests_total{route="refused",status="405"} 1"#,
        r#"strongroom_operations_total{op="get",outcome="ok",cache="hit"}"#,
        r#"strongroom_operations_total{op="get",outcome="ok",cache="miss"} 1"#,
        "strongroom_agent_connections",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains(VALUE));
    agent.stop().await;

    breaker_metrics_of_a_store_that_refuses_connections(breaker_handle).await;

    let logs = captured.text();
    // The capture works: the audit events and the agent's request lines are there.
    assert!(logs.contains("app/secret"), "nothing captured:\n{logs}");
    assert!(
        logs.contains("strongroom_agent"),
        "no request lines:\n{logs}"
    );
    assert!(logs.contains("unavailable"), "no degraded warning:\n{logs}");
    assert!(!logs.contains(VALUE), "a value reached the logs:\n{logs}");
    assert!(!logs.contains(TOKEN), "the token reached the logs:\n{logs}");
    for body in bodies {
        assert!(!body.contains(VALUE), "a value in an error body: {body}");
        assert!(!body.contains(TOKEN), "the token in an error body: {body}");
        assert!(body.contains("\"message\""), "not a JSON error: {body}");
    }
}

/// A Vault store whose address is a loopback port nobody listens on: every call is a real
/// refused connection. Two of them open the breaker; the third read is refused by it
/// without a connection; `/metrics` shows all three numbers.
async fn breaker_metrics_of_a_store_that_refuses_connections(
    handle: strongroom_agent::PrometheusHandle,
) {
    // A port the system just gave out and took back: closed, so connecting is refused.
    let closed = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = VaultStore::builder()
        .client(|c| {
            c.address(format!("http://127.0.0.1:{closed}"))
                .token("not-a-real-token")
                .retry_max_attempts(1)
                .connect_timeout(Duration::from_secs(2))
        })
        .build()
        .unwrap();
    let secrets = Secrets::builder()
        .store(store)
        .cache(
            CacheConfig::builder()
                // Long enough that no probe goes out during the test.
                .breaker(2, Duration::from_secs(600))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let agent = Running::start(
        strongroom_agent::Agent::builder(
            secrets.clone(),
            strongroom_agent::Token::new(TOKEN).unwrap(),
        )
        .listen("127.0.0.1:0".parse().unwrap())
        .metrics(handle),
    )
    .await;
    let addr = agent.addr();

    let metrics = || async { get(addr, "/metrics", Some(TOKEN)).await.text() };
    let closed_yet = metrics().await;
    for line in [
        r#"strongroom_breaker_open{backend="vault"} 0"#,
        r#"strongroom_breaker_opened_total{backend="vault"} 0"#,
        r#"strongroom_breaker_refused_total{backend="vault"} 0"#,
    ] {
        assert!(
            closed_yet.contains(line),
            "{line} missing from:\n{closed_yet}"
        );
    }

    for _ in 0..2 {
        let answer = get(addr, "/v1/app/db", Some(TOKEN)).await;
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert!(
            !answer.text().contains("circuit breaker"),
            "{}",
            answer.text()
        );
    }
    let refused = get(addr, "/v1/app/db", Some(TOKEN)).await;
    assert_eq!(refused.status, 503);
    assert!(
        refused.text().contains("circuit breaker open"),
        "{}",
        refused.text()
    );
    let stats = secrets.stats().cache;
    assert_eq!(
        (
            stats.breaker_open,
            stats.breaker_opened,
            stats.breaker_refused
        ),
        (true, 1, 1)
    );

    let open = metrics().await;
    for line in [
        r#"strongroom_breaker_open{backend="vault"} 1"#,
        r#"strongroom_breaker_opened_total{backend="vault"} 1"#,
        r#"strongroom_breaker_refused_total{backend="vault"} 1"#,
    ] {
        assert!(open.contains(line), "{line} missing from:\n{open}");
    }
    // Rendering again adds nothing that did not happen.
    let again = metrics().await;
    assert!(
        again.contains(r#"strongroom_breaker_refused_total{backend="vault"} 1"#),
        "{again}"
    );
    agent.stop().await;
}
