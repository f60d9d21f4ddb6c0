//! The materialized view: the latest version of every record, the children of every collection,
//! and secondary indexes, all in memory.
//!
//! The view is a pure function of the sequence of applied events: replaying a log rebuilds it
//! exactly. It holds record bodies as shared slices of the buffers they were read or written in,
//! so building it copies no data.

mod index;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, ParentLink, PrimaryKey, decode_event};
use crate::trust::meta::{TAG_AUTHORIZATION, TAG_CONFIDENTIALITY};
use crate::trust::{Authorization, RecordState, TrustLookup};
use index::Indexes;
pub use index::{IndexKey, IndexSpec};

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
    type_names: Vec<Arc<str>>,
    type_ids: FastMap<Arc<str>, u32>,
    indexes: Indexes,
    next_ordinal: u64,
    last_seq: u64,
    events_applied: u64,
}

impl View {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interns a type name.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.type_ids.get(name) {
            return *id;
        }
        let id = self.type_names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.type_names.push(name.clone());
        self.type_ids.insert(name.clone(), id);
        self.indexes.register_type(id, &name);
        id
    }

    /// The type name behind an interned id.
    pub fn type_name(&self, id: u32) -> &str {
        self.type_names.get(id as usize).map(|s| &**s).unwrap_or("")
    }

    /// Registers the buffer that the bodies of the next applied events are slices of (a replayed
    /// log, or the frames of one group commit). Bodies are then referenced, not copied.
    pub fn add_segment(&mut self, buffer: Bytes) {
        self.segments.push(buffer);
    }

    /// Finds `raw` inside the current segment (registering a new one when it is elsewhere or
    /// beyond a 4 GiB offset).
    fn locate(&mut self, body: &Bytes) -> (u32, u32) {
        if let Some(seg) = self.segments.last() {
            let base = seg.as_ptr() as usize;
            let at = body.as_ptr() as usize;
            if !body.is_empty() && at >= base && at + body.len() <= base + seg.len() {
                let off = at - base;
                if let Ok(off) = u32::try_from(off) {
                    return ((self.segments.len() - 1) as u32, off);
                }
                let rest = seg.slice(off..);
                self.segments.push(rest);
                return ((self.segments.len() - 1) as u32, 0);
            }
        }
        self.segments.push(body.clone());
        ((self.segments.len() - 1) as u32, 0)
    }

    /// The event that wrote an entry's current version (shares the log buffer).
    pub fn event(&self, e: &Entry) -> Event {
        let raw =
            self.segments[e.seg as usize].slice(e.off as usize..e.off as usize + e.len as usize);
        decode_event(raw).expect("events in the view were decoded when applied")
    }

    /// The encoded (possibly encrypted) value of an entry (shares the log buffer).
    pub fn body(&self, e: &Entry) -> Bytes {
        self.event(e).body.unwrap_or_default()
    }

    /// The plaintext body for indexing, when the event is not encrypted.
    fn index_body(&self, e: &Entry) -> Option<Bytes> {
        let ev = self.event(e);
        if ev.meta(TAG_CONFIDENTIALITY).is_some() {
            None
        } else {
            ev.body
        }
    }

    /// Applies one committed event of the transaction `seq`.
    pub fn apply(&mut self, ev: &Event, seq: u64) {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        self.events_applied += 1;
        let old = if ev.tombstone {
            self.deleted.insert(ev.key);
            self.entries.remove(&ev.key)
        } else {
            let type_id = self.intern(ev.type_name());
            let (seg, off) = self.locate(&ev.raw);
            let entry = Entry {
                seg,
                off,
                len: ev.raw.len() as u32,
                type_id,
                seq,
            };
            self.entries.insert(ev.key, entry)
        };
        if let Some(old) = old
            && let Some(body) = self.index_body(&old)
        {
            self.indexes.remove(ev.key, old.type_id, &body);
        }
        if !ev.tombstone {
            let e = self.entries[&ev.key];
            if let Some(body) = self.index_body(&e) {
                self.indexes.insert(ev.key, e.type_id, &body);
            }
        }
        // Explicit rules; a version without them inherits again.
        match ev.meta(TAG_AUTHORIZATION).filter(|_| !ev.tombstone) {
            Some(bytes) => match rmp_serde::from_slice::<Authorization>(bytes) {
                Ok(a) if !a.is_inherit() => {
                    self.auth.insert(ev.key, Arc::new(a));
                }
                _ => {
                    self.auth.remove(&ev.key);
                }
            },
            None => {
                self.auth.remove(&ev.key);
            }
        }
        // Keep the tree: a record keeps its place in its collection across updates.
        let new_link = if ev.tombstone { None } else { ev.parent };
        let old_slot = self.parents.get(&ev.key).copied();
        if old_slot.map(|s| s.link) != new_link {
            if let Some(slot) = old_slot {
                self.unlink(ev.key, slot);
            }
            if let Some(link) = new_link {
                self.parents.insert(ev.key, ChildSlot { link, ordinal });
                self.children
                    .entry(link)
                    .or_default()
                    .insert(ordinal, ev.key);
            }
        }
    }

    fn unlink(&mut self, key: PrimaryKey, slot: ChildSlot) {
        self.parents.remove(&key);
        if let Some(kids) = self.children.get_mut(&slot.link) {
            kids.remove(&slot.ordinal);
            if kids.is_empty() {
                self.children.remove(&slot.link);
            }
        }
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
        self.children
            .keys()
            .filter(|l| l.parent == *parent)
            .copied()
            .collect()
    }

    /// Records whose index `field` of type `type_name` has this key, in key order.
    pub fn lookup(&self, type_name: &str, field: &str, key: &[u8]) -> Vec<PrimaryKey> {
        match self.type_ids.get(type_name) {
            Some(id) => self.indexes.lookup(*id, field, key),
            None => Vec::new(),
        }
    }

    /// The owner of a unique index value, if any.
    pub fn unique_owner(&self, type_name: &str, field: &str, key: &[u8]) -> Option<PrimaryKey> {
        self.lookup(type_name, field, key).into_iter().next()
    }

    /// Number of live records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no record is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of events applied since the view was created.
    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    /// Every live key (unordered).
    pub fn keys(&self) -> impl Iterator<Item = PrimaryKey> + '_ {
        self.entries.keys().copied()
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
