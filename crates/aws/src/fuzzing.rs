//! Entry points into the private response parsers (Secrets Manager, credential providers, STS,
//! KMS, SSM), for the cargo-fuzz targets in `fuzz/`
//! only (the `fuzzing` feature). Not part of the API: names and shapes may change.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use strongroom_http::Response;

/// Parses an error response (JSON `__type`, XML `<Code>`, or the `x-amzn-ErrorType` header)
/// and maps it onto strongroom-core's error, as a failed call does.
pub fn error_response(status: u16, error_type: Option<&[u8]>, body: &[u8]) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut headers = HeaderMap::new();
    if let Some(value) = error_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert("x-amzn-errortype", value);
    }
    let response = Response::new(status, headers, Bytes::copy_from_slice(body));
    let err = crate::transport::service_error("secretsmanager", "GetSecretValue", &response);
    let _ = err.code();
    let _ = err.is_retryable();
    let _ = err.into_core(None, None);
}

/// Parses a GetSecretValue response body.
pub fn secret_value_response(body: &[u8]) {
    if let Ok(wire) = serde_json::from_slice::<crate::secretsmanager::WireValue>(body) {
        let _ = wire.into_output();
    }
}

/// Parses the JSON credentials document of the ECS and IMDS endpoints.
pub fn credentials_json(body: &[u8]) {
    let _ = crate::credentials_json::parse("fuzz", body);
}

/// Parses an STS AssumeRole* XML response.
pub fn sts_response(body: &[u8]) {
    let _ = crate::sts::parse_credentials("AssumeRole", body);
}

/// Parses an RFC 3339 timestamp as AWS writes them.
pub fn timestamp(text: &str) {
    let _ = crate::timestamp::parse_rfc3339(text);
}

/// Parses a KMS Encrypt, Decrypt or GenerateDataKey answer and decodes its fields with the
/// provider's own bounds (`exact`: GenerateDataKey's asked-for length).
pub fn kms_response(body: &[u8], exact: Option<usize>) {
    if let Ok(output) = serde_json::from_slice::<crate::kms::Output>(body) {
        let _ = crate::kms::ciphertext_of(&output, "Encrypt");
        let max = exact.unwrap_or(crate::kms::MAX_PLAINTEXT_LEN);
        let _ = crate::kms::plaintext_of(&output, "Decrypt", max, exact);
    }
}

/// Parses an SSM GetParameter answer (`{"Parameter": ...}`) or a page of
/// GetParametersByPath / GetParameterHistory (`{"Parameters": [...], "NextToken": ...}`) and
/// converts every parameter as the client does. The two outer shapes are restated here (the
/// client declares them inside its methods); the parameter parser is the client's own.
pub fn ssm_response(body: &[u8]) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct One {
        parameter: Option<crate::ssm::WireParameter>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page {
        #[serde(default)]
        parameters: Vec<crate::ssm::WireParameter>,
        #[serde(default)]
        next_token: Option<String>,
    }
    if let Ok(one) = serde_json::from_slice::<One>(body)
        && let Some(parameter) = one.parameter
    {
        let _ = parameter.into_parameter("GetParameter");
    }
    if let Ok(page) = serde_json::from_slice::<Page>(body) {
        let _ = page.next_token.filter(|t| !t.is_empty());
        for parameter in page.parameters {
            let _ = parameter.into_parameter("GetParametersByPath");
        }
    }
}
