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

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::crypto::Hash;
use crate::event::{EventDraft, Transaction, TxTrailer, decode_transaction, encode_transaction};
use crate::log::{LogStore, RedoLog};
use crate::trust::Overlay;

use super::validate::GroupValidator;
use super::{CommitError, Shared};

/// One transaction waiting to be written.
pub(super) struct CommitRequest {
    pub drafts: Vec<EventDraft>,
    pub trailers: Vec<TxTrailer>,
    /// The events' hashes, computed by the committing Dio in this process (trusted; saves
    /// hashing every event twice). `None`: recompute.
    pub hashes: Option<Vec<Hash>>,
    pub reply: oneshot::Sender<Result<u64, CommitError>>,
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
        let mut accepted: Vec<(oneshot::Sender<Result<u64, CommitError>>, Bytes)> =
            Vec::with_capacity(group.len());
        {
            let view = shared.view.read();
            let mut unique = GroupValidator::new(&view);
            let mut overlay = Overlay::new();
            for req in group {
                let seq = next_seq;
                let payload = Bytes::from(encode_transaction(seq, &req.drafts, &req.trailers));
                if payload.len() > max_size {
                    // Refused before it reaches the log: nothing is written, nothing poisoned.
                    let _ = req.reply.send(Err(CommitError::TooLarge {
                        size: payload.len(),
                        max: max_size,
                    }));
                    continue;
                }
                let checked = decode_transaction(payload.clone())
                    .map_err(|e| CommitError::Refused(format!("malformed transaction: {e}")))
                    .and_then(|tx| {
                        let pending = unique.check(&req.drafts)?;
                        shared.trust.validate(
                            &*view,
                            &mut overlay,
                            &tx,
                            seq,
                            req.hashes.as_deref(),
                        )?;
                        unique.accept(pending);
                        Ok(())
                    });
                match checked {
                    Ok(()) => {
                        next_seq += 1;
                        accepted.push((req.reply, payload));
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

        let payloads: Vec<&[u8]> = accepted.iter().map(|(_, p)| &p[..]).collect();
        let written = log.append(&payloads).and_then(|frames| {
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
                let mut replies = accepted.into_iter().map(|(reply, _)| reply);
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

        let txs: Vec<Transaction> = frames
            .payloads
            .into_iter()
            .map(|payload| {
                decode_transaction(payload).expect("a transaction we just encoded decodes")
            })
            .collect();
        {
            let mut view = shared.view.write();
            view.add_segment(frames.buffer);
            for tx in &txs {
                for ev in &tx.events {
                    view.apply(ev, tx.seq);
                }
                view.set_last_seq(tx.seq);
            }
        }
        for ((reply, _), tx) in accepted.into_iter().zip(&txs) {
            let _ = reply.send(Ok(tx.seq));
        }
    }
}
