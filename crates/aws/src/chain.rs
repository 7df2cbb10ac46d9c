//! [`ChainProvider`] and [`default_provider`]: the credentials an AWS SDK would find, in
//! the same order.

use std::fmt;
use std::sync::Arc;

use strongroom_sigv4::{
    CachingProvider, Credentials, CredentialsError, Env, EnvProvider, ProvideCredentials,
    ProvideFuture,
};

use crate::ecs::EcsProvider;
use crate::error::AwsError;
use crate::imds::ImdsProvider;
use crate::profile::ProfileChainProvider;
use crate::web_identity::WebIdentityProvider;

/// Tries providers in order: the first that has credentials wins. A provider with nothing
/// configured ([`CredentialsError::NotLoaded`]) passes to the next; any other error stops
/// the chain (a half-configured source must not fall through to other credentials).
#[derive(Default)]
pub struct ChainProvider {
    links: Vec<(&'static str, Arc<dyn ProvideCredentials>)>,
}

impl fmt::Debug for ChainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.links.iter().map(|(n, _)| *n).collect();
        f.debug_tuple("ChainProvider").field(&names).finish()
    }
}

impl ChainProvider {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider, named for logs and errors.
    #[must_use]
    pub fn with(mut self, name: &'static str, provider: impl ProvideCredentials + 'static) -> Self {
        self.links.push((name, Arc::new(provider)));
        self
    }

    /// The names of the links, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.links.iter().map(|(n, _)| *n)
    }

    /// The usual AWS order: environment variables; the shared config/credentials profile
    /// (static keys, `role_arn` + `source_profile`/`credential_source`, web identity);
    /// `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`; the ECS/EKS container endpoint;
    /// IMDSv2.
    ///
    /// # Errors
    /// Only if an HTTP client cannot be built.
    pub fn default_chain(env: Env) -> Result<Self, AwsError> {
        Ok(Self::new()
            .with("environment", EnvProvider::with_env(env.clone()))
            .with("profile", ProfileChainProvider::with_env(env.clone()))
            .with("web-identity", WebIdentityFromEnv(env.clone()))
            .with("ecs", EcsProvider::with_env(env.clone())?)
            .with("imds", ImdsProvider::with_env(env)?))
    }

    /// Loads credentials from the first link that has them.
    ///
    /// # Errors
    /// The first error other than "not loaded"; or, when no link had anything,
    /// [`CredentialsError::NotLoaded`] listing why each was skipped.
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        let mut skipped = Vec::new();
        for (name, provider) in &self.links {
            match provider.provide_credentials().await {
                Ok(credentials) => {
                    tracing::debug!(provider = *name, "credential chain: using this provider");
                    return Ok(credentials);
                }
                Err(CredentialsError::NotLoaded { reason, .. }) => {
                    skipped.push(format!("{name}: {reason}"));
                }
                Err(other) => return Err(other),
            }
        }
        Err(CredentialsError::not_loaded(
            "default chain",
            format!("no AWS credentials found ({})", skipped.join("; ")),
        ))
    }
}

impl ProvideCredentials for ChainProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}

/// The web identity link reads its variables at each call, so it can sit in a chain built
/// before they are set.
struct WebIdentityFromEnv(Env);

impl ProvideCredentials for WebIdentityFromEnv {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(async move { WebIdentityProvider::from_env(&self.0)?.load().await })
    }
}

/// The default chain, cached: credentials are refreshed five minutes before they expire and
/// concurrent refreshes are one.
///
/// # Errors
/// Only if an HTTP client cannot be built.
pub fn default_provider(env: Env) -> Result<CachingProvider<ChainProvider>, AwsError> {
    Ok(CachingProvider::new(ChainProvider::default_chain(env)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_sigv4::StaticProvider;

    struct Fails(CredentialsError);
    impl ProvideCredentials for Fails {
        fn provide_credentials(&self) -> ProvideFuture<'_> {
            ProvideFuture::ready(Err(self.0.clone()))
        }
    }

    #[tokio::test]
    async fn not_loaded_passes_other_errors_stop() {
        let good = StaticProvider::new(Credentials::new("AKID", "secret"));
        let chain = ChainProvider::new()
            .with("a", Fails(CredentialsError::not_loaded("a", "nothing")))
            .with("b", good.clone());
        assert_eq!(chain.load().await.unwrap().access_key_id(), "AKID");

        let chain = ChainProvider::new()
            .with(
                "a",
                Fails(CredentialsError::invalid_configuration("a", "half")),
            )
            .with("b", good);
        assert!(matches!(
            chain.load().await,
            Err(CredentialsError::InvalidConfiguration { .. })
        ));

        let chain = ChainProvider::new()
            .with(
                "a",
                Fails(CredentialsError::not_loaded("a", "nothing here")),
            )
            .with("b", Fails(CredentialsError::not_loaded("b", "nor here")));
        let err = chain.load().await.unwrap_err();
        assert!(err.is_not_loaded());
        assert!(err.to_string().contains("nothing here") && err.to_string().contains("nor here"));
    }

    #[tokio::test]
    async fn default_chain_order_and_env_first() {
        let env = Env::from_vars([
            ("AWS_ACCESS_KEY_ID", "FROMENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let chain = ChainProvider::default_chain(env).unwrap();
        assert_eq!(
            chain.names().collect::<Vec<_>>(),
            ["environment", "profile", "web-identity", "ecs", "imds"]
        );
        assert_eq!(chain.load().await.unwrap().access_key_id(), "FROMENV");
    }

    #[tokio::test]
    async fn empty_environment_finds_nothing_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_vars([
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let err = ChainProvider::default_chain(env)
            .unwrap()
            .load()
            .await
            .unwrap_err();
        assert!(err.is_not_loaded(), "{err}");
        assert!(
            err.to_string().contains("AWS_EC2_METADATA_DISABLED"),
            "{err}"
        );
    }
}
