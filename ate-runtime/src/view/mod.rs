//! The materialized view: the latest version of every record, the children of every collection,
//! and secondary indexes, all in memory.
//!
//! The view is a pure function of the sequence of applied transactions (their events, and the
//! wrapped data keys of their keys trailers): replaying a log rebuilds it exactly. Its indexes
//! are those the chain's schema records define (events of the reserved type
//! [`SCHEMA_TYPE`](crate::schema::SCHEMA_TYPE)), never those of the types this process links,
//! so every process builds the same ones. It holds
//! record bodies as shared slices of the buffers they were read or written in, so building it
//! copies no data.

mod index;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::crypto::{Hash, PublicEncryptKey};
use crate::event::codec::EventRef;
use crate::event::{Event, ParentLink, PrimaryKey, decode_event};
use crate::schema::{SCHEMA_TYPE, TypeSchema};
use crate::trust::meta::{TxKey, is_sealed};
use crate::trust::{Authorization, RecordState, TrustLookup};
use index::Indexes;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The latest version of one record: 24 bytes, so the view stays small. The event's bytes live
/// in the log buffer they were read or written in (see [`View::event`]).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    seg: u32,
    off: u32,
    len: u32,
    /// Interned type name, see [`View::type_name`].
    pub type_id: u32,
    /// Sequence number of the transaction that wrote this version (the record's version).
    pub seq: u64,
}

/// A committed event, as the view applies it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViewEvent<'a> {
    /// The record written.
    pub key: PrimaryKey,
    /// Its place in the tree.
    pub parent: Option<ParentLink>,
    /// The encoded event, inside the view's current segment (else copied).
    pub raw: &'a [u8],
    /// Its type.
    pub type_name: &'a str,
    /// Whether it deletes the record.
    pub tombstone: bool,
}

/// What applying an event needs of it.
struct Change<'a> {
    key: PrimaryKey,
    tombstone: bool,
    parent: Option<ParentLink>,
    type_id: u32,
    /// Length of the encoded event.
    len: u32,
    /// The plaintext body, for indexing (`None` when encrypted or absent).
    index_body: Option<&'a [u8]>,
}

/// The body indexes see: none when it is encrypted or transformed (the view holds no keys and
/// runs no transformers, so such a body is not the plaintext the index extracts from).
fn index_body(sealed: bool, body: Option<&[u8]>) -> Option<&[u8]> {
    if sealed { None } else { body }
}

/// The plaintext body of a stored version, for indexing.
fn stored_index_body<'s>(segments: &'s [Bytes], e: &Entry) -> Option<&'s [u8]> {
    let start = e.off as usize;
    let raw = segments
        .get(e.seg as usize)?
        .get(start..start.checked_add(e.len as usize)?)?;
    let ev = EventRef::decode(raw).ok()?;
    index_body(is_sealed(|t| ev.meta(t).is_some()), ev.body)
}

/// Where a child sits: its collection and its place in commit order.
#[derive(Debug, Clone, Copy)]
struct ChildSlot {
    link: ParentLink,
    ordinal: u64,
}

/// The in-memory materialized view of one chain.
#[derive(Debug, Default)]
pub struct View {
    entries: FastMap<PrimaryKey, Entry>,
    /// Buffers holding record bodies (whole replayed logs, written groups).
    segments: Vec<Bytes>,
    parents: FastMap<PrimaryKey, ChildSlot>,
    /// Explicit read/write rules (records that inherit both have none).
    auth: FastMap<PrimaryKey, Arc<Authorization>>,
    /// Keys of deleted records (never reused).
    deleted: HashSet<PrimaryKey, foldhash::fast::RandomState>,
    children: FastMap<ParentLink, BTreeMap<u64, PrimaryKey>>,
    /// The collections of each record that have children (for deleting a subtree).
    collections: FastMap<PrimaryKey, Vec<u64>>,
    type_names: Vec<Arc<str>>,
    type_ids: FastMap<Arc<str>, u32>,
    /// The type interned last (most events have the type of the one before).
    last_type: Option<u32>,
    /// The rules set last: records written together usually share them, and then share one
    /// allocation.
    last_auth: Option<Arc<Authorization>>,
    indexes: Indexes,
    /// The schema the chain records: each indexed type's indexes and the key of its schema
    /// record.
    schemas: FastMap<Arc<str>, (PrimaryKey, Arc<TypeSchema>)>,
    /// The type each schema record describes, by the record's key.
    schema_keys: FastMap<PrimaryKey, Arc<str>>,
    /// The wrapped data keys of each transaction that wrote encrypted bodies, by sequence number
    /// (its keys trailer, checked by validation): where a read finds a record's wrapped key.
    tx_keys: FastMap<u64, Arc<[TxKey]>>,
    /// Every NTRU public read key a transaction's key directory carried, by id: where a writer
    /// finds the key a record's inherited read rule names.
    directory: FastMap<Hash, PublicEncryptKey>,
    next_ordinal: u64,
    last_seq: u64,
}

impl View {
    /// Counts `keys` as deleted records, never to be written again (the keys a compaction
    /// retired: their records and tombstones are gone from the log).
    pub(crate) fn retire(&mut self, keys: &[PrimaryKey]) {
        self.deleted.extend(keys.iter().copied());
    }

    /// A value of a unique index that two live records share: the type name, the field, the
    /// record found second and the first (`None` when every unique value has one record).
    pub(crate) fn first_unique_duplicate(
        &self,
    ) -> Option<(String, String, PrimaryKey, PrimaryKey)> {
        self.indexes
            .first_duplicate()
            .map(|(t, field, key, existing)| (self.type_name(t).to_string(), field, key, existing))
    }

    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `records` more live records, so a replay does not grow the tables step
    /// by step. [`View::shrink_to_fit`] gives back what was not used.
    pub fn reserve(&mut self, records: usize) {
        self.entries.reserve(records);
    }

    /// Gives back table space reserved beyond what the live records need.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// Interns a type name.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.last_type
            && self
                .type_names
                .get(id as usize)
                .is_some_and(|n| **n == *name)
        {
            return id;
        }
        if let Some(id) = self.type_ids.get(name) {
            self.last_type = Some(*id);
            return *id;
        }
        let id = self.type_names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.type_names.push(name.clone());
        self.type_ids.insert(name.clone(), id);
        self.last_type = Some(id);
        id
    }

    /// The type name behind an interned id.
    pub fn type_name(&self, id: u32) -> &str {
        self.type_names.get(id as usize).map(|s| &**s).unwrap_or("")
    }

    /// The interned id of a type name (`None` when no record of the view ever had it).
    pub fn type_id(&self, name: &str) -> Option<u32> {
        self.type_ids.get(name).copied()
    }

    /// Registers the buffer that the bodies of the next applied events are slices of (a replayed
    /// log, or the frames of one group commit). Bodies are then referenced, not copied.
    pub fn add_segment(&mut self, buffer: Bytes) {
        self.segments.push(buffer);
    }

    /// Finds `raw` inside the current segment (registering a new one when it is beyond a 4 GiB
    /// offset); `None` when it is not in the current segment.
    fn locate_in_segment(&mut self, raw: &[u8]) -> Option<(u32, u32)> {
        let seg = self.segments.last()?;
        let base = seg.as_ptr() as usize;
        let at = raw.as_ptr() as usize;
        if raw.is_empty() || at < base || at + raw.len() > base + seg.len() {
            return None;
        }
        let off = at - base;
        if let Ok(off) = u32::try_from(off) {
            return Some(((self.segments.len() - 1) as u32, off));
        }
        let rest = seg.slice(off..);
        self.segments.push(rest);
        Some(((self.segments.len() - 1) as u32, 0))
    }

    /// Where `raw` is kept: inside the current segment, else copied into a segment of its own.
    fn locate_slice(&mut self, raw: &[u8]) -> (u32, u32) {
        if let Some(at) = self.locate_in_segment(raw) {
            return at;
        }
        self.segments.push(Bytes::copy_from_slice(raw));
        ((self.segments.len() - 1) as u32, 0)
    }

    /// The event that wrote an entry's current version (shares the log buffer).
    pub fn event(&self, e: &Entry) -> Event {
        let raw =
            self.segments[e.seg as usize].slice(e.off as usize..e.off as usize + e.len as usize);
        decode_event(raw).expect("events in the view were decoded when applied")
    }

    /// The encoded (possibly encrypted) value of an entry (shares the log buffer).
    #[cfg(test)]
    pub fn body(&self, e: &Entry) -> Bytes {
        self.event(e).body.unwrap_or_default()
    }

    /// Applies one event of the transaction `seq`, whose bytes lie in the current segment (see
    /// [`View::add_segment`]; otherwise they are copied). Its authorization metadata was
    /// decoded by validation. Writer and replay both apply every event through here.
    pub(crate) fn apply_event(
        &mut self,
        ev: &ViewEvent<'_>,
        seq: u64,
        auth: Option<Authorization>,
    ) {
        let place = if ev.tombstone {
            None
        } else {
            Some(self.locate_slice(ev.raw))
        };
        let type_id = self.intern(ev.type_name);
        // Only indexed types need the body: decode it then (it was decoded once already).
        let index_body = if !ev.tombstone && self.indexes.is_indexed(type_id) {
            EventRef::decode(ev.raw)
                .ok()
                .and_then(|e| index_body(is_sealed(|t| e.meta(t).is_some()), e.body))
        } else {
            None
        };
        let change = Change {
            key: ev.key,
            tombstone: ev.tombstone,
            parent: ev.parent,
            type_id,
            len: ev.raw.len() as u32,
            index_body,
        };
        self.apply_change(&change, place, auth, seq);
        if ev.type_name == SCHEMA_TYPE && !ev.tombstone {
            self.apply_schema(ev);
        }
    }

    /// Takes the schema a schema record `ev` records (validated on commit and on replay): the
    /// indexes it adds are built from the live records of its type.
    fn apply_schema(&mut self, ev: &ViewEvent<'_>) {
        let schema = match EventRef::decode(ev.raw)
            .map_err(|e| e.to_string())
            .and_then(|e| {
                TypeSchema::from_body(e.body.unwrap_or_default()).map_err(|e| e.to_string())
            }) {
            Ok(s) => Arc::new(s),
            Err(error) => {
                // Validation refuses such a record before it is applied.
                tracing::warn!(key = %ev.key, %error, "schema record not applied");
                return;
            }
        };
        let name: Arc<str> = Arc::from(schema.type_name.as_str());
        let type_id = self.intern(&name);
        let created = self.indexes.define(type_id, &schema);
        if !created.is_empty() {
            let Self {
                entries,
                segments,
                indexes,
                ..
            } = self;
            for (key, e) in entries.iter().filter(|(_, e)| e.type_id == type_id) {
                if let Some(body) = stored_index_body(segments, e) {
                    for &at in &created {
                        indexes.insert_into(*key, type_id, at, body);
                    }
                }
            }
        }
        self.schema_keys.insert(ev.key, name.clone());
        self.schemas.insert(name, (ev.key, schema));
    }

    /// The schema the chain records for a type, and the key of its schema record.
    pub(crate) fn schema_of(&self, type_name: &str) -> Option<(PrimaryKey, Arc<TypeSchema>)> {
        self.schemas.get(type_name).cloned()
    }

    /// Every schema the chain records.
    pub(crate) fn schemas(&self) -> impl Iterator<Item = &Arc<TypeSchema>> + '_ {
        self.schemas.values().map(|(_, s)| s)
    }

    /// The type whose schema the record `key` holds, when it is a schema record.
    pub(crate) fn schema_record_type(&self, key: &PrimaryKey) -> Option<&Arc<str>> {
        self.schema_keys.get(key)
    }

    /// Whether the chain records any schema.
    pub(crate) fn has_schemas(&self) -> bool {
        !self.schema_keys.is_empty()
    }

    /// The live records of a type, each with its plaintext body (`None`: encrypted or
    /// transformed). Goes through every record: for the rare moments an index is added.
    pub(crate) fn records_of(&self, type_name: &str) -> Vec<(PrimaryKey, Option<&[u8]>)> {
        let Some(&type_id) = self.type_ids.get(type_name) else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter(|(_, e)| e.type_id == type_id)
            .map(|(k, e)| (*k, stored_index_body(&self.segments, e)))
            .collect()
    }

    /// Applies a change; `place` is where the event's bytes are kept (`None` for a tombstone),
    /// `auth` its decoded authorization metadata.
    fn apply_change(
        &mut self,
        ev: &Change<'_>,
        place: Option<(u32, u32)>,
        auth: Option<Authorization>,
        seq: u64,
    ) {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        let (old, type_id) = match place {
            Some((seg, off)) if !ev.tombstone => {
                let entry = Entry {
                    seg,
                    off,
                    len: ev.len,
                    type_id: ev.type_id,
                    seq,
                };
                (self.entries.insert(ev.key, entry), Some(ev.type_id))
            }
            _ => {
                self.deleted.insert(ev.key);
                (self.entries.remove(&ev.key), None)
            }
        };
        // Secondary indexes, for the types that have some.
        if let Some(old) = old
            && self.indexes.is_indexed(old.type_id)
            && let Some(body) = stored_index_body(&self.segments, &old)
        {
            self.indexes.remove(ev.key, old.type_id, body);
        }
        if let Some(type_id) = type_id
            && self.indexes.is_indexed(type_id)
            && let Some(body) = ev.index_body
        {
            self.indexes.insert(ev.key, type_id, body);
        }
        // Explicit rules; a version without them inherits again.
        match auth.filter(|a| !ev.tombstone && !a.is_inherit()) {
            Some(a) => {
                let shared = match &self.last_auth {
                    Some(last) if **last == a => last.clone(),
                    _ => {
                        let new = Arc::new(a);
                        self.last_auth = Some(new.clone());
                        new
                    }
                };
                self.auth.insert(ev.key, shared);
            }
            None => {
                self.auth.remove(&ev.key);
            }
        }
        // Keep the tree: a record keeps its place in its collection across updates.
        let new_link = if ev.tombstone { None } else { ev.parent };
        // Only live records have a place: a new one without a parent has none to look up.
        let old_slot = if old.is_none() && new_link.is_none() {
            None
        } else {
            self.parents.get(&ev.key).copied()
        };
        if old_slot.map(|s| s.link) != new_link {
            if let Some(slot) = old_slot {
                self.unlink(ev.key, slot);
            }
            if let Some(link) = new_link {
                self.parents.insert(ev.key, ChildSlot { link, ordinal });
                let kids = self.children.entry(link).or_default();
                if kids.is_empty() {
                    self.collections
                        .entry(link.parent)
                        .or_default()
                        .push(link.collection);
                }
                kids.insert(ordinal, ev.key);
            }
        }
    }

    fn unlink(&mut self, key: PrimaryKey, slot: ChildSlot) {
        self.parents.remove(&key);
        if let Some(kids) = self.children.get_mut(&slot.link) {
            kids.remove(&slot.ordinal);
            if kids.is_empty() {
                self.children.remove(&slot.link);
                if let Some(ids) = self.collections.get_mut(&slot.link.parent) {
                    ids.retain(|c| *c != slot.link.collection);
                    if ids.is_empty() {
                        self.collections.remove(&slot.link.parent);
                    }
                }
            }
        }
    }

    /// Keeps the wrapped data keys of the transaction `seq` (its validated keys trailer), for
    /// reads of the records it wrote.
    pub(crate) fn set_tx_keys(&mut self, seq: u64, keys: Arc<[TxKey]>) {
        self.tx_keys.insert(seq, keys);
    }

    /// Learns the public read keys of a transaction's validated key directory.
    pub(crate) fn add_directory(&mut self, keys: &[PublicEncryptKey]) {
        for k in keys {
            self.directory.entry(k.hash()).or_insert_with(|| k.clone());
        }
    }

    /// The NTRU public read key with id `id`, when a transaction of the chain named it.
    pub fn public_key(&self, id: &Hash) -> Option<PublicEncryptKey> {
        self.directory.get(id).cloned()
    }

    /// The wrapped data keys of the transaction `seq` (`None`: it wrote no encrypted body).
    pub fn tx_keys(&self, seq: u64) -> Option<Arc<[TxKey]>> {
        self.tx_keys.get(&seq).cloned()
    }

    /// Records that the transaction with this sequence number was applied.
    pub fn set_last_seq(&mut self, seq: u64) {
        self.last_seq = seq;
    }

    /// The sequence number of the last applied transaction (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The latest version of a record.
    pub fn get(&self, key: &PrimaryKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Whether the record exists (and is not deleted).
    pub fn contains(&self, key: &PrimaryKey) -> bool {
        self.entries.contains_key(key)
    }

    /// The explicit rules of a record.
    pub fn auth_of(&self, key: &PrimaryKey) -> Option<Arc<Authorization>> {
        self.auth.get(key).cloned()
    }

    /// The parent link of a record.
    pub fn parent_of(&self, key: &PrimaryKey) -> Option<ParentLink> {
        self.parents.get(key).map(|s| s.link)
    }

    /// The children of a collection, in the order they were first committed.
    pub fn children(&self, link: &ParentLink) -> impl Iterator<Item = PrimaryKey> + '_ {
        self.children
            .get(link)
            .into_iter()
            .flat_map(|m| m.values().copied())
    }

    /// The collections of `parent` that have children.
    pub fn collections_of(&self, parent: &PrimaryKey) -> Vec<ParentLink> {
        self.collections
            .get(parent)
            .into_iter()
            .flatten()
            .map(|&collection| ParentLink {
                parent: *parent,
                collection,
            })
            .collect()
    }

    /// Records whose index `field` of type `type_name` has this key, in key order.
    pub fn lookup(&self, type_name: &str, field: &str, key: &[u8]) -> Vec<PrimaryKey> {
        match self.type_ids.get(type_name) {
            Some(id) => self.indexes.lookup(*id, field, key),
            None => Vec::new(),
        }
    }

    /// Number of live records, schema records not counted.
    pub fn len(&self) -> usize {
        self.entries.len().saturating_sub(self.schema_keys.len())
    }

    /// Whether no record is live.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TrustLookup for View {
    fn record(&self, key: &PrimaryKey) -> Option<RecordState> {
        let e = self.entries.get(key)?;
        Some(RecordState {
            seq: e.seq,
            parent: self.parents.get(key).map(|s| s.link.parent),
            auth: self.auth.get(key).cloned(),
        })
    }

    fn was_deleted(&self, key: &PrimaryKey) -> bool {
        self.deleted.contains(key)
    }
}

#[cfg(test)]
mod tests;
