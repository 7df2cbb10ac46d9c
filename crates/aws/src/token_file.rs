//! Token files read from disk (the web identity JWT, the container authorization token):
//! bounded in size, read into one buffer that is wiped on drop, trimmed in place.

use std::io::Read;
use std::path::Path;

use strongroom_sigv4::CredentialsError;
use zeroize::{Zeroize, Zeroizing};

/// The largest token file read. EKS and GitHub OIDC tokens are one to two kilobytes and an
/// ECS authorization token far less; a larger file is a wrong path, not a token.
pub(crate) const MAX_TOKEN_FILE_BYTES: usize = 64 * 1024;

/// The file's text without surrounding whitespace, in a wiped buffer.
///
/// The buffer is allocated once at the file's size (plus one byte to see that the file is
/// not longer than [`MAX_TOKEN_FILE_BYTES`]), so reading never reallocates and leaves no
/// unwiped partial copy; the trimmed text is moved into place within the same buffer.
///
/// # Errors
/// [`CredentialsError::InvalidConfiguration`] naming `variable` and the path (never the
/// contents) when the file cannot be read, is too large or is not UTF-8.
pub(crate) fn read(
    provider: &'static str,
    variable: &str,
    path: &Path,
) -> Result<Zeroizing<String>, CredentialsError> {
    let invalid = |why: String| {
        CredentialsError::invalid_configuration(
            provider,
            format!("{variable} {}: {why}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
    let size = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0)
        .min(MAX_TOKEN_FILE_BYTES);
    let mut bytes = Zeroizing::new(Vec::with_capacity(size.saturating_add(1)));
    let limit = u64::try_from(MAX_TOKEN_FILE_BYTES.saturating_add(1)).unwrap_or(u64::MAX);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("cannot read it: {e}")))?;
    if bytes.len() > MAX_TOKEN_FILE_BYTES {
        return Err(invalid(format!(
            "is larger than {MAX_TOKEN_FILE_BYTES} bytes, too large for a token"
        )));
    }
    // Trim in place: move the kept bytes to the front and wipe the tail.
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("is not UTF-8".to_owned()))?;
    let trimmed = text.trim();
    let start = text.len().saturating_sub(text.trim_start().len());
    let len = trimmed.len();
    bytes.copy_within(start..start.saturating_add(len), 0);
    bytes[len..].zeroize();
    bytes.truncate(len);
    let vec = std::mem::take(&mut *bytes);
    match String::from_utf8(vec) {
        Ok(text) => Ok(Zeroizing::new(text)),
        // Unreachable (a trimmed str is UTF-8); the bytes are wiped all the same.
        Err(e) => {
            let mut vec = e.into_bytes();
            vec.zeroize();
            Err(invalid("is not UTF-8".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trims_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  \n eyJ.token.sig \r\n").unwrap();
        assert_eq!(read("p", "VAR", &path).unwrap().as_str(), "eyJ.token.sig");

        std::fs::write(&path, vec![b'a'; MAX_TOKEN_FILE_BYTES]).unwrap();
        assert_eq!(read("p", "VAR", &path).unwrap().len(), MAX_TOKEN_FILE_BYTES);
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_FILE_BYTES + 1]).unwrap();
        let err = read("p", "VAR", &path).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");

        std::fs::write(&path, b"\xff\xfe sekrit").unwrap();
        let err = read("p", "VAR", &path).unwrap_err();
        assert!(matches!(err, CredentialsError::InvalidConfiguration { .. }));
        assert!(!err.to_string().contains("sekrit"), "{err}");

        let err = read("p", "VAR", &dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("VAR"), "{err}");
    }
}
