//! JSON bodies that hold secrets: written into buffers of exactly the right size (so no
//! reallocation leaves a stray copy behind) and wiped after use.

use std::io;

use bytes::Bytes;
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

/// Counts bytes without keeping them.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serializes `value` into a buffer allocated once at its exact length.
pub(crate) fn to_bytes(value: &Value) -> Bytes {
    let mut counter = Counter(0);
    // Writing a `Value` to an infallible writer cannot fail (all keys are strings).
    let _ = serde_json::to_writer(&mut counter, value);
    let mut out = Vec::with_capacity(counter.0);
    let _ = serde_json::to_writer(&mut out, value);
    Bytes::from(out)
}

/// `{"name": "value", …}` for a login body, without the values passing through a
/// `serde_json::Value` that would not be wiped.
pub(crate) fn sensitive_object(fields: &[(&str, Zeroizing<String>)]) -> Bytes {
    let mut counter = Counter(2);
    for (name, value) in fields {
        let _ = serde_json::to_writer(&mut counter, name);
        let _ = serde_json::to_writer(&mut counter, value.as_str());
        counter.0 = counter.0.saturating_add(2);
    }
    let mut out = Vec::with_capacity(counter.0);
    out.push(b'{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value.as_str());
    }
    out.push(b'}');
    Bytes::from(out)
}

/// Wipes a body we sent or received, when no one else holds it (best effort: `Bytes` that
/// share a buffer with the connection cannot be reclaimed).
pub(crate) fn wipe(body: Bytes) {
    if let Ok(mut owned) = body.try_into_mut() {
        owned.as_mut().zeroize();
    }
}

/// Wipes every string in `value` (and empties it), recursively.
pub(crate) fn scrub(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_object_is_valid_json_of_exact_size() {
        let fields = [
            ("role_id", Zeroizing::new("r\"ole".to_owned())),
            ("secret_id", Zeroizing::new("s\\é\n".to_owned())),
        ];
        let body = sensitive_object(&fields);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["role_id"], "r\"ole");
        assert_eq!(parsed["secret_id"], "s\\é\n");
        let exact = to_bytes(&parsed);
        assert_eq!(exact.len(), body.len());
    }

    #[test]
    fn scrub_empties_every_string() {
        let mut value = serde_json::json!({"a": "x", "b": ["y", {"c": "z"}], "n": 1});
        scrub(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": "", "b": ["", {"c": ""}], "n": 1})
        );
    }
}
