//! [`Kubernetes`] login.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::Credential;
use strongroom_core::Error;

/// Where Kubernetes mounts a pod's service-account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Kubernetes login: `POST auth/<mount>/login` with a role and the pod's service-account
/// JWT, read from its file at every login (kubelet rotates projected tokens).
///
/// ```
/// use strongroom_vault::Kubernetes;
///
/// let k8s = Kubernetes::new("my-app").mount("kubernetes");
/// # drop(k8s);
/// ```
#[derive(Clone)]
pub struct Kubernetes {
    mount: String,
    role: String,
    jwt: Credential,
}

impl Kubernetes {
    /// A login as `role`, on the default mount `kubernetes`, with the JWT from
    /// [`DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH`].
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt: Credential::file(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH),
        }
    }

    /// Where the Kubernetes method is mounted (default `kubernetes`).
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_owned();
        self
    }

    /// Reads the JWT from this file instead of the default one.
    #[must_use]
    pub fn jwt_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwt = Credential::file(path);
        self
    }

    /// Takes the JWT from anywhere (a value, a file).
    #[must_use]
    pub fn jwt(mut self, jwt: Credential) -> Self {
        self.jwt = jwt;
        self
    }

    pub(crate) fn mount_path(&self) -> &str {
        &self.mount
    }

    pub(crate) fn fields(&self) -> Result<Vec<(&'static str, Zeroizing<String>)>, Error> {
        Ok(vec![
            ("role", Zeroizing::new(self.role.clone())),
            ("jwt", self.jwt.read("Kubernetes service-account token")?),
        ])
    }
}

impl fmt::Debug for Kubernetes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kubernetes")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("jwt", &self.jwt)
            .finish()
    }
}
