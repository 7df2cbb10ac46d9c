//! Rotation by age and on cron schedules against local encrypted files in temporary
//! directories: the due check (a table of UTC instants across month and year ends), the
//! generators, a race between independent `Secrets` and between separate processes over
//! one store file, policies that fall due while their process is down, and policies from
//! TOML and from `STRONGROOM_ROTATION`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use strongroom_core::{Error, SecretName, SecretStore};
use strongroom_envelope::MasterKey;
use strongroom_facade::{
    ChangeCause, Config, CronSchedule, Generator, RotationOutcome, RotationPolicy,
    RotationSchedule, RotationSettings, Secrets, rotate_if_due,
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

/// Three lives of a process following `policy` over one store file: the first writes the
/// key and stops before it is due; the process stays down past the due time; the second
/// rotates at start, once; the third, at once after, finds nothing due. One audited
/// rotation, naming the policy.
async fn a_policy_due_while_down_fires_once(policy: RotationPolicy) {
    let place = Place::new();
    let audit = place.dir.path().join("audit.jsonl");
    let k = policy.key().clone();

    // First life: the key is young, the policy waits; the process stops before it is due.
    let first = open_secrets(&place.store_path(), &place.key_file, Some(&audit));
    let v1 = first.put(&k, "first").await.unwrap();
    let created = first.get(&k).await.unwrap().created.unwrap();
    let due = policy.due_at(created);
    assert!(
        due > SystemTime::now() + Duration::from_millis(500),
        "the test needs time before the policy is due"
    );
    let handle = first.start_rotation(policy.clone());
    tokio::time::sleep(Duration::from_millis(150)).await;
    handle.stop().await;
    drop(first);
    assert_eq!(place.secrets().versions(&k).await.unwrap().len(), 1);

    // Down past the due time.
    let down = (due + Duration::from_millis(100))
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(down).await;

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
        rotations[0].contains(&format!(r#""policy":"{}""#, policy.name()))
            && rotations[0].contains(&format!(r#""key":"{k}""#))
            && rotations[0].contains(r#""outcome":"ok""#),
        "{}",
        rotations[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_due_while_down_fires_once_after_restart() {
    let policy = RotationPolicy::older_than(key("restart/key"), Duration::from_millis(1500))
        .named("nightly-restart-test");
    a_policy_due_while_down_fires_once(policy).await;
}

/// The same three lives on `* * * * *`: due at the first minute boundary after the key was
/// written (so this test waits up to a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_policy_due_while_down_fires_once_after_restart() {
    let policy = RotationPolicy::cron(key("restart/cron"), "* * * * *")
        .unwrap()
        .named("every-minute-restart-test");
    // Write the key at least a second before the next boundary, so the first life ends
    // before it.
    let now = SystemTime::now();
    let boundary = policy.due_at(now);
    if boundary.duration_since(now).unwrap_or_default() < Duration::from_millis(1500) {
        tokio::time::sleep(
            (boundary + Duration::from_millis(100))
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
        .await;
    }
    a_policy_due_while_down_fires_once(policy).await;
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
    assert_eq!(
        policies[0].max_age(),
        Some(Duration::from_secs(90 * 86_400))
    );
    assert_eq!(policies[1].name(), "hex-weekly");
    assert_eq!(policies[1].max_age(), Some(Duration::from_secs(7 * 86_400)));
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
    let cron = Config::from_toml_str(&format!(
        "{base}[[rotation]]\nname = \"weekly\"\nkey = \"k\"\ncron = \" 0 3 * * 1 \"\n"
    ))
    .unwrap()
    .rotation_policies()
    .unwrap();
    assert_eq!(
        cron[0].schedule(),
        &RotationSchedule::Cron("0 3 * * 1".parse().unwrap())
    );
    assert_eq!(cron[0].max_age(), None);
}

/// A date and time in UTC.
fn utc(text: &str) -> SystemTime {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &format).unwrap().into()
}

#[test]
fn cron_policies_fall_due_at_the_first_instant_after_the_version_was_created() {
    // (schedule, current version created, next due): due at that instant and after, not a
    // nanosecond before. All UTC: no daylight-saving gap or repeat.
    let table = [
        // Mondays 03:00, from a Wednesday.
        ("0 3 * * 1", "2026-12-02T12:00:00Z", "2026-12-07T03:00:00Z"),
        (
            "0 3 * * MON",
            "2026-12-07T02:59:59.999Z",
            "2026-12-07T03:00:00Z",
        ),
        // A version written by the 03:00 rotation itself is due a week later, not again.
        ("0 3 * * 1", "2026-12-07T03:00:00Z", "2026-12-14T03:00:00Z"),
        (
            "0 3 * * 1",
            "2026-12-07T03:00:04.2Z",
            "2026-12-14T03:00:00Z",
        ),
        // Month ends: the 1st after the 31st, a 31st skips the months without one, the
        // 29th of February waits for a leap year.
        (
            "0 0 1 * *",
            "2026-01-31T23:59:59.999Z",
            "2026-02-01T00:00:00Z",
        ),
        ("0 0 1 * *", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("@monthly", "2026-02-28T23:00:00Z", "2026-03-01T00:00:00Z"),
        ("0 0 31 * *", "2026-01-31T00:00:01Z", "2026-03-31T00:00:00Z"),
        ("0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"),
        (
            "0 12 29 2 *",
            "2026-03-01T00:00:00Z",
            "2028-02-29T12:00:00Z",
        ),
        ("0 0 L * *", "2026-03-01T00:00:00Z", "-"),
        // Year end.
        (
            "30 23 * * *",
            "2026-12-31T23:30:00.5Z",
            "2027-01-01T23:30:00Z",
        ),
        ("@yearly", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"),
        ("@yearly", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"),
        // The nights Europe and the US change their clocks: UTC has every hour once.
        ("0 2 * * *", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"),
        ("30 1 * * *", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"),
        ("30 1 * * *", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"),
        ("0 2 * * *", "2026-03-08T01:00:00Z", "2026-03-08T02:00:00Z"),
        // Steps, lists and ranges.
        (
            "*/15 * * * *",
            "2026-06-01T10:07:00Z",
            "2026-06-01T10:15:00Z",
        ),
        (
            "0 9-17/4 * * 1-5",
            "2026-06-05T17:00:00Z",
            "2026-06-08T09:00:00Z",
        ),
        (
            "0 0 1,15 * *",
            "2026-06-01T00:00:01Z",
            "2026-06-15T00:00:00Z",
        ),
        // A version from long ago is due at once.
        ("0 3 * * 1", "2019-01-01T00:00:00Z", "2019-01-07T03:00:00Z"),
    ];
    for (expression, created, next_due) in table {
        let policy = match RotationPolicy::cron(key("k"), expression) {
            Ok(policy) => policy,
            Err(err) if next_due == "-" => {
                assert!(err.to_string().contains(expression), "{err}");
                continue;
            }
            Err(err) => panic!("{expression}: {err}"),
        };
        assert_ne!(next_due, "-", "{expression} should be refused");
        let created = utc(created);
        let next_due = utc(next_due);
        assert_eq!(
            policy.due_at(created),
            next_due,
            "{expression} after {created:?}"
        );
        assert!(policy.is_due(created, next_due), "{expression}");
        assert!(
            policy.is_due(created, next_due + Duration::from_secs(86_400 * 400)),
            "{expression}"
        );
        assert!(
            !policy.is_due(created, next_due - Duration::from_nanos(1)),
            "{expression}"
        );
        assert!(!policy.is_due(created, created), "{expression}");
    }
}

#[test]
fn a_schedule_whose_day_fields_crons_read_differently_is_refused() {
    for ambiguous in ["0 0 1 * 1", "0 0 1-7 * MON", "0 0 15 * 1-5"] {
        let err = CronSchedule::parse(ambiguous).unwrap_err();
        assert!(err.to_string().contains("both"), "{ambiguous}: {err}");
    }
    // One of them unrestricted (`*`, or a step of `*`) has one reading everywhere.
    for fine in ["0 0 1 * *", "0 0 * * 1", "0 0 */2 * 1", "0 0 1 * */2"] {
        CronSchedule::parse(fine).unwrap();
    }
    let schedule: CronSchedule = "  0 3 * * 1 ".parse().unwrap();
    assert_eq!(schedule.as_str(), "0 3 * * 1");
    assert_eq!(format!("{schedule:?}"), "CronSchedule(\"0 3 * * 1\")");
    assert_eq!(
        RotationSchedule::Cron(schedule).to_string(),
        "cron 0 3 * * 1"
    );
    assert_eq!(
        RotationSchedule::OlderThan(Duration::from_secs(86_400)).to_string(),
        "every 1day"
    );
    // Before 1970 counts as 1970: the first instant of the schedule is long past.
    let early = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
    assert_eq!(
        CronSchedule::parse("@daily").unwrap().next_after(early),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400))
    );
}

#[test]
fn a_bad_cron_schedule_is_a_config_error_naming_the_policy() {
    let base = "[backend]\nkind = \"local\"\npath = \"/s.enc\"\n";
    for (schedule, expected) in [
        ("0 3 * *", "expected 5 fields, found 4"),
        ("0 3 * * * *", "expected 5 fields, found 6"),
        ("61 * * * *", "outside 0..=59"),
        ("0 24 * * *", "outside 0..=23"),
        ("0 3 * * 7", "outside 0..=6"),
        ("0 3 32 * *", "outside 1..=31"),
        ("0 3 ? * MON", "Quartz"),
        ("0 3 * * Funday", "unknown name"),
        ("0 0 30 2 *", "can never"),
        ("0 0 1 * 1", "both"),
        ("@fortnightly", "shorthands"),
        ("", "expected 5 fields, found 0"),
    ] {
        let text = format!(
            "{base}[[rotation]]\nname = \"weekly\"\nkey = \"app/k\"\ncron = {schedule:?}\n"
        );
        let err = Config::from_toml_str(&text)
            .and_then(|c| c.rotation_policies())
            .unwrap_err();
        assert_eq!(err.kind(), strongroom_core::ErrorKind::Config);
        let message = err.to_string();
        assert!(
            message.contains(r#"[[rotation]] name = "weekly" key = "app/k""#),
            "{schedule}: {message}"
        );
        assert!(
            message.to_lowercase().contains(&expected.to_lowercase()),
            "{schedule}: expected {expected:?} in {message}"
        );
    }
    for (table, expected) in [
        ("key = \"k\"\nevery = \"1d\"\ncron = \"@daily\"", "not both"),
        ("key = \"k\"\ngenerator = \"hex\"", "say when"),
    ] {
        let err = Config::from_toml_str(&format!("{base}[[rotation]]\n{table}\n"))
            .and_then(|c| c.rotation_policies())
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{table}: {err}");
    }
}

/// `Config::from_env_with` over a map of variables.
fn from_vars(vars: &[(&str, &str)]) -> Result<Config, Error> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_env_with(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn policies_from_the_environment_are_the_policies_of_the_same_tables() {
    let env = from_vars(&[
        ("STRONGROOM_BACKEND", "env"),
        (
            "STRONGROOM_ROTATION",
            " app/api-key=90d ; app/token = cron:0 3 * * 1,4 & generator=hex & bytes=16 ;\
             app/pw=30d&generator=password&length=12&alphabet=a%3Bb%26%25=&name=pw-monthly;\
             we%3Dird/key=3600&generator=bytes;;",
        ),
    ])
    .unwrap();
    let file = Config::from_toml_str(
        r#"
        [backend]
        kind = "env"
        [[rotation]]
        key = "app/api-key"
        every = "90d"
        [[rotation]]
        key = "app/token"
        cron = "0 3 * * 1,4"
        generator = "hex"
        bytes = 16
        [[rotation]]
        name = "pw-monthly"
        key = "app/pw"
        every = "30d"
        generator = "password"
        alphabet = "a;b&%="
        length = 12
        [[rotation]]
        key = "we=ird/key"
        every = "3600"
        generator = "bytes"
    "#,
    )
    .unwrap();
    let from_env = env.rotation_policies().unwrap();
    let from_file = file.rotation_policies().unwrap();
    assert_eq!(from_env.len(), 4);
    assert_eq!(format!("{from_env:?}"), format!("{from_file:?}"));
    assert_eq!(from_env[2].name(), "pw-monthly");
    assert_eq!(from_env[3].key().as_str(), "we=ird/key");
    let pw = from_env[2].value_generator().generate().unwrap();
    assert!(
        pw.expose_str()
            .unwrap()
            .chars()
            .all(|c| "a;b&%=".contains(c)),
        "the alphabet decoded"
    );
    assert_eq!(
        from_env[1]
            .value_generator()
            .generate()
            .unwrap()
            .expose()
            .len(),
        32,
        "16 bytes in hex"
    );
    // The settings keep their fields, as a file's do.
    assert_eq!(env.rotation[1].cron.as_deref(), Some("0 3 * * 1,4"));
    assert_eq!(env.rotation[1].every, None);

    // One policy a line, as a shell's quoted multi-line value gives them.
    let lines =
        RotationSettings::parse_list("a=1d;\n  b = cron:@daily\n  &generator=hex;\n").unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].generator.as_deref(), Some("hex"));

    // Unset or blank: no policies.
    assert!(
        from_vars(&[("STRONGROOM_BACKEND", "env")])
            .unwrap()
            .rotation
            .is_empty()
    );
    assert!(
        from_vars(&[
            ("STRONGROOM_BACKEND", "env"),
            ("STRONGROOM_ROTATION", " ; ")
        ])
        .unwrap()
        .rotation
        .is_empty()
    );
}

#[test]
fn a_bad_policy_in_the_environment_is_a_config_error_naming_it() {
    for (value, expected) in [
        (
            "app=soon",
            r#"STRONGROOM_ROTATION policy 1 key = "app": the rotation age "soon""#,
        ),
        (
            "a=1d; b",
            r#"STRONGROOM_ROTATION policy 2: "b" is not KEY=SCHEDULE"#,
        ),
        (
            "a=1d;b=cron:0 0 1 * 1",
            r#"policy 2 key = "b": the cron schedule"#,
        ),
        ("a=cron:0 3 * *", "expected 5 fields, found 4"),
        ("a=1d&colour=red", r#"unknown option "colour""#),
        ("a=1d&bytes=x", "bytes must be a whole number"),
        ("a=1d&bytes=8&bytes=9", "bytes is given twice"),
        ("a=1d&hex", r#"the option "hex" is not NAME=VALUE"#),
        ("a=1d&alphabet=%zz", "two hex digits"),
        ("a=1d&alphabet=%ff%fe", "UTF-8"),
        ("a=1d&generator=password&bytes=3", "use length"),
        (
            "a=1d&generator=uuid",
            "expected base64, hex, bytes or password",
        ),
        ("/a=1d", r#"policy 1 key = "/a""#),
        ("a=", "is not a duration"),
        ("a=cron:", "expected 5 fields, found 0"),
        ("a=1d&name=n&length=3", r#"policy 1 name = "n" key = "a""#),
    ] {
        let err = from_vars(&[
            ("STRONGROOM_BACKEND", "env"),
            ("STRONGROOM_ROTATION", value),
        ])
        .unwrap_err();
        assert_eq!(err.kind(), strongroom_core::ErrorKind::Config, "{value}");
        assert!(err.to_string().contains(expected), "{value}: {err}");
    }
    // The same list, parsed alone.
    let err = RotationSettings::parse_list("a=1d;b=2d;c=0s").unwrap_err();
    assert!(err.to_string().contains("policy 3"), "{err}");
}

#[tokio::test]
async fn a_cron_policy_rotates_a_key_written_before_its_last_instant() {
    let place = Place::new();
    let secrets = place.secrets();
    let k = key("cron/key");
    let v1 = secrets.put(&k, "first").await.unwrap();
    // Every minute: the key is young until the next boundary.
    let policy = RotationPolicy::cron(k.clone(), "* * * * *").unwrap();
    match secrets.rotate_if_due(&policy).await.unwrap() {
        RotationOutcome::NotDue { version, next_due } => {
            assert_eq!(version, v1);
            let created = secrets.get(&k).await.unwrap().created.unwrap();
            assert_eq!(next_due, policy.due_at(created));
            assert!(next_due <= created + Duration::from_secs(60));
        }
        other => panic!("not due before the next minute: {other:?}"),
    }
    // Without a creation time the policy cannot be followed, and says why.
    let env = Secrets::builder()
        .store(EnvStore::from_vars([("CRON_KEY", "x")]))
        .build()
        .unwrap();
    let err = env.rotate_if_due(&policy).await.unwrap_err();
    assert!(
        err.to_string().contains("cron schedule") && err.to_string().contains("creation time"),
        "{err}"
    );
}
