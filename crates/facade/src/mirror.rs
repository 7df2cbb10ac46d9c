//! The local mirror: an encrypted [`FileStore`] holding the latest value of every secret
//! this process has read from the primary, served when the primary is unavailable.
//!
//! Writes to it happen off the read path: a read that missed the cache queues the secret,
//! and one background task per mirror writes the queue in order (skipping values the
//! mirror already holds, so a steady state costs a read of the file and no fsync). The queue
//! is bounded; when it is full a write is skipped with a warning rather than slowing reads.
//! A delete through the facade purges the key from the mirror too, so a deleted secret does
//! not come back during an outage.

use std::sync::{Arc, OnceLock};

use strongroom_core::{Error, PutOptions, Secret, SecretName, SecretStore, VersionId};
use strongroom_local::FileStore;
use tokio::sync::{mpsc, oneshot};

use crate::stats::{Counters, Op};

const QUEUE: usize = 1024;

/// The metadata tag that keeps the primary's version id of a mirrored secret, so that a read
/// served from the mirror reports the version the primary had, not the mirror's own.
pub const MIRROR_VERSION_TAG: &str = "strongroom-primary-version";

enum Job {
    Write(Secret),
    Remove(SecretName),
    Sync(oneshot::Sender<()>),
}

pub(crate) struct Mirror {
    store: FileStore,
    counters: Arc<Counters>,
    queue: OnceLock<Option<mpsc::Sender<Job>>>,
}

impl Mirror {
    pub(crate) fn new(store: FileStore, counters: Arc<Counters>) -> Self {
        Self {
            store,
            counters,
            queue: OnceLock::new(),
        }
    }

    pub(crate) fn store(&self) -> &FileStore {
        &self.store
    }

    /// The writer's queue, starting the writer on first use; `None` outside a tokio runtime.
    fn queue(&self) -> Option<&mpsc::Sender<Job>> {
        self.queue
            .get_or_init(|| {
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                let (sender, receiver) = mpsc::channel(QUEUE);
                runtime.spawn(run(
                    self.store.clone(),
                    Arc::clone(&self.counters),
                    receiver,
                ));
                Some(sender)
            })
            .as_ref()
    }

    fn submit(&self, job: Job) {
        if let Some(queue) = self.queue()
            && queue.try_send(job).is_err()
        {
            self.counters.add(Op::MirrorErrors);
            tracing::warn!("mirror queue full: a secret was not mirrored this time");
        }
    }

    /// Queues `secret` to be mirrored.
    pub(crate) fn record(&self, secret: &Secret) {
        self.submit(Job::Write(secret.clone()));
    }

    /// Queues the removal of `key`.
    pub(crate) fn remove(&self, key: &SecretName) {
        self.submit(Job::Remove(key.clone()));
    }

    /// Waits until every job queued before this call is done.
    pub(crate) async fn sync(&self) {
        let Some(queue) = self.queue() else { return };
        let (done, wait) = oneshot::channel();
        if queue.send(Job::Sync(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Reads `key` from the mirror, as the primary had it.
    pub(crate) async fn read(&self, key: &SecretName) -> Result<Secret, Error> {
        let mut secret = self.store.get(key).await?;
        let mut metadata = (*secret.metadata).clone();
        if let Some(version) = metadata.tags.remove(MIRROR_VERSION_TAG) {
            secret.version = VersionId::from(version);
        }
        secret.metadata = Arc::new(metadata);
        Ok(secret)
    }
}

async fn run(store: FileStore, counters: Arc<Counters>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Write(secret) => {
                let version = secret.version.as_str();
                let same = store.get(&secret.key).await.is_ok_and(|held| {
                    held.value == secret.value
                        && held
                            .metadata
                            .tags
                            .get(MIRROR_VERSION_TAG)
                            .map(String::as_str)
                            == Some(version)
                });
                if same {
                    continue;
                }
                let metadata = (*secret.metadata).clone().tag(MIRROR_VERSION_TAG, version);
                let options = PutOptions::default().with_metadata(metadata);
                match store
                    .put_with(&secret.key, secret.value.clone(), &options)
                    .await
                {
                    Ok(_) => counters.add(Op::MirrorWrites),
                    Err(err) => {
                        counters.add(Op::MirrorErrors);
                        tracing::warn!(key = %secret.key, error = %err, "mirror write failed");
                    }
                }
            }
            Job::Remove(key) => match store.purge(&key).await {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(err) => {
                    counters.add(Op::MirrorErrors);
                    tracing::warn!(key = %key, error = %err, "mirror removal failed");
                }
            },
            Job::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}
