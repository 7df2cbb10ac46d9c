//! The envelope parser and decryptor over arbitrary bytes: `Header::parse` and `open` with a
//! fixed master key must return an error or the plaintext, never panic, and never accept
//! bytes that were not sealed with that key (libFuzzer cannot forge a GCM tag, so any
//! successful open here would be a finding).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::{Header, MasterKey, WrappingKey, open};

fn key() -> &'static WrappingKey {
    static KEY: OnceLock<WrappingKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_bytes(&[7u8; 32]).expect("32 bytes").into())
}

fuzz_target!(|data: &[u8]| {
    let header = Header::parse(data);
    if let Ok(header) = &header {
        // Passphrase envelopes would make every run pay for PBKDF2; the master-key path is the
        // one that reaches the AEAD with attacker-chosen framing.
        if header.is_passphrase() {
            return;
        }
    }
    let opened = open(key(), data);
    assert!(
        opened.is_err(),
        "arbitrary bytes opened under a key nobody sealed them with"
    );
    if header.is_err() {
        // Whatever the header parser refuses, open refuses too.
        assert!(opened.is_err());
    }
});
