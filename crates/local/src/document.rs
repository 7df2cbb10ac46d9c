//! The decrypted content of a store file: every secret with its kept versions, and the rules
//! of each operation on it. Pure data and logic; [`crate::file`] does the I/O around it.
//!
//! On disk (inside the envelope) the document is JSON; docs/local-store.md shows its shape.
//! Values are base64 inside the JSON and decoded straight into zeroizing buffers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use strongroom_core::{
    Error, Metadata, Precondition, PutOptions, Secret, SecretName, SecretValue, VersionId,
    VersionInfo,
};
use zeroize::Zeroizing;

use crate::chunked_map::ChunkedMap;
use crate::secret_buf::SecretBuf;

/// The `format` field of the JSON document; bumped when its shape changes incompatibly.
const FORMAT: u32 = 1;

/// All secrets of one store file.
///
/// Every write clones the document, to keep the state readers see intact until the new file
/// is in place, and encodes it whole. Entries are shared, never changed in place (an
/// operation that changes a secret puts a new [`Entry`] under its key), and held in a
/// [`ChunkedMap`], so the clone copies a pointer per chunk and the encoding re-encodes only
/// the chunks that changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Document {
    secrets: ChunkedMap<Arc<Entry>>,
}

/// One secret: its kept versions (oldest first, the last is current) and its state.
#[derive(Debug, Clone)]
struct Entry {
    /// The number the next version gets. Never reused, even after old versions are pruned,
    /// so a version id always names the same value.
    next: u64,
    /// When the secret was soft-deleted; `None` while it is live.
    deleted_ms: Option<u64>,
    metadata: Arc<Metadata>,
    versions: Vec<Version>,
}

#[derive(Debug, Clone)]
struct Version {
    number: u64,
    created_ms: u64,
    value: SecretValue,
}

impl Entry {
    fn current(&self) -> &Version {
        // Invariant (checked on load, kept by every operation): an entry has a version.
        self.versions.last().expect("an entry always has a version")
    }

    fn secret(&self, key: &SecretName, version: &Version) -> Secret {
        let mut secret = Secret::new(key.clone(), version.value.clone(), version.number.into())
            .created(from_millis(version.created_ms));
        secret.metadata = Arc::clone(&self.metadata);
        secret
    }
}

impl Document {
    /// The current version of `key`.
    pub(crate) fn get(&self, key: &SecretName) -> Result<Secret, Error> {
        let entry = self.live(key, None)?;
        Ok(entry.secret(key, entry.current()))
    }

    /// Version `version` of `key`, if it is still kept.
    pub(crate) fn get_version(
        &self,
        key: &SecretName,
        version: &VersionId,
    ) -> Result<Secret, Error> {
        let entry = self.live(key, Some(version))?;
        version
            .as_u64()
            .and_then(|n| entry.versions.iter().find(|v| v.number == n))
            .map(|found| entry.secret(key, found))
            .ok_or_else(|| not_found(key, Some(version), false))
    }

    /// Adds a version of `key` (reviving it if deleted) and prunes all but the newest `keep`.
    pub(crate) fn put(
        &mut self,
        key: &SecretName,
        value: SecretValue,
        options: &PutOptions,
        now: SystemTime,
        keep: usize,
    ) -> Result<VersionId, Error> {
        let existing = self.secrets.get(key.as_str());
        let live_version = existing
            .filter(|e| e.deleted_ms.is_none())
            .map(|e| e.current().number);
        match (&options.precondition, live_version) {
            (Some(Precondition::Absent), Some(current)) => {
                return Err(conflict(
                    key,
                    format!("it already exists (version {current})"),
                ));
            }
            (Some(Precondition::Version(expected)), current)
                if current.is_none() || expected.as_u64() != current =>
            {
                let found = current.map_or_else(
                    || "it does not exist".to_owned(),
                    |c| format!("the current version is {c}"),
                );
                return Err(conflict(
                    key,
                    format!("expected version {expected}, but {found}"),
                ));
            }
            _ => {}
        }

        let mut entry = existing.map_or_else(
            || Entry {
                next: 1,
                deleted_ms: None,
                metadata: Arc::default(),
                versions: Vec::new(),
            },
            |e| Entry::clone(e),
        );
        let number = entry.next;
        entry.next += 1;
        entry.deleted_ms = None;
        if let Some(metadata) = &options.metadata {
            entry.metadata = Arc::new(metadata.clone());
        }
        entry.versions.push(Version {
            number,
            created_ms: millis(now),
            value,
        });
        let excess = entry.versions.len().saturating_sub(keep.max(1));
        entry.versions.drain(..excess);
        self.secrets.insert(key.clone(), Arc::new(entry));
        Ok(number.into())
    }

    /// Soft-deletes `key`: it disappears from reads and lists until [`undelete`](Self::undelete).
    pub(crate) fn delete(&mut self, key: &SecretName, now: SystemTime) -> Result<(), Error> {
        let mut entry = Entry::clone(self.live(key, None)?);
        entry.deleted_ms = Some(millis(now));
        self.secrets.insert(key.clone(), Arc::new(entry));
        Ok(())
    }

    /// Brings back a soft-deleted `key` with all its kept versions.
    pub(crate) fn undelete(&mut self, key: &SecretName) -> Result<(), Error> {
        match self.secrets.get(key.as_str()) {
            Some(entry) if entry.deleted_ms.is_some() => {
                let mut entry = Entry::clone(entry);
                entry.deleted_ms = None;
                self.secrets.insert(key.clone(), Arc::new(entry));
                Ok(())
            }
            Some(_) => Err(Error::Conflict {
                key: key.to_string(),
                message: "it is not deleted".to_owned(),
            }),
            None => Err(not_found(key, None, false)),
        }
    }

    /// Removes `key` and all its versions, deleted or not.
    pub(crate) fn purge(&mut self, key: &SecretName) -> Result<(), Error> {
        self.secrets
            .remove(key.as_str())
            .map(drop)
            .ok_or_else(|| not_found(key, None, false))
    }

    /// Live keys starting with `prefix`, sorted.
    pub(crate) fn list(&self, prefix: &str) -> Vec<SecretName> {
        self.secrets
            .range_from(prefix)
            .take_while(|(key, _)| key.has_prefix(prefix))
            .filter(|(_, entry)| entry.deleted_ms.is_none())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The kept versions of `key`, oldest first; a deleted secret's versions are all deleted.
    pub(crate) fn versions(&self, key: &SecretName) -> Result<Vec<VersionInfo>, Error> {
        let entry = self
            .secrets
            .get(key.as_str())
            .ok_or_else(|| not_found(key, None, false))?;
        let current = entry.current().number;
        Ok(entry
            .versions
            .iter()
            .map(|v| {
                let mut info = VersionInfo::new(
                    v.number.into(),
                    Some(from_millis(v.created_ms)),
                    v.number == current,
                );
                info.deleted = entry.deleted_ms.is_some();
                info
            })
            .collect())
    }

    fn live(&self, key: &SecretName, version: Option<&VersionId>) -> Result<&Entry, Error> {
        match self.secrets.get(key.as_str()) {
            Some(entry) if entry.deleted_ms.is_none() => Ok(entry),
            Some(_) => Err(not_found(key, version, true)),
            None => Err(not_found(key, version, false)),
        }
    }

    /// The document as JSON, in a buffer that is wiped when dropped.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> SecretBuf {
        let mut out = SecretBuf::with_capacity(0);
        self.write_json(&mut out);
        out
    }

    /// Replaces what `out` holds (wiping it) with the document as JSON.
    ///
    /// Byte for byte what `serde_json` makes of the shape in docs/local-store.md (compact,
    /// keys sorted), assembled from the JSON of each chunk of entries: only chunks changed
    /// since the last save are encoded again. The room needed is made before writing, so
    /// the buffer does not grow while it holds secrets.
    pub(crate) fn write_json(&self, out: &mut SecretBuf) {
        const TAIL: &[u8] = b"}}";
        let head = format!("{{\"format\":{FORMAT},\"secrets\":{{");
        let (mut chunks, mut bytes) = (0usize, 0);
        for json in self.secrets.encoded(encode_chunk) {
            chunks += 1;
            bytes += json.len();
        }
        let commas = chunks.saturating_sub(1);
        let len = head.len() + bytes + commas + TAIL.len();
        out.clear_for(len);
        out.push(head.as_bytes());
        for (n, json) in self.secrets.encoded(encode_chunk).enumerate() {
            if n > 0 {
                out.push(b",");
            }
            out.push(json);
        }
        out.push(TAIL);
        debug_assert_eq!(out.len(), len);
    }

    /// Parses and checks a decrypted document.
    pub(crate) fn from_json(json: &[u8]) -> Result<Self, String> {
        let wire: WireIn<'_> =
            serde_json::from_slice(json).map_err(|e| format!("its content is not valid: {e}"))?;
        if wire.format != FORMAT {
            return Err(format!(
                "its content has format {}, this version of strongroom reads format {FORMAT}",
                wire.format
            ));
        }
        // Sorted already: `SecretName`s order as their names do.
        let mut secrets = Vec::with_capacity(wire.secrets.len());
        for (name, entry) in wire.secrets {
            let key = SecretName::new(name.as_ref())
                .map_err(|e| format!("it holds an invalid key: {e}"))?;
            let entry = entry
                .into_entry()
                .map_err(|problem| format!("secret {key:?}: {problem}"))?;
            secrets.push((key, Arc::new(entry)));
        }
        Ok(Self {
            secrets: ChunkedMap::from_sorted(secrets),
        })
    }
}

fn not_found(key: &SecretName, version: Option<&VersionId>, deleted: bool) -> Error {
    Error::NotFound {
        key: key.to_string(),
        version: version.cloned(),
        deleted,
    }
}

fn conflict(key: &SecretName, message: String) -> Error {
    Error::Conflict {
        key: key.to_string(),
        message,
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

// ---- the JSON shape ----

/// `"<key>":{...},"<key>":{...}`: a chunk of entries as the file holds them.
fn encode_chunk(entries: &[(SecretName, Arc<Entry>)]) -> SecretBuf {
    let estimate = entries
        .iter()
        .map(|(key, entry)| entry.encoded_len_estimate(key) + 1)
        .sum();
    let mut out = SecretBuf::with_capacity(estimate);
    for (n, (key, entry)) in entries.iter().enumerate() {
        if n > 0 {
            out.push(b",");
        }
        entry.encode(key, &mut out);
    }
    out.exact()
}

impl Entry {
    /// Writes `"<key>":{...}`: what `serde_json` writes for this entry's shape (fields in
    /// this order, `None` and empty tags left out), with strings escaped by `serde_json`
    /// itself and values base64-encoded straight into the buffer.
    fn encode(&self, key: &SecretName, out: &mut SecretBuf) {
        push_string(out, key.as_str());
        push_number(out, b":{\"next\":", self.next);
        if let Some(ms) = self.deleted_ms {
            push_number(out, b",\"deleted_ms\":", ms);
        }
        if let Some(description) = &self.metadata.description {
            out.push(b",\"description\":");
            push_string(out, description);
        }
        if !self.metadata.tags.is_empty() {
            out.push(b",\"tags\":{");
            for (n, (name, value)) in self.metadata.tags.iter().enumerate() {
                if n > 0 {
                    out.push(b",");
                }
                push_string(out, name);
                out.push(b":");
                push_string(out, value);
            }
            out.push(b"}");
        }
        out.push(b",\"versions\":[");
        for (n, version) in self.versions.iter().enumerate() {
            push_number(
                out,
                if n == 0 { b"{\"v\":" } else { b",{\"v\":" },
                version.number,
            );
            push_number(out, b",\"created_ms\":", version.created_ms);
            out.push(b",\"value\":\"");
            push_base64(out, version.value.expose());
            out.push(b"\"}");
        }
        out.push(b"]}");
    }

    /// Enough for the entry unless its names or metadata need many escapes.
    fn encoded_len_estimate(&self, key: &SecretName) -> usize {
        key.as_str().len() * 2
            + 128
            + self
                .versions
                .iter()
                .map(|v| v.value.len().div_ceil(3) * 4 + 64)
                .sum::<usize>()
            + self
                .metadata
                .description
                .as_ref()
                .map_or(0, |d| d.len() * 2 + 20)
            + self
                .metadata
                .tags
                .iter()
                .map(|(k, v)| (k.len() + v.len()) * 2 + 8)
                .sum::<usize>()
    }
}

/// `prefix` then `n` in decimal.
fn push_number(out: &mut SecretBuf, prefix: &[u8], n: u64) {
    out.push(prefix);
    write!(out, "{n}").expect("writing to memory cannot fail");
}

/// `s` as a JSON string, escaped by `serde_json`.
fn push_string(out: &mut SecretBuf, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to memory cannot fail");
}

fn push_base64(out: &mut SecretBuf, bytes: &[u8]) {
    let len = base64::encoded_len(bytes.len(), true).expect("a value held in memory");
    out.push_with(len, |space| {
        let written = BASE64
            .encode_slice(bytes, space)
            .expect("the space was sized by encoded_len");
        debug_assert_eq!(written, len);
    });
}

#[derive(Deserialize)]
struct WireIn<'a> {
    format: u32,
    #[serde(borrow)]
    secrets: BTreeMap<Cow<'a, str>, EntryIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn<'a> {
    next: u64,
    #[serde(default)]
    deleted_ms: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(borrow)]
    versions: Vec<VersionIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionIn<'a> {
    v: u64,
    created_ms: u64,
    /// Borrowed from the decrypted buffer (base64 never needs JSON escapes), so the encoded
    /// secret is never copied into an allocation that is not zeroized.
    value: &'a str,
}

impl EntryIn<'_> {
    fn into_entry(self) -> Result<Entry, &'static str> {
        if self.versions.is_empty() {
            return Err("it has no versions");
        }
        let ascending = self.versions.windows(2).all(|w| w[0].v < w[1].v);
        let last = self.versions.last().map_or(0, |v| v.v);
        if !ascending || self.next <= last || self.versions[0].v == 0 {
            return Err("its version numbers are out of order");
        }
        let mut versions = Vec::with_capacity(self.versions.len());
        for v in self.versions {
            let mut bytes = Zeroizing::new(Vec::with_capacity(v.value.len() / 4 * 3 + 3));
            BASE64
                .decode_vec(v.value, &mut bytes)
                .map_err(|_| "a value is not valid base64")?;
            versions.push(Version {
                number: v.v,
                created_ms: v.created_ms,
                value: SecretValue::from(bytes),
            });
        }
        let mut metadata = Metadata::default();
        metadata.description = self.description;
        metadata.tags = self.tags;
        Ok(Entry {
            next: self.next,
            deleted_ms: self.deleted_ms,
            metadata: Arc::new(metadata),
            versions,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(name: &str) -> SecretName {
        SecretName::new(name).unwrap()
    }

    fn at(ms: u64) -> SystemTime {
        from_millis(ms)
    }

    fn put(doc: &mut Document, name: &str, value: &str) -> VersionId {
        doc.put(
            &key(name),
            value.into(),
            &PutOptions::default(),
            at(1_000),
            10,
        )
        .unwrap()
    }

    #[test]
    fn versions_count_up_and_old_ones_stay_readable() {
        let mut doc = Document::default();
        assert_eq!(put(&mut doc, "a", "one").as_str(), "1");
        assert_eq!(put(&mut doc, "a", "two").as_str(), "2");
        assert_eq!(doc.get(&key("a")).unwrap().value, "two".into());
        let first = doc.get_version(&key("a"), &"1".into()).unwrap();
        assert_eq!(first.value, "one".into());
        assert_eq!(first.version.as_str(), "1");
        let infos = doc.versions(&key("a")).unwrap();
        let summary: Vec<_> = infos
            .iter()
            .map(|i| (i.version.as_str(), i.current))
            .collect();
        assert_eq!(summary, [("1", false), ("2", true)]);
    }

    #[test]
    fn only_the_newest_versions_are_kept_and_numbers_are_never_reused() {
        let mut doc = Document::default();
        for n in 0..5 {
            doc.put(
                &key("a"),
                format!("v{n}").into(),
                &PutOptions::default(),
                at(0),
                3,
            )
            .unwrap();
        }
        let kept: Vec<_> = doc
            .versions(&key("a"))
            .unwrap()
            .into_iter()
            .map(|i| i.version.as_str().to_owned())
            .collect();
        assert_eq!(kept, ["3", "4", "5"]);
        assert!(matches!(
            doc.get_version(&key("a"), &"1".into()),
            Err(Error::NotFound {
                deleted: false,
                version: Some(_),
                ..
            })
        ));
        doc.purge(&key("a")).unwrap();
        assert!(doc.versions(&key("a")).is_err());
    }

    #[test]
    fn preconditions_refuse_lost_updates() {
        let mut doc = Document::default();
        let absent = PutOptions::default().if_absent();
        let v1 = doc.put(&key("a"), "x".into(), &absent, at(0), 10).unwrap();
        assert!(matches!(
            doc.put(&key("a"), "y".into(), &absent, at(0), 10),
            Err(Error::Conflict { .. })
        ));
        let cas = PutOptions::default().if_version(v1.clone());
        let v2 = doc.put(&key("a"), "y".into(), &cas, at(0), 10).unwrap();
        // A second writer holding the old version loses instead of overwriting.
        let err = doc.put(&key("a"), "z".into(), &cas, at(0), 10).unwrap_err();
        assert!(
            err.to_string().contains("the current version is 2"),
            "{err}"
        );
        assert_eq!(doc.get(&key("a")).unwrap().version, v2);
        // A version precondition on a missing key fails too.
        let missing = PutOptions::default().if_version("1".into());
        assert!(matches!(
            doc.put(&key("b"), "x".into(), &missing, at(0), 10),
            Err(Error::Conflict { .. })
        ));
    }

    #[test]
    fn delete_is_soft_until_purged() {
        let mut doc = Document::default();
        put(&mut doc, "app/a", "x");
        put(&mut doc, "app/b", "y");
        doc.delete(&key("app/a"), at(5)).unwrap();
        assert!(matches!(
            doc.get(&key("app/a")),
            Err(Error::NotFound { deleted: true, .. })
        ));
        assert_eq!(doc.list("app/"), [key("app/b")]);
        assert!(doc.versions(&key("app/a")).unwrap()[0].deleted);
        assert!(matches!(
            doc.delete(&key("app/a"), at(6)),
            Err(Error::NotFound { deleted: true, .. })
        ));
        // A deleted secret counts as absent for a create-only write...
        doc.undelete(&key("app/a")).unwrap();
        assert_eq!(doc.get(&key("app/a")).unwrap().value, "x".into());
        assert!(matches!(
            doc.undelete(&key("app/a")),
            Err(Error::Conflict { .. })
        ));
        doc.purge(&key("app/a")).unwrap();
        assert!(matches!(
            doc.get(&key("app/a")),
            Err(Error::NotFound { deleted: false, .. })
        ));
        assert!(matches!(
            doc.purge(&key("app/a")),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn put_revives_a_deleted_secret() {
        let mut doc = Document::default();
        put(&mut doc, "a", "x");
        doc.delete(&key("a"), at(5)).unwrap();
        let v = doc
            .put(
                &key("a"),
                "y".into(),
                &PutOptions::default().if_absent(),
                at(6),
                10,
            )
            .unwrap();
        assert_eq!(v.as_str(), "2");
        assert_eq!(doc.get(&key("a")).unwrap().value, "y".into());
    }

    #[test]
    fn list_is_a_sorted_string_prefix_match() {
        let mut doc = Document::default();
        for name in ["b/1", "a/2", "a/1", "ab", "c"] {
            put(&mut doc, name, "v");
        }
        let names =
            |prefix| -> Vec<String> { doc.list(prefix).iter().map(ToString::to_string).collect() };
        assert_eq!(names("a"), ["a/1", "a/2", "ab"]);
        assert_eq!(names("a/"), ["a/1", "a/2"]);
        assert_eq!(names(""), ["a/1", "a/2", "ab", "b/1", "c"]);
        assert!(names("zz").is_empty());
    }

    #[test]
    fn metadata_is_replaced_only_when_given() {
        let mut doc = Document::default();
        let with = PutOptions::default()
            .with_metadata(Metadata::with_description("db").tag("team", "core"));
        doc.put(&key("a"), "x".into(), &with, at(0), 10).unwrap();
        put(&mut doc, "a", "y");
        let secret = doc.get(&key("a")).unwrap();
        assert_eq!(secret.metadata.description.as_deref(), Some("db"));
        assert_eq!(secret.metadata.tags["team"], "core");
    }

    #[test]
    fn malformed_documents_are_refused_with_a_reason() {
        let table: &[(&str, &str)] = &[
            ("not json", "not valid"),
            (r#"{"format":2,"secrets":{}}"#, "format 2"),
            (
                r#"{"format":1,"secrets":{"/bad":{"next":2,"versions":[{"v":1,"created_ms":0,"value":""}]}}}"#,
                "invalid key",
            ),
            (
                r#"{"format":1,"secrets":{"a":{"next":2,"versions":[]}}}"#,
                "no versions",
            ),
            (
                r#"{"format":1,"secrets":{"a":{"next":1,"versions":[{"v":1,"created_ms":0,"value":""}]}}}"#,
                "out of order",
            ),
            (
                r#"{"format":1,"secrets":{"a":{"next":3,"versions":[{"v":2,"created_ms":0,"value":""},{"v":1,"created_ms":0,"value":""}]}}}"#,
                "out of order",
            ),
            (
                r#"{"format":1,"secrets":{"a":{"next":2,"versions":[{"v":1,"created_ms":0,"value":"%%"}]}}}"#,
                "base64",
            ),
        ];
        for (json, expected) in table {
            let err = Document::from_json(json.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    /// The document as `serde_json` writes its shape, which is what earlier versions wrote
    /// and what [`Document::to_json`] must match byte for byte.
    fn serde_json_of(doc: &Document) -> Vec<u8> {
        use serde::Serialize;

        #[derive(Serialize)]
        struct Root<'a> {
            format: u32,
            secrets: BTreeMap<&'a str, EntryShape<'a>>,
        }
        #[derive(Serialize)]
        struct EntryShape<'a> {
            next: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            deleted_ms: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            description: Option<&'a str>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            tags: &'a BTreeMap<String, String>,
            versions: Vec<VersionShape>,
        }
        #[derive(Serialize)]
        struct VersionShape {
            v: u64,
            created_ms: u64,
            value: String,
        }
        let secrets = doc
            .secrets
            .iter()
            .map(|(key, entry)| {
                let shape = EntryShape {
                    next: entry.next,
                    deleted_ms: entry.deleted_ms,
                    description: entry.metadata.description.as_deref(),
                    tags: &entry.metadata.tags,
                    versions: entry
                        .versions
                        .iter()
                        .map(|v| VersionShape {
                            v: v.number,
                            created_ms: v.created_ms,
                            value: BASE64.encode(v.value.expose()),
                        })
                        .collect(),
                };
                (key.as_str(), shape)
            })
            .collect();
        serde_json::to_vec(&Root {
            format: FORMAT,
            secrets,
        })
        .unwrap()
    }

    #[test]
    fn the_json_is_the_shape_in_the_docs() {
        // docs/local-store.md, "Inside the envelope", without the whitespace.
        let expected = concat!(
            r#"{"format":1,"secrets":{"app/db/password":{"next":4,"deleted_ms":1764000000000,"#,
            r#""description":"primary database","tags":{"team":"core"},"versions":["#,
            r#"{"v":2,"created_ms":1763990000000,"value":"aHVudGVyMg=="},"#,
            r#"{"v":3,"created_ms":1763999000000,"value":"Y29ycmVjdCBob3JzZQ=="}]}}}"#
        );
        let name = key("app/db/password");
        let mut doc = Document::default();
        let with = PutOptions::default()
            .with_metadata(Metadata::with_description("primary database").tag("team", "core"));
        doc.put(&name, "first".into(), &with, at(1_763_980_000_000), 2)
            .unwrap();
        doc.put(
            &name,
            "hunter2".into(),
            &PutOptions::default(),
            at(1_763_990_000_000),
            2,
        )
        .unwrap();
        doc.put(
            &name,
            "correct horse".into(),
            &PutOptions::default(),
            at(1_763_999_000_000),
            2,
        )
        .unwrap();
        doc.delete(&name, at(1_764_000_000_000)).unwrap();
        assert_eq!(std::str::from_utf8(&doc.to_json()).unwrap(), expected);
        assert_eq!(serde_json_of(&doc), expected.as_bytes());
        assert_eq!(
            std::str::from_utf8(&Document::default().to_json()).unwrap(),
            r#"{"format":1,"secrets":{}}"#
        );
    }

    #[test]
    fn a_reused_buffer_holds_only_the_latest_document() {
        let mut big = Document::default();
        for n in 0..20 {
            put(&mut big, &format!("app/{n}"), "a value of some length");
        }
        let mut small = Document::default();
        put(&mut small, "x", "y");
        let mut buf = SecretBuf::with_capacity(0);
        big.write_json(&mut buf);
        assert_eq!(&buf[..], &serde_json_of(&big)[..]);
        small.write_json(&mut buf);
        assert_eq!(&buf[..], &serde_json_of(&small)[..]);
        big.write_json(&mut buf);
        assert_eq!(&buf[..], &serde_json_of(&big)[..]);
    }

    /// One change to a document, for the cache test below.
    #[derive(Debug, Clone)]
    enum Op {
        Put {
            name: usize,
            value: Vec<u8>,
            metadata: Option<(Option<String>, BTreeMap<String, String>)>,
            keep: usize,
        },
        Delete(usize),
        Undelete(usize),
        Purge(usize),
    }

    const NAMES: [&str; 5] = ["a", "a/b", "b\"q", "é/\\", "z z"];

    fn op() -> impl Strategy<Value = Op> {
        let text = "[a-z\"\\\\\n\t\u{1}\u{7f}é😀 ]{0,8}";
        let metadata = proptest::option::of((
            proptest::option::of(text),
            proptest::collection::btree_map(text, text, 0..3),
        ));
        let name = 0..NAMES.len();
        prop_oneof![
            4 => (name.clone(), proptest::collection::vec(any::<u8>(), 0..40), metadata, 1..4usize)
                .prop_map(|(name, value, metadata, keep)| Op::Put { name, value, metadata, keep }),
            1 => name.clone().prop_map(Op::Delete),
            1 => name.clone().prop_map(Op::Undelete),
            1 => name.prop_map(Op::Purge),
        ]
    }

    proptest! {
        /// Each entry's cached JSON is reused by later saves; after any sequence of changes,
        /// with a save after each, the document must still be exactly what `serde_json`
        /// writes for it from scratch, and read back the same.
        #[test]
        fn the_json_stays_what_serde_json_writes_as_entries_change(
            ops in proptest::collection::vec(op(), 0..24)
        ) {
            let mut doc = Document::default();
            let mut copies = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                let now = at(1_000 + n as u64);
                // Errors (a missing or already deleted secret) are part of the sequence.
                let _ = match op {
                    Op::Put { name, value, metadata, keep } => {
                        let mut options = PutOptions::default();
                        if let Some((description, tags)) = metadata {
                            let mut metadata = Metadata::default();
                            metadata.description = description;
                            metadata.tags = tags;
                            options = options.with_metadata(metadata);
                        }
                        doc.put(&key(NAMES[name]), value.into(), &options, now, keep).map(drop)
                    }
                    Op::Delete(name) => doc.delete(&key(NAMES[name]), now),
                    Op::Undelete(name) => doc.undelete(&key(NAMES[name])),
                    Op::Purge(name) => doc.purge(&key(NAMES[name])),
                };
                let json = doc.to_json();
                prop_assert_eq!(&json[..], &serde_json_of(&doc)[..]);
                prop_assert_eq!(&Document::from_json(&json).unwrap().to_json()[..], &json[..]);
                // Copies share chunks with the document and must not see its later changes;
                // kept after some changes only, so others change chunks nothing shares.
                if n % 3 == 0 {
                    copies.push((doc.clone(), json));
                }
            }
            for (copy, json) in &copies {
                prop_assert_eq!(&copy.to_json()[..], &json[..]);
            }
        }
    }

    proptest! {
        #[test]
        fn json_round_trips(
            entries in proptest::collection::btree_map(
                "[a-z]{1,8}(/[a-z\"\\\\é ]{1,8}){0,2}",
                (proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4), any::<bool>()),
                0..6,
            )
        ) {
            let mut doc = Document::default();
            for (name, (values, deleted)) in &entries {
                for value in values {
                    doc.put(&key(name), value.clone().into(), &PutOptions::default(), at(7), 10).unwrap();
                }
                if *deleted {
                    doc.delete(&key(name), at(8)).unwrap();
                }
            }
            let json = doc.to_json();
            let back = Document::from_json(&json).unwrap();
            prop_assert_eq!(&back.to_json()[..], &json[..]);
            for (name, (values, deleted)) in &entries {
                let versions = back.versions(&key(name)).unwrap();
                prop_assert_eq!(versions.len(), values.len());
                for (info, value) in versions.iter().zip(values) {
                    prop_assert_eq!(info.deleted, *deleted);
                    if !deleted {
                        let got = back.get_version(&key(name), &info.version).unwrap();
                        prop_assert_eq!(got.value.expose(), value.as_slice());
                    }
                }
            }
        }
    }
}
