//! [`Plaintext`]: decrypted bytes, wiped when dropped at the speed of a `memset`.
//!
//! # Why not `Zeroizing<Vec<u8>>`
//!
//! zeroize's `Vec` impl wipes the initialised elements one at a time through
//! `Zeroize for u8`, a volatile store per byte: under callgrind, wiping a 64 KiB plaintext
//! was 65,500 of the 235,000 instructions of an envelope open, and a 64 KiB open took twice
//! as long as ring's AES-GCM alone. [`zeroize::zeroize_bytes`] (zeroize 1.9.2 and later)
//! wipes a byte slice with a bulk fill followed by an assembly optimisation barrier that
//! takes the slice's address: the compiler must assume the barrier reads every byte, so it
//! can neither drop nor shorten the fill, and on targets without stable `asm!` zeroize falls
//! back to volatile writes. The guarantee is the one zeroize gives for every other slice it
//! wipes; only the per-byte loop is gone.

use std::fmt;
use std::ops::Deref;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Decrypted bytes from [`open`](crate::open) or [`DataKey::open`](crate::DataKey::open).
///
/// Read it as a `&[u8]` (it derefs to one). When it is dropped, or
/// [`zeroize`](Zeroize::zeroize)d, every byte of its allocation is overwritten with zeros:
/// the plaintext, the GCM tag it was decrypted with (kept after it in the same buffer), and
/// any spare capacity. `Debug` prints `Plaintext([REDACTED])`.
///
/// The wipe is as strong as [`Zeroizing<Vec<u8>>`]'s (the compiler cannot elide it) and about
/// as fast as `memset`; see [`into_zeroizing`](Self::into_zeroizing) for when the other type
/// is needed.
pub struct Plaintext {
    /// The whole buffer decrypted into: the plaintext, then what followed it (the GCM tag).
    /// Its length is kept at its capacity, so one slice wipe covers the whole allocation.
    buf: Vec<u8>,
    /// How many bytes at the start of `buf` are the plaintext.
    len: usize,
}

impl Plaintext {
    /// Takes ownership of `buf`, all of which is plaintext until [`cut`](Self::cut); it is
    /// wiped, spare capacity included, when the result drops.
    pub(crate) fn from_vec(buf: Vec<u8>) -> Plaintext {
        let len = buf.len();
        Plaintext { buf, len }
    }

    /// The whole buffer, for decrypting into.
    pub(crate) fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Makes only the first `len` bytes the plaintext. The rest stays in the buffer, to be
    /// wiped with it, rather than being cut off into spare capacity (which would take a
    /// second fill to wipe).
    pub(crate) fn cut(&mut self, len: usize) {
        self.len = len.min(self.buf.len());
    }

    /// The same bytes, without a copy, as a [`Zeroizing<Vec<u8>>`] for an API that wants one.
    ///
    /// That type wipes with one volatile store per byte when dropped, so a large plaintext
    /// costs about as much to drop as it did to decrypt; keep the `Plaintext` where you can.
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        let mut buf = std::mem::take(&mut self.buf);
        // The bytes past the plaintext become spare capacity, which Zeroizing<Vec> wipes.
        buf.truncate(self.len);
        // The emptied `self` then drops with nothing left to wipe.
        Zeroizing::new(buf)
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plaintext([REDACTED])")
    }
}

impl Zeroize for Plaintext {
    /// Overwrites the whole buffer, spare capacity included, with zeros and empties it.
    fn zeroize(&mut self) {
        wipe(&mut self.buf);
        self.len = 0;
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Plaintext {}

/// Overwrites every byte of `buf`'s allocation with zeros (length and spare capacity alike),
/// then empties it. The allocation is kept, so the caller may reuse or drop it.
pub(crate) fn wipe(buf: &mut Vec<u8>) {
    zero_allocation(buf);
    buf.clear();
}

/// Zeros the whole allocation of `buf` and leaves its length at its capacity, so a test can
/// see every byte that was wiped without `unsafe`.
fn zero_allocation(buf: &mut Vec<u8>) {
    // Filling the spare capacity first makes the whole allocation one initialised slice; the
    // length becomes exactly the capacity, so this never reallocates (which would leave a
    // copy behind). Those plain writes are then covered by the non-elidable wipe below. A
    // Plaintext has no spare capacity when it was allocated to size, as `open` does, and
    // then this is one fill.
    let capacity = buf.capacity();
    buf.resize(capacity, 0);
    zeroize::zeroize_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_every_byte_of_every_length_at_every_alignment() {
        const GUARD: u8 = 0xa5;
        for start in 0..16 {
            for len in 0..=70 {
                let mut memory = [GUARD; 16 + 70 + 16];
                zeroize::zeroize_bytes(&mut memory[start..start + len]);
                for (i, byte) in memory.iter().enumerate() {
                    let inside = (start..start + len).contains(&i);
                    let expected = if inside { 0 } else { GUARD };
                    assert_eq!(*byte, expected, "start {start} len {len} byte {i}");
                }
            }
        }
    }

    #[test]
    fn wipe_reaches_spare_capacity() {
        for capacity in 0..=70usize {
            for len in [0, capacity / 3, capacity.saturating_sub(16), capacity] {
                let mut buf = Vec::with_capacity(capacity);
                // Fill the whole allocation, then cut the length back: the bytes past the
                // length are what a decrypt leaves there (the tag) and must be wiped too.
                buf.resize(buf.capacity(), 0xff);
                buf.truncate(len);
                let allocation = buf.capacity();
                zero_allocation(&mut buf);
                assert_eq!(buf.len(), allocation, "capacity {capacity} len {len}");
                assert!(buf.iter().all(|&b| b == 0), "capacity {capacity} len {len}");
                let pointer = buf.as_ptr();
                wipe(&mut buf);
                assert!(buf.is_empty());
                assert_eq!(buf.capacity(), allocation, "the allocation is kept");
                assert_eq!(buf.as_ptr(), pointer, "and not moved");
            }
        }
    }

    #[test]
    fn plaintext_reads_as_bytes_and_hides_them_in_debug() {
        let mut text = Plaintext::from_vec(b"hunter2".to_vec());
        assert_eq!(&text[..], b"hunter2");
        assert_eq!(text.as_ref(), b"hunter2");
        assert_eq!(format!("{text:?}"), "Plaintext([REDACTED])");
        assert_eq!(format!("{text:#?}"), "Plaintext([REDACTED])");
        text.zeroize();
        assert!(text.is_empty());
    }

    #[test]
    fn a_cut_plaintext_reads_as_its_prefix() {
        let mut text = Plaintext::from_vec(b"secret|tag-bytes".to_vec());
        text.cut(6);
        assert_eq!(&text[..], b"secret");
        assert_eq!(text.len(), 6);
        text.cut(100);
        assert_eq!(&text[..], b"secret|tag-bytes", "never past the buffer");
    }

    #[test]
    fn into_zeroizing_moves_the_buffer() {
        let buf = b"moved, not copied|tag".to_vec();
        let pointer = buf.as_ptr();
        let mut text = Plaintext::from_vec(buf);
        text.cut(17);
        let moved = text.into_zeroizing();
        assert_eq!(&moved[..], b"moved, not copied");
        assert_eq!(moved.as_ptr(), pointer);
    }
}
