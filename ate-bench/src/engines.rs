//! The same work on each engine: durable commits, population, and point loads.
//!
//! Every engine stores the MessagePack encoding of the same [`Blob`]s under random 128-bit keys.
//! ATE encodes inside `Dio::store`; the peers call [`data::encode`] in the timed loop, so the
//! serialisation cost is on both sides.

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ate::prelude::*;
use redb::{ReadableDatabase, TableDefinition};
use rusqlite::Connection;

use crate::data::{self, Blob, Keys};
use crate::util::Res;

/// A commit workload: `committers` writers, each committing `txs` transactions of `per_tx`
/// values, after `warmup` single-value commits that are not timed.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    pub committers: usize,
    pub txs: usize,
    pub per_tx: usize,
    pub warmup: usize,
    /// Peers insert ascending keys instead of random ones (ATE's keys are always random).
    pub ascending: bool,
}

impl Work {
    /// The key source of committer `c` (distinct ranges or seeds per committer).
    fn keys(&self, c: usize) -> Keys {
        if self.ascending {
            Keys::ascending(((c as u128) + 1) << 64)
        } else {
            Keys::random(100 + c as u64)
        }
    }
}

/// What one timed run of a [`Work`] measured.
#[derive(Debug)]
pub struct Sample {
    pub secs: f64,
    pub txs: usize,
    pub values: usize,
    /// One latency per transaction (begin of staging to durable acknowledgement).
    pub lat: Vec<Duration>,
}

impl Sample {
    pub fn new(secs: f64, w: Work, lat: Vec<Duration>) -> Self {
        let txs = w.committers * w.txs;
        Sample {
            secs,
            txs,
            values: txs * w.per_tx,
            lat,
        }
    }

    pub fn tx_rate(&self) -> f64 {
        self.txs as f64 / self.secs
    }

    pub fn value_rate(&self) -> f64 {
        self.values as f64 / self.secs
    }
}

/// The engines compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Ate,
    Redb,
    Sqlite,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Ate, Engine::Redb, Engine::Sqlite];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Ate => "ATE",
            Engine::Redb => "redb",
            Engine::Sqlite => "SQLite",
        }
    }

    /// Runs a commit workload in a fresh store under `dir`.
    pub fn commits(
        self,
        rt: &tokio::runtime::Runtime,
        dir: &Path,
        vals: &Arc<Vec<Blob>>,
        w: Work,
    ) -> Res<Sample> {
        match self {
            Engine::Ate => rt.block_on(ate_commits(dir, vals.clone(), w)),
            Engine::Redb => redb_commits(dir, vals, w),
            Engine::Sqlite => sqlite_commits(dir, vals, w),
        }
    }
}

/// Runs `f(committer)` for each committer: inline for one, on scoped threads for more.
/// Returns every latency.
fn on_threads<F>(committers: usize, f: F) -> Res<Vec<Duration>>
where
    F: Fn(usize) -> Res<Vec<Duration>> + Sync,
{
    if committers == 1 {
        return f(0);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..committers)
            .map(|c| {
                let f = &f;
                s.spawn(move || f(c))
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| "a committer thread panicked")??);
        }
        Ok(all)
    })
}

// ---------------------------------------------------------------------------------------------
// ATE

/// Opens (creating) the chain `name` in a folder.
pub async fn ate_open(dir: &Path, name: &str) -> Res<Chain> {
    let conf = AteConfig::at(dir);
    let registry = ChainBuilder::new(&conf).await.build();
    Ok(registry.open(&ChainKey::from(name)).await?)
}

async fn ate_commits(dir: &Path, vals: Arc<Vec<Blob>>, w: Work) -> Res<Sample> {
    let chain = ate_open(dir, "commits").await?;
    let session = AteSession::default();
    {
        let mut dio = chain.dio(&session).await;
        for i in 0..w.warmup {
            dio.store(vals[i % vals.len()].clone())?;
            dio.commit().await?;
        }
    }
    let start = Instant::now();
    let lat = if w.committers == 1 {
        ate_committer(chain.clone(), vals.clone(), w, 0).await?
    } else {
        let handles: Vec<_> = (0..w.committers)
            .map(|c| tokio::spawn(ate_committer(chain.clone(), vals.clone(), w, c)))
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
async fn ate_committer(
    chain: Chain,
    vals: Arc<Vec<Blob>>,
    w: Work,
    c: usize,
) -> Res<Vec<Duration>> {
    let mut dio = chain.dio(&AteSession::default()).await;
    let mut lat = Vec::with_capacity(w.txs);
    let mut i = c * 131;
    for _ in 0..w.txs {
        let t = Instant::now();
        for _ in 0..w.per_tx {
            dio.store(vals[i % vals.len()].clone())?;
            i += 1;
        }
        dio.commit().await?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// Stores `n` values in transactions of `per_tx`; returns the keys in order.
pub async fn ate_populate(
    chain: &Chain,
    vals: &[Blob],
    n: usize,
    per_tx: usize,
) -> Res<Vec<PrimaryKey>> {
    let mut dio = chain.dio(&AteSession::default()).await;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(*dio.store(vals[i % vals.len()].clone())?.key());
        if (i + 1) % per_tx == 0 || i + 1 == n {
            dio.commit().await?;
        }
    }
    Ok(keys)
}

/// Loads `keys[i]` for every `i` in `order` through one Dio; returns the seconds taken.
pub async fn ate_loads(chain: &Chain, keys: &[PrimaryKey], order: &[u32]) -> Res<f64> {
    let dio = chain.dio(&AteSession::default()).await;
    let mut acc = 0usize;
    let t = Instant::now();
    for &i in order {
        let dao = dio.load::<Blob>(&keys[i as usize]).await?;
        acc += dao.data.len();
    }
    let secs = t.elapsed().as_secs_f64();
    black_box(acc);
    Ok(secs)
}

// ---------------------------------------------------------------------------------------------
// redb

const TABLE: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("kv");

/// Creates a database with its table (default durability: `Immediate`, an fsync per commit).
pub fn redb_open(dir: &Path) -> Res<redb::Database> {
    let db = redb::Database::create(dir.join("bench.redb"))?;
    let wtx = db.begin_write()?;
    wtx.open_table(TABLE)?;
    wtx.commit()?;
    Ok(db)
}

/// One write transaction of `vals[i..i + n]` (cyclic) under random keys; returns the keys.
fn redb_tx(
    db: &redb::Database,
    vals: &[Blob],
    keys_from: &mut Keys,
    i: usize,
    n: usize,
) -> Res<Vec<u128>> {
    let wtx = db.begin_write()?;
    let mut keys = Vec::with_capacity(n);
    {
        let mut table = wtx.open_table(TABLE)?;
        for j in 0..n {
            let k = u128::from_be_bytes(keys_from.next_key());
            let bytes = data::encode(&vals[(i + j) % vals.len()]);
            table.insert(k, bytes.as_slice())?;
            keys.push(k);
        }
    }
    wtx.commit()?;
    Ok(keys)
}

fn redb_commits(dir: &Path, vals: &[Blob], w: Work) -> Res<Sample> {
    let db = redb_open(dir)?;
    let mut warm = Keys::random(7);
    for i in 0..w.warmup {
        redb_tx(&db, vals, &mut warm, i, 1)?;
    }
    let start = Instant::now();
    let lat = on_threads(w.committers, |c| {
        let mut keys = w.keys(c);
        let mut lat = Vec::with_capacity(w.txs);
        let mut i = c * 131;
        for _ in 0..w.txs {
            let t = Instant::now();
            redb_tx(&db, vals, &mut keys, i, w.per_tx)?;
            i += w.per_tx;
            lat.push(t.elapsed());
        }
        Ok(lat)
    })?;
    Ok(Sample::new(start.elapsed().as_secs_f64(), w, lat))
}

/// Stores `n` values in transactions of `per_tx`; returns the keys in order.
pub fn redb_populate(
    db: &redb::Database,
    vals: &[Blob],
    n: usize,
    per_tx: usize,
) -> Res<Vec<u128>> {
    let mut from = Keys::random(11);
    let mut keys = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let m = per_tx.min(n - i);
        keys.extend(redb_tx(db, vals, &mut from, i, m)?);
        i += m;
    }
    Ok(keys)
}

/// Gets and decodes `keys[i]` for every `i` in `order` in one read transaction.
pub fn redb_loads(db: &redb::Database, keys: &[u128], order: &[u32]) -> Res<f64> {
    let mut acc = 0usize;
    let t = Instant::now();
    let rtx = db.begin_read()?;
    let table = rtx.open_table(TABLE)?;
    for &i in order {
        let guard = table.get(keys[i as usize])?.ok_or("redb: key missing")?;
        acc += data::decode(guard.value()).data.len();
    }
    let secs = t.elapsed().as_secs_f64();
    black_box(acc);
    Ok(secs)
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// Opens a database in WAL mode with `synchronous=FULL` (an fsync of the WAL per commit).
pub fn sqlite_open(dir: &Path) -> Res<Connection> {
    let conn = Connection::open(dir.join("bench.sqlite"))?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite refused WAL mode: {mode}").into());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")?;
    Ok(conn)
}

/// One transaction inserting `vals[i..i + n]` (cyclic) under random keys; returns the keys.
fn sqlite_tx(
    conn: &mut Connection,
    vals: &[Blob],
    keys_from: &mut Keys,
    i: usize,
    n: usize,
) -> Res<Vec<[u8; 16]>> {
    let tx = conn.transaction()?;
    let mut keys = Vec::with_capacity(n);
    {
        let mut insert = tx.prepare_cached("INSERT INTO kv (k, v) VALUES (?1, ?2)")?;
        for j in 0..n {
            let k = keys_from.next_key();
            let bytes = data::encode(&vals[(i + j) % vals.len()]);
            insert.execute((&k[..], &bytes[..]))?;
            keys.push(k);
        }
    }
    tx.commit()?;
    Ok(keys)
}

fn sqlite_commits(dir: &Path, vals: &[Blob], w: Work) -> Res<Sample> {
    // SQLite has one writer at a time: concurrent committers share one connection behind a
    // mutex (separate connections would only add busy-handler sleeps).
    let conn = Mutex::new(sqlite_open(dir)?);
    let mut warm = Keys::random(7);
    for i in 0..w.warmup {
        sqlite_tx(&mut conn.lock().expect("lock"), vals, &mut warm, i, 1)?;
    }
    let start = Instant::now();
    let lat = on_threads(w.committers, |c| {
        let mut keys = w.keys(c);
        let mut lat = Vec::with_capacity(w.txs);
        let mut i = c * 131;
        for _ in 0..w.txs {
            let t = Instant::now();
            let mut guard = conn.lock().map_err(|_| "poisoned lock")?;
            sqlite_tx(&mut guard, vals, &mut keys, i, w.per_tx)?;
            drop(guard);
            i += w.per_tx;
            lat.push(t.elapsed());
        }
        Ok(lat)
    })?;
    Ok(Sample::new(start.elapsed().as_secs_f64(), w, lat))
}

/// Stores `n` values in transactions of `per_tx`; returns the keys in order.
pub fn sqlite_populate(
    conn: &mut Connection,
    vals: &[Blob],
    n: usize,
    per_tx: usize,
) -> Res<Vec<[u8; 16]>> {
    let mut from = Keys::random(11);
    let mut keys = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let m = per_tx.min(n - i);
        keys.extend(sqlite_tx(conn, vals, &mut from, i, m)?);
        i += m;
    }
    Ok(keys)
}

/// Selects and decodes `keys[i]` for every `i` in `order` with a prepared statement, in one
/// read transaction (as redb's loads are; per-statement transactions would add WAL locking).
pub fn sqlite_loads(conn: &Connection, keys: &[[u8; 16]], order: &[u32]) -> Res<f64> {
    let mut acc = 0usize;
    let t = Instant::now();
    let tx = conn.unchecked_transaction()?;
    let mut select = tx.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
    for &i in order {
        let blob = select.query_row([&keys[i as usize][..]], |row| {
            Ok(data::decode(row.get_ref(0)?.as_blob()?))
        })?;
        acc += blob.data.len();
    }
    drop(select);
    tx.commit()?;
    let secs = t.elapsed().as_secs_f64();
    black_box(acc);
    Ok(secs)
}
