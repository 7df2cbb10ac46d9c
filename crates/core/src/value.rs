//! [`SecretValue`]: the bytes of a secret, zeroized on drop and never printed.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::Error;

/// The value of a secret: bytes, usually UTF-8 text.
///
/// - The bytes are wiped from memory when the last copy is dropped ([`zeroize`]).
/// - `Debug` and `Display` print `[REDACTED]`, so a value that ends up in a log line, a panic
///   message or an error shows nothing.
/// - The bytes can only be read through an explicit call: [`expose`](Self::expose) or
///   [`expose_str`](Self::expose_str). Grep for those to audit where secrets are used.
///
/// Clones share one allocation (an [`Arc`]): a cache can hand the same value to many readers
/// without copying the secret around memory.
///
/// ```
/// use strongroom_core::SecretValue;
///
/// let value = SecretValue::from("hunter2");
/// assert_eq!(format!("{value:?} {value}"), "[REDACTED] [REDACTED]");
/// assert_eq!(value.expose_str()?, "hunter2");
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<Vec<u8>>>);

impl SecretValue {
    /// Takes ownership of `bytes` without copying them.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Zeroizing::new(bytes)))
    }

    /// The secret bytes. Every read of a secret goes through here or [`expose_str`](Self::expose_str).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the bytes are not UTF-8 (the message does not include them).
    pub fn expose_str(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.0).map_err(|e| Error::InvalidValue {
            message: format!(
                "the secret is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        })
    }

    /// True when the bytes are valid UTF-8.
    pub fn is_text(&self) -> bool {
        std::str::from_utf8(&self.0).is_ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Compares in time that depends only on the lengths, not on where the bytes first differ.
impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose(), other.expose());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretValue {}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes().to_vec())
    }
}

impl From<&[u8]> for SecretValue {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretValue {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(Arc::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let value = SecretValue::from("correct horse battery staple");
        for text in [
            format!("{value}"),
            format!("{value:?}"),
            format!("{value:#?}"),
            format!("{:?}", Some(&value)),
        ] {
            assert!(!text.contains("horse"), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
    }

    #[test]
    fn expose_str_rejects_non_utf8_without_echoing_it() {
        let value = SecretValue::from(vec![b's', b'3', 0xff, 0xfe]);
        let err = value.expose_str().unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }));
        assert!(!err.to_string().contains("s3"), "{err}");
        assert!(!value.is_text());
        assert_eq!(value.expose(), [b's', b'3', 0xff, 0xfe]);
    }

    #[test]
    fn equality_compares_bytes() {
        assert_eq!(
            SecretValue::from("abc"),
            SecretValue::from(b"abc".as_slice())
        );
        assert_ne!(SecretValue::from("abc"), SecretValue::from("abd"));
        assert_ne!(SecretValue::from("abc"), SecretValue::from("abcd"));
    }

    #[test]
    fn clones_share_one_allocation() {
        let value = SecretValue::from("shared");
        let copy = value.clone();
        assert!(std::ptr::eq(
            value.expose().as_ptr(),
            copy.expose().as_ptr()
        ));
    }
}
