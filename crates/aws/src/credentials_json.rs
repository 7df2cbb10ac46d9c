//! The JSON credentials document that IMDS and the ECS/EKS container endpoint both serve:
//! `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (and, from IMDS, `Code`).

use serde::Deserialize;
use strongroom_sigv4::{Credentials, CredentialsError};
use zeroize::Zeroizing;

use crate::timestamp::parse_rfc3339;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<Zeroizing<String>>,
    token: Option<Zeroizing<String>>,
    expiration: Option<String>,
}

/// Reads the document into [`Credentials`]. Errors name the missing field, never a value.
pub(crate) fn parse(provider: &'static str, body: &[u8]) -> Result<Credentials, CredentialsError> {
    let doc: Document = serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names a line and column, not the content.
        CredentialsError::provider(provider, format!("malformed credentials document: {e}"))
    })?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        let message = doc.message.as_deref().unwrap_or_default();
        return Err(CredentialsError::provider(
            provider,
            format!("credentials endpoint answered Code={code}: {message}"),
        ));
    }
    let missing = |field: &str| {
        CredentialsError::provider(provider, format!("credentials document has no {field}"))
    };
    let key_id = doc.access_key_id.ok_or_else(|| missing("AccessKeyId"))?;
    let secret = doc
        .secret_access_key
        .ok_or_else(|| missing("SecretAccessKey"))?;
    let mut credentials = Credentials::new(key_id, secret.as_str());
    if let Some(token) = doc.token {
        credentials = credentials.with_session_token(token.as_str());
    }
    if let Some(expiration) = doc.expiration {
        let at = parse_rfc3339(&expiration).ok_or_else(|| {
            CredentialsError::provider(
                provider,
                "credentials document has an unreadable Expiration",
            )
        })?;
        credentials = credentials.with_expiry(at);
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_document() {
        let body = br#"{"Code":"Success","LastUpdated":"2024-01-01T00:00:00Z","Type":"AWS-HMAC",
            "AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"sekrit","Token":"tok",
            "Expiration":"2030-01-01T00:00:00Z"}"#;
        let c = parse("imds", body).unwrap();
        assert_eq!(c.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key(), "sekrit");
        assert_eq!(c.session_token(), Some("tok"));
        assert!(c.expiry().is_some());
    }

    #[test]
    fn failures_name_fields_not_values() {
        let err = parse("ecs", br#"{"AccessKeyId":"A","Token":"sekrit-token"}"#).unwrap_err();
        let text = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
        assert!(text.contains("SecretAccessKey"), "{text}");
        assert!(!text.contains("sekrit-token"), "{text}");
        let err = parse("imds", br#"{"Code":"AssumeRoleUnauthorizedAccess"}"#).unwrap_err();
        assert!(
            format!("{:?}", std::error::Error::source(&err))
                .contains("AssumeRoleUnauthorizedAccess")
        );
        assert!(parse("imds", b"<html>").is_err());
    }
}
