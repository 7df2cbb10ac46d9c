//! AES-256-GCM envelope encryption, on ring, with no async runtime and no other strongroom
//! crate: usable on its own.
//!
//! [`seal`] encrypts bytes under a fresh random data key and wraps that key with a
//! [`WrappingKey`]: a 32-byte [`MasterKey`] or a [`Passphrase`] (PBKDF2-HMAC-SHA256).
//! [`open`] reverses it, and [`rewrap`] moves an envelope to a new wrapping key without
//! re-encrypting its payload (key rotation). The byte format is versioned, authenticated as
//! a whole, and specified in `docs/envelope-format.md`; [`Header`] reads its unencrypted
//! part. Format version 2 adds [key slots](#key-slots-format-version-2); both versions are
//! read.
//!
//! ```
//! use strongroom_envelope::{Error, MasterKey, Passphrase, WrappingKey, open, rewrap, seal};
//!
//! # fn main() -> Result<(), Error> {
//! let key = WrappingKey::from(MasterKey::generate()?);
//! let envelope = seal(&key, b"database password")?;
//! assert_eq!(&open(&key, &envelope)?[..], b"database password");
//!
//! // Move it to a passphrase (few iterations only because this is an example).
//! let passphrase = WrappingKey::from(Passphrase::new("correct horse").with_iterations(1_000));
//! let moved = rewrap(&key, &passphrase, &envelope)?;
//! assert_eq!(&open(&passphrase, &moved)?[..], b"database password");
//! assert!(matches!(open(&key, &moved), Err(Error::Decrypt)));
//! # Ok(())
//! # }
//! ```
//!
//! # Many values under one data key
//!
//! Each envelope carries its own data key, so every `seal` makes one and every `open` unwraps
//! one. To encrypt many values, such as the rows of a table, use a [`DataKey`]: wrap it once,
//! store the wrapped bytes, unwrap it once per process, and each [`DataKey::seal`] or
//! [`DataKey::open`] is then a single AES-256-GCM operation with a fresh random nonce.
//!
//! ```
//! use strongroom_envelope::{DataKey, Error, MasterKey, WrappingKey};
//!
//! # fn main() -> Result<(), Error> {
//! let master = WrappingKey::from(MasterKey::generate()?);
//! let wrapped = DataKey::generate()?.wrap(&master)?; // store these 66 bytes
//!
//! // At start-up, in every process that reads or writes the values:
//! let data_key = DataKey::unwrap(&master, &wrapped)?;
//! let row = data_key.seal(b"s3cret")?;
//! assert_eq!(&data_key.open(&row)?[..], b"s3cret");
//!
//! // Bound to where it is stored, a value cannot be swapped with another one unnoticed.
//! let password = data_key.seal_with_context(b"hunter2", b"db/password")?;
//! assert_eq!(&data_key.open_with_context(&password, b"db/password")?[..], b"hunter2");
//! assert!(matches!(data_key.open_with_context(&password, b"db/user"), Err(Error::Decrypt)));
//! # Ok(())
//! # }
//! ```
//!
//! # Key slots (format version 2)
//!
//! A store that several keys must open (a KMS key for the servers, a passphrase for the day
//! KMS is gone) keeps one data key and several wrapped copies of it, its [`KeySlot`]s, in a
//! slotted envelope. The payload is bound to the store's [`StoreId`], not to the slots, so a
//! slot is added or removed without re-encrypting anything ([`reslot`]).
//!
//! ```
//! use strongroom_envelope::{
//!     DataKey, Error, KeySlot, MasterKey, Passphrase, SlotKind, SlotTable, StoreId,
//!     WrappingKey, open_slotted, open_slotted_with_key, seal_slotted,
//! };
//!
//! # fn main() -> Result<(), Error> {
//! let data_key = DataKey::generate()?;
//! let store_id = StoreId::generate()?;
//! let master = WrappingKey::from(MasterKey::generate()?);
//! let recovery = WrappingKey::from(Passphrase::new("recovery words").with_iterations(1_000));
//! // A remote slot: what a key service returned for `data_key.expose_bytes()`, wrapped with
//! // the context of `store_id.context_pairs()`.
//! # let kms_ciphertext = vec![1u8; 180];
//! let kms = KeySlot::new(SlotKind::AwsKms, "alias/app", kms_ciphertext)?;
//! let slots = SlotTable::new(
//!     store_id,
//!     vec![KeySlot::wrap_local(&data_key, &master)?, KeySlot::wrap_local(&data_key, &recovery)?, kms],
//! )?;
//! let file = seal_slotted(&data_key, &slots, b"the store")?;
//!
//! // Any local slot opens it with its key; a remote one through its service.
//! let (opened_key, plaintext) = open_slotted_with_key(&recovery, &file)?;
//! assert_eq!(&plaintext[..], b"the store");
//! // Without a key: the table, to list the slots or choose one.
//! let table = SlotTable::parse(&file)?;
//! assert_eq!(table.slots()[2].key_id(), "alias/app");
//! // With the data key a service unwrapped: one AES-GCM operation.
//! let unwrapped = DataKey::from_bytes(&opened_key.expose_bytes()[..])?;
//! assert_eq!(&open_slotted(&unwrapped, &file)?[..], b"the store");
//! # Ok(())
//! # }
//! ```
//!
//! Key material (master keys, data keys, derived keys, passphrases) is zeroized when
//! dropped, decrypted bytes come back as a [`Plaintext`] that is wiped when dropped, `Debug`
//! output redacts all of them, and no [`Error`] message contains them. A wrong key and
//! modified data fail the same way, with [`Error::Decrypt`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cipher;
mod data_key;
mod envelope;
mod error;
mod format;
mod master_key;
mod passphrase;
mod plaintext;
mod slots;
mod wrapping_key;

pub use data_key::DataKey;
pub use envelope::{open, rewrap, seal};
pub use error::Error;
pub use format::{FORMAT_VERSION, Header, KEY_LEN, MAGIC, SEALED_MAGIC, WRAPPED_KEY_MAGIC};
pub use master_key::MasterKey;
pub use passphrase::{DEFAULT_ITERATIONS, MAX_ITERATIONS, Passphrase};
pub use plaintext::Plaintext;
pub use slots::{
    CONTEXT_FORMAT, CONTEXT_FORMAT_VALUE, CONTEXT_STORE_ID, KeySlot, MAX_KEY_ID_LEN, MAX_SLOTS,
    MAX_WRAPPED_LEN, SLOTTED_VERSION, STORE_ID_LEN, SlotKind, SlotTable, StoreId, format_version,
    open_slotted, open_slotted_with_key, reslot, seal_slotted,
};
pub use wrapping_key::WrappingKey;

/// Hex decoding for tests' fixed vectors.
#[cfg(test)]
mod test_hex {
    /// Decodes lowercase or uppercase hex; panics on bad input (tests only).
    pub(crate) fn decode(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(digits.len().is_multiple_of(2), "odd hex length");
        digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).expect("hex is ASCII");
                u8::from_str_radix(pair, 16).expect("valid hex digit")
            })
            .collect()
    }
}
