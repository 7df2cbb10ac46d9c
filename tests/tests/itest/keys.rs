//! The key providers against real key services: [`KmsKeyProvider`] on moto's KMS (which
//! checks signatures and enforces the IAM policies the xtask seeds) and
//! [`TransitKeyProvider`] on OpenBao's Transit engine.
//!
//! For each: wrap/unwrap and generate/unwrap round trips, a wrapped key opened with another
//! context or modified gives `Decrypt`, credentials without the decrypt permission give
//! `PermissionDenied` and change nothing, an unreachable service gives `Unavailable` within
//! a bounded time, and what the provider wraps is an ordinary ciphertext of the service:
//! boto3 (KMS) and the `bao` CLI (Transit) open it with the documented context, as
//! docs/keys-providers.md tells an operator to.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::json;
use strongroom_aws::KmsKeyProvider;
use strongroom_core::{Error, ErrorKind, KeyContext, KeyProvider};
use strongroom_itests::ItestEnv;
use strongroom_sigv4::{Credentials, StaticProvider};
use strongroom_vault::{Method, TransitKeyProvider, VaultClient};

use crate::{raw, support};

/// A fresh random 32-byte data key.
fn data_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    SystemRandom::new().fill(&mut key).expect("random");
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The context a store would bind its data key to.
fn context(store: &str) -> KeyContext {
    KeyContext::new()
        .with("strongroom:store", store)
        .with("strongroom:format", "2")
}

/// Every text representation of `key` a leak could take.
fn assert_not_logged(key: &[u8]) {
    let logs = support::capture().text();
    for form in [hex(key), STANDARD.encode(key)] {
        assert!(!logs.contains(&form), "the data key was logged");
    }
}

/// Flips one bit of byte `at`.
fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A loopback server that accepts connections and never answers; stops with the runtime.
async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// The longest an unreachable service may take to give up with the default clients: one
/// retry budget (10 s) and a margin for a loaded machine.
const UNREACHABLE_BOUND: Duration = Duration::from_secs(20);

// ---- AWS KMS on moto ---------------------------------------------------------------------

pub(crate) fn var<'a>(env: &'a ItestEnv, name: &str) -> &'a str {
    env.var(name)
        .unwrap_or_else(|| panic!("{name} is not set: rerun `cargo xtask services up`"))
}

fn kms_with(env: &ItestEnv, key_id: &str, access_key: &str, secret_key: &str) -> KmsKeyProvider {
    KmsKeyProvider::builder(key_id)
        .region(&env.aws_region)
        .endpoint(&env.moto_endpoint)
        .credentials(StaticProvider::new(Credentials::new(
            access_key, secret_key,
        )))
        .build_lazy()
        .expect("kms provider")
}

/// The seeded key through its alias, as the user allowed everything.
fn kms(env: &ItestEnv) -> KmsKeyProvider {
    kms_with(
        env,
        var(env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS"),
        &env.moto_access_key_id,
        &env.moto_secret_access_key,
    )
}

#[tokio::test]
async fn kms_wraps_generates_and_unwraps() {
    support::capture();
    let env = ItestEnv::load();
    let provider = kms(&env);
    assert_eq!(provider.kind(), "aws-kms");
    assert_eq!(provider.key_id(), "alias/strongroom-itest");
    let ctx = context(&raw::unique("/srv/kms-rt"));

    let key = data_key();
    let wrapped = provider.wrap(&key, &ctx).await.expect("wrap");
    assert!(!wrapped.windows(key.len()).any(|w| w == key.as_slice()));
    assert_eq!(
        provider
            .unwrap(&wrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );

    let generated = provider
        .generate(32, &ctx)
        .await
        .expect("generate")
        .expect("KMS generates data keys");
    assert_eq!(generated.plaintext.len(), 32);
    assert_eq!(
        provider
            .unwrap(&generated.wrapped, &ctx)
            .await
            .expect("unwrap generated")
            .expose(),
        generated.plaintext.expose()
    );

    // The same key named by id and by ARN opens what the alias wrapped, and rewrap (the
    // trait's default for KMS) gives a new ciphertext of the same data key.
    for name in [
        "STRONGROOM_ITEST_MOTO_KMS_KEY_ID",
        "STRONGROOM_ITEST_MOTO_KMS_KEY_ARN",
    ] {
        let by = kms_with(
            &env,
            var(&env, name),
            &env.moto_access_key_id,
            &env.moto_secret_access_key,
        );
        assert_eq!(
            by.unwrap(&wrapped, &ctx).await.expect("unwrap").expose(),
            key.as_slice(),
            "{name}"
        );
    }
    let rewrapped = provider.rewrap(&wrapped, &ctx).await.expect("rewrap");
    assert_ne!(rewrapped, wrapped);
    assert_eq!(
        provider
            .unwrap(&rewrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );
    assert_not_logged(&key);
    assert_not_logged(generated.plaintext.expose());
}

#[tokio::test]
async fn kms_refuses_another_context_and_modified_keys() {
    let env = ItestEnv::load();
    let provider = kms(&env);
    let store = raw::unique("/srv/kms-bind");
    let ctx = context(&store);
    let wrapped = provider.wrap(&data_key(), &ctx).await.expect("wrap");

    let others = [
        context(&format!("{store}-other")),
        ctx.clone().with("strongroom:format", "3"),
        ctx.clone().with("extra", "pair"),
        KeyContext::new(),
    ];
    for other in others {
        let err = provider.unwrap(&wrapped, &other).await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{other:?}: {err}");
        assert!(err.to_string().contains("alias/strongroom-itest"), "{err}");
    }
    // moto's ciphertext is its key id (36 bytes), then IV, tag and ciphertext: a modified
    // key id names no key (moto answers AccessDenied, as AWS may), so modify what follows.
    for at in [36, 50, 70, wrapped.len() - 1] {
        let err = provider
            .unwrap(&flipped(&wrapped, at), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "byte {at}: {err}");
    }
    let err = provider
        .unwrap(&wrapped[..wrapped.len() - 1], &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "truncated: {err}");
    let err = provider.unwrap(b"garbage", &ctx).await.unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "garbage: {err}");
}

#[tokio::test]
async fn kms_without_decrypt_permission_is_denied_and_changes_nothing() {
    let env = ItestEnv::load();
    let alias = var(&env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS");
    let limited = kms_with(
        &env,
        alias,
        var(&env, "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_ACCESS_KEY_ID"),
        var(
            &env,
            "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_SECRET_ACCESS_KEY",
        ),
    );
    let ctx = context(&raw::unique("/srv/kms-denied"));
    let key = data_key();
    // Its policy allows Encrypt and GenerateDataKey...
    let wrapped = limited.wrap(&key, &ctx).await.expect("wrap is allowed");
    let generated = limited
        .generate(32, &ctx)
        .await
        .expect("generate is allowed")
        .expect("a key");
    // ...but not Decrypt.
    for blob in [&wrapped, &generated.wrapped] {
        let err = limited.unwrap(blob, &ctx).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::PermissionDenied {
                    backend: "aws-kms",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(alias), "{err}");
    }
    // The refusal changed nothing: what it could not open still opens with a user who may.
    let full = kms(&env);
    assert_eq!(
        full.unwrap(&wrapped, &ctx).await.expect("unwrap").expose(),
        key.as_slice()
    );
    assert_eq!(
        full.unwrap(&generated.wrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        generated.plaintext.expose()
    );
}

#[tokio::test]
async fn kms_bad_credentials_and_unknown_keys_are_told_apart() {
    let env = ItestEnv::load();
    let ctx = context("/srv/kms-errors");
    let alias = var(&env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS");
    let forged = kms_with(&env, alias, &env.moto_access_key_id, "not-the-secret-key");
    let err = forged.wrap(&data_key(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    let missing = "alias/strongroom-itest-no-such-key";
    let provider = kms_with(
        &env,
        missing,
        &env.moto_access_key_id,
        &env.moto_secret_access_key,
    );
    let err = provider.wrap(&data_key(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains(missing), "{err}");
    let err = provider.generate(32, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn kms_unreachable_is_unavailable_within_a_bound() {
    let env = ItestEnv::load();
    let ctx = context("/srv/kms-down");
    for port in [closed_port(), silent_server().await] {
        let provider = KmsKeyProvider::builder("alias/strongroom-itest")
            .region(&env.aws_region)
            .endpoint(format!("http://127.0.0.1:{port}"))
            .credentials(StaticProvider::new(Credentials::new("AKID", "secret")))
            .build_lazy()
            .expect("provider");
        let started = Instant::now();
        let err = provider.unwrap(&[1; 100], &ctx).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(took < UNREACHABLE_BOUND, "gave up after {took:?}");
    }
}

/// The moto venv's Python, which has boto3.
fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("xtask/venvs/moto/bin/python")
}

/// Runs `script` with boto3's KMS client on moto as `c`; returns stdout.
pub(crate) fn boto3(env: &ItestEnv, script: &str) -> String {
    let program = format!(
        "import base64, boto3, os, sys\n\
         c = boto3.client('kms', endpoint_url=os.environ['E'], region_name=os.environ['R'], \
         aws_access_key_id=os.environ['K'], aws_secret_access_key=os.environ['S'])\n{script}"
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(program)
        .env("E", &env.moto_endpoint)
        .env("R", &env.aws_region)
        .env("K", &env.moto_access_key_id)
        .env("S", &env.moto_secret_access_key)
        .output()
        .expect("run the moto venv's python");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The encryption context as the Python literal docs/keys-providers.md shows.
pub(crate) fn python_context(ctx: &KeyContext) -> String {
    let pairs: Vec<String> = ctx
        .pairs()
        .map(|(name, value)| format!("{name:?}: {value:?}"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

#[tokio::test]
async fn kms_ciphertexts_are_ordinary_kms_ciphertexts_for_boto3() {
    let env = ItestEnv::load();
    let provider = kms(&env);
    let ctx = context(&raw::unique("/srv/kms-boto3"));
    let py_ctx = python_context(&ctx);

    // Wrapped here, decrypted by boto3 with the documented context.
    let key = data_key();
    let wrapped = provider.wrap(&key, &ctx).await.expect("wrap");
    let out = boto3(
        &env,
        &format!(
            "r = c.decrypt(CiphertextBlob=base64.b64decode('{}'), EncryptionContext={py_ctx})\n\
             print(r['Plaintext'].hex())\n\
             try:\n    c.decrypt(CiphertextBlob=base64.b64decode('{}'), EncryptionContext={{}})\n    \
             print('opened without the context')\n\
             except c.exceptions.InvalidCiphertextException:\n    print('refused')\n",
            STANDARD.encode(&wrapped),
            STANDARD.encode(&wrapped),
        ),
    );
    assert_eq!(out, format!("{}\nrefused\n", hex(&key)));

    // Made by boto3's GenerateDataKey, unwrapped here.
    let alias = var(&env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS");
    let out = boto3(
        &env,
        &format!(
            "r = c.generate_data_key(KeyId='{alias}', NumberOfBytes=32, EncryptionContext={py_ctx})\n\
             print(r['Plaintext'].hex())\n\
             print(base64.b64encode(r['CiphertextBlob']).decode())\n"
        ),
    );
    let mut lines = out.lines();
    let plaintext = lines.next().expect("plaintext").to_owned();
    let blob = STANDARD
        .decode(lines.next().expect("ciphertext"))
        .expect("base64");
    let opened = provider.unwrap(&blob, &ctx).await.expect("unwrap boto3's");
    assert_eq!(hex(opened.expose()), plaintext);
    let err = provider
        .unwrap(&blob, &context("/srv/another-store"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decrypt, "{err}");
}

// ---- Vault/OpenBao Transit ---------------------------------------------------------------

fn root_client(env: &ItestEnv) -> VaultClient {
    VaultClient::builder()
        .address(&env.vault_addr)
        .token(env.vault_token.as_str())
        .build()
        .expect("root client")
}

/// Enables Transit at `mount` (once; tests share mounts) and creates a fresh key there,
/// derived unless `derived` is false; returns its name.
pub(crate) async fn transit_key(env: &ItestEnv, mount: &str, derived: bool) -> String {
    let root = root_client(env);
    match root
        .request_json(
            Method::POST,
            &format!("sys/mounts/{mount}"),
            Some(&json!({"type": "transit"})),
        )
        .await
    {
        Ok(_) => {}
        Err(Error::InvalidValue { message }) if message.contains("path is already in use") => {}
        Err(e) => panic!("enable transit at {mount}: {e}"),
    }
    let name = raw::unique("itest-key");
    root.request_json(
        Method::POST,
        &format!("{mount}/keys/{name}"),
        Some(&json!({"derived": derived})),
    )
    .await
    .expect("create the transit key");
    name
}

fn transit(env: &ItestEnv, name: &str) -> TransitKeyProvider {
    TransitKeyProvider::new(root_client(env), name).expect("transit provider")
}

#[tokio::test]
async fn transit_wraps_generates_and_unwraps() {
    support::capture();
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let provider = transit(&env, &name);
    assert_eq!(provider.kind(), "vault-transit");
    assert_eq!(provider.key_id(), name);
    let ctx = context(&raw::unique("/srv/transit-rt"));

    let key = data_key();
    let wrapped = provider.wrap(&key, &ctx).await.expect("wrap");
    assert_eq!(TransitKeyProvider::wrapped_key_version(&wrapped), Some(1));
    assert_eq!(
        provider
            .unwrap(&wrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );

    for len in [16, 32, 64] {
        let generated = provider
            .generate(len, &ctx)
            .await
            .expect("generate")
            .expect("transit/datakey makes 16, 32 and 64-byte keys");
        assert_eq!(generated.plaintext.len(), len);
        assert_eq!(
            provider
                .unwrap(&generated.wrapped, &ctx)
                .await
                .expect("unwrap generated")
                .expose(),
            generated.plaintext.expose()
        );
        assert_not_logged(generated.plaintext.expose());
    }
    assert!(provider.generate(24, &ctx).await.expect("24").is_none());

    // On another mount, named by the builder.
    let other_mount = "transit-itest-keys";
    let other = transit_key(&env, other_mount, true).await;
    let elsewhere = TransitKeyProvider::builder(other.as_str())
        .mount(other_mount)
        .client(root_client(&env))
        .build()
        .expect("provider");
    let wrapped = elsewhere.wrap(&key, &ctx).await.expect("wrap");
    assert_eq!(
        elsewhere
            .unwrap(&wrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );
    assert_not_logged(&key);
}

#[tokio::test]
async fn transit_refuses_another_context_another_key_and_modified_keys() {
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let provider = transit(&env, &name);
    let store = raw::unique("/srv/transit-bind");
    let ctx = context(&store);
    let wrapped = provider.wrap(&data_key(), &ctx).await.expect("wrap");

    for other in [
        context(&format!("{store}-other")),
        ctx.clone().with("strongroom:format", "3"),
        ctx.clone().with("extra", "pair"),
    ] {
        let err = provider.unwrap(&wrapped, &other).await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{other:?}: {err}");
        assert!(err.to_string().contains(&name), "{err}");
        let err = provider.rewrap(&wrapped, &other).await.unwrap_err();
        assert!(
            matches!(err, Error::Decrypt { .. }),
            "rewrap {other:?}: {err}"
        );
    }
    // Another key of the same mount, same context.
    let second = transit(&env, &transit_key(&env, "transit", true).await);
    let err = second.unwrap(&wrapped, &ctx).await.unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "another key: {err}");

    // Every modification of the base64 part, and a version the key never had.
    let text = std::str::from_utf8(&wrapped).expect("utf-8");
    let body = "vault:v1:".len();
    for at in [body, body + 10, wrapped.len() - 3] {
        let mut modified = wrapped.clone();
        modified[at] = if modified[at] == b'A' { b'B' } else { b'A' };
        let err = provider.unwrap(&modified, &ctx).await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "byte {at}: {err}");
    }
    let future = text.replacen("vault:v1:", "vault:v9:", 1);
    let err = provider.unwrap(future.as_bytes(), &ctx).await.unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "v9: {err}");
    let err = provider
        .unwrap(&wrapped[..wrapped.len() - 4], &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "truncated: {err}");
}

#[tokio::test]
async fn transit_keys_that_would_not_bind_or_do_not_exist_are_config_errors() {
    let env = ItestEnv::load();
    let ctx = context("/srv/transit-config");
    // A key without derivation would ignore the context: refused before any encryption.
    let plain = transit(&env, &transit_key(&env, "transit", false).await);
    let err = plain.wrap(&data_key(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("derived=true"), "{err}");
    let err = plain.generate(32, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");

    let missing = transit(&env, "strongroom-itest-no-such-key");
    let err = missing.wrap(&data_key(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("no-such-key"), "{err}");
    let err = missing
        .unwrap(b"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");

    let no_mount = TransitKeyProvider::builder("app")
        .mount("strongroom-no-such-mount")
        .client(root_client(&env))
        .build()
        .expect("provider");
    let err = no_mount.wrap(&data_key(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn transit_policy_without_decrypt_is_denied_and_changes_nothing() {
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let root = root_client(&env);
    let policy = raw::unique("transit-no-decrypt");
    let text = format!(
        "path \"transit/keys/{name}\" {{ capabilities = [\"read\"] }}\n\
         path \"transit/encrypt/{name}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/rewrap/{name}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/datakey/plaintext/{name}\" {{ capabilities = [\"update\"] }}\n"
    );
    root.request_json(
        Method::PUT,
        &format!("sys/policies/acl/{policy}"),
        Some(&json!({"policy": text})),
    )
    .await
    .expect("policy");
    let created = root
        .request_json(
            Method::POST,
            "auth/token/create",
            Some(&json!({"policies": [policy], "ttl": "10m"})),
        )
        .await
        .expect("token");
    let token = created["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    let limited = TransitKeyProvider::new(
        VaultClient::builder()
            .address(&env.vault_addr)
            .token(token.as_str())
            .build()
            .expect("client"),
        name.as_str(),
    )
    .expect("provider");

    let ctx = context(&raw::unique("/srv/transit-denied"));
    let key = data_key();
    let wrapped = limited.wrap(&key, &ctx).await.expect("encrypt is allowed");
    let err = limited.unwrap(&wrapped, &ctx).await.unwrap_err();
    assert!(
        matches!(err, Error::PermissionDenied { .. }),
        "no decrypt capability: {err}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&token), "the token is not in the error");
    // Nothing changed: the root token opens the same wrapped key.
    assert_eq!(
        transit(&env, &name)
            .unwrap(&wrapped, &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );
}

#[tokio::test]
async fn transit_with_a_bad_token_is_unauthenticated() {
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let ctx = context("/srv/transit-bad-token");
    let wrapped = transit(&env, &name)
        .wrap(&data_key(), &ctx)
        .await
        .expect("wrap");
    let forged = TransitKeyProvider::new(
        VaultClient::builder()
            .address(&env.vault_addr)
            .token("hvs.not-a-token-this-server-issued")
            .build()
            .expect("client"),
        name.as_str(),
    )
    .expect("provider");
    for err in [
        forged.unwrap(&wrapped, &ctx).await.unwrap_err(),
        forged.wrap(&data_key(), &ctx).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
        assert!(!err.to_string().contains("not-a-token"), "{err}");
    }
}

#[tokio::test]
async fn transit_rotation_then_rewrap_moves_to_the_new_version_inside_vault() {
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let provider = transit(&env, &name);
    let ctx = context(&raw::unique("/srv/transit-rotate"));
    let key = data_key();
    let v1 = provider.wrap(&key, &ctx).await.expect("wrap");
    assert_eq!(TransitKeyProvider::wrapped_key_version(&v1), Some(1));

    // Rewrapping under the newest version when it already is one changes the nonce only.
    let same = provider.rewrap(&v1, &ctx).await.expect("rewrap v1");
    assert_eq!(TransitKeyProvider::wrapped_key_version(&same), Some(1));

    root_client(&env)
        .request_json(Method::POST, &format!("transit/keys/{name}/rotate"), None)
        .await
        .expect("rotate");
    let v2 = provider.rewrap(&v1, &ctx).await.expect("rewrap");
    assert_eq!(TransitKeyProvider::wrapped_key_version(&v2), Some(2));
    assert_ne!(v1, v2);
    assert_eq!(
        provider
            .unwrap(&v2, &ctx)
            .await
            .expect("unwrap v2")
            .expose(),
        key.as_slice()
    );
    // The old wrapped key still opens until the key's min_decryption_version moves.
    assert_eq!(
        provider
            .unwrap(&v1, &ctx)
            .await
            .expect("unwrap v1")
            .expose(),
        key.as_slice()
    );
    root_client(&env)
        .request_json(
            Method::POST,
            &format!("transit/keys/{name}/config"),
            Some(&json!({"min_decryption_version": 2})),
        )
        .await
        .expect("config");
    let err = provider.unwrap(&v1, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decrypt, "{err}");
    assert_eq!(
        provider
            .unwrap(&v2, &ctx)
            .await
            .expect("unwrap v2")
            .expose(),
        key.as_slice()
    );
    // A new wrap uses the newest version too.
    let fresh = provider.wrap(&key, &ctx).await.expect("wrap");
    assert_eq!(TransitKeyProvider::wrapped_key_version(&fresh), Some(2));
}

#[tokio::test]
async fn transit_unreachable_is_unavailable_within_a_bound() {
    let ctx = context("/srv/transit-down");
    for port in [closed_port(), silent_server().await] {
        let client = VaultClient::builder()
            .address(format!("http://127.0.0.1:{port}"))
            .token("hvs.not-a-real-token")
            .build()
            .expect("client");
        let provider = TransitKeyProvider::new(client, "app").expect("provider");
        let started = Instant::now();
        let err = provider
            .unwrap(b"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &ctx)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(took < UNREACHABLE_BOUND, "gave up after {took:?}");
    }
}

/// The Python one-liner docs/keys-providers.md gives for Transit's context, run with the
/// pairs of `ctx`; returns what it prints.
fn documented_transit_context(ctx: &KeyContext) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/keys-providers.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/keys-providers.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("python3 -c '"))
        .expect("the docs show the context one-liner");
    let script = line["python3 -c '".len()..]
        .split('\'')
        .next()
        .expect("a quoted script");
    // The pairs in reverse order: the script must sort them itself.
    let mut pairs: Vec<(&str, &str)> = ctx.pairs().collect();
    pairs.reverse();
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(pairs.iter().flat_map(|(n, v)| [*n, *v]))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the documented one-liner: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// What an operator runs by hand (docs/keys-providers.md): `bao write -field=plaintext
/// transit/decrypt/<key> ciphertext=... context=<the documented one-liner>`.
#[tokio::test]
async fn transit_wrapped_keys_open_with_the_bao_cli() {
    let env = ItestEnv::load();
    let name = transit_key(&env, "transit", true).await;
    let provider = transit(&env, &name);
    let ctx = context(&raw::unique("/srv/transit-cli")).with("zé", "ünïcode");
    let documented = documented_transit_context(&ctx);
    assert_eq!(documented, STANDARD.encode(ctx.to_bytes()));
    let key = data_key();
    let wrapped = provider.wrap(&key, &ctx).await.expect("wrap");
    let ciphertext = String::from_utf8(wrapped).expect("utf-8");
    let out = Command::new(support::bao_binary())
        .args([
            "write",
            "-field=plaintext",
            &format!("transit/decrypt/{name}"),
            &format!("ciphertext={ciphertext}"),
            &format!("context={documented}"),
        ])
        .env("VAULT_ADDR", &env.vault_addr)
        .env("VAULT_TOKEN", &env.vault_token)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run bao");
    assert!(
        out.status.success(),
        "bao: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        STANDARD.decode(printed.trim()).expect("base64"),
        key,
        "bao printed the data key's base64"
    );

    // And the other way: a key the CLI wrapped opens through the provider.
    let out = Command::new(support::bao_binary())
        .args([
            "write",
            "-field=ciphertext",
            &format!("transit/encrypt/{name}"),
            &format!("plaintext={}", STANDARD.encode(&key)),
            &format!("context={}", STANDARD.encode(ctx.to_bytes())),
        ])
        .env("VAULT_ADDR", &env.vault_addr)
        .env("VAULT_TOKEN", &env.vault_token)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run bao");
    assert!(out.status.success(), "bao encrypt");
    let wrapped = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        provider
            .unwrap(wrapped.trim().as_bytes(), &ctx)
            .await
            .expect("unwrap")
            .expose(),
        key.as_slice()
    );
}
