//! `strongroom render`: renders a template holding secrets into a file.
//!
//! Templates are Jinja (minijinja: `{{ }}`, `{% if %}`, `{% for %}`, filters such as
//! `default`, `upper`, `replace`, `indent`, `tojson`), with three functions:
//!
//! - `secret("app/db/password")`: the secret's current value, as text;
//! - `secret("app/db", "password")`: one field of a secret holding a JSON object (a string
//!   field's text, any other field as JSON text);
//! - `secret_json("app/db")`: the whole JSON value, to iterate or index
//!   (`secret_json("app/db").port`, `{% for k, v in secret_json("app/env")|items %}`).
//!
//! Names are relative to `--scope`, like every other command's. Using an undefined variable
//! is an error (strict mode), nothing is HTML-escaped, and the template's trailing newline is
//! kept. A value that is not UTF-8 text is refused.
//!
//! minijinja calls functions synchronously while the store is read asynchronously, so a
//! render runs in rounds: the functions answer from the values already read and note the
//! ones not read yet (answering an empty string meanwhile); after a round with notes, the
//! noted secrets are read and the template rendered again. A template whose lookups depend
//! on other secrets' values (`secret(secret("app/which"))`) takes one round per level.
//!
//! The file is written only when the rendered text differs from what the file holds, through
//! a temporary file in the same directory (mode 0600, flushed to disk, renamed over FILE, the
//! directory flushed): a reader sees the old file or the new one, never a mix. A failed
//! render writes nothing. After a write, `--on-change CMD` runs (CMD split into words the way
//! a POSIX shell splits them, run without a shell; write `sh -c '...'` for shell syntax) and
//! `--signal SIG --pid PID` (or `--pid-file FILE`, read at each signal) signals a process. `--watch` then keeps running and renders again
//! whenever a secret the template used changes (see [`crate::watch`]).
//!
//! Error messages from the template engine can quote the values they were working on (`unable
//! to calculate VALUE - 1`); every value read is replaced by `[REDACTED]` in them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::json;
use strongroom_core::{Error, SecretName};
use strongroom_facade::Secrets;
use tokio::signal::unix::{SignalKind, signal};
use zeroize::{Zeroize as _, Zeroizing};

use crate::args::Global;
use crate::keys;
use crate::output::Printer;
use crate::watch::{self, DEFAULT_REFRESH, Watcher};

/// `render`'s options.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The template (Jinja syntax with secret(), secret_json(); see docs/agent.md).
    pub(crate) template: PathBuf,
    /// The file to write (mode 0600, replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Keep running, and render again when a secret the template uses changes.
    #[arg(long)]
    pub(crate) watch: bool,
    /// How often to look for changes made elsewhere, with --watch (`30s`, `5m`).
    #[arg(long, value_name = "DURATION", value_parser = watch::parse_interval, default_value = "60s", requires = "watch")]
    pub(crate) refresh_interval: Duration,
    /// Run this command after each write of FILE (split into words like a shell does; no
    /// shell runs).
    #[arg(long, value_name = "CMD", value_parser = parse_command)]
    pub(crate) on_change: Option<CommandLine>,
    /// Send this signal (HUP, USR1, ...) to --pid or --pid-file after each write of FILE.
    #[arg(long, value_name = "SIG", value_parser = parse_signal, requires = "target")]
    pub(crate) signal: Option<Signal>,
    /// The process --signal goes to.
    #[arg(long, value_name = "PID", group = "target", requires = "signal", value_parser = clap::value_parser!(i32).range(1..))]
    pub(crate) pid: Option<i32>,
    /// A file holding the process id --signal goes to, read at each signal (nginx.pid).
    #[arg(long, value_name = "FILE", group = "target", requires = "signal")]
    pub(crate) pid_file: Option<PathBuf>,
}

/// `--on-change`, split into words.
#[derive(Debug, Clone)]
pub(crate) struct CommandLine(Vec<String>);

fn parse_command(text: &str) -> Result<CommandLine, String> {
    match shlex::split(text) {
        Some(words) if !words.is_empty() => Ok(CommandLine(words)),
        Some(_) => Err("the command is empty".to_owned()),
        None => Err("the command has an unterminated quote or a trailing backslash".to_owned()),
    }
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    let name = text.to_ascii_uppercase();
    Ok(match name.strip_prefix("SIG").unwrap_or(&name) {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "TERM" => Signal::TERM,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "KILL" => Signal::KILL,
        _ => return Err("one of HUP, INT, QUIT, TERM, USR1, USR2, KILL".to_owned()),
    })
}

/// What a template function asked for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Lookup {
    Text(SecretName),
    Field(SecretName, String),
    Json(SecretName),
}

impl Lookup {
    fn key(&self) -> &SecretName {
        match self {
            Self::Text(key) | Self::Field(key, _) | Self::Json(key) => key,
        }
    }
}

/// A value read for a lookup; zeroized on drop.
enum Found {
    Text(Zeroizing<String>),
    Json(serde_json::Value),
}

impl Drop for Found {
    fn drop(&mut self) {
        fn walk(value: &mut serde_json::Value) {
            match value {
                serde_json::Value::String(s) => s.zeroize(),
                serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
                serde_json::Value::Object(map) => {
                    // Keys are not secret; the values are.
                    map.values_mut().for_each(walk);
                }
                _ => {}
            }
        }
        if let Self::Json(value) = self {
            walk(value);
        }
    }
}

/// What the template's functions share across one render's rounds.
#[derive(Default)]
struct Lookups {
    found: BTreeMap<Lookup, Found>,
    missing: BTreeSet<Lookup>,
}

type Shared = Arc<Mutex<Lookups>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Lookups> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer to `lookup` if it was read; else notes it and answers an empty string.
fn answer(shared: &Shared, lookup: Lookup) -> Value {
    let mut lookups = lock(shared);
    match lookups.found.get(&lookup) {
        Some(Found::Text(text)) => Value::from(text.as_str()),
        Some(Found::Json(value)) => to_value(value),
        None => {
            lookups.missing.insert(lookup);
            Value::from("")
        }
    }
}

fn to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or_else(|| Value::from(())),
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => items.iter().map(to_value).collect(),
        serde_json::Value::Object(map) => {
            Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), to_value(v))))
        }
    }
}

fn name_arg(name: &str) -> Result<SecretName, minijinja::Error> {
    SecretName::new(name).map_err(|err| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("{name:?} is not a secret name: {err}"),
        )
    })
}

/// The template file, ready to render.
struct Template {
    name: String,
    source: String,
}

/// A rendered template and the secrets it used.
struct Rendered {
    text: Zeroizing<String>,
    keys: BTreeSet<SecretName>,
}

/// More rounds than any sensible chain of lookups needs (each round reads at least one).
const MAX_ROUNDS: usize = 32;

impl Template {
    fn load(path: &Path) -> Result<Self, Error> {
        let source = fs::read_to_string(path).map_err(|err| {
            Error::config(format!(
                "cannot read the template {}: {err}",
                path.display()
            ))
        })?;
        Ok(Self {
            name: path.display().to_string(),
            source,
        })
    }

    fn environment(shared: &Shared) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let mut syntax = minijinja::syntax::SyntaxConfig::builder();
        syntax.keep_trailing_newline(true);
        if let Ok(syntax) = syntax.build() {
            env.set_syntax(syntax);
        }
        let text = Arc::clone(shared);
        env.add_function(
            "secret",
            move |name: &str, field: Option<&str>| -> Result<Value, minijinja::Error> {
                let key = name_arg(name)?;
                let lookup = match field {
                    Some(field) => Lookup::Field(key, field.to_owned()),
                    None => Lookup::Text(key),
                };
                Ok(answer(&text, lookup))
            },
        );
        let json = Arc::clone(shared);
        env.add_function(
            "secret_json",
            move |name: &str| -> Result<Value, minijinja::Error> {
                Ok(answer(&json, Lookup::Json(name_arg(name)?)))
            },
        );
        env
    }

    async fn render(&self, secrets: &Secrets) -> Result<Rendered, Error> {
        let shared = Shared::default();
        let env = Self::environment(&shared);
        let template = env
            .template_from_named_str(&self.name, &self.source)
            .map_err(|err| Error::config(format!("template {err}")))?;
        for _ in 0..MAX_ROUNDS {
            let result = template.render(()).map(Zeroizing::new);
            let missing = std::mem::take(&mut lock(&shared).missing);
            if missing.is_empty() {
                let lookups = lock(&shared);
                let keys = lookups.found.keys().map(|l| l.key().clone()).collect();
                return match result {
                    Ok(text) => Ok(Rendered { text, keys }),
                    Err(err) => Err(Error::config(redact(
                        format!("template {err}"),
                        &lookups.found,
                    ))),
                };
            }
            drop(result);
            for lookup in missing {
                let found = read(secrets, &lookup).await?;
                lock(&shared).found.insert(lookup, found);
            }
        }
        Err(Error::config(format!(
            "template {}: its secret lookups depend on each other more than {MAX_ROUNDS} levels deep",
            self.name
        )))
    }
}

/// Reads one lookup from the store.
async fn read(secrets: &Secrets, lookup: &Lookup) -> Result<Found, Error> {
    let not_text = |key: &SecretName| Error::InvalidValue {
        message: format!("{key} is not UTF-8 text, so it cannot go in a template"),
    };
    Ok(match lookup {
        Lookup::Text(key) => {
            let secret = secrets.get(key).await?;
            let text = secret.value.expose_str().map_err(|_| not_text(key))?;
            Found::Text(Zeroizing::new(text.to_owned()))
        }
        Lookup::Field(key, field) => {
            let value = secrets.get_field(key, field).await?;
            let text = value.expose_str().map_err(|_| not_text(key))?;
            Found::Text(Zeroizing::new(text.to_owned()))
        }
        Lookup::Json(key) => Found::Json(secrets.get_json(key).await?),
    })
}

/// `message` with every value in `found` replaced by `[REDACTED]` where it stands as a word
/// of its own (not inside a longer word: a value `a` leaves `template` alone).
fn redact(message: String, found: &BTreeMap<Lookup, Found>) -> String {
    fn strings(json: &serde_json::Value, out: &mut Vec<Zeroizing<String>>) {
        match json {
            serde_json::Value::String(s) => out.push(Zeroizing::new(s.clone())),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            serde_json::Value::Number(n) => out.push(Zeroizing::new(n.to_string())),
            serde_json::Value::Bool(_) | serde_json::Value::Null => {}
        }
    }
    let mut values = Vec::new();
    for found in found.values() {
        match found {
            Found::Text(text) => values.push(text.clone()),
            Found::Json(json) => strings(json, &mut values),
        }
    }
    // Longest first, so that a value containing another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut message = Zeroizing::new(message);
    for value in values.iter().filter(|v| !v.is_empty()) {
        *message = replace_words(&message, value, "[REDACTED]");
    }
    message.to_string()
}

/// `text` with each occurrence of `word` that no letter, digit or `_` touches replaced.
fn replace_words(text: &str, word: &str, with: &str) -> String {
    let in_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if in_word(before) || in_word(after) {
            // Not a word of its own: keep its first character and look again after it.
            let first = word.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[at..at + first]);
            rest = &rest[at + first..];
        } else {
            out.push_str(with);
            rest = &rest[at + word.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Writes `text` to `out` unless `out` already holds it; true when it wrote.
fn write_if_changed(out: &Path, text: &str) -> Result<bool, Error> {
    match fs::read(out) {
        Ok(current) => {
            let same = current == text.as_bytes();
            Zeroizing::new(current).zeroize();
            if same {
                return Ok(false);
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(Error::config(format!(
                "cannot read {}: {err}",
                out.display()
            )));
        }
    }
    replace(out, text.as_bytes())
        .map_err(|err| Error::backend("cli", format!("cannot write {}", out.display()), err))?;
    Ok(true)
}

/// Replaces `path` with `contents` atomically, mode 0600: a temporary file in the same
/// directory, flushed, renamed over `path`, and the directory flushed. strongroom-local has
/// the same routine for its store file, private to that crate.
fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the output path names no file"))?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.strongroom.tmp", std::process::id()));
    // Left by a crashed process that had this process id: no live process owns it.
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    File::open(dir)?.sync_all()
}

/// What runs after each write.
struct Reaction {
    command: Option<CommandLine>,
    signal: Option<(Signal, Target)>,
}

/// Where `--signal` goes.
enum Target {
    Pid(i32),
    PidFile(PathBuf),
}

impl Target {
    fn pid(&self) -> io::Result<Pid> {
        let raw = match self {
            Self::Pid(pid) => *pid,
            Self::PidFile(file) => {
                // A pid file is a number and a newline; anything longer is not one.
                let mut text = String::new();
                io::Read::read_to_string(&mut io::Read::take(File::open(file)?, 64), &mut text)?;
                text.trim().parse().map_err(|_| {
                    io::Error::other(format!("{} does not hold a process id", file.display()))
                })?
            }
        };
        Pid::from_raw(raw)
            .filter(|_| raw > 0)
            .ok_or_else(|| io::Error::other(format!("{raw} is not a process id")))
    }
}

impl Reaction {
    async fn run(&self) {
        if let Some(CommandLine(words)) = &self.command
            && let Some((program, arguments)) = words.split_first()
        {
            let status = tokio::process::Command::new(program)
                .args(arguments)
                .env_remove(keys::MASTER_KEY_VAR)
                .env_remove(keys::PASSPHRASE_VAR)
                .env_remove(keys::NEW_PASSPHRASE_VAR)
                .stdin(std::process::Stdio::null())
                .status()
                .await;
            match status {
                Ok(status) if status.success() => {}
                Ok(status) => watch::warn(&format!("--on-change {program}: {status}")),
                Err(err) => watch::warn(&format!("--on-change: cannot run {program}: {err}")),
            }
        }
        if let Some((sig, target)) = &self.signal {
            let sent = target
                .pid()
                .and_then(|pid| kill_process(pid, *sig).map_err(io::Error::from));
            if let Err(err) = sent {
                watch::warn(&format!("cannot send the signal: {err}"));
            }
        }
    }
}

/// Runs `render`.
pub(crate) async fn run(global: &Global, args: RenderArgs, out: &Printer) -> Result<(), Error> {
    let template = Template::load(&args.template)?;
    let refresh = if args.watch {
        args.refresh_interval
    } else {
        DEFAULT_REFRESH
    };
    let secrets = watch::open_secrets(global, refresh)?;
    let mut watcher = Watcher::new(&secrets, refresh);
    let reaction = Reaction {
        command: args.on_change.clone(),
        signal: args.signal.and_then(|sig| {
            let target = match (args.pid, &args.pid_file) {
                (Some(pid), _) => Target::Pid(pid),
                (None, Some(file)) => Target::PidFile(file.clone()),
                (None, None) => return None,
            };
            Some((sig, target))
        }),
    };

    let rendered = template.render(&secrets).await?;
    let wrote = write_if_changed(&args.out, &rendered.text)?;
    if wrote {
        reaction.run().await;
    }
    let done = |wrote: bool, keys: &BTreeSet<SecretName>| {
        let verb = if wrote { "wrote" } else { "unchanged:" };
        out.done(
            &format!("{verb} {}", args.out.display()),
            json!({
                "out": args.out.display().to_string(),
                "written": wrote,
                "secrets": keys.iter().map(SecretName::as_str).collect::<Vec<_>>(),
            }),
        )
    };
    done(wrote, &rendered.keys)?;
    if !args.watch {
        secrets.flush_audit();
        return Ok(());
    }
    watcher.watch(rendered.keys, Vec::new());
    drop(rendered.text);

    let mut term = signal(SignalKind::terminate())
        .map_err(|err| Error::backend("cli", "cannot listen for signals", err))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Error::backend("cli", "cannot listen for signals", err))?;
    loop {
        tokio::select! {
            () = watcher.changed() => {}
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
        }
        match template.render(&secrets).await {
            Ok(rendered) => {
                match write_if_changed(&args.out, &rendered.text) {
                    Ok(wrote) => {
                        if wrote {
                            reaction.run().await;
                        }
                        done(wrote, &rendered.keys)?;
                    }
                    Err(err) => watch::warn(&format!("a secret changed, but {err}")),
                }
                watcher.watch(rendered.keys, Vec::new());
            }
            Err(err) => watch::warn(&format!(
                "a secret changed, but the template cannot be rendered, so {} keeps its old content: {err}",
                args.out.display()
            )),
        }
    }
    secrets.flush_audit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell_and_signals_parse() {
        let CommandLine(words) = parse_command("sh -c 'echo a b' \"x y\"").unwrap();
        assert_eq!(words, ["sh", "-c", "echo a b", "x y"]);
        assert!(parse_command("").is_err());
        assert!(parse_command("echo 'open").is_err());
        assert_eq!(parse_signal("hup").unwrap(), Signal::HUP);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::USR1);
        assert!(parse_signal("WINCH").is_err());
    }

    #[test]
    fn values_are_redacted_from_engine_errors() {
        let mut found = BTreeMap::new();
        let key = SecretName::new("app/x").unwrap();
        found.insert(
            Lookup::Text(key.clone()),
            Found::Text(Zeroizing::new("hunter2".to_owned())),
        );
        found.insert(
            Lookup::Json(key),
            Found::Json(serde_json::json!({"pw": "s3cret", "port": 5432})),
        );
        let message = redact(
            "unable to calculate hunter2 - s3cret at 5432 (-s3cret, x5432, \"hunter2\")".to_owned(),
            &found,
        );
        assert_eq!(
            message,
            "unable to calculate [REDACTED] - [REDACTED] at [REDACTED] (-[REDACTED], x5432, \"[REDACTED]\")"
        );
    }

    #[test]
    fn only_whole_words_are_replaced() {
        let table = [
            ("a template (in a.tpl)", "a", "X template (in X.tpl)"),
            ("aaa", "a", "aaa"),
            ("a_b a-b", "a", "a_b X-b"),
            ("ключ:ключи", "ключ", "X:ключи"),
            ("", "a", ""),
        ];
        for (text, word, expected) in table {
            assert_eq!(replace_words(text, word, "X"), expected, "{text}");
        }
    }

    #[test]
    fn the_file_is_replaced_with_mode_0600_and_only_when_changed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app.conf");
        assert!(write_if_changed(&out, "one\n").unwrap());
        let mode = fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&out).unwrap());
        assert!(!write_if_changed(&out, "one\n").unwrap());
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(&out).unwrap()),
            inode,
            "an unchanged render must not replace the file"
        );
        assert!(write_if_changed(&out, "two\n").unwrap());
        assert_eq!(fs::read_to_string(&out).unwrap(), "two\n");
        // Only the file itself is left: no temporary file behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
