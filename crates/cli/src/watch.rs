//! Watching the secrets a long-running command uses (`exec --restart-on-change`,
//! `render --watch`).
//!
//! The facade tells its subscribers about a change when a write goes through it or when a
//! cache load finds another version than the cached one. Another process's write (a
//! `strongroom rotate`, a Vault UI edit) is only seen by a load, so the [`Watcher`] re-reads
//! every watched secret once per refresh interval, through a cache whose TTL is half that
//! interval: each re-read is a load, and a load that finds a new version puts a `Change` on
//! the feed the watcher listens to. A change is therefore seen within one interval (plus
//! the time the read takes). Folders (`exec --env-prefix`) are listed at the same pace, and
//! a secret added to or removed from one counts as a change too.
//!
//! While the backend is unavailable the cache answers reads with the value it holds (the
//! facade's stale-if-error), so an outage is not mistaken for a change.

use std::collections::BTreeSet;
use std::time::Duration;

use strongroom_core::{Error, SecretName};
use strongroom_facade::{CacheConfig, Change, Config, DEFAULT_MAX_STALE, Secrets};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::args::Global;
use crate::store;

/// The refresh interval when none is given: how long a change made elsewhere may go unseen.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

const MIN_REFRESH: Duration = Duration::from_millis(100);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Parses `--refresh-interval` (`500ms`, `30s`, `5m`), between 100 ms and a day.
pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if !(MIN_REFRESH..=MAX_REFRESH).contains(&interval) {
        return Err("the refresh interval must be between 100ms and 24h".to_owned());
    }
    Ok(interval)
}

/// The store the global options name, behind a facade whose cache entries expire after half
/// of `refresh`, so that a re-read once per `refresh` always reaches the backend.
///
/// From a `--config` file this also takes the audit file and the cache's bound, stale and
/// negative-caching settings (its TTL and refresh-ahead are replaced by the above). Its
/// mirror is not used: the facade opens mirrors only inside `Secrets::from_config`, which
/// leaves no room for the TTL.
pub(crate) fn open_secrets(global: &Global, refresh: Duration) -> Result<Secrets, Error> {
    let config = global
        .config
        .as_deref()
        .map(Config::from_toml_file)
        .transpose()?;
    let settings = config.as_ref().map(|c| &c.cache);
    let max_stale = settings
        .and_then(|s| s.max_stale_secs)
        .map_or(DEFAULT_MAX_STALE, Duration::from_secs);
    let mut cache = CacheConfig::builder().ttl(refresh / 2).max_stale(max_stale);
    if let Some(max) = settings.and_then(|s| s.max_entries) {
        cache = cache.max_entries(max);
    }
    if let Some(max) = settings.and_then(|s| s.max_bytes) {
        cache = cache.max_bytes(max);
    }
    if let Some(secs) = settings.and_then(|s| s.negative_ttl_secs) {
        cache = cache.negative_ttl(Duration::from_secs(secs));
    }
    let mut builder = Secrets::builder()
        .store(store::open(global)?)
        .cache(cache.build()?);
    if let Some(file) = config.as_ref().and_then(|c| c.audit.file.as_ref()) {
        builder = builder.audit_file(file);
    }
    builder.build()
}

/// Waits for a change to the secrets a command uses; see the module documentation.
pub(crate) struct Watcher {
    secrets: Secrets,
    changes: broadcast::Receiver<Change>,
    keys: BTreeSet<SecretName>,
    folders: Vec<(String, BTreeSet<SecretName>)>,
    /// Watched keys the last re-read found missing: the cache holds nothing for them, so
    /// their return is no `Change` on the feed and is told by the re-read instead.
    missing: BTreeSet<SecretName>,
    ticker: Interval,
}

impl Watcher {
    /// Starts listening to `secrets`' change feed now; the first re-read is one `refresh`
    /// from now. Subscribe before the first read of the watched secrets' values, so that no
    /// change between that read and [`watch`](Self::watch) is lost.
    pub(crate) fn new(secrets: &Secrets, refresh: Duration) -> Self {
        let mut ticker = tokio::time::interval_at(Instant::now() + refresh, refresh);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            secrets: secrets.clone(),
            changes: secrets.subscribe_all(),
            keys: BTreeSet::new(),
            folders: Vec::new(),
            missing: BTreeSet::new(),
            ticker,
        }
    }

    /// Watches `keys`, and the folders `folders` (each with the names it held when read).
    pub(crate) fn watch(
        &mut self,
        keys: BTreeSet<SecretName>,
        folders: Vec<(String, BTreeSet<SecretName>)>,
    ) {
        self.keys = keys;
        self.folders = folders;
        self.missing.clear();
    }

    /// Returns when a watched secret changed (or changes were lost: a lagging feed); every
    /// change already received is consumed, so a burst of writes gives one return.
    pub(crate) async fn changed(&mut self) {
        loop {
            tokio::select! {
                received = self.changes.recv() => match received {
                    Ok(change) if self.keys.contains(&change.key) => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    // Cannot happen while `self.secrets` is alive; wait for the ticker.
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                },
                _ = self.ticker.tick() => {
                    if self.poll().await {
                        break;
                    }
                }
            }
        }
        self.drain();
    }

    /// Re-reads the watched secrets (changes arrive on the feed) and lists the folders;
    /// true when a missing secret is back or a folder's names differ from what was watched.
    async fn poll(&mut self) -> bool {
        let mut changed = false;
        for key in &self.keys {
            match self.secrets.get(key).await {
                Ok(_) => changed |= self.missing.remove(key),
                // Found deleted: the cache reports that on the feed, once.
                Err(err) if err.is_not_found() => {
                    self.missing.insert(key.clone());
                }
                // A failure is not a change.
                Err(err) => warn(&format!("cannot re-read {key}: {err}")),
            }
        }
        for (folder, names) in &self.folders {
            match self.secrets.list(folder).await {
                Ok(now) => changed |= now.into_iter().collect::<BTreeSet<_>>() != *names,
                Err(err) => warn(&format!("cannot list {folder}: {err}")),
            }
        }
        changed
    }

    fn drain(&mut self) {
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = self.changes.try_recv() {}
    }
}

/// One line on stderr about a long-running command's progress or trouble (never a value).
#[allow(clippy::print_stderr, reason = "the CLI reports progress on stderr")]
pub(crate) fn warn(message: &str) {
    eprintln!("strongroom: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["10ms", "0s", "2d", "soon", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
