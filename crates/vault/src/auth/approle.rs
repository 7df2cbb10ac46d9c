//! [`AppRole`] login.

use std::fmt;

use zeroize::Zeroizing;

use super::Credential;
use strongroom_core::Error;

/// AppRole login: `POST auth/<mount>/login` with a role id and (usually) a secret id.
///
/// ```
/// use strongroom_vault::{AppRole, Credential};
///
/// let approle = AppRole::new(
///     Credential::value("7f3c…role-id"),
///     Credential::file("/run/secrets/vault-secret-id"),
/// )
/// .mount("approle");
/// assert!(!format!("{approle:?}").contains("role-id"));
/// ```
#[derive(Clone)]
pub struct AppRole {
    mount: String,
    role_id: Credential,
    secret_id: Option<Credential>,
}

impl AppRole {
    /// A login with this role id and secret id, on the default mount `approle`.
    pub fn new(role_id: Credential, secret_id: Credential) -> Self {
        Self {
            mount: "approle".to_owned(),
            role_id,
            secret_id: Some(secret_id),
        }
    }

    /// A login with a role id only, for roles created with `bind_secret_id=false`.
    pub fn role_id_only(role_id: Credential) -> Self {
        Self {
            mount: "approle".to_owned(),
            role_id,
            secret_id: None,
        }
    }

    /// Where the AppRole method is mounted (default `approle`); surrounding `/` are trimmed.
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_owned();
        self
    }

    pub(crate) fn mount_path(&self) -> &str {
        &self.mount
    }

    /// The login body's fields, read now (files are re-read at every login).
    pub(crate) fn fields(&self) -> Result<Vec<(&'static str, Zeroizing<String>)>, Error> {
        let mut fields = vec![("role_id", self.role_id.read("AppRole role id")?)];
        if let Some(secret_id) = &self.secret_id {
            fields.push(("secret_id", secret_id.read("AppRole secret id")?));
        }
        Ok(fields)
    }
}

impl fmt::Debug for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRole")
            .field("mount", &self.mount)
            .field("role_id", &self.role_id)
            .field("secret_id", &self.secret_id)
            .finish()
    }
}
