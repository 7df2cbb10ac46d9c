//! `strongroom exec`: runs a command with secrets in its environment.
//!
//! - `--env NAME=SECRET` sets the variable NAME to the secret's value; `--env NAME=SECRET#FIELD`
//!   to one field of a secret holding a JSON object (a string field's text, any other field
//!   as JSON). The first `#` separates the field, so a secret whose name holds a `#` can
//!   only be used without one.
//! - `--env-prefix FOLDER` sets one variable per secret under FOLDER (`app` and `app/` are
//!   the same folder): the name with the folder removed, upper-cased, with `/`, `-` and `.`
//!   made `_` (`app/db/password` is `DB_PASSWORD`, `app/api-key` is `API_KEY`). A name that
//!   would give an invalid variable (not `[A-Z_][A-Z0-9_]*`, such as `app/1st` or
//!   `app/ключ`), or two names that give the same variable (`app/db-url` and `app/db_url`),
//!   are refused before the command starts. An explicit `--env` of the same variable wins
//!   over the folder's.
//! - Values must be UTF-8 text without NUL bytes; anything else is refused with the
//!   secret's name (never its value).
//!
//! The secrets reach the command through its environment only, never its arguments (which
//! any user can read in the process list). The command inherits strongroom's own
//! environment except the variables that hold the local store's master key or passphrase.
//! The signals a supervisor or a terminal sends (TERM, INT, HUP, QUIT, USR1, USR2) are
//! passed on to the command, and strongroom exits with the command's exit code, or 128 + N
//! when it was killed by signal N, as shells report it (and 127 when the command is not
//! found, 126 when it cannot be run).
//!
//! `--restart-on-change` re-reads the secrets every `--refresh-interval` (see
//! [`crate::watch`]) and, when one changed, stops the command (TERM, then KILL after
//! `--restart-grace`) and starts it again with the new values. The new environment is read
//! before the command is stopped: if that read fails, the command keeps running with the
//! old values and the failure is reported on stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::Duration;

use clap::Args;
use rustix::process::{Pid, Signal, kill_process};
use strongroom_core::{Error, SecretName, SecretValue};
use strongroom_facade::Secrets;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use zeroize::Zeroizing;

use crate::args::Global;
use crate::keys;
use crate::watch::{self, DEFAULT_REFRESH, Watcher};

/// `exec`'s options.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Set the variable NAME to a secret's value, or to one field of a secret holding a JSON
    /// object (repeatable).
    #[arg(long = "env", value_name = "NAME=SECRET[#FIELD]", value_parser = parse_binding)]
    pub(crate) env: Vec<Binding>,
    /// Set one variable per secret under this folder: `app/db/password` under `app/` is
    /// DB_PASSWORD (repeatable).
    #[arg(long = "env-prefix", value_name = "FOLDER")]
    pub(crate) env_prefix: Vec<String>,
    /// Restart the command (TERM, then KILL after the grace period) when a secret it uses
    /// changes.
    #[arg(long)]
    pub(crate) restart_on_change: bool,
    /// How often to look for changes made elsewhere, with --restart-on-change (`30s`, `5m`).
    #[arg(long, value_name = "DURATION", value_parser = watch::parse_interval, default_value = "60s", requires = "restart_on_change")]
    pub(crate) refresh_interval: Duration,
    /// How long a restarted command may take to exit after TERM before it is killed.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "10s", requires = "restart_on_change")]
    pub(crate) restart_grace: Duration,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub(crate) command: Vec<OsString>,
}

/// One `--env NAME=SECRET[#FIELD]`.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    var: String,
    secret: SecretName,
    field: Option<String>,
}

fn parse_binding(text: &str) -> Result<Binding, String> {
    let (var, source) = text
        .split_once('=')
        .ok_or("expected NAME=SECRET or NAME=SECRET#FIELD")?;
    if !is_variable_name(var) {
        return Err(format!(
            "{var:?} is not a valid variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    let (secret, field) = match source.split_once('#') {
        Some((_, "")) => return Err("the field after # is empty".to_owned()),
        Some((secret, field)) => (secret, Some(field.to_owned())),
        None => (source, None),
    };
    let secret = SecretName::new(secret).map_err(|err| err.to_string())?;
    Ok(Binding {
        var: var.to_owned(),
        secret,
        field,
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what every shell accepts as a variable name.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The folder `prefix` as a list prefix: `app` and `app/` are both `app/`.
fn folder(prefix: &str) -> Result<String, Error> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::config(
            "--env-prefix needs a folder, such as app/ (to export every secret, name each one with --env)",
        ));
    }
    Ok(format!("{trimmed}/"))
}

/// The variable for `name` under `folder`: the rest of the name upper-cased, with `/`, `-`
/// and `.` made `_`.
fn variable_for(name: &SecretName, folder: &str) -> Result<String, Error> {
    let rest = name.as_str().strip_prefix(folder).unwrap_or(name.as_str());
    let var: String = rest
        .chars()
        .map(|c| match c {
            '/' | '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    if is_variable_name(&var) {
        Ok(var)
    } else {
        Err(Error::config(format!(
            "--env-prefix {folder}: {name} would be the variable {var:?}, which is not a valid name; rename the secret or bind it with --env NAME={name}"
        )))
    }
}

/// What the command's environment is built from, and what to watch for changes.
struct Resolved {
    vars: BTreeMap<String, Zeroizing<String>>,
    keys: BTreeSet<SecretName>,
    folders: Vec<(String, BTreeSet<SecretName>)>,
}

/// Reads every secret the options name.
async fn resolve(secrets: &Secrets, args: &ExecArgs) -> Result<Resolved, Error> {
    let mut vars = BTreeMap::new();
    let mut keys = BTreeSet::new();
    let mut folders = Vec::new();
    // variable -> the secret it came from, to name both sides of a collision.
    let mut origin: BTreeMap<String, SecretName> = BTreeMap::new();
    for prefix in &args.env_prefix {
        let folder = folder(prefix)?;
        let names = secrets.list(&folder).await?;
        for name in &names {
            let var = variable_for(name, &folder)?;
            if let Some(other) = origin.get(&var) {
                return Err(Error::config(format!(
                    "--env-prefix: {other} and {name} would both be the variable {var}; rename one, or bind them with --env"
                )));
            }
            let value = secrets.get(name).await?.value;
            vars.insert(var.clone(), env_text(&value, name)?);
            origin.insert(var, name.clone());
            keys.insert(name.clone());
        }
        folders.push((folder, names.into_iter().collect()));
    }
    let mut explicit = BTreeSet::new();
    for binding in &args.env {
        if !explicit.insert(binding.var.as_str()) {
            return Err(Error::config(format!(
                "--env {} is given twice",
                binding.var
            )));
        }
        let value = match &binding.field {
            Some(field) => secrets.get_field(&binding.secret, field).await?,
            None => secrets.get(&binding.secret).await?.value,
        };
        vars.insert(binding.var.clone(), env_text(&value, &binding.secret)?);
        keys.insert(binding.secret.clone());
    }
    Ok(Resolved {
        vars,
        keys,
        folders,
    })
}

/// `value` as the text of a variable: UTF-8 without NUL.
fn env_text(value: &SecretValue, name: &SecretName) -> Result<Zeroizing<String>, Error> {
    let text = value.expose_str().map_err(|_| Error::InvalidValue {
        message: format!("{name} is not UTF-8 text, so it cannot be an environment variable"),
    })?;
    if text.contains('\0') {
        return Err(Error::InvalidValue {
            message: format!("{name} holds a NUL byte, which an environment variable cannot hold"),
        });
    }
    Ok(Zeroizing::new(text.to_owned()))
}

/// Exit code when the command cannot be found, as shells report it.
const NOT_FOUND: u8 = 127;
/// Exit code when the command is found but cannot be run (not executable), as shells.
const CANNOT_RUN: u8 = 126;

/// Starts the command; when it cannot start, reports why on stderr and gives the exit code
/// a shell would (127 not found, 126 otherwise).
fn spawn(command: &[OsString], vars: &BTreeMap<String, Zeroizing<String>>) -> Result<Child, u8> {
    let Some((program, arguments)) = command.split_first() else {
        // clap requires a command; nothing to start is a usage error.
        return Err(crate::exit::BAD_INPUT);
    };
    let mut cmd = Command::new(program);
    cmd.args(arguments)
        .env_remove(keys::MASTER_KEY_VAR)
        .env_remove(keys::PASSPHRASE_VAR)
        .env_remove(keys::NEW_PASSPHRASE_VAR);
    for (var, value) in vars {
        cmd.env(var, value.as_str());
    }
    cmd.spawn().map_err(|err| {
        watch::warn(&format!(
            "error: cannot start {}: {err}",
            program.to_string_lossy()
        ));
        if err.kind() == std::io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            CANNOT_RUN
        }
    })
}

/// Runs `exec`; returns the exit code strongroom must exit with (the command's).
pub(crate) async fn run(global: &Global, args: ExecArgs) -> Result<u8, Error> {
    let refresh = if args.restart_on_change {
        args.refresh_interval
    } else {
        DEFAULT_REFRESH
    };
    let secrets = watch::open_secrets(global, refresh)?;
    let mut watcher = Watcher::new(&secrets, refresh);
    let resolved = resolve(&secrets, &args).await?;
    watcher.watch(resolved.keys, resolved.folders);

    // Registered before the child starts, so none is missed (and none kills strongroom).
    let mut forwarded = Vec::new();
    for (kind, sig) in [
        (SignalKind::terminate(), Signal::TERM),
        (SignalKind::interrupt(), Signal::INT),
        (SignalKind::hangup(), Signal::HUP),
        (SignalKind::quit(), Signal::QUIT),
        (SignalKind::user_defined1(), Signal::USR1),
        (SignalKind::user_defined2(), Signal::USR2),
    ] {
        let stream =
            signal(kind).map_err(|err| Error::backend("cli", "cannot listen for signals", err))?;
        forwarded.push((stream, sig));
    }

    let mut child = match spawn(&args.command, &resolved.vars) {
        Ok(child) => child,
        Err(code) => return Ok(code),
    };
    drop(resolved.vars);
    loop {
        let event = tokio::select! {
            status = child.wait() => Event::Exited(status),
            sig = next_signal(&mut forwarded) => Event::Signal(sig),
            () = watcher.changed(), if args.restart_on_change => Event::Changed,
        };
        match event {
            Event::Exited(status) => {
                let status = status
                    .map_err(|err| Error::backend("cli", "cannot wait for the command", err))?;
                // The caller exits the process at once: write the audit lines first.
                secrets.flush_audit();
                return Ok(exit_code(status));
            }
            Event::Signal(sig) => send(&child, sig),
            Event::Changed => {
                let resolved = match resolve(&secrets, &args).await {
                    Ok(resolved) => resolved,
                    Err(err) => {
                        watch::warn(&format!(
                            "a secret changed, but the new environment cannot be read, so the command keeps its old one: {err}"
                        ));
                        continue;
                    }
                };
                watcher.watch(resolved.keys, resolved.folders);
                watch::warn("a secret changed: restarting the command");
                stop(&mut child, args.restart_grace).await;
                child = match spawn(&args.command, &resolved.vars) {
                    Ok(child) => child,
                    Err(code) => {
                        secrets.flush_audit();
                        return Ok(code);
                    }
                };
            }
        }
    }
}

enum Event {
    Exited(std::io::Result<ExitStatus>),
    Signal(Signal),
    Changed,
}

/// The next signal received on any of `streams`.
async fn next_signal(streams: &mut [(tokio::signal::unix::Signal, Signal)]) -> Signal {
    std::future::poll_fn(|cx| {
        for (stream, sig) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*sig);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Sends `sig` to the child; a child already gone is no error.
fn send(child: &Child, sig: Signal) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        let _ = kill_process(pid, sig);
    }
}

/// Stops the child: TERM, then KILL once `grace` has passed.
async fn stop(child: &mut Child, grace: Duration) {
    send(child, Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The exit code a shell would report for `status`: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        // Exit codes are 0..=255 on Unix; anything else is reported as a failure.
        return u8::try_from(code).unwrap_or(1);
    }
    status
        .signal()
        .and_then(|sig| u8::try_from(sig.saturating_add(128)).ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse_and_bad_ones_are_refused() {
        let b = parse_binding("DB_PASSWORD=app/db#password").unwrap();
        assert_eq!(
            (b.var.as_str(), b.secret.as_str(), b.field.as_deref()),
            ("DB_PASSWORD", "app/db", Some("password"))
        );
        let b = parse_binding("_x1=app/token").unwrap();
        assert_eq!((b.var.as_str(), b.field), ("_x1", None));
        for bad in [
            "NOEQUALS",
            "=app/x",
            "1X=app/x",
            "A-B=app/x",
            "A=",
            "A=/leading",
            "A=app/x#",
            "A=app//x",
        ] {
            assert!(parse_binding(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn folder_names_map_to_upper_snake_variables() {
        let table = [
            ("app/db/password", "DB_PASSWORD"),
            ("app/api-key", "API_KEY"),
            ("app/tls.crt", "TLS_CRT"),
            ("app/_private", "_PRIVATE"),
        ];
        for (name, var) in table {
            let name = SecretName::new(name).unwrap();
            assert_eq!(variable_for(&name, "app/").unwrap(), var);
        }
        for bad in ["app/1st", "app/ключ", "app/a@b", "app/a b"] {
            let name = SecretName::new(bad).unwrap();
            let err = variable_for(&name, "app/").unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn folders_are_normalised_and_never_empty() {
        assert_eq!(folder("app").unwrap(), "app/");
        assert_eq!(folder("app/").unwrap(), "app/");
        assert_eq!(folder("/prod/app/").unwrap(), "prod/app/");
        assert!(folder("").is_err());
        assert!(folder("/").is_err());
    }

    #[test]
    fn values_must_be_text_without_nul() {
        let name = SecretName::new("app/x").unwrap();
        assert!(env_text(&SecretValue::from("ok"), &name).is_ok());
        for bad in [&b"a\0b"[..], &[0xff, 0xfe][..]] {
            let err = env_text(&SecretValue::new(bad.to_vec()), &name)
                .unwrap_err()
                .to_string();
            assert!(err.contains("app/x"), "{err}");
        }
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        // Killed by SIGTERM (15): 143.
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
