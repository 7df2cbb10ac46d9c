//! The format-2 (slotted) envelope's slot table, `SlotTable::parse`, over arbitrary bytes,
//! then the whole slotted file under a fixed key. Parsing may fail with an error; a table it
//! accepts must pass `SlotTable::new`'s rules too, and survive sealing and parsing again
//! unchanged. Opening must fail: libFuzzer cannot forge a GCM tag.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::{
    DataKey, MasterKey, SlotTable, WrappingKey, format_version, open_slotted,
    open_slotted_with_key, seal_slotted,
};

fn key() -> &'static WrappingKey {
    static KEY: OnceLock<WrappingKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_bytes(&[5u8; 32]).expect("32 bytes").into())
}

fn data_key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::generate().expect("system RNG"))
}

fuzz_target!(|data: &[u8]| {
    let _ = format_version(data);
    assert!(
        open_slotted_with_key(key(), data).is_err(),
        "arbitrary bytes opened as a slotted envelope"
    );
    assert!(
        open_slotted(data_key(), data).is_err(),
        "arbitrary bytes opened under a data key nobody sealed them with"
    );
    let Ok(table) = SlotTable::parse(data) else {
        return;
    };
    let store_id = table.store_id();
    let slots = table.slots().to_vec();
    let rebuilt = SlotTable::new(store_id, slots.clone()).expect("a parsed table obeys new()");
    let sealed = seal_slotted(data_key(), &rebuilt, b"x").expect("seal");
    let again = SlotTable::parse(&sealed).expect("a sealed table parses");
    assert_eq!(again.store_id().as_bytes(), store_id.as_bytes());
    assert_eq!(again.slots().len(), slots.len());
    for (a, b) in again.slots().iter().zip(&slots) {
        assert_eq!(
            (a.kind(), a.key_id(), a.wrapped(), a.iterations()),
            (b.kind(), b.key_id(), b.wrapped(), b.iterations())
        );
    }
    assert_eq!(&open_slotted(data_key(), &sealed).expect("opens")[..], b"x");
});
