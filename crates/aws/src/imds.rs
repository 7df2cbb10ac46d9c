//! [`ImdsProvider`]: credentials of the EC2 instance's IAM role, from the instance metadata
//! service (IMDSv2 only).
//!
//! 1. `PUT /latest/api/token` with `x-aws-ec2-metadata-token-ttl-seconds` gets a session
//!    token (kept and reused until shortly before its TTL ends);
//! 2. `GET /latest/meta-data/iam/security-credentials/` names the role;
//! 3. `GET /latest/meta-data/iam/security-credentials/<role>` gives the credentials.
//!
//! IMDSv1 (no token) is never used: it is what SSRF attacks reach. Off EC2 nothing answers,
//! so every request has a 1 s connect and request timeout and at most two attempts: a laptop
//! is not stalled, and the provider reports "not loaded" so a chain can end cleanly. The
//! instance's hop limit (1 by default) is enforced by the instance: inside a container one
//! hop further the token response never arrives, which looks the same as a timeout here.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use strongroom_http::{HttpClient, PlainHttp, RetryPolicy};
use strongroom_sigv4::{Credentials, CredentialsError, Env, ProvideCredentials, ProvideFuture};
use zeroize::Zeroizing;

use crate::error::AwsError;

const PROVIDER: &str = "imds";
/// The IPv4 endpoint of the instance metadata service.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
const IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";
/// How long a session token is asked to live (6 hours, the maximum).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(21_600);
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// Credentials from IMDSv2.
///
/// Reads `AWS_EC2_METADATA_DISABLED` (`true` turns it off: "not loaded"),
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT` (tests, proxies: `https`, or plain `http` only to a
/// loopback or link-local address, else an invalid-configuration error) and
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (`IPv6`). Wrap it in a
/// [`CachingProvider`](strongroom_sigv4::CachingProvider) (the default chain does).
pub struct ImdsProvider {
    env: Env,
    http: HttpClient,
    endpoint: Option<String>,
    token_ttl: Duration,
    token: Mutex<Option<Token>>,
}

struct Token {
    value: Zeroizing<String>,
    /// When to stop using it: a minute before the TTL ends.
    use_until: Instant,
}

impl fmt::Debug for ImdsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsProvider")
            .field("endpoint", &self.endpoint)
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

impl ImdsProvider {
    /// Reads the process environment, with 1 s timeouts.
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built.
    pub fn new() -> Result<Self, AwsError> {
        Self::with_env(Env::process())
    }

    /// Reads the given environment.
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built.
    pub fn with_env(env: Env) -> Result<Self, AwsError> {
        let http = HttpClient::builder()
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(1))
            .retry_policy(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_max_total(Duration::from_secs(3)),
            )
            // IMDS speaks only plain HTTP, also at its IPv6 address (not link-local).
            .plain_http(PlainHttp::Anywhere)
            .build()
            .map_err(|source| AwsError::Http {
                service: PROVIDER,
                operation: "build client",
                source,
            })?;
        Ok(Self {
            env,
            http,
            endpoint: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            token: Mutex::new(None),
        })
    }

    /// Uses this endpoint (`http://host:port`) whatever the environment says. The same rule
    /// as for `AWS_EC2_METADATA_SERVICE_ENDPOINT` applies when credentials are loaded:
    /// `https`, or plain `http` to a loopback or link-local address.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into().trim_end_matches('/').to_owned());
        self
    }

    /// Asks for session tokens living `ttl` (1 s to 6 h; default 6 h).
    #[must_use]
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl.clamp(Duration::from_secs(1), DEFAULT_TOKEN_TTL);
        self
    }

    /// The endpoint to ask. An override (the builder's or `AWS_EC2_METADATA_SERVICE_ENDPOINT`)
    /// must be `https`, or plain `http` to a loopback or link-local host: the session token
    /// and the role's credentials would otherwise cross the network in clear (the rule the
    /// AWS SDKs apply to the ECS full URI).
    fn base(&self) -> Result<String, CredentialsError> {
        let (endpoint, source) = if let Some(endpoint) = &self.endpoint {
            (endpoint.clone(), "the configured IMDS endpoint")
        } else if let Some(endpoint) = self.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            (
                endpoint.trim_end_matches('/').to_owned(),
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            )
        } else {
            return Ok(
                match self.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
                    Some(mode) if mode.eq_ignore_ascii_case("ipv6") => IPV6_ENDPOINT.to_owned(),
                    _ => DEFAULT_IMDS_ENDPOINT.to_owned(),
                },
            );
        };
        check_override(&endpoint, source)?;
        Ok(endpoint)
    }

    fn disabled(&self) -> bool {
        self.env
            .get("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Loads the role's credentials.
    ///
    /// # Errors
    /// [`CredentialsError::NotLoaded`] when IMDS is disabled, unreachable or has no role;
    /// [`CredentialsError::Provider`] when it answers wrongly.
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        if self.disabled() {
            return Err(CredentialsError::not_loaded(
                PROVIDER,
                "AWS_EC2_METADATA_DISABLED is true",
            ));
        }
        let base = self.base()?;
        // One retry with a fresh token if the cached one was refused (it may have expired
        // early, or the instance restarted).
        for fresh in [false, true] {
            let token = self.token(&base, fresh).await?;
            let response = self.get(&base, CREDENTIALS_PATH, &token).await?;
            if response.status == StatusCode::UNAUTHORIZED && !fresh {
                continue;
            }
            let role = match response.status {
                StatusCode::OK => role_name(&response.body)?,
                StatusCode::NOT_FOUND => {
                    return Err(CredentialsError::not_loaded(
                        PROVIDER,
                        "the instance has no IAM role",
                    ));
                }
                status => return Err(unexpected(status, "role name")),
            };
            let path = format!("{CREDENTIALS_PATH}{role}");
            let response = self.get(&base, &path, &token).await?;
            if response.status == StatusCode::UNAUTHORIZED && !fresh {
                continue;
            }
            if response.status != StatusCode::OK {
                return Err(unexpected(response.status, "role credentials"));
            }
            let credentials = crate::credentials_json::parse(PROVIDER, &response.body);
            crate::transport::wipe(response.body);
            tracing::debug!(provider = PROVIDER, role = %role, ok = credentials.is_ok(), "loaded credentials");
            return credentials;
        }
        Err(CredentialsError::provider(
            PROVIDER,
            "IMDS refused a freshly issued session token",
        ))
    }

    /// The session token: the cached one unless `fresh` or near its end, else a new one.
    async fn token(&self, base: &str, fresh: bool) -> Result<Zeroizing<String>, CredentialsError> {
        if !fresh
            && let Some(token) = lock(&self.token).as_ref()
            && Instant::now() < token.use_until
        {
            return Ok(token.value.clone());
        }
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{base}/latest/api/token"))
            .header(TOKEN_TTL_HEADER, self.token_ttl.as_secs().to_string())
            .body(Bytes::new())
            .map_err(|e| {
                CredentialsError::invalid_configuration(PROVIDER, format!("bad IMDS endpoint: {e}"))
            })?;
        let response = self.send(request).await?;
        match response.status {
            StatusCode::OK => {}
            StatusCode::FORBIDDEN => {
                return Err(CredentialsError::not_loaded(
                    PROVIDER,
                    "IMDS refused a session token (metadata access is disabled on this instance)",
                ));
            }
            status => return Err(unexpected(status, "session token")),
        }
        let value = Zeroizing::new(
            std::str::from_utf8(&response.body)
                .map_err(|_| CredentialsError::provider(PROVIDER, "session token is not text"))?
                .trim()
                .to_owned(),
        );
        crate::transport::wipe(response.body);
        if value.is_empty() {
            return Err(CredentialsError::provider(PROVIDER, "empty session token"));
        }
        // `token_ttl` is clamped to 1 s ..= 6 h by the builder, so neither step can overflow;
        // checked all the same (a value from a test or a future setter may say anything).
        let margin = Duration::from_secs(60).min(self.token_ttl.checked_div(2).unwrap_or_default());
        let now = Instant::now();
        *lock(&self.token) = Some(Token {
            value: value.clone(),
            use_until: now
                .checked_add(self.token_ttl.saturating_sub(margin))
                .unwrap_or(now),
        });
        Ok(value)
    }

    async fn get(
        &self,
        base: &str,
        path: &str,
        token: &str,
    ) -> Result<strongroom_http::Response, CredentialsError> {
        let mut value = http::HeaderValue::from_str(token).map_err(|_| {
            CredentialsError::provider(PROVIDER, "session token is not a valid header value")
        })?;
        value.set_sensitive(true);
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{base}{path}"))
            .header(TOKEN_HEADER, value)
            .body(Bytes::new())
            .map_err(|e| {
                CredentialsError::invalid_configuration(PROVIDER, format!("bad IMDS URL: {e}"))
            })?;
        self.send(request).await
    }

    async fn send(
        &self,
        request: Request<Bytes>,
    ) -> Result<strongroom_http::Response, CredentialsError> {
        self.http.send(request).await.map_err(|e| {
            if e.is_retryable() {
                // Off EC2 (or one hop too far) nothing answers: not an error for a chain.
                CredentialsError::not_loaded(PROVIDER, format!("IMDS is not reachable: {e}"))
            } else {
                CredentialsError::provider(PROVIDER, e)
            }
        })
    }
}

impl ProvideCredentials for ImdsProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}

/// The role name IMDS answered: its first non-empty line, which must be an IAM role name
/// (1 to 64 of `A-Za-z0-9+=,.@_-`) before it goes into the next request's path. An empty
/// answer means the instance has no role; anything else that is not a role name is a
/// misbehaving server, not a configuration error.
fn role_name(body: &[u8]) -> Result<String, CredentialsError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        CredentialsError::provider(PROVIDER, "IMDS answered a role name that is not UTF-8")
    })?;
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err(CredentialsError::not_loaded(
            PROVIDER,
            "the instance has no IAM role",
        ));
    };
    let valid = (1..=64).contains(&line.len())
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if valid {
        Ok(line.to_owned())
    } else {
        Err(CredentialsError::provider(
            PROVIDER,
            "IMDS answered a role name that is not an IAM role name",
        ))
    }
}

/// Refuses an endpoint override that would send the token or credentials over the network
/// in clear: it must be `https://host`, or `http://` to loopback (127.0.0.0/8, `::1`,
/// `localhost`), link-local (169.254.0.0/16, `fe80::/10`) or the IMDS IPv6 address.
fn check_override(endpoint: &str, source: &str) -> Result<(), CredentialsError> {
    let invalid = |why: &str| {
        CredentialsError::invalid_configuration(
            PROVIDER,
            format!(
                "{source} {endpoint:?} {why}: use https, or http to a loopback or link-local address"
            ),
        )
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| invalid("is not a valid URL"))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_local_or_imds(host) => Ok(()),
        Some("http") => Err(invalid("is plain http to a host that is not local")),
        _ => Err(invalid("is not an http(s) URL")),
    }
}

fn is_local_or_imds(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unicast_link_local()
                || ip == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
        Err(_) => false,
    }
}

/// IMDS answered `status` for `what`. Carried as an [`AwsError::Service`], so that a 5xx or
/// a 429 stays recognisably transient ([`AwsError::into_core`] maps it to Unavailable).
fn unexpected(status: StatusCode, what: &'static str) -> CredentialsError {
    CredentialsError::provider(
        PROVIDER,
        AwsError::service(
            PROVIDER,
            what,
            status,
            "",
            &format!("IMDS answered {status} for the {what}"),
            None,
        ),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(vars: &[(&str, &str)]) -> ImdsProvider {
        ImdsProvider::with_env(Env::from_vars(vars.iter().copied())).unwrap()
    }

    #[test]
    fn endpoint_overrides_must_be_local_or_https() {
        let allowed = [
            "http://127.0.0.1:1234",
            "http://127.9.0.1",
            "http://localhost:80/",
            "http://[::1]:8080",
            "http://169.254.169.254",
            "http://[fe80::1]",
            "http://[fd00:ec2::254]",
            "https://imds.example.com",
        ];
        for endpoint in allowed {
            let p = provider(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)]);
            assert!(p.base().is_ok(), "{endpoint}");
            let p = provider(&[]).endpoint(endpoint);
            assert!(p.base().is_ok(), "{endpoint}");
        }
        let refused = [
            "http://10.0.0.5",
            "http://imds.example.com",
            "http://192.168.1.1:80",
            "http://[fd00::1]",
            "ftp://127.0.0.1",
            "127.0.0.1:80",
            "not a url",
        ];
        for endpoint in refused {
            let err = provider(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)])
                .base()
                .unwrap_err();
            assert!(
                matches!(err, CredentialsError::InvalidConfiguration { .. }),
                "{endpoint}: {err:?}"
            );
            assert!(
                err.to_string()
                    .contains("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
                "{err}"
            );
        }
        assert_eq!(provider(&[]).base().unwrap(), DEFAULT_IMDS_ENDPOINT);
        assert_eq!(
            provider(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")])
                .base()
                .unwrap(),
            IPV6_ENDPOINT
        );
    }

    #[tokio::test]
    async fn a_refused_override_sends_nothing() {
        let err = provider(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.1.2.3")])
            .load()
            .await
            .unwrap_err();
        assert!(
            matches!(err, CredentialsError::InvalidConfiguration { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name(b"app-role\n").unwrap(), "app-role");
        assert_eq!(role_name(b"\n  a+=,.@_-9 \nsecond").unwrap(), "a+=,.@_-9");
        assert!(role_name(b"").unwrap_err().is_not_loaded());
        assert!(role_name(b" \n").unwrap_err().is_not_loaded());
        for bad in [&b"<html>"[..], b"a b", b"../x", b"\xff", &[b'a'; 65]] {
            let err = role_name(bad).unwrap_err();
            assert!(matches!(err, CredentialsError::Provider { .. }), "{bad:?}");
        }
    }
}
