//! Stores whose data key lives in a key service, through the `strongroom` binary as an
//! operator runs it: `init --key aws-kms:... --key passphrase` on moto's KMS, and
//! `--key vault-transit:...` on OpenBao's Transit engine.
//!
//! What an operator relies on: any one slot opens the store (the passphrase when KMS is
//! unreachable); a key without `kms:Decrypt` is refused and changes nothing; a slot moved
//! from another store is refused; the KMS slot is an ordinary KMS ciphertext that boto3
//! opens with the documented context; a Transit key rotation followed by `rekey --slot`
//! moves the slot to the new key version without changing the data key; and a store opens
//! with one call to the key service however many secrets it then reads.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use http::Method;
use serde_json::{Value, json};
use strongroom_envelope::{DataKey, KeySlot, SlotKind};
use strongroom_itests::ItestEnv;
use strongroom_local::{FileStore, StoreSlots, key_context};
use strongroom_vault::TransitKeyProvider;

use crate::cli::binary;
use crate::keys::{boto3, python_context, var};
use crate::{agent, raw};

/// Exit codes of docs/cli.md.
const AUTH: i32 = 4;
const DECRYPT: i32 = 7;

/// Runs the CLI on the store `store` with only `vars` in its environment.
fn run(store: &Path, vars: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env_clear()
        .env("STRONGROOM_STORE", store)
        .env("HOME", store.parent().expect("parent"))
        .envs(vars.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strongroom");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("strongroom")
}

fn ok(store: &Path, vars: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> String {
    let out = run(store, vars, args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn failed(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The slot table of the store at `path`.
fn slots(path: &Path) -> Vec<KeySlot> {
    match FileStore::read_slots(path).expect("slots") {
        StoreSlots::Slotted(table) => table.slots().to_vec(),
        other => panic!("not a slotted store: {other:?}"),
    }
}

fn slot_of(path: &Path, kind: SlotKind) -> KeySlot {
    slots(path)
        .into_iter()
        .find(|slot| slot.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} slot"))
}

/// The AWS variables of moto's KMS for the CLI, as the user allowed everything.
fn moto_vars(env: &ItestEnv) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_KMS", env.moto_endpoint.clone()),
        ("AWS_REGION", env.aws_region.clone()),
        ("AWS_ACCESS_KEY_ID", env.moto_access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", env.moto_secret_access_key.clone()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_kms_store_opens_through_kms_or_its_recovery_passphrase() {
    let env = ItestEnv::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("kms.enc");
    let alias = var(&env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS");
    let kms_key = format!("aws-kms:{alias}");
    let owned = moto_vars(&env);
    let mut vars = borrowed(&owned);
    vars.push(("STRONGROOM_PASSPHRASE", "correct horse battery"));

    ok(
        &store,
        &vars,
        &["init", "--key", &kms_key, "--key", "passphrase"],
        None,
    );
    let listed: Value = serde_json::from_str(&ok(
        &store,
        &vars,
        &["key", "list", "--output", "json"],
        None,
    ))
    .expect("json");
    assert_eq!(listed["format"], 2);
    assert_eq!(listed["slots"][0]["kind"], "aws-kms");
    assert_eq!(listed["slots"][0]["key_id"], alias);
    assert_eq!(listed["slots"][1]["kind"], "passphrase");

    // Through KMS alone: no passphrase in the environment.
    let kms_only: Vec<(&str, &str)> = borrowed(&owned)
        .into_iter()
        .chain([("STRONGROOM_KEY", kms_key.as_str())])
        .collect();
    ok(&store, &kms_only, &["put", "app/db"], Some("s3cret"));
    assert_eq!(ok(&store, &kms_only, &["get", "app/db"], None), "s3cret");

    // KMS unreachable: the passphrase slot, named second, opens the store.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let fallback_keys = format!("{kms_key},passphrase");
    let unreachable: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL_KMS", closed.as_str()),
        ("AWS_REGION", env.aws_region.as_str()),
        ("AWS_ACCESS_KEY_ID", env.moto_access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", env.moto_secret_access_key.as_str()),
        ("STRONGROOM_KEY", fallback_keys.as_str()),
        ("STRONGROOM_PASSPHRASE", "correct horse battery"),
    ];
    assert_eq!(ok(&store, &unreachable, &["get", "app/db"], None), "s3cret");
    // Without the passphrase, KMS being down is what the caller hears.
    let down = run(&store, &unreachable[..5], &["get", "app/db"], None);
    assert!(!down.status.success());

    // A user without kms:Decrypt is refused, and the store is unchanged.
    let before = std::fs::read(&store).expect("read");
    let denied = run(
        &store,
        &[
            ("AWS_ENDPOINT_URL_KMS", env.moto_endpoint.as_str()),
            ("AWS_REGION", env.aws_region.as_str()),
            (
                "AWS_ACCESS_KEY_ID",
                var(&env, "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_ACCESS_KEY_ID"),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                var(
                    &env,
                    "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_SECRET_ACCESS_KEY",
                ),
            ),
            ("STRONGROOM_KEY", kms_key.as_str()),
        ],
        &["put", "app/db"],
        Some("overwritten"),
    );
    failed(&denied, AUTH, "no kms:Decrypt");
    assert_eq!(std::fs::read(&store).expect("read"), before);

    // The KMS slot is an ordinary KMS ciphertext: boto3 opens it with the documented
    // context, and the bytes it returns open the store.
    let StoreSlots::Slotted(table) = FileStore::read_slots(&store).expect("slots") else {
        panic!("slotted");
    };
    let context = python_context(&key_context(&table.store_id()));
    let wrapped = hex(slot_of(&store, SlotKind::AwsKms).wrapped());
    let plaintext = boto3(
        &env,
        &format!(
            "r = c.decrypt(CiphertextBlob=bytes.fromhex('{wrapped}'), EncryptionContext={context})\n\
             sys.stdout.write(r['Plaintext'].hex())"
        ),
    );
    let data_key = DataKey::from_bytes(&unhex(&plaintext)).expect("32 bytes");
    let opened = FileStore::open_with_data_key(&store, data_key).expect("opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let secret = runtime
        .block_on(strongroom_core::SecretStore::get(
            &opened,
            &strongroom_core::SecretName::new("app/db").expect("name"),
        ))
        .expect("get");
    assert_eq!(secret.value.expose(), b"s3cret");
}

#[test]
fn a_kms_slot_moved_from_another_store_does_not_open() {
    let env = ItestEnv::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (dir.path().join("a.enc"), dir.path().join("b.enc"));
    let kms_key = format!("aws-kms:{}", var(&env, "STRONGROOM_ITEST_MOTO_KMS_ALIAS"));
    let owned = moto_vars(&env);
    let mut vars = borrowed(&owned);
    vars.push(("STRONGROOM_PASSPHRASE", "pw"));
    for store in [&first, &second] {
        ok(
            store,
            &vars,
            &["init", "--key", &kms_key, "--key", "passphrase"],
            None,
        );
    }
    // Replace the first store's KMS slot by the second's (same KMS key, other store id).
    let foreign = slot_of(&second, SlotKind::AwsKms);
    let own = slot_of(&first, SlotKind::AwsKms);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = FileStore::open(&first, strongroom_envelope::Passphrase::new("pw"))
            .expect("open with the passphrase");
        store.replace_slot(&own, foreign).await.expect("replace");
    });
    let kms_only: Vec<(&str, &str)> = borrowed(&owned)
        .into_iter()
        .chain([("STRONGROOM_KEY", kms_key.as_str())])
        .collect();
    let out = run(&first, &kms_only, &["ls"], None);
    failed(&out, DECRYPT, "another store's slot");
}

#[tokio::test]
async fn a_transit_store_opens_with_one_decrypt_and_rekeys_after_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, root, audit) = agent::audited_dev_server(dir.path()).await;
    let vault = |method, path: String, body: Option<Value>| {
        let (addr, root) = (server.addr.clone(), root.clone());
        async move {
            let reply = raw::vault(&addr, Some(&root), None, method, &path, body.as_ref()).await;
            assert!(reply.status.is_success(), "{path}: {}", reply.body);
            reply
        }
    };
    vault(
        Method::POST,
        "sys/mounts/transit".into(),
        Some(json!({"type": "transit"})),
    )
    .await;
    let name = raw::unique("slots");
    vault(
        Method::POST,
        format!("transit/keys/{name}"),
        Some(json!({"derived": true})),
    )
    .await;

    let store = dir.path().join("transit.enc");
    let transit_key = format!("vault-transit:{name}");
    let vars = [
        ("VAULT_ADDR", server.addr.as_str()),
        ("VAULT_TOKEN", root.as_str()),
        ("STRONGROOM_PASSPHRASE", "pw"),
    ];
    let transit_only = [
        ("VAULT_ADDR", server.addr.as_str()),
        ("VAULT_TOKEN", root.as_str()),
        ("STRONGROOM_KEY", transit_key.as_str()),
    ];
    ok(
        &store,
        &vars,
        &["init", "--key", &transit_key, "--key", "passphrase"],
        None,
    );
    for n in 0..5 {
        ok(
            &store,
            &transit_only,
            &["put", &format!("app/k{n}")],
            Some("v"),
        );
    }
    // One process, five reads: one transit/decrypt.
    let before = transit_decrypts(&audit, &name);
    let exec: Vec<String> = (0..5)
        .flat_map(|n| ["--env".to_owned(), format!("K{n}=app/k{n}")])
        .collect();
    let mut args: Vec<&str> = vec!["exec"];
    args.extend(exec.iter().map(String::as_str));
    args.extend(["--", "sh", "-c", "test \"$K0$K1$K2$K3$K4\" = vvvvv"]);
    let mut with_path = transit_only.to_vec();
    with_path.push(("PATH", "/usr/bin:/bin"));
    ok(&store, &with_path, &args, None);
    assert_eq!(
        transit_decrypts(&audit, &name) - before,
        1,
        "one decrypt opens the store for all its reads"
    );

    // Rotate the Transit key, then re-wrap the slot inside Vault.
    let data_key_before = data_key_via_passphrase(&store).await;
    vault(Method::POST, format!("transit/keys/{name}/rotate"), None).await;
    let old = slot_of(&store, SlotKind::VaultTransit);
    assert_eq!(
        TransitKeyProvider::wrapped_key_version(old.wrapped()),
        Some(1)
    );
    ok(
        &store,
        &transit_only,
        &["rekey", "--slot", &transit_key],
        None,
    );
    let new = slot_of(&store, SlotKind::VaultTransit);
    assert_eq!(
        TransitKeyProvider::wrapped_key_version(new.wrapped()),
        Some(2)
    );
    assert_eq!(data_key_via_passphrase(&store).await, data_key_before);
    assert_eq!(ok(&store, &transit_only, &["get", "app/k3"], None), "v");
    drop(server);
}

/// The store's data key, opened through its passphrase slot.
async fn data_key_via_passphrase(store: &Path) -> Vec<u8> {
    let opened = FileStore::open(store, strongroom_envelope::Passphrase::new("pw")).expect("open");
    let (_, key) = opened.data_key().await.expect("data key");
    key.expose_bytes().to_vec()
}

/// Answered `transit/decrypt/{key}` requests in OpenBao's audit log.
fn transit_decrypts(audit: &Path, key: &str) -> usize {
    let path = format!("transit/decrypt/{key}");
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["type"] == "response" && entry["request"]["path"] == path.as_str())
        .count()
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.trim().len() / 2)
        .map(|i| u8::from_str_radix(&text.trim()[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
