//! Crash safety of the local mirror under `kill -9`.
//!
//! A child process holds a [`Secrets`] whose primary is a [`FileStore`] and whose mirror is
//! a second, separately keyed `FileStore` (`keep_versions(1)`, as the docs advise). In it,
//! two writer tasks each own four keys and run numbered events on them (a put of a value
//! carrying its number, and every eighth event of a key a delete), printing `ack <writer>
//! <n>` once the facade has returned; every fourth event a writer waits for the mirror
//! ([`Secrets::sync_mirror`]) and, if the mirror has reported no error, prints `mirrored
//! <writer> <n>`. A reader task drops each key from the cache and reads it again, so the
//! mirror is also written from reads (the `Recording` layer), and with a 2 s maximum age an
//! unchanged value is re-confirmed (rewritten) every 250 ms. The test kills the child with
//! SIGKILL at a random instant 5-65 ms after it starts, and after every kill checks:
//!
//! - **corrupt**: the mirror file opens with its key and every entry in it decrypts; every
//!   entry is a key the writers own, holding exactly a value the primary had for that key
//!   at some point: the value of a put event on that key numbered at most the last
//!   acknowledged event + 1 (the one in flight at the kill), never torn, never a value no
//!   put wrote; its primary-version tag names a version that, while the primary still
//!   keeps it (ten per key), holds that very value; its confirmation tag parses and is not
//!   in the future. The primary opens and holds, for every key, the state after its last
//!   acknowledged event or after the one in flight (the facade's promise: an acknowledged
//!   put or delete is durable in the primary).
//! - **lost**: the mirror is best-effort and asynchronous, so an acknowledged put need not
//!   be in it; what *is* promised is what `sync_mirror` confirmed. A `mirrored <writer> <m>`
//!   line confirms the events that process ran up to `m`: its queue is in memory, so an
//!   event acknowledged by a process that was killed before it synced is confirmed by no
//!   later process's sync (the mirror catches up when the key is next read or written).
//!   For each key, let `f` be its last confirmed event. If `f` was a put, the mirror holds
//!   `f`'s value or a later put's, or nothing only if a later delete had at least started;
//!   if `f` was a delete, the mirror holds nothing or a later put's value. A mirror entry
//!   older than `f` (regressed), or missing, is lost. The primary missing an acknowledged
//!   event counts as lost too.
//! - **blocked**: the reopened mirror can be written again: the test puts a check key into
//!   it (a 5 s lock timeout) and reads it back, and afterwards no temporary file of a
//!   killed write remains beside it (the next writer removes them under the lock). The
//!   check key written after the previous kill must still be there.
//!
//! Not checked: two processes sharing one mirror (each process's mirror orders only its
//! own reads and writes, so a slow reader in one can mirror a value another has already
//! replaced), and two tasks writing one key at once (the mirror may then keep the earlier
//! of two concurrent puts, as the primary may order them either way).
//!
//! `cargo test` runs a short round; `STRONGROOM_CRASH_KILLS=500 cargo test -p
//! strongroom-facade --release --test mirror_crash -- --nocapture` (what `cargo xtask
//! crash` runs) gives the figures in docs/reliability.md.

#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "the child's acknowledgements, the figures and the failures are the output of this test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strongroom_core::{SecretName, SecretStore, VersionId};
use strongroom_envelope::MasterKey;
use strongroom_facade::{MIRROR_CONFIRMED_TAG, MIRROR_VERSION_TAG, Secrets};
use strongroom_local::FileStore;

const CHILD_ENV: &str = "STRONGROOM_MIRROR_CRASH_CHILD";
const KILLS_ENV: &str = "STRONGROOM_CRASH_KILLS";
/// The writer tasks of the child; each owns its keys, so no key has two writers at once.
const WRITERS: [&str; 2] = ["a", "b"];
/// Keys per writer.
const KEYS: u64 = 4;
const _: () = assert!(KEYS == 4, "Writer::confirmed has one entry per key");
/// Every eighth event of a key is a delete.
const DELETE_EVERY: u64 = 8;
/// A writer waits for the mirror after every this many events.
const SYNC_EVERY: u64 = 4;
/// Short, so that an unchanged value is re-confirmed (rewritten) every 250 ms.
const MIRROR_MAX_AGE: Duration = Duration::from_secs(2);
/// The key the parent writes into the reopened mirror after each kill.
const CHECK_KEY: &str = "check/reopened";

fn key(writer: &str, n: u64) -> SecretName {
    SecretName::new(format!("{writer}/k{}", n % KEYS)).unwrap()
}

/// Event `n`'s value: its writer and number, then padding whose length varies so the file
/// size changes.
fn value(writer: &str, n: u64) -> String {
    format!(
        "{writer}:{n}:{}",
        "x".repeat(usize::try_from(n % 300).unwrap())
    )
}

/// True when event `n` (on key `n % KEYS`) deletes the key rather than putting a value.
fn is_delete(n: u64) -> bool {
    (n / KEYS) % DELETE_EVERY == DELETE_EVERY - 1
}

/// The last event on key `slot` numbered at most `limit`.
fn last_event_on(slot: u64, limit: u64) -> Option<u64> {
    (limit >= slot).then(|| limit - (limit - slot) % KEYS)
}

/// The child's two writers: events `start`, `start + 1`, ... forever.
async fn write_forever(secrets: &Secrets, writer: &str, start: u64) {
    for n in start.. {
        let k = key(writer, n);
        if is_delete(n) {
            match secrets.delete(&k).await {
                // Not found: this delete was in flight at the last kill and got there.
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => panic!("delete {n} failed: {err}"),
            }
        } else {
            secrets.put(&k, value(writer, n)).await.unwrap();
        }
        println!("ack {writer} {n}");
        if n % SYNC_EVERY == SYNC_EVERY - 1 {
            secrets.sync_mirror().await;
            let stats = secrets.stats();
            if stats.mirror_errors == 0 {
                println!("mirrored {writer} {n} {}", stats.mirror_writes);
            } else {
                println!("mirror-errors {}", stats.mirror_errors);
            }
        }
    }
}

/// The child's reader: every key, again and again, past the cache, so that reads reach the
/// primary and are mirrored. Paced so the mirror's queue never fills (a full queue skips a
/// write and counts a mirror error).
async fn read_forever(secrets: &Secrets) {
    for i in 0u64.. {
        let k = key(WRITERS[usize::try_from(i % 2).unwrap()], i / 2);
        secrets.cache().invalidate(&k);
        match secrets.get(&k).await {
            Ok(_) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) => panic!("read of {k} failed: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The child: a `Secrets` over the primary with the mirror, written and read until killed.
#[test]
fn mirror_crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [primary, primary_key, mirror, mirror_key, start_a, start_b] = parts[..] else {
        panic!("bad spec {spec}")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let primary = FileStore::open(primary, MasterKey::from_file(primary_key).unwrap()).unwrap();
        let mirror = FileStore::builder(mirror)
            .keep_versions(1)
            .open(MasterKey::from_file(mirror_key).unwrap())
            .unwrap();
        let secrets = Secrets::builder()
            .store(primary)
            .mirror(mirror)
            .mirror_max_age(MIRROR_MAX_AGE)
            .build()
            .unwrap();
        tokio::join!(
            write_forever(&secrets, WRITERS[0], start_a.parse().unwrap()),
            write_forever(&secrets, WRITERS[1], start_b.parse().unwrap()),
            read_forever(&secrets),
        );
    });
}

/// What the parent knows of one writer task.
#[derive(Default, Clone, Copy)]
struct Writer {
    /// The highest acknowledged event; the next child starts after it.
    acked: Option<u64>,
    /// Per key, the last event the mirror confirmed (a `sync_mirror` with no mirror error,
    /// in the process that ran the event).
    confirmed: [Option<u64>; 4],
}

impl Writer {
    /// The first event the next child runs: the one in flight at the kill, if any was.
    fn next(self) -> u64 {
        self.acked.map_or(0, |n| n + 1)
    }

    /// A child that started at `start` printed `mirrored <writer> <m>`: the events it ran
    /// up to `m` are confirmed, and no earlier process's (their queue died with them).
    fn mirrored(&mut self, start: u64, m: u64) {
        for slot in 0..KEYS {
            if let Some(event) = last_event_on(slot, m).filter(|e| *e >= start) {
                let confirmed = &mut self.confirmed[usize::try_from(slot).unwrap()];
                *confirmed = Some(confirmed.map_or(event, |c| c.max(event)));
            }
        }
    }
}

/// What one child printed before it was killed.
#[derive(Default)]
struct Printed {
    acked: BTreeMap<String, u64>,
    mirrored: BTreeMap<String, u64>,
    acks: u64,
    confirmations: u64,
    mirror_writes: u64,
    mirror_errors: u64,
}

fn read_child(stdout: impl std::io::Read) -> Printed {
    let mut printed = Printed::default();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["ack", writer, n] => {
                printed.acked.insert(writer.to_owned(), n.parse().unwrap());
                printed.acks += 1;
            }
            ["mirrored", writer, n, writes] => {
                printed
                    .mirrored
                    .insert(writer.to_owned(), n.parse().unwrap());
                printed.confirmations += 1;
                printed.mirror_writes = writes.parse().unwrap();
            }
            ["mirror-errors", errors] => printed.mirror_errors = errors.parse().unwrap(),
            // A line cut by the kill.
            _ => {}
        }
    }
    printed
}

/// A small xorshift: the kill instants need to vary, not to be unpredictable.
struct Jitter(u64);

impl Jitter {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % max
    }
}

/// The counts a round reports.
#[derive(Default)]
struct Tally {
    corrupt: usize,
    lost: usize,
    blocked: usize,
    /// Mirror entries whose primary-version tag was checked against the primary.
    versions_checked: u64,
    /// Keys whose mirrored state differed from the primary's after a kill (allowed: the
    /// mirror is asynchronous; counted to show how far behind a kill leaves it).
    behind: u64,
}

impl Tally {
    fn corrupt(&mut self, problem: &str) {
        eprintln!("corrupt: {problem}");
        self.corrupt += 1;
    }

    fn lost(&mut self, problem: &str) {
        eprintln!("lost: {problem}");
        self.lost += 1;
    }
}

/// The files of one round.
struct Files {
    dir: tempfile::TempDir,
    primary: PathBuf,
    primary_key: MasterKey,
    mirror_dir: PathBuf,
    mirror: PathBuf,
    mirror_key: MasterKey,
}

impl Files {
    fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let primary = dir.path().join("primary.enc");
        let mirror_dir = dir.path().join("mirror");
        std::fs::create_dir(&mirror_dir).unwrap();
        let mirror = mirror_dir.join("mirror.enc");
        let primary_key = MasterKey::generate().unwrap();
        let mirror_key = MasterKey::generate().unwrap();
        primary_key
            .write_new_file(dir.path().join("primary.key"))
            .unwrap();
        mirror_key
            .write_new_file(dir.path().join("mirror.key"))
            .unwrap();
        FileStore::create(&primary, primary_key.clone()).unwrap();
        FileStore::builder(&mirror)
            .keep_versions(1)
            .create(mirror_key.clone())
            .unwrap();
        Self {
            dir,
            primary,
            primary_key,
            mirror_dir,
            mirror,
            mirror_key,
        }
    }

    fn spec(&self, writers: &BTreeMap<&str, Writer>) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.primary.display(),
            self.dir.path().join("primary.key").display(),
            self.mirror.display(),
            self.dir.path().join("mirror.key").display(),
            writers[WRITERS[0]].next(),
            writers[WRITERS[1]].next(),
        )
    }

    /// Files beside the mirror other than the store and its lock: temporary files of a
    /// write that was killed.
    fn mirror_leftovers(&self) -> usize {
        std::fs::read_dir(&self.mirror_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != "mirror.enc" && name != "mirror.enc.lock")
            .count()
    }
}

/// The primary holds, for each of `writer`'s keys, the state after its last acknowledged
/// event or after the one in flight. Returns the states it found (`None`: absent, or
/// unreadable), per key.
async fn check_primary(
    primary: &FileStore,
    name: &str,
    writer: Writer,
    tally: &mut Tally,
) -> Vec<Option<u64>> {
    let next = writer.next();
    let mut states = Vec::new();
    for slot in 0..KEYS {
        states.push(None);
        let k = key(name, slot);
        // A state is `None` (absent or deleted) or the number of the put that wrote it.
        let after = |n: Option<u64>| n.filter(|n| !is_delete(*n));
        let acked = after(writer.acked.and_then(|a| last_event_on(slot, a)));
        let in_flight = (next % KEYS == slot).then(|| after(Some(next)));
        let found = match primary.get(&k).await {
            Ok(secret) => {
                let text = secret.value.expose_str().unwrap_or_default().to_owned();
                match text.split(':').nth(1).and_then(|n| n.parse::<u64>().ok()) {
                    Some(n) if text == value(name, n) => Some(n),
                    _ => {
                        tally.corrupt(&format!("the primary's {k} holds a value never written"));
                        continue;
                    }
                }
            }
            Err(err) if err.is_not_found() => None,
            Err(err) => {
                tally.corrupt(&format!("the primary's {k} cannot be read: {err}"));
                continue;
            }
        };
        if found != acked && Some(found) != in_flight {
            tally.lost(&format!(
                "the primary's {k} holds {found:?}, expected {acked:?} (or {in_flight:?} in flight)"
            ));
        }
        states[usize::try_from(slot).unwrap()] = found;
    }
    states
}

/// Checks `writer`'s keys in the mirror; see the module docs for what is corrupt or lost.
async fn check_mirror(
    mirror: &FileStore,
    primary: &FileStore,
    (name, writer): (&str, Writer),
    primary_states: &[Option<u64>],
    tally: &mut Tally,
) {
    let next = writer.next();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for slot in 0..KEYS {
        let k = key(name, slot);
        let held = match mirror.get(&k).await {
            Ok(secret) => Some(secret),
            Err(err) if err.is_not_found() => None,
            Err(err) => {
                tally.corrupt(&format!("the mirror's {k} cannot be read: {err}"));
                continue;
            }
        };
        let held = match held {
            None => None,
            Some(secret) => {
                let text = secret.value.expose_str().unwrap_or_default().to_owned();
                let n = text.split(':').nth(1).and_then(|n| n.parse::<u64>().ok());
                let Some(n) = n.filter(|n| {
                    text == value(name, *n) && n % KEYS == slot && !is_delete(*n) && *n <= next
                }) else {
                    tally.corrupt(&format!(
                        "the mirror's {k} holds a value no put wrote (next event {next})"
                    ));
                    continue;
                };
                let tags = &secret.metadata.tags;
                let confirmed = tags
                    .get(MIRROR_CONFIRMED_TAG)
                    .and_then(|t| t.parse::<u64>().ok());
                if confirmed.is_none_or(|at| at > now + 1) {
                    tally.corrupt(&format!("the mirror's {k} has a bad confirmation tag"));
                }
                let Some(version) = tags.get(MIRROR_VERSION_TAG) else {
                    tally.corrupt(&format!("the mirror's {k} has no primary-version tag"));
                    continue;
                };
                // Pruned (ten versions kept) or deleted since: nothing to compare.
                if let Ok(at_primary) = primary
                    .get_version(&k, &VersionId::from(version.clone()))
                    .await
                {
                    tally.versions_checked += 1;
                    if at_primary.value != secret.value {
                        tally.corrupt(&format!(
                            "the mirror's {k} holds {n}, which the primary's version {version} is not"
                        ));
                    }
                }
                Some(n)
            }
        };

        if primary_states[usize::try_from(slot).unwrap()] != held {
            tally.behind += 1;
        }
        let Some(floor) = writer.confirmed[usize::try_from(slot).unwrap()] else {
            continue;
        };
        let fine = match held {
            Some(n) if is_delete(floor) => n > floor,
            Some(n) => n >= floor,
            None if is_delete(floor) => true,
            // Gone only if a later delete started.
            None => (floor + KEYS..=next)
                .step_by(usize::try_from(KEYS).unwrap())
                .any(is_delete),
        };
        if !fine {
            tally.lost(&format!(
                "the mirror's {k} holds {held:?}, but the mirror had confirmed event {floor}"
            ));
        }
    }
}

/// After a kill: the mirror opens with its key, holds only what the primary had, nothing it
/// confirmed has regressed, and it can be written again.
async fn check_after_kill(
    files: &Files,
    writers: &BTreeMap<&str, Writer>,
    kill: usize,
    tally: &mut Tally,
) {
    let primary = match FileStore::open(&files.primary, files.primary_key.clone()) {
        Ok(store) => store,
        Err(err) => return tally.corrupt(&format!("the primary does not open: {err}")),
    };
    let mirror = match FileStore::builder(&files.mirror)
        .keep_versions(1)
        .lock_timeout(Duration::from_secs(5))
        .open(files.mirror_key.clone())
    {
        Ok(store) => store,
        Err(err) => return tally.corrupt(&format!("the mirror does not open: {err}")),
    };
    for (name, writer) in writers {
        let states = check_primary(&primary, name, *writer, tally).await;
        check_mirror(&mirror, &primary, (name, *writer), &states, tally).await;
    }
    // Every entry decrypts and belongs to a writer (or is the check key).
    let owned: Vec<SecretName> = WRITERS
        .iter()
        .flat_map(|w| (0..KEYS).map(move |slot| key(w, slot)))
        .collect();
    match mirror.list("").await {
        Ok(names) => {
            for name in names {
                if name.as_str() != CHECK_KEY && !owned.contains(&name) {
                    tally.corrupt(&format!("the mirror holds {name}, which nobody wrote"));
                }
            }
        }
        Err(err) => tally.corrupt(&format!("the mirror cannot be listed: {err}")),
    }

    // The reopened mirror takes a write, and that write clears what killed writes left.
    let check = SecretName::new(CHECK_KEY).unwrap();
    if kill > 0 {
        match mirror.get(&check).await {
            Ok(held) if held.value.expose_str().ok() == Some(&check_value(kill - 1)) => {}
            Ok(_) => tally.lost("the check key does not hold the last value written"),
            Err(err) => tally.lost(&format!("the check key is gone: {err}")),
        }
    }
    match mirror.put(&check, check_value(kill).into()).await {
        Ok(_) => match mirror.get(&check).await {
            Ok(held) if held.value.expose_str().ok() == Some(&check_value(kill)) => {}
            _ => tally.lost("the check key does not read back"),
        },
        Err(err) => {
            eprintln!("blocked: the reopened mirror cannot be written: {err}");
            tally.blocked += 1;
        }
    }
    let leftovers = files.mirror_leftovers();
    if leftovers > 0 {
        eprintln!("blocked: {leftovers} temporary files remain beside the mirror after a write");
        tally.blocked += 1;
    }
}

fn check_value(kill: usize) -> String {
    format!("written after kill {kill}")
}

fn run_mirror_round(kills: usize) {
    let files = Files::create();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let seed = (now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)) | 1;
    let mut jitter = Jitter(seed);
    let mut writers: BTreeMap<&str, Writer> =
        WRITERS.iter().map(|w| (*w, Writer::default())).collect();
    let mut tally = Tally::default();
    let (mut acks, mut confirmations, mut mirror_writes, mut mirror_errors) = (0, 0, 0, 0);
    let mut killed_temps = 0;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    for kill in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "mirror_crash_child",
                "--test-threads",
                "1",
                "--nocapture",
                "--quiet",
            ])
            .env(CHILD_ENV, files.spec(&writers))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        // Kept so a child that failed on its own (not by the kill) is seen and shown.
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let reader = std::thread::spawn(move || read_child(stdout));
        std::thread::sleep(Duration::from_millis(5 + jitter.next_ms(60)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let printed = reader.join().unwrap();
        let errors = errors.join().unwrap();
        assert!(
            !errors.contains("panicked"),
            "the child failed before it was killed:\n{errors}"
        );
        acks += printed.acks;
        confirmations += printed.confirmations;
        mirror_writes += printed.mirror_writes;
        mirror_errors += printed.mirror_errors;
        for (name, writer) in &mut writers {
            let start = writer.next();
            if let Some(n) = printed.acked.get(*name) {
                writer.acked = Some(*n);
            }
            if let Some(m) = printed.mirrored.get(*name) {
                writer.mirrored(start, *m);
            }
        }
        killed_temps += files.mirror_leftovers();
        runtime.block_on(check_after_kill(&files, &writers, kill, &mut tally));
    }

    eprintln!(
        "crash: {kills} kills of the mirror's writer process, {acks} acknowledged puts and \
         deletes, {confirmations} mirror confirmations, {mirror_writes} mirror writes, \
         {} primary versions compared, {} keys behind the primary after a kill, \
         {killed_temps} temporary files left by kills, {mirror_errors} mirror errors, \
         {} corrupt, {} lost, {} blocked, {:.1?} (seed {seed})",
        tally.versions_checked,
        tally.behind,
        tally.corrupt,
        tally.lost,
        tally.blocked,
        started.elapsed()
    );
    assert_eq!((tally.corrupt, tally.lost, tally.blocked), (0, 0, 0));
    // With no failure injected, the mirror reports none: a queue that overflowed or a write
    // that failed would skip values this test then cannot account for.
    assert_eq!(mirror_errors, 0, "the mirror reported errors");
    // A run in which nothing was acknowledged, or the mirror never confirmed anything, has
    // proved nothing.
    for (name, writer) in &writers {
        assert!(
            writer.acked.is_some() && writer.confirmed.iter().any(Option::is_some),
            "writer {name} never had an event acknowledged and mirrored in {kills} runs"
        );
    }
    assert!(confirmations > 0 && mirror_writes > 0);
}

fn kills(default: usize) -> usize {
    std::env::var(KILLS_ENV).map_or(default, |v| v.parse().unwrap())
}

#[test]
fn a_mirroring_process_killed_at_random_instants_leaves_a_sound_mirror() {
    run_mirror_round(kills(60));
}

/// The checker itself: a mirror entry the primary never had, and a confirmed entry that
/// regressed, are both reported.
#[test]
fn the_checks_catch_a_forged_and_a_regressed_entry() {
    let files = Files::create();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let primary = FileStore::open(&files.primary, files.primary_key.clone()).unwrap();
        let mirror = FileStore::open(&files.mirror, files.mirror_key.clone()).unwrap();
        let secrets = Secrets::builder()
            .store(primary.clone())
            .mirror(mirror.clone())
            .build()
            .unwrap();
        // Events 0..8 of writer a: puts on k0..k3, twice.
        for n in 0..8 {
            secrets.put(&key("a", n), value("a", n)).await.unwrap();
        }
        secrets.sync_mirror().await;
        let mut writer = Writer {
            acked: Some(7),
            ..Writer::default()
        };
        writer.mirrored(0, 7);
        let mut tally = Tally::default();
        check_mirror(&mirror, &primary, ("a", writer), &[None; 4], &mut tally).await;
        assert_eq!((tally.corrupt, tally.lost), (0, 0), "a sound mirror");
        assert_eq!(tally.versions_checked, KEYS);

        // k1 regressed to event 1's value (confirmed: 5); k2 forged with a value never put.
        let tagged = |n: &str| {
            strongroom_core::PutOptions::default().with_metadata(
                strongroom_core::Metadata::default()
                    .tag(MIRROR_VERSION_TAG, n)
                    .tag(MIRROR_CONFIRMED_TAG, "0"),
            )
        };
        mirror
            .put_with(&key("a", 1), value("a", 1).into(), &tagged("1"))
            .await
            .unwrap();
        mirror
            .put_with(&key("a", 2), value("a", 42).into(), &tagged("2"))
            .await
            .unwrap();
        eprintln!("the checker's own test: one lost and one corrupt entry are expected here");
        let mut tally = Tally::default();
        check_mirror(&mirror, &primary, ("a", writer), &[None; 4], &mut tally).await;
        assert_eq!((tally.corrupt, tally.lost), (1, 1));
    });
    assert!(Path::new(&files.mirror).exists());
}
