//! [`Metadata`] as Secret Manager labels and annotations, and the labels and annotations
//! strongroom keeps for itself.
//!
//! - The description is the annotation `strongroom-description`.
//! - A tag whose name and value are valid label text (name: a lower-case letter, then up to
//!   62 lower-case letters, digits, `_` or `-`; value: up to 63 of those) is a **label**, so
//!   that it can be filtered on and shows in billing; any other tag is an **annotation**
//!   (names of up to 63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter
//!   or digit; values free, all annotations together at most 16 KiB). A tag that fits
//!   neither is refused with [`Error::InvalidValue`].
//! - Reading, tags are every label and annotation except strongroom's own (names starting
//!   `strongroom-`), which a tag cannot use.
//!
//! strongroom's own: the label `strongroom-deleted` (the version `delete` disabled; see the
//! store), the annotations `strongroom-name` (the name behind a hashed id) and
//! `strongroom-cas` (the version a check-and-set write claimed, and when: `5@1733130000`).

use std::collections::BTreeMap;

use strongroom_core::{Error, Metadata};

/// The prefix of every label and annotation strongroom keeps for itself.
pub(crate) const RESERVED_PREFIX: &str = "strongroom-";
/// The annotation holding the description.
pub(crate) const DESCRIPTION: &str = "strongroom-description";
/// The label marking a deleted secret; its value is the version `delete` disabled.
pub(crate) const DELETED: &str = "strongroom-deleted";
/// The annotation a check-and-set write sets (with the secret's etag) to claim a version.
pub(crate) const CAS: &str = "strongroom-cas";

/// Labels or annotations: name to value.
pub(crate) type Map = BTreeMap<String, String>;

const MAX_LABELS: usize = 64;
const MAX_ANNOTATION_BYTES: usize = 16 * 1024;

/// Labels and annotations for `metadata`, or why it cannot be stored.
pub(crate) fn to_gcp(metadata: &Metadata) -> Result<(Map, Map), Error> {
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if let Some(description) = &metadata.description {
        annotations.insert(DESCRIPTION.to_owned(), description.clone());
    }
    for (name, value) in &metadata.tags {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(invalid(format!(
                "tag names starting {RESERVED_PREFIX:?} are strongroom's own ({name:?})"
            )));
        }
        if is_label_key(name) && is_label_value(value) {
            labels.insert(name.clone(), value.clone());
        } else if is_annotation_key(name) {
            annotations.insert(name.clone(), value.clone());
        } else {
            return Err(invalid(format!(
                "the tag name {name:?} is neither a Secret Manager label nor an annotation name (letters, digits, '-', '_', '.', at most 63, starting and ending with a letter or digit)"
            )));
        }
    }
    // Room for strongroom's own label.
    if labels.len() >= MAX_LABELS {
        return Err(invalid(format!(
            "at most {} label-style tags",
            MAX_LABELS - 1
        )));
    }
    let size = annotations
        .iter()
        .map(|(k, v)| k.len().saturating_add(v.len()))
        .fold(0usize, usize::saturating_add);
    // Room for strongroom's own annotations (a name of up to 512 bytes, a version number).
    if size > MAX_ANNOTATION_BYTES - 1024 {
        return Err(invalid("the description and annotation-style tags exceed Secret Manager's 16 KiB of annotations".into()));
    }
    Ok((labels, annotations))
}

/// The metadata that `labels` and `annotations` hold.
pub(crate) fn from_gcp(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Metadata {
    let mut metadata = Metadata::default();
    metadata.description = annotations.get(DESCRIPTION).cloned();
    for (k, v) in labels.iter().chain(annotations) {
        if !k.starts_with(RESERVED_PREFIX) {
            metadata.tags.insert(k.clone(), v.clone());
        }
    }
    metadata
}

/// `new` with strongroom's own entries of `old` kept.
pub(crate) fn keep_reserved(
    old: &BTreeMap<String, String>,
    mut new: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for (k, v) in old {
        if k.starts_with(RESERVED_PREFIX) && k != DESCRIPTION {
            new.insert(k.clone(), v.clone());
        }
    }
    new
}

/// The user's entries of `map` (strongroom's own left out, the description too).
pub(crate) fn user_part(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX) || k.as_str() == DESCRIPTION)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn invalid(message: String) -> Error {
    Error::InvalidValue { message }
}

fn label_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

fn is_label_key(k: &str) -> bool {
    k.len() <= 63
        && k.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && k.bytes().all(label_char)
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63 && v.bytes().all(label_char)
}

fn is_annotation_key(k: &str) -> bool {
    let bytes = k.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            k.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_where_they_fit_and_come_back() {
        let metadata = Metadata::with_description("the database password")
            .tag("team", "core")
            .tag("Owner", "Jane Doe")
            .tag("cost-center", "Not A Label Value");
        let (labels, annotations) = to_gcp(&metadata).unwrap();
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["team"]);
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["Owner", "cost-center", DESCRIPTION]
        );
        let mut with_own = labels.clone();
        with_own.insert(DELETED.into(), "3".into());
        assert_eq!(from_gcp(&with_own, &annotations), metadata);
    }

    #[test]
    fn tags_that_fit_nowhere_are_refused() {
        for (k, v) in [
            ("strongroom-deleted", "1"),
            ("-x", "y"),
            ("a b", "c"),
            ("", "v"),
            (&*"k".repeat(64), "v"),
        ] {
            let err = to_gcp(&Metadata::default().tag(k, v)).unwrap_err();
            assert!(matches!(err, Error::InvalidValue { .. }), "{k}: {err}");
        }
        let huge = Metadata::with_description("d".repeat(16 * 1024));
        assert!(to_gcp(&huge).is_err());
    }

    #[test]
    fn strongroom_entries_survive_a_metadata_change() {
        let old: BTreeMap<String, String> = [
            (DELETED.to_owned(), "2".to_owned()),
            ("team".to_owned(), "a".to_owned()),
            (DESCRIPTION.to_owned(), "old".to_owned()),
        ]
        .into();
        let kept = keep_reserved(&old, BTreeMap::from([("team".to_owned(), "b".to_owned())]));
        assert_eq!(kept.get(DELETED).map(String::as_str), Some("2"));
        assert_eq!(kept.get("team").map(String::as_str), Some("b"));
        assert!(
            !kept.contains_key(DESCRIPTION),
            "the description is the user's"
        );
        assert_eq!(user_part(&old).len(), 2);
    }
}
