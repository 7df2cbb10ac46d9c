//! Entry points into the private path encoders, for the cargo-fuzz targets in `fuzz/` only
//! (the `fuzzing` feature). Not part of the API: names and shapes may change.

use strongroom_core::Error;

/// Checks and percent-encodes a relative Vault path, as every request path is.
///
/// # Errors
/// [`Error::InvalidKey`] naming the rule broken.
pub fn encode_path(path: &str) -> Result<String, Error> {
    crate::path::encode_path(path)
}

/// Encodes a folder for a list request (`""` is the mount's root).
///
/// # Errors
/// [`Error::InvalidKey`] naming the rule broken.
pub fn encode_folder(folder: &str) -> Result<String, Error> {
    crate::path::encode_folder(folder)
}

/// Trims and checks a configured mount path.
///
/// # Errors
/// [`Error::Config`] when the mount is empty or has a bad segment.
pub fn clean_mount(mount: &str) -> Result<String, Error> {
    crate::path::clean_mount(mount)
}
