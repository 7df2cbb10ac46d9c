//! IMDSv2 and ECS container credentials against small HTTP responders on loopback that this
//! test starts: the real endpoints (169.254.169.254, 169.254.170.2) cannot be reached here,
//! and nothing else serves those protocols. The responders check what a real one checks
//! (the token TTL header, the session token, the authorization token) and answer as AWS
//! documents.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strongroom_aws::{ChainProvider, EcsProvider, ImdsProvider};
use strongroom_sigv4::{CredentialsError, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the responder saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

type Route = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

/// An HTTP/1.1 responder on 127.0.0.1: one request per connection, answered by `route`.
struct Responder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Responder {
    async fn start(route: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let route: Route = Arc::new(route);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let route = Arc::clone(&route);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let mut lines = text.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_owned();
                    let path = first.next().unwrap_or_default().to_owned();
                    let headers = lines
                        .take_while(|l| !l.is_empty())
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let request = Seen {
                        method,
                        path,
                        headers,
                    };
                    let (status, body) = route(&request);
                    log.lock().unwrap().push(request);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const SECRET: &str = "imds-secret-access-key-EXAMPLE";
const SESSION: &str = "imds-session-token-EXAMPLE";

fn credentials_json() -> String {
    format!(
        r#"{{"Code":"Success","LastUpdated":"2024-01-01T00:00:00Z","Type":"AWS-HMAC",
        "AccessKeyId":"ASIAIMDS","SecretAccessKey":"{SECRET}","Token":"{SESSION}",
        "Expiration":"2099-01-01T00:00:00Z"}}"#
    )
}

/// An IMDSv2 responder: tokens `tok-<n>`, only the latest accepted, role `itest-role`.
async fn imds() -> (Responder, Arc<Mutex<u32>>) {
    let generation = Arc::new(Mutex::new(0u32));
    let g = Arc::clone(&generation);
    let responder = Responder::start(move |req| {
        let mut generation = g.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("PUT", "/latest/api/token") => {
                match req.headers.get("x-aws-ec2-metadata-token-ttl-seconds") {
                    Some(ttl) if ttl.parse::<u32>().is_ok_and(|t| (1..=21_600).contains(&t)) => {
                        *generation += 1;
                        (200, format!("tok-{generation}"))
                    }
                    _ => (400, String::new()),
                }
            }
            ("GET", path) => {
                if req.headers.get("x-aws-ec2-metadata-token") != Some(&format!("tok-{generation}"))
                {
                    return (401, String::new());
                }
                match path {
                    "/latest/meta-data/iam/security-credentials/" => {
                        (200, "itest-role\n".to_owned())
                    }
                    "/latest/meta-data/iam/security-credentials/itest-role" => {
                        (200, credentials_json())
                    }
                    _ => (404, String::new()),
                }
            }
            _ => (405, String::new()),
        }
    })
    .await;
    (responder, generation)
}

fn imds_env(url: &str) -> Env {
    Env::from_vars([("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)])
}

#[tokio::test]
async fn imds_v2_token_then_role_then_credentials() {
    let (server, _) = imds().await;
    let provider = ImdsProvider::with_env(imds_env(&server.url)).unwrap();
    let creds = provider.load().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
    assert_eq!(creds.secret_access_key(), SECRET);
    assert_eq!(creds.session_token(), Some(SESSION));
    assert!(creds.expiry().is_some());
    let seen = server.seen();
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].path, "/latest/api/token");
    assert_eq!(
        seen[0]
            .headers
            .get("x-aws-ec2-metadata-token-ttl-seconds")
            .map(String::as_str),
        Some("21600")
    );
    assert_eq!(seen.len(), 3);

    // The token is reused: a second load makes no PUT.
    provider.load().await.unwrap();
    let puts = server.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 1);

    let shown = format!("{creds:?} {provider:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(SESSION) && !shown.contains("tok-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn imds_token_ttl_is_sent_and_honoured() {
    let (server, _) = imds().await;
    let provider = ImdsProvider::with_env(imds_env(&server.url))
        .unwrap()
        .token_ttl(Duration::from_secs(2));
    provider.load().await.unwrap();
    assert_eq!(
        server.seen()[0]
            .headers
            .get("x-aws-ec2-metadata-token-ttl-seconds")
            .map(String::as_str),
        Some("2")
    );
    // Used until one second before its end: after that a new token is fetched.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    provider.load().await.unwrap();
    let puts = server.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 2);
}

#[tokio::test]
async fn imds_refetches_a_refused_token() {
    let (server, generation) = imds().await;
    let provider = ImdsProvider::with_env(imds_env(&server.url)).unwrap();
    provider.load().await.unwrap();
    // The instance forgets its tokens (as after a restart): the cached one gets 401.
    *generation.lock().unwrap() += 10;
    let creds = provider.load().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
    assert!(server.seen().iter().any(|s| {
        s.method == "GET"
            && s.headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                == Some("tok-1")
    }));
}

#[tokio::test]
async fn imds_disabled_by_env_sends_nothing() {
    let (server, _) = imds().await;
    let env = Env::from_vars([
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let err = ImdsProvider::with_env(env)
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(err.is_not_loaded(), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn imds_that_never_answers_times_out_quickly() {
    // Accepts connections and never answers: what a container one hop too far sees (the
    // token response is dropped on the way back).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let provider = ImdsProvider::with_env(imds_env(&url)).unwrap();
    let started = Instant::now();
    let err = provider.load().await.unwrap_err();
    assert!(err.is_not_loaded(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn imds_refused_connection_and_forbidden_token_are_not_loaded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = ImdsProvider::with_env(imds_env(&url))
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(err.is_not_loaded(), "{err}");

    let forbidden = Responder::start(|_| (403, String::new())).await;
    let err = ImdsProvider::with_env(imds_env(&forbidden.url))
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(err.is_not_loaded(), "{err}");

    let no_role = Responder::start(|req| match req.method.as_str() {
        "PUT" => (200, "t".to_owned()),
        _ => (404, String::new()),
    })
    .await;
    let err = ImdsProvider::with_env(imds_env(&no_role.url))
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(err.is_not_loaded(), "{err}");
}

const ECS_TOKEN: &str = "ecs-authorization-token-EXAMPLE";

async fn ecs() -> Responder {
    Responder::start(|req| {
        if req.path != "/creds" {
            return (404, String::new());
        }
        match req.headers.get("authorization").map(String::as_str) {
            Some(ECS_TOKEN) => (200, credentials_json().replace("\"Code\":\"Success\",", "")),
            _ => (401, r#"{"message":"bad token"}"#.to_owned()),
        }
    })
    .await
}

#[tokio::test]
async fn ecs_full_uri_with_token_file_and_env_token() {
    let server = ecs().await;
    let uri = format!("{}/creds", server.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{ECS_TOKEN}\n")).unwrap();
    let env = Env::from_vars([
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            file.to_str().unwrap(),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-env-token"),
    ]);
    let creds = EcsProvider::with_env(env).unwrap().load().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
    assert_eq!(creds.session_token(), Some(SESSION));

    let env = Env::from_vars([
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN),
    ]);
    assert!(EcsProvider::with_env(env).unwrap().load().await.is_ok());

    // A wrong token is refused, and the error does not repeat it.
    let env = Env::from_vars([
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-value"),
    ]);
    let err = EcsProvider::with_env(env)
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(matches!(err, CredentialsError::Provider { .. }), "{err}");
    let text = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!text.contains("wrong-token-value"), "{text}");
    assert!(text.contains("401"), "{text}");
}

#[tokio::test]
async fn ecs_refuses_remote_plain_http_without_sending() {
    let env = Env::from_vars([
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://192.0.2.10/creds",
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN),
    ]);
    let err = EcsProvider::with_env(env)
        .unwrap()
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(err, CredentialsError::InvalidConfiguration { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn default_chain_reaches_the_container_endpoint() {
    let server = ecs().await;
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("{}/creds", server.url);
    let env = Env::from_vars([
        ("HOME", dir.path().to_str().unwrap()),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let creds = ChainProvider::default_chain(env)
        .unwrap()
        .load()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
}

#[tokio::test]
async fn default_chain_falls_through_to_imds() {
    let (server, _) = imds().await;
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_vars([
        ("HOME", dir.path().to_str().unwrap()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url.as_str()),
    ]);
    let creds = ChainProvider::default_chain(env)
        .unwrap()
        .load()
        .await
        .unwrap();
    assert_eq!(creds.session_token(), Some(SESSION));
}
