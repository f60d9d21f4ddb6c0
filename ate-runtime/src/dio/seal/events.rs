//! Sealing the events of a transaction: bodies transformed and encrypted (in place, in the
//! payload buffer), events encoded and hashed, several at a time; large transactions split over
//! the available cores in contiguous chunks, with the same result and the same first error as on
//! one thread.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::super::DioError;
use super::super::staging::FastMap;
use super::ReaderSeal;
use super::plan::Planned;
use crate::chain::Chain;
use crate::crypto::{Hash, TAG_LEN};
use crate::event::BodyFormat;
use crate::event::codec::{self, EventHead};
use crate::log::FRAME_HEADER_LEN;
use crate::schema::{SCHEMA_TYPE, TypeSchema};
use crate::trust::meta::{
    CheckedMeta, Confidentiality, TAG_AUTHORIZATION, TAG_CONFIDENTIALITY, TAG_PREVIOUS,
    TAG_TRANSFORMS, body_aad,
};
use crate::trust::{Authorization, ReadOption};

/// Below this many events a transaction is sealed on the committing thread alone; from it on,
/// its events are split over the available cores (spawning the helpers costs tens of
/// microseconds, hashing and encrypting a 1 KiB event about six).
const PARALLEL_MIN_EVENTS: usize = 64;

/// At most this many threads seal one transaction.
const MAX_SEAL_THREADS: usize = 8;

/// What sealing each event needs, shared by the threads sealing one transaction.
pub(super) struct EventSealer<'a> {
    pub chain: &'a Chain,
    pub chain_key: &'a str,
    pub readers: &'a HashMap<Hash, Option<ReaderSeal>>,
    pub timestamp_ms: u64,
    /// Whether the events' hashes are needed (someone signs).
    pub hash: bool,
    /// The schema each indexed type's records are checked by.
    pub schemas: &'a FastMap<String, Arc<TypeSchema>>,
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
pub(super) type SealedEvents = (Vec<u8>, Option<Vec<Hash>>, Vec<CheckedMeta>);

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
    pub(super) fn seal_all(&self, jobs: Vec<Planned<'_>>) -> Result<SealedEvents, DioError> {
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
            // A schema record is read by everyone, servers without keys included.
            let schema_record = p.op.type_name == SCHEMA_TYPE;
            if let Some(schema) = self.schemas.get(&*p.op.type_name) {
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
                let declared = crate::schema::indexes_for(&p.op.type_name);
                schema.check_record(p.key, declared, plain)?;
            }
            for t in chain.transformers().iter().filter(|_| !schema_record) {
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
                    let aad = body_aad(
                        self.chain_key,
                        &p.key,
                        p.previous,
                        &seal.key_entry,
                        &p.op.type_name,
                    );
                    let nonce = seal.cipher.encrypt_into(&aad, input, out);
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
