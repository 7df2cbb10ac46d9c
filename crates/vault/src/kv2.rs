//! [`Kv2`]: every endpoint of the KV version 2 secrets engine, on any mount.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use strongroom_core::Error;

use crate::client::{Answer, Call, VaultClient};
use crate::data::SecretData;
use crate::error::{Context, malformed};
use crate::json;
use crate::path::{encode_folder, encode_path};

/// One version of a KV v2 secret as Vault describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionMetadata {
    /// The version number (from 1).
    pub version: u64,
    /// When it was written.
    pub created_time: Option<SystemTime>,
    /// When it was (or will be, with `delete_version_after`) soft-deleted.
    pub deletion_time: Option<SystemTime>,
    /// Destroyed for good.
    pub destroyed: bool,
    /// The secret's custom metadata, where the answer carries it (reads and writes do).
    pub custom_metadata: BTreeMap<String, String>,
}

impl VersionMetadata {
    /// Soft-deleted now: a deletion time that has passed, and not destroyed.
    pub fn is_deleted(&self) -> bool {
        !self.destroyed && self.deletion_time.is_some_and(|t| t <= SystemTime::now())
    }

    fn from_json(value: &Value, version: Option<u64>) -> Self {
        Self {
            version: version
                .or_else(|| value.get("version").and_then(Value::as_u64))
                .unwrap_or(0),
            created_time: time_field(value, "created_time"),
            deletion_time: time_field(value, "deletion_time"),
            destroyed: value
                .get("destroyed")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            custom_metadata: string_map(value.get("custom_metadata")),
        }
    }
}

/// A secret version read with its data.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KvSecret {
    /// The data map (wiped on drop).
    pub data: SecretData,
    /// Which version, when written, custom metadata.
    pub metadata: VersionMetadata,
}

/// The metadata of a KV v2 secret: settings, custom metadata and every version kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvMetadata {
    /// The latest version number.
    pub current_version: u64,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// Versions kept (0: the mount's default).
    pub max_versions: u64,
    /// Whether every write must carry `cas`.
    pub cas_required: bool,
    /// Versions are soft-deleted this long after being written (Vault duration, `0s`: never).
    pub delete_version_after: Option<String>,
    /// When the secret was first written.
    pub created_time: Option<SystemTime>,
    /// When it last changed.
    pub updated_time: Option<SystemTime>,
    /// User metadata (`description` and tags, for [`VaultStore`](crate::VaultStore)).
    pub custom_metadata: BTreeMap<String, String>,
    /// Every version kept, by number.
    pub versions: BTreeMap<u64, VersionMetadata>,
}

impl KvMetadata {
    fn from_json(data: &Value) -> Self {
        let versions = data
            .get("versions")
            .and_then(Value::as_object)
            .map(|versions| {
                versions
                    .iter()
                    .filter_map(|(number, v)| {
                        let n = number.parse().ok()?;
                        Some((n, VersionMetadata::from_json(v, Some(n))))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let number = |name: &str| data.get(name).and_then(Value::as_u64).unwrap_or(0);
        Self {
            current_version: number("current_version"),
            oldest_version: number("oldest_version"),
            max_versions: number("max_versions"),
            cas_required: data
                .get("cas_required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            delete_version_after: data
                .get("delete_version_after")
                .and_then(Value::as_str)
                .map(str::to_owned),
            created_time: time_field(data, "created_time"),
            updated_time: time_field(data, "updated_time"),
            custom_metadata: string_map(data.get("custom_metadata")),
            versions,
        }
    }

    /// The current version's entry.
    pub fn current(&self) -> Option<&VersionMetadata> {
        self.versions.get(&self.current_version)
    }
}

/// Settings for [`Kv2::write_metadata`]; fields left `None` are not sent (Vault keeps them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataUpdate {
    /// Versions to keep.
    pub max_versions: Option<u64>,
    /// Require `cas` on every write.
    pub cas_required: Option<bool>,
    /// Soft-delete versions this long after writing (`"768h"`, `"0s"` for never).
    pub delete_version_after: Option<String>,
    /// Replaces the custom metadata.
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

impl MetadataUpdate {
    /// An update replacing only the custom metadata.
    pub fn custom(custom_metadata: BTreeMap<String, String>) -> Self {
        Self {
            custom_metadata: Some(custom_metadata),
            ..Self::default()
        }
    }
}

/// The KV v2 engine at one mount: `client.kv2("secret")?`.
///
/// Paths are relative to the mount (`app/db`), checked and percent-encoded segment by
/// segment; a path with `.`/`..` or empty segments is refused before any request.
#[derive(Clone, Debug)]
pub struct Kv2 {
    client: VaultClient,
    mount: String,
}

impl Kv2 {
    pub(crate) fn new(client: VaultClient, mount: String) -> Self {
        Self { client, mount }
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The client this engine talks through.
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    fn url(&self, area: &str, path: &str) -> Result<String, Error> {
        let encoded = encode_path(path)?;
        let capacity = [self.mount.len(), area.len(), encoded.len(), 2]
            .into_iter()
            .fold(0usize, usize::saturating_add);
        let mut url = String::with_capacity(capacity);
        for part in [&*self.mount, "/", area, "/", &encoded] {
            url.push_str(part);
        }
        Ok(url)
    }

    /// Reads the latest version.
    ///
    /// # Errors
    /// `NotFound` (`deleted: true` when the version is soft-deleted and can be undeleted).
    pub async fn read(&self, path: &str) -> Result<KvSecret, Error> {
        self.read_inner(path, None).await
    }

    /// Reads a given version.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub async fn read_version(&self, path: &str, version: u64) -> Result<KvSecret, Error> {
        self.read_inner(path, Some(version)).await
    }

    async fn read_inner(&self, path: &str, version: Option<u64>) -> Result<KvSecret, Error> {
        let ctx = Context::key("kv read", path).with_version(version);
        let mut call = Call::new(Method::GET, self.url("data", path)?);
        if let Some(v) = version {
            call = call.query(format!("version={v}"));
        }
        let answer = self.client.execute_keeping_404(call, &ctx, true).await?;
        let mut value = answer.json(&ctx)?;
        drop(answer);
        let metadata = value
            .pointer("/data/metadata")
            .filter(|m| m.is_object())
            .map(|m| VersionMetadata::from_json(m, None));
        let data = value
            .pointer_mut("/data/data")
            .map_or(Value::Null, Value::take);
        json::scrub(&mut value);
        let found = match data {
            Value::Object(map) => Some(SecretData::from_map(map)),
            _ => None,
        };
        match (found, metadata) {
            (Some(data), Some(metadata)) => Ok(KvSecret { data, metadata }),
            (_, metadata) => Err(Error::NotFound {
                key: path.to_owned(),
                version: version.map(Into::into),
                deleted: metadata.is_some_and(|m| m.is_deleted()),
            }),
        }
    }

    /// Writes a new version. With `cas: Some(n)`, Vault writes only if the current version
    /// is `n` (`0`: only if the secret does not exist); otherwise the write is refused with
    /// `Conflict`. Writes are never retried by the HTTP layer.
    ///
    /// # Errors
    /// `Conflict` on a check-and-set mismatch; `PermissionDenied`; `InvalidValue`.
    pub async fn write(
        &self,
        path: &str,
        data: &SecretData,
        cas: Option<u64>,
    ) -> Result<VersionMetadata, Error> {
        self.write_inner(path, data.expose(), cas, Method::POST, "kv write")
            .await
    }

    /// Patches the latest version with a JSON merge patch (RFC 7396: fields given replace
    /// theirs, `null` removes one, others stay), making a new version. Needs the `patch`
    /// capability.
    ///
    /// # Errors
    /// As [`write`](Self::write); `NotFound` when there is no version to patch.
    pub async fn patch(
        &self,
        path: &str,
        patch: &Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<VersionMetadata, Error> {
        self.write_inner(path, patch, cas, Method::PATCH, "kv patch")
            .await
    }

    async fn write_inner(
        &self,
        path: &str,
        data: &Map<String, Value>,
        cas: Option<u64>,
        method: Method,
        operation: &'static str,
    ) -> Result<VersionMetadata, Error> {
        let ctx = Context::key(operation, path);
        let mut body = Map::new();
        if let Some(cas) = cas {
            body.insert("options".to_owned(), json!({ "cas": cas }));
        }
        body.insert("data".to_owned(), Value::Object(data.clone()));
        let mut body = Value::Object(body);
        let bytes = json::to_bytes(&body);
        json::scrub(&mut body);
        let mut call = Call::new(method.clone(), self.url("data", path)?).sensitive_body(bytes);
        if cas.is_some() {
            call = call.check_and_set();
        }
        if method == Method::PATCH {
            call = call.content_type("application/merge-patch+json");
        }
        let answer = self.client.execute(call, &ctx).await?;
        let value = answer.json(&ctx)?;
        let metadata = value
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| malformed(&ctx, "no data in the write answer"))?;
        Ok(VersionMetadata::from_json(metadata, None))
    }

    /// Soft-deletes the latest version (`undelete` brings it back).
    ///
    /// # Errors
    /// `PermissionDenied`, transport errors. Deleting a missing secret succeeds.
    pub async fn delete_latest(&self, path: &str) -> Result<(), Error> {
        let ctx = Context::key("kv delete", path);
        let call = Call::new(Method::DELETE, self.url("data", path)?);
        no_content(&self.client.execute(call, &ctx).await?, &ctx)
    }

    /// Soft-deletes the given versions.
    ///
    /// # Errors
    /// As [`delete_latest`](Self::delete_latest).
    pub async fn delete_versions(&self, path: &str, versions: &[u64]) -> Result<(), Error> {
        self.versions_call(path, versions, "delete", Method::POST, "kv delete versions")
            .await
    }

    /// Restores soft-deleted versions.
    ///
    /// # Errors
    /// As [`delete_latest`](Self::delete_latest).
    pub async fn undelete_versions(&self, path: &str, versions: &[u64]) -> Result<(), Error> {
        self.versions_call(path, versions, "undelete", Method::POST, "kv undelete")
            .await
    }

    /// Destroys versions for good (their data is removed; the entries stay in metadata).
    ///
    /// # Errors
    /// As [`delete_latest`](Self::delete_latest).
    pub async fn destroy_versions(&self, path: &str, versions: &[u64]) -> Result<(), Error> {
        self.versions_call(path, versions, "destroy", Method::PUT, "kv destroy")
            .await
    }

    async fn versions_call(
        &self,
        path: &str,
        versions: &[u64],
        area: &str,
        method: Method,
        operation: &'static str,
    ) -> Result<(), Error> {
        let ctx = Context::key(operation, path);
        if versions.is_empty() {
            return Err(Error::InvalidValue {
                message: format!("{operation} {path:?}: no versions given"),
            });
        }
        // A write like any other: retried only when it cannot have reached the server.
        let call = Call::new(method, self.url(area, path)?).json(&json!({ "versions": versions }));
        no_content(&self.client.execute(call, &ctx).await?, &ctx)
    }

    /// Reads the metadata: versions, times, custom metadata, settings.
    ///
    /// # Errors
    /// `NotFound` when the secret has no metadata (never written, or purged).
    pub async fn read_metadata(&self, path: &str) -> Result<KvMetadata, Error> {
        let ctx = Context::key("kv read metadata", path);
        let call = Call::new(Method::GET, self.url("metadata", path)?);
        let answer = self.client.execute(call, &ctx).await?;
        let value = answer.json(&ctx)?;
        let data = value
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| malformed(&ctx, "no data in the metadata answer"))?;
        Ok(KvMetadata::from_json(data))
    }

    /// Writes metadata settings and custom metadata (creating the metadata entry if need be).
    ///
    /// # Errors
    /// `PermissionDenied` without `update` on `<mount>/metadata/<path>`; `InvalidValue` for
    /// limits Vault enforces (64 custom keys, 128-byte keys, 512-byte values).
    pub async fn write_metadata(&self, path: &str, update: &MetadataUpdate) -> Result<(), Error> {
        let ctx = Context::key("kv write metadata", path);
        let mut body = Map::new();
        if let Some(n) = update.max_versions {
            body.insert("max_versions".to_owned(), json!(n));
        }
        if let Some(cas) = update.cas_required {
            body.insert("cas_required".to_owned(), json!(cas));
        }
        if let Some(after) = &update.delete_version_after {
            body.insert("delete_version_after".to_owned(), json!(after));
        }
        if let Some(custom) = &update.custom_metadata {
            body.insert("custom_metadata".to_owned(), json!(custom));
        }
        let call = Call::new(Method::POST, self.url("metadata", path)?).json(&Value::Object(body));
        no_content(&self.client.execute(call, &ctx).await?, &ctx)
    }

    /// Deletes the metadata and every version: the secret is gone for good (purge).
    ///
    /// # Errors
    /// `PermissionDenied`, transport errors. Purging a missing secret succeeds.
    pub async fn delete_metadata(&self, path: &str) -> Result<(), Error> {
        let ctx = Context::key("kv delete metadata", path);
        let call = Call::new(Method::DELETE, self.url("metadata", path)?);
        no_content(&self.client.execute(call, &ctx).await?, &ctx)
    }

    /// Lists one folder: names relative to it, sub-folders ending in `/`, sorted. A folder
    /// that does not exist lists as empty. `""` is the mount's root.
    ///
    /// # Errors
    /// `PermissionDenied` without `list` on the folder; `InvalidKey` for a bad folder.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, Error> {
        let ctx = Context::key("kv list", folder);
        let encoded = encode_folder(folder)?;
        let url = if encoded.is_empty() {
            format!("{}/metadata/", self.mount)
        } else {
            format!("{}/metadata/{encoded}/", self.mount)
        };
        let call = Call::new(Method::GET, url).query("list=true".to_owned());
        let answer = self.client.execute_keeping_404(call, &ctx, true).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let value = answer.json(&ctx)?;
        let mut keys: Vec<String> = value
            .pointer("/data/keys")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&ctx, "no data.keys in the list answer"))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Every secret path under `folder`, recursively (full paths from the mount, sorted).
    /// Soft-deleted secrets are included: they still have metadata.
    ///
    /// # Errors
    /// As [`list`](Self::list), for any folder of the walk; `Backend` when the answers lead
    /// to more than [`MAX_WALK_FOLDERS`] folders or deeper than the longest secret name.
    pub async fn walk(&self, folder: &str) -> Result<Vec<String>, Error> {
        let start = folder.strip_suffix('/').unwrap_or(folder);
        let mut pending = vec![if start.is_empty() {
            String::new()
        } else {
            format!("{start}/")
        }];
        let mut found = Vec::new();
        let mut folders: usize = 0;
        while let Some(dir) = pending.pop() {
            // A server that answers every list with another sub-folder would keep this
            // loop going for ever: no folder deeper than a secret name can be, and no more
            // than MAX_WALK_FOLDERS folders in one walk.
            folders = folders.saturating_add(1);
            if folders > MAX_WALK_FOLDERS || dir.len() > strongroom_core::MAX_NAME_LEN {
                return Err(malformed(
                    &Context::key("kv walk", folder),
                    &format!(
                        "the list answers lead to more than {MAX_WALK_FOLDERS} folders or \
                         to a folder deeper than the longest secret name"
                    ),
                ));
            }
            for entry in self.list(&dir).await? {
                let full = format!("{dir}{entry}");
                if entry.ends_with('/') {
                    pending.push(full);
                } else {
                    found.push(full);
                }
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The most folders one [`Kv2::walk`] lists before it gives up with a `Backend` error.
pub const MAX_WALK_FOLDERS: usize = 100_000;

/// Checks the answer of a call that expects no data (Vault answers 204): an empty body or
/// JSON. Anything else (an HTML page, bytes that are not JSON) did not come from Vault, so
/// the call is not taken to have succeeded.
fn no_content(answer: &Answer, ctx: &Context<'_>) -> Result<(), Error> {
    answer.json(ctx).map(drop)
}

fn time_field(value: &Value, name: &str) -> Option<SystemTime> {
    let text = value.get(name)?.as_str()?;
    if text.is_empty() {
        return None;
    }
    // Vault and OpenBao write UTC (`...Z`); another offset would be unparsed, not misread.
    humantime::parse_rfc3339(text).ok()
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn metadata_is_parsed() {
        let data = json!({
            "cas_required": false,
            "created_time": "2024-05-01T10:00:00.123456789Z",
            "current_version": 3,
            "custom_metadata": {"description": "db", "team": "core"},
            "delete_version_after": "0s",
            "max_versions": 0,
            "oldest_version": 1,
            "updated_time": "2024-05-02T10:00:00Z",
            "versions": {
                "1": {"created_time": "2024-05-01T10:00:00Z", "deletion_time": "", "destroyed": true},
                "2": {"created_time": "2024-05-01T11:00:00Z", "deletion_time": "2024-05-01T12:00:00Z", "destroyed": false},
                "3": {"created_time": "2024-05-02T10:00:00Z", "deletion_time": "", "destroyed": false}
            }
        });
        let meta = KvMetadata::from_json(&data);
        assert_eq!(meta.current_version, 3);
        assert_eq!(meta.custom_metadata["team"], "core");
        assert_eq!(meta.versions.len(), 3);
        assert!(meta.versions[&1].destroyed && !meta.versions[&1].is_deleted());
        assert!(meta.versions[&2].is_deleted());
        assert!(!meta.current().unwrap().is_deleted());
        let created = meta.created_time.unwrap();
        let secs = created.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(secs.as_secs(), 1_714_557_600);
        assert!(secs.subsec_nanos() > 0);
    }

    #[test]
    fn future_deletion_time_is_not_deleted_yet() {
        let later =
            humantime::format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).to_string();
        let v = VersionMetadata::from_json(&json!({"version": 1, "deletion_time": later}), None);
        assert!(!v.is_deleted());
    }
}
