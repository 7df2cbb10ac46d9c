//! The envelope's three parsers and decryptors over arbitrary bytes: a whole envelope
//! (`Header::parse`, `open`), a wrapped data key (`Header::parse_wrapped_key`,
//! `DataKey::unwrap`) and a sealed message (`DataKey::open`), each under a fixed key. Each
//! must return an error or the plaintext, never panic, and never accept bytes that were not
//! sealed with that key (libFuzzer cannot forge a GCM tag, so any success here would be a
//! finding).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::{DataKey, Header, MasterKey, WrappingKey, open};

fn key() -> &'static WrappingKey {
    static KEY: OnceLock<WrappingKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_bytes(&[7u8; 32]).expect("32 bytes").into())
}

fn data_key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::generate().expect("system RNG"))
}

fuzz_target!(|data: &[u8]| {
    assert!(
        data_key().open(data).is_err(),
        "arbitrary bytes opened as a message under a data key nobody sealed them with"
    );
    assert!(
        data_key().open_with_context(data, b"ctx").is_err(),
        "arbitrary bytes opened as a message with a context"
    );

    // Passphrase framing would make every run pay for PBKDF2; the master-key path is the one
    // that reaches the AEAD with attacker-chosen framing.
    let wrapped = Header::parse_wrapped_key(data);
    if !wrapped.as_ref().is_ok_and(Header::is_passphrase) {
        assert!(
            DataKey::unwrap(key(), data).is_err(),
            "arbitrary bytes unwrapped as a data key under a key nobody wrapped them with"
        );
    }

    let header = Header::parse(data);
    if header.as_ref().is_ok_and(Header::is_passphrase) {
        return;
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
