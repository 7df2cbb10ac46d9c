//! The byte layouts of this crate: constants, the [`Header`], and splitting an envelope, a
//! wrapped data key or a sealed message into its sections with every length checked before
//! any slicing.
//!
//! docs/envelope-format.md is the specification; this module is its one implementation.

use std::num::NonZeroU32;

use crate::error::Error;
use crate::passphrase::MAX_ITERATIONS;

/// The first four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"SREN";
/// The first four bytes of a wrapped data key ([`DataKey::wrap`](crate::DataKey::wrap)).
pub const WRAPPED_KEY_MAGIC: [u8; 4] = *b"SRDK";
/// The first four bytes of a message sealed under a data key
/// ([`DataKey::seal`](crate::DataKey::seal)).
pub const SEALED_MAGIC: [u8; 4] = *b"SRDM";
/// The format version of a single-key envelope ([`seal`](crate::seal)), a wrapped data key
/// and a sealed message. Envelopes with key slots are version
/// [`SLOTTED_VERSION`](crate::SLOTTED_VERSION).
pub const FORMAT_VERSION: u8 = 1;
/// Length of a master key, a data key and a derived key: AES-256.
pub const KEY_LEN: usize = 32;

/// Wrapping scheme byte: the data key is wrapped by a 32-byte master key.
pub(crate) const SCHEME_MASTER: u8 = 1;
/// Wrapping scheme byte: the data key is wrapped by a PBKDF2-HMAC-SHA256 derived key.
pub(crate) const SCHEME_PASSPHRASE: u8 = 2;
/// AES-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// PBKDF2 salt length.
pub(crate) const SALT_LEN: usize = 16;
/// Wrapped data key: nonce, encrypted key, tag.
pub(crate) const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// Magic, version, scheme.
const FIXED_LEN: usize = MAGIC.len() + 2;
/// Iterations (u32 big-endian) and salt.
const KDF_PARAMS_LEN: usize = 4 + SALT_LEN;
/// The longest header (passphrase scheme).
pub(crate) const MAX_HEADER_LEN: usize = FIXED_LEN + KDF_PARAMS_LEN;
/// The smallest payload section: a nonce and the tag of an empty plaintext.
const MIN_PAYLOAD_LEN: usize = NONCE_LEN + TAG_LEN;
/// Length of an envelope payload's additional authenticated data: magic, version, nonce.
pub(crate) const PAYLOAD_AAD_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;
/// Magic and version: what a sealed message has before its payload section.
pub(crate) const SEALED_PREFIX_LEN: usize = SEALED_MAGIC.len() + 1;

/// Which of the crate's byte strings some bytes are meant to be. Each has its own magic, and
/// the magic is authenticated, so one can never be read as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An envelope: header, wrapped data key, payload (`SREN`).
    Envelope,
    /// A wrapped data key on its own: header, wrapped data key (`SRDK`).
    WrappedKey,
    /// A message sealed under a data key: magic, version, payload (`SRDM`).
    Sealed,
}

impl Kind {
    /// The four bytes every string of this kind starts with.
    pub(crate) fn magic(self) -> [u8; 4] {
        match self {
            Kind::Envelope => MAGIC,
            Kind::WrappedKey => WRAPPED_KEY_MAGIC,
            Kind::Sealed => SEALED_MAGIC,
        }
    }

    /// The kind whose magic `bytes` is, if any.
    fn of_magic(bytes: &[u8]) -> Option<Kind> {
        [Kind::Envelope, Kind::WrappedKey, Kind::Sealed]
            .into_iter()
            .find(|kind| kind.magic() == bytes)
    }

    /// The error for bytes that start with `found` where this kind was expected: it names
    /// what they are when they are another of this crate's formats.
    fn wrong_magic(self, found: &[u8]) -> Error {
        let reason = match (self, Kind::of_magic(found)) {
            (Kind::Envelope, Some(Kind::WrappedKey)) => {
                "this is a wrapped data key (DataKey::unwrap), not an envelope"
            }
            (Kind::Envelope, Some(Kind::Sealed)) => {
                "this is a message sealed under a data key (DataKey::open), not an envelope"
            }
            (Kind::Envelope, _) => "bad magic: not a strongroom envelope",
            (Kind::WrappedKey, Some(Kind::Envelope)) => {
                "this is an envelope (open), not a wrapped data key"
            }
            (Kind::WrappedKey, Some(Kind::Sealed)) => {
                "this is a message sealed under a data key (DataKey::open), not a wrapped data key"
            }
            (Kind::WrappedKey, _) => "bad magic: not a strongroom wrapped data key",
            (Kind::Sealed, Some(Kind::Envelope)) => {
                "this is an envelope (open), not a message sealed under a data key"
            }
            (Kind::Sealed, Some(Kind::WrappedKey)) => {
                "this is a wrapped data key (DataKey::unwrap), not a sealed message"
            }
            (Kind::Sealed, _) => "bad magic: not a strongroom sealed message",
        };
        Error::Malformed { reason }
    }
}

/// How the data key of an envelope is wrapped, with the parameters the reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// By a master key.
    Master,
    /// By a key derived from a passphrase with PBKDF2-HMAC-SHA256.
    Passphrase {
        /// PBKDF2 iteration count, 1..=[`MAX_ITERATIONS`].
        iterations: NonZeroU32,
        /// PBKDF2 salt.
        salt: [u8; SALT_LEN],
    },
}

/// The parsed header of an envelope or of a wrapped data key: format version and wrapping
/// scheme.
///
/// Parsing checks the whole framing (magic, version, scheme, iteration count, every section
/// length), so `Header::parse(bytes).is_ok()` means the bytes are shaped like an envelope;
/// only [`open`](crate::open) can tell whether they authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    kind: Kind,
    version: u8,
    scheme: Scheme,
}

impl Header {
    /// Parses and validates the header and the section lengths of `envelope`.
    ///
    /// For a slotted envelope (version 2) this is the header of its first master-key or
    /// passphrase slot, with [`format_version`](Self::format_version) 2: what a wrapping key
    /// must be to open it first. [`SlotTable::parse`](crate::SlotTable::parse) gives all
    /// the slots.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad magic, truncation, an unknown scheme or an iteration
    /// count of zero or above [`MAX_ITERATIONS`], and for a slotted envelope without a
    /// master-key or passphrase slot; [`Error::UnsupportedVersion`] for a version other than
    /// 1 and 2.
    pub fn parse(envelope: &[u8]) -> Result<Header, Error> {
        match envelope_version(envelope)? {
            (FORMAT_VERSION, _) => split(envelope).map(|parts| parts.key.header),
            _ => crate::slots::first_local_header(envelope),
        }
    }

    /// Parses and validates a wrapped data key ([`DataKey::wrap`](crate::DataKey::wrap)):
    /// its header and its exact length. Useful to see, without the key, whether it is wrapped
    /// by a passphrase and with how many PBKDF2 iterations.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), for a wrapped data key; bytes after it are
    /// [`Error::Malformed`].
    pub fn parse_wrapped_key(wrapped: &[u8]) -> Result<Header, Error> {
        split_wrapped_key(wrapped).map(|parts| parts.header)
    }

    /// Whether the data key is wrapped by a passphrase (rather than a master key).
    pub fn is_passphrase(&self) -> bool {
        matches!(self.scheme, Scheme::Passphrase { .. })
    }

    /// The format version byte.
    pub fn format_version(&self) -> u8 {
        self.version
    }

    /// The PBKDF2 iteration count, when the data key is wrapped by a passphrase.
    pub fn iterations(&self) -> Option<u32> {
        match self.scheme {
            Scheme::Master => None,
            Scheme::Passphrase { iterations, .. } => Some(iterations.get()),
        }
    }

    /// A version-1 header of an envelope or a wrapped data key, with this scheme.
    pub(crate) fn new(kind: Kind, scheme: Scheme) -> Header {
        Header {
            kind,
            version: FORMAT_VERSION,
            scheme,
        }
    }

    /// The header [`parse`](Self::parse) gives for a slotted envelope whose first local slot
    /// has this scheme.
    pub(crate) fn slotted(scheme: Scheme) -> Header {
        Header {
            kind: Kind::Envelope,
            version: crate::slots::SLOTTED_VERSION,
            scheme,
        }
    }

    /// The wrapping scheme and its parameters.
    pub(crate) fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The encoded header; these exact bytes are the AAD of the wrapped data key.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + KDF_PARAMS_LEN);
        out.extend_from_slice(&self.kind.magic());
        out.push(self.version);
        match self.scheme {
            Scheme::Master => out.push(SCHEME_MASTER),
            Scheme::Passphrase { iterations, salt } => {
                out.push(SCHEME_PASSPHRASE);
                out.extend_from_slice(&iterations.get().to_be_bytes());
                out.extend_from_slice(&salt);
            }
        }
        out
    }
}

/// The header and wrapped data key of an envelope, or a wrapped data key on its own. Every
/// slice has been length-checked.
#[derive(Debug)]
pub(crate) struct KeyParts<'a> {
    /// The parsed header.
    pub(crate) header: Header,
    /// The header's bytes, as they are in the input (the AAD of the wrapped key).
    pub(crate) header_bytes: &'a [u8],
    /// Nonce of the wrapped data key.
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    /// Encrypted data key followed by its tag.
    pub(crate) wrapped_key: &'a [u8],
}

/// An envelope cut into its sections. Every slice has been length-checked.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    /// The header and the wrapped data key.
    pub(crate) key: KeyParts<'a>,
    /// The payload section.
    pub(crate) payload: Payload<'a>,
}

/// A payload section: nonce, ciphertext, tag. The same in an envelope and a sealed message.
#[derive(Debug)]
pub(crate) struct Payload<'a> {
    /// The whole section, exactly as stored.
    pub(crate) bytes: &'a [u8],
    /// Its nonce.
    pub(crate) nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    pub(crate) sealed: &'a [u8],
}

/// Splits `envelope` into its sections, validating every field and length first.
pub(crate) fn split(envelope: &[u8]) -> Result<Parts<'_>, Error> {
    let (key, payload) = split_key(Kind::Envelope, envelope)?;
    Ok(Parts {
        key,
        payload: split_payload(payload)?,
    })
}

/// Splits a wrapped data key, validating every field and its exact length.
pub(crate) fn split_wrapped_key(wrapped: &[u8]) -> Result<KeyParts<'_>, Error> {
    let (key, rest) = split_key(Kind::WrappedKey, wrapped)?;
    if !rest.is_empty() {
        return Err(Error::Malformed {
            reason: "bytes after the wrapped data key",
        });
    }
    Ok(key)
}

/// Splits a sealed message into its payload section, after checking magic and version.
pub(crate) fn split_sealed(message: &[u8]) -> Result<Payload<'_>, Error> {
    let payload = check_magic_and_version(Kind::Sealed, message)?;
    split_payload(payload).map_err(|_| Error::Malformed {
        reason: "truncated sealed message",
    })
}

/// Checks the magic and version at the start of `bytes`; returns what follows them.
fn check_magic_and_version(kind: Kind, bytes: &[u8]) -> Result<&[u8], Error> {
    check_magic_and_versions(kind, bytes, FORMAT_VERSION)
}

/// The version of an envelope (`SREN`): 1 (one wrapped key) or 2 (key slots), after checking
/// the magic; returns it and what follows the version byte.
pub(crate) fn envelope_version(bytes: &[u8]) -> Result<(u8, &[u8]), Error> {
    match check_magic_and_version(Kind::Envelope, bytes) {
        Ok(rest) => Ok((FORMAT_VERSION, rest)),
        Err(Error::UnsupportedVersion { version }) if version == crate::slots::SLOTTED_VERSION => {
            check_magic_and_versions(Kind::Envelope, bytes, version).map(|rest| (version, rest))
        }
        Err(err) => Err(err),
    }
}

/// Checks the magic and that the version is `expected`; returns what follows them.
fn check_magic_and_versions(kind: Kind, bytes: &[u8], expected: u8) -> Result<&[u8], Error> {
    // A slice pattern rather than `ok_or(error)`: on the hot path (every DataKey::open) no
    // error value is built and dropped.
    let (magic, version, rest) = match bytes {
        [m0, m1, m2, m3, version, rest @ ..] => ([*m0, *m1, *m2, *m3], *version, rest),
        _ => return Err(short_header(kind, bytes)),
    };
    if magic != kind.magic() {
        return Err(kind.wrong_magic(&magic));
    }
    if version != expected {
        return Err(Error::UnsupportedVersion { version });
    }
    Ok(rest)
}

/// The error for fewer than five bytes: a wrong magic if what there is already differs from
/// this kind's, else truncation. (The version is read before anything else so that a future
/// layout is reported as unsupported rather than as malformed.)
fn short_header(kind: Kind, bytes: &[u8]) -> Error {
    match bytes.get(..MAGIC.len()) {
        Some(magic) if magic != kind.magic() => kind.wrong_magic(magic),
        _ => Error::Malformed {
            reason: "truncated header",
        },
    }
}

/// Parses the header and cuts out the wrapped data key of an envelope or a wrapped key;
/// returns them and the bytes after them.
fn split_key(kind: Kind, bytes: &[u8]) -> Result<(KeyParts<'_>, &[u8]), Error> {
    let after_version = check_magic_and_version(kind, bytes)?;
    let scheme_byte = *after_version.first().ok_or(Error::Malformed {
        reason: "truncated header",
    })?;
    let (scheme, header_len) = match scheme_byte {
        SCHEME_MASTER => (Scheme::Master, FIXED_LEN),
        SCHEME_PASSPHRASE => {
            let params =
                bytes
                    .get(FIXED_LEN..FIXED_LEN + KDF_PARAMS_LEN)
                    .ok_or(Error::Malformed {
                        reason: "truncated header",
                    })?;
            let (count, salt) = params.split_at(4);
            let count = u32::from_be_bytes(array(count)?);
            let iterations = NonZeroU32::new(count)
                .filter(|n| n.get() <= MAX_ITERATIONS)
                .ok_or(Error::Malformed {
                    reason: "PBKDF2 iteration count is zero or above 10000000",
                })?;
            let salt = array(salt)?;
            (
                Scheme::Passphrase { iterations, salt },
                FIXED_LEN + KDF_PARAMS_LEN,
            )
        }
        _ => {
            return Err(Error::Malformed {
                reason: "unknown key wrapping scheme",
            });
        }
    };
    let (header_bytes, rest) = bytes.split_at(header_len);
    if rest.len() < WRAPPED_KEY_LEN {
        return Err(Error::Malformed {
            reason: "truncated wrapped data key",
        });
    }
    let (wrapped, rest) = rest.split_at(WRAPPED_KEY_LEN);
    let (wrap_nonce, wrapped_key) = wrapped.split_at(NONCE_LEN);
    let key = KeyParts {
        header: Header {
            kind,
            version: FORMAT_VERSION,
            scheme,
        },
        header_bytes,
        wrap_nonce: array(wrap_nonce)?,
        wrapped_key,
    };
    Ok((key, rest))
}

/// Cuts a payload section into nonce and sealed bytes.
pub(crate) fn split_payload(payload: &[u8]) -> Result<Payload<'_>, Error> {
    if payload.len() < MIN_PAYLOAD_LEN {
        return Err(Error::Malformed {
            reason: "truncated payload",
        });
    }
    let (nonce, sealed) = payload.split_at(NONCE_LEN);
    Ok(Payload {
        bytes: payload,
        nonce: array(nonce)?,
        sealed,
    })
}

/// The AAD of an envelope's payload: magic, version and payload nonce. These are the bytes a
/// rewrap never changes; see docs/envelope-format.md for why that is enough.
pub(crate) fn payload_aad(payload_nonce: &[u8; NONCE_LEN]) -> [u8; PAYLOAD_AAD_LEN] {
    let mut aad = [0u8; PAYLOAD_AAD_LEN];
    let (magic, rest) = aad.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    let (version, nonce) = rest.split_at_mut(1);
    version[0] = FORMAT_VERSION;
    nonce.copy_from_slice(payload_nonce);
    aad
}

/// What a sealed message starts with: its magic and version. They are also the start of its
/// AAD, which the caller's context follows.
pub(crate) fn sealed_prefix() -> [u8; SEALED_PREFIX_LEN] {
    let mut prefix = [0u8; SEALED_PREFIX_LEN];
    let (magic, version) = prefix.split_at_mut(SEALED_MAGIC.len());
    magic.copy_from_slice(&SEALED_MAGIC);
    version[0] = FORMAT_VERSION;
    prefix
}

/// A fixed-size array from a slice whose length the caller has already checked.
pub(crate) fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Malformed {
        reason: "bad field length",
    })
}
