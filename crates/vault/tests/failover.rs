//! A client given several addresses (a cluster's nodes), against real TCP servers in the
//! test that each give one fixed answer: a down node (refused), a standby without a leader
//! (307 or 503), a node that reads the request and hangs up (outcome unknown), and a
//! healthy active node. What must hold: requests move on past nodes that did not handle
//! them, plain writes are never sent twice once they may have been applied, a redirect to
//! an address outside the list is never followed (no connection, no token there), and the
//! node that answered is where the next request goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use strongroom_core::ErrorKind;
use strongroom_vault::{
    Kv2, NodeState, RenewPolicy, RetryPolicy, SecretData, VaultClient, default_cluster_retry,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one request; its head (lowercased), or None when the peer left.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return Some(head);
            }
        }
    }
}

/// What a node does with every request.
#[derive(Clone)]
enum Answer {
    /// This status, these extra header lines, this body.
    Fixed(u16, String, &'static str),
    /// Reads the request and hangs up.
    HangUp,
}

/// A node: its address, the requests it read, and how many carried a token.
struct Node {
    address: String,
    requests: Arc<AtomicUsize>,
    tokens: Arc<AtomicUsize>,
}

async fn node(answer: Answer) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(AtomicUsize::new(0));
    let (r, t) = (Arc::clone(&requests), Arc::clone(&tokens));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (r, t, answer) = (Arc::clone(&r), Arc::clone(&t), answer.clone());
            tokio::spawn(async move {
                while let Some(head) = read_request(&mut stream).await {
                    r.fetch_add(1, Ordering::SeqCst);
                    if head.contains("x-vault-token:") {
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                    match &answer {
                        Answer::HangUp => return,
                        Answer::Fixed(status, headers, body) => {
                            let text = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                                 {headers}content-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if stream.write_all(text.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Node {
        address,
        requests,
        tokens,
    }
}

/// A port nothing listens on.
async fn down_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    address
}

const KV_READ: &str = r#"{"data":{"data":{"value":"v"},"metadata":{"version":3,"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}}}"#;
const KV_WRITE: &str = r#"{"data":{"version":4,"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}}"#;
const CAS_MISMATCH: &str =
    r#"{"errors":["check-and-set parameter did not match the current version"]}"#;
const SEALED: &str = r#"{"errors":["Vault is sealed"]}"#;

fn kv(addresses: &[&str], policy: Option<RetryPolicy>) -> Kv2 {
    let mut builder = VaultClient::builder()
        .addresses(addresses.iter().map(|a| (*a).to_owned()))
        .token("hvs.failover-test")
        .renew_policy(RenewPolicy::Never)
        .request_timeout(Duration::from_millis(500));
    if let Some(policy) = policy {
        builder = builder.retry_policy(policy);
    }
    builder.build().unwrap().kv2("secret").unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(20)
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_max_total(Duration::from_secs(3))
}

fn data() -> SecretData {
    SecretData::new().with("value", "v")
}

#[tokio::test]
async fn reads_move_past_down_sealed_and_standby_nodes_and_stay_on_the_one_that_answered() {
    let down = down_address().await;
    let sealed = node(Answer::Fixed(503, String::new(), SEALED)).await;
    let active = node(Answer::Fixed(200, String::new(), KV_READ)).await;
    let kv = kv(&[&down, &sealed.address, &active.address], Some(quick()));
    let secret = kv.read("app/x").await.unwrap();
    assert_eq!(secret.data.get_str("value"), Some("v"));
    assert_eq!(sealed.requests.load(Ordering::SeqCst), 1);
    assert_eq!(active.requests.load(Ordering::SeqCst), 1);
    assert_eq!(kv.client().address(), active.address);
    // The next request goes straight to the node that answered.
    kv.read("app/x").await.unwrap();
    assert_eq!(sealed.requests.load(Ordering::SeqCst), 1);
    assert_eq!(active.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_redirect_outside_the_list_is_never_followed_and_gets_no_token() {
    let outside = node(Answer::Fixed(200, String::new(), KV_READ)).await;
    let standby = node(Answer::Fixed(
        307,
        format!("location: {}/v1/secret/data/app/x\r\n", outside.address),
        "",
    ))
    .await;
    let active = node(Answer::Fixed(200, String::new(), KV_READ)).await;
    let kv = kv(&[&standby.address, &active.address], Some(quick()));
    kv.read("app/x").await.unwrap();
    assert_eq!(
        outside.requests.load(Ordering::SeqCst),
        0,
        "followed a redirect"
    );
    assert_eq!(active.tokens.load(Ordering::SeqCst), 1);

    // A redirect that names a configured node goes there next, skipping the order.
    let other_standby = node(Answer::Fixed(503, String::new(), SEALED)).await;
    let pointing = node(Answer::Fixed(
        307,
        format!("location: {}/v1/secret/data/app/x\r\n", active.address),
        "",
    ))
    .await;
    let kv = self::kv(
        &[&pointing.address, &other_standby.address, &active.address],
        Some(quick()),
    );
    kv.read("app/x").await.unwrap();
    assert_eq!(other_standby.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_plain_write_that_may_have_been_applied_is_not_sent_to_another_node() {
    let hang = node(Answer::HangUp).await;
    let active = node(Answer::Fixed(200, String::new(), KV_WRITE)).await;
    let kv = kv(&[&hang.address, &active.address], Some(quick()));
    let err = kv.write("app/x", &data(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(hang.requests.load(Ordering::SeqCst), 1);
    assert_eq!(active.requests.load(Ordering::SeqCst), 0, "sent twice");

    // A node that certainly did not handle it (sealed, or down) is passed for writes too.
    let sealed = node(Answer::Fixed(503, String::new(), SEALED)).await;
    let down = down_address().await;
    let kv = self::kv(&[&down, &sealed.address, &active.address], Some(quick()));
    kv.write("app/x", &data(), None).await.unwrap();
    assert_eq!(active.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_check_and_set_write_moves_on_and_a_mismatch_after_an_unknown_attempt_is_unavailable() {
    let hang = node(Answer::HangUp).await;
    let active = node(Answer::Fixed(200, String::new(), KV_WRITE)).await;
    let kv = kv(&[&hang.address, &active.address], Some(quick()));
    let written = kv.write("app/x", &data(), Some(3)).await.unwrap();
    assert_eq!(written.version, 4);
    assert_eq!(active.requests.load(Ordering::SeqCst), 1);

    // The first attempt may have written version 4; the second then finds 4, not 3. That
    // is not someone else's write: the caller must read back, so it is Unavailable.
    let hang = node(Answer::HangUp).await;
    let mismatch = node(Answer::Fixed(400, String::new(), CAS_MISMATCH)).await;
    let kv = self::kv(&[&hang.address, &mismatch.address], Some(quick()));
    let err = kv.write("app/x", &data(), Some(3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("read the secret back"), "{err}");

    // Without an unknown attempt before it, a mismatch is a Conflict as always.
    let kv = self::kv(&[&mismatch.address, &hang.address], Some(quick()));
    let err = kv.write("app/x", &data(), Some(3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
}

#[tokio::test]
async fn no_request_outlasts_the_budget_when_no_node_serves() {
    let a = node(Answer::Fixed(503, String::new(), SEALED)).await;
    let b = down_address().await;
    let budget = Duration::from_millis(800);
    let kv = kv(&[&a.address, &b], Some(quick().with_max_total(budget)));
    let started = Instant::now();
    let err = kv.read("app/x").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(took <= budget + Duration::from_millis(200), "{took:?}");
    assert!(
        a.requests.load(Ordering::SeqCst) > 1,
        "never went round again"
    );
}

#[tokio::test]
async fn one_address_and_the_comma_list_both_work_and_health_reports_each_node() {
    let active = node(Answer::Fixed(200, String::new(), "{}")).await;
    let standby = node(Answer::Fixed(429, String::new(), "{}")).await;
    let down = down_address().await;
    let client = VaultClient::builder()
        .address(format!("{} , {},{down}", active.address, standby.address))
        .token("hvs.failover-test")
        .renew_policy(RenewPolicy::Never)
        .build()
        .unwrap();
    assert_eq!(client.addresses().len(), 3);
    let health = client.node_health().await;
    assert_eq!(health[0].state, NodeState::Active);
    assert!(health[0].current);
    assert_eq!(health[1].state, NodeState::Standby);
    assert!(matches!(health[2].state, NodeState::Unreachable(_)));
    // sys/health is unauthenticated: no token goes with it.
    assert_eq!(active.tokens.load(Ordering::SeqCst), 0);

    let single = VaultClient::builder()
        .address(active.address.clone())
        .token("t")
        .build()
        .unwrap();
    assert_eq!(single.addresses(), vec![active.address.as_str()]);
    assert!(default_cluster_retry().max_total >= Duration::from_secs(20));
}
