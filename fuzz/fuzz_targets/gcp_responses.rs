//! Google Secret Manager answers (AccessSecretVersion, ListSecrets, ListVersions,
//! GetVersion), OAuth token answers and credentials files (service-account keys with their
//! PEM key, authorized-user files): the first byte picks the parser, the rest is the body.
//! Errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_gcp::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => fuzzing::access_response(body),
        1 => fuzzing::list_responses(body),
        2 => fuzzing::token_response(body),
        _ => fuzzing::credentials_file(body),
    }
});
