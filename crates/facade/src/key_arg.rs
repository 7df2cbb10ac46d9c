//! [`IntoSecretName`]: what the operations of [`Secrets`](crate::Secrets) accept as a key.

use std::borrow::Cow;

use strongroom_core::{Error, SecretName};

/// A key argument: a `&SecretName` (free: validated once, then reused on a hot path) or a
/// string validated on each call (`"app/db/password"`, which allocates).
pub trait IntoSecretName<'a> {
    /// The validated key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a name [`SecretName`] refuses.
    fn into_secret_name(self) -> Result<Cow<'a, SecretName>, Error>;
}

impl<'a> IntoSecretName<'a> for &'a SecretName {
    #[inline]
    fn into_secret_name(self) -> Result<Cow<'a, SecretName>, Error> {
        Ok(Cow::Borrowed(self))
    }
}

impl IntoSecretName<'_> for SecretName {
    #[inline]
    fn into_secret_name(self) -> Result<Cow<'static, SecretName>, Error> {
        Ok(Cow::Owned(self))
    }
}

impl IntoSecretName<'_> for &str {
    fn into_secret_name(self) -> Result<Cow<'static, SecretName>, Error> {
        SecretName::new(self).map(Cow::Owned)
    }
}

impl IntoSecretName<'_> for &String {
    fn into_secret_name(self) -> Result<Cow<'static, SecretName>, Error> {
        SecretName::new(self.as_str()).map(Cow::Owned)
    }
}

impl IntoSecretName<'_> for String {
    fn into_secret_name(self) -> Result<Cow<'static, SecretName>, Error> {
        SecretName::new(self).map(Cow::Owned)
    }
}
