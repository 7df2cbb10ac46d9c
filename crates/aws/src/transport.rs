//! How an AWS request goes out: signed by strongroom-sigv4, sent by strongroom-http, and an
//! error response read into an [`AwsError`]. Shared by Secrets Manager and STS.

use std::time::SystemTime;

use bytes::Bytes;
use http::Request;
use strongroom_http::{HttpClient, Response, Retry};
use strongroom_sigv4::{Credentials, Signer};
use zeroize::Zeroize;

use crate::error::AwsError;

/// Signs `request` with `credentials` (when given) and sends it.
pub(crate) async fn send(
    http: &HttpClient,
    signer: Option<(&Signer, &Credentials)>,
    service: &'static str,
    operation: &'static str,
    mut request: Request<Bytes>,
    retry: Retry,
) -> Result<Response, AwsError> {
    if let Some((signer, credentials)) = signer {
        signer.sign(&mut request, credentials, SystemTime::now())?;
    }
    http.send_with(request, retry)
        .await
        .map_err(|source| AwsError::Http {
            service,
            operation,
            source,
        })
}

/// A request body that is wiped when the last reference to it is dropped: request bodies
/// carry secret values (PutSecretValue) and web identity tokens.
pub(crate) fn secret_body(bytes: Vec<u8>) -> Bytes {
    Bytes::from_owner(WipedOnDrop(bytes))
}

/// `input` as JSON in a [`secret_body`], written into a buffer of exactly its final size:
/// `serde_json::to_vec` grows its buffer by reallocating, which frees partial copies of the
/// body (a secret value among them) without wiping them. Serialising twice (once to count)
/// costs a few microseconds for bodies of a few kilobytes.
pub(crate) fn json_body<T: serde::Serialize + ?Sized>(input: &T) -> serde_json::Result<Bytes> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, input)?;
    let mut bytes = Vec::with_capacity(counter.0);
    serde_json::to_writer(&mut bytes, input)?;
    Ok(secret_body(bytes))
}

/// A writer that only counts what it is given.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct WipedOnDrop(Vec<u8>);

impl AsRef<[u8]> for WipedOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Wipes a response body that held secrets, when this is its only reference (best effort:
/// a body shared with the connection's buffer is left to be dropped as it is).
pub(crate) fn wipe(body: Bytes) {
    if let Ok(mut owned) = body.try_into_mut() {
        owned[..].zeroize();
    }
}

/// The error a non-2xx response describes, whichever protocol shaped it: the
/// `x-amzn-ErrorType` header, a JSON body's `__type` / `code` and `message`, or an XML body's
/// `<Code>` and `<Message>` (STS, and moto's signature errors).
pub(crate) fn service_error(
    service: &'static str,
    operation: &'static str,
    response: &Response,
) -> AwsError {
    let mut code = response
        .header_str("x-amzn-errortype")
        .map(|v| v.split(':').next().unwrap_or(v).to_owned())
        .unwrap_or_default();
    let mut message = String::new();
    if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_slice::<serde_json::Value>(&response.body)
    {
        if code.is_empty() {
            code = ["__type", "code", "Code"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
                .unwrap_or_default()
                .to_owned();
        }
        message = ["message", "Message"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_owned();
    } else if let Ok(text) = std::str::from_utf8(&response.body) {
        if code.is_empty() {
            code = crate::xml::element(text, "Code").unwrap_or_default();
        }
        message = crate::xml::element(text, "Message").unwrap_or_default();
    }
    // `__type` may be namespaced: `com.amazonaws.secretsmanager#ResourceNotFoundException`.
    let code = code
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    AwsError::service(
        service,
        operation,
        response.status,
        &code,
        &message,
        response.retry_after(SystemTime::now()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, StatusCode};

    fn response(status: u16, body: &str) -> Response {
        Response::new(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn reads_json_and_xml_errors() {
        let r = response(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"no such secret"}"#,
        );
        let err = service_error("secretsmanager", "GetSecretValue", &r);
        assert_eq!(err.code(), Some("ResourceNotFoundException"));
        assert!(err.to_string().contains("no such secret"));

        let r = response(
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
             <Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
        );
        let err = service_error("sts", "AssumeRole", &r);
        assert_eq!(err.code(), Some("SignatureDoesNotMatch"));

        let err = service_error("sts", "AssumeRole", &response(502, "garbage"));
        assert_eq!(err.code(), Some("Unknown"));
        assert!(err.is_retryable());
    }

    #[test]
    fn json_bodies_are_sized_exactly() {
        let long = "x".repeat(10_000);
        let input = serde_json::json!({"SecretString": long, "ClientRequestToken": "t"});
        let body = json_body(&input).unwrap();
        assert_eq!(body, serde_json::to_vec(&input).unwrap());
    }

    #[test]
    fn secret_bodies_read_back() {
        let body = secret_body(b"abc".to_vec());
        assert_eq!(&body[..], b"abc");
        let clone = body.clone();
        drop(body);
        assert_eq!(&clone[..], b"abc");
    }
}
