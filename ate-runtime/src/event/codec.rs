//! The deterministic binary encoding of events and transactions (see `docs/FORMAT.md`).
//!
//! Every integer is little-endian and fixed width; every variable field is length-prefixed; there
//! is exactly one encoding of any value, and the decoder rejects anything else (unknown flag bits,
//! trailing bytes, lengths past the end). That canonical form is what the event hash covers, so
//! the same event always has the same identity.

use bytes::{Buf, Bytes};

use super::PrimaryKey;
use super::error::DecodeError;
use super::types::{BodyFormat, Event, EventDraft, MetaEntry, ParentLink, Transaction, TxTrailer};

/// The first byte of a transaction payload.
pub const PAYLOAD_TRANSACTION: u8 = 1;
/// The version byte that opens every encoded event.
pub const EVENT_VERSION: u8 = 1;

const FLAG_TOMBSTONE: u8 = 0b0000_0001;
const FLAG_PARENT: u8 = 0b0000_0010;
const FLAG_BODY: u8 = 0b0000_0100;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_PARENT | FLAG_BODY;

/// Upper bound on a type name, in bytes.
pub const MAX_TYPE_NAME: usize = 1024;

/// Appends the canonical encoding of one event to `out`.
pub fn encode_event(ev: &EventDraft, out: &mut Vec<u8>) {
    let mut flags = 0u8;
    if ev.tombstone {
        flags |= FLAG_TOMBSTONE;
    }
    if ev.parent.is_some() {
        flags |= FLAG_PARENT;
    }
    if ev.body.is_some() {
        flags |= FLAG_BODY;
    }
    out.push(EVENT_VERSION);
    out.push(flags);
    out.extend_from_slice(&ev.key.to_bytes());
    out.extend_from_slice(&ev.timestamp_ms.to_le_bytes());
    if let Some(p) = &ev.parent {
        out.extend_from_slice(&p.parent.to_bytes());
        out.extend_from_slice(&p.collection.to_le_bytes());
    }
    out.extend_from_slice(&(ev.type_name.len() as u16).to_le_bytes());
    out.extend_from_slice(ev.type_name.as_bytes());
    out.push(ev.format as u8);
    out.extend_from_slice(&(ev.meta.len() as u16).to_le_bytes());
    for m in &ev.meta {
        out.extend_from_slice(&m.tag.to_le_bytes());
        out.extend_from_slice(&(m.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&m.value);
    }
    if let Some(b) = &ev.body {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
}

/// The exact encoded size of an event, so buffers are allocated once.
pub fn encoded_event_len(ev: &EventDraft) -> usize {
    let mut n = 1 + 1 + 16 + 8 + 2 + ev.type_name.len() + 1 + 2;
    if ev.parent.is_some() {
        n += 16 + 8;
    }
    n += ev.meta.iter().map(|m| 2 + 4 + m.value.len()).sum::<usize>();
    if let Some(b) = &ev.body {
        n += 4 + b.len();
    }
    n
}

/// Encodes a whole transaction payload: its sequence number, its events and its trailers.
pub fn encode_transaction(seq: u64, events: &[EventDraft], trailers: &[TxTrailer]) -> Vec<u8> {
    let size = 1
        + 8
        + 4
        + events
            .iter()
            .map(|e| 4 + encoded_event_len(e))
            .sum::<usize>()
        + 2
        + trailers
            .iter()
            .map(|t| 2 + 4 + t.value.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(PAYLOAD_TRANSACTION);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        out.extend_from_slice(&(encoded_event_len(e) as u32).to_le_bytes());
        encode_event(e, &mut out);
    }
    out.extend_from_slice(&(trailers.len() as u16).to_le_bytes());
    for t in trailers {
        out.extend_from_slice(&t.tag.to_le_bytes());
        out.extend_from_slice(&(t.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&t.value);
    }
    debug_assert_eq!(out.len(), size);
    out
}

/// A bounds-checked cursor over a shared buffer: every slice it hands out shares the buffer.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            Err(DecodeError::Truncated { what })
        } else {
            Ok(())
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16_le())
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32_le())
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.need(8, what)?;
        Ok(self.buf.get_u64_le())
    }
    fn key(&mut self, what: &'static str) -> Result<PrimaryKey, DecodeError> {
        self.need(16, what)?;
        let mut b = [0u8; 16];
        self.buf.copy_to_slice(&mut b);
        Ok(PrimaryKey::from_bytes(b))
    }
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Decodes one event from its canonical bytes; `raw` is kept so the hash covers exactly them.
pub fn decode_event(raw: Bytes) -> Result<Event, DecodeError> {
    let mut r = Reader { buf: raw.clone() };
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
    let type_name = r.bytes(name_len, "type name")?;
    if std::str::from_utf8(&type_name).is_err() {
        return Err(DecodeError::InvalidUtf8 { what: "type name" });
    }
    let format_id = r.u8("body format")?;
    let format = BodyFormat::try_from(format_id)?;
    let meta_count = r.u16("metadata count")? as usize;
    let mut meta = Vec::with_capacity(meta_count.min(16));
    for _ in 0..meta_count {
        let tag = r.u16("metadata tag")?;
        let len = r.u32("metadata length")? as usize;
        let value = r.bytes(len, "metadata value")?;
        meta.push(MetaEntry { tag, value });
    }
    let body = if flags & FLAG_BODY != 0 {
        let len = r.u32("body length")? as usize;
        Some(r.bytes(len, "body")?)
    } else {
        None
    };
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes { what: "event" });
    }
    Ok(Event {
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

/// Decodes a transaction payload (the bytes inside one log frame).
pub fn decode_transaction(payload: Bytes) -> Result<Transaction, DecodeError> {
    let mut r = Reader { buf: payload };
    let kind = r.u8("payload kind")?;
    if kind != PAYLOAD_TRANSACTION {
        return Err(DecodeError::UnknownPayloadKind(kind));
    }
    let seq = r.u64("transaction sequence")?;
    let count = r.u32("event count")? as usize;
    // Each event takes at least 4 bytes of length prefix: a lying count fails fast, without a
    // huge allocation.
    if count > r.buf.remaining() / 4 {
        return Err(DecodeError::Truncated { what: "events" });
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u32("event length")? as usize;
        let raw = r.bytes(len, "event")?;
        events.push(decode_event(raw)?);
    }
    let trailer_count = r.u16("trailer count")? as usize;
    let mut trailers = Vec::with_capacity(trailer_count.min(16));
    for _ in 0..trailer_count {
        let tag = r.u16("trailer tag")?;
        let len = r.u32("trailer length")? as usize;
        let value = r.bytes(len, "trailer value")?;
        trailers.push(TxTrailer { tag, value });
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what: "transaction",
        });
    }
    Ok(Transaction {
        seq,
        events,
        trailers,
    })
}
