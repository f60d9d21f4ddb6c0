//! SHA3-256 digests.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Sha3_256};

/// A SHA3-256 digest: the identity of events, keys and chains.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    /// SHA3-256 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha3_256::digest(data).into())
    }

    /// SHA3-256 over several parts, each prefixed with its length (u64 LE), so part boundaries
    /// are unambiguous: `H(len(p1) ‖ p1 ‖ len(p2) ‖ p2 ‖ …)`.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut h = Sha3_256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    /// A digest from its bytes.
    pub const fn from_bytes(b: [u8; 32]) -> Hash {
        Hash(b)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b: serde_bytes_array::Bytes32 = Deserialize::deserialize(d)?;
        Ok(Hash(b.0))
    }
}

/// Fixed-size byte arrays through serde's `bytes`.
pub(super) mod serde_bytes_array {
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    pub(crate) struct Bytes32(pub [u8; 32]);
    pub(crate) struct Bytes12(pub [u8; 12]);

    macro_rules! fixed {
        ($name:ident, $n:expr) => {
            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    struct V;
                    impl<'de> Visitor<'de> for V {
                        type Value = $name;
                        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                            write!(f, "{} bytes", $n)
                        }
                        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<$name, E> {
                            v.try_into()
                                .map($name)
                                .map_err(|_| E::invalid_length(v.len(), &self))
                        }
                        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<$name, A::Error> {
                            let mut b = [0u8; $n];
                            for (i, slot) in b.iter_mut().enumerate() {
                                *slot = a
                                    .next_element()?
                                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                            }
                            Ok($name(b))
                        }
                    }
                    d.deserialize_bytes(V)
                }
            }
        };
    }
    fixed!(Bytes32, 32);
    fixed!(Bytes12, 12);
}
