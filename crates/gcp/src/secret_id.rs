//! How a [`SecretName`] becomes a Secret Manager secret id, and back.
//!
//! Secret ids allow only ASCII letters, digits, `-` and `_`, at most 255 of them. Names
//! allow far more (`/`, `.`, any Unicode, 512 bytes), so the mapping has three forms:
//!
//! 1. **Plain.** A name made only of letters, digits, `-` and `_`, at most 255 long, that
//!    does not start with `__`, is its own id: `db-password` is the secret `db-password`, as
//!    `gcloud` and every other client see it.
//! 2. **Encoded.** Any other name is `__` followed by its bytes, where letters, digits and
//!    `-` stand for themselves, `/` is written `__`, and every other byte (`_` included) is
//!    `_` and two upper-case hex digits: `app/db/password` is `__app__db__password`,
//!    `my_app/key` is `__my_5Fapp__key`, `clé` is `__cl_C3_A9`, `__x` is `___5F_5Fx`... (a
//!    plain-looking name that starts with `__` is encoded too, which is what keeps the forms
//!    apart).
//! 3. **Hashed.** A name whose encoding is longer than 255 is `___h` and the 64 lower-case
//!    hex digits of its SHA-256; the name itself is kept in the secret's annotation
//!    `strongroom-name`, where `list` reads it (and checks it hashes to the id).
//!
//! No two names share an id: plain ids never start with `__`; after `__`, an encoded body is
//! a sequence of tokens (a letter, digit or `-`; `__`; `_` and two upper-case hex digits) in
//! which `_h` cannot occur, so no encoded id starts with `___h`; and decoding is checked by
//! encoding again, so an id that is not exactly what this module makes (lower-case hex,
//! `__abc` for the plain `abc`) decodes to nothing and `list` leaves it out, as it leaves out
//! secrets other tools made with ids it cannot read.

use std::fmt::Write as _;

use strongroom_core::SecretName;

/// Secret Manager's longest secret id.
pub(crate) const MAX_ID_LEN: usize = 255;

/// The annotation that holds the name of a secret with a hashed id.
pub(crate) const NAME_ANNOTATION: &str = "strongroom-name";

const ENCODED: &str = "__";
const HASHED: &str = "___h";

/// The secret id for the full name `name` (the store's prefix already applied).
pub(crate) fn encode(name: &SecretName) -> String {
    let name = name.as_str();
    if is_plain(name) {
        return name.to_owned();
    }
    let mut id = String::with_capacity(name.len().saturating_add(2));
    id.push_str(ENCODED);
    for byte in name.bytes() {
        match byte {
            b'/' => id.push_str("__"),
            b if b.is_ascii_alphanumeric() || b == b'-' => id.push(char::from(b)),
            b => {
                let _ = write!(id, "_{b:02X}");
            }
        }
        if id.len() > MAX_ID_LEN {
            return hashed(name);
        }
    }
    id
}

/// True when `id` is the hashed form (the name lives in [`NAME_ANNOTATION`]).
pub(crate) fn is_hashed(id: &str) -> bool {
    id.starts_with(HASHED)
}

/// The name whose id is `id`, or `None` when `id` is not one this module makes. For a
/// hashed id, `annotation` is the secret's [`NAME_ANNOTATION`]; it is believed only when it
/// hashes to `id`.
pub(crate) fn decode(id: &str, annotation: Option<&str>) -> Option<SecretName> {
    let name = if is_hashed(id) {
        annotation?.to_owned()
    } else if let Some(body) = id.strip_prefix(ENCODED) {
        decode_body(body)?
    } else {
        id.to_owned()
    };
    let name = SecretName::new(name).ok()?;
    // Only the id this module would make for the name counts: one name, one id.
    (encode(&name) == id).then_some(name)
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ID_LEN
        && !name.starts_with(ENCODED)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_body(body: &str) -> Option<String> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'_' {
            out.push(b);
            i = i.checked_add(1)?;
            continue;
        }
        match bytes.get(i.checked_add(1)?) {
            Some(b'_') => {
                out.push(b'/');
                i = i.checked_add(2)?;
            }
            Some(&hi) => {
                let lo = *bytes.get(i.checked_add(2)?)?;
                out.push(hex(hi)?.checked_mul(16)?.checked_add(hex(lo)?)?);
                i = i.checked_add(3)?;
            }
            None => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit.wrapping_sub(b'0')),
        b'A'..=b'F' => Some(digit.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

fn hashed(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut id = String::with_capacity(HASHED.len().saturating_add(64));
    id.push_str(HASHED);
    for b in digest.as_ref() {
        let _ = write!(id, "{b:02x}");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    fn is_valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    fn round_trip(n: &SecretName) -> Option<SecretName> {
        let id = encode(n);
        decode(&id, Some(n.as_str()))
    }

    #[test]
    fn the_documented_examples() {
        for (n, id) in [
            ("db-password", "db-password"),
            ("DB_PASSWORD_2", "DB_PASSWORD_2"),
            ("app/db/password", "__app__db__password"),
            ("my_app/key", "__my_5Fapp__key"),
            ("clé", "__cl_C3_A9"),
            ("__x", "___5F_5Fx"),
            ("a.b", "__a_2Eb"),
        ] {
            assert_eq!(encode(&name(n)), id, "{n}");
            assert_eq!(decode(id, None), Some(name(n)), "{id}");
        }
    }

    #[test]
    fn long_names_hash_and_need_their_annotation() {
        let long = name(&format!("app/{}", "k".repeat(300)));
        let id = encode(&long);
        assert!(is_hashed(&id) && id.len() == 68 && is_valid_id(&id), "{id}");
        assert_eq!(decode(&id, Some(long.as_str())), Some(long.clone()));
        assert_eq!(decode(&id, None), None);
        // An annotation naming another secret is not believed.
        assert_eq!(decode(&id, Some("app/other")), None);
        // A plain name of exactly 255 is plain; 256 is too long to be an id.
        let edge = name(&"k".repeat(255));
        assert_eq!(encode(&edge), edge.as_str());
        assert!(is_hashed(&encode(&name(&"k".repeat(256)))));
    }

    #[test]
    fn ids_this_module_does_not_make_decode_to_nothing() {
        for id in [
            "__abc",    // `abc` is plain
            "__a_2eb",  // lower-case hex
            "__a_2",    // cut short
            "__a_",     // cut short
            "__a_ZZb",  // not hex
            "__",       // empty name
            "__a____b", // `a//b` is not a name
            "___h00",   // hashed, no annotation
            "__a_FF",   // not UTF-8
            "__a_0A",   // a control character
        ] {
            assert_eq!(decode(id, None), None, "{id}");
        }
    }

    proptest! {
        #[test]
        fn every_name_round_trips_through_a_valid_id(raw in "[a-zA-Z0-9_./ é-]{1,40}|\\PC{1,20}|[a-z/]{200,520}") {
            if let Ok(n) = SecretName::new(raw.as_str()) {
                let id = encode(&n);
                prop_assert!(is_valid_id(&id), "{id:?}");
                prop_assert_eq!(round_trip(&n), Some(n.clone()));
            }
        }

        #[test]
        fn no_two_names_share_an_id(a in "[a-z_/]{1,12}", b in "[a-z_/]{1,12}") {
            if let (Ok(a), Ok(b)) = (SecretName::new(a.as_str()), SecretName::new(b.as_str())) {
                prop_assert_eq!(encode(&a) == encode(&b), a == b);
            }
        }

        #[test]
        fn decoding_any_id_never_panics_and_is_consistent(id in "[a-zA-Z0-9_-]{1,60}") {
            if let Some(n) = decode(&id, None) {
                prop_assert_eq!(encode(&n), id);
            }
        }
    }
}
