//! Raw HTTP against the local servers: a hyper client with timeouts, SigV4 signing with the
//! aws-sigv4 crate, and ES256 service-account tokens. No strongroom crate is involved, so a
//! failure here is about the servers or the seeding, not about our clients.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Value;

/// No call to a local server should take longer; a hung server fails the test instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A response: status and body text.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends a request to a loopback server.
pub(crate) async fn send(request: Request<Full<Bytes>>) -> Reply {
    let host = request.uri().host().unwrap_or_default().to_owned();
    assert!(
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
        "tests only talk to loopback, not {host}"
    );
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri = request.uri().clone();
    let call = async {
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("{uri}: {e} (is the server still running? see target/xtask/logs/)"),
        Err(_) => panic!("{uri}: no answer within {REQUEST_TIMEOUT:?}"),
    }
}

/// A call to OpenBao's HTTP API with an optional token and namespace.
pub(crate) async fn vault(
    addr: &str,
    token: Option<&str>,
    namespace: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{addr}/v1/{path}"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("x-vault-token", token);
    }
    if let Some(ns) = namespace {
        builder = builder.header("x-vault-namespace", ns);
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    send(
        builder
            .body(Full::new(Bytes::from(body)))
            .expect("valid request"),
    )
    .await
}

/// A signed AWS JSON-1.1 call (`X-Amz-Target: <target>`), e.g. Secrets Manager.
pub(crate) async fn aws_json(
    endpoint: &str,
    region: &str,
    service: &str,
    (access_key_id, secret_access_key): (&str, &str),
    target: &str,
    body: &Value,
) -> Reply {
    let body = body.to_string();
    let uri: http::Uri = format!("{endpoint}/").parse().expect("endpoint is a URI");
    let host = uri.authority().expect("endpoint has host:port").to_string();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri.clone())
        .header("host", &host)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(Full::new(Bytes::from(body.clone())))
        .expect("valid request");

    let identity: Identity =
        Credentials::new(access_key_id, secret_access_key, None, None, "itest").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing params")
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().expect("ASCII header")))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(signable, &params).expect("signing").into_parts();
    instructions.apply_to_request_http1x(&mut request);
    send(request).await
}

/// A Kubernetes service-account-style JWT signed with ES256 by the PKCS#8 key in `key`.
pub(crate) fn service_account_jwt(
    key_pkcs8: &[u8],
    issuer: &str,
    audience: &str,
    subject: &str,
) -> String {
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng)
        .expect("a P-256 PKCS#8 key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": issuer,
        "aud": [audience],
        "sub": subject,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "kubernetes.io": {
            "namespace": "itest",
            "serviceaccount": {"name": "app", "uid": "0f8a7b1c-0000-4000-8000-000000000001"}
        }
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    // FIXED signing gives r || s, the JWS encoding of an ES256 signature.
    let signature = pair
        .sign(&rng, signing_input.as_bytes())
        .expect("ECDSA signing");
    format!("{signing_input}.{}", b64.encode(signature.as_ref()))
}

/// A fresh P-256 PKCS#8 key the server does not trust.
pub(crate) fn untrusted_key() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .expect("key generation")
        .as_ref()
        .to_vec()
}

/// A name no earlier run used, so suites never see each other's leftovers.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("{prefix}-{nanos:x}")
}

/// A random version-4 UUID, e.g. for Secrets Manager's `ClientRequestToken` (which the AWS
/// SDKs fill in and LocalStack requires).
pub(crate) fn uuid_v4() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).expect("randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
