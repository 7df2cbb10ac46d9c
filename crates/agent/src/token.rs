//! [`Token`]: the shared secret every request but `/ping` must carry, and how the agent
//! checks it without keeping it.

use std::fmt;
use std::path::Path;

use ring::hmac;
use ring::rand::SystemRandom;
use strongroom_core::Error;
use zeroize::Zeroizing;

/// The environment variable the AWS Secrets Manager Agent (and `strongroom serve`) reads the
/// token from: the token itself, or `file://PATH` naming a file that holds it.
pub const TOKEN_VAR: &str = "AWS_TOKEN";

/// The request headers that may carry the token, in the order they are looked at.
pub const TOKEN_HEADERS: [&str; 2] = ["x-aws-parameters-secrets-token", "x-vault-token"];

/// The most bytes a token may have (a token file larger than this is refused unread).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The token callers must present (SSRF protection, as the AWS Secrets Manager Agent does
/// it): a request that a program was tricked into sending to the agent (a server-side
/// request forgery) cannot carry it.
///
/// Zeroized on drop; `Debug` prints `[REDACTED]`. The agent does not keep it: it keeps an
/// HMAC of it under a random key, and checks a presented token by computing the same HMAC
/// and comparing in constant time ([`ring::hmac::verify`]).
pub struct Token(Zeroizing<Vec<u8>>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

impl Token {
    /// A token from its text.
    ///
    /// # Errors
    /// [`Error::Config`] when it is empty, longer than [`MAX_TOKEN_LEN`], or holds a
    /// character that cannot travel in an HTTP header (controls, non-ASCII) or whitespace.
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let bytes = Zeroizing::new(text.into().into_bytes());
        if bytes.is_empty() {
            return Err(Error::config("the agent's token is empty"));
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(Error::config(format!(
                "the agent's token is longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        if !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(Error::config(
                "the agent's token holds a space, control or non-ASCII character: it must be printable ASCII to travel in a header",
            ));
        }
        Ok(Self(bytes))
    }

    /// A token as `AWS_TOKEN` gives it: the token itself, or `file://PATH` naming a file that
    /// holds it (surrounding whitespace, such as a final newline, is dropped).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Config`] when the file cannot be read or is larger
    /// than [`MAX_TOKEN_LEN`] (the message names the file, never its content).
    pub fn from_aws_token_value(value: &str) -> Result<Self, Error> {
        match value.strip_prefix("file://") {
            Some(path) => Self::from_file(Path::new(path)),
            None => Self::new(value),
        }
    }

    /// The token from the `AWS_TOKEN` environment variable; see
    /// [`from_aws_token_value`](Self::from_aws_token_value).
    ///
    /// Unlike the AWS agent, `AWS_SESSION_TOKEN` is not a fallback: it is an AWS credential,
    /// which must not become a password every local caller holds.
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is unset or empty (the agent refuses to start
    /// without a token), or as [`from_aws_token_value`](Self::from_aws_token_value).
    pub fn from_env() -> Result<Self, Error> {
        let value = Zeroizing::new(std::env::var(TOKEN_VAR).unwrap_or_default());
        if value.is_empty() {
            return Err(Error::config(format!(
                "set {TOKEN_VAR} to the token callers must send (the value, or file://PATH): the agent refuses to start without one"
            )));
        }
        Self::from_aws_token_value(&value)
    }

    fn from_file(path: &Path) -> Result<Self, Error> {
        use std::io::Read as _;
        let unreadable = |e: std::io::Error| {
            Error::config(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let limit = u64::try_from(MAX_TOKEN_LEN).unwrap_or(u64::MAX) + 1;
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_TOKEN_LEN + 1));
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(Error::config(format!(
                "the token file {} is larger than {MAX_TOKEN_LEN} bytes",
                path.display()
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::config(format!("the token file {} is not text", path.display())))?;
        Self::new(text.trim())
    }
}

/// What the agent keeps of the token: a random HMAC key and the token's tag under it.
pub(crate) struct Guard {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl Guard {
    pub(crate) fn new(token: &Token) -> Result<Self, Error> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).map_err(|_| {
            Error::backend(
                "agent",
                "the system random generator failed",
                std::io::Error::other("ring"),
            )
        })?;
        let tag = hmac::sign(&key, &token.0);
        Ok(Self { key, tag })
    }

    /// True when `presented` is the token; the comparison takes the same time whatever it is.
    pub(crate) fn admits(&self, presented: &[u8]) -> bool {
        hmac::verify(&self.key, presented, self.tag.as_ref()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::new("s3cr3t-t0ken").unwrap();
        assert_eq!(format!("{token:?}"), "Token([REDACTED])");
    }

    #[test]
    fn a_token_is_checked_exactly() {
        let guard = Guard::new(&Token::new("s3cr3t-t0ken").unwrap()).unwrap();
        assert!(guard.admits(b"s3cr3t-t0ken"));
        for wrong in [&b""[..], b"s3cr3t-t0ke", b"s3cr3t-t0ken ", b"S3cr3t-t0ken"] {
            assert!(!guard.admits(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn bad_tokens_are_refused() {
        for bad in ["", "has space", "new\nline", "caf\u{e9}"] {
            assert!(Token::new(bad).is_err(), "{bad:?}");
        }
        assert!(Token::new("x".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn a_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-a-file\n").unwrap();
        let token = Token::from_aws_token_value(&format!("file://{}", path.display())).unwrap();
        assert_eq!(&*token.0, b"from-a-file");

        std::fs::write(&path, "x".repeat(MAX_TOKEN_LEN + 10)).unwrap();
        let err = Token::from_aws_token_value(&format!("file://{}", path.display())).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");

        let missing = dir.path().join("missing");
        let err =
            Token::from_aws_token_value(&format!("file://{}", missing.display())).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the token file"),
            "{err}"
        );
    }

    #[test]
    fn a_plain_value_is_the_token() {
        let token = Token::from_aws_token_value("plain-value").unwrap();
        assert_eq!(&*token.0, b"plain-value");
    }
}
