//! [`ItestEnv`]: what `cargo xtask services up` tells the suites about the servers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Set by xtask (to the env file's path) when it runs the suites with the environment.
pub const ENV_FILE_VAR: &str = "STRONGROOM_ITEST_ENV";

/// Why the environment could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Neither the process environment nor the env file describe the servers.
    #[error(
        "no real-server environment ({ENV_FILE_VAR} is unset and {} does not exist): \
         run the integration suites with `cargo xtask itest`, or start the servers with \
         `cargo xtask services up` first", path.display()
    )]
    NotStarted {
        /// The env file that was looked for.
        path: PathBuf,
    },
    /// The env file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The env file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A variable the suites need is missing (the env file is from an older xtask?).
    #[error("{name} is not set: rerun `cargo xtask itest` (or `cargo xtask services up`)")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// An endpoint is not on loopback: the suites only ever talk to local servers.
    #[error("{name}={value} is not a loopback http:// endpoint; the suites only talk to 127.0.0.1")]
    NotLoopback {
        /// The variable's name.
        name: &'static str,
        /// Its value (an address, never a credential).
        value: String,
    },
}

/// Addresses and credentials of the servers `cargo xtask services up` started and seeded.
///
/// Credentials are only for these throwaway local servers, but `Debug` still redacts them,
/// like every secret-bearing type in this project.
#[non_exhaustive]
pub struct ItestEnv {
    /// OpenBao's address, `http://127.0.0.1:PORT` (`VAULT_ADDR`).
    pub vault_addr: String,
    /// OpenBao's root token (`VAULT_TOKEN`).
    pub vault_token: String,
    /// The KV v2 mount the AppRole policy covers (`secret`).
    pub vault_kv_mount: String,
    /// A second KV v2 mount (`kv-team`).
    pub vault_team_mount: String,
    /// The prefix under `vault_kv_mount` the AppRole and Kubernetes roles may use (`app/`).
    pub vault_allowed_prefix: String,
    /// A namespace with its own KV v2 mount at `secret/`.
    pub vault_namespace: String,
    /// AppRole role id.
    pub approle_role_id: String,
    /// AppRole secret id.
    pub approle_secret_id: String,
    /// TTL in seconds of tokens from AppRole and Kubernetes logins (short on purpose).
    pub approle_token_ttl_secs: u64,
    /// Mount path of the Kubernetes-style login (`kubernetes`).
    pub k8s_mount: String,
    /// Role for the Kubernetes-style login.
    pub k8s_role: String,
    /// PKCS#8 (DER) file of the ES256 key the server trusts for service-account tokens.
    pub k8s_signing_key: PathBuf,
    /// `iss` the role requires.
    pub k8s_issuer: String,
    /// `aud` the role requires.
    pub k8s_audience: String,
    /// `sub` the role requires.
    pub k8s_subject: String,
    /// LocalStack's endpoint (Secrets Manager, STS).
    pub aws_endpoint: String,
    /// Key id LocalStack accepts.
    pub aws_access_key_id: String,
    /// Secret key LocalStack accepts.
    pub aws_secret_access_key: String,
    /// Region to sign for.
    pub aws_region: String,
    /// moto's endpoint; it checks signatures.
    pub moto_endpoint: String,
    /// Access key id moto issued to the seeded IAM user.
    pub moto_access_key_id: String,
    /// Its secret access key.
    pub moto_secret_access_key: String,
    /// Every variable, for suites that need one not listed above.
    vars: BTreeMap<String, String>,
}

impl fmt::Debug for ItestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItestEnv")
            .field("vault_addr", &self.vault_addr)
            .field("vault_token", &"[REDACTED]")
            .field("vault_namespace", &self.vault_namespace)
            .field("approle_role_id", &self.approle_role_id)
            .field("approle_secret_id", &"[REDACTED]")
            .field("k8s_role", &self.k8s_role)
            .field("k8s_signing_key", &self.k8s_signing_key)
            .field("aws_endpoint", &self.aws_endpoint)
            .field("aws_region", &self.aws_region)
            .field("moto_endpoint", &self.moto_endpoint)
            .field("moto_access_key_id", &self.moto_access_key_id)
            .field("moto_secret_access_key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl ItestEnv {
    /// Loads the environment, panicking with a message that names `cargo xtask itest` when
    /// the servers are not there. This is what a suite calls.
    pub fn load() -> Self {
        match Self::try_load() {
            Ok(env) => env,
            Err(e) => panic!("{e}"),
        }
    }

    /// Loads from the process environment when xtask set it ([`ENV_FILE_VAR`]), otherwise
    /// from the env file under the target folder.
    pub fn try_load() -> Result<Self, EnvError> {
        if std::env::var_os(ENV_FILE_VAR).is_some() {
            Self::from_vars(std::env::vars().collect())
        } else {
            Self::from_file(&default_env_file())
        }
    }

    /// Loads from a `KEY=VALUE` file (lines starting with `#` are comments).
    pub fn from_file(path: &Path) -> Result<Self, EnvError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EnvError::NotStarted {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(EnvError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::from_vars(
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// Builds from a map of variables, checking every endpoint is on loopback.
    pub fn from_vars(vars: BTreeMap<String, String>) -> Result<Self, EnvError> {
        let get = |name: &'static str| -> Result<String, EnvError> {
            vars.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(EnvError::Missing { name })
        };
        let endpoint = |name: &'static str| -> Result<String, EnvError> {
            let value = get(name)?;
            if is_loopback_http(&value) {
                Ok(value)
            } else {
                Err(EnvError::NotLoopback { name, value })
            }
        };
        Ok(Self {
            vault_addr: endpoint("VAULT_ADDR")?,
            vault_token: get("VAULT_TOKEN")?,
            vault_kv_mount: get("STRONGROOM_ITEST_VAULT_KV_MOUNT")?,
            vault_team_mount: get("STRONGROOM_ITEST_VAULT_TEAM_MOUNT")?,
            vault_allowed_prefix: get("STRONGROOM_ITEST_VAULT_ALLOWED_PREFIX")?,
            vault_namespace: get("STRONGROOM_ITEST_VAULT_NAMESPACE")?,
            approle_role_id: get("STRONGROOM_ITEST_APPROLE_ROLE_ID")?,
            approle_secret_id: get("STRONGROOM_ITEST_APPROLE_SECRET_ID")?,
            approle_token_ttl_secs: get("STRONGROOM_ITEST_APPROLE_TOKEN_TTL_SECS")?
                .parse()
                .map_err(|_| EnvError::Missing {
                    name: "STRONGROOM_ITEST_APPROLE_TOKEN_TTL_SECS",
                })?,
            k8s_mount: get("STRONGROOM_ITEST_K8S_MOUNT")?,
            k8s_role: get("STRONGROOM_ITEST_K8S_ROLE")?,
            k8s_signing_key: get("STRONGROOM_ITEST_K8S_SIGNING_KEY")?.into(),
            k8s_issuer: get("STRONGROOM_ITEST_K8S_ISSUER")?,
            k8s_audience: get("STRONGROOM_ITEST_K8S_AUDIENCE")?,
            k8s_subject: get("STRONGROOM_ITEST_K8S_SUBJECT")?,
            aws_endpoint: endpoint("STRONGROOM_ITEST_AWS_ENDPOINT")?,
            aws_access_key_id: get("STRONGROOM_ITEST_AWS_ACCESS_KEY_ID")?,
            aws_secret_access_key: get("STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY")?,
            aws_region: get("AWS_REGION")?,
            moto_endpoint: endpoint("STRONGROOM_ITEST_MOTO_ENDPOINT")?,
            moto_access_key_id: get("STRONGROOM_ITEST_MOTO_ACCESS_KEY_ID")?,
            moto_secret_access_key: get("STRONGROOM_ITEST_MOTO_SECRET_ACCESS_KEY")?,
            vars,
        })
    }

    /// Any variable of the environment by name (for suites added later).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// `target/xtask/services.env`, honouring `CARGO_TARGET_DIR` like cargo does.
fn default_env_file() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("xtask").join("services.env")
}

/// `http://127.x.y.z:port`, `http://localhost:port` or `http://[::1]:port`.
pub(crate) fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, String> {
        [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "root-token-value-xyz"),
            ("STRONGROOM_ITEST_VAULT_KV_MOUNT", "secret"),
            ("STRONGROOM_ITEST_VAULT_TEAM_MOUNT", "kv-team"),
            ("STRONGROOM_ITEST_VAULT_ALLOWED_PREFIX", "app/"),
            ("STRONGROOM_ITEST_VAULT_NAMESPACE", "team-a"),
            ("STRONGROOM_ITEST_APPROLE_ROLE_ID", "role"),
            ("STRONGROOM_ITEST_APPROLE_SECRET_ID", "secret-id-value-xyz"),
            ("STRONGROOM_ITEST_APPROLE_TOKEN_TTL_SECS", "5"),
            ("STRONGROOM_ITEST_K8S_MOUNT", "kubernetes"),
            ("STRONGROOM_ITEST_K8S_ROLE", "itest-k8s"),
            ("STRONGROOM_ITEST_K8S_SIGNING_KEY", "/tmp/key.pk8"),
            ("STRONGROOM_ITEST_K8S_ISSUER", "iss"),
            ("STRONGROOM_ITEST_K8S_AUDIENCE", "aud"),
            ("STRONGROOM_ITEST_K8S_SUBJECT", "sub"),
            ("STRONGROOM_ITEST_AWS_ENDPOINT", "http://localhost:4566"),
            ("STRONGROOM_ITEST_AWS_ACCESS_KEY_ID", "test"),
            ("STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("STRONGROOM_ITEST_MOTO_ENDPOINT", "http://[::1]:5000"),
            ("STRONGROOM_ITEST_MOTO_ACCESS_KEY_ID", "AKIA"),
            (
                "STRONGROOM_ITEST_MOTO_SECRET_ACCESS_KEY",
                "moto-secret-value-xyz",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn loads_a_complete_environment_and_redacts_credentials() {
        let env = ItestEnv::from_vars(sample()).unwrap();
        assert_eq!(env.approle_token_ttl_secs, 5);
        assert_eq!(env.var("AWS_REGION"), Some("us-east-1"));
        let debug = format!("{env:?}");
        for secret in [
            "root-token-value-xyz",
            "secret-id-value-xyz",
            "moto-secret-value-xyz",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("[REDACTED]"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut vars = sample();
        vars.remove("STRONGROOM_ITEST_MOTO_ENDPOINT");
        let err = ItestEnv::from_vars(vars).unwrap_err();
        assert!(err.to_string().contains("STRONGROOM_ITEST_MOTO_ENDPOINT"));
    }

    #[test]
    fn a_remote_endpoint_is_refused() {
        for remote in [
            "http://10.0.0.1:8200",
            "https://127.0.0.1:8200",
            "http://vault.example.com",
        ] {
            let mut vars = sample();
            vars.insert("VAULT_ADDR".to_owned(), remote.to_owned());
            assert!(matches!(
                ItestEnv::from_vars(vars),
                Err(EnvError::NotLoopback { .. })
            ));
        }
    }

    #[test]
    fn no_env_file_names_cargo_xtask_itest() {
        let err = ItestEnv::from_file(Path::new("/nonexistent/services.env")).unwrap_err();
        assert!(err.to_string().contains("cargo xtask itest"), "{err}");
    }

    #[test]
    fn env_file_lines_are_parsed() {
        let path = std::env::temp_dir().join(format!("itest-env-{}.env", std::process::id()));
        let mut text = String::from("# comment\n");
        for (k, v) in sample() {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let env = ItestEnv::from_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(env.vault_addr, "http://127.0.0.1:8200");
    }
}
