//! The data every engine stores: a struct holding pseudo-random (incompressible) bytes.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// The stored value. `serde_bytes` makes MessagePack encode the bytes as one `bin` field
/// (a plain `Vec<u8>` would become an array of integers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Blob {
    /// The payload.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `n` distinct values of `size` random bytes each (deterministic for a seed).
pub fn values(n: usize, size: usize, seed: u64) -> Vec<Blob> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut data = vec![0u8; size];
            rng.fill_bytes(&mut data);
            Blob { data }
        })
        .collect()
}

/// The MessagePack encoding all engines store (ATE encodes it inside `Dio::store`; the peers
/// encode it with this before their insert).
pub fn encode(v: &Blob) -> Vec<u8> {
    rmp_serde::to_vec(v).expect("a Blob always encodes")
}

/// The inverse of [`encode`].
pub fn decode(b: &[u8]) -> Blob {
    rmp_serde::from_slice(b).expect("a stored Blob decodes")
}

/// The peers' keys: random 128-bit like ATE's (which makes its own from a CSPRNG), or, for the
/// peers' best case, ascending (B-tree inserts then always land at the right edge).
#[derive(Debug)]
pub struct Keys {
    rng: SmallRng,
    next: Option<u128>,
}

impl Keys {
    /// Random keys from a seeded generator.
    pub fn random(seed: u64) -> Self {
        Keys {
            rng: SmallRng::seed_from_u64(seed),
            next: None,
        }
    }

    /// Ascending keys from `start`.
    pub fn ascending(start: u128) -> Self {
        Keys {
            rng: SmallRng::seed_from_u64(0),
            next: Some(start),
        }
    }

    /// The next key, big-endian (so byte order and numeric order agree).
    pub fn next_key(&mut self) -> [u8; 16] {
        match &mut self.next {
            Some(n) => {
                *n += 1;
                n.to_be_bytes()
            }
            None => {
                let mut k = [0u8; 16];
                self.rng.fill_bytes(&mut k);
                k
            }
        }
    }
}
