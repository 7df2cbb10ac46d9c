//! `Secrets` over a real OpenBao: reads keep working from the cache and the local mirror
//! while the server is paused or gone, health says degraded, and everything recovers when
//! the server is back. The server is a private dev server so that pausing and killing it
//! does not disturb the other suites.

use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom_aws::SecretsManagerStore;
use strongroom_core::{ErrorKind, SecretName, SecretStore};
use strongroom_envelope::MasterKey;
use strongroom_facade::{CacheConfig, HealthStatus, MigrationOptions, Secrets, migrate};
use strongroom_itests::ItestEnv;
use strongroom_local::FileStore;
use strongroom_vault::{RetryPolicy, VaultClient, VaultStore};

use crate::raw;
use crate::vault::{DevServer, free_port, start_dev_server_on};

fn key(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A Vault store that gives up quickly, so a dead server costs a test seconds, not minutes.
fn vault_store(addr: &str, token: &str) -> VaultStore {
    let client = VaultClient::builder()
        .address(addr)
        .token(token)
        .connect_timeout(Duration::from_millis(300))
        .request_timeout(Duration::from_millis(800))
        .retry_policy(RetryPolicy::default().with_max_total(Duration::from_millis(1500)))
        .build()
        .unwrap();
    VaultStore::new(&client, "secret").unwrap()
}

fn secrets(store: VaultStore, mirror: FileStore, ttl: Duration) -> Secrets {
    Secrets::builder()
        .store(store)
        .cache(
            CacheConfig::builder()
                .ttl(ttl)
                .max_stale(Duration::from_secs(3600))
                .build()
                .unwrap(),
        )
        .mirror(mirror)
        .build()
        .unwrap()
}

/// Waits until the fresh dev server accepts writes.
async fn ready(store: &VaultStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.put(&key("ready/probe"), "1".into()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the dev server never became writable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn signal(server: &DevServer, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_a_paused_and_a_dead_vault_and_health_follows() {
    let token = raw::unique("root");
    let port = free_port();
    let server = start_dev_server_on(port, &token);
    let dir = tempfile::tempdir().unwrap();
    let mirror_path = dir.path().join("mirror.enc");
    let mirror_key = MasterKey::generate().unwrap();
    let mirror = || {
        FileStore::builder(&mirror_path)
            .create_if_missing(true)
            .open(mirror_key.clone())
            .unwrap()
    };

    let primary = vault_store(&server.addr, &token);
    ready(&primary).await;
    let app = secrets(primary, mirror(), Duration::from_millis(300));
    let names: Vec<SecretName> = (0..5).map(|n| key(&format!("app/s{n}"))).collect();
    for (n, name) in names.iter().enumerate() {
        app.put(name, format!("value-{n}").as_str()).await.unwrap();
        assert_eq!(
            app.get(name).await.unwrap().value.expose_str().unwrap(),
            format!("value-{n}")
        );
    }
    app.sync_mirror().await;
    assert_eq!(app.health().await.status, HealthStatus::Healthy);

    // Paused: the server accepts connections and answers nothing (SIGSTOP). Once the cache
    // entries expire, reads are answered stale, within the client's timeout.
    signal(&server, "-STOP");
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (n, name) in names.iter().enumerate() {
        let started = Instant::now();
        let secret = app.get(name).await.unwrap();
        assert_eq!(secret.value.expose_str().unwrap(), format!("value-{n}"));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "a read waited {:?}",
            started.elapsed()
        );
    }
    assert!(app.stats().cache.stale_served >= 1);
    let write = app.put(&names[0], "new").await.unwrap_err();
    assert_eq!(
        write.kind(),
        ErrorKind::Unavailable,
        "writes fail while the primary is down"
    );
    assert_eq!(app.health().await.status, HealthStatus::Degraded);
    signal(&server, "-CONT");

    // Dead: a new process (a new Secrets, empty cache) over the same mirror still starts
    // and reads everything it read before.
    drop(server);
    let restarted = secrets(
        vault_store(&format!("http://127.0.0.1:{port}"), &token),
        mirror(),
        Duration::from_secs(60),
    );
    for (n, name) in names.iter().enumerate() {
        let secret = restarted.get(name).await.unwrap();
        assert_eq!(secret.value.expose_str().unwrap(), format!("value-{n}"));
    }
    assert!(restarted.stats().mirror_reads >= 5);
    assert_ne!(restarted.health().await.status, HealthStatus::Healthy);
    let never_read = restarted.get(&key("app/never-read")).await.unwrap_err();
    assert_eq!(never_read.kind(), ErrorKind::Unavailable);

    // Back (a dev server keeps nothing, so the data is written again): recovery is automatic.
    let server = start_dev_server_on(port, &token);
    ready(&vault_store(&server.addr, &token)).await;
    // The reads above opened the circuit breaker: until its cool-down (1 s) ends, writes are
    // refused at once with Unavailable; the first one after it is the probe that closes it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match restarted.put(&names[0], "after-recovery").await {
            Ok(_) => break,
            Err(err) if err.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("the write after recovery: {err}"),
        }
    }
    assert_eq!(
        restarted
            .get(&names[0])
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "after-recovery"
    );
    assert_eq!(restarted.health().await.status, HealthStatus::Healthy);
    assert!(!restarted.is_degraded());
}

#[tokio::test]
async fn migration_from_a_local_store_to_vault_and_back_keeps_every_value() {
    let token = raw::unique("root");
    let server = start_dev_server_on(free_port(), &token);
    let vault = vault_store(&server.addr, &token);
    ready(&vault).await;

    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let source = FileStore::create(dir.path().join("source.enc"), master.clone()).unwrap();
    let back = FileStore::create(dir.path().join("back.enc"), master).unwrap();
    let mut expected = Vec::new();
    for n in 0..12 {
        let name = key(&format!("migrate/k{n}"));
        source
            .put(&name, format!("first-{n}").into())
            .await
            .unwrap();
        source
            .put(&name, format!("second-{n}").into())
            .await
            .unwrap();
        expected.push((name, format!("second-{n}")));
    }
    // Binary values survive both directions too.
    source
        .put(&key("migrate/bin"), vec![0u8, 255, 10].into())
        .await
        .unwrap();

    let all = MigrationOptions::new()
        .all_versions(true)
        .prefix("migrate/");
    let to_vault = migrate(&source, &vault, &all, |_| {}).await.unwrap();
    assert!(to_vault.is_success(), "{:?}", to_vault.failed);
    assert_eq!((to_vault.copied.len(), to_vault.versions_written), (13, 25));
    let to_local = migrate(&vault, &back, &all, |_| {}).await.unwrap();
    assert!(to_local.is_success(), "{:?}", to_local.failed);

    for (name, value) in &expected {
        for store in [&vault as &dyn SecretStore, &back] {
            let secret = store.get(name).await.unwrap();
            assert_eq!(
                secret.value.expose_str().unwrap(),
                value,
                "{} in {}",
                name,
                store.backend()
            );
            assert_eq!(store.versions(name).await.unwrap().len(), 2);
        }
    }
    assert_eq!(
        back.get(&key("migrate/bin")).await.unwrap().value.expose(),
        [0, 255, 10]
    );

    // A second run has nothing to do.
    let again = migrate(&source, &vault, &all, |_| {}).await.unwrap();
    assert_eq!((again.copied.len(), again.skipped.len()), (0, 13));
}

/// The three real stores the README's example runs against, each under a fresh prefix.
fn every_backend(
    env: &ItestEnv,
    dir: &std::path::Path,
) -> Vec<(&'static str, Arc<dyn SecretStore>)> {
    let local = FileStore::create(dir.join("readme.enc"), MasterKey::generate().unwrap()).unwrap();
    let vault = VaultStore::new(
        &VaultClient::builder()
            .address(&env.vault_addr)
            .token(env.vault_token.as_str())
            .build()
            .unwrap(),
        &env.vault_kv_mount,
    )
    .unwrap();
    let vault = strongroom_facade::Scoped::new(vault, &raw::unique("readme")).unwrap();
    let aws = SecretsManagerStore::builder()
        .client(crate::aws::localstack(env))
        .prefix(format!("{}/", raw::unique("readme")))
        .build_lazy()
        .unwrap();
    vec![
        ("local", Arc::new(local)),
        ("vault", Arc::new(vault)),
        ("aws", Arc::new(aws)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_flow_works_on_every_backend() {
    let env = ItestEnv::load();
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in every_backend(&env, dir.path()) {
        let secrets = Secrets::builder().store(store).build().unwrap();
        let k = key("app/api-key");
        secrets.put(&k, "first").await.unwrap();
        assert_eq!(
            secrets.get(&k).await.unwrap().value.expose_str().unwrap(),
            "first",
            "{name}"
        );

        let mut changes = secrets.subscribe(k.clone());
        let version = secrets.rotate(&k).await.unwrap();
        let change = changes.recv().await.unwrap();
        assert_eq!(change.version, Some(version.clone()), "{name}");
        let rotated = secrets.get(&k).await.unwrap();
        assert_eq!(rotated.version, version, "{name}");
        assert_ne!(rotated.value.expose_str().unwrap(), "first", "{name}");
        assert_eq!(
            secrets.health().await.status,
            HealthStatus::Healthy,
            "{name}"
        );
        secrets.cache().invalidate(&k);
        assert_eq!(
            secrets.get(&k).await.unwrap().version,
            version,
            "{name}: the backend agrees"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_local_to_vault_to_aws_to_local_keeps_every_value() {
    let env = ItestEnv::load();
    let dir = tempfile::tempdir().unwrap();
    let stores = every_backend(&env, dir.path());
    let source = FileStore::create(
        dir.path().join("chain-source.enc"),
        MasterKey::generate().unwrap(),
    )
    .unwrap();
    let mut expected = Vec::new();
    for n in 0..6 {
        let name = key(&format!("chain/k{n}"));
        source
            .put(&name, format!("value-{n}").into())
            .await
            .unwrap();
        expected.push((name, format!("value-{n}")));
    }
    source
        .put(&key("chain/bin"), vec![0u8, 200, 10].into())
        .await
        .unwrap();

    // local -> vault -> aws -> a fresh local store, each hop from the previous one.
    let back = FileStore::create(
        dir.path().join("chain-back.enc"),
        MasterKey::generate().unwrap(),
    )
    .unwrap();
    let hops: [&dyn SecretStore; 4] = [&source, &*stores[1].1, &*stores[2].1, &back];
    let options = MigrationOptions::new().prefix("chain/");
    for pair in hops.windows(2) {
        let report = migrate(pair[0], pair[1], &options, |_| {}).await.unwrap();
        assert!(
            report.is_success(),
            "{} -> {}: {:?}",
            pair[0].backend(),
            pair[1].backend(),
            report.failed
        );
        assert_eq!(
            report.copied.len(),
            7,
            "{} -> {}",
            pair[0].backend(),
            pair[1].backend()
        );
    }
    for store in &hops[1..] {
        for (name, value) in &expected {
            let got = store.get(name).await.unwrap();
            assert_eq!(
                got.value.expose_str().unwrap(),
                value,
                "{name} in {}",
                store.backend()
            );
        }
        assert_eq!(
            store.get(&key("chain/bin")).await.unwrap().value.expose(),
            [0, 200, 10]
        );
    }
}
