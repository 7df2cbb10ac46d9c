//! The store against a loopback responder, for what drongo cannot show: paging, checksums,
//! etag refusals, annotations, token replacement after a 401, and answers a real server
//! would never give. Each responder checks the request the way Secret Manager would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_core::{Error, Metadata, PutOptions, SecretName, SecretStore, VersionId};

use crate::secret_id;
use crate::test_responder::{Reply, Request, Responder};
use crate::{Credentials, GcpStore};

fn store(responder: &Responder) -> GcpStore {
    GcpStore::builder()
        .project("p")
        .endpoint(responder.url(""))
        .credentials(Credentials::access_token("ya29.test").unwrap())
        .build()
        .unwrap()
}

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn not_found() -> Reply {
    Reply::json(
        404,
        r#"{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}"#,
    )
}

fn body(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap_or_default()
}

#[tokio::test]
async fn list_follows_every_page_and_decodes_every_id_form() {
    let long = format!("app/{}", "k".repeat(300));
    let hashed = secret_id::encode(&name(&long));
    let pages = serde_json::json!([
        {"secrets": [{"name": "projects/p/secrets/plain"}], "nextPageToken": "a+b/c"},
        {"secrets": [
            {"name": "projects/p/secrets/__app__db"},
            {"name": "projects/p/secrets/__gone", "labels": {"strongroom-deleted": "1"}}
        ], "nextPageToken": "2"},
        {"secrets": [
            {"name": format!("projects/p/secrets/{hashed}"), "annotations": {"strongroom-name": long}},
            {"name": "projects/p/secrets/___h00", "annotations": {"strongroom-name": "app/forged"}},
            {"name": "projects/p/secrets/__abc"}
        ]}
    ]);
    let responder = Responder::start(move |request| {
        let page = match request.path.as_str() {
            "/v1/projects/p/secrets?pageSize=100" => 0,
            "/v1/projects/p/secrets?pageSize=100&pageToken=a%2Bb%2Fc" => 1,
            "/v1/projects/p/secrets?pageSize=100&pageToken=2" => 2,
            _ => return not_found(),
        };
        if request.header("authorization") != Some("Bearer ya29.test") {
            return Reply::json(401, "{}");
        }
        Reply::json(200, &pages[page].to_string())
    })
    .await;
    let store = store(&responder);
    let listed: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(listed, ["app/db", long.as_str(), "plain"]);
    assert_eq!(store.list("app/d").await.unwrap(), [name("app/db")]);
}

#[tokio::test]
async fn a_server_that_repeats_its_page_token_is_an_error_not_a_loop() {
    let responder =
        Responder::start(|_| Reply::json(200, r#"{"secrets":[],"nextPageToken":"same"}"#)).await;
    let err = store(&responder).list("").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("page token"), "{err}");
}

#[tokio::test]
async fn checksums_are_sent_and_checked() {
    let added = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&added);
    let responder = Responder::start(move |request| {
        let path = request.path.as_str();
        let payload = |data: &[u8], crc: serde_json::Value| {
            serde_json::json!({"name": "projects/p/secrets/s/versions/1", "payload": {"data": STANDARD.encode(data), "dataCrc32c": crc}}).to_string()
        };
        match (request.method.as_str(), path) {
            ("GET", "/v1/projects/p/secrets/good" | "/v1/projects/p/secrets/bad" | "/v1/projects/p/secrets/number") => {
                Reply::json(200, r#"{"name":"projects/p/secrets/x"}"#)
            }
            ("GET", "/v1/projects/p/secrets/good/versions/latest:access") => {
                Reply::json(200, &payload(b"hunter2", crc32c::crc32c(b"hunter2").to_string().into()))
            }
            ("GET", "/v1/projects/p/secrets/number/versions/latest:access") => {
                Reply::json(200, &payload(b"hunter2", crc32c::crc32c(b"hunter2").into()))
            }
            ("GET", "/v1/projects/p/secrets/bad/versions/latest:access") => {
                Reply::json(200, &payload(b"hunter2", crc32c::crc32c(b"hunter3").to_string().into()))
            }
            ("POST", "/v1/projects/p/secrets/good:addVersion") => {
                // What Secret Manager does: recompute and compare.
                let json = body(&request);
                let data = STANDARD.decode(json["payload"]["data"].as_str().unwrap_or_default()).unwrap_or_default();
                let expected = crc32c::crc32c(&data).to_string();
                if json["payload"]["dataCrc32c"].as_str() != Some(expected.as_str()) {
                    return Reply::json(400, r#"{"error":{"code":400,"message":"Checksum mismatch","status":"INVALID_ARGUMENT"}}"#);
                }
                seen.fetch_add(1, Ordering::SeqCst);
                Reply::json(200, r#"{"name":"projects/p/secrets/good/versions/2","state":"ENABLED"}"#)
            }
            _ => not_found(),
        }
    })
    .await;
    let store = store(&responder);
    assert_eq!(
        store.get(&name("good")).await.unwrap().value.expose(),
        b"hunter2"
    );
    assert_eq!(
        store.get(&name("number")).await.unwrap().value.expose(),
        b"hunter2"
    );
    let err = store.get(&name("bad")).await.unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }) && err.to_string().contains("dataCrc32c"),
        "{err}"
    );
    assert!(!format!("{err:?}").contains("hunter"), "{err:?}");
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(
        store.put(&name("good"), binary.into()).await.unwrap(),
        VersionId::from(2)
    );
    assert_eq!(added.load(Ordering::SeqCst), 1);
}

/// What a check-and-set test watches: versions added, PATCH bodies.
type Watched = (
    Responder,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<serde_json::Value>>>,
);

/// A secret at version 3 with etag `"e1"`, whose PATCH answers `patch_status`.
async fn cas_responder(patch_status: u16) -> Watched {
    cas_responder_claimed(patch_status, None).await
}

/// As [`cas_responder`], the secret carrying the check-and-set claim `claim`.
async fn cas_responder_claimed(patch_status: u16, claim: Option<String>) -> Watched {
    let mut secret = serde_json::json!({
        "name": "projects/p/secrets/k", "etag": "\"e1\"",
        "labels": {"team": "core"}, "annotations": {"strongroom-description": "d"}
    });
    if let Some(claim) = claim {
        secret["annotations"]["strongroom-cas"] = claim.into();
    }
    let secret = secret.to_string();
    let added = Arc::new(AtomicUsize::new(0));
    let patches = Arc::new(Mutex::new(Vec::new()));
    let (seen_added, seen_patches) = (Arc::clone(&added), Arc::clone(&patches));
    let responder = Responder::start(move |request| match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v1/projects/p/secrets/k") => Reply::json(200, &secret),
        ("GET", "/v1/projects/p/secrets/k/versions/latest") => Reply::json(200, r#"{"name":"projects/p/secrets/k/versions/3","state":"ENABLED"}"#),
        ("PATCH", "/v1/projects/p/secrets/k?updateMask=labels,annotations") => {
            seen_patches.lock().unwrap().push(body(&request));
            match patch_status {
                200 => Reply::json(200, r#"{"name":"projects/p/secrets/k","etag":"\"e2\""}"#),
                409 => Reply::json(409, r#"{"error":{"code":409,"message":"etag mismatch","status":"ABORTED"}}"#),
                _ => Reply::json(400, r#"{"error":{"code":400,"message":"The etag does not match","status":"FAILED_PRECONDITION"}}"#),
            }
        }
        ("POST", "/v1/projects/p/secrets/k:addVersion") => {
            seen_added.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, r#"{"name":"projects/p/secrets/k/versions/4"}"#)
        }
        _ => not_found(),
    })
    .await;
    (responder, added, patches)
}

#[tokio::test]
async fn check_and_set_claims_the_next_version_with_the_etag() {
    let (responder, added, patches) = cas_responder(200).await;
    let store = store(&responder);
    let key = name("k");
    let v = store
        .put_with(
            &key,
            "x".into(),
            &PutOptions::default().if_version(VersionId::from(3)),
        )
        .await
        .unwrap();
    assert_eq!(v, VersionId::from(4));
    assert_eq!(added.load(Ordering::SeqCst), 1);
    let patch = patches.lock().unwrap()[0].clone();
    assert_eq!(patch["etag"], "\"e1\"");
    let claim = patch["annotations"]["strongroom-cas"].as_str().unwrap();
    assert!(claim.starts_with("4@"), "{claim}");
    // The user's labels and description are kept.
    assert_eq!(patch["labels"]["team"], "core");
    assert_eq!(patch["annotations"]["strongroom-description"], "d");
    // A stale expectation is refused before anything is written.
    let stale = store
        .put_with(
            &key,
            "x".into(),
            &PutOptions::default().if_version(VersionId::from(2)),
        )
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(patches.lock().unwrap().len(), 1);
    assert_eq!(added.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn check_and_set_loses_when_the_etag_changed() {
    for status in [409, 400] {
        let (responder, added, patches) = cas_responder(status).await;
        let store = store(&responder);
        let result = store
            .put_with(
                &name("k"),
                "x".into(),
                &PutOptions::default().if_version(VersionId::from(3)),
            )
            .await;
        assert!(
            matches!(result, Err(Error::Conflict { .. })),
            "{status}: {result:?}"
        );
        assert_eq!(patches.lock().unwrap().len(), 1);
        assert_eq!(
            added.load(Ordering::SeqCst),
            0,
            "{status}: a refused write added a version"
        );
        // The same refusal on delete is a conflict too, and nothing is disabled.
        assert!(matches!(
            store.delete(&name("k")).await,
            Err(Error::Conflict { .. })
        ));
    }
}

#[tokio::test]
async fn metadata_and_long_names_live_in_annotations() {
    let long = format!("app/{}", "n".repeat(300));
    let long_id = secret_id::encode(&name(&long));
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&created);
    let stored = serde_json::json!({
        "name": "projects/p/secrets/__app__db",
        "labels": {"team": "core", "strongroom-other": "x"},
        "annotations": {"strongroom-description": "the database password", "Owner": "Jane Doe", "strongroom-cas": "2"}
    });
    let long_path = format!("/v1/projects/p/secrets?secretId={long_id}");
    let responder = Responder::start(move |request| {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v1/projects/p/secrets/__app__db") => Reply::json(200, &stored.to_string()),
            ("GET", "/v1/projects/p/secrets/__app__db/versions/latest:access") => Reply::json(
                200,
                r#"{"name":"projects/p/secrets/__app__db/versions/2","payload":{"data":"dg=="}}"#,
            ),
            ("POST", path)
                if path == "/v1/projects/p/secrets?secretId=__app__new" || path == long_path =>
            {
                seen.lock().unwrap().push(body(&request));
                Reply::json(200, r#"{"name":"projects/p/secrets/x"}"#)
            }
            ("POST", _) if request.path.ends_with(":addVersion") => {
                Reply::json(200, r#"{"name":"projects/p/secrets/x/versions/1"}"#)
            }
            _ => not_found(),
        }
    })
    .await;
    let store = store(&responder);
    let metadata = Metadata::with_description("the database password")
        .tag("team", "core")
        .tag("Owner", "Jane Doe");
    let got = store.get(&name("app/db")).await.unwrap();
    assert_eq!(*got.metadata, metadata);
    assert_eq!(got.version, VersionId::from(2));

    let options = PutOptions::default().with_metadata(metadata).if_absent();
    store
        .put_with(&name("app/new"), "v".into(), &options)
        .await
        .unwrap();
    store.put(&name(&long), "v".into()).await.unwrap();
    let created = created.lock().unwrap();
    assert_eq!(created[0]["labels"], serde_json::json!({"team": "core"}));
    assert_eq!(
        created[0]["annotations"],
        serde_json::json!({"strongroom-description": "the database password", "Owner": "Jane Doe"})
    );
    assert_eq!(
        created[0]["replication"],
        serde_json::json!({"automatic": {}})
    );
    assert_eq!(created[1]["annotations"]["strongroom-name"], long.as_str());
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&tokens);
    let responder = Responder::start(move |request| {
        if request.path.starts_with("/computeMetadata/") {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(200, &format!(r#"{{"access_token":"tok-{n}","expires_in":3599}}"#)).header("metadata-flavor", "Google");
        }
        let good = request.header("authorization") == Some("Bearer tok-2");
        match request.path.as_str() {
            // Listing is refused whatever the token.
            _ if !good || request.path.starts_with("/v1/projects/p/secrets?") => Reply::json(401, r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#),
            "/v1/projects/p/secrets/k" => Reply::json(200, r#"{"name":"projects/p/secrets/k"}"#),
            "/v1/projects/p/secrets/k/versions/latest:access" => {
                Reply::json(200, r#"{"name":"projects/p/secrets/k/versions/1","payload":{"data":"dg=="}}"#)
            }
            _ => not_found(),
        }
    })
    .await;
    let store = GcpStore::builder()
        .project("p")
        .endpoint(responder.url(""))
        .credentials(Credentials::metadata_server_at(&responder.authority()).unwrap())
        .build()
        .unwrap();
    // The two concurrent calls of a get are both refused with tok-1; one new token serves
    // both retries.
    let got = store.get(&name("k")).await.unwrap();
    assert_eq!(got.value.expose(), b"v");
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
    // Refused again with a new token: one more token, then Unauthenticated.
    let before = tokens.load(Ordering::SeqCst);
    let err = store.list("").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");
    assert!(!err.to_string().contains("tok-"), "{err}");
    assert_eq!(tokens.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn lying_answers_are_errors_not_panics() {
    let huge = "x".repeat(5 * 1024 * 1024);
    let responder = Responder::start(move |request| match request.path.as_str() {
        "/v1/projects/p/secrets/huge/versions/latest:access" => Reply::json(200, &huge),
        "/v1/projects/p/secrets/garbage/versions/latest:access" => Reply::json(200, "<html>"),
        "/v1/projects/p/secrets/noname/versions/latest:access" => Reply::json(200, r#"{"payload":{"data":"dg=="}}"#),
        "/v1/projects/p/secrets/nob64/versions/latest:access" => {
            Reply::json(200, r#"{"name":"projects/p/secrets/nob64/versions/1","payload":{"data":"%%%"}}"#)
        }
        "/v1/projects/p/secrets/crc/versions/latest:access" => {
            Reply::json(200, r#"{"name":"projects/p/secrets/crc/versions/1","payload":{"data":"dg==","dataCrc32c":"99999999999"}}"#)
        }
        "/v1/projects/p/secrets/other/versions/1:access" => {
            Reply::json(200, r#"{"name":"projects/p/secrets/other/versions/2","payload":{"data":"dg=="}}"#)
        }
        "/v1/projects/p/secrets/vers/versions?pageSize=100" => Reply::json(200, r#"{"versions":[{"name":"projects/p/secrets/vers/versions/x"}]}"#),
        path if path.starts_with("/v1/projects/p/secrets/") && !path.contains(':') => Reply::json(200, r#"{"name":"projects/p/secrets/s"}"#),
        _ => not_found(),
    })
    .await;
    let store = store(&responder);
    for id in ["huge", "garbage", "noname", "nob64", "crc"] {
        let err = store.get(&name(id)).await.unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{id}: {err}");
    }
    let other = store
        .get_version(&name("other"), &VersionId::from(1))
        .await
        .unwrap_err();
    assert!(matches!(other, Error::Backend { .. }), "{other}");
    assert!(matches!(
        store.versions(&name("vers")).await,
        Err(Error::Backend { .. })
    ));
}

#[tokio::test]
async fn a_live_claim_of_another_writer_holds_check_and_set_off() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let if_3 = PutOptions::default().if_version(VersionId::from(3));
    for (claim, refused) in [
        (format!("4@{now}"), true), // in flight: version 4 is being written
        (format!("4@{}", now - 120), false), // its writer died two minutes ago
        (format!("3@{now}"), false), // fulfilled: version 3 exists
        (format!("4@{}", now + 86_400), false), // from a skewed clock: not believed
        ("garbage".to_owned(), false),
    ] {
        let (responder, added, patches) = cas_responder_claimed(200, Some(claim.clone())).await;
        let result = store(&responder)
            .put_with(&name("k"), "x".into(), &if_3)
            .await;
        if refused {
            assert!(
                matches!(result, Err(Error::Conflict { .. })),
                "{claim}: {result:?}"
            );
            assert_eq!(
                (added.load(Ordering::SeqCst), patches.lock().unwrap().len()),
                (0, 0)
            );
        } else {
            assert_eq!(result.unwrap(), VersionId::from(4), "{claim}");
        }
    }
}

#[tokio::test]
async fn the_token_shows_nowhere() {
    let responder = Responder::start(|request| {
        assert_eq!(request.header("authorization"), Some("Bearer ya29.do-not-print"));
        assert_eq!(request.header("x-goog-user-project"), Some("billing-9"));
        Reply::json(403, r#"{"error":{"code":403,"message":"Permission 'secretmanager.versions.access' denied","status":"PERMISSION_DENIED"}}"#)
    })
    .await;
    let store = GcpStore::builder()
        .project("p")
        .endpoint(responder.url(""))
        .credentials(
            Credentials::access_token("ya29.do-not-print")
                .unwrap()
                .with_quota_project("billing-9"),
        )
        .build()
        .unwrap();
    let err = store.get(&name("k")).await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    for text in [
        format!("{store:?}"),
        format!("{err:?}"),
        err.to_string(),
        format!(
            "{:?}",
            GcpStore::builder()
                .credentials(Credentials::access_token("ya29.do-not-print").unwrap())
        ),
    ] {
        assert!(!text.contains("do-not-print"), "{text}");
    }
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let store = GcpStore::builder()
        .project("p")
        .endpoint(url)
        .credentials(Credentials::anonymous())
        .http_client(
            strongroom_http::HttpClient::builder()
                .retry_policy(strongroom_http::RetryPolicy::never())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        store.get(&name("x")).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        store.put(&name("x"), "v".into()).await,
        Err(Error::Unavailable { .. })
    ));
}
