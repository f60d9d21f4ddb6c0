//! Errors of the trust layer: why a transaction or event was refused.

use crate::crypto::{CryptoError, Hash};
use crate::event::PrimaryKey;

/// A transaction failed validation; nothing of it enters the log or the view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// An event's bytes do not match the hash its signature lists (the payload was changed).
    #[error("event {index} does not match the hash its signature covers (tampered payload)")]
    EventHashMismatch {
        /// The event's index in its transaction.
        index: u32,
    },
    /// A signature does not verify under the public key it names.
    #[error("signature by key {signer:?} does not verify")]
    BadSignature {
        /// The public-key hash the signature claims.
        signer: Hash,
    },
    /// A signature was made for another chain.
    #[error("signature was made for another chain")]
    WrongChain,
    /// An algorithm id this build does not know (or refuses).
    #[error("unknown or refused algorithm: {0}")]
    UnknownAlgorithm(String),
    /// A metadata or trailer tag this build does not know.
    #[error("unknown metadata tag {0}")]
    UnknownMetadata(u16),
    /// Metadata that does not decode.
    #[error("malformed metadata (tag {tag}): {reason}")]
    MalformedMetadata {
        /// The tag.
        tag: u16,
        /// What is wrong.
        reason: String,
    },
    /// A signature lists an event index twice, out of order or past the end.
    #[error("a signature covers events out of order or out of range")]
    BadCoverage,
    /// The event needs a write right and no valid signature covers it.
    #[error("writing record {key} needs a signature by one of its writers; none covers it")]
    MissingSignature {
        /// The record.
        key: PrimaryKey,
    },
    /// The event is signed, but by keys without the write right.
    #[error("no signer of the write to record {key} holds its write right")]
    Unauthorized {
        /// The record.
        key: PrimaryKey,
    },
    /// The record (or the parent it inherits from) is write-once: `WriteOption::Nobody`.
    #[error("record {key} is final (WriteOption::Nobody)")]
    Final {
        /// The record.
        key: PrimaryKey,
    },
    /// The event replaces a version that is not the record's current one: a replayed event, or a
    /// write based on a stale read (lost update).
    #[error(
        "write to record {key} replaces version {claimed:?}, but the current version is {current:?} (replayed or stale)"
    )]
    VersionMismatch {
        /// The record.
        key: PrimaryKey,
        /// The version the event says it replaces (`None`: it claims to create the record).
        claimed: Option<u64>,
        /// The record's current version (`None`: no live record).
        current: Option<u64>,
    },
    /// The key belonged to a record that was deleted; keys are never reused.
    #[error("record {key} was deleted; its key cannot be reused (replayed creation?)")]
    Deleted {
        /// The record.
        key: PrimaryKey,
    },
    /// A child names a parent that does not exist.
    #[error("record {key} names a missing parent {parent}")]
    MissingParent {
        /// The record.
        key: PrimaryKey,
        /// The parent it names.
        parent: PrimaryKey,
    },
    /// The record must be encrypted for a read key, and is not (or for another key).
    #[error("record {key} must be encrypted for read key {expected:?}")]
    NotEncryptedForReader {
        /// The record.
        key: PrimaryKey,
        /// The read key required.
        expected: Hash,
    },
    /// A transaction vouched for by a server (instead of signed) reached a chain in distributed
    /// integrity mode, where every transaction must carry its own signatures.
    #[error(
        "the transaction is vouched for by a server, but this chain accepts only signed transactions (IntegrityMode::Distributed)"
    )]
    VouchRefused,
    /// A custom validator refused the transaction.
    #[error("refused by validator {validator}: {reason}")]
    Refused {
        /// The validator's name.
        validator: String,
        /// Its reason.
        reason: String,
    },
}

impl From<CryptoError> for TrustError {
    fn from(e: CryptoError) -> Self {
        TrustError::UnknownAlgorithm(e.to_string())
    }
}
