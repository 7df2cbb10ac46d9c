//! [`Passphrase`]: a human secret stretched into a wrapping key with PBKDF2-HMAC-SHA256,
//! with a cache of the last derived key so that a store sealing on every write pays for
//! PBKDF2 once, not on every write.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use ring::pbkdf2;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::cipher::fill_random;
use crate::error::Error;
use crate::format::{KEY_LEN, SALT_LEN};

/// PBKDF2-HMAC-SHA256 iterations [`seal`](crate::seal) uses unless told otherwise: OWASP's
/// 2023 recommendation, about 0.3 s on a current CPU.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// The most iterations an envelope may ask for. [`open`](crate::open) refuses more (as
/// [`Error::Malformed`]), so a crafted file cannot stall its reader for minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// A passphrase that wraps envelopes' data keys through PBKDF2-HMAC-SHA256.
///
/// The text is zeroized on drop and `Debug` never shows it.
///
/// # The derived-key cache
///
/// PBKDF2 at [`DEFAULT_ITERATIONS`] costs about 0.3 s, and a store seals on every write, so a
/// `Passphrase` remembers the last key it derived together with its salt and iteration
/// count:
///
/// - [`open`](crate::open) derives once for the envelope's (salt, iterations) and caches it;
///   opening another envelope with the same parameters costs nothing more.
/// - [`seal`](crate::seal) reuses the cached salt and key when their iteration count is this
///   passphrase's; otherwise it picks a fresh random salt, derives, and caches.
///
/// So the envelopes one `Passphrase` writes share a salt. That is sound: the salt exists to
/// defeat precomputed (rainbow-table) attacks and to make each passphrase's guessing work
/// its own, which a shared random salt still does; every envelope still gets a fresh random
/// data key and fresh nonces. Clones share the cache; [`with_iterations`](Self::with_iterations)
/// starts a new one. The cached key is zeroized when replaced or when the last clone drops.
#[derive(Clone)]
pub struct Passphrase {
    text: Zeroizing<String>,
    iterations: u32,
    cache: Arc<Mutex<Option<Derived>>>,
}

/// A key derived from the passphrase, with the parameters it was derived with.
pub(crate) struct Derived {
    /// PBKDF2 salt.
    pub(crate) salt: [u8; SALT_LEN],
    /// PBKDF2 iteration count.
    pub(crate) iterations: NonZeroU32,
    /// The derived key.
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
}

impl Derived {
    /// A copy to hand out while the original stays in the cache.
    fn copy(&self) -> Derived {
        Derived {
            salt: self.salt,
            iterations: self.iterations,
            key: copy_key(&self.key),
        }
    }
}

impl Passphrase {
    /// A passphrase that seals with [`DEFAULT_ITERATIONS`].
    pub fn new(passphrase: impl Into<String>) -> Passphrase {
        Passphrase {
            text: Zeroizing::new(passphrase.into()),
            iterations: DEFAULT_ITERATIONS,
            cache: Arc::default(),
        }
    }

    /// The same passphrase, sealing with `iterations` PBKDF2 rounds.
    ///
    /// Go below [`DEFAULT_ITERATIONS`] only in tests: fewer rounds make guessing the
    /// passphrase from a stolen envelope proportionally cheaper. [`seal`](crate::seal)
    /// refuses 0 and counts above [`MAX_ITERATIONS`] with [`Error::InvalidIterations`].
    /// Opening always uses the count recorded in the envelope, whatever this is.
    #[must_use]
    pub fn with_iterations(self, iterations: u32) -> Passphrase {
        Passphrase {
            text: self.text,
            iterations,
            cache: Arc::default(),
        }
    }

    /// The iteration count [`seal`](crate::seal) uses.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The key for an envelope with this salt and iteration count, from the cache or derived
    /// (and then cached).
    pub(crate) fn key_for_open(
        &self,
        salt: &[u8; SALT_LEN],
        iterations: NonZeroU32,
    ) -> Zeroizing<[u8; KEY_LEN]> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(derived) = cache.as_ref()
            && derived.salt == *salt
            && derived.iterations == iterations
        {
            return copy_key(&derived.key);
        }
        let derived = self.derive(*salt, iterations);
        let key = copy_key(&derived.key);
        *cache = Some(derived);
        key
    }

    /// The salt, iteration count and key for a new envelope: the cached ones when their
    /// count is this passphrase's, else a fresh salt (then cached).
    pub(crate) fn key_for_seal(&self, rng: &SystemRandom) -> Result<Derived, Error> {
        let iterations = NonZeroU32::new(self.iterations)
            .filter(|n| n.get() <= MAX_ITERATIONS)
            .ok_or(Error::InvalidIterations {
                iterations: self.iterations,
            })?;
        // Held while deriving: concurrent sealers then derive once, not once each.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(derived) = cache.as_ref()
            && derived.iterations == iterations
        {
            return Ok(derived.copy());
        }
        let mut salt = [0u8; SALT_LEN];
        fill_random(rng, &mut salt)?;
        let derived = self.derive(salt, iterations);
        let copy = derived.copy();
        *cache = Some(derived);
        Ok(copy)
    }

    /// PBKDF2-HMAC-SHA256(passphrase as UTF-8, salt, iterations) -> 32 bytes.
    fn derive(&self, salt: [u8; SALT_LEN], iterations: NonZeroU32) -> Derived {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.text.as_bytes(),
            &mut key[..],
        );
        Derived {
            salt,
            iterations,
            key,
        }
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passphrase")
            .field("passphrase", &format_args!("[REDACTED]"))
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// A zeroizing copy of a key, made without an intermediate copy on the stack.
fn copy_key(key: &[u8; KEY_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "correct horse battery staple";

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn derive_matches_rfc_7914_pbkdf2_sha256_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1; first 32 of
        // the 64 output bytes (PBKDF2 blocks are independent, so the prefix is the same).
        let mut out = [0u8; KEY_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(1),
            b"salt",
            b"passwd",
            &mut out,
        );
        assert_eq!(
            out.to_vec(),
            crate::test_hex::decode(
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            )
        );
    }

    #[test]
    fn default_and_custom_iterations() {
        assert_eq!(Passphrase::new(TEXT).iterations(), DEFAULT_ITERATIONS);
        assert_eq!(
            Passphrase::new(TEXT).with_iterations(1000).iterations(),
            1000
        );
    }

    #[test]
    fn open_keys_depend_on_salt_and_count_and_are_cached() {
        let pass = Passphrase::new(TEXT).with_iterations(1000);
        let a = pass.key_for_open(&[1; SALT_LEN], iterations(1000));
        let again = pass.key_for_open(&[1; SALT_LEN], iterations(1000));
        assert_eq!(*a, *again);
        assert_ne!(*a, *pass.key_for_open(&[2; SALT_LEN], iterations(1000)));
        assert_ne!(*a, *pass.key_for_open(&[1; SALT_LEN], iterations(1001)));
        // A different passphrase gives a different key for the same parameters.
        let other = Passphrase::new("another").with_iterations(1000);
        assert_ne!(*a, *other.key_for_open(&[1; SALT_LEN], iterations(1000)));
    }

    #[test]
    fn seal_reuses_the_cached_salt_only_for_its_own_count() {
        let rng = SystemRandom::new();
        let pass = Passphrase::new(TEXT).with_iterations(1000);
        let first = pass.key_for_seal(&rng).unwrap();
        let second = pass.key_for_seal(&rng).unwrap();
        assert_eq!(first.salt, second.salt);
        assert_eq!(*first.key, *second.key);
        assert_eq!(
            *first.key,
            *pass.key_for_open(&first.salt, iterations(1000))
        );

        // Opening something with another count replaces the cache; sealing then picks a
        // fresh salt for its own count.
        let _ = pass.key_for_open(&[9; SALT_LEN], iterations(2000));
        let third = pass.key_for_seal(&rng).unwrap();
        assert_ne!(third.salt, first.salt);
        assert_ne!(third.salt, [9; SALT_LEN]);
        assert_eq!(third.iterations, iterations(1000));

        // Opening with this count makes that salt the one sealing reuses.
        let _ = pass.key_for_open(&[7; SALT_LEN], iterations(1000));
        assert_eq!(pass.key_for_seal(&rng).unwrap().salt, [7; SALT_LEN]);
    }

    #[test]
    fn clones_share_the_cache_and_with_iterations_starts_a_new_one() {
        let rng = SystemRandom::new();
        let pass = Passphrase::new(TEXT).with_iterations(1000);
        let salt = pass.key_for_seal(&rng).unwrap().salt;
        assert_eq!(pass.clone().key_for_seal(&rng).unwrap().salt, salt);
        let reset = pass.clone().with_iterations(1000);
        assert_ne!(reset.key_for_seal(&rng).unwrap().salt, salt);
    }

    #[test]
    fn seal_refuses_counts_open_would_refuse() {
        let rng = SystemRandom::new();
        for bad in [0, MAX_ITERATIONS + 1, u32::MAX] {
            let result = Passphrase::new(TEXT)
                .with_iterations(bad)
                .key_for_seal(&rng);
            assert!(matches!(
                result,
                Err(Error::InvalidIterations { iterations }) if iterations == bad
            ));
        }
    }

    #[test]
    fn debug_is_redacted() {
        let pass = Passphrase::new(TEXT).with_iterations(1234);
        let debug = format!("{pass:?}");
        assert_eq!(
            debug,
            "Passphrase { passphrase: [REDACTED], iterations: 1234 }"
        );
        assert!(!debug.contains("horse"));
        // Also after a key has been derived and cached.
        let _ = pass.key_for_open(&[0; SALT_LEN], iterations(1));
        assert!(!format!("{:?}", pass.clone()).contains("horse"));
    }
}
