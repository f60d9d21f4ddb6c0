//! Who sent a request: the keys that signed its event, read back from the chain's history.

use crate::chain::Chain;
use crate::crypto::Hash;
use crate::event::PrimaryKey;
use crate::event::codec::TransactionRef;
use crate::trust::meta::proofs_from;

/// Why the signers of a request could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallersError {
    #[error("the chain's history does not hold transaction {0}")]
    Missing(u64),
    #[error("transaction {seq} does not write record {key}")]
    NotWritten { seq: u64, key: PrimaryKey },
    #[error("transaction {0} does not decode: {1}")]
    Malformed(u64, String),
}

/// The public-key ids that vouch for the event writing `key` in the committed transaction
/// `seq`: the signers whose signature covers it, and the writers a vouch names (they count for
/// every event). The chain checked every one of these proofs before it committed (or, on a
/// replica, applied) the transaction, so they are the verified identity of its writer.
pub(super) fn signers_of(
    chain: &Chain,
    seq: u64,
    key: PrimaryKey,
) -> Result<Vec<Hash>, CallersError> {
    let committed = chain
        .read_from(seq, 0)
        .map_err(|e| CallersError::Malformed(seq, e.to_string()))?
        .into_iter()
        .next()
        .filter(|c| c.seq() == seq)
        .ok_or(CallersError::Missing(seq))?;
    let tx = TransactionRef::decode(committed.payload())
        .map_err(|e| CallersError::Malformed(seq, e.to_string()))?;
    let index = tx
        .events
        .iter()
        .position(|e| e.key == key && !e.tombstone)
        .ok_or(CallersError::NotWritten { seq, key })?;
    let proofs =
        proofs_from(tx.trailers).map_err(|e| CallersError::Malformed(seq, e.to_string()))?;
    let index = u32::try_from(index).map_err(|e| CallersError::Malformed(seq, e.to_string()))?;
    let mut callers: Vec<Hash> = proofs
        .signatures
        .iter()
        .filter(|s| s.covers.binary_search(&index).is_ok())
        .map(|s| s.public_key.hash())
        .collect();
    if let Some(v) = &proofs.vouch {
        callers.extend(v.writers.iter().copied());
    }
    Ok(callers)
}
