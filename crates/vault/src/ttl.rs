//! Lease lengths from the wire, bounded before any clock arithmetic.
//!
//! Vault's `lease_duration` and `ttl` are whatever number the server (or anything between
//! it and us) sends: `2^64-1`, `1e300`, `-5`. They become a [`Duration`] only through
//! [`lease`], which refuses negatives and non-numbers and clamps the rest to [`MAX_TTL`];
//! an [`Instant`] is computed from one only through [`deadline`], which cannot overflow.
//! The crate enables `clippy::arithmetic_side_effects`, so a new `+` on a number from the
//! wire does not compile in CI (see [the crate docs](crate#arithmetic-on-server-data)).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// The longest lease the client believes: ten years. A longer `lease_duration` or `ttl`
/// is read as this (the client then renews earlier than needed, which is harmless); no
/// Vault setting gives more than its `max_lease_ttl`, 32 days by default.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Why a TTL field could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadTtl {
    /// A negative number.
    Negative,
    /// Not a number at all.
    NotANumber,
}

impl BadTtl {
    pub(crate) fn describe(&self, field: &str) -> String {
        match self {
            Self::Negative => format!("{field} is negative"),
            Self::NotANumber => format!("{field} is not a number of seconds"),
        }
    }
}

/// A TTL field (`lease_duration`, `ttl`, `creation_ttl`): absent, `null` or `0` is `None`
/// (Vault's "never expires"); a non-negative number of seconds is that long, at most
/// [`MAX_TTL`]; anything else is an error.
pub(crate) fn lease(field: Option<&Value>) -> Result<Option<Duration>, BadTtl> {
    let Some(value) = field.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if let Some(secs) = value.as_u64() {
        return Ok(from_secs(secs));
    }
    if value.as_i64().is_some() {
        return Err(BadTtl::Negative);
    }
    match value.as_f64() {
        // Larger than u64 (serde_json reads 2^64 as a float) or fractional.
        Some(secs) if secs >= 0.0 => {
            let bounded = secs.min(MAX_TTL.as_secs_f64());
            Ok(Duration::try_from_secs_f64(bounded)
                .ok()
                .filter(|d| !d.is_zero()))
        }
        Some(_) => Err(BadTtl::Negative),
        None => Err(BadTtl::NotANumber),
    }
}

/// `secs` as a TTL: `0` is `None`, the rest at most [`MAX_TTL`].
pub(crate) fn from_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs).min(MAX_TTL))
}

/// `start + length`, or the latest instant that can be represented when that overflows
/// (never on a real clock with a bounded length, but no input can make it panic).
pub(crate) fn deadline(start: Instant, length: Duration) -> Instant {
    let mut length = length;
    loop {
        if let Some(at) = start.checked_add(length) {
            return at;
        }
        if length.is_zero() {
            return start;
        }
        length = length.checked_div(2).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_ttls_are_bounded_or_refused() {
        let ten_years = Some(MAX_TTL);
        for (value, want) in [
            (json!(5), Ok(Some(Duration::from_secs(5)))),
            (json!(0), Ok(None)),
            (Value::Null, Ok(None)),
            (json!(u64::MAX), Ok(ten_years)),
            (json!(18_446_744_073_709_551_616.0_f64), Ok(ten_years)),
            (json!(1e300), Ok(ten_years)),
            (json!(2.5), Ok(Some(Duration::from_millis(2500)))),
            (json!(MAX_TTL.as_secs() + 1), Ok(ten_years)),
            (json!(-1), Err(BadTtl::Negative)),
            (json!(i64::MIN), Err(BadTtl::Negative)),
            (json!(-0.5), Err(BadTtl::Negative)),
            (json!("3600"), Err(BadTtl::NotANumber)),
            (json!({"s": 1}), Err(BadTtl::NotANumber)),
            (json!(true), Err(BadTtl::NotANumber)),
        ] {
            assert_eq!(lease(Some(&value)), want, "{value}");
        }
        assert_eq!(lease(None), Ok(None));
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        // Duration::MAX cannot be added to any instant; the deadline is still later than now.
        let far = deadline(now, Duration::MAX);
        assert!(far > now + MAX_TTL, "{far:?}");
        assert_eq!(deadline(now, Duration::ZERO), now);
    }
}
