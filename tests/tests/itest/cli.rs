//! The `strongroom` binary against the real servers, the way an operator would point it at
//! a Vault: the same commands as on the local store, configured by VAULT_* variables.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use strongroom_itests::ItestEnv;

use crate::raw;

/// The CLI binary `cargo xtask itest` built before the suites started (a test that ran
/// `cargo build` itself would be a second cargo writing the target folder under the first).
pub(crate) fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = PathBuf::from(std::env::var_os(CLI_VAR).unwrap_or_else(|| {
            panic!(
                "{CLI_VAR} is unset: run the suites with `cargo xtask itest`, which builds the CLI"
            )
        }));
        assert!(
            path.is_file(),
            "{CLI_VAR} names {}, which is not a file",
            path.display()
        );
        path
    })
}

/// Where `cargo xtask itest` puts the path of the `strongroom` binary it built.
const CLI_VAR: &str = "STRONGROOM_ITEST_CLI";

fn vault_cli(env: &ItestEnv, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .args(["--backend", "vault"])
        .args(args)
        .env_clear()
        .env("VAULT_ADDR", &env.vault_addr)
        .env("VAULT_TOKEN", &env.vault_token)
        .env("VAULT_KV_MOUNT", &env.vault_kv_mount)
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
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(env: &ItestEnv, args: &[&str]) -> String {
    let out = vault_cli(env, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_reads_writes_and_versions_secrets_in_vault() {
    let env = ItestEnv::load();
    let prefix = raw::unique("cli");
    let key = format!("{prefix}/db/password");

    let put = vault_cli(&env, &["put", &key], Some("from-stdin\n"));
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(String::from_utf8(put.stdout).unwrap(), "1\n");
    assert_eq!(ok(&env, &["put", &key, "--value", "second"]), "2\n");
    assert_eq!(ok(&env, &["get", &key]), "second");
    assert_eq!(ok(&env, &["get", &key, "--version", "1"]), "from-stdin");
    assert_eq!(ok(&env, &["ls", &format!("{prefix}/")]), format!("{key}\n"));

    let versions: serde_json::Value =
        serde_json::from_str(&ok(&env, &["versions", &key, "--output", "json"])).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);

    let stale = vault_cli(
        &env,
        &["put", &key, "--value", "x", "--if-version", "1"],
        None,
    );
    assert_eq!(
        stale.status.code(),
        Some(6),
        "a stale check-and-set is a conflict"
    );

    ok(&env, &["rm", &key]);
    assert_eq!(vault_cli(&env, &["get", &key], None).status.code(), Some(3));
    ok(&env, &["restore", &key]);
    assert_eq!(ok(&env, &["get", &key]), "second");
    ok(&env, &["rm", &key, "--purge"]);
    assert_eq!(vault_cli(&env, &["get", &key], None).status.code(), Some(3));
}

#[test]
fn the_cli_says_what_is_missing_and_never_prints_the_token() {
    let env = ItestEnv::load();
    let out = Command::new(binary())
        .args(["--backend", "vault", "get", "x"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VAULT_ADDR"));

    let denied = Command::new(binary())
        .args(["--backend", "vault", "get", "x"])
        .env_clear()
        .env("VAULT_ADDR", &env.vault_addr)
        .env("VAULT_TOKEN", "s.not-a-real-token-42")
        .output()
        .unwrap();
    assert_eq!(
        denied.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(!String::from_utf8_lossy(&denied.stderr).contains("not-a-real-token-42"));
}

fn aws_cli(env: &ItestEnv, prefix: &str, args: &[&str]) -> Output {
    Command::new(binary())
        .args(["--backend", "aws"])
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &env.aws_endpoint)
        .env("AWS_REGION", &env.aws_region)
        .env("AWS_ACCESS_KEY_ID", &env.aws_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &env.aws_secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("STRONGROOM_AWS_PREFIX", prefix)
        .stdin(Stdio::null())
        .output()
        .expect("start strongroom")
}

#[test]
fn the_cli_reads_and_writes_secrets_manager() {
    let env = ItestEnv::load();
    let prefix = format!("{}/", raw::unique("cli-aws"));
    let run = |args: &[&str]| {
        let out = aws_cli(&env, &prefix, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run(&["put", "db/password", "--value", "one"]);
    run(&["put", "db/password", "--value", "two"]);
    assert_eq!(run(&["get", "db/password"]), "two");
    assert_eq!(
        run(&["get", "db/password", "--version", first.trim()]),
        "one"
    );
    assert_eq!(run(&["ls"]), "db/password\n");
    let versions: serde_json::Value =
        serde_json::from_str(&run(&["versions", "db/password", "--output", "json"])).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    run(&["rm", "db/password"]);
    assert_eq!(
        aws_cli(&env, &prefix, &["get", "db/password"])
            .status
            .code(),
        Some(3)
    );
    run(&["restore", "db/password"]);
    assert_eq!(run(&["get", "db/password"]), "two");
    run(&["rm", "db/password", "--purge"]);
}
