//! Printing results as text for people or JSON for scripts (`--output`).

use std::io::{IsTerminal as _, Write as _};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use strongroom_core::{Error, Secret, SecretName, VersionId, VersionInfo};
use zeroize::Zeroizing;

use crate::args::Output;

/// Writes command results to stdout in the chosen format.
pub(crate) struct Printer {
    format: Output,
}

impl Printer {
    pub(crate) fn new(format: Output) -> Self {
        Self { format }
    }

    /// A secret's value: raw bytes in text (a newline only on a terminal, so pipes get the
    /// value exactly), an object with metadata in JSON.
    pub(crate) fn secret(&self, secret: &Secret) -> Result<(), Error> {
        match self.format {
            Output::Text => {
                let mut out = Zeroizing::new(secret.value.expose().to_vec());
                if std::io::stdout().is_terminal() {
                    out.push(b'\n');
                }
                write_stdout(&out)
            }
            Output::Json => {
                let mut doc = json!({
                    "key": secret.key.as_str(),
                    "version": secret.version.as_str(),
                    "created": secret.created.map(rfc3339),
                    "description": secret.metadata.description,
                    "tags": secret.metadata.tags,
                });
                // The JSON text holds the value; it is built in a zeroizing buffer.
                match secret.value.expose_str() {
                    Ok(text) => doc["value"] = Value::String(text.to_owned()),
                    Err(_) => {
                        doc["value_base64"] = Value::String(BASE64.encode(secret.value.expose()));
                    }
                }
                let text = Zeroizing::new(format!("{doc}\n"));
                zeroize_json(doc);
                write_stdout(text.as_bytes())
            }
        }
    }

    /// One field of a JSON-object value: strings raw, anything else as JSON.
    pub(crate) fn field(&self, secret: &Secret, field: &str) -> Result<(), Error> {
        let text = secret.value.expose_str()?;
        let doc: Value = serde_json::from_str(text).map_err(|_| Error::InvalidValue {
            message: format!(
                "{} is not a JSON object, so it has no field {field:?}",
                secret.key
            ),
        })?;
        let Some(found) = doc.get(field) else {
            zeroize_json(doc);
            return Err(Error::InvalidValue {
                message: format!("{} has no field {field:?}", secret.key),
            });
        };
        let rendered = Zeroizing::new(match (found, self.format) {
            (Value::String(s), Output::Text) => s.clone(),
            (other, Output::Text) => other.to_string(),
            (other, Output::Json) => {
                json!({ "key": secret.key.as_str(), "field": field, "value": other }).to_string()
            }
        });
        zeroize_json(doc);
        let newline = self.format == Output::Json || std::io::stdout().is_terminal();
        write_stdout(rendered.as_bytes())?;
        if newline { write_stdout(b"\n") } else { Ok(()) }
    }

    pub(crate) fn keys(&self, keys: &[SecretName]) -> Result<(), Error> {
        let text = match self.format {
            Output::Text => keys.iter().map(|k| format!("{k}\n")).collect(),
            Output::Json => format!(
                "{}\n",
                json!(keys.iter().map(SecretName::as_str).collect::<Vec<_>>())
            ),
        };
        write_stdout(text.as_bytes())
    }

    pub(crate) fn versions(&self, versions: &[VersionInfo]) -> Result<(), Error> {
        let text = match self.format {
            Output::Text => {
                let mut text = format!("{:<10} {:<25} STATE\n", "VERSION", "CREATED");
                for v in versions {
                    let state = match (v.destroyed, v.deleted, v.current) {
                        (true, _, _) => "destroyed",
                        (_, true, _) => "deleted",
                        (_, _, true) => "current",
                        _ => "",
                    };
                    let created = v.created.map(rfc3339).unwrap_or_default();
                    text.push_str(
                        format!("{:<10} {created:<25} {state}", v.version.as_str()).trim_end(),
                    );
                    text.push('\n');
                }
                text
            }
            Output::Json => {
                let list: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        json!({
                            "version": v.version.as_str(),
                            "created": v.created.map(rfc3339),
                            "current": v.current,
                            "deleted": v.deleted,
                            "destroyed": v.destroyed,
                        })
                    })
                    .collect();
                format!("{}\n", Value::Array(list))
            }
        };
        write_stdout(text.as_bytes())
    }

    /// The version a write made.
    pub(crate) fn written(&self, key: &SecretName, version: &VersionId) -> Result<(), Error> {
        let text = match self.format {
            Output::Text => format!("{version}\n"),
            Output::Json => format!(
                "{}\n",
                json!({ "key": key.as_str(), "version": version.as_str() })
            ),
        };
        write_stdout(text.as_bytes())
    }

    /// A confirmation of an action: a line for people, `{"ok": true, ...}` for scripts.
    pub(crate) fn done(&self, message: &str, fields: Value) -> Result<(), Error> {
        let text = match self.format {
            Output::Text => format!("{message}\n"),
            Output::Json => {
                let mut doc = fields;
                if doc.get("ok").is_none() {
                    doc["ok"] = Value::Bool(true);
                }
                format!("{doc}\n")
            }
        };
        write_stdout(text.as_bytes())
    }
}

/// Overwrites the strings of a parsed JSON value before it is dropped: serde_json's own
/// allocations are not zeroizing.
fn zeroize_json(mut value: Value) {
    use zeroize::Zeroize as _;
    fn walk(value: &mut Value) {
        match value {
            Value::String(s) => s.zeroize(),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
}

/// `at` as an RFC 3339 UTC time.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`| head`): not our failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(Error::backend("cli", "cannot write to stdout", err)),
    }
}
