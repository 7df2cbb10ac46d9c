//! The agent over a real socket: routes, the JSON shape, every refusal, single flight,
//! stale answers, shutdown, reload and the Unix socket.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strongroom_agent::{Agent, Listen, Token};
use strongroom_core::SecretName;
use strongroom_core::testing::MemoryStore;
use strongroom_facade::Secrets;
use support::{Fixture, Running, TOKEN, get, raw};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_needs_no_token() {
    let fixture = Fixture::new();
    let agent = Running::start(fixture.builder()).await;
    let answer = get(agent.addr(), "/ping", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "healthy");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answers_the_get_secret_value_document_in_both_forms() {
    let fixture = Fixture::new();
    fixture.insert("app/db/password", "hunter2");
    let agent = Running::start(fixture.builder()).await;
    for target in [
        "/secretsmanager/get?secretId=app/db/password",
        "/secretsmanager/get?secretId=app%2Fdb%2Fpassword",
        "/v1/app/db/password",
        "/v1/app%2Fdb%2Fpassword",
        "/secretsmanager/get?secretId=arn:strongroom:memory:::secret:app/db/password",
    ] {
        let answer = get(agent.addr(), target, Some(TOKEN)).await;
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        let doc = answer.json();
        assert_eq!(doc["ARN"], "arn:strongroom:memory:::secret:app/db/password");
        assert_eq!(doc["Name"], "app/db/password");
        assert_eq!(doc["VersionId"], "1");
        assert_eq!(doc["SecretString"], "hunter2");
        assert_eq!(doc["VersionStages"], serde_json::json!(["AWSCURRENT"]));
        let created = doc["CreatedDate"].as_f64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(created > now - 600.0 && created <= now + 1.0, "{created}");
        assert_eq!(doc.as_object().unwrap().len(), 6, "no other field: {doc}");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_come_as_base64_secret_binary() {
    let fixture = Fixture::new();
    fixture.insert("bin", &[0xde_u8, 0xad, 0xbe, 0xef, 0xff][..]);
    let agent = Running::start(fixture.builder()).await;
    let doc = get(agent.addr(), "/v1/bin", Some(TOKEN)).await.json();
    assert_eq!(doc["SecretBinary"], "3q2+7/8=");
    assert!(doc.get("SecretString").is_none(), "{doc}");
    agent.stop().await;
}

/// Every refusal the issue lists, each with its status and a JSON body naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_status_and_a_json_body() {
    let fixture = Fixture::new();
    fixture.insert("app/key", "the-value-itself");
    let agent = Running::start(fixture.builder()).await;
    let addr = agent.addr();
    let ok = "/v1/app/key";
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("GET {ok} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n"),
            400,
            "X-Forwarded-For",
        ),
        (
            "GET /ping HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n".to_owned(),
            400,
            "X-Forwarded-For",
        ),
        (
            format!("POST {ok} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            405,
            "GET only",
        ),
        (
            format!("DELETE {ok} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            405,
            "GET only",
        ),
        (
            format!("GET {ok} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            403,
            "no token",
        ),
        (
            format!("GET {ok} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: wrong\r\nConnection: close\r\n\r\n"),
            403,
            "token is wrong",
        ),
        (
            format!("GET {ok} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}x\r\nConnection: close\r\n\r\n"),
            403,
            "token is wrong",
        ),
        (
            format!("GET /v1/app/missing HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            404,
            "app/missing",
        ),
        (
            format!("GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            404,
            "no such route",
        ),
        (
            format!("GET /secretsmanager/get HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            400,
            "secretId is missing",
        ),
        (
            format!("GET /secretsmanager/get?secretId=a&secretId=b HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            400,
            "twice",
        ),
        (
            format!("GET /v1/a//b HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            400,
            "a//b",
        ),
        (
            format!("GET {ok}?refreshNow=maybe HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            400,
            "refreshNow",
        ),
        (
            format!("GET /v1/%ff HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
            400,
            "UTF-8",
        ),
    ];
    for (request, status, says) in cases {
        let answer = raw(addr, &request).await;
        let line = request.lines().next().unwrap();
        assert_eq!(answer.status, status, "{line}: {}", answer.text());
        let doc = answer.json();
        let message = doc["message"].as_str().unwrap();
        assert!(message.contains(says), "{line}: {message}");
        assert!(
            doc["__type"].as_str().is_some_and(|t| !t.is_empty()),
            "{doc}"
        );
        assert!(!answer.text().contains("the-value-itself"), "{line}");
        if status == 405 {
            assert_eq!(answer.header("allow").as_deref(), Some("GET"));
        }
    }
    // The X-Vault-Token header works as well.
    let answer = raw(
        addr,
        &format!(
            "GET {ok} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_is_refused_and_a_slow_one_is_cut_off() {
    let fixture = Fixture::new();
    let agent = Running::start(
        fixture
            .builder()
            .header_read_timeout(Duration::from_millis(300)),
    )
    .await;
    let big = "a".repeat(strongroom_agent::MAX_REQUEST_HEAD);
    let answer = raw(
        agent.addr(),
        &format!("GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(answer.status, 431);

    // Slowloris: half a head, then nothing. The agent closes the connection.
    let mut slow = TcpStream::connect(agent.addr()).await.unwrap();
    slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the agent kept a slow connection open");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_a_connection_gets_429() {
    let fixture = Fixture::new();
    let agent = Running::start(fixture.builder().max_connections(2)).await;
    // Two keep-alive connections hold both places.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(agent.addr()).await.unwrap();
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let answer = get(agent.addr(), "/ping", None).await;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.json()["__type"], "TooManyRequestsException");
    // A place freed is a place taken.
    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        if get(agent.addr(), "/ping", None).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a freed place was not reused");
    drop(held);
    agent.stop().await;
}

/// 1,000 callers asking at once for one secret nobody read yet: the store is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_of_a_cold_secret_cause_one_backend_read() {
    let fixture = Fixture::new();
    fixture.insert("hot/key", "v1");
    fixture.backend.delay_ms.store(1000, Ordering::SeqCst);
    let agent = Running::start(fixture.builder().max_connections(2000)).await;
    let addr = agent.addr();
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                barrier.wait().await;
                support::exchange(
                    &mut stream,
                    &format!("GET /v1/hot/key HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
                )
                .await
            })
        })
        .collect();
    for caller in callers {
        let answer = caller.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["SecretString"], "v1");
    }
    assert_eq!(fixture.backend.gets.load(Ordering::SeqCst), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_a_warm_secret_is_served_stale_and_a_cold_one_is_503() {
    let fixture = Fixture::with_ttl(Duration::from_millis(50));
    fixture.insert("warm", "still-here");
    fixture.insert("cold", "never-read");
    let agent = Running::start(fixture.builder()).await;
    assert_eq!(get(agent.addr(), "/v1/warm", Some(TOKEN)).await.status, 200);
    fixture.backend.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(120)).await; // past the TTL: stale now
    let gets_before = fixture.backend.gets.load(Ordering::SeqCst);

    let answer = get(agent.addr(), "/v1/warm", Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["SecretString"], "still-here");
    assert!(
        fixture.backend.gets.load(Ordering::SeqCst) > gets_before,
        "the store was asked (and failed) before the stale copy was served"
    );

    let answer = get(agent.addr(), "/v1/cold", Some(TOKEN)).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["__type"], "ServiceUnavailableException");
    assert!(!answer.text().contains("never-read"));

    // The health report says so, behind the token.
    assert_eq!(get(agent.addr(), "/health", None).await.status, 403);
    let health = get(agent.addr(), "/health", Some(TOKEN)).await;
    assert_eq!(health.status, 200, "{}", health.text());
    let doc = health.json();
    assert_eq!(doc["status"], "degraded", "{doc}");
    assert_eq!(doc["backend"], "memory");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    assert!(doc["cache"]["stale_served"].as_u64().unwrap() >= 1, "{doc}");

    fixture.backend.down.store(false, Ordering::SeqCst);
    let health = get(agent.addr(), "/health", Some(TOKEN)).await.json();
    assert_eq!(health["status"], "healthy", "{health}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_with_nothing_to_serve_is_503() {
    let fixture = Fixture::new();
    fixture.backend.down.store(true, Ordering::SeqCst);
    let agent = Running::start(fixture.builder()).await;
    let health = get(agent.addr(), "/health", Some(TOKEN)).await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["status"], "unhealthy");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_now_reads_past_the_cache() {
    let fixture = Fixture::new();
    fixture.insert("k", "old");
    let agent = Running::start(fixture.builder()).await;
    assert_eq!(
        get(agent.addr(), "/v1/k", Some(TOKEN)).await.json()["SecretString"],
        "old"
    );
    fixture.insert("k", "new"); // behind the cache's back
    assert_eq!(
        get(agent.addr(), "/v1/k", Some(TOKEN)).await.json()["SecretString"],
        "old"
    );
    let doc = get(
        agent.addr(),
        "/secretsmanager/get?secretId=k&refreshNow=true",
        Some(TOKEN),
    )
    .await
    .json();
    assert_eq!(doc["SecretString"], "new");
    assert_eq!(doc["VersionId"], "2");
    assert_eq!(
        get(agent.addr(), "/v1/k", Some(TOKEN)).await.json()["SecretString"],
        "new"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_stages_map_onto_the_store_history() {
    let fixture = Fixture::new();
    for value in ["one", "two", "three"] {
        fixture.insert("k", value);
    }
    let agent = Running::start(fixture.builder()).await;
    let addr = agent.addr();
    let read = |target: &'static str| async move { get(addr, target, Some(TOKEN)).await };

    let doc = read("/v1/k?versionStage=AWSCURRENT").await.json();
    assert_eq!(
        (doc["VersionId"].as_str(), doc["SecretString"].as_str()),
        (Some("3"), Some("three"))
    );
    assert_eq!(doc["VersionStages"], serde_json::json!(["AWSCURRENT"]));

    let doc = read("/v1/k?versionStage=AWSPREVIOUS").await.json();
    assert_eq!(
        (doc["VersionId"].as_str(), doc["SecretString"].as_str()),
        (Some("2"), Some("two"))
    );
    assert_eq!(doc["VersionStages"], serde_json::json!(["AWSPREVIOUS"]));

    let doc = read("/secretsmanager/get?secretId=k&versionId=1")
        .await
        .json();
    assert_eq!(doc["SecretString"], "one");
    assert_eq!(doc["VersionStages"], serde_json::json!([]));

    let doc = read("/secretsmanager/get?secretId=k&versionId=3")
        .await
        .json();
    assert_eq!(doc["VersionStages"], serde_json::json!(["AWSCURRENT"]));

    let doc = read("/v1/k?versionId=2&versionStage=AWSPREVIOUS")
        .await
        .json();
    assert_eq!(doc["SecretString"], "two");

    let answer = read("/v1/k?versionId=1&versionStage=AWSPREVIOUS").await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = read("/v1/k?versionStage=AWSPENDING").await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = read("/v1/k?versionId=9").await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_with_one_version_has_no_previous_one() {
    let fixture = Fixture::new();
    fixture.insert("k", "only");
    let agent = Running::start(fixture.builder()).await;
    let answer = get(agent.addr(), "/v1/k?versionStage=AWSPREVIOUS", Some(TOKEN)).await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_file_is_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "file-token-123\n").unwrap();
    let fixture = Fixture::new();
    fixture.insert("k", "v");
    let token = Token::from_aws_token_value(&format!("file://{}", path.display())).unwrap();
    let agent = Running::start(
        Agent::builder(fixture.secrets.clone(), token).listen("127.0.0.1:0".parse().unwrap()),
    )
    .await;
    assert_eq!(
        get(agent.addr(), "/v1/k", Some("file-token-123"))
            .await
            .status,
        200
    );
    assert_eq!(
        get(agent.addr(), "/v1/k", Some("file-token-123\n".trim_end()))
            .await
            .status,
        200
    );
    assert_eq!(get(agent.addr(), "/v1/k", Some(TOKEN)).await.status, 403);
    agent.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_is_private_and_serves_the_same_api() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let fixture = Fixture::new();
    fixture.insert("k", "over-unix");
    let agent = Running::start(fixture.builder().listen(Listen::Unix(path.clone()))).await;
    assert_eq!(agent.listen, Listen::Unix(path.clone()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let answer = support::exchange(
        stream,
        &format!("GET /v1/k HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["SecretString"], "over-unix");
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let answer = support::exchange(
        stream,
        "GET /v1/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 403);

    // A second agent on the same live socket is refused; the socket goes with the agent.
    let second = fixture
        .builder()
        .listen(Listen::Unix(path.clone()))
        .bind()
        .await;
    assert!(second.unwrap_err().to_string().contains("listens on"));
    agent.stop().await;
    assert!(!path.exists(), "the socket file outlived the agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish_and_stops_accepting() {
    let fixture = Fixture::new();
    fixture.insert("slow", "worth-the-wait");
    fixture.backend.delay_ms.store(500, Ordering::SeqCst);
    let mut agent = Running::start(fixture.builder()).await;
    let addr = agent.addr();
    let in_flight = tokio::spawn(async move { get(addr, "/v1/slow", Some(TOKEN)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    agent.shutdown();
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["SecretString"], "worth-the-wait");
    agent.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_secrets_serves_the_new_store() {
    let fixture = Fixture::new();
    fixture.insert("k", "before");
    let agent = Running::start(fixture.builder()).await;
    assert_eq!(
        get(agent.addr(), "/v1/k", Some(TOKEN)).await.json()["SecretString"],
        "before"
    );
    let other = MemoryStore::new();
    other.insert(&SecretName::new("k").unwrap(), "after");
    let old = agent
        .slot
        .replace(Secrets::builder().store(other).build().unwrap());
    assert_eq!(old.backend(), "memory");
    assert_eq!(
        get(agent.addr(), "/v1/k", Some(TOKEN)).await.json()["SecretString"],
        "after"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_bad_settings() {
    let fixture = Fixture::new();
    let err = fixture
        .builder()
        .max_connections(0)
        .bind()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection limit"), "{err}");
    let err = fixture
        .builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .bind()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    // Allowed when asked (bound on every interface, port chosen by the system).
    let agent = fixture
        .builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .allow_non_loopback(true)
        .bind()
        .await
        .unwrap();
    assert!(matches!(agent.local_addr(), Listen::Tcp(a) if a.port() != 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_without_a_handle_is_404_behind_the_token() {
    let fixture = Fixture::new();
    let agent = Running::start(fixture.builder()).await;
    assert_eq!(get(agent.addr(), "/metrics", None).await.status, 403);
    let answer = get(agent.addr(), "/metrics", Some(TOKEN)).await;
    assert_eq!(answer.status, 404);
    assert!(answer.text().contains("metrics are off"));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_come_from_the_renderer_given() {
    let fixture = Fixture::new();
    let agent = Running::start(
        fixture
            .builder()
            .metrics_renderer(|| "# TYPE custom counter\ncustom 7\n".to_owned()),
    )
    .await;
    let answer = get(agent.addr(), "/metrics", Some(TOKEN)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "# TYPE custom counter\ncustom 7\n");
    agent.stop().await;
}
