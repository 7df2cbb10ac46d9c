//! The agent's request targets: `/v1/NAME` and `/secretsmanager/get?secretId=...` as a
//! client could send them (any UTF-8), through the routes' own decoding and query parsing
//! down to a secret name. Refusals are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_agent::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Ok(target) = std::str::from_utf8(data) {
        fuzzing::request_target(target);
    }
});
