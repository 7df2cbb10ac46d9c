//! The mirror cannot resurrect the past: a copy older than the maximum age is not served,
//! an unchanged value is confirmed without a rewrite on every read, and a read (or write)
//! racing a delete cannot put the deleted value back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom_cache::{CacheConfig, ManualClock};
use strongroom_core::testing::{Hook, MemoryStore, Operation};
use strongroom_core::{
    Error, ErrorKind, Metadata, PutOptions, SecretName, SecretStore, VersionId, async_trait,
};
use strongroom_envelope::MasterKey;
use strongroom_facade::{
    Config, DEFAULT_MIRROR_MAX_AGE, MIRROR_CONFIRMED_TAG, MIRROR_VERSION_TAG, Secrets,
};
use strongroom_local::FileStore;
use tempfile::TempDir;
use tokio::sync::oneshot;

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A fresh mirror file in its own directory (kept alive with it).
fn mirror() -> (TempDir, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder(dir.path().join("mirror.enc"))
        .keep_versions(1)
        .create_if_missing(true)
        .open(MasterKey::generate().unwrap())
        .unwrap();
    (dir, store)
}

/// Unix seconds `ago` before now (saturating at the epoch).
fn secs_ago(ago: Duration) -> u64 {
    SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Writes into the mirror what a facade would have mirrored: `value` at the primary's
/// `version`, confirmed at `confirmed` (a raw tag; `None` for an entry of an older version
/// of strongroom, which had no such tag).
async fn seed(
    mirror: &FileStore,
    k: &SecretName,
    value: &str,
    version: &str,
    confirmed: Option<&str>,
) {
    let mut metadata = Metadata::default().tag(MIRROR_VERSION_TAG, version);
    if let Some(confirmed) = confirmed {
        metadata = metadata.tag(MIRROR_CONFIRMED_TAG, confirmed);
    }
    mirror
        .put_with(
            k,
            value.into(),
            &PutOptions::default().with_metadata(metadata),
        )
        .await
        .unwrap();
}

/// The confirmation tag the mirror holds for `k`, in unix seconds.
async fn confirmed(mirror: &FileStore, k: &SecretName) -> u64 {
    let held = mirror.get(k).await.unwrap();
    held.metadata.tags[MIRROR_CONFIRMED_TAG].parse().unwrap()
}

/// The primary's hook: down (every call fails as an unreachable server would), or up, and
/// able to hold the next `get` (after it has found its value) until released.
#[derive(Default)]
struct Primary {
    down: AtomicBool,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl Primary {
    fn store() -> (MemoryStore, Arc<Self>) {
        let primary = Arc::new(Self::default());
        let hook: Arc<dyn Hook> = primary.clone();
        (MemoryStore::new().with_hook(hook), primary)
    }

    fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    /// Holds the next `get`: the first receiver fires when it has arrived (with its value
    /// looked up), and the get goes on when the sender is sent to or dropped.
    fn hold_next_get(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.gate.lock().unwrap() = Some((arrived_tx, release_rx));
        (arrived_rx, release_tx)
    }
}

#[async_trait]
impl Hook for Primary {
    async fn call(&self, operation: Operation, _: Option<&SecretName>) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("memory", "connection refused"));
        }
        if operation == Operation::Get {
            let gate = self.gate.lock().unwrap().take();
            if let Some((arrived, release)) = gate {
                let _ = arrived.send(());
                let _ = release.await;
            }
        }
        Ok(())
    }
}

fn facade(store: MemoryStore, mirror: &FileStore, max_age: Option<Duration>) -> Secrets {
    let mut builder = Secrets::builder().store(store).mirror(mirror.clone());
    if let Some(max_age) = max_age {
        builder = builder.mirror_max_age(max_age);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn a_mirrored_copy_older_than_the_max_age_is_unavailable_not_served() {
    let (_dir, mirror) = mirror();
    let k = key("app/db");
    let two_days_ago = secs_ago(Duration::from_secs(2 * 86_400)).to_string();
    seed(&mirror, &k, "rotated-long-ago", "7", Some(&two_days_ago)).await;
    let (store, primary) = Primary::store();
    primary.down();

    let secrets = facade(store.clone(), &mirror, None);
    let err = secrets.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let message = err.to_string();
    assert!(message.contains("maximum age"), "{message}");
    assert!(message.contains("app/db"), "{message}");
    assert!(!message.contains("rotated-long-ago"), "{message}");
    assert_eq!(secrets.stats().mirror_reads, 0);

    // The same copy under a max age it fits in is served, as the primary had it.
    let secrets = facade(store, &mirror, Some(Duration::from_secs(3 * 86_400)));
    let got = secrets.get(&k).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "rotated-long-ago");
    assert_eq!(got.version, VersionId::from("7"));
    assert!(got.metadata.tags.is_empty(), "{:?}", got.metadata.tags);
    assert_eq!(secrets.stats().mirror_reads, 1);
}

#[tokio::test]
async fn within_the_max_age_a_mirrored_copy_is_served_however_it_is_dated() {
    let (_dir, mirror) = mirror();
    let (store, primary) = Primary::store();
    primary.down();
    let twenty_hours_ago = secs_ago(Duration::from_secs(20 * 3600)).to_string();
    let cases = [
        ("tagged/recent", Some(twenty_hours_ago.as_str())),
        // Written by a version without the tag: dated by its creation (just now).
        ("untagged/new", None),
    ];
    for (name, tag) in cases {
        seed(&mirror, &key(name), "served", "1", tag).await;
    }
    let secrets = facade(store, &mirror, None);
    for (name, _) in cases {
        let got = secrets.get(name).await.unwrap();
        assert_eq!(got.value.expose_str().unwrap(), "served", "{name}");
    }
    assert_eq!(DEFAULT_MIRROR_MAX_AGE, Duration::from_secs(24 * 3600));
}

#[tokio::test]
async fn a_confirmation_time_in_the_future_or_garbled_is_treated_as_too_old() {
    let (_dir, mirror) = mirror();
    let (store, primary) = Primary::store();
    primary.down();
    let tomorrow = (secs_ago(Duration::ZERO) + 86_400).to_string();
    let cases = [
        ("future/tomorrow", tomorrow.as_str()),
        ("future/overflow", "18446744073709551615"),
        ("garbled/words", "yesterday"),
        ("garbled/negative", "-60"),
        ("garbled/huge", "999999999999999999999999999"),
        ("garbled/empty", ""),
    ];
    for (name, tag) in cases {
        seed(&mirror, &key(name), "do-not-serve", "1", Some(tag)).await;
    }
    let secrets = facade(store, &mirror, Some(Duration::from_secs(u64::MAX)));
    for (name, _) in cases {
        let err = secrets.get(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{name}");
        assert!(err.to_string().contains("maximum age"), "{name}: {err}");
    }
    assert_eq!(secrets.stats().mirror_reads, 0);
}

#[tokio::test]
async fn an_unchanged_value_is_reconfirmed_now_and_then_not_rewritten_on_every_read() {
    let (_dir, mirror) = mirror();
    let (store, _) = Primary::store();
    let (stale, fresh) = (key("app/stale-confirmation"), key("app/fresh-confirmation"));
    let stale_version = store.insert(&stale, "same");
    let fresh_version = store.insert(&fresh, "same");
    // Two hours is past the default refresh interval (an hour); ten minutes is not.
    let two_hours_ago = secs_ago(Duration::from_secs(2 * 3600));
    let ten_minutes_ago = secs_ago(Duration::from_secs(600));
    seed(
        &mirror,
        &stale,
        "same",
        stale_version.as_str(),
        Some(&two_hours_ago.to_string()),
    )
    .await;
    seed(
        &mirror,
        &fresh,
        "same",
        fresh_version.as_str(),
        Some(&ten_minutes_ago.to_string()),
    )
    .await;
    let secrets = facade(store, &mirror, None);

    let before = secs_ago(Duration::ZERO);
    for _ in 0..20 {
        secrets.cache().invalidate(&stale);
        secrets.cache().invalidate(&fresh);
        secrets.get(&stale).await.unwrap();
        secrets.get(&fresh).await.unwrap();
        secrets.sync_mirror().await;
    }
    assert_eq!(
        secrets.stats().mirror_writes,
        1,
        "forty reads of unchanged values: one rewrite, to refresh the old confirmation"
    );
    assert!(confirmed(&mirror, &stale).await >= before, "reconfirmed");
    assert_eq!(
        confirmed(&mirror, &fresh).await,
        ten_minutes_ago,
        "left alone"
    );
}

#[tokio::test]
async fn a_background_refresh_confirms_the_mirrored_copy_too() {
    // A hot key with refresh-ahead is reloaded in the background and never misses: those
    // reloads must confirm the mirror, or the copy would age out while the primary keeps
    // vouching for it.
    let (_dir, mirror) = mirror();
    let (store, _) = Primary::store();
    let k = key("app/hot");
    let version = store.insert(&k, "same");
    let clock = ManualClock::new();
    let secrets = Secrets::builder()
        .store(store)
        .cache(
            CacheConfig::builder()
                .ttl(Duration::from_secs(60))
                .refresh_ahead(0.5)
                .clock(clock.clock())
                .build()
                .unwrap(),
        )
        .mirror(mirror.clone())
        .build()
        .unwrap();
    secrets.get(&k).await.unwrap();
    secrets.sync_mirror().await;
    let two_hours_ago = secs_ago(Duration::from_secs(2 * 3600));
    seed(
        &mirror,
        &k,
        "same",
        version.as_str(),
        Some(&two_hours_ago.to_string()),
    )
    .await;

    let before = secs_ago(Duration::ZERO);
    clock.advance(Duration::from_secs(40));
    secrets.get(&k).await.unwrap();
    assert_eq!(secrets.stats().cache.misses, 1, "served from the cache");
    // The refresh runs on its own task: wait (bounded) until it has reached the mirror.
    for _ in 0..500 {
        secrets.sync_mirror().await;
        if confirmed(&mirror, &k).await >= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        confirmed(&mirror, &k).await >= before,
        "the refresh confirmed the copy"
    );
}

#[tokio::test]
async fn a_changed_value_is_rewritten_at_once() {
    let (_dir, mirror) = mirror();
    let (store, _) = Primary::store();
    let k = key("app/token");
    let version = store.insert(&k, "new");
    // Confirmed a minute ago, but a different value (and version): the primary changed it.
    let a_minute_ago = secs_ago(Duration::from_secs(60)).to_string();
    seed(&mirror, &k, "old", "0", Some(&a_minute_ago)).await;
    let secrets = facade(store, &mirror, None);
    secrets.get(&k).await.unwrap();
    secrets.sync_mirror().await;
    let held = mirror.get(&k).await.unwrap();
    assert_eq!(held.value.expose_str().unwrap(), "new");
    assert_eq!(held.metadata.tags[MIRROR_VERSION_TAG], version.as_str());
    assert_eq!(secrets.stats().mirror_writes, 1);
}

/// Which removal races the read.
#[derive(Debug, Clone, Copy)]
enum Removal {
    Delete,
    Purge,
}

#[tokio::test]
async fn a_read_racing_a_delete_or_purge_cannot_write_the_value_back() {
    for removal in [Removal::Delete, Removal::Purge] {
        let (_dir, mirror) = mirror();
        let (store, primary) = Primary::store();
        let k = key("app/revoked");
        store.insert(&k, "revoked-value");
        let secrets = facade(store, &mirror, None);

        // A read finds the value on the primary and is held there...
        let (arrived, release) = primary.hold_next_get();
        let reader = tokio::spawn({
            let secrets = secrets.clone();
            let k = k.clone();
            async move { secrets.get(&k).await }
        });
        arrived.await.unwrap();
        // ...while the key is removed, ...
        match removal {
            Removal::Delete => secrets.delete(&k).await.unwrap(),
            Removal::Purge => secrets.purge(&k).await.unwrap(),
        }
        // ...then answers with the value it found, queuing it for the mirror.
        release.send(()).unwrap();
        let raced = reader.await.unwrap().unwrap();
        assert_eq!(
            raced.value.expose_str().unwrap(),
            "revoked-value",
            "{removal:?}"
        );
        secrets.sync_mirror().await;

        assert!(
            matches!(mirror.get(&k).await, Err(Error::NotFound { .. })),
            "{removal:?}: the mirror holds the removed secret"
        );
        primary.down();
        secrets.cache().invalidate(&k);
        let err = secrets.get(&k).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{removal:?}");
        assert_eq!(secrets.stats().mirror_reads, 0, "{removal:?}");
    }
}

#[tokio::test]
async fn a_read_racing_a_write_cannot_mirror_the_older_value() {
    let (_dir, mirror) = mirror();
    let (store, primary) = Primary::store();
    let k = key("app/rotated");
    store.insert(&k, "before-rotation");
    let secrets = facade(store, &mirror, None);

    let (arrived, release) = primary.hold_next_get();
    let reader = tokio::spawn({
        let secrets = secrets.clone();
        let k = k.clone();
        async move { secrets.get(&k).await }
    });
    arrived.await.unwrap();
    secrets.put(&k, "after-rotation").await.unwrap();
    release.send(()).unwrap();
    reader.await.unwrap().unwrap();
    secrets.sync_mirror().await;

    let held = mirror.get(&k).await.unwrap();
    assert_eq!(held.value.expose_str().unwrap(), "after-rotation");
}

#[tokio::test]
async fn a_read_after_a_delete_completes_is_mirrored_again() {
    // The removal marks void only what was in flight: a key deleted and written again is
    // mirrored as usual.
    let (_dir, mirror) = mirror();
    let (store, primary) = Primary::store();
    let k = key("app/reborn");
    store.insert(&k, "first");
    let secrets = facade(store.clone(), &mirror, None);
    secrets.get(&k).await.unwrap();
    secrets.delete(&k).await.unwrap();
    store.insert(&k, "second");
    secrets.cache().invalidate(&k);
    secrets.get(&k).await.unwrap();
    secrets.sync_mirror().await;
    primary.down();
    secrets.cache().invalidate(&k);
    let got = secrets.get(&k).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "second");
}

#[test]
fn a_zero_max_age_is_refused() {
    let (_dir, mirror) = mirror();
    let err = Secrets::builder()
        .store(MemoryStore::new())
        .mirror(mirror)
        .mirror_max_age(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn the_configured_max_age_reaches_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("mirror.key");
    MasterKey::generate()
        .unwrap()
        .write_new_file(&key_file)
        .unwrap();
    let config = Config::from_toml_str(&format!(
        r#"
        [backend]
        kind = "env"
        prefix = "STRONGROOM_TEST_NOTHING"
        [mirror]
        path = "{}"
        key_file = "{}"
        max_age = "36h"
        "#,
        dir.path().join("mirror.enc").display(),
        key_file.display(),
    ))
    .unwrap();
    let secrets = Secrets::from_config(&config).unwrap();
    let debug = format!("{secrets:?}");
    assert!(debug.contains("129600s"), "{debug}");
}
