//! Crash safety of the file store under `kill -9`.
//!
//! Writer processes put numbered values and print each acknowledged number, and between puts
//! add and remove key slots (a passphrase slot, an opaque remote-kind slot); the test kills
//! them with SIGKILL at random instants, and after every kill opens the store and checks
//! that it decrypts, that every acknowledged put is there, that nothing but the one put in
//! flight at the kill can be newer than the last acknowledgement, and that the slot table is
//! whole: the master key's slot survives and every passphrase slot unwraps to the same data
//! key.
//!
//! A writer process runs one writer, or several as concurrent tasks on one handle, whose
//! puts are group-committed (one write and fsync for the batch; docs/local-store.md): each
//! task prints its own acknowledgements, and the same checks hold for each.
//!
//! `cargo test` runs a short round; `STRONGROOM_CRASH_KILLS=500 cargo test -p
//! strongroom-local --release --test crash -- --nocapture` (what `cargo xtask crash` runs)
//! gives the figures in docs/reliability.md.

#![allow(
    clippy::print_stderr,
    reason = "the figures and the failures are the output of this test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use strongroom_core::{ErrorKind, SecretName, SecretStore};
use strongroom_envelope::{DataKey, KeySlot, MasterKey, Passphrase, SlotKind, WrappingKey};
use strongroom_local::{FileStore, StoreSlots};

const WRITER_ENV: &str = "STRONGROOM_CRASH_WRITER";
const KILLS_ENV: &str = "STRONGROOM_CRASH_KILLS";
/// Each writer spreads its numbers over this many keys, so the file holds several secrets
/// of different sizes and old versions get pruned.
const KEYS_PER_WRITER: u64 = 8;

fn key(writer: &str, n: u64) -> SecretName {
    SecretName::new(format!("{writer}/k{}", n % KEYS_PER_WRITER)).unwrap()
}

/// `n`'s value: its number, then padding whose length varies so the file size changes.
fn value(writer: &str, n: u64) -> String {
    format!(
        "{writer}:{n}:{}",
        "x".repeat(usize::try_from(n % 300).unwrap())
    )
}

fn number_of(value: &str) -> u64 {
    value.split(':').nth(1).unwrap().parse().unwrap()
}

/// The passphrase of the slots writers add (one PBKDF2 iteration: the test is about the
/// file, not the KDF).
fn slot_passphrase() -> WrappingKey {
    Passphrase::new("crash slot").with_iterations(1).into()
}

/// After put `n`: every fourth put adds a slot (a passphrase, or an opaque aws-kms one), and
/// two puts later one added slot is removed, so the table keeps changing size. The master
/// key's slot is never removed. A lost race with the other writer (the slot it meant to
/// remove is already gone) is not a failure. Returns what it did, for the log.
async fn change_slots(store: &FileStore, n: u64) -> Option<&'static str> {
    let StoreSlots::Slotted(table) = store.slots().await.unwrap() else {
        panic!("the store is not slotted after a write");
    };
    let added: Vec<&KeySlot> = table
        .slots()
        .iter()
        .filter(|slot| slot.kind() != SlotKind::MasterKey)
        .collect();
    match n % 4 {
        1 if added.len() < 4 => {
            if n % 8 == 1 {
                store.add_key(slot_passphrase()).await.unwrap();
            } else {
                let opaque = DataKey::generate().unwrap().seal(&n.to_be_bytes()).unwrap();
                let slot =
                    KeySlot::new(SlotKind::AwsKms, format!("alias/crash-{n}"), opaque).unwrap();
                store.add_slot(slot, table.store_id()).await.unwrap();
            }
            Some("add")
        }
        3 if !added.is_empty() => match store.remove_slot(added[0]).await {
            Ok(()) => Some("remove"),
            Err(err) if err.kind() == ErrorKind::Conflict => None,
            Err(err) => panic!("removing a slot failed: {err}"),
        },
        _ => None,
    }
}

/// Checks the slot table of the store file: exactly one master-key slot, opening with
/// `master`; every passphrase slot unwraps to the same data key; the payload opens with it.
/// Returns how many slots it has, or the problem.
fn check_slots(path: &Path, master: &MasterKey) -> Result<usize, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let table = strongroom_envelope::SlotTable::parse(&bytes).map_err(|e| e.to_string())?;
    let masters: Vec<&KeySlot> = table
        .slots()
        .iter()
        .filter(|slot| slot.kind() == SlotKind::MasterKey)
        .collect();
    let [master_slot] = masters[..] else {
        return Err(format!("{} master-key slots", masters.len()));
    };
    let data_key = master_slot
        .unwrap_local(&master.clone().into())
        .map_err(|e| format!("master slot: {e}"))?;
    for slot in table.slots() {
        if slot.kind() == SlotKind::Passphrase {
            let other = slot
                .unwrap_local(&slot_passphrase())
                .map_err(|e| format!("passphrase slot: {e}"))?;
            if *other.expose_bytes() != *data_key.expose_bytes() {
                return Err("a passphrase slot holds another data key".to_owned());
            }
        }
    }
    strongroom_envelope::open_slotted(&data_key, &bytes).map_err(|e| format!("payload: {e}"))?;
    Ok(table.slots().len())
}

/// One writer: puts n, n+1, ... forever, printing `ack <writer> <n>` after each put
/// returns; the first writer of a process also changes slots between its puts.
async fn write_forever(store: FileStore, writer: String, mut n: u64, slots: bool) {
    loop {
        store
            .put(&key(&writer, n), value(&writer, n).into())
            .await
            .unwrap();
        print_line(&format!("ack {writer} {n}"));
        if slots && let Some(change) = change_slots(&store, n).await {
            print_line(&format!("slot {change}"));
        }
        n += 1;
    }
}

/// Prints one whole line (the stdout lock is held for it) and flushes it.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The writer process: `store|key|writer:start,writer:start,...`. One writer runs on a
/// current-thread runtime; several run as concurrent tasks on one handle on a multi-thread
/// runtime, so their puts are batched.
#[test]
fn crash_writer_child() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [store_path, key_path, writers] = parts[..] else {
        panic!("bad spec {spec}")
    };
    let writers: Vec<(String, u64)> = writers
        .split(',')
        .map(|w| {
            let (name, start) = w.split_once(':').unwrap();
            (name.to_owned(), start.parse().unwrap())
        })
        .collect();
    let runtime = if writers.len() == 1 {
        tokio::runtime::Builder::new_current_thread().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
    }
    .unwrap();
    runtime.block_on(async {
        let store = FileStore::open(store_path, MasterKey::from_file(key_path).unwrap()).unwrap();
        let tasks: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(i, (name, start))| {
                tokio::spawn(write_forever(store.clone(), name, start, i == 0))
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// What the parent knows of one writer.
#[derive(Default)]
struct Writer {
    /// The highest acknowledged number; the next writer process starts after it.
    acked: Option<u64>,
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

/// Kills writer processes `kills` times: each inner list is one process and the writers it
/// runs (several: concurrent tasks on one handle).
fn run_crash_round(processes: &[Vec<String>], kills: usize) {
    let writers: Vec<&str> = processes.iter().flatten().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("crash.enc");
    let key_path = dir.path().join("crash.key");
    let master = MasterKey::generate().unwrap();
    master.write_new_file(&key_path).unwrap();
    let store = FileStore::create(&store_path, master.clone()).unwrap();
    drop(store);

    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let seed = (now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)) | 1;
    let mut jitter = Jitter(seed);
    let mut state: BTreeMap<&str, Writer> =
        writers.iter().map(|w| (*w, Writer::default())).collect();
    let (mut corrupt, mut lost, mut acks) = (0usize, 0usize, 0u64);
    let (mut slot_changes, mut most_slots) = (0usize, 0usize);
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    for _ in 0..kills {
        let mut children = Vec::new();
        for process in processes {
            let spec: Vec<String> = process
                .iter()
                .map(|name| {
                    let start = state[name.as_str()].acked.map_or(0, |n| n + 1);
                    format!("{name}:{start}")
                })
                .collect();
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "crash_writer_child",
                    "--test-threads",
                    "1",
                    "--nocapture",
                    "--quiet",
                ])
                .env(
                    WRITER_ENV,
                    format!(
                        "{}|{}|{}",
                        store_path.display(),
                        key_path.display(),
                        spec.join(",")
                    ),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let mut stderr = child.stderr.take().unwrap();
            // Kept so a writer that failed on its own (not by the kill) is seen and shown.
            let errors = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                text
            });
            let reader = std::thread::spawn(move || {
                let mut acked: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                let mut slot_changes = 0usize;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(ack) = line.strip_prefix("ack ") {
                        let (writer, n) = ack.split_once(' ').unwrap();
                        acked
                            .entry(writer.to_owned())
                            .or_default()
                            .push(n.parse::<u64>().unwrap());
                    } else if line.starts_with("slot ") {
                        slot_changes += 1;
                    }
                }
                (acked, slot_changes)
            });
            children.push((process.join(","), child, reader, errors));
        }
        std::thread::sleep(Duration::from_millis(5 + jitter.next_ms(60)));
        for (name, mut child, reader, errors) in children {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            let (seen, changes) = reader.join().unwrap();
            slot_changes += changes;
            let errors = errors.join().unwrap();
            assert!(
                !errors.contains("panicked"),
                "writer process {name} failed before it was killed:\n{errors}"
            );
            for (writer, numbers) in seen {
                acks += u64::try_from(numbers.len()).unwrap();
                let known = state.get_mut(writer.as_str()).unwrap();
                // Each writer acknowledges its numbers in order, one put at a time.
                assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
                if let Some(last) = numbers.last() {
                    known.acked = Some(*last);
                }
            }
        }

        // After every kill: the store opens, decrypts, and holds exactly what was promised.
        let store = match FileStore::open(&store_path, master.clone()) {
            Ok(store) => store,
            Err(err) => {
                corrupt += 1;
                eprintln!("store does not open after a kill: {err}");
                continue;
            }
        };
        for (name, writer) in &state {
            let Some(acked) = writer.acked else { continue };
            lost += runtime.block_on(check_writer(&store, name, acked));
        }
        match check_slots(&store_path, &master) {
            Ok(count) => most_slots = most_slots.max(count),
            Err(problem) => {
                corrupt += 1;
                eprintln!("the slot table is damaged after a kill: {problem}");
            }
        }
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(
            leftovers <= 4,
            "temporary files pile up: {leftovers} entries"
        );
    }

    eprintln!(
        "crash: {kills} kills of {} writer process(es) running {} writer(s), {acks} acknowledged \
         puts, {slot_changes} slot changes (up to {most_slots} slots), {corrupt} corrupt, {lost} \
         lost, {:.1?} (seed {seed})",
        processes.len(),
        writers.len(),
        started.elapsed()
    );
    assert_eq!((corrupt, lost), (0, 0));
    // A run that never changed a slot has not tested slot changes under kills.
    assert!(
        slot_changes > 0,
        "no slot was added or removed in {kills} runs"
    );
    // A run in which no put was ever acknowledged has proved nothing.
    for (name, writer) in &state {
        assert!(
            writer.acked.is_some(),
            "writer {name} never acknowledged a put in {kills} runs"
        );
    }
    assert!(acks > 0);
}

/// Checks one writer's keys against its last acknowledged number; returns how many
/// acknowledged puts are missing or wrong.
async fn check_writer(store: &FileStore, name: &str, acked: u64) -> usize {
    let mut problems = 0;
    for slot in 0..KEYS_PER_WRITER.min(acked + 1) {
        // The last acknowledged number that went to this key.
        let expected = acked - (acked + KEYS_PER_WRITER - slot) % KEYS_PER_WRITER;
        let current = match store.get(&key(name, expected)).await {
            Ok(secret) => secret,
            Err(err) => {
                eprintln!("{name}: acknowledged put {expected} is missing: {err}");
                problems += 1;
                continue;
            }
        };
        let text = current.value.expose_str().unwrap();
        let found = number_of(text);
        // Either the acknowledged value, or the one put that completed just before the kill
        // but was not acknowledged yet.
        let in_flight = acked + 1;
        let allowed =
            found == expected || (found == in_flight && in_flight % KEYS_PER_WRITER == slot);
        if !allowed || text != value(name, found) {
            eprintln!(
                "{name}/k{slot}: expected {expected} (or {in_flight} in flight), found {found}"
            );
            problems += 1;
        }
    }
    problems
}

fn kills(default: usize) -> usize {
    std::env::var(KILLS_ENV).map_or(default, |v| v.parse().unwrap())
}

fn processes(writers: &[&[&str]]) -> Vec<Vec<String>> {
    writers
        .iter()
        .map(|process| process.iter().map(|w| (*w).to_owned()).collect())
        .collect()
}

#[test]
fn a_writer_killed_at_random_instants_loses_nothing_acknowledged() {
    run_crash_round(&processes(&[&["solo"]]), kills(40));
}

#[test]
fn two_writers_killed_at_random_instants_lose_nothing_acknowledged() {
    run_crash_round(&processes(&[&["left"], &["right"]]), kills(25));
}

/// Concurrent writers in one process share group-committed writes: a batch's puts are
/// acknowledged together after its fsync, so a kill must never lose one of them.
#[test]
fn sixteen_concurrent_writers_in_one_process_killed_at_random_instants_lose_nothing_acknowledged() {
    let writers: Vec<String> = (0..16).map(|n| format!("group{n:02}")).collect();
    run_crash_round(&[writers], kills(25));
}

#[test]
fn the_store_file_is_never_partially_written() {
    // A reader that opens the file while writers are being killed sees a complete store
    // every time: the file is only ever replaced by rename.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master = MasterKey::generate().unwrap();
    FileStore::create(&path, master.clone()).unwrap();
    let writer = {
        let (path, master) = (path.clone(), master.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let store = FileStore::open(&path, master).unwrap();
                for n in 0..150u64 {
                    store.put(&key("w", n), value("w", n).into()).await.unwrap();
                    change_slots(&store, n).await;
                }
            });
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let bytes = std::fs::read(&path).unwrap();
        strongroom_envelope::open(&master.clone().into(), &bytes).unwrap();
        reads += 1;
    }
    writer.join().unwrap();
    assert!(reads > 0);
    assert!(Path::new(&path).exists());
}
