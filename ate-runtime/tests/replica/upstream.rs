//! Replicas writing through their source.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ate_runtime::chain::{CommitError, OpenError, SealedTransaction, Upstream};
use ate_runtime::event::EventDraft;
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;
use ate_runtime::unstable::codec::decode_transaction;
use tokio::sync::Semaphore;

use crate::common::{
    Account, Cluster, TestUpstream, eventually, file_registry, memory_registry, payloads, pump,
};

fn root_key() -> &'static PrivateSignKey {
    static K: std::sync::OnceLock<PrivateSignKey> = std::sync::OnceLock::new();
    K.get_or_init(|| PrivateSignKey::generate(KeySize::Bit128))
}

async fn accounts_in(chain: &Chain, city: &str) -> Vec<String> {
    let dio = chain.dio(&AteSession::default()).await;
    let mut emails: Vec<String> = dio
        .find::<Account, _>("city", city)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.email.clone())
        .collect();
    emails.sort();
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_see_each_others_writes_in_their_views_and_indexes() {
    let cluster = Cluster::new("two-replicas", 2, None).await;
    let (a, b) = (&cluster.replicas[0], &cluster.replicas[1]);
    let session = AteSession::default();

    let mut dio = a.dio(&session).await;
    let alice = *dio.store(Account::new("alice@x", "Paris")).unwrap().key();
    dio.commit().await.unwrap();
    // Read-your-writes: applied on the replica when the commit returns.
    assert_eq!(a.last_seq(), 1);
    assert_eq!(accounts_in(a, "Paris").await, ["alice@x"]);

    eventually(|| b.last_seq() == 1).await;
    assert_eq!(accounts_in(b, "Paris").await, ["alice@x"]);
    let mut dio = b.dio(&session).await;
    dio.store(Account::new("bob@x", "Paris")).unwrap();
    let mut account = dio.load::<Account>(&alice).await.unwrap();
    account.as_mut().balance = 10;
    drop(account);
    dio.commit().await.unwrap();

    eventually(|| a.last_seq() == 2).await;
    assert_eq!(accounts_in(a, "Paris").await, ["alice@x", "bob@x"]);
    let dio = a.dio(&session).await;
    assert_eq!(dio.load::<Account>(&alice).await.unwrap().balance, 10);

    // A unique index holds across writers: the source refuses, with the error a local commit
    // gets, and the writes stay staged.
    let mut dio = a.dio(&session).await;
    dio.store(Account::new("bob@x", "Rome")).unwrap();
    match dio.commit().await {
        Err(AteError::Commit(CommitError::UniqueViolation {
            type_name, field, ..
        })) => assert_eq!(
            (type_name.as_str(), field.as_str()),
            ("replica.Account", "email")
        ),
        other => panic!("expected UniqueViolation, got {other:?}"),
    }
    assert!(dio.has_changes());
    assert_eq!(cluster.source.last_seq(), 2);
    dio.cancel();
    dio.store(Account::new("carol@x", "Rome")).unwrap();
    dio.commit().await.unwrap();
    eventually(|| b.last_seq() == 3).await;
    assert_eq!(accounts_in(b, "Rome").await, ["carol@x"]);
    // Every log holds the source's transactions, position for position.
    let source = payloads(&cluster.source);
    assert_eq!(payloads(a), source);
    assert_eq!(payloads(b), source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_replicas_converge() {
    let cluster = Cluster::new("converge", 2, None).await;
    let mut tasks = Vec::new();
    for (r, replica) in cluster.replicas.iter().enumerate() {
        for t in 0..4 {
            let replica = replica.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..25 {
                    let mut dio = replica.dio(&AteSession::default()).await;
                    dio.store(format!("replica {r} task {t} value {n}"))
                        .unwrap();
                    dio.commit().await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(cluster.source.last_seq(), 200);
    for replica in &cluster.replicas {
        eventually(|| replica.last_seq() == 200).await;
        assert_eq!(replica.len(), 200);
        assert_eq!(payloads(replica), payloads(&cluster.source));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_refusals_come_back_as_the_errors_of_a_local_commit() {
    let cluster = Cluster::new("refusals", 2, Some(root_key())).await;
    let (a, b) = (&cluster.replicas[0], &cluster.replicas[1]);
    let mut session = AteSession::default();
    session.add_write_key(root_key());

    let mut dio = a.dio(&session).await;
    let key = *dio.store("v1".to_string()).unwrap().key();
    dio.commit().await.unwrap();
    eventually(|| b.last_seq() == 1).await;

    // Both replicas read version 1; the second writer's change is stale at the source.
    let mut dio_a = a.dio(&session).await;
    let mut dio_b = b.dio(&session).await;
    let mut on_a = dio_a.load::<String>(&key).await.unwrap();
    let mut on_b = dio_b.load::<String>(&key).await.unwrap();
    *on_a.as_mut() = "from a".into();
    drop(on_a);
    *on_b.as_mut() = "from b".into();
    drop(on_b);
    dio_a.commit().await.unwrap();
    match dio_b.commit().await {
        Err(AteError::Commit(CommitError::Trust(TrustError::VersionMismatch {
            key: k,
            claimed,
            current,
        }))) => assert_eq!((k, claimed, current), (key, Some(1), Some(2))),
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert!(
        dio_b.has_changes(),
        "a refused commit keeps its writes staged"
    );
    assert_eq!(cluster.source.last_seq(), 2);

    // No write right: unsigned events refused by the source as they are locally.
    let events: Vec<EventDraft> = decode_transaction(payloads(a)[0].1.clone())
        .unwrap()
        .events
        .iter()
        .map(|e| {
            let mut d = e.to_draft();
            d.key = PrimaryKey::generate();
            d
        })
        .collect();
    let local = cluster
        .source
        .commit_transaction(events.clone(), vec![])
        .await;
    let remote = a.commit_transaction(events, vec![]).await;
    assert!(
        matches!(
            remote,
            Err(CommitError::Trust(TrustError::MissingSignature { .. }))
        ),
        "{remote:?}"
    );
    assert_eq!(format!("{local:?}"), format!("{remote:?}"));
    assert_eq!(cluster.source.last_seq(), 2);
    assert_eq!(a.last_seq(), 2);

    // A vouch is the source's to make.
    assert!(matches!(
        a.commit_vouched(Vec::new(), vec![], vec![]).await,
        Err(CommitError::VouchOnReplica)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reopened_from_its_file_resumes_at_its_position() {
    let (source_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = ChainKey::from("resume");
    let source = file_registry(source_dir.path())
        .await
        .open(&key)
        .await
        .unwrap();
    let session = AteSession::default();
    let open_replica = || async {
        file_registry(replica_dir.path())
            .await
            .open_replica(&key, TestUpstream::new(&source))
            .await
            .unwrap()
    };
    let replica = open_replica().await;
    let pumping = pump(&source, &replica);
    for n in 0..10u64 {
        let mut dio = replica.dio(&session).await;
        dio.store(n).unwrap();
        dio.commit().await.unwrap();
        let mut dio = source.dio(&session).await;
        dio.store(100 + n).unwrap();
        dio.commit().await.unwrap();
    }
    eventually(|| replica.last_seq() == 20).await;
    pumping.abort();
    let _ = pumping.await;
    let replica_path = replica.path().unwrap().to_path_buf();
    drop(replica);

    // The source goes on without it.
    for n in 0..15u64 {
        let mut dio = source.dio(&session).await;
        dio.store(200 + n).unwrap();
        dio.commit().await.unwrap();
    }
    let replica = open_replica().await;
    assert_eq!(replica.last_seq(), 20, "resumed at its position");
    assert_eq!(replica.len(), 20);
    let pumping = pump(&source, &replica);
    eventually(|| replica.last_seq() == 35).await;
    let mut dio = replica.dio(&session).await;
    dio.store(999u64).unwrap();
    dio.commit().await.unwrap();
    assert_eq!(replica.last_seq(), 36);
    assert_eq!(payloads(&replica), payloads(&source));
    // Position for position, byte for byte: the replica's log file is the source's.
    let source_bytes = std::fs::read(source.path().unwrap()).unwrap();
    assert_eq!(std::fs::read(&replica_path).unwrap(), source_bytes);
    pumping.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_transactions_commit_elsewhere_without_being_encoded_again() {
    let key = ChainKey::from("sealed");
    let mut session = AteSession::default();
    session.add_write_key(root_key());
    let here = memory_registry(Some(root_key()))
        .await
        .open(&key)
        .await
        .unwrap();
    let there = memory_registry(Some(root_key()))
        .await
        .open(&key)
        .await
        .unwrap();

    let mut dio = here.dio(&session).await;
    assert!(dio.seal().await.unwrap().is_none(), "nothing staged");
    let first = *dio.store("one".to_string()).unwrap().key();
    dio.store("two".to_string()).unwrap();
    let sealed = dio.seal().await.unwrap().expect("two writes");
    assert!(!dio.has_changes(), "the transaction holds the writes now");
    assert!(here.is_empty());

    // Over the wire and back.
    let received = SealedTransaction::from_bytes(sealed.to_bytes()).unwrap();
    assert_eq!(received, sealed);
    assert_eq!(there.commit_sealed(received).await.unwrap(), 1);
    let stored = payloads(&there)[0].1.clone();
    // The log holds the sealed bytes, but for the sequence number the chain wrote in.
    assert_eq!(stored.len(), sealed.len());
    assert_eq!(stored[0], sealed.as_bytes()[0]);
    assert_eq!(stored[9..], sealed.as_bytes()[9..]);
    assert_eq!(
        *there
            .dio(&session)
            .await
            .load::<String>(&first)
            .await
            .unwrap(),
        "one"
    );
    // The same transaction on its own chain; then it is a replay there.
    assert_eq!(here.commit_sealed(sealed.clone()).await.unwrap(), 1);
    assert!(matches!(
        here.commit_sealed(sealed.clone()).await,
        Err(CommitError::Trust(TrustError::VersionMismatch { .. }))
    ));

    // Changed bytes, garbage, and a chain with another root.
    let mut bytes = sealed.as_bytes().to_vec();
    let at = bytes.windows(3).position(|w| w == b"two").unwrap();
    bytes[at] ^= 1;
    let changed = SealedTransaction::from_bytes(bytes.into()).unwrap();
    let fresh = memory_registry(Some(root_key()))
        .await
        .open(&key)
        .await
        .unwrap();
    assert!(matches!(
        fresh.commit_sealed(changed).await,
        Err(CommitError::Trust(TrustError::TxDigestMismatch))
    ));
    assert!(matches!(
        SealedTransaction::from_bytes(bytes::Bytes::from_static(b"\x01\x00")),
        Err(CommitError::Malformed(_))
    ));
    let other_root = PrivateSignKey::generate(KeySize::Bit128);
    let elsewhere = memory_registry(Some(&other_root))
        .await
        .open(&key)
        .await
        .unwrap();
    assert!(matches!(
        elsewhere.commit_sealed(sealed).await,
        Err(CommitError::Trust(TrustError::Unauthorized { .. }))
    ));
    assert!(fresh.is_empty() && elsewhere.is_empty());

    // Sealing fails like a commit, and keeps the writes staged.
    let mut dio = fresh.dio(&AteSession::default()).await;
    dio.store("unsigned".to_string()).unwrap();
    assert!(matches!(
        dio.seal().await,
        Err(DioError::MissingWriteKey { .. })
    ));
    assert!(dio.has_changes());

    // On a replica, a sealed transaction goes to the source.
    let cluster = Cluster::new("sealed-replica", 1, None).await;
    let mut dio = cluster.replicas[0].dio(&AteSession::default()).await;
    dio.store("through".to_string()).unwrap();
    let sealed = dio.seal().await.unwrap().unwrap();
    assert_eq!(cluster.replicas[0].commit_sealed(sealed).await.unwrap(), 1);
    assert_eq!(cluster.replicas[0].last_seq(), 1);
    assert_eq!(cluster.source.last_seq(), 1);
}

/// Polls `fut` once; whether it completed.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.poll(&mut cx), Poll::Ready(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_commit_dropped_in_flight_is_settled_by_the_next_one() {
    let key = ChainKey::from("in-flight");
    let source = memory_registry(None).await.open(&key).await.unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let upstream = Arc::new(TestUpstream {
        source: source.clone(),
        gate: Some(gate.clone()),
    });
    let replica = memory_registry(None)
        .await
        .open_replica(&key, upstream)
        .await
        .unwrap();
    let _pump = pump(&source, &replica);
    let mut dio = replica.dio(&AteSession::default()).await;
    let mut held = dio.store("first".to_string()).unwrap();
    // Sealed and sent on the first poll; held at the gate, then dropped.
    assert!(!poll_once(pin!(dio.commit())));
    assert!(!dio.has_changes(), "the writes are with the source now");
    gate.add_permits(1);
    eventually(|| replica.last_seq() == 1).await;
    // The next commit learns the version the dropped one wrote.
    *held.as_mut() = "second".into();
    drop(held);
    gate.add_permits(1);
    dio.commit().await.unwrap();
    assert_eq!(replica.last_seq(), 2);
    assert_eq!(payloads(&replica), payloads(&source));
}

/// An upstream that never reaches its source.
#[derive(Debug)]
struct Unreachable;

#[async_trait::async_trait]
impl Upstream for Unreachable {
    async fn commit(&self, _: SealedTransaction) -> Result<u64, CommitError> {
        Err(CommitError::Unreachable("no route to the source".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_keep_the_writes_staged_and_roles_do_not_mix() {
    let key = ChainKey::from("roles");
    let reg = memory_registry(None).await;
    let upstream: Arc<dyn Upstream> = Arc::new(Unreachable);
    let replica = reg.open_replica(&key, upstream.clone()).await.unwrap();
    let mut dio = replica.dio(&AteSession::default()).await;
    dio.store("kept".to_string()).unwrap();
    assert!(matches!(
        dio.commit().await,
        Err(AteError::Commit(CommitError::Unreachable(_)))
    ));
    assert!(dio.has_changes());
    assert!(replica.is_replica() && replica.upstream().is_some());

    // The same upstream shares the open replica; a local open or another upstream does not.
    let again = reg.open_replica(&key, upstream).await.unwrap();
    assert_eq!(format!("{again:?}"), format!("{replica:?}"));
    for opened in [
        reg.open(&key).await.err(),
        reg.open_replica(&key, Arc::new(Unreachable)).await.err(),
    ] {
        assert!(
            matches!(opened, Some(OpenError::OtherRole { .. })),
            "{opened:?}"
        );
    }
    let local = reg.open(&ChainKey::from("local")).await.unwrap();
    assert!(!local.is_replica());
    assert!(matches!(
        reg.open_replica(&ChainKey::from("local"), Arc::new(Unreachable))
            .await,
        Err(OpenError::OtherRole { .. })
    ));
}
