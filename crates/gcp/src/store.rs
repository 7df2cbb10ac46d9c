//! [`GcpStore`]: the [`SecretStore`] over Google Cloud Secret Manager.
//!
//! | `SecretStore` | Secret Manager |
//! |---|---|
//! | `get` | `versions/latest:access`, with a `GET` of the secret at the same time (labels, annotations, the deleted mark) |
//! | `get_version` | `versions/N:access`, the same way |
//! | `put` | `GET` the secret; `secrets.create` when missing (with the store's replication), else `PATCH` labels and annotations when metadata is given; then `:addVersion` with `dataCrc32c` |
//! | `put_with(if_absent)` | `secrets.create`; `ALREADY_EXISTS` is [`Error::Conflict`] |
//! | `put_with(if_version(v))` | check `versions/latest` is `v`, claim `v + 1` by a `PATCH` carrying the secret's etag (a changed etag is [`Error::Conflict`]), then `:addVersion` |
//! | metadata | labels and annotations (see the crate docs) |
//! | `delete` | mark the secret with the label `strongroom-deleted=N` (etag-checked), then `:disable` version `N`, the current one |
//! | `undelete` | `:enable` version `N`, then remove the label |
//! | `purge` | `DELETE` the secret: every version is destroyed with it |
//! | `list` | every page of `secrets.list`, ids decoded, deleted ones left out |
//! | `versions` | every page of `versions.list`; `DISABLED` is `deleted`, `DESTROYED` is `destroyed` |
//! | [`disable_version`](GcpStore::disable_version), [`enable_version`](GcpStore::enable_version), [`destroy_version`](GcpStore::destroy_version) | `:disable`, `:enable`, `:destroy` of one version |
//!
//! [`VersionId`]s are Secret Manager's version numbers (`1`, `2`, ...). The current version
//! is the one `latest` resolves to; in [`versions`](SecretStore::versions) it is the
//! highest-numbered version that is not destroyed.
//!
//! # Delete, undelete, purge
//!
//! Secret Manager deletes a secret for good; what it can undo is disabling a version. So a
//! strongroom `delete` is recoverable: it labels the secret `strongroom-deleted=N` and
//! disables version `N` (the current one), which other clients (gcloud, the official
//! libraries) then cannot read either; older versions keep their state. While the label is
//! there, every read through strongroom is `NotFound { deleted: true }` and `list` leaves
//! the secret out. `undelete` enables `N` again and removes the label; a `put` to a deleted
//! secret adds a version and removes the label (the disabled version stays disabled, in
//! the history). `purge` deletes the secret with Secret Manager's delete: all versions,
//! irrecoverably. [`destroy_version`](GcpStore::destroy_version) destroys one version's
//! payload for good and keeps the rest.
//!
//! # Check-and-set
//!
//! `:addVersion` takes no condition, so `if_version(v)` is three steps: read the secret
//! (with its etag) and `latest`, refuse unless `latest` is `v`, then `PATCH` the secret's
//! annotation `strongroom-cas` to `v + 1` and the time (`5@1733130000`) *with the etag
//! read*, and only then add the version. Secret Manager refuses the `PATCH` when anything
//! changed the secret since the read, so of two check-and-set writers that read the same
//! state, one wins and the other gets [`Error::Conflict`]. A writer that reads after
//! another's claim but before its `:addVersion` sees a claim above `latest` and gets
//! [`Error::Conflict`] too; a claim older than a minute is taken for the leftover of a
//! writer that died between the two steps and ignored. A plain `put` neither claims nor
//! looks: one racing a check-and-set writer between its `PATCH` and its `:addVersion` is
//! not detected (the new version then is not `v + 1`; this is logged as a warning).
//!
//! # Checksums
//!
//! Every `:addVersion` carries the payload's CRC32C (`dataCrc32c`), which Secret Manager
//! checks before storing; every access answer with a `dataCrc32c` is checked against its
//! payload, and a mismatch is an error, never a value.

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use strongroom_core::{
    Capabilities, Error, Precondition, PutOptions, Scope, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo, async_trait,
};

use crate::api::{Api, MAX_PAYLOAD, Replication, SecretResource};
use crate::config::GcpStoreBuilder;
use crate::error::{BACKEND, Error as GcpError};
use crate::labels::{self, CAS, DELETED};
use crate::secret_id;

/// A [`SecretStore`] on Google Cloud Secret Manager, optionally scoped to a folder
/// ([`GcpStoreBuilder::prefix`]). Cheap to clone; clones share the HTTP client and the token
/// cache.
///
/// ```no_run
/// use strongroom_core::{SecretName, SecretStore, SecretValue};
/// use strongroom_gcp::GcpStore;
///
/// # async fn demo() -> Result<(), strongroom_core::Error> {
/// // GOOGLE_CLOUD_PROJECT, credentials the Google way, optional STRONGROOM_GCP_PREFIX.
/// let store = GcpStore::from_env()?;
/// let key = SecretName::new("app/db/password")?; // the secret id `__app__db__password`
/// let version = store.put(&key, SecretValue::from("hunter2")).await?;
/// assert_eq!(store.get(&key).await?.version, version);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GcpStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) api: Api,
    pub(crate) scope: Scope,
    pub(crate) replication: Replication,
}

impl fmt::Debug for GcpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpStore")
            .field("project", &self.inner.api.project())
            .field("endpoint", &self.inner.api.endpoint())
            .field("prefix", &self.inner.scope.folder())
            .field("credentials", self.inner.api.credentials())
            .field("replication", &self.inner.replication)
            .finish()
    }
}

/// A secret's user labels and annotations, as [`labels::to_gcp`] made them of a
/// `Metadata`.
type UserMetadata = (labels::Map, labels::Map);

/// What a name stands for on the server.
struct Target {
    /// The name as the caller gave it (errors name it).
    key: SecretName,
    /// The full name, prefix included.
    full: SecretName,
    /// Its secret id.
    id: String,
}

impl GcpStore {
    /// A builder; see [`GcpStoreBuilder`].
    pub fn builder() -> GcpStoreBuilder {
        GcpStoreBuilder::new()
    }

    /// A store configured from the environment ([`GcpStoreBuilder::from_env`]).
    ///
    /// # Errors
    /// As [`GcpStoreBuilder::build`].
    pub fn from_env() -> Result<Self, GcpError> {
        GcpStoreBuilder::from_env().build()
    }

    /// The project whose secrets this store holds.
    pub fn project(&self) -> &str {
        self.inner.api.project()
    }

    /// The folder this store is scoped to (`myapp/prod/`), or `""`.
    pub fn prefix(&self) -> &str {
        self.inner.scope.folder()
    }

    /// Disables one version: it stays in the history and can be enabled again.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such secret or version.
    pub async fn disable_version(
        &self,
        key: &SecretName,
        version: &VersionId,
    ) -> Result<(), Error> {
        self.set_state(key, version, "disable").await
    }

    /// Enables a disabled version.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such secret or version (or it is destroyed).
    pub async fn enable_version(&self, key: &SecretName, version: &VersionId) -> Result<(), Error> {
        self.set_state(key, version, "enable").await
    }

    /// Destroys one version's payload for good; the version stays in the history as
    /// destroyed.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such secret or version.
    pub async fn destroy_version(
        &self,
        key: &SecretName,
        version: &VersionId,
    ) -> Result<(), Error> {
        self.set_state(key, version, "destroy").await
    }

    async fn set_state(
        &self,
        key: &SecretName,
        version: &VersionId,
        action: &'static str,
    ) -> Result<(), Error> {
        let t = self.target(key)?;
        let n = number(&t, version)?;
        self.api()
            .set_state(&t.id, n, action)
            .await
            .map_err(|e| core(e, &t, Some(version)))
    }

    fn api(&self) -> &Api {
        &self.inner.api
    }

    fn target(&self, key: &SecretName) -> Result<Target, Error> {
        let full = self.inner.scope.full(key)?;
        let id = secret_id::encode(&full);
        Ok(Target {
            key: key.clone(),
            full,
            id,
        })
    }

    /// Reads one version (`latest` or a number) with the secret's labels and annotations.
    async fn read(&self, key: &SecretName, version: Option<&VersionId>) -> Result<Secret, Error> {
        let t = self.target(key)?;
        let selector = match version {
            Some(v) => number(&t, v)?.to_string(),
            None => "latest".to_owned(),
        };
        let (secret, access) = both(
            self.api().get_secret(&t.id),
            self.api().access(&t.id, &selector),
        )
        .await;
        let secret = secret.map_err(|e| core(e, &t, version))?;
        if secret.labels.contains_key(DELETED) {
            return Err(deleted(&t, version));
        }
        let (n, value) = access.map_err(|e| core(e, &t, version))?;
        if version.is_some_and(|v| v.as_u64() != Some(n)) {
            return Err(GcpError::malformed(
                "access version",
                "the server answered with another version",
            )
            .into_core(Some(t.key.as_str()), version));
        }
        Ok(Secret::new(t.key, value, VersionId::from(n))
            .metadata(labels::from_gcp(&secret.labels, &secret.annotations)))
    }

    async fn create(
        &self,
        t: &Target,
        metadata: Option<&UserMetadata>,
    ) -> Result<SecretResource, GcpError> {
        let (labels, mut annotations) = metadata.cloned().unwrap_or_default();
        if secret_id::is_hashed(&t.id) {
            annotations.insert(
                secret_id::NAME_ANNOTATION.to_owned(),
                t.full.as_str().to_owned(),
            );
        }
        self.api()
            .create_secret(&t.id, &self.inner.replication, &labels, &annotations)
            .await
    }

    /// Replaces the user's labels and annotations of `secret` with `metadata` (or keeps them
    /// when `None`), keeping strongroom's own, with `deleted` set or cleared and `cas` set
    /// when given; etag-checked when `etag` is given.
    async fn update(
        &self,
        t: &Target,
        secret: &SecretResource,
        metadata: Option<&UserMetadata>,
        deleted: Option<Option<u64>>,
        cas: Option<String>,
        etag: Option<&str>,
    ) -> Result<SecretResource, GcpError> {
        let (user_labels, user_annotations) = match metadata {
            Some(m) => m.clone(),
            None => (
                labels::user_part(&secret.labels),
                labels::user_part(&secret.annotations),
            ),
        };
        let mut new_labels = labels::keep_reserved(&secret.labels, user_labels);
        let mut new_annotations = labels::keep_reserved(&secret.annotations, user_annotations);
        match deleted {
            Some(Some(n)) => {
                new_labels.insert(DELETED.to_owned(), n.to_string());
            }
            Some(None) => {
                new_labels.remove(DELETED);
            }
            None => {}
        }
        if let Some(claim) = cas {
            new_annotations.insert(CAS.to_owned(), claim);
        }
        self.api()
            .update_secret(&t.id, &new_labels, &new_annotations, etag)
            .await
    }

    /// The number `latest` resolves to, or `None` when the secret has no version to read.
    async fn latest(&self, t: &Target) -> Result<Option<u64>, GcpError> {
        match self.api().get_version(&t.id, "latest").await {
            Ok(v) => v.number("get version").map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_plain(
        &self,
        t: &Target,
        value: &SecretValue,
        metadata: Option<&UserMetadata>,
    ) -> Result<u64, GcpError> {
        let secret = match self.api().get_secret(&t.id).await {
            Ok(secret) => Some(secret),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let Some(secret) = secret else {
            match self.create(t, metadata).await {
                Ok(_) => {}
                // Another writer created it first: add to theirs, with our metadata.
                Err(e) if e.is_conflict() => {
                    if metadata.is_some() {
                        let secret = self.api().get_secret(&t.id).await?;
                        self.update(t, &secret, metadata, None, None, None).await?;
                    }
                }
                Err(e) => return Err(e),
            }
            return self.api().add_version(&t.id, value).await;
        };
        let was_deleted = secret.labels.contains_key(DELETED);
        if metadata.is_some() && !was_deleted {
            self.update(t, &secret, metadata, None, None, None).await?;
        }
        let n = self.api().add_version(&t.id, value).await?;
        if was_deleted {
            // Revived: the new version first, so that no reader sees the old one come back.
            self.update(t, &secret, metadata, Some(None), None, None)
                .await?;
        }
        Ok(n)
    }

    async fn put_if_version(
        &self,
        t: &Target,
        value: &SecretValue,
        expected: &VersionId,
        metadata: Option<&UserMetadata>,
    ) -> Result<u64, Error> {
        let conflict = |message: &str| Error::Conflict {
            key: t.key.to_string(),
            message: message.to_owned(),
        };
        let secret = match self.api().get_secret(&t.id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Err(conflict("the secret does not exist")),
            Err(e) => return Err(core(e, t, None)),
        };
        if secret.labels.contains_key(DELETED) {
            return Err(conflict("the secret is deleted"));
        }
        let current = self.latest(t).await.map_err(|e| core(e, t, None))?;
        if current.is_none() || current != expected.as_u64() {
            return Err(conflict(&format!("the current version is not {expected}")));
        }
        let next = current.unwrap_or_default().saturating_add(1);
        let now = unix_now();
        if secret
            .annotations
            .get(CAS)
            .and_then(|claim| parse_claim(claim))
            .is_some_and(|(claimed, at)| claimed >= next && claim_is_live(at, now))
        {
            return Err(conflict("another check-and-set write is in flight"));
        }
        match self
            .update(
                t,
                &secret,
                metadata,
                None,
                Some(format!("{next}@{now}")),
                secret.etag.as_deref(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_precondition() || e.is_conflict() => {
                return Err(conflict("the secret changed since it was read (etag)"));
            }
            Err(e) => return Err(core(e, t, None)),
        }
        let n = self
            .api()
            .add_version(&t.id, value)
            .await
            .map_err(|e| core(e, t, None))?;
        if n != next {
            tracing::warn!(backend = BACKEND, key = %t.key, expected = next, got = n, "a check-and-set write raced a plain put");
        }
        Ok(n)
    }
}

/// Runs two futures at once and waits for both: a read's two requests take the time of one.
/// (`tokio::join!` would need tokio's `macros` feature, a proc-macro build, for this alone.)
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut first, mut second) = (None, None);
    std::future::poll_fn(|cx| {
        if first.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            first = Some(out);
        }
        if second.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            second = Some(out);
        }
        match (first.take(), second.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (first, second) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// How long a check-and-set claim holds off other check-and-set writers.
const CLAIM_TTL_SECS: u64 = 60;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `N@SECS`: the version claimed and when.
fn parse_claim(claim: &str) -> Option<(u64, u64)> {
    let (version, at) = claim.split_once('@')?;
    Some((version.parse().ok()?, at.parse().ok()?))
}

/// A claim made less than [`CLAIM_TTL_SECS`] ago. One dated further in the future than that
/// (a skewed clock, a forged value) does not hold anyone off.
fn claim_is_live(at: u64, now: u64) -> bool {
    at <= now.saturating_add(CLAIM_TTL_SECS) && now.saturating_sub(at) < CLAIM_TTL_SECS
}

/// A version id as a Secret Manager version number; anything else names no version.
fn number(t: &Target, version: &VersionId) -> Result<u64, Error> {
    version
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::NotFound {
            key: t.key.to_string(),
            version: Some(version.clone()),
            deleted: false,
        })
}

fn deleted(t: &Target, version: Option<&VersionId>) -> Error {
    Error::NotFound {
        key: t.key.to_string(),
        version: version.cloned(),
        deleted: true,
    }
}

fn core(e: GcpError, t: &Target, version: Option<&VersionId>) -> Error {
    e.into_core(Some(t.key.as_str()), version)
}

#[async_trait]
impl SecretStore for GcpStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        self.read(key, None).await
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        self.read(key, Some(version)).await
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        let t = self.target(key)?;
        if value.len() > MAX_PAYLOAD {
            return Err(Error::InvalidValue {
                message: format!(
                    "Secret Manager holds at most {MAX_PAYLOAD} bytes per version; this value has {}",
                    value.len()
                ),
            });
        }
        // Checked before anything is sent: a tag Secret Manager cannot hold writes nothing.
        let metadata = options.metadata.as_ref().map(labels::to_gcp).transpose()?;
        let metadata = metadata.as_ref();
        let n = match &options.precondition {
            None => self
                .put_plain(&t, &value, metadata)
                .await
                .map_err(|e| core(e, &t, None))?,
            Some(Precondition::Absent) => {
                self.create(&t, metadata)
                    .await
                    .map_err(|e| core(e, &t, None))?;
                self.api()
                    .add_version(&t.id, &value)
                    .await
                    .map_err(|e| core(e, &t, None))?
            }
            Some(Precondition::Version(expected)) => {
                self.put_if_version(&t, &value, expected, metadata).await?
            }
            Some(_) => return Err(Error::unsupported(BACKEND, "this precondition")),
        };
        tracing::debug!(backend = BACKEND, key = %key, version = n, "put");
        Ok(VersionId::from(n))
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        let t = self.target(key)?;
        let secret = self
            .api()
            .get_secret(&t.id)
            .await
            .map_err(|e| core(e, &t, None))?;
        if secret.labels.contains_key(DELETED) {
            return Err(deleted(&t, None));
        }
        let current = self.latest(&t).await.map_err(|e| core(e, &t, None))?;
        match self
            .update(
                &t,
                &secret,
                None,
                Some(Some(current.unwrap_or(0))),
                None,
                secret.etag.as_deref(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_precondition() => {
                return Err(Error::Conflict {
                    key: t.key.to_string(),
                    message: "the secret changed while it was being deleted; try again".into(),
                });
            }
            Err(e) => return Err(core(e, &t, None)),
        }
        if let Some(n) = current {
            match self.api().set_state(&t.id, n, "disable").await {
                Ok(()) => {}
                // Already disabled (by someone else): the secret is deleted all the same.
                Err(e) if e.version_state() == Some(true) || e.is_precondition() => {}
                Err(e) => return Err(core(e, &t, None)),
            }
        }
        Ok(())
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        let t = self.target(key)?;
        let secret = self
            .api()
            .get_secret(&t.id)
            .await
            .map_err(|e| core(e, &t, None))?;
        let Some(mark) = secret.labels.get(DELETED) else {
            return Err(Error::Conflict {
                key: t.key.to_string(),
                message: "it is not deleted".into(),
            });
        };
        let n: u64 = mark.parse().unwrap_or(0);
        if n > 0 {
            self.api()
                .set_state(&t.id, n, "enable")
                .await
                .map_err(|e| core(e, &t, Some(&VersionId::from(n))))?;
        }
        self.update(&t, &secret, None, Some(None), None, secret.etag.as_deref())
            .await
            .map_err(|e| core(e, &t, None))?;
        Ok(())
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        let t = self.target(key)?;
        self.api()
            .delete_secret(&t.id)
            .await
            .map_err(|e| core(e, &t, None))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let secrets = self
            .api()
            .list_secrets()
            .await
            .map_err(|e| e.into_core(None, None))?;
        let scope = &self.inner.scope;
        let mut names: Vec<SecretName> = secrets
            .iter()
            .filter(|s| !s.labels.contains_key(DELETED))
            .filter_map(|s| {
                let name = secret_id::decode(
                    s.id(),
                    s.annotations
                        .get(secret_id::NAME_ANNOTATION)
                        .map(String::as_str),
                );
                if name.is_none() {
                    tracing::debug!(
                        backend = BACKEND,
                        id = s.id(),
                        "skipping a secret whose id strongroom did not make"
                    );
                }
                name
            })
            .filter_map(|full| {
                scope
                    .strip(full.as_str())
                    .and_then(|rest| SecretName::new(rest).ok())
            })
            .filter(|name| name.has_prefix(prefix))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let t = self.target(key)?;
        let listed = self
            .api()
            .list_versions(&t.id)
            .await
            .map_err(|e| core(e, &t, None))?;
        let mut out = Vec::with_capacity(listed.len());
        for v in &listed {
            let n = v.number("list versions").map_err(|e| core(e, &t, None))?;
            let state = v.state.as_deref().unwrap_or("ENABLED");
            let mut info = VersionInfo::new(VersionId::from(n), v.created(), false);
            info.deleted = state == "DISABLED";
            info.destroyed = state == "DESTROYED";
            out.push((n, info));
        }
        out.sort_by_key(|(n, _)| *n);
        if let Some((_, info)) = out.iter_mut().rev().find(|(_, info)| !info.destroyed) {
            info.current = true;
        }
        Ok(out.into_iter().map(|(_, info)| info).collect())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
