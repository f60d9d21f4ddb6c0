//! The write path of a commit: rules, versions, encryption, hashes and signatures.
//!
//! For each staged write, in order: the version it replaces, its effective read rule and the
//! write rule it must satisfy are computed against the view plus the writes ahead of it in the
//! same transaction (under the view's read lock, which is cheap); then, without the lock, bodies
//! are transformed and encrypted (one fresh data key per read key per transaction, wrapped once
//! into the transaction's keys trailer, each event binding its entry by id), events are encoded
//! and hashed, and each signing key signs once over the hashes it covers.
//! The per-event work of a large transaction (from [`PARALLEL_MIN_EVENTS`] events) is split in
//! contiguous chunks over the available cores; the result, and the error reported when an event
//! fails, are the same as when sealed on one thread.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::DioError;
use super::staging::{FastMap, Staged};
use crate::chain::Chain;
use crate::crypto::{Cipher, EncryptKey, Hash, PrivateSignKey, TAG_LEN};
use crate::event::codec::{self, EventHead};
use crate::event::{BodyFormat, PrimaryKey, TxTrailer, now_ms};
use crate::log::FRAME_HEADER_LEN;
use crate::session::AteSession;
use crate::trust::meta::{
    CheckedMeta, Confidentiality, EventTrust, TAG_AUTHORIZATION, TAG_CONFIDENTIALITY, TAG_PREVIOUS,
    TAG_TRANSFORMS, TxKey, TxKeys, TxSignature, body_aad, key_entry_id, keys_trailer,
    signature_trailer, signed_message,
};
use crate::trust::{
    Authorization, Overlay, ReadKey, ReadOption, RecordState, TrustLookup, WriteOption,
};

/// A transaction ready for the writer.
pub(super) struct Sealed {
    /// The encoded transaction, its sequence number left 0 for the writer to fill in, after
    /// room for its frame header (see `Chain::commit`).
    pub payload: Vec<u8>,
    pub hashes: Option<Vec<Hash>>,
    /// What each event's trust metadata says, as written here (`None` when linters added
    /// metadata of their own: the writer then decodes it all).
    pub trust: Option<Vec<CheckedMeta>>,
}

struct Planned<'a> {
    key: PrimaryKey,
    op: &'a Staged,
    previous: Option<u64>,
    read: ReadOption,
    /// The id of the session key that signs this event.
    signer: Option<Hash>,
}

pub(super) fn seal(
    chain: &Chain,
    session: &AteSession,
    versions: &FastMap<PrimaryKey, u64>,
    ops: &[(PrimaryKey, Staged)],
) -> Result<Sealed, DioError> {
    let policy = chain.policy();
    // Phase 1, under the read lock: versions and rules.
    let mut signing_keys: FastMap<Hash, PrivateSignKey> = FastMap::default();
    let planned: Vec<Planned<'_>> = {
        let view = chain.view().read();
        let mut overlay = Overlay::with_capacity(ops.len());
        let mut last_signer: Option<(WriteOption, Hash)> = None;
        let mut last_auth: Option<Arc<Authorization>> = None;
        let mut out = Vec::with_capacity(ops.len());
        for (key, op) in ops {
            let key = *key;
            let lookup = overlay.over(&*view);
            let current = lookup.record(&key);
            // The newest version this Dio knows of: the one its Dao was read at, or the one it
            // committed itself since.
            let previous = current.as_ref().filter(|c| c.seq != 0).map(|c| {
                op.previous
                    .max(versions.get(&key).copied())
                    .unwrap_or(c.seq)
            });
            let parent = op.parent.map(|l| l.parent).or_else(|| {
                if op.body.is_none() {
                    current.as_ref().and_then(|c| c.parent)
                } else {
                    None
                }
            });
            let rule = policy.required_rule(&lookup, current, parent.as_ref());
            let signer = match rule.get(policy) {
                WriteOption::Everyone => None,
                WriteOption::Nobody => return Err(DioError::Final { key }),
                // Records written together mostly need the same rule: the same key signs.
                r if last_signer.as_ref().is_some_and(|(last, _)| last == r) => {
                    last_signer.as_ref().map(|(_, id)| *id)
                }
                r => {
                    let k = session
                        .write_keys()
                        .find(|k| r.allows(&k.hash()))
                        .ok_or(DioError::MissingWriteKey { key })?;
                    let id = k.hash();
                    // Each signing key is copied once per transaction, not once per event.
                    signing_keys.entry(id).or_insert_with(|| k.clone());
                    last_signer = Some((r.clone(), id));
                    Some(id)
                }
            };
            let explicit = (!op.auth.is_inherit()).then_some(&op.auth);
            let read = policy.read_for(&lookup, explicit, parent.as_ref());
            drop(lookup);
            let state = op.body.as_ref().map(|_| RecordState {
                // Written by this transaction: its number is not known yet and is never 0.
                seq: 0,
                parent,
                // Records written together mostly share their rules, and then one allocation.
                auth: explicit.map(|a| match &last_auth {
                    Some(last) if **last == *a => last.clone(),
                    _ => {
                        let new = Arc::new(a.clone());
                        last_auth = Some(new.clone());
                        new
                    }
                }),
            });
            overlay.set(key, state);
            out.push(Planned {
                key,
                op,
                previous,
                read,
                signer,
            });
        }
        out
    };

    // Phase 2, without locks: bodies, metadata, hashes, signatures.
    let chain_key = chain.key().as_str();
    let readers = data_keys(session, &planned);
    let mut signers: BTreeMap<Hash, (PrivateSignKey, Vec<u32>)> = BTreeMap::new();
    let jobs: Vec<Planned<'_>> = planned
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            if let Some(id) = p.signer.take() {
                if let Some(k) = signing_keys.remove(&id) {
                    signers.insert(id, (k, Vec::new()));
                }
                if let Some((_, covers)) = signers.get_mut(&id) {
                    covers.push(i as u32);
                }
            }
            p
        })
        .collect();
    let ctx = EventSealer {
        chain,
        chain_key,
        readers: &readers,
        timestamp_ms: now_ms(),
        hash: !signers.is_empty(),
    };
    let (payload, hashes, trust) = ctx.seal_all(jobs)?;
    // Every data key made was used: each read key comes from an event whose body was encrypted.
    let keys = readers_trailer(readers);
    let trust = chain.linters().is_empty().then_some(trust);

    let Some(hashes) = hashes else {
        let trailers: Vec<TxTrailer> = keys.into_iter().collect();
        return Ok(Sealed {
            payload: finish(payload, &trailers),
            hashes: None,
            trust,
        });
    };
    let chain_hash = *policy.chain_hash();
    let mut trailers: Vec<TxTrailer> = signers
        .into_values()
        .map(|(key, covers)| {
            let covered: Vec<Hash> = covers.iter().map(|i| hashes[*i as usize]).collect();
            let public_key = key.as_public_key();
            let msg = signed_message(
                public_key.algorithm().as_u8(),
                &chain_hash,
                &covers,
                &covered,
            );
            let signature = key.sign(&msg);
            // Each signature is verified where it is made, on the committing task (in parallel
            // with other committers), so a fault while signing never reaches the log; the
            // chain's single writer then takes it as verified, like the hashes.
            public_key
                .verify(&msg, &signature)
                .map_err(|e| DioError::SignatureSelfCheck {
                    signer: public_key.hash(),
                    reason: e.to_string(),
                })?;
            Ok(signature_trailer(&TxSignature {
                chain: chain_hash,
                public_key,
                covers,
                hashes: covered,
                signature,
            }))
        })
        .collect::<Result<_, DioError>>()?;
    trailers.extend(keys);
    Ok(Sealed {
        payload: finish(payload, &trailers),
        hashes: Some(hashes),
        trust,
    })
}

/// Ends a payload with its trailers. The view keeps the buffer as long as the records written
/// by the transaction: room reserved and not used is given back (shrinking a buffer in place
/// does not copy it).
fn finish(mut payload: Vec<u8>, trailers: &[TxTrailer]) -> Vec<u8> {
    codec::encode_trailers(&mut payload, trailers);
    payload.shrink_to_fit();
    payload
}

/// Below this many events a transaction is sealed on the committing thread alone; from it on,
/// its events are split over the available cores (spawning the helpers costs tens of
/// microseconds, hashing and encrypting a 1 KiB event about six).
const PARALLEL_MIN_EVENTS: usize = 64;

/// At most this many threads seal one transaction.
const MAX_SEAL_THREADS: usize = 8;

/// How the bodies written for one read key are sealed in this transaction: a fresh data key
/// (expanded once), wrapped once for the reader into the transaction's keys trailer.
struct ReaderSeal {
    cipher: Cipher,
    /// The id each event binds the entry by.
    key_entry: Hash,
    entry: TxKey,
}

impl ReaderSeal {
    fn new(data_key: &EncryptKey, entry: TxKey) -> Self {
        ReaderSeal {
            cipher: data_key.cipher(),
            key_entry: key_entry_id(&entry),
            entry,
        }
    }
}

/// The keys trailer of the data keys made for a transaction (`None`: no body is encrypted), its
/// entries in read-key order.
fn readers_trailer(readers: HashMap<Hash, Option<ReaderSeal>>) -> Option<TxTrailer> {
    let mut keys: Vec<TxKey> = readers.into_values().flatten().map(|r| r.entry).collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable_by_key(|k| k.read_key);
    Some(keys_trailer(&TxKeys { keys }))
}

/// One data key per read key the transaction's bodies are encrypted for (`None`: a symmetric
/// read key the session does not hold; the first event needing it reports it).
fn data_keys(session: &AteSession, planned: &[Planned<'_>]) -> HashMap<Hash, Option<ReaderSeal>> {
    let mut out: HashMap<Hash, Option<ReaderSeal>> = HashMap::new();
    for p in planned {
        let ReadOption::Specific(rk) = &p.read else {
            continue;
        };
        if p.op.body.is_none() {
            continue;
        }
        let read_key = rk.hash();
        if out.contains_key(&read_key) {
            continue;
        }
        let data_key = EncryptKey::generate();
        let wrapped = match rk {
            ReadKey::Symmetric(h) => session.read_key(h).map(|k| k.wrap(&data_key)),
            ReadKey::Public(pk) => Some(pk.wrap(&data_key)),
        };
        let seal = wrapped.map(|wrapped| ReaderSeal::new(&data_key, TxKey { read_key, wrapped }));
        out.insert(read_key, seal);
    }
    out
}

/// What sealing each event needs, shared by the threads sealing one transaction.
struct EventSealer<'a> {
    chain: &'a Chain,
    chain_key: &'a str,
    readers: &'a HashMap<Hash, Option<ReaderSeal>>,
    timestamp_ms: u64,
    /// Whether the events' hashes are needed (someone signs).
    hash: bool,
}

/// Events encoded and hashed together (one `Hash::of_many` call): two groups of the widest
/// multi-buffer SHA3 (eight messages).
const HASH_BATCH: usize = 16;

/// Per-thread scratch space of [`EventSealer`].
#[derive(Default)]
struct Scratch {
    /// The last rules encoded, and their encoding (records of a transaction mostly share them).
    auth: Option<(Authorization, Bytes)>,
}

/// A run of sealed events: their encodings (each its length, u32, then its bytes, as in a
/// transaction payload), their hashes (when needed) and what their trust metadata says.
type SealedEvents = (Vec<u8>, Option<Vec<Hash>>, Vec<CheckedMeta>);

/// Room for the encoding of the events of `jobs` (generous: capacity never touched costs only
/// address space, a buffer grown on the way is copied).
fn room_for(jobs: &[Planned<'_>]) -> usize {
    // The rules of a transaction's records are mostly alike: the first ones stand for all.
    let auth = jobs
        .iter()
        .find(|p| !p.op.auth.is_inherit())
        .map_or(0, |p| {
            rmp_serde::to_vec(&p.op.auth).map_or(0, |e| 2 + 4 + e.len())
        });
    let per_event: usize = jobs
        .iter()
        .map(|p| {
            4 + 1
                + 1
                + 16
                + 8
                + 24
                + 2
                + p.op.type_name.len()
                + 1
                + 2
                + auth
                + (2 + 4 + 8)
                + (2 + 4 + Confidentiality::LEN)
                + p.op.body.as_ref().map_or(0, |b| 4 + b.len() + TAG_LEN)
        })
        .sum();
    per_event + per_event / 8 + 4096
}

impl EventSealer<'_> {
    /// Seals every event, in order, into one transaction payload (its header and events; the
    /// trailers are appended by the caller); the error is the one of the first event that fails.
    fn seal_all(&self, jobs: Vec<Planned<'_>>) -> Result<SealedEvents, DioError> {
        let n = jobs.len();
        let threads = if n >= PARALLEL_MIN_EVENTS {
            std::thread::available_parallelism()
                .map_or(1, |p| p.get())
                .clamp(1, MAX_SEAL_THREADS)
                .min(n / (PARALLEL_MIN_EVENTS / 2))
        } else {
            1
        };
        // The whole payload is built in the first chunk's buffer: room for every event, and for
        // the trailers (about 40 bytes an event for each signature).
        // It starts with room for its frame header: the chain's writer fills it in and writes
        // the buffer to the log as it is.
        let capacity = room_for(&jobs) + 48 * n;
        let mut payload =
            Vec::with_capacity(FRAME_HEADER_LEN + codec::TRANSACTION_HEAD_LEN + capacity);
        payload.resize(FRAME_HEADER_LEN, 0);
        codec::encode_transaction_head(&mut payload, 0, n);
        if threads <= 1 {
            return self.seal_chunk(jobs, payload);
        }
        let per = n.div_ceil(threads);
        let mut chunks: Vec<Vec<Planned<'_>>> = Vec::with_capacity(threads);
        let mut rest = jobs.into_iter();
        loop {
            let chunk: Vec<Planned<'_>> = rest.by_ref().take(per).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        let mut chunks = chunks.into_iter();
        let first = chunks.next().unwrap_or_default();
        let results: Vec<Result<SealedEvents, DioError>> = std::thread::scope(|s| {
            let helpers: Vec<_> = chunks
                .map(|c| {
                    s.spawn(move || {
                        let buf = Vec::with_capacity(room_for(&c));
                        self.seal_chunk(c, buf)
                    })
                })
                .collect();
            let mut all = vec![self.seal_chunk(first, payload)];
            all.extend(helpers.into_iter().map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }));
            all
        });
        let mut results = results.into_iter();
        let (mut payload, mut hashes, mut trust) = results
            .next()
            .unwrap_or_else(|| Ok((Vec::new(), None, Vec::new())))?;
        if let Some(h) = hashes.as_mut() {
            h.reserve(n - h.len());
        }
        trust.reserve(n - trust.len());
        for r in results {
            let (bytes, h, t) = r?;
            payload.extend_from_slice(&bytes);
            if let (Some(all), Some(h)) = (hashes.as_mut(), h) {
                all.extend(h);
            }
            trust.extend(t);
        }
        Ok((payload, hashes, trust))
    }

    /// Seals `jobs` in order, appending their encodings to `out`.
    fn seal_chunk(
        &self,
        jobs: Vec<Planned<'_>>,
        mut out: Vec<u8>,
    ) -> Result<SealedEvents, DioError> {
        let mut scratch = Scratch::default();
        let mut hashes = self.hash.then(|| Vec::with_capacity(jobs.len()));
        let mut trust = Vec::with_capacity(jobs.len());
        // Where the encodings awaiting their hashes lie in `out`.
        let mut pending: Vec<std::ops::Range<usize>> = Vec::with_capacity(HASH_BATCH);
        for p in jobs {
            let at = out.len() + 4;
            trust.push(self.seal_event(p, &mut scratch, &mut out)?);
            if let Some(h) = hashes.as_mut() {
                pending.push(at..out.len());
                if pending.len() == HASH_BATCH {
                    hash_batch(&out, &pending, h);
                    pending.clear();
                }
            }
        }
        if let Some(h) = hashes.as_mut() {
            hash_batch(&out, &pending, h);
        }
        Ok((out, hashes, trust))
    }

    /// Transforms and encrypts one body, and appends the event (its length, then its bytes) to
    /// `out`, its metadata being the entries of `EventTrust::to_meta`, in the same order and
    /// encoding; returns what the writer's checks read of that metadata. An encrypted body is
    /// encrypted in place in `out`.
    fn seal_event(
        &self,
        p: Planned<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<CheckedMeta, DioError> {
        let chain = self.chain;
        let auth = (!p.op.auth.is_inherit()).then(|| match &scratch.auth {
            Some((a, e)) if *a == p.op.auth => e.clone(),
            _ => {
                let e = Bytes::from(
                    rmp_serde::to_vec(&p.op.auth).expect("metadata types always encode"),
                );
                scratch.auth = Some((p.op.auth.clone(), e.clone()));
                e
            }
        });
        let mut transforms: Vec<u16> = Vec::new();
        let mut transformed: Option<Vec<u8>> = None;
        let mut reader: Option<(&ReaderSeal, Hash)> = None;
        if let Some(plain) = &p.op.body {
            if !crate::schema::indexes_for(&p.op.type_name).is_empty() {
                let why = if matches!(p.read, ReadOption::Specific(_)) {
                    Some("encrypted")
                } else if !chain.transformers().is_empty() {
                    Some("transformed")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(DioError::Unindexable {
                        key: p.key,
                        type_name: p.op.type_name.to_string(),
                        why,
                    });
                }
            }
            for t in chain.transformers() {
                let input = transformed.as_deref().unwrap_or(plain);
                transformed = Some(t.encode(input).map_err(|reason| DioError::Transform {
                    key: p.key,
                    id: t.id(),
                    reason,
                })?);
                transforms.push(t.id());
            }
            if let ReadOption::Specific(rk) = &p.read {
                let read_key = rk.hash();
                let seal = self.readers.get(&read_key).and_then(Option::as_ref).ok_or(
                    DioError::MissingReadKey {
                        key: p.key,
                        read_key,
                    },
                )?;
                reader = Some((seal, read_key));
            }
        }
        let body = transformed.as_deref().or(p.op.body.as_deref());
        let transform_ids: Vec<u8> = transforms.iter().flat_map(|i| i.to_le_bytes()).collect();
        let head = EventHead {
            key: p.key,
            timestamp_ms: self.timestamp_ms,
            tombstone: body.is_none(),
            parent: p.op.parent,
            type_name: &p.op.type_name,
            format: BodyFormat::MessagePack,
            meta_count: u16::from(auth.is_some())
                + u16::from(p.previous.is_some())
                + u16::from(!transforms.is_empty())
                + u16::from(reader.is_some()),
            has_body: body.is_some(),
        };
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        head.encode(out);
        if let Some(a) = &auth {
            codec::encode_entry(out, TAG_AUTHORIZATION, a);
        }
        if let Some(v) = p.previous {
            codec::encode_entry(out, TAG_PREVIOUS, &v.to_le_bytes());
        }
        if !transforms.is_empty() {
            codec::encode_entry(out, TAG_TRANSFORMS, &transform_ids);
        }
        // The confidentiality entry names the nonce, known once the body is encrypted.
        let confidentiality_at = out.len() + 2 + 4;
        if reader.is_some() {
            codec::encode_entry(out, TAG_CONFIDENTIALITY, &[0; Confidentiality::LEN]);
        }
        let mut sealed_for: Option<Confidentiality> = None;
        if let Some(input) = body {
            match reader {
                Some((seal, read_key)) => {
                    codec::encode_body_len(out, input.len() + TAG_LEN);
                    let nonce =
                        seal.cipher
                            .encrypt_into(&body_aad(self.chain_key, &p.key), input, out);
                    let c = Confidentiality {
                        read_key,
                        key_entry: seal.key_entry,
                        nonce,
                    };
                    out[confidentiality_at..confidentiality_at + Confidentiality::LEN]
                        .copy_from_slice(&c.to_bytes());
                    sealed_for = Some(c);
                }
                None => {
                    codec::encode_body_len(out, input.len());
                    out.extend_from_slice(input);
                }
            }
        }
        if !chain.linters().is_empty() {
            // Linters see the event as a draft and may add metadata: it is encoded again.
            let raw = Bytes::copy_from_slice(&out[start + 4..]);
            let mut draft = codec::decode_event(raw)
                .map_err(|e| DioError::BadMetadata {
                    key: p.key,
                    reason: e.to_string(),
                })?
                .to_draft();
            for l in chain.linters() {
                draft.meta.extend(l.lint(&draft));
            }
            out.truncate(start + 4);
            codec::encode_event(&draft, out);
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        Ok(CheckedMeta {
            auth: (!p.op.auth.is_inherit()).then(|| p.op.auth.clone()),
            previous: p.previous,
            reader: sealed_for.map(|c| c.read_key),
            key_entry: sealed_for.map(|c| c.key_entry),
        })
    }
}

/// Hashes the events lying at `ranges` of `buf` (at most [`HASH_BATCH`]), appending their
/// hashes to `out`, all by one `Hash::of_many` call.
fn hash_batch(buf: &[u8], ranges: &[std::ops::Range<usize>], out: &mut Vec<Hash>) {
    let n = ranges.len();
    if n == 0 {
        return;
    }
    let messages: [&[u8]; HASH_BATCH] =
        std::array::from_fn(|i| ranges.get(i).map_or(&[][..], |r| &buf[r.clone()]));
    let start = out.len();
    out.resize(start + n, Hash::default());
    Hash::of_many_into(&messages[..n], &mut out[start..]);
}

/// Reads a stored body back to plaintext: decrypts it with the session's keys and reverses the
/// transformers. `keys` are the wrapped data keys of the transaction `seq` that wrote this
/// version (from the view); the entry is found there by the event's read key (validation made
/// sure it is the one the event binds by id).
pub(super) fn open_body(
    chain: &Chain,
    session: &AteSession,
    key: PrimaryKey,
    seq: u64,
    trust: &EventTrust,
    keys: Option<&[TxKey]>,
    body: Bytes,
) -> Result<Bytes, DioError> {
    let mut body = match &trust.confidentiality {
        None => body,
        Some(c) => {
            // Validation checked that the entry for the event's read key is the one it binds.
            let entry = keys
                .and_then(|k| k.iter().find(|e| e.read_key == c.read_key))
                .ok_or(DioError::MissingKeyEntry {
                    key,
                    seq,
                    read_key: c.read_key,
                })?;
            let data_key = session.unwrap_data_key(&c.read_key, &entry.wrapped).ok_or(
                DioError::MissingReadKey {
                    key,
                    read_key: c.read_key,
                },
            )?;
            let sealed = crate::crypto::EncryptedData {
                nonce: c.nonce,
                ciphertext: body.to_vec(),
            };
            let plain = data_key
                .decrypt(&body_aad(chain.key().as_str(), &key), &sealed)
                .map_err(|e| DioError::DecryptFailed {
                    key,
                    reason: e.to_string(),
                })?;
            Bytes::from(plain)
        }
    };
    for id in trust.transforms.iter().rev() {
        let t = chain
            .transformers()
            .iter()
            .find(|t| t.id() == *id)
            .ok_or_else(|| DioError::Transform {
                key,
                id: *id,
                reason: "no transformer with this id is registered".into(),
            })?;
        body = Bytes::from(t.decode(&body).map_err(|reason| DioError::Transform {
            key,
            id: *id,
            reason,
        })?);
    }
    Ok(body)
}

/// The default rules of a new record of a type (from `#[derive(Dao)]`).
pub(super) fn default_auth(reg: Option<&crate::schema::TypeRegistration>) -> Authorization {
    use crate::schema::AccessDefault;
    let Some(reg) = reg else {
        return Authorization::default();
    };
    Authorization {
        read: match reg.read {
            AccessDefault::Everyone => ReadOption::Everyone,
            _ => ReadOption::Inherit,
        },
        write: match reg.write {
            AccessDefault::Everyone => WriteOption::Everyone,
            AccessDefault::Nobody => WriteOption::Nobody,
            _ => WriteOption::Inherit,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeySize, NONCE_LEN, PrivateEncryptKey};
    use crate::trust::meta::keys_from;

    #[test]
    fn one_entry_per_reader_and_events_bind_it() {
        let read = EncryptKey::generate();
        let ntru = PrivateEncryptKey::generate(KeySize::Bit128);
        let data_key = EncryptKey::generate();
        let mut readers = HashMap::new();
        for (reader, wrapped) in [
            (read.hash(), read.wrap(&data_key)),
            (ntru.hash(), ntru.as_public_key().wrap(&data_key)),
        ] {
            let entry = TxKey {
                read_key: reader,
                wrapped,
            };
            let seal = ReaderSeal::new(&data_key, entry.clone());
            assert_eq!(seal.key_entry, key_entry_id(&entry));
            for nonce in [[0u8; NONCE_LEN], [0xff; NONCE_LEN], [7; NONCE_LEN]] {
                let c = Confidentiality {
                    read_key: reader,
                    key_entry: seal.key_entry,
                    nonce,
                };
                assert_eq!(Confidentiality::from_bytes(&c.to_bytes()).unwrap(), c);
            }
            readers.insert(reader, Some(seal));
        }
        readers.insert(Hash::of(b"a key this session lacks"), None);
        let trailer = readers_trailer(readers).expect("two readers");
        let keys = keys_from([(trailer.tag, &trailer.value[..])])
            .unwrap()
            .expect("a keys trailer");
        assert_eq!(keys.keys.len(), 2);
        assert!(keys.keys[0].read_key < keys.keys[1].read_key);
        assert!(readers_trailer(HashMap::new()).is_none());
    }
}
