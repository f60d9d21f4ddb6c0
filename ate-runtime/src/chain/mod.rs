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

mod apply;
pub(crate) use apply::Prepared;
mod config;
mod error;
mod key;
mod replay;
mod schemas;
mod trust;
mod validate;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

pub use config::{AteConfig, DEFAULT_MAX_FOREIGN_TRANSACTION, default_log_path};
pub use error::{CommitError, OpenError};
pub use key::{ChainKey, ChainKeyError};

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
pub(crate) use trust::ChainTrust;
use trust::Plugins;

/// State shared by the chain handles and the writer thread.
pub(crate) struct Shared {
    pub(crate) key: ChainKey,
    pub(crate) view: RwLock<View>,
    pub(crate) poisoned: AtomicBool,
    pub(crate) trust: ChainTrust,
}

struct ChainInner {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::UnboundedSender<writer::CommitRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    recovery: RecoveryReport,
    path: Option<PathBuf>,
    /// The trust settings the chain was opened with (a second open must have the same).
    settings: TrustSettings,
    /// [`AteConfig::max_foreign_transaction_bytes`].
    max_foreign: usize,
}

impl Drop for ChainInner {
    fn drop(&mut self) {
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

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("key", &self.inner.shared.key)
            .field("path", &self.inner.path)
            .finish()
    }
}

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

    /// Writes a transaction that was built elsewhere (e.g. received from another node): every
    /// check runs as on replay (hashes recomputed, signatures verified, rights and versions
    /// checked), the ones that need no record on this task (or a blocking thread for a large
    /// transaction), never on the chain's writer. Returns its sequence number once it is
    /// durable and in the view.
    ///
    /// # Errors
    ///
    /// [`CommitError::TooLarge`] beyond [`AteConfig::max_foreign_transaction_bytes`];
    /// [`CommitError::Trust`] with [`TrustError::ForeignVouch`] when it carries a vouch (only
    /// [`Chain::commit_vouched`] vouches), and with the reason of any other refusal;
    /// [`CommitError::UniqueViolation`], [`CommitError::Schema`], [`CommitError::Log`],
    /// [`CommitError::Poisoned`] and [`CommitError::Closed`] as for a Dio's commit. Nothing is
    /// written on error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes may or may not leave the transaction committed
    /// (it may already be with the writer); read the chain to know.
    pub async fn commit_transaction(
        &self,
        events: Vec<EventDraft>,
        trailers: Vec<TxTrailer>,
    ) -> Result<u64, CommitError> {
        if trailers.iter().any(|t| t.tag == TRAILER_VOUCH) {
            return Err(TrustError::ForeignVouch.into());
        }
        self.commit_foreign(encode_for_writer(&events, &trailers))
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
        self.commit_foreign(encode_for_writer(&events, &trailers))
            .await
    }

    /// Verifies a transaction from elsewhere in full (aside when it is large) and commits it.
    async fn commit_foreign(&self, payload: Vec<u8>) -> Result<u64, CommitError> {
        let size = payload.len() - FRAME_HEADER_LEN;
        if size > self.inner.max_foreign {
            return Err(CommitError::TooLarge {
                size,
                max: self.inner.max_foreign,
            });
        }
        let (payload, verified) = if size < VERIFY_ASIDE_BYTES {
            let verified = verify_payload(&self.inner.shared.trust, &payload, None, None);
            (payload, verified)
        } else {
            let shared = self.inner.shared.clone();
            let aside = tokio::task::spawn_blocking(move || {
                let verified = verify_payload(&shared.trust, &payload, None, None);
                (payload, verified)
            });
            match aside.await {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(CommitError::Closed),
            }
        };
        self.submit(payload, verified?)?.outcome().await
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
        let (reply, rx) = oneshot::channel();
        let guard = self.inner.sender.lock();
        let sender = guard.as_ref().ok_or(CommitError::Closed)?;
        sender
            .send(writer::CommitRequest {
                payload,
                prepared,
                reply,
            })
            .map_err(|_| CommitError::Closed)?;
        Ok(Submitted(rx))
    }
}

/// A transaction handed to a chain's writer: its outcome, to come.
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

    /// Opens `key` over `store`, replaying its log.
    fn open_chain(
        &self,
        key: &ChainKey,
        store: Box<dyn LogStore>,
        path: Option<PathBuf>,
    ) -> Result<Arc<ChainInner>, OpenError> {
        open_chain(
            key.clone(),
            store,
            &self.conf,
            self.trust(key),
            self.settings.clone(),
            path,
        )
    }
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
        schema::check_names()?;
        key.validate()?;
        let Some(root) = &self.inner.conf.log_path else {
            return self.open_in_memory(key);
        };
        let path = key.log_file(root)?;
        let lock = opening_lock(&path);
        let _opening = lock.lock().await;
        if let Some(inner) = open_files().lock().get(&path).and_then(Weak::upgrade) {
            if inner.settings != self.inner.settings {
                return Err(OpenError::OtherSettings { path });
            }
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
            registry.open_chain(&key2, Box::new(store), Some(path2))
        })
        .await??;
        let mut files = open_files().lock();
        files.retain(|_, w| w.strong_count() > 0);
        files.insert(path, Arc::downgrade(&inner));
        Ok(Chain { inner })
    }

    fn open_in_memory(&self, key: &ChainKey) -> Result<Chain, OpenError> {
        let mut memory = self.inner.memory.lock();
        if let Some(inner) = memory.get(key).and_then(Weak::upgrade) {
            return Ok(Chain { inner });
        }
        let inner = self
            .inner
            .open_chain(key, Box::new(MemoryStore::new()), None)?;
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
        let inner = self.inner.open_chain(key, store, None)?;
        Ok(Chain { inner })
    }
}

/// The view of the log just opened as `log`, which recovered `records`: every transaction is
/// checked again (hashes, signatures, rights, versions) and applied.
pub(crate) fn load<S: LogStore>(
    log: &mut RedoLog<S>,
    records: &[LogRecord],
    trust: &ChainTrust,
) -> Result<View, OpenError> {
    let mut view = View::new();
    if let Some(buffer) = log.take_buffer() {
        view.add_segment(buffer);
    }
    replay::replay(&mut view, trust, records, &log.describe())?;
    Ok(view)
}

fn open_chain(
    key: ChainKey,
    store: Box<dyn LogStore>,
    conf: &AteConfig,
    trust: ChainTrust,
    settings: TrustSettings,
    path: Option<PathBuf>,
) -> Result<Arc<ChainInner>, OpenError> {
    let (mut log, records, recovery) =
        RedoLog::open(store, conf.recovery_mode, conf.max_transaction_bytes)?;
    let view = load(&mut log, &records, &trust)?;
    drop(records);
    tracing::debug!(chain = %key, records = view.len(), "chain opened");
    let shared = Arc::new(Shared {
        key: key.clone(),
        view: RwLock::new(view),
        poisoned: AtomicBool::new(false),
        trust,
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let shared2 = shared.clone();
    let max_group = conf.max_group_commit.max(1);
    let handle = std::thread::Builder::new()
        .name(format!("ate-writer-{key}"))
        .spawn(move || writer::run(shared2, log, rx, max_group))
        .map_err(|source| OpenError::Thread {
            what: "the chain's writer",
            source,
        })?;
    Ok(Arc::new(ChainInner {
        shared,
        sender: Mutex::new(Some(tx)),
        writer: Mutex::new(Some(handle)),
        recovery,
        path,
        settings,
        max_foreign: conf.max_foreign_transaction_bytes,
    }))
}
