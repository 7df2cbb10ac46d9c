//! The connection settings the Secrets Manager and SSM store builders share: region (a
//! named profile's when nothing else names one), credentials (the profile's, then an STS
//! AssumeRole on top), and the HTTP timeouts and retry budget. One place, so both stores
//! read the same variables and resolve them the same way.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom_core::Error;
use strongroom_http::{HttpClient, RetryPolicy};
use strongroom_sigv4::{CachingProvider, Env, ProfileSet, ProvideCredentials};

use crate::error::AwsError;
use crate::profile::ProfileChainProvider;
use crate::sts::{AssumeRoleProvider, AssumeRoleRequest, StsClient};

/// What a store builder was told about reaching AWS, before anything is resolved.
#[derive(Default)]
pub(crate) struct ClientSettings {
    pub(crate) env: Option<Env>,
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) credentials: Option<Arc<dyn ProvideCredentials>>,
    pub(crate) assume_role: Option<AssumeRoleRequest>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) retry_max_attempts: Option<u32>,
    pub(crate) retry_max_total: Option<Duration>,
}

impl fmt::Debug for ClientSettings {
    /// The settings a builder's `Debug` shows; never credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("assume_role", &self.assume_role)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_max_attempts", &self.retry_max_attempts)
            .field("retry_max_total", &self.retry_max_total)
            .finish_non_exhaustive()
    }
}

/// The settings resolved: what a service client builder takes.
pub(crate) struct Resolved {
    pub(crate) env: Env,
    pub(crate) region: Option<String>,
    pub(crate) credentials: Option<Arc<dyn ProvideCredentials>>,
    pub(crate) http: Option<HttpClient>,
}

impl ClientSettings {
    /// The shared settings `env` holds:
    ///
    /// | Variable | Setting |
    /// |---|---|
    /// | `STRONGROOM_AWS_ASSUME_ROLE_ARN`, `STRONGROOM_AWS_ROLE_SESSION_NAME`, `STRONGROOM_AWS_ROLE_DURATION_SECS`, `STRONGROOM_AWS_ROLE_EXTERNAL_ID` | `assume_role` |
    /// | `STRONGROOM_REQUEST_TIMEOUT_SECS` | `request_timeout` |
    /// | `STRONGROOM_CONNECT_TIMEOUT_SECS` | `connect_timeout` |
    /// | `STRONGROOM_RETRY_MAX_ATTEMPTS` (else `AWS_MAX_ATTEMPTS`) | `retry_max_attempts` |
    /// | `STRONGROOM_RETRY_MAX_TOTAL_SECS` | `retry_max_total` |
    ///
    /// Region, profile and credentials are read from `env` when resolved, the AWS way.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is not a number, or too large.
    pub(crate) fn from_env(env: &Env) -> Result<Self, Error> {
        let number = |name: &str| -> Result<Option<u64>, Error> {
            env.get(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        Error::config(format!("{name} must be a whole number, got {v:?}"))
                    })
                })
                .transpose()
        };
        let small = |name: &str| -> Result<Option<u32>, Error> {
            number(name)?
                .map(|n| {
                    u32::try_from(n).map_err(|_| Error::config(format!("{name} is too large: {n}")))
                })
                .transpose()
        };
        let mut settings = Self::default();
        if let Some(arn) = env.get("STRONGROOM_AWS_ASSUME_ROLE_ARN") {
            let mut request = AssumeRoleRequest::new(arn);
            if let Some(name) = env.get("STRONGROOM_AWS_ROLE_SESSION_NAME") {
                request = request.session_name(name);
            }
            if let Some(secs) = number("STRONGROOM_AWS_ROLE_DURATION_SECS")? {
                request = request.duration(Duration::from_secs(secs));
            }
            if let Some(id) = env.get("STRONGROOM_AWS_ROLE_EXTERNAL_ID") {
                request = request.external_id(id);
            }
            settings.assume_role = Some(request);
        }
        settings.request_timeout =
            number("STRONGROOM_REQUEST_TIMEOUT_SECS")?.map(Duration::from_secs);
        settings.connect_timeout =
            number("STRONGROOM_CONNECT_TIMEOUT_SECS")?.map(Duration::from_secs);
        settings.retry_max_attempts = match small("STRONGROOM_RETRY_MAX_ATTEMPTS")? {
            Some(n) => Some(n),
            None => small("AWS_MAX_ATTEMPTS")?,
        };
        settings.retry_max_total =
            number("STRONGROOM_RETRY_MAX_TOTAL_SECS")?.map(Duration::from_secs);
        Ok(settings)
    }

    /// Resolves the region (the one set, else `AWS_REGION`, `AWS_DEFAULT_REGION`, then the
    /// named profile's `region`; with no profile named the service client finds it, from
    /// `AWS_PROFILE`'s), the credentials (the ones set, else the named profile's, with an
    /// AssumeRole on top when asked) and an HTTP client when a timeout or retry setting
    /// differs from the defaults.
    ///
    /// # Errors
    /// [`AwsError::Config`] for an unreadable shared config file, no STS region for the
    /// role, or HTTP settings the client refuses.
    pub(crate) fn resolve(self) -> Result<Resolved, AwsError> {
        let env = self.env.unwrap_or_else(Env::process);
        let mut region = self.region;
        if region.is_none()
            && let Some(profile) = &self.profile
        {
            region = match env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION"))
            {
                Some(r) => Some(r),
                None => ProfileSet::load(&env)
                    .map_err(|e| AwsError::Config(e.to_string()))?
                    .with_selected(profile.as_str())
                    .selected()
                    .and_then(|p| p.region())
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            };
        }
        let mut credentials = self.credentials;
        if credentials.is_none()
            && let Some(profile) = &self.profile
        {
            credentials = Some(Arc::new(CachingProvider::new(
                ProfileChainProvider::with_env(env.clone()).with_profile(profile.as_str()),
            )));
        }
        if let Some(request) = self.assume_role {
            let base: Arc<dyn ProvideCredentials> = match credentials {
                Some(c) => c,
                None => Arc::new(crate::chain::default_provider(env.clone())?),
            };
            let sts = match &region {
                Some(r) => StsClient::for_region(&env, r)?,
                None => StsClient::from_env(&env)?,
            };
            credentials = Some(Arc::new(CachingProvider::new(AssumeRoleProvider::new(
                sts, base, request,
            ))));
        }
        let http = if self.request_timeout.is_some()
            || self.connect_timeout.is_some()
            || self.retry_max_attempts.is_some()
            || self.retry_max_total.is_some()
        {
            let mut http = HttpClient::builder();
            if let Some(t) = self.request_timeout {
                http = http.request_timeout(t);
            }
            if let Some(t) = self.connect_timeout {
                http = http.connect_timeout(t);
            }
            let mut retry = RetryPolicy::default();
            if let Some(n) = self.retry_max_attempts {
                retry = retry.with_max_attempts(n);
            }
            if let Some(t) = self.retry_max_total {
                retry = retry.with_max_total(t);
            }
            Some(
                http.retry_policy(retry)
                    .build()
                    .map_err(|e| AwsError::Config(format!("HTTP client: {e}")))?,
            )
        } else {
            None
        };
        Ok(Resolved {
            env,
            region,
            credentials,
            http,
        })
    }
}
