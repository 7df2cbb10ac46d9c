//! [`seal`], [`open`] and [`rewrap`]: the envelope operations, built on the same data-key
//! code as [`DataKey`](crate::DataKey) (one code path for data keys in envelopes and alone).

use ring::rand::SystemRandom;

use crate::cipher::random_nonce;
use crate::data_key::{KeyMaterial, Section, Wrap};
use crate::error::Error;
use crate::format::{self, Kind, NONCE_LEN, TAG_LEN, WRAPPED_KEY_LEN};
use crate::plaintext::Plaintext;
use crate::wrapping_key::WrappingKey;

/// Encrypts `plaintext` into a new envelope.
///
/// A fresh random 32-byte data key encrypts the payload under a fresh random nonce; the data
/// key is then wrapped by `key` under another fresh nonce. A [`Passphrase`](crate::Passphrase)
/// reuses its cached salt and derived key when it has one (see its docs). To encrypt many
/// values under one data key, use a [`DataKey`](crate::DataKey) instead.
///
/// # Errors
/// [`Error::Random`] if the system RNG fails; [`Error::InvalidIterations`] for a passphrase
/// whose iteration count `open` would refuse.
pub fn seal(key: &WrappingKey, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let rng = SystemRandom::new();
    let wrap = Wrap::for_seal(Kind::Envelope, key, &rng)?;
    let data_key = KeyMaterial::generate_with(&rng)?;
    let payload_nonce = random_nonce(&rng)?;
    seal_with(&wrap, &data_key, payload_nonce, plaintext)
}

/// Decrypts an envelope, returning the plaintext in a buffer that is wiped when dropped.
///
/// A passphrase envelope is opened with the iteration count and salt in its header. A
/// slotted envelope (version 2) is opened with the first slot of `key`'s kind that `key`
/// opens, as [`open_slotted_with_key`](crate::open_slotted_with_key) does.
///
/// # Errors
/// [`Error::Decrypt`] when the key is wrong (including a master key for a passphrase
/// envelope, or the reverse) or any byte was modified; [`Error::Malformed`] or
/// [`Error::UnsupportedVersion`] when the bytes are not a readable envelope.
pub fn open(key: &WrappingKey, envelope: &[u8]) -> Result<Plaintext, Error> {
    if format::envelope_version(envelope)?.0 == crate::SLOTTED_VERSION {
        return crate::slots::open_with_key(key, envelope);
    }
    let parts = format::split(envelope)?;
    let data_key = KeyMaterial::unwrap_parts(key, &parts.key)?;
    data_key.open_payload(Section::Envelope, &parts.payload)
}

/// Re-wraps an envelope's data key from `old` to `new`, leaving the payload untouched.
///
/// The output has a new header (scheme, salt, iteration count of `new`) and a newly wrapped
/// data key; the payload section (nonce, ciphertext, tag) is copied byte for byte. Rotating a
/// master key or changing a passphrase therefore never re-encrypts the data. The payload is
/// still authenticated first, so a damaged envelope is reported now rather than carried
/// forward under the new key. docs/envelope-format.md explains why this is safe.
///
/// For a slotted envelope (version 2), the first slot `old` opens is wrapped under `new`
/// instead and any other slot `old` opens is removed; the other slots and the payload are
/// kept byte for byte.
///
/// # Errors
/// As [`open`] for the old envelope and `old`; as [`seal`] for `new`.
pub fn rewrap(old: &WrappingKey, new: &WrappingKey, envelope: &[u8]) -> Result<Vec<u8>, Error> {
    if format::envelope_version(envelope)?.0 == crate::SLOTTED_VERSION {
        return crate::slots::rewrap(old, new, envelope);
    }
    let parts = format::split(envelope)?;
    let data_key = KeyMaterial::unwrap_parts(old, &parts.key)?;
    drop(data_key.open_payload(Section::Envelope, &parts.payload)?);
    let rng = SystemRandom::new();
    let wrap = Wrap::for_seal(Kind::Envelope, new, &rng)?;
    let mut out = Vec::with_capacity(envelope.len() + WRAPPED_KEY_LEN);
    data_key.write_wrapped(&wrap, &mut out)?;
    out.extend_from_slice(parts.payload.bytes);
    Ok(out)
}

/// Builds an envelope from given key material and randomness: `seal` with its random
/// choices made by the caller, so tests can pin them (the test vector in
/// docs/envelope-format.md comes from here).
fn seal_with(
    wrap: &Wrap,
    data_key: &KeyMaterial,
    payload_nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(
        format::MAX_HEADER_LEN + WRAPPED_KEY_LEN + NONCE_LEN + plaintext.len() + TAG_LEN,
    );
    data_key.write_wrapped(wrap, &mut out)?;
    data_key.seal_payload(Section::Envelope, payload_nonce, plaintext, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use zeroize::Zeroizing;

    use super::*;
    use crate::format::{Header, SALT_LEN, Scheme};
    use crate::test_hex;
    use crate::{MasterKey, Passphrase};

    /// The test vectors of docs/envelope-format.md. The expected bytes were computed with
    /// Python's `cryptography` (AESGCM) and `hashlib.pbkdf2_hmac`, independently of this
    /// crate, following the document.
    const VECTOR_PLAINTEXT: &[u8] = b"strongroom envelope test vector";
    const MASTER_VECTOR: &str = concat!(
        "5352454e0101",
        "404142434445464748494a4b",
        "c2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4",
        "f4f15d34c086d1781bec24257e6f3974",
        "505152535455565758595a5b",
        "c2d4da7d5f4805625b622a7f037fe6c3b39c2a1f0c930a74828abd39c46552",
        "2bad225b6069b22f125e1635c05d1e91",
    );
    const PASSPHRASE_VECTOR: &str = concat!(
        "5352454e0102",
        "000003e8",
        "606162636465666768696a6b6c6d6e6f",
        "707172737475767778797a7b",
        "835031270392fdf4132914ac6f4e33a236e62eb25da228543b0c6e4c1717710a",
        "a9db516d84c23a83a58902dea21bbe12",
        "808182838485868788898a8b",
        "fed57bb8fccd3622b4b0ad2633f8b800fc0b2f9ea5d5d0f0284df23a3631c7",
        "b2c35d335488f5b20ec6afd726f07632",
    );
    const VECTOR_PASSPHRASE: &str = "correct horse battery staple";

    /// `n` consecutive byte values starting at `start`.
    fn run<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start + u8::try_from(i).unwrap())
    }

    fn vector_data_key() -> KeyMaterial {
        KeyMaterial::from_bytes(&run::<32>(0x20)).unwrap()
    }

    fn vector_master_key() -> WrappingKey {
        MasterKey::from_bytes(&run::<32>(0x00)).unwrap().into()
    }

    fn vector_passphrase() -> Passphrase {
        Passphrase::new(VECTOR_PASSPHRASE).with_iterations(1000)
    }

    fn master() -> WrappingKey {
        MasterKey::generate().unwrap().into()
    }

    fn passphrase(text: &str) -> WrappingKey {
        Passphrase::new(text).with_iterations(1000).into()
    }

    fn is_err_not_panic(key: &WrappingKey, bytes: &[u8]) -> Error {
        match open(key, bytes) {
            Ok(_) => panic!("a modified or truncated envelope opened"),
            Err(e) => e,
        }
    }

    #[test]
    fn master_key_test_vector_is_reproduced_and_opens() {
        let expected = test_hex::decode(MASTER_VECTOR);
        let wrap = Wrap {
            header: Header::new(Kind::Envelope, Scheme::Master),
            key: Zeroizing::new(run::<32>(0x00)),
            nonce: run::<12>(0x40),
        };
        let sealed =
            seal_with(&wrap, &vector_data_key(), run::<12>(0x50), VECTOR_PLAINTEXT).unwrap();
        assert_eq!(sealed, expected);
        let opened = open(&vector_master_key(), &expected).unwrap();
        assert_eq!(&opened[..], VECTOR_PLAINTEXT);
        let header = Header::parse(&expected).unwrap();
        assert!(!header.is_passphrase());
        assert_eq!(header.format_version(), 1);
        assert_eq!(header.iterations(), None);
    }

    #[test]
    fn passphrase_test_vector_is_reproduced_and_opens() {
        let expected = test_hex::decode(PASSPHRASE_VECTOR);
        let pass = vector_passphrase();
        let salt = run::<SALT_LEN>(0x60);
        let derived = pass.key_for_open(&salt, NonZeroU32::new(1000).unwrap());
        // PBKDF2-HMAC-SHA256 from Python's hashlib for the same inputs.
        assert_eq!(
            derived.to_vec(),
            test_hex::decode("c6975bda14560eb6b65a1375cc41032202e86658910b059b12535b1854b28058")
        );
        let wrap = Wrap {
            header: Header::new(
                Kind::Envelope,
                Scheme::Passphrase {
                    iterations: NonZeroU32::new(1000).unwrap(),
                    salt,
                },
            ),
            key: derived,
            nonce: run::<12>(0x70),
        };
        let sealed =
            seal_with(&wrap, &vector_data_key(), run::<12>(0x80), VECTOR_PLAINTEXT).unwrap();
        assert_eq!(sealed, expected);
        // A fresh Passphrase (empty cache) opens it too.
        let opened = open(&vector_passphrase().into(), &expected).unwrap();
        assert_eq!(&opened[..], VECTOR_PLAINTEXT);
        let header = Header::parse(&expected).unwrap();
        assert!(header.is_passphrase());
        assert_eq!(header.iterations(), Some(1000));
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
        assert_eq!(documented_vector("### Vector 1"), MASTER_VECTOR);
        assert_eq!(documented_vector("### Vector 2"), PASSPHRASE_VECTOR);
    }

    #[test]
    fn seal_is_randomised() {
        let key = master();
        let a = seal(&key, b"same").unwrap();
        let b = seal(&key, b"same").unwrap();
        assert_ne!(a, b);
        // Different wrap nonces, payload nonces and data keys: no 12-byte window repeats.
        assert_ne!(a[6..18], b[6..18]);
        assert_ne!(a[66..78], b[66..78]);
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let key = master();
        let sealed = seal(&key, b"").unwrap();
        assert_eq!(sealed.len(), 6 + 60 + 12 + 16);
        assert!(open(&key, &sealed).unwrap().is_empty());
    }

    #[test]
    fn wrong_key_is_decrypt() {
        let sealed = seal(&master(), b"secret").unwrap();
        assert!(matches!(open(&master(), &sealed), Err(Error::Decrypt)));
        assert!(matches!(
            open(&passphrase("x"), &sealed),
            Err(Error::Decrypt)
        ));

        let sealed = seal(&passphrase("right"), b"secret").unwrap();
        assert!(matches!(
            open(&passphrase("wrong"), &sealed),
            Err(Error::Decrypt)
        ));
        assert!(matches!(open(&master(), &sealed), Err(Error::Decrypt)));
    }

    /// The error each position of a version-1 envelope must give when modified: the framing
    /// bytes are checked by parsing, everything after by authentication.
    fn assert_error_for_position(index: usize, error: &Error) {
        match index {
            0..=3 | 5 => assert!(
                matches!(error, Error::Malformed { .. }),
                "byte {index}: {error:?}"
            ),
            4 => assert!(
                matches!(error, Error::UnsupportedVersion { .. }),
                "byte {index}: {error:?}"
            ),
            _ => assert!(
                matches!(error, Error::Decrypt | Error::Malformed { .. }),
                "byte {index}: {error:?}"
            ),
        }
    }

    #[test]
    fn every_bit_flip_of_a_master_envelope_fails() {
        let key = master();
        let sealed = seal(&key, b"a secret worth protecting").unwrap();
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut bytes = sealed.clone();
                bytes[index] ^= 1 << bit;
                let error = is_err_not_panic(&key, &bytes);
                assert_error_for_position(index, &error);
                if index >= 6 {
                    // Past the framing, every change is an authentication failure.
                    assert!(
                        matches!(error, Error::Decrypt),
                        "byte {index} bit {bit}: {error:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_byte_flip_of_a_passphrase_envelope_fails() {
        let pass = passphrase("hunter2");
        let sealed = seal(&pass, b"a secret worth protecting").unwrap();
        for index in 0..sealed.len() {
            let mut bytes = sealed.clone();
            bytes[index] ^= 0x01;
            let error = is_err_not_panic(&pass, &bytes);
            assert_error_for_position(index, &error);
        }
        // The envelope itself still opens: the loop modified copies only.
        assert_eq!(
            &open(&pass, &sealed).unwrap()[..],
            b"a secret worth protecting"
        );
    }

    #[test]
    fn every_truncation_and_an_extension_fail() {
        for key in [master(), passphrase("p")] {
            let sealed = seal(&key, b"twenty-one characters").unwrap();
            for len in 0..sealed.len() {
                let error = is_err_not_panic(&key, &sealed[..len]);
                assert!(
                    matches!(error, Error::Decrypt | Error::Malformed { .. }),
                    "length {len}: {error:?}"
                );
            }
            let mut longer = sealed.clone();
            longer.push(0);
            assert!(matches!(open(&key, &longer), Err(Error::Decrypt)));
        }
    }

    #[test]
    fn swapping_wrapped_keys_between_envelopes_fails() {
        let key = master();
        let a = seal(&key, b"first").unwrap();
        let b = seal(&key, b"second").unwrap();
        let mut mixed = a[..66].to_vec();
        mixed.extend_from_slice(&b[66..]);
        assert!(matches!(open(&key, &mixed), Err(Error::Decrypt)));
    }

    #[test]
    fn rewrap_keeps_the_payload_and_moves_the_key() {
        let old = master();
        let pass = passphrase("new passphrase");
        let newer = master();
        let sealed = seal(&old, b"rotate me").unwrap();
        let payload = &sealed[6 + 60..];

        let to_pass = rewrap(&old, &pass, &sealed).unwrap();
        assert_eq!(&to_pass[to_pass.len() - payload.len()..], payload);
        assert_eq!(to_pass.len(), 26 + 60 + payload.len());
        assert_eq!(&open(&pass, &to_pass).unwrap()[..], b"rotate me");
        assert!(matches!(open(&old, &to_pass), Err(Error::Decrypt)));

        let back = rewrap(&pass, &newer, &to_pass).unwrap();
        assert_eq!(&back[back.len() - payload.len()..], payload);
        assert_eq!(back.len(), sealed.len());
        assert_eq!(&open(&newer, &back).unwrap()[..], b"rotate me");
        assert!(matches!(open(&old, &back), Err(Error::Decrypt)));
        assert!(matches!(open(&pass, &back), Err(Error::Decrypt)));
        // The wrapped key was re-encrypted, not copied.
        assert_ne!(back[6..66], sealed[6..66]);
    }

    #[test]
    fn rewrap_refuses_a_wrong_key_and_a_damaged_payload() {
        let old = master();
        let sealed = seal(&old, b"data").unwrap();
        assert!(matches!(
            rewrap(&master(), &master(), &sealed),
            Err(Error::Decrypt)
        ));
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x80;
        assert!(matches!(
            rewrap(&old, &master(), &damaged),
            Err(Error::Decrypt)
        ));
        assert!(matches!(
            rewrap(&old, &master(), &sealed[..20]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn a_passphrase_reuses_its_salt_and_a_new_one_does_not() {
        let pass = passphrase("shared");
        let a = seal(&pass, b"one").unwrap();
        let b = seal(&pass, b"two").unwrap();
        assert_eq!(a[10..26], b[10..26], "cached salt reused");
        assert_ne!(a[26..38], b[26..38], "fresh wrap nonce");
        let other = seal(&passphrase("shared"), b"three").unwrap();
        assert_ne!(
            a[10..26],
            other[10..26],
            "a new Passphrase picks a new salt"
        );

        // After opening, sealing reuses the opened envelope's salt.
        let reader = passphrase("shared");
        assert_eq!(&open(&reader, &other).unwrap()[..], b"three");
        let written = seal(&reader, b"four").unwrap();
        assert_eq!(other[10..26], written[10..26]);
        // And every one of them opens with any Passphrase of the same text.
        for envelope in [&a, &b, &other, &written] {
            assert!(open(&passphrase("shared"), envelope).is_ok());
        }
    }

    #[test]
    fn open_uses_the_header_iteration_count() {
        let writer: WrappingKey = Passphrase::new("pw").with_iterations(1500).into();
        let sealed = seal(&writer, b"x").unwrap();
        assert_eq!(Header::parse(&sealed).unwrap().iterations(), Some(1500));
        // The reader's own count (the default) does not matter for opening.
        let reader: WrappingKey = Passphrase::new("pw").into();
        assert_eq!(&open(&reader, &sealed).unwrap()[..], b"x");
    }

    #[test]
    fn iteration_counts_out_of_range_are_refused() {
        for bad in [0, MAX_ITERATIONS_PLUS_ONE] {
            let key: WrappingKey = Passphrase::new("pw").with_iterations(bad).into();
            assert!(matches!(
                seal(&key, b"x"),
                Err(Error::InvalidIterations { iterations }) if iterations == bad
            ));
        }
        let sealed = seal(&passphrase("pw"), b"x").unwrap();
        for bad in [0, MAX_ITERATIONS_PLUS_ONE, u32::MAX] {
            let mut crafted = sealed.clone();
            crafted[6..10].copy_from_slice(&bad.to_be_bytes());
            assert!(matches!(
                Header::parse(&crafted),
                Err(Error::Malformed { .. })
            ));
            assert!(matches!(
                open(&passphrase("pw"), &crafted),
                Err(Error::Malformed { .. })
            ));
        }
        // The maximum itself is a valid header (not opened here: that is the slow case).
        let mut at_max = sealed.clone();
        at_max[6..10].copy_from_slice(&crate::MAX_ITERATIONS.to_be_bytes());
        assert_eq!(
            Header::parse(&at_max).unwrap().iterations(),
            Some(crate::MAX_ITERATIONS)
        );
    }

    const MAX_ITERATIONS_PLUS_ONE: u32 = crate::MAX_ITERATIONS + 1;

    #[test]
    fn framing_errors_are_specific() {
        let sealed = seal(&master(), b"x").unwrap();
        let mut v3 = sealed.clone();
        v3[4] = 3;
        assert!(matches!(
            Header::parse(&v3),
            Err(Error::UnsupportedVersion { version: 3 })
        ));
        // Version 2 is the slotted layout, which a version-1 body does not fit.
        let mut v2 = sealed.clone();
        v2[4] = 2;
        assert!(matches!(Header::parse(&v2), Err(Error::Malformed { .. })));
        assert!(matches!(open(&master(), &v2), Err(Error::Malformed { .. })));
        // A future version is reported as such even when its layout is unknown (short).
        assert!(matches!(
            Header::parse(b"SREN\x07"),
            Err(Error::UnsupportedVersion { version: 7 })
        ));
        assert!(matches!(
            Header::parse(b"age-encryption.org/v1"),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(Header::parse(b""), Err(Error::Malformed { .. })));
        let mut scheme = sealed;
        scheme[5] = 9;
        assert!(matches!(
            Header::parse(&scheme),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn errors_never_show_plaintext_or_passphrase() {
        let secret_text = "plaintext-never-shown";
        let pass = passphrase("passphrase-never-shown");
        let sealed = seal(&pass, secret_text.as_bytes()).unwrap();
        let mut tampered = sealed.clone();
        tampered[40] ^= 1;
        let errors = [
            open(&passphrase("passphrase-never-shown!"), &sealed).unwrap_err(),
            open(&pass, &tampered).unwrap_err(),
            open(&pass, &sealed[..50]).unwrap_err(),
            rewrap(
                &pass,
                &Passphrase::new("new-never-shown").with_iterations(0).into(),
                &sealed,
            )
            .unwrap_err(),
        ];
        for error in &errors {
            for shown in [format!("{error}"), format!("{error:?}")] {
                assert!(!shown.contains("never-shown"), "{shown}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn master_round_trip(plaintext in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let key = master();
            let sealed = seal(&key, &plaintext).unwrap();
            prop_assert_eq!(sealed.len(), 6 + 60 + 12 + plaintext.len() + 16);
            prop_assert_eq!(&open(&key, &sealed).unwrap()[..], &plaintext[..]);
        }

        #[test]
        fn passphrase_round_trip(
            text in ".{0,40}",
            plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let key = passphrase(&text);
            let sealed = seal(&key, &plaintext).unwrap();
            prop_assert_eq!(&open(&key, &sealed).unwrap()[..], &plaintext[..]);
            // Opening with a fresh Passphrase derives from the header, not the cache.
            prop_assert_eq!(&open(&passphrase(&text), &sealed).unwrap()[..], &plaintext[..]);
        }

        #[test]
        fn arbitrary_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(open(&master(), &bytes).is_err());
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_valid_headers_never_open_or_panic(
            passphrase_scheme in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let (mut bytes, key) = if passphrase_scheme {
                let mut header = b"SREN\x01\x02".to_vec();
                header.extend_from_slice(&1000u32.to_be_bytes());
                header.extend_from_slice(&[0u8; 16]);
                (header, passphrase("p"))
            } else {
                (b"SREN\x01\x01".to_vec(), master())
            };
            bytes.extend_from_slice(&body);
            let result = open(&key, &bytes);
            let expected = matches!(result, Err(Error::Decrypt | Error::Malformed { .. }));
            prop_assert!(expected, "unexpected result {:?}", result.map(|_| "opened"));
        }
    }
}
