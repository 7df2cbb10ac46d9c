//! The token lifecycle: log in, remember the lease, renew in the background before expiry,
//! log in again when renewal is refused or the max TTL is near, one login at a time.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;
use strongroom_core::{Error, ErrorKind};
use strongroom_http::Retry;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::auth::{self, Auth, Token};
use crate::client::{Call, Transport};
use crate::error::{Context as Ctx, malformed};
use crate::json;
use crate::ttl::{self, deadline};

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
    /// How long after obtaining a token with `ttl` to refresh it, or `None` never. Never
    /// more than `ttl` and never a panic, whatever the TTL or the policy's numbers.
    fn offset(self, ttl: Duration) -> Option<Duration> {
        let half = ttl.checked_div(2).unwrap_or_default();
        match self {
            Self::Fraction(f) => {
                // NaN (which `clamp` passes through) falls back to the default fraction.
                let f = if f.is_nan() {
                    2.0 / 3.0
                } else {
                    f.clamp(0.1, 0.95)
                };
                Some(Duration::try_from_secs_f64(ttl.as_secs_f64() * f).unwrap_or(half))
            }
            Self::BeforeExpiry(margin) => Some(match margin.checked_mul(2) {
                Some(twice) if ttl > twice => ttl.saturating_sub(margin),
                _ => half,
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
    /// Refused or failed renewals (each retry counts).
    pub renewal_failures: u64,
    /// Requests retried after a 403 caused by a bad token and a new login.
    pub retries_after_403: u64,
    /// Times the background renewal task panicked and was restarted. Always 0 unless there
    /// is a bug; a health check can alert on it.
    pub renewal_task_panics: u64,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    login_failures: AtomicU64,
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
    retries_after_403: AtomicU64,
    renewal_task_panics: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The first wait after a renewal or login failed for a reason that may pass.
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const RETRY_CAP: Duration = Duration::from_secs(30);
/// The shortest wait, so a server that fails at once is not called in a tight loop.
const RETRY_FLOOR: Duration = Duration::from_millis(100);

/// How long to wait after the `failures`-th failure in a row: exponential from
/// [`RETRY_FIRST`] up to [`RETRY_CAP`], "equal jitter" (half fixed, half random, so many
/// clients spread out but none retries at once), and never past `until` (the token's
/// expiry) by more than [`RETRY_FLOOR`]: the last attempts crowd in before it. Once `until`
/// has passed, the backoff alone applies.
fn retry_pause(failures: u32, until: Option<Instant>, now: Instant) -> Duration {
    let ceiling = RETRY_FIRST
        .checked_mul(1u32 << failures.saturating_sub(1).min(16))
        .unwrap_or(RETRY_CAP)
        .min(RETRY_CAP);
    let half = ceiling.checked_div(2).unwrap_or_default();
    let wait = half.saturating_add(strongroom_http::full_jitter(half, random_u64()));
    // Before expiry, at most half of what is left; once it has passed (a login failing
    // after the token expired), the backoff alone, so a down server gets no login storm.
    let left = until.filter(|end| *end > now).map_or(Duration::MAX, |end| {
        end.saturating_duration_since(now)
            .checked_div(2)
            .unwrap_or_default()
    });
    wait.min(left).max(RETRY_FLOOR)
}

/// Randomness for jitter (spread, not secrecy): each `RandomState` is keyed afresh.
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// Whether a failed renewal or lookup is a refusal that retrying cannot change: the token
/// is invalid, expired or revoked, or may not be renewed (401, 403). Everything else (5xx,
/// timeouts, refused connections, garbage answers) may pass.
fn is_definitive(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
    )
}

/// What one refresh attempt left behind.
enum Refresh {
    /// The token is good for another period (renewed, or replaced by a login).
    Done,
    /// Failed for a reason that may pass: try again after a pause.
    Retry,
    /// Nothing more to do for this token (not renewable, or renewal refused for good).
    Stopped,
}

/// Runs `future`, turning a panic inside it into `Err` instead of killing the task.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = Result<(), ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
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
        self.ttl.map(|ttl| deadline(self.obtained, ttl))
    }

    /// Expired, or so close to it that a request would race the expiry.
    fn expired(&self, now: Instant) -> bool {
        self.ttl.is_some_and(|ttl| {
            let slack = ttl
                .checked_div(20)
                .unwrap_or_default()
                .min(Duration::from_millis(500));
            deadline(now, slack) >= deadline(self.obtained, ttl)
        })
    }

    fn refresh_at(&self, policy: RenewPolicy) -> Option<Instant> {
        if !self.refresh {
            return None;
        }
        let ttl = self.ttl?;
        Some(deadline(self.obtained, policy.offset(ttl)?))
    }

    /// The same token, no longer refreshed by the background task.
    fn without_refresh(&self) -> Self {
        Self {
            token: self.token.clone(),
            generation: self.generation,
            obtained: self.obtained,
            ttl: self.ttl,
            increment: self.increment,
            renewable: false,
            refresh: false,
            capped: self.capped,
        }
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
    /// Why renewal of a static token stopped for good (refused, or expired while Vault
    /// could not be reached); shown in the error callers get once the token is unusable.
    renewal_stopped: Mutex<Option<String>>,
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
            renewal_stopped: Mutex::new(None),
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
            renewal_task_panics: c.renewal_task_panics.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_retry_after_403(&self) {
        bump(&self.counters.retries_after_403);
    }

    /// Why the renewal of a static token stopped for good, if it did.
    pub(crate) fn renewal_stopped(&self) -> Option<String> {
        self.renewal_stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the background renewal task is running now (false before the first request,
    /// with [`RenewPolicy::Never`], outside a tokio runtime, and after the client dropped).
    pub(crate) fn renewal_task_running(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    fn snapshot(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the current token, unless a newer login already replaced the one `only_if`
    /// names.
    fn store(&self, next: Arc<Current>, only_if: Option<u64>) {
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(expected) = only_if
            && slot.as_ref().is_some_and(|c| c.generation != expected)
        {
            return;
        }
        *slot = Some(next);
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
        if let (Auth::Token(_), Some(why)) = (&self.auth, self.renewal_stopped()) {
            return Err(Error::Unauthenticated {
                backend: crate::BACKEND,
                message: format!(
                    "the static Vault token is no longer usable and token auth cannot log in \
                     again; its renewal stopped: {why}"
                ),
            });
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
                let generation = self
                    .generations
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_add(1);
                tracing::debug!(
                    backend = crate::BACKEND,
                    method = self.auth.method(),
                    ttl_secs = lease.ttl.map(|t| t.as_secs()),
                    renewable = lease.renewable,
                    generation,
                    "vault login"
                );
                let current = Arc::new(Current {
                    token,
                    generation,
                    obtained: started,
                    ttl: lease.ttl,
                    increment: lease.ttl,
                    renewable: lease.renewable,
                    refresh: lease.ttl.is_some(),
                    capped: false,
                });
                self.store(Arc::clone(&current), None);
                Ok(current)
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
        let ctx = Ctx::op("token lookup-self");
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
        // The task holds only a weak reference: a client dropped without `stop` (a runtime
        // shutting down, say) does not leave the manager alive forever.
        let handle = runtime.spawn(Self::supervise(Arc::downgrade(self)));
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

    /// The renewal task. Nothing in it should panic; should something still do so (a bug),
    /// the panic is caught, counted in [`TokenStats::renewal_task_panics`], logged as an
    /// error, and renewal starts over a second later: the task never dies silently.
    async fn supervise(manager: std::sync::Weak<Self>) {
        loop {
            let Some(strong) = manager.upgrade() else {
                return;
            };
            let outcome = CatchPanic(Box::pin(strong.run())).await;
            let Some(strong) = manager.upgrade() else {
                return;
            };
            match outcome {
                Ok(()) => return,
                Err(()) => {
                    bump(&strong.counters.renewal_task_panics);
                    tracing::error!(
                        backend = crate::BACKEND,
                        "vault token renewal task panicked; restarting it"
                    );
                }
            }
            drop(strong);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Sleep until the refresh point of the current token, then renew it or log in again;
    /// start over whenever the token changes. A failure that may pass (5xx, timeout, no
    /// connection, a garbage answer) is retried with jittered exponential backoff until the
    /// token expires; only a definitive refusal ends the renewal of a token.
    async fn run(self: Arc<Self>) {
        if matches!(self.auth, Auth::Token(_)) {
            self.learn_static_lease().await;
        }
        let mut failures: u32 = 0;
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
                failures = 0;
                continue;
            };
            // A token swapped in meanwhile restarts the wait; only the deadline renews.
            if tokio::time::timeout_at(at, &mut changed).await.is_ok() {
                failures = 0;
                continue;
            }
            match self.refresh(&current).await {
                Refresh::Done | Refresh::Stopped => failures = 0,
                Refresh::Retry => {
                    failures = failures.saturating_add(1);
                    let until = current.expires_at();
                    let pause = retry_pause(failures, until, Instant::now());
                    tracing::debug!(
                        backend = crate::BACKEND,
                        failures,
                        pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "vault token refresh will be retried"
                    );
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Renews `current` or replaces it.
    async fn refresh(&self, current: &Current) -> Refresh {
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
                    self.store(Arc::new(next), Some(current.generation));
                    return Refresh::Done;
                }
                Err(error) => {
                    bump(&self.counters.renewal_failures);
                    let definitive = is_definitive(&error);
                    tracing::warn!(
                        backend = crate::BACKEND,
                        error = %error,
                        definitive,
                        "vault token renewal failed"
                    );
                    let expired = current.expired(Instant::now());
                    if !definitive && !expired {
                        // Keep the token: renewing it again later is cheaper than a login,
                        // and a login may spend a one-use secret id.
                        return Refresh::Retry;
                    }
                    if !self.auth.can_login() {
                        let why = if definitive {
                            format!("renewal refused: {error}")
                        } else {
                            format!("the token expired while renewal kept failing: {error}")
                        };
                        self.stop_renewal(why);
                        self.store(
                            Arc::new(current.without_refresh()),
                            Some(current.generation),
                        );
                        return Refresh::Stopped;
                    }
                }
            }
        }
        if self.auth.can_login() {
            return match self.relogin(Some(current.generation)).await {
                Ok(_) => Refresh::Done,
                Err(_) => Refresh::Retry,
            };
        }
        // A static token that cannot be renewed (or reached its max TTL): nothing more to
        // do until it expires.
        self.store(
            Arc::new(current.without_refresh()),
            Some(current.generation),
        );
        Refresh::Stopped
    }

    /// Records why the renewal of a static token stopped for good, for callers to see.
    fn stop_renewal(&self, why: String) {
        tracing::error!(
            backend = crate::BACKEND,
            reason = %why,
            "vault token renewal stopped"
        );
        *self
            .renewal_stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// `auth/token/renew-self`, asking for the TTL the token was issued with.
    ///
    /// Sent with [`Retry::Always`]: repeating a renewal only sets the same expiry again
    /// (now + increment, capped by the max TTL), so a renewal whose answer was lost is safe
    /// to send twice. The renewal loop retries further failures itself.
    async fn renew(&self, current: &Current) -> Result<auth::Lease, Error> {
        let ctx = Ctx::op("token renew-self");
        let body = match current.increment {
            Some(increment) => {
                serde_json::json!({ "increment": format!("{}s", increment.as_secs()) })
            }
            None => serde_json::json!({}),
        };
        let call = Call::new(Method::POST, "auth/token/renew-self".to_owned())
            .json(&body)
            .namespace(self.namespace.clone())
            .retry(Retry::Always);
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
    /// renewable token with a TTL (a periodic token, say) is kept alive. A lookup that
    /// fails for a reason that may pass is retried with backoff; a refusal ends it.
    async fn learn_static_lease(&self) {
        let mut failures: u32 = 0;
        loop {
            let Some(current) = self.snapshot() else {
                return;
            };
            match self.lookup_lease(&current).await {
                Ok(Some(next)) => {
                    self.store(Arc::new(next), Some(current.generation));
                    return;
                }
                Ok(None) => return,
                Err(error) if is_definitive(&error) => {
                    tracing::error!(
                        backend = crate::BACKEND,
                        error = %error,
                        "vault token lookup refused; the token will not be renewed"
                    );
                    self.stop_renewal(format!("lookup-self refused: {error}"));
                    return;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        backend = crate::BACKEND,
                        error = %error,
                        failures,
                        "vault token lookup failed; will retry"
                    );
                    tokio::time::sleep(retry_pause(failures, None, Instant::now())).await;
                }
            }
        }
    }

    /// `lookup-self` of a static token: its lease, or `None` for a token that never
    /// expires.
    async fn lookup_lease(&self, current: &Current) -> Result<Option<Current>, Error> {
        let ctx = Ctx::op("token lookup-self");
        let call = Call::new(Method::GET, "auth/token/lookup-self".to_owned())
            .namespace(self.namespace.clone());
        let started = Instant::now();
        let answer = self
            .transport
            .send(&call, Some(&current.token), &ctx)
            .await?
            .check(&ctx, Some(current.token.expose()))?;
        let mut value = answer.json(&ctx)?;
        let data = value.get("data");
        let secs = |name: &str| {
            ttl::lease(data.and_then(|d| d.get(name)))
                .map_err(|bad| malformed(&ctx, &bad.describe(&format!("data.{name}"))))
        };
        let ttl = secs("ttl");
        let creation_ttl = secs("creation_ttl");
        let renewable = data
            .and_then(|d| d.get("renewable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        json::scrub(&mut value);
        let ttl = ttl?;
        let increment = creation_ttl?.or(ttl);
        Ok(ttl.map(|ttl| Current {
            token: current.token.clone(),
            generation: current.generation,
            obtained: started,
            ttl: Some(ttl),
            increment,
            renewable,
            refresh: renewable,
            capped: false,
        }))
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

    #[test]
    fn hostile_ttls_never_panic_the_schedule() {
        let now = Instant::now();
        for ttl in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
            ttl::MAX_TTL,
        ] {
            for policy in [
                RenewPolicy::default(),
                RenewPolicy::Fraction(f64::NAN),
                RenewPolicy::Fraction(f64::INFINITY),
                RenewPolicy::Fraction(-1.0),
                RenewPolicy::BeforeExpiry(Duration::MAX),
                RenewPolicy::BeforeExpiry(Duration::ZERO),
            ] {
                let offset = policy.offset(ttl).unwrap();
                assert!(offset <= ttl, "{policy:?} {ttl:?} -> {offset:?}");
                let c = Current {
                    ttl: Some(ttl),
                    increment: Some(ttl),
                    ..current(None)
                };
                // None of these may panic, whatever the TTL.
                let _ = (c.expires_at(), c.refresh_at(policy), c.expired(now));
                let lease = auth::Lease {
                    token: None,
                    ttl: Some(ttl),
                    renewable: true,
                };
                let _ = c.renewed(now, &lease).refresh_at(policy);
            }
        }
        assert_eq!(
            RenewPolicy::Fraction(f64::NAN).offset(Duration::from_secs(30)),
            RenewPolicy::default().offset(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_pauses_grow_are_jittered_bounded_and_stop_at_expiry() {
        let now = Instant::now();
        let first = retry_pause(1, None, now);
        assert!(
            first >= RETRY_FIRST / 2 && first <= RETRY_FIRST,
            "{first:?}"
        );
        for failures in [10, 20, u32::MAX] {
            let pause = retry_pause(failures, None, now);
            assert!(pause >= RETRY_CAP / 2 && pause <= RETRY_CAP, "{pause:?}");
        }
        // Two seconds before expiry: at most half of what is left, so attempts crowd in.
        let pause = retry_pause(20, Some(now + Duration::from_secs(2)), now);
        assert!(pause <= Duration::from_secs(1), "{pause:?}");
        // Just before expiry: the floor, never zero (no busy loop).
        assert_eq!(
            retry_pause(3, Some(now + Duration::from_millis(1)), now),
            RETRY_FLOOR
        );
        // Past expiry (logins failing after the token expired): the backoff, no storm.
        for failures in [10, 20] {
            let pause = retry_pause(failures, Some(now), now + Duration::from_secs(1));
            assert!(pause >= RETRY_CAP / 2, "{pause:?}");
        }
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|_| retry_pause(10, None, now)).collect();
        assert!(spread.len() > 1, "no jitter: {spread:?}");
    }

    #[test]
    fn only_401_and_403_stop_renewal() {
        let unavailable = Error::Unavailable {
            backend: crate::BACKEND,
            message: "sealed".to_owned(),
            retry_after: None,
        };
        assert!(!is_definitive(&unavailable));
        assert!(!is_definitive(&Error::Backend {
            backend: crate::BACKEND,
            message: "garbage".to_owned(),
            source: None,
        }));
        assert!(is_definitive(&Error::Unauthenticated {
            backend: crate::BACKEND,
            message: "revoked".to_owned(),
        }));
        assert!(is_definitive(&Error::PermissionDenied {
            backend: crate::BACKEND,
            key: None,
            message: "permission denied".to_owned(),
        }));
    }

    #[tokio::test]
    async fn a_panic_in_the_task_is_caught() {
        let caught = CatchPanic(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("boom");
        }))
        .await;
        assert!(caught.is_err());
        assert!(CatchPanic(Box::pin(async {})).await.is_ok());
    }
}
