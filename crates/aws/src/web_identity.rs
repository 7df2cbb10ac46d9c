//! [`WebIdentityProvider`]: role credentials for a web identity token (EKS IRSA, GitHub
//! Actions OIDC), through STS AssumeRoleWithWebIdentity.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use strongroom_sigv4::{Credentials, CredentialsError, Env, ProvideCredentials, ProvideFuture};

use crate::error::AwsError;
use crate::sts::{StsClient, default_session_name};

const PROVIDER: &str = "web-identity";

/// Assumes `role_arn` with the token in `token_file`, read at every call (the file is
/// rotated by the platform).
pub struct WebIdentityProvider {
    sts: StsClient,
    role_arn: String,
    token_file: PathBuf,
    session_name: String,
    duration: Option<Duration>,
}

impl fmt::Debug for WebIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebIdentityProvider")
            .field("role_arn", &self.role_arn)
            .field("token_file", &self.token_file)
            .field("session_name", &self.session_name)
            .finish_non_exhaustive()
    }
}

impl WebIdentityProvider {
    /// A provider for the given role and token file.
    pub fn new(
        sts: StsClient,
        role_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            sts,
            role_arn: role_arn.into(),
            token_file: token_file.into(),
            session_name: default_session_name(),
            duration: None,
        }
    }

    /// From `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_SESSION_NAME`.
    ///
    /// # Errors
    /// [`CredentialsError::NotLoaded`] when neither variable is set;
    /// [`CredentialsError::InvalidConfiguration`] when only one is; STS client errors.
    pub fn from_env(env: &Env) -> Result<Self, CredentialsError> {
        match (
            env.get("AWS_ROLE_ARN"),
            env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        ) {
            (Some(role), Some(file)) => {
                let sts = StsClient::from_env(env).map_err(|e| {
                    CredentialsError::invalid_configuration(PROVIDER, e.to_string())
                })?;
                let mut provider = Self::new(sts, role, file);
                if let Some(name) = env.get("AWS_ROLE_SESSION_NAME") {
                    provider = provider.session_name(name);
                }
                Ok(provider)
            }
            (None, None) => Err(CredentialsError::not_loaded(
                PROVIDER,
                "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not set",
            )),
            (Some(_), None) => Err(CredentialsError::invalid_configuration(
                PROVIDER,
                "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not",
            )),
            (None, Some(_)) => Err(CredentialsError::invalid_configuration(
                PROVIDER,
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
            )),
        }
    }

    /// Sets the session name.
    #[must_use]
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    /// Sets the credentials' lifetime.
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Reads the token and assumes the role.
    ///
    /// # Errors
    /// An unreadable token file is a configuration error; STS failures are provider errors.
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        // Read at every call (the platform rotates the file), into a wiped buffer dropped
        // when the call returns.
        let token = crate::token_file::read(PROVIDER, "web identity token file", &self.token_file)?;
        self.sts
            .assume_role_with_web_identity(
                &self.role_arn,
                &self.session_name,
                &token,
                self.duration,
            )
            .await
            .map_err(|e: AwsError| CredentialsError::provider(PROVIDER, e))
    }
}

impl ProvideCredentials for WebIdentityProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}
