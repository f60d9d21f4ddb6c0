//! The chain of trust: who may read and write each record, and the checks every transaction
//! passes before it enters a chain (when committed, when a log is replayed, when a server
//! receives it).
//!
//! - [`Authorization`] carries a record's [`ReadOption`] and [`WriteOption`]; `Inherit` walks
//!   parent links up to the chain root, whose writers are the chain's root keys.
//! - Transactions are signed once per signing key over their digest: every event's hash, every
//!   proof's coverage, the keys trailer and the key directory (the encodings are in
//!   [`unstable::meta`](crate::unstable::meta) and `docs/FORMAT.md`).
//! - [`TrustPolicy`] checks signatures, write rights (moves included), versions (replays), that
//!   protected records are encrypted for their reader, that each encrypted event binds its
//!   transaction's wrapped data key by id, and that the key directory holds exactly the public
//!   read keys the rules name.
//! - [`Validator`], [`Linter`] and [`Transformer`] are the plugin traits.
//!
//! This layer knows nothing about files or sockets.

mod auth;
mod error;
mod keys;
pub(crate) mod meta;
mod plugin;
pub(crate) mod trailers;
mod validate;

pub use auth::{Authorization, PublicReadKey, ReadKey, ReadOption, WriteOption};
pub use error::TrustError;
pub(crate) use keys::{check_directory, check_directory_of, check_keys, check_keys_of};
pub(crate) use plugin::refuse;
pub use plugin::{EXTENSION_TAG_BASE, Linter, Transformer, ValidationContext, Validator};
pub(crate) use validate::{EventKeys, Overlay, Verified};
pub use validate::{
    IntegrityMode, MAX_INHERIT_DEPTH, RecordState, TrustLookup, TrustPolicy, all_signers,
};

impl crate::event::Event {
    /// The explicit read and write rules this event gives its record (`None`: inherit /
    /// inherit), as its metadata states them: what a [`Validator`] checks a record's rules
    /// against.
    ///
    /// # Errors
    ///
    /// [`TrustError::MalformedMetadata`], [`TrustError::UnknownMetadata`] or
    /// [`TrustError::RetiredMetadata`] for metadata that does not decode (a chain refuses
    /// such an event before any validator sees it).
    pub fn authorization(&self) -> Result<Option<Authorization>, TrustError> {
        meta::EventTrust::of(self).map(|t| t.auth)
    }
}
