//! Vault KV v2 data maps: the client's response parsers are private, so this fuzzes the
//! public path every read goes through after the JSON layer: arbitrary JSON (serde_json) as
//! a `SecretData` map, mapped to a `SecretValue` (`value` / `value_base64` convention) and
//! back; plus the private path encoders (reached through the `fuzzing` feature) over
//! arbitrary text. The HTTP-level parsers are exercised with real garbage answers in
//! tests/tests/itest/faults (truncated JSON, HTML, 10 MiB).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use strongroom_vault::SecretData;
use strongroom_vault::fuzzing::{clean_mount, encode_folder, encode_path};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = encode_path(text);
        let _ = encode_folder(text);
        let _ = clean_mount(text);
    }
    let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    let secret = SecretData::from_map(map);
    let _ = secret.fields();
    let _ = format!("{secret:?}");
    if let Ok(value) = secret.to_value() {
        // The mapping round-trips: what a read produced is what a write would store.
        let again = SecretData::from_value(&value);
        assert_eq!(again.to_value().expect("round trip").expose(), value.expose());
    }
});
