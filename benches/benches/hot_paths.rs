//! Criterion benchmarks of strongroom's in-process paths, each next to the bare operation it
//! is built on, in the same run. `cargo xtask bench` reads the medians from
//! `target/criterion/<group>/<name>/new/estimates.json`; the names below are that contract.

#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ring::rand::{SecureRandom, SystemRandom};
use strongroom_benches::ring_baseline::{aes_key, ring_open, ring_seal};
use strongroom_benches::{GenStore, poll_now, value_for};
use strongroom_core::{Secret, SecretName, SecretStore, SecretValue, VersionId};
use strongroom_envelope::{DataKey, MasterKey, WrappingKey};
use strongroom_facade::{CacheConfig, Secrets};
use strongroom_local::FileStore;

/// Secrets in the file store and the in-memory map it is compared with.
const STORE_SECRETS: u64 = 10_000;
/// Value size for the cache and store benchmarks.
const VALUE_LEN: usize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `read` `iters` times on each of `threads` threads started together; the time of the
/// slowest thread, so the figure is the time per read per thread under contention.
fn on_threads<F>(threads: usize, iters: u64, read: F) -> Duration
where
    F: Fn() + Sync,
{
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        read();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .max()
            .unwrap_or_default()
    })
}

/// The `Secrets` facade's cached read against a bare quick_cache get of the same key.
fn cache_read(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let config = CacheConfig::builder()
        .ttl(Duration::from_secs(3600))
        .max_entries(20_000)
        .build()
        .expect("cache config");
    let secrets = Secrets::builder()
        .store(GenStore::new(VALUE_LEN))
        .cache(config)
        .build()
        .expect("facade");
    let key = SecretName::new("app/db/password").expect("key");
    rt.block_on(secrets.get(&key)).expect("warm the cache");

    let bare: quick_cache::sync::Cache<SecretName, Secret> = quick_cache::sync::Cache::new(20_000);
    let secret = Secret::new(
        key.clone(),
        SecretValue::new(value_for(1, VALUE_LEN)),
        VersionId::from(1),
    );
    bare.insert(key.clone(), secret);

    let facade_get = || {
        let secret = poll_now(secrets.get(black_box(&key))).expect("cached read");
        black_box(secret);
    };
    let bare_get = || {
        black_box(bare.get(black_box(&key)).expect("bare hit"));
    };

    let mut group = c.benchmark_group("cache_read");
    group.bench_function("facade_1t", |b| b.iter(facade_get));
    group.bench_function("quick_cache_1t", |b| b.iter(bare_get));
    group.bench_function("facade_2t", |b| {
        b.iter_custom(|iters| on_threads(2, iters, facade_get));
    });
    group.bench_function("quick_cache_2t", |b| {
        b.iter_custom(|iters| on_threads(2, iters, bare_get));
    });
    group.finish();
}

/// A Secrets Manager GetSecretValue request, unsigned.
fn get_secret_value_request() -> http::Request<Vec<u8>> {
    http::Request::post("https://secretsmanager.us-east-1.amazonaws.com/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(br#"{"SecretId":"app/db/password"}"#.to_vec())
        .expect("request")
}

/// strongroom-sigv4's `Signer::sign` against aws-sigv4 called directly with the same
/// settings on the same request.
fn signing(c: &mut Criterion) {
    let template = get_secret_value_request();
    let now = SystemTime::now();
    let signer = strongroom_sigv4::Signer::new("us-east-1", "secretsmanager");
    let credentials = strongroom_sigv4::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "bench",
        )
        .into();

    let mut group = c.benchmark_group("sigv4");
    group.bench_function("strongroom", |b| {
        b.iter_batched(
            || template.clone(),
            |mut request| {
                signer
                    .sign(&mut request, &credentials, now)
                    .expect("signed");
                request
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("aws_sigv4", |b| {
        b.iter_batched(
            || template.clone(),
            |mut request| {
                let headers: Vec<(&str, &str)> = request
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii header")))
                    .collect();
                let signable = SignableRequest::new(
                    request.method().as_str(),
                    request.uri().to_string(),
                    headers.into_iter(),
                    SignableBody::Bytes(request.body()),
                )
                .expect("signable");
                let params = v4::SigningParams::builder()
                    .identity(&identity)
                    .region("us-east-1")
                    .name("secretsmanager")
                    .time(now)
                    .settings(SigningSettings::default())
                    .build()
                    .expect("params")
                    .into();
                let (instructions, _signature) =
                    sign(signable, &params).expect("signed").into_parts();
                instructions.apply_to_request_http1x(&mut request);
                request
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// strongroom-envelope against raw ring AES-256-GCM on the same sizes.
///
/// - `strongroom_datakey_*` (a `DataKey` unwrapped once, then one seal or open) against
///   `ring_*` (one AEAD operation with a ready `LessSafeKey`): the target is "within 1.2x
///   of raw ring after the data key is unwrapped". The two do the same work apart from the
///   format: each seal draws a fresh nonce from `SystemRandom` and writes into a new buffer
///   (nonce, copied plaintext sealed in place, tag); each open copies the sealed bytes into a
///   new buffer, opens in place and cuts the tag off, as `DataKey::open` must (it cannot
///   decrypt into the caller's immutable input). Both results are dropped inside the timed
///   loop. What remains is the format's and the wrapper's: 5 bytes of magic and version,
///   which are also the AAD (ring here has none; a 5-byte AAD is about 120 of ring's 1,010
///   instructions for a 64-byte open under callgrind), and on open the wipe of the plaintext
///   when it drops, which ring's `Vec` does not do and which is counted against strongroom on
///   purpose.
/// - `strongroom_{seal,open}_*` (the whole envelope: a fresh data key wrapped, or unwrapped,
///   every call) against `ring_envelope_*`, the same envelope built by hand with ring (fresh
///   data key, payload sealed, data key wrapped): informational.
fn envelope(c: &mut Criterion) {
    let master = MasterKey::generate().expect("master key");
    let master_bytes: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
    let wrapping = WrappingKey::from(master);
    let rng = SystemRandom::new();
    let ready = aes_key(&master_bytes);
    // Unwrapped once, as a process holding a stored wrapped key would.
    let wrapped_key = DataKey::generate()
        .and_then(|key| key.wrap(&wrapping))
        .expect("wrapped data key");
    let data_key = DataKey::unwrap(&wrapping, &wrapped_key).expect("data key");

    let mut group = c.benchmark_group("envelope");
    for (label, size) in [("64B", 64usize), ("64KiB", 64 * 1024)] {
        let plaintext = value_for(5, size);
        let sealed = strongroom_envelope::seal(&wrapping, &plaintext).expect("seal");
        let raw_sealed = ring_seal(&ready, &rng, &plaintext);
        let data_key_sealed = data_key.seal(&plaintext).expect("seal");
        group.bench_function(format!("strongroom_seal_{label}"), |b| {
            b.iter(|| strongroom_envelope::seal(&wrapping, black_box(&plaintext)).expect("seal"));
        });
        group.bench_function(format!("ring_seal_{label}"), |b| {
            b.iter(|| ring_seal(&ready, &rng, black_box(&plaintext)));
        });
        group.bench_function(format!("strongroom_datakey_seal_{label}"), |b| {
            b.iter(|| data_key.seal(black_box(&plaintext)).expect("seal"));
        });
        group.bench_function(format!("ring_envelope_seal_{label}"), |b| {
            b.iter(|| {
                let mut data_key = [0u8; 32];
                rng.fill(&mut data_key).expect("data key");
                let payload = ring_seal(&aes_key(&data_key), &rng, black_box(&plaintext));
                let wrapped = ring_seal(&aes_key(&master_bytes), &rng, &data_key);
                (payload, wrapped)
            });
        });
        group.bench_function(format!("strongroom_open_{label}"), |b| {
            b.iter(|| strongroom_envelope::open(&wrapping, black_box(&sealed)).expect("open"));
        });
        group.bench_function(format!("ring_open_{label}"), |b| {
            b.iter(|| ring_open(&ready, black_box(&raw_sealed)));
        });
        group.bench_function(format!("strongroom_datakey_open_{label}"), |b| {
            b.iter(|| data_key.open(black_box(&data_key_sealed)).expect("open"));
        });
        let data_key = [7u8; 32];
        let wrapped_key = ring_seal(&ready, &rng, &data_key);
        let payload = ring_seal(&aes_key(&data_key), &rng, &plaintext);
        group.bench_function(format!("ring_envelope_open_{label}"), |b| {
            b.iter(|| {
                let key: [u8; 32] = ring_open(&aes_key(&master_bytes), black_box(&wrapped_key))
                    .try_into()
                    .expect("32 bytes");
                ring_open(&aes_key(&key), black_box(&payload))
            });
        });
    }
    group.finish();
}

/// A file store holding [`STORE_SECRETS`] secrets in `dir`: filled on tmpfs (where a put's
/// fsync costs next to nothing) and copied to `dir`, so setting up takes seconds.
fn filled_store(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    key_bytes: &[u8],
) -> FileStore {
    let scratch = tempfile::tempdir_in(shm_or_tmp()).expect("scratch dir");
    let scratch_path = scratch.path().join("fill.enc");
    let store = FileStore::create(
        &scratch_path,
        MasterKey::from_bytes(key_bytes).expect("key"),
    )
    .expect("create store");
    rt.block_on(async {
        for n in 0..STORE_SECRETS {
            let key = SecretName::new(format!("app/s{n}")).expect("key");
            store
                .put(&key, SecretValue::new(value_for(n, VALUE_LEN)))
                .await
                .expect("fill");
        }
    });
    drop(store);
    let path = dir.join("store.enc");
    std::fs::copy(&scratch_path, &path).expect("copy the filled store");
    FileStore::open(&path, MasterKey::from_bytes(key_bytes).expect("key")).expect("open store")
}

fn shm_or_tmp() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The local file store with 10,000 secrets: `get` against a HashMap get, and `put` on
/// disk (with its fsync) against the same put on tmpfs (where fsync does nothing).
fn file_store(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let key_bytes = [42u8; 32];
    // On disk: the bench directory under the target dir (STRONGROOM_BENCH_DISK_DIR to move it).
    let disk_root = std::env::var_os("STRONGROOM_BENCH_DISK_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    std::fs::create_dir_all(&disk_root).expect("disk dir");
    let disk_dir = tempfile::tempdir_in(&disk_root).expect("disk temp dir");
    let shm_dir = tempfile::tempdir_in(shm_or_tmp()).expect("tmpfs temp dir");
    let on_disk = filled_store(&rt, disk_dir.path(), &key_bytes);
    let on_shm = FileStore::open(
        {
            let path = shm_dir.path().join("store.enc");
            std::fs::copy(on_disk.path(), &path).expect("copy to tmpfs");
            path
        },
        MasterKey::from_bytes(&key_bytes).expect("key"),
    )
    .expect("open tmpfs store");

    let map: HashMap<SecretName, Secret> = (0..STORE_SECRETS)
        .map(|n| {
            let key = SecretName::new(format!("app/s{n}")).expect("key");
            let secret = Secret::new(
                key.clone(),
                SecretValue::new(value_for(n, VALUE_LEN)),
                VersionId::from(1),
            );
            (key, secret)
        })
        .collect();
    let key = SecretName::new("app/s4242").expect("key");
    // The first read after open loads the snapshot; the benchmark measures the ones after.
    rt.block_on(on_disk.get(&key)).expect("first read");

    let mut group = c.benchmark_group("file_store");
    group.bench_function("get", |b| {
        b.iter(|| poll_now(on_disk.get(black_box(&key))).expect("get"));
    });
    // What revalidating against other processes costs by itself: one stat of the file.
    let path = on_disk.path().to_path_buf();
    group.bench_function("stat", |b| {
        b.iter(|| std::fs::metadata(black_box(&path)).expect("stat").len());
    });
    group.bench_function("hashmap_get", |b| {
        b.iter(|| black_box(map.get(black_box(&key)).cloned().expect("present")));
    });
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let put_key = SecretName::new("app/s17").expect("key");
    let value = SecretValue::new(value_for(99, VALUE_LEN));
    group.bench_function("put_disk", |b| {
        b.iter(|| {
            rt.block_on(on_disk.put(&put_key, value.clone()))
                .expect("put")
        });
    });
    group.bench_function("put_tmpfs", |b| {
        b.iter(|| {
            rt.block_on(on_shm.put(&put_key, value.clone()))
                .expect("put")
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = cache_read, signing, envelope, file_store
}
criterion_main!(benches);
