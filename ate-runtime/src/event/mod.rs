//! The event layer: what one write is, how it is encoded, and its identity.
//!
//! An [`Event`] is one version of one record (or its tombstone). Events travel in a
//! [`Transaction`], which is the unit that is framed in the log, made durable, and later signed.
//! The encoding is canonical (see `docs/FORMAT.md`; the codec is in
//! [`unstable::codec`](crate::unstable::codec)) so the SHA3-256 hash of an event's bytes is its
//! stable identity. This layer knows nothing about storage, trust or the network.

pub(crate) mod codec;
mod error;
mod key;
pub(crate) mod msgpack;
mod types;

pub(crate) use codec::decode_event;
#[cfg(test)]
pub(crate) use codec::{decode_transaction, encode_transaction};
pub use error::DecodeError;
pub use key::{ParsePrimaryKeyError, PrimaryKey};
pub use types::{BodyFormat, Event, EventDraft, MetaEntry, ParentLink, Transaction, TxTrailer};

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
