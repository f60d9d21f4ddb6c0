//! Errors of opening chains and committing to them.

use crate::event::{DecodeError, PrimaryKey};
use crate::log::LogError;
use crate::schema::{NameClash, SchemaError};
use crate::trust::TrustError;

use super::ChainKeyError;
use super::compact::checkpoint::CheckpointError;

/// Opening a chain failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The key cannot name a log.
    #[error(transparent)]
    InvalidKey(#[from] ChainKeyError),
    /// A remote chain's server could not be reached, or refused (its identity, the handshake,
    /// a chain it does not serve).
    #[cfg(feature = "client")]
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// A remote chain's server sent a transaction the replica's checks refuse (signed by a
    /// key the replica does not trust, say): the replica keeps what it had and stops.
    #[error("the server sent a transaction the replica refuses: {0}")]
    Replica(#[source] Box<CommitError>),
    /// The log could not be read or is damaged.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A frame passed its checksum but its transaction does not decode.
    #[error("log {store}: transaction at byte offset {offset} is malformed: {source}")]
    Malformed {
        /// The store.
        store: String,
        /// The frame's offset.
        offset: u64,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// Transaction numbers in the log are not consecutive (a frame was lost or replayed).
    #[error(
        "log {store}: transaction at byte offset {offset} has number {found}, expected {expected}"
    )]
    OutOfSequence {
        /// The store.
        store: String,
        /// The frame's offset.
        offset: u64,
        /// The number found.
        found: u64,
        /// The number expected.
        expected: u64,
    },
    /// A transaction in the log fails validation (tampered, forged, unauthorized or replayed).
    #[error("log {store}: transaction {seq} at byte offset {offset} is invalid: {source}")]
    Invalid {
        /// The store.
        store: String,
        /// The frame's offset.
        offset: u64,
        /// The transaction's number.
        seq: u64,
        /// Why it was refused.
        #[source]
        source: TrustError,
    },
    /// A compacted log's checkpoint does not decode, or the transactions it covers are not
    /// those it was made with (one removed, added or changed).
    #[error("log {store}: {source}")]
    Checkpoint {
        /// The store.
        store: String,
        /// What is wrong.
        #[source]
        source: CheckpointError,
    },
    /// A transaction in the log breaks a rule of the chain's schema (see
    /// [`CommitError::Schema`]), or gives a unique index value to a second record.
    #[error(
        "log {store}: transaction {seq} at byte offset {offset} breaks the chain's schema: {source}"
    )]
    Schema {
        /// The store.
        store: String,
        /// The frame's offset.
        offset: u64,
        /// The transaction's number.
        seq: u64,
        /// The rule broken.
        #[source]
        source: Box<SchemaError>,
    },
    /// The log is already open in this process, through a registry with other trust settings
    /// (root keys, integrity mode, server keys or plugins): sharing it would let one registry's
    /// chain be read and written under the other's rules.
    #[error(
        "log {path} is already open in this process with other trust settings (root keys, integrity mode, server keys or plugins)"
    )]
    OtherSettings {
        /// The log file.
        path: std::path::PathBuf,
    },
    /// A thread the open needs could not be started.
    #[error("cannot start {what}: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A replay worker thread stopped before handing over its work (it panicked).
    #[error("a replay worker stopped unexpectedly")]
    WorkerStopped,
    /// Two types of this program registered one stable type name (with `#[derive(Dao)]` or
    /// `ate::stable_name!`), so each would read the other's records. Every open fails until
    /// one of them is given its own name.
    #[error(transparent)]
    TypeNameClash(#[from] NameClash),
    /// The chain is already open in this process in another role: as a local chain when a
    /// replica was asked for, as a replica when a local chain was asked for, or as a replica of
    /// another upstream ([`ChainRegistry::open_replica`](super::ChainRegistry::open_replica)).
    #[error("chain {chain} is already open in this process as {open}, not as {asked}")]
    OtherRole {
        /// The chain.
        chain: String,
        /// How it is open.
        open: &'static str,
        /// How it was asked for.
        asked: &'static str,
    },
    /// The blocking task opening the log panicked or was cancelled.
    #[error("the task opening the chain failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Committing a transaction failed; nothing of it was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Writing or syncing the log failed for the group commit this transaction was part of (the
    /// cause is the error). The transaction was not acknowledged; its bytes may or may not be
    /// on disk, so a reopen either shows it whole or not at all. The chain is now poisoned:
    /// reopen it.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An earlier I/O failure poisoned the chain; this transaction was refused without touching
    /// the log. Reopen the chain to continue.
    #[error("the chain {0} is poisoned by an earlier I/O failure; reopen it")]
    Poisoned(String),
    /// The transaction's encoding is larger than the chain's limit
    /// (`AteConfig::max_transaction_bytes`, or `AteConfig::max_foreign_transaction_bytes` for a
    /// transaction built elsewhere). Nothing was written and the chain goes on.
    #[error("transaction of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The encoded size of the transaction.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The chain was closed.
    #[error("the chain is closed")]
    Closed,
    /// A unique index already holds this value for another record.
    #[error("unique index {type_name}.{field} already holds this value (record {existing})")]
    UniqueViolation {
        /// The type.
        type_name: String,
        /// The indexed field.
        field: String,
        /// The record that holds the value.
        existing: PrimaryKey,
    },
    /// The transaction's encoding does not decode (a transaction built elsewhere).
    #[error("malformed transaction: {0}")]
    Malformed(#[source] DecodeError),
    /// `Chain::commit_vouched` on a chain without a server key to sign the vouch with
    /// (`ChainBuilder::server_key`).
    #[error("the chain has no server key to vouch with (ChainBuilder::server_key)")]
    NoServerKey,
    /// The transaction failed the chain-of-trust checks.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A replicated transaction is not the one the chain expects next
    /// ([`Chain::apply_replicated`](super::Chain::apply_replicated)): a replica applies its
    /// source's transactions at their own sequence numbers, each exactly once, in order.
    /// Nothing was written.
    #[error("replicated transaction {got} is out of order: the chain expects {expected}")]
    OutOfOrder {
        /// The sequence number the chain expects next.
        expected: u64,
        /// The sequence number the transaction was given at.
        got: u64,
    },
    /// A replicated transaction was given at one sequence number but its encoding carries
    /// another. Nothing was written.
    #[error("replicated transaction given as {stated} is encoded as {encoded}")]
    SeqMismatch {
        /// The sequence number it was given at.
        stated: u64,
        /// The sequence number its encoding carries.
        encoded: u64,
    },
    /// `Chain::commit_vouched` on a replica chain: vouches are made by the chain's source,
    /// which commits every transaction of a replica.
    #[error("a replica chain's transactions are vouched for by its source, not by the replica")]
    VouchOnReplica,
    /// The replica chain's [`Upstream`](super::Upstream) could not hand the transaction to
    /// the chain's source; it was not committed (the cause is the error).
    #[error("the chain's source could not be reached; the transaction was not committed: {0}")]
    Unreachable(#[source] BoxError),
    /// The replica chain's [`Upstream`](super::Upstream) lost the chain's source after the
    /// transaction was sent and before its outcome arrived: it may or may not be committed
    /// (read the chain once it has caught up to know).
    #[error("the outcome of the transaction is unknown (it may or may not be committed): {0}")]
    OutcomeUnknown(#[source] BoxError),
    /// The chain's source refused the transaction for a reason with no local equivalent (its
    /// log failed, it is shutting down, or the transaction did not decode there); nothing of it
    /// was committed.
    #[error("the chain's source refused the transaction: {0}")]
    Refused(String),
    /// The commit named a lock grant ([`Fence`](super::Fence)) that is no longer the current
    /// one (released, expired, or taken by another holder since): nothing was written.
    #[error("fenced: the grant {token} of lock {lock:?} is no longer current")]
    Fenced {
        /// The lock.
        lock: String,
        /// The grant's token the commit named.
        token: u64,
    },
    /// The transaction breaks a rule of the chain's schema: a schema record that is malformed,
    /// misplaced or weakens an index, an event written over a schema record, a record of an
    /// indexed type that is encrypted or holds no value for an index, an index made unique
    /// over records that share a value.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// A boxed error from elsewhere (an [`Upstream`](super::Upstream)'s transport).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Reading a chain's committed transactions ([`Chain::read_from`](super::Chain::read_from),
/// [`CommitStream`](super::CommitStream)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The chain was closed (every handle dropped): no transaction will follow.
    #[error("the chain is closed")]
    Closed,
    /// A committed transaction is not held any more (or not yet visible) where the history
    /// looked for it.
    #[error("transaction {seq} is not in the chain's history")]
    Missing {
        /// Its sequence number.
        seq: u64,
    },
    /// A committed transaction does not decode (it was validated when committed: the bytes
    /// held in memory changed).
    #[error("transaction {seq} in the chain's history is malformed: {source}")]
    Malformed {
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
}
