//! When to retry and how long to wait: the policy, the backoff schedule with full jitter,
//! `Retry-After` parsing. Everything here except [`Jitter`]'s seeding is a pure function.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};

/// How many times to try a request and how long to wait in between.
///
/// The wait before retry `n` (1-based) is a uniformly random duration in
/// `[0, min(max_delay, base_delay * 2^(n-1))]` ("full jitter"), unless the server sent a
/// `Retry-After`, which is honoured as given. No retry starts when its wait would end past
/// `max_total` from the first attempt, and each attempt's own deadline is cut so that the
/// whole call ends by `max_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` means never retry.
    pub max_attempts: u32,
    /// Ceiling of the first retry's wait; doubles each retry.
    pub base_delay: Duration,
    /// Largest ceiling the doubling reaches.
    pub max_delay: Duration,
    /// Budget for the whole call, all attempts and waits included.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 50 ms base, 2 s max delay, 10 s in all.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_total: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that tries once.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`base_delay`](Self::base_delay).
    #[must_use]
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets [`max_total`](Self::max_total).
    #[must_use]
    pub fn with_max_total(mut self, total: Duration) -> Self {
        self.max_total = total;
        self
    }

    /// The largest wait before retry number `retry` (1 for the first retry):
    /// `min(max_delay, base_delay * 2^(retry-1))`, without overflow.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1u32 << exponent)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

/// Whether a request may be repeated after a retryable failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retry {
    /// Retry only requests whose method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE)
    /// or that carry the [`Idempotent`] extension.
    #[default]
    Auto,
    /// Retry whatever the method: the caller knows this request is safe to repeat (for
    /// example a read sent as POST).
    Always,
    /// Retry only when the request cannot have reached the server (no connection could be
    /// opened), whatever the method: for writes that must not be applied twice, such as a
    /// Vault write (PUT is POST there) or a login that spends a one-use `secret_id`.
    Unsent,
    /// Never retry.
    Never,
}

/// A request extension that marks a request as safe to repeat, so that [`Retry::Auto`]
/// retries it even when its method is POST or PATCH.
///
/// ```
/// let mut request = http::Request::post("http://127.0.0.1:8200/read").body(bytes::Bytes::new()).unwrap();
/// request.extensions_mut().insert(strongroom_http::Idempotent);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Idempotent;

impl Retry {
    /// Whether a request with this method (and the [`Idempotent`] mark or not) may be retried.
    pub fn allows(self, method: &Method, marked_idempotent: bool) -> bool {
        match self {
            Self::Always | Self::Unsent => true,
            Self::Never => false,
            Self::Auto => marked_idempotent || is_idempotent_method(method),
        }
    }
}

/// The methods RFC 9110 defines as idempotent.
pub(crate) fn is_idempotent_method(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ]
    .contains(method)
}

/// Statuses worth retrying: 429, 500, 502, 503, 504.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// The longest wait a `Retry-After` is read as: one day. Longer values (up to 2^64 seconds,
/// or a date in the year 9999) are clamped to it, so that whoever adds the wait to a clock
/// reading (a cache, a scheduler) cannot overflow, checked or not.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a `Retry-After` value, either delay-seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), into how long to wait from `now`, at most
/// [`MAX_RETRY_AFTER`]. A date in the past means no wait. Anything else (negative,
/// fractional, garbage) gives `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of digits still means "a very long time", not "invalid".
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// A full-jitter wait: `random` mapped uniformly onto `[0, ceiling]` at nanosecond steps.
///
/// The client's retries wait this long; it is public for other backoffs that should spread
/// the same way (strongroom-vault's token renewal uses it).
///
/// ```
/// use std::time::Duration;
/// let wait = strongroom_http::full_jitter(Duration::from_secs(2), 0xDEAD_BEEF);
/// assert!(wait <= Duration::from_secs(2));
/// ```
pub fn full_jitter(ceiling: Duration, random: u64) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    match nanos.checked_add(1) {
        Some(span) => Duration::from_nanos(random.checked_rem(span).unwrap_or_default()),
        None => Duration::from_nanos(random),
    }
}

/// A small xorshift64* generator, seeded once from the system's secure random source.
/// Jitter needs spread, not secrecy, so one seed per client is enough.
#[derive(Debug)]
pub(crate) struct Jitter(Mutex<u64>);

impl Jitter {
    pub(crate) fn from_system() -> Self {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 8];
        // If the system source fails, a fixed seed still gives jitter; only its spread
        // between processes suffers.
        let _ = ring::rand::SystemRandom::new().fill(&mut seed);
        Self::seeded(u64::from_le_bytes(seed))
    }

    pub(crate) fn seeded(seed: u64) -> Self {
        // xorshift must not start at zero.
        Self(Mutex::new(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        }))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_ceiling_doubles_up_to_max_delay() {
        let policy = RetryPolicy::default()
            .with_base_delay(MS(50))
            .with_max_delay(MS(1000));
        let table = [
            (0, 50),
            (1, 50),
            (2, 100),
            (3, 200),
            (4, 400),
            (5, 800),
            (6, 1000),
            (7, 1000),
            (40, 1000),
            (u32::MAX, 1000),
        ];
        for (retry, expected) in table {
            assert_eq!(policy.backoff_ceiling(retry), MS(expected), "retry {retry}");
        }
    }

    #[test]
    fn backoff_ceiling_does_not_overflow() {
        let policy = RetryPolicy::default()
            .with_base_delay(Duration::from_secs(u64::MAX / 4))
            .with_max_delay(Duration::MAX);
        assert_eq!(policy.backoff_ceiling(64), Duration::MAX);
    }

    #[test]
    fn full_jitter_stays_within_ceiling() {
        let table = [
            (MS(0), 12345, Duration::ZERO),
            (Duration::from_nanos(10), 10, Duration::from_nanos(10)),
            (Duration::from_nanos(10), 11, Duration::ZERO),
            (Duration::from_nanos(10), 25, Duration::from_nanos(3)),
            (
                MS(100),
                u64::MAX,
                Duration::from_nanos(u64::MAX % 100_000_001),
            ),
        ];
        for (ceiling, random, expected) in table {
            assert_eq!(
                full_jitter(ceiling, random),
                expected,
                "{ceiling:?} {random}"
            );
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let jitter = Jitter::seeded(42);
        let ceiling = MS(100);
        let waits: Vec<Duration> = (0..1000)
            .map(|_| full_jitter(ceiling, jitter.next_u64()))
            .collect();
        assert!(waits.iter().all(|w| *w <= ceiling));
        assert!(waits.iter().any(|w| *w < MS(10)), "some short waits");
        assert!(waits.iter().any(|w| *w > MS(90)), "some long waits");
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 990, "not stuck on a few values");
    }

    #[test]
    fn zero_seed_is_replaced() {
        let jitter = Jitter::seeded(0);
        assert_ne!(jitter.next_u64(), 0);
    }

    #[test]
    fn retry_after_values() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let table: [(&str, Option<Duration>); 17] = [
            ("0", Some(Duration::ZERO)),
            ("5", Some(Duration::from_secs(5))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("18446744073709551615", Some(MAX_RETRY_AFTER)),
            ("86400", Some(MAX_RETRY_AFTER)),
            ("86401", Some(MAX_RETRY_AFTER)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_RETRY_AFTER)),
            (
                "Wed, 21 Oct 2015 07:28:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO)),
            (
                "Wednesday, 21-Oct-15 07:29:00 GMT",
                Some(Duration::from_secs(60)),
            ),
            ("Wed Oct 21 07:28:02 2015", Some(Duration::from_secs(2))),
            ("-1", None),
            ("-99999999999999999999999", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn retryable_statuses() {
        for code in [429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 204, 301, 302, 400, 401, 403, 404, 409, 412, 501, 505] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_modes_and_methods() {
        let table = [
            (Retry::Auto, Method::GET, false, true),
            (Retry::Auto, Method::HEAD, false, true),
            (Retry::Auto, Method::PUT, false, true),
            (Retry::Auto, Method::DELETE, false, true),
            (Retry::Auto, Method::OPTIONS, false, true),
            (Retry::Auto, Method::POST, false, false),
            (Retry::Auto, Method::PATCH, false, false),
            (Retry::Auto, Method::POST, true, true),
            (Retry::Always, Method::POST, false, true),
            (Retry::Unsent, Method::POST, false, true),
            (Retry::Never, Method::GET, false, false),
            (Retry::Never, Method::POST, true, false),
        ];
        for (mode, method, marked, expected) in table {
            assert_eq!(
                mode.allows(&method, marked),
                expected,
                "{mode:?} {method} {marked}"
            );
        }
    }

    #[test]
    fn policy_setters() {
        let policy = RetryPolicy::default().with_max_attempts(0);
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(RetryPolicy::never().max_attempts, 1);
        let policy = RetryPolicy::default().with_max_total(MS(7));
        assert_eq!(policy.max_total, MS(7));
    }
}
