//! [`resolve_key`]: the one place the master key of an encrypted file is found, for the
//! library and the CLI alike.
//!
//! The order, documented in docs/configuration.md:
//!
//! 1. what the configuration names, in this order: a key file (`key_file`, the CLI's
//!    `--key-file`, `STRONGROOM_KEY_FILE`), a variable holding the base64 key (`key_env`),
//!    a variable holding the passphrase (`passphrase_env`);
//! 2. otherwise the file's own header decides which kind of key can open it:
//!    - sealed with a passphrase: `STRONGROOM_PASSPHRASE`, else the terminal (CLI only),
//!    - sealed with a master key: `STRONGROOM_MASTER_KEY`, else the file `<store>.key`,
//!    - no file yet (a store or mirror about to be created): `STRONGROOM_MASTER_KEY`,
//!      `STRONGROOM_PASSPHRASE`, then `<store>.key`.
//!
//! Reading the header first means a `STRONGROOM_PASSPHRASE` exported for one store never
//! shadows the key file of another, and the answer never depends on which front asked.

use std::path::{Path, PathBuf};

use strongroom_core::Error;
use strongroom_envelope::{MasterKey, Passphrase, SlotKind, WrappingKey};
use strongroom_local::{StoreSlots, default_key_file, key_error};
use zeroize::Zeroizing;

use crate::config::KeySource;
use crate::keyring::StoreFile;

/// The base64 master key variable tried when a [`KeySource`] names nothing.
pub const MASTER_KEY_VAR: &str = "STRONGROOM_MASTER_KEY";
/// The passphrase variable tried when a [`KeySource`] names nothing.
pub const PASSPHRASE_VAR: &str = "STRONGROOM_PASSPHRASE";

/// Where [`resolve_key`] found the key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOrigin {
    /// A key file.
    File(PathBuf),
    /// A variable holding the base64 master key.
    KeyVariable(String),
    /// A variable holding the passphrase.
    PassphraseVariable(String),
    /// The passphrase asked on the terminal.
    Prompt,
    /// A key slot opened by this provider (a key service, or a `--key` value).
    Spec(crate::KeySpec),
}

impl KeyOrigin {
    /// True when the key is a passphrase.
    pub fn is_passphrase(&self) -> bool {
        matches!(self, Self::PassphraseVariable(_) | Self::Prompt)
    }
}

/// Asks for a passphrase (the CLI's terminal prompt); `None` where nobody can answer.
pub type PassphrasePrompt<'a> = Option<&'a (dyn Fn() -> Result<Passphrase, Error> + Sync)>;

/// The key that opens the store at `store`, and where it came from.
///
/// The order (docs/configuration.md): what `source` names (key file, key variable,
/// passphrase variable); otherwise the store's header decides: a store sealed with a
/// passphrase takes `STRONGROOM_PASSPHRASE`, then `prompt`; one sealed with a master key
/// takes `STRONGROOM_MASTER_KEY`, then `<store>.key`; a file not created yet takes
/// `STRONGROOM_MASTER_KEY`, `STRONGROOM_PASSPHRASE`, then `<store>.key`.
///
/// # Errors
/// [`Error::Config`] naming the source that failed or, when none had a key, every source
/// that was tried (never the key).
pub fn resolve_key(
    source: &KeySource,
    store: &Path,
    prompt: PassphrasePrompt<'_>,
) -> Result<(WrappingKey, KeyOrigin), Error> {
    resolve_in(source, &StoreFile::new(store), prompt)
}

/// [`resolve_key`] on a store file whose slots may have been read already.
pub(crate) fn resolve_in(
    source: &KeySource,
    store: &StoreFile<'_>,
    prompt: PassphrasePrompt<'_>,
) -> Result<(WrappingKey, KeyOrigin), Error> {
    resolve_with(source, store, prompt, &|name| {
        std::env::var_os(name).map(|v| Zeroizing::new(v.into_string().unwrap_or_default()))
    })
}

/// The key alone; see [`resolve_key`] (no terminal to ask).
///
/// # Errors
/// As [`resolve_key`].
pub fn wrapping_key(source: &KeySource, store: &Path) -> Result<WrappingKey, Error> {
    resolve_key(source, store, None).map(|(key, _)| key)
}

/// Which local keys open the store: (a passphrase, a master key), from its slots (format 2)
/// or its header (format 1); `None` when there is no readable store.
fn local_kinds(store: &StoreFile<'_>) -> Option<(bool, bool)> {
    match store.slots().ok()? {
        StoreSlots::Slotted(table) => {
            let has = |kind| table.slots().iter().any(|slot| slot.kind() == kind);
            Some((has(SlotKind::Passphrase), has(SlotKind::MasterKey)))
        }
        StoreSlots::Single(header) => Some((header.is_passphrase(), !header.is_passphrase())),
        _ => None,
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<Zeroizing<String>>;

pub(crate) fn resolve_with(
    source: &KeySource,
    file: &StoreFile<'_>,
    prompt: PassphrasePrompt<'_>,
    lookup: Lookup<'_>,
) -> Result<(WrappingKey, KeyOrigin), Error> {
    let store = file.path();
    if let Some(file) = &source.key_file {
        let key = MasterKey::from_file(file).map_err(key_error)?;
        return Ok((key.into(), KeyOrigin::File(file.clone())));
    }
    if let Some(var) = &source.key_env {
        return key_from(var, lookup);
    }
    if let Some(var) = &source.passphrase_env {
        return passphrase_from(var, lookup);
    }
    let set = |var: &str| lookup(var).is_some();
    let kinds = local_kinds(file);
    let default = default_key_file(store);
    if let Some((true, master)) = kinds {
        if set(PASSPHRASE_VAR) {
            return passphrase_from(PASSPHRASE_VAR, lookup);
        }
        // A store with both kinds of slot takes a master key that is at hand before asking.
        let master_at_hand = master && (set(MASTER_KEY_VAR) || default.exists());
        if !master_at_hand {
            if let Some(ask) = prompt {
                return Ok((ask()?.into(), KeyOrigin::Prompt));
            }
            if !master {
                return Err(Error::config(format!(
                    "{} is sealed with a passphrase: set {PASSPHRASE_VAR} (or passphrase_env)",
                    store.display()
                )));
            }
        }
    }
    if set(MASTER_KEY_VAR) {
        return key_from(MASTER_KEY_VAR, lookup);
    }
    if kinds.is_none() && set(PASSPHRASE_VAR) {
        return passphrase_from(PASSPHRASE_VAR, lookup);
    }
    match MasterKey::from_file(&default) {
        Ok(key) => Ok((key.into(), KeyOrigin::File(default))),
        Err(strongroom_envelope::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(Error::config(format!(
                "no master key for {}: set key_file (--key-file, STRONGROOM_KEY_FILE), \
                 key_env or passphrase_env, set {MASTER_KEY_VAR}, or put the key in {}",
                store.display(),
                default.display()
            )))
        }
        Err(err) => Err(key_error(err)),
    }
}

fn key_from(var: &str, lookup: Lookup<'_>) -> Result<(WrappingKey, KeyOrigin), Error> {
    let text = lookup(var).unwrap_or_default();
    let key = MasterKey::from_base64(text.trim()).map_err(|_| {
        Error::config(format!(
            "the master key variable {var} is unset, empty, not UTF-8, or not the base64 of \
             32 bytes"
        ))
    })?;
    Ok((key.into(), KeyOrigin::KeyVariable(var.to_owned())))
}

fn passphrase_from(var: &str, lookup: Lookup<'_>) -> Result<(WrappingKey, KeyOrigin), Error> {
    match lookup(var) {
        Some(text) if !text.is_empty() => Ok((
            Passphrase::new(text.as_str()).into(),
            KeyOrigin::PassphraseVariable(var.to_owned()),
        )),
        _ => Err(Error::config(format!(
            "the passphrase variable {var} is unset, empty or not UTF-8"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strongroom_local::FileStore;

    use super::*;

    struct Env(BTreeMap<&'static str, String>);

    impl Env {
        fn of(pairs: &[(&'static str, String)]) -> Self {
            Self(pairs.iter().cloned().collect())
        }
        fn resolve(&self, source: &KeySource, store: &Path) -> Result<KeyOrigin, Error> {
            let lookup = |name: &str| self.0.get(name).map(|v| Zeroizing::new(v.clone()));
            resolve_with(source, &StoreFile::new(store), None, &lookup).map(|(_, origin)| origin)
        }
    }

    fn key_b64() -> String {
        MasterKey::generate().unwrap().to_base64().to_string()
    }

    #[test]
    fn named_sources_come_first_in_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.enc");
        let file = dir.path().join("k");
        MasterKey::generate()
            .unwrap()
            .write_new_file(&file)
            .unwrap();
        let env = Env::of(&[
            ("APP_KEY", key_b64()),
            ("APP_PASS", "pw".into()),
            (MASTER_KEY_VAR, key_b64()),
        ]);
        let all = KeySource {
            keys: Vec::new(),
            key_file: Some(file.clone()),
            key_env: Some("APP_KEY".into()),
            passphrase_env: Some("APP_PASS".into()),
        };
        assert_eq!(env.resolve(&all, &store).unwrap(), KeyOrigin::File(file));
        let vars = KeySource {
            key_file: None,
            ..all.clone()
        };
        assert_eq!(
            env.resolve(&vars, &store).unwrap(),
            KeyOrigin::KeyVariable("APP_KEY".into())
        );
        let pass = KeySource {
            key_env: None,
            ..vars
        };
        assert_eq!(
            env.resolve(&pass, &store).unwrap(),
            KeyOrigin::PassphraseVariable("APP_PASS".into())
        );
    }

    #[test]
    fn a_new_store_takes_the_key_variable_then_the_passphrase_then_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("new.enc");
        let none = KeySource::default();
        let both = Env::of(&[(MASTER_KEY_VAR, key_b64()), (PASSPHRASE_VAR, "pw".into())]);
        assert_eq!(
            both.resolve(&none, &store).unwrap(),
            KeyOrigin::KeyVariable(MASTER_KEY_VAR.into())
        );
        let pass = Env::of(&[(PASSPHRASE_VAR, "pw".into())]);
        assert!(pass.resolve(&none, &store).unwrap().is_passphrase());
        let nothing = Env::of(&[]);
        let err = nothing.resolve(&none, &store).unwrap_err();
        assert!(err.to_string().contains("new.enc.key"), "{err}");
        MasterKey::generate()
            .unwrap()
            .write_new_file(default_key_file(&store))
            .unwrap();
        assert_eq!(
            nothing.resolve(&none, &store).unwrap(),
            KeyOrigin::File(default_key_file(&store))
        );
    }

    #[test]
    fn the_header_decides_between_passphrase_and_key_sources() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = dir.path().join("keyed.enc");
        let key = MasterKey::generate().unwrap();
        key.write_new_file(default_key_file(&keyed)).unwrap();
        FileStore::create(&keyed, key).unwrap();
        let sealed = dir.path().join("sealed.enc");
        FileStore::create(&sealed, Passphrase::new("pw").with_iterations(1000)).unwrap();

        let env = Env::of(&[(PASSPHRASE_VAR, "pw".into())]);
        let none = KeySource::default();
        // A passphrase exported for one store never shadows another store's key file.
        assert_eq!(
            env.resolve(&none, &keyed).unwrap(),
            KeyOrigin::File(default_key_file(&keyed))
        );
        assert!(env.resolve(&none, &sealed).unwrap().is_passphrase());
        // A passphrase store ignores the master key variable and says what it needs.
        let key_only = Env::of(&[(MASTER_KEY_VAR, key_b64())]);
        let err = key_only.resolve(&none, &sealed).unwrap_err();
        assert!(err.to_string().contains(PASSPHRASE_VAR), "{err}");
        let asked = resolve_with(
            &none,
            &StoreFile::new(&sealed),
            Some(&|| Ok(Passphrase::new("pw"))),
            &|_| None,
        )
        .unwrap()
        .1;
        assert_eq!(asked, KeyOrigin::Prompt);
    }

    #[test]
    fn a_bad_variable_is_named_and_its_value_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.enc");
        let env = Env::of(&[(MASTER_KEY_VAR, "not-base64-secretvalue".into())]);
        let err = env.resolve(&KeySource::default(), &store).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(MASTER_KEY_VAR) && !text.contains("secretvalue"),
            "{text}"
        );
        let err = env
            .resolve(
                &KeySource {
                    passphrase_env: Some("EMPTY".into()),
                    ..KeySource::default()
                },
                &store,
            )
            .unwrap_err();
        assert!(err.to_string().contains("EMPTY"), "{err}");
    }
}
