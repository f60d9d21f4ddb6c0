//! Compaction of a chain's log (`Chain::compact`): the view is the same before and after, and
//! after a reopen; the log shrinks; commits made during a compaction and after it are kept; a
//! compacted log compacts again; and a compacted log changed behind the chain's back is
//! refused with a typed error.

use std::path::Path;

use ate_runtime::chain::{CheckpointError, CommitError, OpenError};
use ate_runtime::event::{BodyFormat, EventDraft};
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;

use crate::common::{Expect, file_config, open, registry, session, transaction, write_workload};

/// The frames of a log file: (offset, payload).
fn frames(bytes: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 16;
    while at + 12 <= bytes.len() && bytes[at..at + 4] == *b"ATEf" {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, bytes[at + 12..at + 12 + len].to_vec()));
        at += 12 + len;
    }
    out
}

/// A log file of these payloads (the header of `like`).
fn log_of(like: &[u8], payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = like[..16].to_vec();
    for p in payloads {
        let len = (p.len() as u32).to_le_bytes();
        let mut crc_input = len.to_vec();
        crc_input.extend_from_slice(p);
        out.extend_from_slice(b"ATEf");
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc32c::crc32c(&crc_input).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Updates every live note `rounds` times, one transaction per round.
async fn churn(chain: &Chain, state: &mut Expect, rounds: u64) {
    for r in 0..rounds {
        let mut dio = chain.dio(&session()).await;
        for (k, note) in state.notes.iter_mut() {
            let mut dao = dio.load::<crate::common::Note>(k).await.expect("load");
            dao.as_mut().n += 1;
            dao.as_mut().text = format!("round {r}");
            *note = (*dao).clone();
        }
        dio.commit().await.expect("churn commit");
    }
}

async fn reopen(dir: &Path) -> Chain {
    open(
        &registry(&file_config(dir)).await,
        &ChainKey::from("compact"),
    )
    .await
    .expect("reopen")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_view_shrinks_the_log_and_commits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compact.log");
    let chain = reopen(dir.path()).await;
    let mut state = write_workload(&chain, 30).await.pop().expect("a state");
    churn(&chain, &mut state, 20).await;
    state.assert_matches(&chain, "before").await;
    let size = std::fs::metadata(&path).unwrap().len();

    let report = chain.compact().await.expect("compact");
    state.assert_matches(&chain, "after compacting").await;
    assert_eq!(report.upto, chain.last_seq());
    assert_eq!(report.bytes_before, size);
    assert_eq!(report.bytes_after, std::fs::metadata(&path).unwrap().len());
    assert!(
        report.bytes_after * 2 < report.bytes_before,
        "most of the log was superseded: {report:?}"
    );
    assert!(report.events_after * 2 < report.events_before, "{report:?}");
    assert!(report.retired > 0, "deleted notes are retired: {report:?}");

    // Commits go on after the compacted part, numbered on.
    let seq = chain.last_seq();
    for i in 30..40 {
        let (after, res) = transaction(&chain, &state, i).await;
        res.expect("commit after compacting");
        state = after;
    }
    assert_eq!(chain.last_seq(), seq + 10);
    state
        .assert_matches(&chain, "commits after compacting")
        .await;
    // A deleted record's key stays retired.
    let gone = *state.gone.iter().next().expect("a deleted note");
    let recreate = EventDraft {
        key: gone,
        timestamp_ms: 1,
        tombstone: false,
        parent: None,
        type_name: "t.Note".into(),
        format: BodyFormat::MessagePack,
        meta: Vec::new(),
        body: Some(bytes::Bytes::from_static(b"\x92\x01\xa1x")),
    };
    match chain.commit_transaction(vec![recreate], Vec::new()).await {
        Err(CommitError::Trust(TrustError::Deleted { key })) => assert_eq!(key, gone),
        other => panic!("a retired key is never written again: {other:?}"),
    }

    drop(chain);
    let chain = reopen(dir.path()).await;
    state.assert_matches(&chain, "reopened").await;
    assert_eq!(chain.last_seq(), seq + 10);

    // Compacting a compacted log, then reopening it.
    churn(&chain, &mut state, 5).await;
    let again = chain.compact().await.expect("compact again");
    assert!(again.events_after <= again.events_before);
    state.assert_matches(&chain, "compacted twice").await;
    drop(chain);
    let chain = reopen(dir.path()).await;
    state
        .assert_matches(&chain, "reopened after compacting twice")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_made_during_a_compaction_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let chain = reopen(dir.path()).await;
    let mut state = write_workload(&chain, 20).await.pop().expect("a state");
    churn(&chain, &mut state, 10).await;
    let writer = {
        let chain = chain.clone();
        tokio::spawn(async move {
            let mut keys = Vec::new();
            for n in 0..200u64 {
                let mut dio = chain.dio(&session()).await;
                let k = *dio
                    .store(crate::common::Note::new(100_000 + n))
                    .expect("stage")
                    .key();
                dio.commit().await.expect("commit during compaction");
                keys.push((k, n));
            }
            keys
        })
    };
    let mut compactions = 0;
    while !writer.is_finished() {
        chain.compact().await.expect("compact while writing");
        compactions += 1;
    }
    let keys = writer.await.unwrap();
    assert!(compactions > 0);
    for (k, n) in &keys {
        state
            .notes
            .insert(*k, crate::common::Note::new(100_000 + n));
    }
    state
        .assert_matches(&chain, "after compacting while writing")
        .await;
    drop(chain);
    let chain = reopen(dir.path()).await;
    state
        .assert_matches(&chain, "reopened after compacting while writing")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_log_changed_behind_the_chains_back_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compact.log");
    {
        let chain = reopen(dir.path()).await;
        let mut state = write_workload(&chain, 12).await.pop().expect("a state");
        churn(&chain, &mut state, 4).await;
        chain.compact().await.expect("compact");
        // Three more after the compacted part.
        for i in 12..15 {
            let (after, res) = transaction(&chain, &state, i).await;
            res.expect("commit");
            state = after;
        }
    }
    let good = std::fs::read(&path).unwrap();
    let all = frames(&good);
    let payloads: Vec<Vec<u8>> = all.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(payloads[0][0], 2, "the first frame is the checkpoint");
    let upto = u64::from_le_bytes(payloads[0][1..9].try_into().unwrap());
    let kept = u64::from_le_bytes(payloads[0][9..17].try_into().unwrap()) as usize;
    assert!(kept >= 2);

    let try_open = |bytes: Vec<u8>| {
        std::fs::write(&path, bytes).unwrap();
        async { reopen_result(dir.path()).await }
    };
    // A kept transaction removed (every frame intact): the checkpoint does not match.
    let mut fewer = payloads.clone();
    fewer.remove(1 + kept / 2);
    match try_open(log_of(&good, &fewer)).await {
        Err(OpenError::Checkpoint {
            source: CheckpointError::Mismatch { upto: u },
            ..
        }) => assert_eq!(u, upto),
        other => panic!("a removed kept transaction: {other:?}"),
    }
    // A retired key dropped from the checkpoint (its frame intact).
    let mut unretired = payloads.clone();
    let count = u32::from_le_bytes(unretired[0][17..21].try_into().unwrap());
    assert!(count > 0);
    unretired[0][21] ^= 0x80;
    assert!(matches!(
        try_open(log_of(&good, &unretired)).await,
        Err(OpenError::Checkpoint { .. })
    ));
    // The checkpoint removed: a pruned transaction outside a checkpointed part does not
    // decode, and the numbers no longer run from 1 without gaps.
    match try_open(log_of(&good, &payloads[1..])).await {
        Err(OpenError::OutOfSequence { .. } | OpenError::Malformed { .. }) => {}
        other => panic!("the checkpoint removed: {other:?}"),
    }
    // A transaction after the compacted part removed: a gap there is a lost frame.
    let mut no_middle = payloads.clone();
    assert_eq!(no_middle.len(), kept + 4);
    no_middle.remove(kept + 2);
    assert!(matches!(
        try_open(log_of(&good, &no_middle)).await,
        Err(OpenError::OutOfSequence { .. })
    ));
    // A flipped bit anywhere in a kept frame: detected (the frame's checksum, as in R5).
    let (at, _) = all[1];
    let mut flipped = good.clone();
    flipped[at + 20] ^= 1;
    assert!(try_open(flipped).await.is_err());
    // And the untouched file still opens.
    assert!(try_open(good).await.is_ok());
}

async fn reopen_result(dir: &Path) -> Result<Chain, OpenError> {
    open(
        &registry(&file_config(dir)).await,
        &ChainKey::from("compact"),
    )
    .await
}
