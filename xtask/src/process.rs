//! Server processes: started in their own process group with output to a log file (so they
//! outlive `services up` and ignore the terminal's Ctrl-C), checked and stopped by PID.
//!
//! A PID is only trusted after `/proc/<pid>/cmdline` still contains the marker recorded
//! when the server started (its program path), so a recycled PID is never signalled.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How to start one server.
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) log: PathBuf,
}

/// Starts `launch` detached: new process group, stdin closed, stdout and stderr to the log.
/// Returns the PID; the child is not waited for (it is reaped by init once `up` exits).
pub(crate) fn spawn(launch: &Launch) -> Result<u32, String> {
    if let Some(dir) = launch.log.parent() {
        crate::layout::ensure_dir(dir)?;
    }
    // Owner-only: a dev server prints its root token and unseal key into its log.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&launch.log)
        .map_err(|e| format!("cannot create {}: {e}", launch.log.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", launch.log.display()))?;
    let child = Command::new(&launch.program)
        .args(&launch.args)
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
    let pid = child.id();
    // Right after exec the kernel may still show an empty command line; wait until it shows
    // the real one so the PID check that follows is meaningful.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty())
    {
        sleep(Duration::from_millis(5));
    }
    Ok(pid)
}

/// Whether `pid` is a live (not zombie) process whose command line contains `marker`.
pub(crate) fn is_ours(pid: u32, marker: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if cmdline.is_empty() || is_zombie(pid) {
        return false;
    }
    String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .contains(marker)
}

/// A zombie has exited and only waits to be reaped.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // The state follows the parenthesised command name, which may itself hold spaces.
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Stops the process group led by `pid` (TERM, then KILL after a grace period), if `pid` is
/// still the server that was recorded. Returns whether anything was signalled.
pub(crate) fn stop(pid: u32, marker: &str) -> Result<bool, String> {
    if !is_ours(pid, marker) {
        return Ok(false);
    }
    signal_group(pid, "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !is_ours(pid, marker) {
            return Ok(true);
        }
        sleep(Duration::from_millis(100));
    }
    signal_group(pid, "KILL")?;
    Ok(true)
}

/// Sends `signal` to the process group `pgid` with the `kill` utility (no unsafe libc call).
pub(crate) fn signal_group(pgid: u32, signal: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    // Failure means the group is already gone, which is what we wanted.
    let _ = status;
    Ok(())
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut tail = format!("--- last lines of {} ---\n", path.display());
            for line in &all[start..] {
                tail.push_str(line);
                tail.push('\n');
            }
            tail
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_recognised_and_a_wrong_marker_is_not() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_ours(me, &name));
        assert!(!is_ours(me, "definitely-not-this-program"));
        assert!(!is_ours(u32::MAX, &name));
    }

    #[test]
    fn spawned_server_is_stopped_by_pid() {
        let dir = std::env::temp_dir().join(format!("xtask-proc-{}", std::process::id()));
        let launch = Launch {
            program: "sleep".into(),
            args: vec!["300".into()],
            env: BTreeMap::new(),
            log: dir.join("sleep.log"),
        };
        let pid = spawn(&launch).unwrap();
        assert!(is_ours(pid, "sleep 300"));
        // A wrong marker must not kill it.
        assert!(!stop(pid, "something-else").unwrap());
        assert!(is_ours(pid, "sleep 300"));
        assert!(stop(pid, "sleep 300").unwrap());
        assert!(!is_ours(pid, "sleep 300"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
