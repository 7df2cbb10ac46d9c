//! The `strongroom` binary end to end, as a user or a script drives it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch home: the store, its key, and an environment cleared of the caller's settings.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("secrets.enc")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("STRONGROOM_STORE", self.store())
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn init(&self) {
        self.ok(&["init"]);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn init_put_get_round_trip() {
    let home = Home::new();
    let created = home.ok(&["init"]);
    assert!(created.contains("secrets.enc"), "{created}");
    let key_file = PathBuf::from(format!("{}.key", home.store().display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let put = home.run_with_stdin(&["put", "app/db/password"], b"s3cret\n");
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(String::from_utf8(put.stdout).unwrap(), "1\n");
    // Piped output is the value exactly: the newline echo added is gone and none is added.
    assert_eq!(home.ok(&["get", "app/db/password"]), "s3cret");
}

#[test]
fn global_options_work_before_and_after_the_command() {
    let home = Home::new();
    let elsewhere = home.dir.path().join("other.enc");
    let elsewhere = elsewhere.to_str().unwrap();
    home.ok(&["--store", elsewhere, "init"]);
    home.ok(&["put", "--store", elsewhere, "k", "--value", "v"]);
    let listed = home.ok(&["--output", "json", "ls", "--store", elsewhere]);
    assert_eq!(json(&listed), serde_json::json!(["k"]));
    assert!(
        !home.store().exists(),
        "STRONGROOM_STORE was overridden by --store"
    );
}

#[test]
fn the_default_store_lives_in_the_data_directory() {
    let home = Home::new();
    let out = home
        .command(&["init"])
        .env_remove("STRONGROOM_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.dir.path().join("data/strongroom/secrets.enc").exists());
    assert!(
        home.dir
            .path()
            .join("data/strongroom/secrets.enc.key")
            .exists()
    );
}

#[test]
fn versions_rm_restore_and_json_output() {
    let home = Home::new();
    home.init();
    home.ok(&[
        "put",
        "k",
        "--value",
        "one",
        "--description",
        "the k",
        "--tag",
        "team=core",
    ]);
    home.ok(&["put", "k", "--value", "two"]);
    assert_eq!(home.ok(&["get", "k", "--version", "1"]), "one");

    let doc = json(&home.ok(&["get", "k", "--output", "json"]));
    assert_eq!(doc["value"], "two");
    assert_eq!(doc["version"], "2");
    assert_eq!(doc["description"], "the k");
    assert_eq!(doc["tags"]["team"], "core");
    assert!(doc["created"].as_str().unwrap().ends_with('Z'));

    let versions = json(&home.ok(&["versions", "k", "--output", "json"]));
    let summary: Vec<_> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_owned(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("1".to_owned(), false), ("2".to_owned(), true)]);
    assert!(home.ok(&["versions", "k"]).contains("current"));

    home.ok(&["rm", "k"]);
    let gone = home.run(&["get", "k"]);
    assert_eq!(gone.status.code(), Some(3));
    assert!(stderr(&gone).contains("deleted"), "{}", stderr(&gone));
    home.ok(&["restore", "k"]);
    assert_eq!(home.ok(&["get", "k"]), "two");
    home.ok(&["rm", "k", "--purge"]);
    assert_eq!(home.run(&["restore", "k"]).status.code(), Some(3));
}

#[test]
fn binary_values_and_files() {
    let home = Home::new();
    home.init();
    let file = home.dir.path().join("cert.bin");
    std::fs::write(&file, [0u8, 159, 146, 150, b'\n']).unwrap();
    home.ok(&["put", "bin", "--file", file.to_str().unwrap()]);
    let out = home.run(&["get", "bin"]);
    assert_eq!(
        out.stdout,
        [0u8, 159, 146, 150, b'\n'],
        "files are stored byte for byte"
    );
    let doc = json(&home.ok(&["get", "bin", "--output", "json"]));
    assert_eq!(doc["value_base64"], "AJ+Slgo=");
    assert!(doc.get("value").is_none());

    let kept = home.run_with_stdin(&["put", "nl", "--keep-newline"], b"v\n");
    assert!(kept.status.success());
    assert_eq!(home.ok(&["get", "nl"]), "v\n");
}

#[test]
fn json_fields_of_a_value() {
    let home = Home::new();
    home.init();
    home.ok(&["put", "db", "--value", r#"{"user":"app","port":5432}"#]);
    assert_eq!(home.ok(&["get", "db", "--json-field", "user"]), "app");
    assert_eq!(home.ok(&["get", "db", "--json-field", "port"]), "5432");
    let missing = home.run(&["get", "db", "--json-field", "password"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no field"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn rotate_writes_a_random_value_and_prints_only_the_version() {
    let home = Home::new();
    home.init();
    assert_eq!(home.ok(&["rotate", "api", "--bytes", "48"]), "1\n");
    assert_eq!(home.ok(&["rotate", "api"]), "2\n");
    let first = home.ok(&["get", "api", "--version", "1"]);
    let second = home.ok(&["get", "api"]);
    assert_eq!(first.len(), 64, "48 bytes in base64");
    assert_eq!(second.len(), 44, "32 bytes in base64");
    assert_ne!(first, second);
}

#[test]
fn conditional_writes_report_conflicts() {
    let home = Home::new();
    home.init();
    home.ok(&["put", "k", "--value", "a", "--if-absent"]);
    let again = home.run(&["put", "k", "--value", "b", "--if-absent"]);
    assert_eq!(again.status.code(), Some(6), "{}", stderr(&again));
    home.ok(&["put", "k", "--value", "b", "--if-version", "1"]);
    let stale = home.run(&["put", "k", "--value", "c", "--if-version", "1"]);
    assert_eq!(stale.status.code(), Some(6));
    assert_eq!(home.ok(&["get", "k"]), "b");
}

#[test]
fn exit_codes_and_one_line_errors() {
    let home = Home::new();
    // No store yet: configuration.
    let missing = home.run(&["get", "k"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    home.init();
    let table: &[(&[&str], i32, &str)] = &[
        (&["get", "nope"], 3, "not found"),
        (&["get", "/bad/key"], 2, "invalid secret key"),
        (&["get", "a//b"], 2, "invalid secret key"),
        (&["frobnicate"], 2, "unrecognized subcommand"),
        (&["init"], 2, "already exists"),
        (
            &["--backend", "env", "put", "k", "--value", "v"],
            8,
            "does not support",
        ),
    ];
    for (args, code, message) in table {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        if *code != 2 || !err.contains("Usage") {
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("strongroom: error: "), "{err}");
        }
    }
}

#[test]
fn a_wrong_key_is_a_decrypt_error_that_shows_no_key() {
    let home = Home::new();
    home.init();
    home.ok(&["put", "k", "--value", "v"]);
    let other = Home::new();
    other.init();
    let other_key = std::fs::read_to_string(format!("{}.key", other.store().display())).unwrap();
    let out = home
        .command(&["get", "k"])
        .env("STRONGROOM_MASTER_KEY", other_key.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(!stderr(&out).contains(other_key.trim()));
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = Home::new();
    home.init();
    let key_file = format!("{}.key", home.store().display());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = home.run(&["ls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn passphrase_stores_and_rekey() {
    let home = Home::new();
    let with = |args: &[&str], var: &str, value: &str| {
        let out = home.command(args).env(var, value).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    with(
        &["init", "--passphrase"],
        "STRONGROOM_PASSPHRASE",
        "first phrase",
    );
    assert!(!Path::new(&format!("{}.key", home.store().display())).exists());
    with(
        &["put", "k", "--value", "v"],
        "STRONGROOM_PASSPHRASE",
        "first phrase",
    );
    let wrong = home
        .command(&["get", "k"])
        .env("STRONGROOM_PASSPHRASE", "not it")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(7));
    // No passphrase and no terminal: a clear configuration error, not a hang.
    let none = home.run(&["get", "k"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("STRONGROOM_PASSPHRASE"),
        "{}",
        stderr(&none)
    );

    // From the passphrase to a new key file, then from that key file to another.
    with(&["rekey"], "STRONGROOM_PASSPHRASE", "first phrase");
    assert_eq!(home.ok(&["get", "k"]), "v");
    let key_file = PathBuf::from(format!("{}.key", home.store().display()));
    let before = std::fs::read(&key_file).unwrap();
    home.ok(&["rekey"]);
    assert_ne!(
        std::fs::read(&key_file).unwrap(),
        before,
        "the key file was replaced"
    );
    assert_eq!(home.ok(&["get", "k"]), "v");
    assert!(!Path::new(&format!("{}.new", key_file.display())).exists());
}

#[test]
fn env_and_dir_backends_read() {
    let home = Home::new();
    let out = home
        .command(&["--backend", "env", "--store", "MYAPP", "get", "db/password"])
        .env("MYAPP_DB_PASSWORD", "from-env")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-env",
        "{}",
        stderr(&out)
    );

    let dir = home.dir.path().join("volume");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/token"), "t").unwrap();
    let dir = dir.to_str().unwrap();
    assert_eq!(
        home.ok(&["--backend", "dir", "--store", dir, "ls"]),
        "app/token\n"
    );
    assert_eq!(
        home.ok(&["--backend", "dir", "--store", dir, "get", "app/token"]),
        "t"
    );
}

#[test]
fn migrate_copies_between_stores_with_a_dry_run_first() {
    let source = Home::new();
    source.init();
    source.ok(&["put", "app/a", "--value", "a1"]);
    source.ok(&["put", "app/a", "--value", "a2"]);
    source.ok(&["put", "app/b", "--value", "b1"]);
    source.ok(&["put", "other/c", "--value", "c1"]);
    let target = Home::new();
    target.init();
    let from = format!("local:{}", source.store().display());
    let to = format!("local:{}", target.store().display());

    let dry = json(&source.ok(&[
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--prefix",
        "app/",
        "--dry-run",
        "--output",
        "json",
    ]));
    assert_eq!(dry["copied"], serde_json::json!(["app/a", "app/b"]));
    assert_eq!(dry["versions_written"], 0);
    assert!(target.ok(&["ls"]).is_empty(), "a dry run writes nothing");

    let out = source.run(&["migrate", "--from", &from, "--to", &to, "--all-versions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("copied 3 secret(s) (4 version(s) written)")
    );
    // Without a terminal, one plain line per key on stderr.
    assert_eq!(
        stderr(&out)
            .lines()
            .filter(|l| l.contains("copied"))
            .count(),
        3
    );
    assert_eq!(target.ok(&["get", "app/a"]), "a2");
    assert_eq!(target.ok(&["get", "app/a", "--version", "1"]), "a1");
    assert_eq!(target.ok(&["get", "other/c"]), "c1");

    // Running it again finds everything in place.
    let again = json(&source.ok(&["migrate", "--from", &from, "--to", &to, "--output", "json"]));
    assert_eq!(again["skipped"].as_array().unwrap().len(), 3);

    let bad = source.run(&["migrate", "--from", "ftp:x", "--to", &to]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_prefix_scopes_every_command_to_its_folder() {
    let home = Home::new();
    home.init();
    home.ok(&["put", "prod/application/key", "--value", "other-app"]);
    for prefix in ["prod/app", "prod/app/", "/prod/app"] {
        home.ok(&["--scope", prefix, "put", "db/password", "--value", "v"]);
    }
    // One separator, never doubled, never glued: prod/app/db/password and nothing else.
    let all = home.ok(&["--output", "json", "ls"]);
    assert_eq!(
        json(&all),
        serde_json::json!(["prod/app/db/password", "prod/application/key"])
    );
    let scoped = home.ok(&["--output", "json", "--scope", "prod/app", "ls"]);
    assert_eq!(json(&scoped), serde_json::json!(["db/password"]));
    // `lication/key` under prod/app is prod/app/lication/key, not the other app's secret.
    let out = home.run(&["--scope", "prod/app", "get", "lication/key"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = home
        .command(&["ls"])
        .env("STRONGROOM_PREFIX", "prod/app")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "db/password\n");
    // `ls PREFIX` filters inside the scope.
    assert_eq!(
        home.ok(&["--scope", "prod", "ls", "app/"]),
        "app/db/password\n"
    );
}

#[test]
fn a_config_file_names_the_store_and_its_unknown_keys_are_refused() {
    let home = Home::new();
    home.init();
    home.ok(&["put", "prod/app/k", "--value", "v"]);
    let config = home.dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        format!(
            "[backend]\nkind = \"local\"\npath = {:?}\nprefix = \"prod/app\"\n",
            home.store().display().to_string()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    assert_eq!(home.ok(&["--config", config, "get", "k"]), "v");

    let bad = home.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[backend]\nkind = \"local\"\npath = \"x\"\nprefx = \"a\"\n",
    )
    .unwrap();
    let out = home.run(&["--config", bad.to_str().unwrap(), "ls"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("prefx"), "{}", stderr(&out));
}

#[test]
fn plain_http_to_a_remote_vault_names_the_switch() {
    let home = Home::new();
    let out = home
        .command(&["--backend", "vault", "get", "app/x"])
        .env("VAULT_ADDR", "http://vault.default.svc:8200")
        .env("VAULT_TOKEN", "t")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("--vault-allow-plain-http"), "{err}");
}
