//! The one error type of this crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while handling keys or envelopes.
///
/// No variant ever carries key material, a passphrase or plaintext: messages name the file,
/// the environment variable or the problem, never the value.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// The envelope does not authenticate under this key: either the key is wrong or the
    /// bytes were modified. One variant for both on purpose, so that a reader learns nothing
    /// about which check failed.
    #[error("cannot decrypt: wrong key, or the data was modified")]
    Decrypt,

    /// The bytes are not a well-formed envelope (truncated, bad magic, bad lengths, an
    /// unknown wrapping scheme, an iteration count out of range).
    #[error("malformed envelope: {reason}")]
    Malformed {
        /// What is wrong with the framing.
        reason: &'static str,
    },

    /// The envelope was written in a format version this build cannot read.
    #[error("unsupported envelope format version {version} (this build reads versions 1 and 2)")]
    UnsupportedVersion {
        /// The version byte found in the envelope.
        version: u8,
    },

    /// A key slot or slot table given to this crate breaks the format's rules (a key id or
    /// wrapped key too long, no slots or too many, a local slot that does not hold a wrapped
    /// data key of its kind, a table of another store). Read from a file, the same problems
    /// are [`Error::Malformed`].
    #[error("invalid key slot: {reason}")]
    Slot {
        /// What is wrong.
        reason: &'static str,
    },

    /// Key material of the wrong length was given (a master key and a data key are 32 bytes).
    #[error("a master key or data key must be 32 bytes, got {len}")]
    KeyLength {
        /// The length that was given.
        len: usize,
    },

    /// Text given as a master key is not standard base64.
    #[error("master key text {problem}")]
    KeyText {
        /// What is wrong with the text (never the text itself).
        problem: &'static str,
    },

    /// A key file is readable or writable by group or others.
    #[error(
        "key file {} is accessible by group or others (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A key file belongs to another user (not this process's user, not root): whoever owns
    /// it can change the key under us.
    #[error(
        "key file {} belongs to user id {owner}, not to the user running this program; \
         run `chown \"$(id -u)\" {}` or run as its owner",
        path.display(),
        path.display()
    )]
    KeyFileOwner {
        /// The key file.
        path: PathBuf,
        /// The file's owner (a user id).
        owner: u32,
    },

    /// A key file sits in a directory that other users can write (without the sticky bit):
    /// they could replace the file with a key of their own.
    #[error(
        "key file {} is in {}, which other users can write; run `chmod o-w {}` or move the key",
        path.display(),
        dir.display(),
        dir.display()
    )]
    KeyFileDirectory {
        /// The key file.
        path: PathBuf,
        /// The directory others can write.
        dir: PathBuf,
    },

    /// A key file's content is not a key.
    #[error("key file {}: {problem}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the content (never the content itself).
        problem: &'static str,
    },

    /// An environment variable meant to hold a key is unset or does not hold a key.
    #[error("environment variable {var} {problem}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it (never its value).
        problem: &'static str,
    },

    /// Reading or writing a file failed. The [`std::io::ErrorKind`] of `source` is kept, so
    /// a caller can tell, for example, `AlreadyExists` from `NotFound`.
    #[error("i/o error{}: {source}", on_path(path.as_deref()))]
    Io {
        /// The file involved, when there is one.
        path: Option<PathBuf>,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A passphrase's PBKDF2 iteration count is zero or above
    /// [`MAX_ITERATIONS`](crate::MAX_ITERATIONS), so `seal` refuses to write an envelope
    /// that `open` would refuse to read.
    #[error("PBKDF2 iteration count {iterations} is out of range (1..=10000000)")]
    InvalidIterations {
        /// The iteration count that was asked for.
        iterations: u32,
    },

    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl Error {
    /// An [`Error::Io`] about `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: Some(path.to_path_buf()),
            source,
        }
    }
}

/// " on <path>" or nothing, for the `Io` message.
fn on_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" on {}", p.display()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let insecure = Error::InsecureKeyFile {
            path: PathBuf::from("/etc/strongroom/master.key"),
            mode: 0o644,
        };
        assert_eq!(
            insecure.to_string(),
            "key file /etc/strongroom/master.key is accessible by group or others (mode 644); \
             run `chmod 600 /etc/strongroom/master.key`"
        );
        assert_eq!(
            Error::Decrypt.to_string(),
            "cannot decrypt: wrong key, or the data was modified"
        );
        let io = Error::io(
            Path::new("/tmp/k"),
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        );
        assert!(io.to_string().starts_with("i/o error on /tmp/k: "), "{io}");
        let bare = Error::Io {
            path: None,
            source: std::io::Error::other("boom"),
        };
        assert_eq!(bare.to_string(), "i/o error: boom");
        assert_eq!(
            Error::UnsupportedVersion { version: 9 }.to_string(),
            "unsupported envelope format version 9 (this build reads versions 1 and 2)"
        );
    }

    #[test]
    fn io_keeps_its_source() {
        use std::error::Error as _;
        let io = Error::io(Path::new("k"), std::io::Error::other("inner"));
        assert_eq!(io.source().unwrap().to_string(), "inner");
    }
}
