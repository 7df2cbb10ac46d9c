//! Secrets Manager and credential-provider responses: the first byte picks the parser, the
//! rest is the body. Errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_aws::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            // Status from the next two bytes, an optional x-amzn-ErrorType header up to a NUL.
            let status = body
                .get(..2)
                .map_or(400, |b| 100 + u16::from_be_bytes([b[0], b[1]]) % 500);
            let rest = body.get(2..).unwrap_or_default();
            let (header, body) = match rest.iter().position(|&b| b == 0) {
                Some(cut) => (Some(&rest[..cut]), &rest[cut + 1..]),
                None => (None, rest),
            };
            fuzzing::error_response(status, header, body);
        }
        1 => fuzzing::secret_value_response(body),
        2 => fuzzing::credentials_json(body),
        3 => fuzzing::sts_response(body),
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                fuzzing::timestamp(text);
            }
        }
    }
});
