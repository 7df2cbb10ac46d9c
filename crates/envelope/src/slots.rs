//! Version 2 of the envelope: one data key with several wrapped copies of it, the *key slots*
//! (like LUKS key slots or age recipients), so a store can be opened by any one of a master
//! key, a passphrase, AWS KMS or Vault Transit.
//!
//! ```text
//! "SREN" 02 store-id(16) count slot... payload-nonce GCM(data key, nonce, aad = bytes 0..21, plaintext)
//! slot = kind(1) key-id-len(u16) wrapped-len(u16) key-id wrapped
//! ```
//!
//! The payload's AAD is the magic, the version and the store id, not the slot table: adding,
//! removing or re-wrapping a slot never re-encrypts the payload ([`reslot`]). Each slot
//! protects itself: a local slot is a wrapped data key (`SRDK`, authenticated by GCM under
//! its master key or passphrase); a remote slot is the key service's ciphertext, which the
//! service authenticates together with the store's [context](StoreId::context_pairs).
//! docs/envelope-format.md ("Version 2") is the byte-by-byte specification.
//!
//! A remote slot is unwrapped by the caller (this crate does no I/O): read the table with
//! [`SlotTable::parse`], pick a slot, have the service unwrap [`KeySlot::wrapped`] with the
//! context of [`SlotTable::store_id`], then [`DataKey::from_bytes`] and [`open_slotted`].

use std::fmt;

use ring::rand::SystemRandom;

use crate::cipher::{fill_random, random_nonce};
use crate::data_key::{DataKey, Section};
use crate::error::Error;
use crate::format::{self, Header, MAGIC, NONCE_LEN, TAG_LEN};
use crate::plaintext::Plaintext;
use crate::wrapping_key::WrappingKey;

/// The format version of an envelope with key slots (byte 4 of the file).
pub const SLOTTED_VERSION: u8 = 2;
/// Length of a store id.
pub const STORE_ID_LEN: usize = 16;
/// The most key slots one envelope holds. Enough for every provider a team would combine
/// (servers, people, recovery), small enough that a reader's work is bounded.
pub const MAX_SLOTS: usize = 16;
/// The longest key id, in bytes: AWS KMS's own limit for a `KeyId` (an alias ARN is at most
/// about 300 in practice); a Transit key name is a path segment.
pub const MAX_KEY_ID_LEN: usize = 2048;
/// The longest wrapped key, in bytes: a KMS ciphertext of a 32-byte key is about 200, a
/// Transit one about 100, a local slot 66 or 86.
pub const MAX_WRAPPED_LEN: usize = 4096;

/// The name of the key-service context pair that binds a remote slot to its store; the value
/// is [`StoreId::to_hex`]. See [`StoreId::context_pairs`].
pub const CONTEXT_STORE_ID: &str = "strongroom:store-id";
/// The name of the key-service context pair that binds a remote slot to this format; the
/// value is [`CONTEXT_FORMAT_VALUE`].
pub const CONTEXT_FORMAT: &str = "strongroom:format";
/// The value of the [`CONTEXT_FORMAT`] pair: the slotted format's version, in decimal.
pub const CONTEXT_FORMAT_VALUE: &str = "2";

/// Magic, version, store id: the fixed header, and the payload's AAD.
const HEADER_LEN: usize = MAGIC.len() + 1 + STORE_ID_LEN;
/// Kind, key id length, wrapped key length.
const SLOT_FIXED_LEN: usize = 1 + 2 + 2;

/// A store's random 16-byte identity, written in clear in its slotted envelope and bound to
/// the payload (it is in the payload's AAD) and to every remote slot (it is in the key
/// service's context). It is not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId([u8; STORE_ID_LEN]);

impl StoreId {
    /// A fresh random store id (ring's `SystemRandom`).
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails.
    pub fn generate() -> Result<StoreId, Error> {
        let mut bytes = [0u8; STORE_ID_LEN];
        fill_random(&SystemRandom::new(), &mut bytes)?;
        Ok(StoreId(bytes))
    }

    /// The store id with these bytes.
    pub fn from_bytes(bytes: [u8; STORE_ID_LEN]) -> StoreId {
        StoreId(bytes)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; STORE_ID_LEN] {
        &self.0
    }

    /// Lowercase hex, 32 characters: the value of the [`CONTEXT_STORE_ID`] pair.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(32), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    /// The context a remote slot of this store is wrapped with (AWS KMS encryption context,
    /// Transit associated data), as (name, value) pairs sorted by name:
    /// `strongroom:format` = `2` and `strongroom:store-id` = [`to_hex`](Self::to_hex).
    ///
    /// This crate does not depend on strongroom-core; its `KeyContext` is built from these
    /// pairs (strongroom-local's `key_context` does it).
    pub fn context_pairs(&self) -> [(&'static str, String); 2] {
        [
            (CONTEXT_FORMAT, CONTEXT_FORMAT_VALUE.to_owned()),
            (CONTEXT_STORE_ID, self.to_hex()),
        ]
    }
}

impl fmt::Debug for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreId({})", self.to_hex())
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What wraps the data key in a slot: the slot's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlotKind {
    /// A 32-byte master key (byte `01`); the slot holds a wrapped data key (`SRDK`, scheme 1).
    MasterKey,
    /// A passphrase (byte `02`); the slot holds a wrapped data key (`SRDK`, scheme 2).
    Passphrase,
    /// AWS KMS (byte `03`); the slot holds a KMS ciphertext blob, the key id a key id, ARN or
    /// alias.
    AwsKms,
    /// Vault or OpenBao Transit (byte `04`); the slot holds the Transit ciphertext, the key id
    /// the Transit key's name.
    VaultTransit,
    /// A kind this build does not know (bytes `05` to `ff`, from a newer strongroom): kept as
    /// it is when the table is rewritten, never used to open.
    Unknown(u8),
}

impl SlotKind {
    /// The byte that stands for this kind in a file.
    pub fn code(self) -> u8 {
        match self {
            SlotKind::MasterKey => 1,
            SlotKind::Passphrase => 2,
            SlotKind::AwsKms => 3,
            SlotKind::VaultTransit => 4,
            SlotKind::Unknown(code) => code,
        }
    }

    /// The kind a byte stands for; `None` for `00`, which is never a kind (so a zeroed file
    /// does not parse).
    pub fn from_code(code: u8) -> Option<SlotKind> {
        Some(match code {
            0 => return None,
            1 => SlotKind::MasterKey,
            2 => SlotKind::Passphrase,
            3 => SlotKind::AwsKms,
            4 => SlotKind::VaultTransit,
            other => SlotKind::Unknown(other),
        })
    }

    /// The kind's name, as in a CLI `--key` value and a `KeyProvider::kind()`:
    /// `master-key`, `passphrase`, `aws-kms`, `vault-transit`; `unknown` for the rest.
    pub fn name(self) -> &'static str {
        match self {
            SlotKind::MasterKey => "master-key",
            SlotKind::Passphrase => "passphrase",
            SlotKind::AwsKms => "aws-kms",
            SlotKind::VaultTransit => "vault-transit",
            SlotKind::Unknown(_) => "unknown",
        }
    }

    /// The known kind with this [`name`](Self::name) (a `KeyProvider::kind()`).
    pub fn from_name(name: &str) -> Option<SlotKind> {
        [
            SlotKind::MasterKey,
            SlotKind::Passphrase,
            SlotKind::AwsKms,
            SlotKind::VaultTransit,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }

    /// Whether a [`WrappingKey`] opens slots of this kind (master key, passphrase), with no
    /// key service involved.
    pub fn is_local(self) -> bool {
        matches!(self, SlotKind::MasterKey | SlotKind::Passphrase)
    }

    /// Whether this build knows the kind.
    pub fn is_known(self) -> bool {
        !matches!(self, SlotKind::Unknown(_))
    }

    /// The local kind of a wrapping key.
    fn of_key(key: &WrappingKey) -> SlotKind {
        match key {
            WrappingKey::Master(_) => SlotKind::MasterKey,
            WrappingKey::Passphrase(_) => SlotKind::Passphrase,
        }
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotKind::Unknown(code) => write!(f, "unknown kind {code:#04x}"),
            known => f.write_str(known.name()),
        }
    }
}

/// One key slot: the store's data key wrapped by one provider.
///
/// Nothing in a slot is secret (the data key in it is encrypted), but `Debug` shows the
/// wrapped key's length only, to keep logs short.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySlot {
    kind: SlotKind,
    key_id: String,
    wrapped: Vec<u8>,
}

impl KeySlot {
    /// A slot of `kind` holding `wrapped`, made by the key service for key `key_id`: how a
    /// remote slot (AWS KMS, Vault Transit) is made once the service has wrapped
    /// [`DataKey::expose_bytes`] with the store's [context](StoreId::context_pairs).
    ///
    /// # Errors
    /// [`Error::Slot`] when `key_id` is longer than [`MAX_KEY_ID_LEN`], `wrapped` is empty or
    /// longer than [`MAX_WRAPPED_LEN`], a remote kind has an empty key id, a local kind has a
    /// key id or `wrapped` is not a wrapped data key of its scheme (use
    /// [`wrap_local`](Self::wrap_local) for those), or the kind is `Unknown(0)`.
    pub fn new(
        kind: SlotKind,
        key_id: impl Into<String>,
        wrapped: Vec<u8>,
    ) -> Result<KeySlot, Error> {
        let key_id = key_id.into();
        let kind = SlotKind::from_code(kind.code()).ok_or(Error::Slot {
            reason: "slot kind 0 is reserved",
        })?;
        check_slot(kind, &key_id, &wrapped).map_err(|reason| Error::Slot { reason })?;
        Ok(KeySlot {
            kind,
            key_id,
            wrapped,
        })
    }

    /// A local slot: `data_key` wrapped by `key` ([`DataKey::wrap`]), of kind master key or
    /// passphrase as `key` is.
    ///
    /// # Errors
    /// As [`DataKey::wrap`].
    pub fn wrap_local(data_key: &DataKey, key: &WrappingKey) -> Result<KeySlot, Error> {
        Ok(KeySlot {
            kind: SlotKind::of_key(key),
            key_id: String::new(),
            wrapped: data_key.wrap(key)?,
        })
    }

    /// Unwraps a local slot's data key with `key`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] when `key` is wrong, of the other local kind, or the slot is not a
    /// local one (a wrapping key cannot open a KMS or Transit slot: the wrong kind of key is
    /// a wrong key, as in a version-1 envelope); the errors of [`DataKey::unwrap`] otherwise.
    pub fn unwrap_local(&self, key: &WrappingKey) -> Result<DataKey, Error> {
        if self.kind != SlotKind::of_key(key) {
            return Err(Error::Decrypt);
        }
        DataKey::unwrap(key, &self.wrapped)
    }

    /// What wraps the data key in this slot.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// Which key of the service wraps it (a KMS key id, ARN or alias; a Transit key name);
    /// empty for local slots.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The wrapped data key: for a local slot a wrapped data key (`SRDK`); for a remote one
    /// the service's ciphertext, to give to its decrypt call.
    pub fn wrapped(&self) -> &[u8] {
        &self.wrapped
    }

    /// The PBKDF2 iteration count of a passphrase slot.
    pub fn iterations(&self) -> Option<u32> {
        match self.kind {
            SlotKind::Passphrase => Header::parse_wrapped_key(&self.wrapped)
                .ok()
                .and_then(|header| header.iterations()),
            _ => None,
        }
    }

    /// Bytes this slot takes in a file.
    fn encoded_len(&self) -> usize {
        SLOT_FIXED_LEN + self.key_id.len() + self.wrapped.len()
    }

    /// Appends the slot's bytes. Lengths were checked when the slot was made.
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind.code());
        out.extend_from_slice(&u16_len(self.key_id.len()).to_be_bytes());
        out.extend_from_slice(&u16_len(self.wrapped.len()).to_be_bytes());
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&self.wrapped);
    }
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySlot")
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// A length already checked to be at most [`MAX_WRAPPED_LEN`], as a u16.
fn u16_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// The rules every slot follows, in a file or made here; the reason when one is broken.
fn check_slot(kind: SlotKind, key_id: &str, wrapped: &[u8]) -> Result<(), &'static str> {
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err("key id longer than 2048 bytes");
    }
    if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_LEN {
        return Err("wrapped key empty or longer than 4096 bytes");
    }
    match kind {
        SlotKind::MasterKey | SlotKind::Passphrase => {
            if !key_id.is_empty() {
                return Err("a master-key or passphrase slot has a key id");
            }
            let header = Header::parse_wrapped_key(wrapped)
                .map_err(|_| "a master-key or passphrase slot does not hold a wrapped data key")?;
            if header.is_passphrase() != (kind == SlotKind::Passphrase) {
                return Err("a slot's kind and its wrapped data key's scheme differ");
            }
        }
        SlotKind::AwsKms | SlotKind::VaultTransit => {
            if key_id.is_empty() {
                return Err("an aws-kms or vault-transit slot has no key id");
            }
        }
        SlotKind::Unknown(_) => {}
    }
    Ok(())
}

/// The unencrypted part of a slotted envelope: its store id and its key slots.
///
/// [`parse`](Self::parse) reads it from a file without any key, to list the slots or to pick
/// the one to open with; [`new`](Self::new) makes one to [`seal_slotted`] with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    store_id: StoreId,
    slots: Vec<KeySlot>,
}

impl SlotTable {
    /// A table of `slots` for the store `store_id`.
    ///
    /// # Errors
    /// [`Error::Slot`] for no slots or more than [`MAX_SLOTS`].
    pub fn new(store_id: StoreId, slots: Vec<KeySlot>) -> Result<SlotTable, Error> {
        if slots.is_empty() || slots.len() > MAX_SLOTS {
            return Err(Error::Slot {
                reason: "a store has 1 to 16 key slots",
            });
        }
        Ok(SlotTable { store_id, slots })
    }

    /// Parses the header and slot table of a slotted envelope, checking the whole framing
    /// (every slot, and that a payload section follows), without any key.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad magic, truncation, a count of 0 or above [`MAX_SLOTS`], a
    /// length over its bound, a key id that is not UTF-8, or a slot that breaks the rules of
    /// [`KeySlot::new`]; [`Error::UnsupportedVersion`] for a version other than 2 (a
    /// version-1 envelope has no slot table: see [`format_version`]).
    pub fn parse(file: &[u8]) -> Result<SlotTable, Error> {
        split(file).map(|parts| parts.table)
    }

    /// The store id.
    pub fn store_id(&self) -> StoreId {
        self.store_id
    }

    /// The slots, in file order.
    pub fn slots(&self) -> &[KeySlot] {
        &self.slots
    }

    /// The slots, taken out (to build the next table).
    pub fn into_slots(self) -> Vec<KeySlot> {
        self.slots
    }

    /// The header and the slot table's bytes.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&header(self.store_id));
        // At most MAX_SLOTS, checked when the table was made.
        out.push(u8::try_from(self.slots.len()).unwrap_or(u8::MAX));
        for slot in &self.slots {
            slot.encode(out);
        }
    }

    fn encoded_len(&self) -> usize {
        HEADER_LEN + 1 + self.slots.iter().map(KeySlot::encoded_len).sum::<usize>()
    }
}

/// Magic, version 2, store id: the first 21 bytes of the file, and the payload's AAD.
fn header(store_id: StoreId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..MAGIC.len()].copy_from_slice(&MAGIC);
    out[MAGIC.len()] = SLOTTED_VERSION;
    out[MAGIC.len() + 1..].copy_from_slice(store_id.as_bytes());
    out
}

/// The version of an envelope: 1 (one wrapped key: [`open`](crate::open)) or 2 (key slots:
/// [`SlotTable::parse`]). Checks only the magic and the version byte.
///
/// # Errors
/// [`Error::Malformed`] when the bytes are not an envelope; [`Error::UnsupportedVersion`] for
/// any other version.
pub fn format_version(envelope: &[u8]) -> Result<u8, Error> {
    format::envelope_version(envelope).map(|(version, _)| version)
}

/// A slotted envelope cut into its parts, every length checked.
struct Parts<'a> {
    table: SlotTable,
    /// Bytes 0..21: the payload's AAD.
    header: &'a [u8],
    payload: format::Payload<'a>,
}

/// A `Malformed` error for a slotted envelope.
fn malformed(reason: &'static str) -> Error {
    Error::Malformed { reason }
}

/// Takes `n` bytes from the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize, reason: &'static str) -> Result<&'a [u8], Error> {
    if rest.len() < n {
        return Err(malformed(reason));
    }
    let (front, back) = rest.split_at(n);
    *rest = back;
    Ok(front)
}

fn take_u16(rest: &mut &[u8], reason: &'static str) -> Result<usize, Error> {
    let bytes: [u8; 2] = format::array(take(rest, 2, reason)?)?;
    Ok(usize::from(u16::from_be_bytes(bytes)))
}

fn split(file: &[u8]) -> Result<Parts<'_>, Error> {
    let (version, mut rest) = format::envelope_version(file)?;
    if version != SLOTTED_VERSION {
        return Err(Error::UnsupportedVersion { version });
    }
    let store_id = StoreId(format::array(take(
        &mut rest,
        STORE_ID_LEN,
        "truncated header",
    )?)?);
    let header = file
        .get(..HEADER_LEN)
        .ok_or(malformed("truncated header"))?;
    let count = usize::from(take(&mut rest, 1, "truncated header")?[0]);
    if count == 0 || count > MAX_SLOTS {
        return Err(malformed("slot count is 0 or above 16"));
    }
    let mut slots = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = take(&mut rest, 1, "truncated key slot")?[0];
        let kind = SlotKind::from_code(kind).ok_or(malformed("slot kind 0 is reserved"))?;
        let id_len = take_u16(&mut rest, "truncated key slot")?;
        let wrapped_len = take_u16(&mut rest, "truncated key slot")?;
        // Bounded before anything is allocated for them.
        if id_len > MAX_KEY_ID_LEN {
            return Err(malformed("key id longer than 2048 bytes"));
        }
        if wrapped_len == 0 || wrapped_len > MAX_WRAPPED_LEN {
            return Err(malformed("wrapped key empty or longer than 4096 bytes"));
        }
        let key_id = take(&mut rest, id_len, "truncated key slot")?;
        let wrapped = take(&mut rest, wrapped_len, "truncated key slot")?;
        let key_id = std::str::from_utf8(key_id).map_err(|_| malformed("key id is not UTF-8"))?;
        check_slot(kind, key_id, wrapped).map_err(malformed)?;
        slots.push(KeySlot {
            kind,
            key_id: key_id.to_owned(),
            wrapped: wrapped.to_vec(),
        });
    }
    let payload = format::split_payload(rest)?;
    Ok(Parts {
        table: SlotTable { store_id, slots },
        header,
        payload,
    })
}

/// Encrypts `plaintext` under `data_key` into a slotted envelope with `slots`.
///
/// One AES-256-GCM operation under a fresh random nonce; no key is wrapped here (the slots
/// were wrapped when they were made), so a store that keeps its [`DataKey`] and
/// [`SlotTable`] pays only that on every save. The slots are not checked against
/// `data_key`: a remote slot cannot be, without the service.
///
/// # Errors
/// [`Error::Random`] if the system RNG fails; [`Error::Malformed`] for a plaintext longer
/// than AES-GCM allows.
pub fn seal_slotted(
    data_key: &DataKey,
    slots: &SlotTable,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    seal_slotted_with(
        data_key,
        slots,
        random_nonce(&SystemRandom::new())?,
        plaintext,
    )
}

/// [`seal_slotted`] with the nonce chosen by the caller (the test vector comes from here).
fn seal_slotted_with(
    data_key: &DataKey,
    slots: &SlotTable,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(slots.encoded_len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    slots.encode(&mut out);
    let aad = header(slots.store_id);
    data_key
        .material()
        .seal_payload(Section::Slotted(&aad), nonce, plaintext, &mut out)?;
    Ok(out)
}

/// Decrypts the payload of a slotted envelope with its data key (unwrapped from any slot).
///
/// # Errors
/// [`Error::Decrypt`] when `data_key` is not this store's, or the store id or payload was
/// modified; the errors of [`SlotTable::parse`] when the bytes are not a slotted envelope.
/// A modified slot does not stop the payload from opening: each slot is authenticated on
/// its own, when it is unwrapped.
pub fn open_slotted(data_key: &DataKey, file: &[u8]) -> Result<Plaintext, Error> {
    let parts = split(file)?;
    data_key
        .material()
        .open_payload(Section::Slotted(parts.header), &parts.payload)
}

/// Opens a slotted envelope with a master key or passphrase: unwraps the first slot of
/// `key`'s kind that `key` opens and whose data key opens the payload. Returns that data key
/// (to keep, and seal later saves with) and the plaintext.
///
/// # Errors
/// [`Error::Decrypt`] when no slot of `key`'s kind opens with it (or none exists), or the
/// payload does not authenticate; the errors of [`SlotTable::parse`] otherwise.
pub fn open_slotted_with_key(
    key: &WrappingKey,
    file: &[u8],
) -> Result<(DataKey, Plaintext), Error> {
    let parts = split(file)?;
    let (data_key, plaintext, _) = open_parts_with_key(key, &parts)?;
    Ok((data_key, plaintext))
}

/// The data key, plaintext and slot index of the first slot `key` opens, in split `parts`.
fn open_parts_with_key(
    key: &WrappingKey,
    parts: &Parts<'_>,
) -> Result<(DataKey, Plaintext, usize), Error> {
    let kind = SlotKind::of_key(key);
    for (index, slot) in parts.table.slots.iter().enumerate() {
        if slot.kind != kind {
            continue;
        }
        let data_key = match slot.unwrap_local(key) {
            Ok(data_key) => data_key,
            Err(Error::Decrypt) => continue,
            Err(other) => return Err(other),
        };
        // A slot that unwraps but whose key does not open the payload (a slot of another
        // store pasted in) is skipped: another slot may still open the store.
        match data_key
            .material()
            .open_payload(Section::Slotted(parts.header), &parts.payload)
        {
            Ok(plaintext) => return Ok((data_key, plaintext, index)),
            Err(Error::Decrypt) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(Error::Decrypt)
}

/// A slotted envelope with the same store id and payload as `file` and the slots of `slots`.
///
/// The payload section (nonce, ciphertext, tag) is copied byte for byte, after it is
/// authenticated under `data_key` so that a damaged file is reported now rather than carried
/// forward. Nothing is re-encrypted: this is what adding, removing or re-wrapping a slot
/// costs.
///
/// # Errors
/// [`Error::Slot`] when `slots` is the table of another store (its store id differs: the
/// payload would not open); as [`open_slotted`] for `file` and `data_key`.
pub fn reslot(data_key: &DataKey, file: &[u8], slots: &SlotTable) -> Result<Vec<u8>, Error> {
    let parts = split(file)?;
    if parts.table.store_id != slots.store_id {
        return Err(Error::Slot {
            reason: "the new slot table belongs to another store",
        });
    }
    drop(
        data_key
            .material()
            .open_payload(Section::Slotted(parts.header), &parts.payload)?,
    );
    Ok(splice(slots, &parts))
}

/// `slots`' bytes followed by the payload section of `parts`.
fn splice(slots: &SlotTable, parts: &Parts<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots.encoded_len() + parts.payload.bytes.len());
    slots.encode(&mut out);
    out.extend_from_slice(parts.payload.bytes);
    out
}

/// `open` of a slotted envelope: [`open_slotted_with_key`] without the data key.
pub(crate) fn open_with_key(key: &WrappingKey, file: &[u8]) -> Result<Plaintext, Error> {
    open_slotted_with_key(key, file).map(|(_, plaintext)| plaintext)
}

/// `rewrap` of a slotted envelope: the first slot `old` opens is wrapped under `new` instead,
/// and every other slot `old` opens is removed, so that `old` no longer opens the result.
pub(crate) fn rewrap(old: &WrappingKey, new: &WrappingKey, file: &[u8]) -> Result<Vec<u8>, Error> {
    let parts = split(file)?;
    let (data_key, plaintext, first) = open_parts_with_key(old, &parts)?;
    drop(plaintext);
    let mut slots = Vec::with_capacity(parts.table.slots.len());
    for (index, slot) in parts.table.slots.iter().enumerate() {
        if index == first {
            slots.push(KeySlot::wrap_local(&data_key, new)?);
        } else if index < first || slot.unwrap_local(old).is_err() {
            // Slots before `first` did not open with `old` (it is the first that did).
            slots.push(slot.clone());
        }
    }
    let table = SlotTable::new(parts.table.store_id, slots)?;
    Ok(splice(&table, &parts))
}

/// The header of the first local slot of a slotted envelope, as [`Header::parse`] gives it.
pub(crate) fn first_local_header(file: &[u8]) -> Result<Header, Error> {
    let table = SlotTable::parse(file)?;
    let slot = table
        .slots
        .iter()
        .find(|slot| slot.kind.is_local())
        .ok_or(malformed(
            "no master-key or passphrase slot; read the slots with SlotTable::parse",
        ))?;
    let scheme = Header::parse_wrapped_key(&slot.wrapped)?.scheme();
    Ok(Header::slotted(scheme))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{MasterKey, Passphrase, test_hex};

    /// Vector 6 of docs/envelope-format.md, computed with Python's `cryptography` (AESGCM) and
    /// `hashlib.pbkdf2_hmac` from the document, not from this crate.
    const VECTOR_PLAINTEXT: &[u8] = b"strongroom slotted test vector";
    const SLOTTED_VECTOR: &str = concat!(
        "5352454e02",
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
        "04",
        "0100000042",
        "5352444b0101404142434445464748494a4b",
        "c2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4",
        "c62a2b95298cd496122a946c5d12ddf2",
        "0200000056",
        "5352444b0102000003e8606162636465666768696a6b6c6d6e6f707172737475767778797a7b",
        "835031270392fdf4132914ac6f4e33a236e62eb25da228543b0c6e4c1717710a",
        "bc3f1ddf27bd157476db7d8941a0854b",
        "0300150018",
        "616c6961732f7374726f6e67726f6f6d2d74657374",
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7",
        "7f000b0003",
        "6675747572652d6b696e64",
        "010203",
        "b0b1b2b3b4b5b6b7b8b9babb",
        "458e5828fc44ba615d603d896f52e942f35782efef3be0119621cc2cba55",
        "ad12162d29d00ba97617251986d0561d",
    );
    /// Where the vector's slots start and end (from the table in the document).
    const MASTER_SLOT: std::ops::Range<usize> = 22..93;
    const PASSPHRASE_SLOT: std::ops::Range<usize> = 93..184;
    const KMS_SLOT: std::ops::Range<usize> = 184..234;
    const UNKNOWN_SLOT: std::ops::Range<usize> = 234..253;

    /// `n` consecutive byte values starting at `start`.
    fn run<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start + u8::try_from(i).unwrap())
    }

    fn vector() -> Vec<u8> {
        test_hex::decode(SLOTTED_VECTOR)
    }

    fn vector_data_key() -> DataKey {
        DataKey::from_bytes(&run::<32>(0x20)).unwrap()
    }

    fn vector_master() -> WrappingKey {
        MasterKey::from_bytes(&run::<32>(0)).unwrap().into()
    }

    fn vector_passphrase() -> WrappingKey {
        Passphrase::new("correct horse battery staple")
            .with_iterations(1000)
            .into()
    }

    fn master() -> WrappingKey {
        MasterKey::generate().unwrap().into()
    }

    fn passphrase(text: &str) -> WrappingKey {
        Passphrase::new(text).with_iterations(1000).into()
    }

    fn kms(wrapped: &[u8]) -> KeySlot {
        KeySlot::new(SlotKind::AwsKms, "alias/app", wrapped.to_vec()).unwrap()
    }

    /// A store sealed under a fresh data key with a slot for `key` and a KMS slot.
    fn store(key: &WrappingKey, plaintext: &[u8]) -> (DataKey, Vec<u8>) {
        let data_key = DataKey::generate().unwrap();
        let slots = SlotTable::new(
            StoreId::generate().unwrap(),
            vec![
                KeySlot::wrap_local(&data_key, key).unwrap(),
                kms(&[9u8; 40]),
            ],
        )
        .unwrap();
        let file = seal_slotted(&data_key, &slots, plaintext).unwrap();
        (data_key, file)
    }

    fn malformed_reason(result: Result<SlotTable, Error>) -> &'static str {
        match result {
            Err(Error::Malformed { reason }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn the_test_vector_is_reproduced_and_opens_every_way() {
        let expected = vector();
        let slot = |range: std::ops::Range<usize>| {
            let table = SlotTable::parse(&expected).unwrap();
            let index = [MASTER_SLOT, PASSPHRASE_SLOT, KMS_SLOT, UNKNOWN_SLOT]
                .iter()
                .position(|r| *r == range)
                .unwrap();
            table.slots()[index].clone()
        };
        // The local slots are what DataKey::wrap writes for these inputs (vector 3 and the
        // passphrase wrap of vector 2's key, as SRDK): they unwrap to the data key.
        for (range, key) in [
            (MASTER_SLOT, vector_master()),
            (PASSPHRASE_SLOT, vector_passphrase()),
        ] {
            let unwrapped = slot(range).unwrap_local(&key).unwrap();
            assert_eq!(*unwrapped.expose_bytes(), run::<32>(0x20));
        }
        let table = SlotTable::new(
            StoreId::from_bytes(run::<16>(0xc0)),
            vec![
                KeySlot::new(SlotKind::MasterKey, "", expected[MASTER_SLOT][5..].to_vec()).unwrap(),
                KeySlot::new(
                    SlotKind::Passphrase,
                    "",
                    expected[PASSPHRASE_SLOT][5..].to_vec(),
                )
                .unwrap(),
                KeySlot::new(
                    SlotKind::AwsKms,
                    "alias/strongroom-test",
                    run::<24>(0xd0).to_vec(),
                )
                .unwrap(),
                KeySlot::new(SlotKind::Unknown(0x7f), "future-kind", vec![1, 2, 3]).unwrap(),
            ],
        )
        .unwrap();
        let sealed = seal_slotted_with(
            &vector_data_key(),
            &table,
            run::<12>(0xb0),
            VECTOR_PLAINTEXT,
        )
        .unwrap();
        assert_eq!(sealed, expected);
        assert_eq!(SlotTable::parse(&expected).unwrap(), table);

        assert_eq!(
            &open_slotted(&vector_data_key(), &expected).unwrap()[..],
            VECTOR_PLAINTEXT
        );
        for key in [vector_master(), vector_passphrase()] {
            let (data_key, plaintext) = open_slotted_with_key(&key, &expected).unwrap();
            assert_eq!(&plaintext[..], VECTOR_PLAINTEXT);
            assert_eq!(*data_key.expose_bytes(), run::<32>(0x20));
            // The version-1 entry points read version 2 too.
            assert_eq!(&crate::open(&key, &expected).unwrap()[..], VECTOR_PLAINTEXT);
        }
        assert_eq!(format_version(&expected).unwrap(), 2);
        let header = Header::parse(&expected).unwrap();
        assert_eq!(header.format_version(), 2);
        assert!(
            !header.is_passphrase(),
            "the first local slot is a master key"
        );

        let parsed = SlotTable::parse(&expected).unwrap();
        assert_eq!(
            parsed.store_id().to_hex(),
            "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
        );
        let kinds: Vec<SlotKind> = parsed.slots().iter().map(KeySlot::kind).collect();
        assert_eq!(
            kinds,
            [
                SlotKind::MasterKey,
                SlotKind::Passphrase,
                SlotKind::AwsKms,
                SlotKind::Unknown(0x7f)
            ]
        );
        assert_eq!(parsed.slots()[1].iterations(), Some(1000));
        assert_eq!(parsed.slots()[0].iterations(), None);
        assert_eq!(parsed.slots()[2].key_id(), "alias/strongroom-test");
        assert_eq!(parsed.slots()[3].wrapped(), [1, 2, 3]);
    }

    /// The hex of the fenced block that follows `heading` in docs/envelope-format.md.
    fn documented_vector(heading: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/envelope-format.md");
        let doc = std::fs::read_to_string(path).expect("docs/envelope-format.md is readable");
        let after = doc.split_once(heading).expect("heading present").1;
        let block = after.split("```").nth(1).expect("a fenced block follows");
        block
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .collect()
    }

    #[test]
    fn the_format_document_shows_the_tested_vector() {
        assert_eq!(documented_vector("### Vector 6"), SLOTTED_VECTOR);
    }

    #[test]
    fn context_pairs_name_the_store_and_the_format() {
        let id = StoreId::from_bytes(run::<16>(0xc0));
        assert_eq!(
            id.context_pairs(),
            [
                ("strongroom:format", "2".to_owned()),
                (
                    "strongroom:store-id",
                    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf".to_owned()
                ),
            ]
        );
        assert_eq!(
            format!("{id:?}"),
            "StoreId(c0c1c2c3c4c5c6c7c8c9cacbcccdcecf)"
        );
        assert_eq!(id.to_string(), id.to_hex());
        assert_ne!(StoreId::generate().unwrap(), StoreId::generate().unwrap());
    }

    #[test]
    fn kinds_have_codes_and_names() {
        for code in 1..=255u8 {
            let kind = SlotKind::from_code(code).unwrap();
            assert_eq!(kind.code(), code);
            if kind.is_known() {
                assert_eq!(SlotKind::from_name(kind.name()), Some(kind));
                assert_eq!(kind.to_string(), kind.name());
            } else {
                assert_eq!(SlotKind::from_name(kind.name()), None);
            }
        }
        assert_eq!(SlotKind::from_code(0), None);
        assert_eq!(SlotKind::from_name("aws-kms"), Some(SlotKind::AwsKms));
        assert_eq!(
            SlotKind::from_name("vault-transit"),
            Some(SlotKind::VaultTransit)
        );
        assert_eq!(SlotKind::Unknown(0x7f).to_string(), "unknown kind 0x7f");
        assert!(SlotKind::Passphrase.is_local() && !SlotKind::AwsKms.is_local());
        // Unknown(n) for a known n is that kind.
        let slot = KeySlot::new(SlotKind::Unknown(3), "alias/x", vec![1]).unwrap();
        assert_eq!(slot.kind(), SlotKind::AwsKms);
    }

    /// What each position of a slotted envelope must give when modified, opened with a
    /// master key (slot 0) and with the data key: the header and payload are authenticated
    /// by the payload's tag, a local slot by its own tag, and a remote slot's bytes not at all
    /// here (its service authenticates them when it unwraps).
    #[test]
    fn every_bit_flip_fails_where_it_must_and_only_there() {
        let key = master();
        let (data_key, file) = store(&key, b"a secret worth protecting");
        let master_slot = 22..22 + 5 + 66;
        let kms_slot = master_slot.end..master_slot.end + 5 + 9 + 40;
        let payload = kms_slot.end..file.len();
        assert_eq!(kms_slot.end + 12 + 25 + 16, file.len());
        for index in 0..file.len() {
            for bit in 0..8 {
                let mut bytes = file.clone();
                bytes[index] ^= 1 << bit;
                let with_key = open_slotted_with_key(&key, &bytes).map(|(_, p)| p);
                let with_data_key = open_slotted(&data_key, &bytes);
                let what = format!(
                    "byte {index} bit {bit}: {:?} / {:?}",
                    with_key.as_ref().err(),
                    with_data_key.as_ref().err()
                );
                let is = |r: &Result<Plaintext, Error>, f: fn(&Error) -> bool| {
                    r.as_ref().err().is_some_and(f)
                };
                let malformed = |e: &Error| matches!(e, Error::Malformed { .. });
                let decrypt = |e: &Error| matches!(e, Error::Decrypt);
                let unsupported = |e: &Error| matches!(e, Error::UnsupportedVersion { .. });
                let opens = |r: &Result<Plaintext, Error>| {
                    r.as_ref()
                        .is_ok_and(|p| &p[..] == b"a secret worth protecting")
                };
                match index {
                    0..=3 => assert!(
                        is(&with_key, malformed) && is(&with_data_key, malformed),
                        "{what}"
                    ),
                    4 => assert!(
                        is(&with_key, unsupported) && is(&with_data_key, unsupported),
                        "{what}"
                    ),
                    // The store id is in the payload's AAD.
                    5..=20 => assert!(
                        is(&with_key, decrypt) && is(&with_data_key, decrypt),
                        "{what}"
                    ),
                    // The count: the framing breaks, or reads payload bytes as a slot.
                    21 => assert!(
                        (is(&with_key, malformed) || is(&with_key, decrypt))
                            && (is(&with_data_key, malformed) || is(&with_data_key, decrypt)),
                        "{what}"
                    ),
                    i if master_slot.contains(&i) => {
                        // Kind, lengths and the SRDK framing: malformed (or, for a kind that
                        // becomes an unknown one, no slot opens with the key). The rest is
                        // the slot's own ciphertext: its tag fails.
                        assert!(is(&with_key, malformed) || is(&with_key, decrypt), "{what}");
                        if i >= master_slot.start + 5 + 6 {
                            assert!(is(&with_key, decrypt), "{what}");
                            assert!(opens(&with_data_key), "{what}");
                        }
                    }
                    i if kms_slot.contains(&i) => {
                        // The remote slot is opaque here. Its kind and lengths: the framing
                        // breaks, or shifts the payload (which then fails), or the store still
                        // opens. Its key id and wrapped bytes: the store opens with the master
                        // key all the same (the slot's service would refuse the change).
                        let consistent = (is(&with_key, malformed)
                            && is(&with_data_key, malformed))
                            || (is(&with_key, decrypt) && is(&with_data_key, decrypt))
                            || (opens(&with_key) && opens(&with_data_key));
                        assert!(consistent, "{what}");
                        if i >= kms_slot.start + 5 + 9 {
                            assert!(opens(&with_key) && opens(&with_data_key), "{what}");
                            let table = SlotTable::parse(&bytes).unwrap();
                            assert_ne!(table.slots()[1].wrapped(), [9u8; 40]);
                        } else if i >= kms_slot.start + 5 {
                            // A key id byte: still opens unless it is no longer UTF-8.
                            assert!(opens(&with_key) || is(&with_key, malformed), "{what}");
                        }
                    }
                    i => {
                        assert!(payload.contains(&i));
                        assert!(
                            is(&with_key, decrypt) && is(&with_data_key, decrypt),
                            "{what}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            &open_slotted(&data_key, &file).unwrap()[..],
            b"a secret worth protecting"
        );
    }

    #[test]
    fn every_truncation_and_an_extension_fail() {
        let key = passphrase("p");
        let (data_key, file) = store(&key, b"twenty-one characters");
        let payload_start = 22 + 5 + 86 + 5 + 9 + 40;
        for len in 0..file.len() {
            let error = open_slotted(&data_key, &file[..len]).unwrap_err();
            let keyed = open_slotted_with_key(&key, &file[..len]).unwrap_err();
            let parsed = SlotTable::parse(&file[..len]);
            if len < payload_start + 28 {
                assert!(matches!(error, Error::Malformed { .. }), "{len}: {error:?}");
                assert!(matches!(keyed, Error::Malformed { .. }), "{len}: {keyed:?}");
                assert!(parsed.is_err(), "{len}");
            } else {
                assert!(matches!(error, Error::Decrypt), "{len}: {error:?}");
                assert!(matches!(keyed, Error::Decrypt), "{len}: {keyed:?}");
                assert!(parsed.is_ok(), "{len}");
            }
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(
            open_slotted(&data_key, &longer),
            Err(Error::Decrypt)
        ));
    }

    /// A valid file with slot 0 replaced by raw bytes `slot` (kind, lengths, id, wrapped).
    fn with_raw_slot(count: u8, slot: &[u8]) -> Vec<u8> {
        let mut out = header(StoreId::from_bytes([1; 16])).to_vec();
        out.push(count);
        out.extend_from_slice(slot);
        out.extend_from_slice(&[0u8; 28]);
        out
    }

    fn raw_slot(kind: u8, key_id: &[u8], wrapped: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&u16::try_from(key_id.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&u16::try_from(wrapped.len()).unwrap().to_be_bytes());
        out.extend_from_slice(key_id);
        out.extend_from_slice(wrapped);
        out
    }

    #[test]
    fn every_length_and_rule_is_checked_before_use() {
        let srdk = DataKey::generate().unwrap().wrap(&master()).unwrap();
        let srdk_pass = DataKey::generate().unwrap().wrap(&passphrase("p")).unwrap();
        let ok = raw_slot(3, b"alias/a", &[7; 10]);
        assert!(SlotTable::parse(&with_raw_slot(1, &ok)).is_ok());
        assert!(SlotTable::parse(&with_raw_slot(1, &raw_slot(1, b"", &srdk))).is_ok());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (with_raw_slot(0, &ok), "slot count is 0 or above 16"),
            (with_raw_slot(17, &ok), "slot count is 0 or above 16"),
            (with_raw_slot(2, &ok), "slot kind 0 is reserved"),
            (
                [&header(StoreId::from_bytes([1; 16]))[..], &[2], &ok[..]].concat(),
                "truncated key slot",
            ),
            (
                with_raw_slot(1, &raw_slot(0, b"x", &[1])),
                "slot kind 0 is reserved",
            ),
            (
                with_raw_slot(1, &raw_slot(3, &[b'a'; 2049], &[1])),
                "key id longer than 2048 bytes",
            ),
            (
                with_raw_slot(1, &raw_slot(3, b"a", &[])),
                "wrapped key empty or longer than 4096 bytes",
            ),
            (
                with_raw_slot(1, &raw_slot(3, b"a", &[1; 4097])),
                "wrapped key empty or longer than 4096 bytes",
            ),
            (
                with_raw_slot(1, &raw_slot(3, b"\xff\xfe", &[1])),
                "key id is not UTF-8",
            ),
            (
                with_raw_slot(1, &raw_slot(3, b"", &[1])),
                "an aws-kms or vault-transit slot has no key id",
            ),
            (
                with_raw_slot(1, &raw_slot(4, b"", &[1])),
                "an aws-kms or vault-transit slot has no key id",
            ),
            (
                with_raw_slot(1, &raw_slot(1, b"x", &srdk)),
                "a master-key or passphrase slot has a key id",
            ),
            (
                with_raw_slot(1, &raw_slot(1, b"", &[1; 66])),
                "a master-key or passphrase slot does not hold a wrapped data key",
            ),
            (
                with_raw_slot(1, &raw_slot(2, b"", &srdk)),
                "a slot's kind and its wrapped data key's scheme differ",
            ),
            (
                with_raw_slot(1, &raw_slot(1, b"", &srdk_pass)),
                "a slot's kind and its wrapped data key's scheme differ",
            ),
            // A length that points past the end: checked before slicing or allocating.
            (
                with_raw_slot(1, &[3, 0x03, 0xff, 0x0f, 0xff]),
                "truncated key slot",
            ),
        ];
        for (bytes, reason) in cases {
            let got = malformed_reason(SlotTable::parse(&bytes));
            assert!(got.contains(reason), "{got} / {reason}");
        }
        // No payload section after the slots.
        let mut short = with_raw_slot(1, &ok);
        short.truncate(short.len() - 1);
        assert!(malformed_reason(SlotTable::parse(&short)).contains("truncated payload"));
        // The same rules for slots made here, as Error::Slot.
        let slot_reason = |r: Result<KeySlot, Error>| match r {
            Err(Error::Slot { reason }) => reason,
            other => panic!("expected Slot, got {other:?}"),
        };
        assert!(slot_reason(KeySlot::new(SlotKind::AwsKms, "", vec![1])).contains("no key id"));
        assert!(
            slot_reason(KeySlot::new(SlotKind::AwsKms, "k".repeat(2049), vec![1])).contains("2048")
        );
        assert!(
            slot_reason(KeySlot::new(SlotKind::VaultTransit, "k", vec![1; 4097])).contains("4096")
        );
        assert!(
            slot_reason(KeySlot::new(SlotKind::MasterKey, "", vec![1; 66]))
                .contains("wrapped data key")
        );
        assert!(
            slot_reason(KeySlot::new(SlotKind::Passphrase, "", srdk.clone())).contains("scheme")
        );
        assert!(slot_reason(KeySlot::new(SlotKind::Unknown(0), "", vec![1])).contains("reserved"));
        assert!(KeySlot::new(SlotKind::MasterKey, "", srdk).is_ok());
        assert!(matches!(
            SlotTable::new(StoreId::from_bytes([0; 16]), vec![]),
            Err(Error::Slot { .. })
        ));
        assert!(matches!(
            SlotTable::new(StoreId::from_bytes([0; 16]), vec![kms(&[1]); 17]),
            Err(Error::Slot { .. })
        ));
        assert!(SlotTable::new(StoreId::from_bytes([0; 16]), vec![kms(&[1]); 16]).is_ok());
    }

    #[test]
    fn versions_are_told_apart() {
        let v1 = crate::seal(&master(), b"x").unwrap();
        assert_eq!(format_version(&v1).unwrap(), 1);
        assert!(matches!(
            SlotTable::parse(&v1),
            Err(Error::UnsupportedVersion { version: 1 })
        ));
        assert!(matches!(
            open_slotted(&DataKey::generate().unwrap(), &v1),
            Err(Error::UnsupportedVersion { version: 1 })
        ));
        assert!(matches!(
            format_version(b"SREN\x03"),
            Err(Error::UnsupportedVersion { version: 3 })
        ));
        assert!(matches!(
            format_version(b"SRDK\x01"),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            format_version(b"SRE"),
            Err(Error::Malformed { .. })
        ));
        // A version-2 file is not a wrapped key or a sealed message.
        let (data_key, v2) = store(&master(), b"x");
        assert!(matches!(data_key.open(&v2), Err(Error::Malformed { .. })));
    }

    #[test]
    fn reslot_changes_the_slots_and_keeps_the_payload() {
        let key = master();
        let (data_key, file) = store(&key, b"kept as it is");
        let table = SlotTable::parse(&file).unwrap();
        let payload = &file[file.len() - (12 + 13 + 16)..];
        let recovery = passphrase("recovery");
        let mut slots = table.clone().into_slots();
        slots.push(KeySlot::wrap_local(&data_key, &recovery).unwrap());
        slots.remove(0);
        let added = reslot(
            &data_key,
            &file,
            &SlotTable::new(table.store_id(), slots).unwrap(),
        )
        .unwrap();
        assert!(
            added.ends_with(payload),
            "the payload is copied, not re-encrypted"
        );
        assert_eq!(
            &open_slotted_with_key(&recovery, &added).unwrap().1[..],
            b"kept as it is"
        );
        assert!(matches!(
            open_slotted_with_key(&key, &added),
            Err(Error::Decrypt)
        ));
        assert_eq!(SlotTable::parse(&added).unwrap().slots().len(), 2);

        // Another store's table, a wrong data key, a damaged payload: refused.
        let other = SlotTable::new(StoreId::generate().unwrap(), vec![kms(&[1])]).unwrap();
        assert!(matches!(
            reslot(&data_key, &file, &other),
            Err(Error::Slot { .. })
        ));
        assert!(matches!(
            reslot(&DataKey::generate().unwrap(), &file, &table),
            Err(Error::Decrypt)
        ));
        let mut damaged = file.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            reslot(&data_key, &damaged, &table),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn rewrap_of_a_slotted_envelope_moves_one_slot() {
        let old = master();
        let data_key = DataKey::generate().unwrap();
        let recovery = passphrase("recovery");
        let table = SlotTable::new(
            StoreId::generate().unwrap(),
            vec![
                kms(&[3; 50]),
                KeySlot::wrap_local(&data_key, &old).unwrap(),
                KeySlot::wrap_local(&data_key, &recovery).unwrap(),
                // The same key twice: both go, so the old key opens nothing.
                KeySlot::wrap_local(&data_key, &old).unwrap(),
            ],
        )
        .unwrap();
        let file = seal_slotted(&data_key, &table, b"rotate me").unwrap();
        let new = passphrase("new");
        let moved = crate::rewrap(&old, &new, &file).unwrap();
        assert!(matches!(crate::open(&old, &moved), Err(Error::Decrypt)));
        assert_eq!(&crate::open(&new, &moved).unwrap()[..], b"rotate me");
        assert_eq!(&crate::open(&recovery, &moved).unwrap()[..], b"rotate me");
        let slots = SlotTable::parse(&moved).unwrap().into_slots();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0], table.slots()[0]);
        assert_eq!(slots[1].kind(), SlotKind::Passphrase);
        assert_eq!(slots[2], table.slots()[2]);
        assert!(moved.ends_with(&file[file.len() - (12 + 9 + 16)..]));
        assert_eq!(Header::parse(&moved).unwrap().iterations(), Some(1000));
        assert!(matches!(
            crate::rewrap(&master(), &new, &file),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn a_slot_from_another_store_is_skipped_and_never_opens_the_payload() {
        let key = master();
        let (_, mine) = store(&key, b"mine");
        let (_, theirs) = store(&key, b"theirs");
        let their_slot = SlotTable::parse(&theirs).unwrap().slots()[0].clone();
        let table = SlotTable::parse(&mine).unwrap();
        let mut swapped = table.clone().into_slots();
        swapped[0] = their_slot.clone();
        let parts = split(&mine).unwrap();
        let only_theirs = splice(&SlotTable::new(table.store_id(), swapped).unwrap(), &parts);
        assert!(matches!(
            open_slotted_with_key(&key, &only_theirs),
            Err(Error::Decrypt)
        ));
        // Put in front of the real slot: skipped, and the real slot opens the store.
        let mut both = vec![their_slot];
        both.extend(table.into_slots());
        let table = SlotTable::parse(&mine).unwrap();
        let pasted = splice(&SlotTable::new(table.store_id(), both).unwrap(), &parts);
        assert_eq!(
            &open_slotted_with_key(&key, &pasted).unwrap().1[..],
            b"mine"
        );
    }

    #[test]
    fn a_wrapping_key_never_opens_a_remote_or_other_kind_of_slot() {
        let data_key = DataKey::generate().unwrap();
        let slot = kms(&[1; 30]);
        assert!(matches!(slot.unwrap_local(&master()), Err(Error::Decrypt)));
        let pass = KeySlot::wrap_local(&data_key, &passphrase("p")).unwrap();
        assert!(matches!(pass.unwrap_local(&master()), Err(Error::Decrypt)));
        assert!(pass.unwrap_local(&passphrase("p")).is_ok());
        let table = SlotTable::new(StoreId::generate().unwrap(), vec![slot]).unwrap();
        let file = seal_slotted(&data_key, &table, b"x").unwrap();
        assert!(matches!(
            open_slotted_with_key(&master(), &file),
            Err(Error::Decrypt)
        ));
        assert!(matches!(Header::parse(&file), Err(Error::Malformed { .. })));
        assert_eq!(&open_slotted(&data_key, &file).unwrap()[..], b"x");
    }

    #[test]
    fn data_keys_from_bytes_and_back() {
        let key = DataKey::generate().unwrap();
        let bytes = key.expose_bytes();
        let again = DataKey::from_bytes(&bytes[..]).unwrap();
        assert_eq!(
            &again.open(&key.seal(b"same key").unwrap()).unwrap()[..],
            b"same key"
        );
        for len in [0, 16, 31, 33, 64] {
            assert!(matches!(
                DataKey::from_bytes(&vec![1u8; len]),
                Err(Error::KeyLength { len: got }) if got == len
            ));
        }
    }

    #[test]
    fn debug_shows_no_key_material_and_errors_no_secrets() {
        let slot = kms(b"wrapped-bytes-never-shown");
        let shown = format!("{slot:?}");
        assert_eq!(
            shown,
            r#"KeySlot { kind: AwsKms, key_id: "alias/app", wrapped_len: 25 }"#
        );
        let (data_key, file) = store(
            &passphrase("passphrase-never-shown"),
            b"plaintext-never-shown",
        );
        let errors = [
            open_slotted_with_key(&passphrase("other-never-shown"), &file)
                .map(drop)
                .unwrap_err(),
            open_slotted(&DataKey::generate().unwrap(), &file)
                .map(drop)
                .unwrap_err(),
            open_slotted(&data_key, &file[..30]).map(drop).unwrap_err(),
        ];
        for error in &errors {
            for shown in [format!("{error}"), format!("{error:?}")] {
                assert!(!shown.contains("never-shown"), "{shown}");
            }
        }
    }

    /// Slots of any kind, with bounded random ids and wrapped bytes.
    fn any_remote_slot() -> impl Strategy<Value = KeySlot> {
        (
            prop_oneof![Just(3u8), Just(4u8), 5u8..=255],
            "[a-z/:-]{1,40}",
            proptest::collection::vec(any::<u8>(), 1..300),
        )
            .prop_map(|(code, id, wrapped)| {
                KeySlot::new(SlotKind::from_code(code).unwrap(), id, wrapped).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
            remote in proptest::collection::vec(any_remote_slot(), 0..8),
            local_first in any::<bool>(),
        ) {
            let key = master();
            let data_key = DataKey::generate().unwrap();
            let mut slots = remote;
            let local = KeySlot::wrap_local(&data_key, &key).unwrap();
            if local_first { slots.insert(0, local) } else { slots.push(local) }
            let table = SlotTable::new(StoreId::generate().unwrap(), slots).unwrap();
            let file = seal_slotted(&data_key, &table, &plaintext).unwrap();
            prop_assert_eq!(file.len(), table.encoded_len() + 12 + plaintext.len() + 16);
            prop_assert_eq!(&SlotTable::parse(&file).unwrap(), &table);
            prop_assert_eq!(&open_slotted(&data_key, &file).unwrap()[..], &plaintext[..]);
            prop_assert_eq!(&open_slotted_with_key(&key, &file).unwrap().1[..], &plaintext[..]);
            // Dropping every remote slot changes nothing for the local one.
            let only_local = SlotTable::new(
                table.store_id(),
                table.slots().iter().filter(|s| s.kind().is_local()).cloned().collect(),
            ).unwrap();
            let reslotted = reslot(&data_key, &file, &only_local).unwrap();
            prop_assert_eq!(&crate::open(&key, &reslotted).unwrap()[..], &plaintext[..]);
        }

        #[test]
        fn arbitrary_bodies_behind_a_valid_prefix_never_open_or_panic(
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut file = b"SREN\x02".to_vec();
            file.extend_from_slice(&body);
            let _ = SlotTable::parse(&file);
            let _ = Header::parse(&file);
            let result = open_slotted(&DataKey::generate().unwrap(), &file).map(drop);
            let expected = matches!(result, Err(Error::Decrypt | Error::Malformed { .. }));
            prop_assert!(expected, "unexpected {:?}", result);
            let result = open_slotted_with_key(&master(), &file).map(drop);
            let expected = matches!(result, Err(Error::Decrypt | Error::Malformed { .. }));
            prop_assert!(expected, "unexpected {:?}", result);
        }

        #[test]
        fn arbitrary_slot_tables_never_panic(
            count in 0u8..20,
            slots in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut file = header(StoreId::from_bytes([5; 16])).to_vec();
            file.push(count);
            file.extend_from_slice(&slots);
            file.extend_from_slice(&[0; 28]);
            let _ = SlotTable::parse(&file);
            prop_assert!(open_slotted(&DataKey::generate().unwrap(), &file).is_err());
        }
    }
}
