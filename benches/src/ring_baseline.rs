//! Raw ring AES-256-GCM, as strongroom-envelope's figures are compared with it: the
//! criterion benches and the callgrind probe use these same two functions.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// A ring key from raw bytes.
///
/// # Panics
/// Never for 32 bytes.
pub fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("key"))
}

/// One AES-256-GCM seal with ring into a new buffer, as an envelope's payload needs: a fresh
/// `SystemRandom` nonce, then nonce || ciphertext || tag.
///
/// # Panics
/// If the system RNG fails.
pub fn ring_seal(key: &LessSafeKey, rng: &SystemRandom, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).expect("nonce");
    let mut out = Vec::with_capacity(12 + plaintext.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut out[12..],
        )
        .expect("seal");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens what [`ring_seal`] made: a copy into a new buffer (the input is borrowed), opened in
/// place, the tag cut off.
///
/// # Panics
/// If `sealed` was not made by [`ring_seal`] with `key`.
pub fn ring_open(key: &LessSafeKey, sealed: &[u8]) -> Vec<u8> {
    let nonce: [u8; 12] = sealed[..12].try_into().expect("nonce");
    let mut buf = sealed[12..].to_vec();
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .expect("open")
        .len();
    buf.truncate(len);
    buf
}
