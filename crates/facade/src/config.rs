//! [`Config`]: which backend to use and how to cache, audit and mirror it, from a TOML file
//! or the environment. The file format is documented in `docs/facade.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use strongroom_cache::CacheConfig;
use strongroom_core::{Error, SecretName};

use crate::key_spec::{KEY_VAR, KeySpec};
use crate::rotation::{
    CronSchedule, DEFAULT_PASSWORD_ALPHABET, Generator, RotationPolicy, RotationSchedule, parse_age,
};

/// The environment variable naming a TOML config file; when set, [`Config::from_env`] reads
/// that file and nothing else.
pub const CONFIG_VAR: &str = "STRONGROOM_CONFIG";

/// The environment variable that turns the cache's circuit breaker off (`false`) or on
/// (`true`, the default): `[cache] breaker` of a file.
pub const BREAKER_VAR: &str = "STRONGROOM_CACHE_BREAKER";

/// The environment variable of `[cache] breaker_threshold`: consecutive `Unavailable`
/// answers that open the circuit breaker.
pub const BREAKER_THRESHOLD_VAR: &str = "STRONGROOM_CACHE_BREAKER_THRESHOLD";

/// The environment variable of `[cache] breaker_cool_down` (`1s`, `500ms`, whole seconds).
pub const BREAKER_COOL_DOWN_VAR: &str = "STRONGROOM_CACHE_BREAKER_COOL_DOWN";

/// The environment variable naming the folder every backend is scoped to (the `prefix` of
/// `[backend]`; for Vault and AWS it wins over `STRONGROOM_VAULT_PREFIX` /
/// `STRONGROOM_AWS_PREFIX`).
pub const PREFIX_VAR: &str = "STRONGROOM_PREFIX";

/// Everything [`Secrets::from_config`](crate::Secrets::from_config) needs.
///
/// ```
/// use strongroom_facade::{BackendConfig, Config};
///
/// let config = Config::from_toml_str(r#"
///     [backend]
///     kind = "local"
///     path = "/var/lib/myapp/secrets.enc"
///     key_file = "/etc/myapp/master.key"
///
///     [cache]
///     ttl_secs = 60
///
///     [audit]
///     file = "/var/log/myapp/secrets-audit.jsonl"
/// "#)?;
/// assert!(matches!(config.backend, BackendConfig::Local(_)));
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The primary store.
    pub backend: BackendConfig,
    /// The cache in front of it.
    #[serde(default)]
    pub cache: CacheSettings,
    /// Where audit lines go besides tracing.
    #[serde(default)]
    pub audit: AuditSettings,
    /// The local encrypted copy of every secret read, served while the primary is down.
    #[serde(default)]
    pub mirror: Option<MirrorSettings>,
    /// Health probe settings.
    #[serde(default)]
    pub health: HealthSettings,
    /// Rotation policies, `[[rotation]]` tables (see [`RotationSettings`]).
    #[serde(default)]
    pub rotation: Vec<RotationSettings>,
}

impl Config {
    /// A configuration for `backend` with default cache, no audit file and no mirror.
    pub fn new(backend: BackendConfig) -> Self {
        Self {
            backend,
            cache: CacheSettings::default(),
            audit: AuditSettings::default(),
            mirror: None,
            health: HealthSettings::default(),
            rotation: Vec::new(),
        }
    }

    /// The policies of the `[[rotation]]` tables, to pass to
    /// [`Secrets::start_rotation`](crate::Secrets::start_rotation).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first table that is wrong.
    pub fn rotation_policies(&self) -> Result<Vec<RotationPolicy>, Error> {
        self.rotation.iter().map(RotationSettings::policy).collect()
    }

    /// Parses a TOML document.
    ///
    /// # Errors
    /// [`Error::Config`] naming the line and field that is wrong.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::config(format!("invalid configuration: {e}")))
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read or parsed.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read configuration {}: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| Error::config(format!("invalid configuration {}: {e}", path.display())))
    }

    /// The configuration the process environment describes; see
    /// [`from_env_with`](Self::from_env_with).
    ///
    /// # Errors
    /// As [`from_env_with`](Self::from_env_with).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// The configuration described by the variables `lookup` returns (the process
    /// environment for [`from_env`](Self::from_env); a map in tests).
    ///
    /// - `STRONGROOM_CONFIG`: a TOML file; when set, the other variables are ignored.
    /// - `STRONGROOM_BACKEND`: `local` (default), `env`, `dir`, `vault`, `aws`, `ssm` or
    ///   `gcp` (project, endpoint and credentials from `GOOGLE_CLOUD_PROJECT`,
    ///   `STRONGROOM_GCP_ENDPOINT` and Google's own variables: docs/gcp.md).
    /// - `STRONGROOM_STORE`: the store file (`local`), the directory (`dir`) or the variable
    ///   prefix (`env`). Vault and AWS read their own variables (`VAULT_ADDR`,
    ///   `VAULT_KV_MOUNT`, `STRONGROOM_VAULT_PREFIX`, `AWS_REGION`, `STRONGROOM_AWS_PREFIX`,
    ///   timeouts and retries, ...: docs/configuration.md) when the store is opened, through
    ///   their builders' `from_env`.
    /// - `STRONGROOM_PREFIX`: the folder every backend is scoped to.
    /// - `STRONGROOM_KEY_FILE`: the master key file of a local store; otherwise
    ///   `STRONGROOM_MASTER_KEY` (base64), `STRONGROOM_PASSPHRASE`, then `<store>.key`.
    /// - `STRONGROOM_CACHE_TTL`, `STRONGROOM_CACHE_MAX_STALE` (seconds),
    ///   `STRONGROOM_CACHE_MAX_ENTRIES`.
    /// - `STRONGROOM_CACHE_BREAKER` (`false` turns the circuit breaker off),
    ///   `STRONGROOM_CACHE_BREAKER_THRESHOLD` (1 to [`MAX_BREAKER_THRESHOLD`]),
    ///   `STRONGROOM_CACHE_BREAKER_COOL_DOWN` (`1s`, `500ms`, whole seconds; within
    ///   [`MIN_BREAKER_COOL_DOWN`] and [`MAX_BREAKER_COOL_DOWN`]), checked now.
    /// - `STRONGROOM_AUDIT_FILE`: append audit lines to this file.
    /// - `STRONGROOM_MIRROR`: keep the local mirror in this file, under the key from
    ///   `STRONGROOM_MIRROR_KEY_FILE`, else `STRONGROOM_MASTER_KEY`, else `<mirror>.key`.
    /// - `STRONGROOM_MIRROR_MAX_AGE`: how old a mirrored copy may be and still be served
    ///   (`24h`, `90m`, or whole seconds; default 24 hours).
    /// - `STRONGROOM_ROTATION`: rotation policies, `app/api-key=90d;app/token=cron:0 3 * * 1`
    ///   (see [`RotationSettings::parse_list`]), checked now.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown backend, a missing `STRONGROOM_STORE`, a number
    /// or duration that does not parse, a breaker setting out of bounds (naming its
    /// variable), or a rotation policy that is wrong.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if let Some(path) = var(CONFIG_VAR) {
            return Self::from_toml_file(path);
        }
        let store = var("STRONGROOM_STORE");
        let need_store = |what: &str| {
            store.clone().ok_or_else(|| {
                Error::config(format!(
                    "STRONGROOM_STORE must name the {what} (or set {CONFIG_VAR})"
                ))
            })
        };
        let prefix = var(PREFIX_VAR);
        let backend = match var("STRONGROOM_BACKEND").as_deref().unwrap_or("local") {
            "local" => {
                let mut local = LocalConfig::new(
                    need_store("local store file")?,
                    KeySource {
                        key_file: var("STRONGROOM_KEY_FILE").map(PathBuf::from),
                        keys: var(KEY_VAR)
                            .map(|list| KeySpec::parse_list(&list))
                            .transpose()?
                            .unwrap_or_default(),
                        ..KeySource::default()
                    },
                );
                local.prefix = prefix;
                BackendConfig::Local(local)
            }
            "env" => BackendConfig::Env(EnvConfig {
                prefix: prefix.or_else(|| store.clone()),
            }),
            "dir" => {
                let mut dir = DirConfig::new(need_store("secrets directory")?);
                dir.prefix = prefix;
                BackendConfig::Dir(dir)
            }
            "vault" => BackendConfig::Vault(VaultConfig {
                prefix,
                ..VaultConfig::default()
            }),
            "aws" => BackendConfig::Aws(AwsConfig {
                prefix,
                ..AwsConfig::default()
            }),
            "ssm" => BackendConfig::Ssm(SsmConfig {
                prefix,
                ..SsmConfig::default()
            }),
            "gcp" => BackendConfig::Gcp(GcpConfig {
                prefix,
                ..GcpConfig::default()
            }),
            other => {
                return Err(Error::config(format!(
                    "STRONGROOM_BACKEND={other:?}: expected local, env, dir, vault, aws, ssm or gcp"
                )));
            }
        };
        let number = |name: &str| -> Result<Option<u64>, Error> {
            var(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        Error::config(format!("{name} must be a whole number, got {v:?}"))
                    })
                })
                .transpose()
        };
        // Each breaker variable is checked here, so that its error names it.
        let named = |name: &'static str| move |e: String| Error::config(format!("{name} {e}"));
        let breaker = var(BREAKER_VAR)
            .map(|v| parse_flag(&v).map_err(named(BREAKER_VAR)))
            .transpose()?;
        let breaker_threshold = var(BREAKER_THRESHOLD_VAR)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| {
                        format!(
                            "must be a whole number from 1 to {MAX_BREAKER_THRESHOLD}, got {v:?}"
                        )
                    })
                    .and_then(check_breaker_threshold)
                    .map_err(named(BREAKER_THRESHOLD_VAR))
            })
            .transpose()?;
        let breaker_cool_down = var(BREAKER_COOL_DOWN_VAR)
            .map(|v| {
                parse_breaker_cool_down(&v)
                    .map(|_| v)
                    .map_err(named(BREAKER_COOL_DOWN_VAR))
            })
            .transpose()?;
        if breaker == Some(false) && (breaker_threshold.is_some() || breaker_cool_down.is_some()) {
            return Err(Error::config(format!(
                "{BREAKER_VAR}=false turns the circuit breaker off, so {BREAKER_THRESHOLD_VAR} and {BREAKER_COOL_DOWN_VAR} would do nothing: unset them or {BREAKER_VAR}"
            )));
        }
        let cache = CacheSettings {
            ttl_secs: number("STRONGROOM_CACHE_TTL")?,
            max_stale_secs: number("STRONGROOM_CACHE_MAX_STALE")?,
            max_entries: number("STRONGROOM_CACHE_MAX_ENTRIES")?,
            breaker,
            breaker_threshold,
            breaker_cool_down,
            ..CacheSettings::default()
        };
        let audit = AuditSettings {
            file: var("STRONGROOM_AUDIT_FILE").map(PathBuf::from),
        };
        let mirror = match var("STRONGROOM_MIRROR") {
            Some(path) => {
                let mut mirror = MirrorSettings::new(
                    path,
                    KeySource {
                        key_file: var("STRONGROOM_MIRROR_KEY_FILE").map(PathBuf::from),
                        keys: var("STRONGROOM_MIRROR_KEY")
                            .map(|list| KeySpec::parse_list(&list))
                            .transpose()?
                            .unwrap_or_default(),
                        ..KeySource::default()
                    },
                );
                if let Some(age) = var("STRONGROOM_MIRROR_MAX_AGE") {
                    parse_max_age(&age)
                        .map_err(|e| Error::config(format!("STRONGROOM_MIRROR_MAX_AGE: {e}")))?;
                    mirror.max_age = Some(age);
                }
                Some(mirror)
            }
            None => None,
        };
        Ok(Self {
            backend,
            cache,
            audit,
            mirror,
            health: HealthSettings::default(),
            rotation: match var(ROTATION_VAR) {
                Some(policies) => RotationSettings::parse_list(&policies)?,
                None => Vec::new(),
            },
        })
    }
}

/// Which store holds the secrets; the `kind` field of the `[backend]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendConfig {
    /// The encrypted file store (strongroom-local's `FileStore`).
    Local(LocalConfig),
    /// Read-only environment variables (`EnvStore`).
    Env(EnvConfig),
    /// Read-only directory of files (`DirStore`).
    Dir(DirConfig),
    /// Vault or OpenBao KV v2 (needs the `vault` feature).
    Vault(VaultConfig),
    /// AWS Secrets Manager (needs the `aws` feature).
    Aws(AwsConfig),
    /// AWS SSM Parameter Store (needs the `aws` feature).
    Ssm(SsmConfig),
    /// Google Cloud Secret Manager (needs the `gcp` feature).
    Gcp(GcpConfig),
}

impl BackendConfig {
    /// The backend's short name: `local`, `env`, `dir`, `vault`, `aws`, `ssm`, `gcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Env(_) => "env",
            Self::Dir(_) => "dir",
            Self::Vault(_) => "vault",
            Self::Aws(_) => "aws",
            Self::Ssm(_) => "ssm",
            Self::Gcp(_) => "gcp",
        }
    }
}

/// Where the master key of an encrypted file comes from. Set at most one field; with none,
/// the usual sources are tried in order: `STRONGROOM_MASTER_KEY` (base64),
/// `STRONGROOM_PASSPHRASE`, then the file `<store>.key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySource {
    /// A file holding the base64 master key.
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the base64 master key.
    pub key_env: Option<String>,
    /// An environment variable holding the passphrase.
    pub passphrase_env: Option<String>,
    /// Key providers, one per key slot, tried in order (`--key`, `STRONGROOM_KEY`, TOML
    /// `keys`): when set, they alone open the store and the fields above are ignored.
    pub keys: Vec<KeySpec>,
}

impl KeySource {
    /// The store opened (or created) through these key slots.
    pub fn keys(keys: impl IntoIterator<Item = KeySpec>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
            ..Self::default()
        }
    }

    /// True when a master key or passphrase source is named (the fields before `keys`).
    pub fn names_local_key(&self) -> bool {
        self.key_file.is_some() || self.key_env.is_some() || self.passphrase_env.is_some()
    }

    /// The key in `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            key_file: Some(path.into()),
            ..Self::default()
        }
    }

    /// The base64 key in the environment variable `var`.
    pub fn env(var: impl Into<String>) -> Self {
        Self {
            key_env: Some(var.into()),
            ..Self::default()
        }
    }
}

/// `[backend] kind = "local"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LocalConfig {
    /// The store file.
    pub path: PathBuf,
    /// A file holding the base64 master key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the base64 master key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// An environment variable holding the passphrase.
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// Key providers, one per key slot, tried in order (`keys = ["aws-kms:alias/app",
    /// "passphrase"]`): when set, they alone open the store; a new store gets one slot each.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Create an empty store when the file does not exist (default false).
    #[serde(default)]
    pub create_if_missing: bool,
    /// A folder every key is relative to (`prod/app`: see [`Scope`](strongroom_core::Scope)).
    #[serde(default)]
    pub prefix: Option<String>,
}

impl LocalConfig {
    /// The store at `path` under the key from `key`.
    pub fn new(path: impl Into<PathBuf>, key: KeySource) -> Self {
        Self {
            path: path.into(),
            key_file: key.key_file,
            key_env: key.key_env,
            passphrase_env: key.passphrase_env,
            keys: key.keys,
            create_if_missing: false,
            prefix: None,
        }
    }

    /// Where its master key comes from.
    pub fn key_source(&self) -> KeySource {
        KeySource {
            key_file: self.key_file.clone(),
            key_env: self.key_env.clone(),
            passphrase_env: self.passphrase_env.clone(),
            keys: self.keys.clone(),
        }
    }
}

/// `[backend] kind = "env"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnvConfig {
    /// Only variables starting with `PREFIX_` are secrets; a folder (`prod/app`) is the
    /// variable prefix `PROD_APP_`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// `[backend] kind = "dir"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DirConfig {
    /// The directory, one file per secret.
    pub path: PathBuf,
    /// A folder under the directory every key is relative to.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl DirConfig {
    /// The directory at `path`, unscoped.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            prefix: None,
        }
    }
}

/// Timeouts and retry budget of a remote backend's requests; every field optional (unset
/// ones keep the backend's defaults: 5 s per attempt, 2 s to connect, 3 attempts, 10 s in
/// all). The same four keys sit in `[backend]` for `vault`, `aws` and `ssm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestSettings {
    /// Seconds for one attempt of one request.
    pub request_timeout_secs: Option<u64>,
    /// Seconds to open a connection.
    pub connect_timeout_secs: Option<u64>,
    /// Attempts per request, the first included (1 never retries).
    pub retry_max_attempts: Option<u32>,
    /// Seconds one request may take, every attempt and wait included.
    pub retry_max_total_secs: Option<u64>,
}

/// `[backend] kind = "vault"`. Unset fields come from `VAULT_ADDR`, `VAULT_TOKEN`,
/// `VAULT_NAMESPACE`, `VAULT_CACERT`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultConfig {
    /// `https://vault.example:8200`.
    #[serde(default)]
    pub address: Option<String>,
    /// Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The KV v2 mount (default `secret`).
    #[serde(default)]
    pub mount: Option<String>,
    /// A path prefix under the mount that every key is relative to.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A PEM file of CA certificates to trust.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// How to log in.
    #[serde(default)]
    pub auth: Option<VaultAuthConfig>,
    /// Allow `http://` to a host that is not this machine (an in-cluster
    /// `http://vault.default.svc:8200`); refused by default.
    #[serde(default)]
    pub allow_plain_http: Option<bool>,
    /// Token renewal: `never`, a fraction of the TTL (`"0.66"`), or seconds before expiry
    /// (`"60s"`).
    #[serde(default)]
    pub renew: Option<String>,
    /// Seconds for one attempt of one request (default 5).
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds to open a connection (default 2).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Attempts per request, the first included (default 3).
    #[serde(default)]
    pub retry_max_attempts: Option<u32>,
    /// Seconds one request may take in all (default 10).
    #[serde(default)]
    pub retry_max_total_secs: Option<u64>,
}

impl VaultConfig {
    /// The timeouts and retry budget.
    pub fn requests(&self) -> RequestSettings {
        RequestSettings {
            request_timeout_secs: self.request_timeout_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            retry_max_attempts: self.retry_max_attempts,
            retry_max_total_secs: self.retry_max_total_secs,
        }
    }
}

/// How the Vault backend authenticates; the `method` field of `[backend.auth]`.
/// Credentials are never in the file: the file names where they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum VaultAuthConfig {
    /// A token from an environment variable (default `VAULT_TOKEN`).
    Token {
        /// The variable holding the token.
        #[serde(default)]
        token_env: Option<String>,
    },
    /// AppRole: a role id and a secret id from an environment variable.
    AppRole {
        /// The role id (not a secret by itself).
        role_id: String,
        /// The variable holding the secret id.
        secret_id_env: String,
        /// The auth mount (default `approle`).
        #[serde(default)]
        mount: Option<String>,
    },
    /// Kubernetes: the service account token file and a role.
    Kubernetes {
        /// The Vault role.
        role: String,
        /// The token file (default the in-pod service account token).
        #[serde(default)]
        jwt_path: Option<PathBuf>,
        /// The auth mount (default `kubernetes`).
        #[serde(default)]
        mount: Option<String>,
    },
}

/// `[backend] kind = "aws"`. Unset fields come from `AWS_REGION` / `AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT_URL(_SECRETS_MANAGER)` and the usual credential chain.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AwsConfig {
    /// `eu-west-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint URL (LocalStack, a VPC endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A name prefix every key is relative to.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The shared-config profile to use.
    #[serde(default)]
    pub profile: Option<String>,
    /// Assume this IAM role with the credentials found otherwise.
    #[serde(default)]
    pub assume_role: Option<AssumeRoleConfig>,
    /// The KMS key (id, ARN or alias) new secrets are encrypted with.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Days (7 to 30) a deleted secret can be restored (default 30).
    #[serde(default)]
    pub recovery_window_days: Option<u32>,
    /// Seconds for one attempt of one request (default 5).
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds to open a connection (default 2).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Attempts per request, the first included (default 3).
    #[serde(default)]
    pub retry_max_attempts: Option<u32>,
    /// Seconds one request may take in all (default 10).
    #[serde(default)]
    pub retry_max_total_secs: Option<u64>,
}

impl AwsConfig {
    /// The timeouts and retry budget.
    pub fn requests(&self) -> RequestSettings {
        RequestSettings {
            request_timeout_secs: self.request_timeout_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            retry_max_attempts: self.retry_max_attempts,
            retry_max_total_secs: self.retry_max_total_secs,
        }
    }
}

/// `[backend] kind = "ssm"`: SSM Parameter Store (`SecureString` parameters; key
/// `app/db/pw` is the parameter `/PREFIX/app/db/pw`). Unset fields come from `AWS_REGION` /
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL(_SSM)`, `STRONGROOM_SSM_PREFIX`,
/// `STRONGROOM_SSM_KMS_KEY_ID`, `STRONGROOM_SSM_TIER` and the usual credential chain.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SsmConfig {
    /// `eu-west-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint URL (moto, a VPC endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The folder every key is relative to (`/prod/app`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// The shared-config profile to use.
    #[serde(default)]
    pub profile: Option<String>,
    /// The KMS key (id, ARN or alias) values are encrypted with (default `alias/aws/ssm`).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// `standard` (values up to 4096 bytes, the default) or `advanced` (8192).
    #[serde(default)]
    pub tier: Option<String>,
    /// Assume this IAM role with the credentials found otherwise.
    #[serde(default)]
    pub assume_role: Option<AssumeRoleConfig>,
    /// Seconds for one attempt of one request (default 5).
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds to open a connection (default 2).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Attempts per request, the first included (default 3).
    #[serde(default)]
    pub retry_max_attempts: Option<u32>,
    /// Seconds one request may take in all (default 10).
    #[serde(default)]
    pub retry_max_total_secs: Option<u64>,
}

impl SsmConfig {
    /// The timeouts and retry budget.
    pub fn requests(&self) -> RequestSettings {
        RequestSettings {
            request_timeout_secs: self.request_timeout_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            retry_max_attempts: self.retry_max_attempts,
            retry_max_total_secs: self.retry_max_total_secs,
        }
    }
}

/// `[backend] kind = "gcp"`: Google Cloud Secret Manager (key `app/db/pw` is a secret id
/// by the reversible encoding docs/gcp.md describes). Unset fields come from
/// `GOOGLE_CLOUD_PROJECT` and `STRONGROOM_GCP_ENDPOINT` (or
/// `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER`); credentials always come the Google
/// way (`GOOGLE_OAUTH_ACCESS_TOKEN`, `GOOGLE_APPLICATION_CREDENTIALS`, application default
/// credentials, the metadata server).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GcpConfig {
    /// The project id (`my-project`) the secrets live in.
    #[serde(default)]
    pub project: Option<String>,
    /// The folder every key is relative to (`prod/app`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// An endpoint URL (an emulator such as drongo, a private endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// `[backend.assume_role]`: STS AssumeRole on top of the credentials found otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AssumeRoleConfig {
    /// `arn:aws:iam::123456789012:role/app`.
    pub role_arn: String,
    /// The session name shown in CloudTrail (default `strongroom-<millis>`).
    #[serde(default)]
    pub session_name: Option<String>,
    /// Seconds the role's credentials live (900 to the role's maximum; STS default 3600).
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// The external id the role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
}

impl AssumeRoleConfig {
    /// Assume `role_arn` with the defaults.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            session_name: None,
            duration_secs: None,
            external_id: None,
        }
    }
}

/// `[cache]`: every field optional; unset ones keep the facade's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSettings {
    /// Seconds a read is served from the cache (default 300).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// At most this many cached entries (default 10,000).
    #[serde(default)]
    pub max_entries: Option<u64>,
    /// At most this many bytes of cached values instead of an entry count.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Seconds past the TTL an entry may be served while the backend is unavailable
    /// (default [`DEFAULT_MAX_STALE`](crate::DEFAULT_MAX_STALE); 0 turns stale serving off).
    #[serde(default)]
    pub max_stale_secs: Option<u64>,
    /// Fraction of the TTL at whose end a hit reloads in the background (e.g. 0.2).
    #[serde(default)]
    pub refresh_ahead: Option<f64>,
    /// Seconds a `NotFound` is cached (default: not cached).
    #[serde(default)]
    pub negative_ttl_secs: Option<u64>,
    /// `false` turns the circuit breaker off: every call goes to the store however often it
    /// failed (default `true`). With `false`, the two settings below must be left out.
    #[serde(default)]
    pub breaker: Option<bool>,
    /// Consecutive `Unavailable` answers that open the circuit breaker, 1 to
    /// [`MAX_BREAKER_THRESHOLD`] (default
    /// [`DEFAULT_BREAKER_THRESHOLD`](strongroom_cache::DEFAULT_BREAKER_THRESHOLD), 5).
    #[serde(default)]
    pub breaker_threshold: Option<u32>,
    /// How long an open breaker refuses calls before one probe goes to the store: a
    /// humantime duration (`"1s"`, `"500ms"`) or whole seconds (`"2"`), from
    /// [`MIN_BREAKER_COOL_DOWN`] to [`MAX_BREAKER_COOL_DOWN`] (default
    /// [`DEFAULT_BREAKER_COOL_DOWN`](strongroom_cache::DEFAULT_BREAKER_COOL_DOWN), 1 s).
    #[serde(default)]
    pub breaker_cool_down: Option<String>,
}

/// The largest `breaker_threshold` a configuration may set. Past it the breaker would in
/// practice never open: say `breaker = false` instead.
pub const MAX_BREAKER_THRESHOLD: u32 = 10_000;

/// The shortest `breaker_cool_down` a configuration may set: the cache's clock ticks this
/// often ([`COARSE_RESOLUTION`](strongroom_cache::COARSE_RESOLUTION)), so a shorter one
/// could not be told apart from it.
pub const MIN_BREAKER_COOL_DOWN: Duration = strongroom_cache::COARSE_RESOLUTION;

/// The longest `breaker_cool_down` a configuration may set: a store that came back is not
/// asked for up to this long, so anything longer is more likely a slip (`"1h"` for `"1s"`)
/// than a wish.
pub const MAX_BREAKER_COOL_DOWN: Duration = Duration::from_secs(3600);

/// A breaker threshold, checked against its bounds; the message names no setting (the
/// caller does).
fn check_breaker_threshold(threshold: u32) -> Result<u32, String> {
    if threshold == 0 {
        return Err(format!(
            "must be 1 to {MAX_BREAKER_THRESHOLD}, not 0 (to turn the breaker off, set breaker = false, STRONGROOM_CACHE_BREAKER=false)"
        ));
    }
    if threshold > MAX_BREAKER_THRESHOLD {
        return Err(format!(
            "must be 1 to {MAX_BREAKER_THRESHOLD}, not {threshold} (past that it would never open: turn it off with breaker = false instead)"
        ));
    }
    Ok(threshold)
}

/// A breaker cool-down: a humantime duration or whole seconds, within
/// [`MIN_BREAKER_COOL_DOWN`] and [`MAX_BREAKER_COOL_DOWN`].
fn parse_breaker_cool_down(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let cool_down = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!(
                "{text:?} is not a duration ({e}): write e.g. \"1s\", \"500ms\" or whole seconds"
            )
        })?,
    };
    if cool_down < MIN_BREAKER_COOL_DOWN || cool_down > MAX_BREAKER_COOL_DOWN {
        return Err(format!(
            "{text:?} is out of range: write {} to {}",
            humantime::format_duration(MIN_BREAKER_COOL_DOWN),
            humantime::format_duration(MAX_BREAKER_COOL_DOWN)
        ));
    }
    Ok(cool_down)
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`, any case), as the other boolean variables.
fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("must be true or false, got {text:?}")),
    }
}

impl CacheSettings {
    /// The circuit breaker these settings describe: `None` when `breaker = false`, else the
    /// threshold and cool-down (the cache's defaults for those left out).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting, for a threshold of 0 or past
    /// [`MAX_BREAKER_THRESHOLD`], a cool-down that is not a duration or lies outside
    /// [`MIN_BREAKER_COOL_DOWN`]..=[`MAX_BREAKER_COOL_DOWN`], or `breaker = false` beside
    /// either of them.
    pub fn breaker_settings(&self) -> Result<Option<(u32, Duration)>, Error> {
        if self.breaker == Some(false) {
            if self.breaker_threshold.is_some() || self.breaker_cool_down.is_some() {
                return Err(Error::config(
                    "[cache] breaker = false turns the circuit breaker off, so breaker_threshold and breaker_cool_down would do nothing: remove them or the breaker = false line",
                ));
            }
            return Ok(None);
        }
        let threshold = match self.breaker_threshold {
            Some(n) => check_breaker_threshold(n)
                .map_err(|e| Error::config(format!("[cache] breaker_threshold {e}")))?,
            None => strongroom_cache::DEFAULT_BREAKER_THRESHOLD,
        };
        let cool_down = match &self.breaker_cool_down {
            Some(text) => parse_breaker_cool_down(text)
                .map_err(|e| Error::config(format!("[cache] breaker_cool_down {e}")))?,
            None => strongroom_cache::DEFAULT_BREAKER_COOL_DOWN,
        };
        Ok(Some((threshold, cool_down)))
    }

    /// The cache configuration these settings describe.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero TTL or bound, a refresh fraction outside (0, 1), or a
    /// breaker setting [`breaker_settings`](Self::breaker_settings) refuses.
    pub fn to_cache_config(&self) -> Result<CacheConfig, Error> {
        let mut builder = CacheConfig::builder().max_stale(
            self.max_stale_secs
                .map_or(crate::DEFAULT_MAX_STALE, Duration::from_secs),
        );
        if let Some(ttl) = self.ttl_secs {
            builder = builder.ttl(Duration::from_secs(ttl));
        }
        if let Some(max) = self.max_entries {
            builder = builder.max_entries(max);
        }
        if let Some(max) = self.max_bytes {
            builder = builder.max_bytes(max);
        }
        if let Some(fraction) = self.refresh_ahead {
            builder = builder.refresh_ahead(fraction);
        }
        if let Some(ttl) = self.negative_ttl_secs {
            builder = builder.negative_ttl(Duration::from_secs(ttl));
        }
        builder = match self.breaker_settings()? {
            Some((threshold, cool_down)) => builder.breaker(threshold, cool_down),
            None => builder.no_breaker(),
        };
        Ok(builder.build()?)
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditSettings {
    /// Append one JSON line per operation to this file.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `[mirror]`: the local encrypted copy of what was read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MirrorSettings {
    /// The mirror file (created when missing).
    pub path: PathBuf,
    /// A file holding the base64 master key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the base64 master key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// An environment variable holding the passphrase.
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// Key providers, one per key slot, tried in order (as [`LocalConfig::keys`]).
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// How old a mirrored copy may be and still be served: `"24h"`, `"90m"`, `"7d"`
    /// (humantime), or whole seconds (`"3600"`); default
    /// [`DEFAULT_MIRROR_MAX_AGE`](crate::DEFAULT_MIRROR_MAX_AGE). See
    /// [`max_age`](Self::max_age).
    #[serde(default)]
    pub max_age: Option<String>,
}

impl MirrorSettings {
    /// The mirror at `path` under the key from `key`.
    pub fn new(path: impl Into<PathBuf>, key: KeySource) -> Self {
        Self {
            path: path.into(),
            key_file: key.key_file,
            key_env: key.key_env,
            passphrase_env: key.passphrase_env,
            keys: key.keys,
            max_age: None,
        }
    }

    /// Where its master key comes from.
    pub fn key_source(&self) -> KeySource {
        KeySource {
            key_file: self.key_file.clone(),
            key_env: self.key_env.clone(),
            passphrase_env: self.passphrase_env.clone(),
            keys: self.keys.clone(),
        }
    }

    /// The maximum age `max_age` sets, or [`DEFAULT_MIRROR_MAX_AGE`](crate::DEFAULT_MIRROR_MAX_AGE).
    ///
    /// # Errors
    /// [`Error::Config`] when it is neither a humantime duration nor whole seconds, or is
    /// zero.
    pub fn max_age(&self) -> Result<Duration, Error> {
        match &self.max_age {
            None => Ok(crate::DEFAULT_MIRROR_MAX_AGE),
            Some(text) => parse_max_age(text),
        }
    }
}

/// A mirror maximum age: whole seconds or a humantime duration (`24h`, `90m`, `7d`).
fn parse_max_age(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let age = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            Error::config(format!(
                "the mirror's max_age {text:?} is not a duration ({e}): write e.g. \"24h\", \"90m\" or whole seconds"
            ))
        })?,
    };
    if age.is_zero() {
        return Err(Error::config(
            "the mirror's max_age must be more than zero (a mirror that may never be served is no mirror: leave it out instead)",
        ));
    }
    Ok(age)
}

/// `[health]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthSettings {
    /// The key the probe reads, expecting it to be absent (default
    /// [`DEFAULT_HEALTH_KEY`](crate::DEFAULT_HEALTH_KEY)).
    #[serde(default)]
    pub probe_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of the file format, each with a misspelt key: the error names the key.
    #[test]
    fn an_unknown_key_in_any_table_is_an_error_naming_it() {
        let cases = [
            ("colour = 1\n[backend]\nkind = \"env\"\n", "colour"),
            (
                "[backend]\nkind = \"local\"\npath = \"p\"\nkey_fil = \"k\"\n",
                "key_fil",
            ),
            ("[backend]\nkind = \"env\"\nprefx = \"A\"\n", "prefx"),
            (
                "[backend]\nkind = \"dir\"\npath = \"p\"\nmode = 1\n",
                "mode",
            ),
            ("[backend]\nkind = \"vault\"\nadress = \"x\"\n", "adress"),
            (
                "[backend]\nkind = \"vault\"\nallow_http = true\n",
                "allow_http",
            ),
            (
                "[backend]\nkind = \"vault\"\n[backend.auth]\nmethod = \"token\"\ntoken = \"t\"\n",
                "token",
            ),
            (
                "[backend]\nkind = \"vault\"\n[backend.auth]\nmethod = \"approle\"\nrole_id = \"r\"\nsecret_id_env = \"S\"\nsecret_id = \"x\"\n",
                "secret_id",
            ),
            (
                "[backend]\nkind = \"vault\"\n[backend.auth]\nmethod = \"kubernetes\"\nrole = \"r\"\njwt = \"x\"\n",
                "jwt",
            ),
            ("[backend]\nkind = \"aws\"\nregoin = \"x\"\n", "regoin"),
            (
                "[backend]\nkind = \"aws\"\n[backend.assume_role]\nrole_arn = \"a\"\nduration = 900\n",
                "duration",
            ),
            ("[backend]\nkind = \"env\"\n[cache]\nttl = 5\n", "ttl"),
            ("[backend]\nkind = \"env\"\n[audit]\npath = \"a\"\n", "path"),
            (
                "[backend]\nkind = \"env\"\n[mirror]\npath = \"m\"\nmax_ag = \"5s\"\n",
                "max_ag",
            ),
            ("[backend]\nkind = \"env\"\n[health]\nkey = \"k\"\n", "key"),
        ];
        for (toml, key) in cases {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert_eq!(err.kind(), strongroom_core::ErrorKind::Config, "{toml}");
            assert!(
                err.to_string().contains(&format!("unknown field `{key}`")),
                "{key}: {err}"
            );
        }
    }

    /// Each row of docs/configuration.md that has a TOML key, set in one file.
    #[test]
    fn every_documented_toml_key_parses() {
        let vault = Config::from_toml_str(
            r#"
            [backend]
            kind = "vault"
            address = "http://vault.default.svc:8200"
            namespace = "team-a"
            mount = "kv"
            prefix = "prod/app"
            ca_cert = "/etc/ca.pem"
            allow_plain_http = true
            renew = "never"
            request_timeout_secs = 9
            connect_timeout_secs = 1
            retry_max_attempts = 5
            retry_max_total_secs = 20
            [backend.auth]
            method = "kubernetes"
            role = "app"

            [cache]
            ttl_secs = 60
            max_stale_secs = 600
            refresh_ahead = 0.2
            max_entries = 100
            negative_ttl_secs = 5
            breaker = true
            breaker_threshold = 3
            breaker_cool_down = "2s"

            [audit]
            file = "/var/log/a.jsonl"

            [mirror]
            path = "/var/lib/m.enc"
            key_file = "/etc/m.key"
            max_age = "36h"

            [health]
            probe_key = "health/probe"
            "#,
        )
        .unwrap();
        let BackendConfig::Vault(v) = &vault.backend else {
            panic!("{}", vault.backend.kind())
        };
        assert_eq!(v.address.as_deref(), Some("http://vault.default.svc:8200"));
        assert_eq!(
            (
                v.namespace.as_deref(),
                v.mount.as_deref(),
                v.prefix.as_deref()
            ),
            (Some("team-a"), Some("kv"), Some("prod/app"))
        );
        assert_eq!(v.allow_plain_http, Some(true));
        assert_eq!(v.renew.as_deref(), Some("never"));
        assert_eq!(
            v.requests(),
            RequestSettings {
                request_timeout_secs: Some(9),
                connect_timeout_secs: Some(1),
                retry_max_attempts: Some(5),
                retry_max_total_secs: Some(20),
            }
        );
        assert!(matches!(v.auth, Some(VaultAuthConfig::Kubernetes { .. })));
        let cache = vault.cache.to_cache_config().unwrap();
        assert_eq!(cache.ttl(), Duration::from_secs(60));
        assert_eq!(
            (cache.breaker_threshold(), cache.breaker_cool_down()),
            (3, Duration::from_secs(2))
        );
        assert_eq!(vault.cache.max_stale_secs, Some(600));
        assert_eq!(vault.cache.refresh_ahead, Some(0.2));
        assert_eq!(
            vault.audit.file.as_deref(),
            Some(Path::new("/var/log/a.jsonl"))
        );
        let mirror = vault.mirror.as_ref().unwrap();
        assert_eq!(mirror.path, Path::new("/var/lib/m.enc"));
        assert_eq!(mirror.key_source(), KeySource::file("/etc/m.key"));
        assert_eq!(mirror.max_age().unwrap(), (Duration::from_secs(36 * 3600)));
        assert_eq!(vault.health.probe_key.as_deref(), Some("health/probe"));

        let aws = Config::from_toml_str(
            r#"
            [backend]
            kind = "aws"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:4566"
            profile = "team"
            prefix = "prod/app"
            kms_key_id = "alias/app"
            recovery_window_days = 7
            request_timeout_secs = 9
            connect_timeout_secs = 1
            retry_max_attempts = 5
            retry_max_total_secs = 20
            [backend.assume_role]
            role_arn = "arn:aws:iam::123456789012:role/app"
            session_name = "app"
            duration_secs = 900
            external_id = "ext"
            "#,
        )
        .unwrap();
        let BackendConfig::Aws(a) = &aws.backend else {
            panic!("{}", aws.backend.kind())
        };
        assert_eq!(
            (
                a.region.as_deref(),
                a.profile.as_deref(),
                a.prefix.as_deref()
            ),
            (Some("eu-west-1"), Some("team"), Some("prod/app"))
        );
        assert_eq!(a.kms_key_id.as_deref(), Some("alias/app"));
        assert_eq!(a.recovery_window_days, Some(7));
        assert_eq!(a.requests().retry_max_total_secs, Some(20));
        let role = a.assume_role.as_ref().unwrap();
        assert_eq!(
            (
                role.role_arn.as_str(),
                role.session_name.as_deref(),
                role.duration_secs,
                role.external_id.as_deref()
            ),
            (
                "arn:aws:iam::123456789012:role/app",
                Some("app"),
                Some(900),
                Some("ext")
            )
        );

        for (kind, extra) in [
            ("local", "path = \"s.enc\"\n"),
            ("dir", "path = \"/run/s\"\n"),
        ] {
            let config = Config::from_toml_str(&format!(
                "[backend]\nkind = \"{kind}\"\n{extra}prefix = \"prod/app\"\n"
            ))
            .unwrap();
            let prefix = match &config.backend {
                BackendConfig::Local(l) => l.prefix.clone(),
                BackendConfig::Dir(d) => d.prefix.clone(),
                other => panic!("{}", other.kind()),
            };
            assert_eq!(prefix.as_deref(), Some("prod/app"), "{kind}");
        }
    }

    #[test]
    fn the_environment_reaches_the_same_fields() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = Config::from_env_with(env(&[
            ("STRONGROOM_STORE", "/data/s.enc"),
            ("STRONGROOM_PREFIX", "prod/app"),
            ("STRONGROOM_CACHE_TTL", "60"),
            ("STRONGROOM_CACHE_MAX_STALE", "600"),
            ("STRONGROOM_CACHE_MAX_ENTRIES", "100"),
            ("STRONGROOM_CACHE_BREAKER_THRESHOLD", "4"),
            ("STRONGROOM_CACHE_BREAKER_COOL_DOWN", "3s"),
            ("STRONGROOM_AUDIT_FILE", "/var/log/a.jsonl"),
            ("STRONGROOM_MIRROR", "/var/lib/m.enc"),
            ("STRONGROOM_MIRROR_KEY_FILE", "/etc/m.key"),
            ("STRONGROOM_MIRROR_MAX_AGE", "90m"),
        ]))
        .unwrap();
        let BackendConfig::Local(local) = &config.backend else {
            panic!()
        };
        assert_eq!(local.prefix.as_deref(), Some("prod/app"));
        assert_eq!(
            (
                config.cache.ttl_secs,
                config.cache.max_stale_secs,
                config.cache.max_entries
            ),
            (Some(60), Some(600), Some(100))
        );
        let cache = config.cache.to_cache_config().unwrap();
        assert_eq!(
            (cache.breaker_threshold(), cache.breaker_cool_down()),
            (4, Duration::from_secs(3))
        );
        assert!(config.audit.file.is_some());
        let mirror = config.mirror.unwrap();
        assert_eq!(mirror.key_source(), KeySource::file("/etc/m.key"));
        assert_eq!(mirror.max_age().unwrap(), (Duration::from_secs(90 * 60)));
        for (backend, want) in [
            ("vault", "vault"),
            ("aws", "aws"),
            ("ssm", "ssm"),
            ("gcp", "gcp"),
            ("dir", "dir"),
            ("env", "env"),
        ] {
            let lookup = move |name: &str| match name {
                "STRONGROOM_BACKEND" => Some(backend.to_owned()),
                "STRONGROOM_STORE" => Some("/run/s".to_owned()),
                "STRONGROOM_PREFIX" => Some("prod/app".to_owned()),
                _ => None,
            };
            let config = Config::from_env_with(lookup).unwrap();
            let prefix = match &config.backend {
                BackendConfig::Vault(v) => v.prefix.clone(),
                BackendConfig::Aws(a) => a.prefix.clone(),
                BackendConfig::Ssm(s) => s.prefix.clone(),
                BackendConfig::Gcp(g) => g.prefix.clone(),
                BackendConfig::Dir(d) => d.prefix.clone(),
                BackendConfig::Env(e) => e.prefix.clone(),
                BackendConfig::Local(l) => l.prefix.clone(),
            };
            assert_eq!(
                (config.backend.kind(), prefix.as_deref()),
                (want, Some("prod/app"))
            );
        }
    }

    /// The breaker as `[cache]` says it, or the error; the cache configuration agrees.
    fn breaker_of_toml(cache: &str) -> Result<Option<(u32, Duration)>, String> {
        let config = Config::from_toml_str(&format!("[backend]\nkind = \"env\"\n[cache]\n{cache}"))
            .map_err(|e| e.to_string())?;
        let breaker = config.cache.breaker_settings().map_err(|e| e.to_string())?;
        let built = config.cache.to_cache_config().map_err(|e| e.to_string())?;
        let threshold = breaker.map_or(0, |(threshold, _)| threshold);
        assert_eq!(built.breaker_threshold(), threshold, "{cache}");
        if let Some((_, cool_down)) = breaker {
            assert_eq!(built.breaker_cool_down(), cool_down, "{cache}");
        }
        Ok(breaker)
    }

    /// Environment variables of a test case.
    type Vars = &'static [(&'static str, &'static str)];
    /// A threshold and cool-down, `None` for no breaker.
    type Breaker = Option<(u32, Duration)>;

    /// The breaker as the environment says it, or the error.
    fn breaker_of_env(pairs: &[(&str, &str)]) -> Result<Option<(u32, Duration)>, String> {
        let config = Config::from_env_with(|name| {
            match name {
                "STRONGROOM_BACKEND" => Some("env"),
                _ => pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
            }
            .map(str::to_owned)
        })
        .map_err(|e| e.to_string())?;
        config.cache.breaker_settings().map_err(|e| e.to_string())
    }

    #[test]
    fn the_breaker_settings_parse_from_a_file_and_bad_ones_are_named() {
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        let good: &[(&str, Option<(u32, Duration)>)] = &[
            ("", Some((5, secs(1)))),
            ("breaker = true\n", Some((5, secs(1)))),
            ("breaker = false\n", None),
            ("breaker_threshold = 3\n", Some((3, secs(1)))),
            ("breaker_threshold = 1\n", Some((1, secs(1)))),
            ("breaker_threshold = 10000\n", Some((10_000, secs(1)))),
            ("breaker_cool_down = \"500ms\"\n", Some((5, ms(500)))),
            ("breaker_cool_down = \"2\"\n", Some((5, secs(2)))),
            ("breaker_cool_down = \" 1m \"\n", Some((5, secs(60)))),
            ("breaker_cool_down = \"10ms\"\n", Some((5, ms(10)))),
            ("breaker_cool_down = \"1h\"\n", Some((5, secs(3600)))),
            (
                "breaker = true\nbreaker_threshold = 7\nbreaker_cool_down = \"250ms\"\n",
                Some((7, ms(250))),
            ),
        ];
        for (cache, want) in good {
            assert_eq!(breaker_of_toml(cache).as_ref(), Ok(want), "{cache}");
        }
        // Each refusal is a configuration error naming the key and saying what is wrong.
        let bad: &[(&str, &[&str])] = &[
            (
                "breaker_threshold = 0\n",
                &["breaker_threshold", "not 0", "breaker = false"],
            ),
            (
                "breaker_threshold = 10001\n",
                &["breaker_threshold", "1 to 10000"],
            ),
            ("breaker_threshold = -1\n", &["breaker_threshold"]),
            ("breaker_threshold = 5000000000\n", &["breaker_threshold"]),
            ("breaker_threshold = \"5\"\n", &["breaker_threshold"]),
            (
                "breaker_cool_down = \"0s\"\n",
                &["breaker_cool_down", "out of range"],
            ),
            (
                "breaker_cool_down = \"0\"\n",
                &["breaker_cool_down", "out of range"],
            ),
            (
                "breaker_cool_down = \"9ms\"\n",
                &["breaker_cool_down", "10ms to 1h"],
            ),
            (
                "breaker_cool_down = \"3601s\"\n",
                &["breaker_cool_down", "out of range"],
            ),
            (
                "breaker_cool_down = \"1y\"\n",
                &["breaker_cool_down", "out of range"],
            ),
            (
                "breaker_cool_down = \"99999999999999999999999y\"\n",
                &["breaker_cool_down", "not a duration"],
            ),
            (
                "breaker_cool_down = \"soon\"\n",
                &["breaker_cool_down", "not a duration"],
            ),
            (
                "breaker_cool_down = \"-1s\"\n",
                &["breaker_cool_down", "not a duration"],
            ),
            (
                "breaker_cool_down = \"\"\n",
                &["breaker_cool_down", "not a duration"],
            ),
            ("breaker_cool_down = 1\n", &["breaker_cool_down", "string"]),
            ("breaker = \"no\"\n", &["breaker"]),
            (
                "breaker = false\nbreaker_threshold = 3\n",
                &["breaker = false", "breaker_threshold"],
            ),
            (
                "breaker = false\nbreaker_cool_down = \"1s\"\n",
                &["breaker = false", "breaker_cool_down"],
            ),
            (
                "breaker_treshold = 3\n",
                &["unknown field `breaker_treshold`"],
            ),
        ];
        for (cache, words) in bad {
            let err = breaker_of_toml(cache).unwrap_err();
            assert!(err.starts_with("configuration error"), "{cache}: {err}");
            for word in *words {
                assert!(err.contains(word), "{cache}: {word:?} not in {err}");
            }
        }
    }

    #[test]
    fn the_breaker_settings_parse_from_the_environment_and_bad_ones_name_the_variable() {
        const OFF: &str = BREAKER_VAR;
        const THRESHOLD: &str = BREAKER_THRESHOLD_VAR;
        const COOL_DOWN: &str = BREAKER_COOL_DOWN_VAR;
        let secs = Duration::from_secs;
        let good: &[(Vars, Breaker)] = &[
            (&[], Some((5, secs(1)))),
            (&[(OFF, "false")], None),
            (&[(OFF, "FALSE")], None),
            (&[(OFF, "0")], None),
            (&[(OFF, "no")], None),
            (&[(OFF, "true")], Some((5, secs(1)))),
            (&[(OFF, "")], Some((5, secs(1)))),
            (&[(THRESHOLD, "3")], Some((3, secs(1)))),
            (
                &[(COOL_DOWN, "250ms")],
                Some((5, Duration::from_millis(250))),
            ),
            (&[(COOL_DOWN, "2")], Some((5, secs(2)))),
            (
                &[(OFF, "true"), (THRESHOLD, "8"), (COOL_DOWN, "30s")],
                Some((8, secs(30))),
            ),
        ];
        for (pairs, want) in good {
            assert_eq!(breaker_of_env(pairs).as_ref(), Ok(want), "{pairs:?}");
        }
        let bad: &[(Vars, &[&str])] = &[
            (&[(OFF, "maybe")], &[OFF, "true or false"]),
            (&[(THRESHOLD, "0")], &[THRESHOLD, "not 0"]),
            (&[(THRESHOLD, "-3")], &[THRESHOLD, "whole number"]),
            (&[(THRESHOLD, "3.5")], &[THRESHOLD, "whole number"]),
            (&[(THRESHOLD, "99999999999")], &[THRESHOLD, "whole number"]),
            (&[(THRESHOLD, "10001")], &[THRESHOLD, "1 to 10000"]),
            (&[(COOL_DOWN, "0")], &[COOL_DOWN, "out of range"]),
            (&[(COOL_DOWN, "2h")], &[COOL_DOWN, "out of range"]),
            (&[(COOL_DOWN, "a while")], &[COOL_DOWN, "not a duration"]),
            (&[(OFF, "false"), (THRESHOLD, "3")], &[OFF, THRESHOLD]),
            (&[(OFF, "false"), (COOL_DOWN, "1s")], &[OFF, COOL_DOWN]),
        ];
        for (pairs, words) in bad {
            let err = breaker_of_env(pairs).unwrap_err();
            assert!(err.starts_with("configuration error"), "{pairs:?}: {err}");
            for word in *words {
                assert!(err.contains(word), "{pairs:?}: {word:?} not in {err}");
            }
        }
    }

    #[test]
    fn the_mirror_max_age_takes_durations_and_seconds_and_refuses_the_rest() {
        let mirror = |age: Option<&str>| {
            let mut m = MirrorSettings::new("m", KeySource::default());
            m.max_age = age.map(str::to_owned);
            m.max_age()
        };
        assert_eq!(mirror(None).unwrap(), (crate::DEFAULT_MIRROR_MAX_AGE));
        assert_eq!(mirror(Some("24h")).unwrap(), (Duration::from_secs(86_400)));
        assert_eq!(
            mirror(Some("7d")).unwrap(),
            (Duration::from_secs(7 * 86_400))
        );
        assert_eq!(mirror(Some("3600")).unwrap(), (Duration::from_secs(3600)));
        for bad in [
            "0",
            "0s",
            "",
            "-1h",
            "soon",
            "1e9",
            "99999999999999999999999y",
        ] {
            let err = mirror(Some(bad)).unwrap_err();
            assert_eq!(err.kind(), strongroom_core::ErrorKind::Config, "{bad:?}");
            assert!(err.to_string().contains("max_age"), "{bad:?}: {err}");
        }
        let err = Config::from_env_with(|name| match name {
            "STRONGROOM_BACKEND" => Some("env".to_owned()),
            "STRONGROOM_MIRROR" => Some("/m".to_owned()),
            "STRONGROOM_MIRROR_MAX_AGE" => Some("a while".to_owned()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(err.kind(), strongroom_core::ErrorKind::Config);
        assert!(
            err.to_string().contains("STRONGROOM_MIRROR_MAX_AGE"),
            "{err}"
        );
    }
}

/// One `[[rotation]]` table: "rotate `key` when its current version is older than `every`",
/// or "... when an instant of the UTC schedule `cron` has passed since it was created".
///
/// ```
/// use strongroom_facade::Config;
///
/// let config = Config::from_toml_str(r#"
///     [backend]
///     kind = "local"
///     path = "/var/lib/myapp/secrets.enc"
///
///     [[rotation]]
///     key = "app/api-key"
///     every = "90d"
///
///     [[rotation]]
///     name = "db-password-monthly"
///     key = "app/db/password"
///     every = "30d"
///     generator = "password"
///     alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
///     length = 24
///
///     [[rotation]]
///     key = "app/token"
///     cron = "0 3 * * 1"   # Mondays, 03:00 UTC
///     generator = "hex"
/// "#)?;
/// let policies = config.rotation_policies()?;
/// assert_eq!(policies[1].name(), "db-password-monthly");
/// assert_eq!(policies[0].max_age().unwrap().as_secs(), 90 * 86_400);
/// assert_eq!(policies[2].schedule().to_string(), "cron 0 3 * * 1");
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RotationSettings {
    /// The secret rotated.
    pub key: String,
    /// The age at which its current version is due: a humantime duration (`90d`, `12h`)
    /// or whole seconds. Exactly one of `every` and `cron` is set.
    #[serde(default)]
    pub every: Option<String>,
    /// A cron schedule in UTC (`0 3 * * 1`; see [`CronSchedule`](crate::CronSchedule)):
    /// due once one of its instants has passed since the current version was created.
    #[serde(default)]
    pub cron: Option<String>,
    /// The name audit lines and logs give the policy (default: the key).
    #[serde(default)]
    pub name: Option<String>,
    /// `base64` (default: random bytes, base64), `hex`, `bytes` (raw) or `password`.
    #[serde(default)]
    pub generator: Option<String>,
    /// How many random bytes `base64`, `hex` and `bytes` draw (default 32).
    #[serde(default)]
    pub bytes: Option<usize>,
    /// The characters of a `password` (default letters and digits).
    #[serde(default)]
    pub alphabet: Option<String>,
    /// How many characters a `password` has (default 32).
    #[serde(default)]
    pub length: Option<usize>,
    /// Where the policy was written, for errors: `None` for a `[[rotation]]` table,
    /// else e.g. `STRONGROOM_ROTATION policy 2`.
    #[serde(skip)]
    origin: Option<String>,
}

impl RotationSettings {
    /// The policy this table describes.
    ///
    /// # Errors
    /// [`Error::Config`] naming the policy, for a bad key, age, cron schedule or generator,
    /// neither or both of `every` and `cron`, or settings that do not belong to the
    /// generator chosen.
    pub fn policy(&self) -> Result<RotationPolicy, Error> {
        let wrong = |what: String| {
            let origin = self.origin.as_deref().unwrap_or("[[rotation]]");
            Error::config(match &self.name {
                Some(name) => format!("{origin} name = {name:?} key = {:?}: {what}", self.key),
                None => format!("{origin} key = {:?}: {what}", self.key),
            })
        };
        let key = SecretName::new(self.key.as_str()).map_err(|e| wrong(e.to_string()))?;
        let schedule = match (&self.every, &self.cron) {
            (Some(every), None) => {
                RotationSchedule::OlderThan(parse_age(every).map_err(|e| wrong(message(e)))?)
            }
            (None, Some(cron)) => {
                RotationSchedule::Cron(CronSchedule::parse(cron).map_err(|e| wrong(message(e)))?)
            }
            (Some(_), Some(_)) => {
                return Err(wrong(
                    "set either every (an age) or cron (a schedule), not both".to_owned(),
                ));
            }
            (None, None) => {
                return Err(wrong(
                    "say when: every = \"90d\" (an age) or cron = \"0 3 * * 1\" (a UTC schedule)"
                        .to_owned(),
                ));
            }
        };
        let kind = self.generator.as_deref().unwrap_or("base64");
        let generator = match kind {
            "base64" | "hex" | "bytes" => {
                if self.alphabet.is_some() || self.length.is_some() {
                    return Err(wrong(format!(
                        "alphabet and length belong to generator = \"password\", not {kind:?} (use bytes)"
                    )));
                }
                let bytes = self.bytes.unwrap_or(crate::DEFAULT_ROTATION_BYTES);
                if bytes == 0 || bytes > crate::MAX_GENERATED_LEN {
                    return Err(wrong(format!(
                        "bytes must be 1 to {}, not {bytes}",
                        crate::MAX_GENERATED_LEN
                    )));
                }
                match kind {
                    "hex" => Generator::hex(bytes),
                    "bytes" => Generator::raw_bytes(bytes),
                    _ => Generator::random(bytes),
                }
            }
            "password" => {
                if self.bytes.is_some() {
                    return Err(wrong(
                        "bytes does not apply to a password (use length)".to_owned(),
                    ));
                }
                Generator::password(
                    self.alphabet
                        .as_deref()
                        .unwrap_or(DEFAULT_PASSWORD_ALPHABET),
                    self.length.unwrap_or(32),
                )
                .map_err(|e| wrong(message(e)))?
            }
            other => {
                return Err(wrong(format!(
                    "generator {other:?}: expected base64, hex, bytes or password"
                )));
            }
        };
        let mut policy = RotationPolicy::on_schedule(key, schedule).generator(generator);
        if let Some(name) = &self.name {
            policy = policy.named(name.clone());
        }
        Ok(policy)
    }

    /// The policies of a [`ROTATION_VAR`] value, each checked as
    /// [`policy`](Self::policy) checks a table; the grammar is in docs/configuration.md:
    ///
    /// ```text
    /// STRONGROOM_ROTATION = policy *( ";" policy )
    /// policy  = KEY "=" ( AGE / "cron:" CRON ) *( "&" option )
    /// option  = ( "name" / "generator" / "bytes" / "alphabet" / "length" ) "=" VALUE
    /// ```
    ///
    /// Spaces around `;`, `&` and `=` are ignored and empty policies skipped. A `%`, `;`, `&`
    /// or `=` inside a key or value is written `%25`, `%3B`, `%26`, `%3D` (any byte may be
    /// written `%XX`), so every character a key or an alphabet can hold can be said.
    ///
    /// ```
    /// use strongroom_facade::RotationSettings;
    ///
    /// let settings = RotationSettings::parse_list(
    ///     "app/api-key=90d; app/token=cron:0 3 * * 1&generator=hex&bytes=16",
    /// )?;
    /// assert_eq!(settings[1].cron.as_deref(), Some("0 3 * * 1"));
    /// assert_eq!(settings[1].policy()?.name(), "app/token");
    /// # Ok::<(), strongroom_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming [`ROTATION_VAR`], the policy's position and what is wrong.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let origin = format!("{ROTATION_VAR} policy {}", out.len() + 1);
            let wrong = |what: &str| Error::config(format!("{origin}: {what}"));
            let mut parts = entry.split('&').map(str::trim);
            let head = parts.next().unwrap_or_default();
            let (key, schedule) = head.split_once('=').ok_or_else(|| {
                wrong(&format!(
                    "{head:?} is not KEY=SCHEDULE (e.g. app/api-key=90d or app/api-key=cron:0 3 * * 1)"
                ))
            })?;
            let decoded = |what: &str, text: &str| {
                percent_decoded(text.trim()).map_err(|e| wrong(&format!("{what}: {e}")))
            };
            let schedule = decoded("the schedule", schedule)?;
            let (every, cron) = match schedule.strip_prefix("cron:") {
                Some(cron) => (None, Some(cron.trim().to_owned())),
                None => (Some(schedule), None),
            };
            let mut settings = Self {
                key: decoded("the key", key)?,
                every,
                cron,
                name: None,
                generator: None,
                bytes: None,
                alphabet: None,
                length: None,
                origin: Some(origin.clone()),
            };
            for option in parts.filter(|o| !o.is_empty()) {
                let (option, value) = option
                    .split_once('=')
                    .ok_or_else(|| wrong(&format!("the option {option:?} is not NAME=VALUE")))?;
                let option = option.trim();
                let value = decoded(option, value)?;
                let number = |value: &str| {
                    value.parse::<usize>().map_err(|_| {
                        wrong(&format!("{option} must be a whole number, not {value:?}"))
                    })
                };
                let twice = match option {
                    "name" => settings.name.replace(value).is_some(),
                    "generator" => settings.generator.replace(value).is_some(),
                    "alphabet" => settings.alphabet.replace(value).is_some(),
                    "bytes" => settings.bytes.replace(number(&value)?).is_some(),
                    "length" => settings.length.replace(number(&value)?).is_some(),
                    other => {
                        return Err(wrong(&format!(
                            "unknown option {other:?}: expected name, generator, bytes, alphabet or length"
                        )));
                    }
                };
                if twice {
                    return Err(wrong(&format!("{option} is given twice")));
                }
            }
            settings.policy()?;
            out.push(settings);
        }
        Ok(out)
    }
}

/// The message of a [`Error::Config`] (without its "configuration error: " prefix, which
/// the error it goes into has already), or the whole error.
fn message(err: Error) -> String {
    match err {
        Error::Config { message } => message,
        other => other.to_string(),
    }
}

/// The environment variable of rotation policies (see [`RotationSettings::parse_list`]),
/// read by [`Config::from_env`] like the `[[rotation]]` tables of a file.
pub const ROTATION_VAR: &str = "STRONGROOM_ROTATION";

/// `text` with each `%XX` replaced by the byte `XX` (hex); a `%` not followed by two hex
/// digits, or bytes that are not UTF-8, are refused rather than guessed at.
fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let hex = bytes
                .get(at + 1..at + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    "a % must be followed by two hex digits (write % itself as %25)".to_owned()
                })?;
            out.push(hex);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the %XX escapes do not make UTF-8 text".to_owned())
}
