//! Extension points registered on a `ChainBuilder`: validators, linters and transformers.

use crate::crypto::Hash;
use crate::event::{EventDraft, MetaEntry, Transaction};

use super::{TrustError, TrustLookup, TrustPolicy};

/// What a validator sees besides the transaction.
pub struct ValidationContext<'a> {
    /// The chain's rules.
    pub policy: &'a TrustPolicy,
    /// The records as they are before this transaction (and after the ones ahead of it in the
    /// same group commit).
    pub lookup: &'a dyn TrustLookup,
    /// The sequence number the transaction will have.
    pub seq: u64,
    /// For each event, the public-key hashes of the keys whose signatures cover it.
    pub signers: &'a [Vec<Hash>],
}

impl std::fmt::Debug for ValidationContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationContext")
            .field("seq", &self.seq)
            .finish()
    }
}

/// Decides whether a transaction may enter the chain. Runs after the built-in checks
/// (signatures, rights, versions), before anything is written; runs again when the log is
/// replayed, so it must be deterministic.
pub trait Validator: Send + Sync + 'static {
    /// A name for errors and logs.
    fn name(&self) -> &str;
    /// `Ok(())` to accept; an error refuses the whole transaction.
    fn validate(&self, ctx: &ValidationContext<'_>, tx: &Transaction) -> Result<(), String>;
}

/// Adds metadata to events as they are written (before hashing and signing). Tags must be
/// extension tags (≥ [`EXTENSION_TAG_BASE`]); the core refuses unknown core tags.
pub trait Linter: Send + Sync + 'static {
    /// A name for errors and logs.
    fn name(&self) -> &str;
    /// Metadata to append to this event.
    fn lint(&self, event: &EventDraft) -> Vec<MetaEntry>;
}

/// Transforms bodies on the way into and out of the log (e.g. compression). Applied to the
/// plaintext before encryption, and reversed after decryption. Each transformer has a stable id,
/// recorded in every event it transformed, so old events stay readable.
pub trait Transformer: Send + Sync + 'static {
    /// A stable id (recorded in events; never reuse one for another transformation).
    fn id(&self) -> u16;
    /// Forward transformation.
    fn encode(&self, body: &[u8]) -> Result<Vec<u8>, String>;
    /// Inverse transformation.
    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, String>;
}

/// Metadata tags from this value on belong to plugins; the core ignores them.
pub const EXTENSION_TAG_BASE: u16 = 0x8000;

pub(crate) fn refuse(name: &str, reason: String) -> TrustError {
    TrustError::Refused {
        validator: name.to_string(),
        reason,
    }
}
