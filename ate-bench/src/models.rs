//! `#[derive(Dao)]` models under load: what a secondary index costs a commit, and how fast a
//! generated finder (`find_by_<field>`) looks records up beside a load by key.
//!
//! The three models have the same fields (a string code and a byte payload) and differ only in
//! the index on `code`, so the same values cost the same to encode; each has its own stable type
//! name. They are stored on the Quick Start's open chain (no signatures, plaintext), so only
//! the index work differs.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use ate::Storable;
use ate::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engines::{Sample, Work, ate_open};
use crate::util::Res;

/// No index.
#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bench.Unindexed")]
pub struct Unindexed {
    pub code: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `#[dao(index)]` on `code`.
#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bench.Indexed")]
pub struct Indexed {
    #[dao(index)]
    pub code: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `#[dao(index, unique)]` on `code`.
#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bench.Unique")]
pub struct Unique {
    #[dao(index, unique)]
    pub code: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// The models, built the same way.
pub trait Model: Storable {
    fn make(code: String, data: Vec<u8>) -> Self;
}

impl Model for Unindexed {
    fn make(code: String, data: Vec<u8>) -> Self {
        Unindexed { code, data }
    }
}

impl Model for Indexed {
    fn make(code: String, data: Vec<u8>) -> Self {
        Indexed { code, data }
    }
}

impl Model for Unique {
    fn make(code: String, data: Vec<u8>) -> Self {
        Unique { code, data }
    }
}

/// The index variants compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    None,
    Index,
    Unique,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::None, Variant::Index, Variant::Unique];

    pub fn name(self) -> &'static str {
        match self {
            Variant::None => "no index",
            Variant::Index => "#[dao(index)]",
            Variant::Unique => "#[dao(index, unique)]",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Variant::None => "none",
            Variant::Index => "index",
            Variant::Unique => "unique",
        }
    }

    pub fn idx(self) -> usize {
        Variant::ALL
            .iter()
            .position(|v| *v == self)
            .expect("listed")
    }

    /// Runs a single-committer workload with this variant's model in a fresh chain.
    pub async fn commits(self, dir: &Path, payloads: &[Vec<u8>], w: Work) -> Res<Sample> {
        match self {
            Variant::None => commits::<Unindexed>(dir, payloads, w).await,
            Variant::Index => commits::<Indexed>(dir, payloads, w).await,
            Variant::Unique => commits::<Unique>(dir, payloads, w).await,
        }
    }
}

/// The code of the `i`-th record (distinct, so unique indexes accept every one).
fn code(i: usize) -> String {
    format!("code-{i:010}")
}

async fn commits<M: Model>(dir: &Path, payloads: &[Vec<u8>], w: Work) -> Res<Sample> {
    let chain = ate_open(dir, "models").await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    let mut i = 0usize;
    for _ in 0..w.warmup {
        dio.store(M::make(code(i), payloads[i % payloads.len()].clone()))?;
        dio.commit().await?;
        i += 1;
    }
    let mut lat = Vec::with_capacity(w.txs);
    let start = Instant::now();
    for _ in 0..w.txs {
        let t = Instant::now();
        for _ in 0..w.per_tx {
            dio.store(M::make(code(i), payloads[i % payloads.len()].clone()))?;
            i += 1;
        }
        dio.commit().await?;
        lat.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Sample::new(secs, w, lat))
}

/// A chain holding `n` records of each indexed model, record `i` with code `code(i)`; returns
/// the chain and the keys of the `Indexed` records in order.
pub async fn lookup_store(
    dir: &Path,
    payloads: &[Vec<u8>],
    n: usize,
) -> Res<(Chain, Vec<PrimaryKey>)> {
    let chain = ate_open(dir, "lookups").await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let data = payloads[i % payloads.len()].clone();
        keys.push(*dio.store(Indexed::make(code(i), data.clone()))?.key());
        dio.store(Unique::make(code(i), data))?;
        if (i + 1) % 1000 == 0 || i + 1 == n {
            dio.commit().await?;
        }
    }
    Ok((chain, keys))
}

/// The ways a record is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `dio.load::<Indexed>(&key)`.
    Key,
    /// `Indexed::find_by_code(&dio, code)` (a `Vec` of one).
    Index,
    /// `Unique::find_by_code(&dio, code)` (an `Option`).
    Unique,
}

impl Lookup {
    pub const ALL: [Lookup; 3] = [Lookup::Key, Lookup::Index, Lookup::Unique];

    pub fn name(self) -> &'static str {
        match self {
            Lookup::Key => "load by key",
            Lookup::Index => "find_by (index)",
            Lookup::Unique => "find_by (unique)",
        }
    }

    pub fn idx(self) -> usize {
        Lookup::ALL.iter().position(|v| *v == self).expect("listed")
    }
}

/// Looks up record `i` for every `i` in `order` through one Dio; returns the seconds taken.
/// Codes are formatted before the clock starts.
pub async fn lookups(
    chain: &Chain,
    keys: &[PrimaryKey],
    codes: &[String],
    order: &[u32],
    how: Lookup,
) -> Res<Duration> {
    let dio = chain.dio(&AteSession::default()).await;
    let mut acc = 0usize;
    let t = Instant::now();
    for &i in order {
        let i = i as usize;
        acc += match how {
            Lookup::Key => dio.load::<Indexed>(&keys[i]).await?.data.len(),
            Lookup::Index => {
                let found = Indexed::find_by_code(&dio, codes[i].as_str()).await?;
                if found.len() != 1 {
                    return Err(format!("{} records with code {}", found.len(), codes[i]).into());
                }
                found[0].data.len()
            }
            Lookup::Unique => Unique::find_by_code(&dio, codes[i].as_str())
                .await?
                .ok_or_else(|| format!("no record with code {}", codes[i]))?
                .data
                .len(),
        };
    }
    let took = t.elapsed();
    black_box(acc);
    Ok(took)
}

/// Every record's code, in order.
pub fn codes(n: usize) -> Vec<String> {
    (0..n).map(code).collect()
}
