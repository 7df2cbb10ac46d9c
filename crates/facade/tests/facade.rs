//! The facade against the local stores in temporary directories: operations, notifications,
//! scheduled rotation, audit, tracing, health, degradation with the mirror, configuration
//! and migration.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom_cache::{CacheConfig, ManualClock};
use strongroom_core::testing::{Hook, MemoryStore, Operation};
use strongroom_core::{Error, ErrorKind, SecretName, SecretStore, SecretValue, async_trait};
use strongroom_envelope::MasterKey;
use strongroom_facade::{
    BackendConfig, CacheStatus, ChangeCause, Config, Generator, HealthStatus, KeySource,
    MigrationOptions, Scoped, Secrets, StoreSpec, migrate,
};
use strongroom_local::{EnvStore, FileStore};
use tempfile::TempDir;

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A temporary directory with a master key file and helpers to make stores in it.
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn master(&self) -> MasterKey {
        MasterKey::from_file(&self.key_file).unwrap()
    }

    fn store(&self, name: &str) -> FileStore {
        FileStore::builder(self.path(name))
            .create_if_missing(true)
            .open(self.master())
            .unwrap()
    }

    fn mirror(&self) -> FileStore {
        FileStore::builder(self.path("mirror.enc"))
            .keep_versions(1)
            .create_if_missing(true)
            .open(self.master())
            .unwrap()
    }
}

/// How [`Switch`] answers.
const UP: u8 = 0;
const DOWN: u8 = 1;
const REFUSING: u8 = 2;

/// A hook that makes the reference store fail as an unreachable (or credential-refusing)
/// backend would, and counts the calls that reach it.
struct Switch {
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
}

impl Switch {
    /// The reference store behind a switch, its mode and its call count.
    fn store() -> (MemoryStore, Arc<AtomicU8>, Arc<AtomicUsize>) {
        let mode = Arc::new(AtomicU8::new(UP));
        let calls = Arc::new(AtomicUsize::new(0));
        let hook = Self {
            mode: Arc::clone(&mode),
            calls: Arc::clone(&calls),
        };
        (MemoryStore::new().with_hook(Arc::new(hook)), mode, calls)
    }
}

#[async_trait]
impl Hook for Switch {
    async fn call(&self, _: Operation, _: Option<&SecretName>) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            UP => Ok(()),
            DOWN => Err(Error::unavailable("memory", "connection refused")),
            _ => Err(Error::Unauthenticated {
                backend: "memory",
                message: "token expired".into(),
            }),
        }
    }
}

#[tokio::test]
async fn get_put_delete_list_versions_through_the_facade() {
    let place = Place::new();
    let secrets = Secrets::builder()
        .store(place.store("s.enc"))
        .build()
        .unwrap();
    let k = key("app/db/password");

    let v1 = secrets.put(&k, "first-value").await.unwrap();
    let v2 = secrets
        .put("app/db/password", "second-value")
        .await
        .unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        secrets.get(&k).await.unwrap().value.expose_str().unwrap(),
        "second-value"
    );
    // The first read of a key only ever written asks the store (the cache does not know its
    // metadata); the next is a hit.
    secrets.get(&k).await.unwrap();
    assert_eq!(
        (secrets.stats().cache.misses, secrets.stats().cache.hits),
        (1, 1)
    );
    assert_eq!(
        secrets
            .get_version(&k, &v1)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "first-value"
    );
    let versions = secrets.versions(&k).await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.clone())
            .collect::<Vec<_>>(),
        vec![v1, v2]
    );
    secrets.put("app/other", "x").await.unwrap();
    assert_eq!(
        secrets.list("app/db").await.unwrap(),
        vec![key("app/db/password")]
    );
    secrets.delete(&k).await.unwrap();
    assert!(secrets.get(&k).await.unwrap_err().is_not_found());

    let err = secrets.get("bad//key").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);

    let stats = secrets.stats();
    assert_eq!((stats.gets, stats.puts, stats.deletes), (4, 3, 1));
    assert_eq!(
        (stats.lists, stats.version_lists, stats.get_versions),
        (1, 1, 1)
    );
    assert_eq!(stats.errors, 2);
    assert!(!stats.degraded);
}

#[tokio::test]
async fn a_cached_not_found_is_served_and_counted_as_a_negative_hit() {
    let place = Place::new();
    let secrets = Secrets::builder()
        .store(place.store("n.enc"))
        .cache(
            CacheConfig::builder()
                .negative_ttl(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    for _ in 0..2 {
        assert!(secrets.get("app/missing").await.unwrap_err().is_not_found());
    }
    let stats = secrets.stats();
    assert_eq!((stats.gets, stats.errors), (2, 2));
    assert_eq!((stats.cache.hits, stats.cache.negative_hits), (0, 1));
    assert_eq!(
        stats.cache.misses, 1,
        "only the first read may ask the backend"
    );
}

#[tokio::test]
async fn json_secrets_and_fields_never_echo_the_value() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Db {
        user: String,
        port: u16,
    }
    let secrets = Secrets::builder()
        .store(EnvStore::from_vars([
            (
                "DB",
                r#"{"user":"app","password":"s3cr3t-pw","port":5432,"opts":{"tls":true}}"#,
            ),
            ("BROKEN", r#"{"password": "leaky-s3cr3t" "#),
            ("WRONG", r#"{"user": "leaky-user", "port": "leaky-port"}"#),
        ]))
        .build()
        .unwrap();
    let db: Db = secrets.get_json("db").await.unwrap();
    assert_eq!(
        db,
        Db {
            user: "app".into(),
            port: 5432
        }
    );
    let password = secrets.get_field("db", "password").await.unwrap();
    assert_eq!(password.expose_str().unwrap(), "s3cr3t-pw");
    let opts = secrets.get_field("db", "opts").await.unwrap();
    assert_eq!(opts.expose_str().unwrap(), r#"{"tls":true}"#);
    assert_eq!(
        secrets
            .get_field("db", "port")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "5432"
    );

    let missing = secrets.get_field("db", "nope").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::InvalidValue);
    for err in [
        secrets.get_field("broken", "password").await.unwrap_err(),
        secrets.get_json::<Db>("wrong").await.unwrap_err(),
        secrets.get_json::<Db>("broken").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        for text in [format!("{err}"), format!("{err:?}")] {
            assert!(!text.contains("leaky"), "{text}");
        }
    }
}

#[tokio::test]
async fn subscribers_see_puts_rotations_and_deletes_of_their_key_only() {
    let place = Place::new();
    let secrets = Secrets::builder()
        .store(place.store("s.enc"))
        .build()
        .unwrap();
    let k = key("svc/token");
    let mut watch = secrets.subscribe(k.clone());
    let mut all = secrets.subscribe_all();

    let v1 = secrets.put(&k, "one").await.unwrap();
    secrets.put("svc/unrelated", "x").await.unwrap();
    let v2 = secrets.rotate(&k).await.unwrap();
    // Rotation writes a new version that the next read sees.
    let rotated = secrets.get(&k).await.unwrap();
    assert_eq!(rotated.version, v2);
    assert_eq!(rotated.value.len(), 44, "32 bytes in base64");
    let custom = Generator::custom(|| Ok(SecretValue::from("from-my-generator")));
    let v3 = secrets.rotate_with(&k, &custom).await.unwrap();
    assert_eq!(
        secrets.get(&k).await.unwrap().value.expose_str().unwrap(),
        "from-my-generator"
    );
    secrets.delete(&k).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let change = watch.recv().await.unwrap();
        seen.push((change.version, change.cause));
    }
    assert_eq!(
        seen,
        vec![
            (Some(v1), ChangeCause::Put),
            (Some(v2.clone()), ChangeCause::Put),
            (Some(v3), ChangeCause::Put),
            (None, ChangeCause::Delete),
        ]
    );
    assert!(watch.try_recv().is_err(), "no change for other keys");
    let mut keys = Vec::new();
    while let Ok(change) = all.try_recv() {
        keys.push(change.key.as_str().to_owned());
    }
    assert_eq!(keys.len(), 5);
    assert!(keys.contains(&"svc/unrelated".to_owned()));
}

#[tokio::test]
async fn subscribers_see_changes_a_reload_discovers() {
    let place = Place::new();
    let store = place.store("s.enc");
    let clock = ManualClock::new();
    let secrets = Secrets::builder()
        .store(store.clone())
        .cache(
            CacheConfig::builder()
                .ttl(Duration::from_secs(10))
                .clock(clock.clock())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let k = key("elsewhere");
    store.put(&k, "old".into()).await.unwrap();
    secrets.get(&k).await.unwrap();
    let mut watch = secrets.subscribe(k.clone());
    // Another process changes it behind our back.
    let new = store.put(&k, "new".into()).await.unwrap();
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        secrets.get(&k).await.unwrap().value.expose_str().unwrap(),
        "new"
    );
    let change = watch.recv().await.unwrap();
    assert_eq!(
        (change.version, change.cause),
        (Some(new), ChangeCause::Discovered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // rotate_every still works as documented
async fn scheduled_rotation_fires_until_stopped() {
    let place = Place::new();
    let secrets = Secrets::builder()
        .store(place.store("s.enc"))
        .build()
        .unwrap();
    let k = key("rotating/key");
    secrets.put(&k, "initial").await.unwrap();
    let mut watch = secrets.subscribe(k.clone());
    let handle = secrets.rotate_every(k.clone(), Duration::from_millis(100));
    assert_eq!(handle.key(), &k);
    for _ in 0..2 {
        let change = tokio::time::timeout(Duration::from_secs(10), watch.recv())
            .await
            .expect("a scheduled rotation within 10 s")
            .unwrap();
        assert_eq!(change.cause, ChangeCause::Put);
    }
    handle.stop().await;
    let after_stop = secrets.versions(&k).await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(secrets.versions(&k).await.unwrap().len(), after_stop);
    assert!(secrets.stats().rotations >= 2);
    assert_ne!(
        secrets.get(&k).await.unwrap().value.expose_str().unwrap(),
        "initial"
    );

    // Dropping the handle stops the schedule too.
    let handle = secrets.rotate_every(k.clone(), Duration::from_millis(50));
    drop(handle);
    let count = secrets.versions(&k).await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(secrets.versions(&k).await.unwrap().len(), count);
}

#[tokio::test(start_paused = true)]
#[allow(deprecated)] // rotate_every still works as documented
async fn scheduled_rotation_follows_the_interval_in_paused_time() {
    let secrets = Secrets::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let k = key("paused/key");
    let handle = secrets.rotate_every(k.clone(), Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_secs(3600 * 3 + 1)).await;
    assert_eq!(secrets.stats().rotations, 3);
    drop(handle);
    tokio::time::sleep(Duration::from_secs(3600 * 2)).await;
    assert_eq!(secrets.stats().rotations, 3);
}

const PLAIN: &str = "plain-text-secret-value";

#[tokio::test]
async fn audit_file_holds_one_json_line_per_operation_and_no_value() {
    let place = Place::new();
    let audit = place.path("audit.jsonl");
    let secrets = Secrets::builder()
        .store(place.store("s.enc"))
        .audit_file(&audit)
        .build()
        .unwrap();
    let k = key("audited/key");
    secrets.put(&k, PLAIN).await.unwrap(); // 1 put
    secrets.get(&k).await.unwrap(); // 2 get hit (the put cached its value)
    secrets.get(&k).await.unwrap(); // 3 get hit
    secrets.rotate(&k).await.unwrap(); // 4 rotate
    let rotated = secrets.get(&k).await.unwrap(); // 5 get hit (likewise)
    secrets.list("audited").await.unwrap(); // 6 list
    secrets.versions(&k).await.unwrap(); // 7 versions
    secrets.delete(&k).await.unwrap(); // 8 delete
    secrets.get(&k).await.unwrap_err(); // 9 get not found
    secrets.get("bad//name").await.unwrap_err(); // 10 refused
    secrets.flush_audit();

    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, Option<String>)> = lines
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap().to_owned(),
                l["outcome"].as_str().unwrap().to_owned(),
                l["cache"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let s = |op: &str, outcome: &str, cache: Option<&str>| {
        (op.to_owned(), outcome.to_owned(), cache.map(str::to_owned))
    };
    assert_eq!(
        summary,
        vec![
            s("put", "ok", None),
            s("get", "ok", Some("miss")),
            s("get", "ok", Some("hit")),
            s("rotate", "ok", None),
            s("get", "ok", Some("hit")),
            s("list", "ok", None),
            s("versions", "ok", None),
            s("delete", "ok", None),
            s("get", "not_found", Some("miss")),
            s("get", "invalid_key", None),
        ]
    );
    for line in &lines[..9] {
        assert_eq!(line["backend"], "local");
        assert!(line["time"].as_str().unwrap().contains('T'));
        assert!(line["latency_us"].is_u64());
    }
    assert_eq!(lines[0]["key"], "audited/key");
    assert!(!text.contains(PLAIN), "{text}");
    assert!(!text.contains(rotated.value.expose_str().unwrap()));

    // Dropping the last Secrets flushes what is queued.
    let secrets2 = secrets.clone();
    drop(secrets);
    secrets2.get("x/y").await.unwrap_err();
    drop(secrets2);
    let lines_after = std::fs::read_to_string(&audit).unwrap().lines().count();
    assert_eq!(lines_after, 11);
}

/// A `MakeWriter` that collects everything a tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[test]
fn tracing_gets_audit_events_without_values() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let place = Place::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Process-wide, not `with_default`: tracing caches each call site's interest, and a
    // scoped subscriber on this thread loses events whose interest another test thread (with
    // no subscriber) already cached as "never". This is the only test that installs one.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    {
        runtime.block_on(async {
            let (switch, mode, _) = Switch::store();
            let secrets = Secrets::builder()
                .store(switch)
                .mirror(place.mirror())
                .build()
                .unwrap();
            let k = key("traced/key");
            secrets.put(&k, PLAIN).await.unwrap();
            secrets.get(&k).await.unwrap();
            secrets.get(&k).await.unwrap();
            secrets.rotate(&k).await.unwrap();
            secrets.get_field(&k, "nope").await.unwrap_err();
            secrets.sync_mirror().await;
            mode.store(DOWN, Ordering::SeqCst);
            secrets.cache().invalidate(&k);
            secrets.get(&k).await.unwrap();
            secrets.put(&k, PLAIN).await.unwrap_err();
            secrets.health().await;
        });
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("strongroom::audit"), "{text}");
    assert!(
        text.contains("op=\"get\"") || text.contains("op=get"),
        "{text}"
    );
    assert!(
        text.contains("cache=\"hit\"") || text.contains("cache=hit"),
        "{text}"
    );
    assert!(text.contains("mirror"), "{text}");
    assert!(!text.contains(PLAIN), "{text}");
}

#[tokio::test]
async fn health_is_healthy_degraded_or_unhealthy() {
    let (switch, mode, _) = Switch::store();
    let secrets = Secrets::builder().store(switch).build().unwrap();
    let health = secrets.health().await;
    assert_eq!(
        (health.status, health.backend),
        (HealthStatus::Healthy, "memory")
    );
    assert!(health.reason.is_none() && health.is_healthy());

    // Down with nothing to serve from: unhealthy.
    mode.store(DOWN, Ordering::SeqCst);
    let health = secrets.health().await;
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(health.reason.unwrap().contains("connection refused"));
    assert!(secrets.is_degraded());

    // Something cached: degraded.
    mode.store(UP, Ordering::SeqCst);
    secrets.put("a/b", "v").await.unwrap();
    secrets.get("a/b").await.unwrap();
    assert!(!secrets.is_degraded(), "recovery is automatic");
    mode.store(DOWN, Ordering::SeqCst);
    let health = secrets.health().await;
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!(health.status.to_string(), "degraded");

    // Refused credentials: unhealthy whatever is cached.
    mode.store(REFUSING, Ordering::SeqCst);
    let health = secrets.health().await;
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(health.reason.unwrap().contains("not authenticated"));

    mode.store(UP, Ordering::SeqCst);
    assert!(secrets.health().await.is_healthy());
    assert!(!secrets.is_degraded());
}

/// The health probe sees the primary whatever the circuit breaker says, and the breaker
/// hears the probe: `Healthy` never comes with `breaker_open`.
#[tokio::test]
async fn a_health_probe_counts_for_the_circuit_breaker_and_one_that_reaches_the_primary_closes_it()
{
    let (switch, mode, calls) = Switch::store();
    let clock = ManualClock::new();
    let secrets = Secrets::builder()
        .store(switch)
        .cache(
            CacheConfig::builder()
                // A cool-down the test never reaches: only the probe can close it.
                .breaker(2, Duration::from_secs(600))
                .clock(clock.clock())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    secrets.put("app/k", "v").await.unwrap();

    // Two probes that find the primary down open the breaker, as two failed reads would.
    mode.store(DOWN, Ordering::SeqCst);
    assert!(!secrets.health().await.breaker_open);
    let health = secrets.health().await;
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(health.breaker_open);
    assert_eq!(secrets.stats().cache.breaker_opened, 1);
    // Reads are refused without reaching it; a probe still reaches it.
    let before = calls.load(Ordering::SeqCst);
    let err = secrets.get("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "refused by the breaker"
    );
    assert_eq!(secrets.stats().cache.breaker_refused, 1);
    assert!(secrets.health().await.breaker_open);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "the probe went out"
    );
    assert_eq!(
        secrets.stats().cache.breaker_opened,
        1,
        "still the one opening"
    );

    // The primary is back: the next probe says so and closes the breaker, long before its
    // cool-down would have let a read through.
    mode.store(UP, Ordering::SeqCst);
    let health = secrets.health().await;
    assert_eq!(
        (health.status, health.breaker_open),
        (HealthStatus::Healthy, false)
    );
    assert!(!secrets.stats().cache.breaker_open);
    let before = calls.load(Ordering::SeqCst);
    let got = secrets.get("app/k").await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "v");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "the read reached it"
    );
    assert_eq!(secrets.stats().cache.breaker_refused, 1);
}

#[tokio::test]
async fn stale_cache_and_mirror_serve_reads_while_the_primary_is_down() {
    let place = Place::new();
    let (switch, mode, calls) = Switch::store();
    let clock = ManualClock::new();
    let secrets = Secrets::builder()
        .store(switch)
        .cache(
            CacheConfig::builder()
                .ttl(Duration::from_secs(60))
                .max_stale(Duration::from_secs(600))
                .clock(clock.clock())
                .build()
                .unwrap(),
        )
        .mirror(place.mirror())
        .build()
        .unwrap();
    let (stale, mirrored, never) = (key("k/stale"), key("k/mirrored"), key("k/never"));
    secrets.put(&stale, "stale-value").await.unwrap();
    secrets.put(&mirrored, "mirrored-value").await.unwrap();
    secrets.put(&never, "never-read").await.unwrap();
    let mirrored_version = secrets.get(&mirrored).await.unwrap().version;
    secrets.get(&stale).await.unwrap();
    secrets.sync_mirror().await;

    mode.store(DOWN, Ordering::SeqCst);
    clock.advance(Duration::from_secs(61));
    // Expired but within max_stale: served stale.
    let got = secrets.get(&stale).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "stale-value");
    assert_eq!(secrets.stats().cache.stale_served, 1);
    assert!(secrets.is_degraded());
    // Not in the cache at all: from the mirror, with the primary's version.
    secrets.cache().invalidate(&mirrored);
    let got = secrets.get(&mirrored).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "mirrored-value");
    assert_eq!(got.version, mirrored_version);
    assert!(got.metadata.tags.is_empty());
    assert_eq!(secrets.stats().mirror_reads, 1);
    // The mirror holds what was written through the facade as well.
    secrets.cache().invalidate(&never);
    assert_eq!(
        secrets
            .get(&never)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "never-read"
    );
    // Unknown everywhere: the primary's Unavailable.
    let err = secrets.get("k/unknown").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // Writes fail while down.
    let err = secrets.put(&stale, "new").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(secrets.health().await.status, HealthStatus::Degraded);

    // Recovery is automatic, within one cool-down of the circuit breaker that the failures
    // above opened.
    assert!(secrets.stats().cache.breaker_open);
    mode.store(UP, Ordering::SeqCst);
    clock.advance(strongroom_cache::DEFAULT_BREAKER_COOL_DOWN);
    let before = calls.load(Ordering::SeqCst);
    secrets.cache().invalidate(&stale);
    assert_eq!(
        secrets
            .get(&stale)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "stale-value"
    );
    assert!(calls.load(Ordering::SeqCst) > before);
    assert!(!secrets.is_degraded());
    assert!(secrets.health().await.is_healthy());
}

#[tokio::test]
async fn a_restarted_process_reads_from_the_mirror_over_a_dead_backend() {
    let place = Place::new();
    {
        let secrets = Secrets::builder()
            .store(place.store("s.enc"))
            .mirror(place.mirror())
            .build()
            .unwrap();
        secrets
            .put("db/url", "postgres://u:pw@db/app")
            .await
            .unwrap();
        secrets.get("db/url").await.unwrap();
        secrets.put("db/deleted", "gone-soon").await.unwrap();
        secrets.get("db/deleted").await.unwrap();
        secrets.delete("db/deleted").await.unwrap();
        secrets.sync_mirror().await;
    }
    // The mirror file is encrypted: no value in it.
    let raw = std::fs::read(place.path("mirror.enc")).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"pw@db/"));

    let (switch, mode, _) = Switch::store();
    mode.store(DOWN, Ordering::SeqCst);
    let config_mirror = FileStore::builder(place.path("mirror.enc"))
        .open(place.master())
        .unwrap();
    let secrets = Secrets::builder()
        .store(switch)
        .mirror(config_mirror)
        .build()
        .unwrap();
    assert_eq!(
        secrets
            .get("db/url")
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "postgres://u:pw@db/app"
    );
    assert_eq!(
        secrets.get("db/deleted").await.unwrap_err().kind(),
        ErrorKind::Unavailable,
        "a deleted secret is not resurrected by the mirror"
    );
    assert_eq!(secrets.health().await.status, HealthStatus::Degraded);
}

#[tokio::test]
async fn config_from_toml_builds_a_working_secrets() {
    let place = Place::new();
    let toml = format!(
        r#"
        [backend]
        kind = "local"
        path = "{store}"
        key_file = "{key}"
        create_if_missing = true

        [cache]
        ttl_secs = 30
        max_entries = 100
        max_stale_secs = 60
        refresh_ahead = 0.25

        [audit]
        file = "{audit}"

        [mirror]
        path = "{mirror}"
        key_file = "{key}"

        [health]
        probe_key = "probe/key"
        "#,
        store = place.path("s.enc").display(),
        key = place.key_file.display(),
        audit = place.path("audit.jsonl").display(),
        mirror = place.path("mirror.enc").display(),
    );
    let file = place.path("strongroom.toml");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(toml.as_bytes())
        .unwrap();
    let config = Config::from_toml_file(&file).unwrap();
    assert_eq!(config.backend.kind(), "local");
    assert_eq!(config.cache.ttl_secs, Some(30));
    let secrets = Secrets::from_config(&config).unwrap();
    secrets.put("from/config", "v").await.unwrap();
    assert_eq!(
        secrets
            .get("from/config")
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "v"
    );
    assert_eq!(secrets.cache().config().ttl(), Duration::from_secs(30));
    assert!(secrets.health().await.is_healthy());
    secrets.flush_audit();
    assert_eq!(
        std::fs::read_to_string(place.path("audit.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2,
        "a put and a get; health probes are not secret operations"
    );

    // Typos are refused, with the field named.
    let err = Config::from_toml_str("[backend]\nkind = \"local\"\npath = \"x\"\nkey_fil = \"y\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("key_fil"), "{err}");
    let err = Config::from_toml_str("[backend]\nkind = \"ftp\"\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn config_sections_for_every_backend_parse() {
    let config = Config::from_toml_str(
        r#"
        [backend]
        kind = "vault"
        address = "https://127.0.0.1:8200"
        namespace = "team"
        mount = "kv"
        prefix = "apps/web"
        [backend.auth]
        method = "approle"
        role_id = "r-1"
        secret_id_env = "APP_SECRET_ID"
        "#,
    )
    .unwrap();
    let BackendConfig::Vault(vault) = &config.backend else {
        panic!("{config:?}")
    };
    assert_eq!(vault.mount.as_deref(), Some("kv"));
    assert!(vault.auth.is_some());
    if cfg!(not(feature = "vault")) {
        let err = Secrets::from_config(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.to_string().contains("built without the vault feature"),
            "{err}"
        );
    }

    let config = Config::from_toml_str(
        "[backend]\nkind = \"aws\"\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:4566\"\nprefix = \"app/\"\n",
    )
    .unwrap();
    assert_eq!(config.backend.kind(), "aws");
    // With the feature (cargo unifies it in when the CLI is in the same build) the store is
    // built and its credentials load on first use; without it, the error says so.
    let built = Secrets::from_config(&config);
    #[cfg(feature = "aws")]
    assert_eq!(built.unwrap().backend(), "aws");
    #[cfg(not(feature = "aws"))]
    assert!(built.unwrap_err().to_string().contains("aws feature"));

    let config = Config::from_toml_str("[backend]\nkind = \"env\"\nprefix = \"MYAPP\"\n").unwrap();
    assert_eq!(config.backend.kind(), "env");
    let config =
        Config::from_toml_str("[backend]\nkind = \"dir\"\npath = \"/run/secrets\"\n").unwrap();
    assert_eq!(config.backend.kind(), "dir");
}

#[test]
fn config_from_environment_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let config = Config::from_env_with(vars(&[
        ("STRONGROOM_BACKEND", "local"),
        ("STRONGROOM_STORE", "/data/s.enc"),
        ("STRONGROOM_KEY_FILE", "/etc/k"),
        ("STRONGROOM_CACHE_TTL", "15"),
        ("STRONGROOM_AUDIT_FILE", "/var/log/a.jsonl"),
        ("STRONGROOM_MIRROR", "/data/mirror.enc"),
    ]))
    .unwrap();
    let BackendConfig::Local(local) = &config.backend else {
        panic!()
    };
    assert_eq!(local.path, Path::new("/data/s.enc"));
    assert_eq!(local.key_source(), KeySource::file("/etc/k"));
    assert_eq!(config.cache.ttl_secs, Some(15));
    assert!(config.audit.file.is_some() && config.mirror.is_some());

    let config = Config::from_env_with(vars(&[("STRONGROOM_BACKEND", "env")])).unwrap();
    assert_eq!(config.backend.kind(), "env");
    let err = Config::from_env_with(vars(&[])).unwrap_err();
    assert!(err.to_string().contains("STRONGROOM_STORE"), "{err}");
    let err = Config::from_env_with(vars(&[("STRONGROOM_BACKEND", "nope")])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Config::from_env_with(vars(&[
        ("STRONGROOM_BACKEND", "env"),
        ("STRONGROOM_CACHE_TTL", "soon"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("STRONGROOM_CACHE_TTL"), "{err}");
}

#[test]
fn store_specs_parse_and_print() {
    let table = [
        (
            "local:/tmp/s.enc",
            StoreSpec::Local {
                path: "/tmp/s.enc".into(),
            },
        ),
        (
            "dir:/run/secrets",
            StoreSpec::Dir {
                path: "/run/secrets".into(),
            },
        ),
        ("env:", StoreSpec::Env { prefix: None }),
        (
            "env:MYAPP",
            StoreSpec::Env {
                prefix: Some("MYAPP".into()),
            },
        ),
        (
            "vault:",
            StoreSpec::Vault {
                mount: None,
                prefix: None,
            },
        ),
        (
            "vault:kv",
            StoreSpec::Vault {
                mount: Some("kv".into()),
                prefix: None,
            },
        ),
        (
            "vault:kv/a/b",
            StoreSpec::Vault {
                mount: Some("kv".into()),
                prefix: Some("a/b".into()),
            },
        ),
        ("aws:", StoreSpec::Aws { prefix: None }),
        (
            "aws:prod/app",
            StoreSpec::Aws {
                prefix: Some("prod/app".into()),
            },
        ),
    ];
    for (text, want) in table {
        let spec: StoreSpec = text.parse().unwrap();
        assert_eq!(spec, want, "{text}");
        assert_eq!(spec.to_string(), text);
    }
    for bad in ["local:", "dir:", "nothing", "s3:bucket"] {
        assert_eq!(
            StoreSpec::parse(bad).unwrap_err().kind(),
            ErrorKind::Config,
            "{bad}"
        );
    }
    #[cfg(not(feature = "vault"))]
    assert!(StoreSpec::parse("vault:kv").unwrap().open().is_err());
}

/// Fills a local store with three keys, two of them with history.
async fn fill(store: &FileStore) -> Vec<(SecretName, Vec<&'static str>)> {
    let data = vec![
        (key("app/a"), vec!["a1", "a2", "a3"]),
        (key("app/b"), vec!["b1"]),
        (key("other/c"), vec!["c1", "c2"]),
    ];
    for (k, values) in &data {
        for v in values {
            store.put(k, (*v).into()).await.unwrap();
        }
    }
    data
}

async fn values_of(store: &dyn SecretStore, k: &SecretName) -> Vec<String> {
    let mut out = Vec::new();
    for info in store.versions(k).await.unwrap() {
        let secret = store.get_version(k, &info.version).await.unwrap();
        out.push(secret.value.expose_str().unwrap().to_owned());
    }
    out
}

#[tokio::test]
async fn migration_between_local_stores_copies_every_value() {
    let place = Place::new();
    let from = place.store("from.enc");
    let data = fill(&from).await;

    // Dry run: nothing written.
    let to = place.store("dry.enc");
    let report = migrate(&from, &to, &MigrationOptions::new().dry_run(true), |_| {})
        .await
        .unwrap();
    assert!(report.dry_run && report.is_success());
    assert_eq!((report.copied.len(), report.versions_written), (3, 0));
    assert!(to.list("").await.unwrap().is_empty());

    // Latest versions only.
    let to = place.store("latest.enc");
    let mut progress = Vec::new();
    let report = migrate(&from, &to, &MigrationOptions::new(), |p| {
        progress.push((p.done, p.total, p.key.as_str().to_owned()));
    })
    .await
    .unwrap();
    assert_eq!((report.copied.len(), report.versions_written), (3, 3));
    assert_eq!(progress.len(), 3);
    assert_eq!(progress[2].0, 3);
    for (k, values) in &data {
        assert_eq!(
            values_of(&to, k).await,
            vec![values.last().unwrap().to_string()]
        );
    }
    // Again: everything is skipped.
    let report = migrate(&from, &to, &MigrationOptions::new(), |_| {})
        .await
        .unwrap();
    assert_eq!((report.copied.len(), report.skipped.len()), (0, 3));

    // All versions, with a prefix.
    let to = place.store("all.enc");
    let options = MigrationOptions::new().all_versions(true).prefix("app/");
    let report = migrate(&from, &to, &options, |_| {}).await.unwrap();
    assert_eq!((report.copied.len(), report.versions_written), (2, 4));
    for (k, values) in &data[..2] {
        assert_eq!(&values_of(&to, k).await, values);
    }
    assert!(to.get(&key("other/c")).await.unwrap_err().is_not_found());
}

/// Fails the n-th write (counting from 1) to the reference store, as an outage would.
struct FailingWrites {
    writes: AtomicUsize,
    fail_at: usize,
}

impl FailingWrites {
    /// `target` (sharing its secrets) with its `fail_at`-th write failing.
    fn over(target: &MemoryStore, fail_at: usize) -> MemoryStore {
        let hook = Self {
            writes: AtomicUsize::new(0),
            fail_at,
        };
        target.clone().with_hook(Arc::new(hook))
    }
}

#[async_trait]
impl Hook for FailingWrites {
    async fn call(&self, operation: Operation, _: Option<&SecretName>) -> Result<(), Error> {
        if operation == Operation::Put
            && self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at
        {
            return Err(Error::unavailable("memory", "connection reset"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_failure_midway_leaves_no_partial_secret() {
    let place = Place::new();
    let from = place.store("from.enc");
    let data = fill(&from).await;
    // app/a has three versions: the second write fails.
    let target = MemoryStore::new();
    let to = FailingWrites::over(&target, 2);
    // A key the target already had keeps its value.
    target.insert(&key("other/c"), "pre-existing");
    let options = MigrationOptions::new().all_versions(true);
    let report = migrate(&from, &to, &options, |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    let failure = &report.failed[0];
    assert_eq!(
        (failure.key.as_str(), failure.kind),
        ("app/a", ErrorKind::Unavailable)
    );
    assert!(failure.message.contains("connection reset"));
    assert!(target.get(&key("app/a")).await.unwrap_err().is_not_found());
    assert!(
        target.versions(&key("app/a")).await.is_err(),
        "purged, history and all"
    );
    assert_eq!(report.copied.len(), 2);
    assert_eq!(values_of(&target, &data[1].0).await, vec!["b1"]);

    // Failing on a key the target already held writes its previous value back: other/c
    // gets c1, its c2 fails, and "pre-existing" is current again.
    let target = MemoryStore::new();
    target.insert(&key("other/c"), "pre-existing");
    let to = FailingWrites::over(&target, 2);
    let options = MigrationOptions::new().all_versions(true).prefix("other/");
    let report = migrate(&from, &to, &options, |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].key.as_str(), "other/c");
    assert_eq!(
        target
            .get(&key("other/c"))
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "pre-existing"
    );
}

#[tokio::test]
async fn debug_output_never_shows_values() {
    let place = Place::new();
    let secrets = Secrets::builder()
        .store(place.store("s.enc"))
        .mirror(place.mirror())
        .build()
        .unwrap();
    secrets.put("dbg/key", PLAIN).await.unwrap();
    let secret = secrets.get("dbg/key").await.unwrap();
    for text in [
        format!("{secrets:?}"),
        format!("{secret:?}"),
        format!("{:?}", secrets.stats()),
        format!("{:?}", secrets.health().await),
        format!("{:?}", Generator::custom(|| Ok(SecretValue::from(PLAIN)))),
    ] {
        assert!(!text.contains(PLAIN), "{text}");
    }
    assert_eq!(CacheStatus::Hit.as_str(), "hit");
}

#[tokio::test]
async fn a_prefixed_store_names_keys_without_the_prefix() {
    let place = Place::new();
    let store = place.store("s.enc");
    store
        .put(&key("apps/web/db"), "web-db".into())
        .await
        .unwrap();
    store
        .put(&key("apps/web/api/token"), "web-api".into())
        .await
        .unwrap();
    store
        .put(&key("apps/other/db"), "other-db".into())
        .await
        .unwrap();
    let web = Scoped::new(store.clone(), "/apps/web/").unwrap();
    assert_eq!(web.scope().as_str(), "apps/web");
    let secret = web.get(&key("db")).await.unwrap();
    assert_eq!(
        (secret.key.as_str(), secret.value.expose_str().unwrap()),
        ("db", "web-db")
    );
    assert_eq!(
        web.list("").await.unwrap(),
        vec![key("api/token"), key("db")]
    );
    assert_eq!(web.list("api").await.unwrap(), vec![key("api/token")]);
    let version = web.put(&key("new"), "n".into()).await.unwrap();
    assert_eq!(
        store
            .get_version(&key("apps/web/new"), &version)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "n"
    );
    web.delete(&key("new")).await.unwrap();
    assert!(
        store
            .get(&key("apps/web/new"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(web.versions(&key("db")).await.unwrap().len(), 1);
}

/// With the vault feature, a configured Vault that is not running makes a Secrets whose
/// reads fail as unavailable and whose health is unhealthy (nothing to fall back on).
#[cfg(feature = "vault")]
#[tokio::test]
async fn an_unreachable_vault_is_unhealthy() {
    let config = Config::from_toml_str(
        r#"
        [backend]
        kind = "vault"
        address = "http://127.0.0.1:1"
        mount = "secret"
        prefix = "apps/web"
        [backend.auth]
        method = "token"
        token_env = "CARGO_PKG_NAME"
        "#,
    )
    .unwrap();
    let secrets = Secrets::from_config(&config).unwrap();
    assert_eq!(secrets.backend(), "vault");
    let err = secrets.get("db/password").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let health = secrets.health().await;
    assert_eq!(health.status, HealthStatus::Unhealthy, "{health:?}");
}

/// `Secrets` keeps the `SecretStore` contract over a local file and over the reference
/// store, and so does a `Scoped` over it (a folder, never a sibling that shares letters).
#[tokio::test]
async fn secrets_keeps_the_store_contract() {
    use strongroom_core::testing::conformance;

    let place = Place::new();
    let over_file = Secrets::builder()
        .store(place.store("conformance.enc"))
        .build()
        .unwrap();
    let over_memory = Secrets::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    for secrets in [over_file, over_memory] {
        conformance::run(&secrets, "conformance").await;
        let scoped = Scoped::new(secrets.clone(), "conformance/app").unwrap();
        conformance::scoped(&secrets, &scoped, "conformance/app").await;
        let shared: Arc<dyn SecretStore> = Arc::new(secrets.clone());
        conformance::read_write(&*shared, "conformance/dyn").await;
        // Every call went through the facade's own counters.
        assert!(secrets.stats().puts > 20 && secrets.stats().deletes > 5);
    }
}
