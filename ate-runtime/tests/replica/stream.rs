//! The commit stream and `Chain::read_from`.

use std::collections::BTreeMap;

use ate_runtime::chain::StreamError;
use ate_runtime::prelude::*;

use crate::common::{file_registry, memory_registry};

/// Commits `n` one-record transactions from `tasks` concurrent committers (so the writer
/// forms groups); returns each record's key by the sequence number that wrote it.
async fn commit_many(chain: &Chain, n: usize, tasks: usize) -> BTreeMap<u64, PrimaryKey> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let chain = chain.clone();
        handles.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in (t..n).step_by(tasks) {
                let mut dio = chain.dio(&AteSession::default()).await;
                let key = *dio.store(format!("value {i}")).unwrap().key();
                dio.commit().await.unwrap();
                written.push(key);
            }
            written
        }));
    }
    let mut keys = Vec::new();
    for h in handles {
        keys.extend(h.await.unwrap());
    }
    // Which number wrote which key: from the history, checked against the keys written.
    let by_seq: BTreeMap<u64, PrimaryKey> = chain
        .read_from(1, usize::MAX)
        .unwrap()
        .iter()
        .map(|c| (c.seq(), c.keys().next().unwrap()))
        .collect();
    let mut all: Vec<PrimaryKey> = by_seq.values().copied().collect();
    all.sort();
    keys.sort();
    assert_eq!(all, keys);
    by_seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_gets_every_transaction_exactly_once_in_order() {
    let mut conf = AteConfig::in_memory();
    conf.commit_stream_capacity = 2;
    let chain = ChainBuilder::new(&conf)
        .await
        .build()
        .open(&ChainKey::from("lagging"))
        .await
        .unwrap();
    // One subscriber reads nothing until the end, another reads slowly all along.
    let mut idle = chain.subscribe(1);
    let mut slow = chain.subscribe(1);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 3000 {
            let c = slow.next().await.unwrap();
            seen.push((c.seq(), c.keys().next().unwrap()));
            if seen.len() % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        seen
    });
    let written = commit_many(&chain, 3000, 8).await;
    let expected: Vec<(u64, PrimaryKey)> = written.into_iter().collect();
    assert_eq!(expected.len(), 3000);
    assert_eq!(reader.await.unwrap(), expected);
    let mut seen = Vec::new();
    for _ in 0..3000 {
        let c = idle.next().await.unwrap();
        assert_eq!(c.len(), 1);
        seen.push((c.seq(), c.keys().next().unwrap()));
    }
    assert_eq!(seen, expected);
    assert_eq!(idle.position(), 3001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_then_live_has_no_gap_or_duplicate_under_concurrent_commits() {
    for capacity in [1, 4, 1024] {
        let mut conf = AteConfig::in_memory();
        conf.commit_stream_capacity = capacity;
        let chain = ChainBuilder::new(&conf)
            .await
            .build()
            .open(&ChainKey::from("boundary"))
            .await
            .unwrap();
        let total = 1200u64;
        let writer = {
            let chain = chain.clone();
            tokio::spawn(async move { commit_many(&chain, total as usize, 4).await })
        };
        // Subscribers join at moments and positions spread over the run: behind, at and
        // beyond the end at the time they join.
        let mut readers = Vec::new();
        for round in 0..24u64 {
            let last = chain.last_seq();
            let from = match round % 3 {
                0 => last.saturating_sub(round * 5) + 1,
                1 => last + 1,
                _ => last + 1 + round,
            }
            .min(total);
            let mut stream = chain.subscribe(from);
            readers.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                while seqs.last() != Some(&total) {
                    seqs.push(stream.next().await.unwrap().seq());
                }
                (from, seqs)
            }));
            tokio::time::sleep(std::time::Duration::from_micros(300)).await;
        }
        let written = writer.await.unwrap();
        for r in readers {
            let (from, seqs) = r.await.unwrap();
            let expected: Vec<u64> = (from..=total).collect();
            assert_eq!(seqs, expected, "capacity {capacity}, from {from}");
        }
        // What the stream said each transaction wrote is what was committed.
        let mut stream = chain.subscribe(0);
        for (seq, key) in written {
            let c = stream.next().await.unwrap();
            assert_eq!((c.seq(), c.keys().next().unwrap()), (seq, key));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ends_with_a_typed_error_when_the_chain_closes() {
    let chain = memory_registry(None)
        .await
        .open(&ChainKey::from("closing"))
        .await
        .unwrap();
    let mut stream = chain.subscribe(1);
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store("one".to_string()).unwrap();
    dio.store("two".to_string()).unwrap();
    dio.commit().await.unwrap();
    drop(dio);
    let waiting = tokio::spawn(async move {
        let first = stream.next().await.map(|c| (c.seq(), c.len()));
        let end = stream.next().await;
        (first, end)
    });
    drop(chain);
    let (first, end) = waiting.await.unwrap();
    assert_eq!(first.unwrap(), (1, 2), "what was committed comes first");
    assert!(matches!(end, Err(StreamError::Closed)), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_and_the_stream_work_from_a_reopened_file_and_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChainKey::from("reopened");
    let mut written = Vec::new();
    {
        let chain = file_registry(dir.path()).await.open(&key).await.unwrap();
        for n in 0..20u64 {
            let mut dio = chain.dio(&AteSession::default()).await;
            let k = *dio.store(n).unwrap().key();
            dio.commit().await.unwrap();
            written.push(k);
        }
    }
    let chain = file_registry(dir.path()).await.open(&key).await.unwrap();
    assert_eq!(chain.last_seq(), 20);
    let mut stream = chain.subscribe(5);
    for n in 20..30u64 {
        let mut dio = chain.dio(&AteSession::default()).await;
        let mut dao = dio.load::<u64>(&written[0]).await.unwrap();
        *dao.as_mut() = n;
        drop(dao);
        let k = *dio.store(n).unwrap().key();
        dio.commit().await.unwrap();
        written.push(k);
    }
    // The replayed buffer, then groups written since.
    let all = chain.read_from(1, usize::MAX).unwrap();
    assert_eq!(all.len(), 30);
    for (i, c) in all.iter().enumerate() {
        assert_eq!(c.seq(), i as u64 + 1);
        let keys: Vec<PrimaryKey> = c.keys().collect();
        if i < 20 {
            assert_eq!(keys, [written[i]]);
        } else {
            assert_eq!(keys, [written[0], written[i]]);
            assert!(c.events().all(|e| e.type_name == "u64" && !e.tombstone));
        }
    }
    // Bounded by bytes, at least one.
    let some = chain.read_from(3, all[2].payload().len() + 1).unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].payload(), all[2].payload());
    assert!(chain.read_from(31, usize::MAX).unwrap().is_empty());
    for seq in 5..=30 {
        let c = stream.next().await.unwrap();
        assert_eq!(c.seq(), seq);
        assert_eq!(c.payload(), all[seq as usize - 1].payload());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_durable_transactions_are_published_and_waiters_learn_of_a_poisoned_chain() {
    use std::future::Future;
    use std::task::{Context, Waker};

    use ate_runtime::chain::CommitError;
    use ate_runtime::log::MemoryStore;

    let store = MemoryStore::new();
    let chain = memory_registry(None)
        .await
        .open_store(&ChainKey::from("durable"), Box::new(store.clone()))
        .unwrap();
    let mut stream = chain.subscribe(1);
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(1u64).unwrap();
    dio.commit().await.unwrap();
    assert_eq!(stream.next().await.unwrap().seq(), 1);
    chain.wait_for(1).await.unwrap();

    // The next group's append succeeds and its fsync fails: nothing of it is published.
    store.fail_after(1);
    dio.store(2u64).unwrap();
    assert!(matches!(
        dio.commit().await,
        Err(AteError::Commit(CommitError::Log(_)))
    ));
    assert!(chain.read_from(2, usize::MAX).unwrap().is_empty());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(std::pin::pin!(stream.next()).poll(&mut cx).is_pending());
    assert_eq!(chain.last_seq(), 1);
    assert!(matches!(
        chain.wait_for(2).await,
        Err(CommitError::Poisoned(_))
    ));
}
