//! [`Credentials`]: the access key pair (and optional session token) a request is signed with.

use std::fmt;
use std::time::SystemTime;

use zeroize::Zeroizing;

/// AWS credentials: an access key id, its secret access key, an optional session token and an
/// optional expiry.
///
/// The secret access key and the session token are zeroized on drop and redacted in `Debug`;
/// they can be read only through [`Credentials::secret_access_key`] and
/// [`Credentials::session_token`]. The access key id is not a secret (it is sent in the clear
/// in every signed request) and is shown in `Debug` to help tell credentials apart.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    expiry: Option<SystemTime>,
}

impl Credentials {
    /// Long-term credentials: an access key id and its secret, no session token, no expiry.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            session_token: None,
            expiry: None,
        }
    }

    /// Adds the session token that temporary (STS) credentials come with.
    #[must_use]
    pub fn with_session_token(mut self, session_token: impl Into<String>) -> Self {
        self.session_token = Some(Zeroizing::new(session_token.into()));
        self
    }

    /// Sets the time after which these credentials are no longer valid.
    #[must_use]
    pub fn with_expiry(mut self, expiry: SystemTime) -> Self {
        self.expiry = Some(expiry);
        self
    }

    /// The access key id (`AKIA...` for long-term keys, `ASIA...` for temporary ones).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key. This is the secret: do not log it or put it in an error.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token of temporary credentials, if any. A secret too.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(|token| token.as_str())
    }

    /// When these credentials expire; `None` for long-term keys.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expiry
    }

    /// Whether these credentials have expired at `now`. Credentials without an expiry never do.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expiry.is_some_and(|expiry| expiry <= now)
    }

    /// The same credentials in the form aws-sigv4 signs with. The copy it makes of the
    /// secrets is zeroized on drop by aws-credential-types.
    pub(crate) fn to_identity(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        aws_credential_types::Credentials::new(
            self.access_key_id.as_str(),
            self.secret_access_key.as_str(),
            self.session_token().map(str::to_owned),
            self.expiry,
            "strongroom",
        )
        .into()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expiry", &self.expiry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessiontoken";

    #[test]
    fn debug_shows_key_id_but_no_secret() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET).with_session_token(TOKEN);
        for text in [format!("{creds:?}"), format!("{creds:#?}")] {
            assert!(text.contains("AKIDEXAMPLE"), "{text}");
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains(TOKEN), "{text}");
            assert!(!text.contains("wJalr"), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
    }

    #[test]
    fn accessors_return_what_was_given() {
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let creds = Credentials::new("AKID", SECRET)
            .with_session_token(TOKEN)
            .with_expiry(expiry);
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(creds.secret_access_key(), SECRET);
        assert_eq!(creds.session_token(), Some(TOKEN));
        assert_eq!(creds.expiry(), Some(expiry));
        assert!(!creds.is_expired_at(expiry - Duration::from_secs(1)));
        assert!(creds.is_expired_at(expiry));
        assert!(!Credentials::new("AKID", SECRET).is_expired_at(SystemTime::now()));
    }

    #[test]
    fn identity_debug_is_redacted_too() {
        let identity = Credentials::new("AKID", SECRET)
            .with_session_token(TOKEN)
            .to_identity();
        let text = format!("{identity:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}
