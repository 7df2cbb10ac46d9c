//! [`DataKey`]: an unwrapped AES-256 data key that seals and opens many messages, and the
//! wrapping of data keys under a [`WrappingKey`], which envelopes use too.

use std::fmt;
use std::sync::OnceLock;

use ring::aead::{Aad, LessSafeKey, Nonce};
use ring::rand::SystemRandom;
use zeroize::{Zeroize, Zeroizing};

use crate::cipher::{self, aead_key, fill_random, random_nonce};
use crate::error::Error;
use crate::format::{
    self, Header, KEY_LEN, KeyParts, Kind, NONCE_LEN, Payload, SEALED_PREFIX_LEN, Scheme, TAG_LEN,
    WRAPPED_KEY_LEN, payload_aad, sealed_prefix,
};
use crate::plaintext::{self, Plaintext};
use crate::wrapping_key::WrappingKey;

/// An unwrapped AES-256-GCM data key: wrap it once, store the wrapped bytes, and seal or open
/// any number of messages with it.
///
/// [`seal`](crate::seal) and [`open`](crate::open) make or unwrap a data key on every call
/// (a random key, a wrap, two AES key schedules; PBKDF2 for a passphrase that has not cached
/// it). A `DataKey` pays for that once: [`unwrap`](Self::unwrap) it at start-up, keep it,
/// and each [`seal`](Self::seal) or [`open`](Self::open) is then one AES-256-GCM operation
/// with a key schedule computed when the key was made, plus the few bytes of framing
/// below. That is the operation to use when one process encrypts many small records, such as
/// the rows of a table or the values of a store, under a key that is kept wrapped at rest.
///
/// ```text
/// wrapped data key  "SRDK" 01 scheme [iterations salt] wrap-nonce GCM(wrapping key, data key)
/// sealed message    "SRDM" 01 nonce GCM(data key, nonce, plaintext)
/// ```
///
/// Both are specified in docs/envelope-format.md, versioned, and authenticated: a wrong key
/// or any modified byte is [`Error::Decrypt`]; bytes that are not of that shape are
/// [`Error::Malformed`] (which says so when they are another of this crate's formats).
///
/// # Nonces and limits
///
/// Every seal draws a fresh 96-bit nonce from the system RNG (ring's `SystemRandom`). There
/// is deliberately no counter: the same wrapped key is unwrapped by every process (and every
/// restart) that uses it, and counters in separate processes would repeat each other's
/// nonces, which breaks GCM. With random nonces, NIST SP 800-38D allows 2^32 messages under
/// one key; generate a new data key well before that.
///
/// # Binding a message to its place
///
/// All messages under one data key authenticate under it, so someone who can write where
/// they are stored could swap two of them (say, the values of `db/password` and
/// `db/user`) without being noticed. [`seal_with_context`](Self::seal_with_context) binds a
/// message to context bytes you choose, such as the name it is stored under: it opens only
/// with [`open_with_context`](Self::open_with_context) and the same context. The context is
/// authenticated, not stored.
///
/// # Key material
///
/// The raw key bytes and ring's expanded key live in one heap allocation (moving a `DataKey`
/// moves a pointer, so moves leave no copies behind) that is overwritten when it drops: the
/// bytes with zeros, ring's key schedule with that of a fixed all-zero key (ring offers no
/// way to wipe it; replacing it in place is the safe way to overwrite it). `Debug` prints
/// `DataKey([REDACTED])`. Cloning copies the key; every copy is wiped the same way.
pub struct DataKey {
    material: Box<KeyMaterial>,
}

/// A data key's bytes and its ring key: what a [`DataKey`] keeps on the heap, and what an
/// envelope's seal or open holds on the stack for the one call that needs it (a heap
/// allocation there would only add a malloc and a copy of ring's key to every envelope).
pub(crate) struct KeyMaterial {
    bytes: [u8; KEY_LEN],
    aead: LessSafeKey,
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        self.bytes.zeroize();
        if let Some(blank) = blank_key() {
            // Assigning a place writes the new key schedule over the old one where it lies.
            self.aead = blank.clone();
        }
        // The barrier observes the struct, so neither write above can be elided as dead.
        zeroize::optimization_barrier(self);
    }
}

/// The ring key of 32 zero bytes, whose schedule overwrites a dropped key's.
fn blank_key() -> Option<&'static LessSafeKey> {
    static BLANK: OnceLock<Option<LessSafeKey>> = OnceLock::new();
    BLANK
        .get_or_init(|| aead_key(&[0u8; KEY_LEN]).ok())
        .as_ref()
}

impl DataKey {
    /// A fresh random data key from the system RNG (ring's `SystemRandom`).
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails.
    pub fn generate() -> Result<DataKey, Error> {
        KeyMaterial::generate_with(&SystemRandom::new()).map(DataKey::from)
    }

    /// The data key with these 32 bytes: for a key that a key service (AWS KMS, Vault
    /// Transit) has just unwrapped, or generated, for a store's key slot.
    ///
    /// The bytes are copied; wipe the caller's copy (a `SecretValue` or a [`Zeroizing`]
    /// buffer does that when dropped).
    ///
    /// # Errors
    /// [`Error::KeyLength`] unless `bytes` is exactly [`KEY_LEN`] (32) bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey, Error> {
        let bytes: &[u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::KeyLength { len: bytes.len() })?;
        KeyMaterial::from_bytes(bytes).map(DataKey::from)
    }

    /// The raw key bytes, to hand to a key service that wraps them (AWS KMS `Encrypt`,
    /// Transit `encrypt`) for a new key slot.
    ///
    /// **This is the sharp edge of the type**: everything else keeps the key inside this
    /// crate. The copy returned is wiped when dropped; keep it no longer than the call that
    /// wraps it, never log it, and never store it unwrapped. Wrapping under a local
    /// [`WrappingKey`] needs no bytes: use [`wrap`](Self::wrap) or
    /// [`KeySlot::wrap_local`](crate::KeySlot::wrap_local).
    pub fn expose_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.material.bytes)
    }

    /// The key material, for the slotted envelope's payload.
    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Encrypts this key under `key`, returning bytes to store: 66 for a master key, 86 for a
    /// passphrase (which adds its PBKDF2 iteration count and salt). Every call uses a fresh
    /// nonce, so wrapping the same key twice gives different bytes; each unwraps to this key.
    ///
    /// To rotate the wrapping key, [`unwrap`](Self::unwrap) with the old one and `wrap` with
    /// the new one: the messages sealed under this data key stay as they are.
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails; [`Error::InvalidIterations`] for a
    /// passphrase whose iteration count `unwrap` would refuse.
    pub fn wrap(&self, key: &WrappingKey) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let wrap = Wrap::for_seal(Kind::WrappedKey, key, &rng)?;
        let mut out = Vec::with_capacity(format::MAX_HEADER_LEN + WRAPPED_KEY_LEN);
        self.material.write_wrapped(&wrap, &mut out)?;
        Ok(out)
    }

    /// Decrypts a wrapped data key made by [`wrap`](Self::wrap).
    ///
    /// Unwrapping is the expensive step (an AES key schedule for the wrapping key and one for
    /// the data key, and PBKDF2 for a passphrase without a cached key): do it once and keep
    /// the `DataKey`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] when `key` is wrong (including a master key for a passphrase-wrapped
    /// key, or the reverse) or any byte was modified; [`Error::Malformed`] when the bytes are
    /// not a wrapped data key (truncated, trailing bytes, bad magic, unknown scheme, an
    /// iteration count out of range); [`Error::UnsupportedVersion`] for a future format.
    pub fn unwrap(key: &WrappingKey, wrapped: &[u8]) -> Result<DataKey, Error> {
        KeyMaterial::unwrap_parts(key, &format::split_wrapped_key(wrapped)?).map(DataKey::from)
    }

    /// Encrypts `plaintext` under this key with a fresh random nonce. The result is 33 bytes
    /// longer than `plaintext`.
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails; [`Error::Malformed`] for a plaintext longer
    /// than AES-GCM allows (about 64 GiB).
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.seal_with_context(plaintext, &[])
    }

    /// Decrypts a message made by [`seal`](Self::seal) with this key.
    ///
    /// # Errors
    /// [`Error::Decrypt`] when this is the wrong key, any byte was modified, or the message
    /// was sealed with a context; [`Error::Malformed`] or [`Error::UnsupportedVersion`] when
    /// the bytes are not a sealed message.
    pub fn open(&self, sealed: &[u8]) -> Result<Plaintext, Error> {
        self.open_with_context(sealed, &[])
    }

    /// Like [`seal`](Self::seal), and the message opens only with the same `context`.
    ///
    /// `context` is authenticated, not encrypted or stored: pass what identifies the
    /// message's place, such as the name it is stored under, and pass it again to
    /// [`open_with_context`](Self::open_with_context). An empty context is the same as
    /// [`seal`](Self::seal).
    ///
    /// # Errors
    /// As [`seal`](Self::seal).
    pub fn seal_with_context(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        self.seal_message(random_nonce(&SystemRandom::new())?, plaintext, context)
    }

    /// Decrypts a message made by [`seal_with_context`](Self::seal_with_context) with this key
    /// and the same `context`.
    ///
    /// # Errors
    /// As [`open`](Self::open); a different context is [`Error::Decrypt`].
    pub fn open_with_context(&self, sealed: &[u8], context: &[u8]) -> Result<Plaintext, Error> {
        self.material
            .open_payload(Section::Message(context), &format::split_sealed(sealed)?)
    }

    /// A sealed message with the nonce chosen by the caller: [`seal_with_context`] with its
    /// random choice made, so tests can pin it (the test vectors in docs/envelope-format.md
    /// come from here).
    ///
    /// [`seal_with_context`]: Self::seal_with_context
    fn seal_message(
        &self,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(SEALED_PREFIX_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&sealed_prefix());
        self.material
            .seal_payload(Section::Message(context), nonce, plaintext, &mut out)?;
        Ok(out)
    }
}

impl From<KeyMaterial> for DataKey {
    fn from(material: KeyMaterial) -> DataKey {
        DataKey {
            material: Box::new(material),
        }
    }
}

impl KeyMaterial {
    /// A fresh random data key from `rng`.
    pub(crate) fn generate_with(rng: &SystemRandom) -> Result<KeyMaterial, Error> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(rng, &mut bytes[..])?;
        KeyMaterial::from_bytes(&bytes)
    }

    /// The data key with these bytes.
    pub(crate) fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<KeyMaterial, Error> {
        Ok(KeyMaterial {
            bytes: *bytes,
            aead: aead_key(bytes)?,
        })
    }

    /// Unwraps the data key of a split envelope or wrapped key with `key`.
    pub(crate) fn unwrap_parts(
        key: &WrappingKey,
        parts: &KeyParts<'_>,
    ) -> Result<KeyMaterial, Error> {
        let wrapping = match (key, parts.header.scheme()) {
            (WrappingKey::Master(master), Scheme::Master) => {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                bytes.copy_from_slice(master.bytes());
                bytes
            }
            (WrappingKey::Passphrase(passphrase), Scheme::Passphrase { iterations, salt }) => {
                passphrase.key_for_open(&salt, iterations)
            }
            // The wrong kind of key is a wrong key; checked before any PBKDF2 work.
            _ => return Err(Error::Decrypt),
        };
        let mut buf = Zeroizing::new([0u8; KEY_LEN + TAG_LEN]);
        if parts.wrapped_key.len() != buf.len() {
            return Err(Error::Malformed {
                reason: "bad wrapped data key length",
            });
        }
        buf.copy_from_slice(parts.wrapped_key);
        let plain = cipher::open_in_place(
            &wrapping,
            parts.wrap_nonce,
            parts.header_bytes,
            &mut buf[..],
        )?;
        let bytes: &[u8; KEY_LEN] = (&*plain).try_into().map_err(|_| Error::Decrypt)?;
        KeyMaterial::from_bytes(bytes)
    }

    /// Appends the header and this key wrapped as `wrap` says to `out`.
    pub(crate) fn write_wrapped(&self, wrap: &Wrap, out: &mut Vec<u8>) -> Result<(), Error> {
        let header = wrap.header.encode();
        out.extend_from_slice(&header);
        out.extend_from_slice(&wrap.nonce);
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        match cipher::seal_in_place(&wrap.key, wrap.nonce, &header, &mut out[start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                // Never leave the plain data key in a buffer the caller may keep.
                plaintext::wipe(out);
                Err(e)
            }
        }
    }

    /// Appends a payload section to `out`: `nonce`, then `plaintext` encrypted under this key
    /// with the AAD of `section`, then the tag.
    pub(crate) fn seal_payload(
        &self,
        section: Section<'_>,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let sealed = with_aad(section, &nonce, |aad| {
            self.aead.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                aad,
                &mut out[start..],
            )
        });
        match sealed {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                // The buffer still holds plaintext: wipe it before the caller drops it.
                plaintext::wipe(out);
                // ring refuses only inputs longer than AES-GCM allows (about 64 GiB).
                Err(Error::Malformed {
                    reason: "plaintext too long for AES-256-GCM",
                })
            }
        }
    }

    /// Decrypts a payload section sealed by [`seal_payload`](Self::seal_payload) with the same
    /// `section` (and so the same context).
    pub(crate) fn open_payload(
        &self,
        section: Section<'_>,
        payload: &Payload<'_>,
    ) -> Result<Plaintext, Error> {
        // Owned by a Plaintext from the start: whatever a failed open leaves in the buffer
        // is wiped with it, and so is the tag after the plaintext of a successful one.
        let mut plaintext = Plaintext::from_vec(payload.sealed.to_vec());
        let buf = plaintext.buf_mut();
        let len = with_aad(section, &payload.nonce, |aad| {
            self.aead
                .open_in_place(Nonce::assume_unique_for_key(payload.nonce), aad, buf)
                .map(|opened| opened.len())
        })
        .map_err(|_| Error::Decrypt)?;
        plaintext.cut(len);
        Ok(plaintext)
    }
}

/// Which payload a section is: that decides its AAD (docs/envelope-format.md).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Section<'c> {
    /// An envelope's payload. AAD: magic `SREN`, version, payload nonce.
    Envelope,
    /// A sealed message, with the caller's context. AAD: magic `SRDM`, version, context.
    Message(&'c [u8]),
    /// The payload of a slotted (version 2) envelope. AAD: the given bytes, which are the
    /// file's magic `SREN`, version 2 and store id.
    Slotted(&'c [u8]),
}

/// Contexts up to this long are joined to the message prefix on the stack.
const STACK_AAD_LEN: usize = 64;

/// Runs `f` with the AAD of `section`, assembled on the stack unless the context is long.
fn with_aad<R>(
    section: Section<'_>,
    nonce: &[u8; NONCE_LEN],
    f: impl FnOnce(Aad<&[u8]>) -> R,
) -> R {
    let context = match section {
        Section::Envelope => return f(Aad::from(&payload_aad(nonce)[..])),
        Section::Slotted(header) => return f(Aad::from(header)),
        Section::Message([]) => return f(Aad::from(&sealed_prefix()[..])),
        Section::Message(context) => context,
    };
    let len = SEALED_PREFIX_LEN + context.len();
    if len <= STACK_AAD_LEN {
        let mut aad = [0u8; STACK_AAD_LEN];
        aad[..SEALED_PREFIX_LEN].copy_from_slice(&sealed_prefix());
        aad[SEALED_PREFIX_LEN..len].copy_from_slice(context);
        return f(Aad::from(&aad[..len]));
    }
    let mut aad = Vec::with_capacity(len);
    aad.extend_from_slice(&sealed_prefix());
    aad.extend_from_slice(context);
    f(Aad::from(&aad[..]))
}

impl Clone for DataKey {
    fn clone(&self) -> DataKey {
        DataKey::from(KeyMaterial {
            bytes: self.material.bytes,
            aead: self.material.aead.clone(),
        })
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// Everything needed to write the header and wrapped data key of a new envelope or wrapped
/// key.
pub(crate) struct Wrap {
    /// The header to write (its bytes are the AAD of the wrapped key).
    pub(crate) header: Header,
    /// The master key, or the key derived from the passphrase.
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    /// The nonce for wrapping the data key.
    pub(crate) nonce: [u8; NONCE_LEN],
}

impl Wrap {
    /// The wrap of a new `kind` under `key`, with a fresh nonce.
    pub(crate) fn for_seal(
        kind: Kind,
        key: &WrappingKey,
        rng: &SystemRandom,
    ) -> Result<Wrap, Error> {
        let (scheme, key) = match key {
            WrappingKey::Master(master) => {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                bytes.copy_from_slice(master.bytes());
                (Scheme::Master, bytes)
            }
            WrappingKey::Passphrase(passphrase) => {
                let derived = passphrase.key_for_seal(rng)?;
                let scheme = Scheme::Passphrase {
                    iterations: derived.iterations,
                    salt: derived.salt,
                };
                (scheme, derived.key)
            }
        };
        Ok(Wrap {
            header: Header::new(kind, scheme),
            key,
            nonce: random_nonce(rng)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;
    use crate::format::{SALT_LEN, WRAPPED_KEY_MAGIC};
    use crate::{MasterKey, Passphrase, test_hex};

    /// The test vectors of docs/envelope-format.md ("Wrapped data keys and sealed
    /// messages"), computed with Python's `cryptography` (AESGCM) from the document, not from
    /// this crate.
    const VECTOR_PLAINTEXT: &[u8] = b"strongroom data key test vector";
    const WRAPPED_VECTOR: &str = concat!(
        "5352444b0101",
        "404142434445464748494a4b",
        "c2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4",
        "c62a2b95298cd496122a946c5d12ddf2",
    );
    const SEALED_VECTOR: &str = concat!(
        "5352444d01",
        "909192939495969798999a9b",
        "2a4dae7cf792770c07d7a1b956c84a2ad36b5ec2ab5665ae9e9bfbc6ca048f",
        "3f6ccd784d1cd2c70493234f9f70640c",
    );
    const CONTEXT_VECTOR: &str = concat!(
        "5352444d01",
        "a0a1a2a3a4a5a6a7a8a9aaab",
        "0d48d65baab0f2c5ce458dde47291786fa1ab82748d155562fe4ae9aa709dd",
        "80a948803b93219c8183e75eec79b4e1",
    );

    /// `n` consecutive byte values starting at `start`.
    fn run<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start + u8::try_from(i).unwrap())
    }

    fn master() -> WrappingKey {
        MasterKey::generate().unwrap().into()
    }

    fn passphrase(text: &str) -> WrappingKey {
        Passphrase::new(text).with_iterations(1000).into()
    }

    fn vector_data_key() -> DataKey {
        KeyMaterial::from_bytes(&run::<32>(0x20)).unwrap().into()
    }

    fn open_err(key: &DataKey, sealed: &[u8]) -> Error {
        match key.open(sealed) {
            Ok(_) => panic!("a modified or truncated message opened"),
            Err(e) => e,
        }
    }

    fn unwrap_err(key: &WrappingKey, wrapped: &[u8]) -> Error {
        match DataKey::unwrap(key, wrapped) {
            Ok(_) => panic!("a modified or truncated wrapped key unwrapped"),
            Err(e) => e,
        }
    }

    #[test]
    fn test_vectors_are_reproduced_and_open() {
        let data_key = vector_data_key();
        let wrap = Wrap {
            header: Header::new(Kind::WrappedKey, Scheme::Master),
            key: Zeroizing::new(run::<32>(0x00)),
            nonce: run::<12>(0x40),
        };
        let mut wrapped = Vec::new();
        data_key
            .material
            .write_wrapped(&wrap, &mut wrapped)
            .unwrap();
        assert_eq!(wrapped, test_hex::decode(WRAPPED_VECTOR));

        let sealed = data_key
            .seal_message(run::<12>(0x90), VECTOR_PLAINTEXT, &[])
            .unwrap();
        assert_eq!(sealed, test_hex::decode(SEALED_VECTOR));
        let bound = data_key
            .seal_message(run::<12>(0xa0), VECTOR_PLAINTEXT, b"db/password")
            .unwrap();
        assert_eq!(bound, test_hex::decode(CONTEXT_VECTOR));

        let vector_master = MasterKey::from_bytes(&run::<32>(0x00)).unwrap().into();
        let unwrapped = DataKey::unwrap(&vector_master, &wrapped).unwrap();
        assert_eq!(&unwrapped.open(&sealed).unwrap()[..], VECTOR_PLAINTEXT);
        assert_eq!(
            &unwrapped.open_with_context(&bound, b"db/password").unwrap()[..],
            VECTOR_PLAINTEXT
        );
    }

    /// The hex of the fenced block that follows `heading` in docs/envelope-format.md: the
    /// first word of each line.
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
    fn the_format_document_shows_the_tested_vectors() {
        assert_eq!(documented_vector("### Vector 3"), WRAPPED_VECTOR);
        assert_eq!(documented_vector("### Vector 4"), SEALED_VECTOR);
        assert_eq!(documented_vector("### Vector 5"), CONTEXT_VECTOR);
    }

    #[test]
    fn seal_and_open_round_trip_with_the_documented_layout() {
        let key = DataKey::generate().unwrap();
        for len in [0, 1, 15, 16, 17, 64, 1000, 65_536] {
            let plaintext: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let sealed = key.seal(&plaintext).unwrap();
            assert_eq!(sealed.len(), 5 + 12 + len + 16);
            assert_eq!(&sealed[..5], b"SRDM\x01");
            assert_eq!(&key.open(&sealed).unwrap()[..], &plaintext[..]);
            assert_eq!(
                &key.open_with_context(&sealed, &[]).unwrap()[..],
                &plaintext[..]
            );
        }
    }

    #[test]
    fn every_seal_draws_a_fresh_nonce() {
        let key = DataKey::generate().unwrap();
        let a = key.seal(b"same").unwrap();
        let b = key.seal(b"same").unwrap();
        assert_ne!(a[5..17], b[5..17]);
        assert_ne!(a, b);
    }

    #[test]
    fn wrap_and_unwrap_under_either_kind_of_key() {
        let data_key = DataKey::generate().unwrap();
        let sealed = data_key.seal(b"many values, one key").unwrap();
        for (key, len, scheme) in [(master(), 66, 1), (passphrase("pw"), 86, 2)] {
            let wrapped = data_key.wrap(&key).unwrap();
            assert_eq!(wrapped.len(), len);
            assert_eq!(wrapped[..4], WRAPPED_KEY_MAGIC);
            assert_eq!(wrapped[4..6], [1, scheme]);
            let header = Header::parse_wrapped_key(&wrapped).unwrap();
            assert_eq!(header.is_passphrase(), scheme == 2);
            assert_eq!(header.format_version(), 1);
            let again = DataKey::unwrap(&key, &wrapped).unwrap();
            assert_eq!(&again.open(&sealed).unwrap()[..], b"many values, one key");
            // A fresh nonce on every wrap; both unwrap to the same key.
            let other = data_key.wrap(&key).unwrap();
            assert_ne!(wrapped, other);
            let again = DataKey::unwrap(&key, &other).unwrap();
            assert_eq!(&again.open(&sealed).unwrap()[..], b"many values, one key");
        }
        // A fresh Passphrase (no cache) unwraps from the header's salt and count.
        let wrapped = data_key.wrap(&passphrase("pw")).unwrap();
        let opened = DataKey::unwrap(&passphrase("pw"), &wrapped).unwrap();
        assert_eq!(&opened.open(&sealed).unwrap()[..], b"many values, one key");
        assert_eq!(
            Header::parse_wrapped_key(&wrapped).unwrap().iterations(),
            Some(1000)
        );
    }

    #[test]
    fn rotating_the_wrapping_key_keeps_the_messages() {
        let old = master();
        let new = passphrase("new");
        let wrapped = DataKey::generate().unwrap().wrap(&old).unwrap();
        let sealed = DataKey::unwrap(&old, &wrapped)
            .unwrap()
            .seal(b"kept")
            .unwrap();
        let rewrapped = DataKey::unwrap(&old, &wrapped).unwrap().wrap(&new).unwrap();
        let key = DataKey::unwrap(&new, &rewrapped).unwrap();
        assert_eq!(&key.open(&sealed).unwrap()[..], b"kept");
        assert!(matches!(
            DataKey::unwrap(&old, &rewrapped),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn a_wrong_key_is_decrypt() {
        let data_key = DataKey::generate().unwrap();
        let sealed = data_key.seal(b"secret").unwrap();
        assert!(matches!(
            DataKey::generate().unwrap().open(&sealed),
            Err(Error::Decrypt)
        ));

        let wrapped = data_key.wrap(&master()).unwrap();
        assert!(matches!(unwrap_err(&master(), &wrapped), Error::Decrypt));
        assert!(matches!(
            unwrap_err(&passphrase("x"), &wrapped),
            Error::Decrypt
        ));
        let wrapped = data_key.wrap(&passphrase("right")).unwrap();
        assert!(matches!(
            unwrap_err(&passphrase("wrong"), &wrapped),
            Error::Decrypt
        ));
        assert!(matches!(unwrap_err(&master(), &wrapped), Error::Decrypt));
    }

    #[test]
    fn a_context_binds_the_message_to_its_place() {
        let key = DataKey::generate().unwrap();
        let password = key.seal_with_context(b"hunter2", b"db/password").unwrap();
        assert_eq!(
            &key.open_with_context(&password, b"db/password").unwrap()[..],
            b"hunter2"
        );
        for wrong in [&b"db/user"[..], b"db/passwor", b"db/password\0", b""] {
            assert!(matches!(
                key.open_with_context(&password, wrong),
                Err(Error::Decrypt)
            ));
        }
        assert!(matches!(key.open(&password), Err(Error::Decrypt)));
        // And a message sealed without a context does not open with one.
        let plain = key.seal(b"x").unwrap();
        assert!(matches!(
            key.open_with_context(&plain, b"db/password"),
            Err(Error::Decrypt)
        ));
    }

    /// The error each position of a sealed message must give when modified: magic and
    /// version are checked by parsing, everything after by authentication.
    #[test]
    fn every_bit_flip_of_a_sealed_message_fails() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"a secret worth protecting").unwrap();
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut bytes = sealed.clone();
                bytes[index] ^= 1 << bit;
                let error = open_err(&key, &bytes);
                match index {
                    0..=3 => assert!(matches!(error, Error::Malformed { .. }), "{index}"),
                    4 => assert!(matches!(error, Error::UnsupportedVersion { .. }), "{index}"),
                    _ => assert!(matches!(error, Error::Decrypt), "{index} {bit}: {error:?}"),
                }
            }
        }
        assert_eq!(
            &key.open(&sealed).unwrap()[..],
            b"a secret worth protecting"
        );
    }

    #[test]
    fn every_truncation_and_an_extension_of_a_sealed_message_fail() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"twenty-one characters").unwrap();
        for len in 0..sealed.len() {
            let error = open_err(&key, &sealed[..len]);
            if len < 5 + 12 + 16 {
                assert!(matches!(error, Error::Malformed { .. }), "{len}: {error:?}");
            } else {
                assert!(matches!(error, Error::Decrypt), "{len}: {error:?}");
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(key.open(&longer), Err(Error::Decrypt)));
    }

    #[test]
    fn every_bit_flip_of_a_wrapped_key_fails() {
        let data_key = DataKey::generate().unwrap();
        for key in [master(), passphrase("p")] {
            let wrapped = data_key.wrap(&key).unwrap();
            for index in 0..wrapped.len() {
                for bit in 0..8 {
                    let mut bytes = wrapped.clone();
                    bytes[index] ^= 1 << bit;
                    let error = unwrap_err(&key, &bytes);
                    match index {
                        0..=3 | 5 => assert!(matches!(error, Error::Malformed { .. }), "{index}"),
                        4 => assert!(matches!(error, Error::UnsupportedVersion { .. }), "{index}"),
                        // Iterations: out of range is malformed, in range fails to unwrap.
                        _ => assert!(
                            matches!(error, Error::Decrypt | Error::Malformed { .. }),
                            "{index} {bit}: {error:?}"
                        ),
                    }
                    if index >= 26
                        || (index >= 6
                            && !Header::parse_wrapped_key(&wrapped).unwrap().is_passphrase())
                    {
                        assert!(matches!(error, Error::Decrypt), "{index} {bit}: {error:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_truncation_and_an_extension_of_a_wrapped_key_are_malformed() {
        let data_key = DataKey::generate().unwrap();
        for key in [master(), passphrase("p")] {
            let wrapped = data_key.wrap(&key).unwrap();
            for len in 0..wrapped.len() {
                let error = unwrap_err(&key, &wrapped[..len]);
                assert!(matches!(error, Error::Malformed { .. }), "{len}: {error:?}");
            }
            let mut longer = wrapped.clone();
            longer.push(0);
            assert!(matches!(
                unwrap_err(&key, &longer),
                Error::Malformed {
                    reason: "bytes after the wrapped data key"
                }
            ));
        }
    }

    #[test]
    fn iteration_counts_out_of_range_are_refused() {
        let data_key = DataKey::generate().unwrap();
        let too_many = crate::MAX_ITERATIONS + 1;
        for bad in [0, too_many] {
            let key: WrappingKey = Passphrase::new("pw").with_iterations(bad).into();
            assert!(matches!(
                data_key.wrap(&key),
                Err(Error::InvalidIterations { iterations }) if iterations == bad
            ));
        }
        let wrapped = data_key.wrap(&passphrase("pw")).unwrap();
        for bad in [0, too_many, u32::MAX] {
            let mut crafted = wrapped.clone();
            crafted[6..10].copy_from_slice(&bad.to_be_bytes());
            assert!(matches!(
                Header::parse_wrapped_key(&crafted),
                Err(Error::Malformed { .. })
            ));
            assert!(matches!(
                unwrap_err(&passphrase("pw"), &crafted),
                Error::Malformed { .. }
            ));
        }
    }

    /// Each format says what the bytes are when given another one, and relabelling one as
    /// another (same bytes, other magic) fails authentication: the magic is in every AAD.
    #[test]
    fn the_three_formats_cannot_stand_in_for_each_other() {
        let master = master();
        let data_key = DataKey::generate().unwrap();
        let wrapped = data_key.wrap(&master).unwrap();
        let message = data_key.seal(b"payload").unwrap();
        let envelope = crate::seal(&master, b"payload").unwrap();

        let reason = |e: Error| match e {
            Error::Malformed { reason } => reason,
            other => panic!("expected Malformed, got {other:?}"),
        };
        assert!(reason(unwrap_err(&master, &envelope)).contains("an envelope"));
        assert!(reason(unwrap_err(&master, &message)).contains("sealed under a data key"));
        assert!(reason(open_err(&data_key, &envelope)).contains("an envelope"));
        assert!(reason(open_err(&data_key, &wrapped)).contains("wrapped data key"));
        assert!(reason(crate::open(&master, &wrapped).unwrap_err()).contains("wrapped data key"));
        assert!(
            reason(crate::open(&master, &message).unwrap_err()).contains("sealed under a data key")
        );
        assert!(reason(unwrap_err(&master, b"garbage!")).contains("bad magic"));

        // An envelope's header and wrapped key, relabelled as a wrapped key.
        let mut relabelled = envelope[..66].to_vec();
        relabelled[..4].copy_from_slice(&WRAPPED_KEY_MAGIC);
        assert!(matches!(unwrap_err(&master, &relabelled), Error::Decrypt));
        // A wrapped key relabelled as the front of an envelope.
        let mut relabelled = wrapped.clone();
        relabelled[..4].copy_from_slice(&crate::MAGIC);
        relabelled.extend_from_slice(&message[5..]);
        assert!(matches!(
            crate::open(&master, &relabelled),
            Err(Error::Decrypt)
        ));
        // An envelope's payload relabelled as a sealed message, under the right data key.
        let mut out = Vec::new();
        let wrap = Wrap::for_seal(Kind::Envelope, &master, &SystemRandom::new()).unwrap();
        data_key.material.write_wrapped(&wrap, &mut out).unwrap();
        data_key
            .material
            .seal_payload(Section::Envelope, run::<12>(1), b"payload", &mut out)
            .unwrap();
        assert_eq!(&crate::open(&master, &out).unwrap()[..], b"payload");
        let mut as_message = b"SRDM\x01".to_vec();
        as_message.extend_from_slice(&out[66..]);
        assert!(matches!(data_key.open(&as_message), Err(Error::Decrypt)));
    }

    #[test]
    fn debug_is_redacted_and_clones_work_alone() {
        let key = DataKey::from(KeyMaterial::from_bytes(&[0x41; 32]).unwrap());
        assert_eq!(format!("{key:?}"), "DataKey([REDACTED])");
        assert_eq!(format!("{key:#?}"), "DataKey([REDACTED])");
        let sealed = key.seal(b"x").unwrap();
        let copy = key.clone();
        drop(key);
        assert_eq!(&copy.open(&sealed).unwrap()[..], b"x");
    }

    #[test]
    fn a_data_key_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<DataKey>();
        let key = DataKey::generate().unwrap();
        let sealed: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u8)
                .map(|i| {
                    scope.spawn({
                        let key = &key;
                        move || key.seal(&[i; 100]).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, message) in (0..4u8).zip(&sealed) {
            assert_eq!(&key.open(message).unwrap()[..], &[i; 100][..]);
        }
    }

    #[test]
    fn errors_never_show_plaintext_or_context() {
        let key = DataKey::generate().unwrap();
        let sealed = key
            .seal_with_context(b"plaintext-never-shown", b"context-never-shown")
            .unwrap();
        let errors = [
            key.open_with_context(&sealed, b"other-context-never-shown")
                .unwrap_err(),
            key.open(&sealed[..20]).unwrap_err(),
            DataKey::unwrap(&passphrase("passphrase-never-shown"), &sealed).unwrap_err(),
        ];
        for error in &errors {
            for shown in [format!("{error}"), format!("{error:?}")] {
                assert!(!shown.contains("never-shown"), "{shown}");
            }
        }
    }

    #[test]
    fn a_dropped_key_is_overwritten_by_the_blank_key() {
        // What Drop writes: zero bytes, and a ring key that is the all-zero key's (it opens
        // what the all-zero key sealed).
        let blank = DataKey::from(KeyMaterial::from_bytes(&[0u8; KEY_LEN]).unwrap());
        let sealed = blank.seal(b"blank").unwrap();
        let mut material = KeyMaterial {
            bytes: [0x77; KEY_LEN],
            aead: aead_key(&[0x77; KEY_LEN]).unwrap(),
        };
        material.bytes.zeroize();
        material.aead = blank_key().unwrap().clone();
        assert_eq!(material.bytes, [0u8; KEY_LEN]);
        let wiped = DataKey::from(material);
        assert_eq!(&wiped.open(&sealed).unwrap()[..], b"blank");
    }

    #[test]
    fn a_passphrase_wrap_records_its_iterations_and_salt() {
        let key: WrappingKey = Passphrase::new("pw").with_iterations(1500).into();
        let data_key = DataKey::generate().unwrap();
        let wrapped = data_key.wrap(&key).unwrap();
        assert_eq!(wrapped[6..10], 1500u32.to_be_bytes());
        // The Passphrase's cached salt is reused, as for envelopes; the nonce is not.
        let again = data_key.wrap(&key).unwrap();
        assert_eq!(wrapped[10..10 + SALT_LEN], again[10..10 + SALT_LEN]);
        assert_ne!(wrapped[26..38], again[26..38]);
        // The reader's own iteration count does not matter.
        let reader: WrappingKey = Passphrase::new("pw")
            .with_iterations(NonZeroU32::MIN.get())
            .into();
        assert!(DataKey::unwrap(&reader, &wrapped).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
            context in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let key = DataKey::generate().unwrap();
            let sealed = key.seal_with_context(&plaintext, &context).unwrap();
            prop_assert_eq!(sealed.len(), 33 + plaintext.len());
            prop_assert_eq!(&key.open_with_context(&sealed, &context).unwrap()[..], &plaintext[..]);
        }

        #[test]
        fn arbitrary_bytes_never_open_unwrap_or_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assert!(DataKey::generate().unwrap().open(&bytes).is_err());
            prop_assert!(DataKey::unwrap(&master(), &bytes).is_err());
            let _ = Header::parse_wrapped_key(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_valid_prefixes_never_open_or_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut message = b"SRDM\x01".to_vec();
            message.extend_from_slice(&body);
            let result = DataKey::generate().unwrap().open(&message);
            let expected = matches!(result, Err(Error::Decrypt | Error::Malformed { .. }));
            prop_assert!(expected, "unexpected result {:?}", result.map(|_| "opened"));

            let mut wrapped = b"SRDK\x01\x01".to_vec();
            wrapped.extend_from_slice(&body);
            let result = DataKey::unwrap(&master(), &wrapped);
            let expected = matches!(result, Err(Error::Decrypt | Error::Malformed { .. }));
            prop_assert!(expected, "unexpected result {:?}", result.map(|_| "unwrapped"));
        }
    }
}
