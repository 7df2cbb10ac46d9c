//! `strongroom exec` end to end: the built binary over a local encrypted store, running real
//! child processes (`sh`). Values are only ever compared, never printed: a failing assertion
//! shows strongroom's stderr, which must not hold them either.

mod support;

use std::time::Duration;

use support::{Home, kill, lines, stderr, wait_exit, wait_for_line, wait_until};

const PASSWORD: &str = "hunter2-exec";

fn home_with_secrets() -> Home {
    let home = Home::new();
    home.put("app/db/password", PASSWORD.as_bytes());
    home.put("app/api-key", b"k-123");
    home.put(
        "svc/db",
        br#"{"user":"svc","password":"p@ss word","port":5432}"#,
    );
    home.put("other/token", b"not-for-app");
    home
}

fn no_value_in(text: &str) {
    for value in [PASSWORD, "k-123", "p@ss word", "not-for-app"] {
        assert!(!text.contains(value), "a secret value leaked: {text}");
    }
}

#[test]
fn the_command_gets_the_secret_in_its_environment() {
    let home = home_with_secrets();
    let out = home.run(&[
        "exec",
        "--env",
        "DB_PASSWORD=app/db/password",
        "--",
        "sh",
        "-c",
        r#"printf %s "$DB_PASSWORD""#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out.stdout == PASSWORD.as_bytes(),
        "the child saw another value"
    );
    no_value_in(&stderr(&out));
}

#[test]
fn json_fields_become_variables() {
    let home = home_with_secrets();
    let out = home.run(&[
        "exec",
        "--env",
        "USER=svc/db#user",
        "--env",
        "PW=svc/db#password",
        "--env",
        "PORT=svc/db#port",
        "--",
        "sh",
        "-c",
        r#"printf '%s|%s|%s' "$USER" "$PW" "$PORT""#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out.stdout == b"svc|p@ss word|5432",
        "the child saw other values"
    );
}

#[test]
fn the_master_key_and_passphrase_variables_are_not_passed_on() {
    let home = home_with_secrets();
    let out = home
        .command(&[
            "exec",
            "--env",
            "X=app/api-key",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s' "${STRONGROOM_PASSPHRASE-unset}" "${STRONGROOM_MASTER_KEY-unset}" "${KEPT-unset}""#,
        ])
        .env("STRONGROOM_PASSPHRASE", "not-this-store")
        .env("KEPT", "kept")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "unset|unset|kept");
}

#[test]
fn exit_codes_are_the_commands() {
    let home = home_with_secrets();
    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ] {
        let out = home.run(&["exec", "--env", "X=app/api-key", "--", "sh", "-c", script]);
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
    }
}

#[test]
fn sigterm_reaches_the_command_and_its_exit_code_comes_back() {
    let home = home_with_secrets();
    for (signal, code) in [("TERM", 42), ("HUP", 43), ("USR1", 44)] {
        let script =
            format!("trap 'exit {code}' {signal}; echo ready; while :; do sleep 0.05; done");
        let mut child = home.spawn(&["exec", "--env", "X=app/api-key", "--", "sh", "-c", &script]);
        let _stdout = wait_for_line(&mut child, "ready");
        kill(child.id(), signal);
        let status = wait_exit(&mut child, Duration::from_secs(10));
        assert_eq!(status.code(), Some(code), "{signal}");
    }
}

#[test]
fn a_folder_becomes_upper_snake_variables() {
    let home = home_with_secrets();
    let out = home.run(&[
        "exec",
        "--env-prefix",
        "app",
        "--",
        "sh",
        "-c",
        r#"printf '%s|%s|%s' "$DB_PASSWORD" "$API_KEY" "${TOKEN-unset}""#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = format!("{PASSWORD}|k-123|unset");
    assert!(
        out.stdout == expected.as_bytes(),
        "the child saw other values"
    );

    // An explicit --env of the same variable wins over the folder's.
    let out = home.run(&[
        "exec",
        "--env-prefix",
        "app/",
        "--env",
        "API_KEY=other/token",
        "--",
        "sh",
        "-c",
        r#"printf %s "$API_KEY""#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout == b"not-for-app", "--env did not win");
}

#[test]
fn refusals_start_nothing_and_say_why() {
    let home = home_with_secrets();
    home.put("clash/db-url", b"one");
    home.put("clash/db_url", b"two");
    home.put("badname/1st", b"v");
    home.put("bin/blob", &[0xff, 0xfe, 0x00]);
    home.put("nul/v", b"a\0b");
    let marker = home.path("ran");
    let touch = format!("touch {}", marker.display());
    // (arguments before `--`, exit code, what stderr says)
    let table: &[(&[&str], i32, &str)] = &[
        (
            &["--env-prefix", "clash"],
            2,
            "would both be the variable DB_URL",
        ),
        (&["--env-prefix", "badname/"], 2, "not a valid name"),
        (&["--env-prefix", "/"], 2, "needs a folder"),
        (&["--env", "B=bin/blob"], 2, "bin/blob is not UTF-8"),
        (&["--env", "N=nul/v"], 2, "nul/v holds a NUL byte"),
        (&["--env", "M=app/missing"], 3, "app/missing"),
        (&["--env", "F=svc/db#nope"], 2, "nope"),
        (&["--env", "F=app/api-key#field"], 2, "app/api-key"),
        (&["--env", "1X=app/api-key"], 2, "not a valid variable name"),
        (&["--env", "X=app//api-key"], 2, "invalid value"),
        (
            &["--env", "X=app/api-key", "--env", "X=app/db/password"],
            2,
            "given twice",
        ),
    ];
    for (options, code, says) in table {
        let mut args = vec!["exec"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--", "sh", "-c", &touch]);
        let out = home.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{options:?}: {err}");
        assert!(err.contains(says), "{options:?}: {err}");
        assert!(!marker.exists(), "{options:?}: the command ran");
        no_value_in(&err);
        assert!(out.stdout.is_empty(), "{options:?}");
    }
    // No command at all is a usage error.
    let out = home.run(&["exec", "--env", "X=app/api-key"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A command that cannot start: 127 not found, 126 not executable, as shells say.
    let not_executable = home.path("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    for (command, code) in [
        ("/nonexistent/cmd", 127),
        ("no-such-command-anywhere", 127),
        (not_executable.to_str().unwrap(), 126),
    ] {
        let out = home.run(&["exec", "--env", "X=app/api-key", "--", command]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{command}: {err}");
        assert!(err.contains(command), "{err}");
        no_value_in(&err);
    }
}

#[test]
fn restart_on_change_restarts_with_the_new_value() {
    let home = home_with_secrets();
    let seen = home.path("seen");
    // Each start appends what it saw to a file in the scratch directory (never stdout).
    let script = format!(
        r#"printf '%s\n' "$V" >> {}; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
        seen.display()
    );
    let mut child = home.spawn(&[
        "exec",
        "--restart-on-change",
        "--refresh-interval",
        "300ms",
        "--env",
        "V=app/api-key",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    wait_until(Duration::from_secs(10), "the first start", || {
        lines(&seen).len() == 1
    });
    assert_eq!(lines(&seen), ["k-123"]);

    // Another process writes a new version.
    home.put("app/api-key", b"k-456");
    let took = wait_until(Duration::from_secs(10), "the restart", || {
        lines(&seen).len() == 2
    });
    assert_eq!(lines(&seen), ["k-123", "k-456"]);
    assert!(took < Duration::from_secs(3), "the restart took {took:?}");

    // A secret not used by the command changes: no restart.
    home.put("other/token", b"changed");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(lines(&seen).len(), 2);

    // The secret is deleted: the new environment cannot be read, so the command keeps
    // running with the old one, and stderr says why.
    home.ok(&["rm", "app/api-key"]);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(lines(&seen).len(), 2);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command was stopped"
    );

    // It comes back: the command restarts with the new value.
    home.put("app/api-key", b"k-789");
    wait_until(
        Duration::from_secs(10),
        "the restart after the return",
        || lines(&seen).len() == 3,
    );
    assert_eq!(lines(&seen), ["k-123", "k-456", "k-789"]);

    kill(child.id(), "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("restarting the command"), "{err}");
    assert!(
        err.contains("keeps its old one") && err.contains("app/api-key"),
        "{err}"
    );
    for value in ["k-123", "k-456", "k-789"] {
        assert!(!err.contains(value), "{err}");
    }
}

#[test]
fn restart_on_change_sees_a_secret_added_to_a_folder() {
    let home = home_with_secrets();
    let seen = home.path("seen");
    let script = format!(
        r#"printf '%s\n' "${{NEW_ONE-unset}}" >> {}; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
        seen.display()
    );
    let mut child = home.spawn(&[
        "exec",
        "--restart-on-change",
        "--refresh-interval",
        "300ms",
        "--restart-grace",
        "2s",
        "--env-prefix",
        "app/",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    wait_until(Duration::from_secs(10), "the first start", || {
        lines(&seen).len() == 1
    });
    home.put("app/new-one", b"fresh");
    wait_until(Duration::from_secs(10), "the restart", || {
        lines(&seen).len() == 2
    });
    assert_eq!(lines(&seen), ["unset", "fresh"]);
    kill(child.id(), "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[test]
fn a_command_that_ignores_term_is_killed_after_the_grace_period() {
    let home = home_with_secrets();
    let seen = home.path("seen");
    let script = format!(
        r#"printf '%s\n' "$V" >> {}; trap '' TERM; while :; do sleep 0.05; done"#,
        seen.display()
    );
    let mut child = home.spawn(&[
        "exec",
        "--restart-on-change",
        "--refresh-interval",
        "200ms",
        "--restart-grace",
        "500ms",
        "--env",
        "V=app/api-key",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    wait_until(Duration::from_secs(10), "the first start", || {
        lines(&seen).len() == 1
    });
    home.put("app/api-key", b"k-456");
    let took = wait_until(Duration::from_secs(10), "the restart", || {
        lines(&seen).len() == 2
    });
    // The restart may begin a little before `put` returns: hence 400 ms, not 500.
    assert!(
        took >= Duration::from_millis(400),
        "killed before the grace period: {took:?}"
    );
    assert_eq!(lines(&seen), ["k-123", "k-456"]);
    // INT is passed on too; the command dies of it, and strongroom reports 128 + 2.
    kill(child.id(), "INT");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
}

#[test]
fn a_config_file_s_backend_and_audit_file_are_used() {
    let home = home_with_secrets();
    let audit = home.path("audit.jsonl");
    let config = home.path("strongroom.toml");
    std::fs::write(
        &config,
        format!(
            "[backend]\nkind = \"local\"\npath = \"{}\"\n\n[audit]\nfile = \"{}\"\n",
            home.path("secrets.enc").display(),
            audit.display()
        ),
    )
    .unwrap();
    let out = home
        .command(&[
            "--config",
            config.to_str().unwrap(),
            "exec",
            "--env",
            "DB_PASSWORD=app/db/password",
            "--",
            "sh",
            "-c",
            r#"test -n "$DB_PASSWORD""#,
        ])
        .env_remove("STRONGROOM_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = lines(&audit);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"app/db/password\"") && l.contains("\"get\"")),
        "no audit line for the read: {lines:?}"
    );
    no_value_in(&lines.join("\n"));
}
