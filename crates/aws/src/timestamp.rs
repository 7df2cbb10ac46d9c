//! The two time formats AWS answers with: RFC 3339 text (IMDS, ECS, STS) and epoch seconds
//! as a JSON number (Secrets Manager's JSON 1.1 protocol).

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2024-01-02T03:04:05Z` (fractions and offsets allowed) as a [`SystemTime`].
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// Epoch seconds, possibly fractional, as a [`SystemTime`]. Negative, NaN or absurd values
/// give `None`.
pub(crate) fn from_epoch_seconds(seconds: f64) -> Option<SystemTime> {
    if !seconds.is_finite() || !(0.0..=1.0e12).contains(&seconds) {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let t = parse_rfc3339("2011-07-15T23:28:33.359Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_310_772_513);
        assert_eq!(
            from_epoch_seconds(1_310_772_513.359)
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_310_772_513
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(from_epoch_seconds(-1.0), None);
        assert_eq!(from_epoch_seconds(f64::NAN), None);
    }
}
