//! [`GcpStoreBuilder`]: the project, endpoint, credentials, replication and prefix of a
//! [`GcpStore`], from code or from the environment.

use std::fmt;
use std::sync::Arc;

use strongroom_core::Scope;
use strongroom_http::HttpClient;

use crate::api::{Api, Replication};
use crate::auth::Credentials;
use crate::error::Error;
use crate::store::{GcpStore, Inner};

/// Secret Manager's global endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// Builds a [`GcpStore`].
///
/// ```no_run
/// use strongroom_gcp::{Credentials, GcpStore, Replication};
///
/// # fn demo() -> Result<(), strongroom_gcp::Error> {
/// let store = GcpStore::builder()
///     .project("my-project")
///     .credentials(Credentials::from_file("/etc/gcp/key.json")?)
///     .replication(Replication::UserManaged(vec!["europe-west4".into()]))
///     .prefix("myapp/prod")
///     .build()?;
/// # drop(store); Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct GcpStoreBuilder {
    project: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    replication: Replication,
    prefix: Option<String>,
    http: Option<HttpClient>,
}

impl fmt::Debug for GcpStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpStoreBuilder")
            .field("project", &self.project)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("replication", &self.replication)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl GcpStoreBuilder {
    /// A builder with nothing set: [`build`](Self::build) needs at least a project.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the environment, the Google way; what is set in code after it
    /// wins.
    ///
    /// - project: `GOOGLE_CLOUD_PROJECT`, else `GCLOUD_PROJECT`, else `CLOUDSDK_CORE_PROJECT`;
    /// - endpoint: `STRONGROOM_GCP_ENDPOINT`, else gcloud's
    ///   `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER`, else [`DEFAULT_ENDPOINT`];
    /// - prefix: `STRONGROOM_GCP_PREFIX`;
    /// - replication of new secrets: `STRONGROOM_GCP_REPLICATION`, `automatic` (the
    ///   default) or a comma-separated list of locations (`us-east1,us-west1`);
    /// - credentials: [`Credentials::from_env`] when [`build`](Self::build) runs, unless
    ///   set with [`credentials`](Self::credentials).
    pub fn from_env() -> Self {
        Self::from_vars(&crate::auth::process_env)
    }

    /// [`from_env`](Self::from_env) with the variables `var` gives.
    pub(crate) fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut builder = Self::new();
        builder.project = var("GOOGLE_CLOUD_PROJECT")
            .or_else(|| var("GCLOUD_PROJECT"))
            .or_else(|| var("CLOUDSDK_CORE_PROJECT"));
        builder.endpoint = var("STRONGROOM_GCP_ENDPOINT")
            .or_else(|| var("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER"));
        builder.prefix = var("STRONGROOM_GCP_PREFIX");
        if let Some(replication) = var("STRONGROOM_GCP_REPLICATION")
            && !replication.eq_ignore_ascii_case("automatic")
        {
            builder.replication = Replication::UserManaged(
                replication
                    .split(',')
                    .map(|l| l.trim().to_owned())
                    .collect(),
            );
        }
        builder
    }

    /// The Google Cloud project (id or number) whose secrets the store holds.
    #[must_use]
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The Secret Manager endpoint, such as `https://secretmanager.googleapis.com` (the
    /// default), a regional or private endpoint, or an emulator's `http://127.0.0.1:PORT`.
    /// A trailing `/` or `/v1` is dropped. Plain `http` is accepted only for loopback
    /// addresses: the access token travels in a header.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Where access tokens come from; [`Credentials::from_env`] when not set.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How secrets this store creates are replicated ([`Replication::Automatic`] unless
    /// set). Existing secrets keep theirs.
    #[must_use]
    pub fn replication(mut self, replication: Replication) -> Self {
        self.replication = replication;
        self
    }

    /// Scopes the store to a folder: `myapp/prod` makes the key `db/password` the name
    /// `myapp/prod/db/password` (and its secret id; see the crate docs).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The HTTP client to send requests with (to share a pool or set timeouts); a default
    /// one when not set.
    #[must_use]
    pub fn http_client(mut self, client: HttpClient) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the store. Makes no request: credentials are used at the first call.
    ///
    /// # Errors
    /// [`Error::Config`] without a project, with a bad endpoint or prefix or replication;
    /// [`Error::Credentials`] when credentials from the environment cannot be loaded.
    pub fn build(self) -> Result<GcpStore, Error> {
        let project = self.project.ok_or_else(|| {
            Error::Config("no project: set GOOGLE_CLOUD_PROJECT or call .project()".into())
        })?;
        check_project(&project)?;
        let endpoint = normalize_endpoint(self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT))?;
        if let Replication::UserManaged(locations) = &self.replication {
            if locations.is_empty() {
                return Err(Error::Config(
                    "user-managed replication needs at least one location".into(),
                ));
            }
            if let Some(bad) = locations.iter().find(|l| {
                l.is_empty()
                    || l.len() > 64
                    || !l
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }) {
                return Err(Error::Config(format!(
                    "{bad:?} is not a location (such as us-east1)"
                )));
            }
        }
        let scope = Scope::new(self.prefix.as_deref().unwrap_or_default())
            .map_err(|e| Error::Config(format!("prefix: {e}")))?;
        let credentials = match self.credentials {
            Some(c) => c,
            None => Credentials::from_env()?,
        };
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new().map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
        };
        Ok(GcpStore {
            inner: Arc::new(Inner {
                api: Api::new(http, endpoint, project, credentials),
                scope,
                replication: self.replication,
            }),
        })
    }
}

fn check_project(project: &str) -> Result<(), Error> {
    // Project ids (`my-project-123`), numbers, and domain-scoped ids (`example.com:proj`).
    let ok = !project.is_empty()
        && project.len() <= 100
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{project:?} is not a Google Cloud project id"
        )))
    }
}

/// `scheme://host[:port][/path]` without a trailing `/` or `/v1`; https, or http to a
/// loopback host.
pub(crate) fn normalize_endpoint(endpoint: &str) -> Result<String, Error> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let trimmed = trimmed
        .strip_suffix("/v1")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| Error::Config(format!("endpoint {trimmed:?} is not a URL")))?;
    let host = uri
        .host()
        .ok_or_else(|| Error::Config(format!("endpoint {trimmed:?} has no host")))?;
    if uri.query().is_some() || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::Config(format!(
            "endpoint {trimmed:?} must be scheme://host[:port][/path]"
        )));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(trimmed.to_owned()),
        Some("http") if loopback => Ok(trimmed.to_owned()),
        Some("http") => Err(Error::Config(format!(
            "endpoint {trimmed:?}: plain http only to this machine (an emulator); use https"
        ))),
        _ => Err(Error::Config(format!("endpoint {trimmed:?} must be https"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_and_checked() {
        for (given, want) in [
            (
                "https://secretmanager.googleapis.com/",
                "https://secretmanager.googleapis.com",
            ),
            (
                "https://secretmanager.us-east1.rep.googleapis.com/v1/",
                "https://secretmanager.us-east1.rep.googleapis.com",
            ),
            ("http://127.0.0.1:8085", "http://127.0.0.1:8085"),
            ("http://localhost:1/", "http://localhost:1"),
            ("http://[::1]:9/v1", "http://[::1]:9"),
        ] {
            assert_eq!(normalize_endpoint(given).unwrap(), want, "{given}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://169.254.169.254",
            "ftp://x",
            "secretmanager.googleapis.com",
            "https://u:p@host",
            "https://h/?q=1",
            "",
        ] {
            assert!(normalize_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_environment_fills_the_builder() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let b = GcpStoreBuilder::from_vars(&vars(&[
            ("GCLOUD_PROJECT", "second"),
            ("GOOGLE_CLOUD_PROJECT", "first"),
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
                "https://gcloud.example/",
            ),
            ("STRONGROOM_GCP_ENDPOINT", "http://127.0.0.1:9/"),
            ("STRONGROOM_GCP_PREFIX", "app"),
            ("STRONGROOM_GCP_REPLICATION", "us-east1, europe-west4"),
        ]));
        assert_eq!(b.project.as_deref(), Some("first"));
        assert_eq!(b.endpoint.as_deref(), Some("http://127.0.0.1:9/"));
        assert_eq!(b.prefix.as_deref(), Some("app"));
        assert_eq!(
            b.replication,
            Replication::UserManaged(vec!["us-east1".into(), "europe-west4".into()])
        );
        let g = GcpStoreBuilder::from_vars(&vars(&[
            ("CLOUDSDK_CORE_PROJECT", "third"),
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
                "https://secretmanager.me-central2.rep.googleapis.com/",
            ),
            ("STRONGROOM_GCP_REPLICATION", "AUTOMATIC"),
        ]));
        assert_eq!(g.project.as_deref(), Some("third"));
        assert_eq!(g.replication, Replication::Automatic);
        let store = g.credentials(Credentials::anonymous()).build().unwrap();
        assert!(
            format!("{store:?}").contains("https://secretmanager.me-central2.rep.googleapis.com\"")
        );
    }

    #[test]
    fn builds_need_a_project_and_sane_settings() {
        let anon = || GcpStore::builder().credentials(Credentials::anonymous());
        assert!(
            anon()
                .build()
                .unwrap_err()
                .to_string()
                .contains("no project")
        );
        assert!(anon().project("a/b").build().is_err());
        assert!(
            anon()
                .project("p")
                .replication(Replication::UserManaged(vec![]))
                .build()
                .is_err()
        );
        assert!(
            anon()
                .project("p")
                .replication(Replication::UserManaged(vec!["US East".into()]))
                .build()
                .is_err()
        );
        assert!(anon().project("p").prefix("a//b").build().is_err());
        let store = anon()
            .project("my-project")
            .endpoint("http://127.0.0.1:1/")
            .prefix("/app/")
            .build()
            .unwrap();
        let text = format!("{store:?}");
        assert!(
            text.contains("my-project") && text.contains("anonymous") && text.contains("app/"),
            "{text}"
        );
    }
}
