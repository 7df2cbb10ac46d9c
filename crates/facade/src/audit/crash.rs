//! Every crash state of the audit file's writes (issue #21), under the two file-system
//! models of strongroom-local's crash explorer (`crash_explore::model`, exposed to this
//! crate's tests by its hidden `crash-model` feature).
//!
//! The real writer runs ([`AuditFile::open_on`], its thread, [`write_line`]) with file
//! calls ([`Logged`]) that do the std call and also log it, with the bytes written, for the
//! model. The facade's other crate, strongroom-local, has the same kind of seam for the
//! store; this one is a copy of the four calls the audit file needs rather than a shared
//! public trait: the store's interface is shaped for the store (temp files, renames, the
//! writer lock), and making it public, or switching it by a cargo feature, would put a test
//! seam into the library's API or change what an `--all-features` build writes with. The
//! model is pure (a log in, file contents out), so sharing it changes nothing at run time.
//!
//! For every point of the log, every state a crash there could leave is read back:
//!
//! - the bytes that were on disk before the run are unchanged;
//! - every line written before an acknowledged `flush_audit` (or the writer's end) is
//!   intact, a line of its own;
//! - every other line is intact or detectably damaged: nothing that is not a line the
//!   writer wrote parses as an audit line (a torn last line, zeros where a block did not
//!   land);
//! - a restart works: a new writer opened on the state appends two lines, and each is
//!   intact, on a line of its own.
//!
//! Broken variants skip one call each: the fresh-line repair on open (the code before it
//! existed), the fsync of `flush_audit`, the directory fsync of a new file. Each is caught.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Deserialize;
use strongroom_core::SecretName;
use strongroom_local::crash_explore::model::{Model, Op, crash_states};

use super::{AuditFile, AuditFs, Disk, Record, write_line};

const FILE: &str = "audit.jsonl";

/// Which file calls the writer makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The real ones.
    Correct,
    /// No look at the file's end on open: a torn last line is not ended first.
    NoFreshLine,
    /// `flush_audit` and the writer's end flush to the OS but do not fsync.
    NoSync,
    /// A new file's directory is not fsynced.
    NoDirSync,
}

/// One directory whose audit file's calls are logged.
struct Session {
    root: PathBuf,
    variant: Variant,
    ops: Mutex<Vec<Op>>,
}

impl Session {
    fn ops(&self) -> MutexGuard<'_, Vec<Op>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static SESSIONS: Mutex<Vec<Arc<Session>>> = Mutex::new(Vec::new());

fn sessions() -> MutexGuard<'static, Vec<Arc<Session>>> {
    SESSIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The session of the directory holding `path`, and the name relative to it. Tests run in
/// parallel in one process, each in its own directory.
fn session_for(path: &Path) -> Option<(Arc<Session>, String)> {
    sessions().iter().find_map(|s| {
        let rest = path.strip_prefix(&s.root).ok()?;
        Some((Arc::clone(s), rest.to_string_lossy().into_owned()))
    })
}

/// Registers `root` until dropped.
struct Registered(Arc<Session>);

impl Registered {
    fn new(root: &Path, variant: Variant) -> Self {
        let session = Arc::new(Session {
            root: root.to_path_buf(),
            variant,
            ops: Mutex::new(Vec::new()),
        });
        sessions().push(Arc::clone(&session));
        Self(session)
    }

    fn log(&self, op: Op) {
        self.0.ops().push(op);
    }

    /// How many bytes the writer has handed to the file so far.
    fn written(&self) -> usize {
        self.0
            .ops()
            .iter()
            .map(|op| match op {
                Op::Write { bytes, .. } => bytes.len(),
                _ => 0,
            })
            .sum()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        sessions().retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

/// The audit file's calls, logged when the file is in a registered directory.
struct Logged;

/// An open audit file whose writes are logged with their offsets (appends: the length).
struct LoggedFile {
    file: File,
    session: Option<(Arc<Session>, String)>,
    len: u64,
}

impl LoggedFile {
    fn variant(&self) -> Variant {
        self.session
            .as_ref()
            .map_or(Variant::Correct, |(s, _)| s.variant)
    }

    fn log(&self, op: impl FnOnce(String) -> Op) {
        if let Some((session, name)) = &self.session {
            session.ops().push(op(name.clone()));
        }
    }
}

impl Write for LoggedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let offset = self.len;
        self.log(|name| Op::Write {
            name,
            offset,
            bytes: buf[..n].to_vec(),
        });
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl AuditFs for Logged {
    type File = LoggedFile;

    fn open_append(path: &Path) -> io::Result<(LoggedFile, bool)> {
        let (file, created) = Disk::open_append(path)?;
        let len = file.metadata()?.len();
        let file = LoggedFile {
            file,
            session: session_for(path),
            len,
        };
        if created {
            file.log(|name| Op::Create { name });
        }
        Ok((file, created))
    }

    fn last_byte(file: &mut LoggedFile) -> io::Result<Option<u8>> {
        if file.variant() == Variant::NoFreshLine {
            // The code before the repair never looked.
            return Ok(None);
        }
        Disk::last_byte(&mut file.file)
    }

    fn sync(file: &LoggedFile) -> io::Result<()> {
        if file.variant() == Variant::NoSync {
            return Ok(());
        }
        Disk::sync(&file.file)?;
        file.log(|name| Op::Fsync { name });
        Ok(())
    }

    fn sync_dir(dir: &Path) -> io::Result<()> {
        let session = session_for(dir);
        if session
            .as_ref()
            .is_some_and(|(s, _)| s.variant == Variant::NoDirSync)
        {
            return Ok(());
        }
        Disk::sync_dir(dir)?;
        if let Some((session, _)) = session {
            session.ops().push(Op::DirFsync);
        }
        Ok(())
    }
}

/// An audit line as a reader parses it: every field the writer writes, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "parsed to tell a line from damage, not read")]
struct ReadLine {
    time: String,
    op: String,
    key: Option<String>,
    backend: String,
    outcome: String,
    cache: Option<String>,
    latency_us: u64,
    policy: Option<String>,
}

fn parses(line: &[u8]) -> bool {
    serde_json::from_slice::<ReadLine>(line).is_ok()
}

/// How much to explore.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Lines the writer appends.
    lines: usize,
    /// Length of each line's key (lines of about this plus 150 bytes).
    key_len: usize,
    /// Data combinations per directory outcome of a crash point before sampling.
    cap: usize,
}

impl Bounds {
    /// `cargo test`: four short lines (one block), every combination up to 64.
    const BOUNDED: Bounds = Bounds {
        lines: 4,
        key_len: 20,
        cap: 64,
    };
    /// `cargo xtask crash --explore`: twelve lines of about 600 bytes (two blocks), 4096.
    const FULL: Bounds = Bounds {
        lines: 12,
        key_len: 450,
        cap: 4096,
    };

    fn from_env() -> Bounds {
        match std::env::var("STRONGROOM_CRASH_EXPLORE").as_deref() {
            Ok("full") => Bounds::FULL,
            _ => Bounds::BOUNDED,
        }
    }
}

fn record(key: &str, i: u64) -> Record {
    Record {
        time: UNIX_EPOCH + Duration::from_secs(1_790_000_000 + i),
        op: "get",
        key: Some(SecretName::new(key).unwrap()),
        backend: "vault",
        outcome: "ok",
        cache: Some("miss"),
        latency: Duration::from_micros(100 + i),
        policy: None,
    }
}

/// The bytes the writer writes for `record`, its newline included.
fn line_bytes(record: &Record) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_line(&mut bytes, record).unwrap();
    bytes
}

fn key(prefix: &str, i: usize, len: usize) -> String {
    let mut key = format!("{prefix}/{i}/");
    while key.len() < len {
        key.push('k');
    }
    key
}

/// The state the run starts from.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// No audit file.
    NoFile,
    /// Two complete lines and a torn third, as a crash leaves them (on disk, fsynced).
    TornEnd,
}

struct Scenario {
    name: &'static str,
    start: Start,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "audit append, new file",
        start: Start::NoFile,
    },
    Scenario {
        name: "audit append, torn end",
        start: Start::TornEnd,
    },
];

/// A recorded run.
struct Recorded {
    initial: Option<Vec<u8>>,
    /// The complete lines of `initial` (without their newlines).
    initial_lines: Vec<Vec<u8>>,
    /// The lines the writer wrote (without their newlines), in order.
    lines: Vec<Vec<u8>>,
    /// For each acknowledgement in the log, how many of `lines` it covers.
    acks: Vec<usize>,
    ops: Vec<Op>,
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs the writer: opens the file, appends the lines one at a time (each written by the
/// writer's idle flush before the next is sent, so the log does not depend on timing),
/// `flush_audit` after half of them, and ends the writer.
fn run(scenario: &Scenario, variant: Variant, bounds: Bounds) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let (initial, initial_lines) = match scenario.start {
        Start::NoFile => (None, Vec::new()),
        Start::TornEnd => {
            let earlier: Vec<Vec<u8>> = (0..3)
                .map(|i| line_bytes(&record(&key("earlier", i, bounds.key_len), i as u64)))
                .collect();
            let mut bytes = [earlier[0].as_slice(), earlier[1].as_slice()].concat();
            bytes.extend_from_slice(&earlier[2][..earlier[2].len() / 2]);
            std::fs::write(&path, &bytes).unwrap();
            let complete = earlier[..2]
                .iter()
                .map(|l| l[..l.len() - 1].to_vec())
                .collect();
            (Some(bytes), complete)
        }
    };
    let session = Registered::new(dir.path(), variant);
    let audit = AuditFile::open_on::<Logged>(&path).unwrap();
    let mut lines = Vec::new();
    let mut acks = Vec::new();
    let mut expected_bytes = session.written();
    for i in 0..bounds.lines {
        let record = record(&key("app", i, bounds.key_len), i as u64);
        let bytes = line_bytes(&record);
        expected_bytes += bytes.len();
        lines.push(bytes[..bytes.len() - 1].to_vec());
        audit.send(record);
        wait_until("the writer's idle flush", || {
            session.written() >= expected_bytes
        });
        if i + 1 == bounds.lines / 2 {
            audit.flush();
            session.log(Op::Acknowledged {
                what: format!("flush_audit after {} lines", i + 1),
            });
            acks.push(i + 1);
        }
    }
    drop(audit);
    session.log(Op::Acknowledged {
        what: "the writer ended".to_owned(),
    });
    acks.push(lines.len());
    let ops = session.0.ops().clone();
    Recorded {
        initial,
        initial_lines,
        lines,
        acks,
        ops,
    }
}

/// The lines of `content`: the newline-terminated ones, then the unterminated tail.
fn split(content: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
    let tail = lines.pop().unwrap_or_default();
    (lines, tail)
}

/// A new writer on the crash state appends two lines; each must be intact, a line of its
/// own, after the state's bytes.
fn restart(files: &BTreeMap<String, Vec<u8>>, variant: Variant) -> Result<(), String> {
    // tmpfs when there is one: every restart ends with an fsync, and there are thousands.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let path = dir.path().join(FILE);
    let before = files.get(FILE).cloned().unwrap_or_default();
    let _session = Registered::new(dir.path(), variant);
    let audit = AuditFile::open_on::<Logged>(&path)
        .map_err(|e| format!("the next writer cannot open the file: {e}"))?;
    let records = [record("restart/1", 91), record("restart/2", 92)];
    let wanted: Vec<Vec<u8>> = records.iter().map(line_bytes).collect();
    for record in records {
        audit.send(record);
    }
    drop(audit);
    let after = std::fs::read(&path).unwrap();
    if !after.starts_with(&before) {
        return Err("the next writer changed what was in the file".to_owned());
    }
    let (complete, _) = split(&after);
    for line in &wanted {
        let line = &line[..line.len() - 1];
        if !complete.contains(&line) {
            let glued = complete
                .iter()
                .find(|l| l.ends_with(line))
                .map(|l| String::from_utf8_lossy(l).into_owned());
            return Err(format!(
                "after a restart, a new line is not a line of its own: {glued:?}"
            ));
        }
    }
    Ok(())
}

/// Checks one crash state of `recorded` with `acked` acknowledgements before the crash.
fn check_state(
    recorded: &Recorded,
    files: &BTreeMap<String, Vec<u8>>,
    acked: usize,
    variant: Variant,
) -> Result<(), String> {
    let content = files.get(FILE).map(Vec::as_slice);
    if let Some(initial) = &recorded.initial
        && !content.is_some_and(|c| c.starts_with(initial))
    {
        return Err("the bytes on disk before the run changed".to_owned());
    }
    let content = content.unwrap_or_default();
    let (complete, tail) = split(content);
    let durable = acked.checked_sub(1).map_or(0, |i| recorded.acks[i]);
    let required = recorded
        .initial_lines
        .iter()
        .chain(&recorded.lines[..durable]);
    for (i, line) in required.enumerate() {
        if !complete.contains(&line.as_slice()) {
            return Err(format!(
                "line {i}, on disk before the crash (fsynced), is not intact: the file is {} bytes",
                content.len()
            ));
        }
    }
    let known: HashSet<&[u8]> = recorded
        .initial_lines
        .iter()
        .chain(&recorded.lines)
        .map(Vec::as_slice)
        .collect();
    for line in complete.iter().chain([&tail]) {
        if parses(line) && !known.contains(line) {
            return Err(format!(
                "damage reads as an audit line: {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    restart(files, variant)
}

/// The result of exploring one scenario under one model.
#[derive(Debug, Default)]
struct Outcome {
    crash_points: usize,
    sampled_points: usize,
    states: usize,
    distinct: usize,
    violations: usize,
    first: Option<String>,
}

fn check(recorded: &Recorded, model: Model, variant: Variant, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let initial: BTreeMap<String, Vec<u8>> = recorded
        .initial
        .iter()
        .map(|bytes| (FILE.to_owned(), bytes.clone()))
        .collect();
    let mut seen = HashSet::new();
    for point in 0..=recorded.ops.len() {
        let acked = recorded.ops[..point]
            .iter()
            .filter(|op| matches!(op, Op::Acknowledged { .. }))
            .count();
        let states = crash_states(&initial, &recorded.ops, point, model, cap);
        outcome.crash_points += 1;
        outcome.sampled_points += usize::from(states.sampled);
        for state in states.states {
            outcome.states += 1;
            if !seen.insert((acked, state.files.clone())) {
                continue;
            }
            outcome.distinct += 1;
            let Err(problem) = check_state(recorded, &state.files, acked, variant) else {
                continue;
            };
            outcome.violations += 1;
            if outcome.first.is_none() {
                let mut text = String::new();
                let _ = writeln!(text, "crash after operation {point} of:");
                for (i, op) in recorded.ops.iter().enumerate() {
                    let mark = if i < point { "  " } else { "x " };
                    let _ = writeln!(text, "  {mark}#{i} {op}");
                }
                let _ = writeln!(text, "{}", state.persisted);
                let _ = writeln!(text, "{problem}");
                outcome.first = Some(text);
            }
        }
    }
    outcome
}

fn explore(variant: Variant, bounds: Bounds) -> Vec<(&'static str, Model, Outcome)> {
    let mut rows = Vec::new();
    for scenario in SCENARIOS {
        let recorded = run(scenario, variant, bounds);
        for model in [Model::Posix, Model::Ext4Ordered] {
            rows.push((
                scenario.name,
                model,
                check(&recorded, model, variant, bounds.cap),
            ));
        }
    }
    rows
}

fn report(variant: Variant, rows: &[(&str, Model, Outcome)]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "audit-file crash-state exploration, writer {variant:?}"
    );
    let (mut states, mut distinct, mut violations) = (0, 0, 0);
    for (scenario, model, o) in rows {
        let _ = writeln!(
            text,
            "  {scenario:<26} {:<18} {:>4} crash points ({:>2} sampled) {:>6} states {:>5} distinct (each read back and restarted) {:>4} violations",
            model.name(),
            o.crash_points,
            o.sampled_points,
            o.states,
            o.distinct,
            o.violations
        );
        states += o.states;
        distinct += o.distinct;
        violations += o.violations;
    }
    let _ = writeln!(
        text,
        "  total: {states} states, {distinct} distinct, {violations} violations"
    );
    if let Some((scenario, model, o)) = rows.iter().find(|(_, _, o)| o.first.is_some()) {
        let _ = writeln!(
            text,
            "first violation ({scenario}, {}):\n{}",
            model.name(),
            o.first.as_deref().unwrap_or_default()
        );
    }
    text
}

fn violations(rows: &[(&str, Model, Outcome)], model: Model) -> usize {
    rows.iter()
        .filter(|(_, m, _)| *m == model)
        .map(|(_, _, o)| o.violations)
        .sum()
}

#[allow(clippy::print_stderr, reason = "the report is these tests' output")]
fn explore_and_report(variant: Variant) -> Vec<(&'static str, Model, Outcome)> {
    let start = Instant::now();
    // A broken writer only has to be caught: the bounded exploration does that.
    let bounds = match variant {
        Variant::Correct => Bounds::from_env(),
        _ => Bounds::BOUNDED,
    };
    let rows = explore(variant, bounds);
    eprintln!("{}", report(variant, &rows));
    eprintln!("({:.1?})", start.elapsed());
    rows
}

#[test]
fn crash_explore_every_crash_state_of_the_audit_file_keeps_its_lines() {
    let rows = explore_and_report(Variant::Correct);
    assert!(rows.iter().all(|(_, _, o)| o.distinct > 0));
    let report = report(Variant::Correct, &rows);
    assert_eq!(violations(&rows, Model::Posix), 0, "{report}");
    assert_eq!(violations(&rows, Model::Ext4Ordered), 0, "{report}");
}

#[test]
fn crash_explore_a_missing_fresh_line_after_a_torn_end_is_caught() {
    let rows = explore_and_report(Variant::NoFreshLine);
    // The next process's first line is glued to the torn one: under either model.
    assert!(violations(&rows, Model::Posix) > 0);
    assert!(violations(&rows, Model::Ext4Ordered) > 0);
}

#[test]
fn crash_explore_a_flush_audit_without_fsync_is_caught() {
    let rows = explore_and_report(Variant::NoSync);
    assert!(violations(&rows, Model::Posix) > 0);
    assert!(violations(&rows, Model::Ext4Ordered) > 0);
}

#[test]
fn crash_explore_a_new_file_without_a_directory_fsync_is_caught() {
    let rows = explore_and_report(Variant::NoDirSync);
    // The name of the file may be lost with every line in it.
    assert!(violations(&rows, Model::Posix) > 0);
}

#[test]
fn the_first_line_after_a_torn_end_starts_a_line_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    std::fs::write(&path, b"{\"time\":\"2026-12-02T10:").unwrap();
    let audit = AuditFile::open(&path).unwrap();
    audit.send(record("app/a", 1));
    drop(audit);
    let content = std::fs::read(&path).unwrap();
    let (complete, tail) = split(&content);
    assert!(tail.is_empty());
    assert_eq!(complete.len(), 2);
    assert!(!parses(complete[0]), "the torn line stays detectably torn");
    assert!(parses(complete[1]));
}
