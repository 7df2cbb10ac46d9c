//! The servers are what they claim: raw HTTP round trips against OpenBao (KV v2 with an
//! AppRole token, a policy that really denies, short TTLs, a namespace, Kubernetes-style JWT
//! login), LocalStack (Secrets Manager) and moto (SigV4 signatures really checked).

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use strongroom_itests::ItestEnv;

use crate::raw::{self, Reply};

/// Logs in with the seeded AppRole; returns the token and its lease in seconds.
async fn approle_login(env: &ItestEnv) -> (String, u64) {
    let reply = raw::vault(
        &env.vault_addr,
        None,
        None,
        Method::POST,
        "auth/approle/login",
        Some(&json!({"role_id": env.approle_role_id, "secret_id": env.approle_secret_id})),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "AppRole login: {}",
        reply.body
    );
    let auth = &reply.json()["auth"];
    let token = auth["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    let lease = auth["lease_duration"].as_u64().expect("lease_duration");
    (token, lease)
}

/// `data.data` of a KV v2 read.
fn kv_data(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "KV read: {}", reply.body);
    reply.json()["data"]["data"].clone()
}

#[tokio::test]
async fn openbao_approle_token_writes_then_reads_kv_v2() {
    let env = ItestEnv::load();
    let (token, _) = approle_login(&env).await;
    let path = format!(
        "{}/data/{}{}",
        env.vault_kv_mount,
        env.vault_allowed_prefix,
        raw::unique("round-trip")
    );
    let written = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::POST,
        &path,
        Some(&json!({"data": {"password": "correct horse"}})),
    )
    .await;
    assert_eq!(written.status, StatusCode::OK, "write: {}", written.body);
    assert_eq!(written.json()["data"]["version"], 1);

    let read = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(kv_data(&read)["password"], "correct horse");
    assert_eq!(read.json()["data"]["metadata"]["version"], 1);
}

#[tokio::test]
async fn openbao_approle_token_is_denied_outside_its_prefix() {
    let env = ItestEnv::load();
    let (token, _) = approle_login(&env).await;
    let outside = format!(
        "{}/data/not-{}x",
        env.vault_kv_mount, env.vault_allowed_prefix
    );
    let write = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::POST,
        &outside,
        Some(&json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.body);
    assert!(write.body.contains("permission denied"), "{}", write.body);

    // The other mount exists (the root token reads its seed) but is not the role's.
    let path = format!("{}/data/seed", env.vault_team_mount);
    let denied = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let root = raw::vault(
        &env.vault_addr,
        Some(&env.vault_token),
        None,
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(kv_data(&root)["seeded"], "yes");
}

#[tokio::test]
async fn openbao_approle_token_renews_and_then_expires_after_its_short_ttl() {
    let env = ItestEnv::load();
    let (token, lease) = approle_login(&env).await;
    assert_eq!(lease, env.approle_token_ttl_secs);
    assert!(
        lease <= 30,
        "the AppRole TTL should be a few seconds, is {lease}s"
    );

    let renewed = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::POST,
        "auth/token/renew-self",
        Some(&json!({})),
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "renew: {}", renewed.body);
    assert_eq!(renewed.json()["auth"]["lease_duration"], lease);

    tokio::time::sleep(Duration::from_secs(lease + 3)).await;
    let lookup = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::GET,
        "auth/token/lookup-self",
        None,
    )
    .await;
    assert_eq!(
        lookup.status,
        StatusCode::FORBIDDEN,
        "expired token: {}",
        lookup.body
    );
}

#[tokio::test]
async fn openbao_namespace_has_its_own_kv_mount() {
    let env = ItestEnv::load();
    let ns = Some(env.vault_namespace.as_str());
    let path = format!("secret/data/{}", raw::unique("ns"));
    let token = Some(env.vault_token.as_str());
    let write = raw::vault(
        &env.vault_addr,
        token,
        ns,
        Method::POST,
        &path,
        Some(&json!({"data": {"team": "a"}})),
    )
    .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.body);
    let read = raw::vault(&env.vault_addr, token, ns, Method::GET, &path, None).await;
    assert_eq!(kv_data(&read)["team"], "a");
    // The same path in the root namespace is a different mount and has no such secret.
    let root = raw::vault(&env.vault_addr, token, None, Method::GET, &path, None).await;
    assert_eq!(root.status, StatusCode::NOT_FOUND, "{}", root.body);
}

#[tokio::test]
async fn openbao_kubernetes_login_verifies_the_service_account_jwt() {
    let env = ItestEnv::load();
    let key = std::fs::read(&env.k8s_signing_key).expect("the signing key xtask wrote");
    let login = |jwt: String| {
        let env = &env;
        async move {
            raw::vault(
                &env.vault_addr,
                None,
                None,
                Method::POST,
                &format!("auth/{}/login", env.k8s_mount),
                Some(&json!({"role": env.k8s_role, "jwt": jwt})),
            )
            .await
        }
    };

    let good = raw::service_account_jwt(&key, &env.k8s_issuer, &env.k8s_audience, &env.k8s_subject);
    let reply = login(good).await;
    assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.body);
    let token = reply.json()["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    let path = format!(
        "{}/data/{}{}",
        env.vault_kv_mount,
        env.vault_allowed_prefix,
        raw::unique("k8s")
    );
    let write = raw::vault(
        &env.vault_addr,
        Some(&token),
        None,
        Method::POST,
        &path,
        Some(&json!({"data": {"from": "pod"}})),
    )
    .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.body);

    // The server really checks the signature and the bound claims.
    let forged = raw::service_account_jwt(
        &raw::untrusted_key(),
        &env.k8s_issuer,
        &env.k8s_audience,
        &env.k8s_subject,
    );
    let refused = login(forged).await;
    assert!(
        refused.status.is_client_error(),
        "forged JWT: {} {}",
        refused.status,
        refused.body
    );
    let other_sa = raw::service_account_jwt(
        &key,
        &env.k8s_issuer,
        &env.k8s_audience,
        "system:serviceaccount:itest:intruder",
    );
    let refused = login(other_sa).await;
    assert!(
        refused.status.is_client_error(),
        "wrong subject: {} {}",
        refused.status,
        refused.body
    );
}

#[tokio::test]
async fn localstack_creates_then_reads_a_secret() {
    let env = ItestEnv::load();
    let keys = (
        env.aws_access_key_id.as_str(),
        env.aws_secret_access_key.as_str(),
    );
    let name = raw::unique("itest/localstack");
    let created = raw::aws_json(
        &env.aws_endpoint,
        &env.aws_region,
        "secretsmanager",
        keys,
        "secretsmanager.CreateSecret",
        &json!({
            "Name": name,
            "SecretString": "s3cret-value",
            "ClientRequestToken": raw::uuid_v4(),
        }),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "CreateSecret: {}",
        created.body
    );
    assert_eq!(created.json()["Name"], name.as_str());

    let read = raw::aws_json(
        &env.aws_endpoint,
        &env.aws_region,
        "secretsmanager",
        keys,
        "secretsmanager.GetSecretValue",
        &json!({"SecretId": name}),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "GetSecretValue: {}", read.body);
    let body = read.json();
    assert_eq!(body["SecretString"], "s3cret-value");
    assert_eq!(body["VersionStages"], json!(["AWSCURRENT"]));
}

#[tokio::test]
async fn moto_accepts_the_seeded_key_and_refuses_a_wrong_signature() {
    let env = ItestEnv::load();
    let name = raw::unique("itest/moto");
    let good = (
        env.moto_access_key_id.as_str(),
        env.moto_secret_access_key.as_str(),
    );
    let created = raw::aws_json(
        &env.moto_endpoint,
        &env.aws_region,
        "secretsmanager",
        good,
        "secretsmanager.CreateSecret",
        &json!({
            "Name": name,
            "SecretString": "signed",
            "ClientRequestToken": raw::uuid_v4(),
        }),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "correctly signed: {}",
        created.body
    );

    let wrong_secret = format!("{}x", env.moto_secret_access_key);
    let refused = raw::aws_json(
        &env.moto_endpoint,
        &env.aws_region,
        "secretsmanager",
        (env.moto_access_key_id.as_str(), wrong_secret.as_str()),
        "secretsmanager.GetSecretValue",
        &json!({"SecretId": name}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("SignatureDoesNotMatch"),
        "{}",
        refused.body
    );

    // And a key moto never issued is refused too.
    let unknown = raw::aws_json(
        &env.moto_endpoint,
        &env.aws_region,
        "secretsmanager",
        ("AKIAUNKNOWNUNKNOWN00", "unknown"),
        "secretsmanager.GetSecretValue",
        &json!({"SecretId": name}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN, "{}", unknown.body);
}

#[test]
fn env_debug_hides_the_credentials() {
    let env = ItestEnv::load();
    let debug = format!("{env:?}");
    for secret in [
        &env.vault_token,
        &env.approle_secret_id,
        &env.moto_secret_access_key,
    ] {
        assert!(!debug.contains(secret.as_str()), "Debug leaks a credential");
    }
}
