//! Group commit: concurrent writes through one [`FileStore`](crate::FileStore) handle share
//! one file write and one fsync.
//!
//! A write is a [`Change`] queued on the handle's [`Queue`] (one per handle, shared by its
//! clones). The first writer to find no leader spawns one on the blocking pool; the leader
//! takes every queued change, takes the writer lock, applies them to the document in the
//! order they were queued, writes and fsyncs the file once, and answers each writer. Changes
//! queued while it writes form its next batch; when the queue is empty it stops. This is
//! what SQLite's WAL, bbolt's `Batch` and PostgreSQL's group commit do: the fsync, which is
//! most of a write's cost on a disk, is paid once per batch instead of once per write.
//!
//! - Each change is decided on its own against the document as the changes before it left
//!   it: a failed precondition (check-and-set, create-only) or a missing secret fails that
//!   change alone and leaves the document as it was for the next one.
//! - A change is answered `Ok` only after the fsync of the file that holds it (and of its
//!   directory). If the batch cannot be written (the lock times out, the file does not
//!   decrypt, the disk fails), every change in it gets that error, and none is acknowledged.
//!   A batch whose every change failed its own checks writes nothing.
//! - The queue is bounded ([`MAX_QUEUED`] changes queued or being written); a writer that
//!   finds it full waits for room.
//! - A writer whose future is dropped after queueing leaves its change in the batch: it may
//!   still be applied, as a dropped write to any store may (its outcome is unknown). Nothing
//!   else in the batch is affected.
//!
//! The queue is per handle, not per path: handles opened separately on one file (in one
//! process or several) serialise on the file's writer lock as before, each batching its
//! own writers. Open a store once and clone the handle to batch all of a process's writes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use strongroom_core::{Error, PutOptions, SecretName, SecretValue, VersionId};
use tokio::sync::{Semaphore, oneshot};

use crate::document::Document;
use crate::file::{BACKEND, Inner};

/// How many changes a handle holds queued or in the batch being written before new writers
/// wait. Far more than a batch needs to amortise the fsync, and a bound on the memory
/// (values included) that writers can pile up.
pub(crate) const MAX_QUEUED: usize = 1024;

/// One write to the document, as a writer queues it.
pub(crate) enum Change {
    Put {
        key: SecretName,
        value: SecretValue,
        options: PutOptions,
    },
    Delete(SecretName),
    Undelete(SecretName),
    Purge(SecretName),
}

/// What a change returns: the new version of a put, nothing for the others.
pub(crate) type Answer = Result<Option<VersionId>, Error>;

impl Change {
    /// Applies the change to `doc`. On error `doc` is unchanged: every document operation
    /// checks before it changes anything.
    pub(crate) fn apply(self, doc: &mut Document, keep: usize) -> Answer {
        match self {
            Change::Put {
                key,
                value,
                options,
            } => doc
                .put(&key, value, &options, SystemTime::now(), keep)
                .map(Some),
            Change::Delete(key) => doc.delete(&key, SystemTime::now()).map(|()| None),
            Change::Undelete(key) => doc.undelete(&key).map(|()| None),
            Change::Purge(key) => doc.purge(&key).map(|()| None),
        }
    }
}

/// A queued change and where its answer goes.
struct Pending {
    change: Change,
    reply: oneshot::Sender<Answer>,
}

/// The changes waiting for the next batch, and whether a leader is running.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// One permit per change a writer may queue; returned when the change is answered.
    room: Semaphore,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Pending>,
    leading: bool,
}

impl Queue {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            room: Semaphore::new(MAX_QUEUED),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many changes wait for the next batch (tests wait on it).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.state().pending.len()
    }

    /// How many changes are queued or in the batch being written (tests wait on it).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        MAX_QUEUED - self.room.available_permits()
    }
}

/// Queues `change` on `inner`'s queue and waits for its answer, starting a leader if none
/// is running.
pub(crate) async fn commit(inner: &Arc<Inner>, change: Change) -> Answer {
    let queue = &inner.queue;
    // The semaphore is never closed.
    let permit =
        queue.room.acquire().await.map_err(|closed| {
            Error::backend(BACKEND, "the store's write queue is closed", closed)
        })?;
    let (reply, answer) = oneshot::channel();
    let lead = {
        let mut state = queue.state();
        // From here the permit belongs to the queued change; the leader returns it.
        permit.forget();
        state.pending.push_back(Pending { change, reply });
        !std::mem::replace(&mut state.leading, true)
    };
    if lead {
        let leader = Leader {
            inner: Arc::clone(inner),
            writing: 0,
            finished: false,
        };
        // Detached: the leader does not belong to this writer, whose future may be dropped.
        drop(tokio::task::spawn_blocking(move || leader.run()));
    }
    answer.await.map_err(|_| Error::Backend {
        backend: BACKEND,
        message: "the store's writer stopped before answering (is the runtime shutting down?)"
            .to_owned(),
        source: None,
    })?
}

/// The one leader of a handle's queue, running on the blocking pool.
struct Leader {
    inner: Arc<Inner>,
    /// The size of the batch being written, whose permits are returned once it is answered.
    writing: usize,
    finished: bool,
}

impl Leader {
    /// Writes batches until the queue is empty.
    fn run(mut self) {
        loop {
            let batch: Vec<Pending> = {
                let mut state = self.inner.queue.state();
                if state.pending.is_empty() {
                    state.leading = false;
                    self.finished = true;
                    return;
                }
                state.pending.drain(..).collect()
            };
            self.writing = batch.len();
            let (changes, replies): (Vec<Change>, Vec<oneshot::Sender<Answer>>) = batch
                .into_iter()
                .map(|pending| (pending.change, pending.reply))
                .unzip();
            let answers = self.inner.apply_batch(changes);
            // Room first, so a writer that has its answer finds its permit returned.
            self.inner
                .queue
                .room
                .add_permits(std::mem::take(&mut self.writing));
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A writer that stopped waiting has dropped its receiver; nothing to tell.
                let _ = reply.send(answer);
            }
        }
    }
}

impl Drop for Leader {
    /// A leader that never ran (the runtime shut down first) or stopped half-way: clear the
    /// way for the next one and fail what is queued (dropping a reply fails its writer),
    /// rather than leave writers waiting for ever.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.inner.queue.state();
        state.leading = false;
        let dropped = state.pending.len() + self.writing;
        state.pending.clear();
        drop(state);
        self.inner.queue.room.add_permits(dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use strongroom_core::{ErrorKind, SecretStore};
    use strongroom_envelope::MasterKey;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::FileStore;
    use crate::atomic::{WriterLock, lock_path};
    use crate::crash_explore::Variant;
    use crate::crash_explore::model::Op;
    use crate::crash_explore::recording;

    fn key(name: &str) -> SecretName {
        SecretName::new(name).unwrap()
    }

    fn new_store(dir: &Path) -> (FileStore, MasterKey) {
        let master = MasterKey::generate().unwrap();
        let store = FileStore::create(dir.join("s.enc"), master.clone()).unwrap();
        (store, master)
    }

    /// Holds the store's writer lock, as another process would: the leader waits for it,
    /// and every change queued meanwhile waits with it.
    fn hold_lock(store: &FileStore) -> WriterLock {
        WriterLock::acquire(&lock_path(store.path()), Duration::from_secs(5)).unwrap()
    }

    /// Waits until `count` changes are queued or being written on `store`.
    async fn until_in_flight(store: &FileStore, count: usize) {
        let start = Instant::now();
        while store.inner.queue.in_flight() != count {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} changes in flight, waiting for {count}",
                store.inner.queue.in_flight()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Starts `change` on `store` and waits until it is queued, so changes started one
    /// after another are queued in that order.
    async fn queue(store: &FileStore, change: Change) -> JoinHandle<Answer> {
        let before = store.inner.queue.in_flight();
        let inner = Arc::clone(&store.inner);
        let task = tokio::spawn(async move { commit(&inner, change).await });
        until_in_flight(store, before + 1).await;
        task
    }

    /// Starts `change` on `store` and waits until the leader has taken it as a batch of its
    /// own (it then waits for the lock): the changes queued after it form the next batch.
    async fn lead(store: &FileStore, change: Change) -> JoinHandle<Answer> {
        let task = queue(store, change).await;
        let start = Instant::now();
        while store.inner.queue.queued() != 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "no leader");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        task
    }

    fn put(name: &str, value: &str) -> Change {
        put_with(name, value, PutOptions::default())
    }

    fn put_with(name: &str, value: &str, options: PutOptions) -> Change {
        Change::Put {
            key: key(name),
            value: value.into(),
            options,
        }
    }

    /// How many times the store file was replaced.
    fn writes(ops: &[Op]) -> usize {
        ops.iter()
            .filter(|op| matches!(op, Op::Rename { to, .. } if to == "s.enc"))
            .count()
    }

    async fn value_of(store: &FileStore, name: &str) -> Option<String> {
        let secret = store.get(&key(name)).await.ok()?;
        Some(secret.value.expose_str().unwrap().to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_share_writes_and_are_all_acknowledged_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let (store, master) = new_store(dir.path());
        let recorder = recording::record(dir.path(), Variant::Correct);
        let lock = hold_lock(&store);
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put(&key(&format!("k/{n}")), format!("v{n}").into())
                        .await
                })
            })
            .collect();
        until_in_flight(&store, 64).await;
        drop(lock);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // The leader took what was queued when it started, then waited for the lock; all
        // the rest was queued by then: at most two batches, so at most two writes.
        let written = writes(&recorder.ops());
        assert!((1..=2).contains(&written), "{written} writes for 64 puts");
        assert_eq!(store.inner.queue.in_flight(), 0);
        let reopened = FileStore::open(store.path(), master).unwrap();
        for n in 0..64 {
            let found = value_of(&reopened, &format!("k/{n}")).await;
            assert_eq!(found.as_deref(), Some(format!("v{n}").as_str()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_precondition_fails_only_its_own_change() {
        let dir = tempfile::tempdir().unwrap();
        let (store, master) = new_store(dir.path());
        store.put(&key("b"), "old b".into()).await.unwrap();
        store.put(&key("c"), "c1".into()).await.unwrap();
        let lock = hold_lock(&store);
        // The leader takes this one alone and waits for the lock with it; the changes
        // after it form the next batch, in this order.
        let recorder = recording::record(dir.path(), Variant::Correct);
        let first = lead(&store, put("first", "1")).await;
        let version_1 = PutOptions::default().if_version("1".into());
        let batch = [
            queue(&store, put("a", "a1")).await,
            queue(
                &store,
                put_with("b", "new b", PutOptions::default().if_absent()),
            )
            .await,
            queue(&store, put_with("c", "c2", version_1.clone())).await,
            // Decided after the change before it: c is at version 2 by now.
            queue(&store, put_with("c", "c3", version_1)).await,
            queue(&store, Change::Delete(key("missing"))).await,
            queue(&store, put("d", "d1")).await,
        ];
        drop(lock);
        first.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for task in batch {
            answers.push(task.await.unwrap());
        }
        let kinds: Vec<Result<Option<String>, ErrorKind>> = answers
            .iter()
            .map(|a| {
                a.as_ref()
                    .map(|v| v.as_ref().map(ToString::to_string))
                    .map_err(Error::kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                Ok(Some("1".to_owned())),
                Err(ErrorKind::Conflict),
                Ok(Some("2".to_owned())),
                Err(ErrorKind::Conflict),
                Err(ErrorKind::NotFound),
                Ok(Some("1".to_owned())),
            ]
        );
        // One write for the first change, one for the whole batch.
        assert_eq!(writes(&recorder.ops()), 2);
        let reopened = FileStore::open(store.path(), master).unwrap();
        for (name, expected) in [("a", "a1"), ("b", "old b"), ("c", "c2"), ("d", "d1")] {
            assert_eq!(value_of(&reopened, name).await.as_deref(), Some(expected));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_error_fails_the_whole_batch_and_acknowledges_none() {
        let dir = tempfile::tempdir().unwrap();
        let (store, master) = new_store(dir.path());
        store.put(&key("c"), "c1".into()).await.unwrap();
        let before = std::fs::read(store.path()).unwrap();
        store.inner.fail_saves.store(true, Ordering::Relaxed);
        let lock = hold_lock(&store);
        let mut tasks = vec![lead(&store, put("first", "1")).await];
        for n in 0..8 {
            tasks.push(queue(&store, put(&format!("k/{n}"), "x")).await);
        }
        // Even the change that would have failed by itself gets the write's error: its
        // check was made against changes that were never written.
        tasks.push(
            queue(
                &store,
                put_with("c", "c2", PutOptions::default().if_absent()),
            )
            .await,
        );
        tasks.push(queue(&store, Change::Purge(key("c"))).await);
        drop(lock);
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
            assert!(err.to_string().contains("cannot write"), "{err}");
        }
        assert_eq!(std::fs::read(store.path()).unwrap(), before);
        let reopened = FileStore::open(store.path(), master).unwrap();
        assert_eq!(reopened.list("").await.unwrap(), [key("c")]);
        // The queue is whole again: the next write works, on the same handle.
        store.inner.fail_saves.store(false, Ordering::Relaxed);
        store.put(&key("after"), "y".into()).await.unwrap();
        assert_eq!(store.inner.queue.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_changes_all_fail_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = new_store(dir.path());
        store.put(&key("a"), "x".into()).await.unwrap();
        let recorder = recording::record(dir.path(), Variant::Correct);
        let absent = PutOptions::default().if_absent();
        let err = store.put_with(&key("a"), "y".into(), &absent).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(
            store.undelete(&key("a")).await.unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(writes(&recorder.ops()), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_stops_waiting_does_not_disturb_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (store, master) = new_store(dir.path());
        let lock = hold_lock(&store);
        let first = lead(&store, put("first", "1")).await;
        let kept = queue(&store, put("kept", "1")).await;
        let dropped = queue(&store, put("dropped", "1")).await;
        let after = queue(&store, put("after", "1")).await;
        // Its future is dropped while its change waits in the queue.
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        drop(lock);
        for task in [first, kept, after] {
            task.await.unwrap().unwrap();
        }
        // Queued before it was dropped, so written: to its caller, an unknown outcome.
        let reopened = FileStore::open(store.path(), master).unwrap();
        assert_eq!(reopened.list("").await.unwrap().len(), 4);
        assert_eq!(store.inner.queue.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_makes_writers_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (store, master) = new_store(dir.path());
        let lock = hold_lock(&store);
        let extra = 10;
        let tasks: Vec<_> = (0..MAX_QUEUED + extra)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.put(&key(&format!("k/{n}")), "v".into()).await })
            })
            .collect();
        until_in_flight(&store, MAX_QUEUED).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Never more than the bound; the rest wait for room, and nothing has finished.
        assert_eq!(store.inner.queue.in_flight(), MAX_QUEUED);
        assert!(tasks.iter().all(|task| !task.is_finished()));
        drop(lock);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let reopened = FileStore::open(store.path(), master).unwrap();
        assert_eq!(reopened.list("k/").await.unwrap().len(), MAX_QUEUED + extra);
    }
}
