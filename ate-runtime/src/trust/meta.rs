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
//! Transaction trailers (`TxTrailer` tags):
//!
//! | tag | name | value |
//! |---|---|---|
//! | 1 | signature | MessagePack of [`TxSignature`] |
//! | 2 | vouch | MessagePack of [`TxVouch`]: writers a trusted server authenticated (accepted only on chains in [`IntegrityMode::Centralized`](super::IntegrityMode::Centralized)) |
//! | 3 | keys | MessagePack of [`TxKeys`]: the data key of each read key, wrapped once per transaction; each encrypted event binds its entry by [`key_entry_id`] |
//!
//! An event or transaction carrying a tag this build does not know is refused
//! ([`TrustError::UnknownMetadata`]): metadata can change who may read or write, so it is never
//! ignored.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash, NONCE_LEN, PublicSignKey, Signature, WrappedKey};
use crate::event::{Event, MetaEntry, Transaction, TxTrailer};

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

/// Transaction trailer: a signature over event hashes.
pub const TRAILER_SIGNATURE: u16 = 1;
/// Transaction trailer: writers vouched for by a trusted server (centralized integrity).
pub const TRAILER_VOUCH: u16 = 2;
/// Transaction trailer: the wrapped data keys of the transaction's encrypted bodies.
pub const TRAILER_KEYS: u16 = 3;

/// The writers a trusted server vouches for: it authenticated the connection the transaction
/// came on as these keys, so their rights count for every event of the transaction without a
/// signature. Only chains in [`IntegrityMode::Centralized`](super::IntegrityMode::Centralized)
/// accept it; a log holding one is verifiable only by those who trust that server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxVouch {
    /// The chain (as in signatures: a vouch cannot move to another chain).
    pub chain: Hash,
    /// Hashes of the public keys the connection was authenticated as.
    pub writers: Vec<Hash>,
}

/// What a transaction's trailers say: who wrote it, and the wrapped data keys of its bodies.
#[derive(Debug, Clone, Default)]
pub struct TxProofs {
    /// Signatures over event hashes.
    pub signatures: Vec<TxSignature>,
    /// A server's vouch, at most one.
    pub vouch: Option<TxVouch>,
    /// The keys trailer, at most one (checked against the events by verification).
    pub keys: Option<TxKeys>,
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

/// The data key of one read key in one transaction, wrapped for that reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxKey {
    /// The read key (its id, as in [`Confidentiality::read_key`]).
    pub read_key: Hash,
    /// The data key, wrapped (AES-256-GCM for symmetric read keys, NTRU + AES-256-GCM for public
    /// ones); wrapped for `read_key` ([`WrappedKey::reader`]).
    pub wrapped: WrappedKey,
}

/// The keys trailer of a transaction: one entry per read key its bodies are encrypted for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxKeys {
    /// The entries, at most one per read key, each used by at least one event.
    pub keys: Vec<TxKey>,
}

/// Domain separation tag of key entry ids.
pub const KEY_ENTRY_DOMAIN: &[u8] = b"ATE/tx-key/v1";

/// The id an encrypted event binds its key entry by:
/// [`Hash::of_parts`]`([KEY_ENTRY_DOMAIN, MessagePack of the entry])`, the entry encoded as in
/// the trailer (canonical: the trailer must be exactly the encoding of what it decodes to).
pub fn key_entry_id(entry: &TxKey) -> Hash {
    Hash::of_parts(&[KEY_ENTRY_DOMAIN, &encode(entry)])
}

/// A signature by one key over the hashes of some of a transaction's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSignature {
    /// Hash of the chain key the transaction was written for (also inside the signed bytes).
    pub chain: Hash,
    /// The signer's public key (so anyone can verify the log offline).
    pub public_key: PublicSignKey,
    /// Indexes of the events covered, ascending.
    pub covers: Vec<u32>,
    /// The hash of each covered event, in the same order.
    pub hashes: Vec<Hash>,
    /// The signature over [`signed_message`].
    pub signature: Signature,
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

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("metadata types always encode")
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

/// The signatures, vouch and keys trailer of a transaction, refusing unknown trailers.
pub fn proofs_of(tx: &Transaction) -> Result<TxProofs, TrustError> {
    proofs_from(tx.trailers.iter().map(|t| (t.tag, &t.value[..])))
}

/// The proofs in `(tag, value)` trailer entries, as [`proofs_of`] reads them.
pub fn proofs_from<'a>(
    trailers: impl IntoIterator<Item = (u16, &'a [u8])>,
) -> Result<TxProofs, TrustError> {
    let mut proofs = TxProofs::default();
    for (tag, value) in trailers {
        match tag {
            TRAILER_SIGNATURE => proofs.signatures.push(decode(tag, value)?),
            TRAILER_VOUCH if proofs.vouch.is_none() => proofs.vouch = Some(decode(tag, value)?),
            TRAILER_VOUCH => {
                return Err(TrustError::MalformedMetadata {
                    tag,
                    reason: "more than one vouch".into(),
                });
            }
            TRAILER_KEYS if proofs.keys.is_none() => proofs.keys = Some(decode_keys(value)?),
            TRAILER_KEYS => return Err(TrustError::DuplicateKeysTrailer),
            other => return Err(TrustError::UnknownMetadata(other)),
        }
    }
    Ok(proofs)
}

/// The keys trailer of a transaction (`None`: it has none), as [`keys_from`] reads it.
pub fn keys_of(tx: &Transaction) -> Result<Option<TxKeys>, TrustError> {
    Ok(proofs_of(tx)?.keys)
}

/// The keys trailer among `(tag, value)` trailer entries (`None`: there is none), as
/// [`proofs_from`] reads it with the rest. Refuses a second keys trailer, one that does not
/// decode or is not the canonical encoding of what it decodes to, an empty one, two entries for
/// one read key, and an entry whose wrapped key is for another reader than its read key.
pub fn keys_from<'a>(
    trailers: impl IntoIterator<Item = (u16, &'a [u8])>,
) -> Result<Option<TxKeys>, TrustError> {
    Ok(proofs_from(trailers)?.keys)
}

/// One keys trailer's value, checked as [`keys_from`] says.
fn decode_keys(value: &[u8]) -> Result<TxKeys, TrustError> {
    let malformed = |reason: String| TrustError::MalformedKeys { reason };
    let keys: TxKeys = rmp_serde::from_slice(value).map_err(|e| malformed(e.to_string()))?;
    if encode(&keys) != value {
        return Err(malformed(
            "not the canonical encoding of its entries".into(),
        ));
    }
    if keys.keys.is_empty() {
        return Err(malformed("no entries".into()));
    }
    for (i, k) in keys.keys.iter().enumerate() {
        if k.wrapped.reader() != k.read_key {
            return Err(malformed(format!(
                "entry {i} holds a key wrapped for {:?}, not for its read key {:?}",
                k.wrapped.reader(),
                k.read_key
            )));
        }
        if keys.keys[..i].iter().any(|o| o.read_key == k.read_key) {
            return Err(TrustError::DuplicateKeyEntry {
                read_key: k.read_key,
            });
        }
    }
    Ok(keys)
}

/// The trailer carrying a transaction's wrapped data keys.
pub fn keys_trailer(keys: &TxKeys) -> TxTrailer {
    TxTrailer {
        tag: TRAILER_KEYS,
        value: encode(keys).into(),
    }
}

/// The trailer carrying a vouch.
pub fn vouch_trailer(vouch: &TxVouch) -> TxTrailer {
    TxTrailer {
        tag: TRAILER_VOUCH,
        value: encode(vouch).into(),
    }
}

/// The trailer carrying a signature.
pub fn signature_trailer(sig: &TxSignature) -> TxTrailer {
    TxTrailer {
        tag: TRAILER_SIGNATURE,
        value: encode(sig).into(),
    }
}

/// Domain separation tag of transaction signatures.
pub const SIGNATURE_DOMAIN: &[u8] = b"ATE/tx-signature/v1";

/// The exact bytes a transaction signature covers:
/// `domain ‖ algorithm id (u8) ‖ chain hash (32) ‖ count (u32 LE) ‖ (index u32 LE ‖ hash (32))*`.
/// The algorithm id stops a downgrade; the chain hash stops replay on another chain; the indexes
/// stop events being reordered.
pub fn signed_message(alg: u8, chain: &Hash, covers: &[u32], hashes: &[Hash]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 37 + 36 * hashes.len());
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.push(alg);
    m.extend_from_slice(chain.as_bytes());
    m.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    for (i, h) in covers.iter().zip(hashes) {
        m.extend_from_slice(&i.to_le_bytes());
        m.extend_from_slice(h.as_bytes());
    }
    m
}

/// The associated data of an encrypted body: binds the ciphertext to its chain and record, so it
/// cannot be moved to another record or chain.
pub fn body_aad(chain_key: &str, key: &crate::event::PrimaryKey) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + chain_key.len() + 16);
    a.extend_from_slice(b"ATE/body/v1");
    a.extend_from_slice(&(chain_key.len() as u16).to_le_bytes());
    a.extend_from_slice(chain_key.as_bytes());
    a.extend_from_slice(&key.to_bytes());
    a
}
