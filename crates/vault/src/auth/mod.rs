//! How the client gets a token: a static [`Token`], [`AppRole`], or [`Kubernetes`]
//! service-account login.

mod approle;
mod kubernetes;
mod token;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::Value;
use strongroom_core::Error;
use zeroize::Zeroizing;

pub use approle::AppRole;
pub use kubernetes::{DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, Kubernetes};
pub use token::Token;

use crate::client::{Call, Transport};
use crate::error::{Context, malformed};
use crate::json;

/// Where a credential (AppRole role id or secret id, a service-account JWT) comes from.
///
/// A file is read again at every login, so a rotated secret id or a refreshed projected
/// service-account token is picked up without a restart. Surrounding whitespace (the
/// trailing newline of most files) is trimmed. `Debug` never shows a value.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// The credential itself, zeroized on drop.
    Value(Arc<Zeroizing<String>>),
    /// A file holding the credential.
    File(PathBuf),
}

impl Credential {
    /// A credential given as text.
    pub fn value(text: impl Into<String>) -> Self {
        Self::Value(Arc::new(Zeroizing::new(text.into())))
    }

    /// A credential read from `path` at each login.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }

    /// The credential's text, read now. `what` names it in errors (never its content).
    pub(crate) fn read(&self, what: &str) -> Result<Zeroizing<String>, Error> {
        let text = match self {
            Self::Value(text) => Zeroizing::new(text.trim().to_owned()),
            Self::File(path) => {
                // Small files, read once per login: a blocking read is cheaper than a
                // blocking-pool hop and needs no extra tokio feature.
                let raw = Zeroizing::new(std::fs::read(path).map_err(|e| {
                    Error::config(format!(
                        "cannot read the {what} file {}: {e}",
                        path.display()
                    ))
                })?);
                let text = std::str::from_utf8(&raw).map_err(|_| {
                    Error::config(format!("the {what} file {} is not UTF-8", path.display()))
                })?;
                Zeroizing::new(text.trim().to_owned())
            }
        };
        if text.is_empty() {
            return Err(Error::config(format!("the {what} is empty")));
        }
        Ok(text)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value([REDACTED])"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// How the client authenticates.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Auth {
    /// A token given up front (`VAULT_TOKEN`). It is renewed in the background when it is
    /// renewable and has a TTL; it cannot be replaced when it expires or is revoked.
    Token(Token),
    /// AppRole login: role id and secret id.
    AppRole(AppRole),
    /// Kubernetes login: a role and the pod's service-account JWT.
    Kubernetes(Kubernetes),
}

impl Auth {
    /// `token`, `approle` or `kubernetes`: for logs and errors.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::AppRole(_) => "approle",
            Self::Kubernetes(_) => "kubernetes",
        }
    }

    /// True when the client can log in again by itself (everything but a static token).
    pub fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }
}

impl From<Token> for Auth {
    fn from(token: Token) -> Self {
        Self::Token(token)
    }
}

impl From<AppRole> for Auth {
    fn from(approle: AppRole) -> Self {
        Self::AppRole(approle)
    }
}

impl From<Kubernetes> for Auth {
    fn from(kubernetes: Kubernetes) -> Self {
        Self::Kubernetes(kubernetes)
    }
}

/// What a login (or a renewal, or a lookup) tells about a token.
pub(crate) struct Lease {
    /// The token, for logins.
    pub(crate) token: Option<Token>,
    /// How long it lives from now; `None` when it never expires (root tokens).
    pub(crate) ttl: Option<Duration>,
    /// Whether `renew-self` may extend it.
    pub(crate) renewable: bool,
}

/// Logs in with `auth` (which must be able to) and returns the new token and its lease.
pub(crate) async fn login(
    auth: &Auth,
    transport: &Transport,
    namespace: Option<&Arc<str>>,
) -> Result<Lease, Error> {
    let (operation, mount, fields): (&'static str, &str, Vec<(&str, Zeroizing<String>)>) =
        match auth {
            Auth::Token(_) => {
                return Err(Error::Unauthenticated {
                    backend: crate::BACKEND,
                    message: "the static Vault token is invalid, expired or revoked, and \
                              token auth cannot log in again"
                        .to_owned(),
                });
            }
            Auth::AppRole(approle) => ("approle login", approle.mount_path(), approle.fields()?),
            Auth::Kubernetes(k8s) => ("kubernetes login", k8s.mount_path(), k8s.fields()?),
        };
    let ctx = Context::op(operation);
    let mount = crate::path::clean_mount(mount)?;
    let body = json::sensitive_object(&fields);
    drop(fields);
    let call = Call::new(Method::POST, format!("auth/{mount}/login"))
        .namespace(namespace.cloned())
        // POST: retried only when no connection could be opened (`Call::new`), so a one-use
        // secret id is never spent by a retry of a login that reached the server.
        .sensitive_body(body);
    let answer = transport.send(&call, None, &ctx).await?;
    drop(call);
    // A refused login is a credentials problem, whatever status the method uses for it
    // (AppRole answers 400 for a wrong secret id, jwt 400 for a bad signature).
    if matches!(answer.status.as_u16(), 400 | 401 | 403) {
        let server = crate::error::server_errors(&answer.body(), None);
        return Err(Error::Unauthenticated {
            backend: crate::BACKEND,
            message: format!(
                "{operation} refused: HTTP {}: {server}",
                answer.status.as_u16()
            ),
        });
    }
    let answer = answer.check(&ctx, None)?;
    let mut value = answer.json(&ctx)?;
    let lease = lease_of(&mut value, &ctx, true);
    json::scrub(&mut value);
    lease
}

/// Reads `auth` out of a login or renewal answer, taking the token out of the JSON.
pub(crate) fn lease_of(
    value: &mut Value,
    ctx: &Context<'_>,
    want_token: bool,
) -> Result<Lease, Error> {
    let auth = value
        .get_mut("auth")
        .filter(|a| a.is_object())
        .ok_or_else(|| malformed(ctx, "no auth object"))?;
    let token = match auth.get_mut("client_token").map(Value::take) {
        Some(Value::String(text)) if !text.is_empty() => Some(Token::from(Zeroizing::new(text))),
        _ if want_token => return Err(malformed(ctx, "no auth.client_token")),
        _ => None,
    };
    let ttl = crate::ttl::lease(auth.get("lease_duration"))
        .map_err(|bad| malformed(ctx, &bad.describe("auth.lease_duration")))?;
    let renewable = auth
        .get("renewable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Lease {
        token,
        ttl,
        renewable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_trimmed_read_and_redacted() {
        let value = Credential::value(" s3cr3t-id\n");
        assert_eq!(value.read("secret id").unwrap().as_str(), "s3cr3t-id");
        assert!(!format!("{value:?}").contains("s3cr3t"));

        let dir = std::env::temp_dir().join(format!("sr-vault-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwt");
        std::fs::write(&file, "eyJ.file-jwt.sig\n").unwrap();
        let from_file = Credential::file(&file);
        assert_eq!(from_file.read("JWT").unwrap().as_str(), "eyJ.file-jwt.sig");
        std::fs::write(&file, "").unwrap();
        let err = from_file.read("JWT").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = Credential::file("/nonexistent/strongroom/jwt")
            .read("JWT")
            .unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/strongroom/jwt"),
            "{missing}"
        );
    }

    #[test]
    fn lease_is_read_and_token_taken_out() {
        let mut value = serde_json::json!({
            "auth": {"client_token": "hvs.abc", "lease_duration": 5, "renewable": true}
        });
        let lease = lease_of(&mut value, &Context::op("login"), true).unwrap();
        assert_eq!(lease.token.unwrap().expose(), "hvs.abc");
        assert_eq!(lease.ttl, Some(Duration::from_secs(5)));
        assert!(lease.renewable);
        assert!(!value.to_string().contains("hvs.abc"));

        let mut root = serde_json::json!({"auth": {"client_token": "r", "lease_duration": 0}});
        let lease = lease_of(&mut root, &Context::op("login"), true).unwrap();
        assert_eq!(lease.ttl, None);
        assert!(!lease.renewable);

        let mut none = serde_json::json!({"data": {}});
        assert!(lease_of(&mut none, &Context::op("login"), true).is_err());
    }

    #[test]
    fn hostile_lease_durations_are_bounded_or_refused() {
        let lease = |duration: Value| {
            let mut value = serde_json::json!({
                "auth": {"client_token": "hvs.t", "lease_duration": duration, "renewable": true}
            });
            lease_of(&mut value, &Context::op("login"), true).map(|l| l.ttl)
        };
        let max = Some(crate::ttl::MAX_TTL);
        assert_eq!(lease(serde_json::json!(u64::MAX)).unwrap(), max);
        assert_eq!(lease(serde_json::json!(1e30)).unwrap(), max);
        assert_eq!(lease(serde_json::json!(0)).unwrap(), None);
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(-1e30),
            serde_json::json!("1h"),
        ] {
            let err = lease(bad.clone()).unwrap_err();
            assert_eq!(err.kind(), strongroom_core::ErrorKind::Backend, "{bad}");
            assert!(err.to_string().contains("lease_duration"), "{err}");
            assert!(!err.to_string().contains("hvs.t"), "{err}");
        }
    }
}
