//! The nodes of a Vault or OpenBao cluster: the configured addresses, which one requests go
//! to now, when a request moves on to the next one, and each node's health.
//!
//! A client given one address behaves as it always has (the HTTP client's own retries). A
//! client given several (`VAULT_ADDR=https://a:8200,https://b:8200,https://c:8200`) sends
//! every request to the node that answered last, and moves to the next address when a node
//! cannot serve it:
//!
//! - no connection could be opened (the node is down): any request moves on, it never
//!   reached a server;
//! - the node answered 503 (sealed) or 429/472/473 (the `sys/health` codes of standbys):
//!   any request moves on (a plain write too: a sealed node does not forward; the rare
//!   leader that seals itself mid-request after appending the write to its log is the one
//!   case where such a write may land twice, as two versions of the same value);
//! - a timeout, a broken connection, a 5xx, or a 307/308 (a standby pointing at the
//!   active node: the redirect itself is never followed, but when it names one of the
//!   configured addresses that one is tried next): only requests that may be repeated move
//!   on (reads, check-and-set writes, token renewal). A standby gives these also when it
//!   forwarded the request and lost the active node before the answer came back, so a
//!   plain write that may have been applied is not sent twice: its outcome (`Unavailable`)
//!   goes back to the caller, who reads back or writes with check-and-set. A check-and-set
//!   write that moved on after any failed attempt (503 included) and then meets a version
//!   mismatch gets `Unavailable` ("read the secret back"), not `Conflict`: the mismatch may
//!   be its own earlier attempt.
//!
//! Every attempt counts against one retry budget ([`default_cluster_retry`] unless the
//! builder was given a policy): after each full round of the nodes without an answer the
//! client pauses (full jitter, doubling up to the policy's `max_delay`), and no request
//! outlasts `max_total`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use strongroom_http::RetryPolicy;

/// The retry budget of a client with several addresses when the builder was given none:
/// room for a Raft election (about 10 s after the active node dies; measured in
/// docs/reliability.md) plus the attempt that was waiting on the dead node. Attempts are
/// bounded by time, not count: 100 ms doubling to 1 s between rounds of the nodes, 25 s in
/// all. (A client with one address keeps [`RetryPolicy::default`].)
pub fn default_cluster_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(1000)
        .with_base_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_max_total(Duration::from_secs(25))
}

/// The configured addresses and the one requests go to now.
#[derive(Debug)]
pub(crate) struct Nodes {
    bases: Box<[Arc<str>]>,
    current: AtomicUsize,
}

impl Nodes {
    /// `bases` must not be empty (the builder checks).
    pub(crate) fn new(bases: Vec<String>) -> Self {
        Self {
            bases: bases.into_iter().map(Arc::from).collect(),
            current: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bases.len()
    }

    pub(crate) fn base(&self, index: usize) -> &str {
        self.bases.get(index).map_or("", |b| b)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &str> {
        self.bases.iter().map(|b| &**b)
    }

    /// The node the next request goes to.
    pub(crate) fn current(&self) -> usize {
        self.current
            .load(Ordering::Relaxed)
            .checked_rem(self.len())
            .unwrap_or(0)
    }

    /// `index` answered: later requests go there.
    pub(crate) fn answered(&self, index: usize) {
        self.current.store(index, Ordering::Relaxed);
    }

    /// `index` could not serve a request: later requests go to `next`, unless another
    /// request has meanwhile moved the client elsewhere.
    pub(crate) fn failed(&self, index: usize, next: usize) {
        let _ = self
            .current
            .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The node after `index`, or the configured node a redirect names.
    pub(crate) fn next(&self, index: usize, location: Option<&str>) -> usize {
        if let Some(location) = location
            && let Some(named) = self.bases.iter().position(|b| same_origin(b, location))
            && named != index
        {
            return named;
        }
        index
            .checked_add(1)
            .and_then(|next| next.checked_rem(self.len()))
            .unwrap_or(0)
    }
}

/// Whether `location` (a redirect's absolute URL) points at the node `base`.
fn same_origin(base: &str, location: &str) -> bool {
    let origin = |text: &str| -> Option<String> {
        let uri: http::Uri = text.parse().ok()?;
        Some(format!(
            "{}://{}",
            uri.scheme_str()?.to_ascii_lowercase(),
            uri.authority()?.as_str().to_ascii_lowercase()
        ))
    };
    matches!((origin(base), origin(location)), (Some(a), Some(b)) if a == b)
}

/// Whether an answer with `status` means "this node did not handle the request": sealed
/// (503) or the `sys/health` codes of standbys (429, 472, 473). Safe to send to another
/// node whatever the method.
pub(crate) fn not_handled(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 472 | 473 | 503)
}

/// Whether an answer with `status` is worth another node for a request that may be
/// repeated: also a standby's redirect (307/308) and the 5xx it gives while forwarding to
/// a dead leader fails. Either may come after the request was forwarded and applied, so
/// only reads and check-and-set writes move on after them.
pub(crate) fn worth_another_node(status: StatusCode) -> bool {
    not_handled(status) || matches!(status.as_u16(), 307 | 308 | 500 | 502 | 504)
}

/// What one node said to `sys/health`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Initialized, unsealed and active (200).
    Active,
    /// Unsealed standby (429); it forwards requests to the active node.
    Standby,
    /// Performance standby (473) or DR secondary (472).
    OtherStandby,
    /// Sealed (503).
    Sealed,
    /// Not initialized (501).
    Uninitialized,
    /// Another status.
    Status(u16),
    /// No answer: the reason (connection refused, timeout), without secrets.
    Unreachable(String),
}

impl NodeState {
    /// Whether the node can serve requests (active, or a standby that forwards them).
    pub fn serving(&self) -> bool {
        matches!(self, Self::Active | Self::Standby | Self::OtherStandby)
    }

    pub(crate) fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            200 => Self::Active,
            429 => Self::Standby,
            472 | 473 => Self::OtherStandby,
            503 => Self::Sealed,
            501 => Self::Uninitialized,
            other => Self::Status(other),
        }
    }
}

/// `active`, `standby`, `performance-standby`, `sealed`, `uninitialized`, `status N` or
/// `unreachable: REASON`.
impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Active => f.write_str("active"),
            Self::Standby => f.write_str("standby"),
            Self::OtherStandby => f.write_str("performance-standby"),
            Self::Sealed => f.write_str("sealed"),
            Self::Uninitialized => f.write_str("uninitialized"),
            Self::Status(code) => write!(f, "status {code}"),
            Self::Unreachable(reason) => write!(f, "unreachable: {reason}"),
        }
    }
}

/// One node of [`VaultClient::node_health`](crate::VaultClient::node_health).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeHealth {
    /// The configured address.
    pub address: String,
    /// What it answered.
    pub state: NodeState,
    /// Whether requests go to this node now.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Nodes {
        Nodes::new(vec![
            "http://127.0.0.1:8200".into(),
            "http://127.0.0.1:8210".into(),
            "http://127.0.0.1:8220".into(),
        ])
    }

    #[test]
    fn next_goes_round_and_follows_only_configured_redirects() {
        let nodes = three();
        assert_eq!(nodes.next(0, None), 1);
        assert_eq!(nodes.next(2, None), 0);
        assert_eq!(
            nodes.next(0, Some("http://127.0.0.1:8220/v1/secret/data/x")),
            2
        );
        // A redirect elsewhere is never followed: the next configured node instead.
        assert_eq!(nodes.next(0, Some("http://evil.example:8220/v1/x")), 1);
        assert_eq!(nodes.next(0, Some("https://127.0.0.1:8220/v1/x")), 1);
        assert_eq!(nodes.next(1, Some("not a url")), 2);
        assert_eq!(nodes.next(usize::MAX, None), 0);
    }

    #[test]
    fn a_failure_does_not_undo_another_requests_move() {
        let nodes = three();
        nodes.failed(0, 1);
        assert_eq!(nodes.current(), 1);
        // A late failure report about node 0 leaves the client on node 1.
        nodes.failed(0, 2);
        assert_eq!(nodes.current(), 1);
        nodes.answered(2);
        assert_eq!(nodes.current(), 2);
    }

    #[test]
    fn statuses_that_move_on() {
        for code in [429, 472, 473, 503] {
            assert!(not_handled(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 204, 307, 308, 400, 403, 404, 500, 502] {
            assert!(!not_handled(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        assert!(worth_another_node(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(worth_another_node(StatusCode::TEMPORARY_REDIRECT));
        assert!(!worth_another_node(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn health_states() {
        assert_eq!(NodeState::from_status(StatusCode::OK), NodeState::Active);
        assert_eq!(
            NodeState::from_status(StatusCode::TOO_MANY_REQUESTS),
            NodeState::Standby
        );
        assert!(NodeState::from_status(StatusCode::from_u16(473).unwrap()).serving());
        assert!(!NodeState::from_status(StatusCode::SERVICE_UNAVAILABLE).serving());
    }
}
