//! `SecretName::new` over arbitrary text: it accepts or refuses, never panics; an accepted
//! key round-trips through its string form and obeys the documented rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_core::{MAX_NAME_LEN, SecretName};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SecretName::new(text) {
        Ok(key) => {
            assert_eq!(key.as_str(), text);
            assert!(!text.is_empty() && text.len() <= MAX_NAME_LEN);
            assert!(!text.starts_with('/') && !text.ends_with('/'));
            assert!(!text.contains("//"));
            assert!(!text.chars().any(char::is_control));
            assert!(text.split('/').all(|s| s != "." && s != ".."));
            assert_eq!(SecretName::new(key.as_str()).expect("again"), key);
        }
        Err(err) => {
            // The message must not be empty and must not panic to format.
            assert!(!err.to_string().is_empty());
            let _ = format!("{err:?}");
        }
    }
});
