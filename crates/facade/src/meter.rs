//! Metrics through the [`metrics`] facade, so any exporter works:
//!
//! - `strongroom_operations_total{op, outcome, cache}`: a counter per operation, outcome
//!   (`ok` or an [`ErrorKind`](strongroom_core::ErrorKind) name) and cache status (`hit`,
//!   `miss`, `stale`, `negative_hit`, `mirror`, or `none` for operations that do not read).
//! - `strongroom_operation_seconds{op, outcome}`: a histogram of latency, for every operation
//!   that reached past the cache. A cache hit takes tens of nanoseconds and reading the clock
//!   would cost as much as the hit itself, so hits are timed only while an audit consumer
//!   wants their latency.
//!
//! The hit path uses metric keys with static labels: with no recorder installed it costs a
//! thread-local read and an atomic load, and never allocates.

use std::time::Duration;

/// The counter name.
pub const OPERATIONS_TOTAL: &str = "strongroom_operations_total";
/// The latency histogram name.
pub const OPERATION_SECONDS: &str = "strongroom_operation_seconds";

/// Counts a cache hit of `get` (static labels: no allocation).
#[inline]
pub(crate) fn get_hit() {
    metrics::counter!("strongroom_operations_total", "op" => "get", "outcome" => "ok", "cache" => "hit")
        .increment(1);
}

/// Counts any other operation, and records its latency when it was timed.
pub(crate) fn operation(
    op: &'static str,
    outcome: &'static str,
    cache: Option<&'static str>,
    latency: Option<Duration>,
) {
    metrics::counter!(OPERATIONS_TOTAL, "op" => op, "outcome" => outcome, "cache" => cache.unwrap_or("none"))
        .increment(1);
    if let Some(latency) = latency {
        metrics::histogram!(OPERATION_SECONDS, "op" => op, "outcome" => outcome)
            .record(latency.as_secs_f64());
    }
}
