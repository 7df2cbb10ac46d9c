//! Reading JSON secrets without echoing them: error messages carry the position and the
//! category of a parse error, never serde_json's message (which can quote the input).

use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use strongroom_core::{Error, SecretName, SecretValue};

fn invalid(key: &SecretName, what: &str, err: &serde_json::Error) -> Error {
    Error::InvalidValue {
        message: format!(
            "secret {:?} {what} ({:?} error at line {}, column {})",
            key.as_str(),
            err.classify(),
            err.line(),
            err.column()
        ),
    }
}

/// Deserializes the value of `key` as JSON into `T`.
pub(crate) fn parse<T: DeserializeOwned>(
    key: &SecretName,
    value: &SecretValue,
) -> Result<T, Error> {
    serde_json::from_slice(value.expose())
        .map_err(|e| invalid(key, "is not JSON of the requested shape", &e))
}

/// The field `field` of the JSON object in `value`: a string field's text, or the JSON text
/// of any other field. Other fields are skipped without being copied.
pub(crate) fn field(
    key: &SecretName,
    value: &SecretValue,
    field: &str,
) -> Result<SecretValue, Error> {
    let mut de = serde_json::Deserializer::from_slice(value.expose());
    let found = Picker { field }
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found))
        .map_err(|e| invalid(key, "is not a JSON object", &e))?;
    let found = found.ok_or_else(|| Error::InvalidValue {
        message: format!("secret {:?} has no field {field:?}", key.as_str()),
    })?;
    Ok(match found {
        serde_json::Value::String(text) => SecretValue::from(text),
        other => SecretValue::new(
            serde_json::to_vec(&other)
                .map_err(|e| invalid(key, "has a field that cannot be written back as JSON", &e))?,
        ),
    })
}

struct Picker<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for Picker<'_> {
    type Value = Option<serde_json::Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Picker<'_> {
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && name == self.field {
                found = Some(map.next_value::<serde_json::Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}
