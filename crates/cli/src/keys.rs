//! Asking for passphrases. Which key opens a store is decided by the facade's
//! `resolve_key`, the same function a library user's configuration goes through.

use std::io::IsTerminal as _;

use strongroom_core::Error;
use strongroom_envelope::Passphrase;
use zeroize::Zeroizing;

pub(crate) use strongroom_facade::{MASTER_KEY_VAR, PASSPHRASE_VAR};
pub(crate) use strongroom_local::{default_key_file, key_error};

/// The new passphrase for `rekey --passphrase`.
pub(crate) const NEW_PASSPHRASE_VAR: &str = "STRONGROOM_NEW_PASSPHRASE";

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
