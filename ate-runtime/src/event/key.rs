//! Primary keys: the identity of a record across its versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The 128-bit identity of a record (stored as big-endian bytes, so it packs without padding). New keys come from a CSPRNG, so two writers never collide in
/// practice; the same key across events means "a new version of the same record".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrimaryKey([u8; 16]);

impl PrimaryKey {
    /// A fresh random key from the thread-local CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> Self {
        PrimaryKey(rand::random::<u128>().to_be_bytes())
    }

    /// The key as a number.
    pub const fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// Big-endian bytes, as stored in the log.
    pub const fn to_bytes(&self) -> [u8; 16] {
        self.0
    }

    /// The inverse of [`PrimaryKey::to_bytes`].
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        PrimaryKey(bytes)
    }

    /// A key derived from what a record stands for: the first 16 bytes of
    /// [`Hash::of_parts`](crate::crypto::Hash::of_parts)`(parts)`. The same parts give the same
    /// key in every process, so a record at it can be found, or written once
    /// ([`Dio::store_at`](crate::Dio::store_at)), without an index.
    pub fn derived(parts: &[&[u8]]) -> Self {
        let h = crate::crypto::Hash::of_parts(parts);
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        PrimaryKey(k)
    }
}

impl From<u128> for PrimaryKey {
    fn from(v: u128) -> Self {
        PrimaryKey(v.to_be_bytes())
    }
}

impl fmt::Display for PrimaryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

impl fmt::Debug for PrimaryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrimaryKey({:032x})", self.as_u128())
    }
}

/// The string was not 32 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a primary key is 32 hexadecimal digits")]
pub struct ParsePrimaryKeyError;

impl FromStr for PrimaryKey {
    type Err = ParsePrimaryKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(ParsePrimaryKeyError);
        }
        u128::from_str_radix(s, 16)
            .map(PrimaryKey::from)
            .map_err(|_| ParsePrimaryKeyError)
    }
}

// Serialized as 16 big-endian bytes (MessagePack `bin 8`), which every MessagePack reader handles.
impl Serialize for PrimaryKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for PrimaryKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PrimaryKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 bytes of a primary key")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<PrimaryKey, E> {
                let b: [u8; 16] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(PrimaryKey::from_bytes(b))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<PrimaryKey, A::Error> {
                let mut b = [0u8; 16];
                for (i, slot) in b.iter_mut().enumerate() {
                    *slot = a
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(PrimaryKey::from_bytes(b))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let k = PrimaryKey::generate();
        assert_eq!(k.to_string().parse::<PrimaryKey>(), Ok(k));
        assert!("xyz".parse::<PrimaryKey>().is_err());
    }

    #[test]
    fn msgpack_round_trip() {
        let k = PrimaryKey::generate();
        let b = rmp_serde::to_vec(&k).unwrap();
        assert_eq!(b.len(), 18);
        assert_eq!(rmp_serde::from_slice::<PrimaryKey>(&b).unwrap(), k);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(PrimaryKey::generate(), PrimaryKey::generate());
    }
}
