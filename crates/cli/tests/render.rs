//! `strongroom render` end to end: the built binary over a local encrypted store, writing
//! real files. Values are compared, never printed: a failing assertion shows strongroom's
//! stderr, which must not hold them either.

mod support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::time::Duration;

use support::{Home, kill, lines, stderr, wait_exit, wait_until};

const PASSWORD: &str = "hunter2-render";

fn home_with_secrets() -> Home {
    let home = Home::new();
    home.put("app/db/password", PASSWORD.as_bytes());
    home.put(
        "app/db",
        br#"{"user":"svc","password":"p@ss","port":5432,"hosts":["a","b"]}"#,
    );
    home
}

fn template(home: &Home, text: &str) -> String {
    let path = home.path("app.conf.tpl");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn no_value_in(text: &str) {
    for value in [PASSWORD, "p@ss"] {
        assert!(!text.contains(value), "a secret value leaked: {text}");
    }
}

/// The names in the scratch directory but the template's, so a test can tell that no
/// temporary file is left.
fn entries(home: &Home) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "app.conf.tpl")
        .collect();
    names.sort();
    names
}

#[test]
fn renders_values_and_json_fields_into_a_private_file() {
    let home = home_with_secrets();
    let tpl = template(
        &home,
        concat!(
            "password={{ secret(\"app/db/password\") }}\n",
            "user={{ secret(\"app/db\", \"user\") }}\n",
            "port={{ secret(\"app/db\", \"port\") }}\n",
            "{% set db = secret_json(\"app/db\") %}",
            "url=postgres://{{ db.user }}:{{ db.password }}@{{ db.hosts|join(\",\") }}:{{ db.port + 1 }}\n",
            "{{ secret_json(\"app/db\")|tojson }}\n",
        ),
    );
    let out = home.path("app.conf");
    let printed = home.ok(&["render", &tpl, "--out", out.to_str().unwrap()]);
    assert!(printed.contains("wrote"), "{printed}");
    no_value_in(&printed);

    let text = std::fs::read_to_string(&out).unwrap();
    let expected = format!(
        "password={PASSWORD}\nuser=svc\nport=5432\nurl=postgres://svc:p@ss@a,b:5433\n{}\n",
        r#"{"hosts": ["a", "b"], "password": "p@ss", "port": 5432, "user": "svc"}"#
    );
    assert!(text == expected, "the file holds another text");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The same render again leaves the file alone (same inode), and says so.
    let inode = std::fs::metadata(&out).unwrap().ino();
    let again = home.ok(&[
        "render",
        &tpl,
        "--out",
        out.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(again.contains(r#""written":false"#), "{again}");
    assert!(
        again.contains(r#""secrets":["app/db","app/db/password"]"#),
        "{again}"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().ino(), inode);
}

#[test]
fn failures_write_nothing_and_say_why() {
    let home = home_with_secrets();
    let out = home.path("out.conf");
    // (template, exit code, what stderr says)
    let table: &[(&str, i32, &str)] = &[
        ("a={{ secret(\"app/missing\") }}\n", 3, "app/missing"),
        ("a={{ secret(\"app/db\", \"nope\") }}\n", 2, "nope"),
        (
            "a={{ secret(\"app/db/password\", \"f\") }}\n",
            2,
            "app/db/password",
        ),
        ("a={{ secret(\"app//x\") }}\n", 2, "not a secret name"),
        ("a={{ undefined_thing }}\n", 2, "undefined"),
        ("a={% if %}\n", 2, "syntax error"),
        (
            "a={{ secret(\"app/db/password\") - 1 }}\n",
            2,
            "unsupported types",
        ),
        // The engine quotes the operands of a failed division: the value is redacted.
        (
            "a={{ secret_json(\"app/db\").port // 0 }}\n",
            2,
            "unable to calculate [REDACTED] // 0",
        ),
        ("a={{ -secret(\"app/db\", \"user\") }}\n", 2, "template"),
    ];
    let before = entries(&home);
    for (text, code, says) in table {
        let tpl = template(&home, text);
        let run = home.run(&["render", &tpl, "--out", out.to_str().unwrap()]);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(*code), "{text}: {err}");
        assert!(err.contains(says), "{text}: {err}");
        no_value_in(&err);
        assert!(
            !err.contains("svc") && !err.contains("5432"),
            "{text}: {err}"
        );
        assert!(!out.exists(), "{text}: a file was written");
        assert_eq!(entries(&home), before, "{text}: a file was left behind");
    }
    // A template that does not exist.
    let run = home.run(&["render", "/nonexistent.tpl", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(!out.exists());
}

#[test]
fn lookups_that_depend_on_other_secrets_resolve() {
    let home = home_with_secrets();
    home.put("app/which", b"app/db/password");
    let tpl = template(
        &home,
        "{% if secret(\"app/db\", \"user\") == \"svc\" %}{{ secret(secret(\"app/which\")) }}{% endif %}",
    );
    let out = home.path("chained");
    home.ok(&["render", &tpl, "--out", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == PASSWORD.as_bytes());
}

#[test]
fn a_signal_goes_to_the_pid_after_a_write() {
    let home = home_with_secrets();
    let got = home.path("got-hup");
    let mut target = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "trap 'echo hup >> {}' HUP; echo ready; while :; do sleep 0.05; done",
                got.display()
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _stdout = support::wait_for_line(&mut target, "ready");
    let tpl = template(&home, "{{ secret(\"app/db\", \"user\") }}\n");
    let out = home.path("signalled.conf");
    let pid = target.id().to_string();
    let args = [
        "render",
        &tpl,
        "--out",
        out.to_str().unwrap(),
        "--signal",
        "HUP",
        "--pid",
        &pid,
    ];
    home.ok(&args);
    wait_until(Duration::from_secs(5), "the HUP", || lines(&got).len() == 1);
    // Unchanged content: no write, no signal.
    home.ok(&args);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&got).len(), 1);
    // Through a pid file, read when the signal is sent.
    let pid_file = home.path("target.pid");
    std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
    home.put("app/db", br#"{"user":"other"}"#);
    home.ok(&[
        "render",
        &tpl,
        "--out",
        out.to_str().unwrap(),
        "--signal",
        "SIGHUP",
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    wait_until(Duration::from_secs(5), "the second HUP", || {
        lines(&got).len() == 2
    });
    // --signal needs a target, and a target needs --signal.
    for bad in [
        &["--signal", "HUP"][..],
        &["--pid", "1"][..],
        &["--signal", "HUP", "--pid", "1", "--pid-file", "f"][..],
    ] {
        let mut argv = vec!["render", &tpl, "--out", "x"];
        argv.extend_from_slice(bad);
        assert_eq!(home.run(&argv).status.code(), Some(2), "{bad:?}");
    }
    let _ = target.kill();
    let _ = target.wait();
}

#[test]
fn watch_re_renders_after_a_rotate_by_another_process_and_runs_on_change() {
    let home = home_with_secrets();
    let tpl = template(
        &home,
        "password={{ secret(\"app/db/password\") }}\nuser={{ secret(\"app/db\", \"user\") }}\n",
    );
    let out = home.path("watched.conf");
    let ran = home.path("on-change-ran");
    let on_change = format!("sh -c 'echo changed >> \"{}\"'", ran.display());
    let mut child = home.spawn(&[
        "render",
        &tpl,
        "--out",
        out.to_str().unwrap(),
        "--watch",
        "--refresh-interval",
        "500ms",
        "--on-change",
        &on_change,
    ]);
    wait_until(Duration::from_secs(10), "the first render", || {
        lines(&ran).len() == 1
    });
    let first = std::fs::read_to_string(&out).unwrap();
    assert!(
        first.contains(PASSWORD),
        "the first render holds another value"
    );

    // `strongroom rotate` in another process: a new random value.
    home.ok(&["rotate", "app/db/password"]);
    let took = wait_until(Duration::from_secs(10), "the re-render", || {
        std::fs::read_to_string(&out).is_ok_and(|now| now != first)
    });
    // Seen at the next re-read, within one interval (plus the read and the write).
    assert!(
        took < Duration::from_millis(1500),
        "the re-render took {took:?}"
    );
    let second = std::fs::read_to_string(&out).unwrap();
    assert!(!second.contains(PASSWORD) && second.ends_with("user=svc\n"));
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    wait_until(Duration::from_secs(5), "the --on-change command", || {
        lines(&ran).len() == 2
    });

    // A `put` of a JSON secret the template reads one field of.
    home.put(
        "app/db",
        br#"{"user":"svc2","password":"p@ss","port":5432}"#,
    );
    wait_until(Duration::from_secs(10), "the second re-render", || {
        std::fs::read_to_string(&out).is_ok_and(|now| now.ends_with("user=svc2\n"))
    });
    wait_until(Duration::from_secs(5), "the second --on-change", || {
        lines(&ran).len() == 3
    });

    // A write that leaves the rendered text the same (another field) rewrites nothing.
    let inode = std::fs::metadata(&out).unwrap().ino();
    home.put(
        "app/db",
        br#"{"user":"svc2","password":"other","port":5432}"#,
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(std::fs::metadata(&out).unwrap().ino(), inode);
    assert_eq!(lines(&ran).len(), 3);

    kill(child.id(), "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    no_value_in(&err);
}
