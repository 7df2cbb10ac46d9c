//! The GCE / GKE metadata server: the token of the instance's (or the pod's workload
//! identity's) service account.

use strongroom_core::async_trait;
use strongroom_http::{HttpClient, PlainHttp, bytes::Bytes};

use super::token_response::FreshToken;
use super::{FetchToken, MAX_TOKEN_BODY, read_token};
use crate::error::{self, Error};

/// The metadata server's address when `GCE_METADATA_HOST` is unset: the link-local address
/// `metadata.google.internal` resolves to, so that no name lookup is needed.
pub const DEFAULT_METADATA_HOST: &str = "169.254.169.254";

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// The metadata server at one `host[:port]`.
pub(crate) struct MetadataServer {
    uri: http::Uri,
    http: HttpClient,
}

impl MetadataServer {
    pub(crate) fn new(host: &str) -> Result<Self, Error> {
        let authority: http::uri::Authority = host.parse().map_err(|_| {
            Error::Config(format!("GCE_METADATA_HOST {host:?} is not a host[:port]"))
        })?;
        if authority.as_str().contains('@') {
            return Err(Error::Config(
                "GCE_METADATA_HOST must be a host[:port]".into(),
            ));
        }
        let uri = format!("http://{authority}{TOKEN_PATH}")
            .parse()
            .map_err(|_| {
                Error::Config(format!("GCE_METADATA_HOST {host:?} is not a host[:port]"))
            })?;
        // The metadata server speaks only plain HTTP, under a name (metadata.google.internal)
        // as often as at its link-local address; nothing secret is sent to it.
        let http = HttpClient::builder()
            .plain_http(PlainHttp::Anywhere)
            .max_body_bytes(MAX_TOKEN_BODY)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self { uri, http })
    }
}

#[async_trait]
impl FetchToken for MetadataServer {
    async fn fetch(&self) -> Result<FreshToken, Error> {
        const OPERATION: &str = "metadata-server token";
        let request = http::Request::get(self.uri.clone())
            .header("metadata-flavor", "Google")
            .body(Bytes::new())
            .map_err(|e| Error::Config(format!("metadata request: {e}")))?;
        let response = self.http.send(request).await.map_err(|source| {
            Error::Credentials(format!(
                "no credentials: GOOGLE_APPLICATION_CREDENTIALS is unset, there is no application default credentials file, and the metadata server did not answer ({source})"
            ))
        })?;
        // Anything else answering on that address (a proxy, a captive portal) is not the
        // metadata server.
        if response.is_success() && response.header_str("metadata-flavor") != Some("Google") {
            return Err(Error::malformed(
                OPERATION,
                "the answer lacks Metadata-Flavor: Google; not a metadata server",
            ));
        }
        if !response.is_success() {
            return Err(error::from_response(OPERATION, &response));
        }
        read_token(OPERATION, response)
    }

    fn kind(&self) -> &'static str {
        "metadata-server"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::auth::Credentials;
    use crate::test_responder::{Reply, Responder};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_metadata_server_is_asked_once_for_many_callers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let responder = Responder::start(move |request| {
            // What the real server insists on: the header, a GET, the path.
            if request.header("metadata-flavor") != Some("Google") {
                return Reply::json(403, "Missing Metadata-Flavor:Google header.");
            }
            if request.method != "GET"
                || request.path != "/computeMetadata/v1/instance/service-accounts/default/token"
            {
                return Reply::json(404, "not found");
            }
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            Reply::json(
                200,
                r#"{"access_token":"ya29.instance","expires_in":3599,"token_type":"Bearer"}"#,
            )
            .header("metadata-flavor", "Google")
        })
        .await;
        let creds = Credentials::metadata_server_at(&responder.authority()).unwrap();
        assert_eq!(creds.kind(), "metadata-server");
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let creds = creds.clone();
            tasks.push(tokio::spawn(async move { creds.token().await }));
        }
        for task in tasks {
            assert_eq!(
                task.await.unwrap().unwrap().unwrap().expose(),
                "ya29.instance"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_impostor_without_the_flavor_header_is_refused() {
        let responder =
            Responder::start(|_| Reply::json(200, r#"{"access_token":"t","expires_in":3599}"#))
                .await;
        let creds = Credentials::metadata_server_at(&responder.authority()).unwrap();
        let err = creds.token().await.unwrap_err().to_string();
        assert!(err.contains("Metadata-Flavor"), "{err}");
    }

    #[tokio::test]
    async fn no_metadata_server_is_unauthenticated() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        drop(listener);
        let creds = Credentials::metadata_server_at(&authority).unwrap();
        let err = creds.token().await.unwrap_err();
        assert!(matches!(
            err.into_core(None, None),
            strongroom_core::Error::Unauthenticated { .. }
        ));
        assert!(Credentials::metadata_server_at("user@host").is_err());
        assert!(Credentials::metadata_server_at("a b").is_err());
    }
}
