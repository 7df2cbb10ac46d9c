//! The two primitives every section uses, over ring: AES-256-GCM and the system RNG.
//!
//! ring does not zeroize its expanded AES key schedule. The raw key bytes this crate holds
//! are zeroized; a wrapping key's ring key lives only for the one call that wraps or unwraps,
//! and a data key's (in a [`DataKey`](crate::DataKey), or on the stack for one envelope
//! operation) is overwritten with the all-zero key's schedule when it drops.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::Error;
use crate::format::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// A ring AES-256-GCM key from raw bytes: the key schedule and GHASH table.
pub(crate) fn aead_key(key: &[u8; KEY_LEN]) -> Result<LessSafeKey, Error> {
    // Cannot fail for 32 bytes; reported as a key length problem rather than a panic.
    let unbound =
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::KeyLength { len: KEY_LEN })?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `in_out` in place and returns the tag.
pub(crate) fn seal_in_place(
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let tag = aead_key(key)?
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
        // ring refuses only inputs longer than AES-GCM allows (about 64 GiB).
        .map_err(|_| Error::Malformed {
            reason: "plaintext too long for AES-256-GCM",
        })?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts `ciphertext || tag` in place and returns the plaintext part of the buffer.
///
/// Every failure is [`Error::Decrypt`]: a wrong key and a modified byte look the same.
pub(crate) fn open_in_place<'a>(
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    in_out: &'a mut [u8],
) -> Result<&'a mut [u8], Error> {
    aead_key(key)?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
        .map_err(|_| Error::Decrypt)
}

/// Fills `buf` from the system RNG.
pub(crate) fn fill_random(rng: &SystemRandom, buf: &mut [u8]) -> Result<(), Error> {
    rng.fill(buf).map_err(|_| Error::Random)
}

/// A fresh random nonce.
pub(crate) fn random_nonce(rng: &SystemRandom) -> Result<[u8; NONCE_LEN], Error> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(rng, &mut nonce)?;
    Ok(nonce)
}

/// Wycheproof's AES-GCM vectors through the two functions above (the file is kept with the
/// integration tests' data; see its header for why it is a unit-test module).
#[cfg(test)]
#[path = "../tests/vectors/wycheproof_aes_gcm.rs"]
mod wycheproof_aes_gcm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tag_check() {
        let key = [7u8; KEY_LEN];
        let nonce = [9u8; NONCE_LEN];
        let mut buf = b"some text".to_vec();
        let tag = seal_in_place(&key, nonce, b"aad", &mut buf).unwrap();
        assert_ne!(&buf[..], b"some text");
        buf.extend_from_slice(&tag);
        let mut good = buf.clone();
        assert_eq!(
            open_in_place(&key, nonce, b"aad", &mut good).unwrap(),
            b"some text"
        );
        let mut other_aad = buf.clone();
        assert!(matches!(
            open_in_place(&key, nonce, b"aaD", &mut other_aad),
            Err(Error::Decrypt)
        ));
        let mut other_key = buf.clone();
        assert!(matches!(
            open_in_place(&[8u8; KEY_LEN], nonce, b"aad", &mut other_key),
            Err(Error::Decrypt)
        ));
    }

    /// NIST GCM test case 16 (AES-256, 60-byte plaintext, 20-byte AAD, 96-bit IV), from
    /// "The Galois/Counter Mode of Operation" (McGrew & Viega), Appendix B: checks that ring
    /// is used as AES-256-GCM with the AAD where we think it is.
    #[test]
    fn known_answer_gcm_test_case_16() {
        let key = hex_array::<KEY_LEN>(
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        );
        let nonce = hex_array::<NONCE_LEN>("cafebabefacedbaddecaf888");
        let plaintext = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ciphertext = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        ));
        let tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");
        let mut buf = plaintext.clone();
        let got_tag = seal_in_place(&key, nonce, &aad, &mut buf).unwrap();
        assert_eq!(buf, ciphertext);
        assert_eq!(got_tag.to_vec(), tag);
        buf.extend_from_slice(&tag);
        assert_eq!(
            open_in_place(&key, nonce, &aad, &mut buf).unwrap(),
            &plaintext[..]
        );
    }

    fn hex(text: &str) -> Vec<u8> {
        crate::test_hex::decode(text)
    }

    fn hex_array<const N: usize>(text: &str) -> [u8; N] {
        hex(text).try_into().unwrap()
    }
}
