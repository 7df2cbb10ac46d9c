//! The least-privilege IAM policy of docs/security.md, proved on moto: xtask seeds an IAM
//! user holding exactly the documented actions, every `SecretStore` operation succeeds
//! through it, and an action the document leaves out is refused (so moto really enforces
//! the policy, and the test can fail).

use serde_json::json;
use strongroom_aws::{SecretsManagerClient, SecretsManagerStore};
use strongroom_core::{Error, Metadata, PutOptions, SecretName, SecretStore};
use strongroom_itests::ItestEnv;
use strongroom_sigv4::{Credentials, StaticProvider};

use crate::raw;

/// The documented user's key pair, as xtask seeded it.
fn least_credentials(env: &ItestEnv) -> (String, String) {
    let var = |name: &str| {
        env.var(name)
            .unwrap_or_else(|| panic!("{name} is unset: rerun `cargo xtask itest`"))
            .to_owned()
    };
    (
        var("STRONGROOM_ITEST_MOTO_LEAST_ACCESS_KEY_ID"),
        var("STRONGROOM_ITEST_MOTO_LEAST_SECRET_ACCESS_KEY"),
    )
}

fn key(name: &str) -> SecretName {
    SecretName::new(name).expect("valid name")
}

#[tokio::test]
async fn every_operation_works_with_exactly_the_documented_iam_policy() {
    let env = ItestEnv::load();
    let (id, secret) = least_credentials(&env);
    let client = SecretsManagerClient::builder()
        .region(&env.aws_region)
        .endpoint(&env.moto_endpoint)
        .credentials(StaticProvider::new(Credentials::new(&id, &secret)))
        .build()
        .expect("moto client");
    let prefix = format!("myapp/prod/{}/", raw::unique("least"));
    let store = SecretsManagerStore::builder()
        .client(client)
        .prefix(&prefix)
        .recovery_window_days(7)
        .build_lazy()
        .expect("store");

    let db = key("db/password");
    let api = key("api/key");
    let v1 = store.put(&db, "one".into()).await.expect("create");
    let v2 = store.put(&db, "two".into()).await.expect("put");
    let v3 = store
        .put_with(
            &db,
            "three".into(),
            &PutOptions::default().if_version(v2.clone()),
        )
        .await
        .expect("check-and-set");
    assert!(matches!(
        store
            .put_with(
                &db,
                "stale".into(),
                &PutOptions::default().if_version(v1.clone())
            )
            .await,
        Err(Error::Conflict { .. })
    ));
    let tagged = Metadata::with_description("the database")
        .tag("team", "core")
        .tag("tier", "1");
    store
        .put_with(
            &api,
            "k1".into(),
            &PutOptions::default().with_metadata(tagged),
        )
        .await
        .expect("create with description and tags");
    let fewer = Metadata::with_description("the api").tag("team", "core");
    store
        .put_with(
            &api,
            "k2".into(),
            &PutOptions::default().with_metadata(fewer),
        )
        .await
        .expect("update description, untag");

    let current = store.get(&db).await.expect("get");
    assert_eq!(
        (current.value.expose_str().unwrap(), &current.version),
        ("three", &v3)
    );
    assert_eq!(
        store
            .get_version(&db, &v1)
            .await
            .expect("get_version")
            .value,
        "one".into()
    );
    let versions = store.versions(&db).await.expect("versions");
    assert!(versions.len() >= 3, "{versions:?}");
    assert_eq!(
        store.list("").await.expect("list"),
        vec![api.clone(), db.clone()]
    );
    // Batch reads only prove the action is allowed: moto's BatchGetSecretValue answers from
    // a default version that a check-and-set does not move (GetSecretValue names its label).
    let many = store.get_many(&[db.clone(), api.clone()]).await;
    assert_eq!(many.len(), 2);
    for result in &many {
        assert!(result.is_ok(), "batch get: {result:?}");
    }
    store.delete(&db).await.expect("delete");
    assert!(matches!(
        store.get(&db).await,
        Err(Error::NotFound { deleted: true, .. })
    ));
    store.undelete(&db).await.expect("undelete");
    assert_eq!(
        store.get(&db).await.expect("get again").value,
        "three".into()
    );
    store.purge(&db).await.expect("purge");
    store.purge(&api).await.expect("purge");
}

#[tokio::test]
async fn an_action_the_documented_policy_leaves_out_is_refused() {
    let env = ItestEnv::load();
    let (id, secret) = least_credentials(&env);
    // RotateSecret is not in the document: moto must refuse it to this user.
    let refused = raw::aws_json(
        &env.moto_endpoint,
        &env.aws_region,
        "secretsmanager",
        (&id, &secret),
        "secretsmanager.RotateSecret",
        &json!({"SecretId": "myapp/prod/anything"}),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("AccessDenied"), "{}", refused.body);
}
