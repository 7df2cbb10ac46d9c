//! The token lifecycle: log in, remember the lease, renew in the background before expiry,
//! log in again when renewal is refused or the max TTL is near, one login at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;
use strongroom_core::Error;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::auth::{self, Auth, Token};
use crate::client::{Call, Transport};
use crate::error::Context;
use crate::json;

/// When the background task renews a token.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum RenewPolicy {
    /// Renew once this fraction of the TTL has passed (clamped to 0.1..=0.95). The default
    /// is two thirds.
    Fraction(f64),
    /// Renew this long before expiry (the `vault agent` habit of "60 s before"). A TTL
    /// shorter than twice the margin is renewed at half its length instead.
    BeforeExpiry(Duration),
    /// No background task: a token is replaced only when it has expired or is refused
    /// (logins still happen on demand).
    Never,
}

impl Default for RenewPolicy {
    fn default() -> Self {
        Self::Fraction(2.0 / 3.0)
    }
}

impl RenewPolicy {
    /// How long after obtaining a token with `ttl` to refresh it, or `None` never.
    fn offset(self, ttl: Duration) -> Option<Duration> {
        match self {
            Self::Fraction(f) => Some(ttl.mul_f64(f.clamp(0.1, 0.95))),
            Self::BeforeExpiry(margin) => Some(if ttl > margin * 2 {
                ttl - margin
            } else {
                ttl / 2
            }),
            Self::Never => None,
        }
    }
}

/// Counters of the token lifecycle, from [`VaultClient::stats`](crate::VaultClient::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenStats {
    /// Successful logins (AppRole, Kubernetes).
    pub logins: u64,
    /// Refused or failed logins.
    pub login_failures: u64,
    /// Successful `renew-self` calls.
    pub renewals: u64,
    /// Refused or failed renewals.
    pub renewal_failures: u64,
    /// Requests retried after a 403 caused by a bad token and a new login.
    pub retries_after_403: u64,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    login_failures: AtomicU64,
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
    retries_after_403: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The token in use and what is known of its lease.
pub(crate) struct Current {
    pub(crate) token: Token,
    /// Changes with each login (not with a renewal): "the token that failed" is told from
    /// "a newer one someone already got".
    pub(crate) generation: u64,
    /// When the lease below started (taken before the request, so it errs early).
    obtained: Instant,
    /// Lease length from `obtained`; `None` for tokens that never expire or are unknown.
    ttl: Option<Duration>,
    /// What to ask for at renewal: the TTL the token was first issued with.
    increment: Option<Duration>,
    renewable: bool,
    /// Schedule a refresh at all (false for a static token that cannot be renewed).
    refresh: bool,
    /// The last renewal gave less than asked: the max TTL is near, log in next time.
    capped: bool,
}

impl Current {
    fn expires_at(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.obtained + ttl)
    }

    /// Expired, or so close to it that a request would race the expiry.
    fn expired(&self, now: Instant) -> bool {
        self.ttl.is_some_and(|ttl| {
            let slack = (ttl / 20).min(Duration::from_millis(500));
            now + slack >= self.obtained + ttl
        })
    }

    fn refresh_at(&self, policy: RenewPolicy) -> Option<Instant> {
        if !self.refresh {
            return None;
        }
        let ttl = self.ttl?;
        Some(self.obtained + policy.offset(ttl)?)
    }

    fn renewed(&self, obtained: Instant, lease: &auth::Lease) -> Self {
        Self {
            token: self.token.clone(),
            generation: self.generation,
            obtained,
            ttl: lease.ttl,
            increment: self.increment,
            renewable: lease.renewable,
            refresh: lease.renewable || self.refresh,
            capped: match (lease.ttl, self.increment) {
                (Some(got), Some(asked)) => got < asked,
                _ => false,
            },
        }
    }
}

/// Holds the token, renews it, replaces it; shared by every handle of one client.
pub(crate) struct TokenManager {
    auth: Auth,
    transport: Transport,
    namespace: Option<Arc<str>>,
    policy: RenewPolicy,
    current: RwLock<Option<Arc<Current>>>,
    generations: AtomicU64,
    /// Held during a login: concurrent callers wait and then share its result.
    login_lock: tokio::sync::Mutex<()>,
    /// Wakes the renewal task when the token changes.
    changed: Notify,
    counters: Counters,
    started: AtomicBool,
    task: Mutex<Option<AbortHandle>>,
}

impl TokenManager {
    pub(crate) fn new(
        auth: Auth,
        transport: Transport,
        namespace: Option<Arc<str>>,
        policy: RenewPolicy,
    ) -> Arc<Self> {
        let current = match &auth {
            Auth::Token(token) => Some(Arc::new(Current {
                token: token.clone(),
                generation: 1,
                obtained: Instant::now(),
                ttl: None,
                increment: None,
                renewable: false,
                refresh: false,
                capped: false,
            })),
            _ => None,
        };
        let generation = u64::from(current.is_some());
        Arc::new(Self {
            auth,
            transport,
            namespace,
            policy,
            current: RwLock::new(current),
            generations: AtomicU64::new(generation),
            login_lock: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
            counters: Counters::default(),
            started: AtomicBool::new(false),
            task: Mutex::new(None),
        })
    }

    pub(crate) fn auth_method(&self) -> &'static str {
        self.auth.method()
    }

    pub(crate) fn auth_namespace(&self) -> Option<Arc<str>> {
        self.namespace.clone()
    }

    pub(crate) fn can_login(&self) -> bool {
        self.auth.can_login()
    }

    pub(crate) fn stats(&self) -> TokenStats {
        let c = &self.counters;
        TokenStats {
            logins: c.logins.load(Ordering::Relaxed),
            login_failures: c.login_failures.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            renewal_failures: c.renewal_failures.load(Ordering::Relaxed),
            retries_after_403: c.retries_after_403.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_retry_after_403(&self) {
        bump(&self.counters.retries_after_403);
    }

    fn snapshot(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the current token, unless a newer login already replaced the one `only_if`
    /// names.
    fn store(&self, next: Current, only_if: Option<u64>) {
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(expected) = only_if
            && slot.as_ref().is_some_and(|c| c.generation != expected)
        {
            return;
        }
        *slot = Some(Arc::new(next));
        drop(slot);
        self.changed.notify_waiters();
    }

    /// The token to use now: the current one, or a new login when there is none or it has
    /// expired. Starts the renewal task on first use.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Arc<Current>, Error> {
        self.start();
        match self.snapshot() {
            Some(current) if !current.expired(Instant::now()) => Ok(current),
            stale => self.relogin(stale.map(|c| c.generation)).await,
        }
    }

    /// Logs in, unless someone else already replaced the token of generation `stale`
    /// while this caller waited for the login lock: then that newer token is returned.
    pub(crate) async fn relogin(&self, stale: Option<u64>) -> Result<Arc<Current>, Error> {
        let _one_at_a_time = self.login_lock.lock().await;
        if let Some(current) = self.snapshot()
            && Some(current.generation) != stale
            && !current.expired(Instant::now())
        {
            return Ok(current);
        }
        let started = Instant::now();
        match auth::login(&self.auth, &self.transport, self.namespace.as_ref()).await {
            Ok(lease) => {
                bump(&self.counters.logins);
                let token = lease.token.ok_or_else(|| Error::Backend {
                    backend: crate::BACKEND,
                    message: "login answer without a token".to_owned(),
                    source: None,
                })?;
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(
                    backend = crate::BACKEND,
                    method = self.auth.method(),
                    ttl_secs = lease.ttl.map(|t| t.as_secs()),
                    renewable = lease.renewable,
                    generation,
                    "vault login"
                );
                self.store(
                    Current {
                        token,
                        generation,
                        obtained: started,
                        ttl: lease.ttl,
                        increment: lease.ttl,
                        renewable: lease.renewable,
                        refresh: lease.ttl.is_some(),
                        capped: false,
                    },
                    None,
                );
                Ok(self.snapshot().expect("just stored"))
            }
            Err(error) => {
                bump(&self.counters.login_failures);
                tracing::warn!(
                    backend = crate::BACKEND,
                    method = self.auth.method(),
                    error = %error,
                    "vault login failed"
                );
                Err(error)
            }
        }
    }

    /// Whether the server still accepts `current`'s token (`lookup-self` answers 2xx). Any
    /// answer other than 401/403 counts as valid: a 403 on a request is then a policy
    /// refusal, and an unreachable server is not a reason to log in.
    pub(crate) async fn is_valid(&self, current: &Current) -> bool {
        let ctx = Context::op("token lookup-self");
        let call = Call::new(Method::GET, "auth/token/lookup-self".to_owned())
            .namespace(self.namespace.clone());
        match self.transport.send(&call, Some(&current.token), &ctx).await {
            Ok(answer) => !matches!(
                answer.status,
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
            ),
            Err(_) => true,
        }
    }

    /// Spawns the renewal task once, when there is a runtime and a policy that renews.
    fn start(self: &Arc<Self>) {
        if self.policy == RenewPolicy::Never || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.started.store(false, Ordering::Release);
            return;
        };
        let handle = runtime.spawn(Arc::clone(self).run());
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle.abort_handle());
    }

    /// Stops the renewal task (when the last client handle drops).
    pub(crate) fn stop(&self) {
        if let Some(handle) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            handle.abort();
        }
    }

    /// The renewal task: sleep until the refresh point of the current token, then renew it
    /// or log in again; start over whenever the token changes.
    async fn run(self: Arc<Self>) {
        if matches!(self.auth, Auth::Token(_)) {
            self.learn_static_lease().await;
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(current) = self.snapshot() else {
                changed.await;
                continue;
            };
            let Some(at) = current.refresh_at(self.policy) else {
                changed.await;
                continue;
            };
            // A token swapped in meanwhile restarts the wait; only the deadline renews.
            if tokio::time::timeout_at(at, &mut changed).await.is_ok() {
                continue;
            }
            if !self.refresh(&current).await {
                // Failed: wait a little so a down server does not get a login storm, but
                // not past the token's expiry if it still has time.
                let pause = current
                    .expires_at()
                    .map_or(Duration::from_secs(1), |end| {
                        end.saturating_duration_since(Instant::now()) / 2
                    })
                    .clamp(Duration::from_millis(200), Duration::from_secs(5));
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Renews `current` or replaces it; true when the token is good for another period.
    async fn refresh(&self, current: &Current) -> bool {
        if current.renewable && !current.capped {
            let started = Instant::now();
            match self.renew(current).await {
                Ok(lease) => {
                    bump(&self.counters.renewals);
                    let next = current.renewed(started, &lease);
                    tracing::debug!(
                        backend = crate::BACKEND,
                        ttl_secs = lease.ttl.map(|t| t.as_secs()),
                        capped = next.capped,
                        "vault token renewed"
                    );
                    self.store(next, Some(current.generation));
                    return true;
                }
                Err(error) => {
                    bump(&self.counters.renewal_failures);
                    tracing::warn!(
                        backend = crate::BACKEND,
                        error = %error,
                        "vault token renewal failed"
                    );
                }
            }
        }
        if self.auth.can_login() {
            return self.relogin(Some(current.generation)).await.is_ok();
        }
        // A static token that cannot be renewed: nothing more to do until it changes.
        self.store(
            Current {
                token: current.token.clone(),
                generation: current.generation,
                obtained: current.obtained,
                ttl: current.ttl,
                increment: current.increment,
                renewable: false,
                refresh: false,
                capped: current.capped,
            },
            Some(current.generation),
        );
        true
    }

    /// `auth/token/renew-self`, asking for the TTL the token was issued with.
    async fn renew(&self, current: &Current) -> Result<auth::Lease, Error> {
        let ctx = Context::op("token renew-self");
        let body = match current.increment {
            Some(increment) => {
                serde_json::json!({ "increment": format!("{}s", increment.as_secs()) })
            }
            None => serde_json::json!({}),
        };
        let call = Call::new(Method::POST, "auth/token/renew-self".to_owned())
            .json(&body)
            .namespace(self.namespace.clone())
            .idempotent();
        let answer = self
            .transport
            .send(&call, Some(&current.token), &ctx)
            .await?
            .check(&ctx, Some(current.token.expose()))?;
        let mut value = answer.json(&ctx)?;
        let lease = auth::lease_of(&mut value, &ctx, false);
        json::scrub(&mut value);
        lease
    }

    /// For a static token: learn its TTL and renewability with `lookup-self`, so a
    /// renewable token with a TTL (a periodic token, say) is kept alive.
    async fn learn_static_lease(&self) {
        let Some(current) = self.snapshot() else {
            return;
        };
        let ctx = Context::op("token lookup-self");
        let call = Call::new(Method::GET, "auth/token/lookup-self".to_owned())
            .namespace(self.namespace.clone());
        let started = Instant::now();
        let answer = match self.transport.send(&call, Some(&current.token), &ctx).await {
            Ok(answer) if answer.status.is_success() => answer,
            Ok(answer) => {
                let error = answer.error(&ctx, Some(current.token.expose()));
                tracing::warn!(backend = crate::BACKEND, error = %error, "vault token lookup failed");
                return;
            }
            Err(error) => {
                tracing::warn!(backend = crate::BACKEND, error = %error, "vault token lookup failed");
                return;
            }
        };
        let Ok(mut value) = answer.json(&ctx) else {
            return;
        };
        let data = value.get("data");
        let secs = |name: &str| {
            data.and_then(|d| d.get(name))
                .and_then(Value::as_u64)
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
        };
        let ttl = secs("ttl");
        let increment = secs("creation_ttl").or(ttl);
        let renewable = data
            .and_then(|d| d.get("renewable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        json::scrub(&mut value);
        if ttl.is_some() {
            self.store(
                Current {
                    token: current.token.clone(),
                    generation: current.generation,
                    obtained: started,
                    ttl,
                    increment,
                    renewable,
                    refresh: renewable,
                    capped: false,
                },
                Some(current.generation),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renew_points() {
        let ttl = Duration::from_secs(30);
        assert_eq!(
            RenewPolicy::default().offset(ttl),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            RenewPolicy::BeforeExpiry(Duration::from_secs(60)).offset(Duration::from_secs(3600)),
            Some(Duration::from_secs(3540))
        );
        assert_eq!(
            RenewPolicy::BeforeExpiry(Duration::from_secs(60)).offset(Duration::from_secs(5)),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            RenewPolicy::Fraction(5.0).offset(Duration::from_secs(10)),
            Some(Duration::from_millis(9500))
        );
        assert_eq!(RenewPolicy::Never.offset(ttl), None);
    }

    fn current(ttl: Option<u64>) -> Current {
        Current {
            token: Token::new("t"),
            generation: 1,
            obtained: Instant::now(),
            ttl: ttl.map(Duration::from_secs),
            increment: ttl.map(Duration::from_secs),
            renewable: true,
            refresh: true,
            capped: false,
        }
    }

    #[test]
    fn expiry_and_capping() {
        let now = Instant::now();
        assert!(!current(None).expired(now + Duration::from_secs(1_000_000)));
        let five = current(Some(5));
        assert!(!five.expired(now));
        assert!(five.expired(now + Duration::from_secs(5)));
        let shorter = auth::Lease {
            token: None,
            ttl: Some(Duration::from_secs(3)),
            renewable: true,
        };
        assert!(five.renewed(now, &shorter).capped);
        let full = auth::Lease {
            token: None,
            ttl: Some(Duration::from_secs(5)),
            renewable: true,
        };
        assert!(!five.renewed(now, &full).capped);
    }
}
