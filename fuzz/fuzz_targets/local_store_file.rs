//! The local store's file loader over arbitrary bytes: `FileStore::open` on a file holding
//! the input must fail with an error (the bytes are not sealed with the key), never panic,
//! and leave the file exactly as it was.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::{MasterKey, WrappingKey};
use strongroom_local::FileStore;

fn key() -> WrappingKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_bytes(&[9u8; 32]).expect("32 bytes"))
        .clone()
        .into()
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.enc");
    std::fs::write(&path, data).expect("write input");
    let opened = FileStore::open(&path, key());
    assert!(opened.is_err(), "arbitrary bytes opened as a store");
    assert_eq!(std::fs::read(&path).expect("read back"), data, "open changed the file");
});
