//! [`MasterKey`]: 32 bytes of AES-256 key material, and the ways to load and store one.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use base64::DecodeSliceError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::cipher::fill_random;
use crate::error::Error;
use crate::format::KEY_LEN;

/// Key files larger than this are refused without reading further: a key is 32 raw bytes
/// or 44 base64 characters, so anything this big is the wrong file.
const MAX_KEY_FILE_LEN: u64 = 4096;
/// Capacity of the read buffer: above the read limit, so reading never reallocates it.
const READ_CAPACITY: usize = 8192;

/// A 32-byte AES-256 master key that wraps envelopes' data keys.
///
/// The bytes are zeroized when the key is dropped, and `Debug` prints
/// `MasterKey([REDACTED])`. Cloning copies the key (each copy is zeroized on drop).
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

/// Why a piece of key text is not a key.
enum TextProblem {
    /// Not standard base64.
    NotBase64,
    /// Base64 of this many bytes, not 32.
    Length(usize),
}

impl MasterKey {
    /// A fresh random key from the system RNG (ring's `SystemRandom`).
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails.
    pub fn generate() -> Result<MasterKey, Error> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&SystemRandom::new(), &mut bytes[..])?;
        Ok(MasterKey { bytes })
    }

    /// A key from exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::KeyLength`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, Error> {
        if bytes.len() != KEY_LEN {
            return Err(Error::KeyLength { len: bytes.len() });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(MasterKey { bytes: key })
    }

    /// A key from standard base64 (with padding), surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`Error::KeyText`] when the text is not base64, [`Error::KeyLength`] when it does not
    /// decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<MasterKey, Error> {
        decode_key_text(text).map_err(|problem| match problem {
            TextProblem::NotBase64 => Error::KeyText {
                problem: "is not valid base64",
            },
            TextProblem::Length(len) => Error::KeyLength { len },
        })
    }

    /// Reads a key file: either exactly 32 raw bytes, or base64 text (surrounding whitespace
    /// ignored, as [`write_new_file`](Self::write_new_file) writes it). A 32-byte file made
    /// only of printable ASCII is read as text, never as a raw key, so a short base64 string
    /// or a typed password is refused rather than used as key bytes.
    ///
    /// On Unix the file must not be accessible by group or others: a key anyone on the
    /// machine can read protects nothing, so such a file is refused rather than used. It must
    /// belong to the user running the program (or root), and its directory must not be
    /// writable by others unless it has the sticky bit (as `/tmp` does): whoever can replace
    /// the file chooses the key.
    ///
    /// # Errors
    /// [`Error::InsecureKeyFile`] (its message says which `chmod` to run),
    /// [`Error::KeyFileOwner`], [`Error::KeyFileDirectory`],
    /// [`Error::KeyFile`] when the content is not a key, [`Error::Io`] when the file cannot
    /// be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MasterKey, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // The mode is checked on the opened file, not the path, so it is the file we read.
        let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
        if metadata.is_dir() {
            return Err(Error::KeyFile {
                path: path.to_path_buf(),
                problem: "is a directory, not a key file",
            });
        }
        check_private(path, &metadata)?;
        if metadata.len() > MAX_KEY_FILE_LEN {
            return Err(Error::KeyFile {
                path: path.to_path_buf(),
                problem: "is too large to be a key (expected 32 raw bytes or base64 text)",
            });
        }
        // Sized up front so the buffer holding key material is never reallocated (a
        // reallocation would leave an unzeroized copy behind).
        let mut content = Zeroizing::new(Vec::with_capacity(READ_CAPACITY));
        file.take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut content)
            .map_err(|e| Error::io(path, e))?;
        // 32 bytes are a raw key unless they are all printable ASCII: that is text (say a
        // 32-character base64 string of 24 bytes, or a password) which must not silently
        // become a key. A random key is all printable with probability (95/256)^32, < 2^-45.
        let is_text = content
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        if content.len() == KEY_LEN && !is_text {
            return MasterKey::from_bytes(&content);
        }
        let key_file = |problem| Error::KeyFile {
            path: path.to_path_buf(),
            problem,
        };
        if content.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(key_file(
                "is too large to be a key (expected 32 raw bytes or base64 text)",
            ));
        }
        let text = std::str::from_utf8(&content)
            .map_err(|_| key_file("is neither 32 raw bytes nor base64 text"))?;
        decode_key_text(text).map_err(|problem| match problem {
            TextProblem::NotBase64 => key_file("is neither 32 raw bytes nor base64 text"),
            TextProblem::Length(_) => key_file("holds base64 that does not decode to 32 bytes"),
        })
    }

    /// A key from the environment variable `var`, holding standard base64.
    ///
    /// # Errors
    /// [`Error::Env`] when the variable is unset, empty, not base64 or not 32 bytes; the
    /// error names the variable, never its value.
    pub fn from_env(var: &str) -> Result<MasterKey, Error> {
        from_env_value(var, std::env::var_os(var))
    }

    /// Writes the key to a new file as base64 and a newline, then syncs it to disk.
    ///
    /// The file is created with mode 0600 on Unix (set at creation, so it is never readable
    /// by others, not even briefly) and is never overwritten: if `path` exists the call
    /// fails with [`Error::Io`] whose source has kind
    /// [`AlreadyExists`](std::io::ErrorKind::AlreadyExists). The parent directory is synced
    /// too, so the new file's name survives a crash along with any data written under the
    /// key.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists or cannot be written.
    pub fn write_new_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        let mut text = self.to_base64();
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            // We created the file, so removing the partial key lets a retry succeed; the
            // write error is the one worth reporting.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(Error::io(path, e));
        }
        sync_parent(path)
    }

    /// The key as standard base64 (44 characters), in a zeroizing string.
    pub fn to_base64(&self) -> Zeroizing<String> {
        // Capacity for the text and a newline, so appending one does not reallocate.
        let mut text = Zeroizing::new(String::with_capacity(48));
        STANDARD.encode_string(&self.bytes[..], &mut text);
        text
    }

    /// The raw key bytes, for the AEAD.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// [`MasterKey::from_env`] once the variable has been read, so tests need not change the
/// process environment.
fn from_env_value(var: &str, value: Option<OsString>) -> Result<MasterKey, Error> {
    let env = |problem| Error::Env {
        var: var.to_owned(),
        problem,
    };
    let value = value.ok_or_else(|| env("is not set"))?;
    let text = Zeroizing::new(
        value
            .into_string()
            .map_err(|_| env("is not valid base64 (not even UTF-8)"))?,
    );
    if text.trim().is_empty() {
        return Err(env("is empty"));
    }
    decode_key_text(&text).map_err(|problem| match problem {
        TextProblem::NotBase64 => env("is not valid base64"),
        TextProblem::Length(_) => env("does not decode to a 32-byte key"),
    })
}

/// Decodes trimmed standard base64 into a key, without leaving unzeroized copies.
fn decode_key_text(text: &str) -> Result<MasterKey, TextProblem> {
    let text = text.trim();
    // Room for a bit more than a key, so a slightly long input reports its length.
    let mut buf = Zeroizing::new([0u8; 2 * KEY_LEN]);
    match STANDARD.decode_slice(text, &mut buf[..]) {
        Ok(KEY_LEN) => {
            let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
            bytes.copy_from_slice(&buf[..KEY_LEN]);
            Ok(MasterKey { bytes })
        }
        Ok(len) => Err(TextProblem::Length(len)),
        Err(DecodeSliceError::DecodeError(_)) => Err(TextProblem::NotBase64),
        Err(DecodeSliceError::OutputSliceTooSmall) => match STANDARD.decode(text) {
            Ok(long) => Err(TextProblem::Length(Zeroizing::new(long).len())),
            Err(_) => Err(TextProblem::NotBase64),
        },
    }
}

/// Refuses a key file that group or others may access, that another user owns, or that
/// sits in a directory others can write.
#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecureKeyFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    let owner = metadata.uid();
    if !trusted_owner(owner, rustix::process::geteuid().as_raw()) {
        return Err(Error::KeyFileOwner {
            path: path.to_path_buf(),
            owner,
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir_mode = std::fs::metadata(dir)
        .map_err(|e| Error::io(dir, e))?
        .permissions()
        .mode();
    let others_write = dir_mode & 0o002 != 0;
    let sticky = dir_mode & 0o1000 != 0;
    if others_write && !sticky {
        return Err(Error::KeyFileDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether a file owned by `owner` may hold the key of a process running as `me`: its own
/// files, and root's (a key provisioned by root for a service user is common and safe,
/// since root can change anything anyway).
#[cfg(unix)]
fn trusted_owner(owner: u32, me: u32) -> bool {
    owner == me || owner == 0
}

/// Windows and other platforms have no mode bits to check.
#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), Error> {
    Ok(())
}

/// Syncs the directory holding `path`, so that a newly created file's entry is durable.
#[cfg(unix)]
fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(parent, e))
}

/// Directories cannot be opened and synced portably outside Unix.
#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    /// A key whose base64 is easy to search for in output.
    const KEY_BYTES: [u8; KEY_LEN] = [0x11; KEY_LEN];
    const KEY_BASE64: &str = "ERERERERERERERERERERERERERERERERERERERERERE=";

    fn key_base64() -> String {
        KEY_BASE64.to_owned()
    }

    fn write_with_mode(path: &Path, content: &[u8], mode: u32) {
        std::fs::write(path, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
    }

    /// Asserts that neither form of a formatted error contains `secret`.
    fn assert_hidden(error: &Error, secret: &str) {
        assert!(!format!("{error}").contains(secret), "{error}");
        assert!(!format!("{error:?}").contains(secret), "{error:?}");
    }

    #[test]
    fn from_bytes_wants_exactly_32() {
        assert_eq!(
            MasterKey::from_bytes(&KEY_BYTES).unwrap().bytes(),
            &KEY_BYTES
        );
        for len in [0, 16, 31, 33, 64] {
            let error = MasterKey::from_bytes(&vec![1u8; len]).unwrap_err();
            assert!(matches!(error, Error::KeyLength { len: l } if l == len));
        }
    }

    #[test]
    fn generate_gives_distinct_keys() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a.bytes(), b.bytes());
    }

    #[test]
    fn base64_round_trip_trims_whitespace() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        let padded = format!("  \n{}\r\n\t", text.as_str());
        assert_eq!(
            MasterKey::from_base64(&padded).unwrap().bytes(),
            key.bytes()
        );
        let fixed = MasterKey::from_bytes(&KEY_BYTES).unwrap();
        assert_eq!(fixed.to_base64().as_str(), KEY_BASE64);
    }

    #[test]
    fn from_base64_reports_encoding_and_length() {
        let secretish = "not*base64*secret*text";
        let error = MasterKey::from_base64(secretish).unwrap_err();
        assert!(matches!(error, Error::KeyText { .. }), "{error:?}");
        assert_hidden(&error, secretish);
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([1u8; 24])),
            Err(Error::KeyLength { len: 24 })
        ));
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([1u8; 100])),
            Err(Error::KeyLength { len: 100 })
        ));
        assert!(matches!(
            MasterKey::from_base64(""),
            Err(Error::KeyLength { len: 0 })
        ));
        // URL-safe base64 is not the standard alphabet.
        let url_safe = STANDARD
            .encode([0xfb; KEY_LEN])
            .replace('+', "-")
            .replace('/', "_");
        assert!(matches!(
            MasterKey::from_base64(&url_safe),
            Err(Error::KeyText { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes(&KEY_BYTES).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "MasterKey([REDACTED])");
        assert!(!debug.contains(&key_base64()));
        assert!(!debug.contains("17"));
        assert_eq!(format!("{:?}", key.clone()), "MasterKey([REDACTED])");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_is_refused_with_a_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o700 | 0o007] {
            write_with_mode(&path, key_base64().as_bytes(), mode);
            let error = MasterKey::from_file(&path).unwrap_err();
            match &error {
                Error::InsecureKeyFile { path: p, mode: m } => {
                    assert_eq!(p, &path);
                    assert_eq!(*m, mode);
                }
                other => panic!("expected InsecureKeyFile, got {other:?}"),
            }
            let message = error.to_string();
            assert!(
                message.contains(&format!("run `chmod 600 {}`", path.display())),
                "{message}"
            );
            assert_hidden(&error, &key_base64());
        }
    }

    #[cfg(unix)]
    #[test]
    fn only_our_own_or_roots_key_files_are_trusted() {
        for (owner, me, trusted) in [
            (1000, 1000, true),
            (0, 1000, true),
            (1001, 1000, false),
            (0, 0, true),
            (1000, 0, false),
        ] {
            assert_eq!(trusted_owner(owner, me), trusted, "owner {owner}, me {me}");
        }
        // As root (CI), a real file handed to another user is refused by from_file too.
        if rustix::process::geteuid().is_root() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("master.key");
            write_with_mode(&path, key_base64().as_bytes(), 0o600);
            std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
            let error = MasterKey::from_file(&path).unwrap_err();
            assert!(
                matches!(error, Error::KeyFileOwner { owner: 4242, .. }),
                "{error:?}"
            );
            assert!(error.to_string().contains("chown"), "{error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_in_a_directory_others_can_write_is_refused_unless_sticky() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_with_mode(&path, key_base64().as_bytes(), 0o600);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = MasterKey::from_file(&path).unwrap_err();
        match &error {
            Error::KeyFileDirectory { dir: d, .. } => assert_eq!(d, dir.path()),
            other => panic!("expected KeyFileDirectory, got {other:?}"),
        }
        assert!(error.to_string().contains("chmod o-w"), "{error}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        MasterKey::from_file(&path).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn key_file_accepts_raw_bytes_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.key");
        write_with_mode(&raw, &KEY_BYTES, 0o600);
        assert_eq!(MasterKey::from_file(&raw).unwrap().bytes(), &KEY_BYTES);

        let text = dir.path().join("text.key");
        write_with_mode(&text, format!("{}\n", key_base64()).as_bytes(), 0o600);
        assert_eq!(MasterKey::from_file(&text).unwrap().bytes(), &KEY_BYTES);

        let spaced = dir.path().join("spaced.key");
        write_with_mode(
            &spaced,
            format!("  {}  \r\n", key_base64()).as_bytes(),
            0o400,
        );
        assert_eq!(MasterKey::from_file(&spaced).unwrap().bytes(), &KEY_BYTES);
    }

    #[test]
    fn key_file_of_the_wrong_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, Vec<u8>); 6] = [
            ("short-raw", vec![0xff; 31]),
            ("long-raw", vec![0xff; 33]),
            ("short-b64", STANDARD.encode([7u8; 24]).into_bytes()),
            (
                "not-b64",
                b"this is my secret password, not a key\n".to_vec(),
            ),
            ("empty", Vec::new()),
            (
                "typed-32",
                b"a 32 character typed password!!!"[..32].to_vec(),
            ),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            write_with_mode(&path, &content, 0o600);
            let Err(error) = MasterKey::from_file(&path) else {
                panic!("{name}: accepted");
            };
            assert!(
                matches!(&error, Error::KeyFile { path: p, .. } if *p == path),
                "{name}: {error:?}"
            );
            assert_hidden(&error, "my secret password");
        }
        let big = dir.path().join("big");
        write_with_mode(&big, &vec![b'A'; 10_000], 0o600);
        assert!(matches!(
            MasterKey::from_file(&big),
            Err(Error::KeyFile { .. })
        ));

        assert!(matches!(
            MasterKey::from_file(dir.path()),
            Err(Error::KeyFile {
                problem: "is a directory, not a key file",
                ..
            })
        ));

        let missing = dir.path().join("missing");
        match MasterKey::from_file(&missing) {
            Err(Error::Io {
                path: Some(p),
                source,
            }) => {
                assert_eq!(p, missing);
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected Io NotFound, got {other:?}"),
        }
    }

    #[test]
    fn write_new_file_round_trips_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.key");
        let key = MasterKey::generate().unwrap();
        key.write_new_file(&path).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content, format!("{}\n", key.to_base64().as_str()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(MasterKey::from_file(&path).unwrap().bytes(), key.bytes());

        let other = MasterKey::generate().unwrap();
        match other.write_new_file(&path) {
            Err(Error::Io {
                path: Some(p),
                source,
            }) => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), ErrorKind::AlreadyExists);
            }
            result => panic!("expected AlreadyExists, got {result:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "file unchanged"
        );
    }

    #[test]
    fn env_value_problems_are_named_without_the_value() {
        let var = "STRONGROOM_TEST_MASTER_KEY";
        let cases: [(Option<&str>, &str); 4] = [
            (None, "is not set"),
            (Some("   "), "is empty"),
            (Some("secret!value!not!base64"), "is not valid base64"),
            (
                Some("c2VjcmV0LXZhbHVlLXRvby1zaG9ydA=="),
                "does not decode to a 32-byte key",
            ),
        ];
        for (value, expected) in cases {
            let error = from_env_value(var, value.map(OsString::from)).unwrap_err();
            match &error {
                Error::Env { var: v, problem } => {
                    assert_eq!(v, var);
                    assert_eq!(*problem, expected);
                }
                other => panic!("expected Env, got {other:?}"),
            }
            assert!(error.to_string().contains(var));
            if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
                assert_hidden(&error, value);
            }
        }
        let good = from_env_value(var, Some(OsString::from(format!(" {} \n", key_base64()))));
        assert_eq!(good.unwrap().bytes(), &KEY_BYTES);
    }

    #[cfg(unix)]
    #[test]
    fn env_value_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let error = from_env_value("V", Some(OsString::from_vec(vec![0xff, 0xfe]))).unwrap_err();
        assert!(matches!(error, Error::Env { .. }));
    }

    #[test]
    fn from_env_reports_an_unset_variable() {
        let var = "STRONGROOM_ENVELOPE_TEST_VARIABLE_THAT_IS_NEVER_SET";
        assert!(matches!(
            MasterKey::from_env(var),
            Err(Error::Env {
                problem: "is not set",
                ..
            })
        ));
    }

    /// The variable the child test reads; only the parent test sets it, in the child's
    /// environment, so no test changes this process's environment.
    const CHILD_VAR: &str = "STRONGROOM_ENVELOPE_CHILD_KEY";

    /// Runs `from_env_in_child` in a child process with `CHILD_VAR` set.
    #[test]
    fn from_env_reads_the_process_environment() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "master_key::tests::from_env_in_child",
                "--exact",
                "--ignored",
            ])
            .env(CHILD_VAR, format!("  {}\n", key_base64()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        // Guard against the filter matching nothing, which would also "succeed".
        assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
    }

    /// Run only by `from_env_reads_the_process_environment`, which sets the variable.
    #[test]
    #[ignore = "run as a child process by from_env_reads_the_process_environment"]
    fn from_env_in_child() {
        assert_eq!(MasterKey::from_env(CHILD_VAR).unwrap().bytes(), &KEY_BYTES);
    }
}
