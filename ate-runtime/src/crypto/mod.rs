//! Placeholder until the crypto layer lands: SHA3-256 only.
use std::fmt;

/// A SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash([u8; 32]);

impl Hash {
    /// SHA3-256 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        use sha3::Digest;
        Hash(sha3::Sha3_256::digest(data).into())
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
