//! Key slots of a [`FileStore`]: reading them without a key, the key-service context of a
//! store, and adding, removing and re-wrapping slots on an open store.
//!
//! Every change here goes through the same write path as a put ([`Inner::transact`]): under
//! the writer lock, on the file as it is now (another process may have changed its slots),
//! replaced atomically (temporary file, fsync, rename, directory fsync). A crash leaves the
//! old slot table or the new one, never neither.

use std::path::Path;
use std::sync::Arc;

use strongroom_core::{Error, KeyContext};
use strongroom_envelope::{
    CONTEXT_FORMAT, CONTEXT_FORMAT_VALUE, CONTEXT_STORE_ID, DataKey, Header, KeySlot, SlotTable,
    StoreId, WrappingKey,
};

use crate::file::{BACKEND, FileStore, Inner};

/// The data key and slot table a version-2 store file was sealed with.
#[derive(Debug)]
pub(crate) struct FileKeys {
    data_key: Arc<DataKey>,
    slots: SlotTable,
}

impl FileKeys {
    /// The keys of a new store: a new store id and data key, one slot for `key`.
    pub(crate) fn new(key: &WrappingKey) -> Result<FileKeys, Error> {
        let data_key = DataKey::generate().map_err(crate::key_error)?;
        let slot = KeySlot::wrap_local(&data_key, key).map_err(crate::key_error)?;
        let store_id = StoreId::generate().map_err(crate::key_error)?;
        let slots = SlotTable::new(store_id, vec![slot]).map_err(crate::key_error)?;
        Ok(FileKeys::from_parts(data_key, slots))
    }

    pub(crate) fn from_parts(data_key: DataKey, slots: SlotTable) -> FileKeys {
        FileKeys {
            data_key: Arc::new(data_key),
            slots,
        }
    }

    pub(crate) fn data_key(&self) -> &DataKey {
        &self.data_key
    }

    pub(crate) fn data_key_arc(&self) -> &Arc<DataKey> {
        &self.data_key
    }

    pub(crate) fn slots(&self) -> &SlotTable {
        &self.slots
    }
}

/// What a store file says about the keys that open it, read without any key
/// ([`FileStore::read_slots`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSlots {
    /// Envelope format version 1, written by earlier releases: one master key or passphrase
    /// (the header says which) and no slot table. The store's next write makes it
    /// [`Slotted`](Self::Slotted), with one slot for the key it was opened with.
    Single(Header),
    /// Envelope format version 2: the store id and the key slots.
    Slotted(SlotTable),
}

/// The key-service context of a store's remote slots (AWS KMS encryption context, Transit
/// associated data): `strongroom:format` = `2` and `strongroom:store-id` = the store id in
/// lowercase hex. docs/envelope-format.md specifies it; a slot wrapped with any other
/// context does not unwrap.
pub fn key_context(store_id: &StoreId) -> KeyContext {
    KeyContext::new()
        .with(CONTEXT_FORMAT, CONTEXT_FORMAT_VALUE)
        .with(CONTEXT_STORE_ID, store_id.to_hex())
}

impl FileStore {
    /// The slots of the store at `path`, read without any key: to list them (`strongroom key
    /// list`) and to choose which one to unwrap before
    /// [`open_with_data_key`](Self::open_with_data_key).
    ///
    /// # Errors
    /// [`Error::Config`] when there is no store file; [`Error::Backend`] when it cannot be
    /// read or is not a strongroom store (or was written by a newer format).
    pub fn read_slots(path: impl AsRef<Path>) -> Result<StoreSlots, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                Error::config(format!(
                    "no store at {}; create one with `strongroom init`",
                    path.display()
                ))
            } else {
                Error::backend(BACKEND, format!("cannot read {}", path.display()), err)
            }
        })?;
        let malformed = |err| slots_error(path, err);
        if strongroom_envelope::format_version(&bytes).map_err(malformed)? == 1 {
            return Header::parse(&bytes)
                .map(StoreSlots::Single)
                .map_err(malformed);
        }
        SlotTable::parse(&bytes)
            .map(StoreSlots::Slotted)
            .map_err(malformed)
    }

    /// The slots of this store's file as it is now; see [`read_slots`](Self::read_slots).
    ///
    /// # Errors
    /// As [`read_slots`](Self::read_slots).
    pub async fn slots(&self) -> Result<StoreSlots, Error> {
        self.blocking(|inner| FileStore::read_slots(&inner.path))
            .await
    }

    /// The store id and the data key, for wrapping the data key in a new remote slot:
    /// `provider.wrap(&data_key.expose_bytes()[..], &key_context(&store_id))`, then
    /// [`add_slot`](Self::add_slot) with the same store id.
    ///
    /// A version-1 file has neither: it is written as version 2 first (a write; see the
    /// type's docs). The data key is a copy, wiped when dropped; it opens the store on its
    /// own, so keep it no longer than the wrap.
    ///
    /// # Errors
    /// As a write.
    pub async fn data_key(&self) -> Result<(StoreId, DataKey), Error> {
        self.blocking(|inner| {
            let snapshot = inner.load_snapshot()?;
            if let Some(keys) = &snapshot.keys {
                return Ok((keys.slots().store_id(), DataKey::clone(keys.data_key())));
            }
            drop(snapshot);
            // Writes the version-1 file as version 2, with the same document.
            inner.transact(|_, keys| {
                Ok((
                    (keys.slots().store_id(), DataKey::clone(keys.data_key())),
                    None,
                ))
            })
        })
        .await
    }

    /// Adds a slot made elsewhere: a remote one (kind, key id and the service's ciphertext
    /// of the data key from [`data_key`](Self::data_key)), or a local one.
    ///
    /// `store_id` is the id the slot was wrapped for (the one [`data_key`](Self::data_key)
    /// returned): if the file at this path is now another store, the slot is refused rather
    /// than added to a store whose data key it does not hold.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the store id differs; [`Error::Config`] when the store
    /// already has [`MAX_SLOTS`](strongroom_envelope::MAX_SLOTS) slots; as a write.
    pub async fn add_slot(&self, slot: KeySlot, store_id: StoreId) -> Result<(), Error> {
        self.change_slots(move |inner, keys| {
            if keys.slots().store_id() != store_id {
                return Err(Error::Conflict {
                    key: inner.path.display().to_string(),
                    message: "the slot was wrapped for another store (the file was replaced)"
                        .to_owned(),
                });
            }
            let mut slots = keys.slots().slots().to_vec();
            slots.push(slot);
            new_table(inner, keys, slots)
        })
        .await
    }

    /// Adds a slot for a master key or passphrase: the store's data key wrapped by `key`.
    ///
    /// # Errors
    /// As [`add_slot`](Self::add_slot).
    pub async fn add_key(&self, key: impl Into<WrappingKey>) -> Result<(), Error> {
        let key = key.into();
        self.change_slots(move |inner, keys| {
            let mut slots = keys.slots().slots().to_vec();
            slots.push(KeySlot::wrap_local(keys.data_key(), &key).map_err(crate::key_error)?);
            new_table(inner, keys, slots)
        })
        .await
    }

    /// Removes `slot` (as read from [`slots`](Self::slots); matched by its bytes).
    ///
    /// Refuses to remove the last slot of a kind this build knows: the store could not be
    /// opened again. This handle keeps working whichever slot it was opened with.
    ///
    /// # Errors
    /// [`Error::Config`] for the last slot; [`Error::Conflict`] when the store has no such
    /// slot (another process changed the slots since they were read); as a write.
    pub async fn remove_slot(&self, slot: &KeySlot) -> Result<(), Error> {
        let slot = slot.clone();
        self.change_slots(move |inner, keys| {
            let mut slots = keys.slots().slots().to_vec();
            let at = position(inner, &slots, &slot)?;
            slots.remove(at);
            if !slots.iter().any(|s| s.kind().is_known()) {
                return Err(Error::config(format!(
                    "refusing to remove the last key slot of {}: nothing could open the store \
                     again; add another slot first",
                    inner.path.display()
                )));
            }
            new_table(inner, keys, slots)
        })
        .await
    }

    /// Replaces `old` with `new`, at the same position: a slot re-wrapped by its service (a
    /// Transit `rewrap` after the Transit key was rotated, a KMS key changed) or made for a
    /// new passphrase. Per-slot rekey; the other slots are untouched.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the store has no slot `old`; as a write.
    pub async fn replace_slot(&self, old: &KeySlot, new: KeySlot) -> Result<(), Error> {
        let old = old.clone();
        self.change_slots(move |inner, keys| {
            let mut slots = keys.slots().slots().to_vec();
            let at = position(inner, &slots, &old)?;
            slots[at] = new;
            new_table(inner, keys, slots)
        })
        .await
    }

    /// Replaces `old` with a slot for the master key or passphrase `key`; see
    /// [`replace_slot`](Self::replace_slot).
    ///
    /// # Errors
    /// As [`replace_slot`](Self::replace_slot).
    pub async fn replace_slot_with_key(
        &self,
        old: &KeySlot,
        key: impl Into<WrappingKey>,
    ) -> Result<(), Error> {
        let (old, key) = (old.clone(), key.into());
        self.change_slots(move |inner, keys| {
            let mut slots = keys.slots().slots().to_vec();
            let at = position(inner, &slots, &old)?;
            slots[at] = KeySlot::wrap_local(keys.data_key(), &key).map_err(crate::key_error)?;
            new_table(inner, keys, slots)
        })
        .await
    }

    /// Re-wraps the store under `new_key` in place of the master key or passphrase this
    /// handle was opened with, and uses it from now on.
    ///
    /// Every slot the current key opens is replaced by one slot for `new_key` (at the first
    /// one's position); other slots (a KMS slot, a recovery passphrase) are kept. The data key
    /// and the secrets are not re-encrypted under a new key, and the file is replaced
    /// atomically: a crash leaves it readable with the old key or the new one. Other
    /// processes holding the old key can no longer open the store. A version-1 file is
    /// written as version 2 with one slot, for `new_key`.
    ///
    /// # Errors
    /// [`Error::Config`] for a handle opened with a data key (it has no key to replace: use
    /// [`replace_slot`](Self::replace_slot)); [`Error::Decrypt`] when the current key opens
    /// no slot any more; as a write.
    pub async fn rotate_key(&self, new_key: impl Into<WrappingKey>) -> Result<(), Error> {
        let new_key = Arc::new(new_key.into());
        self.blocking(move |inner| {
            let Some(old) = inner.wrapping_key() else {
                return Err(Error::config(format!(
                    "{} was opened with a data key, not a master key or passphrase; \
                     replace a slot instead",
                    inner.path.display()
                )));
            };
            inner.transact(|_, keys| {
                let data_key = keys.data_key().expose_bytes();
                let mut slots = Vec::with_capacity(keys.slots().slots().len());
                let mut replaced = false;
                for slot in keys.slots().slots() {
                    let opens = slot
                        .unwrap_local(&old)
                        .is_ok_and(|unwrapped| *unwrapped.expose_bytes() == *data_key);
                    if !opens {
                        slots.push(slot.clone());
                    } else if !replaced {
                        replaced = true;
                        slots.push(
                            KeySlot::wrap_local(keys.data_key(), &new_key)
                                .map_err(crate::key_error)?,
                        );
                    }
                }
                if !replaced {
                    return Err(inner.decrypt_error());
                }
                Ok(((), Some(new_table(inner, keys, slots)?)))
            })?;
            inner.set_wrapping_key(new_key);
            Ok(())
        })
        .await
    }

    /// Runs a slot change as a write: `op` gets the current keys and returns the new table.
    async fn change_slots(
        &self,
        op: impl FnOnce(&Inner, &FileKeys) -> Result<SlotTable, Error> + Send + 'static,
    ) -> Result<(), Error> {
        self.blocking(move |inner| inner.transact(|_, keys| Ok(((), Some(op(inner, keys)?)))))
            .await
    }
}

/// The table of `slots` for the store of `keys`.
fn new_table(inner: &Inner, keys: &FileKeys, slots: Vec<KeySlot>) -> Result<SlotTable, Error> {
    SlotTable::new(keys.slots().store_id(), slots).map_err(|_| {
        Error::config(format!(
            "{} already has {} key slots, the most a store can hold; remove one first",
            inner.path.display(),
            strongroom_envelope::MAX_SLOTS
        ))
    })
}

/// Where `slot` is in `slots`.
fn position(inner: &Inner, slots: &[KeySlot], slot: &KeySlot) -> Result<usize, Error> {
    slots
        .iter()
        .position(|s| s == slot)
        .ok_or_else(|| Error::Conflict {
            key: inner.path.display().to_string(),
            message: format!(
                "the store has no such {} slot (its slots changed since they were read)",
                slot.kind()
            ),
        })
}

/// An envelope error from reading a store's slots without a key.
fn slots_error(path: &Path, err: strongroom_envelope::Error) -> Error {
    match err {
        strongroom_envelope::Error::UnsupportedVersion { version } => Error::Backend {
            backend: BACKEND,
            message: format!(
                "{} uses envelope format version {version}, which this strongroom cannot read; \
                 upgrade strongroom to open it",
                path.display()
            ),
            source: None,
        },
        other => Error::backend(
            BACKEND,
            format!("{} is not a strongroom store", path.display()),
            other,
        ),
    }
}
