//! [`Error`]: what can go wrong with a secret, in terms a caller can act on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{NameProblem, VersionId};

/// A boxed cause, as [`Error::backend`] accepts it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The shared cause carried by [`Error::Backend`]: shared, so that [`Error`] is `Clone` and a
/// cache can hand one backend failure to every reader that waited for it, cause and all.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a [`SecretStore`](crate::SecretStore) can fail with.
///
/// Each variant says what the caller can do: retry ([`Unavailable`](Self::Unavailable)), fix
/// credentials ([`Unauthenticated`](Self::Unauthenticated)), re-read and try again
/// ([`Conflict`](Self::Conflict)), and so on. Backends convert their own errors into these at
/// the `SecretStore` boundary.
///
/// No message ever contains a secret value or a token: messages carry the key name, the
/// backend, the operation and (for HTTP backends) the status, nothing read from a secret.
///
/// Errors are `Clone`: a clone has the same variant and fields, and shares the cause (see
/// [`SharedError`]), so `source()` and downcasting it work on every copy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The secret, or the requested version of it, does not exist or is not readable now.
    NotFound {
        /// The key asked for.
        key: String,
        /// The version asked for, if one was.
        version: Option<VersionId>,
        /// True when the secret (or version) exists but is soft-deleted, and `undelete` could
        /// bring it back; false when it never existed or was purged or destroyed.
        deleted: bool,
    },

    /// The key name breaks the rules of [`SecretName`](crate::SecretName) or of the backend.
    InvalidKey {
        /// The refused name.
        key: String,
        /// Which rule it breaks.
        problem: NameProblem,
    },

    /// The value cannot be used as asked (not UTF-8, missing JSON field, too large).
    InvalidValue {
        /// What is wrong, without the value.
        message: String,
    },

    /// No valid credentials: missing, expired or revoked token, wrong keys.
    Unauthenticated {
        /// The backend that refused.
        backend: &'static str,
        /// What the backend said, without the credential.
        message: String,
    },

    /// The credentials are valid but do not allow this operation on this secret.
    PermissionDenied {
        /// The backend that refused.
        backend: &'static str,
        /// The key, when the operation was on one secret.
        key: Option<String>,
        /// What the backend said.
        message: String,
    },

    /// A conditional write lost: another writer changed the secret first.
    Conflict {
        /// The key written.
        key: String,
        /// What did not match.
        message: String,
    },

    /// The backend cannot be reached or cannot serve now (sealed Vault, 5xx, connection
    /// refused, timeout, lock held too long). Retrying later may succeed.
    Unavailable {
        /// The backend that is unavailable.
        backend: &'static str,
        /// What happened.
        message: String,
        /// How long the server asked us to wait, when it said.
        retry_after: Option<Duration>,
    },

    /// Encrypted data could not be decrypted: the key is wrong or the data was modified.
    ///
    /// The two cannot be told apart (an AEAD gives one answer for both, on purpose).
    Decrypt {
        /// What was being decrypted, such as the store's file name.
        what: String,
    },

    /// The configuration is missing or wrong (no address, unreadable key file, bad option).
    Config {
        /// What to fix.
        message: String,
    },

    /// The backend does not have this capability (see [`Capabilities`](crate::Capabilities)).
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// The operation, such as `undelete`.
        operation: &'static str,
    },

    /// Any other failure of the backend: I/O, a malformed response, an unexpected status.
    Backend {
        /// The backend.
        backend: &'static str,
        /// What happened.
        message: String,
        /// The underlying error, if any.
        source: Option<SharedError>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                key,
                version,
                deleted,
            } => {
                write!(f, "secret {key:?}")?;
                if let Some(version) = version {
                    write!(f, " version {version}")?;
                }
                f.write_str(if *deleted {
                    " is deleted"
                } else {
                    " not found"
                })
            }
            Self::InvalidKey { key, problem } => write!(f, "invalid secret key {key:?}: {problem}"),
            Self::InvalidValue { message } => write!(f, "invalid value: {message}"),
            Self::Unauthenticated { backend, message } => {
                write!(f, "{backend}: not authenticated: {message}")
            }
            Self::PermissionDenied {
                backend,
                key,
                message,
            } => {
                write!(f, "{backend}: permission denied")?;
                if let Some(key) = key {
                    write!(f, " on {key:?}")?;
                }
                write!(f, ": {message}")
            }
            Self::Conflict { key, message } => write!(f, "conflict writing {key:?}: {message}"),
            Self::Unavailable {
                backend, message, ..
            } => write!(f, "{backend} unavailable: {message}"),
            Self::Decrypt { what } => {
                write!(
                    f,
                    "cannot decrypt {what}: wrong key, or the data was modified"
                )
            }
            Self::Config { message } => write!(f, "configuration error: {message}"),
            Self::Unsupported { backend, operation } => {
                write!(f, "{backend} does not support {operation}")
            }
            Self::Backend {
                backend, message, ..
            } => write!(f, "{backend}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The cause itself, not the `Arc` around it, so that it downcasts.
            Self::Backend {
                source: Some(source),
                ..
            } => Some(&**source),
            _ => None,
        }
    }
}

/// The variant of an [`Error`] without its fields: for exit codes, metrics labels and
/// audit outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::InvalidKey`].
    InvalidKey,
    /// [`Error::InvalidValue`].
    InvalidValue,
    /// [`Error::Unauthenticated`].
    Unauthenticated,
    /// [`Error::PermissionDenied`].
    PermissionDenied,
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::Unavailable`].
    Unavailable,
    /// [`Error::Decrypt`].
    Decrypt,
    /// [`Error::Config`].
    Config,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::Backend`].
    Backend,
}

impl ErrorKind {
    /// A short lowercase name, stable for metrics labels and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InvalidKey => "invalid_key",
            Self::InvalidValue => "invalid_value",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Decrypt => "decrypt",
            Self::Config => "config",
            Self::Unsupported => "unsupported",
            Self::Backend => "backend",
        }
    }
}

impl Error {
    /// Which kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidKey { .. } => ErrorKind::InvalidKey,
            Self::InvalidValue { .. } => ErrorKind::InvalidValue,
            Self::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Self::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Decrypt { .. } => ErrorKind::Decrypt,
            Self::Config { .. } => ErrorKind::Config,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// True when the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// [`Error::NotFound`] for the current version of `key`.
    pub fn not_found(key: impl AsRef<str>) -> Self {
        Self::NotFound {
            key: key.as_ref().to_owned(),
            version: None,
            deleted: false,
        }
    }

    /// [`Error::InvalidKey`].
    pub fn invalid_key(key: impl AsRef<str>, problem: NameProblem) -> Self {
        Self::InvalidKey {
            key: key.as_ref().to_owned(),
            problem,
        }
    }

    /// [`Error::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// [`Error::Unavailable`] without a server-given retry delay.
    pub fn unavailable(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            backend,
            message: message.into(),
            retry_after: None,
        }
    }

    /// [`Error::Backend`] with an underlying cause.
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Backend {
            backend,
            message: message.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// [`Error::Unsupported`].
    pub fn unsupported(backend: &'static str, operation: &'static str) -> Self {
        Self::Unsupported { backend, operation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_well() {
        let table: Vec<(Error, &str)> = vec![
            (Error::not_found("app/db"), r#"secret "app/db" not found"#),
            (
                Error::NotFound {
                    key: "app/db".into(),
                    version: Some(VersionId::from(2)),
                    deleted: true,
                },
                r#"secret "app/db" version 2 is deleted"#,
            ),
            (
                Error::PermissionDenied {
                    backend: "vault",
                    key: Some("x".into()),
                    message: "403".into(),
                },
                r#"vault: permission denied on "x": 403"#,
            ),
            (
                Error::Decrypt {
                    what: "store.srv".into(),
                },
                "cannot decrypt store.srv: wrong key, or the data was modified",
            ),
            (Error::unsupported("env", "put"), "env does not support put"),
        ];
        for (err, want) in table {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn clones_share_the_cause_and_it_downcasts() {
        use std::error::Error as _;

        let original = Error::backend("local", "read failed", std::io::Error::other("disk"));
        let copy = original.clone();
        assert_eq!(copy.to_string(), "local: read failed");
        let (
            Error::Backend {
                source: Some(a), ..
            },
            Error::Backend {
                source: Some(b), ..
            },
        ) = (&original, &copy)
        else {
            panic!("the copy lost its cause: {copy:?}");
        };
        assert!(Arc::ptr_eq(a, b));
        let io = copy
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(ToString::to_string).as_deref(), Some("disk"));
        let retry = Error::Unavailable {
            backend: "vault",
            message: "sealed".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(matches!(
            retry.clone(),
            Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
    }

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(Error::unavailable("vault", "sealed").is_retryable());
        assert!(!Error::not_found("k").is_retryable());
        assert_eq!(Error::config("x").kind().as_str(), "config");
    }
}
