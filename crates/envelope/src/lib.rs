//! AES-256-GCM envelope encryption, on ring, with no async runtime and no other strongroom
//! crate: usable on its own.
//!
//! [`seal`] encrypts bytes under a fresh random data key and wraps that key with a
//! [`WrappingKey`]: a 32-byte [`MasterKey`] or a [`Passphrase`] (PBKDF2-HMAC-SHA256).
//! [`open`] reverses it, and [`rewrap`] moves an envelope to a new wrapping key without
//! re-encrypting its payload (key rotation). The byte format is versioned, authenticated as
//! a whole, and specified in `docs/envelope-format.md`; [`Header`] reads its unencrypted
//! part.
//!
//! Key material (master keys, data keys, derived keys, passphrases, decrypted plaintext) is
//! zeroized when dropped, `Debug` output redacts it, and no [`Error`] message contains it.
//! A wrong key and modified data fail the same way, with [`Error::Decrypt`].
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

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cipher;
mod envelope;
mod error;
mod format;
mod master_key;
mod passphrase;
mod wrapping_key;

pub use envelope::{open, rewrap, seal};
pub use error::Error;
pub use format::{FORMAT_VERSION, Header, KEY_LEN, MAGIC};
pub use master_key::MasterKey;
pub use passphrase::{DEFAULT_ITERATIONS, MAX_ITERATIONS, Passphrase};
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
