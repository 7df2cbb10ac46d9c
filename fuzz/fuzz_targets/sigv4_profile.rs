//! The shared AWS config / credentials file parser: arbitrary text as both files, with the
//! first profile name found in it selected (and `default`); errors are fine, panics are not.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strongroom_sigv4::ProfileSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Split the input in two: the config file and the credentials file.
    let cut = text.find('\u{0}').unwrap_or(text.len());
    let (config, credentials) = text.split_at(cut);
    let credentials = credentials.strip_prefix('\u{0}').unwrap_or(credentials);
    let selected = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("[profile "))
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or("default")
        .to_owned();
    for name in [selected.as_str(), "default"] {
        let _ = ProfileSet::parse(
            Some((Path::new("config"), config)),
            Some((Path::new("credentials"), credentials)),
            name,
        );
        let _ = ProfileSet::parse(None, Some((Path::new("credentials"), text)), name);
    }
});
