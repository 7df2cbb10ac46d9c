//! [`IntoSecretKey`]: what the operations of [`Secrets`](crate::Secrets) accept as a key.

use std::borrow::Cow;

use strongroom_core::{Error, SecretKey};

/// A key argument: a `&SecretKey` (free: validated once, then reused on a hot path) or a
/// string validated on each call (`"app/db/password"`, which allocates).
pub trait IntoSecretKey<'a> {
    /// The validated key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a name [`SecretKey`] refuses.
    fn into_secret_key(self) -> Result<Cow<'a, SecretKey>, Error>;
}

impl<'a> IntoSecretKey<'a> for &'a SecretKey {
    #[inline]
    fn into_secret_key(self) -> Result<Cow<'a, SecretKey>, Error> {
        Ok(Cow::Borrowed(self))
    }
}

impl IntoSecretKey<'_> for SecretKey {
    #[inline]
    fn into_secret_key(self) -> Result<Cow<'static, SecretKey>, Error> {
        Ok(Cow::Owned(self))
    }
}

impl IntoSecretKey<'_> for &str {
    fn into_secret_key(self) -> Result<Cow<'static, SecretKey>, Error> {
        SecretKey::new(self).map(Cow::Owned)
    }
}

impl IntoSecretKey<'_> for &String {
    fn into_secret_key(self) -> Result<Cow<'static, SecretKey>, Error> {
        SecretKey::new(self.as_str()).map(Cow::Owned)
    }
}

impl IntoSecretKey<'_> for String {
    fn into_secret_key(self) -> Result<Cow<'static, SecretKey>, Error> {
        SecretKey::new(self).map(Cow::Owned)
    }
}
