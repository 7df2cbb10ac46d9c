//! The audit trail: one structured event per operation, to tracing (target
//! [`AUDIT_TARGET`]) and, when configured, as a JSON line appended to a file.
//!
//! The file is written by a dedicated thread fed through a bounded channel: the caller's
//! task never does file I/O. The thread writes each line and flushes whenever it has
//! drained the channel, so a line is on its way to disk (in the OS's hands) as soon as the
//! writer is idle; [`Secrets::flush_audit`](crate::Secrets::flush_audit) waits for that, and
//! dropping the last `Secrets` drains and flushes everything queued before the thread ends.
//! When the channel is full the caller waits for room: an audit line is never dropped.

use std::fs::File;
#[cfg(not(unix))]
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use strongroom_core::{Error, SecretName};

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "strongroom::audit";

/// Audit lines that may wait for the writer thread before callers wait for room.
const QUEUE: usize = 4096;

/// One audited operation; never holds a value.
pub(crate) struct Record {
    pub(crate) time: SystemTime,
    pub(crate) op: &'static str,
    pub(crate) key: Option<SecretName>,
    pub(crate) backend: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) cache: Option<&'static str>,
    pub(crate) latency: Duration,
    /// The rotation policy behind the operation, if one was.
    pub(crate) policy: Option<String>,
}

/// The JSON shape of a line (see docs/facade.md).
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    backend: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'a str>,
    latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
}

enum Message {
    Record(Record),
    Flush(SyncSender<()>),
}

/// Opens the audit log for appending, creating it with mode 0600. A symbolic link is not
/// followed and a file another user owns is refused: either would let someone else decide
/// where the record of secret access goes.
#[cfg(unix)]
fn open_append(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt as _;
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?);
    let owner = file.metadata()?.uid();
    if owner != rustix::process::geteuid().as_raw() && owner != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("it belongs to user id {owner}, not to the user running this program"),
        ));
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_audit_log_is_private_and_never_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        drop(open_append(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = AuditFile::open(&link).err().expect("a symlink is refused");
        assert!(err.to_string().contains("cannot open audit file"), "{err}");
    }
}

/// The JSON-lines file sink and its writer thread.
pub(crate) struct AuditFile {
    sender: Mutex<Option<SyncSender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditFile {
    /// Opens `path` for appending (creating it) and starts the writer thread.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let file = open_append(path).map_err(|e| {
            Error::config(format!("cannot open audit file {}: {e}", path.display()))
        })?;
        let (sender, receiver) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("strongroom-audit".into())
            .spawn(move || write_lines(&receiver, file))
            .map_err(|e| Error::config(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn send(&self, record: Record) {
        if let Some(sender) = self.sender() {
            // Fails only when the writer thread is gone (it hit an I/O error and said so).
            let _ = sender.send(Message::Record(record));
        }
    }

    /// Waits until every line sent before this call is written and flushed.
    pub(crate) fn flush(&self) {
        let Some(sender) = self.sender() else { return };
        let (done, wait) = sync_channel(1);
        if sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for AuditFile {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued, flush and end.
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn write_lines(receiver: &Receiver<Message>, file: File) {
    let mut out = BufWriter::new(file);
    let mut pending = Vec::new();
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // Idle: make what was written visible before blocking.
                if let Err(err) = out.flush() {
                    tracing::error!(target: AUDIT_TARGET, error = %err, "audit file flush failed");
                }
                for done in pending.drain(..) {
                    let _ = SyncSender::send(&done, ());
                }
                match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => {
                let _ = out.flush();
                for done in pending.drain(..) {
                    let _ = SyncSender::send(&done, ());
                }
                return;
            }
        };
        match message {
            Message::Record(record) => {
                if let Err(err) = write_line(&mut out, &record) {
                    tracing::error!(target: AUDIT_TARGET, error = %err, "audit file write failed");
                }
            }
            Message::Flush(done) => pending.push(done),
        }
    }
}

fn write_line(out: &mut BufWriter<File>, record: &Record) -> io::Result<()> {
    let time = time::OffsetDateTime::from(record.time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let line = Line {
        time,
        op: record.op,
        key: record.key.as_ref().map(SecretName::as_str),
        backend: record.backend,
        outcome: record.outcome,
        cache: record.cache,
        latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
        policy: record.policy.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Emits the tracing event of an operation.
pub(crate) fn trace(record: &Record) {
    tracing::info!(
        target: AUDIT_TARGET,
        op = record.op,
        key = record.key.as_ref().map(SecretName::as_str),
        backend = record.backend,
        outcome = record.outcome,
        cache = record.cache,
        latency_us = u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
        policy = record.policy.as_deref(),
        "secret operation"
    );
}

/// True when a tracing subscriber wants audit events; cheap (a cached callsite interest).
#[inline]
pub(crate) fn tracing_wants_audit() -> bool {
    tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO)
}
