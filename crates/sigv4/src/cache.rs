//! [`CachingProvider`]: caches credentials, refreshes them before they expire, and turns
//! concurrent refreshes into one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use crate::credentials::Credentials;
use crate::error::CredentialsError;
use crate::provider::{ProvideCredentials, ProvideFuture};
use crate::single_flight::{Flight, Outcome, lock};

/// How long before expiry [`CachingProvider`] refreshes by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Wraps a provider: hands out its last credentials until [`DEFAULT_REFRESH_MARGIN`] (or the
/// configured margin) before they expire, then asks it again.
///
/// While a refresh runs, every caller waits on that same refresh: fifty concurrent calls make
/// one call to the inner provider. No runtime is needed: the callers themselves drive the
/// refresh (see the `single_flight` module), and a caller dropped midway does not cancel it
/// for the others.
///
/// - Credentials without an expiry are kept until [`CachingProvider::invalidate`].
/// - Credentials that arrive with less than the margin left are refreshed after half of
///   their remaining life, rather than at every call.
/// - If a refresh fails while the cached credentials have not yet expired, those are returned
///   (and the next call tries again); otherwise the error goes to every waiting caller.
pub struct CachingProvider<P> {
    inner: Arc<P>,
    state: Arc<Mutex<State>>,
    refresh_margin: Duration,
    clock: Clock,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    flight: Option<Arc<Flight>>,
}

struct Cached {
    credentials: Credentials,
    /// When to refresh; `None` for credentials that never expire.
    refresh_at: Option<SystemTime>,
}

impl Cached {
    fn new(credentials: Credentials, now: SystemTime, margin: Duration) -> Self {
        // The expiry came from a server or a file: every step is checked. A far-future
        // expiry leaves `expiry - margin` representable; if a step cannot be computed, the
        // earlier of the two candidates (refresh now) is the safe answer.
        let refresh_at = credentials.expiry().map(|expiry| {
            let remaining = expiry.duration_since(now).unwrap_or(Duration::ZERO);
            if remaining > margin {
                expiry.checked_sub(margin).unwrap_or(now)
            } else {
                now.checked_add(remaining.checked_div(2).unwrap_or_default())
                    .unwrap_or(now)
            }
        });
        Self {
            credentials,
            refresh_at,
        }
    }

    fn is_fresh(&self, now: SystemTime) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

impl<P: ProvideCredentials + 'static> CachingProvider<P> {
    /// Caches `inner`'s credentials, refreshing [`DEFAULT_REFRESH_MARGIN`] before expiry.
    pub fn new(inner: P) -> Self {
        Self {
            inner: Arc::new(inner),
            state: Arc::default(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Refreshes `margin` before expiry instead.
    #[must_use]
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Reads the time from `clock` instead of the system clock (for tests).
    #[cfg(test)]
    fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Forgets the cached credentials, so that the next call refreshes (e.g. after a server
    /// said they expired or were revoked). A refresh already running is not affected.
    pub fn invalidate(&self) {
        lock(&self.state).cached = None;
    }

    /// The future that refreshes: calls the inner provider, then records the outcome.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
        let inner = Arc::clone(&self.inner);
        let state = Arc::clone(&self.state);
        let clock = Arc::clone(&self.clock);
        let margin = self.refresh_margin;
        Box::pin(async move {
            let outcome = inner.provide_credentials().await;
            let now = clock();
            let mut state = lock(&state);
            state.flight = None;
            // Credentials that are already expired are as good as none: every request signed
            // with them would be refused one round trip later.
            let outcome = outcome.and_then(|credentials| match credentials.expiry() {
                Some(expiry) if credentials.is_expired_at(now) => Err(CredentialsError::Expired {
                    ago: now.duration_since(expiry).unwrap_or_default(),
                }),
                _ => Ok(credentials),
            });
            match outcome {
                Ok(credentials) => {
                    tracing::debug!(expiry = ?credentials.expiry(), "refreshed cached credentials");
                    state.cached = Some(Cached::new(credentials.clone(), now, margin));
                    Ok(credentials)
                }
                Err(error) => match &state.cached {
                    Some(cached) if !cached.credentials.is_expired_at(now) => {
                        tracing::warn!(%error, "credentials refresh failed; using the cached ones until they expire");
                        Ok(cached.credentials.clone())
                    }
                    _ => Err(error),
                },
            }
        })
    }
}

impl<P: ProvideCredentials + 'static> ProvideCredentials for CachingProvider<P> {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        let now = (self.clock)();
        let flight = {
            let mut state = lock(&self.state);
            if let Some(cached) = &state.cached
                && cached.is_fresh(now)
            {
                return ProvideFuture::ready(Ok(cached.credentials.clone()));
            }
            match &state.flight {
                Some(flight) => Arc::clone(flight),
                None => {
                    let flight = Flight::new(self.refresh());
                    state.flight = Some(Arc::clone(&flight));
                    flight
                }
            }
        };
        ProvideFuture::new(Join {
            flight,
            state: Arc::clone(&self.state),
        })
    }
}

impl<P: fmt::Debug> fmt::Debug for CachingProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingProvider")
            .field("inner", &self.inner)
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

/// One caller waiting on (and helping drive) a [`Flight`].
struct Join {
    flight: Arc<Flight>,
    state: Arc<Mutex<State>>,
}

impl Future for Join {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        this.flight.poll_join(cx, || {
            // The refresh died without recording anything: let the next caller start anew.
            let mut state = lock(&this.state);
            if state
                .flight
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &this.flight))
            {
                state.flight = None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refresh_times_from_absurd_expiries_do_not_overflow() {
        use super::Cached;
        use crate::Credentials;
        use std::time::{Duration, SystemTime};
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let creds = Credentials::new("AKID", "secret");
        // As far as the platform's SystemTime reaches.
        let mut far = now;
        for step in [1u64 << 62, 1 << 50, 1 << 40, 1 << 30] {
            while let Some(next) = far.checked_add(Duration::from_secs(step)) {
                far = next;
            }
        }
        let table = [
            // (expiry, margin, refresh at)
            (
                far,
                Duration::from_secs(300),
                Some(far - Duration::from_secs(300)),
            ),
            (far, Duration::MAX, None),
            (SystemTime::UNIX_EPOCH, Duration::from_secs(300), Some(now)),
            (now, Duration::MAX, Some(now)),
        ];
        for (expiry, margin, expected) in table {
            let cached = Cached::new(creds.clone().with_expiry(expiry), now, margin);
            let at = cached.refresh_at.expect("an expiry gives a refresh time");
            if let Some(expected) = expected {
                assert_eq!(at, expected, "{expiry:?} {margin:?}");
            }
            assert!(at >= now.min(expiry), "{expiry:?} {margin:?}");
        }
    }

    use super::*;
    use crate::error::CredentialsError;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use tokio::sync::{Barrier, Semaphore};

    /// Counts its calls; each call waits at `door` (when set) until the test opens it, then
    /// gives credentials expiring `ttl` after the (fake) clock's time, or an error while
    /// `fail` is set. No test here synchronises by sleeping.
    struct Counting {
        calls: AtomicUsize,
        ttl: Option<Duration>,
        fail: std::sync::atomic::AtomicBool,
        clock: Arc<AtomicU64>,
        door: Option<Arc<Semaphore>>,
    }

    impl Counting {
        fn new(ttl: Option<Duration>, clock: Arc<AtomicU64>) -> Self {
            Self {
                calls: AtomicUsize::new(0),
                ttl,
                fail: false.into(),
                clock,
                door: None,
            }
        }

        /// Makes every call wait until the returned door is opened (`add_permits`).
        fn with_door(mut self) -> (Self, Arc<Semaphore>) {
            let door = Arc::new(Semaphore::new(0));
            self.door = Some(Arc::clone(&door));
            (self, door)
        }
    }

    /// Opens a door for good: every call waiting at it, and every later one, goes through.
    fn open(door: &Semaphore) {
        door.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials(&self) -> ProvideFuture<'_> {
            ProvideFuture::new(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(door) = &self.door {
                    let _pass = door.acquire().await;
                }
                if self.fail.load(Ordering::SeqCst) {
                    return Err(CredentialsError::provider("test", "refused"));
                }
                let mut creds = Credentials::new(format!("AKID{n}"), "secret");
                if let Some(ttl) = self.ttl {
                    creds = creds.with_expiry(fake_now(&self.clock) + ttl);
                }
                Ok(creds)
            })
        }
    }

    fn fake_now(clock: &AtomicU64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))
    }

    fn cached(inner: Counting, clock: &Arc<AtomicU64>) -> Arc<CachingProvider<Counting>> {
        let clock = Arc::clone(clock);
        Arc::new(CachingProvider::new(inner).with_clock(move || fake_now(&clock)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_calls_make_one_inner_call() {
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let (inner, door) =
            Counting::new(Some(Duration::from_secs(3600)), Arc::clone(&clock)).with_door();
        let provider = cached(inner, &clock);
        // Each task asks (joining or starting the refresh), then meets the others at the
        // barrier; the refresh is held at the door until all fifty have asked. Without
        // single flight each would call the provider: fifty calls once the door opens.
        let asked = Arc::new(Barrier::new(51));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let provider = Arc::clone(&provider);
                let asked = Arc::clone(&asked);
                tokio::spawn(async move {
                    let credentials = provider.provide_credentials();
                    asked.wait().await;
                    credentials.await
                })
            })
            .collect();
        asked.wait().await;
        open(&door);
        for task in tasks {
            let creds = task.await.unwrap().unwrap();
            assert_eq!(creds.access_key_id(), "AKID1");
        }
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
        // And the next call is served from the cache.
        provider.provide_credentials().await.unwrap();
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_within_the_margin_before_expiry() {
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let provider = cached(
            Counting::new(Some(Duration::from_secs(600)), Arc::clone(&clock)),
            &clock,
        );
        assert_eq!(
            provider
                .provide_credentials()
                .await
                .unwrap()
                .access_key_id(),
            "AKID1"
        );
        // 4 minutes later: 6 minutes left, more than the 5-minute margin.
        clock.fetch_add(240, Ordering::SeqCst);
        assert_eq!(
            provider
                .provide_credentials()
                .await
                .unwrap()
                .access_key_id(),
            "AKID1"
        );
        // 6 minutes after the start: 4 minutes left, inside the margin.
        clock.fetch_add(120, Ordering::SeqCst);
        assert_eq!(
            provider
                .provide_credentials()
                .await
                .unwrap()
                .access_key_id(),
            "AKID2"
        );
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn margin_is_configurable_and_short_lived_credentials_are_not_refetched_every_call() {
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let inner = Counting::new(Some(Duration::from_secs(60)), Arc::clone(&clock));
        let c = Arc::clone(&clock);
        let provider = CachingProvider::new(inner)
            .with_refresh_margin(Duration::from_secs(120))
            .with_clock(move || fake_now(&c));
        // 60 s of life, 120 s margin: kept for half of it.
        provider.provide_credentials().await.unwrap();
        clock.fetch_add(29, Ordering::SeqCst);
        provider.provide_credentials().await.unwrap();
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
        clock.fetch_add(2, Ordering::SeqCst);
        provider.provide_credentials().await.unwrap();
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn credentials_without_expiry_are_kept_until_invalidated() {
        let clock = Arc::new(AtomicU64::new(0));
        let provider = cached(Counting::new(None, Arc::clone(&clock)), &clock);
        provider.provide_credentials().await.unwrap();
        clock.fetch_add(10 * 365 * 24 * 3600, Ordering::SeqCst);
        provider.provide_credentials().await.unwrap();
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
        provider.invalidate();
        assert_eq!(
            provider
                .provide_credentials()
                .await
                .unwrap()
                .access_key_id(),
            "AKID2"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_refresh_reaches_every_waiter_once_then_is_retried() {
        let clock = Arc::new(AtomicU64::new(0));
        let (inner, door) =
            Counting::new(Some(Duration::from_secs(3600)), Arc::clone(&clock)).with_door();
        inner.fail.store(true, Ordering::SeqCst);
        let provider = cached(inner, &clock);
        let asked = Arc::new(Barrier::new(11));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let provider = Arc::clone(&provider);
                let asked = Arc::clone(&asked);
                tokio::spawn(async move {
                    let credentials = provider.provide_credentials();
                    asked.wait().await;
                    credentials.await
                })
            })
            .collect();
        asked.wait().await;
        open(&door);
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    err,
                    CredentialsError::Provider {
                        provider: "test",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
        provider.inner().fail.store(false, Ordering::SeqCst);
        assert!(provider.provide_credentials().await.is_ok());
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_falls_back_to_unexpired_credentials() {
        let clock = Arc::new(AtomicU64::new(0));
        let provider = cached(
            Counting::new(Some(Duration::from_secs(600)), Arc::clone(&clock)),
            &clock,
        );
        provider.provide_credentials().await.unwrap();
        provider.inner().fail.store(true, Ordering::SeqCst);
        clock.fetch_add(400, Ordering::SeqCst); // inside the margin, not expired
        assert_eq!(
            provider
                .provide_credentials()
                .await
                .unwrap()
                .access_key_id(),
            "AKID1"
        );
        clock.fetch_add(300, Ordering::SeqCst); // expired
        assert!(provider.provide_credentials().await.is_err());
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_cancel_the_refresh_for_others() {
        let clock = Arc::new(AtomicU64::new(0));
        let (inner, door) = Counting::new(None, Arc::clone(&clock)).with_door();
        let provider = cached(inner, &clock);

        // Polled once (the refresh starts and waits at the door), then dropped.
        let mut first = provider.provide_credentials();
        let waker = std::task::Waker::noop();
        let polled = std::pin::Pin::new(&mut first).poll(&mut Context::from_waker(waker));
        assert!(polled.is_pending(), "the refresh is held at the door");
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
        drop(first);

        open(&door);
        let creds = provider.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "AKID1");
        assert_eq!(provider.inner().calls.load(Ordering::SeqCst), 1);
    }

    struct Panicking(AtomicUsize);

    impl ProvideCredentials for Panicking {
        fn provide_credentials(&self) -> ProvideFuture<'_> {
            ProvideFuture::new(async move {
                if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("provider bug");
                }
                Ok(Credentials::new("AKID", "secret"))
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_refresh_does_not_wedge_the_cache() {
        let provider = Arc::new(CachingProvider::new(Panicking(AtomicUsize::new(0))));
        let p = Arc::clone(&provider);
        let first = tokio::spawn(async move { p.provide_credentials().await }).await;
        assert!(first.unwrap_err().is_panic());
        let creds = provider.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(provider.inner().0.load(Ordering::SeqCst), 2);
    }
}
