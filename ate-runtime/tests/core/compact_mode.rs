//! When compaction runs and what it judges: the tolerance window keeps recent transactions as
//! they were committed, and each `CompactMode` compacts a chain by itself (growth in bytes,
//! growth factor, timer) with the view unchanged and every commit kept.

use std::path::Path;
use std::time::Duration;

use ate_runtime::chain::CompactMode;
use ate_runtime::prelude::*;

use crate::common::{Expect, Note, file_config, open, registry, session, write_workload};

async fn open_with(dir: &Path, mode: CompactMode, tolerance: Duration) -> Chain {
    let mut conf = file_config(dir);
    conf.compact_mode = mode;
    conf.compact_tolerance = tolerance;
    open(&registry(&conf).await, &ChainKey::from("auto"))
        .await
        .expect("open")
}

/// Updates every live note once per round, one transaction per round.
async fn churn(chain: &Chain, state: &mut Expect, rounds: u64) {
    for r in 0..rounds {
        let mut dio = chain.dio(&session()).await;
        for (k, note) in state.notes.iter_mut() {
            let mut dao = dio.load::<Note>(k).await.expect("load");
            dao.as_mut().n += 1;
            dao.as_mut().text = format!("round {r} {}", "x".repeat(200));
            *note = (*dao).clone();
        }
        dio.commit().await.expect("churn commit");
    }
}

/// Churns until the chain compacted by itself past `seq` (at most `rounds` rounds).
async fn churn_until_compacted(chain: &Chain, state: &mut Expect, seq: u64, rounds: u64) {
    for _ in 0..rounds {
        if chain.compacted_upto() > seq {
            return;
        }
        churn(chain, state, 1).await;
    }
    // The last rounds' growth may still be on its way to a compaction.
    compacted_past(chain, seq).await;
}

/// Waits (up to a minute: a loaded machine) until the chain's log was compacted past `seq`.
async fn compacted_past(chain: &Chain, seq: u64) {
    for _ in 0..600 {
        if chain.compacted_upto() > seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not compacted past {seq} (compacted up to {}, last {})",
        chain.compacted_upto(),
        chain.last_seq()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tolerance_window_keeps_recent_transactions_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    let mut state = {
        let chain = open_with(dir.path(), CompactMode::Never, hour).await;
        let mut state = write_workload(&chain, 20).await.pop().expect("a state");
        churn(&chain, &mut state, 5).await;
        state
    };
    // What the open finds is old enough; what is committed from here on is within the hour.
    let chain = open_with(dir.path(), CompactMode::Never, hour).await;
    let opened = chain.last_seq();
    churn(&chain, &mut state, 10).await;
    let before = chain.log_bytes();
    let report = chain.compact().await.expect("compact");
    assert_eq!(
        report.upto, opened,
        "only what came before the window is judged"
    );
    assert_eq!(chain.compacted_upto(), opened);
    assert!(
        report.transactions_after >= chain.last_seq() - opened,
        "every transaction of the window is kept: {report:?}"
    );
    assert_eq!(report.bytes_before, before);
    assert_eq!(chain.log_bytes(), report.bytes_after);
    state.assert_matches(&chain, "after compacting").await;
    // Every version committed within the window is still in the log, each at its number.
    let mut stream = chain.subscribe(opened + 1);
    for seq in opened + 1..=chain.last_seq() {
        let c = stream.next().await.expect("a kept transaction");
        assert_eq!(c.seq(), seq);
    }
    drop(chain);
    let chain = open_with(dir.path(), CompactMode::Never, Duration::ZERO).await;
    state.assert_matches(&chain, "reopened").await;
    // Without a window, the next compaction judges the rest.
    let last = chain.last_seq();
    let report = chain.compact().await.expect("compact again");
    assert_eq!(report.upto, last);
    assert!(report.events_after < report.events_before, "{report:?}");
    state.assert_matches(&chain, "compacted again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_compacts_by_itself_when_its_log_grows() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_with(
        dir.path(),
        CompactMode::GrowthSize(64 << 10),
        Duration::ZERO,
    )
    .await;
    let mut state = write_workload(&chain, 10).await.pop().expect("a state");
    churn_until_compacted(&chain, &mut state, 0, 2000).await;
    state
        .assert_matches(&chain, "after compacting by itself")
        .await;
    // Commits go on and compact again; the log stays near the growth; nothing is lost.
    let upto = chain.compacted_upto();
    churn_until_compacted(&chain, &mut state, upto, 2000).await;
    assert!(
        chain.log_bytes() < 8 * (64 << 10),
        "the log keeps compacting: {} bytes",
        chain.log_bytes()
    );
    state.assert_matches(&chain, "after more commits").await;
    drop(chain);
    let chain = open_with(dir.path(), CompactMode::Never, Duration::ZERO).await;
    state.assert_matches(&chain, "reopened").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growth_factor_and_a_timer_compact_too() {
    let dir = tempfile::tempdir().unwrap();
    let factor = tempfile::tempdir().unwrap();
    let chain = open_with(
        factor.path(),
        CompactMode::GrowthFactor(2.0),
        Duration::ZERO,
    )
    .await;
    let mut state = write_workload(&chain, 10).await.pop().expect("a state");
    churn_until_compacted(&chain, &mut state, 0, 2000).await;
    state.assert_matches(&chain, "growth factor").await;
    drop(chain);

    let chain = open_with(
        dir.path(),
        CompactMode::Timer(Duration::from_millis(200)),
        Duration::ZERO,
    )
    .await;
    let mut state = write_workload(&chain, 10).await.pop().expect("a state");
    churn(&chain, &mut state, 3).await;
    compacted_past(&chain, 0).await;
    state.assert_matches(&chain, "timer").await;
    let upto = chain.compacted_upto();
    churn(&chain, &mut state, 2).await;
    compacted_past(&chain, upto).await;
    state.assert_matches(&chain, "timer, again").await;
    drop(chain);
    let chain = open_with(dir.path(), CompactMode::Never, Duration::ZERO).await;
    state.assert_matches(&chain, "reopened").await;
}
