//! R4 through the storage seam: a compaction whose swap fails, and the states a crash during a
//! file's swap leaves on disk.
//!
//! - A store whose `replace` fails at each of its steps (writing the new bytes beside the old,
//!   making them durable, putting them in place), alone and with commits racing the
//!   compaction: `Chain::compact` returns `CompactError::Log`, the view is as it was, commits go
//!   on, and a reopen shows every acknowledged commit. A later compaction succeeds.
//! - On disk: the old log beside a `.compact` file of every interesting length (nothing, the
//!   header, each frame boundary and a byte either side, all but its last byte, complete but not
//!   renamed), and the new log after the rename. Each opens to the same view (the old log or the
//!   new one, byte for byte), the stray file is gone, and commits go on.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use ate_runtime::chain::{ChainRegistry, CompactError};
use ate_runtime::log::{LogError, LogStore, MemoryStore};
use ate_runtime::prelude::*;
use ate_runtime::unstable::log::{FILE_HEADER_LEN, FRAME_HEADER_LEN};

use crate::common::{
    Expect, Note, file_config, open, registry, session, transaction, write_workload,
};

/// A step of a store's replacement of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Writing the new bytes beside the old (fails half way through).
    Write,
    /// Making the new bytes durable.
    Sync,
    /// Putting the new bytes in the old ones' place.
    Swap,
}

const STEPS: [Step; 3] = [Step::Write, Step::Sync, Step::Swap];

#[derive(Debug, Default)]
struct Faults {
    /// The step the next replacement fails at (`None`: it succeeds).
    fail_at: Option<Step>,
    /// Replacements asked for, and how many succeeded.
    asked: usize,
    done: usize,
}

/// A memory store whose `replace` goes through the steps a file's does (the new bytes staged
/// beside the old ones, made durable, then swapped in) and fails at the one it is told to,
/// leaving its bytes as they were (the staged copy is dropped, as a file store removes its
/// `.compact` file). Every other call goes to the memory store.
struct SwapFaults {
    inner: MemoryStore,
    faults: Arc<Mutex<Faults>>,
}

fn injected(step: Step) -> LogError {
    LogError::Io {
        store: "memory".into(),
        source: std::io::Error::other(format!("injected failure at {step:?}")),
    }
}

impl LogStore for SwapFaults {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read_all(&mut self) -> Result<Bytes, LogError> {
        self.inner.read_all()
    }
    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
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
    fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        let fail_at = {
            let mut f = self.faults.lock();
            f.asked += 1;
            f.fail_at
        };
        // Written beside the old bytes: half, when the write fails.
        let written = match fail_at {
            Some(Step::Write) => contents.len() / 2,
            _ => contents.len(),
        };
        let staged = contents[..written].to_vec();
        if fail_at == Some(Step::Write) {
            return Err(injected(Step::Write));
        }
        if fail_at == Some(Step::Sync) {
            return Err(injected(Step::Sync));
        }
        if fail_at == Some(Step::Swap) {
            return Err(injected(Step::Swap));
        }
        self.inner.replace(&staged)?;
        self.faults.lock().done += 1;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

const KEY: &str = "swap-faults";

fn open_faulty(reg: &ChainRegistry, store: &MemoryStore, faults: &Arc<Mutex<Faults>>) -> Chain {
    let faulty = SwapFaults {
        inner: store.clone(),
        faults: faults.clone(),
    };
    reg.open_store(&ChainKey::from(KEY), Box::new(faulty))
        .expect("open over the faulty store")
}

/// Updates every live note once, in one transaction (superseded versions to compact away).
async fn churn(chain: &Chain, state: &mut Expect, round: u64) {
    let mut dio = chain.dio(&session()).await;
    for (k, note) in state.notes.iter_mut() {
        let mut dao = dio.load::<Note>(k).await.expect("load");
        dao.as_mut().n += 1;
        dao.as_mut().text = format!("churn {round}");
        *note = (*dao).clone();
    }
    dio.commit().await.expect("churn commit");
}

/// Commits `n` transactions of the workload from `i`, returning the state after them.
async fn more(chain: &Chain, mut state: Expect, i: u64, n: u64) -> Expect {
    for j in i..i + n {
        let (after, res) = transaction(chain, &state, j).await;
        res.unwrap_or_else(|e| panic!("commit {j}: {e}"));
        state = after;
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_swap_leaves_the_chain_on_its_old_log() {
    let reg = registry(&AteConfig::in_memory()).await;
    let store = MemoryStore::new();
    let faults = Arc::new(Mutex::new(Faults::default()));
    let chain = open_faulty(&reg, &store, &faults);
    let mut state = write_workload(&chain, 15).await.pop().expect("a state");
    churn(&chain, &mut state, 0).await;
    let mut next = 15;

    for (round, step) in STEPS.into_iter().enumerate() {
        for racing in [false, true] {
            let what = format!("{step:?}, racing commits {racing}");
            churn(&chain, &mut state, round as u64 + 1).await;
            faults.lock().fail_at = Some(step);
            let bytes_before = store.bytes();
            let seq_before = chain.last_seq();

            // With commits racing: they land before the swap, between the snapshot and the
            // swap (appended to the compacted log that is then refused), or after it.
            let racer = racing.then(|| {
                let chain = chain.clone();
                let state = state.clone();
                tokio::spawn(async move { more(&chain, state, next, 8).await })
            });
            let res = chain.compact().await;
            if let Some(r) = racer {
                state = r.await.expect("the racing commits");
                next += 8;
            }
            match res {
                Err(CompactError::Log(LogError::Io { source, .. })) => {
                    assert!(source.to_string().contains(&format!("{step:?}")), "{what}")
                }
                other => panic!("{what}: expected CompactError::Log, got {other:?}"),
            }
            assert!(
                !chain.is_poisoned(),
                "{what}: a failed swap does not poison"
            );
            state.assert_matches(&chain, &what).await;
            let bytes = store.bytes();
            assert!(
                bytes.starts_with(&bytes_before),
                "{what}: the old log is kept as it was, commits appended to it"
            );
            if !racing {
                assert_eq!(bytes, bytes_before, "{what}: nothing changed");
                assert_eq!(chain.last_seq(), seq_before);
            }

            // Commits go on on the old log.
            state = more(&chain, state, next, 2).await;
            next += 2;
            state
                .assert_matches(&chain, &format!("{what}, commits after"))
                .await;
        }
    }
    assert_eq!(faults.lock().done, 0, "every replacement failed");
    assert_eq!(faults.lock().asked, 2 * STEPS.len());

    // Reopened: every acknowledged commit, the same view.
    let seq = chain.last_seq();
    drop(chain);
    let chain = open_faulty(&reg, &store, &faults);
    assert_eq!(chain.last_seq(), seq);
    assert_eq!(chain.recovery().truncated, 0);
    state
        .assert_matches(&chain, "reopened after failed swaps")
        .await;

    // The faults gone, a compaction swaps in, and the log still holds everything.
    faults.lock().fail_at = None;
    let report = chain.compact().await.expect("compact");
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    assert_eq!(store.len(), report.bytes_after);
    state.assert_matches(&chain, "compacted").await;
    state = more(&chain, state, next, 2).await;
    drop(chain);
    let chain = open_faulty(&reg, &store, &faults);
    state.assert_matches(&chain, "reopened compacted").await;
    assert_eq!(faults.lock().done, 1);
}

/// A chain written, churned and closed under `dir`; then compacted (through a copy). Returns
/// the log before and after the compaction and the state both must show.
async fn old_and_new(dir: &Path, name: &str) -> (Vec<u8>, Vec<u8>, Expect, u64) {
    let conf = file_config(dir);
    let key = ChainKey::from(name);
    let path = dir.join(format!("{name}.log"));
    let chain = open(&registry(&conf).await, &key).await.expect("open");
    let mut state = write_workload(&chain, 12).await.pop().expect("a state");
    for r in 0..3 {
        churn(&chain, &mut state, r).await;
    }
    let seq = chain.last_seq();
    drop(chain);
    let old = std::fs::read(&path).unwrap();
    let chain = open(&registry(&conf).await, &key).await.expect("reopen");
    let report = chain.compact().await.expect("compact");
    assert!(report.retired > 0 && report.bytes_after < report.bytes_before);
    drop(chain);
    let new = std::fs::read(&path).unwrap();
    assert_eq!(new.len() as u64, report.bytes_after);
    (old, new, state, seq)
}

/// Frame boundaries of a log (offsets where a frame starts, and its end).
fn boundaries(raw: &[u8]) -> Vec<usize> {
    let mut out = vec![FILE_HEADER_LEN];
    let mut at = FILE_HEADER_LEN;
    while at + FRAME_HEADER_LEN <= raw.len() {
        let len = u32::from_le_bytes(raw[at + 4..at + 8].try_into().unwrap()) as usize;
        at += FRAME_HEADER_LEN + len;
        out.push(at);
    }
    assert_eq!(at, raw.len());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_a_crash_during_the_swap_leaves_opens_to_the_same_view() {
    let dir = tempfile::tempdir().unwrap();
    let name = "swapped";
    let (old, new, state, seq) = old_and_new(dir.path(), name).await;
    let path = dir.path().join(format!("{name}.log"));
    let stray = dir.path().join(format!("{name}.log.compact"));

    // Lengths of the new log written beside the old one when the crash came.
    let mut lengths = vec![0, 1, FILE_HEADER_LEN - 1, FILE_HEADER_LEN];
    for b in boundaries(&new) {
        lengths.extend([b - 1, b, b + 1, b + FRAME_HEADER_LEN - 1]);
    }
    lengths.extend([new.len() - 1, new.len()]);
    lengths.retain(|l| *l <= new.len());
    lengths.sort_unstable();
    lengths.dedup();

    let mut cases: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = lengths
        .iter()
        .map(|l| {
            (
                format!("the old log and {l} of {} bytes of the new", new.len()),
                old.clone(),
                Some(new[..*l].to_vec()),
            )
        })
        .collect();
    // The new log renamed over the old one (folder synced or not: the same bytes).
    cases.push(("the new log in place".into(), new.clone(), None));
    // A crash during a second compaction's swap: the new log beside a new one being written.
    cases.push((
        "the compacted log and a partial second".into(),
        new.clone(),
        Some(new[..new.len() / 2].to_vec()),
    ));

    let conf = file_config(dir.path());
    for (i, (what, log, beside)) in cases.iter().enumerate() {
        std::fs::write(&path, log).unwrap();
        if let Some(b) = beside {
            std::fs::write(&stray, b).unwrap();
        }
        let chain = open(&registry(&conf).await, &ChainKey::from(name))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(!stray.exists(), "{what}: the stray file is removed");
        assert_eq!(chain.recovery().truncated, 0, "{what}");
        assert_eq!(chain.last_seq(), seq, "{what}");
        state.assert_matches(&chain, what).await;
        assert!(
            std::fs::read(&path).unwrap() == *log,
            "{what}: the log is the one in place, untouched"
        );
        // The chain goes on from there, now and then: commits, reopened.
        if i % 7 == 0 {
            let (after, res) = transaction(&chain, &state, 100).await;
            res.unwrap_or_else(|e| panic!("{what}: commit: {e}"));
            drop(chain);
            let chain = open(&registry(&conf).await, &ChainKey::from(name))
                .await
                .unwrap_or_else(|e| panic!("{what}, reopened: {e}"));
            after
                .assert_matches(&chain, &format!("{what}, a commit, reopened"))
                .await;
        }
    }
    assert!(cases.len() > 20, "{} states", cases.len());
}

// R4 with SIGKILL: a child process commits in a loop while it compacts its chain again and
// again, and is killed at random moments (often during a compaction, as one is nearly always
// under way). After each kill the parent opens the log: every acknowledged transaction is
// there, the one in flight is whole or absent, the view is the model's, and no `.compact` file
// is left.
//
// Transaction `n` sets a counter record to `n`, stores two notes (`n a`, `n b`) and deletes the
// note `n - 1 a`: the counter's versions and the deleted notes give each compaction something
// to drop and keys to retire. The child prints `BEGIN n <a> <b>` before it commits, `ACK n`
// after, and `COMPACTING` / `COMPACTED` around each compaction.

const KILL_ROUNDS_VAR: &str = "ATE_COMPACT_CRASH_ROUNDS";
const KILL_ROUNDS: usize = 30;
/// The most acknowledgements a round waits for before its kill.
const MAX_ACKS: usize = 40;
const KILL_CHAIN: &str = "compact-crash";
const KILL_DIR: &str = "ATE_COMPACT_CRASH_DIR";
const KILL_COUNTER: &str = "ATE_COMPACT_CRASH_COUNTER";
const KILL_START: &str = "ATE_COMPACT_CRASH_START";
/// The note `a` of the last transaction that survived (`-`: none), which the first deletes.
const KILL_PREVIOUS: &str = "ATE_COMPACT_CRASH_PREVIOUS";

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Tally {
    n: u64,
}

fn note_of(n: u64, which: &str) -> Note {
    Note {
        n,
        text: format!("tx {n} {which}"),
    }
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write to the parent");
    out.flush().expect("flush to the parent");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The child: commits transactions from `KILL_START` and compacts, both until it is killed.
pub async fn child_compact_loop() {
    let dir = env(KILL_DIR);
    let counter: PrimaryKey = env(KILL_COUNTER).parse().expect("counter key");
    let start: u64 = env(KILL_START).parse().expect("start");
    // Ends whatever line the test harness left open.
    say("");
    let chain = open(
        &registry(&file_config(Path::new(&dir))).await,
        &ChainKey::from(KILL_CHAIN),
    )
    .await
    .expect("child: open the chain");
    say("OPEN");
    let compactor = {
        let chain = chain.clone();
        tokio::spawn(async move {
            loop {
                say("COMPACTING");
                chain.compact().await.expect("child: compact");
                say("COMPACTED");
                tokio::task::yield_now().await;
            }
        })
    };
    let previous = env(KILL_PREVIOUS);
    let mut previous_a: Option<PrimaryKey> =
        (previous != "-").then(|| previous.parse().expect("a key"));
    for n in start..start + 1_000_000 {
        let mut dio = chain.dio(&session()).await;
        let mut c = dio.load::<Tally>(&counter).await.expect("child: counter");
        assert_eq!(c.n, n - 1, "child: the counter follows the transactions");
        c.as_mut().n = n;
        let a = *dio.store(note_of(n, "a")).expect("child: stage").key();
        let b = *dio.store(note_of(n, "b")).expect("child: stage").key();
        if let Some(k) = previous_a {
            dio.delete(&k).expect("child: stage delete");
        }
        say(&format!("BEGIN {n} {a} {b}"));
        dio.commit().await.expect("child: commit");
        say(&format!("ACK {n}"));
        previous_a = Some(a);
    }
    compactor.abort();
}

#[derive(Debug, Default)]
struct KillStats {
    in_flight_kept: usize,
    in_flight_lost: usize,
    killed_compacting: usize,
    swaps: usize,
    torn_tails: usize,
}

#[test]
fn sigkill_while_compacting_loses_no_acknowledged_commit() {
    use std::collections::BTreeMap;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    use rand::Rng;

    let rounds = std::env::var(KILL_ROUNDS_VAR)
        .ok()
        .map(|s| s.parse().expect("ATE_COMPACT_CRASH_ROUNDS is a number"))
        .unwrap_or(KILL_ROUNDS);
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = file_config(dir.path());
    let stray = dir.path().join(format!("{KILL_CHAIN}.log.compact"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let counter = rt.block_on(async {
        let chain = open(&registry(&conf).await, &ChainKey::from(KILL_CHAIN))
            .await
            .expect("create the chain");
        let mut dio = chain.dio(&session()).await;
        let c = dio.store(Tally { n: 0 }).expect("stage");
        dio.commit().await.expect("commit the counter");
        *c.key()
    });

    let mut rng = rand::rng();
    // Every surviving transaction: its notes a and b.
    let mut txs: BTreeMap<u64, (PrimaryKey, PrimaryKey)> = BTreeMap::new();
    let mut stats = KillStats::default();
    for round in 0..rounds {
        let next = txs.keys().last().map_or(1, |n| n + 1);
        let (mut child, mut out) = crate::child::spawn(
            "compact",
            &[
                (KILL_DIR, dir.path().display().to_string()),
                (KILL_COUNTER, counter.to_string()),
                (KILL_START, next.to_string()),
                (
                    KILL_PREVIOUS,
                    txs.values()
                        .last()
                        .map_or("-".to_string(), |(a, _)| a.to_string()),
                ),
            ],
        );
        let mut seen = Vec::new();
        let mut read_until = |seen: &mut Vec<String>, stop: &mut dyn FnMut(&str) -> bool| {
            while let Some(line) = out.next_line() {
                let done = stop(&line);
                seen.push(line);
                if done {
                    break;
                }
            }
        };
        // Waits for `left` lines starting with `prefix`, or for [`MAX_ACKS`] acknowledgements
        // (the log, and each round, stay small).
        let count = |prefix: &'static str, mut left: usize| {
            let mut acks = 0;
            move |l: &str| {
                left = left.saturating_sub(usize::from(l.starts_with(prefix)));
                acks += usize::from(l.starts_with("ACK "));
                left == 0 || acks >= MAX_ACKS
            }
        };
        match round % 3 {
            // After some acknowledgements.
            0 => read_until(&mut seen, &mut count("ACK ", rng.random_range(1..=30))),
            // Soon after a compaction started: while it builds or swaps.
            1 => read_until(&mut seen, &mut count("COMPACTING", rng.random_range(1..=4))),
            // Just after a swap: the first commits on the new log.
            _ => read_until(&mut seen, &mut count("COMPACTED", rng.random_range(1..=3))),
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..4000)));
        child.kill().expect("kill the child");
        let status = child.wait().expect("wait for the child");
        let (rest, stderr) = out.finish();
        seen.extend(rest);
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child ended by itself ({status}):\n{stderr}"
        );

        let mut begun = BTreeMap::new();
        let mut acked = None;
        let mut compacting = false;
        for line in &seen {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["BEGIN", n, a, b] => {
                    let key = |s: &str| s.parse::<PrimaryKey>().expect("a key");
                    begun.insert(n.parse::<u64>().expect("a number"), (key(a), key(b)));
                }
                ["ACK", n] => acked = Some(n.parse::<u64>().expect("a number")),
                ["COMPACTING"] => compacting = true,
                ["COMPACTED"] => {
                    compacting = false;
                    stats.swaps += 1;
                }
                _ => {}
            }
        }
        stats.killed_compacting += usize::from(compacting);
        if let Some(first) = begun.keys().next() {
            assert_eq!(
                *first, next,
                "round {round}: the child starts where we left"
            );
        }

        rt.block_on(async {
            let chain = open(&registry(&conf).await, &ChainKey::from(KILL_CHAIN))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the log does not open: {e}"));
            assert!(!stray.exists(), "round {round}: the stray file is removed");
            stats.torn_tails += usize::from(chain.recovery().truncated > 0);
            let dio = chain.dio(&session()).await;
            let last = dio.load::<Tally>(&counter).await.expect("the counter").n;
            // Acknowledged: there. The one in flight (begun, not acknowledged): whole or not
            // at all, which the counter says.
            let acked = acked.unwrap_or(next - 1);
            let in_flight = begun.keys().last().copied().filter(|n| *n > acked);
            assert!(
                last == acked || Some(last) == in_flight,
                "round {round}: counter {last}, acknowledged {acked}, in flight {in_flight:?}"
            );
            match in_flight {
                Some(n) if n == last => stats.in_flight_kept += 1,
                Some(_) => stats.in_flight_lost += 1,
                None => {}
            }
            for (n, keys) in &begun {
                if *n <= last {
                    txs.insert(*n, *keys);
                } else {
                    for k in [keys.0, keys.1] {
                        assert!(
                            matches!(dio.load::<Note>(&k).await, Err(DioError::NotFound(_))),
                            "round {round}: tx {n} was not durable, yet a note is there"
                        );
                    }
                }
            }
            // The view is the model's: the counter, every b, the last a; earlier a's deleted.
            for (n, (a, b)) in &txs {
                let got = dio
                    .load::<Note>(b)
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: tx {n} b: {e}"));
                assert_eq!(*got, note_of(*n, "b"), "round {round}");
                let got = dio.load::<Note>(a).await;
                if *n == last {
                    assert_eq!(*got.expect("the last a"), note_of(*n, "a"));
                } else {
                    assert!(
                        matches!(got, Err(DioError::NotFound(_))),
                        "round {round}: tx {n} a was deleted"
                    );
                }
            }
            assert_eq!(
                chain.len(),
                1 + txs.len() + usize::from(!txs.is_empty()),
                "round {round}: live records"
            );
            assert_eq!(txs.keys().last().copied().unwrap_or(0), last);
        });
    }
    assert!(!txs.is_empty(), "no transaction survived {rounds} rounds");
    assert!(stats.swaps > 0, "no compaction finished in {rounds} rounds");
    assert!(
        stats.killed_compacting > 0,
        "no kill came during a compaction in {rounds} rounds"
    );
    println!(
        "{rounds} SIGKILL rounds while compacting: {} transactions, {stats:?}",
        txs.len()
    );
}

// R5 over a compacted log: a closed compacted log (checkpoint, kept transactions whole and
// pruned, transactions after the compacted part) with one byte flipped. Damage before the last
// transaction is a typed error naming the damaged frame (or the checkpoint); damage in the last
// transaction is a torn tail, cut in the tolerant mode only. Never a silently different view.

/// How far apart the flipped bytes are (1: every byte). Every frame header is flipped too.
const FLIP_STEP_VAR: &str = "ATE_COMPACT_FLIP_STEP";
const FLIP_STEP: usize = 4;

#[tokio::test]
async fn every_flipped_byte_of_a_compacted_log_is_detected() {
    use ate_runtime::chain::OpenError;
    use ate_runtime::log::RecoveryMode;

    let step = std::env::var(FLIP_STEP_VAR)
        .ok()
        .map(|s| s.parse().expect("ATE_COMPACT_FLIP_STEP is a number"))
        .unwrap_or(FLIP_STEP);
    let source = tempfile::tempdir().unwrap();
    let name = "flipped";
    let chain = open(
        &registry(&file_config(source.path())).await,
        &ChainKey::from(name),
    )
    .await
    .unwrap();
    let mut state = write_workload(&chain, 8).await.pop().unwrap();
    for r in 0..2 {
        churn(&chain, &mut state, r).await;
    }
    chain.compact().await.expect("compact");
    // Two transactions after the compacted part.
    let before_last = more(&chain, state, 8, 1).await;
    let last_state = more(&chain, before_last.clone(), 9, 1).await;
    drop(chain);
    let raw = std::fs::read(source.path().join(format!("{name}.log"))).unwrap();
    let starts = boundaries(&raw);
    let starts = &starts[..starts.len() - 1];
    assert_eq!(raw[starts[0] + FRAME_HEADER_LEN], 2, "a checkpoint first");
    let last = *starts.last().unwrap();

    let scratch = tempfile::tempdir().unwrap();
    // The same chain's name (the checkpoint's digest names the chain).
    let path = scratch.path().join(format!("{name}.log"));
    let try_open = |bytes: Vec<u8>, mode: RecoveryMode| {
        std::fs::write(&path, &bytes).unwrap();
        let mut conf = file_config(scratch.path());
        conf.recovery_mode = mode;
        async move { open(&registry(&conf).await, &ChainKey::from(name)).await }
    };
    // The untouched log opens to the last state.
    let chain = try_open(raw.clone(), RecoveryMode::AbsoluteConsistency)
        .await
        .unwrap();
    last_state.assert_matches(&chain, "untouched").await;
    drop(chain);

    let positions: Vec<usize> = (0..raw.len())
        .step_by(step)
        .chain(starts.iter().flat_map(|s| *s..*s + FRAME_HEADER_LEN))
        .chain([raw.len() - 1])
        .collect();
    let (mut refused, mut cut) = (0, 0);
    for (i, pos) in positions.into_iter().enumerate() {
        let mut bad = raw.clone();
        bad[pos] ^= (pos % 255) as u8 + 1;
        let frame = starts
            .iter()
            .rev()
            .find(|s| **s <= pos)
            .copied()
            .unwrap_or(0);
        if pos >= last {
            // The last transaction: a torn tail, cut in the tolerant mode, refused in the strict.
            if i % 4 == 0 {
                match try_open(bad.clone(), RecoveryMode::AbsoluteConsistency).await {
                    Err(OpenError::Log(LogError::Corrupt { offset, .. })) => {
                        assert_eq!(offset as usize, last, "flip at {pos}, strict")
                    }
                    other => panic!("flip at {pos}, strict: {:?}", other.map(|c| c.len())),
                }
            }
            let chain = try_open(bad, RecoveryMode::TolerateCorruptTail)
                .await
                .unwrap_or_else(|e| panic!("flip at {pos} (last tx): {e}"));
            assert_eq!(chain.recovery().truncated, (raw.len() - last) as u64);
            before_last
                .assert_matches(&chain, &format!("flip at {pos}"))
                .await;
            cut += 1;
            continue;
        }
        match try_open(bad.clone(), RecoveryMode::TolerateCorruptTail).await {
            Err(OpenError::Log(LogError::Corrupt { offset, .. })) => assert_eq!(
                offset as usize, frame,
                "flip at {pos}: reported at {offset}, the damaged frame is at {frame}"
            ),
            Err(OpenError::Malformed { offset, .. } | OpenError::OutOfSequence { offset, .. }) => {
                assert_eq!(offset as usize, frame, "flip at {pos}")
            }
            Err(OpenError::Checkpoint { .. }) => {}
            Err(OpenError::Log(LogError::NotALog { .. } | LogError::UnsupportedVersion { .. })) => {
                assert!(pos < FILE_HEADER_LEN, "flip at {pos}")
            }
            Err(e) => panic!("flip at {pos}: unexpected error {e}"),
            Ok(chain) => panic!(
                "flip at {pos} went unnoticed ({} records replayed)",
                chain.recovery().records
            ),
        }
        assert!(
            std::fs::read(&path).unwrap() == bad,
            "flip at {pos}: a refused log is left as it was"
        );
        refused += 1;
    }

    // The same flips in the checkpoint and the kept transactions, with the frame's checksum
    // made right again (damage the checksum cannot see): the checkpoint's digest refuses them.
    let at = starts[0] + FRAME_HEADER_LEN;
    let kept = u64::from_le_bytes(raw[at + 9..at + 17].try_into().unwrap()) as usize;
    assert!(
        kept >= 2 && kept + 3 == starts.len(),
        "{kept} kept of {}",
        starts.len()
    );
    let checkpointed_end = starts[kept + 1];
    let mut mismatches = 0;
    for pos in (starts[0]..checkpointed_end).step_by(step * 2) {
        let frame = starts.iter().rev().find(|s| **s <= pos).copied().unwrap();
        if pos < frame + FRAME_HEADER_LEN {
            continue;
        }
        let mut bad = raw.clone();
        bad[pos] ^= (pos % 255) as u8 + 1;
        let len = u32::from_le_bytes(bad[frame + 4..frame + 8].try_into().unwrap()) as usize;
        let crc = crc32c::crc32c(&bad[frame + 4..frame + 8]);
        let payload = &bad[frame + FRAME_HEADER_LEN..frame + FRAME_HEADER_LEN + len];
        let crc = crc32c::crc32c_append(crc, payload);
        bad[frame + 8..frame + 12].copy_from_slice(&crc.to_le_bytes());
        match try_open(bad, RecoveryMode::TolerateCorruptTail).await {
            Err(OpenError::Checkpoint { .. }) => mismatches += 1,
            Err(
                OpenError::Malformed { .. }
                | OpenError::OutOfSequence { .. }
                | OpenError::Invalid { .. }
                | OpenError::Schema { .. },
            ) => {}
            Err(e) => panic!("flip at {pos}, checksum made right: unexpected error {e}"),
            Ok(chain) => panic!(
                "flip at {pos}, checksum made right, went unnoticed ({} records replayed)",
                chain.recovery().records
            ),
        }
        refused += 1;
    }
    assert!(
        mismatches > 100,
        "{mismatches} refused by the checkpoint's digest"
    );
    println!(
        "compacted log of {} bytes: {refused} flips refused ({mismatches} by the checkpoint), \
         {cut} cut",
        raw.len()
    );
    assert!(
        refused > raw.len() / step / 2 && cut > 10,
        "{refused} refused, {cut} cut"
    );
}
