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

    /// SHA3-256 of each message, in order: the same as `messages.iter().map(|m| Hash::of(m))`,
    /// faster for many messages.
    ///
    /// The messages, of any lengths, are hashed several at a time by a multi-buffer Keccak
    /// (eight in AVX-512 registers, or four in AVX2 registers, whichever this CPU has, detected
    /// once), grouped by length; without either, or for a single message, one after the other.
    /// Worth it from two messages of about the same number of 136-byte blocks on.
    pub fn of_many(messages: &[&[u8]]) -> Vec<Hash> {
        let mut out = vec![Hash::default(); messages.len()];
        Hash::of_many_into(messages, &mut out);
        out
    }

    /// [`Hash::of_many`] into the caller's `out`: `out[i]` becomes the hash of `messages[i]`.
    ///
    /// # Panics
    ///
    /// If `out` and `messages` differ in length.
    pub fn of_many_into(messages: &[&[u8]], out: &mut [Hash]) {
        super::keccak_x::sha3_256_many(messages, out);
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
    use super::super::keccak_x::{self, Backend};
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
    fn known_answers_on_every_backend() {
        // FIPS 202 examples (NIST): SHA3-256 of the empty string, "abc" and 200 bytes 0xa3.
        let a3 = [0xa3u8; 200];
        let cases: [(&[u8], &str); 3] = [
            (
                b"",
                "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
            ),
            (
                b"abc",
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            ),
            (
                &a3,
                "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787",
            ),
        ];
        for (msg, hex) in cases {
            assert_eq!(Hash::of(msg).to_hex(), hex);
        }
        // Each alone, all together, and repeated so that every lane of a group gets each.
        let mut msgs: Vec<&[u8]> = cases.iter().map(|c| c.0).collect();
        for _ in 0..4 {
            msgs.extend(cases.iter().map(|c| c.0));
        }
        for backend in available_backends() {
            for n in 1..=msgs.len() {
                let mut out = vec![Hash::default(); n];
                keccak_x::sha3_256_many_with(backend, &msgs[..n], &mut out);
                for (i, h) in out.iter().enumerate() {
                    assert_eq!(h.to_hex(), cases[i % 3].1, "{backend:?}, {n} messages");
                }
            }
        }
        assert_eq!(
            Hash::of_many(&msgs),
            msgs.iter().map(|m| Hash::of(m)).collect::<Vec<_>>()
        );
    }

    /// Every backend this CPU runs; fails when it lacks one `ATE_REQUIRE_SIMD` names.
    fn available_backends() -> Vec<Backend> {
        let all = keccak_x::testing::available();
        // Say which backends ran (`--nocapture`).
        println!("SHA3-256 backends tested: {all:?}");
        all
    }

    /// Message lengths for the batch tests: any up to 2000, often around one and two blocks.
    fn message_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            2 => 0..2000usize,
            1 => prop::sample::select(vec![0usize, 1, 135, 136, 137, 271, 272, 273]),
        ]
    }

    #[test]
    fn of_many_into_writes_every_output() {
        let msgs: [&[u8]; 3] = [b"a", b"", b"abc"];
        let mut out = [Hash::from_bytes([0xff; 32]); 3];
        Hash::of_many_into(&msgs, &mut out);
        assert_eq!(out, [Hash::of(b"a"), Hash::of(b""), Hash::of(b"abc")]);
        assert!(Hash::of_many(&[]).is_empty());
    }

    #[test]
    #[should_panic(expected = "one output per message")]
    fn of_many_into_refuses_a_short_output() {
        Hash::of_many_into(&[b"a", b"b"], &mut [Hash::default()]);
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
        fn of_many_matches_of_on_every_backend(batch in proptest::collection::vec(
            message_len().prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)), 0..40)) {
            let msgs: Vec<&[u8]> = batch.iter().map(|m| m.as_slice()).collect();
            let expected: Vec<Hash> = msgs.iter().map(|m| Hash::of(m)).collect();
            prop_assert_eq!(&Hash::of_many(&msgs), &expected);
            for backend in keccak_x::testing::available() {
                let mut out = vec![Hash::default(); msgs.len()];
                keccak_x::sha3_256_many_with(backend, &msgs, &mut out);
                prop_assert_eq!(&out, &expected, "{:?}", backend);
            }
        }

        #[test]
        fn order_follows_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(Hash::from_bytes(a).cmp(&Hash::from_bytes(b)), a.cmp(&b));
        }
    }
}
