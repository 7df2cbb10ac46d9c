//! The network credential providers against the lying server: IMDSv2 (token, role,
//! credentials), the ECS container endpoint, STS AssumeRole and AssumeRoleWithWebIdentity,
//! in every mode, and credentials whose `Expiration` is absurd, far off or past.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom_aws::{
    AssumeRoleProvider, AssumeRoleRequest, AwsError, EcsProvider, ImdsProvider, StsClient,
    WebIdentityProvider,
};
use strongroom_core::ErrorKind;
use strongroom_itests::hostile::{HostileServer, Mode, Reply};
use strongroom_sigv4::{
    CachingProvider, Credentials, CredentialsError, Env, ProvideCredentials, StaticProvider,
};

use crate::support::{self, SLACK};

const TOKEN_PATH: &str = "/latest/api/token";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/app-role";
const ECS_PATH: &str = "/v2/credentials/abc";

fn json_document(expiration: &str) -> String {
    format!(
        r#"{{"Code":"Success","AccessKeyId":"ASIAHOSTILE","SecretAccessKey":"hostile-secret","Token":"hostile-token","Expiration":"{expiration}"}}"#
    )
}

fn sts_document(action: &str, expiration: &str) -> String {
    format!(
        "<{action}Response><{action}Result><Credentials><AccessKeyId>ASIAHOSTILE</AccessKeyId>\
         <SecretAccessKey>hostile-secret</SecretAccessKey><SessionToken>hostile-token</SessionToken>\
         <Expiration>{expiration}</Expiration></Credentials></{action}Result></{action}Response>"
    )
}

const GOOD_EXPIRATION: &str = "2099-01-01T00:00:00Z";

/// The providers, and which path of the server each lies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    ImdsToken,
    ImdsRole,
    ImdsCredentials,
    Ecs,
    AssumeRole,
    WebIdentity,
}

impl Endpoint {
    const ALL: [Self; 6] = [
        Self::ImdsToken,
        Self::ImdsRole,
        Self::ImdsCredentials,
        Self::Ecs,
        Self::AssumeRole,
        Self::WebIdentity,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ImdsToken => "IMDSv2 token",
            Self::ImdsRole => "IMDS role name",
            Self::ImdsCredentials => "IMDS credentials",
            Self::Ecs => "ECS credentials",
            Self::AssumeRole => "STS AssumeRole",
            Self::WebIdentity => "STS AssumeRoleWithWebIdentity",
        }
    }

    fn is_imds(self) -> bool {
        matches!(
            self,
            Self::ImdsToken | Self::ImdsRole | Self::ImdsCredentials
        )
    }

    /// The longest a load may take: the provider's own retry budget.
    fn budget(self) -> Duration {
        match self {
            // ImdsProvider: 1 s per attempt, 3 s in all; a second token on a 401.
            Self::ImdsToken | Self::ImdsRole | Self::ImdsCredentials => Duration::from_secs(3),
            // EcsProvider: 2 s per attempt, 5 s in all.
            Self::Ecs => Duration::from_secs(5),
            Self::AssumeRole | Self::WebIdentity => support::BUDGET,
        }
    }

    /// The good answers of every path this endpoint's provider reads, given the credentials
    /// step's answer.
    fn answer_well(self, server: &HostileServer, credentials: Mode) {
        match self {
            Self::ImdsToken | Self::ImdsRole | Self::ImdsCredentials => {
                server.route(
                    TOKEN_PATH,
                    Mode::Reply(Reply::text(200, "AQAEAhostiletoken==")),
                );
                server.route(ROLE_PATH, Mode::Reply(Reply::text(200, "app-role\n")));
                server.route(CREDS_PATH, credentials);
            }
            Self::Ecs | Self::AssumeRole | Self::WebIdentity => server.set_mode(credentials),
        }
    }

    fn good(self, expiration: &str) -> Mode {
        match self {
            Self::ImdsToken | Self::ImdsRole | Self::ImdsCredentials | Self::Ecs => {
                Mode::Reply(Reply::json(200, json_document(expiration)))
            }
            Self::AssumeRole => {
                Mode::Reply(Reply::xml(200, sts_document("AssumeRole", expiration)))
            }
            Self::WebIdentity => Mode::Reply(Reply::xml(
                200,
                sts_document("AssumeRoleWithWebIdentity", expiration),
            )),
        }
    }

    /// A server lying on this endpoint's path in `mode`, answering its other paths well.
    async fn server(self, mode: Mode) -> HostileServer {
        let server = HostileServer::start(mode.clone()).await;
        if self.is_imds() {
            self.answer_well(&server, self.good(GOOD_EXPIRATION));
            let lying_path = match self {
                Self::ImdsToken => TOKEN_PATH,
                Self::ImdsRole => ROLE_PATH,
                _ => CREDS_PATH,
            };
            server.route(lying_path, mode);
        }
        server
    }

    /// The provider under test, pointed at `server`, behind the cache every client uses.
    fn provider(
        self,
        server: &HostileServer,
        dir: &tempfile::TempDir,
    ) -> Box<dyn ProvideCredentials> {
        let url = server.url();
        let sts =
            || StsClient::new(support::http_client(), "us-east-1", url).expect("an STS client");
        match self {
            Self::ImdsToken | Self::ImdsRole | Self::ImdsCredentials => {
                Box::new(CachingProvider::new(
                    ImdsProvider::with_env(Env::from_vars([(
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        url,
                    )]))
                    .expect("an IMDS provider"),
                ))
            }
            Self::Ecs => Box::new(CachingProvider::new(
                EcsProvider::with_env(Env::from_vars([(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    format!("{url}{ECS_PATH}").as_str(),
                )]))
                .expect("an ECS provider"),
            )),
            Self::AssumeRole => Box::new(CachingProvider::new(AssumeRoleProvider::new(
                sts(),
                Arc::new(StaticProvider::new(Credentials::new(
                    "AKIDBASE",
                    "base-secret",
                ))),
                AssumeRoleRequest::new("arn:aws:iam::123456789012:role/app"),
            ))),
            Self::WebIdentity => {
                let file = dir.path().join("token.jwt");
                std::fs::write(&file, "eyJhbGciOi.hostile.jwt\n").expect("write the token file");
                Box::new(CachingProvider::new(WebIdentityProvider::new(
                    sts(),
                    "arn:aws:iam::123456789012:role/app",
                    file,
                )))
            }
        }
    }
}

/// A [`CredentialsError`] without its fields, or success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Loaded,
    NotLoaded,
    Provider,
    Expired,
    Other,
}

fn outcome(result: &Result<Credentials, CredentialsError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Loaded,
        Err(CredentialsError::NotLoaded { .. }) => Outcome::NotLoaded,
        Err(CredentialsError::Provider { .. }) => Outcome::Provider,
        Err(CredentialsError::Expired { .. }) => Outcome::Expired,
        Err(_) => Outcome::Other,
    }
}

/// What each endpoint must give in each mode.
///
/// IMDS reports a transport failure as "not loaded" (off EC2 nothing answers, and the
/// default chain must end cleanly); every other failure of every provider is a provider
/// error. The IMDS session token is opaque text: a server may answer any visible-ASCII token
/// and only the next step can tell it was wrong, so a text token that the later steps accept
/// loads.
fn expected(endpoint: Endpoint, mode: &Mode) -> Outcome {
    let transport = matches!(
        mode,
        Mode::StalledHead
            | Mode::StalledBody
            | Mode::TruncatedChunked
            | Mode::Informational
            | Mode::ResetMidBody
            | Mode::CloseAtOnce
    );
    match (endpoint, mode) {
        (e, _) if e.is_imds() && transport => Outcome::NotLoaded,
        (Endpoint::ImdsToken, Mode::InvalidJson | Mode::WrongContentType) => Outcome::Loaded,
        _ => Outcome::Provider,
    }
}

/// What a Secrets Manager call signed by this provider fails with: a transient failure of
/// the endpoint (5xx, timeouts, broken connections) is Unavailable, so a caller retries; an
/// answer that gives no credentials (or IMDS out of reach: "not loaded") is Unauthenticated.
fn expected_core(got: Outcome, mode: &Mode) -> Option<ErrorKind> {
    let transient = matches!(
        mode,
        Mode::RetryAfter(_)
            | Mode::StalledHead
            | Mode::StalledBody
            | Mode::TruncatedChunked
            | Mode::Informational
            | Mode::ResetMidBody
            | Mode::CloseAtOnce
    ) || matches!(mode, Mode::Status(code) if (500..600).contains(code));
    match got {
        Outcome::Loaded => None,
        Outcome::Provider if transient => Some(ErrorKind::Unavailable),
        _ => Some(ErrorKind::Unauthenticated),
    }
}

type Load<'a> = Pin<Box<dyn Future<Output = Result<Credentials, CredentialsError>> + Send + 'a>>;

fn load(provider: &dyn ProvideCredentials) -> Load<'_> {
    Box::pin(provider.provide_credentials())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_in_every_mode() {
    support::watch_panics();
    let mut failures = Vec::new();
    for (mode_name, mode) in Mode::catalogue() {
        let mut cases = tokio::task::JoinSet::new();
        for endpoint in Endpoint::ALL {
            let mode = mode.clone();
            cases.spawn(async move {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let server = endpoint.server(mode.clone()).await;
                let provider = endpoint.provider(&server, &dir);
                let started = Instant::now();
                let result = load(provider.as_ref()).await;
                let elapsed = started.elapsed();
                let got = outcome(&result);
                let mut problems = Vec::new();
                let want = expected(endpoint, &mode);
                if got != want {
                    problems.push(format!("gave {got:?}, not {want:?}: {result:?}"));
                }
                let core = result.as_ref().err().map(|e| {
                    AwsError::Credentials(e.clone())
                        .into_core(None, None)
                        .kind()
                });
                if core != expected_core(got, &mode) {
                    problems.push(format!("maps to {core:?}: {result:?}"));
                }
                if let Err(e) = &result {
                    let text = format!("{e} {e:?} {:?}", std::error::Error::source(e));
                    if text.contains("hostile-secret") || text.contains("hostile-token") {
                        problems.push("the error holds a secret".to_owned());
                    }
                }
                if elapsed > endpoint.budget() + SLACK {
                    problems.push(format!("took {elapsed:?}"));
                }
                if server.bytes_sent() > support::MAX_ENDLESS_BYTES {
                    problems.push(format!("read on to {} bytes", server.bytes_sent()));
                }
                endpoint.answer_well(&server, endpoint.good(GOOD_EXPIRATION));
                server.set_mode(endpoint.good(GOOD_EXPIRATION));
                if let Err(e) = load(provider.as_ref()).await {
                    problems.push(format!("did not recover: {e:?}"));
                }
                (endpoint.name(), problems, elapsed, got, core)
            });
        }
        while let Some(joined) = cases.join_next().await {
            let (endpoint, problems, elapsed, got, core) = joined.expect("no case task panics");
            println!("credentials | {endpoint} | {mode_name} | {got:?} {core:?} | {elapsed:?}");
            for p in problems {
                failures.push(format!("{endpoint} x {mode_name} ({elapsed:?}): {p}"));
            }
        }
    }
    support::assert_no_panics();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Expirations from the wire: far future is accepted, past is refused as expired, anything
/// unreadable (2^64, negative, an absurd year, garbage) is a provider error; never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_expirations() {
    support::watch_panics();
    let table: [(&str, Outcome); 8] = [
        ("9999-12-31T23:59:59Z", Outcome::Loaded),
        ("2000-01-01T00:00:00Z", Outcome::Expired),
        ("1970-01-01T00:00:00Z", Outcome::Expired),
        ("0000-01-01T00:00:00Z", Outcome::Expired),
        ("18446744073709551616", Outcome::Provider),
        ("-1", Outcome::Provider),
        ("+275760-09-13T00:00:00Z", Outcome::Provider),
        ("tomorrow", Outcome::Provider),
    ];
    let mut failures = Vec::new();
    for endpoint in [
        Endpoint::ImdsCredentials,
        Endpoint::Ecs,
        Endpoint::AssumeRole,
        Endpoint::WebIdentity,
    ] {
        for (expiration, want) in table {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let server = endpoint.server(endpoint.good(expiration)).await;
            let provider = endpoint.provider(&server, &dir);
            let result = load(provider.as_ref()).await;
            let got = outcome(&result);
            println!("expiration | {} | {expiration} | {got:?}", endpoint.name());
            if got != want {
                failures.push(format!(
                    "{} x {expiration}: {got:?}, not {want:?}: {result:?}",
                    endpoint.name()
                ));
            }
            // Loaded credentials are cached: asking again must not call the server again.
            if got == Outcome::Loaded {
                let before = server.request_count();
                let again = load(provider.as_ref()).await;
                if again.is_err() || server.request_count() != before {
                    failures.push(format!("{} x {expiration}: not cached", endpoint.name()));
                }
            }
        }
    }
    support::assert_no_panics();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
