//! [`EcsProvider`]: credentials from the ECS task role or EKS Pod Identity endpoint.
//!
//! - `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`: `GET http://169.254.170.2<relative uri>` (ECS).
//! - `AWS_CONTAINER_CREDENTIALS_FULL_URI`: a full URL, allowed only over `https`, or over
//!   `http` to loopback or the ECS/EKS agent addresses (169.254.170.2, 169.254.170.23,
//!   fd00:ec2::23), as in the AWS SDKs: anything else could send the authorization token and
//!   receive credentials in clear over the network.
//! - `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read at every call, so a rotated token is
//!   seen) or else `AWS_CONTAINER_AUTHORIZATION_TOKEN`: sent as the `Authorization` header.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use strongroom_http::{HttpClient, PlainHttp, RetryPolicy};
use strongroom_sigv4::{Credentials, CredentialsError, Env, ProvideCredentials, ProvideFuture};
use zeroize::Zeroizing;

use crate::error::AwsError;

const PROVIDER: &str = "ecs";
/// The ECS agent's credentials address, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_CREDENTIALS_HOST: &str = "169.254.170.2";

/// Credentials from the container credentials endpoint.
pub struct EcsProvider {
    env: Env,
    http: HttpClient,
}

impl fmt::Debug for EcsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsProvider").finish_non_exhaustive()
    }
}

impl EcsProvider {
    /// Reads the process environment.
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built.
    pub fn new() -> Result<Self, AwsError> {
        Self::with_env(Env::process())
    }

    /// Reads the given environment (at each call).
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built.
    pub fn with_env(env: Env) -> Result<Self, AwsError> {
        let http = HttpClient::builder()
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(2))
            .retry_policy(RetryPolicy::default().with_max_total(Duration::from_secs(5)))
            // The host is checked by `target` below (https, loopback or the agent addresses),
            // which is stricter than the client's own rule and admits fd00:ec2::23.
            .plain_http(PlainHttp::Anywhere)
            .build()
            .map_err(|source| AwsError::Http {
                service: PROVIDER,
                operation: "build client",
                source,
            })?;
        Ok(Self { env, http })
    }

    /// The URL to ask, from the environment.
    fn target(&self) -> Result<Uri, CredentialsError> {
        if let Some(relative) = self.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let path = if relative.starts_with('/') {
                relative
            } else {
                format!("/{relative}")
            };
            return format!("http://{ECS_CREDENTIALS_HOST}{path}")
                .parse()
                .map_err(|_| {
                    CredentialsError::invalid_configuration(
                        PROVIDER,
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a valid path",
                    )
                });
        }
        let Some(full) = self.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
            return Err(CredentialsError::not_loaded(
                PROVIDER,
                "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set",
            ));
        };
        let uri: Uri = full.parse().map_err(|_| {
            CredentialsError::invalid_configuration(
                PROVIDER,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL",
            )
        })?;
        let host = uri.host().unwrap_or_default();
        match uri.scheme_str() {
            Some("https") if !host.is_empty() => Ok(uri),
            Some("http") if is_allowed_plain_host(host) => Ok(uri),
            _ => Err(CredentialsError::invalid_configuration(
                PROVIDER,
                format!(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI host {host:?} is not allowed: use https, \
                     a loopback address or the ECS/EKS agent address"
                ),
            )),
        }
    }

    /// The authorization token, if one is configured.
    fn authorization(&self) -> Result<Option<Zeroizing<String>>, CredentialsError> {
        let token = if let Some(path) = self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(crate::token_file::read(
                PROVIDER,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                std::path::Path::new(&path),
            )?)
        } else {
            self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(|t| {
                // The variable's copy is wiped too, once trimmed.
                let t = Zeroizing::new(t);
                Zeroizing::new(t.trim().to_owned())
            })
        };
        match token {
            Some(t) if t.contains(['\r', '\n']) => Err(CredentialsError::invalid_configuration(
                PROVIDER,
                "the container authorization token contains a line break",
            )),
            other => Ok(other),
        }
    }

    /// Loads the credentials.
    ///
    /// # Errors
    /// [`CredentialsError::NotLoaded`] when no variable is set; otherwise a configuration or
    /// provider error (the endpoint was configured, so its failure is not skipped).
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        let uri = self.target()?;
        let mut request = Request::builder().method(Method::GET).uri(uri);
        if let Some(token) = self.authorization()? {
            let mut value = http::HeaderValue::from_str(&token).map_err(|_| {
                CredentialsError::invalid_configuration(
                    PROVIDER,
                    "the container authorization token is not a valid header value",
                )
            })?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request
            .body(Bytes::new())
            .map_err(|e| CredentialsError::invalid_configuration(PROVIDER, e.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| CredentialsError::provider(PROVIDER, e))?;
        if response.status != StatusCode::OK {
            // As a service error, so that a 5xx or 429 stays recognisably transient.
            return Err(CredentialsError::provider(
                PROVIDER,
                AwsError::service(
                    PROVIDER,
                    "GetCredentials",
                    response.status,
                    "",
                    &format!(
                        "the container credentials endpoint answered {}",
                        response.status
                    ),
                    None,
                ),
            ));
        }
        let credentials = crate::credentials_json::parse(PROVIDER, &response.body);
        crate::transport::wipe(response.body);
        tracing::debug!(
            provider = PROVIDER,
            ok = credentials.is_ok(),
            "loaded credentials"
        );
        credentials
    }
}

impl ProvideCredentials for EcsProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}

/// Hosts plain `http` may go to: loopback, and the ECS and EKS Pod Identity agents.
fn is_allowed_plain_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(ip) => {
            let agents: [IpAddr; 3] = [
                [169, 254, 170, 2].into(),
                [169, 254, 170, 23].into(),
                [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23].into(),
            ];
            agents.contains(&ip)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(vars: &[(&str, &str)]) -> EcsProvider {
        EcsProvider::with_env(Env::from_vars(vars.iter().copied())).unwrap()
    }

    #[test]
    fn relative_uri_goes_to_the_agent() {
        let p = provider(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )]);
        assert_eq!(
            p.target().unwrap().to_string(),
            "http://169.254.170.2/v2/credentials/abc"
        );
    }

    #[test]
    fn full_uri_hosts_are_restricted() {
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://localhost/creds",
            "http://[::1]:9/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://creds.example.com/x",
        ] {
            assert!(
                provider(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok)])
                    .target()
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://10.0.0.1/creds",
            "http://example.com/x",
            "ftp://127.0.0.1/",
            // Looks local, is a name anyone can point anywhere.
            "http://127.0.0.1.nip.io/creds",
            "http://localhost.example.com/creds",
            // Link-local, but not the ECS/EKS agent (the AWS SDKs' rule).
            "http://169.254.169.254/latest",
            "http://[fe80::1]/creds",
            "not a url",
        ] {
            let err = provider(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad)])
                .target()
                .unwrap_err();
            assert!(
                matches!(err, CredentialsError::InvalidConfiguration { .. }),
                "{bad}"
            );
        }
        assert!(provider(&[]).target().unwrap_err().is_not_loaded());
    }

    #[test]
    fn token_file_wins_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let p = provider(&[
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-env"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                path.to_str().unwrap(),
            ),
        ]);
        assert_eq!(p.authorization().unwrap().unwrap().as_str(), "from-file");
        let p = provider(&[("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-env")]);
        assert_eq!(p.authorization().unwrap().unwrap().as_str(), "from-env");
    }
}
