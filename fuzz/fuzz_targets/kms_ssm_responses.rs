//! AWS KMS and SSM Parameter Store answers: the first byte picks the parser (KMS Decrypt,
//! KMS GenerateDataKey of 32 bytes, SSM), the rest is the body. Errors are fine, panics are
//! not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_aws::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => fuzzing::kms_response(body, None),
        1 => fuzzing::kms_response(body, Some(32)),
        _ => fuzzing::ssm_response(body),
    }
});
