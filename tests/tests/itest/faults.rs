//! Fault injection and bad input against the Vault client:
//!
//! - `restart`: OpenBao with file storage, SIGKILLed and restarted on the same port while
//!   many tasks read and write; every acknowledged write is there afterwards.
//! - `garbage`: a loopback responder that answers what a real server never would (truncated
//!   JSON, the wrong content type, HTML, 10 MiB, a cut connection, silence).
//! - `limits`: a token revoked mid-run and a value over the server's request size limit,
//!   against the shared server.
//! - `leaks`: every operation of every backend with tracing at TRACE and the audit file on,
//!   then a search of everything captured for the secrets used.
//!
//! Figures (requests, errors by kind, latency) are printed to stderr: run with
//! `cargo xtask itest -- faults --nocapture` to see them; docs/reliability.md quotes them.

mod garbage;
mod leaks;
mod limits;
mod restart;

use std::collections::BTreeMap;
use std::time::Duration;

use strongroom_core::SecretName;

fn key(path: &str) -> SecretName {
    SecretName::new(path).expect("valid key")
}

/// Counts of outcomes and the slowest call, for the figures in docs/reliability.md.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// The first message seen of each kind, so an unexpected kind can be explained.
    examples: BTreeMap<String, String>,
    max_latency: Duration,
}

impl Tally {
    fn record(&mut self, outcome: Result<(), &strongroom_core::Error>, took: Duration) {
        match outcome {
            Ok(()) => self.ok += 1,
            Err(err) => {
                let kind = err.kind().as_str().to_owned();
                self.examples
                    .entry(kind.clone())
                    .or_insert_with(|| err.to_string());
                *self.errors.entry(kind).or_default() += 1;
            }
        }
        self.max_latency = self.max_latency.max(took);
    }

    fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        for (kind, message) in &other.examples {
            self.examples
                .entry(kind.clone())
                .or_insert_with(|| message.clone());
        }
        self.max_latency = self.max_latency.max(other.max_latency);
    }

    fn requests(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }
}
