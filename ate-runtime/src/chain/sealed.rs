//! A transaction sealed by a Dio (encoded, hashed, signed, bodies encrypted) and not yet
//! committed: what crosses from a client to a chain's source.

use bytes::Bytes;

use crate::event::codec::TransactionRef;
use crate::log::FRAME_HEADER_LEN;
use crate::trust::TrustError;
use crate::trust::meta::TRAILER_VOUCH;

use super::CommitError;

/// A transaction ready to commit: its bytes exactly as a log frame will hold them, but for
/// its sequence number, which the chain that commits it writes in (signatures do not cover
/// it). Made by [`Dio::seal`](crate::Dio::seal), or read back from bytes with
/// [`SealedTransaction::from_bytes`]; committed, without being encoded again, by
/// [`Chain::commit_sealed`](super::Chain::commit_sealed), which checks it in full as a
/// transaction from elsewhere. Cheap to clone (a reference count).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTransaction {
    bytes: Bytes,
}

impl std::fmt::Debug for SealedTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTransaction")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl SealedTransaction {
    /// Reads a sealed transaction from its bytes ([`SealedTransaction::as_bytes`] of one made
    /// elsewhere): they must decode as a transaction (the decoder's work and memory are bounded
    /// by the bytes given) and fit a log frame. This checks the form only: signatures, rights
    /// and versions are checked when it is committed, against the chain's own limit on
    /// transactions from elsewhere.
    ///
    /// # Errors
    ///
    /// [`CommitError::TooLarge`] beyond what a log frame holds (4 GiB − 1);
    /// [`CommitError::Malformed`] when the bytes do not decode as a transaction.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, CommitError> {
        let max = u32::MAX as usize;
        if bytes.len() > max {
            return Err(CommitError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        TransactionRef::decode(&bytes).map_err(CommitError::Malformed)?;
        Ok(SealedTransaction { bytes })
    }

    /// A transaction sealed here, in a buffer that keeps room for a frame header ahead of it.
    pub(crate) fn from_writer_buffer(buffer: Vec<u8>) -> Self {
        let bytes = Bytes::from(buffer);
        SealedTransaction {
            bytes: bytes.slice(FRAME_HEADER_LEN.min(bytes.len())..),
        }
    }

    /// Its bytes (what [`SealedTransaction::from_bytes`] reads back).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its bytes, shared.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no bytes (never true of a decoded transaction).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Refuses it when it carries a server's vouch (a transaction from elsewhere may not).
    pub(crate) fn refuse_vouch(&self) -> Result<(), CommitError> {
        let tx = TransactionRef::decode(&self.bytes).map_err(CommitError::Malformed)?;
        match tx.trailers.get(TRAILER_VOUCH) {
            Some(_) => Err(TrustError::ForeignVouch.into()),
            None => Ok(()),
        }
    }

    /// A copy in the form the chain's writer takes: after room for its frame header.
    pub(crate) fn to_writer_buffer(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(FRAME_HEADER_LEN + self.bytes.len());
        buffer.resize(FRAME_HEADER_LEN, 0);
        buffer.extend_from_slice(&self.bytes);
        buffer
    }
}
