//! `init --key`, `key list|add|remove` and `rekey --slot`: the key slots of a local store.
//! Which key opens a store, and how a slot is made, is the facade's (`open_keyed`,
//! `new_slot`); this module only says what to do and prints it.

use std::path::Path;

use serde_json::{Value, json};
use strongroom_core::Error;
use strongroom_envelope::{KeySlot, SlotKind, SlotTable};
use strongroom_facade::{KeySpec, create_keyed, key_provider, local_key, new_slot, slot_spec};
use strongroom_local::{FileStore, StoreSlots, key_context, key_error};

use crate::args::{Global, KeyCommand};
use crate::keys;
use crate::output::Printer;
use crate::store;

/// Asks for the passphrase that opens a store.
fn ask_current() -> Result<strongroom_envelope::Passphrase, Error> {
    keys::passphrase(keys::PASSPHRASE_VAR, "passphrase", false)
}

/// Asks for a new passphrase, twice.
fn ask_new() -> Result<strongroom_envelope::Passphrase, Error> {
    keys::passphrase(keys::PASSPHRASE_VAR, "new passphrase", true)
}

/// `init --key ...`: a new store with one slot per key.
pub(crate) async fn init(path: &Path, specs: &[KeySpec], out: &Printer) -> Result<(), Error> {
    for spec in specs {
        if let KeySpec::File(file) = spec
            && !file.exists()
        {
            crate::commands::new_key_file(file)?;
        }
    }
    let store = create_keyed(FileStore::builder(path), specs, Some(&ask_new)).await?;
    let names: Vec<String> = specs.iter().map(ToString::to_string).collect();
    out.done(
        &format!(
            "created {} with {} key slot{}: {}",
            store.path().display(),
            specs.len(),
            if specs.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
        json!({ "store": store.path().display().to_string(), "keys": names }),
    )
}

/// `key list|add|remove`.
pub(crate) async fn run(global: &Global, command: KeyCommand, out: &Printer) -> Result<(), Error> {
    match command {
        KeyCommand::List => list(global, out),
        KeyCommand::Add { key } => add(global, &key, out).await,
        KeyCommand::Remove { slot } => remove(global, &slot, out).await,
    }
}

fn list(global: &Global, out: &Printer) -> Result<(), Error> {
    let path = store::local_path_of(global)?;
    let (format, store_id, rows): (u8, Option<String>, Vec<Value>) =
        match FileStore::read_slots(&path)? {
            StoreSlots::Single(header) => {
                let kind = if header.is_passphrase() {
                    SlotKind::Passphrase
                } else {
                    SlotKind::MasterKey
                };
                (1, None, vec![row(1, kind, "", header.iterations())])
            }
            StoreSlots::Slotted(table) => (
                2,
                Some(table.store_id().to_hex()),
                table
                    .slots()
                    .iter()
                    .enumerate()
                    .map(|(at, slot)| row(at + 1, slot.kind(), slot.key_id(), slot.iterations()))
                    .collect(),
            ),
            _ => return Err(Error::config("a store format this build does not list")),
        };
    let mut text = format!("{} (format {format})", path.display());
    for slot in &rows {
        text.push_str(&format!(
            "\n{:>3}  {:<14} {}",
            slot["slot"],
            slot["kind"].as_str().unwrap_or_default(),
            slot["key_id"].as_str().unwrap_or_default()
        ));
        if let Some(iterations) = slot["iterations"].as_u64() {
            text.push_str(&format!("(PBKDF2, {iterations} iterations)"));
        }
    }
    out.done(
        &text,
        json!({
            "store": path.display().to_string(),
            "format": format,
            "store_id": store_id,
            "slots": rows,
        }),
    )
}

fn row(number: usize, kind: SlotKind, key_id: &str, iterations: Option<u32>) -> Value {
    json!({
        "slot": number,
        "kind": kind.to_string(),
        "key_id": key_id,
        "iterations": iterations,
    })
}

async fn add(global: &Global, spec: &KeySpec, out: &Printer) -> Result<(), Error> {
    let (store, _) = store::open_local(global)?;
    match spec {
        KeySpec::Passphrase => {
            let passphrase = keys::passphrase(keys::NEW_PASSPHRASE_VAR, "new passphrase", true)?;
            store.add_key(passphrase).await?;
        }
        KeySpec::File(file) if !file.exists() => {
            let key = crate::commands::new_key_file(file)?;
            store.add_key(key).await?;
        }
        _ => {
            let (store_id, data_key) = store.data_key().await?;
            let slot = new_slot(spec, &data_key, &key_context(&store_id), None).await?;
            drop(data_key);
            store.add_slot(slot, store_id).await?;
        }
    }
    out.done(
        &format!("added a {spec} slot to {}", store.path().display()),
        json!({ "store": store.path().display().to_string(), "key": spec.to_string() }),
    )
}

async fn remove(global: &Global, which: &str, out: &Printer) -> Result<(), Error> {
    let (store, _) = store::open_local(global)?;
    let table = slotted(&store).await?;
    let slot = find(&table, which)?;
    store.remove_slot(&slot).await?;
    out.done(
        &format!(
            "removed the {} slot from {}",
            describe(&slot),
            store.path().display()
        ),
        json!({
            "store": store.path().display().to_string(),
            "kind": slot.kind().to_string(),
            "key_id": slot.key_id(),
        }),
    )
}

/// `rekey --slot KEY`: re-wraps one slot.
pub(crate) async fn rekey(global: &Global, spec: &KeySpec, out: &Printer) -> Result<(), Error> {
    let (store, _) = store::open_local(global)?;
    let table = slotted(&store).await?;
    let old = find(&table, &spec.to_string())?;
    match spec {
        KeySpec::Passphrase => {
            let passphrase = keys::passphrase(keys::NEW_PASSPHRASE_VAR, "new passphrase", true)?;
            store.replace_slot_with_key(&old, passphrase).await?;
        }
        KeySpec::File(_) | KeySpec::Env(_) => {
            return Err(Error::config(format!(
                "a master key slot is replaced, not re-wrapped: `strongroom key add file:NEW` \
                 then `strongroom key remove {spec}` (or `strongroom rekey --new-key-file`)"
            )));
        }
        _ => {
            let provider = key_provider(spec)?;
            let context = key_context(&table.store_id());
            let rewrapped = provider.rewrap(old.wrapped(), &context).await?;
            let new = KeySlot::new(old.kind(), old.key_id(), rewrapped).map_err(key_error)?;
            // The new ciphertext must open to the store's own data key before it replaces
            // the old one.
            let unwrapped = provider.unwrap(new.wrapped(), &context).await?;
            let (_, data_key) = store.data_key().await?;
            if unwrapped.expose() != &data_key.expose_bytes()[..] {
                return Err(Error::Decrypt {
                    what: format!("the re-wrapped {spec} slot"),
                });
            }
            store.replace_slot(&old, new).await?;
        }
    }
    out.done(
        &format!("re-wrapped the {spec} slot of {}", store.path().display()),
        json!({ "store": store.path().display().to_string(), "key": spec.to_string() }),
    )
}

/// A slot as people name it: `aws-kms:alias/app`, or its kind for a local slot.
fn describe(slot: &KeySlot) -> String {
    slot_spec(slot).map_or_else(|| slot.kind().to_string(), |spec| spec.to_string())
}

/// The store's slot table, a version-1 file written as version 2 first.
async fn slotted(store: &FileStore) -> Result<SlotTable, Error> {
    if let StoreSlots::Slotted(table) = store.slots().await? {
        return Ok(table);
    }
    store.data_key().await?;
    match store.slots().await? {
        StoreSlots::Slotted(table) => Ok(table),
        _ => Err(Error::config("the store could not be given key slots")),
    }
}

/// The slot `which` names: its number in `key list`, or a key that opens it.
fn find(table: &SlotTable, which: &str) -> Result<KeySlot, Error> {
    let slots = table.slots();
    if let Ok(number) = which.parse::<usize>() {
        return number
            .checked_sub(1)
            .and_then(|at| slots.get(at))
            .cloned()
            .ok_or_else(|| {
                Error::config(format!(
                    "the store has no slot {number}: it has {} (`strongroom key list`)",
                    slots.len()
                ))
            });
    }
    let spec: KeySpec = which.parse()?;
    let found = if spec.is_remote() {
        slots
            .iter()
            .find(|slot| slot_spec(slot).as_ref() == Some(&spec))
    } else {
        let prompt: strongroom_facade::PassphrasePrompt<'_> = Some(&ask_current);
        let (key, _) = local_key(&spec, prompt)?;
        slots
            .iter()
            .find(|slot| slot.kind().is_local() && slot.unwrap_local(&key).is_ok())
    };
    found.cloned().ok_or_else(|| {
        Error::config(format!(
            "no slot of the store opens with {spec} (`strongroom key list` shows them)"
        ))
    })
}
