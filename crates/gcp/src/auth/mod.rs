//! Google credentials: where the access token for Secret Manager comes from.
//!
//! [`Credentials`] is one of:
//!
//! - a token given directly ([`Credentials::access_token`], `GOOGLE_OAUTH_ACCESS_TOKEN`);
//! - a service-account key file ([`Credentials::from_file`], `GOOGLE_APPLICATION_CREDENTIALS`):
//!   an RS256 JWT signed with the key (ring) and exchanged at the file's `token_uri`;
//! - authorized-user application default credentials (what `gcloud auth
//!   application-default login` writes): a refresh-token grant at the token endpoint;
//! - the GCE / GKE metadata server ([`Credentials::metadata_server`], `GCE_METADATA_HOST`);
//! - nothing at all ([`Credentials::anonymous`]), for emulators.
//!
//! [`Credentials::from_env`] picks one the way Google's client libraries do. Fetched tokens
//! are cached and refreshed five minutes before they expire, by one request however many
//! callers wait. Tokens, keys, refresh tokens and client secrets are held in zeroized
//! buffers, print as `[REDACTED]`, and appear in no error message or tracing event.

mod authorized_user;
mod cache;
mod metadata;
mod service_account;
pub(crate) mod token_response;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_core::async_trait;
use strongroom_http::{HttpClient, bytes::Bytes};
use zeroize::Zeroizing;

use crate::error::{self, Error};
use cache::TokenCache;
use token_response::FreshToken;

pub use metadata::DEFAULT_METADATA_HOST;

/// The OAuth scope requested for service accounts and the metadata server.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google's token endpoint, for key files that name none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The largest credentials file read (a service-account key is about 2.5 KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The largest token-endpoint answer read.
const MAX_TOKEN_BODY: usize = 64 * 1024;

/// An OAuth 2 access token. Zeroized on drop; `Debug` prints `[REDACTED]`.
#[derive(Clone)]
pub struct AccessToken(Arc<Zeroizing<String>>);

impl AccessToken {
    /// True when both are the same fetched token (not merely equal text).
    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn new(value: Zeroizing<String>) -> Self {
        Self(Arc::new(value))
    }

    /// The token, to put in an `Authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Something that fetches a new token.
#[async_trait]
pub(crate) trait FetchToken: Send + Sync {
    async fn fetch(&self) -> Result<FreshToken, Error>;
    fn kind(&self) -> &'static str;
}

/// Where access tokens come from. Cheap to clone; clones share one token cache.
#[derive(Clone)]
pub struct Credentials {
    source: Source,
    /// The project billed for quota (`x-goog-user-project`): user credentials need one for
    /// some APIs.
    quota_project: Option<String>,
}

#[derive(Clone)]
enum Source {
    Anonymous,
    Static(AccessToken),
    Fetched(Arc<TokenCache>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.kind())
            .field("quota_project", &self.quota_project)
            .finish()
    }
}

impl Credentials {
    /// No credentials: requests carry no `Authorization` header. Only emulators accept that.
    pub fn anonymous() -> Self {
        Self::of(Source::Anonymous)
    }

    /// A token given directly (as `GOOGLE_OAUTH_ACCESS_TOKEN` does). It is never refreshed.
    ///
    /// # Errors
    /// [`Error::Credentials`] when it is empty, too long or not visible ASCII.
    pub fn access_token(token: impl Into<String>) -> Result<Self, Error> {
        let token = Zeroizing::new(token.into());
        token_response::check_token("GOOGLE_OAUTH_ACCESS_TOKEN", &token)
            .map_err(|_| Error::Credentials("the access token given is empty, too long, or has characters a header cannot carry".into()))?;
        Ok(Self::of(Source::Static(AccessToken::new(token))))
    }

    /// A credentials JSON file: a service-account key (`"type": "service_account"`) or
    /// authorized-user credentials (`"type": "authorized_user"`).
    ///
    /// # Errors
    /// [`Error::Credentials`] when the file cannot be read, is larger than 64 KiB, or is not
    /// a valid file of either type (the message names the file and the problem, never its
    /// contents).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_bounded(path)?;
        Self::from_json(&bytes).map_err(|e| match e {
            Error::Credentials(m) => Error::Credentials(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// As [`from_file`](Self::from_file), from the file's contents.
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file).
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let kind: Kind = serde_json::from_slice(json)
            .map_err(|_| Error::Credentials("not a JSON credentials file".into()))?;
        let http = token_client()?;
        let source: Box<dyn FetchToken> = match kind.kind.as_deref() {
            Some("service_account") => {
                Box::new(service_account::ServiceAccount::from_json(json, http)?)
            }
            Some("authorized_user") => {
                Box::new(authorized_user::AuthorizedUser::from_json(json, http)?)
            }
            Some(other) => {
                let other: String = other
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(40)
                    .collect();
                return Err(Error::Credentials(format!(
                    "credentials of type {other:?} are not supported (service_account and authorized_user are)"
                )));
            }
            None => return Err(Error::Credentials("the file has no \"type\"".into())),
        };
        let mut credentials = Self::fetched(source);
        credentials.quota_project = quota_project_of(json);
        Ok(credentials)
    }

    /// Bills quota to `project` (the `x-goog-user-project` header), as
    /// `GOOGLE_CLOUD_QUOTA_PROJECT` or an authorized-user file's `quota_project_id` do.
    #[must_use]
    pub fn with_quota_project(mut self, project: impl Into<String>) -> Self {
        self.quota_project = Some(project.into()).filter(|p| is_header_safe(p));
        self
    }

    /// The project quota is billed to, if one is set.
    pub fn quota_project(&self) -> Option<&str> {
        self.quota_project.as_deref()
    }

    /// The GCE / GKE metadata server at `GCE_METADATA_HOST`, or [`DEFAULT_METADATA_HOST`].
    ///
    /// # Errors
    /// [`Error::Config`] when `GCE_METADATA_HOST` is not a `host[:port]`.
    pub fn metadata_server() -> Result<Self, Error> {
        Self::metadata_server_from(&process_env)
    }

    fn metadata_server_from(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let host = var("GCE_METADATA_HOST");
        Self::metadata_server_at(host.as_deref().unwrap_or(DEFAULT_METADATA_HOST))
    }

    /// The metadata server at `host[:port]` (plain HTTP, as the metadata server speaks).
    ///
    /// # Errors
    /// [`Error::Config`] when `host` is not a `host[:port]`.
    pub fn metadata_server_at(host: &str) -> Result<Self, Error> {
        Ok(Self::fetched(Box::new(metadata::MetadataServer::new(
            host,
        )?)))
    }

    /// Credentials found the way Google's client libraries look for them (application
    /// default credentials), first match wins:
    ///
    /// 1. `GOOGLE_OAUTH_ACCESS_TOKEN`: a token given directly;
    /// 2. `GOOGLE_APPLICATION_CREDENTIALS`: the path of a service-account key or
    ///    authorized-user file (an error if set but unusable);
    /// 3. gcloud's application default credentials file,
    ///    `$CLOUDSDK_CONFIG/application_default_credentials.json` or
    ///    `~/.config/gcloud/application_default_credentials.json`, when it exists;
    /// 4. the metadata server (`GCE_METADATA_HOST` or [`DEFAULT_METADATA_HOST`]); if none
    ///    answers, the first request fails with [`strongroom_core::Error::Unauthenticated`].
    ///
    /// # Errors
    /// [`Error::Credentials`] / [`Error::Config`] when a variable names something unusable.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(&process_env)
    }

    /// [`from_env`](Self::from_env) with the variables `var` gives.
    pub(crate) fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let found = Self::find(var)?;
        Ok(match var("GOOGLE_CLOUD_QUOTA_PROJECT") {
            Some(project) => found.with_quota_project(project),
            None => found,
        })
    }

    fn find(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        if let Some(token) = var("GOOGLE_OAUTH_ACCESS_TOKEN") {
            return Self::access_token(token).map_err(|_| {
                Error::Credentials("GOOGLE_OAUTH_ACCESS_TOKEN is not a usable token".into())
            });
        }
        if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
            return Self::from_file(path);
        }
        if let Some(path) = well_known_file(var)
            && path.is_file()
        {
            return Self::from_file(path);
        }
        Self::metadata_server_from(var)
    }

    /// What these credentials are: `anonymous`, `access-token`, `service-account`,
    /// `authorized-user` or `metadata-server`.
    pub fn kind(&self) -> &'static str {
        match &self.source {
            Source::Anonymous => "anonymous",
            Source::Static(_) => "access-token",
            Source::Fetched(cache) => cache.kind(),
        }
    }

    /// A valid access token (`None` for [`anonymous`](Self::anonymous)), fetching one when
    /// none is cached or the cached one is due.
    ///
    /// # Errors
    /// When the token endpoint or metadata server cannot be reached or refuses.
    pub async fn token(&self) -> Result<Option<AccessToken>, Error> {
        match &self.source {
            Source::Anonymous => Ok(None),
            Source::Static(token) => Ok(Some(token.clone())),
            Source::Fetched(cache) => cache.token().await.map(Some),
        }
    }

    /// Drops `refused` from the cache if it is still the cached token, so that the next
    /// call fetches a new one (and a token another caller already replaced stays).
    pub(crate) fn invalidate(&self, refused: &AccessToken) {
        if let Source::Fetched(cache) = &self.source {
            cache.invalidate(refused);
        }
    }

    fn fetched(source: Box<dyn FetchToken>) -> Self {
        Self::of(Source::Fetched(Arc::new(TokenCache::new(source))))
    }

    fn of(source: Source) -> Self {
        Self {
            source,
            quota_project: None,
        }
    }
}

/// An authorized-user file's `quota_project_id`.
fn quota_project_of(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Quota {
        quota_project_id: Option<String>,
    }
    serde_json::from_slice::<Quota>(json)
        .ok()?
        .quota_project_id
        .filter(|p| is_header_safe(p))
}

/// Short visible ASCII: what a project id can be, and what a header can carry.
fn is_header_safe(text: &str) -> bool {
    !text.is_empty() && text.len() <= 100 && text.bytes().all(|b| b.is_ascii_graphic())
}

/// A variable of this process, `None` when unset, not Unicode or blank (trimmed otherwise).
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// gcloud's application default credentials file.
fn well_known_file(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    const FILE: &str = "application_default_credentials.json";
    if let Some(dir) = var("CLOUDSDK_CONFIG") {
        return Some(PathBuf::from(dir).join(FILE));
    }
    if cfg!(windows) {
        return var("APPDATA").map(|d| PathBuf::from(d).join("gcloud").join(FILE));
    }
    var("HOME").map(|h| PathBuf::from(h).join(".config").join("gcloud").join(FILE))
}

/// Reads a credentials file of at most [`MAX_FILE_BYTES`] into a wiped buffer.
fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    use std::io::Read as _;
    let cannot =
        |e: std::io::Error| Error::Credentials(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    file.take(MAX_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(Error::Credentials(format!(
            "{} is larger than 64 KiB",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The HTTP client for token requests: small bodies only.
fn token_client() -> Result<HttpClient, Error> {
    HttpClient::builder()
        .max_body_bytes(MAX_TOKEN_BODY)
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// A token URI must be https, or http to this machine (a test responder).
fn check_token_uri(uri: &str) -> Result<http::Uri, Error> {
    let parsed: http::Uri = uri
        .parse()
        .map_err(|_| Error::Credentials("token_uri is not a URL".into()))?;
    let host = parsed
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme_str() {
        Some("https") => Ok(parsed),
        Some("http") if loopback => Ok(parsed),
        _ => Err(Error::Credentials(
            "token_uri must be https (http only to this machine)".into(),
        )),
    }
}

/// POSTs a form (which may hold a secret: a refresh token, a signed assertion) and reads the
/// token out of the answer. The form and the answer are wiped afterwards.
async fn post_form(
    http: &HttpClient,
    operation: &'static str,
    uri: &http::Uri,
    form: Zeroizing<String>,
) -> Result<FreshToken, Error> {
    let body = Bytes::from_owner(WipedOnDrop(form));
    let request = http::Request::post(uri.clone())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| Error::Config(format!("token request: {e}")))?;
    // A token grant can be repeated safely: each answer is a new, independent token.
    let response = http
        .send_with(request, strongroom_http::Retry::Always)
        .await
        .map_err(|source| Error::Http { operation, source })?;
    read_token(operation, response)
}

fn read_token(
    operation: &'static str,
    response: strongroom_http::Response,
) -> Result<FreshToken, Error> {
    if !response.is_success() {
        let err = error::from_response(operation, &response);
        wipe(response.body);
        return Err(err);
    }
    let parsed = token_response::parse(operation, &response.body);
    wipe(response.body);
    parsed
}

/// Overwrites a response body when this is its only reference.
pub(crate) fn wipe(body: Bytes) {
    use zeroize::Zeroize as _;
    if let Ok(mut owned) = body.try_into_mut() {
        owned[..].zeroize();
    }
}

/// A request body that is wiped when the request is done with it.
pub(crate) struct WipedOnDrop<T: zeroize::Zeroize>(pub(crate) Zeroizing<T>);

impl<T: zeroize::Zeroize + AsRef<[u8]>> AsRef<[u8]> for WipedOnDrop<T> {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// `application/x-www-form-urlencoded` of `pairs`, in a buffer of its final size.
fn encode_form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    // RFC 3986's unreserved characters stay as they are.
    const FORM: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded = |s: &str| {
        utf8_percent_encode(s, FORM)
            .map(str::len)
            .fold(0usize, usize::saturating_add)
    };
    let len = pairs
        .iter()
        .map(|(k, v)| encoded(k).saturating_add(encoded(v)).saturating_add(2))
        .fold(0usize, usize::saturating_add);
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, FORM));
        out.push('=');
        out.extend(utf8_percent_encode(v, FORM));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted() {
        let creds = Credentials::access_token("ya29.very-secret").unwrap();
        let text = format!("{creds:?}");
        assert!(!text.contains("very-secret"), "{text}");
        let token = AccessToken::new(Zeroizing::new("ya29.very-secret".into()));
        assert_eq!(format!("{token:?}"), "AccessToken([REDACTED])");
        assert!(Credentials::access_token("has space").is_err());
        assert!(Credentials::access_token("").is_err());
        let err = Credentials::access_token("bad\nsecret").unwrap_err();
        assert!(!err.to_string().contains("secret\n"), "{err}");
    }

    #[test]
    fn credentials_files_are_checked() {
        for (json, want) in [
            (&br#"{"type":"external_account"}"#[..], "not supported"),
            (br#"{}"#, "no \"type\""),
            (b"garbage", "not a JSON"),
            (
                br#"{"type":"service_account","client_email":"a@b"}"#,
                "private_key",
            ),
            (
                br#"{"type":"authorized_user","client_id":"c"}"#,
                "refresh_token",
            ),
        ] {
            let err = Credentials::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 70 * 1024]).unwrap();
        assert!(
            Credentials::from_file(&big)
                .unwrap_err()
                .to_string()
                .contains("64 KiB")
        );
        assert!(Credentials::from_file(dir.path().join("none.json")).is_err());
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_environment_is_searched_in_google_order() {
        let dir = tempfile::tempdir().unwrap();
        let adc = serde_json::json!({
            "type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"
        });
        std::fs::write(
            dir.path().join("application_default_credentials.json"),
            adc.to_string(),
        )
        .unwrap();
        let config = dir.path().to_str().unwrap();
        let missing = dir.path().join("missing.json");
        let missing = missing.to_str().unwrap();
        let kind = |pairs: &[(&str, &str)]| Credentials::from_vars(&vars(pairs)).map(|c| c.kind());

        assert_eq!(
            kind(&[
                ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.t"),
                ("GOOGLE_APPLICATION_CREDENTIALS", missing)
            ])
            .unwrap(),
            "access-token"
        );
        // Named but missing: an error, not a silent fall through to another identity.
        assert!(
            kind(&[
                ("GOOGLE_APPLICATION_CREDENTIALS", missing),
                ("CLOUDSDK_CONFIG", config)
            ])
            .is_err()
        );
        assert_eq!(
            kind(&[("CLOUDSDK_CONFIG", config)]).unwrap(),
            "authorized-user"
        );
        let home = tempfile::tempdir().unwrap();
        let gcloud = home.path().join(".config/gcloud");
        std::fs::create_dir_all(&gcloud).unwrap();
        std::fs::write(
            gcloud.join("application_default_credentials.json"),
            adc.to_string(),
        )
        .unwrap();
        assert_eq!(
            kind(&[("HOME", home.path().to_str().unwrap())]).unwrap(),
            "authorized-user"
        );
        assert_eq!(kind(&[("HOME", missing)]).unwrap(), "metadata-server");
        assert_eq!(
            kind(&[("GCE_METADATA_HOST", "127.0.0.1:9")]).unwrap(),
            "metadata-server"
        );
        assert!(kind(&[("GCE_METADATA_HOST", "not a host")]).is_err());
        assert!(kind(&[("GOOGLE_OAUTH_ACCESS_TOKEN", "two words")]).is_err());

        // The quota project: from the ADC file, overridden by GOOGLE_CLOUD_QUOTA_PROJECT.
        let with_quota = serde_json::json!({
            "type": "authorized_user", "client_id": "c", "client_secret": "s",
            "refresh_token": "r", "quota_project_id": "billing-1"
        });
        std::fs::write(
            dir.path().join("application_default_credentials.json"),
            with_quota.to_string(),
        )
        .unwrap();
        let quota = |pairs: &[(&str, &str)]| {
            Credentials::from_vars(&vars(pairs))
                .unwrap()
                .quota_project()
                .map(str::to_owned)
        };
        assert_eq!(
            quota(&[("CLOUDSDK_CONFIG", config)]).as_deref(),
            Some("billing-1")
        );
        assert_eq!(
            quota(&[
                ("CLOUDSDK_CONFIG", config),
                ("GOOGLE_CLOUD_QUOTA_PROJECT", "billing-2")
            ])
            .as_deref(),
            Some("billing-2")
        );
        assert_eq!(quota(&[("GOOGLE_OAUTH_ACCESS_TOKEN", "t")]), None);
    }

    #[test]
    fn token_uris_must_be_https_or_loopback() {
        assert!(check_token_uri("https://oauth2.googleapis.com/token").is_ok());
        assert!(check_token_uri("http://127.0.0.1:8080/token").is_ok());
        assert!(check_token_uri("http://[::1]:8080/token").is_ok());
        assert!(check_token_uri("http://evil.example/token").is_err());
        assert!(check_token_uri("ftp://x/").is_err());
    }

    #[test]
    fn forms_are_encoded() {
        let form = encode_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//a+b=c&d"),
        ]);
        assert_eq!(
            form.as_str(),
            "grant_type=refresh_token&refresh_token=1%2F%2Fa%2Bb%3Dc%26d"
        );
    }
}
