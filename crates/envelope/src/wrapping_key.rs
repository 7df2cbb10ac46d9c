//! [`WrappingKey`]: what wraps an envelope's data key.

use std::fmt;

use crate::master_key::MasterKey;
use crate::passphrase::Passphrase;

/// The key that wraps (encrypts) an envelope's random data key.
///
/// `Debug` shows which kind it is and never the key or passphrase.
#[derive(Clone)]
pub enum WrappingKey {
    /// A 32-byte master key (scheme 1).
    Master(MasterKey),
    /// A passphrase, stretched with PBKDF2-HMAC-SHA256 (scheme 2).
    Passphrase(Passphrase),
}

impl From<MasterKey> for WrappingKey {
    fn from(key: MasterKey) -> WrappingKey {
        WrappingKey::Master(key)
    }
}

impl From<Passphrase> for WrappingKey {
    fn from(passphrase: Passphrase) -> WrappingKey {
        WrappingKey::Passphrase(passphrase)
    }
}

impl fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The inner types' Debug impls redact; delegating keeps one place that decides.
        match self {
            WrappingKey::Master(key) => f.debug_tuple("Master").field(key).finish(),
            WrappingKey::Passphrase(p) => f.debug_tuple("Passphrase").field(p).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_kind_and_hides_the_secret() {
        let bytes = [0x5a; 32]; // 'Z'
        let master = WrappingKey::from(MasterKey::from_bytes(&bytes).unwrap());
        let debug = format!("{master:?}");
        assert_eq!(debug, "Master(MasterKey([REDACTED]))");
        assert!(!debug.contains("90") && !debug.contains("ZZ"));

        let pass = WrappingKey::from(Passphrase::new("open sesame").with_iterations(1000));
        let debug = format!("{pass:?}");
        assert!(debug.starts_with("Passphrase(Passphrase {"), "{debug}");
        assert!(!debug.contains("sesame"), "{debug}");
        assert!(!format!("{:#?}", pass.clone()).contains("sesame"));
    }
}
