//! Benchmarks of strongroom's in-process paths, and the probes `cargo xtask bench` runs.
//!
//! Not published. The criterion benchmarks live in `benches/hot_paths.rs`; the `probe`
//! binary measures what criterion cannot (single-flight request counts, resident memory).
//! `cargo xtask bench` runs both, then the end-to-end comparisons in `benches/peers`, and
//! writes docs/performance.md. This library holds what they share: a backend that makes
//! its values up (so nothing but the cache under test holds them) and counts its calls.
//!
//! ```
//! use strongroom_benches::{GenStore, poll_now};
//! use strongroom_core::{SecretName, SecretStore};
//!
//! let store = GenStore::new(16);
//! let key = SecretName::new("app/k1").unwrap();
//! let secret = poll_now(store.get(&key)).unwrap();
//! assert_eq!(secret.value.len(), 16);
//! assert_eq!(store.requests(), 1);
//! ```

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;

pub mod ring_baseline;
use strongroom_core::{
    Capabilities, Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId,
    VersionInfo,
};

/// A deterministic value of `len` bytes for secret number `n`: the same on every run, so
/// nothing has to hold the values but the cache under test.
pub fn value_for(n: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| b'a' + u8::try_from((n + i) % 26).unwrap_or(0))
        .collect()
}

/// Polls `future` once and returns its output.
///
/// For the paths that must complete without awaiting (a cache hit, a fresh file store
/// snapshot): a benchmark then measures the path itself, not an executor.
///
/// Always inlined, so that the future is built where it is polled, as an `.await` in an
/// async fn builds it: called as a function, the 48-byte `Secrets::get` future was passed by
/// pointer and read back with wider loads than the stores that had just written it, and
/// those store-forwarding stalls (`perf annotate`) were a third of the measured facade read
/// (101 ns called, 68 ns inlined, in one criterion run). They were the harness's cost, not
/// the read's.
///
/// # Panics
/// If the future is not ready at once: the path under test awaited something.
#[inline(always)]
pub fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the path under test awaited: it is not an in-memory hit"),
    }
}

/// The resident set size of this process in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A read-only backend that makes each key's value from a hash of its name, counts the
/// `get` calls it answers, and can take a while to answer (so that concurrent misses
/// really overlap).
pub struct GenStore {
    value_len: usize,
    delay: Option<Duration>,
    requests: AtomicU64,
}

impl GenStore {
    /// A store answering at once with values of `value_len` bytes.
    pub fn new(value_len: usize) -> Self {
        Self {
            value_len,
            delay: None,
            requests: AtomicU64::new(0),
        }
    }

    /// The same store taking `delay` (a tokio sleep) for each `get`.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// How many `get` calls reached this store.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn make(&self, key: &SecretName) -> Secret {
        // A fixed hasher (not RandomState): the same key gets the same value on every run.
        let mut hasher = std::hash::DefaultHasher::new();
        key.as_str().hash(&mut hasher);
        let value = value_for(hasher.finish() % 1_000_003, self.value_len);
        Secret::new(key.clone(), SecretValue::new(value), VersionId::from(1))
    }
}

#[async_trait]
impl SecretStore for GenStore {
    fn backend(&self) -> &'static str {
        "generated"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
    }

    async fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        Ok(self.make(key))
    }

    async fn get_version(&self, key: &SecretName, _version: &VersionId) -> Result<Secret, Error> {
        self.get(key).await
    }

    async fn put_with(
        &self,
        _key: &SecretName,
        _value: SecretValue,
        _options: &PutOptions,
    ) -> Result<VersionId, Error> {
        Err(Error::unsupported("generated", "put"))
    }

    async fn delete(&self, _key: &SecretName) -> Result<(), Error> {
        Err(Error::unsupported("generated", "delete"))
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<SecretName>, Error> {
        Ok(Vec::new())
    }

    async fn versions(&self, _key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_and_sized() {
        assert_eq!(value_for(3, 8), value_for(3, 8));
        assert_ne!(value_for(3, 8), value_for(4, 8));
        assert_eq!(value_for(0, 0).len(), 0);
    }

    #[test]
    fn gen_store_counts_and_repeats_values() {
        let store = GenStore::new(32);
        let key = SecretName::new("a/b").unwrap();
        let first = poll_now(store.get(&key)).unwrap();
        let second = poll_now(store.get(&key)).unwrap();
        assert_eq!(first.value, second.value);
        assert_eq!(store.requests(), 2);
        assert!(rss_kib().unwrap() > 0);
    }
}
