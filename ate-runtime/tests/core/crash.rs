//! R1: a child process commits in a loop and is killed with SIGKILL at a random moment, again and
//! again on the same folder; after each kill every acknowledged transaction is there, no
//! transaction is half there, and the open succeeds.
//!
//! Each transaction `n` updates a counter record to `n`, stores a folder `tx n` with three
//! children, and deletes the first child of transaction `n - 1` (from the same child process).
//! The child prints `BEGIN n <keys>` before it commits and `ACK n` once the commit returned, so
//! the parent knows every key that may have reached the disk. A SIGKILL cannot drop the page
//! cache; `powercut` covers lost and torn unsynced writes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use ate_runtime::log::{FileStore, RecoveryReport};
use ate_runtime::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::child;
use crate::common::{Folder, Note, items_of, open, registry, session};

const ROUNDS_VAR: &str = "ATE_CRASH_ROUNDS";
const DEFAULT_ROUNDS: usize = 50;
const CHAIN: &str = "crash";
const DIR: &str = "ATE_CRASH_DIR";
const COUNTER: &str = "ATE_CRASH_COUNTER";
const START: &str = "ATE_CRASH_START";
const PREALLOCATE: &str = "ATE_CRASH_PREALLOCATE";
/// Sizes of the zero-filled extensions the child grows the log by (0: none). Small, so that
/// every open does not scan megabytes of zeros in a debug build.
const CHUNKS: [u64; 3] = [0, 4096, 64 << 10];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

fn blob(n: u64) -> Vec<u8> {
    vec![(n % 251) as u8; (n as usize * 1237) % 9000]
}

fn kid(n: u64, j: u64) -> Note {
    Note {
        n: n * 10 + j,
        text: format!("tx {n} child {j}"),
    }
}

fn config(dir: &Path) -> AteConfig {
    let mut conf = AteConfig::at(dir);
    conf.preallocate = false;
    conf
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write to the parent");
    out.flush().expect("flush to the parent");
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The child: commits transactions `START..` until it is killed.
pub async fn child_commit_loop() {
    let dir = var(DIR);
    let counter: PrimaryKey = var(COUNTER).parse().expect("counter key");
    let start: u64 = var(START).parse().expect("start");
    let chunk: u64 = var(PREALLOCATE).parse().expect("chunk");
    let conf = config(Path::new(&dir));
    // Ends whatever line the test harness left open.
    say("");
    // Through a store opened by hand, to choose the preallocation chunk.
    let path = ChainKey::from(CHAIN)
        .log_file(Path::new(&dir))
        .expect("log path");
    let store = FileStore::open(&path, chunk).expect("child: open the log");
    let chain = registry(&conf)
        .await
        .open_store(&ChainKey::from(CHAIN), Box::new(store))
        .expect("child: open the chain");
    say("OPEN");
    let mut previous_kid: Option<PrimaryKey> = None;
    for n in start..start + 1_000_000 {
        let mut dio = chain.dio(&session()).await;
        let mut c = dio.load::<Counter>(&counter).await.expect("child: counter");
        assert_eq!(c.n, n - 1, "child: the counter follows the transactions");
        c.as_mut().n = n;
        let mut folder = Folder::new(format!("tx {n}"));
        folder.blob = blob(n);
        let folder = dio.store(folder).expect("child: stage folder");
        let items = items_of(&folder);
        let kids: Vec<PrimaryKey> = (0..3)
            .map(|j| *items.push(&mut dio, kid(n, j)).expect("child: stage").key())
            .collect();
        if let Some(k) = previous_kid {
            dio.delete(&k).expect("child: stage delete");
        }
        let deleted = previous_kid.map_or("-".to_string(), |k| k.to_string());
        say(&format!(
            "BEGIN {n} {} {} {} {} {deleted}",
            folder.key(),
            kids[0],
            kids[1],
            kids[2]
        ));
        dio.commit().await.expect("child: commit");
        say(&format!("ACK {n}"));
        previous_kid = Some(kids[0]);
    }
}

/// One transaction as the child announced it.
#[derive(Debug, Clone)]
struct Tx {
    folder: PrimaryKey,
    kids: [PrimaryKey; 3],
    deletes: Option<PrimaryKey>,
}

fn parse(lines: &[String]) -> (BTreeMap<u64, Tx>, BTreeSet<u64>) {
    let mut begun = BTreeMap::new();
    let mut acked = BTreeSet::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["BEGIN", n, f, k0, k1, k2, d] => {
                let key = |s: &str| s.parse::<PrimaryKey>().expect("a key");
                let tx = Tx {
                    folder: key(f),
                    kids: [key(k0), key(k1), key(k2)],
                    deletes: (*d != "-").then(|| key(d)),
                };
                begun.insert(n.parse().expect("a number"), tx);
            }
            ["ACK", n] => {
                acked.insert(n.parse().expect("a number"));
            }
            _ => {}
        }
    }
    (begun, acked)
}

/// What the parent knows must be in the chain: every transaction that survived so far.
#[derive(Default)]
struct History {
    /// Surviving transactions.
    txs: BTreeMap<u64, Tx>,
    /// Children deleted by surviving transactions.
    deleted: BTreeSet<PrimaryKey>,
}

impl History {
    /// Live records: the counter, and each surviving transaction's folder and children.
    fn live(&self) -> usize {
        1 + self.txs.len() * 4 - self.deleted.len()
    }
}

async fn assert_present(dio: &Dio, n: u64, tx: &Tx, deleted: &BTreeSet<PrimaryKey>) {
    let folder = dio
        .load::<Folder>(&tx.folder)
        .await
        .unwrap_or_else(|e| panic!("tx {n}: folder missing: {e}"));
    assert_eq!(folder.name, format!("tx {n}"));
    assert!(folder.blob == blob(n), "tx {n}: folder blob differs");
    let mut expected = Vec::new();
    for (j, k) in tx.kids.iter().enumerate() {
        let got = dio.load::<Note>(k).await;
        if deleted.contains(k) {
            assert!(
                matches!(got, Err(DioError::NotFound(_))),
                "tx {n}: child {j} was deleted"
            );
        } else {
            let got = got.unwrap_or_else(|e| panic!("tx {n}: child {j} missing: {e}"));
            assert_eq!(*got, kid(n, j as u64));
            expected.push(*k);
        }
    }
    let kids: Vec<PrimaryKey> = items_of(&folder)
        .iter(dio)
        .await
        .expect("children")
        .iter()
        .map(|d| *d.key())
        .collect();
    assert_eq!(kids, expected, "tx {n}: children in commit order");
}

async fn assert_absent(dio: &Dio, n: u64, tx: &Tx) {
    assert!(
        matches!(
            dio.load::<Folder>(&tx.folder).await,
            Err(DioError::NotFound(_))
        ),
        "tx {n} was not durable, yet its folder is there"
    );
    for k in &tx.kids {
        assert!(
            matches!(dio.load::<Note>(k).await, Err(DioError::NotFound(_))),
            "tx {n} was not durable, yet a child is there"
        );
    }
}

/// Checks that whatever recovery cut from the log `killed` (its bytes before the open) is in the
/// quarantine file it names, byte for byte.
fn assert_cut_bytes_are_kept(report: &RecoveryReport, killed: &[u8], round: usize) {
    match &report.quarantine {
        None => assert_eq!(
            report.truncated, 0,
            "round {round}: a cut tail is quarantined"
        ),
        Some(q) => {
            assert_eq!((q.offset, q.len), (report.end, report.truncated));
            assert_eq!(
                q.offset + q.len,
                killed.len() as u64,
                "round {round}: the whole tail"
            );
            let kept = std::fs::read(&q.location).expect("read the quarantine file");
            assert!(
                kept[..] == killed[q.offset as usize..],
                "round {round}: {} holds exactly the bytes cut",
                q.location
            );
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    acked: usize,
    in_flight_kept: usize,
    in_flight_lost: usize,
    torn_tails: usize,
    killed_while_opening: usize,
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_commit() {
    let rounds = std::env::var(ROUNDS_VAR)
        .ok()
        .map(|s| s.parse().expect("ATE_CRASH_ROUNDS is a number"))
        .unwrap_or(DEFAULT_ROUNDS);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let counter = rt.block_on(async {
        let chain = open(&registry(&config(dir.path())).await, &ChainKey::from(CHAIN))
            .await
            .expect("create the chain");
        let mut dio = chain.dio(&session()).await;
        let c = dio.store(Counter { n: 0 }).expect("stage");
        dio.commit().await.expect("commit the counter");
        *c.key()
    });

    let mut rng = rand::rng();
    let mut history = History::default();
    let mut stats = Stats::default();
    for round in 0..rounds {
        let next = history.txs.keys().last().map_or(1, |n| n + 1);
        let chunk = CHUNKS[round % CHUNKS.len()];
        let (mut child, mut out) = child::spawn(
            "commit",
            &[
                (DIR, dir.path().display().to_string()),
                (COUNTER, counter.to_string()),
                (START, next.to_string()),
                (PREALLOCATE, chunk.to_string()),
            ],
        );
        let mut seen = Vec::new();
        // Reads lines until `stop` says so (or the child's stdout ends).
        let mut read_until = |seen: &mut Vec<String>, stop: &mut dyn FnMut(&str) -> bool| {
            while let Some(line) = out.next_line() {
                let done = stop(&line);
                seen.push(line);
                if done {
                    break;
                }
            }
        };
        match round % 4 {
            // At any moment from the start, often while it opens (and recovers) the log.
            0 => std::thread::sleep(Duration::from_millis(rng.random_range(5..=80))),
            // A while after the open.
            1 => {
                read_until(&mut seen, &mut |l| l == "OPEN");
                std::thread::sleep(Duration::from_millis(rng.random_range(0..=30)));
            }
            // A little after a random number of acknowledgements.
            2 => {
                let mut acks: usize = rng.random_range(0..=25);
                read_until(&mut seen, &mut |l| {
                    acks = acks.saturating_sub(usize::from(l.starts_with("ACK ")));
                    acks == 0
                });
                std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
            }
            // Just after a transaction was announced: often during its commit.
            _ => {
                let mut begins: usize = rng.random_range(1..=25);
                read_until(&mut seen, &mut |l| {
                    begins = begins.saturating_sub(usize::from(l.starts_with("BEGIN ")));
                    begins == 0
                });
                std::thread::sleep(Duration::from_micros(rng.random_range(0..1500)));
            }
        }
        // SIGKILL on unix.
        child.kill().expect("kill the child");
        let status = child.wait().expect("wait for the child");
        let (rest, stderr) = out.finish();
        seen.extend(rest);
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child ended by itself ({status}):\n{stderr}"
        );
        let (begun, acked) = parse(&seen);
        if !seen.iter().any(|l| l == "OPEN") {
            stats.killed_while_opening += 1;
        }
        if let Some(first) = begun.keys().next() {
            assert_eq!(
                *first, next,
                "round {round}: the child starts where we left"
            );
        }

        let log = ChainKey::from(CHAIN)
            .log_file(dir.path())
            .expect("log path");
        let killed = std::fs::read(&log).expect("read the log the child left");
        rt.block_on(async {
            let chain = open(&registry(&config(dir.path())).await, &ChainKey::from(CHAIN))
                .await
                .unwrap_or_else(|e| panic!("round {round}: open after SIGKILL failed: {e}"));
            if chain.recovery().truncated > 0 {
                stats.torn_tails += 1;
            }
            assert_cut_bytes_are_kept(chain.recovery(), &killed, round);
            let dio = chain.dio(&session()).await;
            let last = dio.load::<Counter>(&counter).await.expect("counter").n;
            assert!(
                last + 1 >= next,
                "round {round}: counter {last} went back before {next}"
            );
            if let Some(a) = acked.last() {
                assert!(
                    *a <= last,
                    "round {round}: transaction {a} was acknowledged, the chain ends at {last}"
                );
            }
            stats.acked += acked.len();
            // Every announced transaction is either all there (up to the counter) or not at all.
            for (n, tx) in &begun {
                if *n <= last {
                    if let Some(d) = tx.deletes {
                        history.deleted.insert(d);
                    }
                    history.txs.insert(*n, tx.clone());
                    if !acked.contains(n) {
                        stats.in_flight_kept += 1;
                    }
                } else {
                    assert_absent(&dio, *n, tx).await;
                    stats.in_flight_lost += 1;
                }
            }
            assert_eq!(
                history.txs.keys().last().copied().unwrap_or(0),
                last,
                "round {round}: the counter names the last transaction"
            );
            for (n, tx) in begun.range(..=last) {
                assert_present(&dio, *n, tx, &history.deleted).await;
            }
            assert_eq!(
                chain.len(),
                history.live(),
                "round {round}: no record more or less than the transactions made"
            );
        });
    }

    // Finally every transaction of every round, after one more reopen.
    rt.block_on(async {
        let chain = open(&registry(&config(dir.path())).await, &ChainKey::from(CHAIN))
            .await
            .expect("final open");
        let dio = chain.dio(&session()).await;
        for (n, tx) in &history.txs {
            assert_present(&dio, *n, tx, &history.deleted).await;
        }
        assert_eq!(chain.len(), history.live());
    });
    assert!(
        !history.txs.is_empty(),
        "no transaction survived any of {rounds} rounds"
    );
    println!(
        "{rounds} SIGKILL rounds: {} transactions in the chain, {:?}",
        history.txs.len(),
        stats
    );
}
