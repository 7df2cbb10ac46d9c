//! `strongroom-bench-peers gcp` (with `--features gcp`): uncached reads from drongo, the
//! Secret Manager v1 emulator the suites use, so both clients see the same server:
//!
//! - `strongroom_gcp`: strongroom-gcp's `GcpStore::get` (the secret's labels and
//!   annotations and `versions/latest:access`, sent at once, JSON parse, base64 decode,
//!   CRC32C check when the server sends one);
//! - `raw_hyper`: `versions/latest:access` alone, built by hand over the pooled hyper
//!   client, JSON parse and base64 decode: the one request an access-only client such as
//!   the official `access_secret_version` sends, and so the floor.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use strongroom_core::{SecretName, SecretStore};

use super::{Client, VALUE, env, measure, raw_client, raw_json};

/// The key both clients read: a plain secret id (no `/`), so the raw request names it as is.
const KEY: &str = "bench-peer";

pub(super) async fn gcp() -> Result<Value, String> {
    let endpoint = env("STRONGROOM_ITEST_GCP_ENDPOINT")?;
    let project = env("STRONGROOM_ITEST_GCP_PROJECT")?;
    let store = strongroom_gcp::GcpStore::builder()
        .project(&project)
        .endpoint(&endpoint)
        .credentials(strongroom_gcp::Credentials::anonymous())
        .build()
        .map_err(|e| e.to_string())?;
    let key = SecretName::new(KEY).map_err(|e| e.to_string())?;
    store
        .put(&key, VALUE.into())
        .await
        .map_err(|e| format!("gcp put: {e}"))?;

    let raw_sender = raw_client();
    let uri = format!(
        "{}/v1/projects/{project}/secrets/{KEY}/versions/latest:access",
        endpoint.trim_end_matches('/')
    );
    let (raw_sender, uri, store, key) = (&raw_sender, &uri, &store, &key);
    let mut clients = vec![
        Client {
            name: "strongroom_gcp",
            read: Box::new(move || {
                Box::pin(async move {
                    let secret = store.get(key).await.map_err(|e| e.to_string())?;
                    Ok(secret.value.len())
                })
            }),
        },
        Client {
            name: "raw_hyper",
            read: Box::new(move || {
                Box::pin(async move {
                    let request = http::Request::get(uri.as_str())
                        .header("authorization", "Bearer bench")
                        .body(Full::new(Bytes::new()))
                        .map_err(|e| e.to_string())?;
                    let parsed = raw_json(raw_sender, request).await?;
                    let data = parsed["payload"]["data"].as_str().unwrap_or_default();
                    let value = STANDARD.decode(data).map_err(|e| e.to_string())?;
                    Ok(value.len())
                })
            }),
        },
    ];
    measure(&mut clients, VALUE.len()).await
}
