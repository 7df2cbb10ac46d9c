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
//!
//! The cache's circuit breaker, labelled by the primary backend's name (`vault`, `aws`...):
//!
//! - `strongroom_breaker_open{backend}`: a gauge, 1 while the breaker is open or half-open
//!   (calls are refused without reaching the store), 0 while it is closed;
//! - `strongroom_breaker_opened_total{backend}`: times it opened;
//! - `strongroom_breaker_refused_total{backend}`: calls it answered `Unavailable` without
//!   asking the store.
//!
//! The breaker lives in the cache, which counts without a recorder (its own striped
//! counters, read by [`CacheStats`]), so these three are
//! brought up to date when an exporter is about to render, by
//! [`Secrets::record_metrics`](crate::Secrets::record_metrics) (the agent's `/metrics` calls
//! it), not on every refused call: a refusal costs microseconds and stays that cheap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strongroom_cache::CacheStats;

/// The counter name.
pub const OPERATIONS_TOTAL: &str = "strongroom_operations_total";
/// The latency histogram name.
pub const OPERATION_SECONDS: &str = "strongroom_operation_seconds";
/// The circuit breaker's gauge: 1 while open or half-open, 0 while closed.
pub const BREAKER_OPEN: &str = "strongroom_breaker_open";
/// The counter of the circuit breaker's openings.
pub const BREAKER_OPENED_TOTAL: &str = "strongroom_breaker_opened_total";
/// The counter of calls the open circuit breaker refused.
pub const BREAKER_REFUSED_TOTAL: &str = "strongroom_breaker_refused_total";

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

/// What one [`Secrets`](crate::Secrets) has added to the breaker counters so far, so that
/// each [`record`](Self::record) adds only what happened since. Per `Secrets`: one built
/// anew (the agent's reload) starts its cache's counts at zero, and still only ever adds.
#[derive(Default)]
pub(crate) struct BreakerExport {
    opened: AtomicU64,
    refused: AtomicU64,
}

impl BreakerExport {
    /// Sets the gauge and adds to the counters what `stats` counted since the last call.
    pub(crate) fn record(&self, backend: &'static str, stats: &CacheStats) {
        let open = if stats.breaker_open { 1.0 } else { 0.0 };
        metrics::gauge!(BREAKER_OPEN, "backend" => backend).set(open);
        metrics::counter!(BREAKER_OPENED_TOTAL, "backend" => backend)
            .increment(Self::since(&self.opened, stats.breaker_opened));
        metrics::counter!(BREAKER_REFUSED_TOTAL, "backend" => backend)
            .increment(Self::since(&self.refused, stats.breaker_refused));
    }

    /// How far `now` is past what `exported` holds, moving it there. `fetch_max`, not a
    /// swap: two renders at once may read the striped sums in either order, and the later
    /// one must not count again what the earlier one did.
    fn since(exported: &AtomicU64, now: u64) -> u64 {
        now.saturating_sub(exported.fetch_max(now, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_is_added_once_whatever_order_renders_read_it_in() {
        let exported = AtomicU64::new(0);
        assert_eq!(BreakerExport::since(&exported, 3), 3);
        assert_eq!(BreakerExport::since(&exported, 3), 0);
        // A render that read an older sum adds nothing, and does not make the next add again.
        assert_eq!(BreakerExport::since(&exported, 2), 0);
        assert_eq!(BreakerExport::since(&exported, 5), 2);
    }
}
