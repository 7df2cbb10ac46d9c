//! The bad-input table of docs/reliability.md, AWS credentials row: credentials that expire
//! mid-run, on the real clock. A `CachingProvider` over a source that stops answering keeps
//! serving the cached credentials until they expire, then returns the source's error (which
//! names the provider and holds no secret), and serves fresh credentials again as soon as
//! the source is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use strongroom_sigv4::{
    CachingProvider, Credentials, CredentialsError, ProvideCredentials, ProvideFuture,
    StaticProvider,
};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION: &str = "session-token-that-must-not-leak";

/// Hands out credentials valid for `ttl`, numbered by call; fails while `down` is set.
#[derive(Debug)]
struct ShortLived {
    ttl: Duration,
    down: AtomicBool,
    calls: AtomicU32,
}

impl ProvideCredentials for ShortLived {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.down.load(Ordering::SeqCst) {
            return ProvideFuture::ready(Err(CredentialsError::NotLoaded {
                provider: "short-lived",
                reason: "the credentials endpoint is unreachable".to_owned(),
            }));
        }
        ProvideFuture::ready(Ok(Credentials::new(format!("AKID{n}"), SECRET)
            .with_session_token(SESSION)
            .with_expiry(SystemTime::now() + self.ttl)))
    }
}

#[tokio::test]
async fn credentials_that_expire_mid_run_give_the_sources_error_then_recover() {
    let source = Arc::new(ShortLived {
        ttl: Duration::from_millis(1500),
        down: AtomicBool::new(false),
        calls: AtomicU32::new(0),
    });
    let provider =
        CachingProvider::new(Arc::clone(&source)).with_refresh_margin(Duration::from_millis(1000));
    let first = provider.provide_credentials().await.unwrap();
    assert_eq!(first.access_key_id(), "AKID1");

    // The source goes away. Inside the refresh margin the cached credentials still serve.
    source.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let cached = provider.provide_credentials().await.unwrap();
    assert_eq!(cached.access_key_id(), "AKID1");
    assert!(
        source.calls.load(Ordering::SeqCst) >= 2,
        "no refresh was tried"
    );

    // Past the expiry: a clear error from the source, never the expired credentials.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(matches!(err, CredentialsError::NotLoaded { .. }), "{err}");
    let shown = format!("{err} {err:?} {provider:?}");
    assert!(shown.contains("short-lived"), "{shown}");
    for secret in [SECRET, SESSION] {
        assert!(!shown.contains(secret), "a secret leaked: {shown}");
    }

    // The source is back: the next call refreshes.
    source.down.store(false, Ordering::SeqCst);
    let fresh = provider.provide_credentials().await.unwrap();
    assert_ne!(fresh.access_key_id(), "AKID1");
    assert!(!fresh.is_expired_at(SystemTime::now()));
}

#[tokio::test]
async fn static_credentials_past_their_expiry_are_refused_not_served() {
    let provider = CachingProvider::new(StaticProvider::new(
        Credentials::new("AKIDSTATIC", SECRET)
            .with_expiry(SystemTime::now() + Duration::from_millis(300)),
    ))
    .with_refresh_margin(Duration::ZERO);
    assert!(provider.provide_credentials().await.is_ok());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A signature made with these is refused by the server only one round trip later
    // (ExpiredToken); the provider knows the expiry and can say so at once.
    let result = provider.provide_credentials().await;
    assert!(result.is_err(), "expired credentials were handed out");
}
