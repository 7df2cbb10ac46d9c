//! The local mirror: an encrypted [`FileStore`] holding the latest value of every secret
//! this process has read from the primary, served when the primary is unavailable.
//!
//! Writes to it happen off the read path: every current value read from the primary (a
//! read that missed the cache, a background refresh: the [`Recording`] layer under the
//! cache) and every value written through the facade is queued, and one background task
//! per mirror writes the queue in order. The queue is bounded; when it is full a write is
//! skipped with a warning rather than slowing reads (a removal waits for room instead: it
//! is never skipped).
//!
//! **Age.** Each entry carries the time the primary last confirmed it
//! ([`MIRROR_CONFIRMED_TAG`], unix seconds). A mirrored copy older than the maximum age
//! ([`DEFAULT_MIRROR_MAX_AGE`] unless configured) is not served: the read fails with
//! [`Error::Unavailable`] rather than hand out a value that may have been rotated or revoked
//! since. A value the mirror already holds is not rewritten on every read (a steady state
//! costs a read of the file and no fsync): only when its confirmation is older than the
//! refresh interval (an eighth of the maximum age, at most an hour). A confirmation time in
//! the future or that does not parse counts as too old; an entry written before the tag
//! existed is dated by its creation time.
//!
//! **Races.** A read takes a ticket (the current epoch) before it asks the primary. A
//! delete or purge bumps the epoch and marks the key removed at the new epoch, before it
//! queues the removal; a write succeeding on the primary marks the key written. The writer
//! drops a read's copy whose ticket predates the key's last mark, and a put's copy whose
//! ticket predates the key's last removal, so a value read (or written) before a delete
//! cannot come back into the mirror after it. The marks are bounded: past
//! [`MAX_MARKS`] keys they are forgotten and a floor is raised below which every ticket is
//! dropped (which only skips mirror writes).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use strongroom_core::{
    Capabilities, Error, NodeReport, PutOptions, Secret, SecretName, SecretStore, SecretValue,
    VersionId, VersionInfo,
};
use strongroom_local::FileStore;
use tokio::sync::{mpsc, oneshot};

use crate::stats::{Counters, Op};

const QUEUE: usize = 1024;

/// How many keys' removal and write marks are kept before they are forgotten (and the
/// floor raised).
const MAX_MARKS: usize = 4096;

/// The longest interval between two confirmations of an unchanged value.
const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// How old a mirrored copy may be (since the primary last confirmed it) and still be
/// served, unless [`SecretsBuilder::mirror_max_age`](crate::SecretsBuilder::mirror_max_age)
/// says otherwise: 24 hours.
pub const DEFAULT_MIRROR_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The metadata tag that keeps the primary's version id of a mirrored secret, so that a read
/// served from the mirror reports the version the primary had, not the mirror's own.
pub const MIRROR_VERSION_TAG: &str = "strongroom-primary-version";

/// The metadata tag that keeps when the primary last confirmed a mirrored secret, in unix
/// seconds; the mirrored copy's age is counted from it.
pub const MIRROR_CONFIRMED_TAG: &str = "strongroom-confirmed-at";

/// The epoch a read or write saw before it called the primary; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// Who produced a value to mirror, which decides which marks can void it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A read from the primary: void after any later write or removal of the key.
    Read,
    /// A write the primary accepted: void after a later removal of the key only.
    Write,
}

enum Job {
    Write {
        secret: Secret,
        ticket: Ticket,
        source: Source,
    },
    Remove(SecretName),
    Sync(oneshot::Sender<()>),
}

/// The epochs at which a key was last removed and last written.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    removed: u64,
    written: u64,
}

#[derive(Debug, Default)]
struct Epochs {
    current: u64,
    /// Tickets below this are dropped (raised when `marks` is cleared).
    floor: u64,
    marks: HashMap<SecretName, Marks>,
}

impl Epochs {
    /// Bumps the epoch and returns it, as the mark for `key`'s entry (bounded).
    fn bump(&mut self, key: &SecretName) -> (u64, &mut Marks) {
        self.current = self.current.saturating_add(1);
        if self.marks.len() >= MAX_MARKS && !self.marks.contains_key(key) {
            self.marks.clear();
            // Every ticket taken before now could predate a forgotten mark.
            self.floor = self.current;
        }
        (self.current, self.marks.entry(key.clone()).or_default())
    }

    /// True when a copy of `key` taken at `ticket` from `source` may still be mirrored.
    fn admits(&self, key: &SecretName, ticket: Ticket, source: Source) -> bool {
        if ticket.0 < self.floor {
            return false;
        }
        match self.marks.get(key) {
            None => true,
            Some(marks) => {
                let last = match source {
                    Source::Read => marks.removed.max(marks.written),
                    Source::Write => marks.removed,
                };
                ticket.0 >= last
            }
        }
    }
}

/// What the writer needs, shared with the mirror's handle.
struct Shared {
    store: FileStore,
    counters: Arc<Counters>,
    epochs: Mutex<Epochs>,
    refresh: Duration,
}

impl Shared {
    fn epochs(&self) -> MutexGuard<'_, Epochs> {
        // Every change is made in one step under the lock: a panic elsewhere leaves it whole.
        self.epochs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct Mirror {
    shared: Arc<Shared>,
    max_age: Duration,
    queue: OnceLock<Option<mpsc::Sender<Job>>>,
}

impl Mirror {
    pub(crate) fn new(store: FileStore, counters: Arc<Counters>, max_age: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                counters,
                epochs: Mutex::default(),
                refresh: refresh_interval(max_age),
            }),
            max_age,
            queue: OnceLock::new(),
        }
    }

    pub(crate) fn store(&self) -> &FileStore {
        &self.shared.store
    }

    pub(crate) fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The writer's queue, starting the writer on first use; `None` outside a tokio runtime.
    fn queue(&self) -> Option<&mpsc::Sender<Job>> {
        self.queue
            .get_or_init(|| {
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                let (sender, receiver) = mpsc::channel(QUEUE);
                runtime.spawn(run(Arc::clone(&self.shared), receiver));
                Some(sender)
            })
            .as_ref()
    }

    fn submit(&self, job: Job) {
        if let Some(queue) = self.queue()
            && queue.try_send(job).is_err()
        {
            self.shared.counters.add(Op::MirrorErrors);
            tracing::warn!("mirror queue full: a secret was not mirrored this time");
        }
    }

    /// The ticket a read or write takes before it calls the primary.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.shared.epochs().current)
    }

    /// Queues `secret`, read from the primary under `ticket`, to be mirrored (dropped by the
    /// writer if the key was written or removed since the ticket was taken).
    pub(crate) fn record(&self, secret: &Secret, ticket: Ticket) {
        self.submit(Job::Write {
            secret: secret.clone(),
            ticket,
            source: Source::Read,
        });
    }

    /// Marks `secret` as written to the primary (voiding reads in flight) and queues it,
    /// under the `ticket` taken before the write (dropped if the key was removed since).
    pub(crate) fn record_write(&self, secret: &Secret, ticket: Ticket) {
        {
            let mut epochs = self.shared.epochs();
            let (epoch, marks) = epochs.bump(&secret.key);
            marks.written = epoch;
        }
        self.submit(Job::Write {
            secret: secret.clone(),
            ticket,
            source: Source::Write,
        });
    }

    /// Marks `key` removed (voiding every copy in flight) and queues its removal, waiting
    /// for room in the queue rather than skipping it.
    pub(crate) async fn remove(&self, key: &SecretName) {
        {
            let mut epochs = self.shared.epochs();
            let (epoch, marks) = epochs.bump(key);
            marks.removed = epoch;
        }
        let Some(queue) = self.queue() else { return };
        if queue.send(Job::Remove(key.clone())).await.is_err() {
            self.shared.counters.add(Op::MirrorErrors);
            tracing::warn!(key = %key, "mirror writer gone: a removal was not applied");
        }
    }

    /// Waits until every job queued before this call is done.
    pub(crate) async fn sync(&self) {
        let Some(queue) = self.queue() else { return };
        let (done, wait) = oneshot::channel();
        if queue.send(Job::Sync(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Reads `key` from the mirror, as the primary had it, if its copy is young enough.
    ///
    /// # Errors
    /// The store's errors ([`Error::NotFound`] when it has no copy).
    pub(crate) async fn read(&self, key: &SecretName) -> Result<Mirrored, Error> {
        let mut secret = self.shared.store.get(key).await?;
        if age(&secret, SystemTime::now()).is_none_or(|age| age > self.max_age) {
            return Ok(Mirrored::TooOld);
        }
        let mut metadata = (*secret.metadata).clone();
        if let Some(version) = metadata.tags.remove(MIRROR_VERSION_TAG) {
            secret.version = VersionId::from(version);
        }
        metadata.tags.remove(MIRROR_CONFIRMED_TAG);
        secret.metadata = Arc::new(metadata);
        Ok(Mirrored::Fresh(secret))
    }
}

/// What the mirror holds for a key it has a copy of.
pub(crate) enum Mirrored {
    /// A copy confirmed within the maximum age, as the primary had it.
    Fresh(Secret),
    /// A copy older than the maximum age, or whose age cannot be told: not to be served.
    TooOld,
}

/// The primary with every current value it answers queued for the mirror, under a ticket
/// taken just before the call (so a delete meanwhile voids it). The cache sits on top, so
/// misses and background refreshes alike confirm the mirrored copy; other calls pass
/// through.
pub(crate) struct Recording {
    inner: Arc<dyn SecretStore>,
    mirror: Arc<Mirror>,
}

impl Recording {
    pub(crate) fn wrap(inner: Arc<dyn SecretStore>, mirror: Arc<Mirror>) -> Arc<dyn SecretStore> {
        Arc::new(Self { inner, mirror })
    }
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("backend", &self.inner.backend())
            .field("mirror", &self.mirror.store().path())
            .finish()
    }
}

#[async_trait]
impl SecretStore for Recording {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn nodes(&self) -> Vec<NodeReport> {
        self.inner.nodes().await
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let ticket = self.mirror.ticket();
        let secret = self.inner.get(key).await?;
        self.mirror.record(&secret, ticket);
        Ok(secret)
    }

    async fn get_version(&self, key: &SecretName, version: &VersionId) -> Result<Secret, Error> {
        self.inner.get_version(key, version).await
    }

    async fn put(&self, key: &SecretName, value: SecretValue) -> Result<VersionId, Error> {
        self.inner.put(key, value).await
    }

    async fn put_with(
        &self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
    ) -> Result<VersionId, Error> {
        self.inner.put_with(key, value, options).await
    }

    async fn delete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>, Error> {
        self.inner.list(prefix).await
    }

    async fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        self.inner.versions(key).await
    }

    async fn undelete(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.undelete(key).await
    }

    async fn purge(&self, key: &SecretName) -> Result<(), Error> {
        self.inner.purge(key).await
    }

    async fn get_many(&self, keys: &[SecretName]) -> Vec<Result<Secret, Error>> {
        let ticket = self.mirror.ticket();
        let results = self.inner.get_many(keys).await;
        for secret in results.iter().flatten() {
            self.mirror.record(secret, ticket);
        }
        results
    }
}

/// How often an unchanged value's confirmation is rewritten: an eighth of the maximum age,
/// at most [`MAX_REFRESH`].
fn refresh_interval(max_age: Duration) -> Duration {
    (max_age / 8).min(MAX_REFRESH)
}

/// When the primary last confirmed the mirrored `secret`: its confirmation tag, or for an
/// entry without one (written by an older version) its creation time. `None` when the tag
/// does not parse or neither is there.
fn confirmed_at(secret: &Secret) -> Option<SystemTime> {
    match secret.metadata.tags.get(MIRROR_CONFIRMED_TAG) {
        Some(text) => {
            let secs = text.parse::<u64>().ok()?;
            UNIX_EPOCH.checked_add(Duration::from_secs(secs))
        }
        None => secret.created,
    }
}

/// How long ago, at `now`, the mirrored `secret` was confirmed; `None` when that cannot be
/// told or lies in the future (both count as too old).
fn age(secret: &Secret, now: SystemTime) -> Option<Duration> {
    now.duration_since(confirmed_at(secret)?).ok()
}

/// `now` in unix seconds, as the confirmation tag keeps it.
fn unix_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Write {
                secret,
                ticket,
                source,
            } => {
                if !shared.epochs().admits(&secret.key, ticket, source) {
                    tracing::debug!(key = %secret.key, "mirror write dropped: the key changed since it was read");
                    continue;
                }
                write(&shared, &secret).await;
            }
            Job::Remove(key) => match shared.store.purge(&key).await {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(err) => {
                    shared.counters.add(Op::MirrorErrors);
                    tracing::warn!(key = %key, error = %err, "mirror removal failed");
                }
            },
            Job::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Writes `secret` to the mirror, unless the mirror holds the same value and version,
/// confirmed less than the refresh interval ago.
async fn write(shared: &Shared, secret: &Secret) {
    let store = &shared.store;
    let version = secret.version.as_str();
    let now = SystemTime::now();
    let fresh = store.get(&secret.key).await.is_ok_and(|held| {
        held.value == secret.value
            && held
                .metadata
                .tags
                .get(MIRROR_VERSION_TAG)
                .map(String::as_str)
                == Some(version)
            && held.metadata.tags.contains_key(MIRROR_CONFIRMED_TAG)
            && age(&held, now).is_some_and(|age| age < shared.refresh)
    });
    if fresh {
        return;
    }
    let metadata = (*secret.metadata)
        .clone()
        .tag(MIRROR_VERSION_TAG, version)
        .tag(MIRROR_CONFIRMED_TAG, unix_secs(now).to_string());
    let options = PutOptions::default().with_metadata(metadata);
    match store
        .put_with(&secret.key, secret.value.clone(), &options)
        .await
    {
        Ok(_) => shared.counters.add(Op::MirrorWrites),
        Err(err) => {
            shared.counters.add(Op::MirrorErrors);
            tracing::warn!(key = %secret.key, error = %err, "mirror write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::Metadata;

    fn key(name: &str) -> SecretName {
        SecretName::new(name).unwrap()
    }

    fn mirrored(tag: Option<&str>, created: Option<SystemTime>) -> Secret {
        let mut metadata = Metadata::default();
        if let Some(tag) = tag {
            metadata = metadata.tag(MIRROR_CONFIRMED_TAG, tag);
        }
        let mut secret = Secret::new(key("a"), "v".into(), VersionId::from("1")).metadata(metadata);
        secret.created = created;
        secret
    }

    #[test]
    fn age_counts_from_the_confirmation_then_the_creation_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day_ago = UNIX_EPOCH + Duration::from_secs(1_000_000 - 86_400);
        assert_eq!(
            age(&mirrored(Some("913600"), Some(now)), now),
            Some(Duration::from_secs(86_400)),
            "the tag wins over the creation time"
        );
        assert_eq!(
            age(&mirrored(None, Some(day_ago)), now),
            Some(Duration::from_secs(86_400)),
            "an untagged entry is dated by its creation"
        );
        assert_eq!(age(&mirrored(None, None), now), None);
    }

    #[test]
    fn a_future_or_garbled_confirmation_has_no_age() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for tag in [
            "1000001",
            "18446744073709551615",
            "99999999999999999999999",
            "-5",
            "",
            "1e9",
            " 5",
        ] {
            assert_eq!(age(&mirrored(Some(tag), Some(now)), now), None, "{tag:?}");
        }
    }

    #[test]
    fn the_refresh_interval_is_an_eighth_of_the_max_age_at_most_an_hour() {
        assert_eq!(
            refresh_interval(Duration::from_secs(800)),
            Duration::from_secs(100)
        );
        assert_eq!(refresh_interval(DEFAULT_MIRROR_MAX_AGE), MAX_REFRESH);
        assert_eq!(refresh_interval(Duration::MAX), MAX_REFRESH);
    }

    #[test]
    fn a_removal_voids_earlier_tickets_and_only_those() {
        let mut epochs = Epochs::default();
        let a = key("a");
        let before = Ticket(epochs.current);
        let (epoch, marks) = epochs.bump(&a);
        marks.removed = epoch;
        let after = Ticket(epochs.current);
        assert!(!epochs.admits(&a, before, Source::Read));
        assert!(!epochs.admits(&a, before, Source::Write));
        assert!(epochs.admits(&a, after, Source::Read));
        assert!(epochs.admits(&key("b"), before, Source::Read));
    }

    #[test]
    fn a_write_voids_earlier_reads_but_not_itself() {
        let mut epochs = Epochs::default();
        let a = key("a");
        let ticket = Ticket(epochs.current);
        let (epoch, marks) = epochs.bump(&a);
        marks.written = epoch;
        assert!(!epochs.admits(&a, ticket, Source::Read));
        assert!(epochs.admits(&a, ticket, Source::Write));
    }

    #[test]
    fn past_the_cap_the_marks_are_forgotten_and_every_older_ticket_dropped() {
        let mut epochs = Epochs::default();
        let old = Ticket(epochs.current);
        for i in 0..MAX_MARKS {
            let (epoch, marks) = epochs.bump(&key(&format!("k/{i}")));
            marks.removed = epoch;
        }
        assert_eq!(epochs.marks.len(), MAX_MARKS);
        let (epoch, marks) = epochs.bump(&key("one/more"));
        marks.removed = epoch;
        assert_eq!(epochs.marks.len(), 1, "cleared, then the new mark");
        assert!(!epochs.admits(&key("untouched"), old, Source::Read));
        assert!(epochs.admits(&key("untouched"), Ticket(epochs.current), Source::Read));
    }
}
