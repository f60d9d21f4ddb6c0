//! The chain of trust under load: durable commits, batches and replay of a chain whose root is
//! pinned to a Falcon-512 key, with every value encrypted for a reader.
//!
//! Three setups run the same work:
//! - `unsigned`: the Quick Start's open chain (no root key, plaintext), as in scenarios 1–5;
//! - `AES reader`: root key pinned; each value's rules are `read = ReadOption::from_key(k)` (a
//!   symmetric AES-256 read key, the data key wrapped with AES-256-GCM) and `write =
//!   WriteOption::Specific(root)`, so each transaction is encrypted, hashed and signed once;
//! - `NTRU reader`: the same with `read = ReadOption::from_public_key(pk)` (the data key is
//!   wrapped with an NTRU-HPS-2048-509 encapsulation: the writer never holds the read secret).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ate::crypto::{EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey, PublicEncryptKey};
use ate::log::{MemoryStore, RecoveryMode};
use ate::prelude::*;
use ate::trust::{ReadOption, WriteOption};
use ate::unstable::codec::decode_transaction;
use ate::unstable::log::{RedoLog, encode_frames};

use crate::data::Blob;
use crate::engines::{Sample, Work};
use crate::replay::ensure_closed;
use crate::util::Res;

/// How a chain is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// No root key, plaintext (the Quick Start).
    Unsigned,
    /// Signed by the root key, encrypted for a symmetric read key.
    Aes,
    /// Signed by the root key, encrypted for an NTRU public read key.
    Ntru,
}

impl Setup {
    /// Every setup, in the order rounds start from.
    pub const ALL: [Setup; 3] = [Setup::Unsigned, Setup::Aes, Setup::Ntru];
    /// The signed, encrypted setups.
    pub const SIGNED: [Setup; 2] = [Setup::Aes, Setup::Ntru];

    pub fn name(self) -> &'static str {
        match self {
            Setup::Unsigned => "unsigned",
            Setup::Aes => "AES reader",
            Setup::Ntru => "NTRU reader",
        }
    }

    /// The key used in metric names.
    pub fn tag(self) -> &'static str {
        match self {
            Setup::Unsigned => "unsigned",
            Setup::Aes => "aes",
            Setup::Ntru => "ntru",
        }
    }

    /// Index into [`Setup::ALL`].
    pub fn idx(self) -> usize {
        Setup::ALL.iter().position(|s| *s == self).expect("listed")
    }
}

/// The keys of the signed setups: a Falcon-512 root writer, an AES-256 read key and an NTRU
/// key pair (generated once per run).
pub struct TrustKeys {
    pub root: PrivateSignKey,
    pub read: EncryptKey,
    pub ntru: PrivateEncryptKey,
    pub ntru_public: PublicEncryptKey,
}

impl TrustKeys {
    pub fn generate() -> Self {
        let ntru = PrivateEncryptKey::generate(KeySize::Bit128);
        TrustKeys {
            root: PrivateSignKey::generate(KeySize::Bit128),
            read: EncryptKey::generate(),
            ntru_public: ntru.as_public_key(),
            ntru,
        }
    }

    /// The writer's session (it also holds the read keys, so it can read back what it wrote).
    pub fn session(&self, s: Setup) -> AteSession {
        let mut session = AteSession::default();
        if s != Setup::Unsigned {
            session
                .add_write_key(&self.root)
                .add_read_key(&self.read)
                .add_private_read_key(&self.ntru);
        }
        session
    }

    /// The rules every stored value gets (`None`: the type's defaults).
    pub fn rules(&self, s: Setup) -> Option<(ReadOption, WriteOption)> {
        let write = WriteOption::Specific(self.root.hash());
        match s {
            Setup::Unsigned => None,
            Setup::Aes => Some((ReadOption::from_key(&self.read), write)),
            Setup::Ntru => Some((ReadOption::from_public_key(&self.ntru_public), write)),
        }
    }

    async fn builder(&self, conf: &AteConfig, s: Setup) -> ChainBuilder {
        let b = ChainBuilder::new(conf).await;
        if s == Setup::Unsigned {
            b
        } else {
            b.add_root_public_key(&self.root.as_public_key())
        }
    }

    /// Opens (creating) the chain `name` in a folder, with the root key pinned when signed.
    pub async fn open(&self, dir: &Path, name: &str, s: Setup) -> Res<Chain> {
        let registry = self.builder(&AteConfig::at(dir), s).await.build();
        Ok(registry.open(&ChainKey::from(name)).await?)
    }
}

/// Stages one value with the setup's rules (one `auth_mut` guard: each guard re-encodes the
/// value when dropped).
fn stage(dio: &mut Dio, v: Blob, rules: &Option<(ReadOption, WriteOption)>) -> Res<()> {
    let mut dao = dio.store(v)?;
    if let Some((read, write)) = rules {
        let mut auth = dao.auth_mut();
        auth.read = read.clone();
        auth.write = write.clone();
    }
    Ok(())
}

/// Runs a commit workload in a fresh chain under `dir`.
pub async fn commits(
    dir: &Path,
    keys: Arc<TrustKeys>,
    vals: Arc<Vec<Blob>>,
    w: Work,
    s: Setup,
) -> Res<Sample> {
    let chain = keys.open(dir, "trust", s).await?;
    {
        let rules = keys.rules(s);
        let mut dio = chain.dio(&keys.session(s)).await;
        for i in 0..w.warmup {
            stage(&mut dio, vals[i % vals.len()].clone(), &rules)?;
            dio.commit().await?;
        }
    }
    let start = Instant::now();
    let lat = if w.committers == 1 {
        committer(chain.clone(), keys.clone(), vals.clone(), w, s, 0).await?
    } else {
        let handles: Vec<_> = (0..w.committers)
            .map(|c| {
                tokio::spawn(committer(
                    chain.clone(),
                    keys.clone(),
                    vals.clone(),
                    w,
                    s,
                    c,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await??);
        }
        all
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(Sample::new(secs, w, lat))
}

/// One committer: its own Dio on the shared chain.
async fn committer(
    chain: Chain,
    keys: Arc<TrustKeys>,
    vals: Arc<Vec<Blob>>,
    w: Work,
    s: Setup,
    c: usize,
) -> Res<Vec<Duration>> {
    let rules = keys.rules(s);
    let mut dio = chain.dio(&keys.session(s)).await;
    let mut lat = Vec::with_capacity(w.txs);
    let mut i = c * 131;
    for _ in 0..w.txs {
        let t = Instant::now();
        for _ in 0..w.per_tx {
            stage(&mut dio, vals[i % vals.len()].clone(), &rules)?;
            i += 1;
        }
        dio.commit().await?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// The sizes one transaction of a setup has in the log, read back from a transaction written
/// to a memory store.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub setup: Setup,
    /// Values (events) per transaction.
    pub per_tx: usize,
    /// Mean bytes of one event's canonical encoding (what is hashed).
    pub event_bytes: usize,
    /// Bytes of the transaction's frame in the log (what is written and fsynced).
    pub tx_bytes: usize,
    /// Bytes of one value's MessagePack encoding (what is encrypted).
    pub body_bytes: usize,
}

/// Writes one transaction of `per_tx` values (after a first one, so versions and keys are
/// warm) and measures it.
pub async fn shape(keys: &TrustKeys, vals: &[Blob], s: Setup, per_tx: usize) -> Res<Shape> {
    let registry = keys.builder(&AteConfig::in_memory(), s).await.build();
    let store = MemoryStore::new();
    let chain = registry.open_store(&ChainKey::from("shape"), Box::new(store.clone()))?;
    let rules = keys.rules(s);
    let mut dio = chain.dio(&keys.session(s)).await;
    for round in 0..2 {
        for i in 0..per_tx {
            stage(
                &mut dio,
                vals[(round * per_tx + i) % vals.len()].clone(),
                &rules,
            )?;
        }
        dio.commit().await?;
    }
    drop((dio, chain));
    let (_log, records, _) = RedoLog::open(
        MemoryStore::from_bytes(store.bytes()),
        RecoveryMode::default(),
        1 << 30,
    )?;
    let last = records.last().ok_or("no transaction in the log")?;
    let tx_bytes = encode_frames(&[&last.payload[..]]).len();
    let tx = decode_transaction(last.payload.clone())?;
    let n = tx.events.len().max(1);
    let event_bytes = tx.events.iter().map(|e| e.raw.len()).sum::<usize>() / n;
    Ok(Shape {
        setup: s,
        per_tx,
        event_bytes,
        tx_bytes,
        body_bytes: crate::data::encode(&vals[0]).len(),
    })
}

/// Writes a log of `n` values in transactions of `per_tx` with the setup's rules; returns its
/// path and the seconds the writing took. The chain is closed when this returns.
pub async fn build_log(
    dir: &Path,
    keys: &TrustKeys,
    s: Setup,
    vals: &[Blob],
    n: usize,
    per_tx: usize,
) -> Res<(PathBuf, f64)> {
    let chain = keys.open(dir, "replay", s).await?;
    let rules = keys.rules(s);
    let mut dio = chain.dio(&keys.session(s)).await;
    let t = Instant::now();
    for i in 0..n {
        stage(&mut dio, vals[i % vals.len()].clone(), &rules)?;
        if (i + 1) % per_tx == 0 || i + 1 == n {
            dio.commit().await?;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let path = chain
        .path()
        .ok_or("an on-disk chain has a path")?
        .to_path_buf();
    drop((dio, chain));
    Ok((path, secs))
}

/// Opens the log again (every transaction read, CRC-checked, decoded, each event hashed, each
/// signature verified, rights and versions checked, applied to the view); returns the seconds
/// from `open()` to the ready handle.
pub async fn reopen(
    dir: &Path,
    keys: &TrustKeys,
    s: Setup,
    path: &Path,
    expect: usize,
) -> Res<(f64, f64)> {
    ensure_closed(path)?;
    let cpu = cpu_time::ProcessTime::now();
    let t = Instant::now();
    let chain = keys.open(dir, "replay", s).await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu_secs = cpu.elapsed().as_secs_f64();
    if chain.len() != expect {
        return Err(format!("replayed {} records, expected {expect}", chain.len()).into());
    }
    drop(chain);
    Ok((secs, cpu_secs))
}
