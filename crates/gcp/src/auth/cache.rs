//! [`TokenCache`]: one token per source, refreshed before it expires, by one caller at a
//! time however many wait (single flight).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{AccessToken, FetchToken};
use crate::error::Error;

/// How long before expiry a token is replaced: five minutes, or half its life when it lives
/// less than ten (so that a short-lived token is not fetched anew on every call).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

struct Cached {
    token: AccessToken,
    /// From here on, the next caller fetches a new token.
    refresh_at: Instant,
    /// Past this the token is not used even when a refresh fails.
    expires_at: Instant,
}

/// A [`FetchToken`] source with its current token.
///
/// Readers take the cached token under a short synchronous lock. When it is due, callers
/// queue on an async mutex; the first fetches, and the rest find the new token when they get
/// the lock, so a hundred concurrent requests make one token request. When a refresh fails
/// while the old token is still valid (inside the margin), the old token is used and the
/// failure is logged; once expired, the error is returned.
pub(crate) struct TokenCache {
    source: Box<dyn FetchToken>,
    cached: Mutex<Option<Cached>>,
    flight: tokio::sync::Mutex<()>,
}

impl TokenCache {
    pub(crate) fn new(source: Box<dyn FetchToken>) -> Self {
        Self {
            source,
            cached: Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        self.source.kind()
    }

    /// A valid token: the cached one, or a new one.
    pub(crate) async fn token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.current(Instant::now(), false) {
            return Ok(token);
        }
        let _flight = self.flight.lock().await;
        // Whoever held the lock before may have fetched one.
        if let Some(token) = self.current(Instant::now(), false) {
            return Ok(token);
        }
        match self.source.fetch().await {
            Ok(fresh) => {
                let now = Instant::now();
                let margin = REFRESH_MARGIN.min(fresh.lifetime.checked_div(2).unwrap_or_default());
                // Lifetimes are bounded (an hour), so these cannot overflow in practice; if
                // they did, the token would count as due at once, never as valid forever.
                let expires_at = now.checked_add(fresh.lifetime).unwrap_or(now);
                let refresh_at = expires_at.checked_sub(margin).unwrap_or(now);
                let token = AccessToken::new(fresh.value);
                *self.lock() = Some(Cached {
                    token: token.clone(),
                    refresh_at,
                    expires_at,
                });
                Ok(token)
            }
            Err(err) => match self.current(Instant::now(), true) {
                Some(token) => {
                    tracing::warn!(source = self.source.kind(), error = %err, "token refresh failed; using the current token until it expires");
                    Ok(token)
                }
                None => Err(err),
            },
        }
    }

    /// Forgets `refused` (the server refused it), unless another caller has replaced it
    /// already: two requests refused with one token must not throw away each other's new one.
    pub(crate) fn invalidate(&self, refused: &AccessToken) {
        let mut cached = self.lock();
        if cached.as_ref().is_some_and(|c| c.token.same(refused)) {
            *cached = None;
        }
    }

    fn current(&self, now: Instant, until_expiry: bool) -> Option<AccessToken> {
        let cached = self.lock();
        let c = cached.as_ref()?;
        let deadline = if until_expiry {
            c.expires_at
        } else {
            c.refresh_at
        };
        (now < deadline).then(|| c.token.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // A panic while holding this lock leaves only a token behind: still usable.
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use strongroom_core::async_trait;
    use zeroize::Zeroizing;

    use super::super::token_response::FreshToken;
    use super::*;

    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
        fail_after: usize,
    }

    #[async_trait]
    impl FetchToken for Counting {
        async fn fetch(&self) -> Result<FreshToken, Error> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if n >= self.fail_after {
                return Err(Error::Credentials("down".into()));
            }
            Ok(FreshToken {
                value: Zeroizing::new(format!("token-{n}")),
                lifetime: self.lifetime,
            })
        }
        fn kind(&self) -> &'static str {
            "counting"
        }
    }

    fn cache(lifetime: Duration, fail_after: usize) -> (Arc<TokenCache>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counting {
            calls: Arc::clone(&calls),
            lifetime,
            fail_after,
        };
        (Arc::new(TokenCache::new(Box::new(source))), calls)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_callers_one_fetch() {
        let (cache, calls) = cache(Duration::from_secs(3600), usize::MAX);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = Arc::clone(&cache);
            tasks.push(tokio::spawn(async move { cache.token().await.unwrap() }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().expose(), "token-0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let first = cache.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a valid token is reused");
        cache.invalidate(&first);
        let second = cache.token().await.unwrap();
        assert_eq!(second.expose(), "token-1");
        // A late refusal of the old token leaves the new one alone.
        cache.invalidate(&first);
        assert_eq!(cache.token().await.unwrap().expose(), "token-1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn due_tokens_are_refreshed_and_expired_ones_never_served() {
        // Four seconds of life: due after two (half), expired after four. The waits leave
        // nearly two seconds of slack on each side for a loaded machine.
        let (cache, calls) = cache(Duration::from_secs(4), 1);
        assert_eq!(cache.token().await.unwrap().expose(), "token-0");
        tokio::time::sleep(Duration::from_millis(2200)).await;
        // Due, the refresh fails, the old token is still valid: served.
        assert_eq!(cache.token().await.unwrap().expose(), "token-0");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert!(
            cache.token().await.is_err(),
            "an expired token must not be served"
        );
    }

    #[tokio::test]
    async fn a_zero_lifetime_is_fetched_each_time() {
        let (cache, calls) = cache(Duration::ZERO, usize::MAX);
        cache.token().await.unwrap();
        cache.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
