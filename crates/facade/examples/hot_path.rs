//! A quick measurement of the cached read through the whole facade against a bare
//! quick_cache get of the same key (the cache's performance target). The real benchmark lives in
//! the benches/ package; this one needs no harness:
//! `cargo run --release -p strongroom-facade --example hot_path`.

#![allow(clippy::print_stdout, reason = "an example that reports figures")]

use std::future::Future as _;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use strongroom_core::SecretName;
use strongroom_facade::Secrets;
use strongroom_local::EnvStore;

const READS: u32 = 20_000_000;

fn main() -> Result<(), strongroom_core::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| strongroom_core::Error::config(format!("no runtime: {e}")))?;
    let key = SecretName::new("app/db/password")?;
    let secrets = Secrets::builder()
        .store(EnvStore::from_vars([("APP_DB_PASSWORD", "hunter2")]))
        .build()?;
    runtime.block_on(secrets.get(&key))?;

    let bare: quick_cache::sync::Cache<SecretName, strongroom_core::Secret> =
        quick_cache::sync::Cache::new(10_000);
    bare.insert(key.clone(), runtime.block_on(secrets.get(&key))?);

    let mut context = Context::from_waker(Waker::noop());
    for round in 0..3 {
        let start = Instant::now();
        for _ in 0..READS {
            black_box(bare.get(black_box(&key)));
        }
        let bare_ns = start.elapsed().as_nanos() as f64 / f64::from(READS);

        let start = Instant::now();
        for _ in 0..READS {
            let future = pin!(secrets.get(black_box(&key)));
            match future.poll(&mut context) {
                Poll::Ready(result) => {
                    black_box(result)?;
                }
                Poll::Pending => unreachable!("a hit is ready at once"),
            }
        }
        let facade_ns = start.elapsed().as_nanos() as f64 / f64::from(READS);
        println!(
            "round {round}: quick_cache get {bare_ns:.1} ns, Secrets::get hit {facade_ns:.1} ns, \
             ratio {:.2}, {:.1} M reads/s",
            facade_ns / bare_ns,
            1_000.0 / facade_ns
        );
    }
    Ok(())
}
