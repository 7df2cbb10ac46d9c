//! The AWS JSON 1.1 protocol as Secrets Manager and SSM speak it: a signed POST of a JSON
//! document with `X-Amz-Target: <prefix>.<Operation>`. One client shape for both services:
//! how its region, endpoint, credentials and HTTP client are found, and one call.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use strongroom_core::Error;
use strongroom_http::{HttpClient, Retry};
use strongroom_sigv4::{CredentialsError, Env, ProvideCredentials, Signer};

use crate::error::AwsError;
use crate::transport;

/// What a service client's builder was given; whatever is missing is found the way the
/// AWS SDKs find it.
pub(crate) struct Settings {
    pub(crate) env: Option<Env>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) credentials: Option<Arc<dyn ProvideCredentials>>,
    pub(crate) http: Option<HttpClient>,
}

/// The service a [`JsonApi`] talks to.
pub(crate) struct Service {
    /// The signing name and the name in logs and errors (`secretsmanager`, `ssm`).
    pub(crate) name: &'static str,
    /// The `AWS_ENDPOINT_URL_<ID>` suffix of its endpoint override (`SECRETS_MANAGER`).
    pub(crate) endpoint_id: &'static str,
    /// The `X-Amz-Target` prefix (`secretsmanager`, `AmazonSSM`).
    pub(crate) target: &'static str,
}

/// A client of one JSON 1.1 service.
pub(crate) struct JsonApi {
    service: Service,
    http: HttpClient,
    endpoint: Uri,
    signer: Signer,
    credentials: Arc<dyn ProvideCredentials>,
}

impl JsonApi {
    /// Resolves the settings: the region (given, or from the environment and profile; it
    /// must be a region name), the endpoint (given, or the environment's override, or the
    /// region's public one), the credentials (given, or the default chain) and the HTTP
    /// client (given, or [`HttpClient::new`]).
    pub(crate) fn build(settings: Settings, service: Service) -> Result<Self, AwsError> {
        let env = settings.env.unwrap_or_else(Env::process);
        let region = match settings.region {
            Some(r) => r,
            None => strongroom_sigv4::resolve_region(&env)
                .map_err(|e| AwsError::Config(e.to_string()))?
                .ok_or_else(|| {
                    AwsError::Config(
                        "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or `region` in \
                         the profile) or configure one explicitly"
                            .to_owned(),
                    )
                })?,
        };
        crate::endpoint::check_region(&region)?;
        let endpoint = match settings.endpoint {
            Some(e) => crate::endpoint::parse(&e)?,
            None => crate::endpoint::resolve(&env, service.endpoint_id, service.name, &region)?,
        };
        let credentials = match settings.credentials {
            Some(c) => c,
            None => Arc::new(crate::chain::default_provider(env)?),
        };
        let http = match settings.http {
            Some(h) => h,
            None => HttpClient::new().map_err(|source| AwsError::Http {
                service: service.name,
                operation: "build client",
                source,
            })?,
        };
        Ok(Self {
            signer: Signer::new(region, service.name),
            service,
            http,
            endpoint,
            credentials,
        })
    }

    /// The endpoint requests go to.
    pub(crate) fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// The region requests are signed for.
    pub(crate) fn region(&self) -> &str {
        self.signer.region()
    }

    /// The credentials provider requests are signed with.
    pub(crate) fn credentials(&self) -> &Arc<dyn ProvideCredentials> {
        &self.credentials
    }

    /// Sends one call; returns the parsed answer (an empty body reads as `{}`). The body of
    /// the answer is wiped once parsed; the log lines carry the operation, status, error
    /// code and time, never a body.
    pub(crate) async fn call<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        operation: &'static str,
        input: &I,
        retry: Retry,
    ) -> Result<O, AwsError> {
        let service = self.service.name;
        let started = Instant::now();
        let credentials = self.credentials.provide_credentials().await?;
        let body = transport::json_body(input)
            .map_err(|e| AwsError::Config(format!("cannot encode {operation}: {e}")))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("{}.{operation}", self.service.target),
            )
            .body(body)
            .map_err(|e| AwsError::Config(format!("cannot build the {operation} request: {e}")))?;
        let response = transport::send(
            &self.http,
            Some((&self.signer, &credentials)),
            service,
            operation,
            request,
            retry,
        )
        .await
        .inspect_err(|e| {
            tracing::debug!(service, operation, outcome = "error", error = %e, elapsed_ms = elapsed_ms(started), "aws call");
        })?;
        if !response.is_success() {
            let err = transport::service_error(service, operation, &response);
            tracing::debug!(
                service,
                operation,
                status = response.status.as_u16(),
                code = err.code().unwrap_or_default(),
                elapsed_ms = elapsed_ms(started),
                "aws call"
            );
            return Err(err);
        }
        let parsed = if response.body.is_empty() {
            serde_json::from_slice(b"{}")
        } else {
            serde_json::from_slice(&response.body)
        };
        transport::wipe(response.body);
        tracing::debug!(
            service,
            operation,
            status = 200u16,
            elapsed_ms = elapsed_ms(started),
            "aws call"
        );
        parsed.map_err(|e| AwsError::Malformed {
            service,
            operation,
            // serde_json's message gives the line and column, not the content.
            reason: e.to_string(),
        })
    }
}

/// Loads credentials from `provider` once, for a store builder asked to check them:
/// credentials that are missing or misconfigured are [`Error::Config`] naming `service`
/// (`AWS SSM`); any other failure (STS or IMDS unreachable) keeps its own kind.
pub(crate) async fn check_credentials(
    provider: &dyn ProvideCredentials,
    service: &str,
) -> Result<(), Error> {
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(
            e @ (CredentialsError::NotLoaded { .. }
            | CredentialsError::InvalidConfiguration { .. }
            | CredentialsError::Profile(_)),
        ) => Err(Error::config(format!("{service}: {e}"))),
        Err(e) => Err(AwsError::from(e).into_core(None, None)),
    }
}

/// Milliseconds since `started`, saturating.
pub(crate) fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
