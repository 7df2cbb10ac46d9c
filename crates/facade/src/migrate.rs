//! [`migrate`]: copy every secret from one store to another, with no partial secret left
//! behind on failure.

use strongroom_core::{Error, ErrorKind, PutOptions, Secret, SecretName, SecretStore, VersionInfo};

/// What [`migrate`] copies and how.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MigrationOptions {
    /// Read and compare everything, write nothing; the report says what would be copied.
    pub dry_run: bool,
    /// Copy every readable version, oldest first, instead of the latest only.
    pub all_versions: bool,
    /// Only keys starting with this (a plain string prefix; empty for all).
    pub prefix: String,
}

impl MigrationOptions {
    /// Latest versions of every key, for real.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`dry_run`](Self::dry_run).
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`all_versions`](Self::all_versions).
    #[must_use]
    pub fn all_versions(mut self, all: bool) -> Self {
        self.all_versions = all;
        self
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A key that could not be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationFailure {
    /// The key.
    pub key: SecretName,
    /// What kind of error stopped it.
    pub kind: ErrorKind,
    /// The error's message (never a value).
    pub message: String,
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Keys copied (or, in a dry run, that would be).
    pub copied: Vec<SecretName>,
    /// Keys whose current value the target already held.
    pub skipped: Vec<SecretName>,
    /// Keys that failed; nothing of them is left in the target that was not there before.
    pub failed: Vec<MigrationFailure>,
    /// Versions written to the target (0 in a dry run).
    pub versions_written: usize,
    /// True for a dry run.
    pub dry_run: bool,
}

impl MigrationReport {
    /// True when no key failed.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// What happened to one key, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOutcome {
    /// Copied (or would be, in a dry run).
    Copied,
    /// The target already held it.
    Skipped,
    /// It failed; see the report.
    Failed,
}

/// One step of a migration, passed to the progress callback after each key.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// Keys done so far, this one included.
    pub done: usize,
    /// Keys to do in all.
    pub total: usize,
    /// The key just done.
    pub key: &'a SecretName,
    /// What happened to it.
    pub outcome: KeyOutcome,
}

/// Copies every secret under `options.prefix` from `from` to `to`, calling `progress` after
/// each key.
///
/// - A key whose current value `to` already holds is skipped, so running a migration again
///   finishes what a failed run left.
/// - Every version to copy is read before anything is written, so a read failure writes
///   nothing. With `all_versions`, versions are written oldest first (deleted or destroyed
///   versions cannot be read and are left out); if a write fails, what was written for that
///   key is purged (or deleted, where the target cannot purge) when the key did not exist in
///   `to` before, and its previous value is written back when it did. The key is reported as
///   failed either way.
/// - Metadata is copied where the target keeps it.
///
/// ```
/// use strongroom_facade::{MigrationOptions, migrate};
/// use strongroom_local::EnvStore;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let from = EnvStore::from_vars([("APP_TOKEN", "t0k3n")]);
/// let to = EnvStore::from_vars([("APP_TOKEN", "t0k3n")]);
/// let report = migrate(&from, &to, &MigrationOptions::new().dry_run(true), |_| {}).await?;
/// assert_eq!((report.copied.len(), report.skipped.len()), (0, 1));
/// # Ok::<(), strongroom_core::Error>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// Only when `from` cannot list its keys; per-key failures are in the report.
pub async fn migrate(
    from: &dyn SecretStore,
    to: &dyn SecretStore,
    options: &MigrationOptions,
    mut progress: impl FnMut(&Progress<'_>),
) -> Result<MigrationReport, Error> {
    let keys = from.list(&options.prefix).await?;
    let total = keys.len();
    let mut report = MigrationReport {
        dry_run: options.dry_run,
        ..MigrationReport::default()
    };
    for (index, key) in keys.iter().enumerate() {
        let outcome = match copy_key(from, to, key, options).await {
            Ok(Copy::Copied { written }) => {
                report.versions_written += written;
                report.copied.push(key.clone());
                KeyOutcome::Copied
            }
            Ok(Copy::Skipped) => {
                report.skipped.push(key.clone());
                KeyOutcome::Skipped
            }
            Err(err) => {
                tracing::warn!(key = %key, error = %err, "migration of a key failed");
                report.failed.push(MigrationFailure {
                    key: key.clone(),
                    kind: err.kind(),
                    message: err.to_string(),
                });
                KeyOutcome::Failed
            }
        };
        progress(&Progress {
            done: index + 1,
            total,
            key,
            outcome,
        });
    }
    Ok(report)
}

enum Copy {
    Copied { written: usize },
    Skipped,
}

async fn copy_key(
    from: &dyn SecretStore,
    to: &dyn SecretStore,
    key: &SecretName,
    options: &MigrationOptions,
) -> Result<Copy, Error> {
    // Read everything first: a failed read then leaves the target untouched.
    let sources = read_versions(from, key, options.all_versions).await?;
    let Some(latest) = sources.last() else {
        return Err(Error::not_found(key));
    };
    let before = match to.get(key).await {
        Ok(secret) => Some(secret),
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(err),
    };
    if before.as_ref().is_some_and(|b| b.value == latest.value) {
        return Ok(Copy::Skipped);
    }
    if options.dry_run {
        return Ok(Copy::Copied { written: 0 });
    }
    let keep_metadata = to.capabilities().metadata;
    let mut written = 0;
    for source in &sources {
        let mut put = PutOptions::default();
        if keep_metadata && !source.metadata.is_empty() {
            put = put.with_metadata((*source.metadata).clone());
        }
        if let Err(err) = to.put_with(key, source.value.clone(), &put).await {
            if written > 0 {
                undo(to, key, before.as_ref()).await;
            }
            return Err(err);
        }
        written += 1;
    }
    Ok(Copy::Copied { written })
}

/// The versions to copy, oldest first; the latest only unless `all`.
async fn read_versions(
    from: &dyn SecretStore,
    key: &SecretName,
    all: bool,
) -> Result<Vec<Secret>, Error> {
    let latest = from.get(key).await?;
    if !all || !from.capabilities().versions {
        return Ok(vec![latest]);
    }
    let history: Vec<VersionInfo> = from.versions(key).await?;
    let mut out = Vec::with_capacity(history.len());
    for info in history {
        if info.deleted || info.destroyed || info.version == latest.version {
            continue;
        }
        out.push(from.get_version(key, &info.version).await?);
    }
    out.push(latest);
    Ok(out)
}

/// Removes what a failed copy wrote: the whole key when it was new, else the previous value
/// is made current again.
async fn undo(to: &dyn SecretStore, key: &SecretName, before: Option<&Secret>) {
    let result = match before {
        None => match to.purge(key).await {
            Err(Error::Unsupported { .. }) => to.delete(key).await,
            other => other,
        },
        Some(previous) => {
            let mut put = PutOptions::default();
            if to.capabilities().metadata && !previous.metadata.is_empty() {
                put = put.with_metadata((*previous.metadata).clone());
            }
            to.put_with(key, previous.value.clone(), &put)
                .await
                .map(drop)
        }
    };
    if let Err(err) = result {
        tracing::error!(key = %key, error = %err, "could not undo a partial migration of this key");
    }
}
