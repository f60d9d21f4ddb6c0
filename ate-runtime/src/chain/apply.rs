//! The one path from a validated transaction to the view, taken by the writer (after the group
//! is durable) and by replay (on open).
//!
//! [`Prepared::new`] keeps what the view needs of each event of a decoded, verified transaction
//! as positions in its payload, so it owns no borrowed bytes and can wait (for the fsync of its
//! group, or for its turn in log order) and then be applied to the payload's bytes wherever
//! they lie: the appended frames, or the replayed log.

use crate::event::codec::TransactionRef;
use crate::event::{ParentLink, PrimaryKey};
use crate::trust::{EventKeys, Verified};
use crate::view::{View, ViewEvent};

/// What the view needs of one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planned {
    key: PrimaryKey,
    parent: Option<ParentLink>,
    tombstone: bool,
    /// Where its bytes start in the transaction's payload, and their length.
    at: u32,
    len: u32,
    /// Index of its type name in [`Prepared::types`].
    type_slot: u32,
}

impl EventKeys for Planned {
    fn key(&self) -> PrimaryKey {
        self.key
    }
    fn tombstone(&self) -> bool {
        self.tombstone
    }
    fn parent(&self) -> Option<ParentLink> {
        self.parent
    }
}

impl Planned {
    /// Where its bytes lie in the transaction's payload.
    pub fn span(&self) -> std::ops::Range<usize> {
        self.at as usize..self.at as usize + self.len as usize
    }
}

/// What the view (and the commit stream) needs of a transaction's events: each event's key,
/// place and bytes (as positions in the payload), and the distinct type names.
#[derive(Debug, Default)]
pub(crate) struct TxEvents {
    /// Its events, in order.
    pub events: Vec<Planned>,
    /// The distinct type names of its events.
    types: Vec<Box<str>>,
}

impl TxEvents {
    /// The events of `tx`, decoded from `payload`.
    pub fn of(tx: &TransactionRef<'_>, payload: &[u8]) -> Self {
        let base = payload.as_ptr() as usize;
        let mut types: Vec<Box<str>> = Vec::new();
        let mut events = Vec::with_capacity(tx.events.len());
        for ev in &tx.events {
            // Records written together mostly share their type.
            let type_slot = match types.iter().rposition(|t| **t == *ev.type_name) {
                Some(at) => at,
                None => {
                    types.push(ev.type_name.into());
                    types.len() - 1
                }
            };
            events.push(Planned {
                key: ev.key,
                parent: ev.parent,
                tombstone: ev.tombstone,
                // `raw` borrows `payload`, which a frame bounds to 32 bits.
                at: (ev.raw.as_ptr() as usize - base) as u32,
                len: ev.raw.len() as u32,
                type_slot: type_slot as u32,
            });
        }
        TxEvents { events, types }
    }

    /// The type name of `ev`, one of these events.
    pub fn type_name(&self, ev: &Planned) -> &str {
        self.types.get(ev.type_slot as usize).map_or("", |t| t)
    }
}

/// A decoded and verified transaction, waiting to be checked against the records and applied.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Its sequence number.
    pub seq: u64,
    /// Its events, in order.
    pub events: Vec<Planned>,
    /// The distinct type names of its events.
    types: Vec<Box<str>>,
    /// Its proofs, rules, wrapped data keys and key directory, as verification found them.
    pub verified: Verified,
    /// The lock grant the writer must find current before it takes the transaction.
    pub fence: Option<super::Fence>,
}

impl Prepared {
    /// What the view needs of `tx`, decoded from `payload`, verified as `verified`.
    pub fn new(tx: &TransactionRef<'_>, payload: &[u8], verified: Verified) -> Self {
        let TxEvents { events, types } = TxEvents::of(tx, payload);
        Prepared {
            seq: tx.seq,
            events,
            types,
            verified,
            fence: None,
        }
    }

    /// The distinct type names of its events.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| &**t)
    }

    /// Applies every event, then the wrapped data keys and the key directory, to `view`.
    /// `payload` holds the bytes `new` saw (the same transaction, wherever it lies now).
    /// Returns its events (what the commit stream tells subscribers), without a copy.
    pub fn apply(self, view: &mut View, payload: &[u8]) -> TxEvents {
        let Prepared {
            seq,
            events,
            types,
            verified,
            fence: _,
        } = self;
        // Only the events with metadata are listed, in order; a cursor walks them.
        let mut decoded = verified.trust.into_iter().peekable();
        for (i, ev) in events.iter().enumerate() {
            let auth = decoded
                .next_if(|(at, _)| *at == i)
                .and_then(|(_, t)| t.ok())
                .and_then(|t| t.auth);
            let (at, len) = (ev.at as usize, ev.len as usize);
            let event = ViewEvent {
                key: ev.key,
                parent: ev.parent,
                raw: &payload[at..at + len],
                type_name: &types[ev.type_slot as usize],
                tombstone: ev.tombstone,
            };
            view.apply_event(&event, seq, auth);
        }
        if let Some(keys) = verified.keys {
            view.set_tx_keys(seq, keys);
        }
        if let Some(directory) = verified.directory {
            view.add_directory(&directory);
        }
        view.set_last_seq(seq);
        TxEvents { events, types }
    }
}
