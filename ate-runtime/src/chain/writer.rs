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
//! Committers send transactions already encoded and verified (signatures, hashes, metadata,
//! keys: everything that needs no record, done on the committer's side, so a large transaction
//! from elsewhere never stalls this thread), in a buffer with room for the frame header ahead
//! of the payload: the writer writes the sequence number and the header in, and a transaction
//! alone in its group is appended from that very buffer. Each transaction is decoded once here,
//! in place, for the checks against the records; what the view needs of each event is kept from
//! that decode ([`Prepared`]) and applied from the appended frame buffer, which holds the
//! payload bytes unchanged, through the same code replay uses.
//!
//! After a group is durable and applied, the writer records where each of its transactions
//! lies in the chain's history, publishes the new last sequence number (what
//! `Chain::wait_for` waits on), publishes each transaction on the commit stream (only when
//! someone subscribed: one `Arc` and one broadcast send per transaction), and then answers the
//! committers.
//!
//! A replicated transaction (`Chain::apply_replicated`) arrives with the sequence number its
//! source gave it, already written in its encoding: it is accepted only as the next number
//! of the chain ([`CommitError::OutOfOrder`] otherwise, before anything is written), and takes
//! the same path as a local commit from there.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::event::codec::{TransactionRef, set_transaction_seq};
use crate::log::frame::encode_frames;
use crate::log::{Appended, FRAME_HEADER_LEN, LogRecord, LogStore, RedoLog, frame_in_place};
use crate::trust::Overlay;
use crate::view::View;

use super::Prepared;
use super::apply::TxEvents;
use super::compact::CompactError;
use super::history::History;
use super::stream::Committed;
use super::validate::GroupValidator;
use super::{CommitError, Shared};

/// One transaction waiting to be written.
pub(super) struct CommitRequest {
    /// The encoded transaction, built by the committer before its sequence number was known,
    /// after [`FRAME_HEADER_LEN`] bytes of room: the writer writes that number in, and the
    /// frame header into the room, so the buffer is written to the log as it is.
    pub payload: Vec<u8>,
    /// What the committer's side verified of it (proofs, metadata, keys: everything that needs
    /// no record, done before it reached this thread) and what the checks and the view need of
    /// its events, so this thread decodes it only for unique indexes and validator plugins.
    pub prepared: Prepared,
    /// For a replicated transaction, the sequence number its source gave it (written in the
    /// payload already); `None` for the writer to number it.
    pub stated: Option<u64>,
    pub reply: oneshot::Sender<Result<u64, CommitError>>,
}

/// What the writer is asked to do.
// Commits are the hot path and are not boxed; a swap, rare and large, is.
#[allow(clippy::large_enum_variant)]
pub(super) enum WriterMsg {
    /// Commit a transaction.
    Commit(CommitRequest),
    /// Put a compacted log in place of the chain's.
    Swap(Box<Swap>),
}

/// A compacted log, ready to take the chain's log's place (see `Chain::compact`).
pub(super) struct Swap {
    /// The compacted log (header and frames) of the transactions up to `through`.
    pub contents: Bytes,
    /// The last transaction it holds or judged.
    pub through: u64,
    /// The view and history replayed from `contents` (which their payloads are slices of).
    pub view: View,
    pub history: History,
    /// Answered with the log's size before and after.
    pub reply: oneshot::Sender<Result<(u64, u64), CompactError>>,
}

/// Where the writer publishes what it committed.
pub(super) struct Publish {
    /// The sequence number of the last transaction applied.
    pub applied: watch::Sender<u64>,
    /// Each committed transaction, for subscribers.
    pub commits: broadcast::Sender<Committed>,
}

/// A transaction that passed validation, waiting for its group to be durable.
struct Accepted {
    reply: oneshot::Sender<Result<u64, CommitError>>,
    /// Its frame, as written to the log.
    frame: Bytes,
    prepared: Prepared,
}

pub(super) fn run(
    shared: Arc<Shared>,
    mut log: RedoLog<Box<dyn LogStore>>,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    max_group: usize,
    publish: Publish,
) {
    let mut next_seq = shared.view.read().last_seq() + 1;
    while let Some(first) = rx.blocking_recv() {
        let first = match first {
            WriterMsg::Commit(c) => c,
            WriterMsg::Swap(s) => {
                swap(&shared, &mut log, s, &mut next_seq, &publish);
                continue;
            }
        };
        let mut group = vec![first];
        // A swap asked for while the group gathers comes right after the group.
        let mut then_swap = None;
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(WriterMsg::Commit(r)) => group.push(r),
                Ok(WriterMsg::Swap(s)) => {
                    then_swap = Some(s);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(&shared, &mut log, group, &mut next_seq, &publish);
        if let Some(s) = then_swap {
            swap(&shared, &mut log, s, &mut next_seq, &publish);
        }
    }
}

/// Puts the compacted log `s` in place of the chain's: the transactions committed since it
/// was built are appended to it (and applied to its view), the log's store swaps its bytes
/// (crash-safely), and the chain's view and history become the compacted ones. On an error the
/// chain goes on with its log as it was.
fn swap(
    shared: &Shared,
    log: &mut RedoLog<Box<dyn LogStore>>,
    s: Box<Swap>,
    next_seq: &mut u64,
    publish: &Publish,
) {
    let Swap {
        contents,
        through,
        mut view,
        mut history,
        reply,
    } = *s;
    let before = log.len();
    let swapped = (|| {
        if shared.poisoned.load(Ordering::Acquire) {
            return Err(CompactError::Commit(CommitError::Poisoned(
                shared.key.to_string(),
            )));
        }
        // Committed since the snapshot: kept as they are, after the compacted part.
        let tail = shared.history.read().payloads_from(through + 1, usize::MAX);
        let tail_frames =
            encode_frames(&tail.iter().map(|(_, p)| &p[..]).collect::<Vec<_>>()).freeze();
        if !tail.is_empty() {
            let mut at = 0;
            let records: Vec<LogRecord> = tail
                .iter()
                .map(|(_, p)| {
                    let payload =
                        tail_frames.slice(at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + p.len());
                    let rec = LogRecord {
                        offset: contents.len() as u64 + at as u64,
                        payload,
                    };
                    at += FRAME_HEADER_LEN + p.len();
                    rec
                })
                .collect();
            view.add_segment(tail_frames.clone());
            super::replay::replay_after(&mut view, &shared.trust, &records, through)
                .map_err(|e| CompactError::Replay(Box::new(e)))?;
            history.append_group(
                contents.len() as u64,
                tail_frames.clone(),
                records.iter().map(|r| FRAME_HEADER_LEN + r.payload.len()),
            );
        }
        let all = if tail.is_empty() {
            contents
        } else {
            let mut all = Vec::with_capacity(contents.len() + tail_frames.len());
            all.extend_from_slice(&contents);
            all.extend_from_slice(&tail_frames);
            Bytes::from(all)
        };
        log.replace(&all).map_err(CompactError::Log)?;
        shared.compaction.rebase(all.len() as u64);
        // A replica rebuilt from its server's compacted log may have moved on.
        let last = view.last_seq();
        *shared.view.write() = view;
        *shared.history.write() = history;
        if last >= *next_seq {
            *next_seq = last + 1;
            publish.applied.send_replace(last);
        }
        Ok((before, all.len() as u64))
    })();
    if let Err(e) = &swapped {
        tracing::warn!(chain = %shared.key, error = %e, "compaction not swapped in; the log is as it was");
    }
    let _ = reply.send(swapped);
}

/// Validates, writes, makes durable and applies one group of commits, and answers them.
fn commit_group(
    shared: &Shared,
    log: &mut RedoLog<Box<dyn LogStore>>,
    group: Vec<CommitRequest>,
    next_seq: &mut u64,
    publish: &Publish,
) {
    {
        if shared.poisoned.load(Ordering::Acquire) {
            for r in group {
                let _ = r
                    .reply
                    .send(Err(CommitError::Poisoned(shared.key.to_string())));
            }
            return;
        }
        let accepted = validate_group(shared, group, next_seq, log.max_frame());
        if accepted.is_empty() {
            return;
        }
        let frames: Vec<Bytes> = accepted.iter().map(|a| a.frame.clone()).collect();
        let at = log.len();
        let written = log.append_frames(&frames).and_then(|frames| {
            log.sync()?;
            Ok(frames)
        });
        match written {
            Ok(frames) => {
                // Before the committers hear back, so that what they read next counts it.
                shared
                    .compaction
                    .committed(next_seq.saturating_sub(1), log.len());
                finish_group(shared, publish, at, accepted, frames);
            }
            Err(e) => {
                // The bytes may or may not be on disk: nothing is acknowledged, the handle is
                // poisoned, and only a reopen (which re-validates the log) can continue. Every
                // transaction of this group learns the cause; later ones get `Poisoned`.
                tracing::error!(chain = %shared.key, error = %e, "log write failed; chain poisoned");
                shared.poisoned.store(true, Ordering::Release);
                // Wakes those waiting for a sequence number: it will not come.
                publish.applied.send_modify(|_| {});
                let mut replies = accepted.into_iter().map(|a| a.reply);
                let first = replies.next();
                for reply in replies {
                    let _ = reply.send(Err(CommitError::Log(e.duplicate())));
                }
                if let Some(reply) = first {
                    let _ = reply.send(Err(CommitError::Log(e)));
                }
            }
        }
    }
}

/// After a group appended at log offset `at` is durable: applies it to the view, records it
/// in the history, publishes it, and answers its committers.
fn finish_group(
    shared: &Shared,
    publish: &Publish,
    at: u64,
    accepted: Vec<Accepted>,
    frames: Appended,
) {
    let lens: Vec<usize> = accepted.iter().map(|a| a.frame.len()).collect();
    let buffer = frames.buffer.clone();
    let (replies, committed) = apply_group(&mut shared.view.write(), accepted, frames);
    shared
        .history
        .write()
        .append_group(at, buffer, lens.into_iter());
    if let Some(&(_, last)) = replies.last() {
        publish.applied.send_replace(last);
    }
    // Asked after the history has the group: a stream subscribed since reads it there.
    if publish.commits.receiver_count() > 0 {
        for (seq, payload, events) in committed {
            // No receiver left: nobody to tell.
            let _ = publish.commits.send(Committed::new(seq, payload, events));
        }
    }
    for (reply, seq) in replies {
        let _ = reply.send(Ok(seq));
    }
}

/// Validates a group in order, each transaction against the view plus the accepted ones ahead
/// of it; answers the refused ones and returns the accepted ones, numbered from `next_seq`.
fn validate_group(
    shared: &Shared,
    group: Vec<CommitRequest>,
    next_seq: &mut u64,
    max_size: usize,
) -> Vec<Accepted> {
    let view = shared.view.read();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
    let mut unique = GroupValidator::new(&view);
    let mut overlay = Overlay::new();
    let mut staged = Overlay::new();
    for req in group {
        let mut frame = req.payload;
        let size = frame.len().saturating_sub(FRAME_HEADER_LEN);
        if size > max_size {
            // Refused before it reaches the log: nothing is written, nothing poisoned.
            let _ = req.reply.send(Err(CommitError::TooLarge {
                size,
                max: max_size,
            }));
            continue;
        }
        let seq = *next_seq;
        match req.stated {
            None => set_transaction_seq(frame.get_mut(FRAME_HEADER_LEN..).unwrap_or_default(), seq),
            Some(stated) if stated == seq => {}
            Some(stated) => {
                let _ = req.reply.send(Err(CommitError::OutOfOrder {
                    expected: seq,
                    got: stated,
                }));
                continue;
            }
        }
        if let Some(fence) = &req.prepared.fence
            && !shared.locks.is_current(fence)
        {
            let _ = req.reply.send(Err(CommitError::Fenced {
                lock: fence.lock.clone(),
                token: fence.token,
            }));
            continue;
        }
        frame_in_place(&mut frame);
        let frame = Bytes::from(frame);
        let payload = frame.slice(FRAME_HEADER_LEN.min(frame.len())..);
        let checked = check_one(
            shared,
            &view,
            &overlay,
            &mut unique,
            &payload,
            req.prepared,
            seq,
            &mut staged,
        )
        .inspect(|_| overlay.merge(std::mem::take(&mut staged)));
        match checked {
            Ok(prepared) => {
                *next_seq += 1;
                accepted.push(Accepted {
                    reply: req.reply,
                    frame,
                    prepared,
                });
            }
            Err(e) => {
                let _ = req.reply.send(Err(e));
            }
        }
    }
    accepted
}

/// Checks one transaction against the view plus the accepted ones ahead of it (`overlay`, and
/// `unique` for the chain's schema and unique index values); `staged` receives its effects. The
/// payload is decoded again only when the schema or a validator plugin needs its events' bytes.
#[allow(clippy::too_many_arguments)]
fn check_one(
    shared: &Shared,
    view: &View,
    overlay: &Overlay,
    unique: &mut GroupValidator<'_>,
    payload: &Bytes,
    mut prepared: Prepared,
    seq: u64,
    staged: &mut Overlay,
) -> Result<Prepared, CommitError> {
    // The committer built it before its number was known.
    prepared.seq = seq;
    let validators = shared.trust.has_validators();
    let tx = if validators || unique.needs_check(&prepared) {
        Some(TransactionRef::decode(payload).map_err(CommitError::Malformed)?)
    } else {
        None
    };
    let owned = tx
        .as_ref()
        .filter(|_| validators)
        .map(|tx| tx.to_transaction(payload));
    shared.trust.check(
        view,
        overlay,
        &prepared.events,
        seq,
        &prepared.verified,
        owned.as_ref(),
        staged,
    )?;
    // After the rights: a schema record may make the schema's checks read every record of
    // its type, which only the chain root's writers may ask for.
    let pending_unique = match &tx {
        Some(tx) => unique.check(&tx.events)?,
        None => None,
    };
    unique.accept(pending_unique, payload);
    Ok(prepared)
}

/// Each committer's reply channel and sequence number.
type Reply = (oneshot::Sender<Result<u64, CommitError>>, u64);

/// A transaction applied: its number, payload and events, for the commit stream.
type Applied = (u64, Bytes, TxEvents);

/// Applies a durable group to the view, each transaction from its appended frame; returns each
/// committer's reply channel and sequence number, and each transaction for the commit stream.
fn apply_group(
    view: &mut View,
    accepted: Vec<Accepted>,
    frames: Appended,
) -> (Vec<Reply>, Vec<Applied>) {
    view.add_segment(frames.buffer.clone());
    let mut replies = Vec::with_capacity(accepted.len());
    let mut committed = Vec::with_capacity(accepted.len());
    for (i, tx) in accepted.into_iter().enumerate() {
        // The appended frame holds the payload unchanged (the view then keeps it without a
        // copy); were it ever not there, the view copies the transaction's own bytes.
        let own = &tx.frame[FRAME_HEADER_LEN..];
        let appended = frames
            .payloads
            .get(i)
            .filter(|p| p.len() == own.len())
            .map_or(own, |p| &p[..]);
        let seq = tx.prepared.seq;
        let events = tx.prepared.apply(view, appended);
        let payload = match frames.payloads.get(i) {
            Some(p) if p.len() == own.len() => p.clone(),
            _ => tx.frame.slice(FRAME_HEADER_LEN..),
        };
        committed.push((seq, payload, events));
        replies.push((tx.reply, seq));
    }
    (replies, committed)
}
