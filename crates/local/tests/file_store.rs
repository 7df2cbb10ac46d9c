//! FileStore end to end: real files, real encryption, real processes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strongroom_core::{Error, Metadata, PutOptions, SecretName, SecretStore, SecretValue};
use strongroom_envelope::{MasterKey, Passphrase, WrappingKey};
use strongroom_local::FileStore;

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A passphrase cheap enough for tests; real stores use the default 600,000 iterations.
fn passphrase(text: &str) -> Passphrase {
    Passphrase::new(text).with_iterations(1_000)
}

#[tokio::test]
async fn a_reopened_store_has_everything_that_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let master = MasterKey::generate().unwrap();
    let store = FileStore::create(&path, master.clone()).unwrap();
    let with_meta = PutOptions::default().with_metadata(Metadata::with_description("primary db"));
    let v1 = store
        .put_with(&key("app/db"), "one".into(), &with_meta)
        .await
        .unwrap();
    let v2 = store.put(&key("app/db"), "two".into()).await.unwrap();
    store
        .put(&key("app/api"), SecretValue::new(vec![0, 255, 7]))
        .await
        .unwrap();
    drop(store);

    let store = FileStore::open(&path, master).unwrap();
    let db = store.get(&key("app/db")).await.unwrap();
    assert_eq!((db.value.expose_str().unwrap(), &db.version), ("two", &v2));
    assert_eq!(db.metadata.description.as_deref(), Some("primary db"));
    assert!(db.created.is_some());
    assert_eq!(
        store.get_version(&key("app/db"), &v1).await.unwrap().value,
        "one".into()
    );
    assert_eq!(
        store.get(&key("app/api")).await.unwrap().value.expose(),
        [0, 255, 7]
    );
    assert_eq!(
        store.list("app/").await.unwrap(),
        [key("app/api"), key("app/db")]
    );
    let many = store.get_many(&[key("app/api"), key("nope")]).await;
    assert!(many[0].is_ok() && matches!(many[1], Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn nothing_readable_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let store = FileStore::create(&path, MasterKey::generate().unwrap()).unwrap();
    store
        .put(&key("visible-name"), "plain-secret-value".into())
        .await
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for needle in [
        "visible-name",
        "plain-secret-value",
        "cGxhaW4tc2VjcmV0LXZhbHVl",
    ] {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "{needle} is on disk in clear"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_wrong_key_or_a_modified_file_is_refused_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    // Checking the file on every read, so the tampering is seen by the very next one.
    let store = FileStore::builder(&path)
        .revalidate_after(Duration::ZERO)
        .create(MasterKey::generate().unwrap())
        .unwrap();
    store.put(&key("a"), "x".into()).await.unwrap();
    let original = std::fs::read(&path).unwrap();

    let wrong = FileStore::open(&path, MasterKey::generate().unwrap()).unwrap_err();
    assert!(matches!(wrong, Error::Decrypt { .. }), "{wrong}");
    assert!(wrong.to_string().contains("secrets.enc"), "{wrong}");

    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    std::fs::write(&path, &tampered).unwrap();
    assert!(matches!(
        store.get(&key("a")).await,
        Err(Error::Decrypt { .. })
    ));
    // A write against a file it cannot read fails and leaves the file as it was.
    assert!(store.put(&key("b"), "y".into()).await.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), tampered);

    std::fs::write(&path, b"this is not a store").unwrap();
    let garbage = store.get(&key("a")).await.unwrap_err();
    assert!(matches!(garbage, Error::Backend { .. }), "{garbage}");
    assert!(
        garbage.to_string().contains("not a strongroom store"),
        "{garbage}"
    );
}

#[tokio::test]
async fn open_and_create_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let missing = FileStore::open(&path, MasterKey::generate().unwrap()).unwrap_err();
    assert!(matches!(missing, Error::Config { .. }));
    assert!(missing.to_string().contains("strongroom init"), "{missing}");

    let master = MasterKey::generate().unwrap();
    FileStore::builder(&path)
        .create_if_missing(true)
        .open(master.clone())
        .unwrap()
        .put(&key("a"), "x".into())
        .await
        .unwrap();
    let exists = FileStore::create(&path, master.clone()).unwrap_err();
    assert!(exists.to_string().contains("already exists"), "{exists}");
    // The existing store was not touched.
    let store = FileStore::open(&path, master).unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap().value, "x".into());
}

#[tokio::test]
async fn a_failed_precondition_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let store = FileStore::create(&path, MasterKey::generate().unwrap()).unwrap();
    let v1 = store.put(&key("a"), "x".into()).await.unwrap();
    store.put(&key("a"), "y".into()).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let stale = PutOptions::default().if_version(v1);
    assert!(matches!(
        store.put_with(&key("a"), "z".into(), &stale).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn delete_undelete_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        FileStore::create(dir.path().join("s.enc"), MasterKey::generate().unwrap()).unwrap();
    store.put(&key("a"), "x".into()).await.unwrap();
    store.delete(&key("a")).await.unwrap();
    assert!(matches!(
        store.get(&key("a")).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    assert!(store.list("").await.unwrap().is_empty());
    store.undelete(&key("a")).await.unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap().value, "x".into());
    store.purge(&key("a")).await.unwrap();
    assert!(matches!(
        store.get(&key("a")).await,
        Err(Error::NotFound { deleted: false, .. })
    ));
    assert!(matches!(
        store.versions(&key("a")).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn old_versions_beyond_the_limit_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder(dir.path().join("s.enc"))
        .keep_versions(2)
        .create(MasterKey::generate().unwrap())
        .unwrap();
    for n in 0..4 {
        store.put(&key("a"), format!("v{n}").into()).await.unwrap();
    }
    let versions: Vec<_> = store
        .versions(&key("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version.to_string(), v.current))
        .collect();
    assert_eq!(versions, [("3".to_owned(), false), ("4".to_owned(), true)]);
}

#[tokio::test]
async fn passphrase_stores_open_with_the_same_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let store = FileStore::create(&path, passphrase("correct horse")).unwrap();
    store.put(&key("a"), "x".into()).await.unwrap();
    let reopened = FileStore::open(&path, passphrase("correct horse")).unwrap();
    assert_eq!(reopened.get(&key("a")).await.unwrap().value, "x".into());
    let wrong = FileStore::open(&path, passphrase("battery staple")).unwrap_err();
    assert!(matches!(wrong, Error::Decrypt { .. }));
    assert!(!wrong.to_string().contains("battery"));
}

#[tokio::test]
async fn rotating_the_key_keeps_every_secret_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let old = MasterKey::generate().unwrap();
    let store = FileStore::create(&path, old.clone()).unwrap();
    store.put(&key("a"), "x".into()).await.unwrap();
    store.put(&key("a"), "y".into()).await.unwrap();

    let new: WrappingKey = passphrase("new passphrase").into();
    store.rotate_key(new).await.unwrap();
    // The same handle goes on working with the new key.
    store.put(&key("b"), "z".into()).await.unwrap();

    assert!(matches!(
        FileStore::open(&path, old),
        Err(Error::Decrypt { .. })
    ));
    let reopened = FileStore::open(&path, passphrase("new passphrase")).unwrap();
    assert_eq!(reopened.get(&key("a")).await.unwrap().value, "y".into());
    assert_eq!(reopened.versions(&key("a")).await.unwrap().len(), 2);
    assert_eq!(reopened.get(&key("b")).await.unwrap().value, "z".into());
}

#[tokio::test]
async fn a_held_lock_makes_writes_unavailable_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let store = FileStore::builder(&path)
        .lock_timeout(Duration::from_millis(200))
        .create(MasterKey::generate().unwrap())
        .unwrap();
    let lock = std::fs::File::create(dir.path().join("s.enc.lock")).unwrap();
    lock.lock().unwrap();
    let start = Instant::now();
    let err = store.put(&key("a"), "x".into()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(start.elapsed() < Duration::from_secs(5));
    // Reads do not need the lock.
    assert!(store.list("").await.unwrap().is_empty());
    drop(lock);
    store.put(&key("a"), "x".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_one_process_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        FileStore::create(dir.path().join("s.enc"), MasterKey::generate().unwrap()).unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put(&key(&format!("k/{n}")), n.to_string().into())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.list("k/").await.unwrap().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_batching_at_once_serialise_on_the_lock_and_lose_nothing() {
    // Each handle batches its own writers; the two batches take turns on the file's lock
    // and each re-reads what the other wrote, so every put of both lands.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master = MasterKey::generate().unwrap();
    let first = FileStore::create(&path, master.clone()).unwrap();
    let second = FileStore::open(&path, master.clone()).unwrap();
    let mut tasks = Vec::new();
    for (name, store) in [("one", &first), ("two", &second)] {
        for n in 0..32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..3 {
                    store
                        .put(&key(&format!("{name}/{n}")), format!("{round}").into())
                        .await?;
                }
                Ok::<_, Error>(())
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let reopened = FileStore::open(&path, master).unwrap();
    for name in ["one", "two"] {
        let keys = reopened.list(&format!("{name}/")).await.unwrap();
        assert_eq!(keys.len(), 32, "{name}");
        for k in keys {
            assert_eq!(reopened.get(&k).await.unwrap().value, "2".into());
            assert_eq!(reopened.versions(&k).await.unwrap().len(), 3);
        }
    }
}

#[test]
fn debug_output_holds_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let encoded = master.to_base64();
    let store = FileStore::create(dir.path().join("s.enc"), master).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains(encoded.as_str()), "{shown}");
    assert!(shown.contains("s.enc"));
}

// ---- two processes ----

const WRITER_ENV: &str = "STRONGROOM_LOCAL_TEST_WRITER";
const PUTS_PER_WRITER: usize = 200;

/// The child half of `two_processes_writing_at_once_lose_nothing`: does nothing unless the
/// parent started this binary with the writer variable set.
#[test]
fn writer_child() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let (store_path, rest) = spec.split_once('|').unwrap();
    let (key_path, name) = rest.split_once('|').unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = FileStore::open(store_path, MasterKey::from_file(key_path).unwrap()).unwrap();
        for n in 0..PUTS_PER_WRITER {
            store
                .put(&key(&format!("{name}/{n}")), format!("{name}-{n}").into())
                .await
                .unwrap();
        }
    });
}

#[tokio::test]
async fn two_processes_writing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("shared.enc");
    let key_path = dir.path().join("master.key");
    let master = MasterKey::generate().unwrap();
    master.write_new_file(&key_path).unwrap();
    let store = FileStore::create(&store_path, master).unwrap();

    let children: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|name| spawn_writer(&store_path, &key_path, name))
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a writer process failed: {status}");
    }

    for name in ["alpha", "beta"] {
        let keys = store.list(&format!("{name}/")).await.unwrap();
        assert_eq!(keys.len(), PUTS_PER_WRITER, "{name}");
        for n in 0..PUTS_PER_WRITER {
            let secret = store.get(&key(&format!("{name}/{n}"))).await.unwrap();
            assert_eq!(secret.value.expose_str().unwrap(), format!("{name}-{n}"));
        }
    }
}

fn spawn_writer(store: &Path, key: &Path, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--test-threads", "1", "--quiet"])
        .env(
            WRITER_ENV,
            format!("{}|{}|{name}", store.display(), key.display()),
        )
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_handle_sees_what_another_handle_wrote() {
    // Reads are served from the last decrypted state while the file is unchanged; a write by
    // anyone else replaces the file, and the next check notices.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master = MasterKey::generate().unwrap();
    FileStore::create(&path, master.clone()).unwrap();
    let strict = FileStore::builder(&path)
        .revalidate_after(Duration::ZERO)
        .open(master.clone())
        .unwrap();
    let default = FileStore::open(&path, master.clone()).unwrap();
    let writer = FileStore::open(&path, master).unwrap();
    for n in 0..20 {
        writer.put(&key("k"), format!("v{n}").into()).await.unwrap();
        // Checking on every read: seen at once.
        let seen = strict.get(&key("k")).await.unwrap();
        assert_eq!(seen.value.expose_str().unwrap(), format!("v{n}"));
        // Checking at most every millisecond (the default): seen once that has passed.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let seen = default.get(&key("k")).await.unwrap();
        assert_eq!(seen.value.expose_str().unwrap(), format!("v{n}"));
    }
    writer.delete(&key("k")).await.unwrap();
    assert!(matches!(
        strict.get(&key("k")).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
}
