//! SHA3-256 hashes: event ids, key ids, and the framed multi-part hashing used for domain
//! separation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Sha3_256};

use super::alg::HashAlgorithm;

/// A SHA3-256 digest (32 bytes).
///
/// `Display` and `Debug` print the first 8 bytes as hex (16 characters), enough to tell ids
/// apart in logs; the alternate `Display` form (`{:#}`) and [`Hash::to_hex`] print all 32 bytes.
/// Ordered by its bytes. Serialized as a 32-byte string (hex in human-readable formats).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The algorithm producing these hashes.
    pub const ALGORITHM: HashAlgorithm = HashAlgorithm::Sha3_256;

    /// SHA3-256 of `data`, nothing added.
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha3_256::digest(data).into())
    }

    /// SHA3-256 over several parts, each framed by its length so that part boundaries count:
    /// the input is `(len(part) as u64 little-endian ‖ part)` for each part in order.
    /// `of_parts(&[b"ab", b"c"]) != of_parts(&[b"a", b"bc"])`.
    ///
    /// By convention the first part is a domain tag (see [`domain`](super::domain)), so a hash
    /// made for one purpose is never valid for another.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut h = HashBuilder::new();
        for part in parts {
            h.part(part);
        }
        h.finish()
    }

    /// Wraps 32 digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Hash {
        Hash(bytes)
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// All 32 bytes as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&hex::encode(self.0))
        } else {
            f.write_str(&hex::encode(&self.0[..8]))
        }
    }
}

impl fmt::Debug for Hash {
    /// Always the short form, also inside pretty-printed (`{:#?}`) structures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::bytes::deserialize_array::<D, 32>(deserializer).map(Hash)
    }
}

/// Incremental form of [`Hash::of_parts`]: the same framing, for parts that are not all at hand
/// at once. Adding parts `a` then `b` and finishing gives `Hash::of_parts(&[a, b])`.
#[derive(Clone, Default)]
pub struct HashBuilder(Sha3_256);

impl HashBuilder {
    /// A hasher with no parts yet.
    pub fn new() -> Self {
        HashBuilder(Sha3_256::new())
    }

    /// Adds one part: its length as `u64` little-endian, then its bytes.
    pub fn part(&mut self, part: &[u8]) -> &mut Self {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
        self
    }

    /// The hash of the parts added.
    pub fn finish(self) -> Hash {
        Hash(self.0.finalize().into())
    }

    /// Writes the hash of the parts added into `out` (for derived secrets, so that the caller
    /// controls, and wipes, the only copy).
    pub(crate) fn finish_into(self, out: &mut [u8; 32]) {
        self.0.finalize_into(out.into());
    }
}

impl fmt::Debug for HashBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashBuilder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answer() {
        // FIPS 202 example: SHA3-256("abc").
        assert_eq!(
            Hash::of(b"abc").to_hex(),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }

    #[test]
    fn of_parts_layout_is_length_prefixed() {
        let mut framed = Vec::new();
        framed.extend_from_slice(&3u64.to_le_bytes());
        framed.extend_from_slice(b"tag");
        framed.extend_from_slice(&0u64.to_le_bytes());
        framed.extend_from_slice(&2u64.to_le_bytes());
        framed.extend_from_slice(b"xy");
        assert_eq!(Hash::of_parts(&[b"tag", b"", b"xy"]), Hash::of(&framed));
        assert_ne!(
            Hash::of_parts(&[b"ab", b"c"]),
            Hash::of_parts(&[b"a", b"bc"])
        );
        assert_ne!(Hash::of_parts(&[b"abc"]), Hash::of_parts(&[b"abc", b""]));
        assert_eq!(Hash::of_parts(&[]), Hash::of(b""));
    }

    #[test]
    fn formatting_is_short_hex_and_alternate_is_full() {
        let h = Hash::of(b"abc");
        assert_eq!(format!("{h}"), "3a985da74fe225b2");
        assert_eq!(format!("{h:?}"), "3a985da74fe225b2");
        assert_eq!(format!("{h:#?}"), "3a985da74fe225b2");
        assert_eq!(format!("{h:#}"), h.to_hex());
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("3a98"), None);
        assert_eq!(Hash::from_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn msgpack_encoding_is_a_32_byte_bin() {
        let h = Hash::of(b"x");
        let enc = rmp_serde::to_vec(&h).unwrap();
        assert_eq!(enc.len(), 34);
        assert_eq!(&enc[..2], &[0xc4, 32]);
        assert_eq!(rmp_serde::from_slice::<Hash>(&enc).unwrap(), h);
        // Wrong lengths are refused.
        let short = rmp_serde::to_vec(&serde_bytes_like(&[1u8; 31])).unwrap();
        assert!(rmp_serde::from_slice::<Hash>(&short).is_err());
        // An array of integers is accepted too.
        let arr = rmp_serde::to_vec(h.as_bytes()).unwrap();
        assert_eq!(rmp_serde::from_slice::<Hash>(&arr).unwrap(), h);
        for bad in [&[1u8; 33][..], &[][..]] {
            let bin = rmp_serde::to_vec(&serde_bytes_like(bad)).unwrap();
            assert!(rmp_serde::from_slice::<Hash>(&bin).is_err());
            let arr = rmp_serde::to_vec(bad).unwrap();
            assert!(rmp_serde::from_slice::<Hash>(&arr).is_err());
        }
    }

    struct Bin<'a>(&'a [u8]);
    impl Serialize for Bin<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    fn serde_bytes_like(b: &[u8]) -> Bin<'_> {
        Bin(b)
    }

    proptest! {
        #[test]
        fn hasher_matches_of_parts(parts in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..6)) {
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let mut h = HashBuilder::new();
            for p in &refs {
                h.part(p);
            }
            prop_assert_eq!(h.finish(), Hash::of_parts(&refs));
        }

        #[test]
        fn order_follows_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(Hash::from_bytes(a).cmp(&Hash::from_bytes(b)), a.cmp(&b));
        }
    }
}
