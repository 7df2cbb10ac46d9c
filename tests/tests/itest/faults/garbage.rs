//! Answers no real OpenBao or Secrets Manager gives, from a small loopback responder: each
//! must reach the caller as a clear error of the right kind, quickly, with no panic and no
//! hang.

use std::time::{Duration, Instant};

use strongroom_aws::{SecretsManagerClient, SecretsManagerStore};
use strongroom_core::{ErrorKind, SecretStore};
use strongroom_http::HttpClient;
use strongroom_sigv4::{Credentials, StaticProvider};
use strongroom_vault::{RetryPolicy, VaultClient, VaultStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::key;

/// What the responder answers to every request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 200, JSON content type, a KV v2 answer cut in the middle.
    TruncatedJson,
    /// 200, `text/plain`, a proxy's text instead of JSON.
    WrongContentType,
    /// 200, a valid KV v2 answer labelled `text/plain`.
    JsonAsTextPlain,
    /// 200 with an HTML page, as a captive portal or a misrouted proxy gives.
    Html,
    /// 200, JSON content type, a body 1 MiB over what the Vault client reads.
    Huge,
    /// Announces 4096 bytes of body, sends 40, closes the connection.
    CutConnection,
    /// Accepts, reads the request, never answers.
    Silent,
}

const KV_ANSWER: &str = r#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"value":"garbage-test-value"},"metadata":{"created_time":"2026-01-01T00:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}},"wrap_info":null,"warnings":null,"auth":null}"#;

async fn serve(mut socket: TcpStream, answer: Answer) {
    // Read the request head; the client only sends GETs here, without a body.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let reply = |content_type: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let bytes = match answer {
        Answer::TruncatedJson => reply("application/json", &KV_ANSWER.as_bytes()[..90]),
        Answer::WrongContentType => reply("text/plain", b"upstream answered: all good"),
        Answer::JsonAsTextPlain => reply("text/plain", KV_ANSWER.as_bytes()),
        Answer::Html => reply(
            "text/html",
            b"<!doctype html><html><body><h1>Welcome to the network</h1></body></html>",
        ),
        Answer::Huge => {
            let mut body = b"{\"data\":{\"data\":{\"value\":\"".to_vec();
            body.resize(strongroom_vault::MAX_RESPONSE_BYTES + 1024 * 1024, b'a');
            reply("application/json", &body)
        }
        Answer::CutConnection => {
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n".to_vec();
            out.extend_from_slice(&KV_ANSWER.as_bytes()[..40]);
            out
        }
        Answer::Silent => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
    };
    let _ = socket.write_all(&bytes).await;
    let _ = socket.shutdown().await;
}

/// Starts the responder; returns its address and how many connections it took.
async fn responder(answer: Answer) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(socket, answer));
        }
    });
    (addr, task)
}

fn store(addr: &str) -> VaultStore {
    let client = VaultClient::builder()
        .address(addr)
        .token("garbage-test-token")
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(REQUEST_TIMEOUT)
        .retry_policy(RetryPolicy::default().with_max_total(RETRY_BUDGET))
        .build()
        .unwrap();
    VaultStore::new(&client, "secret").unwrap()
}

/// The request timeout and retry budget every client here gets.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
const RETRY_BUDGET: Duration = Duration::from_secs(3);

/// Serves each answer to a fresh store from `make` and checks that a read fails with the
/// expected kind, within the retry budget, with none of `secrets` in the error.
#[expect(
    clippy::print_stderr,
    reason = "the figures docs/reliability.md quotes"
)]
async fn each_answer_is_a_clear_error<S: SecretStore>(
    label: &str,
    cases: &[(Answer, ErrorKind)],
    secrets: &[&str],
    make: impl Fn(&str) -> S,
) {
    for &(answer, expected) in cases {
        let (addr, server) = responder(answer).await;
        let store = make(&addr);
        let started = Instant::now();
        let err = store.get(&key("app/garbage")).await.unwrap_err();
        let took = started.elapsed();
        eprintln!(
            "{label} {answer:?}: {} after {:.2}s: {err}",
            err.kind().as_str(),
            took.as_secs_f64()
        );
        assert_eq!(err.kind(), expected, "{answer:?}: {err}");
        let shown = format!("{err} {err:?}");
        for secret in secrets {
            assert!(
                !shown.contains(secret),
                "{answer:?}: {secret} leaked: {shown}"
            );
        }
        assert!(
            took < RETRY_BUDGET + REQUEST_TIMEOUT + Duration::from_secs(1),
            "{answer:?}: took {took:?}"
        );
        server.abort();
    }
}

#[tokio::test]
async fn garbage_answers_are_clear_errors_within_the_timeout() {
    let cases = [
        (Answer::TruncatedJson, ErrorKind::Backend),
        (Answer::WrongContentType, ErrorKind::Backend),
        (Answer::Html, ErrorKind::Backend),
        (Answer::Huge, ErrorKind::Backend),
        (Answer::CutConnection, ErrorKind::Unavailable),
        (Answer::Silent, ErrorKind::Unavailable),
    ];
    each_answer_is_a_clear_error(
        "garbage",
        &cases,
        &["garbage-test-token", "garbage-test-value"],
        store,
    )
    .await;
}

/// The client goes by the body, not the label: a well-formed KV v2 answer served as
/// `text/plain` is read (a body that is not JSON is refused above, whatever its label).
#[tokio::test]
async fn a_well_formed_answer_with_the_wrong_content_type_is_read() {
    let (addr, server) = responder(Answer::JsonAsTextPlain).await;
    let store = store(&addr);
    let secret = store.get(&key("app/garbage")).await.unwrap();
    assert_eq!(secret.value.expose_str().unwrap(), "garbage-test-value");
    server.abort();
}

fn aws_store(addr: &str) -> SecretsManagerStore {
    let http = HttpClient::builder()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(REQUEST_TIMEOUT)
        .retry_policy(RetryPolicy::default().with_max_total(RETRY_BUDGET))
        .build()
        .unwrap();
    let client = SecretsManagerClient::builder()
        .region("us-east-1")
        .endpoint(addr)
        .credentials(StaticProvider::new(Credentials::new(
            "AKIDGARBAGE",
            "garbage-test-secret-key",
        )))
        .http_client(http)
        .build()
        .unwrap();
    SecretsManagerStore::builder()
        .client(client)
        .build_lazy()
        .unwrap()
}

/// The same answers to the Secrets Manager client: every one a clear error of the right
/// kind, within the retry budget, naming no credential.
#[tokio::test]
async fn garbage_answers_to_secrets_manager_are_clear_errors_within_the_timeout() {
    let cases = [
        (Answer::TruncatedJson, ErrorKind::Backend),
        (Answer::WrongContentType, ErrorKind::Backend),
        (Answer::JsonAsTextPlain, ErrorKind::Backend),
        (Answer::Html, ErrorKind::Backend),
        (Answer::Huge, ErrorKind::Backend),
        (Answer::CutConnection, ErrorKind::Unavailable),
        (Answer::Silent, ErrorKind::Unavailable),
    ];
    each_answer_is_a_clear_error(
        "aws garbage",
        &cases,
        &["garbage-test-secret-key"],
        aws_store,
    )
    .await;
}
