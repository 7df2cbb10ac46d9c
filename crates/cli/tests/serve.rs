//! `strongroom serve` as a process: it serves the configured store over a Unix socket,
//! reloads its configuration on SIGHUP (keeping the old one when the new one is broken),
//! drains on SIGTERM and exits 0, and refuses to start without a token.

#![cfg(unix)]

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "serve-test-token";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .stdin(Stdio::null());
        command
    }

    fn ok(&self, args: &[&str]) {
        let out = self.command(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }

    /// A local store at `name` holding `app/db` = `value`.
    fn store(&self, name: &str, value: &str) -> PathBuf {
        let store = self.path(name);
        let store_arg = store.to_str().unwrap();
        self.ok(&["--store", store_arg, "init"]);
        self.ok(&["--store", store_arg, "put", "app/db", "--value", value]);
        store
    }

    fn config(&self, store: &Path) -> PathBuf {
        let config = self.path("strongroom.toml");
        std::fs::write(
            &config,
            format!(
                "[backend]\nkind = \"local\"\npath = \"{}\"\n[cache]\nttl_secs = 600\n",
                store.display()
            ),
        )
        .unwrap();
        config
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `GET target` over the socket, with the token; the status and the body.
fn get(socket: &Path, target: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn value(socket: &Path) -> String {
    let (status, body) = get(socket, "/v1/app/db");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    doc["SecretString"].as_str().unwrap().to_owned()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_socket(socket: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited early with {status}");
        }
        assert!(Instant::now() < deadline, "serve did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_answers_reloads_on_sighup_and_drains_on_sigterm() {
    let home = Home::new();
    let first = home.store("first.enc", "from-the-first-store");
    let second = home.store("second.enc", "from-the-second-store");
    let config = home.config(&first);
    let socket = home.path("agent.sock");
    let mut child = home
        .command(&[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("unix:{}", socket.display()),
        ])
        .env("AWS_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&socket, &mut child);

    assert_eq!(value(&socket), "from-the-first-store");
    let (status, body) = get(&socket, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"healthy\""), "{body}");
    let (status, body) = get(&socket, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("strongroom_agent_requests_total"), "{body}");

    // A broken configuration: the reload fails and the first store is still served.
    std::fs::write(&config, "this is not toml").unwrap();
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(value(&socket), "from-the-first-store");

    // A good one naming the second store: served after the reload.
    home.config(&second);
    signal(&child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&socket) != "from-the-second-store" {
        assert!(Instant::now() < deadline, "the reload never took effect");
        std::thread::sleep(Duration::from_millis(20));
    }

    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("configuration reload failed"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(!log.contains("from-the-"), "a value in the log: {log}");
    assert!(!log.contains(TOKEN), "the token in the log: {log}");
    assert!(!socket.exists(), "the socket outlived the agent");
}

#[test]
fn serve_refuses_to_start_without_a_token_or_on_a_public_address() {
    let home = Home::new();
    let store = home.store("s.enc", "v");
    let store = store.to_str().unwrap();
    let out = home.command(&["--store", store, "serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("AWS_TOKEN"), "{}", stderr(&out));

    let out = home
        .command(&["--store", store, "serve", "--listen", "0.0.0.0:0"])
        .env("AWS_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a loopback address"),
        "{}",
        stderr(&out)
    );
}
