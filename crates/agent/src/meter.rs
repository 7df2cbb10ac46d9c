//! The agent's own metrics, through the [`metrics`] facade beside the facade's
//! (`strongroom_operations_total`, ...):
//!
//! - `strongroom_agent_requests_total{route, status}`: answered requests, by route (`ping`,
//!   `get`, `health`, `metrics`, or `refused` for those turned away before routing) and
//!   status code;
//! - `strongroom_agent_connections`: open connections (a gauge);
//! - `strongroom_agent_connections_refused_total`: connections turned away with 429 because
//!   the limit was reached.
//!
//! `/metrics` also brings the facade's circuit-breaker metrics up to date before it renders
//! (`strongroom_breaker_open{backend}`, `strongroom_breaker_opened_total{backend}`,
//! `strongroom_breaker_refused_total{backend}`: see
//! [`Secrets::record_metrics`](strongroom_facade::Secrets::record_metrics)).
//!
//! `install_prometheus` (cargo feature `prometheus`, on by default) installs the
//! recorder `/metrics` renders.

use http::StatusCode;
#[cfg(feature = "prometheus")]
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
#[cfg(feature = "prometheus")]
use strongroom_core::Error;

/// Answered requests.
pub const REQUESTS_TOTAL: &str = "strongroom_agent_requests_total";
/// Open connections.
pub const CONNECTIONS: &str = "strongroom_agent_connections";
/// Connections refused at the limit.
pub const CONNECTIONS_REFUSED_TOTAL: &str = "strongroom_agent_connections_refused_total";

/// Installs a Prometheus recorder as the process's global `metrics` recorder and returns
/// the handle [`AgentBuilder::metrics`](crate::AgentBuilder::metrics) takes.
///
/// # Errors
/// [`Error::Config`] when the process already has a global recorder (then build the handle
/// from that recorder instead).
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub fn install_prometheus() -> Result<PrometheusHandle, Error> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Error::config(format!("cannot install the Prometheus recorder: {e}")))
}

pub(crate) fn request(route: &'static str, status: StatusCode) {
    metrics::counter!(REQUESTS_TOTAL, "route" => route, "status" => status_label(status))
        .increment(1);
}

pub(crate) fn connection_opened() {
    metrics::gauge!(CONNECTIONS).increment(1.0);
}

pub(crate) fn connection_closed() {
    metrics::gauge!(CONNECTIONS).decrement(1.0);
}

pub(crate) fn connection_refused() {
    metrics::counter!(CONNECTIONS_REFUSED_TOTAL).increment(1);
}

/// The status as a static label (no allocation per request).
fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        403 => "403",
        404 => "404",
        405 => "405",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => "other",
    }
}
