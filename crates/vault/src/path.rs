//! Turning mounts and secret keys into URL paths: every segment percent-encoded, nothing
//! that could climb out of its mount.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use strongroom_core::{Error, NameProblem, SecretName};

/// Everything but RFC 3986's unreserved characters is encoded, so a segment can never
/// carry a `/`, `?`, `#` or `%` the server would read as structure.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Checks a relative Vault path (a mount, an auth mount, a secret key, a folder) and encodes
/// it segment by segment.
///
/// Refused before any request: empty names, empty segments (`a//b`), `.` and `..` segments,
/// control characters. Leading and trailing `/` are refused too: they are almost always a
/// mistake in a key, and [`clean_mount`] trims them from mount names on purpose instead.
///
/// # Errors
/// [`Error::InvalidKey`] naming the rule broken.
pub(crate) fn encode_path(path: &str) -> Result<String, Error> {
    if path.is_empty() {
        return Err(Error::invalid_key(path, NameProblem::Empty));
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err(Error::invalid_key(
            path,
            NameProblem::LeadingOrTrailingSlash,
        ));
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        check_segment(path, segment)?;
        if i > 0 {
            out.push('/');
        }
        // Straight into `out`: one allocation per path, not one per segment.
        out.extend(utf8_percent_encode(segment, SEGMENT));
    }
    Ok(out)
}

/// Encodes a folder for a list request: like [`encode_path`], but `""` (the mount's root)
/// is allowed and a trailing `/` is ignored.
///
/// # Errors
/// [`Error::InvalidKey`] for the same reasons as [`encode_path`].
pub(crate) fn encode_folder(folder: &str) -> Result<String, Error> {
    let trimmed = folder.strip_suffix('/').unwrap_or(folder);
    if trimmed.is_empty() {
        if folder.is_empty() {
            return Ok(String::new());
        }
        return Err(Error::invalid_key(
            folder,
            NameProblem::LeadingOrTrailingSlash,
        ));
    }
    encode_path(trimmed)
}

/// The encoded path of a validated [`SecretName`]. Core's rules already refuse `.`/`..`
/// segments and the rest; this re-checks so the guarantee holds here on its own.
pub(crate) fn encode_key(key: &SecretName) -> Result<String, Error> {
    encode_path(key.as_str())
}

/// A mount or auth mount path as configured (`secret`, `/secret/`, `team/kv`): trimmed of
/// surrounding slashes, then checked and encoded like a key.
///
/// # Errors
/// [`Error::Config`] when the mount is empty or has a bad segment.
pub(crate) fn clean_mount(mount: &str) -> Result<String, Error> {
    let trimmed = mount.trim_matches('/');
    encode_path(trimmed)
        .map_err(|e| Error::config(format!("invalid Vault mount path {mount:?}: {e}")))
}

fn check_segment(path: &str, segment: &str) -> Result<(), Error> {
    if segment.is_empty() {
        return Err(Error::invalid_key(path, NameProblem::EmptySegment));
    }
    if segment == "." || segment == ".." {
        return Err(Error::invalid_key(path, NameProblem::DotSegment));
    }
    if segment.chars().any(char::is_control) {
        return Err(Error::invalid_key(path, NameProblem::ControlCharacter));
    }
    Ok(())
}

/// Splits a `list` prefix into the folder to list from and the rest to filter by:
/// `app/d` -> (`app/`, `d`); `app/` -> (`app/`, ``); `ap` -> (``, `ap`).
pub(crate) fn split_prefix(prefix: &str) -> (&str, &str) {
    match prefix.rfind('/') {
        Some(i) => prefix.split_at(i.saturating_add(1)),
        None => ("", prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    #[test]
    fn segments_are_percent_encoded() {
        let table = [
            ("app/db/password", "app/db/password"),
            ("a b/c", "a%20b/c"),
            ("q?x=1#frag", "q%3Fx%3D1%23frag"),
            ("100%/done", "100%25/done"),
            ("%2e%2e/x", "%252e%252e/x"),
            ("..a/b.", "..a/b."),
            ("ünï/ç", "%C3%BCn%C3%AF/%C3%A7"),
            ("back\\slash", "back%5Cslash"),
            ("semi;colon+plus&amp", "semi%3Bcolon%2Bplus%26amp"),
            ("tilde~dash-under_", "tilde~dash-under_"),
        ];
        for (key, want) in table {
            assert_eq!(encode_path(key).unwrap(), want, "{key}");
        }
    }

    #[test]
    fn keys_that_escape_or_are_malformed_are_refused() {
        let table = [
            ("", NameProblem::Empty),
            ("..", NameProblem::DotSegment),
            ("../sys/seal", NameProblem::DotSegment),
            ("app/../../sys", NameProblem::DotSegment),
            ("app/./x", NameProblem::DotSegment),
            ("/abs", NameProblem::LeadingOrTrailingSlash),
            ("dir/", NameProblem::LeadingOrTrailingSlash),
            ("a//b", NameProblem::EmptySegment),
            ("a/\u{0}b", NameProblem::ControlCharacter),
            ("line\nbreak", NameProblem::ControlCharacter),
        ];
        for (key, problem) in table {
            match encode_path(key) {
                Err(Error::InvalidKey { problem: got, .. }) => assert_eq!(got, problem, "{key:?}"),
                other => panic!("{key:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn folders_allow_the_root_and_a_trailing_slash() {
        assert_eq!(encode_folder("").unwrap(), "");
        assert_eq!(encode_folder("app/").unwrap(), "app");
        assert_eq!(encode_folder("app/x y").unwrap(), "app/x%20y");
        assert_eq!(
            encode_folder("/").unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            encode_folder("../").unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }

    #[test]
    fn mounts_are_trimmed_and_checked() {
        assert_eq!(clean_mount("secret").unwrap(), "secret");
        assert_eq!(clean_mount("/team/kv/").unwrap(), "team/kv");
        for bad in ["", "/", "..", "a/../b", "a//b"] {
            assert_eq!(
                clean_mount(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn prefixes_split_at_the_last_slash() {
        assert_eq!(split_prefix("app/d"), ("app/", "d"));
        assert_eq!(split_prefix("app/"), ("app/", ""));
        assert_eq!(split_prefix("ap"), ("", "ap"));
        assert_eq!(split_prefix(""), ("", ""));
        assert_eq!(split_prefix("a/b/c"), ("a/b/", "c"));
    }

    #[test]
    fn core_keys_encode() {
        let key = SecretName::new("team a/db").unwrap();
        assert_eq!(encode_key(&key).unwrap(), "team%20a/db");
    }
}
