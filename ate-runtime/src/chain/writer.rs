//! The single writer of a chain: validates, appends, fsyncs once per group, updates the view.
//!
//! Committers send transactions over a channel; the writer thread takes every transaction waiting
//! (up to `max_group_commit`), validates each in order against the view plus the earlier
//! transactions of the same group, writes all frames with one append, makes them durable with one
//! fsync, applies them to the view under one write lock, and only then answers each committer.
//! So a commit returns after its bytes are durable and visible, and concurrent committers share
//! one fsync.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::event::{EventDraft, Transaction, decode_transaction, encode_transaction};
use crate::log::{LogStore, RedoLog};

use super::validate::GroupValidator;
use super::{CommitError, Shared};

/// One transaction waiting to be written.
pub(super) struct CommitRequest {
    pub drafts: Vec<EventDraft>,
    pub reply: oneshot::Sender<Result<u64, CommitError>>,
}

pub(super) fn run(
    shared: Arc<Shared>,
    mut log: RedoLog<Box<dyn LogStore>>,
    mut rx: mpsc::UnboundedReceiver<CommitRequest>,
    max_group: usize,
) {
    let mut next_seq = shared.view.read().last_seq() + 1;
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

        // Validate in order; encode the accepted ones.
        let mut accepted: Vec<(CommitRequest, u64, Vec<u8>)> = Vec::with_capacity(group.len());
        {
            let view = shared.view.read();
            let mut validator = GroupValidator::new(&view);
            for req in group {
                match validator.check(&req.drafts) {
                    Ok(()) => {
                        let seq = next_seq;
                        next_seq += 1;
                        let payload = encode_transaction(seq, &req.drafts, &[]);
                        accepted.push((req, seq, payload));
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

        let payloads: Vec<&[u8]> = accepted.iter().map(|(_, _, p)| p.as_slice()).collect();
        let written = log.append(&payloads).and_then(|frames| {
            log.sync()?;
            Ok(frames)
        });
        let frames = match written {
            Ok(frames) => frames,
            Err(e) => {
                // The bytes may or may not be on disk: nothing is acknowledged, the handle is
                // poisoned, and only a reopen (which re-validates the log) can continue.
                tracing::error!(chain = %shared.key, error = %e, "log write failed; chain poisoned");
                shared.poisoned.store(true, Ordering::Release);
                for (req, _, _) in accepted {
                    let _ = req
                        .reply
                        .send(Err(CommitError::Poisoned(format!("{}: {e}", shared.key))));
                }
                continue;
            }
        };

        let segment = frames.buffer;
        let txs: Vec<Transaction> = frames
            .payloads
            .into_iter()
            .map(|payload: Bytes| {
                decode_transaction(payload).expect("a transaction we just encoded decodes")
            })
            .collect();
        {
            let mut view = shared.view.write();
            view.add_segment(segment);
            for tx in &txs {
                for ev in &tx.events {
                    view.apply(ev);
                }
                view.set_last_seq(tx.seq);
            }
        }
        for (req, seq, _) in accepted {
            let _ = req.reply.send(Ok(seq));
        }
    }
}
