//! The deterministic binary encoding of events and transactions (see `docs/FORMAT.md`).
//!
//! Every integer is little-endian and fixed width; every variable field is length-prefixed; there
//! is exactly one encoding of any value, and the decoder rejects anything else (unknown flag bits,
//! trailing bytes, lengths past the end). That canonical form is what the event hash covers, so
//! the same event always has the same identity.

use bytes::Bytes;

use super::PrimaryKey;
use super::error::DecodeError;
use super::types::{BodyFormat, Event, EventDraft, MetaEntry, ParentLink, Transaction, TxTrailer};
use crate::crypto::Hash;

/// The first byte of a transaction payload.
pub const PAYLOAD_TRANSACTION: u8 = 1;
/// The first byte of a pruned transaction payload: a transaction kept by a compaction, some of
/// whose events were dropped and stand as their hashes (see `docs/FORMAT.md`).
pub const PAYLOAD_PRUNED: u8 = 3;
/// An event slot of a pruned transaction holding the event.
const SLOT_EVENT: u8 = 0;
/// An event slot of a pruned transaction holding only the event's hash.
const SLOT_PRUNED: u8 = 1;
/// The version byte that opens every encoded event.
pub const EVENT_VERSION: u8 = 1;

const FLAG_TOMBSTONE: u8 = 0b0000_0001;
const FLAG_PARENT: u8 = 0b0000_0010;
const FLAG_BODY: u8 = 0b0000_0100;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_PARENT | FLAG_BODY;

/// Upper bound on a type name, in bytes.
pub const MAX_TYPE_NAME: usize = 1024;

/// The fields of an event that come before its metadata entries, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventHead<'a> {
    pub key: PrimaryKey,
    pub timestamp_ms: u64,
    pub tombstone: bool,
    pub parent: Option<ParentLink>,
    pub type_name: &'a str,
    pub format: BodyFormat,
    pub meta_count: u16,
    pub has_body: bool,
}

impl EventHead<'_> {
    /// Appends the encoding of these fields: the start of an event, up to and including its
    /// metadata count. The `meta_count` entries ([`encode_entry`]) and then the body
    /// ([`encode_body_len`] and the body's bytes) must follow.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0u8;
        if self.tombstone {
            flags |= FLAG_TOMBSTONE;
        }
        if self.parent.is_some() {
            flags |= FLAG_PARENT;
        }
        if self.has_body {
            flags |= FLAG_BODY;
        }
        out.push(EVENT_VERSION);
        out.push(flags);
        out.extend_from_slice(&self.key.to_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        if let Some(p) = &self.parent {
            out.extend_from_slice(&p.parent.to_bytes());
            out.extend_from_slice(&p.collection.to_le_bytes());
        }
        out.extend_from_slice(&(self.type_name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.type_name.as_bytes());
        out.push(self.format as u8);
        out.extend_from_slice(&self.meta_count.to_le_bytes());
    }

    /// The encoded size of these fields.
    pub(crate) fn encoded_len(&self) -> usize {
        let mut n = 1 + 1 + 16 + 8 + 2 + self.type_name.len() + 1 + 2;
        if self.parent.is_some() {
            n += 16 + 8;
        }
        n
    }
}

/// Appends one tagged entry (event metadata or transaction trailer): `tag ‖ length ‖ value`.
pub(crate) fn encode_entry(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Appends the length of a body, which must follow.
pub(crate) fn encode_body_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn head_of(ev: &EventDraft) -> EventHead<'_> {
    EventHead {
        key: ev.key,
        timestamp_ms: ev.timestamp_ms,
        tombstone: ev.tombstone,
        parent: ev.parent,
        type_name: &ev.type_name,
        format: ev.format,
        meta_count: ev.meta.len() as u16,
        has_body: ev.body.is_some(),
    }
}

/// Appends the canonical encoding of one event to `out`.
pub fn encode_event(ev: &EventDraft, out: &mut Vec<u8>) {
    head_of(ev).encode(out);
    for m in &ev.meta {
        encode_entry(out, m.tag, &m.value);
    }
    if let Some(b) = &ev.body {
        encode_body_len(out, b.len());
        out.extend_from_slice(b);
    }
}

/// The exact encoded size of an event, so buffers are allocated once.
pub fn encoded_event_len(ev: &EventDraft) -> usize {
    let mut n = head_of(ev).encoded_len();
    n += ev.meta.iter().map(|m| 2 + 4 + m.value.len()).sum::<usize>();
    if let Some(b) = &ev.body {
        n += 4 + b.len();
    }
    n
}

/// The size of a transaction payload's header (kind, sequence number, event count).
pub(crate) const TRANSACTION_HEAD_LEN: usize = 1 + 8 + 4;

/// The smallest encoded event: version, flags, key, timestamp, an empty type name (its length
/// alone), body format and a zero metadata count; no parent, no body.
pub(crate) const MIN_EVENT_LEN: usize = 1 + 1 + 16 + 8 + 2 + 1 + 2;

/// The smallest event inside a payload, with its length prefix: `n` bytes of a payload hold at
/// most `n / MIN_EVENT_BYTES` events.
pub(crate) const MIN_EVENT_BYTES: usize = 4 + MIN_EVENT_LEN;
/// The smallest event slot of a pruned transaction: its tag, then an event or a hash.
const MIN_SLOT_BYTES: usize = 1 + if MIN_EVENT_BYTES < 32 {
    MIN_EVENT_BYTES
} else {
    32
};

/// Encodes a pruned transaction payload: the transaction `payload` (as a log holds it: whole,
/// or pruned already) with the events whose `keep` is false replaced by their hashes. `keep`
/// has one entry per event the payload holds and must keep some; of a whole transaction, it
/// must drop some too.
///
/// # Errors
///
/// The payload's [`DecodeError`], or [`DecodeError::NothingPruned`] for a `keep` that keeps
/// nothing, keeps every event of a whole transaction, or does not have one entry per event.
pub fn encode_pruned(payload: &[u8], keep: &[bool]) -> Result<Vec<u8>, DecodeError> {
    let tx = TransactionRef::decode_stored(payload)?;
    let kept = keep.iter().filter(|k| **k).count();
    if keep.len() != tx.events.len() || kept == 0 || (kept == keep.len() && tx.pruned.is_none()) {
        return Err(DecodeError::NothingPruned);
    }
    let slots = tx
        .pruned
        .clone()
        .unwrap_or_else(|| vec![None; tx.events.len()]);
    let mut out = Vec::with_capacity(payload.len());
    out.push(PAYLOAD_PRUNED);
    out.extend_from_slice(&tx.seq.to_le_bytes());
    out.extend_from_slice(&(slots.len() as u32).to_le_bytes());
    let mut events = tx.events.iter().zip(keep);
    for slot in slots {
        let pruned = match slot {
            Some(hash) => hash,
            None => {
                let Some((ev, keep)) = events.next() else {
                    return Err(DecodeError::NothingPruned);
                };
                if *keep {
                    out.push(SLOT_EVENT);
                    out.extend_from_slice(&(ev.raw.len() as u32).to_le_bytes());
                    out.extend_from_slice(ev.raw);
                    continue;
                }
                ev.hash()
            }
        };
        out.push(SLOT_PRUNED);
        out.extend_from_slice(pruned.as_bytes());
    }
    out.extend_from_slice(&tx.trailers.count.to_le_bytes());
    out.extend_from_slice(tx.trailers.bytes);
    Ok(out)
}

/// Appends the header of a transaction payload of `count` events, with sequence number `seq`
/// (see [`set_transaction_seq`]). Each event follows as its length (u32) and its bytes, then
/// the trailers ([`encode_trailers`]).
pub(crate) fn encode_transaction_head(out: &mut Vec<u8>, seq: u64, count: usize) {
    out.push(PAYLOAD_TRANSACTION);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

/// Appends the trailers that end a transaction payload.
pub(crate) fn encode_trailers(out: &mut Vec<u8>, trailers: &[TxTrailer]) {
    out.extend_from_slice(&(trailers.len() as u16).to_le_bytes());
    for t in trailers {
        encode_entry(out, t.tag, &t.value);
    }
}

/// The encoded size of `trailers` at the end of a payload.
pub(crate) fn encoded_trailers_len(trailers: &[TxTrailer]) -> usize {
    2 + trailers
        .iter()
        .map(|t| 2 + 4 + t.value.len())
        .sum::<usize>()
}

/// Writes the sequence number into an encoded transaction payload (built before its number was
/// known). A payload too short to hold one is left as it is (its decoding fails).
pub(crate) fn set_transaction_seq(payload: &mut [u8], seq: u64) {
    if let Some(at) = payload.get_mut(1..9) {
        at.copy_from_slice(&seq.to_le_bytes());
    }
}

/// Encodes a whole transaction payload: its sequence number, its events and its trailers.
pub fn encode_transaction(seq: u64, events: &[EventDraft], trailers: &[TxTrailer]) -> Vec<u8> {
    encode_transaction_after(0, seq, events, trailers)
}

/// [`encode_transaction`] after `room` zero bytes (room for what goes ahead of the payload).
pub(crate) fn encode_transaction_after(
    room: usize,
    seq: u64,
    events: &[EventDraft],
    trailers: &[TxTrailer],
) -> Vec<u8> {
    let size = room
        + TRANSACTION_HEAD_LEN
        + events
            .iter()
            .map(|e| 4 + encoded_event_len(e))
            .sum::<usize>()
        + encoded_trailers_len(trailers);
    let mut out = Vec::with_capacity(size);
    out.resize(room, 0);
    encode_transaction_head(&mut out, seq, events.len());
    for e in events {
        out.extend_from_slice(&(encoded_event_len(e) as u32).to_le_bytes());
        encode_event(e, &mut out);
    }
    encode_trailers(&mut out, trailers);
    debug_assert_eq!(out.len(), size);
    out
}

/// A bounds-checked cursor over borrowed bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.split_at_checked(n) {
            Some((head, rest)) => {
                self.buf = rest;
                Ok(head)
            }
            None => Err(DecodeError::Truncated { what }),
        }
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        match self.buf.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.buf = rest;
                Ok(*head)
            }
            None => Err(DecodeError::Truncated { what }),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn key(&mut self, what: &'static str) -> Result<PrimaryKey, DecodeError> {
        Ok(PrimaryKey::from_bytes(self.array(what)?))
    }
    /// Skips `count` tagged entries (`tag u16 ‖ length u32 ‖ value`), checking each lies within
    /// the input; returns the bytes they span.
    fn entries(&mut self, count: usize, what: Entries) -> Result<&'a [u8], DecodeError> {
        let all = self.buf;
        for _ in 0..count {
            self.u16(what.tag)?;
            let len = self.u32(what.len)? as usize;
            self.take(len, what.value)?;
        }
        Ok(&all[..all.len() - self.buf.len()])
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The field names of a list of tagged entries, for errors.
#[derive(Clone, Copy)]
struct Entries {
    tag: &'static str,
    len: &'static str,
    value: &'static str,
}

const META: Entries = Entries {
    tag: "metadata tag",
    len: "metadata length",
    value: "metadata value",
};

const TRAILERS: Entries = Entries {
    tag: "trailer tag",
    len: "trailer length",
    value: "trailer value",
};

/// Tagged entries (event metadata or transaction trailers) in their encoded form, already checked
/// by the decoder; iterating yields `(tag, value)` in order without copying.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaggedEntries<'a> {
    bytes: &'a [u8],
    count: u16,
}

impl<'a> TaggedEntries<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in order.
    pub fn iter(&self) -> TaggedIter<'a> {
        TaggedIter {
            rest: self.bytes,
            left: self.count,
        }
    }

    /// The value of the first entry with this tag.
    pub fn get(&self, tag: u16) -> Option<&'a [u8]> {
        self.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for TaggedEntries<'a> {
    type Item = (u16, &'a [u8]);
    type IntoIter = TaggedIter<'a>;
    fn into_iter(self) -> TaggedIter<'a> {
        self.iter()
    }
}

/// Iterator over [`TaggedEntries`].
#[derive(Debug, Clone)]
pub struct TaggedIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for TaggedIter<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        if self.left == 0 {
            return None;
        }
        // The decoder checked every entry lies within the bytes; `None` is unreachable.
        let mut r = Reader { buf: self.rest };
        let tag = r.u16("").ok()?;
        let len = r.u32("").ok()? as usize;
        let value = r.take(len, "").ok()?;
        self.rest = r.buf;
        self.left -= 1;
        Some((tag, value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// An event decoded in place: every field borrows the bytes it was decoded from, so decoding
/// allocates nothing and touches no reference count. The checks are exactly those of
/// [`decode_event`] (which is built on this).
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// The exact encoded bytes (what the hash covers).
    pub raw: &'a [u8],
    /// The record this event is a version (or tombstone) of.
    pub key: PrimaryKey,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// A tombstone deletes the record.
    pub tombstone: bool,
    /// The record's place in the tree.
    pub parent: Option<ParentLink>,
    /// The type name (checked to be UTF-8).
    pub type_name: &'a str,
    /// How the body is encoded.
    pub format: BodyFormat,
    /// Metadata entries, in order.
    pub meta: TaggedEntries<'a>,
    /// The encoded value; `None` for tombstones.
    pub body: Option<&'a [u8]>,
}

impl<'a> EventRef<'a> {
    /// Decodes one event from its canonical bytes.
    pub fn decode(raw: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: raw };
        let version = r.u8("event version")?;
        if version != EVENT_VERSION {
            return Err(DecodeError::UnsupportedEventVersion(version));
        }
        let flags = r.u8("event flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let key = r.key("event key")?;
        let timestamp_ms = r.u64("timestamp")?;
        let parent = if flags & FLAG_PARENT != 0 {
            let parent = r.key("parent key")?;
            let collection = r.u64("collection id")?;
            Some(ParentLink { parent, collection })
        } else {
            None
        };
        let name_len = r.u16("type name length")? as usize;
        if name_len > MAX_TYPE_NAME {
            return Err(DecodeError::TooLong {
                what: "type name",
                len: name_len,
            });
        }
        let type_name = std::str::from_utf8(r.take(name_len, "type name")?)
            .map_err(|_| DecodeError::InvalidUtf8 { what: "type name" })?;
        let format_id = r.u8("body format")?;
        let format = BodyFormat::try_from(format_id)?;
        let meta_count = r.u16("metadata count")?;
        let meta = TaggedEntries {
            bytes: r.entries(meta_count as usize, META)?,
            count: meta_count,
        };
        let body = if flags & FLAG_BODY != 0 {
            let len = r.u32("body length")? as usize;
            Some(r.take(len, "body")?)
        } else {
            None
        };
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes { what: "event" });
        }
        Ok(EventRef {
            raw,
            key,
            timestamp_ms,
            tombstone: flags & FLAG_TOMBSTONE != 0,
            parent,
            type_name,
            format,
            meta,
            body,
        })
    }

    /// The event's identity: SHA3-256 of its canonical bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(self.raw)
    }

    /// The first metadata entry with this tag.
    pub fn meta(&self, tag: u16) -> Option<&'a [u8]> {
        self.meta.get(tag)
    }

    /// The owned event, sharing `buf`, which must be the buffer `raw` borrows from (or hold it).
    pub(crate) fn to_event(self, buf: &Bytes) -> Event {
        Event {
            raw: buf.slice_ref(self.raw),
            key: self.key,
            timestamp_ms: self.timestamp_ms,
            tombstone: self.tombstone,
            parent: self.parent,
            type_name: buf.slice_ref(self.type_name.as_bytes()),
            format: self.format,
            meta: self
                .meta
                .iter()
                .map(|(tag, value)| MetaEntry {
                    tag,
                    value: buf.slice_ref(value),
                })
                .collect(),
            body: self.body.map(|b| buf.slice_ref(b)),
        }
    }
}

/// A transaction decoded in place (see [`EventRef`]); the checks are exactly those of
/// [`decode_transaction`].
#[derive(Debug, Clone)]
pub struct TransactionRef<'a> {
    /// Position of the transaction in its chain.
    pub seq: u64,
    /// The events, in order (of a pruned transaction: the events kept).
    pub events: Vec<EventRef<'a>>,
    /// Whole-transaction entries (signatures).
    pub trailers: TaggedEntries<'a>,
    /// Of a pruned transaction (kept by a compaction, some events dropped): every event slot in
    /// order, `None` for the next of `events`, the hash of the dropped event otherwise. `None`
    /// for a whole transaction.
    pub pruned: Option<Vec<Option<Hash>>>,
}

impl<'a> TransactionRef<'a> {
    /// Decodes a transaction payload (the bytes inside one log frame). A pruned transaction
    /// (which only a compacted log holds) is [`DecodeError::UnknownPayloadKind`] here: see
    /// [`TransactionRef::decode_stored`].
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_kind(payload, false)
    }

    /// [`TransactionRef::decode`] that also takes a pruned transaction, as a compacted log
    /// holds them.
    pub fn decode_stored(payload: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_kind(payload, true)
    }

    fn decode_kind(payload: &'a [u8], stored: bool) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: payload };
        let kind = r.u8("payload kind")?;
        let is_pruned = match kind {
            PAYLOAD_TRANSACTION => false,
            PAYLOAD_PRUNED if stored => true,
            _ => return Err(DecodeError::UnknownPayloadKind(kind)),
        };
        let seq = r.u64("transaction sequence")?;
        let count = r.u32("event count")? as usize;
        // A count the rest of the payload cannot hold fails fast, so what is reserved below is
        // bounded by the bytes received (at most one `EventRef` per `MIN_EVENT_BYTES`, one slot
        // per `MIN_SLOT_BYTES`), whatever the count claims.
        let least = if is_pruned {
            MIN_SLOT_BYTES
        } else {
            MIN_EVENT_BYTES
        };
        if count > r.buf.len() / least {
            return Err(DecodeError::Truncated { what: "events" });
        }
        let mut events = Vec::with_capacity(count);
        let mut pruned = None;
        if is_pruned {
            let mut slots = Vec::with_capacity(count);
            for _ in 0..count {
                match r.u8("event slot")? {
                    SLOT_EVENT => {
                        let len = r.u32("event length")? as usize;
                        let raw = r.take(len, "event")?;
                        events.push(EventRef::decode(raw)?);
                        slots.push(None);
                    }
                    SLOT_PRUNED => slots.push(Some(Hash::from_bytes(r.array("event hash")?))),
                    other => return Err(DecodeError::UnknownSlot(other)),
                }
            }
            if events.is_empty() || events.len() == count {
                return Err(DecodeError::NothingPruned);
            }
            pruned = Some(slots);
        } else {
            for _ in 0..count {
                let len = r.u32("event length")? as usize;
                let raw = r.take(len, "event")?;
                events.push(EventRef::decode(raw)?);
            }
        }
        let trailer_count = r.u16("trailer count")?;
        let trailers = TaggedEntries {
            bytes: r.entries(trailer_count as usize, TRAILERS)?,
            count: trailer_count,
        };
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what: "transaction",
            });
        }
        Ok(TransactionRef {
            seq,
            events,
            trailers,
            pruned,
        })
    }

    /// The owned transaction, sharing `buf`, which must be the buffer the payload borrows from
    /// (or hold it).
    pub(crate) fn to_transaction(&self, buf: &Bytes) -> Transaction {
        Transaction {
            seq: self.seq,
            events: self.events.iter().map(|e| e.to_event(buf)).collect(),
            trailers: self
                .trailers
                .iter()
                .map(|(tag, value)| TxTrailer {
                    tag,
                    value: buf.slice_ref(value),
                })
                .collect(),
        }
    }
}

/// Decodes one event from its canonical bytes; `raw` is kept so the hash covers exactly them.
pub fn decode_event(raw: Bytes) -> Result<Event, DecodeError> {
    Ok(EventRef::decode(&raw)?.to_event(&raw))
}

/// Decodes a transaction payload (the bytes inside one log frame).
pub fn decode_transaction(payload: Bytes) -> Result<Transaction, DecodeError> {
    Ok(TransactionRef::decode(&payload)?.to_transaction(&payload))
}
