//! [`StoreSpec`]: a store named in one word, as `strongroom migrate --from SPEC --to SPEC`
//! takes it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use strongroom_core::{Error, SecretStore};

use crate::backend::open_store;
use crate::config::{
    AwsConfig, BackendConfig, DirConfig, EnvConfig, GcpConfig, KeySource, LocalConfig, SsmConfig,
    VaultConfig,
};

/// A store named by a short string:
///
/// | spec | store |
/// |---|---|
/// | `local:PATH` | the encrypted file at PATH; master key from the usual sources |
/// | `env:` / `env:PREFIX` | environment variables (read-only) |
/// | `dir:PATH` | one file per secret under PATH (read-only) |
/// | `vault:` / `vault:MOUNT` / `vault:MOUNT/PREFIX` | Vault KV v2; address and auth from `VAULT_*` |
/// | `aws:` / `aws:PREFIX` | Secrets Manager; region and credentials from `AWS_*` |
/// | `ssm:` / `ssm:/PREFIX` | SSM Parameter Store; region and credentials from `AWS_*` |
/// | `gcp:` / `gcp:PROJECT` / `gcp:PROJECT/PREFIX` / `gcp:/PREFIX` | Google Cloud Secret Manager; project (when not given), endpoint and credentials from Google's variables |
///
/// ```
/// use strongroom_facade::StoreSpec;
///
/// let spec: StoreSpec = "vault:kv/apps/web".parse()?;
/// assert_eq!(
///     spec,
///     StoreSpec::Vault { mount: Some("kv".into()), prefix: Some("apps/web".into()) }
/// );
/// assert_eq!(spec.to_string(), "vault:kv/apps/web");
/// assert!("ftp:x".parse::<StoreSpec>().is_err());
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpec {
    /// `local:PATH`.
    Local {
        /// The store file.
        path: PathBuf,
    },
    /// `env:` or `env:PREFIX`.
    Env {
        /// The variable prefix.
        prefix: Option<String>,
    },
    /// `dir:PATH`.
    Dir {
        /// The directory.
        path: PathBuf,
    },
    /// `vault:`, `vault:MOUNT` or `vault:MOUNT/PREFIX`.
    Vault {
        /// The KV v2 mount (default `secret`).
        mount: Option<String>,
        /// The path under the mount that keys are relative to.
        prefix: Option<String>,
    },
    /// `aws:` or `aws:PREFIX`.
    Aws {
        /// The name prefix that keys are relative to.
        prefix: Option<String>,
    },
    /// `ssm:` or `ssm:/PREFIX` (the leading `/` is optional).
    Ssm {
        /// The parameter folder keys are relative to, without slashes around it.
        prefix: Option<String>,
    },
    /// `gcp:`, `gcp:PROJECT`, `gcp:PROJECT/PREFIX` or `gcp:/PREFIX` (project from
    /// `GOOGLE_CLOUD_PROJECT`).
    Gcp {
        /// The project id (else `GOOGLE_CLOUD_PROJECT`).
        project: Option<String>,
        /// The folder keys are relative to.
        prefix: Option<String>,
    },
}

impl StoreSpec {
    /// Parses a spec; see the type's documentation for the forms.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown scheme or a missing path.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (scheme, rest) = text.split_once(':').ok_or_else(|| {
            Error::config(format!(
                "store spec {text:?} has no scheme: use local:PATH, env:[PREFIX], dir:PATH, \
                 vault:[MOUNT[/PREFIX]], aws:[PREFIX], ssm:[/PREFIX] or gcp:[PROJECT[/PREFIX]]"
            ))
        })?;
        let optional = |s: &str| {
            let s = s.trim_matches('/');
            (!s.is_empty()).then(|| s.to_owned())
        };
        let path = |what: &str| {
            if rest.is_empty() {
                Err(Error::config(format!("store spec {text:?} needs a {what}")))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match scheme {
            "local" => Ok(Self::Local {
                path: path("store file path (local:PATH)")?,
            }),
            "dir" => Ok(Self::Dir {
                path: path("directory (dir:PATH)")?,
            }),
            "env" => Ok(Self::Env {
                prefix: optional(rest),
            }),
            "vault" => {
                let rest = rest.trim_matches('/');
                let (mount, prefix) = match rest.split_once('/') {
                    Some((mount, prefix)) => (optional(mount), optional(prefix)),
                    None => (optional(rest), None),
                };
                Ok(Self::Vault { mount, prefix })
            }
            "aws" => Ok(Self::Aws {
                prefix: optional(rest),
            }),
            "ssm" => Ok(Self::Ssm {
                prefix: optional(rest),
            }),
            "gcp" => {
                // A leading `/` is an empty project: `gcp:/prod/app` is GOOGLE_CLOUD_PROJECT's
                // folder `prod/app`, as the spec of no project and that folder prints.
                let rest = rest.trim_end_matches('/');
                let (project, prefix) = match rest.split_once('/') {
                    Some((project, prefix)) => (optional(project), optional(prefix)),
                    None => (optional(rest), None),
                };
                Ok(Self::Gcp { project, prefix })
            }
            other => Err(Error::config(format!(
                "unknown store scheme {other:?} in {text:?}: expected local, env, dir, vault, aws, ssm or gcp"
            ))),
        }
    }

    /// The backend configuration this spec stands for (settings not in the spec come from
    /// the environment when the store is opened).
    pub fn to_backend_config(&self) -> BackendConfig {
        match self {
            Self::Local { path } => {
                BackendConfig::Local(LocalConfig::new(path.clone(), KeySource::default()))
            }
            Self::Env { prefix } => BackendConfig::Env(EnvConfig {
                prefix: prefix.clone(),
            }),
            Self::Dir { path } => BackendConfig::Dir(DirConfig::new(path.clone())),
            Self::Vault { mount, prefix } => BackendConfig::Vault(VaultConfig {
                mount: mount.clone(),
                prefix: prefix.clone(),
                ..VaultConfig::default()
            }),
            Self::Aws { prefix } => BackendConfig::Aws(AwsConfig {
                prefix: prefix.clone(),
                ..AwsConfig::default()
            }),
            Self::Ssm { prefix } => BackendConfig::Ssm(SsmConfig {
                prefix: prefix.clone(),
                ..SsmConfig::default()
            }),
            Self::Gcp { project, prefix } => BackendConfig::Gcp(GcpConfig {
                project: project.clone(),
                prefix: prefix.clone(),
                ..GcpConfig::default()
            }),
        }
    }

    /// Opens the store.
    ///
    /// # Errors
    /// As [`open_store`].
    pub fn open(&self) -> Result<Arc<dyn SecretStore>, Error> {
        open_store(&self.to_backend_config())
    }
}

impl FromStr for StoreSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { path } => write!(f, "local:{}", path.display()),
            Self::Dir { path } => write!(f, "dir:{}", path.display()),
            Self::Env { prefix } => write!(f, "env:{}", prefix.as_deref().unwrap_or("")),
            Self::Vault { mount, prefix } => {
                write!(f, "vault:{}", mount.as_deref().unwrap_or(""))?;
                match prefix {
                    Some(prefix) => write!(f, "/{prefix}"),
                    None => Ok(()),
                }
            }
            Self::Aws { prefix } => write!(f, "aws:{}", prefix.as_deref().unwrap_or("")),
            Self::Ssm { prefix } => match prefix {
                Some(prefix) => write!(f, "ssm:/{prefix}"),
                None => f.write_str("ssm:"),
            },
            Self::Gcp { project, prefix } => {
                write!(f, "gcp:{}", project.as_deref().unwrap_or(""))?;
                match prefix {
                    Some(prefix) => write!(f, "/{prefix}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssm_specs_parse_print_and_configure() {
        for (text, prefix, shown) in [
            ("ssm:", None, "ssm:"),
            ("ssm:/", None, "ssm:"),
            ("ssm:/prod/app", Some("prod/app"), "ssm:/prod/app"),
            ("ssm:prod/app/", Some("prod/app"), "ssm:/prod/app"),
        ] {
            let spec = StoreSpec::parse(text).unwrap();
            assert_eq!(
                spec,
                StoreSpec::Ssm {
                    prefix: prefix.map(str::to_owned)
                },
                "{text}"
            );
            assert_eq!(spec.to_string(), shown);
            match spec.to_backend_config() {
                BackendConfig::Ssm(c) => assert_eq!(c.prefix.as_deref(), prefix),
                other => panic!("{}", other.kind()),
            }
        }
    }

    #[test]
    fn gcp_specs_parse_print_and_configure() {
        for (text, project, prefix, shown) in [
            ("gcp:", None, None, "gcp:"),
            ("gcp:my-proj", Some("my-proj"), None, "gcp:my-proj"),
            ("gcp:my-proj/", Some("my-proj"), None, "gcp:my-proj"),
            (
                "gcp:my-proj/prod/app/",
                Some("my-proj"),
                Some("prod/app"),
                "gcp:my-proj/prod/app",
            ),
            ("gcp:/prod/app", None, Some("prod/app"), "gcp:/prod/app"),
        ] {
            let spec = StoreSpec::parse(text).unwrap();
            assert_eq!(
                spec,
                StoreSpec::Gcp {
                    project: project.map(str::to_owned),
                    prefix: prefix.map(str::to_owned)
                },
                "{text}"
            );
            assert_eq!(spec.to_string(), shown);
            assert_eq!(
                StoreSpec::parse(shown).unwrap(),
                spec,
                "{shown} round-trips"
            );
            match spec.to_backend_config() {
                BackendConfig::Gcp(c) => {
                    assert_eq!(c.project.as_deref(), project);
                    assert_eq!(c.prefix.as_deref(), prefix);
                    assert_eq!(c.endpoint, None);
                }
                other => panic!("{}", other.kind()),
            }
        }
    }
}
