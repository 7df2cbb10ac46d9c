//! [`Secrets`] and its [`SecretsBuilder`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use strongroom_cache::{BreakerState, CacheConfig, CacheStats, CacheStatus, CachedStore, Change};
use strongroom_core::{
    Capabilities, Error, ErrorKind, NodeReport, PutOptions, Secret, SecretName, SecretStore,
    SecretValue, VersionId, VersionInfo,
};
use strongroom_local::FileStore;
use tokio::sync::broadcast;

use crate::audit::{self, AuditFile, Record};
use crate::backend::{open_mirror, open_store};
use crate::config::Config;
use crate::health::{Health, HealthStatus};
use crate::key_arg::IntoSecretName;
use crate::mirror::{DEFAULT_MIRROR_MAX_AGE, Mirror, Mirrored, Recording};
use crate::rotation::{Generator, RotationHandle, RotationOutcome, RotationPolicy};
use crate::stats::{Counters, Op, Stats};
use crate::subscription::Subscription;
use crate::{json, meter};

/// How long past its TTL a cached secret may be served while the primary is unavailable,
/// unless the cache configuration says otherwise.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);

/// The key the health probe reads, expecting `NotFound`.
pub const DEFAULT_HEALTH_KEY: &str = "strongroom/health-probe";

/// The one object an application holds to read and write its secrets.
///
/// A `Secrets` wraps a primary [`SecretStore`] (Vault, AWS, a local file...) in a
/// [`CachedStore`] and adds an audit trail, metrics, rotation with change notifications,
/// health, and degradation to a local mirror. Clones share everything (an `Arc` inside).
///
/// - **Reads** are served from the cache; a cache hit allocates nothing and awaits nothing.
/// - **When the primary is unavailable**, reads are served from the cache past their TTL
///   (up to `max_stale`, default [`DEFAULT_MAX_STALE`]) and then from the mirror, if one is
///   configured and its copy was confirmed by the primary within the mirror's maximum age
///   (default [`DEFAULT_MIRROR_MAX_AGE`]); [`health`](Self::health) says `degraded`;
///   recovery is automatic.
/// - **Writes while the primary is unavailable fail** with [`Error::Unavailable`]. Accepting
///   them locally would fork the truth: another instance could write the same key meanwhile,
///   and replaying the local write later could overwrite a newer value. The application
///   knows whether retrying later is right; the facade does not guess.
///
/// `Secrets` is a [`SecretStore`] itself (every operation audited, counted and cached as
/// through its own methods), so it composes like any store: behind a
/// [`Scoped`](strongroom_core::Scoped), in a [`migrate`](crate::migrate), as an
/// `Arc<dyn SecretStore>`. Its inherent methods take the same arguments, and a string key
/// too.
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cache: CachedStore<Arc<dyn SecretStore>>,
    pub(crate) backend: &'static str,
    audit_file: Option<AuditFile>,
    mirror: Option<Arc<Mirror>>,
    counters: Arc<Counters>,
    degraded: AtomicBool,
    health_key: SecretName,
    breaker_export: meter::BreakerExport,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("backend", &self.inner.backend)
            .field("cache", &self.inner.cache)
            .field("audit_file", &self.inner.audit_file.is_some())
            .field(
                "mirror",
                &self.inner.mirror.as_deref().map(|m| m.store().path()),
            )
            .field(
                "mirror_max_age",
                &self.inner.mirror.as_deref().map(Mirror::max_age),
            )
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Secrets`]; see [`Secrets::builder`].
#[must_use]
pub struct SecretsBuilder {
    store: Option<Arc<dyn SecretStore>>,
    cache: Option<CacheConfig>,
    audit_file: Option<PathBuf>,
    mirror: Option<FileStore>,
    mirror_max_age: Option<Duration>,
    health_key: Option<SecretName>,
}

impl fmt::Debug for SecretsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsBuilder")
            .field(
                "store",
                &self.store.as_ref().map(|s| SecretStore::backend(&**s)),
            )
            .field("cache", &self.cache)
            .field("audit_file", &self.audit_file)
            .field("mirror", &self.mirror)
            .field("mirror_max_age", &self.mirror_max_age)
            .finish_non_exhaustive()
    }
}

impl SecretsBuilder {
    /// The primary store (required). An `Arc<dyn SecretStore>` works too.
    pub fn store(mut self, store: impl SecretStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The cache configuration (default: [`CacheConfig::default`] with `max_stale`
    /// [`DEFAULT_MAX_STALE`]).
    pub fn cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Also append audit lines to `path` (JSON lines; created when missing).
    pub fn audit_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_file = Some(path.into());
        self
    }

    /// Keep a local mirror of every secret read in `store`, and serve from it while the
    /// primary is unavailable. A store opened with `keep_versions(1)` is best: the mirror
    /// needs the latest value only.
    pub fn mirror(mut self, store: FileStore) -> Self {
        self.mirror = Some(store);
        self
    }

    /// How old a mirrored copy may be and still be served (default
    /// [`DEFAULT_MIRROR_MAX_AGE`], 24 hours). Age is the time since the primary last
    /// confirmed the value (a read or write that reached it), not since it was first
    /// mirrored. Beyond it a read that would be served from the mirror fails with
    /// [`Error::Unavailable`] instead: the value may have been rotated or revoked since.
    pub fn mirror_max_age(mut self, max_age: Duration) -> Self {
        self.mirror_max_age = Some(max_age);
        self
    }

    /// The key the health probe reads (default [`DEFAULT_HEALTH_KEY`]); it should not exist.
    pub fn health_key(mut self, key: SecretName) -> Self {
        self.health_key = Some(key);
        self
    }

    /// Builds the `Secrets`.
    ///
    /// # Errors
    /// [`Error::Config`] without a store, with a zero mirror maximum age, or when the audit
    /// file cannot be opened.
    pub fn build(self) -> Result<Secrets, Error> {
        let store = self
            .store
            .ok_or_else(|| Error::config("Secrets::builder() needs a store"))?;
        let cache = match self.cache {
            Some(config) => config,
            None => CacheConfig::builder()
                .max_stale(DEFAULT_MAX_STALE)
                .build()?,
        };
        let audit_file = self
            .audit_file
            .as_deref()
            .map(AuditFile::open)
            .transpose()?;
        let mirror_max_age = self.mirror_max_age.unwrap_or(DEFAULT_MIRROR_MAX_AGE);
        if mirror_max_age.is_zero() {
            return Err(Error::config(
                "the mirror's maximum age must be more than zero (a mirror that may never be served is no mirror: leave it out instead)",
            ));
        }
        let counters = Arc::new(Counters::new());
        let mirror = self
            .mirror
            .map(|store| Arc::new(Mirror::new(store, Arc::clone(&counters), mirror_max_age)));
        let health_key = match self.health_key {
            Some(key) => key,
            None => SecretName::new(DEFAULT_HEALTH_KEY)?,
        };
        let backend = store.backend();
        // Under the cache, so that every read reaching the primary (a miss, a background
        // refresh) mirrors and confirms what it found.
        let store = match &mirror {
            Some(mirror) => Recording::wrap(store, Arc::clone(mirror)),
            None => store,
        };
        Ok(Secrets {
            inner: Arc::new(Inner {
                cache: CachedStore::with_config(store, cache),
                backend,
                audit_file,
                mirror,
                counters,
                degraded: AtomicBool::new(false),
                health_key,
                breaker_export: meter::BreakerExport::default(),
            }),
        })
    }
}

impl Secrets {
    /// A builder; `store` is required.
    ///
    /// ```
    /// use strongroom_facade::Secrets;
    /// use strongroom_local::EnvStore;
    ///
    /// let secrets = Secrets::builder()
    ///     .store(EnvStore::from_vars([("APP_TOKEN", "t0k3n")]))
    ///     .build()?;
    /// # Ok::<(), strongroom_core::Error>(())
    /// ```
    pub fn builder() -> SecretsBuilder {
        SecretsBuilder {
            store: None,
            cache: None,
            audit_file: None,
            mirror: None,
            mirror_max_age: None,
            health_key: None,
        }
    }

    /// Builds from a [`Config`]: opens the backend, the audit file and the mirror.
    ///
    /// # Errors
    /// [`Error::Config`] for what is missing or wrong; the backend's errors opening it.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let mut builder = Self::builder()
            .cache(config.cache.to_cache_config()?)
            .store(open_store(&config.backend)?);
        if let Some(path) = &config.audit.file {
            builder = builder.audit_file(path);
        }
        if let Some(mirror) = &config.mirror {
            let max_age = mirror.max_age()?;
            builder = builder
                .mirror(open_mirror(&mirror.path, &mirror.key_source())?)
                .mirror_max_age(max_age);
        }
        if let Some(key) = &config.health.probe_key {
            builder = builder.health_key(SecretName::new(key.as_str())?);
        }
        builder.build()
    }

    /// Builds from the environment; see [`Config::from_env_with`] for the variables.
    ///
    /// # Errors
    /// As [`Config::from_env`] and [`from_config`](Self::from_config).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_config(&Config::from_env()?)
    }

    /// The primary backend's name (`local`, `vault`, ...).
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// What the primary backend supports.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.cache.capabilities()
    }

    /// Controls over the cache in front of the primary: drop entries, read its counters and
    /// configuration. Reads and writes go through `Secrets` itself, so that each one is
    /// audited, counted and mirrored.
    pub fn cache(&self) -> CacheControl<'_> {
        CacheControl {
            cache: &self.inner.cache,
        }
    }

    /// The current version of `key`.
    ///
    /// A cache hit returns at once without allocating (pass a `&SecretName` on a hot path; a
    /// string is validated on every call). A miss asks the primary (one call however many
    /// tasks miss together); when the primary is unavailable the answer comes from a stale
    /// cache entry or the mirror.
    ///
    /// # Errors
    /// The primary's errors ([`Error::NotFound`], ...); [`Error::Unavailable`] when neither
    /// the cache nor the mirror has the secret, or the mirror's copy is older than its
    /// maximum age ([`SecretsBuilder::mirror_max_age`]).
    pub async fn get<'k>(&self, key: impl IntoSecretName<'k>) -> Result<Secret, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::Get);
        let key = match key.into_secret_name() {
            Ok(key) => key,
            Err(err) => return Err(inner.refused("get", err)),
        };
        let audited = inner.audit_wanted();
        let started = audited.then(Instant::now);
        if let Some(secret) = inner.cache.cached(&key) {
            inner.hit_found(&key, started);
            return Ok(secret);
        }
        // A cached NotFound (a second lookup, on a path that is not the hot one).
        if let Some((result, status)) = inner.cache.get_if_cached(&key) {
            inner.hit(&key, &result, status, started);
            return result;
        }
        Box::pin(inner.get_slow(key.into_owned(), started.unwrap_or_else(Instant::now))).await
    }

    /// Version `version` of `key` (cached per version; no mirror fallback).
    ///
    /// # Errors
    /// As [`SecretStore::get_version`].
    pub async fn get_version<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        version: &VersionId,
    ) -> Result<Secret, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::GetVersion);
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("get_version", e))?;
        let started = Instant::now();
        let (result, status) = inner.cache.get_version_with_status(&key, version).await;
        inner.after_backend(&result);
        inner.finish(
            "get_version",
            Some(&key),
            &result,
            Some(status.as_str()),
            started,
        );
        result
    }

    /// The current value of `key` parsed as JSON into `T`.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`Error::InvalidValue`] when the value is not JSON of that
    /// shape (the message gives the position, never the content).
    pub async fn get_json<'k, T: DeserializeOwned>(
        &self,
        key: impl IntoSecretName<'k>,
    ) -> Result<T, Error> {
        let key = key
            .into_secret_name()
            .map_err(|e| self.inner.refused("get", e))?;
        let secret = self.get(&*key).await?;
        json::parse(&key, &secret.value)
    }

    /// The field `field` of the JSON object held by `key`: a string field's text, or the
    /// JSON text of any other field.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`Error::InvalidValue`] when the value is not a JSON object or
    /// lacks the field.
    pub async fn get_field<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        field: &str,
    ) -> Result<SecretValue, Error> {
        let key = key
            .into_secret_name()
            .map_err(|e| self.inner.refused("get", e))?;
        let secret = self.get(&*key).await?;
        json::field(&key, &secret.value, field)
    }

    /// Writes a new version of `key`.
    ///
    /// # Errors
    /// As [`SecretStore::put_with`]; [`Error::Unavailable`] while the primary is down (see
    /// the type's documentation for why writes are not queued).
    pub async fn put<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        value: impl Into<SecretValue>,
    ) -> Result<VersionId, Error> {
        self.put_with(key, value, &PutOptions::default()).await
    }

    /// Writes a new version of `key` under `options` (check-and-set, metadata).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn put_with<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        value: impl Into<SecretValue>,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::Put);
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("put", e))?;
        inner.write("put", &key, value.into(), options).await
    }

    /// Deletes `key` (softly where the backend can), from the mirror too.
    ///
    /// # Errors
    /// As [`SecretStore::delete`].
    pub async fn delete<'k>(&self, key: impl IntoSecretName<'k>) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::Delete);
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("delete", e))?;
        let started = Instant::now();
        let result = inner.cache.delete(&key).await;
        inner.after_backend(&result);
        if let Some(mirror) = &inner.mirror
            && (result.is_ok() || result.as_ref().is_err_and(Error::is_not_found))
        {
            mirror.remove(&key).await;
        }
        inner.finish("delete", Some(&key), &result, None, started);
        result
    }

    /// The keys starting with `prefix`, from the primary (never cached).
    ///
    /// # Errors
    /// As [`SecretStore::list`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::List);
        let started = Instant::now();
        let result = inner.cache.list(prefix).await;
        inner.after_backend(&result);
        inner.finish("list", None, &result, None, started);
        result
    }

    /// The version history of `key`, from the primary (never cached).
    ///
    /// # Errors
    /// As [`SecretStore::versions`].
    pub async fn versions<'k>(
        &self,
        key: impl IntoSecretName<'k>,
    ) -> Result<Vec<VersionInfo>, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::Versions);
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("versions", e))?;
        let started = Instant::now();
        let result = inner.cache.versions(&key).await;
        inner.after_backend(&result);
        inner.finish("versions", Some(&key), &result, None, started);
        result
    }

    /// Restores a soft-deleted `key` (see [`SecretStore::undelete`]).
    ///
    /// # Errors
    /// As [`SecretStore::undelete`]: [`Error::Unsupported`] where the primary cannot.
    pub async fn undelete<'k>(&self, key: impl IntoSecretName<'k>) -> Result<(), Error> {
        let inner = &*self.inner;
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("undelete", e))?;
        let started = Instant::now();
        let result = inner.cache.undelete(&key).await;
        inner.after_backend(&result);
        inner.finish("undelete", Some(&key), &result, None, started);
        result
    }

    /// Removes `key` and its history for good, from the mirror too (see
    /// [`SecretStore::purge`]).
    ///
    /// # Errors
    /// As [`SecretStore::purge`]: [`Error::Unsupported`] where the primary cannot.
    pub async fn purge<'k>(&self, key: impl IntoSecretName<'k>) -> Result<(), Error> {
        let inner = &*self.inner;
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("purge", e))?;
        let started = Instant::now();
        let result = inner.cache.purge(&key).await;
        inner.after_backend(&result);
        if let Some(mirror) = &inner.mirror
            && (result.is_ok() || result.as_ref().is_err_and(Error::is_not_found))
        {
            mirror.remove(&key).await;
        }
        inner.finish("purge", Some(&key), &result, None, started);
        result
    }

    /// Rotates `key` to 32 random bytes, base64-encoded (see [`Generator::default`]).
    ///
    /// # Errors
    /// As [`rotate_with`](Self::rotate_with).
    pub async fn rotate<'k>(&self, key: impl IntoSecretName<'k>) -> Result<VersionId, Error> {
        self.rotate_with(key, &Generator::default()).await
    }

    /// Rotates `key` to a value from `generator`: writes a new version, drops the cached
    /// one, and notifies subscribers (a [`Change`] with cause `Put`).
    ///
    /// # Errors
    /// The generator's error, or the write's (as [`put`](Self::put)).
    pub async fn rotate_with<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        generator: &Generator,
    ) -> Result<VersionId, Error> {
        let inner = &*self.inner;
        inner.counters.add(Op::Rotate);
        let key = key
            .into_secret_name()
            .map_err(|e| inner.refused("rotate", e))?;
        let value = match generator.generate() {
            Ok(value) => value,
            Err(err) => return Err(inner.refused("rotate", err)),
        };
        inner
            .write("rotate", &key, value, &PutOptions::default())
            .await
    }

    /// Applies `policy` once: reads the key from the store (not the cache), and when its
    /// current version is due (older than the policy's age, or created before an instant of
    /// its cron schedule that has passed; or the key does not exist) writes a
    /// new value with a check-and-set on the version read. Subscribers are notified of a
    /// rotation; the audit line (op `rotate`) names the policy. When another process wins
    /// the race the write is refused (audited as `conflict`), nothing more is written, and
    /// the winner's value is read into the cache.
    ///
    /// # Errors
    /// The read's or the write's error; [`Error::Unsupported`] when the backend gives no
    /// creation time for the current version (the age cannot be told) or has no
    /// conditional writes; the generator's error.
    pub async fn rotate_if_due(&self, policy: &RotationPolicy) -> Result<RotationOutcome, Error> {
        let inner = &*self.inner;
        let key = policy.key();
        let fresh = inner.cache.inner().get(key).await;
        inner.after_backend(&fresh);
        let check = policy
            .check(fresh, inner.backend, SystemTime::now())
            .map_err(|e| inner.refused_as("rotate", key, policy.name(), e))?;
        let options = match check.into_write() {
            Ok(options) => options,
            Err(not_due) => return Ok(not_due),
        };
        inner.counters.add(Op::Rotate);
        let value = policy
            .value_generator()
            .generate()
            .map_err(|e| inner.refused_as("rotate", key, policy.name(), e))?;
        match inner
            .write_as("rotate", key, value, &options, Some(policy.name()))
            .await
        {
            Ok(version) => Ok(RotationOutcome::Rotated { version }),
            Err(Error::Conflict { .. }) => {
                inner.cache.invalidate(key);
                let winner = self.get(key).await?;
                Ok(RotationOutcome::RotatedElsewhere {
                    version: winner.version,
                })
            }
            Err(err) => Err(err),
        }
    }

    /// [`rotate_if_due`](Self::rotate_if_due) with a policy "older than `max_age`" and the
    /// default generator: what `strongroom rotate --if-older-than` does.
    ///
    /// # Errors
    /// As [`rotate_if_due`](Self::rotate_if_due).
    pub async fn rotate_if_older_than<'k>(
        &self,
        key: impl IntoSecretName<'k>,
        max_age: Duration,
    ) -> Result<RotationOutcome, Error> {
        let key = key
            .into_secret_name()
            .map_err(|e| self.inner.refused("rotate", e))?;
        self.rotate_if_due(&RotationPolicy::older_than(key.into_owned(), max_age))
            .await
    }

    /// Follows `policy` until the returned handle is stopped or dropped: applies it now
    /// (so a rotation that fell due while the process was down happens at start, once),
    /// then again whenever the current version falls due. The age is the store's, so a
    /// restart neither resets nor repeats a rotation, and a fleet with the same policy
    /// rotates once (see [`rotate_if_due`](Self::rotate_if_due)).
    ///
    /// Needs a tokio runtime. A failed check is audited and logged and retried after
    /// [`RETRY_AFTER_FAILURE`](crate::RETRY_AFTER_FAILURE).
    pub fn start_rotation(&self, policy: RotationPolicy) -> RotationHandle {
        RotationHandle::follow(self.clone(), policy)
    }

    /// Rotates `key` every `interval` of this process's uptime (the first time one interval
    /// from now) with the default generator, until the returned handle is stopped or
    /// dropped.
    ///
    /// Needs a tokio runtime. A failed rotation is audited and logged, and the schedule
    /// goes on.
    #[deprecated(
        since = "0.2.0",
        note = "counts uptime, so restarts postpone it and every process of a fleet rotates; use start_rotation(RotationPolicy::older_than(key, interval))"
    )]
    pub fn rotate_every(&self, key: SecretName, interval: Duration) -> RotationHandle {
        #[allow(deprecated)]
        self.rotate_every_with(key, interval, Generator::default())
    }

    /// As [`rotate_every`](Self::rotate_every), with `generator`.
    #[deprecated(
        since = "0.2.0",
        note = "counts uptime; use start_rotation(RotationPolicy::older_than(key, interval).generator(generator))"
    )]
    pub fn rotate_every_with(
        &self,
        key: SecretName,
        interval: Duration,
        generator: Generator,
    ) -> RotationHandle {
        RotationHandle::start(self.clone(), key, interval, generator)
    }

    /// Receives the changes to `key` from now on: writes, rotations and deletes through
    /// this object (and its clones), and changes that cache reloads discover.
    pub fn subscribe(&self, key: SecretName) -> Subscription {
        Subscription::new(key, self.inner.cache.subscribe())
    }

    /// Receives every change, to any key (see [`subscribe`](Self::subscribe)).
    pub fn subscribe_all(&self) -> broadcast::Receiver<Change> {
        self.inner.cache.subscribe()
    }

    /// Probes the primary with a cheap read of the health key (expected absent) and says
    /// whether the primary serves (`Healthy`), reads are being served from the cache or
    /// mirror while it does not (`Degraded`), or nothing can be served (`Unhealthy`).
    ///
    /// The probe goes to the primary even while the cache's circuit breaker is open (a
    /// health check reports the store, not the breaker's memory of it), and the breaker
    /// hears its answer: a probe that reaches the primary closes an open breaker, so that
    /// `Healthy` never comes with `breaker_open`, and one that finds it `Unavailable`
    /// counts towards opening it as any failed read does.
    pub async fn health(&self) -> Health {
        let inner = &*self.inner;
        let started = Instant::now();
        let (probe, nodes) = tokio::join!(
            async {
                let read = inner.cache.inner().get(&inner.health_key);
                let probe = inner.cache.probe(read).await;
                (probe, started.elapsed())
            },
            inner.cache.inner().nodes()
        );
        let (probe, latency) = probe;
        let (status, reason) = match probe {
            Ok(_) | Err(Error::NotFound { .. } | Error::PermissionDenied { .. }) => {
                // The backend answered: it is reachable and knows who we are.
                inner.recovered();
                (HealthStatus::Healthy, None)
            }
            Err(err) if err.is_retryable() => {
                inner.went_down(&err);
                let fallback = inner.mirror.is_some() || inner.cache.stats().entries > 0;
                let status = if fallback {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Unhealthy
                };
                let reason = if fallback {
                    format!("{err}; serving reads from the cache and mirror")
                } else {
                    format!("{err}; nothing cached or mirrored to serve")
                };
                (status, Some(reason))
            }
            Err(err) => (HealthStatus::Unhealthy, Some(err.to_string())),
        };
        let breaker_open = inner.cache.breaker_state() != BreakerState::Closed;
        Health::new(status, reason, inner.backend, latency, nodes, breaker_open)
    }

    /// True while the primary is known to be unavailable (set by any operation or probe
    /// that found it so, cleared by the next that reached it).
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let inner = &*self.inner;
        Stats::collect(inner.cache.stats(), &inner.counters, self.is_degraded())
    }

    /// Brings the metrics that report state rather than count operations up to date: the
    /// circuit breaker's `strongroom_breaker_open{backend}` gauge and its
    /// `strongroom_breaker_opened_total` / `strongroom_breaker_refused_total` counters
    /// (see [`meter`](crate::meter)). Call it just before an exporter renders (the agent's
    /// `/metrics` does), as often as needed: each call adds only what happened since the
    /// last.
    pub fn record_metrics(&self) {
        let inner = &*self.inner;
        inner
            .breaker_export
            .record(inner.backend, &inner.cache.stats());
    }

    /// Blocks until every audit line emitted so far is written and flushed to the audit
    /// file (no-op without one). Short: the writer thread only formats and writes.
    pub fn flush_audit(&self) {
        if let Some(file) = &self.inner.audit_file {
            file.flush();
        }
    }

    /// Waits until every mirror write queued so far is done (no-op without a mirror).
    pub async fn sync_mirror(&self) {
        if let Some(mirror) = &self.inner.mirror {
            mirror.sync().await;
        }
    }
}

/// Read-only controls over the cache of a [`Secrets`]; see [`Secrets::cache`].
///
/// It can drop entries and report, never read or write a secret: those go through
/// [`Secrets`], which audits, counts and mirrors them.
#[derive(Clone, Copy)]
pub struct CacheControl<'a> {
    cache: &'a CachedStore<Arc<dyn SecretStore>>,
}

impl fmt::Debug for CacheControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.cache, f)
    }
}

impl CacheControl<'_> {
    /// Drops everything cached for `key`: the next read asks the primary.
    pub fn invalidate(&self, key: &SecretName) {
        self.cache.invalidate(key);
    }

    /// Drops every cached entry.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// The cache's counters (also in [`Secrets::stats`]).
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The cache configuration in force.
    pub fn config(&self) -> &CacheConfig {
        self.cache.config()
    }
}

#[async_trait]
impl SecretStore for Secrets {
    fn backend(&self) -> &'static str {
        self.inner.backend
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.cache.capabilities()
    }

    async fn nodes(&self) -> Vec<NodeReport> {
        self.inner.cache.nodes().await
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        Secrets::get(self, key).await
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        Secrets::get_version(self, key, version).await
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        Secrets::put_with(self, key, value, options).await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        Secrets::delete(self, key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        Secrets::list(self, prefix).await
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        Secrets::versions(self, key).await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        Secrets::undelete(self, key).await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        Secrets::purge(self, key).await
    }
}

impl Inner {
    /// True when someone consumes audit events: then hits are timed and audited.
    #[inline]
    fn audit_wanted(&self) -> bool {
        self.audit_file.is_some() || audit::tracing_wants_audit()
    }

    /// Accounts for a fresh cached value served by [`Secrets::get`].
    #[inline]
    fn hit_found(&self, key: &SecretName, started: Option<Instant>) {
        meter::get_hit();
        if let Some(started) = started {
            let status = Some(CacheStatus::Hit.as_str());
            self.emit("get", Some(key), "ok", status, started.elapsed());
        }
    }

    /// Accounts for a cache hit (or negative hit) of `get`.
    fn hit(
        &self,
        key: &SecretName,
        result: &Result<Secret, Error>,
        status: CacheStatus,
        started: Option<Instant>,
    ) {
        let outcome = match result {
            Ok(_) => {
                meter::get_hit();
                "ok"
            }
            Err(err) => {
                self.counters.add(Op::Errors);
                let outcome = err.kind().as_str();
                meter::operation("get", outcome, Some(status.as_str()), None);
                outcome
            }
        };
        if let Some(started) = started {
            self.emit(
                "get",
                Some(key),
                outcome,
                Some(status.as_str()),
                started.elapsed(),
            );
        }
    }

    async fn get_slow(&self, key: SecretName, started: Instant) -> Result<Secret, Error> {
        // A value loaded from the primary is mirrored by the `Recording` layer under the cache.
        let (result, status) = self.cache.get_with_status(&key).await;
        let mut label = status.as_str();
        let result = match result {
            Ok(secret) => {
                match status {
                    CacheStatus::Miss => self.recovered(),
                    CacheStatus::Stale => self.went_down_quietly(),
                    _ => {}
                }
                Ok(secret)
            }
            Err(err) if err.is_retryable() => {
                self.went_down(&err);
                match self.read_mirror(&key, &err).await {
                    Ok(Some(secret)) => {
                        label = "mirror";
                        Ok(secret)
                    }
                    Ok(None) => Err(err),
                    Err(too_old) => Err(too_old),
                }
            }
            Err(err) => {
                if err.is_not_found() && status == CacheStatus::Miss {
                    self.recovered();
                }
                Err(err)
            }
        };
        self.finish("get", Some(&key), &result, Some(label), started);
        result
    }

    /// The mirror's copy of `key` while the primary fails with `primary`: `Ok(None)` when
    /// there is none to serve (no mirror, no copy, a copy that cannot be read), an
    /// [`Error::Unavailable`] when the copy is older than the mirror's maximum age.
    async fn read_mirror(
        &self,
        key: &SecretName,
        primary: &Error,
    ) -> Result<Option<Secret>, Error> {
        let Some(mirror) = self.mirror.as_ref() else {
            return Ok(None);
        };
        match mirror.read(key).await {
            Ok(Mirrored::Fresh(secret)) => {
                self.counters.add(Op::MirrorReads);
                tracing::warn!(key = %key, backend = self.backend, "primary unavailable: serving from the mirror");
                Ok(Some(secret))
            }
            Ok(Mirrored::TooOld) => {
                let max_age = mirror.max_age().as_secs();
                tracing::warn!(key = %key, backend = self.backend, max_age_secs = max_age, "primary unavailable and the mirrored copy is too old to serve");
                Err(Error::unavailable(
                    self.backend,
                    format!(
                        "{primary}; the mirrored copy of {key} is older than the mirror's maximum age ({max_age}s) or its age cannot be told, so it is not served (it may have been rotated or revoked since)"
                    ),
                ))
            }
            Err(err) => {
                if !err.is_not_found() {
                    self.counters.add(Op::MirrorErrors);
                    tracing::warn!(key = %key, error = %err, "mirror read failed");
                }
                Ok(None)
            }
        }
    }

    async fn write(
        &self,
        op: &'static str,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        self.write_as(op, key, value, options, None).await
    }

    /// [`write`](Self::write) on behalf of a rotation `policy`, which the audit line names.
    async fn write_as(
        &self,
        op: &'static str,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
        policy: Option<&str>,
    ) -> Result<VersionId, Error> {
        let started = Instant::now();
        // Taken before the primary is written: a delete meanwhile voids the mirror write.
        let ticket = self.mirror.as_deref().map(Mirror::ticket);
        let result = self.cache.put_with(key, value.clone(), options).await;
        self.after_backend(&result);
        if let (Ok(version), Some(mirror), Some(ticket)) = (&result, &self.mirror, ticket) {
            // The mirror must not keep serving the old value if the primary goes down
            // before this key is read again.
            let mut secret =
                Secret::new(key.clone(), value, version.clone()).created(SystemTime::now());
            if let Some(metadata) = &options.metadata {
                secret = secret.metadata(metadata.clone());
            }
            mirror.record_write(&secret, ticket);
        }
        self.finish_as(op, Some(key), &result, None, started, policy);
        result
    }

    /// Updates the degraded flag from the result of a call that reached the primary.
    fn after_backend<T>(&self, result: &Result<T, Error>) {
        match result {
            Ok(_) => self.recovered(),
            Err(err) if err.is_retryable() => self.went_down(err),
            Err(_) => {}
        }
    }

    fn went_down(&self, err: &Error) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(backend = self.backend, error = %err, "primary unavailable: degraded mode");
        }
    }

    fn went_down_quietly(&self) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(backend = self.backend, "primary unavailable: degraded mode");
        }
    }

    fn recovered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(backend = self.backend, "primary reachable again");
        }
    }

    /// Audits an argument error (a bad key, a failing generator) and hands it back.
    fn refused(&self, op: &'static str, err: Error) -> Error {
        self.counters.add(Op::Errors);
        let outcome = err.kind().as_str();
        meter::operation(op, outcome, None, None);
        self.emit(op, None, outcome, None, Duration::ZERO);
        err
    }

    /// A rotation policy's argument error (no creation time, a failing generator), audited
    /// with the key and the policy, handed back.
    fn refused_as(&self, op: &'static str, key: &SecretName, policy: &str, err: Error) -> Error {
        self.counters.add(Op::Errors);
        let outcome = err.kind().as_str();
        meter::operation(op, outcome, None, None);
        self.emit_as(op, Some(key), outcome, None, Duration::ZERO, Some(policy));
        err
    }

    /// Counts, measures and audits one finished operation.
    fn finish<T>(
        &self,
        op: &'static str,
        key: Option<&SecretName>,
        result: &Result<T, Error>,
        cache: Option<&'static str>,
        started: Instant,
    ) {
        self.finish_as(op, key, result, cache, started, None);
    }

    /// [`finish`](Self::finish) on behalf of a rotation `policy`.
    fn finish_as<T>(
        &self,
        op: &'static str,
        key: Option<&SecretName>,
        result: &Result<T, Error>,
        cache: Option<&'static str>,
        started: Instant,
        policy: Option<&str>,
    ) {
        let latency = started.elapsed();
        let outcome = match result {
            Ok(_) => "ok",
            Err(err) => {
                self.counters.add(Op::Errors);
                ErrorKind::as_str(err.kind())
            }
        };
        meter::operation(op, outcome, cache, Some(latency));
        self.emit_as(op, key, outcome, cache, latency, policy);
    }

    /// Sends one audit event to tracing and the audit file, if either wants it.
    fn emit(
        &self,
        op: &'static str,
        key: Option<&SecretName>,
        outcome: &'static str,
        cache: Option<&'static str>,
        latency: Duration,
    ) {
        self.emit_as(op, key, outcome, cache, latency, None);
    }

    /// [`emit`](Self::emit) naming the rotation `policy` behind the operation.
    fn emit_as(
        &self,
        op: &'static str,
        key: Option<&SecretName>,
        outcome: &'static str,
        cache: Option<&'static str>,
        latency: Duration,
        policy: Option<&str>,
    ) {
        let to_tracing = audit::tracing_wants_audit();
        if !to_tracing && self.audit_file.is_none() {
            return;
        }
        let record = Record {
            time: SystemTime::now(),
            op,
            key: key.cloned(),
            backend: self.backend,
            outcome,
            cache,
            latency,
            policy: policy.map(str::to_owned),
        };
        if to_tracing {
            audit::trace(&record);
        }
        if let Some(file) = &self.audit_file {
            file.send(record);
        }
    }
}
