//! The errors of signing ([`SigningError`]) and of loading credentials ([`CredentialsError`]).
//!
//! No message here ever holds a secret key, a session token or a header value: only names,
//! reasons written by this crate, file paths and line numbers.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use crate::profile::ProfileError;

/// A source error shared between clones of a [`CredentialsError`].
pub type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The request names no host: its URI has no authority and it has no `Host` header.
    /// SigV4 signs the host, so an origin-form URI (`/path`) needs a `Host` header.
    #[error("the request has no host: give it an absolute URI or a Host header")]
    MissingHost,
    /// A header value is not visible ASCII, so it has no canonical form to sign.
    #[error("header `{name}` has a value that is not visible ASCII and cannot be signed")]
    InvalidHeaderValue {
        /// The header's name (never its value).
        name: String,
    },
    /// The region, service or presigning lifetime is unusable.
    #[error("invalid signing parameters: {reason}")]
    InvalidParams {
        /// What is wrong.
        reason: &'static str,
    },
    /// aws-sigv4 refused the request (for example a URI it cannot parse).
    #[error("aws-sigv4 could not sign the request")]
    Sign {
        /// The aws-sigv4 error.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

/// Why a [`ProvideCredentials`](crate::ProvideCredentials) gave no credentials.
///
/// Cloneable, so that one failed refresh can be handed to every caller that waited on it
/// (see [`CachingProvider`](crate::CachingProvider)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// This provider has nothing configured (an unset variable, no profile, no file); a chain
    /// of providers moves on to the next one.
    #[error("{provider}: no credentials: {reason}")]
    NotLoaded {
        /// The provider, e.g. `environment`.
        provider: &'static str,
        /// What was missing.
        reason: String,
    },
    /// This provider is configured, but wrongly (half a key pair, an unknown named profile);
    /// a chain stops here rather than silently using other credentials.
    #[error("{provider}: invalid configuration: {reason}")]
    InvalidConfiguration {
        /// The provider.
        provider: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A shared config or credentials file could not be read or parsed.
    #[error("shared AWS config: {0}")]
    Profile(#[from] ProfileError),
    /// The provider took too long (network providers).
    #[error("{provider}: timed out after {after:?}")]
    TimedOut {
        /// The provider.
        provider: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// The provider returned credentials whose expiry has already passed: any request
    /// signed with them would be refused, so they are not handed out.
    #[error("the credentials provider returned credentials that expired {ago:?} ago")]
    Expired {
        /// How long ago they expired.
        ago: Duration,
    },
    /// The provider failed: a network error, an error response, a malformed answer.
    #[error("{provider}: failed to load credentials")]
    Provider {
        /// The provider.
        provider: &'static str,
        /// The underlying error; it must hold no secret either.
        #[source]
        source: SharedError,
    },
}

impl CredentialsError {
    /// A [`CredentialsError::NotLoaded`].
    pub fn not_loaded(provider: &'static str, reason: impl Into<String>) -> Self {
        Self::NotLoaded {
            provider,
            reason: reason.into(),
        }
    }

    /// A [`CredentialsError::InvalidConfiguration`].
    pub fn invalid_configuration(provider: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfiguration {
            provider,
            reason: reason.into(),
        }
    }

    /// A [`CredentialsError::Provider`] wrapping `source`.
    pub fn provider(
        provider: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self::Provider {
            provider,
            source: Arc::from(source.into()),
        }
    }

    /// Whether this provider simply had nothing configured, so a chain should try the next.
    pub fn is_not_loaded(&self) -> bool {
        matches!(self, Self::NotLoaded { .. })
    }
}
