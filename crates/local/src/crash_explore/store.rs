//! The store's crash scenarios, the checker that opens every crash state with the real
//! store code, and the report (see the parent module).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use strongroom_core::{Metadata, PutOptions, SecretName, SecretStore};
use strongroom_envelope::{MasterKey, Passphrase, WrappingKey};

use super::model::{Model, Op, crash_states};
use super::recording;
use crate::{FileStore, StoreSlots};

/// Which write path [`crate::atomic::replace`] takes for a recorded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// The real one.
    Correct,
    /// Temporary file, fsync, rename, but no fsync of the directory.
    NoDirFsync,
    /// Truncate the store file and write the new content into it.
    InPlace,
    /// Temporary file, rename, and only then fsync of the file.
    RenameBeforeFsync,
}

/// How much to explore.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The size of the large values the scenarios write (the file spans more blocks).
    pub(crate) value_bytes: usize,
    /// Data combinations per directory outcome of a crash point before sampling.
    pub(crate) cap: usize,
}

impl Bounds {
    /// `cargo test`: a few blocks per file, every combination up to 64 enumerated.
    pub(crate) const BOUNDED: Bounds = Bounds {
        value_bytes: 2500,
        cap: 64,
    };
    /// `cargo xtask crash --explore`: files of 20 to 100 blocks, capped at 4096 (sampled).
    pub(crate) const FULL: Bounds = Bounds {
        value_bytes: 40_000,
        cap: 4096,
    };

    fn from_env() -> Bounds {
        match std::env::var("STRONGROOM_CRASH_EXPLORE").as_deref() {
            Ok("full") => Bounds::FULL,
            _ => Bounds::BOUNDED,
        }
    }
}

/// One store operation of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// `FileStore::create` with the master key: the store does not exist before.
    Create,
    /// What the facade's mirror does to open its file: `keep_versions(1)`,
    /// `create_if_missing(true)`, `open` (crates/facade/src/backend.rs, `open_mirror`).
    MirrorOpen,
    /// What the mirror's writer does with a value the primary answered (generation, the
    /// primary's version) confirmed at a time (unix seconds): read the held copy, then
    /// `put_with` the value with the primary's version and the confirmation time as tags
    /// (crates/facade/src/mirror.rs, `write`).
    MirrorWrite(&'static str, u8, u64),
    /// What the mirror's writer does for a delete or purge on the primary: `purge`.
    MirrorRemove(&'static str),
    Put(&'static str, u8),
    /// Check-and-set on the secret's current version.
    PutIfCurrent(&'static str, u8),
    PutIfAbsent(&'static str, u8),
    Delete(&'static str),
    Undelete(&'static str),
    Purge(&'static str),
    /// Replace the master key's slot with one for the second master key.
    RotateKey,
    /// Add a slot for the passphrase.
    AddPassphrase,
    /// Remove the store's last slot (the passphrase's, added by the setup).
    RemoveLastSlot,
}

struct Scenario {
    name: &'static str,
    keep_versions: usize,
    setup: &'static [Step],
    steps: &'static [Step],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "store creation",
        keep_versions: 10,
        setup: &[],
        steps: &[Step::Create, Step::Put("a", 1)],
    },
    Scenario {
        name: "put",
        keep_versions: 10,
        setup: &[Step::Create, Step::Put("a", 1), Step::Put("b", 1)],
        steps: &[Step::Put("a", 2), Step::Put("c", 1)],
    },
    Scenario {
        name: "put with check-and-set",
        keep_versions: 10,
        setup: &[Step::Create, Step::Put("a", 1)],
        steps: &[Step::PutIfCurrent("a", 2), Step::PutIfAbsent("d", 1)],
    },
    Scenario {
        name: "delete, undelete, purge",
        keep_versions: 10,
        setup: &[Step::Create, Step::Put("a", 1), Step::Put("b", 1)],
        steps: &[Step::Delete("a"), Step::Undelete("a"), Step::Purge("b")],
    },
    Scenario {
        name: "version pruning",
        keep_versions: 2,
        setup: &[Step::Create, Step::Put("a", 1), Step::Put("a", 2)],
        steps: &[Step::Put("a", 3), Step::Put("a", 4)],
    },
    Scenario {
        name: "rekey",
        keep_versions: 10,
        setup: &[Step::Create, Step::Put("a", 1)],
        steps: &[Step::RotateKey],
    },
    Scenario {
        name: "key-slot add and remove",
        keep_versions: 10,
        setup: &[Step::Create, Step::Put("a", 1), Step::AddPassphrase],
        steps: &[
            Step::AddPassphrase,
            Step::RemoveLastSlot,
            Step::RemoveLastSlot,
        ],
    },
    // The facade's mirror (crates/facade/src/mirror.rs) reaches its file only through
    // FileStore's public calls: `open_mirror`'s builder, `put_with` with two tags, `purge`.
    // Its scenarios replay exactly those calls here rather than record through the facade:
    // the same calls on the same store code make the same file operations, and recording in
    // the facade would need the recording file system compiled into the library behind a
    // feature (changing what an `--all-features` build writes with) and the mirror's
    // background writer made deterministic, for no crash state this does not reach. What
    // it cannot see is the mirror starting to call something else: the steps name the
    // functions they copy, to be kept in step with them.
    //
    // The check is the general one, with the tags in what is compared: the mirror file
    // always opens, every entry is its old or its new copy, and a confirmation (the tag)
    // never goes back past an acknowledged one.
    Scenario {
        name: "mirror creation",
        keep_versions: 1,
        setup: &[],
        steps: &[Step::MirrorOpen, Step::MirrorWrite("a", 1, 1_000)],
    },
    Scenario {
        name: "mirror sync",
        keep_versions: 1,
        setup: &[
            Step::MirrorOpen,
            Step::MirrorWrite("a", 1, 1_000),
            Step::MirrorWrite("b", 1, 1_000),
        ],
        steps: &[
            // A refresh: the same value, a later confirmation.
            Step::MirrorWrite("a", 1, 2_000),
            Step::MirrorWrite("a", 2, 3_000),
            Step::MirrorWrite("c", 1, 3_000),
            Step::MirrorRemove("b"),
        ],
    },
];

/// The tags the facade's mirror writes (`MIRROR_VERSION_TAG`, `MIRROR_CONFIRMED_TAG` in
/// crates/facade/src/mirror.rs; this crate cannot name the facade's constants).
const MIRROR_VERSION_TAG: &str = "strongroom-primary-version";
const MIRROR_CONFIRMED_TAG: &str = "strongroom-confirmed-at";

/// The keys a scenario's store may open with: the master key, the one a rekey moves to,
/// and a passphrase (one PBKDF2 iteration: the checker is about the file, not the KDF).
struct Keys {
    all: Vec<(&'static str, WrappingKey)>,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            all: vec![
                ("master", MasterKey::generate().unwrap().into()),
                ("new master", MasterKey::generate().unwrap().into()),
                (
                    "passphrase",
                    Passphrase::new("crash explore").with_iterations(1).into(),
                ),
            ],
        }
    }

    fn get(&self, label: &str) -> WrappingKey {
        self.all
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, k)| k.clone())
            .unwrap()
    }
}

fn value(name: &str, generation: u8, bytes: usize) -> String {
    // Values differ in length so that files change size between writes.
    let len = bytes + usize::from(generation) * 97;
    let mut v = format!("{name}:{generation}:");
    v.extend((0..len).map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0))));
    v
}

/// Runs `step`; `store` is the scenario's handle, `None` until a step creates the store.
async fn run_step(
    store: &mut Option<FileStore>,
    path: &Path,
    scenario: &Scenario,
    keys: &Keys,
    step: &Step,
    bytes: usize,
) {
    let secret = |n: &str| SecretName::new(n).unwrap();
    match step {
        Step::Create => {
            let created = FileStore::builder(path)
                .keep_versions(scenario.keep_versions)
                .create(keys.get("master"))
                .unwrap();
            *store = Some(created);
            return;
        }
        Step::MirrorOpen => {
            let opened = FileStore::builder(path)
                .keep_versions(1)
                .create_if_missing(true)
                .open(keys.get("master"))
                .unwrap();
            *store = Some(opened);
            return;
        }
        _ => {}
    }
    let store = store.as_ref().expect("a step before the store was created");
    match step {
        Step::Create | Step::MirrorOpen => {}
        Step::MirrorWrite(n, g, confirmed) => {
            // The writer reads the held copy first (to skip a fresh one): a read, no write.
            let _ = store.get(&secret(n)).await;
            let metadata = Metadata::default()
                .tag(MIRROR_VERSION_TAG, g.to_string())
                .tag(MIRROR_CONFIRMED_TAG, confirmed.to_string());
            let options = PutOptions::default().with_metadata(metadata);
            store
                .put_with(&secret(n), value(n, *g, bytes).into(), &options)
                .await
                .unwrap();
        }
        Step::MirrorRemove(n) => store.purge(&secret(n)).await.unwrap(),
        Step::Put(n, g) => {
            store
                .put(&secret(n), value(n, *g, bytes).into())
                .await
                .unwrap();
        }
        Step::PutIfCurrent(n, g) => {
            let versions = store.versions(&secret(n)).await.unwrap();
            let current = versions.iter().find(|v| v.current).unwrap().version.clone();
            let options = PutOptions::default().if_version(current);
            store
                .put_with(&secret(n), value(n, *g, bytes).into(), &options)
                .await
                .unwrap();
        }
        Step::PutIfAbsent(n, g) => {
            let options = PutOptions::default().if_absent();
            store
                .put_with(&secret(n), value(n, *g, bytes).into(), &options)
                .await
                .unwrap();
        }
        Step::Delete(n) => store.delete(&secret(n)).await.unwrap(),
        Step::Undelete(n) => store.undelete(&secret(n)).await.unwrap(),
        Step::Purge(n) => store.purge(&secret(n)).await.unwrap(),
        Step::RotateKey => store.rotate_key(keys.get("new master")).await.unwrap(),
        Step::AddPassphrase => store.add_key(keys.get("passphrase")).await.unwrap(),
        Step::RemoveLastSlot => {
            let StoreSlots::Slotted(table) = store.slots().await.unwrap() else {
                panic!("a new store is slotted");
            };
            let last = table.slots().last().unwrap().clone();
            store.remove_slot(&last).await.unwrap();
        }
    }
}

/// What the real store code finds in a directory: for every key, whether the store opens
/// and, if it does, every secret's current value and versions, and the slot table.
async fn observe(path: &Path, keys: &Keys) -> String {
    let mut seen = String::new();
    let _ = writeln!(
        seen,
        "slots: {:?}",
        FileStore::read_slots(path)
            .map(|_| ())
            .map_err(|e| e.kind())
    );
    if let Ok(StoreSlots::Slotted(table)) = FileStore::read_slots(path) {
        let _ = writeln!(seen, "  {} slots", table.slots().len());
    }
    for (label, key) in &keys.all {
        let store = match FileStore::open(path, key.clone()) {
            Ok(store) => store,
            Err(err) => {
                let _ = writeln!(seen, "{label}: does not open ({:?})", err.kind());
                continue;
            }
        };
        let _ = writeln!(seen, "{label}: opens");
        let names = match store.list("").await {
            Ok(names) => names,
            Err(err) => {
                let _ = writeln!(seen, "  list fails ({:?})", err.kind());
                continue;
            }
        };
        for name in names {
            let (current, tags) = match store.get(&name).await {
                Ok(secret) => (
                    secret.value.expose_str().unwrap_or("<binary>").to_owned(),
                    secret.metadata.tags.clone(),
                ),
                Err(err) => (format!("{:?}", err.kind()), BTreeMap::new()),
            };
            let versions: Vec<String> = match store.versions(&name).await {
                Ok(vs) => vs
                    .iter()
                    .map(|v| format!("{}{}", v.version, if v.deleted { " deleted" } else { "" }))
                    .collect(),
                Err(err) => vec![format!("{:?}", err.kind())],
            };
            let shown = if current.len() > 24 {
                &current[..24]
            } else {
                &current
            };
            let _ = writeln!(
                seen,
                "  {name} = {shown}... ({} bytes) versions {versions:?} tags {tags:?}",
                current.len()
            );
        }
    }
    seen
}

/// The result of exploring one scenario under one model.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) crash_points: usize,
    pub(crate) states: usize,
    /// Distinct states (the same files after the same acknowledged operations), each
    /// materialised and opened by the store.
    pub(crate) distinct: usize,
    pub(crate) sampled_points: usize,
    /// States with leftover temporary files where a write after the crash was tried.
    pub(crate) recoveries: usize,
    pub(crate) violations: usize,
    /// The first violation, in words.
    pub(crate) first: Option<String>,
}

/// A recorded scenario: the durable files before, the log, and the store file after each
/// store operation (index 0: before the first).
struct Recorded {
    initial: BTreeMap<String, Vec<u8>>,
    ops: Vec<Op>,
    /// `None`: no store file (before a step creates it).
    after: Vec<Option<Vec<u8>>>,
    /// The step that creates the store, when the scenario has one: a crash before it is
    /// durable may leave no store, and then running it again must succeed.
    creates: Option<Step>,
}

const STORE: &str = "s.enc";
const LOCK: &str = "s.enc.lock";

/// Materialises `files`; when there is no store, runs the scenario's creating step again
/// (`creates`: whatever a crashed create left, a lock file or a temporary file, must not
/// stop it); opens the store with the first key that opens it, writes a secret, and checks
/// that the write is read back and that no temporary file is left.
async fn recover(
    files: &BTreeMap<String, Vec<u8>>,
    keys: &Keys,
    creates: Option<&Step>,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let path = dir.path().join(STORE);
    if !files.contains_key(STORE) {
        let builder = FileStore::builder(&path);
        let created = match creates {
            Some(Step::MirrorOpen) => builder.create_if_missing(true).open(keys.get("master")),
            _ => builder.create(keys.get("master")),
        };
        created.map_err(|e| format!("creating the store again fails ({:?}: {e})", e.kind()))?;
    }
    let Some((store, key)) = keys
        .all
        .iter()
        .find_map(|(_, k)| Some((FileStore::open(&path, k.clone()).ok()?, k.clone())))
    else {
        return Err("no key opens the store".to_owned());
    };
    let probe = SecretName::new("recovery/probe").unwrap();
    store
        .put(&probe, "written after the crash".into())
        .await
        .map_err(|e| format!("a write fails ({:?})", e.kind()))?;
    let again =
        FileStore::open(&path, key).map_err(|e| format!("reopening fails ({:?})", e.kind()))?;
    let read = again
        .get(&probe)
        .await
        .map_err(|e| format!("the write is not read back ({:?})", e.kind()))?;
    if read.value.expose_str().ok() != Some("written after the crash") {
        return Err("the write reads back wrong".to_owned());
    }
    let left: Vec<String> = read_dir_files(dir.path())
        .into_keys()
        .filter(|n| n != STORE && n != LOCK)
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("a write leaves {left:?} behind"))
    }
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

async fn record(scenario: &Scenario, keys: &Keys, variant: Variant, bounds: Bounds) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE);
    let mut store = None;
    for step in scenario.setup {
        run_step(&mut store, &path, scenario, keys, step, bounds.value_bytes).await;
    }
    let initial = read_dir_files(dir.path());
    let mut after = vec![initial.get(STORE).cloned()];
    let recorder = recording::record(dir.path(), variant);
    for step in scenario.steps {
        run_step(&mut store, &path, scenario, keys, step, bounds.value_bytes).await;
        recorder.acknowledge(&format!("{step:?}"));
        after.push(Some(std::fs::read(&path).unwrap()));
    }
    let ops = recorder.ops();
    drop(recorder);
    Recorded {
        initial,
        ops,
        after,
        creates: scenario
            .steps
            .iter()
            .find(|s| matches!(s, Step::Create | Step::MirrorOpen))
            .cloned(),
    }
}

async fn check(recorded: &Recorded, keys: &Keys, model: Model, bounds: Bounds) -> Outcome {
    let mut outcome = Outcome::default();
    let mut expected = Vec::new();
    for bytes in &recorded.after {
        let dir = tempfile::tempdir().unwrap();
        if let Some(bytes) = bytes {
            std::fs::write(dir.path().join(STORE), bytes).unwrap();
        }
        expected.push(observe(&dir.path().join(STORE), keys).await);
    }
    let mut seen: HashSet<(usize, BTreeMap<String, Vec<u8>>)> = HashSet::new();
    let mut recovered: HashSet<(Option<Vec<u8>>, Vec<String>)> = HashSet::new();
    for point in 0..=recorded.ops.len() {
        let acked = recorded.ops[..point]
            .iter()
            .filter(|op| matches!(op, Op::Acknowledged { .. }))
            .count();
        let allowed = &expected[acked..(acked + 2).min(expected.len())];
        let states = crash_states(&recorded.initial, &recorded.ops, point, model, bounds.cap);
        outcome.crash_points += 1;
        outcome.sampled_points += usize::from(states.sampled);
        for state in states.states {
            outcome.states += 1;
            if !seen.insert((acked, state.files.clone())) {
                continue;
            }
            outcome.distinct += 1;
            let store_bytes = state.files.get(STORE).cloned();
            let dir = tempfile::tempdir().unwrap();
            for (name, bytes) in &state.files {
                std::fs::write(dir.path().join(name), bytes).unwrap();
            }
            let observed = observe(&dir.path().join(STORE), keys).await;
            drop(dir);
            let mut problem = None;
            if !allowed.contains(&observed) {
                problem = Some(format!("the store found:\n{observed}"));
            } else if state.files.keys().any(|n| n != STORE && n != LOCK)
                || (store_bytes.is_none() && recorded.creates.is_some())
            {
                // Leftovers of the write in flight, or no store yet: the next writer (or
                // create) must clear them and write. Each store file with each set of
                // leftover names is tried once.
                let names: Vec<String> = state.files.keys().cloned().collect();
                if recovered.insert((store_bytes.clone(), names)) {
                    outcome.recoveries += 1;
                    problem = recover(&state.files, keys, recorded.creates.as_ref())
                        .await
                        .err()
                        .map(|why| format!("after the crash, {why}"));
                }
            }
            let Some(problem) = problem else {
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
                let names: Vec<_> = state
                    .files
                    .iter()
                    .map(|(n, b)| format!("{n} ({} bytes)", b.len()))
                    .collect();
                let _ = writeln!(text, "files left: {names:?}");
                let _ = writeln!(text, "{problem}");
                let _ = writeln!(
                    text,
                    "expected ({} acknowledged) one of:\n{}",
                    acked,
                    allowed.join("-- or --\n")
                );
                outcome.first = Some(text);
            }
        }
    }
    outcome
}

/// Explores every scenario with `variant` under both models; returns (scenario, model,
/// outcome) rows.
pub(crate) fn explore(variant: Variant, bounds: Bounds) -> Vec<(&'static str, Model, Outcome)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let keys = Keys::new();
        let mut rows = Vec::new();
        for scenario in SCENARIOS {
            let recorded = record(scenario, &keys, variant, bounds).await;
            for model in [Model::Posix, Model::Ext4Ordered] {
                let outcome = check(&recorded, &keys, model, bounds).await;
                rows.push((scenario.name, model, outcome));
            }
        }
        rows
    })
}

/// The report: a line per scenario and model, totals, and the first violation.
pub(crate) fn report(variant: Variant, rows: &[(&str, Model, Outcome)]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "crash-state exploration, write path {variant:?}");
    let (mut states, mut distinct, mut violations) = (0, 0, 0);
    for (scenario, model, o) in rows {
        let _ = writeln!(
            text,
            "  {scenario:<26} {:<18} {:>4} crash points ({:>2} sampled) {:>6} states {:>5} distinct {:>4} rewritten {:>4} violations",
            model.name(),
            o.crash_points,
            o.sampled_points,
            o.states,
            o.distinct,
            o.recoveries,
            o.violations
        );
        states += o.states;
        distinct += o.distinct;
        violations += o.violations;
    }
    let _ = writeln!(
        text,
        "  total: {states} states, {distinct} distinct (each materialised and opened by the store), {violations} violations"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(rows: &[(&str, Model, Outcome)], model: Model) -> usize {
        rows.iter()
            .filter(|(_, m, _)| *m == model)
            .map(|(_, _, o)| o.violations)
            .sum()
    }

    #[allow(clippy::print_stderr, reason = "the report is this test's output")]
    fn run(variant: Variant) -> Vec<(&'static str, Model, Outcome)> {
        let start = Instant::now();
        // A broken path only has to be caught: the bounded exploration does that in
        // seconds, where the full one would spend minutes opening torn files.
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
    fn every_crash_state_of_the_real_write_path_holds_old_or_new() {
        let rows = run(Variant::Correct);
        assert!(rows.iter().all(|(_, _, o)| o.distinct > 0));
        assert_eq!(
            violations(&rows, Model::Posix),
            0,
            "{}",
            report(Variant::Correct, &rows)
        );
        assert_eq!(violations(&rows, Model::Ext4Ordered), 0);
    }

    #[test]
    fn a_missing_directory_fsync_is_caught() {
        let rows = run(Variant::NoDirFsync);
        // The acknowledged rename may be lost: under either model.
        assert!(violations(&rows, Model::Posix) > 0);
        assert!(violations(&rows, Model::Ext4Ordered) > 0);
    }

    #[test]
    fn writing_in_place_is_caught() {
        let rows = run(Variant::InPlace);
        assert!(violations(&rows, Model::Posix) > 0);
        assert!(violations(&rows, Model::Ext4Ordered) > 0);
    }

    #[test]
    fn renaming_before_the_fsync_is_caught_by_the_strict_model() {
        let rows = run(Variant::RenameBeforeFsync);
        assert!(violations(&rows, Model::Posix) > 0);
        // ext4 data=ordered flushes a file's data before its rename commits: the mistake
        // many programs rely on the file system to forgive, and the model forgives it.
        assert_eq!(violations(&rows, Model::Ext4Ordered), 0);
    }
}
