//! The byte layout of an envelope: constants, the [`Header`], and splitting an envelope into
//! its sections with every length checked before any slicing.
//!
//! docs/envelope-format.md is the specification; this module is its one implementation.

use std::num::NonZeroU32;

use crate::error::Error;
use crate::passphrase::MAX_ITERATIONS;

/// The first four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"SREN";
/// The format version this build writes and reads.
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
/// Length of the payload's additional authenticated data: magic, version, payload nonce.
pub(crate) const PAYLOAD_AAD_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;

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

/// The parsed header of an envelope: format version and wrapping scheme.
///
/// Parsing checks the whole framing (magic, version, scheme, iteration count, every section
/// length), so `Header::parse(bytes).is_ok()` means the bytes are shaped like an envelope;
/// only [`open`](crate::open) can tell whether they authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    version: u8,
    scheme: Scheme,
}

impl Header {
    /// Parses and validates the header and the section lengths of `envelope`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad magic, truncation, an unknown scheme or an iteration
    /// count of zero or above [`MAX_ITERATIONS`]; [`Error::UnsupportedVersion`] for a
    /// version other than [`FORMAT_VERSION`].
    pub fn parse(envelope: &[u8]) -> Result<Header, Error> {
        split(envelope).map(|parts| parts.header)
    }

    /// Whether the data key is wrapped by a passphrase (rather than a master key).
    pub fn is_passphrase(&self) -> bool {
        matches!(self.scheme, Scheme::Passphrase { .. })
    }

    /// The format version byte.
    pub fn format_version(&self) -> u8 {
        self.version
    }

    /// The PBKDF2 iteration count, for a passphrase envelope.
    pub fn iterations(&self) -> Option<u32> {
        match self.scheme {
            Scheme::Master => None,
            Scheme::Passphrase { iterations, .. } => Some(iterations.get()),
        }
    }

    /// A version-1 header with this scheme.
    pub(crate) fn new(scheme: Scheme) -> Header {
        Header {
            version: FORMAT_VERSION,
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
        out.extend_from_slice(&MAGIC);
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

/// An envelope cut into its sections. Every slice has been length-checked.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    /// The parsed header.
    pub(crate) header: Header,
    /// The header's bytes, as they are in the envelope (the AAD of the wrapped key).
    pub(crate) header_bytes: &'a [u8],
    /// Nonce of the wrapped data key.
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    /// Encrypted data key followed by its tag.
    pub(crate) wrapped_key: &'a [u8],
    /// The payload section, exactly as stored: nonce, ciphertext, tag.
    pub(crate) payload: &'a [u8],
    /// Nonce of the payload.
    pub(crate) payload_nonce: [u8; NONCE_LEN],
    /// Payload ciphertext followed by its tag.
    pub(crate) payload_sealed: &'a [u8],
}

/// Splits `envelope` into its sections, validating every field and length first.
pub(crate) fn split(envelope: &[u8]) -> Result<Parts<'_>, Error> {
    let truncated = Error::Malformed {
        reason: "truncated header",
    };
    let magic = envelope.get(..MAGIC.len()).ok_or(truncated)?;
    if magic != MAGIC {
        return Err(Error::Malformed {
            reason: "bad magic: not a strongroom envelope",
        });
    }
    // The version is read before anything else so that a future layout is reported as
    // unsupported rather than as malformed.
    let version = *envelope.get(MAGIC.len()).ok_or(Error::Malformed {
        reason: "truncated header",
    })?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { version });
    }
    let scheme_byte = *envelope.get(MAGIC.len() + 1).ok_or(Error::Malformed {
        reason: "truncated header",
    })?;
    let (scheme, header_len) = match scheme_byte {
        SCHEME_MASTER => (Scheme::Master, FIXED_LEN),
        SCHEME_PASSPHRASE => {
            let params =
                envelope
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
    let (header_bytes, rest) = envelope.split_at(header_len);
    if rest.len() < WRAPPED_KEY_LEN {
        return Err(Error::Malformed {
            reason: "truncated wrapped data key",
        });
    }
    let (wrapped, payload) = rest.split_at(WRAPPED_KEY_LEN);
    if payload.len() < MIN_PAYLOAD_LEN {
        return Err(Error::Malformed {
            reason: "truncated payload",
        });
    }
    let (wrap_nonce, wrapped_key) = wrapped.split_at(NONCE_LEN);
    let (payload_nonce, payload_sealed) = payload.split_at(NONCE_LEN);
    Ok(Parts {
        header: Header { version, scheme },
        header_bytes,
        wrap_nonce: array(wrap_nonce)?,
        wrapped_key,
        payload,
        payload_nonce: array(payload_nonce)?,
        payload_sealed,
    })
}

/// The AAD of the payload: magic, version and payload nonce. These are the bytes a rewrap
/// never changes; see docs/envelope-format.md for why that is enough.
pub(crate) fn payload_aad(payload_nonce: &[u8; NONCE_LEN]) -> [u8; PAYLOAD_AAD_LEN] {
    let mut aad = [0u8; PAYLOAD_AAD_LEN];
    let (magic, rest) = aad.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    let (version, nonce) = rest.split_at_mut(1);
    version[0] = FORMAT_VERSION;
    nonce.copy_from_slice(payload_nonce);
    aad
}

/// A fixed-size array from a slice whose length the caller has already checked.
fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Malformed {
        reason: "bad field length",
    })
}
