//! The single writer of a chain: validates, appends, fsyncs once per group, updates the view.
//!
//! Committers send transactions over a channel; the writer thread takes every transaction waiting
//! (up to `max_group_commit`), validates each in order against the view plus the earlier
//! transactions of the same group, writes all frames with one append, makes them durable with one
//! fsync, applies them to the view under one write lock, and only then answers each committer.
//! So a commit returns after its bytes are durable and visible, and concurrent committers share
//! one fsync.
//!
//! A transaction whose encoding exceeds the log's frame limit is refused with
//! [`CommitError::TooLarge`] before anything is written; the rest of its group goes on. When the
//! append or the fsync of a group fails, every transaction of that group gets
//! [`CommitError::Log`] with the cause (the first one the original error, the others a
//! [`LogError::duplicate`](crate::log::LogError::duplicate) of it), the chain is poisoned, and
//! every later commit gets [`CommitError::Poisoned`] without touching the log.
//!
//! Committers send transactions already encoded, in a buffer with room for the frame header
//! ahead of the payload: the writer writes the sequence number and the header in, and a
//! transaction alone in its group is appended from that very buffer. Each transaction is decoded
//! once, in place, for validation; what the view needs of each event (key, place in the tree,
//! type, decoded rules, and where its bytes lie in the payload) is kept from that decode, and
//! applied from the appended frame buffer, which holds the payload bytes unchanged.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::crypto::Hash;
use crate::event::codec::{TransactionRef, set_transaction_seq};
use crate::event::{ParentLink, PrimaryKey};
use crate::log::{FRAME_HEADER_LEN, LogStore, RedoLog, frame_in_place};
use crate::trust::meta::CheckedMeta;
use crate::trust::{Authorization, Overlay, Verified};
use crate::view::Replayed;

use super::trust::TxKeyTable;
use super::validate::GroupValidator;
use super::{CommitError, Shared};

/// One transaction waiting to be written.
pub(super) struct CommitRequest {
    /// The encoded transaction, built by the committer before its sequence number was known,
    /// after [`FRAME_HEADER_LEN`] bytes of room: the writer writes that number in, and the
    /// frame header into the room, so the buffer is written to the log as it is (the committing
    /// side encodes, the writer only checks).
    pub payload: Vec<u8>,
    /// The events' hashes, computed by the committing Dio in this process (trusted; saves
    /// hashing every event twice). `None`: recompute.
    pub hashes: Option<Vec<Hash>>,
    /// What the committing Dio wrote into each event's trust metadata, in this process
    /// (trusted, like `hashes`; saves decoding it again). `None`: decode it.
    pub trust: Option<Vec<CheckedMeta>>,
    pub reply: oneshot::Sender<Result<u64, CommitError>>,
}

/// One validated event, as the view applies it once its transaction is durable.
struct Pending {
    key: PrimaryKey,
    parent: Option<ParentLink>,
    tombstone: bool,
    /// Where the event's bytes start in its transaction's payload, and their length.
    at: usize,
    len: usize,
    /// Index of its type in [`Accepted::types`].
    type_at: usize,
    /// Its explicit rules, decoded by validation.
    auth: Option<Authorization>,
}

/// A transaction that passed validation, waiting for its group to be durable.
struct Accepted {
    reply: oneshot::Sender<Result<u64, CommitError>>,
    /// Its frame, as written to the log.
    frame: Bytes,
    /// Its payload (a slice of `frame`).
    payload: Bytes,
    seq: u64,
    events: Vec<Pending>,
    /// The distinct type names of its events.
    types: Vec<Box<str>>,
    /// Its wrapped data keys (checked against the events), kept by the view for reads.
    keys: TxKeyTable,
}

/// The events of a transaction and their distinct type names, as the view applies them.
type ForView = (Vec<Pending>, Vec<Box<str>>);

/// What the view needs of each event of `tx` (decoded from `payload`), taking each event's
/// rules out of `verified`.
fn pending(tx: &TransactionRef<'_>, payload: &[u8], verified: Verified) -> ForView {
    let base = payload.as_ptr() as usize;
    let mut types: Vec<Box<str>> = Vec::new();
    let mut events = Vec::with_capacity(tx.events.len());
    let mut decoded = verified.trust.into_iter().peekable();
    for (i, ev) in tx.events.iter().enumerate() {
        let auth = decoded
            .next_if(|(at, _)| *at == i)
            .and_then(|(_, t)| t.ok())
            .and_then(|t| t.auth);
        let type_at = match types.iter().rposition(|t| **t == *ev.type_name) {
            Some(at) => at,
            None => {
                types.push(ev.type_name.into());
                types.len() - 1
            }
        };
        events.push(Pending {
            key: ev.key,
            parent: ev.parent,
            tombstone: ev.tombstone,
            // `raw` borrows `payload`: the subtraction cannot underflow.
            at: (ev.raw.as_ptr() as usize).saturating_sub(base),
            len: ev.raw.len(),
            type_at,
            auth,
        });
    }
    (events, types)
}

pub(super) fn run(
    shared: Arc<Shared>,
    mut log: RedoLog<Box<dyn LogStore>>,
    mut rx: mpsc::UnboundedReceiver<CommitRequest>,
    max_group: usize,
) {
    let mut next_seq = shared.view.read().last_seq() + 1;
    let max_size = log.max_frame();
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        if shared.poisoned.load(Ordering::Acquire) {
            for r in group {
                let _ = r
                    .reply
                    .send(Err(CommitError::Poisoned(shared.key.to_string())));
            }
            continue;
        }

        // Validate in order, each against the view plus the accepted ones ahead of it.
        let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
        {
            let view = shared.view.read();
            let mut unique = GroupValidator::new(&view);
            let mut overlay = Overlay::new();
            for req in group {
                let seq = next_seq;
                let mut frame = req.payload;
                if frame.len() < FRAME_HEADER_LEN {
                    let _ = req.reply.send(Err(CommitError::Refused(
                        "malformed transaction: no room for its frame header".into(),
                    )));
                    continue;
                }
                let size = frame.len() - FRAME_HEADER_LEN;
                if size > max_size {
                    // Refused before it reaches the log: nothing is written, nothing poisoned.
                    let _ = req.reply.send(Err(CommitError::TooLarge {
                        size,
                        max: max_size,
                    }));
                    continue;
                }
                set_transaction_seq(&mut frame[FRAME_HEADER_LEN..], seq);
                frame_in_place(&mut frame);
                let frame = Bytes::from(frame);
                let payload = frame.slice(FRAME_HEADER_LEN..);
                let checked = TransactionRef::decode(&payload)
                    .map_err(|e| CommitError::Refused(format!("malformed transaction: {e}")))
                    .and_then(|tx| {
                        let pending_unique = unique.check(&tx.events)?;
                        let (verified, keys) = shared.trust.validate(
                            &*view,
                            &mut overlay,
                            &tx,
                            &payload,
                            req.hashes.as_deref(),
                            req.trust,
                        )?;
                        unique.accept(pending_unique);
                        Ok((pending(&tx, &payload, verified), keys))
                    });
                match checked {
                    Ok(((events, types), keys)) => {
                        next_seq += 1;
                        accepted.push(Accepted {
                            reply: req.reply,
                            frame,
                            payload,
                            seq,
                            events,
                            types,
                            keys,
                        });
                    }
                    Err(e) => {
                        let _ = req.reply.send(Err(e));
                    }
                }
            }
        }
        if accepted.is_empty() {
            continue;
        }

        let frames: Vec<Bytes> = accepted.iter().map(|a| a.frame.clone()).collect();
        let written = log.append_frames(&frames).and_then(|frames| {
            log.sync()?;
            Ok(frames)
        });
        let frames = match written {
            Ok(frames) => frames,
            Err(e) => {
                // The bytes may or may not be on disk: nothing is acknowledged, the handle is
                // poisoned, and only a reopen (which re-validates the log) can continue. Every
                // transaction of this group learns the cause; later ones get `Poisoned`.
                tracing::error!(chain = %shared.key, error = %e, "log write failed; chain poisoned");
                shared.poisoned.store(true, Ordering::Release);
                let mut replies = accepted.into_iter().map(|a| a.reply);
                let first = replies.next();
                for reply in replies {
                    let _ = reply.send(Err(CommitError::Log(e.duplicate())));
                }
                if let Some(reply) = first {
                    let _ = reply.send(Err(CommitError::Log(e)));
                }
                continue;
            }
        };

        {
            let mut view = shared.view.write();
            view.add_segment(frames.buffer);
            for (i, tx) in accepted.iter_mut().enumerate() {
                // The appended frame holds the payload unchanged; were it ever not there, the
                // view keeps a copy of the payload's bytes instead.
                let appended = frames
                    .payloads
                    .get(i)
                    .filter(|p| p.len() == tx.payload.len())
                    .unwrap_or(&tx.payload);
                let type_ids: Vec<u32> = tx.types.iter().map(|t| view.intern(t)).collect();
                for ev in &mut tx.events {
                    let range = ev.at..ev.at + ev.len;
                    let Some(raw) = appended.get(range.clone()).or(tx.payload.get(range)) else {
                        continue;
                    };
                    let replayed = Replayed {
                        key: ev.key,
                        parent: ev.parent,
                        raw,
                        type_id: type_ids.get(ev.type_at).copied().unwrap_or(0),
                        tombstone: ev.tombstone,
                    };
                    view.apply_replayed(&replayed, tx.seq, ev.auth.take());
                }
                if let Some(keys) = tx.keys.take() {
                    view.set_tx_keys(tx.seq, keys);
                }
                view.set_last_seq(tx.seq);
            }
        }
        for tx in accepted {
            let _ = tx.reply.send(Ok(tx.seq));
        }
    }
}
