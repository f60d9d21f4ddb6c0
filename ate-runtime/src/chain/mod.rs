//! Chains: a redo log, its materialized view and its single writer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ate_runtime::AteError> {
//! use ate_runtime::prelude::*;
//! let conf = AteConfig::default();
//! let builder = ChainBuilder::new(&conf).await.build();
//! let chain = builder.open(&ChainKey::from("universe")).await?;
//! # let _ = chain; Ok(()) }
//! ```
//!
//! Replication sits on four seams of a chain: its commit stream ([`Chain::subscribe`], every
//! committed transaction in log order, history then live), reads from a position
//! ([`Chain::read_from`]), replicated applies at the source's sequence numbers
//! ([`Chain::apply_replicated`]), and sealed transactions committed anywhere
//! ([`SealedTransaction`], [`Chain::commit_sealed`]). A replica
//! ([`ChainRegistry::open_replica`]) is a local chain whose commits go to an [`Upstream`]:
//!
//! ```no_run
//! # async fn demo(upstream: std::sync::Arc<dyn ate_runtime::chain::Upstream>,
//! #     source: ate_runtime::Chain) -> Result<(), ate_runtime::AteError> {
//! use ate_runtime::prelude::*;
//! let key = ChainKey::from("universe");
//! let replica = ChainBuilder::new(&AteConfig::in_memory())
//!     .await
//!     .build()
//!     .open_replica(&key, upstream)
//!     .await?;
//! // Whatever carries the source's commits applies them (here, the source is in this process).
//! let mut stream = source.subscribe(replica.last_seq() + 1);
//! let pump = replica.clone();
//! tokio::spawn(async move {
//!     while let Ok(c) = stream.next().await {
//!         if pump.apply_replicated(c.seq(), c.payload().clone()).await.is_err() {
//!             break;
//!         }
//!     }
//! });
//! // The same code as on a local chain: committed by the source, then applied here.
//! let mut dio = replica.dio(&AteSession::default()).await;
//! dio.store("hello".to_string())?;
//! dio.commit().await?;
//! # Ok(()) }
//! ```

mod apply;
mod claims;
pub(crate) mod compact;
mod locks;
pub(crate) use apply::Prepared;
mod config;
mod error;
mod history;
mod key;
mod replay;
mod replica;
mod schemas;
mod sealed;
mod stream;
mod trust;
mod validate;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub(crate) use claims::ClaimGuard;
pub use claims::{ClaimNext, ClaimedItem, MAX_CLAIM_BATCH, MAX_CLAIM_SCAN, NextClaims};
pub use compact::auto::{CompactMode, MIN_COMPACT_FACTOR, MIN_COMPACT_GROWTH, MIN_COMPACT_PERIOD};
pub use compact::checkpoint::CheckpointError;
pub use compact::{CompactError, CompactReport};
pub use config::{
    AteConfig, DEFAULT_COMMIT_STREAM_CAPACITY, DEFAULT_MAX_FOREIGN_TRANSACTION, default_log_path,
};
pub use error::{BoxError, CommitError, OpenError, StreamError};
pub use key::{ChainKey, ChainKeyError};
pub use locks::{DEFAULT_LOCK_LEASE, Fence, LockGuard, MAX_LOCK_NAME};
pub use replica::Upstream;
pub use sealed::SealedTransaction;
pub use stream::{CommitStream, Committed, CommittedEvent};

use crate::Dio;
use crate::crypto::{Hash, PrivateSignKey, PublicSignKey};
use crate::event::codec::{TransactionRef, encode_transaction_after};
use crate::event::{EventDraft, TxTrailer};
use crate::log::FRAME_HEADER_LEN;
use crate::log::{
    FileStore, LogRecord, LogStore, MemoryStore, PREALLOCATE_CHUNK, RecoveryReport, RedoLog,
};
use crate::schema;
use crate::session::AteSession;
use crate::trust::meta::{
    CheckedMeta, TRAILER_DIRECTORY, TRAILER_KEYS, TRAILER_VOUCH, TxSealer, event_hashes,
};
use crate::trust::{IntegrityMode, Linter, Transformer, TrustError, TrustPolicy, Validator};
use crate::view::View;
use history::History;
pub(crate) use trust::ChainTrust;
use trust::Plugins;

/// State shared by the chain handles, the writer thread and the commit streams.
pub(crate) struct Shared {
    pub(crate) key: ChainKey,
    pub(crate) view: RwLock<View>,
    /// Where each committed transaction lies (updated by the writer after the view).
    pub(crate) history: RwLock<History>,
    pub(crate) poisoned: AtomicBool,
    pub(crate) trust: ChainTrust,
    /// The chain's locks (checked by the writer for fenced commits).
    pub(crate) locks: locks::LockTable,
    /// The log's growth and recent commits, for compactions.
    pub(crate) compaction: Arc<compact::auto::Tracker>,
}

struct ChainInner {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::UnboundedSender<writer::WriterMsg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    recovery: RecoveryReport,
    path: Option<PathBuf>,
    /// The trust settings the chain was opened with (a second open must have the same).
    settings: TrustSettings,
    /// [`AteConfig::max_foreign_transaction_bytes`].
    max_foreign: usize,
    /// The commit stream's channel (the writer holds the other sender).
    commits: broadcast::Sender<Committed>,
    /// The sequence number of the last transaction applied, published by the writer.
    applied: watch::Receiver<u64>,
    /// Where a replica chain's commits go; `None` for a chain that commits locally.
    upstream: Option<Arc<dyn Upstream>>,
    /// Claims on queue items (a local chain's; a replica asks its upstream).
    claims: claims::ClaimTable,
    /// Held by a compaction or a rebuild from start to swap, so that one runs at a time.
    compacting: tokio::sync::Mutex<()>,
    /// The task that compacts the chain by itself ([`AteConfig::compact_mode`]).
    scheduler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for ChainInner {
    fn drop(&mut self) {
        if let Some(task) = self.scheduler.lock().take() {
            task.abort();
        }
        self.shared.compaction.close();
        // Closing the channel lets the writer finish what it has, then release the log file.
        self.sender.lock().take();
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
    }
}

/// A shared handle to an open chain. Cheap to clone, `Send + Sync`: many tasks can hold it and
/// use many [`Dio`]s at once.
#[derive(Clone)]
pub struct Chain {
    inner: Arc<ChainInner>,
}

/// A handle on a [`Chain`] that does not keep it open (for tasks that serve a chain only while
/// somebody uses it). Made by [`Chain::downgrade`].
#[derive(Clone)]
pub struct WeakChain {
    inner: std::sync::Weak<ChainInner>,
}

impl std::fmt::Debug for WeakChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakChain").finish_non_exhaustive()
    }
}

impl WeakChain {
    /// The chain, if it is still open.
    pub fn upgrade(&self) -> Option<Chain> {
        self.inner.upgrade().map(|inner| Chain { inner })
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("key", &self.inner.shared.key)
            .field("path", &self.inner.path)
            .field("upstream", &self.inner.upstream)
            .finish()
    }
}

/// Upper bound on [`AteConfig::commit_stream_capacity`] (the channel allocates its slots up
/// front).
const MAX_COMMIT_STREAM_CAPACITY: usize = 1 << 20;

/// Transactions from elsewhere at least this large are verified on a blocking thread, not on
/// the committing task.
const VERIFY_ASIDE_BYTES: usize = 256 << 10;

impl Chain {
    /// The chain's key.
    pub fn key(&self) -> &ChainKey {
        &self.inner.shared.key
    }

    /// The log file, when the chain is stored on disk.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.inner.path.as_deref()
    }

    /// What recovery found when the chain was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Starts a transaction for `session`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing happens until the Dio is used.
    pub async fn dio(&self, session: &AteSession) -> Dio {
        Dio::new(self.clone(), session.clone())
    }

    /// Whether an I/O failure poisoned the chain (reopen it to continue).
    pub fn is_poisoned(&self) -> bool {
        self.inner.shared.poisoned.load(Ordering::Acquire)
    }

    /// Number of live records in the view.
    pub fn len(&self) -> usize {
        self.inner.shared.view.read().len()
    }

    /// Whether the view holds no live record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn view(&self) -> &RwLock<View> {
        &self.inner.shared.view
    }

    /// The chain's trust policy (root writers, chain identity).
    pub fn policy(&self) -> &TrustPolicy {
        &self.inner.shared.trust.policy
    }

    pub(crate) fn linters(&self) -> &[Arc<dyn Linter>] {
        &self.inner.shared.trust.plugins.linters
    }

    pub(crate) fn transformers(&self) -> &[Arc<dyn Transformer>] {
        &self.inner.shared.trust.plugins.transformers
    }

    /// Whether the chain is a replica: its commits go to its source through an
    /// [`Upstream`] ([`ChainRegistry::open_replica`]).
    pub fn is_replica(&self) -> bool {
        self.inner.upstream.is_some()
    }

    /// Where a replica chain's commits go (`None` for a chain that commits locally).
    pub fn upstream(&self) -> Option<&Arc<dyn Upstream>> {
        self.inner.upstream.as_ref()
    }

    /// The sequence number of the last transaction durable and applied to the view (0 for an
    /// empty chain).
    pub fn last_seq(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// The last transaction number the log's last compaction judged (0: its log was never
    /// compacted). Transactions up to it that the compaction dropped are gone from the log.
    pub fn compacted_upto(&self) -> u64 {
        self.inner.shared.history.read().upto()
    }

    /// The size of the chain's log in bytes (as of its last commit or compaction; the
    /// zeros a file is grown by ahead of its data are not counted).
    pub fn log_bytes(&self) -> u64 {
        self.inner.shared.compaction.size()
    }

    /// Waits until the transaction `seq` is durable and applied to the view (at once when it
    /// already is): on a replica, until it has caught up with its source that far.
    ///
    /// # Errors
    ///
    /// [`CommitError::Poisoned`] when an I/O failure poisoned the chain first (the number will
    /// not come); [`CommitError::Closed`] when the chain's writer stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn wait_for(&self, seq: u64) -> Result<(), CommitError> {
        self.wait_applied(seq).await
    }

    /// A handle that does not keep the chain open.
    pub fn downgrade(&self) -> WeakChain {
        WeakChain {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Waits until the chain has everything its source had when this was called: for a
    /// replica, until it is connected and has applied the history its source had then (see
    /// [`Upstream::sync`]); for a local chain, at once.
    ///
    /// # Errors
    ///
    /// What the replica's upstream reports (e.g. [`CommitError::Unreachable`] once it stopped
    /// for good); [`CommitError::Poisoned`] and [`CommitError::Closed`] as for
    /// [`Chain::wait_for`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn sync(&self) -> Result<(), CommitError> {
        match self.upstream() {
            Some(up) => up.clone().sync(self).await,
            None => Ok(()),
        }
    }

    async fn wait_applied(&self, seq: u64) -> Result<(), CommitError> {
        let shared = &self.inner.shared;
        let mut applied = self.inner.applied.clone();
        let reached = applied
            .wait_for(|last| *last >= seq || shared.poisoned.load(Ordering::Acquire))
            .await
            .map(|last| *last >= seq);
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommitError::Poisoned(shared.key.to_string())),
            Err(_) => Err(CommitError::Closed),
        }
    }

    /// Every committed transaction from the sequence number `from` (inclusive) on, in log
    /// order: those already committed first, then each new one once it is durable and in the
    /// view. A `from` beyond the end waits for that transaction. A subscriber that falls behind
    /// never slows the chain; its stream reads what it missed from the chain's history (see
    /// [`CommitStream`]).
    pub fn subscribe(&self, from: u64) -> CommitStream {
        // Subscribed before the history is read: what is published meanwhile is received.
        let live = self.inner.commits.subscribe();
        CommitStream::new(self.inner.shared.clone(), live, from)
    }

    /// The committed transactions from `from` (inclusive) on, in log order, as many as fit in
    /// `max_bytes` of payloads (at least one when `from` is committed, however large); empty
    /// when `from` is beyond the last. Reads the log's bytes the chain keeps in memory, through
    /// an index of where each transaction lies, without reading the log again.
    ///
    /// # Errors
    ///
    /// [`StreamError::Missing`] and [`StreamError::Malformed`] when the history cannot give a
    /// transaction (neither happens while the chain keeps its log in memory, as it does now).
    pub fn read_from(&self, from: u64, max_bytes: usize) -> Result<Vec<Committed>, StreamError> {
        stream::read(&self.inner.shared, from, max_bytes)
    }

    /// Writes a transaction that was built elsewhere (e.g. received from another node): every
    /// check runs as on replay (hashes recomputed, signatures verified, rights and versions
    /// checked), the ones that need no record on this task (or a blocking thread for a large
    /// transaction), never on the chain's writer. Returns its sequence number once it is
    /// durable and in the view.
    ///
    /// On a replica chain the transaction goes to the chain's source through its
    /// [`Upstream`] instead, and this returns once the replica has applied it (as
    /// [`Chain::commit_sealed`]).
    ///
    /// # Errors
    ///
    /// [`CommitError::TooLarge`] beyond [`AteConfig::max_foreign_transaction_bytes`];
    /// [`CommitError::Trust`] with [`TrustError::ForeignVouch`] when it carries a vouch (only
    /// [`Chain::commit_vouched`] vouches), and with the reason of any other refusal;
    /// [`CommitError::UniqueViolation`], [`CommitError::Schema`], [`CommitError::Log`],
    /// [`CommitError::Poisoned`] and [`CommitError::Closed`] as for a Dio's commit. Nothing is
    /// written on error. On a replica, also the upstream's errors ([`CommitError::Unreachable`],
    /// [`CommitError::OutcomeUnknown`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes may or may not leave the transaction committed
    /// (it may already be with the writer, or the source); read the chain to know.
    pub async fn commit_transaction(
        &self,
        events: Vec<EventDraft>,
        trailers: Vec<TxTrailer>,
    ) -> Result<u64, CommitError> {
        if trailers.iter().any(|t| t.tag == TRAILER_VOUCH) {
            return Err(TrustError::ForeignVouch.into());
        }
        let payload = encode_for_writer(&events, &trailers);
        if let Some(upstream) = &self.inner.upstream {
            let tx = SealedTransaction::from_writer_buffer(payload);
            return self.commit_upstream(upstream.clone(), tx, None).await;
        }
        self.commit_foreign(payload, Foreign::REFUSE_VOUCH).await
    }

    /// Writes a transaction that was encoded, signed and sealed elsewhere (by a
    /// [`Dio::seal`](crate::Dio::seal) here or in another process), without encoding it again:
    /// every check of [`Chain::commit_transaction`] runs on it (it is a foreign transaction: a
    /// vouch is refused). Returns its sequence number once it is durable and in the view.
    ///
    /// On a replica chain the transaction goes to the chain's source through its
    /// [`Upstream`] instead, and this returns the number the source gave it once the replica
    /// has applied that number (read-your-writes).
    ///
    /// # Errors
    ///
    /// As [`Chain::commit_transaction`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::commit_transaction`].
    pub async fn commit_sealed(&self, tx: SealedTransaction) -> Result<u64, CommitError> {
        if let Some(upstream) = &self.inner.upstream {
            tx.refuse_vouch()?;
            return self.commit_upstream(upstream.clone(), tx, None).await;
        }
        self.commit_foreign(tx.to_writer_buffer(), Foreign::REFUSE_VOUCH)
            .await
    }

    /// Writes a transaction on behalf of `writers` (public-key ids) that this process, as the
    /// chain's server, authenticated: instead of their signatures it carries a vouch signed
    /// with the chain's server key ([`ChainBuilder::server_key`]), the seam of
    /// [`IntegrityMode::Centralized`]. Every other check runs as usual (each event needs one of
    /// the writers to hold its write right). `trailers` may hold the transaction's keys trailer
    /// and key directory (for encrypted events), nothing else.
    ///
    /// # Errors
    ///
    /// [`CommitError::VouchOnReplica`] on a replica chain (its source vouches);
    /// [`CommitError::NoServerKey`] without a server key; [`CommitError::Trust`] with
    /// `TrustError::VouchRefused` on a chain in [`IntegrityMode::Distributed`], with
    /// `TrustError::MalformedMetadata` for a trailer other than keys and key directory, and
    /// with the reason of any other refusal; the rest as [`Chain::commit_transaction`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::commit_transaction`].
    pub async fn commit_vouched(
        &self,
        events: Vec<EventDraft>,
        trailers: Vec<TxTrailer>,
        writers: Vec<Hash>,
    ) -> Result<u64, CommitError> {
        if self.is_replica() {
            return Err(CommitError::VouchOnReplica);
        }
        let server = self
            .inner
            .shared
            .trust
            .server_key
            .as_ref()
            .ok_or(CommitError::NoServerKey)?;
        let (mut keys, mut directory) = (None, None);
        for t in trailers {
            match t.tag {
                TRAILER_KEYS if keys.is_none() => keys = Some(t),
                TRAILER_DIRECTORY if directory.is_none() => directory = Some(t),
                tag => {
                    return Err(TrustError::MalformedMetadata {
                        tag,
                        reason:
                            "commit_vouched takes one keys trailer and one key directory at most"
                                .into(),
                    }
                    .into());
                }
            }
        }
        let sealer = TxSealer {
            signers: Vec::new(),
            vouch: Some((server, writers)),
            keys,
            directory,
        };
        let trailers = sealer
            .seal(self.policy().chain_hash(), &event_hashes(&events))
            .map_err(|f| TrustError::BadSignature { signer: f.signer })?;
        self.commit_foreign(encode_for_writer(&events, &trailers), Foreign::LOCAL_VOUCH)
            .await
    }

    /// Verifies a transaction from elsewhere in full (aside when it is large) and commits it.
    /// [`Chain::commit_sealed`] under a lock grant: the writer takes the transaction only
    /// while `fence` is the current grant of its lock (on a replica, the source checks).
    ///
    /// # Errors
    ///
    /// [`CommitError::Fenced`] when the grant is no longer current (nothing is written); the
    /// rest as [`Chain::commit_sealed`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::commit_transaction`].
    pub async fn commit_sealed_fenced(
        &self,
        tx: SealedTransaction,
        fence: Fence,
    ) -> Result<u64, CommitError> {
        locks::check_name(&fence.lock)?;
        if let Some(upstream) = &self.inner.upstream {
            tx.refuse_vouch()?;
            return self
                .commit_upstream(upstream.clone(), tx, Some(fence))
                .await;
        }
        self.commit_foreign_fenced(tx.to_writer_buffer(), Foreign::REFUSE_VOUCH, Some(fence))
            .await
    }

    async fn commit_foreign(&self, payload: Vec<u8>, rule: Foreign) -> Result<u64, CommitError> {
        self.commit_foreign_fenced(payload, rule, None).await
    }

    async fn commit_foreign_fenced(
        &self,
        payload: Vec<u8>,
        rule: Foreign,
        fence: Option<Fence>,
    ) -> Result<u64, CommitError> {
        let size = payload.len() - FRAME_HEADER_LEN;
        if size > self.inner.max_foreign {
            return Err(CommitError::TooLarge {
                size,
                max: self.inner.max_foreign,
            });
        }
        let (payload, verified) = if size < VERIFY_ASIDE_BYTES {
            let verified = verify_foreign(&self.inner.shared.trust, &payload, rule);
            (payload, verified)
        } else {
            let shared = self.inner.shared.clone();
            let aside = tokio::task::spawn_blocking(move || {
                let verified = verify_foreign(&shared.trust, &payload, rule);
                (payload, verified)
            });
            match aside.await {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(CommitError::Closed),
            }
        };
        let mut prepared = verified?;
        prepared.fence = fence;
        self.submit(payload, prepared)?.outcome().await
    }

    /// What the checks that need no record find of a transaction encoded for the writer (see
    /// [`encode_for_writer`]), and what the writer needs of its events; `hashes` and `trust` as
    /// a committing Dio computed them in this process (`None`: recomputed, decoded).
    pub(crate) fn verify_local(
        &self,
        payload: &[u8],
        hashes: Option<&[Hash]>,
        trust: Option<Vec<CheckedMeta>>,
    ) -> Result<Prepared, CommitError> {
        verify_payload(&self.inner.shared.trust, payload, hashes, trust)
    }

    /// Hands a verified transaction, encoded as a payload whose sequence number the writer
    /// fills in after room for its frame header (see [`encode_for_writer`]), to the chain's
    /// writer. From here on it may be committed whatever the caller does.
    pub(crate) fn submit(
        &self,
        payload: Vec<u8>,
        prepared: Prepared,
    ) -> Result<Submitted, CommitError> {
        self.submit_as(payload, prepared, None)
    }

    /// [`Chain::submit`]; a replicated transaction carries the number `stated` its source gave
    /// it, which the writer checks instead of numbering it.
    fn submit_as(
        &self,
        payload: Vec<u8>,
        prepared: Prepared,
        stated: Option<u64>,
    ) -> Result<Submitted, CommitError> {
        let (reply, rx) = oneshot::channel();
        let guard = self.inner.sender.lock();
        let sender = guard.as_ref().ok_or(CommitError::Closed)?;
        sender
            .send(writer::WriterMsg::Commit(writer::CommitRequest {
                payload,
                prepared,
                stated,
                reply,
            }))
            .map_err(|_| CommitError::Closed)?;
        Ok(Submitted(rx))
    }
}

impl Chain {
    /// Compacts the chain's log: rewrites it keeping, of everything committed before the call,
    /// each live record's latest version and what the chain of trust needs to check it again
    /// (its first version and every version that changed its rules or parent, the records
    /// kept ones sit under, and the signatures and key entries of the transactions kept), and
    /// drops superseded versions, deleted records and their tombstones (their keys stay
    /// retired: never written again). Transactions keep their sequence numbers; commits made
    /// while it runs are kept after the compacted part. The new log is written beside the old
    /// one, made durable, and swapped in (see [`LogStore::replace`]); the view is rebuilt from
    /// it, so it frees what was dropped. See `docs/FORMAT.md`, "Compaction".
    ///
    /// A replica compacts its own copy (its server keeps its own log).
    ///
    /// # Errors
    ///
    /// [`CompactError`]: the chain is closed or poisoned, the store cannot write or swap the
    /// new log ([`LogError::Unsupported`](crate::log::LogError) from a store without
    /// [`LogStore::replace`]), or the log's transactions do not decode. The chain then goes
    /// on with its log as it was.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, the compaction may still be swapped in (or not); either way
    /// the log is whole.
    pub async fn compact(&self) -> Result<CompactReport, CompactError> {
        let _one_at_a_time = self.inner.compacting.lock().await;
        let shared = self.inner.shared.clone();
        let (checkpoint, txs, compacted) = {
            let history = shared.history.read();
            (
                history.checkpoint(),
                history.payloads_from(1, usize::MAX),
                history.upto(),
            )
        };
        let through = txs.last().map_or(0, |(seq, _)| *seq);
        let upto = shared.compaction.cut_off(through).max(compacted);
        let build = tokio::task::spawn_blocking(move || {
            let built = compact::build(
                shared.trust.policy.chain_hash(),
                checkpoint.as_deref(),
                &txs,
                upto,
            )?;
            drop(txs);
            // Replayed as an open would: every check, and the view it makes is the chain's next.
            let (view, history) = replay_contents(built.contents.clone(), &shared.trust)?;
            Ok::<_, CompactError>((built, view, history))
        });
        let (built, view, history) = build.await.map_err(|_| CompactError::Stopped)??;
        let (before, after) = self
            .swap_in(built.contents.clone(), through, view, history)
            .await?;
        Ok(CompactReport {
            bytes_before: before,
            bytes_after: after,
            ..built.report
        })
    }

    /// Replaces this replica's log, view and history with its server's compacted log: the
    /// server's `checkpoint` and transactions `txs` (every one it holds up to `through`, as
    /// its log holds them), checked as an open checks a log (every transaction, against this
    /// replica's own trust settings). What the replica held is dropped: the server's log is
    /// the truth it follows.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) async fn rebuild(
        &self,
        checkpoint: bytes::Bytes,
        txs: Vec<(u64, bytes::Bytes)>,
        through: u64,
    ) -> Result<(), CompactError> {
        let _one_at_a_time = self.inner.compacting.lock().await;
        let shared = self.inner.shared.clone();
        let built = tokio::task::spawn_blocking(move || {
            let mut payloads: Vec<&[u8]> = Vec::with_capacity(txs.len() + 1);
            payloads.push(&checkpoint);
            payloads.extend(txs.iter().map(|(_, p)| &p[..]));
            let contents = compact::log_of(&payloads);
            drop(payloads);
            drop(txs);
            let (view, history) = replay_contents(contents.clone(), &shared.trust)?;
            if view.last_seq() != through {
                return Err(CompactError::Replay(Box::new(OpenError::Checkpoint {
                    store: "the server's compacted log".into(),
                    source: compact::checkpoint::CheckpointError::Mismatch { upto: through },
                })));
            }
            Ok::<_, CompactError>((contents, view, history))
        });
        let (contents, view, history) = built.await.map_err(|_| CompactError::Stopped)??;
        self.swap_in(contents, through, view, history).await?;
        Ok(())
    }

    /// Hands a log, its view and history to the writer to take the chain's log's place.
    async fn swap_in(
        &self,
        contents: bytes::Bytes,
        through: u64,
        view: View,
        history: History,
    ) -> Result<(u64, u64), CompactError> {
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.inner.sender.lock();
            let sender = guard.as_ref().ok_or(CommitError::Closed)?;
            sender
                .send(writer::WriterMsg::Swap(Box::new(writer::Swap {
                    contents,
                    through,
                    view,
                    history,
                    reply,
                })))
                .map_err(|_| CommitError::Closed)?;
        }
        answer.await.map_err(|_| CommitError::Closed)?
    }

    /// The last transaction numbered `seq` or less that the chain's log holds (0: none):
    /// `seq` itself, unless a compaction dropped it.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn last_held(&self, seq: u64) -> u64 {
        self.inner.shared.history.read().last_held(seq)
    }

    /// The last transaction number a compaction of this chain's log judged (0: never
    /// compacted), and its checkpoint's payload.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn checkpoint(&self) -> (u64, Option<bytes::Bytes>) {
        let history = self.inner.shared.history.read();
        (history.upto(), history.checkpoint())
    }
}

/// A transaction handed to a chain's writer (or to a replica's upstream): its outcome, to come.
#[derive(Debug)]
pub(crate) struct Submitted(oneshot::Receiver<Result<u64, CommitError>>);

impl Submitted {
    /// The sequence number the transaction was committed as, once it is durable and in the
    /// view, or why it was not.
    pub(crate) async fn outcome(self) -> Result<u64, CommitError> {
        self.0.await.map_err(|_| CommitError::Closed)?
    }

    /// The receiver of the outcome.
    pub(crate) fn into_receiver(self) -> oneshot::Receiver<Result<u64, CommitError>> {
        self.0
    }
}

/// What a foreign transaction may carry besides what every transaction is checked for.
#[derive(Debug, Clone, Copy)]
struct Foreign {
    /// Whether a vouch is allowed (made here by [`Chain::commit_vouched`], or received from
    /// the chain's source); it is verified against the pinned server keys either way.
    vouch: bool,
    /// The sequence number a replicated transaction was given at (its encoding must carry it).
    stated: Option<u64>,
}

impl Foreign {
    /// A transaction from elsewhere, which may not vouch.
    const REFUSE_VOUCH: Foreign = Foreign {
        vouch: false,
        stated: None,
    };
    /// A transaction this process vouched for.
    const LOCAL_VOUCH: Foreign = Foreign {
        vouch: true,
        stated: None,
    };
    /// A transaction from the chain's source, at the number `seq`.
    fn replicated(seq: u64) -> Foreign {
        Foreign {
            vouch: true,
            stated: Some(seq),
        }
    }
}

/// Decodes a payload encoded for the writer and runs the checks that need no record; returns
/// what the writer needs of it (so the writer need not decode it again).
fn verify_payload(
    trust: &ChainTrust,
    payload: &[u8],
    hashes: Option<&[Hash]>,
    local: Option<Vec<CheckedMeta>>,
) -> Result<Prepared, CommitError> {
    let body = payload.get(FRAME_HEADER_LEN..).unwrap_or_default();
    let tx = TransactionRef::decode(body).map_err(CommitError::Malformed)?;
    let verified = trust.verify(&tx, hashes, local)?;
    Ok(Prepared::new(&tx, body, verified))
}

/// [`verify_payload`] for a transaction from elsewhere (hashes recomputed, metadata decoded),
/// with what `rule` adds.
fn verify_foreign(
    trust: &ChainTrust,
    payload: &[u8],
    rule: Foreign,
) -> Result<Prepared, CommitError> {
    let body = payload.get(FRAME_HEADER_LEN..).unwrap_or_default();
    let tx = TransactionRef::decode(body).map_err(CommitError::Malformed)?;
    if !rule.vouch && tx.trailers.get(TRAILER_VOUCH).is_some() {
        return Err(TrustError::ForeignVouch.into());
    }
    if let Some(stated) = rule.stated
        && stated != tx.seq
    {
        return Err(CommitError::SeqMismatch {
            stated,
            encoded: tx.seq,
        });
    }
    let verified = trust.verify(&tx, None, None)?;
    Ok(Prepared::new(&tx, body, verified))
}

/// A transaction as the writer takes it: its payload after room for its frame header, its
/// sequence number left for the writer to fill in.
fn encode_for_writer(events: &[EventDraft], trailers: &[TxTrailer]) -> Vec<u8> {
    encode_transaction_after(FRAME_HEADER_LEN, 0, events, trailers)
}

/// Collects settings for opening chains; [`ChainBuilder::build`] freezes them.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    conf: AteConfig,
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    server_key: Option<PrivateSignKey>,
    servers: Vec<Hash>,
    plugins: Plugins,
}

impl ChainBuilder {
    /// A builder with the configuration `conf`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only copies the configuration.
    pub async fn new(conf: &AteConfig) -> Self {
        ChainBuilder {
            conf: conf.clone(),
            root_keys: Vec::new(),
            integrity: IntegrityMode::default(),
            server_key: None,
            servers: Vec::new(),
            plugins: Plugins::default(),
        }
    }

    /// How the chains establish who wrote each transaction (default
    /// [`IntegrityMode::Distributed`]: every transaction signed, verifiable by anyone).
    /// [`IntegrityMode::Centralized`] also accepts transactions vouched for by a pinned server
    /// key ([`Chain::commit_vouched`]); a log holding them opens only in that mode, with that
    /// key pinned.
    pub fn integrity(mut self, mode: IntegrityMode) -> Self {
        self.integrity = mode;
        self
    }

    /// Pins a key allowed to write at the root of the chains opened. A chain without root keys
    /// is open: anyone may write records that do not say otherwise.
    pub fn add_root_public_key(mut self, key: &PublicSignKey) -> Self {
        self.root_keys.push(key.hash());
        self
    }

    /// The key this process vouches with as the chains' server ([`Chain::commit_vouched`]);
    /// its public half is pinned (see [`ChainBuilder::add_server_public_key`]). Keep it: a log
    /// holding its vouches opens only with it pinned.
    pub fn server_key(mut self, key: PrivateSignKey) -> Self {
        self.servers.push(key.hash());
        self.server_key = Some(key);
        self
    }

    /// Pins a server key whose vouches the chains accept ([`IntegrityMode::Centralized`]), e.g.
    /// to open a server's log elsewhere.
    pub fn add_server_public_key(mut self, key: &PublicSignKey) -> Self {
        self.servers.push(key.hash());
        self
    }

    /// Adds a validator run on every transaction (on commit and on replay).
    pub fn add_validator(mut self, v: impl Validator) -> Self {
        self.plugins.validators.push(Arc::new(v));
        self
    }

    /// Adds a linter that adds metadata to every event written.
    pub fn add_linter(mut self, l: impl Linter) -> Self {
        self.plugins.linters.push(Arc::new(l));
        self
    }

    /// Adds a body transformer (e.g. compression), applied in the order added.
    pub fn add_transformer(mut self, t: impl Transformer) -> Self {
        self.plugins.transformers.push(Arc::new(t));
        self
    }

    /// Freezes the settings into a [`ChainRegistry`] that opens chains.
    pub fn build(mut self) -> ChainRegistry {
        self.root_keys.sort_unstable();
        self.root_keys.dedup();
        self.servers.sort_unstable();
        self.servers.dedup();
        let settings = TrustSettings {
            root_keys: self.root_keys.clone(),
            integrity: self.integrity,
            servers: self.servers.clone(),
            vouches_as: self.server_key.as_ref().map(|k| k.hash()),
            plugins: self.plugins.names(),
        };
        ChainRegistry {
            inner: Arc::new(RegistryInner {
                conf: self.conf,
                root_keys: self.root_keys,
                integrity: self.integrity,
                server_key: self.server_key,
                servers: self.servers,
                plugins: self.plugins,
                settings,
                memory: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// What decides how a chain's transactions are judged: a chain is shared within the process
/// only between registries that agree on all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrustSettings {
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    servers: Vec<Hash>,
    vouches_as: Option<Hash>,
    /// Validator and linter names and transformer ids, in order.
    plugins: Vec<String>,
}

struct RegistryInner {
    conf: AteConfig,
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    server_key: Option<PrivateSignKey>,
    servers: Vec<Hash>,
    plugins: Plugins,
    settings: TrustSettings,
    memory: Mutex<HashMap<ChainKey, Weak<ChainInner>>>,
}

impl RegistryInner {
    fn trust(&self, key: &ChainKey) -> ChainTrust {
        ChainTrust {
            policy: TrustPolicy::new(key.as_str(), self.root_keys.clone())
                .with_integrity(self.integrity)
                .with_servers(self.servers.clone()),
            plugins: self.plugins.clone(),
            server_key: self.server_key.clone(),
        }
    }

    /// Opens `key` over `store`, replaying its log; a replica when `upstream` is given.
    fn open_chain(
        &self,
        key: &ChainKey,
        store: Box<dyn LogStore>,
        path: Option<PathBuf>,
        upstream: Option<Arc<dyn Upstream>>,
    ) -> Result<Arc<ChainInner>, OpenError> {
        open_chain(
            key.clone(),
            store,
            &self.conf,
            self.trust(key),
            self.settings.clone(),
            path,
            upstream,
        )
    }
}

/// Whether the open chain `inner` may be shared with an open asking for `upstream` (the same
/// role: local, or a replica of the same upstream).
fn same_role(
    key: &ChainKey,
    inner: &ChainInner,
    upstream: Option<&Arc<dyn Upstream>>,
) -> Result<(), OpenError> {
    let role = |u: Option<&Arc<dyn Upstream>>| match u {
        None => "a local chain",
        Some(_) => "a replica",
    };
    let same = match (&inner.upstream, upstream) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(OpenError::OtherRole {
        chain: key.to_string(),
        open: match (&inner.upstream, upstream) {
            (Some(_), Some(_)) => "a replica of another upstream",
            (open, _) => role(open.as_ref()),
        },
        asked: role(upstream),
    })
}

/// Opens chains with one configuration. Opening a key that is already open in this process
/// returns the same chain (for files: keyed by the log path, across registries with the same
/// trust settings, [`OpenError::OtherSettings`] otherwise; for memory-only chains: within this
/// registry and its clones).
#[derive(Clone)]
pub struct ChainRegistry {
    inner: Arc<RegistryInner>,
}

impl std::fmt::Debug for ChainRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainRegistry")
            .field("conf", &self.inner.conf)
            .finish()
    }
}

/// The chains open on files in this process, by log path.
fn open_files() -> &'static Mutex<HashMap<PathBuf, Weak<ChainInner>>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Weak<ChainInner>>>> = OnceLock::new();
    FILES.get_or_init(Default::default)
}

/// A lock per log path, held while that path is opened, so two tasks never race to open one
/// file while opens of different files go on side by side.
fn opening_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    type Locks = Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock();
    if let Some(lock) = locks.get(path).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, w| w.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(path.to_path_buf(), Arc::downgrade(&lock));
    lock
}

impl ChainRegistry {
    /// The configuration chains are opened with.
    pub fn config(&self) -> &AteConfig {
        &self.inner.conf
    }

    /// Opens (creating if needed) the chain `key`, replaying its log into the view.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidKey`] for a key that cannot name a log; [`OpenError::Log`] when the
    /// log cannot be read, is locked by another handle, or is damaged;
    /// [`OpenError::Malformed`], [`OpenError::OutOfSequence`] and [`OpenError::Invalid`] for a
    /// transaction in it that does not decode, is out of place, or fails validation;
    /// [`OpenError::OtherSettings`] when the log is already open in this process under other
    /// trust settings; [`OpenError::TypeNameClash`] when two types of the program registered one
    /// stable type name (checked before anything is read).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the chain being opened in the background; a later open
    /// of the same key waits for it and returns that chain.
    pub async fn open(&self, key: &ChainKey) -> Result<Chain, OpenError> {
        self.open_as(key, None).await
    }

    /// Opens (creating if needed) the chain `key` as a replica of a chain that lives elsewhere
    /// (its source): a local chain, in memory or under [`AteConfig::log_path`] as
    /// [`ChainRegistry::open`] keeps it, whose commits go to `upstream`.
    ///
    /// The replica's log holds its source's transactions at the source's sequence numbers,
    /// each applied with [`Chain::apply_replicated`] (by whatever pumps the source's commit
    /// stream into it) after the same full validation as any transaction from elsewhere;
    /// reopening it resumes from its position ([`Chain::last_seq`]). A
    /// [`Dio::commit`](crate::Dio::commit) on it seals the transaction and sends it to
    /// `upstream` instead of the local writer, and returns once the source committed it and
    /// the replica applied it (read-your-writes), with the source's errors; so do
    /// [`Chain::commit_transaction`] and [`Chain::commit_sealed`]. The code that uses a
    /// replica is the code that uses a local chain.
    ///
    /// The registry's trust settings apply to the replica as to any chain: pin the same root
    /// keys (and, for [`IntegrityMode::Centralized`], server keys) as the source.
    ///
    /// # Errors
    ///
    /// As [`ChainRegistry::open`]; [`OpenError::OtherRole`] when the chain is already open in
    /// this process as a local chain, or as a replica of another upstream (the same `Arc`
    /// shares the open chain).
    ///
    /// # Cancel safety
    ///
    /// As [`ChainRegistry::open`].
    pub async fn open_replica(
        &self,
        key: &ChainKey,
        upstream: Arc<dyn Upstream>,
    ) -> Result<Chain, OpenError> {
        self.open_as(key, Some(upstream)).await
    }

    /// [`ChainRegistry::open`] or [`ChainRegistry::open_replica`].
    async fn open_as(
        &self,
        key: &ChainKey,
        upstream: Option<Arc<dyn Upstream>>,
    ) -> Result<Chain, OpenError> {
        schema::check_names()?;
        key.validate()?;
        let Some(root) = &self.inner.conf.log_path else {
            return self.open_in_memory(key, upstream);
        };
        let path = key.log_file(root)?;
        let lock = opening_lock(&path);
        let _opening = lock.lock().await;
        if let Some(inner) = open_files().lock().get(&path).and_then(Weak::upgrade) {
            if inner.settings != self.inner.settings {
                return Err(OpenError::OtherSettings { path });
            }
            same_role(key, &inner, upstream.as_ref())?;
            return Ok(Chain { inner });
        }
        let registry = self.inner.clone();
        let (key2, path2) = (key.clone(), path.clone());
        let inner = tokio::task::spawn_blocking(move || {
            let chunk = if registry.conf.preallocate {
                PREALLOCATE_CHUNK
            } else {
                0
            };
            let store = FileStore::open(&path2, chunk)?;
            registry.open_chain(&key2, Box::new(store), Some(path2), upstream)
        })
        .await??;
        let mut files = open_files().lock();
        files.retain(|_, w| w.strong_count() > 0);
        files.insert(path, Arc::downgrade(&inner));
        Ok(Chain { inner })
    }

    fn open_in_memory(
        &self,
        key: &ChainKey,
        upstream: Option<Arc<dyn Upstream>>,
    ) -> Result<Chain, OpenError> {
        let mut memory = self.inner.memory.lock();
        if let Some(inner) = memory.get(key).and_then(Weak::upgrade) {
            same_role(key, &inner, upstream.as_ref())?;
            return Ok(Chain { inner });
        }
        let inner = self
            .inner
            .open_chain(key, Box::new(MemoryStore::new()), None, upstream)?;
        memory.retain(|_, w| w.strong_count() > 0);
        memory.insert(key.clone(), Arc::downgrade(&inner));
        Ok(Chain { inner })
    }

    /// Opens a chain over any [`LogStore`] (another backend, or a store prepared by a test).
    ///
    /// # Errors
    ///
    /// As [`ChainRegistry::open`], but for the key's form and sharing (the store is this
    /// chain's alone).
    pub fn open_store(&self, key: &ChainKey, store: Box<dyn LogStore>) -> Result<Chain, OpenError> {
        schema::check_names()?;
        let inner = self.inner.open_chain(key, store, None, None)?;
        Ok(Chain { inner })
    }

    /// [`ChainRegistry::open_replica`] over any [`LogStore`].
    ///
    /// # Errors
    ///
    /// As [`ChainRegistry::open_store`].
    pub fn open_store_replica(
        &self,
        key: &ChainKey,
        store: Box<dyn LogStore>,
        upstream: Arc<dyn Upstream>,
    ) -> Result<Chain, OpenError> {
        schema::check_names()?;
        let inner = self.inner.open_chain(key, store, None, Some(upstream))?;
        Ok(Chain { inner })
    }
}

/// The view and history of a whole log held in `contents` (a compacted one, before it takes
/// a chain's log's place), replayed as an open replays a log: every check. The view and
/// history share `contents`' bytes.
fn replay_contents(
    contents: bytes::Bytes,
    trust: &ChainTrust,
) -> Result<(View, History), CompactError> {
    let store: Box<dyn LogStore> = Box::new(MemoryStore::from_bytes(contents));
    let (mut log, records, _) = RedoLog::open(
        store,
        crate::log::RecoveryMode::AbsoluteConsistency,
        usize::MAX,
    )
    .map_err(CompactError::Log)?;
    load_with_history(&mut log, &records, trust).map_err(|e| CompactError::Replay(Box::new(e)))
}

/// The view of the log just opened as `log`, which recovered `records`: every transaction is
/// checked again (hashes, signatures, rights, versions) and applied.
#[cfg(feature = "fuzzing")]
pub(crate) fn load<S: LogStore>(
    log: &mut RedoLog<S>,
    records: &[LogRecord],
    trust: &ChainTrust,
) -> Result<View, OpenError> {
    load_with_history(log, records, trust).map(|(view, _)| view)
}

/// [`load`], and where each transaction lies in the buffer the log was read into.
fn load_with_history<S: LogStore>(
    log: &mut RedoLog<S>,
    records: &[LogRecord],
    trust: &ChainTrust,
) -> Result<(View, History), OpenError> {
    let buffer = log.take_buffer();
    let mut view = View::new();
    if let Some(buffer) = &buffer {
        view.add_segment(buffer.clone());
    }
    let replayed = replay::replay(&mut view, trust, records, &log.describe())?;
    Ok((view, History::replayed(buffer, records, &replayed)))
}

fn open_chain(
    key: ChainKey,
    store: Box<dyn LogStore>,
    conf: &AteConfig,
    trust: ChainTrust,
    settings: TrustSettings,
    path: Option<PathBuf>,
    upstream: Option<Arc<dyn Upstream>>,
) -> Result<Arc<ChainInner>, OpenError> {
    let (mut log, records, recovery) =
        RedoLog::open(store, conf.recovery_mode, conf.max_transaction_bytes)?;
    let (view, history) = load_with_history(&mut log, &records, &trust)?;
    drop(records);
    tracing::debug!(chain = %key, records = view.len(), "chain opened");
    let last_seq = view.last_seq();
    let (applied_tx, applied) = watch::channel(last_seq);
    let (commits, _) = broadcast::channel(
        conf.commit_stream_capacity
            .clamp(1, MAX_COMMIT_STREAM_CAPACITY),
    );
    let publish = writer::Publish {
        applied: applied_tx,
        commits: commits.clone(),
    };
    let shared = Arc::new(Shared {
        key: key.clone(),
        view: RwLock::new(view),
        history: RwLock::new(history),
        poisoned: AtomicBool::new(false),
        trust,
        locks: locks::LockTable::default(),
        compaction: Arc::new(compact::auto::Tracker::new(
            conf.compact_mode,
            conf.compact_tolerance,
            log.len(),
            last_seq,
        )),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let shared2 = shared.clone();
    let max_group = conf.max_group_commit.max(1);
    let handle = std::thread::Builder::new()
        .name(format!("ate-writer-{key}"))
        .spawn(move || writer::run(shared2, log, rx, max_group, publish))
        .map_err(|source| OpenError::Thread {
            what: "the chain's writer",
            source,
        })?;
    let inner = Arc::new(ChainInner {
        shared,
        sender: Mutex::new(Some(tx)),
        writer: Mutex::new(Some(handle)),
        recovery,
        path,
        settings,
        max_foreign: conf.max_foreign_transaction_bytes,
        commits,
        applied,
        upstream,
        claims: claims::ClaimTable::default(),
        compacting: tokio::sync::Mutex::new(()),
        scheduler: Mutex::new(None),
    });
    if conf.compact_mode.is_active() {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(compact_by_itself(Arc::downgrade(&inner)));
                *inner.scheduler.lock() = Some(task);
            }
            Err(_) => tracing::warn!(
                chain = %key,
                "opened outside a Tokio runtime: its compaction mode is not checked"
            ),
        }
    }
    Ok(inner)
}

/// The task that compacts a chain when its [`CompactMode`] says so, for as long as it is open.
async fn compact_by_itself(chain: Weak<ChainInner>) {
    let Some(tracker) = chain.upgrade().map(|c| c.shared.compaction.clone()) else {
        return;
    };
    let timer = tracker.timer();
    loop {
        tracker.wait(timer).await;
        let Some(inner) = chain.upgrade() else {
            return;
        };
        // The timer compacts only a changed log; a growth wake-up only a grown one (it may
        // be a stale wake-up from before the last compaction).
        if !(tracker.grown() || timer.is_some() && tracker.changed()) {
            continue;
        }
        let chain = Chain { inner };
        match chain.compact().await {
            Ok(report) => tracing::debug!(
                chain = %chain.inner.shared.key,
                mode = ?tracker.mode(),
                upto = report.upto,
                bytes_before = report.bytes_before,
                bytes_after = report.bytes_after,
                "compacted by itself"
            ),
            Err(e) => {
                tracing::warn!(chain = %chain.inner.shared.key, error = %e, "compaction failed; the log is as it was");
                if matches!(e, CompactError::Commit(_)) {
                    // Closed or poisoned: nothing more to compact.
                    return;
                }
                // Not again before the log grows or the timer fires once more.
                tracker.rebase(tracker.size());
            }
        }
    }
}
