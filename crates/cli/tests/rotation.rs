//! `strongroom rotate --if-older-than` and `strongroom rotation status` end to end, over a
//! local store in a temporary directory: due by the store's age, once across several
//! processes racing, and the policies of a configuration file or of `STRONGROOM_ROTATION`
//! (ages and cron schedules) with their next due times.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        home.ok(&["init"]);
        home
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
            .env("STRONGROOM_STORE", self.store())
            .stdin(Stdio::null());
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rotate_if_older_than_follows_the_stored_age() {
    let home = Home::new();
    let first = home.json(&["rotate", "--if-older-than", "1h", "api"]);
    assert_eq!(
        first["outcome"], "rotated",
        "a missing key is created: {first}"
    );
    assert_eq!(first["version"], "1");

    let young = home.json(&["rotate", "--if-older-than", "1h", "api"]);
    assert_eq!(young["outcome"], "not-due", "{young}");
    assert_eq!(young["version"], "1");
    assert!(
        young["next_due"].as_str().unwrap().ends_with('Z'),
        "{young}"
    );
    let text = home.ok(&["rotate", "--if-older-than", "3600", "api"]);
    assert!(text.starts_with("1 (not due until "), "{text}");

    std::thread::sleep(Duration::from_millis(1100));
    let old = home.json(&["rotate", "--if-older-than", "1s", "api"]);
    assert_eq!(old["outcome"], "rotated", "{old}");
    assert_eq!(old["version"], "2");
    assert_eq!(home.ok(&["get", "api"]).len(), 44, "32 bytes in base64");

    for bad in ["0", "soon", "-5s"] {
        let out = home
            .command(&["rotate", "--if-older-than", bad, "api"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn processes_racing_on_a_due_key_rotate_it_once() {
    let home = Home::new();
    home.ok(&["put", "shared", "--value", "first"]);
    // A racer starting more than the age after the winner would rotate again: 2 s is far
    // more than six process starts take.
    std::thread::sleep(Duration::from_millis(2100));
    let racers: Vec<_> = (0..6)
        .map(|_| {
            home.command(&[
                "--output",
                "json",
                "rotate",
                "--if-older-than",
                "2s",
                "shared",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        outcomes.push((
            doc["outcome"].as_str().unwrap().to_owned(),
            doc["version"].clone(),
        ));
    }
    let rotated = outcomes.iter().filter(|(o, _)| o == "rotated").count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|(_, v)| v == "2"), "{outcomes:?}");
    let versions = home.json(&["versions", "shared"]);
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
}

#[test]
fn rotation_status_lists_each_policy_and_its_next_due_time() {
    let home = Home::new();
    home.ok(&["put", "app/api-key", "--value", "v"]);
    let config = home.dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[backend]
kind = "local"
path = {store:?}

[[rotation]]
key = "app/api-key"
every = "90d"

[[rotation]]
name = "db-monthly"
key = "app/db/password"
every = "30d"
generator = "password"
length = 20

[[rotation]]
name = "new-year"
key = "app/api-key"
cron = "@yearly"
"#,
            store = home.store()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let status = home.json(&["--config", config, "rotation", "status"]);
    let rows = status["policies"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{status}");
    assert_eq!(rows[0]["name"], "app/api-key");
    assert_eq!(rows[0]["version"], "1");
    assert_eq!(rows[0]["due"], false);
    assert_eq!(rows[0]["every_secs"], 90 * 86_400);
    let created = rows[0]["created"].as_str().unwrap();
    let next_due = rows[0]["next_due"].as_str().unwrap();
    assert!(next_due > created && next_due.ends_with('Z'), "{next_due}");
    assert_eq!(rows[1]["name"], "db-monthly");
    assert_eq!(rows[1]["due"], true, "a missing key is due now");
    // On a cron schedule: due at the first instant after the version was created.
    assert_eq!(rows[2]["cron"], "@yearly", "{status}");
    assert!(rows[2].get("every_secs").is_none(), "{status}");
    assert_eq!(rows[2]["created"], created);
    let year: u32 = created[..4].parse().unwrap();
    assert_eq!(rows[2]["next_due"], format!("{}-01-01T00:00:00Z", year + 1));
    assert_eq!(rows[2]["due"], false);

    let text = home.ok(&["--config", config, "rotation", "status"]);
    assert!(
        text.contains("db-monthly\tapp/db/password\tevery 30days\t-\tdue now"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "new-year\tapp/api-key\tcron @yearly\t1\tdue {}-01-01T00:00:00Z",
            year + 1
        )),
        "{text}"
    );

    std::fs::write(home.dir.path().join("bad.toml"), "[backend]\nkind = \"local\"\npath = \"x\"\n[[rotation]]\nkey = \"k\"\nevery = \"90d\"\ngenerator = \"hex\"\nlength = 3\n").unwrap();
    let bad = home
        .command(&[
            "--config",
            home.dir.path().join("bad.toml").to_str().unwrap(),
            "rotation",
            "status",
        ])
        .output()
        .unwrap();
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        stderr(&bad).contains("alphabet and length belong to"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn rotation_status_reads_the_policies_of_the_environment_without_a_file() {
    let home = Home::new();
    home.ok(&["put", "app/token", "--value", "v"]);
    let status = {
        let out = home
            .command(&["--output", "json", "rotation", "status"])
            .env(
                "STRONGROOM_ROTATION",
                "app/token=cron:0 3 * * 1&generator=hex; app/new=12h&name=twice-daily",
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let rows = status["policies"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{status}");
    assert_eq!(rows[0]["cron"], "0 3 * * 1");
    assert_eq!(rows[0]["due"], false, "{status}");
    let format = time::format_description::well_known::Rfc3339;
    let created =
        time::OffsetDateTime::parse(rows[0]["created"].as_str().unwrap(), &format).unwrap();
    let next = time::OffsetDateTime::parse(rows[0]["next_due"].as_str().unwrap(), &format).unwrap();
    assert_eq!(next.weekday(), time::Weekday::Monday, "{status}");
    assert_eq!((next.hour(), next.minute(), next.second()), (3, 0, 0));
    assert!(
        next > created && next - created <= time::Duration::days(7),
        "the first Monday 03:00 after {created}: {next}"
    );
    assert_eq!(rows[1]["name"], "twice-daily");
    assert_eq!(rows[1]["every_secs"], 12 * 3600);
    assert_eq!(rows[1]["due"], true, "a missing key is due now");

    let bad = home
        .command(&["rotation", "status"])
        .env("STRONGROOM_ROTATION", "app/token=cron:0 3 * * 8")
        .output()
        .unwrap();
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        stderr(&bad)
            .contains(r#"STRONGROOM_ROTATION policy 1 key = "app/token": the cron schedule"#),
        "{}",
        stderr(&bad)
    );
    let none = home.command(&["rotation", "status"]).output().unwrap();
    assert_ne!(none.status.code(), Some(0));
    assert!(
        stderr(&none).contains("STRONGROOM_ROTATION"),
        "{}",
        stderr(&none)
    );
}
