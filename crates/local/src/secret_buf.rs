//! [`SecretBuf`]: a byte buffer for plaintext (a store's JSON, or part of it) that leaves no
//! copy behind.
//!
//! `Zeroizing<Vec<u8>>` would wipe it too, but one volatile store per byte: for the 1.7 MB
//! document of a 10,000-secret store that is some 2.3 M instructions under callgrind on every
//! write, a fifth of a put. [`zeroize::zeroize_bytes`] gives the same guarantee (the compiler
//! cannot elide or shorten the wipe) at the speed of a `memset`.

use std::fmt;
use std::io;
use std::ops::Deref;

/// Plaintext bytes, wiped when dropped or cleared.
///
/// It grows only by moving to a larger buffer and wiping the old one; a `Vec` growing in
/// place would free its old allocation unwiped. Its length only ever shrinks in
/// [`clear`](Self::clear), after the wipe, so the spare capacity past it never holds
/// plaintext and a wipe need only cover the bytes in use: one `memset` of them.
pub(crate) struct SecretBuf(Vec<u8>);

impl SecretBuf {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Appends `len` bytes, written by `fill` over zeros.
    pub(crate) fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        self.reserve(len);
        let start = self.0.len();
        self.0.resize(start + len, 0);
        fill(&mut self.0[start..]);
    }

    /// Wipes the buffer and empties it, keeping its allocation for reuse.
    pub(crate) fn clear(&mut self) {
        self.wipe();
        self.0.clear();
    }

    /// Overwrites the bytes in use with zeros, keeping the length (so a test can look).
    fn wipe(&mut self) {
        zeroize::zeroize_bytes(&mut self.0);
    }

    /// Empties the buffer (wiping it) and makes room for `len` bytes.
    pub(crate) fn clear_for(&mut self, len: usize) {
        if self.0.capacity() < len {
            // Some room to spare, so a store that grows does not need a new buffer on
            // every write.
            *self = Self::with_capacity(len + len / 8);
        } else {
            self.clear();
        }
    }

    /// The same bytes in an allocation of exactly their size.
    pub(crate) fn exact(&self) -> Self {
        let mut copy = Self::with_capacity(self.0.len());
        copy.0.extend_from_slice(&self.0);
        copy
    }

    fn reserve(&mut self, more: usize) {
        if self.0.capacity() - self.0.len() < more {
            let mut larger = Self::with_capacity((self.0.len() + more).max(self.0.capacity() * 2));
            larger.0.extend_from_slice(&self.0);
            // The old buffer is wiped as it drops.
            *self = larger;
        }
    }
}

impl Deref for SecretBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl io::Write for SecretBuf {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBuf([REDACTED; {} bytes])", self.0.len())
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_wipe_zeroes_every_byte_written() {
        let mut buf = SecretBuf::with_capacity(4);
        buf.push(&[7u8; 64]);
        buf.push_with(8, |space| space.fill(9));
        buf.wipe();
        assert_eq!(buf.len(), 72);
        assert!(buf.iter().all(|b| *b == 0));
    }

    #[test]
    fn it_grows_keeping_its_bytes_and_copies_to_size() {
        let mut buf = SecretBuf::with_capacity(2);
        buf.push(b"ab");
        write!(buf, "{}", 12_345).unwrap();
        buf.push_with(3, |space| space.copy_from_slice(b"xyz"));
        assert_eq!(&buf[..], b"ab12345xyz");
        let exact = buf.exact();
        assert_eq!((&exact[..], exact.0.capacity()), (&b"ab12345xyz"[..], 10));
        assert_eq!(format!("{exact:?}"), "SecretBuf([REDACTED; 10 bytes])");
    }

    #[test]
    fn clearing_keeps_the_allocation_when_it_is_large_enough() {
        let mut buf = SecretBuf::with_capacity(0);
        buf.clear_for(80);
        assert_eq!((buf.len(), buf.0.capacity()), (0, 90));
        buf.push(&[1; 80]);
        buf.clear_for(50);
        assert_eq!((buf.len(), buf.0.capacity()), (0, 90));
        buf.push(b"abc");
        buf.clear();
        assert_eq!((buf.len(), buf.0.capacity()), (0, 90));
        buf.clear_for(200);
        assert_eq!((buf.len(), buf.0.capacity()), (0, 225));
    }
}
