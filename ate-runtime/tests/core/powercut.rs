//! R2 and R3: storage that loses or tears what was not synced, and fails I/O calls.
//!
//! A commit returns only after its sync, so unsynced bytes exist only when a sync failed (or a
//! write failed half way, as on a full disk). These tests fail each I/O call of a workload in
//! turn, then cut the power keeping every possible prefix of the unsynced bytes, and check that
//! the reopened view is exactly the acknowledged commits, plus, at most, the failed transaction
//! when all of its bytes reached the store.

use bytes::Bytes;

use ate_runtime::chain::{ChainRegistry, CommitError, OpenError};
use ate_runtime::log::{
    DEFAULT_MAX_FRAME, LogError, LogStore, MemoryStore, RecoveryMode, RecoveryReport,
};
use ate_runtime::prelude::*;
use ate_runtime::unstable::log::{FRAME_HEADER_LEN, RedoLog};

use crate::common::{Expect, Note, registry, session, transaction};

const KEY: &str = "powercut";
/// Transactions in the workload.
const TXS: u64 = 6;

async fn reg() -> ChainRegistry {
    registry(&AteConfig::in_memory()).await
}

fn open(reg: &ChainRegistry, store: &MemoryStore) -> Result<Chain, OpenError> {
    reg.open_store(&ChainKey::from(KEY), Box::new(store.clone()))
}

/// A store holding `durable` (synced) followed by `unsynced`, after a power cut that kept the
/// first `keep` unsynced bytes.
fn after_power_cut(durable: &[u8], unsynced: &[u8], keep: u64) -> MemoryStore {
    let mut store = MemoryStore::from_bytes(durable.to_vec());
    if !unsynced.is_empty() {
        store
            .append(&Bytes::copy_from_slice(unsynced))
            .expect("append");
    }
    store.crash(keep);
    store
}

/// Splits a store's bytes into the synced part and the rest (the store is left crashed with
/// nothing unsynced kept, as after a power cut).
fn split_at_sync(store: &MemoryStore) -> (Vec<u8>, Vec<u8>) {
    let all = store.bytes();
    store.crash(0);
    let durable = store.bytes();
    assert!(all.starts_with(&durable));
    let unsynced = all[durable.len()..].to_vec();
    (durable, unsynced)
}

/// Checks that the tail recovery cut from `store` (whose bytes were `before` the open) is the
/// last quarantine of the store, byte for byte, and that nothing was kept when nothing was cut.
fn assert_quarantined(store: &MemoryStore, before: &[u8], report: &RecoveryReport) {
    let kept = store.quarantined();
    match &report.quarantine {
        None => {
            assert_eq!(report.truncated, 0, "a cut tail is quarantined");
            assert!(kept.is_empty(), "nothing was cut, nothing kept");
        }
        Some(q) => {
            assert_eq!((q.offset, q.len), (report.end, report.truncated));
            let (location, bytes) = kept.last().expect("the store kept the tail");
            assert_eq!(location, &q.location);
            assert_eq!(
                bytes[..],
                before[q.offset as usize..],
                "the bytes cut, exactly"
            );
        }
    }
}

/// The injected I/O error itself (what the transactions of the failing group get).
fn is_cause(e: &AteError) -> bool {
    matches!(e, AteError::Commit(CommitError::Log(LogError::Io { .. })))
}

fn is_io_failure(e: &AteError) -> bool {
    matches!(
        e,
        AteError::Commit(CommitError::Poisoned(_))
            | AteError::Commit(CommitError::Log(LogError::Io { .. }))
    )
}

/// What one run of the workload with `fail_after(n)` did.
enum Run {
    /// Opening failed; the store is left as it was.
    OpenFailed,
    /// The workload ran; `failed` is the state the first failed commit would have made.
    Ran {
        acked: Expect,
        failed: Option<Expect>,
    },
}

async fn run_workload(reg: &ChainRegistry, store: &MemoryStore, n: u64) -> Run {
    store.fail_after(n);
    let chain = match open(reg, store) {
        Ok(c) => c,
        Err(e) => {
            assert!(
                matches!(e, OpenError::Log(LogError::Io { .. })),
                "fail_after({n}): open failed with {e}"
            );
            return Run::OpenFailed;
        }
    };
    let mut acked = Expect::default();
    let mut failed = None;
    for i in 0..TXS {
        let (after, res) = transaction(&chain, &acked, i).await;
        match res {
            Ok(()) => {
                assert!(
                    failed.is_none(),
                    "fail_after({n}): transaction {i} acknowledged after a failed one"
                );
                acked = after;
            }
            Err(e) => {
                assert!(chain.is_poisoned(), "fail_after({n}): a failure poisons");
                if failed.is_some() {
                    assert!(
                        matches!(e, AteError::Commit(CommitError::Poisoned(_))),
                        "fail_after({n}), tx {i}: a poisoned chain refuses with Poisoned: {e}"
                    );
                } else {
                    assert!(
                        is_cause(&e),
                        "fail_after({n}), tx {i}: the failed commit gets the cause: {e}"
                    );
                }
                failed.get_or_insert(after);
            }
        }
        // In this process the view holds exactly what was acknowledged.
        acked
            .assert_matches(&chain, &format!("fail_after({n}) after tx {i}"))
            .await;
    }
    if failed.is_some() {
        // Reads still work on a poisoned chain; writes are refused without touching the store.
        let mut dio = chain.dio(&session()).await;
        dio.store(Note::new(1)).unwrap();
        let e = dio.commit().await.unwrap_err();
        assert!(
            matches!(e, AteError::Commit(CommitError::Poisoned(_))),
            "{e}"
        );
        assert!(dio.has_changes(), "a refused commit keeps its staging");
    }
    drop(chain);
    Run::Ran { acked, failed }
}

#[tokio::test]
async fn every_io_failure_is_typed_and_a_power_cut_keeps_exactly_the_acknowledged_commits() {
    let reg = reg().await;
    let mut torn_points = 0;
    let mut reopens = 0;
    for n in 0.. {
        let store = MemoryStore::new();
        let run = run_workload(&reg, &store, n).await;
        store.fail_after(u64::MAX);
        let (durable, unsynced) = split_at_sync(&store);
        // The power cut that keeps nothing unsynced.
        let chain = open(&reg, &store).unwrap_or_else(|e| panic!("fail_after({n}): reopen: {e}"));
        let opened = matches!(run, Run::Ran { .. });
        let (acked, failed) = match run {
            Run::OpenFailed => {
                assert!(chain.is_empty());
                (Expect::default(), None)
            }
            Run::Ran { acked, failed } => {
                acked
                    .assert_matches(&chain, &format!("fail_after({n}), crash(0)"))
                    .await;
                if failed.is_none() {
                    assert!(unsynced.is_empty());
                    assert!(n >= 4 + 2 * TXS, "only {n} I/O calls and no failure");
                    println!(
                        "{n} failure points; {reopens} power cuts after a failed sync, \
                         {torn_points} of them torn"
                    );
                    assert!(torn_points > 100);
                    return;
                }
                (acked, failed)
            }
        };
        drop(chain);
        // Every other power cut: every prefix of the unsynced bytes reaches the store.
        for keep in 0..=unsynced.len() as u64 {
            let store = after_power_cut(&durable, &unsynced, keep);
            let before = store.bytes();
            let chain = open(&reg, &store)
                .unwrap_or_else(|e| panic!("fail_after({n}), crash({keep}): reopen: {e}"));
            assert_quarantined(&store, &before, chain.recovery());
            reopens += 1;
            let whole = keep == unsynced.len() as u64;
            match &failed {
                Some(f) if whole && !unsynced.is_empty() => {
                    // The failed sync had in fact written everything: the transaction is whole,
                    // never acknowledged, and may be there.
                    f.assert_matches(&chain, &format!("fail_after({n}), all unsynced kept"))
                        .await;
                }
                _ => {
                    acked
                        .assert_matches(&chain, &format!("fail_after({n}), crash({keep})"))
                        .await;
                    if opened && keep > 0 && !whole {
                        torn_points += 1;
                        assert_eq!(chain.recovery().truncated, keep, "the torn tail is cut");
                        assert_eq!(
                            store.quarantined().last().map(|(_, b)| b.to_vec()),
                            Some(unsynced[..keep as usize].to_vec()),
                            "the torn tail is kept"
                        );
                    }
                }
            }
            // The recovered chain takes new commits.
            let mut dio = chain.dio(&session()).await;
            dio.store(Note::new(keep)).unwrap();
            dio.commit().await.unwrap();
        }
    }
    unreachable!("the loop returns once a run sees no failure");
}

/// Several transactions in one group commit, whose sync fails: each is all there or not at
/// all after any power cut, and none was acknowledged.
#[tokio::test]
async fn a_failed_group_commit_leaves_whole_transactions_or_none() {
    let reg = reg().await;
    let mut groups_seen = 0;
    for n in 4..24 {
        let store = MemoryStore::new();
        let chain = open(&reg, &store).unwrap();
        store.fail_after(n - 4);
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let chain = chain.clone();
            tasks.push(tokio::spawn(async move {
                let mut dio = chain.dio(&session()).await;
                let keys: Vec<PrimaryKey> = (0..3)
                    .map(|j| *dio.store(Note::new(t * 10 + j)).unwrap().key())
                    .collect();
                (t, keys, dio.commit().await)
            }));
        }
        let mut acked = Vec::new();
        let mut failed = Vec::new();
        // Refused as poisoned: never written.
        let mut refused = Vec::new();
        for task in tasks {
            let (t, keys, res) = task.await.unwrap();
            match res {
                Ok(()) => acked.push((t, keys)),
                Err(e) if is_cause(&e) => failed.push((t, keys)),
                Err(e) => {
                    assert!(is_io_failure(&e), "{e}");
                    refused.push((t, keys));
                }
            }
        }
        assert!(
            refused.is_empty() || !failed.is_empty(),
            "fail_after({n}): some commit saw the cause before others were refused"
        );
        drop(chain);
        store.fail_after(u64::MAX);
        let (durable, unsynced) = split_at_sync(&store);
        // (Which commits share a group here depends on scheduling; `writer` makes a failing
        // group of several transactions deterministically.)
        if failed.len() + refused.len() > 1 && !unsynced.is_empty() {
            groups_seen += 1;
        }
        for keep in 0..=unsynced.len() as u64 {
            let store = after_power_cut(&durable, &unsynced, keep);
            let before = store.bytes();
            let chain = open(&reg, &store).unwrap();
            assert_quarantined(&store, &before, chain.recovery());
            let dio = chain.dio(&session()).await;
            let mut live = 0;
            for (t, keys) in &acked {
                for (j, k) in keys.iter().enumerate() {
                    assert_eq!(
                        dio.load::<Note>(k).await.unwrap().n,
                        t * 10 + j as u64,
                        "acknowledged"
                    );
                    live += 1;
                }
            }
            for (_, keys) in &refused {
                for k in keys {
                    assert!(
                        !dio.exists(k).await,
                        "a refused transaction is never written"
                    );
                }
            }
            for (_, keys) in &failed {
                let mut here = 0;
                for k in keys {
                    here += usize::from(dio.exists(k).await);
                }
                assert!(
                    here == 0 || here == keys.len(),
                    "fail_after({n}), crash({keep}): a transaction is half there"
                );
                live += here;
            }
            assert_eq!(chain.len(), live, "no other record appeared");
        }
    }
    assert!(groups_seen > 0, "no run failed several transactions");
}

/// Group commit at the redo-log level: frames appended together, one sync; a power cut keeps a
/// prefix of whole frames.
#[test]
fn a_power_cut_keeps_whole_frames_only() {
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 10 + i * 7]).collect();
    let unsynced_len: usize = payloads.iter().map(|p| p.len() + FRAME_HEADER_LEN).sum();
    for keep in 0..=unsynced_len as u64 {
        let store = MemoryStore::new();
        let (mut log, _, _) =
            RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        log.append(&[b"durable"]).unwrap();
        log.sync().unwrap();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        log.append(&refs).unwrap();
        drop(log);
        store.crash(keep);
        let before = store.bytes();
        let (_log, recs, report) =
            RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        assert_quarantined(&store, &before, &report);
        let mut whole = 0;
        let mut end = 0;
        for p in &payloads {
            if end + FRAME_HEADER_LEN + p.len() <= keep as usize {
                end += FRAME_HEADER_LEN + p.len();
                whole += 1;
            }
        }
        assert_eq!(recs.len(), 1 + whole, "crash({keep})");
        assert_eq!(&recs[0].payload[..], b"durable");
        for (r, p) in recs[1..].iter().zip(&payloads) {
            assert_eq!(&r.payload[..], p.as_slice());
        }
        assert_eq!(report.truncated, keep - end as u64);
    }
}

/// A disk that fills up: the write that does not fit lands in part, then fails with ENOSPC.
#[derive(Debug)]
struct FullDisk {
    inner: MemoryStore,
    room: u64,
}

impl LogStore for FullDisk {
    fn describe(&self) -> String {
        "full disk".into()
    }
    fn read_all(&mut self) -> Result<Bytes, LogError> {
        self.inner.read_all()
    }
    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
        let free = self.room.saturating_sub(self.inner.len()) as usize;
        if data.len() <= free {
            return self.inner.append(data);
        }
        self.inner.append(&data.slice(..free))?;
        Err(LogError::Io {
            store: self.describe(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        })
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

#[tokio::test]
async fn a_full_disk_fails_the_commit_and_recovery_cuts_the_partial_write() {
    let reg = reg().await;
    // How much the whole workload writes.
    let probe = MemoryStore::new();
    let chain = open(&reg, &probe).unwrap();
    crate::common::write_workload(&chain, TXS).await;
    drop(chain);
    let total = probe.bytes().len() as u64;

    let mut failures = 0;
    for room in (17..total).step_by(41) {
        let inner = MemoryStore::new();
        let chain = reg
            .open_store(
                &ChainKey::from(KEY),
                Box::new(FullDisk {
                    inner: inner.clone(),
                    room,
                }),
            )
            .unwrap();
        let mut acked = Expect::default();
        let mut failed = false;
        for i in 0..TXS {
            let (after, res) = transaction(&chain, &acked, i).await;
            match res {
                Ok(()) => {
                    assert!(!failed, "room {room}: acknowledged after a failure");
                    acked = after;
                }
                Err(e) => {
                    if failed {
                        assert!(
                            matches!(e, AteError::Commit(CommitError::Poisoned(_))),
                            "room {room}: {e}"
                        );
                    } else {
                        assert!(is_cause(&e), "room {room}: the cause is reported: {e}");
                    }
                    assert!(chain.is_poisoned());
                    failed = true;
                }
            }
        }
        assert!(failed, "room {room} < {total} must run out");
        failures += 1;
        drop(chain);
        // The partial write is still there (as in the page cache): it is a torn tail.
        let before = inner.bytes();
        let chain = open(&reg, &inner).unwrap();
        assert!(chain.recovery().truncated > 0 || inner.len() == room);
        assert_quarantined(&inner, &before, chain.recovery());
        acked
            .assert_matches(&chain, &format!("room {room}, reopened"))
            .await;
        // With space again, the chain goes on where it stopped.
        let (more, res) = transaction(&chain, &acked, 100).await;
        res.unwrap();
        drop(chain);
        let chain = open(&reg, &inner).unwrap();
        more.assert_matches(&chain, &format!("room {room}, after more"))
            .await;
    }
    assert!(failures > 10);
}
