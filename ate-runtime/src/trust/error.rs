//! Errors of the trust layer: why a transaction or event was refused.

use crate::crypto::{CryptoError, Hash};
use crate::event::PrimaryKey;

/// A transaction failed validation; nothing of it enters the log or the view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TrustError {
    /// The transaction is not the one its signatures (or vouch) were made for: an event, the
    /// keys trailer, the key directory or a signer's coverage was changed, added or removed.
    #[error(
        "the transaction does not match the digest its proofs sign (an event, the keys, the key directory or a signer's coverage was changed, added or removed)"
    )]
    TxDigestMismatch,
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
    /// A metadata tag of an older layout that this build refuses rather than misreads (tag 3:
    /// the per-event wrapped key, replaced by the transaction's keys trailer).
    #[error("metadata tag {0} is retired (an older layout); this build refuses it")]
    RetiredMetadata(u16),
    /// The transaction carries more than one keys trailer.
    #[error("the transaction carries more than one keys trailer")]
    DuplicateKeysTrailer,
    /// The keys trailer does not decode, is not canonical, is empty, or holds a key wrapped for
    /// another reader than its entry says.
    #[error("malformed keys trailer: {reason}")]
    MalformedKeys {
        /// What is wrong.
        reason: String,
    },
    /// The keys trailer holds two entries for one read key.
    #[error("the keys trailer holds more than one entry for read key {read_key:?}")]
    DuplicateKeyEntry {
        /// The read key.
        read_key: Hash,
    },
    /// An encrypted event's read key has no entry in the keys trailer (or there is no trailer).
    #[error(
        "event {index} is encrypted for read key {read_key:?}, which has no entry in the transaction's keys trailer"
    )]
    MissingKeyEntry {
        /// The event's index in its transaction.
        index: u32,
        /// The read key it is encrypted for.
        read_key: Hash,
    },
    /// The keys trailer's entry for an event's read key is not the entry the event binds (its
    /// id differs: the entry or the event was changed).
    #[error(
        "event {index} binds another key entry than the transaction's entry for read key {read_key:?} (changed entry or event)"
    )]
    KeyEntryMismatch {
        /// The event's index in its transaction.
        index: u32,
        /// The read key it is encrypted for.
        read_key: Hash,
    },
    /// An event binds the key entry of another read key than the one it is encrypted for.
    #[error(
        "event {index} is encrypted for read key {read_key:?} but binds the key entry of {entry_reader:?}"
    )]
    KeyEntryOfAnotherReader {
        /// The event's index in its transaction.
        index: u32,
        /// The read key the event says it is encrypted for.
        read_key: Hash,
        /// The read key of the entry it binds.
        entry_reader: Hash,
    },
    /// The keys trailer holds an entry no event of the transaction binds.
    #[error("the keys trailer holds an entry for read key {read_key:?} that no event uses")]
    UnusedKeyEntry {
        /// The entry's read key.
        read_key: Hash,
    },
    /// Trailers out of their canonical order (tag order; signatures ascending by signer).
    #[error("trailer {tag} comes after trailer {after}: trailers must be in canonical order")]
    TrailerOrder {
        /// The trailer's tag.
        tag: u16,
        /// The tag of the trailer before it.
        after: u16,
    },
    /// More signatures than a transaction may carry.
    #[error("the transaction carries more than {max} signatures")]
    TooManySignatures {
        /// The cap.
        max: usize,
    },
    /// Two signatures by one key.
    #[error("the transaction carries two signatures by key {signer:?}")]
    DuplicateSigner {
        /// The key.
        signer: Hash,
    },
    /// A vouch by a server key the chain does not pin, or a vouch handed to
    /// `Chain::commit_transaction` (only the chain's own server vouches, through
    /// `Chain::commit_vouched`).
    #[error("vouch by server key {server:?}, which this chain does not pin")]
    UnpinnedServer {
        /// The key that signed the vouch.
        server: Hash,
    },
    /// A transaction built elsewhere carries a vouch: a vouch is the word of this chain's own
    /// server and is made only by `Chain::commit_vouched`.
    #[error("a transaction from outside the process may not carry a vouch")]
    ForeignVouch,
    /// The key directory does not decode, is not canonical, is empty, or is not ascending.
    #[error("malformed key directory: {reason}")]
    MalformedDirectory {
        /// What is wrong.
        reason: String,
    },
    /// A rule names a public read key that is not in the transaction's key directory.
    #[error("event {index} names public read key {read_key:?}, which is not in the key directory")]
    MissingDirectoryEntry {
        /// The event's index in its transaction.
        index: u32,
        /// The key's id.
        read_key: Hash,
    },
    /// The key directory holds a key no rule of the transaction names.
    #[error("the key directory holds key {read_key:?}, which no rule of the transaction names")]
    UnusedDirectoryEntry {
        /// The key's id.
        read_key: Hash,
    },
    /// The record's rules are inherited through more than `MAX_INHERIT_DEPTH` parents.
    #[error(
        "record {key} would inherit its rules through more parents than MAX_INHERIT_DEPTH allows"
    )]
    TooDeep {
        /// The record.
        key: PrimaryKey,
    },
    /// The update would make a record its own ancestor.
    #[error("moving record {key} there would make it its own ancestor")]
    ParentCycle {
        /// The record.
        key: PrimaryKey,
    },
    /// The update moves a record under a parent (or to the root) whose write right no signer
    /// holds (or which is final).
    #[error(
        "moving record {key} under {to:?} needs that parent's write right, which no signer holds"
    )]
    UnauthorizedMove {
        /// The record.
        key: PrimaryKey,
        /// The new parent (`None`: the chain root).
        to: Option<PrimaryKey>,
    },
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
