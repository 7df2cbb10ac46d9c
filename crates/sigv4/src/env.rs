//! [`Env`], the environment variables providers read (the process's, or a map in tests), and
//! [`EnvProvider`], credentials from `AWS_ACCESS_KEY_ID` and friends.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::credentials::Credentials;
use crate::error::CredentialsError;
use crate::provider::{ProvideCredentials, ProvideFuture};

/// Where environment variables come from: the process, or a fixed map.
///
/// Providers take an `Env` rather than calling `std::env::var` so that tests can give them a
/// map instead of mutating the (shared, racy) process environment. A map's values may be
/// secrets (`AWS_SECRET_ACCESS_KEY`): they are wiped when the last clone is dropped.
#[derive(Clone, Default)]
pub struct Env {
    vars: Option<Arc<HashMap<String, Zeroizing<String>>>>,
}

impl Env {
    /// The process environment, read at each lookup.
    pub fn process() -> Self {
        Self { vars: None }
    }

    /// A fixed set of variables; nothing else is visible.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: Some(Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), Zeroizing::new(v.into())))
                    .collect(),
            )),
        }
    }

    /// The value of `name`. An empty or non-UTF-8 value counts as unset, as in the AWS SDKs.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.vars {
            Some(vars) => vars.get(name).map(|v| v.as_str().to_owned()),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// The user's home directory: `HOME`, else `USERPROFILE`, else `HOMEDRIVE` + `HOMEPATH`.
    pub fn home_dir(&self) -> Option<PathBuf> {
        if let Some(home) = self.get("HOME").or_else(|| self.get("USERPROFILE")) {
            return Some(PathBuf::from(home));
        }
        match (self.get("HOMEDRIVE"), self.get("HOMEPATH")) {
            (Some(drive), Some(path)) => Some(PathBuf::from(format!("{drive}{path}"))),
            _ => None,
        }
    }
}

impl fmt::Debug for Env {
    // Values may be secrets (AWS_SECRET_ACCESS_KEY): show the variable names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.vars {
            None => f.write_str("Env::Process"),
            Some(vars) => {
                let mut names: Vec<&str> = vars.keys().map(String::as_str).collect();
                names.sort_unstable();
                f.debug_tuple("Env::Vars").field(&names).finish()
            }
        }
    }
}

/// Credentials from environment variables: `AWS_ACCESS_KEY_ID` (or the legacy
/// `AWS_ACCESS_KEY`), `AWS_SECRET_ACCESS_KEY` (or the legacy `AWS_SECRET_KEY`) and, for
/// temporary credentials, `AWS_SESSION_TOKEN`.
///
/// The variables are read at each call, so a changed environment is seen.
#[derive(Debug, Clone, Default)]
pub struct EnvProvider {
    env: Env,
}

const ENV_PROVIDER: &str = "environment";

impl EnvProvider {
    /// Reads the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Reads the given environment.
    pub fn with_env(env: Env) -> Self {
        Self { env }
    }

    /// Loads the credentials now (the provider never waits on anything).
    pub fn load(&self) -> Result<Credentials, CredentialsError> {
        let access_key_id = self
            .env
            .get("AWS_ACCESS_KEY_ID")
            .or_else(|| self.env.get("AWS_ACCESS_KEY"))
            .ok_or_else(|| {
                CredentialsError::not_loaded(ENV_PROVIDER, "AWS_ACCESS_KEY_ID is not set")
            })?;
        let secret = self
            .env
            .get("AWS_SECRET_ACCESS_KEY")
            .or_else(|| self.env.get("AWS_SECRET_KEY"))
            .ok_or_else(|| {
                CredentialsError::not_loaded(
                    ENV_PROVIDER,
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                )
            })?;
        let mut credentials = Credentials::new(access_key_id, secret);
        if let Some(token) = self.env.get("AWS_SESSION_TOKEN") {
            credentials = credentials.with_session_token(token);
        }
        tracing::debug!(provider = ENV_PROVIDER, "loaded credentials");
        Ok(credentials)
    }
}

impl ProvideCredentials for EnvProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::ready(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn reads_key_pair_and_token() {
        let env = Env::from_vars([
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        let creds = EnvProvider::with_env(env).load().unwrap();
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(creds.secret_access_key(), SECRET);
        assert_eq!(creds.session_token(), Some("token"));
        assert_eq!(creds.expiry(), None);
    }

    #[test]
    fn reads_legacy_names_and_prefers_new_ones() {
        let legacy = Env::from_vars([("AWS_ACCESS_KEY", "OLD"), ("AWS_SECRET_KEY", "oldsecret")]);
        let creds = EnvProvider::with_env(legacy).load().unwrap();
        assert_eq!(creds.access_key_id(), "OLD");
        assert_eq!(creds.secret_access_key(), "oldsecret");
        assert_eq!(creds.session_token(), None);

        let both = Env::from_vars([
            ("AWS_ACCESS_KEY", "OLD"),
            ("AWS_SECRET_KEY", "oldsecret"),
            ("AWS_ACCESS_KEY_ID", "NEW"),
            ("AWS_SECRET_ACCESS_KEY", "newsecret"),
        ]);
        let creds = EnvProvider::with_env(both).load().unwrap();
        assert_eq!(creds.access_key_id(), "NEW");
        assert_eq!(creds.secret_access_key(), "newsecret");
    }

    #[test]
    fn missing_or_empty_variables_are_not_loaded() {
        for vars in [
            vec![],
            vec![("AWS_ACCESS_KEY_ID", "")],
            vec![("AWS_ACCESS_KEY_ID", "AKID")],
            vec![("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "")],
            vec![("AWS_SECRET_ACCESS_KEY", SECRET)],
        ] {
            let err = EnvProvider::with_env(Env::from_vars(vars.clone()))
                .load()
                .unwrap_err();
            assert!(err.is_not_loaded(), "{vars:?}: {err}");
            assert!(!err.to_string().contains(SECRET));
            assert!(!format!("{err:?}").contains(SECRET));
        }
    }

    #[test]
    fn env_debug_shows_names_only() {
        let env = Env::from_vars([("AWS_SECRET_ACCESS_KEY", SECRET)]);
        let text = format!("{env:?}");
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!text.contains(SECRET));
    }

    #[test]
    fn home_dir_fallbacks() {
        assert_eq!(
            Env::from_vars([("HOME", "/home/a"), ("USERPROFILE", "C:\\b")]).home_dir(),
            Some(PathBuf::from("/home/a"))
        );
        assert_eq!(
            Env::from_vars([("USERPROFILE", "C:\\b")]).home_dir(),
            Some(PathBuf::from("C:\\b"))
        );
        assert_eq!(
            Env::from_vars([("HOMEDRIVE", "C:"), ("HOMEPATH", "\\c")]).home_dir(),
            Some(PathBuf::from("C:\\c"))
        );
        assert_eq!(Env::from_vars::<&str, &str>([]).home_dir(), None);
    }
}
