//! The answer of a Google token endpoint or the metadata server, read with every number and
//! size bounded.

use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::Error;

/// The longest access token accepted, in bytes. Google's are a few hundred bytes to 2 KiB;
/// anything much longer is not a token, and would be copied into every request header.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest lifetime believed. Google issues tokens for an hour; a server that claims
/// more (or 2^64 seconds) is believed for an hour, after which the token is fetched anew.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The lifetime assumed when the answer gives none (`expires_in` is only RECOMMENDED in
/// RFC 6749): short, so that a token of unknown life is soon replaced.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// A token as a source returned it, before caching.
pub(crate) struct FreshToken {
    /// The bearer token.
    pub(crate) value: Zeroizing<String>,
    /// How long it is good for, bounded by [`MAX_LIFETIME`].
    pub(crate) lifetime: Duration,
}

#[derive(Deserialize)]
struct Wire {
    access_token: Option<Zeroizing<String>>,
    expires_in: Option<serde_json::Value>,
    token_type: Option<String>,
}

/// Reads `{"access_token", "expires_in", "token_type"}`.
pub(crate) fn parse(operation: &'static str, body: &[u8]) -> Result<FreshToken, Error> {
    let wire: Wire = serde_json::from_slice(body).map_err(|e| {
        Error::malformed(
            operation,
            format!("not a token response ({})", e.classify_name()),
        )
    })?;
    if let Some(kind) = &wire.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::malformed(operation, "token_type is not Bearer"));
    }
    let value = wire
        .access_token
        .ok_or_else(|| Error::malformed(operation, "no access_token"))?;
    check_token(operation, &value)?;
    let lifetime = match wire.expires_in {
        None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(secs) => Duration::from_secs(secs).min(MAX_LIFETIME),
            // Negative or fractional: not a lifetime. A float as large as 1e300 lands
            // here too rather than in an overflowing conversion.
            None => {
                return Err(Error::malformed(
                    operation,
                    "expires_in is not a whole number of seconds",
                ));
            }
        },
        Some(_) => return Err(Error::malformed(operation, "expires_in is not a number")),
    };
    Ok(FreshToken { value, lifetime })
}

/// A token must fit in an `Authorization` header: visible ASCII, bounded, not empty.
pub(crate) fn check_token(operation: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > MAX_TOKEN_LEN {
        return Err(Error::malformed(
            operation,
            format!("an access token must be 1 to {MAX_TOKEN_LEN} bytes"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::malformed(
            operation,
            "the access token has characters a header cannot carry",
        ));
    }
    Ok(())
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_answer() {
        let t = parse(
            "token",
            br#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.value.as_str(), "ya29.abc");
        assert_eq!(t.lifetime, Duration::from_secs(3599));
    }

    #[test]
    fn absurd_lifetimes_are_bounded_or_refused() {
        let huge = parse(
            "token",
            br#"{"access_token":"t","expires_in":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(huge.lifetime, MAX_LIFETIME);
        let bigger = br#"{"access_token":"t","expires_in":1e300}"#;
        assert!(matches!(
            parse("token", bigger),
            Err(Error::Malformed { .. })
        ));
        for body in [
            &br#"{"access_token":"t","expires_in":-5}"#[..],
            br#"{"access_token":"t","expires_in":1.5}"#,
            br#"{"access_token":"t","expires_in":"3600"}"#,
        ] {
            assert!(matches!(parse("token", body), Err(Error::Malformed { .. })));
        }
        let none = parse("token", br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(none.lifetime, DEFAULT_LIFETIME);
        let zero = parse("token", br#"{"access_token":"t","expires_in":0}"#).unwrap();
        assert_eq!(zero.lifetime, Duration::ZERO);
    }

    #[test]
    fn tokens_that_cannot_be_headers_are_refused_without_echoing_them() {
        let long = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(MAX_TOKEN_LEN + 1));
        for body in [
            long.as_bytes(),
            br#"{"access_token":""}"#,
            br#"{"access_token":"sec ret"}"#,
            br#"{"access_token":"secret\r\nx: y"}"#,
            br#"{"access_token":"secret","token_type":"mac"}"#,
            br#"{"expires_in":5}"#,
            b"not json secret",
        ] {
            let err = parse("token", body).err().expect("refused");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
