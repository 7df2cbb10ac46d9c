//! The audit trail: one structured event per operation, to tracing (target
//! [`AUDIT_TARGET`]) and, when configured, as a JSON line appended to a file.
//!
//! The file is written by a dedicated thread fed through a bounded channel: the caller's
//! task never does file I/O. The thread writes each line and flushes whenever it has
//! drained the channel, so a line is on its way to disk (in the OS's hands) as soon as the
//! writer is idle, without an fsync: a power cut may lose the last lines, or tear the last
//! one. [`Secrets::flush_audit`](crate::Secrets::flush_audit) waits for the flush and then
//! fsyncs the file, and dropping the last `Secrets` drains, flushes and fsyncs everything
//! queued before the thread ends: lines before either are on disk. When the channel is full
//! the caller waits for room: an audit line is never dropped.
//!
//! **After a crash.** A file that does not end in a newline ends in a line torn by a crash
//! (or a power cut); opening it writes a newline first, so the first line of this process
//! starts on a line of its own instead of being glued to the torn one and unreadable with
//! it. The torn line stays as it is: it does not parse, which is how a reader tells it. A
//! new file's directory entry is fsynced when it is created, so a line fsynced later is not
//! lost with the name. `crash` (tests) checks every crash state of these writes under the
//! file-system models of strongroom-local's crash explorer (docs/reliability.md).

use std::fs::File;
#[cfg(not(unix))]
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Read as _, Seek as _, SeekFrom, Write};
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

/// The file calls of the audit writer: [`Disk`] in the library. The crash-state tests
/// (`crash`) pass one that also logs each call for the crash model, and broken ones that
/// each skip one of the calls. Associated functions on a type, as strongroom-local's
/// `FileSystem` is: chosen at compile time, nothing between the writer and std.
pub(crate) trait AuditFs: 'static {
    /// The open audit file.
    type File: Write + Send + 'static;
    /// Opens `path` for appending, creating it (mode 0600 on Unix) when missing; true when
    /// this call created it.
    fn open_append(path: &Path) -> io::Result<(Self::File, bool)>;
    /// The file's last byte; `None` when it is empty.
    fn last_byte(file: &mut Self::File) -> io::Result<Option<u8>>;
    /// Flushes the file's data to disk (fdatasync).
    fn sync(file: &Self::File) -> io::Result<()>;
    /// Flushes a directory's entries to disk.
    fn sync_dir(dir: &Path) -> io::Result<()>;
}

/// The file system itself.
pub(crate) struct Disk;

impl AuditFs for Disk {
    type File = File;

    fn open_append(path: &Path) -> io::Result<(File, bool)> {
        open_append(path)
    }

    fn last_byte(file: &mut File) -> io::Result<Option<u8>> {
        if file.metadata()?.len() == 0 {
            return Ok(None);
        }
        // Reading moves the position only: every write of an O_APPEND file goes to its end.
        file.seek(SeekFrom::End(-1))?;
        let mut last = [0u8];
        file.read_exact(&mut last)?;
        Ok(Some(last[0]))
    }

    fn sync(file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Only Unix can open a directory for this; elsewhere the entry's durability is the
    /// file system's.
    fn sync_dir(dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }
}

/// Opens the audit log for appending (and reading its last byte), creating it with mode
/// 0600; true when this call created it. A symbolic link is not followed and a file
/// another user owns is refused: either would let someone else decide where the record of
/// secret access goes.
#[cfg(unix)]
fn open_append(path: &Path) -> io::Result<(File, bool)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    use std::os::unix::fs::MetadataExt as _;
    let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o600);
    // Open first, create only when missing: the caller fsyncs the directory of a new file.
    let (fd, created) = match rustix::fs::open(path, flags, mode) {
        Ok(fd) => (fd, false),
        Err(Errno::NOENT) => {
            match rustix::fs::open(path, flags | OFlags::CREATE | OFlags::EXCL, mode) {
                Ok(fd) => (fd, true),
                // Another process created it in between.
                Err(Errno::EXIST) => (rustix::fs::open(path, flags, mode)?, false),
                Err(err) => return Err(err.into()),
            }
        }
        Err(err) => return Err(err.into()),
    };
    let file = File::from(fd);
    let owner = file.metadata()?.uid();
    if owner != rustix::process::geteuid().as_raw() && owner != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("it belongs to user id {owner}, not to the user running this program"),
        ));
    }
    Ok((file, created))
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.open(path) {
        Ok(file) => Ok((file, false)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            match options.clone().create_new(true).open(path) {
                Ok(file) => Ok((file, true)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    Ok((options.open(path)?, false))
                }
                Err(err) => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod crash;

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_audit_log_is_private_and_never_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (file, created) = open_append(&path).unwrap();
        assert!(created);
        drop(file);
        assert!(!open_append(&path).unwrap().1, "the second open finds it");
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
        Self::open_on::<Disk>(path)
    }

    /// [`open`](Self::open) through `F`'s file calls.
    pub(crate) fn open_on<F: AuditFs>(path: &Path) -> Result<Self, Error> {
        let file = start_file::<F>(path).map_err(|e| {
            Error::config(format!("cannot open audit file {}: {e}", path.display()))
        })?;
        let (sender, receiver) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("strongroom-audit".into())
            .spawn(move || write_lines::<F>(&receiver, file))
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

/// Opens the file; fsyncs the directory of a new one, so that lines fsynced later are not
/// lost with its name; and ends a torn last line, so that the first line written here
/// starts a line of its own (see the module docs).
fn start_file<F: AuditFs>(path: &Path) -> io::Result<F::File> {
    let (mut file, created) = F::open_append(path)?;
    if created {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        F::sync_dir(dir)?;
    }
    if F::last_byte(&mut file)?.is_some_and(|last| last != b'\n') {
        file.write_all(b"\n")?;
    }
    Ok(file)
}

fn write_lines<F: AuditFs>(receiver: &Receiver<Message>, file: F::File) {
    let mut out = BufWriter::new(file);
    let mut pending = Vec::new();
    // Writes what is buffered; when someone waits (flush_audit, or the end), fsyncs too.
    let flush = |out: &mut BufWriter<F::File>, pending: &mut Vec<SyncSender<()>>, sync: bool| {
        let mut result = out.flush();
        if result.is_ok() && (sync || !pending.is_empty()) {
            result = F::sync(out.get_ref());
        }
        if let Err(err) = result {
            tracing::error!(target: AUDIT_TARGET, error = %err, "audit file flush failed");
        }
        for done in pending.drain(..) {
            let _ = SyncSender::send(&done, ());
        }
    };
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // Idle: make what was written visible before blocking (no fsync: the cost
                // would fall on every quiet moment; flush_audit asks for one).
                flush(&mut out, &mut pending, false);
                match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => {
                        flush(&mut out, &mut pending, true);
                        return;
                    }
                }
            }
            Err(TryRecvError::Disconnected) => {
                flush(&mut out, &mut pending, true);
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

fn write_line(out: &mut impl Write, record: &Record) -> io::Result<()> {
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
