//! Behaviour of [`Signer`] beyond the known answers: session tokens, payload modes, re-signing,
//! presigning limits, refusals, and that no secret reaches an error or a tracing event.

use std::time::{Duration, SystemTime};

use strongroom_sigv4::{Credentials, MAX_PRESIGN_EXPIRY, Payload, Signer, SigningError};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn time() -> SystemTime {
    time::macros::datetime!(2015-08-30 12:36:00 UTC).into()
}

fn request(body: &str) -> http::Request<Vec<u8>> {
    http::Request::post("https://secretsmanager.us-east-1.amazonaws.com/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn header<'a>(request: &'a http::Request<Vec<u8>>, name: &str) -> Option<&'a str> {
    request.headers().get(name).map(|v| v.to_str().unwrap())
}

fn signed_headers(request: &http::Request<Vec<u8>>) -> String {
    let auth = header(request, "authorization").unwrap();
    let start = auth.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
    auth[start..].split(',').next().unwrap().to_owned()
}

#[test]
fn session_token_is_sent_and_signed() {
    let creds = Credentials::new("ASIAEXAMPLE", SECRET).with_session_token(TOKEN);
    let mut req = request("{}");
    Signer::new("us-east-1", "secretsmanager")
        .sign(&mut req, &creds, time())
        .unwrap();
    assert_eq!(header(&req, "x-amz-security-token"), Some(TOKEN));
    assert_eq!(
        signed_headers(&req),
        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
    );
    assert!(req.headers()["x-amz-security-token"].is_sensitive());
}

#[test]
fn session_token_can_be_left_out_of_the_signature() {
    let creds = Credentials::new("ASIAEXAMPLE", SECRET).with_session_token(TOKEN);
    let mut req = request("{}");
    Signer::new("us-east-1", "iotdevicegateway")
        .sign_session_token(false)
        .sign(&mut req, &creds, time())
        .unwrap();
    assert_eq!(header(&req, "x-amz-security-token"), Some(TOKEN));
    assert_eq!(
        signed_headers(&req),
        "content-type;host;x-amz-date;x-amz-target"
    );
}

#[test]
fn payload_modes() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    // The body's hash, sent in x-amz-content-sha256 when asked.
    let mut req = request("");
    let hashed = Signer::new("us-east-1", "s3")
        .content_sha256_header(true)
        .sign(&mut req, &creds, time())
        .unwrap();
    assert_eq!(header(&req, "x-amz-content-sha256"), Some(EMPTY_SHA256));
    assert!(signed_headers(&req).contains("x-amz-content-sha256"));

    // The same hash given precomputed signs the same.
    let mut req = request("");
    let precomputed = Signer::new("us-east-1", "s3")
        .content_sha256_header(true)
        .sign_with_payload(&mut req, Payload::Sha256Hex(EMPTY_SHA256), &creds, time())
        .unwrap();
    assert_eq!(hashed, precomputed);

    // UNSIGNED-PAYLOAD changes the signature.
    let mut req = request("");
    let unsigned = Signer::new("us-east-1", "s3")
        .content_sha256_header(true)
        .unsigned_payload(true)
        .sign(&mut req, &creds, time())
        .unwrap();
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert_ne!(unsigned, hashed);

    // Without the header, the body still changes the signature.
    let sign = |body: &str| {
        Signer::new("us-east-1", "secretsmanager")
            .sign(&mut request(body), &creds, time())
            .unwrap()
    };
    assert_eq!(sign("{\"a\":1}"), sign("{\"a\":1}"));
    assert_ne!(sign("{\"a\":1}"), sign("{\"a\":2}"));
}

#[test]
fn a_bad_precomputed_hash_is_refused() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    for bad in [
        "",
        "abc",
        &EMPTY_SHA256.to_uppercase(),
        &format!("{EMPTY_SHA256}0"),
    ] {
        let err = Signer::new("us-east-1", "s3")
            .sign_with_payload(&mut request(""), Payload::Sha256Hex(bad), &creds, time())
            .unwrap_err();
        assert!(
            matches!(err, SigningError::InvalidParams { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn signing_again_replaces_the_previous_signature() {
    let temporary = Credentials::new("ASIAEXAMPLE", SECRET).with_session_token(TOKEN);
    let long_term = Credentials::new("AKIDEXAMPLE", SECRET);
    let signer = Signer::new("us-east-1", "secretsmanager");

    let mut req = request("{}");
    let first = signer.sign(&mut req, &temporary, time()).unwrap();
    let later = time() + Duration::from_secs(60);
    let second = signer.sign(&mut req, &long_term, later).unwrap();
    assert_ne!(first, second);
    assert_eq!(req.headers().get_all("authorization").iter().count(), 1);
    assert_eq!(req.headers().get_all("x-amz-date").iter().count(), 1);
    assert_eq!(header(&req, "x-amz-date"), Some("20150830T123700Z"));
    assert!(req.headers().get("x-amz-security-token").is_none());

    // Same as signing a fresh request with the second credentials.
    let mut fresh = request("{}");
    assert_eq!(signer.sign(&mut fresh, &long_term, later).unwrap(), second);
}

#[test]
fn a_request_without_a_host_is_refused_not_panicked_on() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    let signer = Signer::new("us-east-1", "sts");
    let mut req = http::Request::get("/?Action=GetCallerIdentity")
        .body(Vec::new())
        .unwrap();
    let err = signer.sign(&mut req, &creds, time()).unwrap_err();
    assert!(matches!(err, SigningError::MissingHost), "{err:?}");

    // An origin-form URI with a Host header is fine: the header is what is signed.
    let mut req = http::Request::get("/?Action=GetCallerIdentity")
        .header("host", "sts.amazonaws.com")
        .body(Vec::new())
        .unwrap();
    signer.sign(&mut req, &creds, time()).unwrap();
    let mut absolute = http::Request::get("https://sts.amazonaws.com/?Action=GetCallerIdentity")
        .body(Vec::new())
        .unwrap();
    signer.sign(&mut absolute, &creds, time()).unwrap();
    assert_eq!(
        req.headers()["authorization"],
        absolute.headers()["authorization"]
    );
}

#[test]
fn the_host_port_is_signed_unless_default() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    let signer = Signer::new("us-east-1", "secretsmanager");
    let sign = |uri: &str, host: Option<&str>| {
        let mut builder = http::Request::post(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        let mut req = builder.body(Vec::new()).unwrap();
        signer.sign(&mut req, &creds, time()).unwrap()
    };
    // What hyper sends as Host: the port only when it is not the scheme's default.
    assert_eq!(
        sign("http://127.0.0.1:4566/", None),
        sign("/", Some("127.0.0.1:4566"))
    );
    assert_eq!(
        sign("https://localhost:443/", None),
        sign("/", Some("localhost"))
    );
    assert_ne!(
        sign("http://127.0.0.1:4566/", None),
        sign("/", Some("127.0.0.1"))
    );
}

#[test]
fn an_unsignable_header_value_is_named_but_not_shown() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    let mut req = request("{}");
    req.headers_mut().insert(
        "x-custom",
        http::HeaderValue::from_bytes(b"caf\xe9-secretish").unwrap(),
    );
    let err = Signer::new("us-east-1", "secretsmanager")
        .sign(&mut req, &creds, time())
        .unwrap_err();
    assert!(matches!(&err, SigningError::InvalidHeaderValue { name } if name == "x-custom"));
    assert!(!format!("{err} {err:?}").contains("secretish"));
}

#[test]
fn bad_region_or_service_is_refused() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET);
    for (region, service) in [
        ("", "sts"),
        ("us-east-1", ""),
        ("us/east", "sts"),
        ("us-east-1", "s t s"),
    ] {
        let err = Signer::new(region, service)
            .sign(&mut request("{}"), &creds, time())
            .unwrap_err();
        assert!(
            matches!(err, SigningError::InvalidParams { .. }),
            "{region:?} {service:?}"
        );
    }
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
    })
}

#[test]
fn presigned_urls() {
    let creds = Credentials::new("ASIAEXAMPLE", SECRET).with_session_token(TOKEN);
    let req = http::Request::get("https://bucket.s3.us-east-1.amazonaws.com/a/b.txt?versionId=3")
        .body(Vec::new())
        .unwrap();
    let s3 = Signer::new("us-east-1", "s3")
        .unsigned_payload(true)
        .normalize_path(false)
        .double_encode_path(false);
    let url = s3
        .presign(&req, &creds, time(), Duration::from_secs(900))
        .unwrap();
    assert_eq!(url.host(), Some("bucket.s3.us-east-1.amazonaws.com"));
    assert_eq!(url.path(), "/a/b.txt");
    assert_eq!(query_param(&url, "versionId").as_deref(), Some("3"));
    assert_eq!(query_param(&url, "X-Amz-Expires").as_deref(), Some("900"));
    assert_eq!(
        query_param(&url, "X-Amz-Security-Token").as_deref(),
        Some(TOKEN)
    );
    assert_eq!(
        query_param(&url, "X-Amz-Credential").as_deref(),
        Some("ASIAEXAMPLE/20150830/us-east-1/s3/aws4_request")
    );
    assert_eq!(
        query_param(&url, "X-Amz-Signature").map(|s| s.len()),
        Some(64)
    );
    assert!(!url.to_string().contains(SECRET));

    assert!(s3.presign(&req, &creds, time(), MAX_PRESIGN_EXPIRY).is_ok());
    for bad in [Duration::ZERO, MAX_PRESIGN_EXPIRY + Duration::from_secs(1)] {
        let err = s3.presign(&req, &creds, time(), bad).unwrap_err();
        assert!(matches!(err, SigningError::InvalidParams { .. }), "{bad:?}");
    }
}
