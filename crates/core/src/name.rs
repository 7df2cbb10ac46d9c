//! [`SecretName`]: the validated name of a secret.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::Error;

/// The longest key accepted, in bytes.
///
/// 512 is AWS Secrets Manager's limit on a secret name, the tightest of the backends; a key that
/// is valid here is therefore valid everywhere.
pub const MAX_NAME_LEN: usize = 512;

/// The name of a secret, such as `app/db/password`.
///
/// A key is a `/`-separated path of one or more segments. Validation happens once, when the key
/// is made, so every backend can rely on it:
///
/// - not empty, and at most [`MAX_NAME_LEN`] bytes;
/// - no leading or trailing `/`, and no empty segment (`a//b`);
/// - no `.` or `..` segment, so a key can never walk out of its mount or directory;
/// - no control characters (newlines, NUL, escape sequences), which would corrupt logs.
///
/// Backends map the key onto their own naming: Vault percent-encodes each segment, AWS uses the
/// name as it is, the environment store upper-cases it and turns `/` into `_`.
///
/// A name is not secret: it appears in errors, logs and audit events, and is not zeroized
/// (values and key material are). Never put a secret in a name.
///
/// Cloning is cheap (a reference count), because names travel with every secret and every
/// audit event.
///
/// ```
/// use strongroom_core::SecretName;
///
/// let key: SecretName = "app/db/password".parse()?;
/// assert_eq!(key.segments().collect::<Vec<_>>(), ["app", "db", "password"]);
/// assert!("app/../etc".parse::<SecretName>().is_err());
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(Arc<str>);

/// Why a key was refused; carried by [`Error::InvalidKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The key is the empty string.
    Empty,
    /// The key is longer than [`MAX_NAME_LEN`] bytes.
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

impl fmt::Display for NameProblem {
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

impl SecretName {
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

fn check(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(NameProblem::LeadingOrTrailingSlash);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(NameProblem::EmptySegment),
            "." | ".." => return Err(NameProblem::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key names are not secret; printing them quoted keeps odd characters visible.
        write!(f, "SecretName({:?})", &*self.0)
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SecretName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SecretName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for SecretName {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl AsRef<str> for SecretName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SecretName {
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
            let key = SecretName::new(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            assert_eq!(key.as_str(), name);
        }
        let longest = "k".repeat(MAX_NAME_LEN);
        assert!(SecretName::new(longest.as_str()).is_ok());
    }

    #[test]
    fn refuses_bad_names_with_the_rule_broken() {
        let too_long = "k".repeat(MAX_NAME_LEN + 1);
        let table: &[(&str, NameProblem)] = &[
            ("", NameProblem::Empty),
            (&too_long, NameProblem::TooLong),
            ("/app", NameProblem::LeadingOrTrailingSlash),
            ("app/", NameProblem::LeadingOrTrailingSlash),
            ("/", NameProblem::LeadingOrTrailingSlash),
            ("app//db", NameProblem::EmptySegment),
            (".", NameProblem::DotSegment),
            ("..", NameProblem::DotSegment),
            ("app/../etc", NameProblem::DotSegment),
            ("app/./db", NameProblem::DotSegment),
            ("app/..", NameProblem::DotSegment),
            ("app\ndb", NameProblem::ControlCharacter),
            ("app\0", NameProblem::ControlCharacter),
            ("app/\u{1b}[31m", NameProblem::ControlCharacter),
            ("tab\there", NameProblem::ControlCharacter),
            ("del\u{7f}", NameProblem::ControlCharacter),
        ];
        for (name, want) in table {
            match SecretName::new(*name) {
                Err(Error::InvalidKey { problem, .. }) => {
                    assert_eq!(problem, *want, "{name:?}");
                }
                other => panic!("{name:?}: expected InvalidKey({want:?}), got {other:?}"),
            }
        }
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let err = SecretName::new("a\nb").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("a\\nb"), "{text}");
    }

    #[test]
    fn segments_name_and_join() {
        let key = SecretName::new("app/db").unwrap();
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
            if let Ok(key) = SecretName::new(name.as_str()) {
                prop_assert_eq!(key.as_str(), name.as_str());
                prop_assert!(!key.segments().any(|s| s.is_empty() || s == "." || s == ".."));
                let again: SecretName = key.to_string().parse().unwrap();
                prop_assert_eq!(again, key);
            }
        }
    }
}
