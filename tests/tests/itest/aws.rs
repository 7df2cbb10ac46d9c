//! strongroom-aws against the real servers: every Secrets Manager operation and the
//! `SecretStore` on LocalStack; signatures on moto (which checks them: a wrong secret key
//! must get `SignatureDoesNotMatch`); STS AssumeRole and role profiles on both, web identity
//! on LocalStack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strongroom_aws::{
    AWSCURRENT, AWSPREVIOUS, AssumeRoleProvider, AssumeRoleRequest, AwsError, CreateSecret,
    DeleteMode, ListSecrets, SecretsManagerClient, SecretsManagerStore, StsClient, VersionSelector,
};
use strongroom_core::{Error, Metadata, PutOptions, SecretName, SecretStore, SecretValue};
use strongroom_http::HttpClient;
use strongroom_itests::ItestEnv;
use strongroom_sigv4::{Credentials, StaticProvider};

use crate::raw;

/// A client for the seeded LocalStack (the other suites use it too).
pub(crate) fn localstack(env: &ItestEnv) -> SecretsManagerClient {
    SecretsManagerClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.aws_endpoint)
        .credentials(StaticProvider::new(Credentials::new(
            &env.aws_access_key_id,
            &env.aws_secret_access_key,
        )))
        .build()
        .expect("LocalStack client")
}

/// A client for moto, which checks signatures, signing with `secret_key`.
pub(crate) fn moto(env: &ItestEnv, secret_key: &str) -> SecretsManagerClient {
    SecretsManagerClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.moto_endpoint)
        .credentials(StaticProvider::new(Credentials::new(
            &env.moto_access_key_id,
            secret_key,
        )))
        .build()
        .expect("moto client")
}

async fn store(env: &ItestEnv, prefix: &str) -> SecretsManagerStore {
    SecretsManagerStore::builder()
        .client(localstack(env))
        .prefix(prefix)
        .recovery_window_days(7)
        .build()
        .await
        .expect("store")
}

fn key(name: &str) -> SecretName {
    SecretName::new(name).expect("valid key")
}

fn code(err: &AwsError) -> &str {
    err.code().unwrap_or("<no code>")
}

/// Every client operation in turn, on one secret; returns nothing but fails loudly.
async fn every_operation(client: &SecretsManagerClient, name: &str) {
    let other = format!("{name}-other");
    // CreateSecret with description and tags.
    let created = client
        .create_secret(
            &CreateSecret::new(name, SecretValue::from("v1"))
                .description("first")
                .tag("team", "core")
                .tag("env", "itest"),
        )
        .await
        .expect("CreateSecret");
    let v1 = created
        .version_id
        .expect("CreateSecret returns a VersionId");
    assert_eq!(created.name, name);
    let again = client
        .create_secret(&CreateSecret::new(name, SecretValue::from("dup")))
        .await
        .unwrap_err();
    assert_eq!(code(&again), "ResourceExistsException", "{again}");

    // GetSecretValue, current.
    let got = client
        .get_secret_value(name, &VersionSelector::Current)
        .await
        .expect("GetSecretValue");
    assert_eq!(got.value.expose(), b"v1");
    assert_eq!(got.version_id, v1);
    assert!(got.version_stages.iter().any(|s| s == AWSCURRENT));
    assert!(!got.binary);

    // PutSecretValue moves AWSCURRENT; the old one becomes AWSPREVIOUS.
    let put = client
        .put_secret_value(name, &SecretValue::from("v2"), None, None)
        .await
        .expect("PutSecretValue");
    let v2 = put.version_id.expect("PutSecretValue returns a VersionId");
    assert_ne!(v1, v2);
    let current = client
        .get_secret_value(name, &VersionSelector::Current)
        .await
        .unwrap();
    assert_eq!(
        (current.value.expose(), current.version_id.as_str()),
        (&b"v2"[..], v2.as_str())
    );
    let previous = client
        .get_secret_value(name, &VersionSelector::Stage(AWSPREVIOUS.into()))
        .await
        .expect("GetSecretValue by stage");
    assert_eq!(previous.value.expose(), b"v1");
    let by_id = client
        .get_secret_value(name, &VersionSelector::Id(v1.clone()))
        .await
        .expect("GetSecretValue by id");
    assert_eq!(by_id.value.expose(), b"v1");

    // Same ClientRequestToken twice: one version (that is why retries are safe).
    let token = strongroom_aws::new_client_request_token();
    let a = client
        .put_secret_value(name, &SecretValue::from("v3"), Some(&token), None)
        .await
        .unwrap();
    let b = client
        .put_secret_value(name, &SecretValue::from("v3"), Some(&token), None)
        .await
        .unwrap();
    assert_eq!(a.version_id, b.version_id);

    // UpdateSecret (description), DescribeSecret, TagResource, UntagResource.
    client
        .update_secret(name, Some("second"), None)
        .await
        .expect("UpdateSecret");
    let mut tags = BTreeMap::new();
    tags.insert("owner".to_owned(), "itest".to_owned());
    client.tag_resource(name, &tags).await.expect("TagResource");
    client
        .untag_resource(name, &["env".to_owned()])
        .await
        .expect("UntagResource");
    let described = client.describe_secret(name).await.expect("DescribeSecret");
    assert_eq!(described.description.as_deref(), Some("second"));
    assert_eq!(described.tags.get("team").map(String::as_str), Some("core"));
    assert_eq!(
        described.tags.get("owner").map(String::as_str),
        Some("itest")
    );
    assert!(!described.tags.contains_key("env"), "{:?}", described.tags);
    assert_eq!(described.current_version(), a.version_id.as_deref());

    // ListSecretVersionIds.
    let versions = client
        .list_secret_version_ids(name, true)
        .await
        .expect("ListSecretVersionIds");
    let ids: Vec<&str> = versions.iter().map(|v| v.version_id.as_str()).collect();
    assert!(
        ids.contains(&v1.as_str()) && ids.contains(&v2.as_str()),
        "{ids:?}"
    );
    assert_eq!(
        versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s == AWSCURRENT))
            .count(),
        1
    );

    // UpdateSecretVersionStage: moving AWSCURRENT back to v1 from the current version.
    client
        .update_secret_version_stage(name, AWSCURRENT, Some(&v1), a.version_id.as_deref())
        .await
        .expect("UpdateSecretVersionStage");
    let stale = client
        .update_secret_version_stage(name, AWSCURRENT, Some(&v2), a.version_id.as_deref())
        .await
        .unwrap_err();
    assert_eq!(code(&stale), "InvalidParameterException", "{stale}");
    // Read by the label itself: moto 5.1 keeps serving the old "default" version to a
    // plain GetSecretValue after a stage move (AWS and LocalStack follow the label).
    assert_eq!(
        client
            .get_secret_value(name, &VersionSelector::Stage(AWSCURRENT.into()))
            .await
            .unwrap()
            .value
            .expose(),
        b"v1"
    );

    // ListSecrets with a name filter.
    let listed = client
        .list_secrets(&ListSecrets::with_prefix(name))
        .await
        .expect("ListSecrets");
    assert!(listed.iter().any(|s| s.name == name), "{listed:?}");

    // BatchGetSecretValue: one found, one missing.
    client
        .create_secret(&CreateSecret::new(&other, SecretValue::from("other")))
        .await
        .unwrap();
    let batch = client
        .batch_get_secret_value(&[name.to_owned(), other.clone()])
        .await
        .expect("BatchGetSecretValue");
    let mut names: Vec<&str> = batch.values.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, [name, other.as_str()]);

    // DeleteSecret with a window, RestoreSecret, forced DeleteSecret.
    client
        .delete_secret(name, DeleteMode::RecoveryWindow(7))
        .await
        .expect("DeleteSecret");
    let deleted = client
        .get_secret_value(name, &VersionSelector::Current)
        .await
        .unwrap_err();
    assert!(deleted.is_marked_for_deletion(), "{deleted}");
    assert!(
        client
            .describe_secret(name)
            .await
            .unwrap()
            .deleted
            .is_some()
    );
    client.restore_secret(name).await.expect("RestoreSecret");
    assert!(
        client
            .get_secret_value(name, &VersionSelector::Current)
            .await
            .is_ok()
    );
    for n in [name, other.as_str()] {
        client
            .delete_secret(n, DeleteMode::Force)
            .await
            .expect("forced DeleteSecret");
    }
    let gone = client
        .get_secret_value(name, &VersionSelector::Current)
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "ResourceNotFoundException", "{gone}");
}

#[tokio::test]
async fn localstack_every_secrets_manager_operation() {
    let env = ItestEnv::load();
    every_operation(&localstack(&env), &raw::unique("itest-aws-ops")).await;
}

#[tokio::test]
async fn moto_every_operation_passes_signature_checking() {
    let env = ItestEnv::load();
    every_operation(
        &moto(&env, &env.moto_secret_access_key),
        &raw::unique("itest-aws-moto"),
    )
    .await;
}

#[tokio::test]
async fn moto_refuses_a_wrong_secret_key() {
    let env = ItestEnv::load();
    let good = moto(&env, &env.moto_secret_access_key);
    let bad = moto(&env, "wrong-secret-key-0000000000000000000000");
    let name = raw::unique("itest-aws-badsig");
    good.create_secret(&CreateSecret::new(&name, SecretValue::from("x")))
        .await
        .unwrap();
    // The same calls that pass with the right key.
    let errors = vec![
        bad.get_secret_value(&name, &VersionSelector::Current)
            .await
            .unwrap_err(),
        bad.describe_secret(&name).await.unwrap_err(),
        bad.list_secrets(&ListSecrets::default()).await.unwrap_err(),
        bad.put_secret_value(&name, &SecretValue::from("y"), None, None)
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(code(&err), "SignatureDoesNotMatch", "{err}");
        assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
        assert!(matches!(
            err.into_core(Some("k"), None),
            Error::Unauthenticated { .. }
        ));
    }
    // Nothing was written by the refused PutSecretValue.
    let value = good
        .get_secret_value(&name, &VersionSelector::Current)
        .await
        .unwrap();
    assert_eq!(value.value.expose(), b"x");

    // The store says Unauthenticated too.
    let store = SecretsManagerStore::new(bad);
    let err = store.list("").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");

    // STS on moto: signed right it works, signed wrong it is refused.
    let sts = StsClient::new(
        HttpClient::new().unwrap(),
        &env.aws_region,
        &env.moto_endpoint,
    )
    .unwrap();
    let request =
        AssumeRoleRequest::new("arn:aws:iam::123456789012:role/itest").session_name("itest");
    sts.assume_role(
        &Credentials::new(&env.moto_access_key_id, &env.moto_secret_access_key),
        &request,
    )
    .await
    .expect("AssumeRole signed with the seeded key");
    let err = sts
        .assume_role(
            &Credentials::new(&env.moto_access_key_id, "wrong-secret-key"),
            &request,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch", "{err}");
    good.delete_secret(&name, DeleteMode::Force).await.unwrap();
}

#[tokio::test]
async fn localstack_list_secrets_paginates() {
    let env = ItestEnv::load();
    let client = localstack(&env);
    let prefix = format!("{}/", raw::unique("itest-aws-page"));
    for i in 0..5 {
        client
            .create_secret(&CreateSecret::new(
                format!("{prefix}s{i}"),
                SecretValue::from("x"),
            ))
            .await
            .unwrap();
    }
    let request = ListSecrets::with_prefix(&prefix).max_results(2);
    let first = client.list_secrets_page(&request, None).await.unwrap();
    assert!(first.secrets.len() <= 2, "{}", first.secrets.len());
    assert!(
        first.next_token.is_some(),
        "a page of 2 out of 5 must have a next token"
    );
    let mut pages = 1;
    let mut next = first.next_token;
    let mut seen: Vec<String> = first.secrets.into_iter().map(|s| s.name).collect();
    while let Some(token) = next {
        let page = client
            .list_secrets_page(&request, Some(&token))
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.secrets.into_iter().map(|s| s.name));
        next = page.next_token;
    }
    assert!(pages >= 3, "{pages} pages");
    seen.sort();
    let all = client.list_secrets(&request).await.unwrap();
    let mut names: Vec<String> = all.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, seen);
    assert_eq!(names.len(), 5, "{names:?}");

    // The store's list follows every page too.
    let store = SecretsManagerStore::new(client.clone());
    let keys = store.list(&prefix).await.unwrap();
    assert_eq!(keys.len(), 5);
    for k in keys {
        store.purge(&k).await.unwrap();
    }
}

#[tokio::test]
async fn localstack_store_binary_and_text_values() {
    let env = ItestEnv::load();
    let prefix = format!("{}/", raw::unique("itest-aws-bin"));
    let store = store(&env, &prefix).await;
    let binary = SecretValue::from(vec![0u8, 0xff, 0xfe, b'a', 0x80]);
    store.put(&key("bin"), binary.clone()).await.unwrap();
    assert_eq!(store.get(&key("bin")).await.unwrap().value, binary);
    let raw_value = store
        .client()
        .get_secret_value(&format!("{prefix}bin"), &VersionSelector::Current)
        .await
        .unwrap();
    assert!(raw_value.binary, "non-UTF-8 bytes go as SecretBinary");
    store
        .put(&key("text"), SecretValue::from("héllo"))
        .await
        .unwrap();
    let raw_value = store
        .client()
        .get_secret_value(&format!("{prefix}text"), &VersionSelector::Current)
        .await
        .unwrap();
    assert!(!raw_value.binary);
    assert_eq!(raw_value.value.expose_str().unwrap(), "héllo");
    store.purge(&key("bin")).await.unwrap();
    store.purge(&key("text")).await.unwrap();
}

#[tokio::test]
async fn localstack_store_versions_and_stages() {
    let env = ItestEnv::load();
    let store = store(&env, &format!("{}/", raw::unique("itest-aws-ver"))).await;
    let k = key("db/password");
    let mut written = Vec::new();
    for v in ["one", "two", "three"] {
        written.push(store.put(&k, SecretValue::from(v)).await.unwrap());
    }
    let secret = store.get(&k).await.unwrap();
    assert_eq!(secret.value.expose(), b"three");
    assert_eq!(secret.version, written[2]);
    assert!(secret.created.is_some());
    assert_eq!(
        store
            .get_version(&k, &written[0])
            .await
            .unwrap()
            .value
            .expose(),
        b"one"
    );

    let versions = store.versions(&k).await.unwrap();
    for w in &written {
        assert!(versions.iter().any(|v| &v.version == w), "{versions:?}");
    }
    let current: Vec<_> = versions.iter().filter(|v| v.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].version, written[2]);
    assert!(current[0].labels.iter().any(|l| l == AWSCURRENT));
    let previous = versions.iter().find(|v| v.version == written[1]).unwrap();
    assert!(
        previous.labels.iter().any(|l| l == AWSPREVIOUS),
        "{versions:?}"
    );

    let missing = store
        .get_version(
            &k,
            &strongroom_core::VersionId::from(strongroom_aws::new_client_request_token()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            Error::NotFound {
                version: Some(_),
                ..
            }
        ),
        "{missing}"
    );
    store.purge(&k).await.unwrap();
}

#[tokio::test]
async fn localstack_store_delete_restore_purge() {
    let env = ItestEnv::load();
    let store = store(&env, &format!("{}/", raw::unique("itest-aws-del"))).await;
    let k = key("api/token");
    store.put(&k, SecretValue::from("t0ken")).await.unwrap();
    store.delete(&k).await.unwrap();
    assert!(matches!(
        store.get(&k).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    assert!(store.list("").await.unwrap().is_empty());
    assert!(matches!(
        store.delete(&k).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    // Real AWS refuses PutSecretValue on a secret scheduled for deletion (the store
    // reports Conflict then); LocalStack and moto accept it, so it is not asserted here.
    store.undelete(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose(), b"t0ken");
    store.delete(&k).await.unwrap();
    store.purge(&k).await.unwrap();
    assert!(matches!(
        store.get(&k).await,
        Err(Error::NotFound { deleted: false, .. })
    ));
    assert!(matches!(store.purge(&k).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        store.delete(&k).await,
        Err(Error::NotFound { deleted: false, .. })
    ));
}

#[tokio::test]
async fn localstack_store_preconditions_and_metadata() {
    let env = ItestEnv::load();
    let store = store(&env, &format!("{}/", raw::unique("itest-aws-cas"))).await;
    let k = key("cas");
    let meta = Metadata::with_description("the cas secret")
        .tag("a", "1")
        .tag("b", "2");
    let v1 = store
        .put_with(
            &k,
            SecretValue::from("first"),
            &PutOptions::default().if_absent().with_metadata(meta),
        )
        .await
        .unwrap();
    let again = store
        .put_with(
            &k,
            SecretValue::from("nope"),
            &PutOptions::default().if_absent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Conflict { .. }), "{again}");

    let v2 = store
        .put_with(
            &k,
            SecretValue::from("second"),
            &PutOptions::default().if_version(v1.clone()),
        )
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap().version, v2);
    // v1 is stale now: the write must lose and change nothing.
    let stale = store
        .put_with(
            &k,
            SecretValue::from("lost"),
            &PutOptions::default().if_version(v1.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict { .. }), "{stale}");
    let now = store.get(&k).await.unwrap();
    assert_eq!((now.value.expose(), &now.version), (&b"second"[..], &v2));
    // No private staging label is left behind.
    for v in store.versions(&k).await.unwrap() {
        assert!(
            v.labels
                .iter()
                .all(|l| !l.starts_with("strongroom-pending")),
            "{v:?}"
        );
    }

    let name = store.secret_name(&k);
    let described = store.client().describe_secret(&name).await.unwrap();
    assert_eq!(described.description.as_deref(), Some("the cas secret"));
    assert_eq!(described.tags.len(), 2);
    // Metadata on a later put replaces the tag set.
    store
        .put_with(
            &k,
            SecretValue::from("third"),
            &PutOptions::default()
                .with_metadata(Metadata::with_description("changed").tag("b", "3")),
        )
        .await
        .unwrap();
    let described = store.client().describe_secret(&name).await.unwrap();
    assert_eq!(described.description.as_deref(), Some("changed"));
    assert_eq!(
        described.tags.into_iter().collect::<Vec<_>>(),
        [("b".to_owned(), "3".to_owned())]
    );
    // if_version on a secret that does not exist is a conflict, not a creation.
    let err = store
        .put_with(
            &key("never"),
            SecretValue::from("x"),
            &PutOptions::default().if_version(v2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(matches!(
        store.get(&key("never")).await,
        Err(Error::NotFound { .. })
    ));
    store.purge(&k).await.unwrap();
}

#[tokio::test]
async fn localstack_store_prefix_list_and_get_many() {
    let env = ItestEnv::load();
    let base = raw::unique("itest-aws-pfx");
    let store = store(&env, &format!("{base}/app/")).await;
    let neighbour = store_with(&env, &format!("{base}/other/")).await;
    for name in ["a/b", "a/c", "x"] {
        store
            .put(&key(name), SecretValue::from(name))
            .await
            .unwrap();
    }
    neighbour
        .put(&key("a/z"), SecretValue::from("z"))
        .await
        .unwrap();
    assert_eq!(store.list("a/").await.unwrap(), [key("a/b"), key("a/c")]);
    assert_eq!(
        store.list("").await.unwrap(),
        [key("a/b"), key("a/c"), key("x")]
    );
    assert_eq!(neighbour.list("").await.unwrap(), [key("a/z")]);

    let results = store
        .get_many(&[key("a/c"), key("missing"), key("x")])
        .await;
    assert_eq!(results[0].as_ref().unwrap().value.expose(), b"a/c");
    assert!(
        matches!(&results[1], Err(Error::NotFound { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap().value.expose(), b"x");
    assert_eq!(results[2].as_ref().unwrap().key, key("x"));
    for name in ["a/b", "a/c", "x"] {
        store.purge(&key(name)).await.unwrap();
    }
    neighbour.purge(&key("a/z")).await.unwrap();
}

async fn store_with(env: &ItestEnv, prefix: &str) -> SecretsManagerStore {
    store(env, prefix).await
}

/// One STS-speaking server and what it takes to assume a role there.
struct RoleServer {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    role_arn: String,
}

impl RoleServer {
    /// LocalStack: any role ARN is assumable, and signatures are not checked.
    fn localstack(env: &ItestEnv) -> Self {
        Self {
            endpoint: env.aws_endpoint.clone(),
            access_key_id: env.aws_access_key_id.clone(),
            secret_access_key: env.aws_secret_access_key.clone(),
            role_arn: "arn:aws:iam::000000000000:role/strongroom-itest".to_owned(),
        }
    }

    /// moto: the seeded role, whose own policy moto applies to calls signed with its session
    /// credentials, and the seeded user's key (signatures checked).
    fn moto(env: &ItestEnv) -> Self {
        Self {
            endpoint: env.moto_endpoint.clone(),
            access_key_id: env.moto_access_key_id.clone(),
            secret_access_key: env.moto_secret_access_key.clone(),
            role_arn: env
                .var("STRONGROOM_ITEST_MOTO_ROLE_ARN")
                .expect("cargo xtask seeds a role in moto")
                .to_owned(),
        }
    }
}

/// AssumeRole, then a Secrets Manager client signing with the session credentials through
/// the provider: create, read and delete a secret.
async fn assume_role_then_use_session_credentials(env: &ItestEnv, server: &RoleServer) {
    let sts = StsClient::new(
        HttpClient::new().unwrap(),
        &env.aws_region,
        &server.endpoint,
    )
    .unwrap();
    let base = Credentials::new(&server.access_key_id, &server.secret_access_key);
    let request = AssumeRoleRequest::new(&server.role_arn)
        .session_name("itest-session")
        .duration(Duration::from_secs(900));
    let assumed = sts.assume_role(&base, &request).await.expect("AssumeRole");
    assert_ne!(assumed.access_key_id(), base.access_key_id());
    assert!(assumed.session_token().is_some_and(|t| !t.is_empty()));
    let expiry = assumed.expiry().expect("AssumeRole credentials expire");
    assert!(expiry > SystemTime::now());

    let provider = AssumeRoleProvider::new(sts, Arc::new(StaticProvider::new(base)), request);
    let client = SecretsManagerClient::builder()
        .region(&env.aws_region)
        .endpoint(&server.endpoint)
        .credentials(strongroom_sigv4::CachingProvider::new(provider))
        .build()
        .unwrap();
    let name = raw::unique("itest-aws-role");
    client
        .create_secret(&CreateSecret::new(&name, SecretValue::from("via role")))
        .await
        .expect("CreateSecret with assumed-role credentials");
    let got = client
        .get_secret_value(&name, &VersionSelector::Current)
        .await
        .unwrap();
    assert_eq!(got.value.expose(), b"via role");
    client
        .delete_secret(&name, DeleteMode::Force)
        .await
        .unwrap();
}

#[tokio::test]
async fn localstack_assume_role_then_use_session_credentials() {
    let env = ItestEnv::load();
    assume_role_then_use_session_credentials(&env, &RoleServer::localstack(&env)).await;
}

#[tokio::test]
async fn moto_assume_role_then_use_session_credentials() {
    let env = ItestEnv::load();
    assume_role_then_use_session_credentials(&env, &RoleServer::moto(&env)).await;
}

#[tokio::test]
async fn tracing_output_holds_no_secret() {
    let env = ItestEnv::load();
    let captured = crate::support::capture();

    let value = "tr4cing-s3cret-value-do-not-log";
    // Store operations on LocalStack.
    let store = store(&env, &format!("{}/", raw::unique("itest-aws-trace"))).await;
    let k = key("traced");
    store.put(&k, SecretValue::from(value)).await.unwrap();
    store.put(&k, SecretValue::from(value)).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value.expose(),
        value.as_bytes()
    );
    let _ = store.get_many(std::slice::from_ref(&k)).await;
    // Signed calls on moto (the secret key is real there), including a refused one.
    let client = moto(&env, &env.moto_secret_access_key);
    let name = raw::unique("itest-aws-trace-moto");
    client
        .create_secret(&CreateSecret::new(&name, SecretValue::from(value)))
        .await
        .unwrap();
    client
        .get_secret_value(&name, &VersionSelector::Current)
        .await
        .unwrap();
    let _ = moto(&env, "wrong-secret-key-for-trace")
        .describe_secret(&name)
        .await;
    // AssumeRole: a session token comes back and is then used to sign.
    let sts = StsClient::new(
        HttpClient::new().unwrap(),
        &env.aws_region,
        &env.aws_endpoint,
    )
    .unwrap();
    let base = Credentials::new(&env.aws_access_key_id, &env.aws_secret_access_key);
    let assumed = sts
        .assume_role(
            &base,
            &AssumeRoleRequest::new("arn:aws:iam::000000000000:role/trace"),
        )
        .await
        .unwrap();
    let session_token = assumed.session_token().unwrap().to_owned();
    let role_secret = assumed.secret_access_key().to_owned();
    let role_client = SecretsManagerClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.aws_endpoint)
        .credentials(StaticProvider::new(assumed))
        .build()
        .unwrap();
    role_client
        .list_secrets(&ListSecrets::with_prefix("itest-aws-trace"))
        .await
        .unwrap();
    store.purge(&k).await.unwrap();
    client
        .delete_secret(&name, DeleteMode::Force)
        .await
        .unwrap();

    let text = captured.text();
    assert!(
        text.contains("GetSecretValue"),
        "the capture must have seen the calls:\n{text}"
    );
    assert!(
        text.contains("traced"),
        "store events name the key:\n{text}"
    );
    for secret in [
        value,
        env.moto_secret_access_key.as_str(),
        session_token.as_str(),
        role_secret.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "a secret leaked into tracing output"
        );
    }
}

#[tokio::test]
async fn outputs_and_errors_do_not_print_values() {
    let env = ItestEnv::load();
    let client = localstack(&env);
    let name = raw::unique("itest-aws-debug");
    let value = "debug-s3cret-value";
    client
        .create_secret(&CreateSecret::new(&name, SecretValue::from(value)))
        .await
        .unwrap();
    let got = client
        .get_secret_value(&name, &VersionSelector::Current)
        .await
        .unwrap();
    let err = client
        .create_secret(&CreateSecret::new(&name, SecretValue::from(value)))
        .await
        .unwrap_err();
    let shown = format!("{got:?} {err} {err:?}");
    let text = format!("{shown} {:?}", err.into_core(Some(&name), None));
    assert!(!text.contains(value), "{text}");
    client
        .delete_secret(&name, DeleteMode::Force)
        .await
        .unwrap();
}

/// `AWS_*` variables for the default chain, with `HOME` in `dir` and STS at `sts`.
fn chain_env(
    env: &ItestEnv,
    dir: &std::path::Path,
    sts: &str,
    extra: Vec<(&str, String)>,
) -> strongroom_sigv4::Env {
    let mut all = vec![
        ("HOME", dir.to_str().unwrap().to_owned()),
        ("AWS_REGION", env.aws_region.clone()),
        ("AWS_ENDPOINT_URL_STS", sts.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    all.extend(extra);
    strongroom_sigv4::Env::from_vars(all)
}

/// Web identity runs on LocalStack only: AWS takes AssumeRoleWithWebIdentity unsigned, and
/// moto, once it checks signatures, refuses every unsigned call.
#[tokio::test]
async fn localstack_web_identity_through_the_default_chain() {
    let env = ItestEnv::load();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    // LocalStack does not verify the token; the point is the wire call and the file handling.
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpdGVzdCJ9.c2ln\n",
    )
    .unwrap();
    let web = chain_env(
        &env,
        dir.path(),
        &env.aws_endpoint,
        vec![
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::000000000000:role/web".to_owned(),
            ),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.to_str().unwrap().to_owned(),
            ),
            ("AWS_ROLE_SESSION_NAME", "itest-web".to_owned()),
        ],
    );
    let creds = strongroom_aws::ChainProvider::default_chain(web)
        .unwrap()
        .load()
        .await
        .expect("web identity credentials from LocalStack STS");
    assert!(creds.session_token().is_some() && creds.expiry().is_some());
}

/// A profile with `role_arn` + `source_profile` (static keys) through the default chain, and
/// a store built from that environment using the role's credentials.
async fn role_profile_through_the_default_chain(env: &ItestEnv, server: &RoleServer) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile base]\naws_access_key_id = {}\naws_secret_access_key = {}\n\
             [profile app]\nrole_arn = {}\nsource_profile = base\n\
             role_session_name = itest-profile\n",
            server.access_key_id, server.secret_access_key, server.role_arn
        ),
    )
    .unwrap();
    let profile = chain_env(
        env,
        dir.path(),
        &server.endpoint,
        vec![
            ("AWS_CONFIG_FILE", config.to_str().unwrap().to_owned()),
            ("AWS_PROFILE", "app".to_owned()),
        ],
    );
    let creds = strongroom_aws::ChainProvider::default_chain(profile.clone())
        .unwrap()
        .load()
        .await
        .expect("role profile credentials from STS");
    assert!(creds.session_token().is_some());
    assert_ne!(creds.access_key_id(), server.access_key_id);

    let store = SecretsManagerStore::builder()
        .env(profile)
        .endpoint(&server.endpoint)
        .check_credentials(true)
        .build()
        .await
        .unwrap();
    let k = key(&raw::unique("itest-aws-profile"));
    store.put(&k, SecretValue::from("p")).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose(), b"p");
    store.purge(&k).await.unwrap();
}

#[tokio::test]
async fn localstack_role_profile_through_the_default_chain() {
    let env = ItestEnv::load();
    role_profile_through_the_default_chain(&env, &RoleServer::localstack(&env)).await;
}

#[tokio::test]
async fn moto_role_profile_through_the_default_chain() {
    let env = ItestEnv::load();
    role_profile_through_the_default_chain(&env, &RoleServer::moto(&env)).await;
}
