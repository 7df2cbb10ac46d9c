//! `GcpStore` against drongo, the Secret Manager emulator (PyPI `drongo`, 0.8.0), at the URL
//! in `STRONGROOM_ITEST_GCP_ENDPOINT` (such as `http://127.0.0.1:8085`). Without it every
//! test prints a notice and returns: `cargo xtask itest` starts drongo and sets it.
//!
//! drongo keeps labels but not annotations, ignores etags and `pageSize`, and sends no
//! `dataCrc32c`. So the conformance suite runs here check by check, all but two that need
//! annotations: `metadata` (the description is an annotation) and `longest_name` (a name too
//! long for a secret id is kept in an annotation). Both paths, etag refusals, paging and
//! checksums are tested against a loopback responder in the crate's unit tests instead.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use strongroom_core::testing::conformance;
use strongroom_core::{
    Error, Metadata, PutOptions, SecretName, SecretStore, SecretValue, VersionId,
};
use strongroom_gcp::{Credentials, GcpStore, Replication};
use strongroom_http::HttpClient;
use strongroom_http::bytes::Bytes;

const PROJECT: &str = "strongroom-itest";

fn endpoint() -> Option<String> {
    match std::env::var("STRONGROOM_ITEST_GCP_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "STRONGROOM_ITEST_GCP_ENDPOINT is unset: skipping the drongo tests (cargo xtask itest runs them)"
                );
            }
            None
        }
    }
}

fn store(endpoint: &str, prefix: &str) -> GcpStore {
    GcpStore::builder()
        .project(PROJECT)
        .endpoint(endpoint)
        // drongo ignores the token; sending one exercises the header path.
        .credentials(Credentials::access_token("ya29.drongo-ignores-this").unwrap())
        .prefix(prefix)
        .build()
        .unwrap()
}

/// A namespace no other run uses.
fn namespace(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("itest-{what}/{}-{nanos}", std::process::id())
}

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

/// A raw call to drongo, as another client (gcloud, the official libraries) would make it.
async fn raw(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = HttpClient::new().unwrap();
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{endpoint}/v1/projects/{PROJECT}/{path}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = client.send(request).await.unwrap();
    let json = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    (response.status.as_u16(), json)
}

#[tokio::test]
async fn the_conformance_checks_drongo_can_serve() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint, "");
    let ns = namespace("conformance");
    conformance::read_write(&store, &ns).await;
    conformance::values(&store, &ns).await;
    conformance::list(&store, &ns).await;
    conformance::versions(&store, &ns).await;
    conformance::check_and_set(&store, &ns).await;
    conformance::delete(&store, &ns).await;
    for key in store.list(&format!("{ns}/")).await.unwrap() {
        store.purge(&key).await.unwrap();
    }
    assert!(store.list(&format!("{ns}/")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_prefix_scopes_the_store() {
    let Some(endpoint) = endpoint() else { return };
    let ns = namespace("scoped");
    let outer = store(&endpoint, "");
    let prefix = format!("{ns}/app");
    let scoped = store(&endpoint, &prefix);
    conformance::scoped(&outer, &scoped, &prefix).await;
}

#[tokio::test]
async fn ids_are_what_other_clients_see_and_their_secrets_read_back() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint, "");
    let ns = namespace("ids");
    let key = name(&format!("{ns}/db_password"));
    store.put(&key, "from strongroom".into()).await.unwrap();
    // The id is the documented encoding, and the payload is plain base64 of the value.
    let run = ns.rsplit('/').next().unwrap();
    let id = format!("__itest-ids__{run}__db_5Fpassword");
    let (status, answer) = raw(
        &endpoint,
        "GET",
        &format!("secrets/{id}/versions/latest:access"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let data = base64::engine::general_purpose::STANDARD
        .decode(answer["payload"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, b"from strongroom");

    // A secret another client made with a plain id reads back under that name.
    let plain = format!("plain-{}", ns.rsplit('/').next().unwrap());
    let (status, _) = raw(
        &endpoint,
        "POST",
        &format!("secrets?secretId={plain}"),
        Some(serde_json::json!({"replication": {"automatic": {}}})),
    )
    .await;
    assert_eq!(status, 200);
    let binary: Vec<u8> = vec![0, 255, 1, 254];
    let payload = serde_json::json!({"payload": {"data": base64::engine::general_purpose::STANDARD.encode(&binary)}});
    let (status, _) = raw(
        &endpoint,
        "POST",
        &format!("secrets/{plain}:addVersion"),
        Some(payload),
    )
    .await;
    assert_eq!(status, 200);
    let got = store.get(&name(&plain)).await.unwrap();
    assert_eq!(got.value.expose(), binary);
    assert_eq!(got.version, VersionId::from(1));
    assert!(store.list(&plain).await.unwrap().contains(&name(&plain)));

    // An id strongroom did not make (not its encoding) is left out of the list, not misread.
    let foreign = format!("__{plain}");
    let (status, _) = raw(
        &endpoint,
        "POST",
        &format!("secrets?secretId={foreign}"),
        Some(serde_json::json!({"replication": {"automatic": {}}})),
    )
    .await;
    assert_eq!(status, 200);
    let listed = store.list("").await.unwrap();
    assert!(
        !listed
            .iter()
            .any(|k| k.as_str() == foreign || k.as_str() == format!("/{plain}")),
        "{listed:?}"
    );

    for k in [key, name(&plain)] {
        store.purge(&k).await.unwrap();
    }
    raw(&endpoint, "DELETE", &format!("secrets/{foreign}"), None).await;
}

#[tokio::test]
async fn delete_disables_the_version_for_every_client_and_undelete_enables_it() {
    let Some(endpoint) = endpoint() else { return };
    let ns = namespace("delete");
    let store = store(&endpoint, &ns);
    let key = name("token");
    let v1 = store.put(&key, "one".into()).await.unwrap();
    let v2 = store.put(&key, "two".into()).await.unwrap();
    store.delete(&key).await.unwrap();
    let id = format!("__{}__token", ns.replace('/', "__"));
    let (_, version) = raw(
        &endpoint,
        "GET",
        &format!("secrets/{id}/versions/{v2}"),
        None,
    )
    .await;
    assert_eq!(version["state"], "DISABLED", "{version}");
    let (_, secret) = raw(&endpoint, "GET", &format!("secrets/{id}"), None).await;
    assert_eq!(
        secret["labels"]["strongroom-deleted"],
        v2.as_str(),
        "{secret}"
    );
    // Every read through strongroom says deleted, the older version's too.
    assert!(matches!(
        store.get_version(&key, &v1).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    // A put revives it with a new version; the disabled one stays in the history.
    let v3 = store.put(&key, "three".into()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().value.expose(), b"three");
    let history = store.versions(&key).await.unwrap();
    let states: Vec<(String, bool, bool)> = history
        .iter()
        .map(|v| (v.version.to_string(), v.deleted, v.current))
        .collect();
    assert_eq!(
        states,
        [
            (v1.to_string(), false, false),
            (v2.to_string(), true, false),
            (v3.to_string(), false, true)
        ]
    );
    // Undelete of a live secret is a conflict.
    assert!(matches!(
        store.undelete(&key).await,
        Err(Error::Conflict { .. })
    ));
    store.purge(&key).await.unwrap();
}

#[tokio::test]
async fn versions_can_be_disabled_enabled_and_destroyed_one_by_one() {
    let Some(endpoint) = endpoint() else { return };
    let ns = namespace("states");
    let store = store(&endpoint, &ns);
    let key = name("k");
    let v1 = store.put(&key, "one".into()).await.unwrap();
    let v2 = store.put(&key, "two".into()).await.unwrap();
    store.destroy_version(&key, &v1).await.unwrap();
    assert!(matches!(
        store.get_version(&key, &v1).await,
        Err(Error::NotFound { deleted: false, .. })
    ));
    store.disable_version(&key, &v2).await.unwrap();
    assert!(matches!(
        store.get_version(&key, &v2).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    store.enable_version(&key, &v2).await.unwrap();
    assert_eq!(
        store.get_version(&key, &v2).await.unwrap().value.expose(),
        b"two"
    );
    let history = store.versions(&key).await.unwrap();
    assert!(
        history[0].destroyed && !history[1].deleted && history[1].current,
        "{history:?}"
    );
    assert!(matches!(
        store.disable_version(&key, &VersionId::from(99)).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.get_version(&key, &VersionId::from("latest")).await,
        Err(Error::NotFound { .. })
    ));
    store.purge(&key).await.unwrap();
}

#[tokio::test]
async fn labels_replication_and_limits() {
    let Some(endpoint) = endpoint() else { return };
    let ns = namespace("labels");
    let store = GcpStore::builder()
        .project(PROJECT)
        .endpoint(format!("{endpoint}/v1/"))
        .credentials(Credentials::anonymous())
        .replication(Replication::UserManaged(vec![
            "europe-west4".into(),
            "us-east1".into(),
        ]))
        .prefix(&ns)
        .build()
        .unwrap();
    let key = name("k");
    // Label-style tags are labels, which drongo keeps.
    let tags = Metadata::default().tag("team", "core").tag("env", "prod");
    store
        .put_with(
            &key,
            "v".into(),
            &PutOptions::default().with_metadata(tags.clone()),
        )
        .await
        .unwrap();
    assert_eq!(*store.get(&key).await.unwrap().metadata, tags);
    store.put(&key, "w".into()).await.unwrap();
    assert_eq!(
        *store.get(&key).await.unwrap().metadata,
        tags,
        "a put without metadata keeps it"
    );
    let fewer = Metadata::default().tag("team", "edge");
    store
        .put_with(
            &key,
            "x".into(),
            &PutOptions::default().with_metadata(fewer.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        *store.get(&key).await.unwrap().metadata,
        fewer,
        "metadata is replaced"
    );

    let id = format!("__{}__k", ns.replace('/', "__"));
    let (_, secret) = raw(&endpoint, "GET", &format!("secrets/{id}"), None).await;
    assert_eq!(
        secret["replication"],
        serde_json::json!({"userManaged": {"replicas": [{"location": "europe-west4"}, {"location": "us-east1"}]}})
    );

    let big = SecretValue::new(vec![7; 64 * 1024 + 1]);
    assert!(matches!(
        store.put(&key, big).await,
        Err(Error::InvalidValue { .. })
    ));
    let max = SecretValue::new(vec![7; 64 * 1024]);
    store.put(&key, max.clone()).await.unwrap();
    assert!(store.get(&key).await.unwrap().value == max);
    let reserved = Metadata::default().tag("strongroom-deleted", "1");
    assert!(matches!(
        store
            .put_with(
                &key,
                "y".into(),
                &PutOptions::default().with_metadata(reserved)
            )
            .await,
        Err(Error::InvalidValue { .. })
    ));
    store.purge(&key).await.unwrap();
    assert!(matches!(
        store.purge(&key).await,
        Err(Error::NotFound { .. })
    ));
}
