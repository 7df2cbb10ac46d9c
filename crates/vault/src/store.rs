//! [`VaultStore`]: strongroom's [`SecretStore`] on one KV v2 mount.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use strongroom_core::{
    Capabilities, Error, Metadata, NodeReport, Precondition, PutOptions, Scope, Secret, SecretName,
    SecretStore, SecretValue, VersionId, VersionInfo, async_trait,
};

use crate::auth::{AppRole, Auth, Credential, Kubernetes, Token};
use crate::client::{VaultClient, VaultClientBuilder};
use crate::data::SecretData;
use crate::kv2::{Kv2, KvMetadata, MetadataUpdate, VersionMetadata};
use crate::lifecycle::RenewPolicy;
use crate::path::{encode_key, encode_path, split_prefix};

/// The default KV v2 mount (`VAULT_KV_MOUNT`).
pub const DEFAULT_KV_MOUNT: &str = "secret";
/// The custom-metadata key holding [`Metadata::description`].
pub const DESCRIPTION_KEY: &str = "description";

/// Vault's KV v2 engine as a [`SecretStore`].
///
/// - `get`/`get_version` read `{"value": …}` (or `value_base64`) from the version's data;
///   the version is the KV version number; `created` and description/tags come along.
/// - `put_with`: [`Precondition::Absent`] is `cas=0`, [`Precondition::Version`] is
///   `cas=<n>`; a lost race is `Conflict`. [`Metadata`] is written to custom metadata
///   (`description` plus one key per tag) after the value.
/// - `delete` reads the metadata, then soft-deletes the latest version (a secret whose
///   current version is already deleted is `NotFound { deleted: true }`); `undelete`
///   restores the current version;
///   `purge` deletes the metadata and every version.
/// - `list(prefix)` walks the folder part of the prefix recursively and filters, leaving
///   out secrets whose current version is deleted or destroyed (one metadata read per key).
/// - `versions` comes from the metadata, oldest first.
#[derive(Clone, Debug)]
pub struct VaultStore {
    kv: Kv2,
    scope: Scope,
}

impl VaultStore {
    /// A store on `mount` of `client`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad mount path.
    pub fn new(client: &VaultClient, mount: &str) -> Result<Self, Error> {
        Ok(Self {
            kv: client.kv2(mount)?,
            scope: Scope::root(),
        })
    }

    /// This store scoped to the folder `prefix` under the mount (see
    /// [`VaultStoreBuilder::prefix`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a prefix that is not a folder name.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        self.scope = scope_of(prefix)?;
        Ok(self)
    }

    /// The folder under the mount every key is in (root when unscoped).
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The path under the mount that holds `key`.
    fn path(&self, key: &SecretName) -> String {
        self.scope.full_str(key)
    }

    /// A builder: a [`VaultClientBuilder`] plus the mount.
    pub fn builder() -> VaultStoreBuilder {
        VaultStoreBuilder::default()
    }

    /// A store configured from the environment, like the `vault` CLI:
    ///
    /// | Variable | Meaning |
    /// |---|---|
    /// | `VAULT_ADDR` | server address (required) |
    /// | `VAULT_NAMESPACE` | namespace for every request |
    /// | `VAULT_CACERT` | PEM CA bundle to trust instead of the public roots |
    /// | `VAULT_CAPATH` | directory of PEM CA files to trust instead of the public roots (ignored when `VAULT_CACERT` is set, as by the vault CLI) |
    /// | `VAULT_SKIP_VERIFY` | refused when true: verification is never turned off |
    /// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | PEM client certificate and key (mTLS) |
    /// | `VAULT_KV_MOUNT` | KV v2 mount (default `secret`) |
    /// | `VAULT_ROLE_ID` (or `VAULT_ROLE_ID_FILE`), `VAULT_SECRET_ID` (or `VAULT_SECRET_ID_FILE`) | AppRole login |
    /// | `VAULT_APPROLE_MOUNT` | AppRole mount (default `approle`) |
    /// | `VAULT_K8S_ROLE` | Kubernetes login as this role |
    /// | `VAULT_K8S_TOKEN_PATH` | service-account JWT file (default the pod's) |
    /// | `VAULT_K8S_MOUNT` | Kubernetes auth mount (default `kubernetes`) |
    /// | `VAULT_TOKEN` | static token |
    /// | `STRONGROOM_VAULT_PREFIX` | the folder under the mount every key is in ([`VaultStoreBuilder::prefix`]) |
    /// | `STRONGROOM_VAULT_ALLOW_PLAIN_HTTP` | `true` allows `http://` to a host that is not this machine |
    /// | `STRONGROOM_VAULT_RENEW` | token renewal: `never`, a fraction of the TTL (`0.66`), or `60s` before expiry |
    /// | `STRONGROOM_REQUEST_TIMEOUT_SECS` (else `VAULT_CLIENT_TIMEOUT`) | time for one attempt of one request |
    /// | `STRONGROOM_CONNECT_TIMEOUT_SECS` | time to open a connection |
    /// | `STRONGROOM_RETRY_MAX_ATTEMPTS` (else `VAULT_MAX_RETRIES` + 1) | attempts per request |
    /// | `STRONGROOM_RETRY_MAX_TOTAL_SECS` | budget of one request, retries included |
    ///
    /// Auth is AppRole when a role id is set, else Kubernetes when `VAULT_K8S_ROLE` is set,
    /// else the token from `VAULT_TOKEN`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when `VAULT_ADDR` is unset, no auth method is
    /// configured, or a setting is malformed.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with variables from `lookup` (for tests, or a config
    /// file mapped to the same names).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        builder_from_lookup(&lookup)?.build()
    }

    /// The KV v2 engine underneath, for everything the trait does not cover.
    pub fn kv(&self) -> &Kv2 {
        &self.kv
    }

    /// The client underneath (stats, `lookup_self`, other mounts).
    pub fn client(&self) -> &VaultClient {
        self.kv.client()
    }

    /// The whole data map of the current version of `key`, for multi-field secrets.
    ///
    /// # Errors
    /// As [`get`](SecretStore::get).
    pub async fn read_data(&self, key: &SecretName) -> Result<SecretData, Error> {
        encode_key(key)?;
        Ok(self.kv.read(&self.path(key)).await?.data)
    }

    /// Writes a whole data map as a new version of `key`; returns its version.
    ///
    /// # Errors
    /// As [`put_with`](SecretStore::put_with).
    pub async fn write_data(
        &self,
        key: &SecretName,
        data: &SecretData,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        self.write_map(key, data.expose(), options).await
    }

    async fn write_map(
        &self,
        key: &SecretName,
        data: &Map<String, Value>,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        encode_key(key)?;
        let cas = match &options.precondition {
            None => None,
            Some(Precondition::Absent) => Some(0),
            Some(Precondition::Version(v)) => Some(version_number(key, v)?),
            Some(_) => return Err(Error::unsupported(crate::BACKEND, "this precondition")),
        };
        let custom = options.metadata.as_ref().map(custom_metadata).transpose()?;
        let written = self
            .kv
            .write(&self.path(key), &SecretData::from_map(data.clone()), cas)
            .await?;
        if let Some(custom) = custom {
            self.kv
                .write_metadata(&self.path(key), &MetadataUpdate::custom(custom))
                .await?;
        }
        Ok(VersionId::from(written.version))
    }

    fn secret(
        key: &SecretName,
        data: &SecretData,
        meta: &VersionMetadata,
    ) -> Result<Secret, Error> {
        let mut secret = Secret::new(
            key.clone(),
            data.to_value().map_err(|e| match e {
                Error::InvalidValue { message } => Error::InvalidValue {
                    message: format!("{key}: {message}"),
                },
                other => other,
            })?,
            VersionId::from(meta.version),
        )
        .metadata(metadata_of(&meta.custom_metadata));
        if let Some(created) = meta.created_time {
            secret = secret.created(created);
        }
        Ok(secret)
    }

    async fn metadata_of_key(&self, key: &SecretName) -> Result<KvMetadata, Error> {
        self.kv.read_metadata(&self.path(key)).await
    }

    /// Traces one store operation (never the value).
    fn traced<T>(&self, op: &'static str, key: &str, started: Instant, result: &Result<T, Error>) {
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(_) => tracing::debug!(
                backend = crate::BACKEND,
                mount = self.kv.mount(),
                operation = op,
                key,
                outcome = "ok",
                latency_ms,
                "secret access"
            ),
            Err(e) => tracing::debug!(
                backend = crate::BACKEND,
                mount = self.kv.mount(),
                operation = op,
                key,
                outcome = e.kind().as_str(),
                latency_ms,
                "secret access"
            ),
        }
    }
}

fn version_number(key: &SecretName, version: &VersionId) -> Result<u64, Error> {
    version
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::InvalidValue {
            message: format!("{key}: Vault versions are positive integers, not {version:?}"),
        })
}

/// `description` plus one entry per tag.
fn custom_metadata(metadata: &Metadata) -> Result<BTreeMap<String, String>, Error> {
    let mut custom = BTreeMap::new();
    if let Some(description) = &metadata.description {
        custom.insert(DESCRIPTION_KEY.to_owned(), description.clone());
    }
    for (name, value) in &metadata.tags {
        if name == DESCRIPTION_KEY {
            return Err(Error::InvalidValue {
                message: format!(
                    "a tag cannot be named {DESCRIPTION_KEY:?}: Vault custom metadata keeps the description there"
                ),
            });
        }
        custom.insert(name.clone(), value.clone());
    }
    Ok(custom)
}

fn metadata_of(custom: &BTreeMap<String, String>) -> Metadata {
    let mut metadata = Metadata::default();
    for (name, value) in custom {
        if name == DESCRIPTION_KEY {
            metadata.description = Some(value.clone());
        } else {
            metadata = metadata.tag(name.clone(), value.clone());
        }
    }
    metadata
}

#[async_trait]
impl SecretStore for VaultStore {
    fn backend(&self) -> &'static str {
        crate::BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    /// Every node's `sys/health` when the client was given several addresses (a cluster);
    /// nothing for one address, so a single server's health costs no extra request.
    async fn nodes(&self) -> Vec<NodeReport> {
        let client = self.kv.client();
        if client.addresses().len() < 2 {
            return Vec::new();
        }
        client
            .node_health()
            .await
            .into_iter()
            .map(|node| {
                let serving = node.state.serving();
                NodeReport::new(node.address, node.state.to_string(), serving, node.current)
            })
            .collect()
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = async {
            // No separate `encode_key`: the read encodes the key and refuses a bad one.
            let read = self.kv.read(&self.path(key)).await?;
            Self::secret(key, &read.data, &read.metadata)
        }
        .await;
        self.traced("get", key.as_str(), started, &result);
        result
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        let started = Instant::now();
        let result = async {
            let n = version_number(key, version)?;
            let read = self.kv.read_version(&self.path(key), n).await?;
            Self::secret(key, &read.data, &read.metadata)
        }
        .await;
        self.traced("get_version", key.as_str(), started, &result);
        result
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        let started = Instant::now();
        let data = SecretData::from_value(&value);
        drop(value);
        let result = self.write_map(key, data.expose(), options).await;
        self.traced("put", key.as_str(), started, &result);
        result
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = async {
            encode_key(key)?;
            // Vault answers 204 for a path that never existed, and for one whose current
            // version is already deleted; the trait promises NotFound for both (`deleted:
            // true` where `undelete` can bring it back, as `get` says).
            let meta = self.metadata_of_key(key).await?;
            match meta.current() {
                Some(v) if !v.destroyed && !v.is_deleted() => {}
                current => {
                    return Err(Error::NotFound {
                        key: key.as_str().to_owned(),
                        version: None,
                        deleted: current.is_some_and(VersionMetadata::is_deleted),
                    });
                }
            }
            self.kv.delete_latest(&self.path(key)).await
        }
        .await;
        self.traced("delete", key.as_str(), started, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let started = Instant::now();
        let result = async {
            let full = self.scope.list_prefix(prefix);
            let (folder, _) = split_prefix(&full);
            let mut keys = Vec::new();
            for path in self.kv.walk(folder).await? {
                if !path.starts_with(&full) {
                    continue;
                }
                let Some(key) = self.scope.key_of(&path) else {
                    // A name strongroom cannot represent (written by another tool).
                    tracing::debug!(
                        backend = crate::BACKEND,
                        "skipping a Vault path that is not a valid key"
                    );
                    continue;
                };
                let live = match self.kv.read_metadata(&path).await {
                    Ok(meta) => meta
                        .current()
                        .is_some_and(|v| !v.destroyed && !v.is_deleted()),
                    // Purged between the list and now.
                    Err(Error::NotFound { .. }) => false,
                    Err(e) => return Err(e),
                };
                if live {
                    keys.push(key);
                }
            }
            keys.sort();
            Ok(keys)
        }
        .await;
        self.traced("list", prefix, started, &result);
        result
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let started = Instant::now();
        let result = async {
            encode_key(key)?;
            let meta = self.metadata_of_key(key).await?;
            Ok(meta
                .versions
                .values()
                .map(|v| {
                    let mut info = VersionInfo::new(
                        VersionId::from(v.version),
                        v.created_time,
                        v.version == meta.current_version,
                    );
                    info.deleted = v.is_deleted();
                    info.destroyed = v.destroyed;
                    info
                })
                .collect())
        }
        .await;
        self.traced("versions", key.as_str(), started, &result);
        result
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = async {
            encode_key(key)?;
            let meta = self.metadata_of_key(key).await?;
            if meta.current_version == 0 {
                return Err(Error::not_found(key));
            }
            self.kv
                .undelete_versions(&self.path(key), &[meta.current_version])
                .await
        }
        .await;
        self.traced("undelete", key.as_str(), started, &result);
        result
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        let started = Instant::now();
        let result = async {
            encode_key(key)?;
            self.metadata_of_key(key).await?;
            self.kv.delete_metadata(&self.path(key)).await
        }
        .await;
        self.traced("purge", key.as_str(), started, &result);
        result
    }
}

/// The variable [`VaultStoreBuilder::from_env`] reads the folder prefix from.
pub const PREFIX_VAR: &str = "STRONGROOM_VAULT_PREFIX";

/// Builds a [`VaultStore`]: client settings, the mount and the folder prefix. The one way
/// to build one: [`from_env`](Self::from_env) fills it from the environment, the facade
/// from its TOML and `StoreSpec`, code through the setters.
#[derive(Debug, Default)]
pub struct VaultStoreBuilder {
    client: VaultClientBuilder,
    mount: Option<String>,
    prefix: Option<String>,
}

impl VaultStoreBuilder {
    /// A builder with what the process environment says; see
    /// [`VaultStore::from_env`] for the variables.
    ///
    /// # Errors
    /// [`Error::Config`] naming a malformed variable. A missing address or credentials are
    /// reported by [`build`](Self::build), so a caller can still set them.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with variables from `lookup`.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        builder_from_lookup(&lookup)
    }

    /// The KV v2 mount (default `secret`; `VAULT_KV_MOUNT`).
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }

    /// Scopes the store to the folder `prefix` under the mount (a [`Scope`]): `prod/app`,
    /// `prod/app/` and `/prod/app` all make key `db/pw` the path `prod/app/db/pw`, and
    /// nothing outside `prod/app/` (not `prod/application/...`) can be listed, read,
    /// written or deleted (`STRONGROOM_VAULT_PREFIX`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Changes the client settings (address, auth, namespace, TLS, timeouts).
    #[must_use]
    pub fn client(
        mut self,
        configure: impl FnOnce(VaultClientBuilder) -> VaultClientBuilder,
    ) -> Self {
        self.client = configure(self.client);
        self
    }

    /// Builds the client and the store.
    ///
    /// # Errors
    /// As [`VaultClientBuilder::build`]; [`Error::Config`] for a prefix that is not a
    /// folder name.
    pub fn build(self) -> Result<VaultStore, Error> {
        let mount = self.mount.unwrap_or_else(|| DEFAULT_KV_MOUNT.to_owned());
        let scope = scope_of(self.prefix.as_deref().unwrap_or(""))?;
        let mut store = VaultStore::new(&self.client.build()?, &mount)?;
        store.scope = scope;
        Ok(store)
    }
}

/// `VAULT_SKIP_VERIFY` asks the vault CLI to accept any certificate. strongroom never does
/// (a token sent to an impostor is a token lost), and never ignores the variable silently:
/// a true value is refused with what to do instead; a false one (`0`, `false`) is accepted.
fn refuse_skip_verify(value: Option<&str>) -> Result<(), Error> {
    let Some(value) = value.map(str::trim) else {
        return Ok(());
    };
    // Go's strconv.ParseBool, which the vault CLI uses.
    match value {
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(()),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Err(Error::config(
            "VAULT_SKIP_VERIFY is set: strongroom never turns off TLS certificate \
             verification, since the token would go to whoever answers. Unset it, and set \
             VAULT_CACERT to the PEM file of the CA that signed the Vault server's \
             certificate (or VAULT_CAPATH to a directory of such files)",
        )),
        _ => Err(Error::config(format!(
            "VAULT_SKIP_VERIFY={value:?} is not a boolean; strongroom never turns off TLS \
             certificate verification: unset it, and set VAULT_CACERT to the server's CA"
        ))),
    }
}

/// The scope `prefix` names; its segments are also checked as Vault path segments, so a key
/// that encodes alone encodes under the scope too.
fn scope_of(prefix: &str) -> Result<Scope, Error> {
    let bad = |e: Error| {
        Error::config(format!(
            "the Vault prefix {prefix:?} is not a folder name: {e}"
        ))
    };
    let scope = Scope::new(prefix).map_err(bad)?;
    if !scope.is_root() {
        encode_path(scope.as_str()).map_err(bad)?;
    }
    Ok(scope)
}

/// A renew policy as written in configuration: `never`, a fraction of the TTL (`0.66`), or
/// a margin before expiry in seconds (`60s`).
impl std::str::FromStr for RenewPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let bad = || {
            Error::config(format!(
                "renew policy {text:?}: expected `never`, a fraction of the TTL such as \
                 `0.66`, or seconds before expiry such as `60s`"
            ))
        };
        if text.eq_ignore_ascii_case("never") {
            return Ok(Self::Never);
        }
        if let Some(secs) = text.strip_suffix('s') {
            let secs: u64 = secs.trim().parse().map_err(|_| bad())?;
            return Ok(Self::BeforeExpiry(Duration::from_secs(secs)));
        }
        match text.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(Self::Fraction(f)),
            _ => Err(bad()),
        }
    }
}

/// Whole seconds, optionally followed by `s` (`30`, `30s`), as `VAULT_CLIENT_TIMEOUT` takes.
fn seconds(name: &str, text: &str) -> Result<Duration, Error> {
    let digits = text.trim().strip_suffix('s').unwrap_or(text.trim());
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| Error::config(format!("{name} must be whole seconds, got {text:?}")))
}

fn flag(name: &str, text: &str) -> Result<bool, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(Error::config(format!(
            "{name} must be true or false, got {text:?}"
        ))),
    }
}

/// The store builder the environment describes.
fn builder_from_lookup(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<VaultStoreBuilder, Error> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut builder = VaultClient::builder();
    if let Some(address) = get("VAULT_ADDR") {
        builder = builder.address(address);
    }
    if let Some(namespace) = get("VAULT_NAMESPACE") {
        builder = builder.namespace(namespace);
    }
    refuse_skip_verify(get("VAULT_SKIP_VERIFY").as_deref())?;
    // As the vault CLI: VAULT_CACERT wins over VAULT_CAPATH, and either replaces the
    // public roots.
    if let Some(ca) = get("VAULT_CACERT") {
        builder = builder.ca_file(PathBuf::from(ca));
    } else if let Some(dir) = get("VAULT_CAPATH") {
        builder = builder.ca_path(PathBuf::from(dir));
    }
    match (get("VAULT_CLIENT_CERT"), get("VAULT_CLIENT_KEY")) {
        (Some(cert), Some(key)) => builder = builder.client_identity(cert, key),
        (None, None) => {}
        _ => {
            return Err(Error::config(
                "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together",
            ));
        }
    }
    let role_id = get("VAULT_ROLE_ID")
        .map(Credential::value)
        .or_else(|| get("VAULT_ROLE_ID_FILE").map(Credential::file));
    let secret_id = get("VAULT_SECRET_ID")
        .map(Credential::value)
        .or_else(|| get("VAULT_SECRET_ID_FILE").map(Credential::file));
    let auth: Option<Auth> = if let Some(role_id) = role_id {
        let approle = match secret_id {
            Some(secret_id) => AppRole::new(role_id, secret_id),
            None => AppRole::role_id_only(role_id),
        };
        Some(
            approle
                .mount(get("VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".to_owned()))
                .into(),
        )
    } else if let Some(role) = get("VAULT_K8S_ROLE") {
        let mut k8s = Kubernetes::new(role);
        if let Some(path) = get("VAULT_K8S_TOKEN_PATH") {
            k8s = k8s.jwt_file(path);
        }
        if let Some(mount) = get("VAULT_K8S_MOUNT") {
            k8s = k8s.mount(mount);
        }
        Some(k8s.into())
    } else {
        lookup("VAULT_TOKEN")
            .filter(|t| !t.trim().is_empty())
            .map(|token| Token::new(token.trim().to_owned()).into())
    };
    if let Some(auth) = auth {
        builder = builder.auth(auth);
    }
    if let Some(text) = get("STRONGROOM_REQUEST_TIMEOUT_SECS") {
        builder = builder.request_timeout(seconds("STRONGROOM_REQUEST_TIMEOUT_SECS", &text)?);
    } else if let Some(text) = get("VAULT_CLIENT_TIMEOUT") {
        builder = builder.request_timeout(seconds("VAULT_CLIENT_TIMEOUT", &text)?);
    }
    if let Some(text) = get("STRONGROOM_CONNECT_TIMEOUT_SECS") {
        builder = builder.connect_timeout(seconds("STRONGROOM_CONNECT_TIMEOUT_SECS", &text)?);
    }
    let whole = |name: &str, text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| Error::config(format!("{name} must be a whole number, got {text:?}")))
    };
    if let Some(text) = get("STRONGROOM_RETRY_MAX_ATTEMPTS") {
        builder = builder.retry_max_attempts(whole("STRONGROOM_RETRY_MAX_ATTEMPTS", &text)?);
    } else if let Some(text) = get("VAULT_MAX_RETRIES") {
        // The vault CLI counts retries; the policy counts attempts.
        let retries = whole("VAULT_MAX_RETRIES", &text)?;
        builder = builder.retry_max_attempts(retries.saturating_add(1));
    }
    if let Some(text) = get("STRONGROOM_RETRY_MAX_TOTAL_SECS") {
        builder = builder.retry_max_total(seconds("STRONGROOM_RETRY_MAX_TOTAL_SECS", &text)?);
    }
    if let Some(text) = get("STRONGROOM_VAULT_ALLOW_PLAIN_HTTP") {
        builder = builder.allow_plain_http(flag("STRONGROOM_VAULT_ALLOW_PLAIN_HTTP", &text)?);
    }
    if let Some(text) = get("STRONGROOM_VAULT_RENEW") {
        builder = builder.renew_policy(text.parse()?);
    }
    let mut store = VaultStoreBuilder {
        client: builder,
        mount: get("VAULT_KV_MOUNT"),
        prefix: None,
    };
    if let Some(prefix) = get(PREFIX_VAR) {
        store = store.prefix(prefix);
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn from_env_needs_vault_addr() {
        let err = VaultStore::from_lookup(lookup(&[("VAULT_TOKEN", "hvs.x")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("VAULT_ADDR"), "{err}");
    }

    #[test]
    fn from_env_needs_credentials() {
        let err = VaultStore::from_lookup(lookup(&[("VAULT_ADDR", "http://127.0.0.1:8200")]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("VAULT_TOKEN"), "{err}");
    }

    #[test]
    fn from_env_picks_the_auth_method_and_mount() {
        let store = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.env-token-secret"),
            ("VAULT_NAMESPACE", "team-a"),
            ("VAULT_KV_MOUNT", "kv-team"),
        ]))
        .unwrap();
        assert_eq!(store.kv().mount(), "kv-team");
        assert_eq!(store.client().namespace(), Some("team-a"));
        let shown = format!("{store:?}");
        assert!(
            shown.contains("token") && !shown.contains("env-token-secret"),
            "{shown}"
        );

        let store = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.ignored"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "approle-secret-id-value"),
        ]))
        .unwrap();
        let shown = format!("{store:?}");
        assert!(
            shown.contains("approle") && !shown.contains("approle-secret-id-value"),
            "{shown}"
        );
        assert_eq!(store.kv().mount(), "secret");

        let store = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_K8S_ROLE", "app"),
            ("VAULT_K8S_MOUNT", "k8s-east"),
        ]))
        .unwrap();
        assert!(format!("{store:?}").contains("kubernetes"));

        let err = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("VAULT_CLIENT_KEY"), "{err}");
    }

    #[test]
    fn from_env_scopes_the_store_to_a_folder() {
        for prefix in ["prod/app", "prod/app/", "/prod/app"] {
            let store = VaultStore::from_lookup(lookup(&[
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_TOKEN", "t"),
                (PREFIX_VAR, prefix),
            ]))
            .unwrap();
            assert_eq!(store.scope().folder(), "prod/app/", "{prefix}");
            assert_eq!(
                store.path(&SecretName::new("db/pw").unwrap()),
                "prod/app/db/pw"
            );
        }
        let err = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "t"),
            (PREFIX_VAR, "a//b"),
        ]))
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let unscoped = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "t"),
        ]))
        .unwrap();
        assert!(unscoped.scope().is_root());
    }

    #[test]
    fn from_env_reads_timeouts_retries_renewal_and_plain_http() {
        let builder = VaultStoreBuilder::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://vault.default.svc:8200"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_CLIENT_TIMEOUT", "7s"),
            ("VAULT_MAX_RETRIES", "3"),
            ("STRONGROOM_RETRY_MAX_TOTAL_SECS", "21"),
            ("STRONGROOM_VAULT_RENEW", "60s"),
            ("STRONGROOM_VAULT_ALLOW_PLAIN_HTTP", "true"),
        ]))
        .unwrap();
        let shown = format!("{builder:?}");
        for want in [
            "request_timeout: 7s",
            "max_attempts: 4",
            "max_total: 21s",
            "BeforeExpiry(60s)",
            "allow_plain_http: true",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        builder.build().unwrap();

        let builder = VaultStoreBuilder::from_lookup(lookup(&[
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "9"),
            ("VAULT_CLIENT_TIMEOUT", "7"),
            ("STRONGROOM_RETRY_MAX_ATTEMPTS", "2"),
            ("VAULT_MAX_RETRIES", "5"),
        ]))
        .unwrap();
        let shown = format!("{builder:?}");
        assert!(
            shown.contains("request_timeout: 9s") && shown.contains("max_attempts: 2"),
            "{shown}"
        );

        for (name, value) in [
            ("VAULT_CLIENT_TIMEOUT", "soon"),
            ("STRONGROOM_RETRY_MAX_ATTEMPTS", "-1"),
            ("STRONGROOM_VAULT_ALLOW_PLAIN_HTTP", "maybe"),
            ("STRONGROOM_VAULT_RENEW", "2.5"),
        ] {
            let err = VaultStoreBuilder::from_lookup(lookup(&[(name, value)])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{name}");
            assert!(
                err.to_string().contains(name) || name == "STRONGROOM_VAULT_RENEW",
                "{err}"
            );
        }
    }

    #[test]
    fn plain_http_to_another_host_needs_the_switch_and_the_error_names_it() {
        let err = VaultStore::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://vault.default.svc:8200"),
            ("VAULT_TOKEN", "t"),
        ]))
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let message = err.to_string();
        for switch in [
            "allow_plain_http = true",
            "STRONGROOM_VAULT_ALLOW_PLAIN_HTTP",
            "--vault-allow-plain-http",
        ] {
            assert!(message.contains(switch), "{switch} in {message}");
        }
        for local in [
            "http://127.0.0.1:8200",
            "http://localhost:8200",
            "http://[::1]:8200",
            "https://vault.example:8200",
        ] {
            VaultStore::from_lookup(lookup(&[("VAULT_ADDR", local), ("VAULT_TOKEN", "t")]))
                .unwrap_or_else(|e| panic!("{local}: {e}"));
        }
    }

    #[test]
    fn renew_policies_parse_as_written() {
        assert_eq!("never".parse::<RenewPolicy>().unwrap(), RenewPolicy::Never);
        assert_eq!(
            "0.5".parse::<RenewPolicy>().unwrap(),
            RenewPolicy::Fraction(0.5)
        );
        assert_eq!(
            "60s".parse::<RenewPolicy>().unwrap(),
            RenewPolicy::BeforeExpiry(Duration::from_secs(60))
        );
        for bad in ["", "0", "1", "1.5", "-0.2", "60m", "soon", "NaN"] {
            assert!(bad.parse::<RenewPolicy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_maps_to_custom_metadata_and_back() {
        let meta = Metadata::with_description("primary db").tag("team", "core");
        let custom = custom_metadata(&meta).unwrap();
        assert_eq!(custom["description"], "primary db");
        assert_eq!(custom["team"], "core");
        assert_eq!(metadata_of(&custom), meta);
        let bad = Metadata::default().tag("description", "x");
        assert_eq!(
            custom_metadata(&bad).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn versions_must_be_numbers() {
        let key = SecretName::new("app/x").unwrap();
        assert_eq!(version_number(&key, &VersionId::from(3)).unwrap(), 3);
        for bad in ["0", "abc", "-1"] {
            assert_eq!(
                version_number(&key, &VersionId::from(bad))
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidValue
            );
        }
    }

    fn vault_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![
            ("VAULT_ADDR", "https://127.0.0.1:8200"),
            ("VAULT_TOKEN", "t"),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn skip_verify_is_refused_never_ignored() {
        for yes in ["true", "1", "TRUE", "t", " True "] {
            let err = VaultStore::from_lookup(lookup(&vault_env(&[("VAULT_SKIP_VERIFY", yes)])))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{yes}");
            let text = err.to_string();
            assert!(
                text.contains("VAULT_SKIP_VERIFY") && text.contains("VAULT_CACERT"),
                "{text}"
            );
        }
        let err = VaultStore::from_lookup(lookup(&vault_env(&[("VAULT_SKIP_VERIFY", "yes")])))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        for no in ["false", "0", "F", ""] {
            VaultStore::from_lookup(lookup(&vault_env(&[("VAULT_SKIP_VERIFY", no)])))
                .unwrap_or_else(|e| panic!("{no:?}: {e}"));
        }
    }

    #[test]
    fn ca_path_replaces_the_roots_and_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("sr-vault-capath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let path = dir.display().to_string();
        // Empty: the public roots are not kept as a fallback, so nothing would be trusted.
        let err =
            VaultStore::from_lookup(lookup(&vault_env(&[("VAULT_CAPATH", &path)]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("holds no CA certificate"), "{err}");
        // A file that is not PEM is an error naming it, as with the vault CLI.
        std::fs::write(dir.join("notes.txt"), "not a certificate").unwrap();
        let err =
            VaultStore::from_lookup(lookup(&vault_env(&[("VAULT_CAPATH", &path)]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("notes.txt"), "{err}");
        // VAULT_CACERT wins over VAULT_CAPATH: the error names the CA file, not the dir.
        let err = VaultStore::from_lookup(lookup(&vault_env(&[
            ("VAULT_CAPATH", &path),
            ("VAULT_CACERT", "/nonexistent/strongroom/ca.pem"),
        ])))
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/strongroom/ca.pem"),
            "{err}"
        );
        let missing = VaultStore::from_lookup(lookup(&vault_env(&[(
            "VAULT_CAPATH",
            "/nonexistent/strongroom/certs",
        )])))
        .unwrap_err();
        assert!(missing.to_string().contains("VAULT_CAPATH"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
