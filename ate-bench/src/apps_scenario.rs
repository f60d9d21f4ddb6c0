//! Scenario A (issue 13): the bank and the coin of `ate_examples`, beside the same transfers
//! written as plain SQLite transactions with the same durability, in the same run.
//!
//! - **A1, bank transfers.** [`Teller::transfer`], the call the bank service's handler makes:
//!   one durable transaction per transfer, updating two accounts, writing their two
//!   transactions and the request's applied record (signed by the teller's key; the
//!   transactions and the applied record encrypted for the bank's read key). 64 accounts, each
//!   funded far beyond what the run moves; every client (a task) transfers a random amount
//!   between two random accounts, as the owner of the first (all owners' keys are in this
//!   process). Of two transfers touching one account at once the later is refused as stale and
//!   the teller reads again: those retries are counted. Embedded (a chain on a file), and over
//!   loopback (a `net::host::Server` in this process on 127.0.0.1, its chains on disk, each
//!   client a replica pinning the server's identity; 16 clients are 4 tasks on each of 4
//!   replicas, each replica with its own teller).
//! - **A2, the same through the `#[service]` API**: `BankApiClient::transfer` signed by the
//!   owner of the first account, the request served by `Branch` on the same embedded chain
//!   (the request, then the teller's transaction, then the reply: three durable commits).
//! - **A3, coin transfers.** [`Wallet::transfer`]: one durable transaction moving one coin,
//!   signed by its owner's key and checked by the coin rules. Each client is a wallet moving
//!   coins the mint issued to it before the clock starts to random other wallets (so no two
//!   transfers ever spend one coin). Embedded and over loopback as A1.
//! - **The SQLite peer**: a file database in WAL mode with `synchronous=FULL` (an fsync of the
//!   WAL per commit), as the commit scenarios open it. A bank transfer is one `BEGIN IMMEDIATE`
//!   transaction: the idempotency row looked up, both accounts read, the owner and the funds
//!   checked, both balances updated, two transaction rows and the idempotency row (unique key)
//!   inserted. A coin transfer is one transaction reading the coin, checking its owner, and
//!   updating its owner with a version check. 1 connection; and 16 threads, each with its own
//!   connection (a busy timeout of 10 s; a transaction refused with `SQLITE_BUSY` anyway is
//!   tried again, and counted), and again sharing one connection behind a mutex taken for each
//!   transaction, as the commit scenarios run SQLite (no busy waits: on this machine several
//!   times faster). The ratio is against the faster of the two. SQLite signs and encrypts
//!   nothing: the ratio is that of the same application-level work, not of the same
//!   guarantees.
//!
//! Every setup (accounts, coins) is made before the clock starts; each round runs every case
//! once, in an order that rotates from round to round; figures are medians of the rounds, and
//! ratios medians of the per-round ratios.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ate::crypto::{Hash, KeySize, PrivateSignKey};
use ate::net::host::{Server, ServerConfig};
use ate::net::remote::RemoteOptions;
use ate::net::{ConnectOptions, ServerIdentity, ServerTrust};
use ate::prelude::*;
use ate::service::Serving;
use ate_examples::bank::{
    self, BankApiClient, BankApiService, BankKeys, Branch, Teller, Transfer, key_id, session_of,
};
use ate_examples::coin::{self, Mint, Wallet};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::remote_scenario::{self, ClientKind};
use crate::util::{Res, int, median};
use crate::{Plan, Report, Table};

/// Accounts of the bank: enough that 16 clients do not all collide.
const ACCOUNTS: usize = 64;
/// Clients of the concurrent rows.
const MANY: usize = 16;
/// Replicas the concurrent clients share over loopback (`MANY / REPLICAS` tasks on each).
const REPLICAS: usize = 4;
/// Coins issued per transaction before a measurement.
const ISSUE_BATCH: usize = 500;
/// What each account is paid in first: far beyond what a run moves.
const OPENING: u64 = 1_000_000_000;
/// The largest amount a transfer moves.
const MAX_AMOUNT: u64 = 100;
/// The bank's name.
const NAME: &str = "bench bank";
/// How long a SQLite connection waits for the write lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What one measurement did.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    secs: f64,
    ops: usize,
    /// Stale-version retries (ATE) or `SQLITE_BUSY` retries (SQLite).
    retries: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// A bank on a chain, its accounts opened and funded.
struct Bank {
    /// The tellers, one per chain (replica).
    tellers: Vec<Arc<Teller>>,
    owners: Arc<Vec<Hash>>,
    numbers: Arc<Vec<String>>,
    /// The `#[service]` API served on the first chain, and a client for each owner.
    api: Option<(Serving, Arc<Vec<BankApiClient>>)>,
    chains: Vec<Chain>,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

impl Bank {
    /// Stops the service and the server.
    async fn close(mut self) -> Res<()> {
        if let Some((serving, _)) = self.api.take() {
            serving.stop().await?;
        }
        drop(std::mem::take(&mut self.tellers));
        drop(std::mem::take(&mut self.chains));
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        Ok(())
    }
}

/// The options of a client pinning the server's identity.
fn options(identity: &ServerIdentity) -> RemoteOptions {
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
    o
}

fn number(i: usize) -> String {
    format!("{:08}", 10_000_000 + i)
}

/// Opens `ACCOUNTS` accounts through `teller`, each funded with `OPENING` by its owner; the
/// owners' keys.
async fn open_accounts(teller: &Teller, keys: &BankKeys) -> Res<Vec<PrivateSignKey>> {
    let staff = [keys.staff.hash()];
    let mut owners = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let owner = PrivateSignKey::generate(KeySize::Bit128);
        let n = number(i);
        teller
            .open_account(&staff, &n, &format!("customer {i}"), &key_id(&owner.hash()))
            .await?;
        teller
            .deposit(&[owner.hash()], &n, OPENING, &format!("opening {i}"))
            .await?;
        owners.push(owner);
    }
    Ok(owners)
}

/// A bank in a fresh folder under `base`: on an embedded chain, serving its `#[service]`
/// API there too; or on a loopback server's chain, with `REPLICAS` client replicas, each with
/// its own teller.
async fn bank_open(base: &Path, loopback: bool) -> Res<Bank> {
    let dir = tempfile::tempdir_in(base)?;
    let (server, chains) = if loopback {
        let (server, identity) = remote_scenario::start_server(dir.path()).await?;
        let url = server.url(bank::CHAIN);
        let mut chains = Vec::with_capacity(REPLICAS);
        for _ in 0..REPLICAS {
            chains.push(remote_scenario::open_client(&url, &identity, ClientKind::Replica).await?);
        }
        (Some(server), chains)
    } else {
        let chain = ChainBuilder::new(&AteConfig::at(dir.path()))
            .await
            .build()
            .open(&ChainKey::from(bank::CHAIN))
            .await?;
        (None, vec![chain])
    };
    let keys = BankKeys::generate();
    let mut tellers = Vec::with_capacity(chains.len());
    for chain in &chains {
        tellers.push(Arc::new(Teller::open(chain, NAME, &keys).await?));
    }
    let owners = open_accounts(&tellers[0], &keys).await?;
    for chain in &chains {
        chain.sync().await?;
    }
    let api = if loopback {
        None
    } else {
        let serving = chains[0]
            .add_service(
                &keys.teller_session(),
                BankApiService::new(Branch(tellers[0].clone())),
            )
            .await?;
        let clients = owners
            .iter()
            .map(|o| {
                BankApiClient::new(&chains[0], &session_of(o)).with_timeout(Duration::from_secs(60))
            })
            .collect();
        Some((serving, Arc::new(clients)))
    };
    Ok(Bank {
        tellers,
        owners: Arc::new(owners.iter().map(PrivateSignKey::hash).collect()),
        numbers: Arc::new((0..ACCOUNTS).map(number).collect()),
        api,
        chains,
        server,
        _dir: dir,
    })
}

/// `clients` tasks at once, each making `per` transfers through its teller (task `t` uses
/// teller `t % tellers`), or with `service` through the `#[service]` API, after all are ready.
async fn bank_transfers(
    bank: &Bank,
    service: bool,
    clients: usize,
    per: usize,
    tag: &str,
) -> Res<Run> {
    let api = match (&bank.api, service) {
        (Some((_, api)), true) => Some(api.clone()),
        (None, true) => return Err("this bank serves no API".into()),
        (_, false) => None,
    };
    let before: u64 = bank.tellers.iter().map(|t| t.retries()).sum();
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for t in 0..clients {
        let teller = bank.tellers[t % bank.tellers.len()].clone();
        let (owners, numbers) = (bank.owners.clone(), bank.numbers.clone());
        let (barrier, api) = (barrier.clone(), api.clone());
        let tag = format!("{tag} {t}");
        let seed = Hash::of_parts(&[tag.as_bytes()]).as_bytes()[0] as u64 + t as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed);
            barrier.wait().await;
            for i in 0..per {
                let from = rng.random_range(0..ACCOUNTS);
                let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                let amount = rng.random_range(1..=MAX_AMOUNT);
                let reference = format!("{tag} {i}");
                match &api {
                    None => {
                        teller
                            .transfer(
                                &[owners[from]],
                                &numbers[from],
                                &numbers[to],
                                amount,
                                &reference,
                            )
                            .await?;
                    }
                    Some(api) => {
                        api[from]
                            .transfer(Transfer {
                                from: numbers[from].clone(),
                                to: numbers[to].clone(),
                                amount,
                                reference,
                            })
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            Res::Ok(())
        }));
    }
    let secs = release_and_time(&barrier, tasks).await?;
    let after: u64 = bank.tellers.iter().map(|t| t.retries()).sum();
    Ok(Run {
        secs,
        ops: clients * per,
        retries: after - before,
    })
}

/// A coin chain, its mint and `MANY` wallets.
struct Coins {
    mint: Mint,
    wallets: Vec<Arc<Wallet>>,
    ids: Arc<Vec<String>>,
    /// The next serial number to issue.
    next: u64,
    chains: Vec<Chain>,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

impl Coins {
    /// Stops the server.
    async fn close(mut self) {
        drop(std::mem::take(&mut self.chains));
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// A coin chain in a fresh folder under `base`: embedded, or on a loopback server (the mint's
/// key its root key) with `REPLICAS` client replicas.
async fn coins_open(base: &Path, loopback: bool) -> Res<Coins> {
    let dir = tempfile::tempdir_in(base)?;
    let mint = Mint::generate();
    let (server, chains) = if loopback {
        let identity = ServerIdentity::generate(KeySize::Bit128);
        let mut config = ServerConfig::new(identity.clone());
        config.listen = "127.0.0.1:0".parse()?;
        config.chains = AteConfig::at(dir.path());
        config.root_keys = vec![mint.public_key()];
        let server = Server::start(config).await?;
        let url = server.url(coin::CHAIN);
        let mut chains = Vec::with_capacity(REPLICAS);
        for _ in 0..REPLICAS {
            chains.push(
                coin::registry(&AteConfig::in_memory(), &mint.public_key())
                    .await
                    .open_url_with(&url, &options(&identity))
                    .await?,
            );
        }
        (Some(server), chains)
    } else {
        let chain = coin::registry(&AteConfig::at(dir.path()), &mint.public_key())
            .await
            .open(&ChainKey::from(coin::CHAIN))
            .await?;
        (None, vec![chain])
    };
    let wallets: Vec<Arc<Wallet>> = (0..MANY).map(|_| Arc::new(Wallet::generate())).collect();
    let ids = Arc::new(wallets.iter().map(|w| w.id()).collect());
    Ok(Coins {
        mint,
        wallets,
        ids,
        next: 0,
        chains,
        server,
        _dir: dir,
    })
}

/// Issues `per` coins to each of the first `clients` wallets (before the clock starts), then
/// `clients` tasks at once, wallet `t` on replica `t % replicas`, each moving its coins one
/// transfer at a time to random other wallets.
async fn coin_transfers(coins: &mut Coins, clients: usize, per: usize, tag: &str) -> Res<Run> {
    let mut mine = Vec::with_capacity(clients);
    for t in 0..clients {
        let serials: Vec<(u64, u64)> = (0..per as u64).map(|j| (coins.next + j, 1)).collect();
        coins.next += per as u64;
        let mut keys = Vec::with_capacity(per);
        for chunk in serials.chunks(ISSUE_BATCH) {
            keys.extend(
                coins
                    .mint
                    .issue(&coins.chains[0], &coins.ids[t], chunk)
                    .await?,
            );
        }
        mine.push(keys);
    }
    for chain in &coins.chains {
        chain.sync().await?;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for (t, keys) in mine.into_iter().enumerate() {
        let chain = coins.chains[t % coins.chains.len()].clone();
        let (wallet, ids) = (coins.wallets[t].clone(), coins.ids.clone());
        let barrier = barrier.clone();
        let seed = Hash::of_parts(&[tag.as_bytes()]).as_bytes()[0] as u64 + t as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed);
            barrier.wait().await;
            for key in keys {
                let to = (t + rng.random_range(1..MANY)) % MANY;
                wallet.transfer(&chain, key, &ids[to]).await?;
            }
            Res::Ok(())
        }));
    }
    let secs = release_and_time(&barrier, tasks).await?;
    Ok(Run {
        secs,
        ops: clients * per,
        retries: 0,
    })
}

/// Releases `tasks` (each waiting on `barrier`) at once and times them to the last; the first
/// error of any of them, after all have ended.
async fn release_and_time(
    barrier: &tokio::sync::Barrier,
    tasks: Vec<tokio::task::JoinHandle<Res<()>>>,
) -> Res<f64> {
    barrier.wait().await;
    let start = Instant::now();
    let mut failed = None;
    for task in tasks {
        if let Err(e) = task.await? {
            failed = failed.or(Some(e));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    failed.map_or(Ok(secs), Err)
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// A connection to the database at `path`: WAL, `synchronous=FULL`, a busy timeout.
fn sqlite_open(path: &Path) -> Res<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite refused WAL mode: {mode}").into());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The bank as SQLite tables: its accounts opened and funded.
struct SqlBank {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    owners: Vec<String>,
}

fn sql_bank(base: &Path) -> Res<SqlBank> {
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().join("bank.sqlite");
    let mut conn = sqlite_open(&path)?;
    conn.execute_batch(
        "CREATE TABLE accounts (number TEXT PRIMARY KEY, owner_key TEXT NOT NULL, \
             balance INTEGER NOT NULL CHECK (balance >= 0));
         CREATE TABLE transactions (id INTEGER PRIMARY KEY, account TEXT NOT NULL, \
             kind TEXT NOT NULL, other TEXT NOT NULL, amount INTEGER NOT NULL, \
             balance INTEGER NOT NULL, reference TEXT NOT NULL);
         CREATE INDEX transactions_account ON transactions (account);
         CREATE TABLE applied (key TEXT PRIMARY KEY, request TEXT NOT NULL, \
             balance INTEGER NOT NULL);",
    )?;
    let owners: Vec<String> = (0..ACCOUNTS)
        .map(|i| key_id(&Hash::of_parts(&[b"owner", &i.to_le_bytes()])))
        .collect();
    let tx = conn.transaction()?;
    for (i, owner) in owners.iter().enumerate() {
        tx.execute(
            "INSERT INTO accounts (number, owner_key, balance) VALUES (?1, ?2, ?3)",
            (number(i), owner, OPENING as i64),
        )?;
    }
    tx.commit()?;
    Ok(SqlBank {
        _dir: dir,
        path,
        owners,
    })
}

/// One transfer as one SQLite transaction; `Ok(Err(why))` for a refusal (nothing written).
fn sql_transfer(
    conn: &mut Connection,
    caller: &str,
    from: &str,
    to: &str,
    amount: i64,
    reference: &str,
) -> rusqlite::Result<Result<i64, String>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let key = format!("{caller}/{reference}");
    let request = format!("transfer {from} {to} {amount}");
    let applied: Option<(String, i64)> = tx
        .prepare_cached("SELECT request, balance FROM applied WHERE key = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((asked, balance)) = applied {
        return Ok(if asked == request {
            Ok(balance)
        } else {
            Err(format!("idempotency key {reference} reused"))
        });
    }
    let mut account =
        tx.prepare_cached("SELECT owner_key, balance FROM accounts WHERE number = ?1")?;
    let source: Option<(String, i64)> = account
        .query_row([from], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let target: Option<(String, i64)> = account
        .query_row([to], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    drop(account);
    let (Some((owner, from_balance)), Some((_, to_balance))) = (source, target) else {
        return Ok(Err("no such account".into()));
    };
    if owner != caller {
        return Ok(Err(format!("not the owner of {from}")));
    }
    if from_balance < amount {
        return Ok(Err(format!("{from} holds {from_balance}")));
    }
    let (left, credited) = (from_balance - amount, to_balance + amount);
    {
        let mut update = tx.prepare_cached("UPDATE accounts SET balance = ?2 WHERE number = ?1")?;
        update.execute((from, left))?;
        update.execute((to, credited))?;
        let mut record = tx.prepare_cached(
            "INSERT INTO transactions (account, kind, other, amount, balance, reference) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        record.execute((from, "out", to, amount, left, reference))?;
        record.execute((to, "in", from, amount, credited, reference))?;
        tx.prepare_cached("INSERT INTO applied (key, request, balance) VALUES (?1, ?2, ?3)")?
            .execute((&key, &request, left))?;
    }
    tx.commit()?;
    Ok(Ok(left))
}

/// How the SQLite clients reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conns {
    /// Each client thread its own connection, waiting for the write lock.
    Own,
    /// The client threads share one connection behind a mutex, taken for each transaction (how
    /// the commit scenarios run SQLite's concurrent committers: no busy waits).
    Shared,
}

/// Runs `op(client, i, connection)` for `i` in `0..per` on `clients` threads at once (inline
/// for one), after all are ready: each thread with its own connection to `path`, or all
/// sharing one; the seconds and the `SQLITE_BUSY` retries `op` counted.
fn on_connections<F>(
    path: &Path,
    clients: usize,
    per: usize,
    conns: Conns,
    op: F,
) -> Res<(f64, u64)>
where
    F: Fn(usize, usize, &mut Connection) -> Res<u64> + Sync,
{
    let shared = match conns {
        Conns::Shared => Some(std::sync::Mutex::new(sqlite_open(path)?)),
        Conns::Own => None,
    };
    let barrier = std::sync::Barrier::new(clients + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (op, barrier, shared) = (&op, &barrier, &shared);
                s.spawn(move || {
                    let own = match shared {
                        None => Some(sqlite_open(path)),
                        Some(_) => None,
                    };
                    barrier.wait();
                    let mut own = own.transpose()?;
                    let mut retries = 0;
                    for i in 0..per {
                        retries += match (&mut own, shared) {
                            (Some(conn), _) => op(c, i, conn)?,
                            (None, Some(m)) => {
                                let mut guard = m.lock().map_err(|_| "poisoned lock")?;
                                op(c, i, &mut guard)?
                            }
                            (None, None) => return Err("no connection".into()),
                        };
                    }
                    Res::Ok(retries)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut retries = 0;
        let mut failed = None;
        for h in handles {
            match h.join().map_err(|_| "a SQLite client thread panicked")? {
                Ok(r) => retries += r,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        match failed {
            Some(e) => Err(e),
            None => Ok((secs, retries)),
        }
    })
}

/// Tries `tx` until it is not refused with `SQLITE_BUSY`; the retries.
fn until_not_busy<T>(mut tx: impl FnMut() -> rusqlite::Result<Result<T, String>>) -> Res<u64> {
    let mut retries = 0;
    loop {
        match tx() {
            Ok(Ok(_)) => return Ok(retries),
            Ok(Err(why)) => return Err(why.into()),
            Err(e) if is_busy(&e) => retries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `clients` SQLite clients at once, each making `per` transfers.
fn sql_bank_transfers(
    bank: &SqlBank,
    clients: usize,
    per: usize,
    conns: Conns,
    tag: &str,
) -> Res<Run> {
    // Each client's transfers, drawn before the clock starts: (from, to, amount).
    let plans: Vec<Vec<(usize, usize, i64)>> = (0..clients)
        .map(|c| {
            let mut rng = SmallRng::seed_from_u64(0x5a11 + c as u64);
            (0..per)
                .map(|_| {
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                    (from, to, rng.random_range(1..=MAX_AMOUNT) as i64)
                })
                .collect()
        })
        .collect();
    let (secs, retries) = on_connections(&bank.path, clients, per, conns, |c, i, conn| {
        let (from, to, amount) = plans[c][i];
        let reference = format!("{tag} {c} {i}");
        until_not_busy(|| {
            sql_transfer(
                conn,
                &bank.owners[from],
                &number(from),
                &number(to),
                amount,
                &reference,
            )
        })
    })?;
    Ok(Run {
        secs,
        ops: clients * per,
        retries,
    })
}

/// The coins as a SQLite table.
struct SqlCoins {
    path: std::path::PathBuf,
    ids: Vec<String>,
    next: i64,
    _dir: tempfile::TempDir,
}

fn sql_coins(base: &Path) -> Res<SqlCoins> {
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().join("coins.sqlite");
    let conn = sqlite_open(&path)?;
    conn.execute_batch(
        "CREATE TABLE coins (serial INTEGER PRIMARY KEY, value INTEGER NOT NULL,              owner TEXT NOT NULL, version INTEGER NOT NULL);
         CREATE INDEX coins_owner ON coins (owner);",
    )?;
    let ids = (0..MANY)
        .map(|i| key_id(&Hash::of_parts(&[b"wallet", &i.to_le_bytes()])))
        .collect();
    Ok(SqlCoins {
        path,
        ids,
        next: 0,
        _dir: dir,
    })
}

/// One coin transfer as one SQLite transaction; `Ok(Err(why))` for a refusal.
fn sql_coin_transfer(
    conn: &mut Connection,
    serial: i64,
    me: &str,
    to: &str,
) -> rusqlite::Result<Result<(), String>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let coin: Option<(String, i64)> = tx
        .prepare_cached("SELECT owner, version FROM coins WHERE serial = ?1")?
        .query_row([serial], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((owner, version)) = coin else {
        return Ok(Err(format!("no coin {serial}")));
    };
    if owner != me {
        return Ok(Err(format!("coin {serial} is not mine")));
    }
    let changed = tx
        .prepare_cached(
            "UPDATE coins SET owner = ?1, version = version + 1 WHERE serial = ?2 AND version = ?3",
        )?
        .execute((to, serial, version))?;
    if changed != 1 {
        return Ok(Err(format!("coin {serial} was already spent")));
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// Issues `per` coins to each of the first `clients` wallets (before the clock starts), then
/// `clients` SQLite clients at once, each moving its wallet's coins to random other wallets.
fn sql_coin_transfers(coins: &mut SqlCoins, clients: usize, per: usize, conns: Conns) -> Res<Run> {
    let first = coins.next;
    {
        let mut conn = sqlite_open(&coins.path)?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO coins (serial, value, owner, version) VALUES (?1, 1, ?2, 0)",
            )?;
            for t in 0..clients {
                for j in 0..per {
                    insert.execute((first + (t * per + j) as i64, &coins.ids[t]))?;
                }
            }
        }
        tx.commit()?;
    }
    coins.next += (clients * per) as i64;
    let ids = &coins.ids;
    // Each client's recipients, drawn before the clock starts.
    let to: Vec<Vec<usize>> = (0..clients)
        .map(|c| {
            let mut rng = SmallRng::seed_from_u64(0xc011 + c as u64 + first as u64);
            (0..per)
                .map(|_| (c + rng.random_range(1..MANY)) % MANY)
                .collect()
        })
        .collect();
    let (secs, retries) = on_connections(&coins.path, clients, per, conns, |c, j, conn| {
        let serial = first + (c * per + j) as i64;
        until_not_busy(|| sql_coin_transfer(conn, serial, &ids[c], &ids[to[c][j]]))
    })?;
    Ok(Run {
        secs,
        ops: clients * per,
        retries,
    })
}

// ---------------------------------------------------------------------------------------------
// The cases and the report

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A1 embedded.
    BankEmbedded,
    /// A1 over loopback.
    BankLoopback,
    /// A2: through the `#[service]` API, embedded.
    BankService,
    /// The SQLite bank, each client its own connection.
    BankSqlite,
    /// The SQLite bank, the clients sharing one connection.
    BankSqliteShared,
    /// A3 embedded.
    CoinEmbedded,
    /// A3 over loopback.
    CoinLoopback,
    /// The SQLite coins, each client its own connection.
    CoinSqlite,
    /// The SQLite coins, the clients sharing one connection.
    CoinSqliteShared,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    kind: Kind,
    clients: usize,
}

impl Case {
    fn label(&self) -> String {
        let c = self.clients;
        let who = match (c, self.kind) {
            (1, _) => "1 client".to_string(),
            (_, Kind::BankLoopback | Kind::CoinLoopback) => {
                format!("{c} clients ({REPLICAS} replicas × {} tasks)", c / REPLICAS)
            }
            (_, Kind::BankService) => format!("{c} callers"),
            _ => format!("{c} clients"),
        };
        match self.kind {
            Kind::BankEmbedded => format!("A1. bank transfers/s, embedded, {who}"),
            Kind::BankLoopback => format!("A1. bank transfers/s, over loopback, {who}"),
            Kind::BankService => {
                format!("A2. bank transfers/s through BankApi (#[service]), embedded, {who}")
            }
            Kind::CoinEmbedded => format!("A3. coin transfers/s, embedded, {who}"),
            Kind::CoinLoopback => format!("A3. coin transfers/s, over loopback, {who}"),
            Kind::BankSqlite => format!("SQLite bank transfers/s, {c} connection(s)"),
            Kind::BankSqliteShared => {
                format!("SQLite bank transfers/s, {c} threads sharing 1 connection")
            }
            Kind::CoinSqlite => format!("SQLite coin transfers/s, {c} connection(s)"),
            Kind::CoinSqliteShared => {
                format!("SQLite coin transfers/s, {c} threads sharing 1 connection")
            }
        }
    }

    fn slug(&self) -> String {
        let k = match self.kind {
            Kind::BankEmbedded => "bank.embedded",
            Kind::BankLoopback => "bank.loopback",
            Kind::BankService => "bank.service",
            Kind::BankSqlite => "bank.sqlite",
            Kind::BankSqliteShared => "bank.sqlite_shared",
            Kind::CoinEmbedded => "coin.embedded",
            Kind::CoinLoopback => "coin.loopback",
            Kind::CoinSqlite => "coin.sqlite",
            Kind::CoinSqliteShared => "coin.sqlite_shared",
        };
        format!("apps.{k}.{}", self.clients)
    }

    /// The SQLite cases it is read against: each client with its own connection, and (for
    /// more than one client) all sharing one.
    fn peers(&self) -> Option<(Kind, Kind)> {
        match self.kind {
            Kind::BankEmbedded | Kind::BankLoopback | Kind::BankService => {
                Some((Kind::BankSqlite, Kind::BankSqliteShared))
            }
            Kind::CoinEmbedded | Kind::CoinLoopback => {
                Some((Kind::CoinSqlite, Kind::CoinSqliteShared))
            }
            _ => None,
        }
    }
}

/// Everything the cases run on, made before the clock starts.
struct Setups {
    bank: Bank,
    bank_remote: Bank,
    sql_bank: SqlBank,
    coins: Coins,
    coins_remote: Coins,
    sql_coins: SqlCoins,
}

fn run_case(
    rt: &tokio::runtime::Runtime,
    s: &mut Setups,
    case: Case,
    per: usize,
    tag: &str,
) -> Res<Run> {
    let c = case.clients;
    match case.kind {
        Kind::BankEmbedded => rt.block_on(bank_transfers(&s.bank, false, c, per, tag)),
        Kind::BankLoopback => rt.block_on(bank_transfers(&s.bank_remote, false, c, per, tag)),
        Kind::BankService => rt.block_on(bank_transfers(&s.bank, true, c, per, tag)),
        Kind::BankSqlite => sql_bank_transfers(&s.sql_bank, c, per, Conns::Own, tag),
        Kind::BankSqliteShared => sql_bank_transfers(&s.sql_bank, c, per, Conns::Shared, tag),
        Kind::CoinEmbedded => rt.block_on(coin_transfers(&mut s.coins, c, per, tag)),
        Kind::CoinLoopback => rt.block_on(coin_transfers(&mut s.coins_remote, c, per, tag)),
        Kind::CoinSqlite => sql_coin_transfers(&mut s.sql_coins, c, per, Conns::Own),
        Kind::CoinSqliteShared => sql_coin_transfers(&mut s.sql_coins, c, per, Conns::Shared),
    }
}

fn rates(runs: &[Run]) -> f64 {
    median(&runs.iter().map(Run::rate).collect::<Vec<_>>())
}

fn retries(runs: &[Run]) -> f64 {
    median(&runs.iter().map(|r| r.retries as f64).collect::<Vec<_>>())
}

/// The median over rounds of `a`'s rate divided by `b`'s in the same round.
fn ratio(a: &[Run], b: &[Run]) -> f64 {
    median(
        &a.iter()
            .zip(b)
            .map(|(x, y)| x.rate() / y.rate())
            .collect::<Vec<_>>(),
    )
}

/// Scenario A: the bank and coin apps beside SQLite.
pub fn scenario_apps(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let rounds = plan.rounds;
    let total = if plan.quick { 200 } else { 2000 };
    println!(
        "\n[A] the bank and coin apps (ate_examples): transfers/s, {total} per measurement, \
         1 and {MANY} clients, {ACCOUNTS} accounts; beside the same transfers as SQLite \
         transactions (WAL, synchronous=FULL); {rounds} round(s)"
    );
    let t = Instant::now();
    let mut setups = rt.block_on(async {
        Res::Ok(Setups {
            bank: bank_open(base, false).await?,
            bank_remote: bank_open(base, true).await?,
            sql_bank: sql_bank(base)?,
            coins: coins_open(base, false).await?,
            coins_remote: coins_open(base, true).await?,
            sql_coins: sql_coins(base)?,
        })
    })?;
    println!(
        "  set up in {:.1} s: two banks of {ACCOUNTS} funded accounts (embedded; on a loopback \
         server with {REPLICAS} replicas), two coin chains with {MANY} wallets, the SQLite \
         databases",
        t.elapsed().as_secs_f64()
    );
    let mut cases = Vec::new();
    for kind in [
        Kind::BankEmbedded,
        Kind::BankLoopback,
        Kind::BankService,
        Kind::BankSqlite,
        Kind::BankSqliteShared,
        Kind::CoinEmbedded,
        Kind::CoinLoopback,
        Kind::CoinSqlite,
        Kind::CoinSqliteShared,
    ] {
        for clients in [1, MANY] {
            let shared = matches!(kind, Kind::BankSqliteShared | Kind::CoinSqliteShared);
            if !(shared && clients == 1) {
                cases.push(Case { kind, clients });
            }
        }
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let case = cases[i];
            let per = (total / case.clients).max(1);
            let run = run_case(rt, &mut setups, case, per, &format!("r{round} c{i}"))?;
            println!(
                "  round {}: {}: {}/s ({} in {:.2} s, {} retries)",
                round + 1,
                case.label(),
                int(run.rate()),
                run.ops,
                run.secs,
                run.retries
            );
            runs[i].push(run);
        }
    }
    rt.block_on(async {
        setups.bank.close().await?;
        setups.bank_remote.close().await?;
        setups.coins.close().await;
        setups.coins_remote.close().await;
        Res::Ok(())
    })?;
    drop((setups.sql_bank, setups.sql_coins));

    let find = |kind: Kind, clients: usize| {
        cases
            .iter()
            .position(|x| x.kind == kind && x.clients == clients)
    };
    let mut table = Table {
        title: "Applications (issue 13): transfers/s, median of the rounds (retries per \
                measurement)"
            .into(),
        head: vec![
            "scenario".into(),
            "ATE".into(),
            "SQLite, same durability, same run".into(),
            "ratio".into(),
        ],
        rows: Vec::new(),
    };
    for (i, case) in cases.iter().enumerate() {
        let slug = case.slug();
        rep.metric(&format!("{slug}.per_s"), rates(&runs[i]));
        rep.metric(&format!("{slug}.retries"), retries(&runs[i]));
        let Some((own, shared)) = case.peers() else {
            continue;
        };
        let (Some(own), shared) = (find(own, case.clients), find(shared, case.clients)) else {
            continue;
        };
        // SQLite's best: one connection for one client; for many, the better of its two ways.
        let best = match shared {
            Some(sh) if rates(&runs[sh]) > rates(&runs[own]) => sh,
            _ => own,
        };
        let over = ratio(&runs[i], &runs[best]);
        rep.metric(&format!("{slug}.over_sqlite"), over);
        // SQLite's retries (SQLITE_BUSY) are shown when there were any.
        let tries = |j: usize| match retries(&runs[j]) {
            r if r > 0.0 => format!(", {r:.0} retries"),
            _ => String::new(),
        };
        let mut peer = if case.clients == 1 {
            format!("{}{}", int(rates(&runs[own])), tries(own))
        } else {
            format!(
                "{} ({} connections{})",
                int(rates(&runs[own])),
                case.clients,
                tries(own)
            )
        };
        let mut note = format!("ATE/SQLite {over:.2}×");
        if let Some(sh) = shared {
            let over_own = ratio(&runs[i], &runs[own]);
            rep.metric(&format!("{slug}.over_sqlite_own_connections"), over_own);
            peer = format!("{} (1 shared connection) · {peer}", int(rates(&runs[sh])));
            note += &format!(" ({over_own:.2}× {} connections)", case.clients);
        }
        if case.kind == Kind::BankService
            && let Some(direct) = find(Kind::BankEmbedded, case.clients)
        {
            let hop = ratio(&runs[i], &runs[direct]);
            rep.metric(&format!("{slug}.over_teller"), hop);
            note += &format!("; {hop:.2}× the teller called directly");
        }
        table.rows.push(vec![
            case.label(),
            format!("{} ({:.0})", int(rates(&runs[i])), retries(&runs[i])),
            peer,
            note,
        ]);
    }
    rep.tables.push(table);
    rep.note(format!(
        "A: a bank transfer is one durable transaction updating two accounts and writing their \
         two transaction records and the request's idempotency record (ATE: Teller::transfer, \
         signed by the teller and encrypted for the bank's read key, a stale version read again \
         and counted as a retry; SQLite: one BEGIN IMMEDIATE transaction doing the same reads, \
         checks, updates and inserts, unsigned and in plaintext; with many clients either each \
         thread has its own connection, waiting up to {} s for the write lock (a SQLITE_BUSY \
         after that tried again and counted), or all share one connection behind a mutex, as \
         the commit scenarios run SQLite; the ratio is against the faster of the two). \
         {ACCOUNTS} accounts; each client transfers between random accounts as the owner of the \
         first. A2 adds the #[service] hop: the request and the reply are durable commits too. \
         A coin transfer (A3) is one durable transaction moving one coin, signed by its owner \
         and checked by the coin rules (SQLite: the owner checked and updated with a version \
         check). Over loopback, {MANY} clients are {} tasks on each of {REPLICAS} replicas.",
        BUSY_TIMEOUT.as_secs(),
        MANY / REPLICAS
    ));
    Ok(())
}
