//! Vault Transit answers (read key, encrypt, decrypt, datakey) and stored wrapped keys: the
//! first byte picks the expected data-key length (none, or 32 bytes), the input up to the
//! first NUL is checked as a wrapped key, the whole input is parsed as the answer. Errors are
//! fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_vault::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let exact = (selector % 2 == 1).then_some(32);
    let wrapped = body.split(|&b| b == 0).next().unwrap_or_default();
    fuzzing::transit_response(body, exact, wrapped);
});
