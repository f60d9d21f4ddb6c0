//! The chain writer's group commit, with groups made deterministic: a store whose append can be
//! held, so that several commits are queued while the writer waits, and are then written as one
//! group.
//!
//! - A transaction over `max_transaction_bytes` is refused with `CommitError::TooLarge` before
//!   anything is written; the chain is not poisoned and the rest of its group is acknowledged.
//! - When a group's append or sync fails, every transaction of that group gets
//!   `CommitError::Log` with the cause; only later commits get `Poisoned`.
//! - The chain's schema is checked against the transactions ahead in the group: a unique index
//!   made there holds for the ones after it, and sees the records they wrote.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;

use ate_runtime::chain::{ChainRegistry, CommitError};
use ate_runtime::log::{LogError, LogStore, MemoryStore};
use ate_runtime::prelude::*;

use crate::common::{Note, registry, session};

const KEY: &str = "writer";
/// The transaction limit of these tests.
const LIMIT: usize = 2048;

/// A store that can hold its next append until the test releases it.
#[derive(Debug)]
struct GateStore {
    inner: MemoryStore,
    gate: Arc<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    /// When set, the next append reports on `entered` and waits for `release`.
    armed: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Gate {
    /// Holds the next append. Returns a receiver told when the append is held, and a sender that
    /// releases it.
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.armed.lock() = Some((entered_tx, release_rx));
        (entered, release)
    }
}

impl LogStore for GateStore {
    fn describe(&self) -> String {
        "gated memory".into()
    }
    fn read_all(&mut self) -> Result<Bytes, LogError> {
        self.inner.read_all()
    }
    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
        let held = self.gate.armed.lock().take();
        if let Some((entered, release)) = held {
            entered.send(()).expect("the test waits for the append");
            release.recv().expect("the test releases the append");
        }
        self.inner.append(data)
    }
    fn sync(&mut self) -> Result<(), LogError> {
        self.inner.sync()
    }
    fn truncate(&mut self, len: u64) -> Result<(), LogError> {
        self.inner.truncate(len)
    }
    fn quarantine(&mut self, offset: u64, bytes: &[u8]) -> Result<String, LogError> {
        self.inner.quarantine(offset, bytes)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

async fn reg() -> ChainRegistry {
    let mut conf = AteConfig::in_memory();
    conf.max_transaction_bytes = LIMIT;
    registry(&conf).await
}

fn open_gated(reg: &ChainRegistry, store: &MemoryStore) -> (Chain, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let chain = reg
        .open_store(
            &ChainKey::from(KEY),
            Box::new(GateStore {
                inner: store.clone(),
                gate: gate.clone(),
            }),
        )
        .expect("open");
    (chain, gate)
}

type Commit = Pin<Box<dyn Future<Output = (PrimaryKey, Result<(), AteError>)> + Send>>;

/// A commit of one note holding `text_len` characters, polled once: by then its transaction
/// is queued for the writer (a commit sends it before it first waits for the answer).
fn queue(chain: &Chain, n: u64, text_len: usize) -> Commit {
    let chain = chain.clone();
    let mut fut: Commit = Box::pin(async move {
        let mut dio = chain.dio(&session()).await;
        let note = Note {
            n,
            text: "x".repeat(text_len),
        };
        let key = *dio.store(note).expect("stage").key();
        let res = dio.commit().await;
        (key, res)
    });
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => fut,
        // The writer may already have answered.
        Poll::Ready(done) => Box::pin(std::future::ready(done)),
    }
}

/// Holds the writer in the append of a first commit, queues `sizes` as commits behind it, and
/// lets it go: the queued commits form the next group. Runs `before_release` while the writer is
/// held. Returns the first commit's result and the queued ones'.
async fn group_behind_a_held_append(
    chain: &Chain,
    gate: &Gate,
    sizes: &[usize],
    before_release: impl FnOnce(),
) -> (
    (PrimaryKey, Result<(), AteError>),
    Vec<(PrimaryKey, Result<(), AteError>)>,
) {
    let (entered, release) = gate.arm();
    let first = queue(chain, 0, 10);
    entered.recv().expect("the writer reaches the append");
    let queued: Vec<Commit> = sizes
        .iter()
        .enumerate()
        .map(|(i, len)| queue(chain, i as u64 + 1, *len))
        .collect();
    before_release();
    release.send(()).expect("release the append");
    let first = first.await;
    let mut results = Vec::new();
    for c in queued {
        results.push(c.await);
    }
    (first, results)
}

#[tokio::test]
async fn an_oversize_transaction_is_refused_alone_and_poisons_nothing() {
    let reg = reg().await;
    let store = MemoryStore::new();
    let (chain, gate) = open_gated(&reg, &store);
    let sizes = [10, LIMIT * 2, 20, LIMIT, 30];
    let ((k0, r0), results) = group_behind_a_held_append(&chain, &gate, &sizes, || {}).await;
    r0.expect("the first commit");
    let mut kept = vec![k0];
    for ((key, res), size) in results.into_iter().zip(sizes) {
        if size < LIMIT / 2 {
            res.unwrap_or_else(|e| panic!("a note of {size} bytes beside a refused one: {e}"));
            kept.push(key);
        } else {
            match res {
                Err(AteError::Commit(CommitError::TooLarge { size: s, max })) => {
                    assert!(s > LIMIT, "{s} bytes reported");
                    assert_eq!(max, LIMIT);
                }
                other => panic!("a note of {size} bytes: expected TooLarge, got {other:?}"),
            }
            assert!(!chain.is_poisoned(), "a refusal poisons nothing");
        }
    }
    // The chain goes on, and alone an oversize transaction is refused the same way.
    let (_, res) = queue(&chain, 99, LIMIT * 3).await;
    assert!(matches!(
        res,
        Err(AteError::Commit(CommitError::TooLarge { .. }))
    ));
    let (key, res) = queue(&chain, 100, 10).await;
    res.expect("a commit after the refusals");
    kept.push(key);
    assert!(!chain.is_poisoned());
    assert_eq!(chain.len(), kept.len());
    drop(chain);

    // Only the acknowledged transactions are in the log, in sequence.
    let reopened = reg
        .open_store(&ChainKey::from(KEY), Box::new(store.clone()))
        .expect("reopen");
    assert_eq!(reopened.recovery().records, kept.len());
    assert_eq!(reopened.recovery().truncated, 0);
    let dio = reopened.dio(&session()).await;
    for k in &kept {
        assert!(dio.exists(k).await, "acknowledged {k}");
    }
}

/// Which I/O call of the held group fails.
#[derive(Debug, Clone, Copy)]
enum Failing {
    Append,
    Sync,
}

#[tokio::test]
async fn every_transaction_of_a_failed_group_gets_the_cause_and_later_ones_poisoned() {
    for failing in [Failing::Append, Failing::Sync] {
        let reg = reg().await;
        let store = MemoryStore::new();
        let (chain, gate) = open_gated(&reg, &store);
        // The held append of the first commit and its sync succeed; the queued group's append
        // (or, with one more call allowed, its sync) fails.
        let allowed = match failing {
            Failing::Append => 2,
            Failing::Sync => 3,
        };
        let sizes = [10, 20, 30, 40];
        let ((_, r0), results) =
            group_behind_a_held_append(&chain, &gate, &sizes, || store.fail_after(allowed)).await;
        r0.expect("the first commit was written before the failure");
        assert_eq!(results.len(), sizes.len());
        for (i, (_, res)) in results.iter().enumerate() {
            match res {
                Err(AteError::Commit(CommitError::Log(LogError::Io { store, source }))) => {
                    assert_eq!(store, "memory", "{failing:?}, transaction {i}");
                    assert_eq!(source.to_string(), "injected failure");
                }
                other => panic!(
                    "{failing:?}, transaction {i} of the failed group: expected the I/O error, \
                     got {other:?}"
                ),
            }
        }
        assert!(chain.is_poisoned());
        store.fail_after(u64::MAX);
        // Later commits are refused as poisoned, without touching the store.
        let written = store.bytes();
        let (_, res) = queue(&chain, 50, 10).await;
        assert!(
            matches!(res, Err(AteError::Commit(CommitError::Poisoned(_)))),
            "{failing:?}: {res:?}"
        );
        assert_eq!(store.bytes(), written, "a poisoned chain writes nothing");
    }
}

/// A transaction built by hand (as another process sends it), polled once: by then it is
/// queued for the writer.
fn queue_foreign(chain: &Chain, events: Vec<ate_runtime::event::EventDraft>) -> ForeignCommit {
    let chain = chain.clone();
    let mut fut: ForeignCommit =
        Box::pin(async move { chain.commit_transaction(events, Vec::new()).await });
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => fut,
        Poll::Ready(done) => Box::pin(std::future::ready(done)),
    }
}

type ForeignCommit = Pin<Box<dyn Future<Output = Result<u64, CommitError>> + Send>>;

/// The schema's checks of a transaction see the transactions ahead of it in its group commit:
/// records written there count when an index is made unique, and a unique index made there
/// holds for the ones after it.
#[tokio::test]
async fn schema_checks_see_the_earlier_transactions_of_their_group() {
    use ate_runtime::event::{BodyFormat, EventDraft};
    use ate_runtime::schema::{IndexDef, IndexKind, SCHEMA_TYPE, Scalar, SchemaError, TypeSchema};
    let tag = |key: PrimaryKey, label: &str| EventDraft {
        key,
        timestamp_ms: 1,
        tombstone: false,
        parent: None,
        type_name: "g.Tag".into(),
        format: BodyFormat::MessagePack,
        meta: Vec::new(),
        body: Some(Bytes::from(rmp_serde::to_vec(&(label,)).unwrap())),
    };
    let schema = |key: PrimaryKey| EventDraft {
        type_name: SCHEMA_TYPE.into(),
        body: Some(Bytes::from(
            TypeSchema {
                type_name: "g.Tag".into(),
                indexes: vec![IndexDef {
                    field: "label".into(),
                    position: 0,
                    kind: IndexKind::of(Scalar::String),
                    unique: true,
                }],
            }
            .to_body()
            .unwrap(),
        )),
        ..tag(key, "")
    };
    let k = || PrimaryKey::generate();

    // Two records share a value, each in its own transaction of the group: the schema record
    // queued after them is refused; the one after it, once the value is no longer shared, not.
    let reg = reg().await;
    let (chain, gate) = open_gated(&reg, &MemoryStore::new());
    let (entered, release) = gate.arm();
    let held = queue_foreign(&chain, vec![tag(k(), "held")]);
    entered.recv().expect("the writer reaches the append");
    let group = vec![
        queue_foreign(&chain, vec![tag(k(), "x")]),
        queue_foreign(&chain, vec![tag(k(), "x")]),
        queue_foreign(&chain, vec![schema(k())]),
    ];
    release.send(()).expect("release");
    held.await.expect("the held commit");
    let mut results = Vec::new();
    for c in group {
        results.push(c.await);
    }
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(
        matches!(&results[2], Err(CommitError::Schema(SchemaError::Duplicate { field, .. })) if field == "label"),
        "{results:?}"
    );
    assert!(chain.schema_of("g.Tag").is_none());

    // The schema record is accepted in a group, and the records after it in the same group
    // are held to it.
    let (chain, gate) = open_gated(&reg, &MemoryStore::new());
    let first = k();
    let (entered, release) = gate.arm();
    let held = queue_foreign(&chain, vec![tag(k(), "held")]);
    entered.recv().expect("the writer reaches the append");
    let group = vec![
        queue_foreign(&chain, vec![tag(first, "x")]),
        queue_foreign(&chain, vec![schema(k())]),
        queue_foreign(&chain, vec![tag(k(), "x")]),
        queue_foreign(&chain, vec![tag(k(), "y")]),
    ];
    release.send(()).expect("release");
    held.await.expect("the held commit");
    let mut results = Vec::new();
    for c in group {
        results.push(c.await);
    }
    assert!(
        results[0].is_ok() && results[1].is_ok() && results[3].is_ok(),
        "{results:?}"
    );
    assert!(
        matches!(&results[2], Err(CommitError::UniqueViolation { existing, .. }) if *existing == first),
        "{results:?}"
    );
    assert_eq!(chain.find_keys("g.Tag", "label", "x").unwrap(), [first]);
    assert_eq!(chain.find_keys("g.Tag", "label", "held").unwrap().len(), 1);
}
