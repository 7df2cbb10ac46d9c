//! The [`ProvideCredentials`] trait, its [`ProvideFuture`], and [`StaticProvider`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::credentials::Credentials;
use crate::error::CredentialsError;

/// Something that hands out [`Credentials`]: fixed ones, the environment, the shared files,
/// or (in strongroom-aws) a network service such as IMDS or STS.
///
/// The method returns a boxed future rather than being an `async fn` so that the trait is
/// object safe (`Arc<dyn ProvideCredentials>`) and needs no runtime and no `async-trait`:
/// local providers return [`ProvideFuture::ready`], network providers box their async block
/// with [`ProvideFuture::new`].
pub trait ProvideCredentials: Send + Sync {
    /// Loads credentials.
    fn provide_credentials(&self) -> ProvideFuture<'_>;
}

/// The future a [`ProvideCredentials`] returns.
#[must_use = "futures do nothing unless polled"]
pub struct ProvideFuture<'a>(
    Pin<Box<dyn Future<Output = Result<Credentials, CredentialsError>> + Send + 'a>>,
);

impl<'a> ProvideFuture<'a> {
    /// Wraps a future, e.g. an `async move { ... }` block.
    pub fn new(
        future: impl Future<Output = Result<Credentials, CredentialsError>> + Send + 'a,
    ) -> Self {
        Self(Box::pin(future))
    }

    /// A future that is ready at once with `result`.
    pub fn ready(result: Result<Credentials, CredentialsError>) -> Self {
        Self::new(std::future::ready(result))
    }
}

impl Future for ProvideFuture<'_> {
    type Output = Result<Credentials, CredentialsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ProvideFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProvideFuture")
    }
}

impl<P: ProvideCredentials + ?Sized> ProvideCredentials for Arc<P> {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        (**self).provide_credentials()
    }
}

impl<P: ProvideCredentials + ?Sized> ProvideCredentials for Box<P> {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        (**self).provide_credentials()
    }
}

impl<P: ProvideCredentials + ?Sized> ProvideCredentials for &P {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        (**self).provide_credentials()
    }
}

/// Always the same credentials, given in code.
#[derive(Debug, Clone)]
pub struct StaticProvider {
    credentials: Credentials,
}

impl StaticProvider {
    /// Provides `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials }
    }
}

impl ProvideCredentials for StaticProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::ready(Ok(self.credentials.clone()))
    }
}

impl From<Credentials> for StaticProvider {
    fn from(credentials: Credentials) -> Self {
        Self::new(credentials)
    }
}
