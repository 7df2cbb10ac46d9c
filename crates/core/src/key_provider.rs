//! [`KeyProvider`]: a key service (AWS KMS, Vault/OpenBao Transit) that wraps and unwraps an
//! encrypted store's data key, so the key that protects the store never touches the disk.
//!
//! The trait lives here, beside [`SecretStore`](crate::SecretStore), because both sides
//! of it are in different crates: strongroom-aws and strongroom-vault implement it (they
//! speak the protocols), strongroom-local and strongroom-facade call it (they hold the
//! store). Neither side depends on the other, and the envelope crate stays synchronous.

use std::fmt;

use async_trait::async_trait;

use crate::error::Error;
use crate::value::SecretValue;

/// What a wrapped data key is bound to, such as the store it belongs to and the format
/// version that stores it.
///
/// The pairs go to the key service as authenticated data: AWS KMS's encryption context, or
/// Transit's associated data (as [`to_bytes`](Self::to_bytes)). A wrapped key unwraps only
/// with the same context, so a slot copied from another store fails to open with
/// [`Error::Decrypt`]. The context is not secret: it is logged by KMS (CloudTrail) and must
/// never hold key material.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KeyContext {
    // Sorted by name, names unique: one canonical form for every provider.
    pairs: Vec<(String, String)>,
}

impl KeyContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one pair.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let value = value.into();
        match self.pairs.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(at) => self.pairs[at].1 = value,
            Err(at) => self.pairs.insert(at, (name, value)),
        }
        self
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of one pair.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The canonical byte form, for services that take opaque associated data: for each
    /// pair in name order, the name's and the value's lengths as 4-byte big-endian integers
    /// each followed by its UTF-8 bytes. Unambiguous, so two contexts share a byte form only
    /// when they are equal.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.pairs {
            for part in [name, value] {
                // A context is a few short strings; u32::MAX bytes would be a caller bug.
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
}

impl fmt::Debug for KeyContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pairs()).finish()
    }
}

/// A data key made by a key service: the plaintext (wiped on drop) and its wrapped form.
pub struct GeneratedKey {
    /// The data key itself.
    pub plaintext: SecretValue,
    /// The data key wrapped by the service, to be stored.
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("plaintext", &self.plaintext)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// A key service that wraps and unwraps data keys: one slot of an encrypted store.
///
/// Implementations: `strongroom_aws::KmsKeyProvider` (AWS KMS `Encrypt`, `Decrypt`,
/// `GenerateDataKey`) and `strongroom_vault::TransitKeyProvider` (`transit/encrypt`,
/// `transit/decrypt`, `transit/rewrap`). A store calls [`unwrap`](Self::unwrap) once when it
/// opens and keeps the data key for the life of its handle, so a provider is on the open
/// path, not on the read path.
///
/// Errors are classed as for a [`SecretStore`](crate::SecretStore): a wrapped key that does
/// not unwrap (tampered, another key, another context) is [`Error::Decrypt`]; missing or
/// refused credentials are [`Error::Unauthenticated`] or [`Error::PermissionDenied`]; an
/// unreachable service is [`Error::Unavailable`]. No error, log line or `Debug` output
/// holds the plaintext key.
#[async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The provider's kind as written in a store's key slot and in a `--key` value:
    /// `"aws-kms"`, `"vault-transit"`.
    fn kind(&self) -> &'static str;

    /// Which key of the service this provider uses (a KMS key id, ARN or alias; a Transit
    /// key name): written in the slot so that `strongroom key list` can say what opens it.
    fn key_id(&self) -> &str;

    /// Wraps `data_key` bound to `context`.
    ///
    /// # Errors
    /// As the trait says.
    async fn wrap(&self, data_key: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error>;

    /// Unwraps what [`wrap`](Self::wrap) (or [`generate`](Self::generate)) returned, given
    /// the same context.
    ///
    /// # Errors
    /// [`Error::Decrypt`] when `wrapped` was modified, made by another key or bound to
    /// another context; otherwise as the trait says.
    async fn unwrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<SecretValue, Error>;

    /// A new `len`-byte data key from the service's own generator, with its wrapped form;
    /// `Ok(None)` (the default) when the service has none, and the caller generates the key
    /// and calls [`wrap`](Self::wrap).
    ///
    /// # Errors
    /// As the trait says.
    async fn generate(
        &self,
        len: usize,
        context: &KeyContext,
    ) -> Result<Option<GeneratedKey>, Error> {
        let _ = (len, context);
        Ok(None)
    }

    /// Re-wraps `wrapped` under the newest version of the service's key (after the key was
    /// rotated in the service), without the data key changing. The default unwraps and
    /// wraps again; Transit overrides it with `transit/rewrap`, which never returns the
    /// plaintext.
    ///
    /// # Errors
    /// As [`unwrap`](Self::unwrap) and [`wrap`](Self::wrap).
    async fn rewrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        let data_key = self.unwrap(wrapped, context).await?;
        self.wrap(data_key.expose(), context).await
    }
}

#[async_trait]
impl<P: KeyProvider + ?Sized> KeyProvider for std::sync::Arc<P> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn key_id(&self) -> &str {
        (**self).key_id()
    }
    async fn wrap(&self, data_key: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        (**self).wrap(data_key, context).await
    }
    async fn unwrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<SecretValue, Error> {
        (**self).unwrap(wrapped, context).await
    }
    async fn generate(
        &self,
        len: usize,
        context: &KeyContext,
    ) -> Result<Option<GeneratedKey>, Error> {
        (**self).generate(len, context).await
    }
    async fn rewrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        (**self).rewrap(wrapped, context).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_sorted_and_canonical() {
        let a = KeyContext::new().with("b", "2").with("a", "1");
        let b = KeyContext::new().with("a", "1").with("b", "2");
        assert_eq!(a, b);
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.pairs().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
        assert_eq!(a.get("b"), Some("2"));
        let replaced = a.clone().with("a", "9");
        assert_eq!(replaced.get("a"), Some("9"));
        assert_eq!(replaced.pairs().len(), 2);
    }

    #[test]
    fn byte_form_is_unambiguous() {
        let one = KeyContext::new().with("ab", "c");
        let two = KeyContext::new().with("a", "bc");
        assert_ne!(one.to_bytes(), two.to_bytes());
        assert_eq!(
            KeyContext::new().with("k", "v").to_bytes(),
            [0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v']
        );
    }

    #[test]
    fn generated_key_debug_hides_the_key() {
        let key = GeneratedKey {
            plaintext: SecretValue::new(b"0123456789abcdef".to_vec()),
            wrapped: vec![1, 2, 3],
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("wrapped_len: 3"), "{shown}");
    }
}
