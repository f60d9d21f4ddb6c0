//! A source chain and replicas in one process, and the record types the tests store.

use std::sync::Arc;
use std::time::Duration;

use ate_runtime::chain::{CommitError, SealedTransaction, StreamError, Upstream};
use ate_runtime::prelude::*;
use ate_runtime::schema::{
    AccessDefault, IndexKind, IndexSpec, Scalar, TypeRegistration, extract_with,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// A record with a unique and a plain secondary index (registered by hand below, as
/// `#[derive(Dao)]` would).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    pub city: String,
    pub balance: u64,
}

impl Account {
    pub fn new(email: &str, city: &str) -> Self {
        Account {
            email: email.into(),
            city: city.into(),
            balance: 0,
        }
    }
}

fn account_email(body: &[u8]) -> Option<Vec<u8>> {
    extract_with::<Account, _>(body, |a| &a.email)
}

fn account_city(body: &[u8]) -> Option<Vec<u8>> {
    extract_with::<Account, _>(body, |a| &a.city)
}

static ACCOUNT_INDEXES: [IndexSpec; 2] = [
    IndexSpec {
        field: "email",
        unique: true,
        position: 0,
        kind: IndexKind::of(Scalar::String),
        extract: account_email,
    },
    IndexSpec {
        field: "city",
        unique: false,
        position: 1,
        kind: IndexKind::of(Scalar::String),
        extract: account_city,
    },
];

fn attach_nothing(_: &mut dyn std::any::Any, _: PrimaryKey) {}

inventory::submit! {
    TypeRegistration {
        name: "replica.Account",
        type_id: std::any::TypeId::of::<Account>,
        rust_name: std::any::type_name::<Account>,
        read: AccessDefault::Inherit,
        write: AccessDefault::Inherit,
        attach: attach_nothing,
        indexes: &ACCOUNT_INDEXES,
    }
}

/// An upstream in the same process: the source chain commits what a replica sends. With a
/// gate, each commit first waits for a permit (so a test can hold a commit in flight).
#[derive(Debug)]
pub struct TestUpstream {
    pub source: Chain,
    pub gate: Option<Arc<Semaphore>>,
}

impl TestUpstream {
    pub fn new(source: &Chain) -> Arc<Self> {
        Arc::new(TestUpstream {
            source: source.clone(),
            gate: None,
        })
    }
}

#[async_trait::async_trait]
impl Upstream for TestUpstream {
    async fn commit(&self, tx: SealedTransaction) -> Result<u64, CommitError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        // As a network would: the bytes only.
        let tx = SealedTransaction::from_bytes(tx.to_bytes())?;
        self.source.commit_sealed(tx).await
    }
}

/// Applies the source's commit stream to the replica from the replica's position until the
/// source closes (or the replica refuses a transaction, which fails the task). Applies what
/// has arrived in batches, as a network client would.
pub fn pump(source: &Chain, replica: &Chain) -> JoinHandle<()> {
    let mut stream = source.subscribe(replica.last_seq() + 1);
    let replica = replica.clone();
    tokio::spawn(async move {
        loop {
            let first = match stream.next().await {
                Ok(c) => c,
                Err(StreamError::Closed) => return,
                Err(e) => panic!("stream failed: {e}"),
            };
            let mut batch = vec![(first.seq(), first.payload().clone())];
            // Whatever else is ready, without waiting.
            while batch.len() < 64 {
                match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                    Ok(Ok(c)) => batch.push((c.seq(), c.payload().clone())),
                    _ => break,
                }
            }
            replica
                .apply_replicated_batch(batch)
                .await
                .expect("the replica applies what its source committed");
        }
    })
}

/// A registry over memory, with `root` pinned (when given).
pub async fn memory_registry(root: Option<&PrivateSignKey>) -> ChainRegistry {
    let mut b = ChainBuilder::new(&AteConfig::in_memory()).await;
    if let Some(root) = root {
        b = b.add_root_public_key(&root.as_public_key());
    }
    b.build()
}

/// A registry keeping logs under `dir`, without preallocation (files hold exactly the log).
pub async fn file_registry(dir: &std::path::Path) -> ChainRegistry {
    let mut conf = AteConfig::at(dir);
    conf.preallocate = false;
    ChainBuilder::new(&conf).await.build()
}

/// A source chain in memory and `n` replicas of it, each with its own registry, pumped.
pub struct Cluster {
    pub source: Chain,
    pub replicas: Vec<Chain>,
    pub pumps: Vec<JoinHandle<()>>,
}

impl Cluster {
    pub async fn new(name: &str, n: usize, root: Option<&PrivateSignKey>) -> Self {
        let key = ChainKey::from(name);
        let source = memory_registry(root).await.open(&key).await.unwrap();
        let mut replicas = Vec::new();
        let mut pumps = Vec::new();
        for _ in 0..n {
            let replica = memory_registry(root)
                .await
                .open_replica(&key, TestUpstream::new(&source))
                .await
                .unwrap();
            pumps.push(pump(&source, &replica));
            replicas.push(replica);
        }
        Cluster {
            source,
            replicas,
            pumps,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &self.pumps {
            p.abort();
        }
    }
}

/// The payload of every transaction of `chain`, in order.
pub fn payloads(chain: &Chain) -> Vec<(u64, bytes::Bytes)> {
    chain
        .read_from(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|c| (c.seq(), c.payload().clone()))
        .collect()
}

/// Waits for `cond` (the bound only guards against a hang; nothing is measured).
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}
