//! A scratch home for the long-running commands' tests (`exec`, `render`): a local encrypted
//! store and its key file in a temporary directory, and an environment cleared of the
//! caller's settings.

#![allow(dead_code, reason = "each test file uses part of this")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Home {
    pub(crate) dir: tempfile::TempDir,
}

impl Home {
    /// A new home with an initialised store.
    pub(crate) fn new() -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        home.ok(&["init"]);
        home
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("STRONGROOM_STORE", self.path("secrets.enc"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `value` as the next version of `key`, through stdin (never on a command line).
    pub(crate) fn put(&self, key: &str, value: &[u8]) {
        let mut child = self
            .command(&["put", key, "--keep-newline"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "put {key}: {}", stderr(&out));
    }

    /// Starts strongroom with stdout and stderr piped.
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sends `signal` (a name such as TERM) to `pid` with kill(1).
pub(crate) fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Reads lines of `child`'s stdout until one equals `line`.
pub(crate) fn wait_for_line(child: &mut Child, line: &str) -> BufReader<std::process::ChildStdout> {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut got = String::new();
    loop {
        got.clear();
        let n = reader.read_line(&mut got).unwrap();
        assert!(n > 0, "stdout ended before {line:?}");
        if got.trim_end() == line {
            return reader;
        }
    }
}

/// Waits up to `limit` for `ready` to hold, checking every 20 ms; the time it took.
pub(crate) fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// The exit status of `child` within `limit`, or a failed test (and the child killed).
pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of the file at `path` (none when it does not exist yet).
pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}
