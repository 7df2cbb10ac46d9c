//! [`ProfileProvider`]: the static keys of a profile in the shared files, and
//! [`resolve_region`].

use crate::credentials::Credentials;
use crate::env::Env;
use crate::error::CredentialsError;
use crate::profile::{ProfileError, ProfileSet};
use crate::provider::{ProvideCredentials, ProvideFuture};

const PROFILE_PROVIDER: &str = "profile";

/// Credentials from a profile of `~/.aws/credentials` and `~/.aws/config`
/// (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`).
///
/// The profile is the one given with [`ProfileProvider::with_profile`], else `AWS_PROFILE`,
/// else `default`; the files are those of `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`,
/// else under the home directory. Both are read at each call (wrap the provider in a
/// [`CachingProvider`](crate::CachingProvider) to read them once).
///
/// A profile that gets its credentials some other way (`role_arn`, `web_identity_token_file`,
/// `credential_process`, SSO) gives [`CredentialsError::NotLoaded`] here: those need the
/// network or a process, which strongroom-aws handles, reading the same [`ProfileSet`].
#[derive(Debug, Clone, Default)]
pub struct ProfileProvider {
    env: Env,
    profile: Option<String>,
}

impl ProfileProvider {
    /// Uses the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Uses the given environment (for the file paths, `AWS_PROFILE` and the home directory).
    pub fn with_env(env: Env) -> Self {
        Self { env, profile: None }
    }

    /// Uses profile `name`, whatever `AWS_PROFILE` says.
    #[must_use]
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// Loads the credentials now (the files are small and local; nothing is awaited).
    pub fn load(&self) -> Result<Credentials, CredentialsError> {
        let mut set = ProfileSet::load(&self.env)?;
        if let Some(name) = &self.profile {
            set = set.with_selected(name.clone());
        }
        credentials_from_profile(
            &set,
            self.profile.is_some() || self.env.get("AWS_PROFILE").is_some(),
        )
    }
}

impl ProvideCredentials for ProfileProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::ready(self.load())
    }
}

/// The static credentials of the selected profile of `set`. `explicit`: the profile was
/// asked for by name, so its absence is a configuration error rather than "nothing here".
fn credentials_from_profile(
    set: &ProfileSet,
    explicit: bool,
) -> Result<Credentials, CredentialsError> {
    let name = set.selected_name();
    let Some(profile) = set.selected() else {
        let reason = format!("profile `{name}` is not in the shared config or credentials file");
        return Err(if explicit {
            CredentialsError::invalid_configuration(PROFILE_PROVIDER, reason)
        } else {
            CredentialsError::not_loaded(PROFILE_PROVIDER, reason)
        });
    };
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(key_id), Some(secret)) => {
            let mut credentials = Credentials::new(key_id, secret);
            if let Some(token) = profile.get("aws_session_token") {
                credentials = credentials.with_session_token(token);
            }
            tracing::debug!(
                provider = PROFILE_PROVIDER,
                profile = name,
                "loaded credentials"
            );
            Ok(credentials)
        }
        (Some(_), None) => Err(CredentialsError::invalid_configuration(
            PROFILE_PROVIDER,
            format!("profile `{name}` has aws_access_key_id but no aws_secret_access_key"),
        )),
        (None, Some(_)) => Err(CredentialsError::invalid_configuration(
            PROFILE_PROVIDER,
            format!("profile `{name}` has aws_secret_access_key but no aws_access_key_id"),
        )),
        (None, None) => {
            let how = [
                "role_arn",
                "web_identity_token_file",
                "credential_process",
                "sso_session",
                "sso_start_url",
            ]
            .into_iter()
            .find(|key| profile.get(key).is_some());
            let reason = match how {
                Some(key) => format!(
                    "profile `{name}` uses {key}, which needs a network or process provider (strongroom-aws)"
                ),
                None => format!("profile `{name}` has no aws_access_key_id"),
            };
            Err(CredentialsError::not_loaded(PROFILE_PROVIDER, reason))
        }
    }
}

/// The region to use, as the AWS CLI and SDKs find it: `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the `region` of the selected profile (`AWS_PROFILE`, else
/// `default`) in the shared files. `Ok(None)` when none is set; an error only when a shared
/// file exists but cannot be read or parsed.
pub fn resolve_region(env: &Env) -> Result<Option<String>, ProfileError> {
    if let Some(region) = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
    {
        return Ok(Some(region));
    }
    let set = ProfileSet::load(env)?;
    Ok(set
        .selected()
        .and_then(|profile| profile.region())
        .filter(|region| !region.is_empty())
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn set(credentials: &str, selected: &str) -> ProfileSet {
        ProfileSet::parse(None, Some((Path::new("creds"), credentials)), selected).unwrap()
    }

    #[test]
    fn static_keys_and_token() {
        let s = set(
            "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\naws_session_token = TOKEN\n",
            "default",
        );
        let creds = credentials_from_profile(&s, false).unwrap();
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(creds.secret_access_key(), "SECRET");
        assert_eq!(creds.session_token(), Some("TOKEN"));
    }

    #[test]
    fn missing_profile_is_not_loaded_unless_named() {
        let s = set(
            "[other]\naws_access_key_id = A\naws_secret_access_key = S\n",
            "default",
        );
        assert!(
            credentials_from_profile(&s, false)
                .unwrap_err()
                .is_not_loaded()
        );
        let err = credentials_from_profile(&s, true).unwrap_err();
        assert!(
            matches!(err, CredentialsError::InvalidConfiguration { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn half_a_key_pair_is_invalid_and_says_nothing_secret() {
        for text in [
            "[default]\naws_access_key_id = AKID\n",
            "[default]\naws_secret_access_key = SECRETVALUE\n",
        ] {
            let err = credentials_from_profile(&set(text, "default"), false).unwrap_err();
            assert!(
                matches!(err, CredentialsError::InvalidConfiguration { .. }),
                "{err:?}"
            );
            assert!(!format!("{err} {err:?}").contains("SECRETVALUE"));
        }
    }

    #[test]
    fn role_profiles_are_left_to_strongroom_aws() {
        let s = set(
            "[r]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = b\n",
            "r",
        );
        let err = credentials_from_profile(&s, true).unwrap_err();
        assert!(err.is_not_loaded(), "{err:?}");
        assert!(err.to_string().contains("role_arn"), "{err}");
    }
}
