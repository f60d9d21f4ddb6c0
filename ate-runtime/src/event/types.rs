//! Event and transaction values.

use std::borrow::Cow;

use bytes::Bytes;

use super::PrimaryKey;
use super::error::DecodeError;
use crate::crypto::Hash;

/// Where a record hangs in the tree: under `parent`, in its collection `collection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParentLink {
    /// The parent record.
    pub parent: PrimaryKey,
    /// Which of the parent's collections (a `DaoVec` id).
    pub collection: u64,
}

/// How a body is encoded. The id is part of the event bytes, so a reader never guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum BodyFormat {
    /// MessagePack through `rmp-serde` (struct fields as arrays).
    MessagePack = 1,
}

impl TryFrom<u8> for BodyFormat {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(BodyFormat::MessagePack),
            other => Err(DecodeError::UnknownBodyFormat(other)),
        }
    }
}

/// A tagged metadata entry of an event (authorization, encryption, signatures, ...).
///
/// The event layer carries entries without interpreting them; the trust layer owns the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// What the entry is.
    pub tag: u16,
    /// Its encoded value.
    pub value: Bytes,
}

/// A tagged entry that belongs to a whole transaction (e.g. a signature over its event hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTrailer {
    /// What the entry is.
    pub tag: u16,
    /// Its encoded value.
    pub value: Bytes,
}

/// An event being written: owned fields, encoded once when its transaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// The record this event is a version (or tombstone) of.
    pub key: PrimaryKey,
    /// Milliseconds since the Unix epoch, at staging time.
    pub timestamp_ms: u64,
    /// A tombstone deletes the record.
    pub tombstone: bool,
    /// The record's place in the tree.
    pub parent: Option<ParentLink>,
    /// The stable type name of the body.
    pub type_name: Cow<'static, str>,
    /// How the body is encoded.
    pub format: BodyFormat,
    /// Metadata entries, in order.
    pub meta: Vec<MetaEntry>,
    /// The encoded value; `None` for tombstones.
    pub body: Option<Bytes>,
}

/// An event read back from its bytes. Its fields share the buffer it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The exact encoded bytes (what the hash covers).
    pub raw: Bytes,
    /// The record this event is a version (or tombstone) of.
    pub key: PrimaryKey,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// A tombstone deletes the record.
    pub tombstone: bool,
    /// The record's place in the tree.
    pub parent: Option<ParentLink>,
    /// UTF-8 bytes of the type name (checked at decode).
    pub type_name: Bytes,
    /// How the body is encoded.
    pub format: BodyFormat,
    /// Metadata entries, in order.
    pub meta: Vec<MetaEntry>,
    /// The encoded value; `None` for tombstones.
    pub body: Option<Bytes>,
}

impl Event {
    /// The event's identity: SHA3-256 of its canonical bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.raw)
    }

    /// The type name as text (validated when decoded).
    pub fn type_name(&self) -> &str {
        std::str::from_utf8(&self.type_name).unwrap_or("")
    }

    /// The event as a draft with the same fields (re-encoding it gives the same bytes).
    pub fn to_draft(&self) -> EventDraft {
        EventDraft {
            key: self.key,
            timestamp_ms: self.timestamp_ms,
            tombstone: self.tombstone,
            parent: self.parent,
            type_name: Cow::Owned(self.type_name().to_string()),
            format: self.format,
            meta: self.meta.clone(),
            body: self.body.clone(),
        }
    }

    /// The first metadata entry with this tag.
    pub fn meta(&self, tag: u16) -> Option<&Bytes> {
        self.meta.iter().find(|m| m.tag == tag).map(|m| &m.value)
    }
}

/// A decoded transaction: the unit of atomicity, durability and (later) signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Position of the transaction in its chain (1, 2, 3, ... without gaps).
    pub seq: u64,
    /// The events, in order.
    pub events: Vec<Event>,
    /// Whole-transaction entries (signatures).
    pub trailers: Vec<TxTrailer>,
}
