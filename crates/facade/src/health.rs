//! [`Health`]: what [`Secrets::health`](crate::Secrets::health) reports.

use std::fmt;
use std::time::Duration;

use strongroom_core::NodeReport;

/// The state of a [`Secrets`](crate::Secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthStatus {
    /// The primary answers.
    Healthy,
    /// The primary is unavailable; reads are served from the cache and mirror, writes fail.
    Degraded,
    /// The primary refuses us (credentials, key, configuration), or is unavailable with
    /// nothing cached or mirrored to fall back on.
    Unhealthy,
}

impl HealthStatus {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A health report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// Why, when not healthy (an error message: never a value).
    pub reason: Option<String>,
    /// The primary backend's name.
    pub backend: &'static str,
    /// How long the probe took.
    pub latency: Duration,
    /// Each server of a store that runs as several (a Vault/OpenBao cluster given as
    /// several addresses), as its own health endpoint answered; empty otherwise.
    pub nodes: Vec<NodeReport>,
    /// True while the cache's circuit breaker is open (or half-open): the primary failed
    /// too often, and reads are answered from stale entries and the mirror without asking
    /// it; one probe at a time checks whether it is back.
    pub breaker_open: bool,
}

impl Health {
    pub(crate) fn new(
        status: HealthStatus,
        reason: Option<String>,
        backend: &'static str,
        latency: Duration,
        nodes: Vec<NodeReport>,
        breaker_open: bool,
    ) -> Self {
        Self {
            status,
            reason,
            backend,
            latency,
            nodes,
            breaker_open,
        }
    }

    /// True for [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }
}
