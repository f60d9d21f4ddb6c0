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

mod config;
mod error;
mod key;
mod replay;
mod trust;
mod validate;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

pub use config::AteConfig;
pub use error::{CommitError, OpenError};
pub use key::{ChainKey, ChainKeyError};

use crate::Dio;
use crate::crypto::{Hash, PublicSignKey};
use crate::event::codec::encode_transaction_after;
use crate::event::{EventDraft, TxTrailer};
use crate::log::FRAME_HEADER_LEN;
use crate::log::{
    FileStore, LogRecord, LogStore, MemoryStore, PREALLOCATE_CHUNK, RecoveryReport, RedoLog,
};
use crate::session::AteSession;
use crate::trust::meta::{CheckedMeta, TxVouch, vouch_trailer};
use crate::trust::{IntegrityMode, Linter, Transformer, TrustPolicy, Validator};
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
    /// checked). Returns its sequence number once it is durable and in the view.
    pub async fn commit_transaction(
        &self,
        events: Vec<EventDraft>,
        trailers: Vec<TxTrailer>,
    ) -> Result<u64, CommitError> {
        self.commit(encode_for_writer(&events, &trailers), None, None)
            .await
    }

    /// Writes a transaction on behalf of `writers` (public-key hashes) that a trusted server
    /// authenticated, without signatures: the seam of [`IntegrityMode::Centralized`]. Every
    /// other check runs as usual (each event needs one of the writers to hold its write right).
    /// A chain in [`IntegrityMode::Distributed`] refuses it with `TrustError::VouchRefused`.
    ///
    /// Encrypted events need their transaction's keys trailer
    /// ([`keys_trailer`](crate::trust::meta::keys_trailer)): send those through
    /// [`Chain::commit_transaction`] with a [`vouch_trailer`].
    pub async fn commit_vouched(
        &self,
        events: Vec<EventDraft>,
        writers: Vec<Hash>,
    ) -> Result<u64, CommitError> {
        let vouch = TxVouch {
            chain: *self.policy().chain_hash(),
            writers,
        };
        let payload = encode_for_writer(&events, &[vouch_trailer(&vouch)]);
        self.commit(payload, None, None).await
    }

    /// Writes a transaction, encoded as a payload whose sequence number the writer fills in,
    /// after room for its frame header (see [`encode_for_writer`]): returns that number once it
    /// is durable and in the view. `hashes` and `trust` are the
    /// events' hashes and trust metadata as the committing Dio computed them in this process
    /// (`None`: recomputed, decoded).
    pub(crate) async fn commit(
        &self,
        payload: Vec<u8>,
        hashes: Option<Vec<Hash>>,
        trust: Option<Vec<CheckedMeta>>,
    ) -> Result<u64, CommitError> {
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.inner.sender.lock();
            let sender = guard.as_ref().ok_or(CommitError::Closed)?;
            sender
                .send(writer::CommitRequest {
                    payload,
                    hashes,
                    trust,
                    reply,
                })
                .map_err(|_| CommitError::Closed)?;
        }
        rx.await.map_err(|_| CommitError::Closed)?
    }
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
    plugins: Plugins,
}

impl ChainBuilder {
    /// A builder with the configuration `conf`.
    pub async fn new(conf: &AteConfig) -> Self {
        ChainBuilder {
            conf: conf.clone(),
            root_keys: Vec::new(),
            integrity: IntegrityMode::default(),
            plugins: Plugins::default(),
        }
    }

    /// How the chains establish who wrote each transaction (default
    /// [`IntegrityMode::Distributed`]: every transaction signed, verifiable by anyone).
    /// [`IntegrityMode::Centralized`] also accepts transactions a trusted server vouches for
    /// ([`Chain::commit_vouched`]); a log holding them opens only in that mode.
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
    pub fn build(self) -> ChainRegistry {
        ChainRegistry {
            inner: Arc::new(RegistryInner {
                conf: self.conf,
                root_keys: self.root_keys,
                integrity: self.integrity,
                plugins: self.plugins,
                memory: Mutex::new(HashMap::new()),
            }),
        }
    }
}

struct RegistryInner {
    conf: AteConfig,
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    plugins: Plugins,
    memory: Mutex<HashMap<ChainKey, Weak<ChainInner>>>,
}

impl RegistryInner {
    fn trust(&self, key: &ChainKey) -> ChainTrust {
        ChainTrust {
            policy: TrustPolicy::new(key.as_str(), self.root_keys.clone())
                .with_integrity(self.integrity),
            plugins: self.plugins.clone(),
        }
    }
}

/// Opens chains with one configuration. Opening a key that is already open in this process
/// returns the same chain (for files: keyed by the log path, across registries; for memory-only
/// chains: within this registry and its clones).
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

fn open_files() -> &'static Mutex<HashMap<PathBuf, Weak<ChainInner>>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Weak<ChainInner>>>> = OnceLock::new();
    FILES.get_or_init(Default::default)
}

impl ChainRegistry {
    /// The configuration chains are opened with.
    pub fn config(&self) -> &AteConfig {
        &self.inner.conf
    }

    /// Opens (creating if needed) the chain `key`, replaying its log into the view.
    pub async fn open(&self, key: &ChainKey) -> Result<Chain, OpenError> {
        key.validate()?;
        let conf = self.inner.conf.clone();
        match &conf.log_path {
            Some(root) => {
                let path = key.log_file(root)?;
                // One open per path at a time, so two tasks never race to open the same file.
                let _opening = OPENING.lock().await;
                if let Some(inner) = open_files().lock().get(&path).and_then(Weak::upgrade) {
                    return Ok(Chain { inner });
                }
                let key2 = key.clone();
                let path2 = path.clone();
                let trust = self.inner.trust(key);
                let inner = tokio::task::spawn_blocking(move || {
                    let chunk = if conf.preallocate {
                        PREALLOCATE_CHUNK
                    } else {
                        0
                    };
                    let store = FileStore::open(&path2, chunk)?;
                    open_chain(key2, Box::new(store), &conf, trust, Some(path2))
                })
                .await
                .map_err(|e| OpenError::Task(e.to_string()))??;
                let mut files = open_files().lock();
                files.retain(|_, w| w.strong_count() > 0);
                files.insert(path, Arc::downgrade(&inner));
                Ok(Chain { inner })
            }
            None => {
                let mut memory = self.inner.memory.lock();
                if let Some(inner) = memory.get(key).and_then(Weak::upgrade) {
                    return Ok(Chain { inner });
                }
                let inner = open_chain(
                    key.clone(),
                    Box::new(MemoryStore::new()),
                    &conf,
                    self.inner.trust(key),
                    None,
                )?;
                memory.retain(|_, w| w.strong_count() > 0);
                memory.insert(key.clone(), Arc::downgrade(&inner));
                Ok(Chain { inner })
            }
        }
    }

    /// Opens a chain over any [`LogStore`] (another backend, or a store prepared by a test).
    pub fn open_store(&self, key: &ChainKey, store: Box<dyn LogStore>) -> Result<Chain, OpenError> {
        let inner = open_chain(
            key.clone(),
            store,
            &self.inner.conf,
            self.inner.trust(key),
            None,
        )?;
        Ok(Chain { inner })
    }
}

static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
        .map_err(|e| OpenError::Task(e.to_string()))?;
    Ok(Arc::new(ChainInner {
        shared,
        sender: Mutex::new(Some(tx)),
        writer: Mutex::new(Some(handle)),
        recovery,
        path,
    }))
}
