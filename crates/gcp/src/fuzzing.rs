//! Entry points into the private Secret Manager and Google token parsers, for the cargo-fuzz
//! targets in `fuzz/` only (the `fuzzing` feature). Not part of the API: names and shapes may
//! change.

use crate::api::{self, SecretPage, VersionPage};

/// Parses an AccessSecretVersion answer: version number, base64 payload, CRC32C check.
pub fn access_response(body: &[u8]) {
    let _ = api::access_answer(serde_json::from_slice(body));
}

/// Parses a page of ListSecrets and of ListVersions, and a GetVersion answer, then reads
/// each resource as the store does (secret id, version number, creation time).
pub fn list_responses(body: &[u8]) {
    if let Ok(page) = api::json::<SecretPage>("list secrets", body) {
        let _ = page.next_page_token;
        for secret in &page.secrets {
            let _ = secret.id();
        }
    }
    if let Ok(page) = api::json::<VersionPage>("list versions", body) {
        let _ = page.next_page_token;
        for version in &page.versions {
            let _ = version.number("list versions");
            let _ = version.created();
        }
    }
    if let Ok(version) = api::json::<api::VersionResource>("get version", body) {
        let _ = version.number("get version");
    }
}

/// Parses an OAuth token answer (token endpoint, metadata server).
pub fn token_response(body: &[u8]) {
    let _ = crate::auth::token_response::parse("fuzz", body);
}

/// Reads a credentials file (a service-account key with its PEM private key, or an
/// authorized-user file), as `Credentials::from_json` does for `GOOGLE_APPLICATION_CREDENTIALS`.
pub fn credentials_file(json: &[u8]) {
    let _ = crate::Credentials::from_json(json);
}
