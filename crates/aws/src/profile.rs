//! [`ProfileChainProvider`]: the selected profile of the shared files, including profiles
//! that assume a role (`role_arn` with `source_profile` or `credential_source`, possibly
//! chained) and profiles with `web_identity_token_file`.
//!
//! Static keys are read by strongroom-sigv4's `ProfileProvider`; this adds the network part.

use std::sync::Arc;
use std::time::Duration;

use strongroom_sigv4::{
    Credentials, CredentialsError, Env, EnvProvider, Profile, ProfileProvider, ProfileSet,
    ProvideCredentials, ProvideFuture,
};

use crate::ecs::EcsProvider;
use crate::imds::ImdsProvider;
use crate::sts::{AssumeRoleRequest, StsClient, default_session_name};

const PROVIDER: &str = "profile";
/// How many roles a profile may chain through before we call it a loop.
const MAX_ROLE_HOPS: usize = 5;

/// Credentials of the selected profile (`AWS_PROFILE`, else `default`), whatever way the
/// profile gets them: static keys, a role assumed from another profile or from
/// `credential_source` (`Environment`, `Ec2InstanceMetadata`, `EcsContainer`), or a web
/// identity token. `credential_process` and SSO profiles are refused with a clear error
/// rather than skipped, so that a chain never silently uses other credentials.
#[derive(Debug, Clone)]
pub struct ProfileChainProvider {
    env: Env,
    profile: Option<String>,
}

/// Where the innermost credentials of a role chain come from.
enum Base {
    Static(String),
    Source(Arc<dyn ProvideCredentials>),
    WebIdentity {
        role_arn: String,
        token_file: String,
        session_name: String,
    },
}

impl ProfileChainProvider {
    /// Reads the process environment and shared files.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Reads the given environment (file paths, `AWS_PROFILE`, home directory).
    pub fn with_env(env: Env) -> Self {
        Self { env, profile: None }
    }

    /// Uses profile `name` whatever `AWS_PROFILE` says.
    #[must_use]
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// Loads the credentials (assuming roles as the profile says).
    ///
    /// # Errors
    /// [`CredentialsError::NotLoaded`] when there is no such profile (and it was not named
    /// explicitly); configuration errors for broken role chains; STS errors.
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        let mut set = ProfileSet::load(&self.env)?;
        if let Some(name) = &self.profile {
            set = set.with_selected(name.clone());
        }
        let selected = set.selected_name().to_owned();
        let explicit = self.profile.is_some() || self.env.get("AWS_PROFILE").is_some();
        let Some(first) = set.selected() else {
            let reason =
                format!("profile `{selected}` is not in the shared config or credentials file");
            return Err(if explicit {
                CredentialsError::invalid_configuration(PROVIDER, reason)
            } else {
                CredentialsError::not_loaded(PROVIDER, reason)
            });
        };
        if first.role_arn().is_none() {
            if first.web_identity_token_file().is_some() {
                return Err(CredentialsError::invalid_configuration(
                    PROVIDER,
                    format!("profile `{selected}` has web_identity_token_file but no role_arn"),
                ));
            }
            return self.static_keys(&selected);
        }
        let (hops, base) = plan(&set, &selected, &self.env)?;
        let sts = StsClient::from_env(&self.env)
            .map_err(|e| CredentialsError::invalid_configuration(PROVIDER, e.to_string()))?;
        let mut credentials = match base {
            Base::Static(name) => self.static_keys(&name)?,
            Base::Source(provider) => provider.provide_credentials().await?,
            Base::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
                let token =
                    zeroize::Zeroizing::new(std::fs::read_to_string(&token_file).map_err(|e| {
                        CredentialsError::invalid_configuration(
                            PROVIDER,
                            format!("cannot read web_identity_token_file {token_file}: {e}"),
                        )
                    })?);
                sts.assume_role_with_web_identity(&role_arn, &session_name, token.trim(), None)
                    .await
                    .map_err(|e| CredentialsError::provider(PROVIDER, e))?
            }
        };
        for hop in hops.iter().rev() {
            credentials = sts
                .assume_role(&credentials, hop)
                .await
                .map_err(|e| CredentialsError::provider(PROVIDER, e))?;
        }
        tracing::debug!(provider = PROVIDER, profile = %selected, roles = hops.len(), "loaded credentials");
        Ok(credentials)
    }

    fn static_keys(&self, name: &str) -> Result<Credentials, CredentialsError> {
        ProfileProvider::with_env(self.env.clone())
            .with_profile(name)
            .load()
    }
}

impl Default for ProfileChainProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ProvideCredentials for ProfileChainProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}

fn role_request(profile: &Profile, role_arn: &str) -> AssumeRoleRequest {
    let mut request = AssumeRoleRequest::new(role_arn).session_name(
        profile
            .role_session_name()
            .map_or_else(default_session_name, str::to_owned),
    );
    if let Some(id) = profile.external_id() {
        request = request.external_id(id);
    }
    if let Some(secs) = profile.duration_seconds() {
        request = request.duration(Duration::from_secs(u64::from(secs)));
    }
    request
}

/// Walks `source_profile` links from `start`: the roles to assume (outermost first) and
/// where the first credentials come from.
fn plan(
    set: &ProfileSet,
    start: &str,
    env: &Env,
) -> Result<(Vec<AssumeRoleRequest>, Base), CredentialsError> {
    let invalid = |reason: String| CredentialsError::invalid_configuration(PROVIDER, reason);
    let mut hops = Vec::new();
    let mut current = start.to_owned();
    loop {
        let profile = set
            .get(&current)
            .ok_or_else(|| invalid(format!("source_profile `{current}` does not exist")))?;
        let Some(role_arn) = profile.role_arn() else {
            return Ok((hops, Base::Static(current)));
        };
        if hops.len() >= MAX_ROLE_HOPS {
            return Err(invalid(format!(
                "profile `{start}` chains through more than {MAX_ROLE_HOPS} roles (a source_profile loop?)"
            )));
        }
        if let Some(file) = profile.web_identity_token_file() {
            let base = Base::WebIdentity {
                role_arn: role_arn.to_owned(),
                token_file: file.to_owned(),
                session_name: profile
                    .role_session_name()
                    .map_or_else(default_session_name, str::to_owned),
            };
            return Ok((hops, base));
        }
        hops.push(role_request(profile, role_arn));
        if let Some(source) = profile.source_profile() {
            if source == current {
                // A profile that is its own source holds the keys for its own role.
                return Ok((hops, Base::Static(current)));
            }
            current = source.to_owned();
            continue;
        }
        let provider: Arc<dyn ProvideCredentials> = match profile.credential_source() {
            Some("Environment") => Arc::new(EnvProvider::with_env(env.clone())),
            Some("Ec2InstanceMetadata") => {
                Arc::new(ImdsProvider::with_env(env.clone()).map_err(|e| invalid(e.to_string()))?)
            }
            Some("EcsContainer") => {
                Arc::new(EcsProvider::with_env(env.clone()).map_err(|e| invalid(e.to_string()))?)
            }
            Some(other) => {
                return Err(invalid(format!(
                    "profile `{current}` has unknown credential_source `{other}`"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "profile `{current}` has role_arn but neither source_profile nor credential_source"
                )));
            }
        };
        return Ok((hops, Base::Source(provider)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn set(config: &str, selected: &str) -> ProfileSet {
        ProfileSet::parse(Some((Path::new("config"), config)), None, selected).unwrap()
    }

    #[test]
    fn plans_a_role_chain() {
        let s = set(
            "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\nexternal_id = x\n\
             [profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = c\n\
             [profile c]\naws_access_key_id = K\naws_secret_access_key = S\n",
            "a",
        );
        let (hops, base) = plan(&s, "a", &Env::from_vars::<&str, &str>([])).unwrap();
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[0].role_arn, "arn:aws:iam::1:role/a");
        assert_eq!(hops[0].external_id.as_deref(), Some("x"));
        assert!(matches!(base, Base::Static(name) if name == "c"));
    }

    #[test]
    fn loops_and_dangling_sources_are_invalid() {
        let s = set(
            "[profile a]\nrole_arn = r\nsource_profile = b\n[profile b]\nrole_arn = r\nsource_profile = a\n",
            "a",
        );
        assert!(matches!(
            plan(&s, "a", &Env::from_vars::<&str, &str>([])),
            Err(CredentialsError::InvalidConfiguration { .. })
        ));
        let s = set("[profile a]\nrole_arn = r\nsource_profile = nope\n", "a");
        assert!(matches!(
            plan(&s, "a", &Env::from_vars::<&str, &str>([])),
            Err(CredentialsError::InvalidConfiguration { .. })
        ));
        let s = set("[profile a]\nrole_arn = r\n", "a");
        assert!(matches!(
            plan(&s, "a", &Env::from_vars::<&str, &str>([])),
            Err(CredentialsError::InvalidConfiguration { .. })
        ));
    }

    #[test]
    fn web_identity_profile_is_the_base() {
        let s = set(
            "[profile a]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\n",
            "a",
        );
        let (hops, base) = plan(&s, "a", &Env::from_vars::<&str, &str>([])).unwrap();
        assert!(hops.is_empty());
        assert!(matches!(base, Base::WebIdentity { .. }));
    }
}
