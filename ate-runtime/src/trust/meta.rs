//! The metadata entries the trust layer adds to events and transactions, and their encodings.
//!
//! Event metadata (`MetaEntry` tags):
//!
//! | tag | name | value |
//! |---|---|---|
//! | 1 | authorization | MessagePack of [`Authorization`] (absent: inherit / inherit) |
//! | 2 | previous version | u64 LE: sequence number of the transaction that wrote the version this event replaces (absent: a new record) |
//! | 3 | confidentiality | MessagePack of [`Confidentiality`]; the body is then AES-256-GCM ciphertext |
//! | 4 | transforms | u16 LE ids of the body transformers applied, in order (absent: none) |
//!
//! Transaction trailers (`TxTrailer` tags):
//!
//! | tag | name | value |
//! |---|---|---|
//! | 1 | signature | MessagePack of [`TxSignature`] |
//! | 2 | vouch | MessagePack of [`TxVouch`]: writers a trusted server authenticated (accepted only on chains in [`IntegrityMode::Centralized`](super::IntegrityMode::Centralized)) |
//!
//! An event or transaction carrying a tag this build does not know is refused
//! ([`TrustError::UnknownMetadata`]): metadata can change who may read or write, so it is never
//! ignored.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash, PublicSignKey, Signature, WrappedKey};
use crate::event::{Event, MetaEntry, Transaction, TxTrailer};

use super::{Authorization, TrustError};

/// Event metadata: the record's read and write rules.
pub const TAG_AUTHORIZATION: u16 = 1;
/// Event metadata: the version this event replaces.
pub const TAG_PREVIOUS: u16 = 2;
/// Event metadata: how the body is encrypted.
pub const TAG_CONFIDENTIALITY: u16 = 3;
/// Event metadata: body transformers applied.
pub const TAG_TRANSFORMS: u16 = 4;
/// Whether a body is not the plaintext (encrypted or transformed), given which metadata tags an
/// event carries: such bodies are not indexed.
pub fn is_sealed(mut has: impl FnMut(u16) -> bool) -> bool {
    has(TAG_CONFIDENTIALITY) || has(TAG_TRANSFORMS)
}

/// Transaction trailer: a signature over event hashes.
pub const TRAILER_SIGNATURE: u16 = 1;
/// Transaction trailer: writers vouched for by a trusted server (centralized integrity).
pub const TRAILER_VOUCH: u16 = 2;

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

/// What a transaction's trailers say about who wrote it.
#[derive(Debug, Clone, Default)]
pub struct TxProofs {
    /// Signatures over event hashes.
    pub signatures: Vec<TxSignature>,
    /// A server's vouch, at most one.
    pub vouch: Option<TxVouch>,
}

/// How an event's body is encrypted: a fresh data key, wrapped for the read key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confidentiality {
    /// The read key the data key is wrapped for.
    pub read_key: Hash,
    /// The data key, wrapped (AES-256-GCM for symmetric read keys, NTRU + AES-256-GCM for public
    /// ones).
    pub wrapped: WrappedKey,
    /// The body's AES-256-GCM nonce.
    pub nonce: [u8; 12],
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
/// replaces and the read key its body is encrypted for. Decoded from the metadata
/// ([`EventTrust`]), or handed over by the Dio that just wrote that metadata in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckedMeta {
    /// Explicit read/write rules (`None`: inherit / inherit).
    pub auth: Option<Authorization>,
    /// The sequence number of the version replaced (`None`: a new record).
    pub previous: Option<u64>,
    /// The read key the body is encrypted for (`None`: plaintext).
    pub reader: Option<Hash>,
}

impl From<EventTrust> for CheckedMeta {
    fn from(t: EventTrust) -> Self {
        CheckedMeta {
            auth: t.auth,
            previous: t.previous,
            reader: t.confidentiality.map(|c| c.read_key),
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
                    t.confidentiality = Some(decode(tag, value)?);
                }
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
        if let Some(c) = &self.confidentiality {
            out.push(MetaEntry {
                tag: TAG_CONFIDENTIALITY,
                value: encode(c).into(),
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
        out
    }
}

/// The signatures and vouch of a transaction, refusing unknown trailers.
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
            other => return Err(TrustError::UnknownMetadata(other)),
        }
    }
    Ok(proofs)
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
