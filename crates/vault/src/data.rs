//! [`SecretData`]: the data map of one KV v2 version, and how a [`SecretValue`] maps onto it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use strongroom_core::{Error, SecretValue};
use zeroize::Zeroizing;

use crate::json;

/// The field holding a text [`SecretValue`].
pub const VALUE_FIELD: &str = "value";
/// The field holding a non-UTF-8 [`SecretValue`], base64 (standard alphabet, padded).
pub const VALUE_BASE64_FIELD: &str = "value_base64";

/// The key/value map of one KV v2 secret version (`data.data` in Vault's answer).
///
/// Every string in it is wiped when it drops; `Debug` shows the field names only. Read it
/// with [`expose`](Self::expose) or [`get_str`](Self::get_str).
///
/// How a [`SecretValue`] maps onto it ([`VaultStore`](crate::VaultStore) uses this):
/// - UTF-8 text is written as `{"value": "<text>"}`;
/// - other bytes as `{"value_base64": "<base64>"}`;
/// - reading takes `value` (a string) or else `value_base64`; a secret with neither (a
///   multi-field secret written by another tool) is an `InvalidValue` error naming the
///   fields it has: read such secrets with [`Kv2::read`](crate::Kv2::read) or
///   [`VaultStore::read_data`](crate::VaultStore::read_data).
#[derive(Default)]
pub struct SecretData(Map<String, Value>);

impl SecretData {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a map (its strings will be wiped when this drops).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// Adds a string field.
    #[must_use]
    pub fn with(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(field.into(), Value::String(value.into()));
        self
    }

    /// Adds or replaces a field.
    pub fn insert(&mut self, field: impl Into<String>, value: Value) {
        if let Some(mut old) = self.0.insert(field.into(), value) {
            json::scrub(&mut old);
        }
    }

    /// The whole map.
    pub fn expose(&self) -> &Map<String, Value> {
        &self.0
    }

    /// One field as text, when it is a string.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(Value::as_str)
    }

    /// The field names, sorted.
    pub fn fields(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no field.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map for a [`SecretValue`]: `value`, or `value_base64` when it is not UTF-8.
    pub fn from_value(value: &SecretValue) -> Self {
        match value.expose_str() {
            Ok(text) => Self::new().with(VALUE_FIELD, text),
            Err(_) => Self::new().with(VALUE_BASE64_FIELD, STANDARD.encode(value.expose())),
        }
    }

    /// The [`SecretValue`] this map holds under the convention above.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when there is no string `value` nor valid `value_base64`; the
    /// message names the fields, never their contents.
    pub fn to_value(&self) -> Result<SecretValue, Error> {
        if let Some(text) = self.get_str(VALUE_FIELD) {
            return Ok(SecretValue::from(text));
        }
        if let Some(encoded) = self.get_str(VALUE_BASE64_FIELD) {
            let bytes =
                Zeroizing::new(STANDARD.decode(encoded).map_err(|_| Error::InvalidValue {
                    message: format!("the Vault field {VALUE_BASE64_FIELD:?} is not valid base64"),
                })?);
            return Ok(SecretValue::from(bytes));
        }
        Err(Error::InvalidValue {
            message: format!(
                "the Vault secret has no string {VALUE_FIELD:?} or {VALUE_BASE64_FIELD:?} field \
                 (fields: {}); read it as a data map",
                self.fields().join(", ")
            ),
        })
    }
}

impl Clone for SecretData {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        self.0.values_mut().for_each(json::scrub);
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("fields", &self.fields())
            .finish_non_exhaustive()
    }
}

impl From<Map<String, Value>> for SecretData {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    #[test]
    fn text_and_bytes_round_trip() {
        let text = SecretValue::from("pa55 wörd");
        let data = SecretData::from_value(&text);
        assert_eq!(data.fields(), ["value"]);
        assert_eq!(data.to_value().unwrap(), text);

        let bytes = SecretValue::from(vec![0xff, 0x00, 0xfe]);
        let data = SecretData::from_value(&bytes);
        assert_eq!(data.fields(), ["value_base64"]);
        assert_eq!(data.get_str("value_base64"), Some("/wD+"));
        assert_eq!(data.to_value().unwrap(), bytes);
    }

    #[test]
    fn other_shapes_are_invalid_without_echoing_values() {
        let data = SecretData::new()
            .with("username", "admin")
            .with("password", "hunter2");
        let err = data.to_value().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let text = format!("{err} {err:?} {data:?}");
        assert!(
            text.contains("password") && text.contains("username"),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && !text.contains("admin\""),
            "{text}"
        );

        let bad = SecretData::new().with("value_base64", "not base64!!hunter2");
        let err = bad.to_value().unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
