//! `strongroom-bench-peers aws-caching`: cache hits of AWS's own in-process cache for
//! Secrets Manager, the `aws_secretsmanager_caching` crate (`SecretsManagerCachingClient`),
//! the peer of strongroom's cached read across threads (issue 20, item 1; the strongroom
//! side is `benches/benches/hot_key.rs`).
//!
//! The secrets are written to LocalStack through the SDK, as the `aws` mode does, and each
//! is fetched once through the caching client. Every secret is then overwritten on the
//! server with another value: a read that still answers the first value was served from the
//! cache, so the loops below time hits only (the crate counts its hits only in debug
//! builds). Then one hot key, and 64 keys read uniformly, on 1 and 2 OS threads: each
//! thread runs its own loop of `get_secret_value(name, None, None, false)` on the one shared
//! client, inside one `block_on` of its own current-thread runtime (the hit path awaits
//! only the client's `tokio::sync::RwLock`, so no runtime work is timed beyond what an
//! `.await` in a user's task costs).
//!
//! Figures as `benches/benches/hot_key.rs` reports them: time per read per thread (the
//! slowest thread's wall time over its reads), the median of [`SAMPLES`] samples of about
//! [`SAMPLE_TIME`] each, and aggregate reads per second (`threads * 1e9 / ns`).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aws_secretsmanager_caching::SecretsManagerCachingClient;
use serde_json::{Value, json};

use super::{VALUE, env};

/// Keys of the uniform case (a power of two: [`pick`] masks).
const KEYS: usize = 64;
/// Samples per figure, and the time each takes (about, from a calibration).
const SAMPLES: usize = 30;
const SAMPLE_TIME: Duration = Duration::from_millis(70);
/// What the server holds once the cache is warm: any read that answers it missed the cache.
const CHANGED: &str = "changed-on-the-server-after-the-cache-was-filled-0123456789abcdef";

/// Runs the mode and prints its JSON line; exits 1 with a message on any error.
pub(super) fn run_mode() -> ! {
    match run() {
        Ok(value) => {
            println!("{value}");
            std::process::exit(0)
        }
        Err(message) => {
            eprintln!("strongroom-bench-peers aws-caching: {message}");
            std::process::exit(1)
        }
    }
}

fn run() -> Result<Value, String> {
    // The setup's requests (and the SDK's pooled connections) live on this runtime, kept
    // for the whole run in case a read unexpectedly misses.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let hot = vec!["bench/caching/hot".to_owned()];
    let uniform: Vec<String> = (0..KEYS)
        .map(|n| format!("bench/caching/key{n:02}"))
        .collect();
    let client = rt.block_on(setup(&hot, &uniform))?;

    let mut out = serde_json::Map::new();
    let mut iterations = serde_json::Map::new();
    for (label, names) in [("1key", &hot), ("64keys", &uniform)] {
        let iters = calibrate(&client, names)?;
        iterations.insert(label.to_owned(), json!(iters));
        let mut by_threads = serde_json::Map::new();
        for threads in [1_usize, 2] {
            let ns = measure(&client, names, threads, iters)?;
            by_threads.insert(
                format!("{threads}t"),
                json!({
                    "ns_per_read": ns,
                    "reads_per_s": threads as f64 * 1e9 / ns,
                }),
            );
        }
        out.insert(label.to_owned(), Value::Object(by_threads));
    }
    out.insert("samples".to_owned(), json!(SAMPLES));
    out.insert(
        "iterations_per_sample".to_owned(),
        Value::Object(iterations),
    );
    drop(rt);
    Ok(Value::Object(out))
}

/// Writes every secret, fills the caching client with each, then changes each on the
/// server and checks the client still answers the cached value.
async fn setup(hot: &[String], uniform: &[String]) -> Result<SecretsManagerCachingClient, String> {
    let endpoint = env("STRONGROOM_ITEST_AWS_ENDPOINT")?;
    let access = env("STRONGROOM_ITEST_AWS_ACCESS_KEY_ID")?;
    let secret_key = env("STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY")?;
    let credentials =
        aws_credential_types::Credentials::new(&access, &secret_key, None, None, "bench");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await;
    let sdk = aws_sdk_secretsmanager::Client::new(&config);
    let names = || hot.iter().chain(uniform);
    for name in names() {
        write(&sdk, name, VALUE).await?;
    }
    // As the crate's README builds it: from the SDK config, a TTL far beyond the run.
    let client = SecretsManagerCachingClient::from_builder(
        aws_sdk_secretsmanager::config::Builder::from(&config),
        NonZeroUsize::new(1000).expect("non-zero"),
        Duration::from_secs(3600),
        false,
    )
    .await
    .map_err(|e| format!("caching client: {e}"))?;
    for name in names() {
        read(&client, name).await?;
    }
    for name in names() {
        write(&sdk, name, CHANGED).await?;
    }
    for name in names() {
        if read(&client, name).await? != VALUE {
            return Err(format!(
                "{name}: the caching client did not answer from its cache"
            ));
        }
    }
    Ok(client)
}

/// Creates the secret, or puts a new version of it when it exists.
async fn write(
    sdk: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<(), String> {
    match sdk
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            let service = err.into_service_error();
            if !service.is_resource_exists_exception() {
                return Err(format!("create_secret {name}: {service}"));
            }
            sdk.put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("put_secret_value {name}: {e}"))
        }
    }
}

async fn read(client: &SecretsManagerCachingClient, name: &str) -> Result<String, String> {
    let out = client
        .get_secret_value(name, None, None, false)
        .await
        .map_err(|e| format!("get_secret_value {name}: {e}"))?;
    out.secret_string
        .ok_or_else(|| format!("{name}: no SecretString"))
}

/// The name thread `thread` reads at step `i`: every thread walks all names, each from its
/// own offset (as `pick` in hot_key.rs).
#[inline]
fn pick(names: &[String], thread: usize, i: u64) -> &str {
    #[allow(clippy::cast_possible_truncation)] // masked to the length
    let step = (i as usize).wrapping_add(thread * 17) & (names.len() - 1);
    &names[step]
}

/// Reads per sample: about [`SAMPLE_TIME`] of reads on one thread.
fn calibrate(client: &SecretsManagerCachingClient, names: &[String]) -> Result<u64, String> {
    let ns = measure_with(client, names, 1, 10_000, 3)?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a small positive count
    let iters = (SAMPLE_TIME.as_nanos() as f64 / ns).ceil() as u64;
    Ok(iters.max(1_000))
}

/// Median over [`SAMPLES`] of the slowest thread's time per read, in ns.
fn measure(
    client: &SecretsManagerCachingClient,
    names: &[String],
    threads: usize,
    iters: u64,
) -> Result<f64, String> {
    measure_with(client, names, threads, iters, SAMPLES)
}

fn measure_with(
    client: &SecretsManagerCachingClient,
    names: &[String],
    threads: usize,
    iters: u64,
    samples: usize,
) -> Result<f64, String> {
    if !names.len().is_power_of_two() {
        return Err(format!("{} names: pick needs a power of two", names.len()));
    }
    let barrier = Barrier::new(threads);
    let per_thread: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let barrier = &barrier;
                scope.spawn(move || reader(client, names, thread, iters, samples, barrier))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "a reader thread panicked".to_owned())?
            })
            .collect::<Result<_, String>>()
    })?;
    let mut slowest: Vec<f64> = (0..samples)
        .map(|s| {
            per_thread
                .iter()
                .map(|times| times[s])
                .max()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e9
                / iters as f64
        })
        .collect();
    slowest.sort_by(f64::total_cmp);
    Ok(slowest[samples / 2])
}

/// One reader thread: its own current-thread runtime, a warm-up, then `samples` timed
/// loops of `iters` reads, each started with the other threads at a barrier.
fn reader(
    client: &SecretsManagerCachingClient,
    names: &[String],
    thread: usize,
    iters: u64,
    samples: usize,
    barrier: &Barrier,
) -> Result<Vec<Duration>, String> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // Still meet the other threads at each barrier (see below).
            for _ in 0..samples {
                barrier.wait();
            }
            return Err(format!("tokio runtime: {e}"));
        }
    };
    rt.block_on(async {
        // A failure is kept, not returned at once: the other threads still meet this one
        // at every barrier, so an error cannot leave them waiting.
        let mut failure = None;
        for i in 0..64 {
            match read(client, pick(names, thread, i)).await {
                Ok(value) if value == VALUE => {}
                Ok(_) => {
                    failure.get_or_insert_with(|| "a warm-up read missed the cache".to_owned());
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            // Blocks this thread between samples; nothing else runs on its runtime.
            barrier.wait();
            let start = Instant::now();
            for i in 0..iters {
                match client
                    .get_secret_value(black_box(pick(names, thread, i)), None, None, false)
                    .await
                {
                    Ok(out) => drop(black_box(out)),
                    Err(e) => {
                        failure.get_or_insert_with(|| format!("get_secret_value: {e}"));
                    }
                }
            }
            times.push(start.elapsed());
        }
        failure.map_or(Ok(times), Err)
    })
}
