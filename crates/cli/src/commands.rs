//! What each command does.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::json;
use strongroom_core::{
    Error, Metadata, PutOptions, SecretName, SecretStore, SecretValue, VersionId,
};
use strongroom_envelope::{MasterKey, WrappingKey};
use strongroom_facade::KeyOrigin;
use strongroom_local::FileStore;
use zeroize::Zeroizing;

use crate::args::{Backend, Cli, Command, Global, Put, RotationCommand};
use crate::keys;
use crate::output::Printer;
use crate::store;

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), Error> {
    let Cli { global, command } = cli;
    let out = Printer::new(global.output);
    match command {
        Command::Init { passphrase } => init(&global, passphrase, &out).await,
        Command::Key { command } => crate::slots::run(&global, command, &out).await,
        Command::Rekey {
            slot: Some(spec), ..
        } => crate::slots::rekey(&global, &spec, &out).await,
        Command::Rekey {
            slot: None,
            passphrase,
            new_key_file,
        } => rekey(&global, passphrase, new_key_file.as_deref(), &out).await,
        Command::Migrate(args) => crate::migrate::run(args, &out).await,
        Command::Serve(args) => crate::serve::run(global, args).await,
        Command::Exec(args) => {
            let code = crate::exec::run(&global, args).await?;
            // The command's exit code is strongroom's; everything exec held is dropped.
            std::process::exit(i32::from(code))
        }
        Command::Render(args) => crate::render::run(&global, args, &out).await,
        Command::Put(put_args) => put(&*store::open(&global)?, put_args, &out).await,
        Command::Get {
            key,
            version,
            json_field,
        } => {
            let store = store::open(&global)?;
            let key = SecretName::new(key)?;
            let secret = match version {
                Some(v) => store.get_version(&key, &VersionId::from(v)).await?,
                None => store.get(&key).await?,
            };
            match json_field {
                Some(field) => out.field(&secret, &field),
                None => out.secret(&secret),
            }
        }
        Command::Ls { prefix } => out.keys(&store::open(&global)?.list(&prefix).await?),
        Command::Rm { key, purge } => {
            let store = store::open(&global)?;
            let key = SecretName::new(key)?;
            if purge {
                store.purge(&key).await?;
                out.done(
                    &format!("purged {key}: every version is gone"),
                    json!({ "key": key.as_str() }),
                )
            } else {
                store.delete(&key).await?;
                out.done(
                    &format!("deleted {key} (`strongroom restore {key}` brings it back)"),
                    json!({ "key": key.as_str() }),
                )
            }
        }
        Command::Restore { key } => {
            let key = SecretName::new(key)?;
            store::open(&global)?.undelete(&key).await?;
            out.done(&format!("restored {key}"), json!({ "key": key.as_str() }))
        }
        Command::Versions { key } => out.versions(
            &store::open(&global)?
                .versions(&SecretName::new(key)?)
                .await?,
        ),
        Command::Rotate {
            key,
            bytes,
            if_older_than: Some(age),
        } => {
            crate::rotation::rotate_if_older(&global, SecretName::new(key)?, age, bytes, &out).await
        }
        Command::Rotation {
            command: RotationCommand::Status,
        } => crate::rotation::status(&global, &out).await,
        Command::Rotate {
            key,
            bytes,
            if_older_than: None,
        } => {
            let key = SecretName::new(key)?;
            let mut raw = Zeroizing::new(vec![0; usize::from(bytes)]);
            SystemRandom::new().fill(&mut raw).map_err(|_| {
                Error::backend(
                    "cli",
                    "the system random generator failed",
                    std::io::Error::other("ring"),
                )
            })?;
            let value = SecretValue::from(BASE64.encode(&*raw));
            let version = store::open(&global)?.put(&key, value).await?;
            out.written(&key, &version)
        }
    }
}

async fn init(global: &Global, passphrase: bool, out: &Printer) -> Result<(), Error> {
    if global.backend != Backend::Local {
        return Err(Error::config(
            "init creates a local store; the env and dir backends need no setup",
        ));
    }
    let path = store::local_path(global)?;
    if path.exists() {
        return Err(Error::config(format!(
            "a store already exists at {}; refusing to replace it",
            path.display()
        )));
    }
    store::create_parent(&path)?;
    if !global.keys.is_empty() {
        if passphrase {
            return Err(Error::config(
                "--passphrase and --key both say how to protect the store: use --key passphrase",
            ));
        }
        return crate::slots::init(&path, &global.keys, out).await;
    }

    let (key, key_note): (WrappingKey, String) = if passphrase {
        let passphrase = keys::passphrase(keys::PASSPHRASE_VAR, "new passphrase", true)?;
        (passphrase.into(), "protected by your passphrase".to_owned())
    } else if let Some(file) = &global.key_file {
        (
            existing_or_new_key_file(file)?.into(),
            format!("master key in {}", file.display()),
        )
    } else if std::env::var_os(keys::MASTER_KEY_VAR).is_some() {
        let key = MasterKey::from_env(keys::MASTER_KEY_VAR).map_err(keys::key_error)?;
        (
            key.into(),
            format!("master key from {}", keys::MASTER_KEY_VAR),
        )
    } else {
        let file = keys::default_key_file(&path);
        (
            new_key_file(&file)?.into(),
            format!(
                "new master key in {} (mode 0600): back it up, the store cannot be read without it",
                file.display()
            ),
        )
    };
    FileStore::create(&path, key)?;
    out.done(
        &format!("created {}; {key_note}", path.display()),
        json!({ "store": path.display().to_string() }),
    )
}

/// Uses the key in `file`, or makes one there if there is no such file.
fn existing_or_new_key_file(file: &Path) -> Result<MasterKey, Error> {
    if file.exists() {
        MasterKey::from_file(file).map_err(keys::key_error)
    } else {
        new_key_file(file)
    }
}

pub(crate) fn new_key_file(file: &Path) -> Result<MasterKey, Error> {
    let key = MasterKey::generate().map_err(keys::key_error)?;
    store::create_parent(file)?;
    key.write_new_file(file).map_err(|err| match err {
        strongroom_envelope::Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Error::config(format!(
                "a key file already exists at {}; pass it with --key-file to use it",
                file.display()
            ))
        }
        other => keys::key_error(other),
    })?;
    Ok(key)
}

async fn put(store: &dyn SecretStore, args: Put, out: &Printer) -> Result<(), Error> {
    let key = SecretName::new(args.key.as_str())?;
    let value = read_value(&args)?;
    let mut options = PutOptions::default();
    if args.if_absent {
        options = options.if_absent();
    }
    if let Some(version) = args.if_version {
        options = options.if_version(version.into());
    }
    if args.description.is_some() || !args.tags.is_empty() {
        let mut metadata = Metadata::default();
        metadata.description = args.description;
        metadata.tags = args.tags.into_iter().collect();
        options = options.with_metadata(metadata);
    }
    let version = store.put_with(&key, value, &options).await?;
    out.written(&key, &version)
}

/// The value of `put`: --value, --file, else stdin (asked without echo on a terminal).
fn read_value(args: &Put) -> Result<SecretValue, Error> {
    if let Some(value) = &args.value {
        return Ok(SecretValue::from(value.as_str()));
    }
    if let Some(file) = &args.file {
        let bytes = std::fs::read(file)
            .map_err(|err| Error::config(format!("cannot read {}: {err}", file.display())))?;
        return Ok(SecretValue::new(bytes));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let typed =
            rpassword::prompt_password(format!("value for {}: ", args.key)).map_err(|err| {
                Error::config(format!("cannot read the value from the terminal: {err}"))
            })?;
        return Ok(SecretValue::from(typed));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|err| Error::config(format!("cannot read the value from stdin: {err}")))?;
    if !args.keep_newline {
        strip_one_newline(&mut bytes);
    }
    Ok(SecretValue::from(bytes))
}

/// `echo value |` adds one newline (`\n`, or `\r\n` on Windows consoles); drop exactly that.
fn strip_one_newline(bytes: &mut Vec<u8>) {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
}

async fn rekey(
    global: &Global,
    passphrase: bool,
    new_key_file: Option<&Path>,
    out: &Printer,
) -> Result<(), Error> {
    if global.backend != Backend::Local {
        return Err(Error::unsupported(
            "cli",
            "rekey of a store that is not local",
        ));
    }
    let (store, source) = store::open_local(global)?;
    if passphrase {
        let new = keys::passphrase(keys::NEW_PASSPHRASE_VAR, "new passphrase", true)?;
        store.rotate_key(new).await?;
        return out.done(
            &format!(
                "{} is now protected by the new passphrase",
                store.path().display()
            ),
            json!({ "store": store.path().display().to_string() }),
        );
    }

    let new_key = MasterKey::generate().map_err(keys::key_error)?;
    let target = match (new_key_file, &source) {
        (Some(file), _) => file.to_owned(),
        (None, KeyOrigin::File(current)) => current.clone(),
        (None, _) => {
            let default = keys::default_key_file(store.path());
            if default.exists() {
                return Err(Error::config(format!(
                    "{} exists; pass --new-key-file to say where the new key goes",
                    default.display()
                )));
            }
            default
        }
    };
    if Some(&target)
        == match &source {
            KeyOrigin::File(f) => Some(f),
            _ => None,
        }
    {
        // Replace the key file in use: write the new key beside it first, so a crash
        // between re-wrapping the store and renaming the file leaves the key on disk.
        let staged = staged_path(&target);
        new_key.write_new_file(&staged).map_err(keys::key_error)?;
        store.rotate_key(new_key).await?;
        std::fs::rename(&staged, &target).map_err(|err| {
            Error::config(format!(
                "the store now uses the key in {}, but it could not be moved to {}: {err}",
                staged.display(),
                target.display()
            ))
        })?;
    } else {
        new_key_file_at(&new_key, &target)?;
        store.rotate_key(new_key).await?;
    }
    out.done(
        &format!(
            "{} is now encrypted under the new key in {}; the old key no longer opens it",
            store.path().display(),
            target.display()
        ),
        json!({ "store": store.path().display().to_string(), "key_file": target.display().to_string() }),
    )
}

fn new_key_file_at(key: &MasterKey, file: &Path) -> Result<(), Error> {
    store::create_parent(file)?;
    key.write_new_file(file).map_err(keys::key_error)
}

fn staged_path(file: &Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".new");
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_trailing_newline_is_dropped() {
        let table: &[(&[u8], &[u8])] = &[
            (b"v\n", b"v"),
            (b"v\r\n", b"v"),
            (b"v\n\n", b"v\n"),
            (b"v", b"v"),
            (b"", b""),
            (b"\n", b""),
        ];
        for (input, expected) in table {
            let mut bytes = input.to_vec();
            strip_one_newline(&mut bytes);
            assert_eq!(&bytes, expected, "{input:?}");
        }
    }
}
