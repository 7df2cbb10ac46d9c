//! The Secret Manager v1 REST calls the store makes, over `strongroom-http`.
//!
//! Every call sends the current access token, reads at most the client's body limit, and
//! turns a non-2xx answer into [`Error::Service`] with Google's status name. A 401 drops the
//! cached token and the call is made once more with a new one (a token revoked before its
//! time). Request bodies that carry a secret are built once in a buffer of their final size
//! and wiped when the request is done; access answers are wiped once read.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use strongroom_core::SecretValue;
use strongroom_http::{HttpClient, Retry, bytes::Bytes};
use zeroize::Zeroizing;

use crate::auth::{Credentials, WipedOnDrop, wipe};
use crate::error::{self, Error};

/// Secret Manager's largest payload.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024;

/// Secrets asked for per list page (Secret Manager allows up to 25,000). Each may carry
/// 16 KiB of annotations, so a page of 100 stays under the client's 4 MiB body limit.
const PAGE_SIZE: u32 = 100;

/// The most pages one listing reads: a million secrets at full pages. A server that keeps
/// handing out page tokens past this is not believed.
const MAX_PAGES: usize = 10_000;

/// A secret, as Secret Manager describes it (only the fields the store uses).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretResource {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) etag: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

impl SecretResource {
    /// The secret id: the last segment of `projects/P/secrets/ID`.
    pub(crate) fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }
}

/// A version's state and creation time.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionResource {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) state: Option<String>,
    pub(crate) create_time: Option<String>,
}

impl VersionResource {
    /// The version number at the end of its name.
    pub(crate) fn number(&self, operation: &'static str) -> Result<u64, Error> {
        version_number(operation, &self.name)
    }

    pub(crate) fn created(&self) -> Option<SystemTime> {
        self.create_time.as_deref().and_then(parse_time)
    }
}

/// How a new secret is replicated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Replication {
    /// Google chooses the locations (`{"automatic": {}}`). The default.
    #[default]
    Automatic,
    /// The payload is kept in these locations only (`us-east1`, `europe-west4`, ...).
    UserManaged(Vec<String>),
}

impl Replication {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Automatic => serde_json::json!({"automatic": {}}),
            Self::UserManaged(locations) => {
                let replicas: Vec<_> = locations
                    .iter()
                    .map(|l| serde_json::json!({"location": l}))
                    .collect();
                serde_json::json!({"userManaged": {"replicas": replicas}})
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    replication: Option<serde_json::Value>,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessWire {
    #[serde(default)]
    name: String,
    payload: Option<PayloadWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadWire {
    data: Option<Zeroizing<String>>,
    data_crc32c: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretPage {
    #[serde(default)]
    pub(crate) secrets: Vec<SecretResource>,
    pub(crate) next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionPage {
    #[serde(default)]
    pub(crate) versions: Vec<VersionResource>,
    pub(crate) next_page_token: Option<String>,
}

/// The Secret Manager REST API of one project.
#[derive(Clone)]
pub(crate) struct Api {
    http: HttpClient,
    /// `https://secretmanager.googleapis.com` (no trailing `/`).
    endpoint: String,
    project: String,
    credentials: Credentials,
}

impl Api {
    pub(crate) fn new(
        http: HttpClient,
        endpoint: String,
        project: String,
        credentials: Credentials,
    ) -> Self {
        Self {
            http,
            endpoint,
            project,
            credentials,
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn project(&self) -> &str {
        &self.project
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn secrets_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/secrets",
            self.endpoint,
            segment(&self.project)
        )
    }

    fn secret_url(&self, id: &str) -> String {
        format!("{}/{}", self.secrets_url(), segment(id))
    }

    fn version_url(&self, id: &str, version: &str) -> String {
        format!("{}/versions/{}", self.secret_url(id), segment(version))
    }

    pub(crate) async fn get_secret(&self, id: &str) -> Result<SecretResource, Error> {
        let body = self
            .call(
                "get secret",
                Method::GET,
                self.secret_url(id),
                None,
                Retry::Auto,
            )
            .await?;
        json("get secret", &body)
    }

    /// Creates a secret. Sent once unless no connection could be made: a create repeated
    /// after it worked would answer `ALREADY_EXISTS` and lose a create-only write.
    pub(crate) async fn create_secret(
        &self,
        id: &str,
        replication: &Replication,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<SecretResource, Error> {
        let body = SecretBody {
            replication: Some(replication.to_json()),
            labels,
            annotations,
            etag: None,
        };
        let url = format!("{}?secretId={}", self.secrets_url(), segment(id));
        let answer = self
            .call(
                "create secret",
                Method::POST,
                url,
                Some(to_body(&body)?),
                Retry::Unsent,
            )
            .await?;
        json("create secret", &answer)
    }

    /// Replaces the labels and annotations of a secret, when its etag is still `etag` (if
    /// given).
    pub(crate) async fn update_secret(
        &self,
        id: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        etag: Option<&str>,
    ) -> Result<SecretResource, Error> {
        let body = SecretBody {
            replication: None,
            labels,
            annotations,
            etag,
        };
        let url = format!("{}?updateMask=labels,annotations", self.secret_url(id));
        let answer = self
            .call(
                "update secret",
                Method::PATCH,
                url,
                Some(to_body(&body)?),
                Retry::Unsent,
            )
            .await?;
        json("update secret", &answer)
    }

    /// Deletes a secret and every version of it, for good.
    pub(crate) async fn delete_secret(&self, id: &str) -> Result<(), Error> {
        // A DELETE repeated after it worked would say NOT_FOUND: sent once.
        self.call(
            "delete secret",
            Method::DELETE,
            self.secret_url(id),
            None,
            Retry::Unsent,
        )
        .await?;
        Ok(())
    }

    /// Adds a version holding `value`, with its CRC32C for Secret Manager to check.
    /// Sent once unless no connection could be made, so that a value is never added twice.
    pub(crate) async fn add_version(&self, id: &str, value: &SecretValue) -> Result<u64, Error> {
        let body = payload_body(value.expose());
        let url = format!("{}:addVersion", self.secret_url(id));
        let answer = self
            .call("add version", Method::POST, url, Some(body), Retry::Unsent)
            .await?;
        let version: VersionResource = json("add version", &answer)?;
        version.number("add version")
    }

    /// A version's value (`latest` or a number) and its number, checking `dataCrc32c` when
    /// the server sends one.
    pub(crate) async fn access(
        &self,
        id: &str,
        version: &str,
    ) -> Result<(u64, SecretValue), Error> {
        const OP: &str = "access version";
        let url = format!("{}:access", self.version_url(id, version));
        let body = self.call(OP, Method::GET, url, None, Retry::Auto).await?;
        let parsed = serde_json::from_slice::<AccessWire>(&body);
        wipe(body);
        access_answer(parsed)
    }

    /// A version's description (`latest` or a number).
    pub(crate) async fn get_version(
        &self,
        id: &str,
        version: &str,
    ) -> Result<VersionResource, Error> {
        let body = self
            .call(
                "get version",
                Method::GET,
                self.version_url(id, version),
                None,
                Retry::Auto,
            )
            .await?;
        json("get version", &body)
    }

    /// `enable`, `disable` or `destroy` one version. Repeating one gives the same state, so
    /// these are retried.
    pub(crate) async fn set_state(
        &self,
        id: &str,
        version: u64,
        action: &'static str,
    ) -> Result<(), Error> {
        let url = format!("{}:{action}", self.version_url(id, &version.to_string()));
        self.call(
            action,
            Method::POST,
            url,
            Some(Bytes::from_static(b"{}")),
            Retry::Always,
        )
        .await?;
        Ok(())
    }

    /// Every secret of the project, every page.
    pub(crate) async fn list_secrets(&self) -> Result<Vec<SecretResource>, Error> {
        let mut out = Vec::new();
        let base = format!("{}?pageSize={PAGE_SIZE}", self.secrets_url());
        self.pages("list secrets", &base, |page: SecretPage| {
            out.extend(page.secrets);
            page.next_page_token
        })
        .await?;
        Ok(out)
    }

    /// Every version of a secret, every page.
    pub(crate) async fn list_versions(&self, id: &str) -> Result<Vec<VersionResource>, Error> {
        let mut out = Vec::new();
        let base = format!("{}/versions?pageSize={PAGE_SIZE}", self.secret_url(id));
        self.pages("list versions", &base, |page: VersionPage| {
            out.extend(page.versions);
            page.next_page_token
        })
        .await?;
        Ok(out)
    }

    async fn pages<P: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        base: &str,
        mut take: impl FnMut(P) -> Option<String>,
    ) -> Result<(), Error> {
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let url = match &token {
                Some(t) => format!("{base}&pageToken={}", segment(t)),
                None => base.to_owned(),
            };
            let body = self
                .call(operation, Method::GET, url, None, Retry::Auto)
                .await?;
            let next = take(json(operation, &body)?).filter(|t| !t.is_empty());
            match next {
                None => return Ok(()),
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(Error::malformed(
                        operation,
                        "the server handed out the same page token twice",
                    ));
                }
                Some(next) => token = Some(next),
            }
        }
        Err(Error::malformed(
            operation,
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// Sends one call with the access token; on 401, once more with a new token. Returns
    /// the body of a 2xx answer.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: String,
        body: Option<Bytes>,
        retry: Retry,
    ) -> Result<Bytes, Error> {
        let mut refreshed = false;
        loop {
            let token = self.credentials.token().await?;
            let mut request = http::Request::builder()
                .method(method.clone())
                .uri(url.as_str())
                .header(http::header::ACCEPT, "application/json");
            if body.is_some() {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
            }
            if let Some(project) = self.credentials.quota_project() {
                request = request.header("x-goog-user-project", project);
            }
            if let Some(token) = &token {
                // The header value is a copy the http crate owns; the text it is made from is
                // wiped here.
                let mut bearer = Zeroizing::new(String::with_capacity(
                    token.expose().len().saturating_add(7),
                ));
                bearer.push_str("Bearer ");
                bearer.push_str(token.expose());
                let mut value = http::HeaderValue::from_str(&bearer).map_err(|_| {
                    Error::Credentials("the access token cannot be sent in a header".into())
                })?;
                value.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, value);
            }
            let request = request
                .body(body.clone().unwrap_or_default())
                .map_err(|e| {
                    Error::Config(format!("{operation}: cannot build the request: {e}"))
                })?;
            let response = self
                .http
                .send_with(request, retry)
                .await
                .map_err(|source| Error::Http { operation, source })?;
            if response.is_success() {
                return Ok(response.body);
            }
            if response.status == StatusCode::UNAUTHORIZED
                && let Some(refused) = &token
                && !refreshed
            {
                refreshed = true;
                self.credentials.invalidate(refused);
                continue;
            }
            let err = error::from_response(operation, &response);
            wipe(response.body);
            return Err(err);
        }
    }
}

/// An AccessSecretVersion answer, already parsed as JSON (the raw body is wiped by then): the
/// version number, and the payload decoded and checked against its CRC32C when one is given.
pub(crate) fn access_answer(
    parsed: Result<AccessWire, serde_json::Error>,
) -> Result<(u64, SecretValue), Error> {
    const OP: &str = "access version";
    let wire = parsed.map_err(|_| Error::malformed(OP, "not an AccessSecretVersionResponse"))?;
    let number = version_number(OP, &wire.name)?;
    let payload = wire
        .payload
        .ok_or_else(|| Error::malformed(OP, "no payload"))?;
    let data = payload.data.unwrap_or_default();
    let mut bytes = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(data.len())));
    STANDARD
        .decode_vec(data.as_bytes(), &mut bytes)
        .map_err(|_| Error::malformed(OP, "payload.data is not base64"))?;
    if let Some(expected) = payload.data_crc32c {
        let expected = parse_crc(&expected)
            .ok_or_else(|| Error::malformed(OP, "dataCrc32c is not a 32-bit number"))?;
        if crc32c::crc32c(&bytes) != expected {
            return Err(Error::Checksum { operation: OP });
        }
    }
    Ok((number, SecretValue::from(bytes)))
}

/// A path segment or query value, percent-encoded (RFC 3986's unreserved characters kept,
/// so that a secret id is sent as it is).
fn segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}")
            .map_err(|_| Error::malformed(operation, "empty answer"));
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::malformed(
            operation,
            format!("unexpected JSON at line {} column {}", e.line(), e.column()),
        )
    })
}

fn to_body<T: Serialize>(value: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))
}

/// `{"payload":{"data":"<base64>","dataCrc32c":"<n>"}}` in one buffer of its final size,
/// wiped when the request is done with it.
pub(crate) fn payload_body(value: &[u8]) -> Bytes {
    const HEAD: &str = r#"{"payload":{"data":""#;
    const MIDDLE: &str = r#"","dataCrc32c":""#;
    const TAIL: &str = r#""}}"#;
    let crc = crc32c::crc32c(value).to_string();
    let encoded = base64::encoded_len(value.len(), true).unwrap_or(usize::MAX);
    let len = [HEAD.len(), encoded, MIDDLE.len(), crc.len(), TAIL.len()]
        .into_iter()
        .fold(0usize, usize::saturating_add);
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.push_str(HEAD);
    STANDARD.encode_string(value, &mut out);
    out.push_str(MIDDLE);
    out.push_str(&crc);
    out.push_str(TAIL);
    Bytes::from_owner(WipedOnDrop(out))
}

/// `dataCrc32c` is an int64, which proto3 JSON writes as a string; a number is accepted too.
fn parse_crc(value: &serde_json::Value) -> Option<u32> {
    let n = match value {
        serde_json::Value::String(s) => s.parse::<u64>().ok()?,
        serde_json::Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    u32::try_from(n).ok()
}

/// The number at the end of `projects/P/secrets/S/versions/N`.
fn version_number(operation: &'static str, name: &str) -> Result<u64, Error> {
    name.rsplit('/')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::malformed(
                operation,
                "the version name does not end in a version number",
            )
        })
}

/// An RFC 3339 time as Secret Manager writes it; `None` when it is not one or is out of
/// `SystemTime`'s range.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = parsed.unix_timestamp_nanos();
    if nanos >= 0 {
        let nanos = u64::try_from(nanos).ok()?;
        UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
    } else {
        let nanos = u64::try_from(nanos.checked_neg()?).ok()?;
        UNIX_EPOCH.checked_sub(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bodies_carry_the_crc32c() {
        let body = payload_body(b"hunter2");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["payload"]["data"], "aHVudGVyMg==");
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720's check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(
            json["payload"]["dataCrc32c"],
            crc32c::crc32c(b"hunter2").to_string()
        );
        let binary: Vec<u8> = (0..=255).collect();
        let body = payload_body(&binary);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            STANDARD
                .decode(json["payload"]["data"].as_str().unwrap())
                .unwrap(),
            binary
        );
        assert_eq!(
            body.len(),
            serde_json::to_vec(&json).unwrap().len(),
            "no slack in the buffer"
        );
    }

    #[test]
    fn crcs_and_version_names_are_bounded() {
        assert_eq!(parse_crc(&serde_json::json!("4294967295")), Some(u32::MAX));
        assert_eq!(parse_crc(&serde_json::json!(12)), Some(12));
        assert_eq!(parse_crc(&serde_json::json!("4294967296")), None);
        assert_eq!(parse_crc(&serde_json::json!("-1")), None);
        assert_eq!(parse_crc(&serde_json::json!(1.5)), None);
        assert_eq!(
            version_number("x", "projects/p/secrets/s/versions/7").unwrap(),
            7
        );
        for bad in [
            "",
            "projects/p/secrets/s/versions/latest",
            "v/0",
            "v/-1",
            "v/99999999999999999999999",
        ] {
            assert!(version_number("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_parse_or_are_left_out() {
        let t = parse_time("2024-05-01T10:20:30.123456789Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_714_558_830
        );
        assert!(parse_time("1969-12-31T23:59:59Z").is_some());
        assert!(parse_time("yesterday").is_none());
        assert!(parse_time("99999-01-01T00:00:00Z").is_none());
    }

    #[test]
    fn resources_parse_with_missing_fields() {
        let s: SecretResource = serde_json::from_str(
            r#"{"name":"projects/p/secrets/__a__b","etag":"\"1\"","labels":{"x":"y"}}"#,
        )
        .unwrap();
        assert_eq!(s.id(), "__a__b");
        assert!(s.annotations.is_empty());
        let v: VersionResource = serde_json::from_str(r#"{"name":"projects/p/secrets/s/versions/3","state":"ENABLED","createTime":"2024-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(v.number("x").unwrap(), 3);
        assert!(v.created().is_some());
        let page: SecretPage = serde_json::from_str(r#"{}"#).unwrap();
        assert!(page.secrets.is_empty() && page.next_page_token.is_none());
        assert_eq!(
            Replication::UserManaged(vec!["us-east1".into()]).to_json(),
            serde_json::json!({"userManaged": {"replicas": [{"location": "us-east1"}]}})
        );
    }
}
