//! The metadata entries the trust layer adds to events and transactions, and their encodings.
//!
//! Event metadata (`MetaEntry` tags):
//!
//! | tag | name | value |
//! |---|---|---|
//! | 1 | authorization | MessagePack of [`Authorization`] (absent: inherit / inherit) |
//! | 2 | previous version | u64 LE: sequence number of the transaction that wrote the version this event replaces (absent: a new record) |
//! | 3 | (retired) | the confidentiality entry of an older layout, which held the wrapped data key in each event: refused ([`TrustError::RetiredMetadata`]) |
//! | 4 | transforms | u16 LE ids of the body transformers applied, in order (absent: none) |
//! | 5 | confidentiality | [`Confidentiality`], 76 bytes: read key id ‖ key entry id ‖ nonce; the body is then AES-256-GCM ciphertext |
//!
//! Transaction trailers are in [`trailers`](super::trailers) (re-exported here).
//!
//! An event or transaction carrying a tag this build does not know is refused
//! ([`TrustError::UnknownMetadata`]): metadata can change who may read or write, so it is never
//! ignored.

use crate::crypto::{Hash, NONCE_LEN};
use crate::event::{Event, MetaEntry, PrimaryKey, Transaction};

use super::trailers::encode;
pub use super::trailers::*;
use super::{Authorization, TrustError};

/// Event metadata: the record's read and write rules.
pub const TAG_AUTHORIZATION: u16 = 1;
/// Event metadata: the version this event replaces.
pub const TAG_PREVIOUS: u16 = 2;
/// Event metadata, retired: the confidentiality entry of an older layout, which carried the
/// wrapped data key in every event. Refused ([`TrustError::RetiredMetadata`]), never misread.
pub const TAG_RETIRED_CONFIDENTIALITY: u16 = 3;
/// Event metadata: body transformers applied.
pub const TAG_TRANSFORMS: u16 = 4;
/// Event metadata: how the body is encrypted ([`Confidentiality`]).
pub const TAG_CONFIDENTIALITY: u16 = 5;
/// Whether a body is not the plaintext (encrypted or transformed), given which metadata tags an
/// event carries: such bodies are not indexed. (The retired confidentiality tag counts too: such
/// an event is refused, but its body is not plaintext either.)
pub fn is_sealed(mut has: impl FnMut(u16) -> bool) -> bool {
    has(TAG_CONFIDENTIALITY) || has(TAG_TRANSFORMS) || has(TAG_RETIRED_CONFIDENTIALITY)
}

/// How an event's body is encrypted: under the transaction's data key for `read_key`, whose
/// wrapped form is the entry of the transaction's keys trailer ([`TxKeys`]) with id `key_entry`.
///
/// Encoded as exactly [`Confidentiality::LEN`] bytes:
/// `read key id (32) ‖ key entry id (32) ‖ nonce (12)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confidentiality {
    /// The read key the data key is wrapped for.
    pub read_key: Hash,
    /// The [`key_entry_id`] of the transaction's [`TxKey`] holding the wrapped data key. Events
    /// are signed, the trailer is not: this binds each event to exactly that entry.
    pub key_entry: Hash,
    /// The body's AES-256-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Confidentiality {
    /// Length of the encoding.
    pub const LEN: usize = 2 * Hash::LEN + NONCE_LEN;

    /// The encoding: `read key id ‖ key entry id ‖ nonce`.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..Hash::LEN].copy_from_slice(self.read_key.as_bytes());
        out[Hash::LEN..2 * Hash::LEN].copy_from_slice(self.key_entry.as_bytes());
        out[2 * Hash::LEN..].copy_from_slice(&self.nonce);
        out
    }

    /// Decodes [`Confidentiality::to_bytes`]; anything but exactly that length is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrustError> {
        let b: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| TrustError::MalformedMetadata {
                tag: TAG_CONFIDENTIALITY,
                reason: format!("{} bytes, not {}", bytes.len(), Self::LEN),
            })?;
        let hash = |at: usize| {
            let mut h = [0u8; Hash::LEN];
            h.copy_from_slice(&b[at..at + Hash::LEN]);
            Hash::from_bytes(h)
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[2 * Hash::LEN..]);
        Ok(Confidentiality {
            read_key: hash(0),
            key_entry: hash(Hash::LEN),
            nonce,
        })
    }
}

/// The hash naming a chain inside signatures.
pub fn chain_hash(chain_key: &str) -> Hash {
    let mut m = Vec::with_capacity(16 + chain_key.len());
    m.extend_from_slice(b"ATE/chain/v1");
    m.extend_from_slice(chain_key.as_bytes());
    Hash::of(&m)
}

/// The trust metadata of one event, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTrust {
    /// Explicit read/write rules (`None`: inherit / inherit).
    pub auth: Option<Authorization>,
    /// The sequence number of the version replaced (`None`: a new record).
    pub previous: Option<u64>,
    /// Encryption of the body (`None`: plaintext).
    pub confidentiality: Option<Confidentiality>,
    /// Ids of the transformers applied to the plaintext body, in order.
    pub transforms: Vec<u16>,
}

/// What the checks of a commit read of an event's trust metadata: its rules, the version it
/// replaces, the read key its body is encrypted for and the key entry it binds. Decoded from the
/// metadata ([`EventTrust`]), or handed over by the Dio that just wrote that metadata in this
/// process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckedMeta {
    /// Explicit read/write rules (`None`: inherit / inherit).
    pub auth: Option<Authorization>,
    /// The sequence number of the version replaced (`None`: a new record).
    pub previous: Option<u64>,
    /// The read key the body is encrypted for (`None`: plaintext).
    pub reader: Option<Hash>,
    /// The id of the keys-trailer entry holding its wrapped data key (`None`: plaintext).
    pub key_entry: Option<Hash>,
}

impl From<EventTrust> for CheckedMeta {
    fn from(t: EventTrust) -> Self {
        CheckedMeta {
            auth: t.auth,
            previous: t.previous,
            reader: t.confidentiality.map(|c| c.read_key),
            key_entry: t.confidentiality.map(|c| c.key_entry),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(tag: u16, bytes: &[u8]) -> Result<T, TrustError> {
    rmp_serde::from_slice(bytes).map_err(|e| TrustError::MalformedMetadata {
        tag,
        reason: e.to_string(),
    })
}

impl EventTrust {
    /// Reads the trust metadata of an event, refusing unknown tags and duplicates.
    pub fn of(ev: &Event) -> Result<Self, TrustError> {
        Self::from_entries(ev.meta.iter().map(|m| (m.tag, &m.value[..])))
    }

    /// Reads trust metadata from `(tag, value)` entries, as [`EventTrust::of`] does.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (u16, &'a [u8])>,
    ) -> Result<Self, TrustError> {
        let mut t = EventTrust::default();
        for (tag, value) in entries {
            match tag {
                TAG_AUTHORIZATION if t.auth.is_none() => {
                    t.auth = Some(decode(tag, value)?);
                }
                TAG_PREVIOUS if t.previous.is_none() => {
                    let b: [u8; 8] =
                        value
                            .try_into()
                            .map_err(|_| TrustError::MalformedMetadata {
                                tag,
                                reason: "previous version is 8 bytes".into(),
                            })?;
                    t.previous = Some(u64::from_le_bytes(b));
                }
                TAG_CONFIDENTIALITY if t.confidentiality.is_none() => {
                    t.confidentiality = Some(Confidentiality::from_bytes(value)?);
                }
                TAG_RETIRED_CONFIDENTIALITY => return Err(TrustError::RetiredMetadata(tag)),
                TAG_TRANSFORMS if t.transforms.is_empty() => {
                    if value.is_empty() || !value.len().is_multiple_of(2) {
                        return Err(TrustError::MalformedMetadata {
                            tag,
                            reason: "transform ids are u16 values".into(),
                        });
                    }
                    t.transforms = value
                        .chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                }
                TAG_AUTHORIZATION | TAG_PREVIOUS | TAG_CONFIDENTIALITY | TAG_TRANSFORMS => {
                    return Err(TrustError::MalformedMetadata {
                        tag,
                        reason: "duplicate entry".into(),
                    });
                }
                other if other >= super::EXTENSION_TAG_BASE => {}
                other => return Err(TrustError::UnknownMetadata(other)),
            }
        }
        Ok(t)
    }

    /// The metadata entries for these values, in tag order.
    pub fn to_meta(&self) -> Vec<MetaEntry> {
        let mut out = Vec::new();
        if let Some(a) = &self.auth {
            out.push(MetaEntry {
                tag: TAG_AUTHORIZATION,
                value: encode(a).into(),
            });
        }
        if let Some(p) = self.previous {
            out.push(MetaEntry {
                tag: TAG_PREVIOUS,
                value: p.to_le_bytes().to_vec().into(),
            });
        }
        if !self.transforms.is_empty() {
            let ids: Vec<u8> = self
                .transforms
                .iter()
                .flat_map(|i| i.to_le_bytes())
                .collect();
            out.push(MetaEntry {
                tag: TAG_TRANSFORMS,
                value: ids.into(),
            });
        }
        if let Some(c) = &self.confidentiality {
            out.push(MetaEntry {
                tag: TAG_CONFIDENTIALITY,
                value: c.to_bytes().to_vec().into(),
            });
        }
        out
    }
}

/// The proofs and keys of a transaction, decoded and checked for form ([`proofs_from`]).
pub fn proofs_of(tx: &Transaction) -> Result<TxProofs, TrustError> {
    proofs_from(tx.trailers.iter().map(|t| (t.tag, &t.value[..])))
}

/// The keys trailer among `(tag, value)` trailer entries (`None`: there is none), as
/// [`proofs_from`] reads it with the rest.
pub fn keys_from<'a>(
    trailers: impl IntoIterator<Item = (u16, &'a [u8])>,
) -> Result<Option<TxKeys>, TrustError> {
    Ok(proofs_from(trailers)?.keys)
}

/// Domain separation tag of the associated data of encrypted bodies.
pub const BODY_DOMAIN: &[u8] = b"ATE/body/v2";

/// The associated data of an encrypted body: binds the ciphertext to its chain, its record, the
/// version it replaces, its type and the key entry holding its data key. So it cannot be moved
/// to another record or chain, relabelled as another type, nor copied into a later version of
/// the same record (a writer without the read key cannot roll a record back to an old
/// content: readers get `DecryptFailed`).
///
/// `"ATE/body/v2" ‖ chain key length (u16 LE) ‖ chain key ‖ primary key (16) ‖ previous
/// version (u64 LE, 0 for a new record) ‖ key entry id (32) ‖ type name length (u16 LE) ‖ type
/// name`.
pub fn body_aad(
    chain_key: &str,
    key: &PrimaryKey,
    previous: Option<u64>,
    key_entry: &Hash,
    type_name: &str,
) -> Vec<u8> {
    let mut a = Vec::with_capacity(BODY_DOMAIN.len() + 2 + chain_key.len() + 58 + type_name.len());
    a.extend_from_slice(BODY_DOMAIN);
    a.extend_from_slice(&(chain_key.len() as u16).to_le_bytes());
    a.extend_from_slice(chain_key.as_bytes());
    a.extend_from_slice(&key.to_bytes());
    a.extend_from_slice(&previous.unwrap_or(0).to_le_bytes());
    a.extend_from_slice(key_entry.as_bytes());
    a.extend_from_slice(&(type_name.len() as u16).to_le_bytes());
    a.extend_from_slice(type_name.as_bytes());
    a
}
