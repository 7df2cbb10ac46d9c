//! The Vault client against the lying server: every endpoint it calls (KV read, write, list,
//! metadata read and write, AppRole and Kubernetes login, `lookup-self`, and `renew-self`
//! from the background renewal task) in every mode, plus absurd TTLs in login, renewal and
//! lookup answers.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use strongroom_core::ErrorKind;
use strongroom_itests::hostile::{HostileServer, Mode, Reply};
use strongroom_vault::{
    AppRole, Credential, Kubernetes, MetadataUpdate, RenewPolicy, RetryPolicy, SecretData,
    VaultClient,
};

use crate::support::{self, BUDGET, Expect, expected_for};

type Call = for<'a> fn(
    &'a VaultClient,
) -> Pin<
    Box<dyn Future<Output = Result<(), strongroom_core::Error>> + Send + 'a>,
>;

/// How a case's client logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Login {
    /// A static token: requests go straight to the endpoint.
    Token,
    /// AppRole: the call is the login itself.
    AppRole,
    /// Kubernetes: the call is the login itself.
    Kubernetes,
}

/// One Vault endpoint: a name, a call of it, the path it requests, a well-formed answer.
struct Endpoint {
    name: &'static str,
    login: Login,
    call: Call,
    good: &'static str,
}

const KV_READ_OK: &str = r#"{"data":{"data":{"value":"s3cr3t"},"metadata":{"version":1,"created_time":"2024-05-01T10:00:00Z","deletion_time":"","destroyed":false,"custom_metadata":null}}}"#;
const KV_WRITE_OK: &str = r#"{"data":{"version":2,"created_time":"2024-05-01T10:00:00Z","deletion_time":"","destroyed":false}}"#;
const LOGIN_OK: &str =
    r#"{"auth":{"client_token":"hvs.login-token","lease_duration":3600,"renewable":true}}"#;
const LOOKUP_OK: &str = r#"{"data":{"display_name":"token","policies":["default"],"ttl":3600,"renewable":true,"type":"service"}}"#;

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            name: "kv read",
            login: Login::Token,
            call: |c| Box::pin(async move { c.kv2("secret")?.read("app/x").await.map(drop) }),
            good: KV_READ_OK,
        },
        Endpoint {
            name: "kv write",
            login: Login::Token,
            call: |c| {
                Box::pin(async move {
                    c.kv2("secret")?
                        .write("app/x", &SecretData::new().with("value", "s3cr3t"), Some(1))
                        .await
                        .map(drop)
                })
            },
            good: KV_WRITE_OK,
        },
        Endpoint {
            name: "kv list",
            login: Login::Token,
            call: |c| Box::pin(async move { c.kv2("secret")?.list("app/").await.map(drop) }),
            good: r#"{"data":{"keys":["x","y/"]}}"#,
        },
        Endpoint {
            name: "kv metadata read",
            login: Login::Token,
            call: |c| {
                Box::pin(async move { c.kv2("secret")?.read_metadata("app/x").await.map(drop) })
            },
            good: r#"{"data":{"current_version":1,"oldest_version":1,"max_versions":0,"versions":{"1":{"created_time":"2024-05-01T10:00:00Z","deletion_time":"","destroyed":false}},"custom_metadata":{"team":"a"}}}"#,
        },
        Endpoint {
            name: "kv metadata write",
            login: Login::Token,
            call: |c| {
                Box::pin(async move {
                    let update = MetadataUpdate::custom(
                        [("team".to_owned(), "a".to_owned())].into_iter().collect(),
                    );
                    c.kv2("secret")?.write_metadata("app/x", &update).await
                })
            },
            good: "",
        },
        Endpoint {
            name: "token lookup-self",
            login: Login::Token,
            call: |c| Box::pin(async move { c.lookup_self().await.map(drop) }),
            good: LOOKUP_OK,
        },
        Endpoint {
            name: "approle login",
            login: Login::AppRole,
            call: |c| Box::pin(async move { c.login().await }),
            good: LOGIN_OK,
        },
        Endpoint {
            name: "kubernetes login",
            login: Login::Kubernetes,
            call: |c| Box::pin(async move { c.login().await }),
            good: LOGIN_OK,
        },
    ]
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(50))
        .with_max_total(BUDGET)
}

/// A client of the hostile server with the suite's timeouts, retry budget and body limit.
fn client(server: &HostileServer, login: Login, renew: RenewPolicy) -> VaultClient {
    let builder = VaultClient::builder()
        .address(server.url())
        .renew_policy(renew)
        .http(
            strongroom_http::HttpClient::builder()
                .connect_timeout(Duration::from_secs(1))
                .request_timeout(Duration::from_millis(700))
                .max_body_bytes(support::BODY_LIMIT)
                .retry_policy(retry_policy()),
        );
    let builder = match login {
        Login::Token => builder.token("hvs.static-token"),
        Login::AppRole => builder.approle(AppRole::new(
            Credential::value("role-id"),
            Credential::value("secret-id-s3cr3t"),
        )),
        Login::Kubernetes => {
            builder.kubernetes(Kubernetes::new("app").jwt(Credential::value("eyJ.jwt.s3cr3t")))
        }
    };
    builder.build().expect("a client for the hostile server")
}

/// What a mode must give a Vault call. Vault maps statuses itself: every 5xx (599 too) is
/// Unavailable, a 302 or an unknown status is Backend, like a malformed answer.
fn expected_for_vault(mode: &Mode) -> Expect {
    expected_for(mode)
}

/// Every endpoint x every mode: a typed error in time, no panic, no secret in the error,
/// and success once the server answers normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_in_every_mode() {
    support::watch_panics();
    let mut failures = Vec::new();
    for (mode_name, mode) in Mode::catalogue() {
        let mut cases = tokio::task::JoinSet::new();
        for endpoint in endpoints() {
            let mode = mode.clone();
            cases.spawn(async move {
                let server = HostileServer::start(mode.clone()).await;
                // No renewal task here: the renewal cases are below.
                let client = client(&server, endpoint.login, RenewPolicy::Never);
                let started = Instant::now();
                let outcome = (endpoint.call)(&client).await;
                let elapsed = started.elapsed();
                let expect = expected_for_vault(&mode);
                let mut problems = Vec::new();
                let mut kind_seen = None;
                match outcome {
                    Ok(()) => problems.push("succeeded against a lying server".to_owned()),
                    Err(e) => {
                        let text = e.to_string();
                        kind_seen = Some(e.kind());
                        if e.kind() != expect.kind() {
                            problems.push(format!(
                                "gave {:?}, not {:?}: {text}",
                                e.kind(),
                                expect.kind()
                            ));
                        }
                        if matches!(expect, Expect::TooLarge) && !text.contains("exceeds the limit")
                        {
                            problems.push(format!("not the body limit: {text}"));
                        }
                        if text.contains("s3cr3t") || text.contains("hvs.") {
                            problems.push(format!("the error holds a secret: {text}"));
                        }
                    }
                }
                if elapsed > BUDGET + support::SLACK {
                    problems.push(format!("took {elapsed:?}"));
                }
                if server.bytes_sent() > support::MAX_ENDLESS_BYTES {
                    problems.push(format!("read on to {} bytes", server.bytes_sent()));
                }
                server.set_mode(Mode::Reply(Reply::json(
                    if endpoint.good.is_empty() { 204 } else { 200 },
                    endpoint.good,
                )));
                if let Err(e) = (endpoint.call)(&client).await {
                    problems.push(format!("did not recover: {e}"));
                }
                (endpoint.name, problems, elapsed, kind_seen)
            });
        }
        while let Some(joined) = cases.join_next().await {
            let (name, problems, elapsed, kind) = joined.expect("no case task panics");
            println!("vault | {name} | {mode_name} | {kind:?} | {elapsed:?}");
            for p in problems {
                failures.push(format!("{name} x {mode_name} ({elapsed:?}): {p}"));
            }
        }
    }
    support::assert_no_panics();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const LOOKUP_PATH: &str = "/v1/auth/token/lookup-self";
const RENEW_PATH: &str = "/v1/auth/token/renew-self";
/// A static periodic token of 12 s: renewed from 8 s on, so a failed renewal (at most the
/// 2 s budget) still leaves time to retry before it expires.
const LEASE: &str =
    r#"{"data":{"ttl":12,"creation_ttl":12,"renewable":true,"policies":["default"]}}"#;
const RENEWED: &str = r#"{"auth":{"client_token":"","lease_duration":12,"renewable":true}}"#;

/// Waits up to `limit` for `done`.
async fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// The renewal task (`renew-self`, and `lookup-self` for a static token) in every mode: it
/// keeps trying, never panics, never stops for a transient failure, and renews once the
/// server answers normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewal_task_survives_every_mode() {
    support::watch_panics();
    let mut cases = tokio::task::JoinSet::new();
    for (mode_name, mode) in Mode::catalogue() {
        for lying in [LOOKUP_PATH, RENEW_PATH] {
            let mode = mode.clone();
            cases.spawn(async move {
                let server = HostileServer::start(Mode::Reply(Reply::json(200, KV_READ_OK))).await;
                server.route(LOOKUP_PATH, Mode::Json(LEASE.to_owned()));
                server.route(lying, mode.clone());
                let client = client(&server, Login::Token, RenewPolicy::default());
                let mut problems = Vec::new();
                if let Err(e) = client.kv2("secret").unwrap().read("app/x").await {
                    problems.push(format!("first read: {e}"));
                }
                let calls = || server.requests().iter().filter(|r| r.path == lying).count();
                // The lying endpoint is met and the failure is over: twice for the lookup
                // (so it was retried), once for a renewal (the token must not expire).
                let met = if lying == LOOKUP_PATH {
                    wait_for(Duration::from_secs(20), || calls() >= 2).await
                } else {
                    wait_for(Duration::from_secs(20), || {
                        client.stats().renewal_failures >= 1
                    })
                    .await
                };
                if !met {
                    problems.push(format!(
                        "the lying endpoint was not met: {:?}",
                        client.stats()
                    ));
                }
                if !client.renewal_task_running() {
                    problems.push("the renewal task is not running".to_owned());
                }
                if let Some(e) = client.renewal_error() {
                    problems.push(format!("renewal stopped for a transient failure: {e}"));
                }
                // Normal answers again: renewal resumes.
                server.route(LOOKUP_PATH, Mode::Json(LEASE.to_owned()));
                server.route(RENEW_PATH, Mode::Json(RENEWED.to_owned()));
                if !wait_for(Duration::from_secs(40), || client.stats().renewals >= 1).await {
                    problems.push(format!(
                        "never renewed after recovery: {:?}",
                        client.stats()
                    ));
                }
                let stats = client.stats();
                if stats.renewal_task_panics != 0 {
                    problems.push(format!("the task panicked: {stats:?}"));
                }
                if let Some(e) = client.renewal_error() {
                    problems.push(format!("renewal stopped: {e}"));
                }
                (mode_name, lying, problems, calls())
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = cases.join_next().await {
        let (mode_name, lying, problems, calls) = joined.expect("no case task panics");
        println!("vault renewal | {lying} | {mode_name} | {calls} calls");
        for p in problems {
            failures.push(format!("{lying} x {mode_name}: {p}"));
        }
    }
    support::assert_no_panics();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Absurd TTLs in login, renewal and lookup answers: 2^64-1, 2^64, 1e300 are bounded (the
/// client keeps working), negative and non-numeric ones are a Backend error naming the
/// field; nothing panics, in the caller or in the renewal task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_ttls_are_bounded_or_refused() {
    support::watch_panics();
    let bounded = ["18446744073709551615", "18446744073709551616", "1e300", "0"];
    let refused = ["-1", "-18446744073709551616", "\"1h\"", "true"];
    for (ttl, ok) in bounded
        .iter()
        .map(|t| (*t, true))
        .chain(refused.iter().map(|t| (*t, false)))
    {
        // Login.
        let server = HostileServer::start(Mode::Json(format!(
            r#"{{"auth":{{"client_token":"hvs.t","lease_duration":{ttl},"renewable":true}}}}"#
        )))
        .await;
        let login = client(&server, Login::AppRole, RenewPolicy::default());
        let outcome = login.login().await;
        match (ok, &outcome) {
            (true, Ok(())) => {}
            (false, Err(e)) if e.kind() == ErrorKind::Backend => {
                assert!(e.to_string().contains("lease_duration"), "{e}");
            }
            _ => panic!("login with lease_duration {ttl}: {outcome:?}"),
        }
        // lookup-self.
        let server = HostileServer::start(Mode::Json(format!(
            r#"{{"data":{{"ttl":{ttl},"creation_ttl":{ttl},"renewable":true,"policies":[]}}}}"#
        )))
        .await;
        let token = client(&server, Login::Token, RenewPolicy::default());
        let outcome = token.lookup_self().await;
        match (ok, &outcome) {
            (true, Ok(_)) => {}
            (false, Err(e)) if e.kind() == ErrorKind::Backend => {
                assert!(e.to_string().contains("ttl"), "{e}");
            }
            _ => panic!("lookup-self with ttl {ttl}: {outcome:?}"),
        }
        // The renewal task read that lookup too (a static token's lease): still alive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(token.renewal_task_running(), "ttl {ttl}");
        assert_eq!(token.stats().renewal_task_panics, 0, "ttl {ttl}");
    }
    support::assert_no_panics();
}

/// Absurd TTLs in `renew-self` answers, met by the renewal task: bounded ones renew,
/// refused ones count as failed renewals (retried, not fatal); the task never panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_ttls_in_renewals_never_kill_the_task() {
    support::watch_panics();
    let mut cases = tokio::task::JoinSet::new();
    for (ttl, ok) in [
        ("18446744073709551615", true),
        ("18446744073709551616", true),
        ("1e300", true),
        ("-1", false),
        ("-18446744073709551616", false),
        ("\"1h\"", false),
    ] {
        cases.spawn(async move {
            let server = HostileServer::start(Mode::Reply(Reply::json(200, KV_READ_OK))).await;
            // A 3 s lease: the first renewal comes at 2 s.
            server.route(
                LOOKUP_PATH,
                Mode::Json(
                    r#"{"data":{"ttl":3,"creation_ttl":3,"renewable":true,"policies":[]}}"#
                        .to_owned(),
                ),
            );
            server.route(
                RENEW_PATH,
                Mode::Json(format!(
                    r#"{{"auth":{{"client_token":"","lease_duration":{ttl},"renewable":true}}}}"#
                )),
            );
            let client = client(&server, Login::Token, RenewPolicy::default());
            client.kv2("secret").unwrap().read("app/x").await.unwrap();
            let met = wait_for(Duration::from_secs(15), || {
                let s = client.stats();
                if ok {
                    s.renewals >= 1
                } else {
                    s.renewal_failures >= 1
                }
            })
            .await;
            (ttl, met, client.stats(), client.renewal_task_running())
        });
    }
    while let Some(joined) = cases.join_next().await {
        let (ttl, met, stats, running) = joined.expect("no case task panics");
        assert!(met, "renew-self with lease_duration {ttl}: {stats:?}");
        assert!(
            running,
            "renew-self with lease_duration {ttl}: the task stopped"
        );
        assert_eq!(stats.renewal_task_panics, 0, "{ttl}");
    }
    support::assert_no_panics();
}

/// A server that answers every list with one more sub-folder: a walk (what
/// `SecretStore::list` does) ends with a Backend error, after a bounded number of requests,
/// instead of following it for ever.
#[tokio::test]
async fn an_endless_folder_tree_ends_the_walk() {
    let server =
        HostileServer::start(Mode::Json(r#"{"data":{"keys":["a/","x"]}}"#.to_owned())).await;
    let client = client(&server, Login::Token, RenewPolicy::Never);
    let started = Instant::now();
    let err = client
        .kv2("secret")
        .unwrap()
        .walk("app/")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("folder"), "{err}");
    // One request per level, each level two bytes deeper, up to the longest name.
    assert!(
        server.request_count() <= strongroom_core::MAX_NAME_LEN / 2 + 2,
        "{} requests",
        server.request_count()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
