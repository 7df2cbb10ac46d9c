//! Finding the master key of a local store, in the order docs/cli.md gives, and asking for
//! passphrases.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use strongroom_core::Error;
use strongroom_envelope::{Header, MasterKey, Passphrase, WrappingKey};
use zeroize::Zeroizing;

pub(crate) use strongroom_facade::{MASTER_KEY_VAR, PASSPHRASE_VAR};
pub(crate) use strongroom_local::{default_key_file, key_error};

/// The new passphrase for `rekey --passphrase`.
pub(crate) const NEW_PASSPHRASE_VAR: &str = "STRONGROOM_NEW_PASSPHRASE";

/// Where a key came from; `rekey` needs to know what to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Env,
    Passphrase,
}

/// The key that opens the existing store at `store`.
pub(crate) fn for_existing(
    store: &Path,
    key_file: Option<&Path>,
) -> Result<(WrappingKey, Source), Error> {
    if let Some(path) = key_file {
        return Ok((
            MasterKey::from_file(path).map_err(key_error)?.into(),
            Source::File(path.to_owned()),
        ));
    }
    if std::env::var_os(MASTER_KEY_VAR).is_some() {
        return Ok((
            MasterKey::from_env(MASTER_KEY_VAR)
                .map_err(key_error)?
                .into(),
            Source::Env,
        ));
    }
    if is_passphrase_store(store) {
        let passphrase = passphrase(PASSPHRASE_VAR, "passphrase", false)?;
        return Ok((passphrase.into(), Source::Passphrase));
    }
    let default = default_key_file(store);
    match MasterKey::from_file(&default) {
        Ok(key) => Ok((key.into(), Source::File(default))),
        Err(strongroom_envelope::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(Error::config(format!(
                "no master key for {}: pass --key-file, set {MASTER_KEY_VAR}, or put the key in {}",
                store.display(),
                default.display()
            )))
        }
        Err(err) => Err(key_error(err)),
    }
}

/// True when the store's header says it is sealed with a passphrase. A missing store is not
/// an error here: opening it reports that more clearly.
fn is_passphrase_store(store: &Path) -> bool {
    std::fs::read(store).is_ok_and(|bytes| Header::parse(&bytes).is_ok_and(|h| h.is_passphrase()))
}

/// A passphrase from `var`, else asked on the terminal (twice when `confirm`).
pub(crate) fn passphrase(var: &str, what: &str, confirm: bool) -> Result<Passphrase, Error> {
    if let Ok(value) = std::env::var(var) {
        return non_empty(&Zeroizing::new(value), var);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::config(format!(
            "a {what} is needed: set {var}, or run in a terminal to be asked"
        )));
    }
    let first = Zeroizing::new(prompt(&format!("{what}: "))?);
    if confirm {
        let again = Zeroizing::new(prompt(&format!("{what} again: "))?);
        if *first != *again {
            return Err(Error::config("the two passphrases differ"));
        }
    }
    non_empty(&first, "the terminal")
}

fn prompt(text: &str) -> Result<String, Error> {
    rpassword::prompt_password(text)
        .map_err(|err| Error::config(format!("cannot read a passphrase from the terminal: {err}")))
}

fn non_empty(value: &str, source: &str) -> Result<Passphrase, Error> {
    if value.is_empty() {
        return Err(Error::config(format!(
            "the passphrase from {source} is empty"
        )));
    }
    Ok(Passphrase::new(value))
}
