//! [`SecretKey`]: the validated name of a secret.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::Error;

/// The longest key accepted, in bytes.
///
/// 512 is AWS Secrets Manager's limit on a secret name, the tightest of the backends; a key that
/// is valid here is therefore valid everywhere.
pub const MAX_KEY_LEN: usize = 512;

/// The name of a secret, such as `app/db/password`.
///
/// A key is a `/`-separated path of one or more segments. Validation happens once, when the key
/// is made, so every backend can rely on it:
///
/// - not empty, and at most [`MAX_KEY_LEN`] bytes;
/// - no leading or trailing `/`, and no empty segment (`a//b`);
/// - no `.` or `..` segment, so a key can never walk out of its mount or directory;
/// - no control characters (newlines, NUL, escape sequences), which would corrupt logs.
///
/// Backends map the key onto their own naming: Vault percent-encodes each segment, AWS uses the
/// name as it is, the environment store upper-cases it and turns `/` into `_`.
///
/// Cloning is cheap (a reference count), because keys travel with every secret and every
/// audit event.
///
/// ```
/// use strongroom_core::SecretKey;
///
/// let key: SecretKey = "app/db/password".parse()?;
/// assert_eq!(key.segments().collect::<Vec<_>>(), ["app", "db", "password"]);
/// assert!("app/../etc".parse::<SecretKey>().is_err());
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretKey(Arc<str>);

/// Why a key was refused; carried by [`Error::InvalidKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The key is the empty string.
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    TooLong,
    /// The key starts or ends with `/`.
    LeadingOrTrailingSlash,
    /// The key contains `//`.
    EmptySegment,
    /// A segment is `.` or `..`.
    DotSegment,
    /// The key contains a control character.
    ControlCharacter,
    /// The key is valid in general but not for this backend (its naming rules are narrower).
    Unsupported,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "a key cannot be empty",
            Self::TooLong => "a key can be at most 512 bytes long",
            Self::LeadingOrTrailingSlash => "a key cannot start or end with '/'",
            Self::EmptySegment => "a key cannot contain '//'",
            Self::DotSegment => "a key cannot contain a '.' or '..' segment",
            Self::ControlCharacter => "a key cannot contain control characters",
            Self::Unsupported => "this backend cannot store a key with these characters",
        })
    }
}

impl SecretKey {
    /// Validates `name` and makes a key of it.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] naming the rule the key breaks.
    pub fn new(name: impl AsRef<str> + Into<Arc<str>>) -> Result<Self, Error> {
        match check(name.as_ref()) {
            Ok(()) => Ok(Self(name.into())),
            Err(problem) => Err(Error::invalid_key(name.as_ref(), problem)),
        }
    }

    /// The key as a string, exactly as it was given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments of the key; there is always at least one.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The last segment: `password` for `app/db/password`.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// True when the key's name starts with `prefix` (a plain string prefix, as `list` uses).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }

    /// `self` with `child` appended as further segments: `app` + `db/password`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when `child` is not itself a valid key or the result is too long.
    pub fn join(&self, child: &str) -> Result<Self, Error> {
        Self::new(format!("{}/{child}", self.0))
    }
}

fn check(name: &str) -> Result<(), KeyProblem> {
    if name.is_empty() {
        return Err(KeyProblem::Empty);
    }
    if name.len() > MAX_KEY_LEN {
        return Err(KeyProblem::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(KeyProblem::ControlCharacter);
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(KeyProblem::LeadingOrTrailingSlash);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(KeyProblem::EmptySegment),
            "." | ".." => return Err(KeyProblem::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key names are not secret; printing them quoted keeps odd characters visible.
        write!(f, "SecretKey({:?})", &*self.0)
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SecretKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SecretKey {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for SecretKey {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl AsRef<str> for SecretKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SecretKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_good_names() {
        for name in [
            "a",
            "app/db/password",
            "prod/api-key",
            "team.alpha/svc_1/TOKEN",
            "with space/ok",
            "unicode/clé/密码",
            "a/.hidden/b",
            "dots.../..x/x..",
            "@/+/=/-",
        ] {
            let key = SecretKey::new(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            assert_eq!(key.as_str(), name);
        }
        let longest = "k".repeat(MAX_KEY_LEN);
        assert!(SecretKey::new(longest.as_str()).is_ok());
    }

    #[test]
    fn refuses_bad_names_with_the_rule_broken() {
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        let table: &[(&str, KeyProblem)] = &[
            ("", KeyProblem::Empty),
            (&too_long, KeyProblem::TooLong),
            ("/app", KeyProblem::LeadingOrTrailingSlash),
            ("app/", KeyProblem::LeadingOrTrailingSlash),
            ("/", KeyProblem::LeadingOrTrailingSlash),
            ("app//db", KeyProblem::EmptySegment),
            (".", KeyProblem::DotSegment),
            ("..", KeyProblem::DotSegment),
            ("app/../etc", KeyProblem::DotSegment),
            ("app/./db", KeyProblem::DotSegment),
            ("app/..", KeyProblem::DotSegment),
            ("app\ndb", KeyProblem::ControlCharacter),
            ("app\0", KeyProblem::ControlCharacter),
            ("app/\u{1b}[31m", KeyProblem::ControlCharacter),
            ("tab\there", KeyProblem::ControlCharacter),
            ("del\u{7f}", KeyProblem::ControlCharacter),
        ];
        for (name, want) in table {
            match SecretKey::new(*name) {
                Err(Error::InvalidKey { problem, .. }) => {
                    assert_eq!(problem, *want, "{name:?}");
                }
                other => panic!("{name:?}: expected InvalidKey({want:?}), got {other:?}"),
            }
        }
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let err = SecretKey::new("a\nb").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("a\\nb"), "{text}");
    }

    #[test]
    fn segments_name_and_join() {
        let key = SecretKey::new("app/db").unwrap();
        assert_eq!(key.name(), "db");
        let joined = key.join("password").unwrap();
        assert_eq!(joined.as_str(), "app/db/password");
        assert!(key.join("../x").is_err());
        assert!(key.has_prefix("app/"));
        assert!(!key.has_prefix("apps"));
    }

    proptest! {
        #[test]
        fn validation_never_panics_and_valid_keys_round_trip(name in "\\PC{0,40}|[a-z./]{0,12}") {
            if let Ok(key) = SecretKey::new(name.as_str()) {
                prop_assert_eq!(key.as_str(), name.as_str());
                prop_assert!(!key.segments().any(|s| s.is_empty() || s == "." || s == ".."));
                let again: SecretKey = key.to_string().parse().unwrap();
                prop_assert_eq!(again, key);
            }
        }
    }
}
