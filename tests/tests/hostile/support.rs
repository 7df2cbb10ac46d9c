//! What every hostile case shares: the client settings, the budget a case must end within,
//! the outcome each mode must give, and a watch for panics in any task.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strongroom_core::ErrorKind;
use strongroom_http::{HttpClient, RetryPolicy};
use strongroom_itests::hostile::Mode;

/// The retry budget of the clients under test: every call must end by then (plus slack).
pub(crate) const BUDGET: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded two-core machine.
pub(crate) const SLACK: Duration = Duration::from_millis(1500);
/// The body limit of the clients under test.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// The most an endless body may write before the client stops reading: the limit plus what
/// the kernel's socket buffers absorb, far below the server's 1 GiB.
pub(crate) const MAX_ENDLESS_BYTES: u64 = 64 * 1024 * 1024;

/// The HTTP client the Secrets Manager and STS clients are built with here.
pub(crate) fn http_client() -> HttpClient {
    HttpClient::builder()
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_millis(700))
        .max_body_bytes(BODY_LIMIT)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_base_delay(Duration::from_millis(10))
                .with_max_delay(Duration::from_millis(50))
                .with_max_total(BUDGET),
        )
        .build()
        .expect("an HTTP client")
}

/// What a mode must end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Retryable: 503, 5xx, timeouts, broken connections.
    Unavailable,
    /// Not retryable: a malformed answer or an unknown status.
    Backend,
    /// The body limit: [`strongroom_http::Error::BodyTooLarge`], a Backend error.
    TooLarge,
}

impl Expect {
    pub(crate) fn kind(self) -> ErrorKind {
        match self {
            Self::Unavailable => ErrorKind::Unavailable,
            Self::Backend | Self::TooLarge => ErrorKind::Backend,
        }
    }
}

/// The outcome each hostile mode must give a Secrets Manager or STS call.
pub(crate) fn expected_for(mode: &Mode) -> Expect {
    match mode {
        Mode::RetryAfter(_)
        | Mode::StalledHead
        | Mode::StalledBody
        | Mode::TruncatedChunked
        | Mode::Informational
        | Mode::ResetMidBody
        | Mode::CloseAtOnce => Expect::Unavailable,
        Mode::Status(code) if (500..600).contains(code) => Expect::Unavailable,
        Mode::EndlessBody => Expect::TooLarge,
        _ => Expect::Backend,
    }
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Counts panics in every thread and task from here on (the default hook still prints them).
pub(crate) fn watch_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Fails when any thread or task panicked since [`watch_panics`].
pub(crate) fn assert_no_panics() {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a task panicked (see the output above)"
    );
}
