//! Replicas: chains whose transactions come from a source chain elsewhere, at the source's
//! sequence numbers, and whose commits go to that source.
//!
//! A replica is a local chain in every other way: its own log (in memory or in a file), view
//! and writer. What makes it a replica is
//! - [`Chain::apply_replicated`]: a transaction received from the source is verified in full
//!   as a transaction from elsewhere (hashes, signatures, vouches by the pinned server keys,
//!   rights, versions, the size cap) and goes through the same writer and apply path as a
//!   local commit, but keeps the number the source gave it, so the replica's log matches the
//!   source's position for position;
//! - its [`Upstream`]: a Dio's commit (and `commit_transaction`, `commit_sealed`) seals the
//!   transaction and hands it to the upstream, which has the source commit it, and returns once
//!   the replica has applied the number the source gave it (read-your-writes).
//!
//! Whatever moves the transactions from the source's commit stream to
//! [`Chain::apply_replicated`] (a network client, or a task in the same process) is not part
//! of the chain.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::sealed::SealedTransaction;
use super::{
    Chain, ChainTrust, CommitError, FRAME_HEADER_LEN, Foreign, Prepared, Submitted,
    VERIFY_ASIDE_BYTES, verify_foreign,
};

/// Where a replica chain's commits go: the chain's source, reached somehow (over the network,
/// or in the same process). Given to [`ChainRegistry::open_replica`](super::ChainRegistry::open_replica).
#[async_trait::async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug + 'static {
    /// Has the chain's source commit `tx` (as its
    /// [`Chain::commit_sealed`] does: checked in full, durable before it answers), and returns
    /// the sequence number the source gave it.
    ///
    /// # Errors
    ///
    /// The source's refusal, as the [`CommitError`] a local commit gets (a stale version is
    /// `CommitError::Trust(TrustError::VersionMismatch { .. })`, a missing right
    /// `CommitError::Trust(TrustError::Unauthorized { .. })`, …);
    /// [`CommitError::Unreachable`] when the transaction never reached the source;
    /// [`CommitError::OutcomeUnknown`] when the source was lost after the transaction was
    /// sent and before its answer (only then).
    ///
    /// # Cancel safety
    ///
    /// A Dio calls it on a task of its own, which is never cancelled: an implementation need
    /// not be cancel safe for Dio commits. `Chain::commit_transaction` and
    /// `Chain::commit_sealed` on a replica call it on the caller's task.
    async fn commit(&self, tx: SealedTransaction) -> Result<u64, CommitError>;

    /// Waits until `replica` has applied the transaction `seq` that the source committed
    /// (what makes a replica's commit read-your-writes). The default waits with
    /// [`Chain::wait_for`]; an upstream that knows it will not deliver `seq` (its connection
    /// is gone) should return an error instead: a Dio's commit in flight holds the replica
    /// open until this returns.
    ///
    /// # Errors
    ///
    /// Those of [`Chain::wait_for`], and what the upstream reports (then typically
    /// [`CommitError::OutcomeUnknown`]: the source did commit it, but the replica cannot show
    /// it yet).
    ///
    /// # Cancel safety
    ///
    /// As [`Upstream::commit`].
    async fn wait_applied(&self, replica: &Chain, seq: u64) -> Result<(), CommitError> {
        replica.wait_for(seq).await
    }

    /// Waits until `replica` has caught up with its source: what [`Chain::sync`] does on a
    /// replica. The default returns at once (an upstream that delivers synchronously is always
    /// caught up).
    ///
    /// # Errors
    ///
    /// What the upstream reports when it cannot catch up (typically
    /// [`CommitError::Unreachable`]).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    async fn sync(&self, replica: &Chain) -> Result<(), CommitError> {
        let _ = replica;
        Ok(())
    }

    /// Claims the record `key` (a queue item) at the source for `lease`, so that other
    /// consumers of the queue pass it by: its token, or `None` while another consumer holds
    /// it. A claim only spares duplicate work; processing stays exactly once without it (the
    /// consumer's commit deletes the item naming the version it read). The default grants
    /// every claim (an upstream that cannot coordinate).
    ///
    /// # Errors
    ///
    /// What the upstream reports when it cannot ask (typically [`CommitError::Unreachable`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the claim granted at the source; it ends with its lease.
    async fn claim(
        &self,
        key: crate::event::PrimaryKey,
        lease: std::time::Duration,
    ) -> Result<Option<u64>, CommitError> {
        let _ = (key, lease);
        Ok(Some(0))
    }

    /// Claims at the source the oldest items of a collection that nobody has claimed, as
    /// `ask` says (at most [`MAX_CLAIM_BATCH`](super::MAX_CLAIM_BATCH)), for the queue
    /// consumers of `replica` ([`Bus::process`](crate::bus::Bus::process)): one ask takes the
    /// next free items, where claiming them one by one would need an ask per item tried. The
    /// default walks `replica`'s view of the collection, oldest first, and asks
    /// [`Upstream::claim`] for each item until it holds `ask.max` (an upstream without a
    /// view of its own).
    ///
    /// # Errors
    ///
    /// What the upstream reports when it cannot ask (typically [`CommitError::Unreachable`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave claims granted at the source; they end with their lease.
    async fn claim_next(
        &self,
        replica: &Chain,
        ask: &super::ClaimNext,
    ) -> Result<super::NextClaims, CommitError> {
        let (candidates, seen): (Vec<_>, u64) = {
            let view = replica.view().read();
            let candidates = match view.type_id(&ask.type_name) {
                Some(type_id) => view
                    .children(&ask.link)
                    .take(super::MAX_CLAIM_SCAN)
                    .filter_map(|k| {
                        view.get(&k)
                            .filter(|e| e.type_id == type_id)
                            .map(|e| (k, e.seq))
                    })
                    .collect(),
                None => Vec::new(),
            };
            (candidates, view.last_seq())
        };
        let max = ask.max.min(super::MAX_CLAIM_BATCH);
        let mut items = Vec::new();
        for (key, seq) in candidates {
            if items.len() >= max {
                break;
            }
            if let Some(token) = self.claim(key, ask.lease).await? {
                items.push(super::ClaimedItem::new(key, token, seq));
            }
        }
        Ok(super::NextClaims::new(items, seen))
    }

    /// Has the chain's source commit `tx` only while `fence` is the current grant of its lock
    /// there ([`Upstream::commit`] otherwise). The default refuses: an upstream without locks
    /// cannot check a fence.
    ///
    /// # Errors
    ///
    /// [`CommitError::Fenced`] when the grant is no longer current; the rest as
    /// [`Upstream::commit`].
    ///
    /// # Cancel safety
    ///
    /// As [`Upstream::commit`].
    async fn commit_fenced(
        &self,
        tx: SealedTransaction,
        fence: super::Fence,
    ) -> Result<u64, CommitError> {
        let _ = (tx, fence);
        Err(CommitError::Refused(
            "this chain's source does not check fences".into(),
        ))
    }

    /// Takes the lock `name` at the source for `lease` if nobody holds it: the grant's
    /// fencing token, or `None`. The default refuses (an upstream without locks).
    ///
    /// # Errors
    ///
    /// What the upstream reports (typically [`CommitError::Unreachable`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the lock granted; it ends with its lease.
    async fn lock(
        &self,
        name: &str,
        lease: std::time::Duration,
    ) -> Result<Option<u64>, CommitError> {
        let _ = (name, lease);
        Err(CommitError::Refused(
            "this chain's source holds no locks".into(),
        ))
    }

    /// Releases the grant `token` of the lock `name` (best effort: it also ends with its lease
    /// and its connection). The default does nothing.
    fn unlock(&self, name: &str, token: u64) {
        let _ = (name, token);
    }

    /// Ends the claim `token` on `key` (best effort: a claim also ends with its lease, and
    /// with the connection that holds it). The default does nothing.
    fn release(&self, key: crate::event::PrimaryKey, token: u64) {
        let _ = (key, token);
    }
}

/// A batch of replicated transactions is verified in pieces of about this many bytes…
const PIECE_BYTES: usize = 256 << 10;
/// …or this many transactions, whichever comes first.
const PIECE_TRANSACTIONS: usize = 256;
/// Most pieces verified at once (on blocking threads).
const MAX_VERIFYING: usize = 8;

/// How many pieces to verify at once: the cores, up to [`MAX_VERIFYING`] (asked once: the
/// answer reads cgroup files).
fn verifying_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_VERIFYING)
    })
}

/// A replicated transaction verified and ready for the writer: its buffer (after room for the
/// frame header), what the writer needs of it, and its number.
type Verified = (Vec<u8>, Prepared, u64);

impl Chain {
    /// Applies a transaction received from the chain's source at the sequence number `seq`
    /// the source gave it: `payload` is its bytes as the source's log frame holds them
    /// ([`Committed::payload`](super::Committed::payload)). It is checked in full as a
    /// transaction from elsewhere (hashes, signatures, vouches against the pinned server keys,
    /// rights, versions, unique indexes, [`AteConfig::max_foreign_transaction_bytes`](super::AteConfig))
    /// and written by the chain's writer like a local commit, as number `seq`: the replica's
    /// log holds the source's transactions position for position. Returns once it is durable
    /// and in the view.
    ///
    /// Unlike [`Chain::commit_transaction`], a vouch is accepted (verified against the pinned
    /// server keys): the source's server vouches. One caller at a time: for many
    /// transactions, [`Chain::apply_replicated_batch`] verifies them in parallel and commits
    /// them in one group.
    ///
    /// # Errors
    ///
    /// [`CommitError::OutOfOrder`] unless `seq` is the chain's next number
    /// ([`Chain::last_seq`] + 1); [`CommitError::SeqMismatch`] when the payload carries
    /// another number; [`CommitError::TooLarge`], [`CommitError::Malformed`],
    /// [`CommitError::Trust`] and [`CommitError::UniqueViolation`] for a transaction that
    /// fails its checks; [`CommitError::Log`], [`CommitError::Poisoned`] and
    /// [`CommitError::Closed`] as for a local commit. Nothing is written on error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not leave the transaction applied (it may already be
    /// with the writer); [`Chain::last_seq`] tells.
    pub async fn apply_replicated(&self, seq: u64, payload: Bytes) -> Result<(), CommitError> {
        self.apply_replicated_batch(vec![(seq, payload)]).await
    }

    /// [`Chain::apply_replicated`] for consecutive transactions of the source, in order: they
    /// are verified in parallel (on blocking threads, a piece at a time, each piece handed to
    /// the writer as soon as it is verified) and written in as few group commits (fsyncs) as
    /// the writer takes them. They are applied in order up to the first that fails (an
    /// out-of-order number included); that one and every one after it are not, and its error
    /// is returned once the ones before it are durable and in the view.
    ///
    /// # Errors
    ///
    /// Those of [`Chain::apply_replicated`], for the first transaction that fails.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave a prefix of the batch applied; [`Chain::last_seq`] tells
    /// how far.
    pub async fn apply_replicated_batch(
        &self,
        mut batch: Vec<(u64, Bytes)>,
    ) -> Result<(), CommitError> {
        let Some(&(first, _)) = batch.first() else {
            return Ok(());
        };
        // Refused before any work (the writer checks again, in its order).
        let expected = self.last_seq() + 1;
        if first != expected {
            return Err(CommitError::OutOfOrder {
                expected,
                got: first,
            });
        }
        // Numbers that do not follow each other: the batch ends before the first that does not.
        let mut failed = batch
            .iter()
            .enumerate()
            .find_map(|(i, (seq, _))| {
                let expected = first.checked_add(i as u64)?;
                (*seq != expected).then_some((i, expected, *seq))
            })
            .map(|(i, expected, got)| {
                batch.truncate(i);
                CommitError::OutOfOrder { expected, got }
            });
        // A small batch (the live stream, mostly) is verified here: a blocking thread's
        // handoff would cost more than the work.
        let bytes: usize = batch.iter().map(|(_, p)| p.len()).sum();
        let submitted = if bytes < VERIFY_ASIDE_BYTES {
            let mut submitted = Vec::with_capacity(batch.len());
            for (seq, payload) in batch {
                let handed = verify_one(
                    &self.inner.shared.trust,
                    self.inner.max_foreign,
                    seq,
                    &payload,
                )
                .and_then(|(buffer, prepared, seq)| self.submit_as(buffer, prepared, Some(seq)));
                match handed {
                    Ok(s) => submitted.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            submitted
        } else {
            let (submitted, failure) = self.verify_and_submit(batch).await;
            failed = failure.or(failed);
            submitted
        };
        for s in submitted {
            s.outcome().await?;
        }
        failed.map_or(Ok(()), Err)
    }

    /// Verifies `batch` in pieces on blocking threads and hands each transaction to the writer
    /// in order, up to the first that fails; returns the ones handed over, and that failure.
    async fn verify_and_submit(
        &self,
        batch: Vec<(u64, Bytes)>,
    ) -> (Vec<Submitted>, Option<CommitError>) {
        let workers = verifying_threads();
        let mut pieces = pieces(batch).into_iter();
        let mut verifying = VecDeque::new();
        let mut submitted = Vec::new();
        loop {
            while verifying.len() < workers {
                let Some(piece) = pieces.next() else { break };
                let shared = self.inner.shared.clone();
                let max = self.inner.max_foreign;
                verifying.push_back(tokio::task::spawn_blocking(move || {
                    verify_piece(&shared.trust, max, piece)
                }));
            }
            let Some(next) = verifying.pop_front() else {
                return (submitted, None);
            };
            let verified = match next.await {
                Ok(verified) => verified,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return (submitted, Some(CommitError::Closed)),
            };
            for one in verified {
                match one
                    .and_then(|(buffer, prepared, seq)| self.submit_as(buffer, prepared, Some(seq)))
                {
                    Ok(s) => submitted.push(s),
                    // The pieces still being verified are left to finish; nothing after this
                    // is handed over.
                    Err(e) => return (submitted, Some(e)),
                }
            }
        }
    }

    /// Has the upstream's source commit `tx`, then waits until this replica applied it.
    pub(super) async fn commit_upstream(
        &self,
        upstream: Arc<dyn Upstream>,
        tx: SealedTransaction,
        fence: Option<super::Fence>,
    ) -> Result<u64, CommitError> {
        let seq = match fence {
            Some(f) => upstream.commit_fenced(tx, f).await?,
            None => upstream.commit(tx).await?,
        };
        upstream.wait_applied(self, seq).await?;
        Ok(seq)
    }

    /// Sends a Dio's transaction to this replica's source on a task of its own (so it goes on
    /// whatever happens to the commit that sent it), whose outcome is the [`Submitted`]'s: the
    /// number the source gave it once the replica applied it, or why it was not committed.
    pub(crate) fn send_upstream(
        &self,
        tx: SealedTransaction,
        fence: Option<super::Fence>,
    ) -> Result<Submitted, CommitError> {
        let upstream = self.inner.upstream.clone().ok_or(CommitError::Closed)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| CommitError::Unreachable(Box::new(e)))?;
        let (reply, rx) = oneshot::channel();
        let chain = self.clone();
        runtime.spawn(async move {
            let outcome = chain.commit_upstream(upstream, tx, fence).await;
            let _ = reply.send(outcome);
        });
        Ok(Submitted(rx))
    }
}

/// Splits a batch into pieces of about [`PIECE_BYTES`] or [`PIECE_TRANSACTIONS`].
fn pieces(batch: Vec<(u64, Bytes)>) -> Vec<Vec<(u64, Bytes)>> {
    let mut out = Vec::new();
    let mut piece = Vec::new();
    let mut bytes = 0usize;
    for item in batch {
        bytes = bytes.saturating_add(item.1.len());
        piece.push(item);
        if bytes >= PIECE_BYTES || piece.len() >= PIECE_TRANSACTIONS {
            out.push(std::mem::take(&mut piece));
            bytes = 0;
        }
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

/// Verifies a piece in order, up to and including the first that fails.
fn verify_piece(
    trust: &ChainTrust,
    max: usize,
    piece: Vec<(u64, Bytes)>,
) -> Vec<Result<Verified, CommitError>> {
    let mut out = Vec::with_capacity(piece.len());
    for (seq, payload) in piece {
        let one = verify_one(trust, max, seq, &payload);
        let failed = one.is_err();
        out.push(one);
        if failed {
            break;
        }
    }
    out
}

/// Checks a replicated transaction's size, then verifies it in full; returns it in the form
/// the writer takes.
fn verify_one(
    trust: &ChainTrust,
    max: usize,
    seq: u64,
    payload: &[u8],
) -> Result<Verified, CommitError> {
    if payload.len() > max {
        return Err(CommitError::TooLarge {
            size: payload.len(),
            max,
        });
    }
    let mut buffer = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    buffer.resize(FRAME_HEADER_LEN, 0);
    buffer.extend_from_slice(payload);
    let prepared = verify_foreign(trust, &buffer, Foreign::replicated(seq))?;
    Ok((buffer, prepared, seq))
}
