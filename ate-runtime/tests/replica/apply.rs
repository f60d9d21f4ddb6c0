//! `Chain::apply_replicated`: every check of a transaction from elsewhere, and nothing
//! appended when one fails.

use ate_runtime::chain::{ChainRegistry, CommitError, SealedTransaction};
use ate_runtime::event::EventDraft;
use ate_runtime::log::{LogStore, MemoryStore};
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;
use ate_runtime::unstable::codec::{decode_transaction, encode_transaction};
use ate_runtime::unstable::meta::{TxSealer, event_hashes};
use bytes::Bytes;

use crate::common::{TestUpstream, payloads};

const KEY: &str = "apply";

struct Keys {
    root: PrivateSignKey,
    server: PrivateSignKey,
    other_server: PrivateSignKey,
}

fn keys() -> &'static Keys {
    static K: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    K.get_or_init(|| Keys {
        root: PrivateSignKey::generate(KeySize::Bit128),
        server: PrivateSignKey::generate(KeySize::Bit128),
        other_server: PrivateSignKey::generate(KeySize::Bit128),
    })
}

fn root_session() -> AteSession {
    let mut s = AteSession::default();
    s.add_write_key(&keys().root);
    s
}

/// A registry pinning the root key, in centralized integrity, vouching with `vouch_with` or
/// pinning the server key.
async fn centralized(conf: &AteConfig, vouch_with: Option<&PrivateSignKey>) -> ChainRegistry {
    let b = ChainBuilder::new(conf)
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized);
    match vouch_with {
        Some(k) => b.server_key(k.clone()),
        None => b.add_server_public_key(&keys().server.as_public_key()),
    }
    .build()
}

/// The events of one new record holding `text`, as an open chain writes them.
async fn record_events(text: &str) -> Vec<EventDraft> {
    let chain = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from("scratch"))
        .await
        .unwrap();
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(text.to_string()).unwrap();
    dio.commit().await.unwrap();
    let payload = chain.read_from(1, usize::MAX).unwrap()[0].payload().clone();
    decode_transaction(payload)
        .unwrap()
        .events
        .iter()
        .map(|e| e.to_draft())
        .collect()
}

/// `payload` with one byte of `needle` (which it holds) changed.
fn tampered(payload: &Bytes, needle: &[u8]) -> Bytes {
    let at = payload
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the payload holds the needle");
    let mut bytes = payload.to_vec();
    bytes[at] ^= 0x20;
    Bytes::from(bytes)
}

fn trust_err(r: Result<(), CommitError>) -> TrustError {
    match r {
        Err(CommitError::Trust(e)) => e,
        other => panic!("expected a trust error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_misnumbered_and_forged_transactions_are_refused_and_nothing_is_appended() {
    // The source: a signed transaction (1), then one its server vouched for (2).
    let source = centralized(&AteConfig::in_memory(), Some(&keys().server))
        .await
        .open(&ChainKey::from(KEY))
        .await
        .unwrap();
    let mut dio = source.dio(&root_session()).await;
    dio.store("signed-record".to_string()).unwrap();
    dio.commit().await.unwrap();
    let vouched_events = record_events("vouched-record").await;
    source
        .commit_vouched(vouched_events.clone(), vec![], vec![keys().root.hash()])
        .await
        .unwrap();
    let txs = payloads(&source);
    let (p1, p2) = (txs[0].1.clone(), txs[1].1.clone());

    let store = MemoryStore::new();
    let replica = centralized(&AteConfig::in_memory(), None)
        .await
        .open_store_replica(
            &ChainKey::from(KEY),
            Box::new(store.clone()),
            TestUpstream::new(&source),
        )
        .unwrap();
    replica.apply_replicated(1, p1.clone()).await.unwrap();
    let len = store.len();
    let unchanged = |replica: &Chain| {
        assert_eq!(store.len(), len, "nothing was appended");
        assert_eq!(replica.last_seq(), 1);
        assert_eq!(replica.len(), 1);
    };

    // A changed body no longer matches what the vouch signs.
    let e = trust_err(
        replica
            .apply_replicated(2, tampered(&p2, b"vouched-record"))
            .await,
    );
    assert_eq!(e, TrustError::TxDigestMismatch);
    unchanged(&replica);
    // Numbers: ahead, behind, and a payload given at another number than it carries.
    for (seq, payload, expected) in [
        (3, &p2, (2, 3)),
        (1, &p1, (2, 1)),
        (0, &p1, (2, 0)),
        (u64::MAX, &p2, (2, u64::MAX)),
    ] {
        match replica.apply_replicated(seq, payload.clone()).await {
            Err(CommitError::OutOfOrder { expected: e, got }) => assert_eq!((e, got), expected),
            other => panic!("expected OutOfOrder, got {other:?}"),
        }
        unchanged(&replica);
    }
    assert!(matches!(
        replica.apply_replicated(2, p1.clone()).await,
        Err(CommitError::SeqMismatch {
            stated: 2,
            encoded: 1
        })
    ));
    unchanged(&replica);
    // A vouch by a server key the replica does not pin, well formed and numbered.
    let forged_vouch = TxSealer {
        vouch: Some((&keys().other_server, vec![keys().root.hash()])),
        ..TxSealer::default()
    }
    .seal(
        replica.policy().chain_hash(),
        &event_hashes(&vouched_events),
    )
    .unwrap();
    let forged = Bytes::from(encode_transaction(2, &vouched_events, &forged_vouch));
    let e = trust_err(replica.apply_replicated(2, forged).await);
    assert_eq!(
        e,
        TrustError::UnpinnedServer {
            server: keys().other_server.hash()
        }
    );
    unchanged(&replica);
    // Garbage, and a transaction beyond the replica's limit on transactions from elsewhere.
    assert!(matches!(
        replica
            .apply_replicated(2, Bytes::from_static(b"\x01garbage"))
            .await,
        Err(CommitError::Malformed(_))
    ));
    unchanged(&replica);
    {
        let mut conf = AteConfig::in_memory();
        conf.max_foreign_transaction_bytes = p2.len() - 1;
        let small = centralized(&conf, None)
            .await
            .open(&ChainKey::from(KEY))
            .await
            .unwrap();
        small.apply_replicated(1, p1.clone()).await.unwrap();
        assert!(matches!(
            small.apply_replicated(2, p2.clone()).await,
            Err(CommitError::TooLarge { .. })
        ));
        assert_eq!(small.last_seq(), 1);
    }

    // The real one is applied, its vouch verified against the pinned key: the replica's log
    // is the source's, position for position.
    replica.apply_replicated(2, p2.clone()).await.unwrap();
    assert_eq!(replica.last_seq(), 2);
    assert_eq!(payloads(&replica), txs);
    let dio = replica.dio(&AteSession::default()).await;
    let key = decode_transaction(p2.clone()).unwrap().events[0].key;
    assert_eq!(*dio.load::<String>(&key).await.unwrap(), "vouched-record");

    // A vouch is the source's word only when it arrives as replicated: handed in as a
    // sealed transaction it is refused, on the replica (before it goes anywhere) and on the
    // source alike.
    let sealed = SealedTransaction::from_bytes(p2.clone()).unwrap();
    for chain in [&replica, &source] {
        assert!(matches!(
            chain.commit_sealed(sealed.clone()).await,
            Err(CommitError::Trust(TrustError::ForeignVouch))
        ));
    }
    assert_eq!(source.last_seq(), 2);
    assert_eq!(store.len(), len + (p2.len() as u64 + 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_distributed_integrity_refuses_vouches() {
    let source = centralized(&AteConfig::in_memory(), Some(&keys().server))
        .await
        .open(&ChainKey::from(KEY))
        .await
        .unwrap();
    source
        .commit_vouched(
            record_events("vouched").await,
            vec![],
            vec![keys().root.hash()],
        )
        .await
        .unwrap();
    let replica = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .build()
        .open_replica(&ChainKey::from(KEY), TestUpstream::new(&source))
        .await
        .unwrap();
    let p1 = payloads(&source)[0].1.clone();
    assert_eq!(
        trust_err(replica.apply_replicated(1, p1).await),
        TrustError::VouchRefused
    );
    assert_eq!(replica.last_seq(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_applied_up_to_its_first_failure() {
    let reg = || async {
        ChainBuilder::new(&AteConfig::in_memory())
            .await
            .add_root_public_key(&keys().root.as_public_key())
            .build()
    };
    let source = reg().await.open(&ChainKey::from(KEY)).await.unwrap();
    // Signed transactions of two records each, enough for several pieces.
    let session = root_session();
    for n in 0..300u64 {
        let mut dio = source.dio(&session).await;
        dio.store(format!("record-{n:04}")).unwrap();
        dio.store(vec![n as u8; 2000]).unwrap();
        dio.commit().await.unwrap();
    }
    let txs = payloads(&source);
    let store = MemoryStore::new();
    let replica = reg()
        .await
        .open_store_replica(
            &ChainKey::from(KEY),
            Box::new(store.clone()),
            TestUpstream::new(&source),
        )
        .unwrap();
    assert!(replica.apply_replicated_batch(Vec::new()).await.is_ok());

    // Transaction 150 changed: 1..=149 are applied, nothing after.
    let mut batch = txs.clone();
    batch[149].1 = tampered(&batch[149].1, b"record-0149");
    let e = replica.apply_replicated_batch(batch).await;
    assert!(
        matches!(e, Err(CommitError::Trust(TrustError::TxDigestMismatch))),
        "{e:?}"
    );
    assert_eq!(replica.last_seq(), 149);
    assert_eq!(payloads(&replica), txs[..149]);
    let len = store.len();

    // A gap: 150..=159 are applied, then the number that does not follow is refused.
    let mut batch: Vec<(u64, Bytes)> = txs[149..159].to_vec();
    batch.extend(txs[160..].iter().cloned());
    match replica.apply_replicated_batch(batch).await {
        Err(CommitError::OutOfOrder { expected, got }) => assert_eq!((expected, got), (160, 161)),
        other => panic!("expected OutOfOrder, got {other:?}"),
    }
    assert_eq!(replica.last_seq(), 159);
    assert!(store.len() > len);

    // The rest, in one call.
    replica
        .apply_replicated_batch(txs[159..].to_vec())
        .await
        .unwrap();
    assert_eq!(replica.last_seq(), 300);
    assert_eq!(payloads(&replica), txs);
    assert_eq!(replica.len(), 600);
    // Its log reopens with the source's transactions.
    let reopened = reg()
        .await
        .open_store(
            &ChainKey::from(KEY),
            Box::new(MemoryStore::from_bytes(store.bytes())),
        )
        .unwrap();
    assert_eq!(payloads(&reopened), txs);
}
