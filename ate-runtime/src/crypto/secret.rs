//! A heap buffer for secret bytes that is wiped on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (private keys, shared secrets): zeroized when dropped, redacted in `Debug`,
/// compared in constant time.
///
/// The bytes live in one heap allocation that never moves, so the only copy this type knows of
/// is wiped on drop. Copies made elsewhere (by the caller, or transiently by the post-quantum
/// C libraries, whose key types are `Copy` plain arrays) are outside its reach.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    /// Takes ownership of `bytes` without copying when the vector has no spare capacity;
    /// otherwise copies into an exact-size buffer and wipes the original.
    pub fn from_vec(mut bytes: Vec<u8>) -> Self {
        if bytes.len() == bytes.capacity() {
            SecretBytes(bytes.into_boxed_slice())
        } else {
            let exact = SecretBytes(Box::from(&bytes[..]));
            bytes.zeroize();
            exact
        }
    }

    /// Copies `bytes` (the caller still owns and must wipe its own copy).
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(Box::from(bytes))
    }

    /// The secret bytes. Handle with care: never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_equality_is_by_content() {
        let s = SecretBytes::from_slice(&[0xAB; 16]);
        let dbg = format!("{s:?}");
        assert_eq!(dbg, "SecretBytes(<16 bytes redacted>)");
        assert!(!dbg.contains("171") && !dbg.to_lowercase().contains("abab"));
        assert_eq!(s, SecretBytes::from_vec(vec![0xAB; 16]));
        assert_ne!(s, SecretBytes::from_slice(&[0xAB; 15]));
        assert_ne!(s, SecretBytes::from_slice(&[0xAA; 16]));
    }

    #[test]
    fn from_vec_with_spare_capacity_keeps_the_bytes() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&[1, 2, 3]);
        let s = SecretBytes::from_vec(v);
        assert_eq!(s.expose(), &[1, 2, 3]);
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
    }

    #[test]
    fn constant_time_eq_matches_slice_eq() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
