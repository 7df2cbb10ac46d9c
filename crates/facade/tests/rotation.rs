//! Rotation by age against local encrypted files in temporary directories: the due check,
//! the generators, a race between independent `Secrets` and between separate processes
//! over one store file, and a policy that falls due while its process is down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use strongroom_core::{Error, SecretName, SecretStore};
use strongroom_envelope::MasterKey;
use strongroom_facade::{
    ChangeCause, Config, Generator, RotationOutcome, RotationPolicy, Secrets, rotate_if_due,
};
use strongroom_local::{EnvStore, FileStore};
use tempfile::TempDir;

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A temporary directory with a master key file.
struct Place {
    dir: TempDir,
    key_file: PathBuf,
}

impl Place {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        MasterKey::generate()
            .unwrap()
            .write_new_file(&key_file)
            .unwrap();
        Self { dir, key_file }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("s.enc")
    }

    /// A new handle on the shared store file, as another process would open it.
    fn secrets(&self) -> Secrets {
        open_secrets(&self.store_path(), &self.key_file, None)
    }
}

fn open_secrets(store: &Path, key_file: &Path, audit: Option<&Path>) -> Secrets {
    let store = FileStore::builder(store)
        .create_if_missing(true)
        .open(MasterKey::from_file(key_file).unwrap())
        .unwrap();
    let mut builder = Secrets::builder().store(store);
    if let Some(audit) = audit {
        builder = builder.audit_file(audit);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn a_young_version_is_not_due_and_an_old_one_is_rotated_once() {
    let place = Place::new();
    let secrets = place.secrets();
    let k = key("app/api-key");
    let v1 = secrets.put(&k, "first").await.unwrap();
    let created = secrets.get(&k).await.unwrap().created.unwrap();

    let hour = Duration::from_secs(3600);
    match secrets.rotate_if_older_than(&k, hour).await.unwrap() {
        RotationOutcome::NotDue { version, next_due } => {
            assert_eq!(version, v1);
            assert_eq!(next_due, created + hour, "due one age after creation");
        }
        other => panic!("a fresh version is not due: {other:?}"),
    }
    assert_eq!(secrets.versions(&k).await.unwrap().len(), 1);

    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut watch = secrets.subscribe(k.clone());
    let age = Duration::from_millis(200);
    let outcome = secrets.rotate_if_older_than(&k, age).await.unwrap();
    assert!(outcome.rotated(), "{outcome:?}");
    assert_ne!(outcome.version(), &v1);
    let change = tokio::time::timeout(Duration::from_secs(5), watch.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.cause, ChangeCause::Put);
    let now = secrets.get(&k).await.unwrap();
    assert_eq!(&now.version, outcome.version());
    assert_ne!(now.value.expose_str().unwrap(), "first");

    // Asked again at once: the new version is young, nothing is written.
    let again = secrets.rotate_if_older_than(&k, age).await.unwrap();
    assert!(matches!(again, RotationOutcome::NotDue { .. }), "{again:?}");
    assert_eq!(secrets.versions(&k).await.unwrap().len(), 2);
    assert_eq!(secrets.stats().rotations, 1);
}

#[tokio::test]
async fn a_missing_key_is_created_by_its_policy() {
    let place = Place::new();
    let secrets = place.secrets();
    let k = key("new/key");
    let policy = RotationPolicy::older_than(k.clone(), Duration::from_secs(60))
        .generator(Generator::hex(16));
    let outcome = secrets.rotate_if_due(&policy).await.unwrap();
    assert!(outcome.rotated());
    let value = secrets.get(&k).await.unwrap().value;
    let text = value.expose_str().unwrap();
    assert_eq!(text.len(), 32);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[tokio::test]
async fn a_backend_without_creation_times_is_refused_clearly() {
    let secrets = Secrets::builder()
        .store(EnvStore::from_vars([("API_KEY", "from-env")]))
        .build()
        .unwrap();
    let err = secrets
        .rotate_if_older_than("api/key", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { .. }),
        "expected Unsupported, got {err:?}"
    );
    assert!(err.to_string().contains("creation time"), "{err}");
    assert!(!err.to_string().contains("from-env"));
}

#[test]
fn generators_make_what_they_say() {
    let raw = Generator::raw_bytes(48).generate().unwrap();
    assert_eq!(raw.expose().len(), 48);
    let hex = Generator::hex(8).generate().unwrap();
    assert_eq!(hex.expose_str().unwrap().len(), 16);

    let password = Generator::password("ab", 20_000).unwrap();
    let value = password.generate().unwrap();
    let text = value.expose_str().unwrap();
    assert_eq!(text.chars().count(), 20_000);
    let a = text.chars().filter(|&c| c == 'a').count();
    assert_eq!(text.chars().filter(|&c| c == 'b').count(), 20_000 - a);
    // Uniform: 10,000 expected, a standard deviation of about 71.
    assert!((9_500..=10_500).contains(&a), "{a} a's of 20,000");

    let odd = Generator::password("xyz!", 64).unwrap().generate().unwrap();
    assert!(
        odd.expose_str()
            .unwrap()
            .chars()
            .all(|c| "xyz!".contains(c))
    );

    assert!(
        Generator::password("aaaa", 8).is_err(),
        "one distinct character"
    );
    assert!(Generator::password("ab", 0).is_err());
    assert!(
        Generator::hex(1 << 20).generate().is_err(),
        "over the limit"
    );
    let debug = format!("{:?}", Generator::password("abc", 9).unwrap());
    assert!(debug.contains("alphabet_len: 3"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_instances_over_one_store_rotate_once() {
    let place = Place::new();
    let k = key("fleet/key");
    let v1 = place.secrets().put(&k, "first").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let fleet: Vec<Secrets> = (0..8).map(|_| place.secrets()).collect();
    let policy = RotationPolicy::older_than(k.clone(), Duration::from_millis(250));
    let outcomes = futures_join(fleet.iter().map(|s| {
        let policy = policy.clone();
        let s = s.clone();
        async move { s.rotate_if_due(&policy).await.unwrap() }
    }))
    .await;
    let rotated = outcomes.iter().filter(|o| o.rotated()).count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    let winner = outcomes.iter().find(|o| o.rotated()).unwrap().version();
    assert_ne!(winner, &v1);
    assert!(
        outcomes.iter().all(|o| o.version() == winner),
        "{outcomes:?}"
    );
    assert_eq!(place.secrets().versions(&k).await.unwrap().len(), 2);
    for s in &fleet {
        assert_eq!(
            &s.get(&k).await.unwrap().version,
            winner,
            "losers read the winner's value"
        );
    }
}

/// Runs the futures concurrently on the runtime, each as its own task.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

const CHILD_STORE: &str = "STRONGROOM_TEST_ROTATION_STORE";
const CHILD_KEY_FILE: &str = "STRONGROOM_TEST_ROTATION_KEY_FILE";
const CHILD_START: &str = "STRONGROOM_TEST_ROTATION_START_MS";

/// One process of the fleet in `separate_processes_over_one_store_rotate_once`: does
/// nothing unless that test started this binary with the variables set.
#[tokio::test]
#[allow(clippy::print_stdout)] // stdout is how the child reports to the parent test
async fn rotation_fleet_child() {
    let (Some(store), Some(key_file), Some(start)) = (
        std::env::var_os(CHILD_STORE),
        std::env::var_os(CHILD_KEY_FILE),
        std::env::var(CHILD_START).ok(),
    ) else {
        return;
    };
    let secrets = open_secrets(Path::new(&store), Path::new(&key_file), None);
    // Every process starts its check at the same wall-clock moment, to race for real.
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(start.parse().unwrap());
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    // Due at the start (1.5 s after the put); a member delayed past it by more than the
    // age would see the winner's version as due again, so the age is kept long.
    let policy = RotationPolicy::older_than(key("fleet/key"), Duration::from_millis(1200))
        .named("fleet-policy");
    let outcome = secrets.rotate_if_due(&policy).await.unwrap();
    let what = match outcome {
        RotationOutcome::Rotated { .. } => "rotated",
        RotationOutcome::RotatedElsewhere { .. } => "elsewhere",
        RotationOutcome::NotDue { .. } => "not-due",
        _ => "other",
    };
    println!("FLEET-OUTCOME {what} {}", outcome.version());
}

#[tokio::test]
async fn separate_processes_over_one_store_rotate_once() {
    const PROCESSES: usize = 6;
    let place = Place::new();
    let k = key("fleet/key");
    let v1 = place.secrets().put(&k, "first").await.unwrap();
    // Due (older than 1.2 s) by the time the processes start, 1.5 s from now.
    let start = SystemTime::now() + Duration::from_millis(1500);
    let start_ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "rotation_fleet_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_STORE, place.store_path())
                .env(CHILD_KEY_FILE, &place.key_file)
                .env(CHILD_START, start_ms.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outcomes = Vec::new();
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(output.status.success(), "a fleet process failed");
        let stdout = String::from_utf8(output.stdout).unwrap();
        // The test harness prints its own words around the line, even on the same line.
        let line = stdout
            .split("FLEET-OUTCOME ")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_else(|| panic!("no outcome in {stdout:?}"))
            .to_owned();
        outcomes.push(line);
    }
    let rotated = outcomes
        .iter()
        .filter(|o| o.starts_with("rotated "))
        .count();
    assert_eq!(rotated, 1, "exactly one process rotates: {outcomes:?}");
    let versions: Vec<&str> = outcomes
        .iter()
        .map(|o| o.split_once(' ').unwrap().1)
        .collect();
    assert!(versions.iter().all(|v| *v == versions[0]), "{outcomes:?}");
    assert_ne!(versions[0], v1.as_str());
    let history = place.secrets().versions(&k).await.unwrap();
    assert_eq!(history.len(), 2, "one rotation in the store's history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_due_while_down_fires_once_after_restart() {
    let place = Place::new();
    let audit = place.dir.path().join("audit.jsonl");
    let k = key("restart/key");
    let age = Duration::from_millis(1500);
    let policy = RotationPolicy::older_than(k.clone(), age).named("nightly-restart-test");

    // First life: the key is young, the policy waits; the process stops before it is due.
    let first = open_secrets(&place.store_path(), &place.key_file, Some(&audit));
    let v1 = first.put(&k, "first").await.unwrap();
    let handle = first.start_rotation(policy.clone());
    tokio::time::sleep(Duration::from_millis(150)).await;
    handle.stop().await;
    drop(first);
    assert_eq!(place.secrets().versions(&k).await.unwrap().len(), 1);

    // Down past the due time.
    tokio::time::sleep(Duration::from_millis(1400)).await;

    // Second life: the due rotation happens at start, once.
    let second = open_secrets(&place.store_path(), &place.key_file, Some(&audit));
    let mut watch = second.subscribe(k.clone());
    let handle = second.start_rotation(policy.clone());
    let change = tokio::time::timeout(Duration::from_secs(5), watch.recv())
        .await
        .expect("the due rotation at start")
        .unwrap();
    assert_eq!(change.cause, ChangeCause::Put);
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.stop().await;
    let v2 = second.get(&k).await.unwrap().version;
    assert_ne!(v2, v1);
    second.flush_audit();
    drop(second);

    // Third life, at once: the version is young, nothing repeats.
    let third = place.secrets();
    let handle = third.start_rotation(policy.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.stop().await;
    let history = third.versions(&k).await.unwrap();
    assert_eq!(history.len(), 2, "rotated once across three lives");
    assert_eq!(third.get(&k).await.unwrap().version, v2);

    let audit = std::fs::read_to_string(&audit).unwrap();
    let rotations: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains(r#""op":"rotate""#))
        .collect();
    assert_eq!(rotations.len(), 1, "{audit}");
    assert!(
        rotations[0].contains(r#""policy":"nightly-restart-test""#)
            && rotations[0].contains(r#""key":"restart/key""#)
            && rotations[0].contains(r#""outcome":"ok""#),
        "{}",
        rotations[0]
    );
}

#[tokio::test]
async fn the_plain_store_function_follows_the_same_rules() {
    let place = Place::new();
    let store = FileStore::builder(place.store_path())
        .create_if_missing(true)
        .open(MasterKey::from_file(&place.key_file).unwrap())
        .unwrap();
    let k = key("plain/key");
    let policy = RotationPolicy::older_than(k.clone(), Duration::from_millis(100));
    assert!(
        rotate_if_due(&store, &policy).await.unwrap().rotated(),
        "created"
    );
    let not_due = rotate_if_due(&store, &policy).await.unwrap();
    assert!(matches!(not_due, RotationOutcome::NotDue { .. }));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(rotate_if_due(&store, &policy).await.unwrap().rotated());
    assert_eq!(store.versions(&k).await.unwrap().len(), 2);
}

#[test]
fn rotation_tables_become_policies_and_mistakes_are_named() {
    let base = "[backend]\nkind = \"local\"\npath = \"/s.enc\"\n";
    let config = Config::from_toml_str(&format!(
        "{base}[[rotation]]\nkey = \"app/api-key\"\nevery = \"90d\"\n\
         [[rotation]]\nname = \"hex-weekly\"\nkey = \"app/token\"\nevery = \"1w\"\ngenerator = \"hex\"\nbytes = 16\n\
         [[rotation]]\nkey = \"app/pw\"\nevery = \"3600\"\ngenerator = \"password\"\nalphabet = \"ab\"\nlength = 12\n"
    ))
    .unwrap();
    let policies = config.rotation_policies().unwrap();
    assert_eq!(policies.len(), 3);
    assert_eq!(policies[0].name(), "app/api-key");
    assert_eq!(policies[0].max_age(), Duration::from_secs(90 * 86_400));
    assert_eq!(policies[1].name(), "hex-weekly");
    assert_eq!(policies[1].max_age(), Duration::from_secs(7 * 86_400));
    let token = policies[1].value_generator().generate().unwrap();
    assert_eq!(token.expose_str().unwrap().len(), 32);
    let pw = policies[2].value_generator().generate().unwrap();
    let pw = pw.expose_str().unwrap();
    assert!(
        pw.len() == 12 && pw.chars().all(|c| c == 'a' || c == 'b'),
        "{pw}"
    );

    for (table, expected) in [
        ("key = \"k\"\nevery = \"soon\"", "is not a duration"),
        ("key = \"k\"\nevery = \"0s\"", "more than zero"),
        (
            "key = \"/bad/\"\nevery = \"1d\"",
            "[[rotation]] key = \"/bad/\"",
        ),
        (
            "key = \"k\"\nevery = \"1d\"\ngenerator = \"uuid\"",
            "expected base64, hex, bytes or password",
        ),
        (
            "key = \"k\"\nevery = \"1d\"\nlength = 8",
            "belong to generator = \"password\"",
        ),
        (
            "key = \"k\"\nevery = \"1d\"\ngenerator = \"password\"\nbytes = 8",
            "use length",
        ),
        (
            "key = \"k\"\nevery = \"1d\"\nbytes = 0",
            "bytes must be 1 to",
        ),
        (
            "key = \"k\"\nevery = \"1d\"\ngenerator = \"password\"\nalphabet = \"x\"",
            "2 to 256 distinct",
        ),
    ] {
        let text = format!("{base}[[rotation]]\n{table}\n");
        let err = Config::from_toml_str(&text)
            .and_then(|c| c.rotation_policies())
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{table}: {err}");
    }
    // cron schedules are not implemented: the field is refused, not ignored.
    let cron = Config::from_toml_str(&format!(
        "{base}[[rotation]]\nkey = \"k\"\ncron = \"0 3 * * *\"\n"
    ));
    assert!(cron.is_err());
}
