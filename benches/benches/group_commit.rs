//! Group commit of the local file store: puts per second with N writers in one process.
//!
//! One iteration is N tasks, each putting one secret (distinct keys) at once on a
//! multi-thread runtime, into a store of [`STORE_SECRETS`] secrets on a real disk
//! (`STRONGROOM_BENCH_DISK_DIR`, else a directory under the target dir): puts per second
//! is N divided by the time of an iteration. Concurrent puts share one write and one fsync
//! (docs/local-store.md, "Group commit"), so the figure should grow with N where one
//! fsync per put would keep it flat.
//!
//! The ids `group_commit/put_disk_{N}w` are read from
//! `target/criterion/group_commit/put_disk_{N}w/new/estimates.json`; keep them.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use strongroom_benches::value_for;
use strongroom_core::{SecretName, SecretStore, SecretValue};
use strongroom_envelope::MasterKey;
use strongroom_local::FileStore;
use tokio::task::JoinSet;

/// Secrets in the store before the benchmark writes.
const STORE_SECRETS: u64 = 1_000;
/// Value size of every secret.
const VALUE_LEN: usize = 64;
/// The writer counts measured; each is a bench id `put_disk_{N}w`.
const WRITERS: [usize; 4] = [1, 4, 16, 64];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Where the store lives: `STRONGROOM_BENCH_DISK_DIR`, else `<target dir>/bench-disk` (the
/// bench binary runs from `<target>/release/deps`), else the system temp dir. Never tmpfs:
/// the point is the fsync.
fn disk_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRONGROOM_BENCH_DISK_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("bench-disk")))
        .unwrap_or_else(std::env::temp_dir)
}

/// A store of [`STORE_SECRETS`] secrets at `dir/store.enc`.
fn filled_store(rt: &tokio::runtime::Runtime, dir: &Path) -> FileStore {
    let key = [7u8; 32];
    let path = dir.join("store.enc");
    let store =
        FileStore::create(&path, MasterKey::from_bytes(&key).expect("key")).expect("create store");
    rt.block_on(async {
        // Filled concurrently in chunks: with group commit that is a few writes, not 1,000.
        for chunk in 0..STORE_SECRETS / 100 {
            let mut tasks = JoinSet::new();
            for n in chunk * 100..(chunk + 1) * 100 {
                let store = store.clone();
                tasks.spawn(async move {
                    let key = SecretName::new(format!("app/s{n}")).expect("key");
                    store
                        .put(&key, SecretValue::new(value_for(n, VALUE_LEN)))
                        .await
                        .expect("fill");
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("fill task");
            }
        }
    });
    store
}

fn group_commit(c: &mut Criterion) {
    let rt = runtime();
    let root = disk_root();
    std::fs::create_dir_all(&root).expect("disk dir");
    let dir = tempfile::tempdir_in(&root).expect("disk temp dir");
    let store = filled_store(&rt, dir.path());
    let keys: Vec<SecretName> = (0..WRITERS[WRITERS.len() - 1])
        .map(|n| SecretName::new(format!("bench/w{n}")).expect("key"))
        .collect();
    let value = SecretValue::new(value_for(99, VALUE_LEN));

    let mut group = c.benchmark_group("group_commit");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for writers in WRITERS {
        group.bench_function(format!("put_disk_{writers}w"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = JoinSet::new();
                    for key in &keys[..writers] {
                        let (store, key, value) = (store.clone(), key.clone(), value.clone());
                        tasks.spawn(async move { store.put(&key, value).await.expect("put") });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.expect("put task");
                    }
                });
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = group_commit
}
criterion_main!(benches);
