//! [`Secret`] and what describes it: [`VersionId`], [`Metadata`], [`VersionInfo`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::{SecretName, SecretValue};

/// The identifier a backend gives one version of a secret.
///
/// Vault and the local store count up from `1`; AWS uses a UUID. Treat it as opaque text:
/// compare it, print it, hand it back to [`get_version`](crate::SecretStore::get_version).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(Arc<str>);

impl VersionId {
    /// Wraps a backend's version identifier.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier as a number, for backends that count versions.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl From<u64> for VersionId {
    fn from(n: u64) -> Self {
        Self(n.to_string().into())
    }
}

impl From<&str> for VersionId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for VersionId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionId({:?})", &*self.0)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a backend records about a secret besides its value. Never secret itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// A human description (AWS `Description`; Vault custom metadata `description`).
    pub description: Option<String>,
    /// Free-form labels (AWS tags; Vault custom metadata).
    pub tags: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata with only a description.
    pub fn with_description(description: impl Into<String>) -> Self {
        Self {
            description: Some(description.into()),
            tags: BTreeMap::new(),
        }
    }

    /// Adds a tag, replacing one of the same name.
    #[must_use]
    pub fn tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(name.into(), value.into());
        self
    }

    /// True when there is neither a description nor a tag.
    pub fn is_empty(&self) -> bool {
        self.description.is_none() && self.tags.is_empty()
    }
}

/// One version of a secret as read from a store.
///
/// Cloning is cheap: the key, value and version share their allocations with the original,
/// which is what lets a cache hand out secrets without copying them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Secret {
    /// The secret's name.
    pub key: SecretName,
    /// The secret's value. `Debug` prints `[REDACTED]`.
    pub value: SecretValue,
    /// Which version this is.
    pub version: VersionId,
    /// When this version was written, where the backend records it.
    pub created: Option<SystemTime>,
    /// Description and tags, where the backend has them.
    pub metadata: Arc<Metadata>,
}

impl Secret {
    /// A secret with no creation time and no metadata.
    pub fn new(key: SecretName, value: SecretValue, version: VersionId) -> Self {
        Self {
            key,
            value,
            version,
            created: None,
            metadata: Arc::default(),
        }
    }

    /// Sets when this version was written.
    #[must_use]
    pub fn created(mut self, at: SystemTime) -> Self {
        self.created = Some(at);
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Arc::new(metadata);
        self
    }
}

/// One entry of a secret's version history, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The version's identifier.
    pub version: VersionId,
    /// When it was written, where the backend records it.
    pub created: Option<SystemTime>,
    /// True for the version a plain `get` returns (or would, if it were not deleted).
    pub current: bool,
    /// Soft-deleted: hidden from reads but recoverable with `undelete`.
    pub deleted: bool,
    /// Destroyed: the value is gone for good, only the entry remains.
    pub destroyed: bool,
    /// Backend labels on this version, such as AWS staging labels (`AWSCURRENT`).
    pub labels: Vec<String>,
}

impl VersionInfo {
    /// A live version with no labels.
    pub fn new(version: VersionId, created: Option<SystemTime>, current: bool) -> Self {
        Self {
            version,
            created,
            current,
            deleted: false,
            destroyed: false,
            labels: Vec::new(),
        }
    }
}

/// A condition a write must meet, so that two writers cannot silently overwrite each other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precondition {
    /// The secret must not exist yet (create only).
    Absent,
    /// The secret's current version must be this one (check-and-set).
    Version(VersionId),
}

/// Options for [`SecretStore::put_with`](crate::SecretStore::put_with).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PutOptions {
    /// Refuse the write with [`Error::Conflict`](crate::Error::Conflict) unless this holds.
    pub precondition: Option<Precondition>,
    /// Replace the secret's description and tags with these.
    pub metadata: Option<Metadata>,
}

impl PutOptions {
    /// Only write when the current version is `version`.
    #[must_use]
    pub fn if_version(mut self, version: VersionId) -> Self {
        self.precondition = Some(Precondition::Version(version));
        self
    }

    /// Only write when the secret does not exist yet.
    #[must_use]
    pub fn if_absent(mut self) -> Self {
        self.precondition = Some(Precondition::Absent);
        self
    }

    /// Set the secret's metadata along with the value.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_shows_key_and_version_but_not_value() {
        let secret = Secret::new(
            SecretName::new("app/db").unwrap(),
            SecretValue::from("pa55word"),
            VersionId::from(3),
        )
        .metadata(Metadata::with_description("primary db").tag("team", "core"));
        let text = format!("{secret:?}");
        assert!(!text.contains("pa55word"), "{text}");
        assert!(text.contains("app/db") && text.contains("\"3\""), "{text}");
    }

    #[test]
    fn numeric_versions() {
        assert_eq!(VersionId::from(7).as_u64(), Some(7));
        assert_eq!(VersionId::from("a1b2").as_u64(), None);
    }
}
