//! The trailers that end a transaction, and the digest its proofs sign.
//!
//! | tag | name | value |
//! |---|---|---|
//! | 1 | signature | MessagePack of [`TxSignature`]: one per signing key, ascending by key id |
//! | 2 | vouch | MessagePack of [`TxVouch`]: a pinned server's word for the writers it authenticated (accepted only on chains in [`IntegrityMode::Centralized`](super::IntegrityMode::Centralized)) |
//! | 3 | keys | MessagePack of [`TxKeys`]: the data key of each read key, wrapped once per transaction |
//! | 4 | key directory | MessagePack of [`TxDirectory`]: each NTRU public read key the transaction's rules name |
//!
//! Trailers come in tag order, each tag at most once except signatures; an unknown tag, a
//! duplicate, a value that is not the canonical MessagePack of what it decodes to, or more
//! entries than the caps below is refused. Every signature and the vouch sign one
//! [`tx_digest`]: the chain, every event's hash, every proof's signer and covered events, and
//! the hashes of the keys trailer and the key directory. So no byte of an accepted transaction
//! can change, and no event or trailer be added, dropped or swapped, without breaking every
//! signature it carries (its sequence number aside, which the log assigns).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash, PrivateSignKey, PublicEncryptKey, PublicSignKey, Signature, WrappedKey};
use crate::event::{EventDraft, TxTrailer, codec};

use super::TrustError;

/// Transaction trailer: a signature over the transaction's digest.
pub const TRAILER_SIGNATURE: u16 = 1;
/// Transaction trailer: writers vouched for by a pinned server (centralized integrity).
pub const TRAILER_VOUCH: u16 = 2;
/// Transaction trailer: the wrapped data keys of the transaction's encrypted bodies.
pub const TRAILER_KEYS: u16 = 3;
/// Transaction trailer: the public read keys the transaction's rules name.
pub const TRAILER_DIRECTORY: u16 = 4;

/// Most signatures one transaction may carry (one per signing key).
pub const MAX_SIGNATURES: usize = 32;
/// Most writers one vouch may name.
pub const MAX_VOUCH_WRITERS: usize = 32;
/// Most entries of a keys trailer or a key directory (one per read key).
pub const MAX_READ_KEYS: usize = 1024;

/// Domain separation tag of the transaction digest.
pub const DIGEST_DOMAIN: &[u8] = b"ATE/tx-digest/v2";
/// Domain separation tag of the bytes a transaction signature signs.
pub const SIGNATURE_DOMAIN: &[u8] = b"ATE/tx-signature/v2";
/// Domain separation tag of the bytes a vouch signs.
pub const VOUCH_DOMAIN: &[u8] = b"ATE/tx-vouch/v2";
/// Domain separation tag of key entry ids.
pub const KEY_ENTRY_DOMAIN: &[u8] = b"ATE/tx-key/v1";

/// A signature by one key over a transaction's [`tx_digest`]; it grants that key's rights to
/// the events it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSignature {
    /// Hash of the chain key the transaction was written for (also inside the digest).
    pub chain: Hash,
    /// The signer's public key (so anyone can verify the log offline).
    pub public_key: PublicSignKey,
    /// Indexes of the events whose write rights this signer vouches for, ascending.
    pub covers: Vec<u32>,
    /// The transaction's digest, as the signer computed it.
    pub digest: Hash,
    /// The signature over [`signature_message`]`(digest)`.
    pub signature: Signature,
}

/// A server's word for the writers it authenticated the connection as: their rights count for
/// every event of the transaction without their signatures. Signed by the server's own key,
/// which the chain must pin; accepted only on chains in
/// [`IntegrityMode::Centralized`](super::IntegrityMode::Centralized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxVouch {
    /// The chain (as in signatures: a vouch cannot move to another chain).
    pub chain: Hash,
    /// The server's public key.
    pub server: PublicSignKey,
    /// Ids of the public keys the connection was authenticated as, ascending.
    pub writers: Vec<Hash>,
    /// The transaction's digest, as the server computed it.
    pub digest: Hash,
    /// The server's signature over [`vouch_message`]`(digest)`.
    pub signature: Signature,
}

/// The data key of one read key in one transaction, wrapped for that reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxKey {
    /// The read key (its id, as in [`Confidentiality::read_key`](super::meta::Confidentiality)).
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

/// The key directory of a transaction: every NTRU public read key its events' rules name
/// (rules name them by id), ascending by id, each exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxDirectory {
    /// The keys.
    pub keys: Vec<PublicEncryptKey>,
}

/// The id an encrypted event binds its key entry by:
/// `Hash::of_parts([KEY_ENTRY_DOMAIN, MessagePack of the entry])`, the entry encoded as in the
/// trailer (canonical: the trailer must be exactly the encoding of what it decodes to).
pub fn key_entry_id(entry: &TxKey) -> Hash {
    Hash::of_parts(&[KEY_ENTRY_DOMAIN, &encode(entry)])
}

/// What a transaction's trailers say, decoded and checked for form (not yet against its events).
#[derive(Debug, Clone, Default)]
pub struct TxProofs {
    /// Signatures, ascending by signer id.
    pub signatures: Vec<TxSignature>,
    /// A server's vouch, at most one.
    pub vouch: Option<TxVouch>,
    /// The keys trailer, at most one.
    pub keys: Option<TxKeys>,
    /// The key directory, at most one.
    pub directory: Option<TxDirectory>,
    /// SHA3-256 of the keys trailer's value (what the digest commits to).
    pub keys_hash: Option<Hash>,
    /// SHA3-256 of the key directory's value.
    pub directory_hash: Option<Hash>,
}

impl TxProofs {
    /// Whether anyone signed or vouched for the transaction (then its digest is checked).
    pub fn is_signed(&self) -> bool {
        !self.signatures.is_empty() || self.vouch.is_some()
    }

    /// What the transaction's digest commits to besides its events.
    pub fn claims(&self) -> TxClaims<'_> {
        TxClaims {
            signers: self
                .signatures
                .iter()
                .map(|s| SignerClaim {
                    algorithm: s.public_key.algorithm().as_u8(),
                    signer: s.public_key.hash(),
                    covers: &s.covers,
                })
                .collect(),
            vouch: self.vouch.as_ref().map(|v| VouchClaim {
                server: v.server.hash(),
                writers: &v.writers,
            }),
            keys: self.keys_hash,
            directory: self.directory_hash,
        }
    }
}

/// What a transaction's digest commits to besides its events: who signs what, who vouches for
/// whom, and the hashes of the keys trailer and the key directory.
#[derive(Debug, Clone, Default)]
pub struct TxClaims<'a> {
    /// The signatures, in trailer order.
    pub signers: Vec<SignerClaim<'a>>,
    /// The vouch.
    pub vouch: Option<VouchClaim<'a>>,
    /// SHA3-256 of the keys trailer's value.
    pub keys: Option<Hash>,
    /// SHA3-256 of the key directory's value.
    pub directory: Option<Hash>,
}

/// One signature's claim: its algorithm, its signer and the events it covers.
#[derive(Debug, Clone, Copy)]
pub struct SignerClaim<'a> {
    /// The signing algorithm's id.
    pub algorithm: u8,
    /// The signer's public key id.
    pub signer: Hash,
    /// The events covered, ascending.
    pub covers: &'a [u32],
}

/// The vouch's claim: the server and the writers it vouches for.
#[derive(Debug, Clone, Copy)]
pub struct VouchClaim<'a> {
    /// The server's public key id.
    pub server: Hash,
    /// The writers, ascending.
    pub writers: &'a [Hash],
}

/// The digest every proof of a transaction signs (see `docs/FORMAT.md`):
///
/// ```text
/// SHA3-256( "ATE/tx-digest/v2" ‖ chain hash (32)
///   ‖ event count (u32) ‖ event hash (32) × count
///   ‖ signature count (u16) ‖ (algorithm id (u8) ‖ signer id (32) ‖ covered count (u32) ‖ index (u32) × covered) × signatures
///   ‖ 0 | 1 ‖ server id (32) ‖ writer count (u16) ‖ writer id (32) × writers     (vouch)
///   ‖ 0 | 1 ‖ SHA3-256 of the keys trailer's value                               (keys)
///   ‖ 0 | 1 ‖ SHA3-256 of the key directory's value )                            (directory)
/// ```
///
/// Integers little-endian; `0 |` is a byte 0 when the part is absent, `1 ‖ …` when present.
pub fn tx_digest(chain: &Hash, events: &[Hash], claims: &TxClaims<'_>) -> Hash {
    let covered: usize = claims.signers.iter().map(|s| 37 + 4 * s.covers.len()).sum();
    let mut m = Vec::with_capacity(DIGEST_DOMAIN.len() + 120 + 32 * events.len() + covered);
    m.extend_from_slice(DIGEST_DOMAIN);
    m.extend_from_slice(chain.as_bytes());
    m.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for h in events {
        m.extend_from_slice(h.as_bytes());
    }
    m.extend_from_slice(&(claims.signers.len() as u16).to_le_bytes());
    for s in &claims.signers {
        m.push(s.algorithm);
        m.extend_from_slice(s.signer.as_bytes());
        m.extend_from_slice(&(s.covers.len() as u32).to_le_bytes());
        for i in s.covers {
            m.extend_from_slice(&i.to_le_bytes());
        }
    }
    match &claims.vouch {
        None => m.push(0),
        Some(v) => {
            m.push(1);
            m.extend_from_slice(v.server.as_bytes());
            m.extend_from_slice(&(v.writers.len() as u16).to_le_bytes());
            for w in v.writers {
                m.extend_from_slice(w.as_bytes());
            }
        }
    }
    for part in [&claims.keys, &claims.directory] {
        match part {
            None => m.push(0),
            Some(h) => {
                m.push(1);
                m.extend_from_slice(h.as_bytes());
            }
        }
    }
    Hash::of(&m)
}

/// The bytes a transaction signature signs: `"ATE/tx-signature/v2" ‖ digest`.
pub fn signature_message(digest: &Hash) -> Vec<u8> {
    [SIGNATURE_DOMAIN, digest.as_bytes()].concat()
}

/// The bytes a vouch signs: `"ATE/tx-vouch/v2" ‖ digest`.
pub fn vouch_message(digest: &Hash) -> Vec<u8> {
    [VOUCH_DOMAIN, digest.as_bytes()].concat()
}

fn decode<T: DeserializeOwned>(tag: u16, bytes: &[u8]) -> Result<T, TrustError> {
    rmp_serde::from_slice(bytes).map_err(|e| TrustError::MalformedMetadata {
        tag,
        reason: e.to_string(),
    })
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("metadata types always encode")
}

/// Decodes a trailer value that must be exactly the encoding of what it decodes to, so that no
/// byte of it can change without changing what it says.
fn decode_canonical<T: DeserializeOwned + Serialize>(
    tag: u16,
    bytes: &[u8],
) -> Result<T, TrustError> {
    let value: T = decode(tag, bytes)?;
    if encode(&value) != bytes {
        return Err(TrustError::MalformedMetadata {
            tag,
            reason: "not the canonical encoding of its value".into(),
        });
    }
    Ok(value)
}

/// Decodes and checks the form of a transaction's trailers (`(tag, value)` entries, in order):
/// tag order, one trailer per tag but signatures, canonical encodings, the caps, signatures
/// ascending by signer (one per key), vouch writers ascending, a keys trailer whose entries
/// are each wrapped for their read key, a directory ascending by key id. Nothing is checked
/// against the events here.
pub fn proofs_from<'a>(
    trailers: impl IntoIterator<Item = (u16, &'a [u8])>,
) -> Result<TxProofs, TrustError> {
    let mut proofs = TxProofs::default();
    let mut last_tag = 0u16;
    for (tag, value) in trailers {
        if tag < last_tag {
            return Err(TrustError::TrailerOrder {
                tag,
                after: last_tag,
            });
        }
        match tag {
            TRAILER_SIGNATURE => add_signature(&mut proofs.signatures, value)?,
            TRAILER_VOUCH if proofs.vouch.is_none() => proofs.vouch = Some(decode_vouch(value)?),
            TRAILER_KEYS if proofs.keys.is_none() => {
                proofs.keys = Some(decode_keys(value)?);
                proofs.keys_hash = Some(Hash::of(value));
            }
            TRAILER_DIRECTORY if proofs.directory.is_none() => {
                proofs.directory = Some(decode_directory(value)?);
                proofs.directory_hash = Some(Hash::of(value));
            }
            TRAILER_KEYS => return Err(TrustError::DuplicateKeysTrailer),
            TRAILER_VOUCH | TRAILER_DIRECTORY => {
                return Err(TrustError::MalformedMetadata {
                    tag,
                    reason: "more than one trailer of this kind".into(),
                });
            }
            other => return Err(TrustError::UnknownMetadata(other)),
        }
        last_tag = tag;
    }
    Ok(proofs)
}

fn add_signature(signatures: &mut Vec<TxSignature>, value: &[u8]) -> Result<(), TrustError> {
    if signatures.len() == MAX_SIGNATURES {
        return Err(TrustError::TooManySignatures {
            max: MAX_SIGNATURES,
        });
    }
    let sig: TxSignature = decode_canonical(TRAILER_SIGNATURE, value)?;
    if let Some(prev) = signatures.last() {
        let (before, signer) = (prev.public_key.hash(), sig.public_key.hash());
        if before == signer {
            return Err(TrustError::DuplicateSigner { signer });
        }
        if before > signer {
            return Err(TrustError::TrailerOrder {
                tag: TRAILER_SIGNATURE,
                after: TRAILER_SIGNATURE,
            });
        }
    }
    signatures.push(sig);
    Ok(())
}

fn decode_vouch(value: &[u8]) -> Result<TxVouch, TrustError> {
    let vouch: TxVouch = decode_canonical(TRAILER_VOUCH, value)?;
    if vouch.writers.len() > MAX_VOUCH_WRITERS {
        return Err(TrustError::MalformedMetadata {
            tag: TRAILER_VOUCH,
            reason: format!("more than {MAX_VOUCH_WRITERS} writers"),
        });
    }
    if vouch.writers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(TrustError::MalformedMetadata {
            tag: TRAILER_VOUCH,
            reason: "writers not strictly ascending".into(),
        });
    }
    Ok(vouch)
}

/// One keys trailer's value: canonical, not empty, within the cap, each entry wrapped for its
/// read key, no read key twice.
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
    if keys.keys.len() > MAX_READ_KEYS {
        return Err(malformed(format!("more than {MAX_READ_KEYS} entries")));
    }
    let mut seen: Vec<Hash> = Vec::with_capacity(keys.keys.len());
    for (i, k) in keys.keys.iter().enumerate() {
        if k.wrapped.reader() != k.read_key {
            return Err(malformed(format!(
                "entry {i} holds a key wrapped for {:?}, not for its read key {:?}",
                k.wrapped.reader(),
                k.read_key
            )));
        }
        seen.push(k.read_key);
    }
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        return Err(TrustError::DuplicateKeyEntry { read_key: w[0] });
    }
    Ok(keys)
}

/// One key directory's value: canonical, not empty, within the cap, ascending by key id.
fn decode_directory(value: &[u8]) -> Result<TxDirectory, TrustError> {
    let malformed = |reason: String| TrustError::MalformedDirectory { reason };
    let dir: TxDirectory = rmp_serde::from_slice(value).map_err(|e| malformed(e.to_string()))?;
    if encode(&dir) != value {
        return Err(malformed("not the canonical encoding of its keys".into()));
    }
    if dir.keys.is_empty() {
        return Err(malformed("no keys".into()));
    }
    if dir.keys.len() > MAX_READ_KEYS {
        return Err(malformed(format!("more than {MAX_READ_KEYS} keys")));
    }
    if dir.keys.windows(2).any(|w| w[0].hash() >= w[1].hash()) {
        return Err(malformed("keys not strictly ascending by id".into()));
    }
    Ok(dir)
}

/// The trailer carrying a transaction's wrapped data keys.
pub fn keys_trailer(keys: &TxKeys) -> TxTrailer {
    TxTrailer {
        tag: TRAILER_KEYS,
        value: encode(keys).into(),
    }
}

/// The trailer carrying a transaction's key directory; its keys are sorted by id here.
pub fn directory_trailer(mut dir: TxDirectory) -> TxTrailer {
    dir.keys.sort_unstable_by_key(|k| k.hash());
    dir.keys.dedup_by_key(|k| k.hash());
    TxTrailer {
        tag: TRAILER_DIRECTORY,
        value: encode(&dir).into(),
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

/// The SHA3-256 of each event, as validation computes it from the encoding.
pub fn event_hashes(events: &[EventDraft]) -> Vec<Hash> {
    events
        .iter()
        .map(|e| {
            let mut raw = Vec::with_capacity(codec::encoded_event_len(e));
            codec::encode_event(e, &mut raw);
            Hash::of(&raw)
        })
        .collect()
}

/// A signature that did not verify right after it was made (a fault while signing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signature just made with key {signer:?} does not verify: {reason}")]
pub struct SignFault {
    /// The key that signed.
    pub signer: Hash,
    /// Why it does not verify.
    pub reason: String,
}

/// The proofs to seal a transaction with, before its digest is known.
#[derive(Debug, Default)]
pub struct TxSealer<'k> {
    /// Each signing key and the events it covers (ascending); any order.
    pub signers: Vec<(&'k PrivateSignKey, Vec<u32>)>,
    /// A server key vouching for writers (sorted here).
    pub vouch: Option<(&'k PrivateSignKey, Vec<Hash>)>,
    /// The keys trailer, encoded.
    pub keys: Option<TxTrailer>,
    /// The key directory, encoded.
    pub directory: Option<TxTrailer>,
}

impl TxSealer<'_> {
    /// The transaction's trailers in canonical order: its signatures (ascending by signer) and
    /// vouch over the digest of `events` (the events' hashes) for the chain `chain`, then the
    /// keys trailer and the key directory. Each signature is verified right after it is made.
    pub fn seal(mut self, chain: &Hash, events: &[Hash]) -> Result<Vec<TxTrailer>, SignFault> {
        self.signers.sort_by_key(|(k, _)| k.hash());
        if let Some((_, writers)) = &mut self.vouch {
            writers.sort_unstable();
            writers.dedup();
        }
        let digest = tx_digest(chain, events, &self.claims());
        let mut out = Vec::with_capacity(self.signers.len() + 3);
        for (key, covers) in self.signers {
            let signature = signed(key, &signature_message(&digest))?;
            out.push(signature_trailer(&TxSignature {
                chain: *chain,
                public_key: key.as_public_key(),
                covers,
                digest,
                signature,
            }));
        }
        if let Some((key, writers)) = self.vouch {
            let signature = signed(key, &vouch_message(&digest))?;
            out.push(vouch_trailer(&TxVouch {
                chain: *chain,
                server: key.as_public_key(),
                writers,
                digest,
                signature,
            }));
        }
        out.extend(self.keys);
        out.extend(self.directory);
        Ok(out)
    }
}

impl TxSealer<'_> {
    /// What the digest commits to besides the events.
    fn claims(&self) -> TxClaims<'_> {
        TxClaims {
            signers: self
                .signers
                .iter()
                .map(|(k, covers)| SignerClaim {
                    algorithm: k.algorithm().as_u8(),
                    signer: k.hash(),
                    covers,
                })
                .collect(),
            vouch: self.vouch.as_ref().map(|(k, writers)| VouchClaim {
                server: k.hash(),
                writers,
            }),
            keys: self.keys.as_ref().map(|t| Hash::of(&t.value)),
            directory: self.directory.as_ref().map(|t| Hash::of(&t.value)),
        }
    }
}

/// Signs `msg` with `key` and verifies the signature at once, so a fault while signing never
/// reaches a log.
fn signed(key: &PrivateSignKey, msg: &[u8]) -> Result<Signature, SignFault> {
    #[allow(unused_mut)]
    let mut signature = key.sign(msg);
    #[cfg(test)]
    if faults::take(&key.hash()) {
        let mut bytes = signature.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        signature = Signature::from_parts(signature.algorithm_id(), bytes);
    }
    key.public_key()
        .verify(msg, &signature)
        .map_err(|e| SignFault {
            signer: key.hash(),
            reason: e.to_string(),
        })?;
    Ok(signature)
}

/// Faults injected while signing, for tests of the sign-then-verify check.
#[cfg(test)]
pub(crate) mod faults {
    use std::collections::HashSet;
    use std::sync::{LazyLock, Mutex};

    use crate::crypto::Hash;

    static KEYS: LazyLock<Mutex<HashSet<Hash>>> = LazyLock::new(Default::default);

    /// The next signature made with the key with id `key`, on any thread, comes out damaged.
    pub(crate) fn damage_next(key: Hash) {
        KEYS.lock().expect("not poisoned").insert(key);
    }

    /// Whether to damage this signature by `key`.
    pub(super) fn take(key: &Hash) -> bool {
        KEYS.lock().expect("not poisoned").remove(key)
    }
}
