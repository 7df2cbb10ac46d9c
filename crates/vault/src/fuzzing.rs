//! Entry points into the private path encoders and the Transit answer parsers, for the cargo-fuzz targets in `fuzz/` only
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

/// Parses a Transit answer as the key provider does: the `data` object taken out of the JSON
/// document, then the key description (read key), the ciphertext (encrypt, rewrap, datakey)
/// and the plaintext (decrypt, datakey: `exact` is the asked-for length); and `wrapped` checked
/// as a stored wrapped key is before it is sent to decrypt.
pub fn transit_response(body: &[u8], exact: Option<usize>, wrapped: &[u8]) {
    const KEY: &str = "fuzz";
    let _ = crate::transit::TransitKeyProvider::wrapped_key_version(wrapped);
    let _ = crate::transit::ciphertext_text(wrapped, KEY);
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let _ = crate::transit::check_key_config(&answer, KEY, "transit");
    let mut data = answer
        .get_mut("data")
        .map_or(serde_json::Value::Null, serde_json::Value::take);
    if !data.is_object() {
        return;
    }
    let _ = crate::transit::ciphertext_of(&data, "encrypt", KEY);
    let max = exact.unwrap_or(crate::transit::MAX_DATA_KEY_LEN);
    let _ = crate::transit::plaintext_of(&mut data, "decrypt", KEY, max, exact);
}
