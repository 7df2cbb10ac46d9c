//! [`Token`]: a Vault token, zeroized on drop and never printed.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A Vault token (`hvs.…`, `s.…`, or a dev root token).
///
/// The text is wiped from memory when the last clone drops; `Debug` prints `Token([REDACTED])`.
/// Read it only through [`expose`](Self::expose). The HTTP layer marks the `X-Vault-Token`
/// header sensitive, but the copy inside that header is not zeroized (a limit of the `http`
/// crate's `HeaderValue`).
///
/// ```
/// let token = strongroom_vault::Token::new("hvs.example");
/// assert_eq!(format!("{token:?}"), "Token([REDACTED])");
/// ```
#[derive(Clone)]
pub struct Token(Arc<Zeroizing<String>>);

impl Token {
    /// Wraps a token, taking ownership of its text.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(token.into())))
    }

    /// The token text, for the `X-Vault-Token` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty token, which Vault never issues.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Token {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl From<&str> for Token {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

impl From<Zeroizing<String>> for Token {
    fn from(token: Zeroizing<String>) -> Self {
        Self(Arc::new(token))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = Token::from("hvs.super-secret-token");
        let text = format!("{token:?} {:?}", Some(&token));
        assert!(!text.contains("super-secret"), "{text}");
        assert_eq!(token.expose(), "hvs.super-secret-token");
    }
}
