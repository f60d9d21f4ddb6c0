//! The checkpoint: the first frame of a compacted log, saying what the compaction kept.
//!
//! ```text
//! size    field
//! 1       payload kind: 2 = checkpoint
//! 8       upto: the last sequence number the compaction judged (u64)
//! 8       kept: how many transactions numbered up to `upto` follow (u64)
//! 4       retired count R (u32)
//! R × 16  retired keys, strictly ascending
//! 32      digest
//! ```
//!
//! `digest = SHA3-256("ATE/checkpoint/v1" ‖ chain hash ‖ upto ‖ kept ‖ for each kept
//! transaction in order: its sequence number ‖ crc32c of its payload ‖ R ‖ the retired keys)`,
//! integers little-endian. Numbers up to `upto` that no frame holds were compacted away; after
//! `upto` they run on without gaps as in any log. A frame removed, added or changed among the
//! kept ones, or a retired key changed, no longer matches the digest
//! ([`CheckpointError::Mismatch`]).

use crate::crypto::Hash;
use crate::event::PrimaryKey;
use crc32c::crc32c;

/// The first byte of a checkpoint payload.
pub(crate) const PAYLOAD_CHECKPOINT: u8 = 2;

const DOMAIN: &[u8] = b"ATE/checkpoint/v1";
const FIXED_LEN: usize = 1 + 8 + 8 + 4 + 32;

/// What a compaction kept, as its log's first frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The last sequence number the compaction judged.
    pub upto: u64,
    /// How many transactions numbered up to `upto` the log holds.
    pub kept: u64,
    /// The keys of the records dropped whole, ascending.
    pub retired: Vec<PrimaryKey>,
    /// The digest of the kept transactions and the retired keys.
    pub digest: Hash,
}

/// A checkpoint that does not decode, or does not match the log it heads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The payload is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The kept transactions or the retired keys are not those the checkpoint was made with.
    #[error("the log's transactions up to {upto} do not match its checkpoint")]
    Mismatch {
        /// The checkpoint's `upto`.
        upto: u64,
    },
    /// A transaction numbered up to `upto` after a later one, or twice.
    #[error("transaction {seq} is out of order in the checkpointed part of the log")]
    OutOfOrder {
        /// Its number.
        seq: u64,
    },
}

/// The digest a checkpoint of `chain` carries, over `kept` (each kept transaction's number and
/// payload, in order) and `retired`.
pub(crate) fn digest<'a>(
    chain: &Hash,
    upto: u64,
    kept: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
    retired: &[PrimaryKey],
) -> Hash {
    let mut m = Vec::with_capacity(DOMAIN.len() + 48 + kept.len() * 12 + retired.len() * 16);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(chain.as_bytes());
    m.extend_from_slice(&upto.to_le_bytes());
    m.extend_from_slice(&(kept.len() as u64).to_le_bytes());
    for (seq, payload) in kept {
        m.extend_from_slice(&seq.to_le_bytes());
        m.extend_from_slice(&crc32c(payload).to_le_bytes());
    }
    m.extend_from_slice(&(retired.len() as u32).to_le_bytes());
    for k in retired {
        m.extend_from_slice(&k.to_bytes());
    }
    Hash::of(&m)
}

impl Checkpoint {
    /// The payload of this checkpoint.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.retired.len() * 16);
        out.push(PAYLOAD_CHECKPOINT);
        out.extend_from_slice(&self.upto.to_le_bytes());
        out.extend_from_slice(&self.kept.to_le_bytes());
        out.extend_from_slice(&(self.retired.len() as u32).to_le_bytes());
        for k in &self.retired {
            out.extend_from_slice(&k.to_bytes());
        }
        out.extend_from_slice(self.digest.as_bytes());
        out
    }

    /// Whether `payload` is a checkpoint's (by its kind byte).
    pub fn is_checkpoint(payload: &[u8]) -> bool {
        payload.first() == Some(&PAYLOAD_CHECKPOINT)
    }

    /// Decodes a checkpoint payload.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Malformed`] for another kind, a length that is not the one its retired
    /// count implies, or retired keys that are not strictly ascending.
    pub fn decode(payload: &[u8]) -> Result<Self, CheckpointError> {
        if payload.len() < FIXED_LEN || payload[0] != PAYLOAD_CHECKPOINT {
            return Err(CheckpointError::Malformed("too short, or not a checkpoint"));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let upto = u64_at(1);
        let kept = u64_at(9);
        let count = u32::from_le_bytes([payload[17], payload[18], payload[19], payload[20]]);
        // Checked against the bytes present before anything is reserved.
        let keys_len = (count as usize)
            .checked_mul(16)
            .filter(|n| payload.len() == FIXED_LEN + n)
            .ok_or(CheckpointError::Malformed(
                "length does not match the retired count",
            ))?;
        let mut retired = Vec::with_capacity(count as usize);
        for chunk in payload[21..21 + keys_len].chunks_exact(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            let key = PrimaryKey::from_bytes(b);
            if retired.last().is_some_and(|last| *last >= key) {
                return Err(CheckpointError::Malformed(
                    "retired keys are not strictly ascending",
                ));
            }
            retired.push(key);
        }
        let mut d = [0u8; 32];
        d.copy_from_slice(&payload[21 + keys_len..]);
        if kept > upto {
            return Err(CheckpointError::Malformed(
                "more kept transactions than numbers",
            ));
        }
        Ok(Checkpoint {
            upto,
            kept,
            retired,
            digest: Hash::from_bytes(d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let retired = vec![PrimaryKey::from(3u128), PrimaryKey::from(9u128)];
        let kept: Vec<(u64, &[u8])> = vec![(2, b"two"), (5, b"five")];
        Checkpoint {
            upto: 6,
            kept: 2,
            digest: digest(&Hash::of(b"chain"), 6, kept.into_iter(), &retired),
            retired,
        }
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let c = sample();
        let bytes = c.encode();
        assert!(Checkpoint::is_checkpoint(&bytes));
        assert_eq!(Checkpoint::decode(&bytes), Ok(c));
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        let bytes = sample().encode();
        // Every cut, and one byte too many.
        for n in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Checkpoint::decode(&long).is_err());
        // A count far beyond the bytes.
        let mut huge = bytes.clone();
        huge[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Checkpoint::decode(&huge).is_err());
        // Keys out of order.
        let mut swapped = bytes.clone();
        let (a, b) = (bytes[21..37].to_vec(), bytes[37..53].to_vec());
        swapped[21..37].copy_from_slice(&b);
        swapped[37..53].copy_from_slice(&a);
        assert!(Checkpoint::decode(&swapped).is_err());
        // More kept than numbers.
        let mut more = bytes;
        more[9..17].copy_from_slice(&7u64.to_le_bytes());
        assert!(Checkpoint::decode(&more).is_err());
    }

    #[test]
    fn the_digest_covers_every_kept_transaction_and_retired_key() {
        let chain = Hash::of(b"chain");
        let r = [PrimaryKey::from(1u128)];
        let base = digest(&chain, 9, [(2u64, &b"a"[..]), (5, b"b")].into_iter(), &r);
        let other = [
            digest(&chain, 9, [(2u64, &b"a"[..])].into_iter(), &r),
            digest(&chain, 9, [(2u64, &b"a"[..]), (6, b"b")].into_iter(), &r),
            digest(&chain, 9, [(2u64, &b"a"[..]), (5, b"c")].into_iter(), &r),
            digest(&chain, 8, [(2u64, &b"a"[..]), (5, b"b")].into_iter(), &r),
            digest(&chain, 9, [(2u64, &b"a"[..]), (5, b"b")].into_iter(), &[]),
            digest(
                &Hash::of(b"other"),
                9,
                [(2u64, &b"a"[..]), (5, b"b")].into_iter(),
                &r,
            ),
        ];
        for d in other {
            assert_ne!(d, base);
        }
    }
}
