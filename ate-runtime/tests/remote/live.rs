//! Clients of one server: live changes, read-your-writes, refusals as local errors, pinned
//! identities and root keys, resume from a replica file, sync.

use std::sync::OnceLock;

use ate_runtime::chain::CommitError;
use ate_runtime::crypto::{KeySize, PrivateSignKey};
use ate_runtime::net::NetError;
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;

use super::common::*;

fn root() -> &'static PrivateSignKey {
    static K: OnceLock<PrivateSignKey> = OnceLock::new();
    K.get_or_init(|| PrivateSignKey::generate(KeySize::Bit128))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_see_each_others_writes_live() {
    let id = identity();
    let server = server(&id, None, None).await;
    let url = server.url("notes");
    let a = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("a opens");
    let b = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("b opens");

    // Read-your-writes: the commit returns once the replica holds it.
    let mut dio = a.dio(&session(None)).await;
    let key = *dio
        .store(Note {
            text: "from a".into(),
        })
        .expect("store")
        .key();
    dio.commit().await.expect("commit through the server");
    assert_eq!(a.len(), 1);
    let dio = a.dio(&session(None)).await;
    assert_eq!(dio.load::<Note>(&key).await.expect("load").text, "from a");

    // The other client receives it live.
    until_len(&b, 1).await;
    let mut dio = b.dio(&session(None)).await;
    let mut note = dio.load::<Note>(&key).await.expect("b loads it");
    note.as_mut().text = "edited by b".into();
    dio.commit().await.expect("b's update");
    until_len(&a, 1).await;
    for _ in 0..200 {
        let dio = a.dio(&session(None)).await;
        if dio.load::<Note>(&key).await.expect("load").text == "edited by b" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let dio = a.dio(&session(None)).await;
    assert_eq!(
        dio.load::<Note>(&key).await.expect("load").text,
        "edited by b"
    );
    assert_eq!(a.last_seq(), b.last_seq());

    // A late client downloads the history before open returns.
    let c = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("c opens");
    assert_eq!(c.last_seq(), a.last_seq());
    c.sync().await.expect("sync");
    drop((a, b, c));
    server.shutdown().await;
}

/// `sync` is a barrier with the server: after it, a replica has every transaction any client
/// committed before it was called (not only the history it downloaded at the open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sees_what_another_client_committed_before_it() {
    let id = identity();
    let server = server(&id, None, None).await;
    let url = server.url("barrier");
    let a = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("a opens");
    let b = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("b opens");
    for i in 0..50 {
        let mut dio = a.dio(&session(None)).await;
        let key = *dio
            .store(Note {
                text: format!("note {i}"),
            })
            .expect("store")
            .key();
        dio.commit().await.expect("commit");
        b.sync().await.expect("sync");
        assert!(b.last_seq() >= a.last_seq(), "round {i}");
        let dio = b.dio(&session(None)).await;
        assert_eq!(
            dio.load::<Note>(&key).await.expect("b has it").text,
            format!("note {i}")
        );
    }
    drop((a, b));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_is_refused_with_the_local_error() {
    let id = identity();
    let server = server(&id, None, None).await;
    let url = server.url("stale");
    let a = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let b = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let mut dio = a.dio(&session(None)).await;
    let key = *dio.store(Note { text: "v1".into() }).expect("store").key();
    dio.commit().await.expect("commit");
    until_len(&b, 1).await;

    // Both load version 1; a commits first; b's update is stale.
    let mut da = a.dio(&session(None)).await;
    let mut db = b.dio(&session(None)).await;
    let mut na = da.load::<Note>(&key).await.expect("load");
    let mut nb = db.load::<Note>(&key).await.expect("load");
    na.as_mut().text = "a".into();
    nb.as_mut().text = "b".into();
    da.commit().await.expect("a wins");
    let err = db.commit().await.expect_err("b is stale");
    assert!(
        matches!(
            err,
            AteError::Commit(CommitError::Trust(TrustError::VersionMismatch { .. }))
        ),
        "{err:?}"
    );
    let seq = a.last_seq();
    // Nothing of b's was stored.
    b.sync().await.expect("sync");
    assert_eq!(b.last_seq(), seq);
    drop((a, b));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_and_root_keys_are_pinned_by_the_client() {
    let id = identity();
    let server = server(&id, None, Some(root())).await;
    let url = server.url("pinned");

    // Another identity pinned: refused at the handshake.
    let other = identity();
    let e = client(None, None)
        .await
        .open_url_with(&url, &pinned(&other))
        .await
        .expect_err("another identity");
    assert!(
        matches!(e, OpenError::Net(NetError::IdentityMismatch { .. })),
        "{e:?}"
    );

    // A writer without the root's right is refused by the server; nothing is appended.
    let writer = client(None, Some(root()))
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let stranger = PrivateSignKey::generate(KeySize::Bit128);
    let mut dio = writer.dio(&session(Some(&stranger))).await;
    dio.store(Note { text: "x".into() }).expect("store");
    let err = dio.commit().await.expect_err("no right");
    // This client pins the root too, so its Dio refuses before sending.
    assert!(
        matches!(err, AteError::Dio(DioError::MissingWriteKey { .. })),
        "{err:?}"
    );
    // A client that pins nothing sends it unsigned (nothing it knows needs a signature); the
    // server refuses it with the chain-of-trust error.
    let careless = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let mut dio = careless.dio(&session(Some(&stranger))).await;
    dio.store(Note { text: "x".into() }).expect("store");
    let err = dio.commit().await.expect_err("no right");
    assert!(
        matches!(
            err,
            AteError::Commit(CommitError::Trust(TrustError::MissingSignature { .. }))
        ),
        "{err:?}"
    );
    assert_eq!(writer.last_seq(), 0);
    assert_eq!(careless.last_seq(), 0);
    drop(careless);

    // The root writes; a client pinning another root refuses the server's history.
    let mut dio = writer.dio(&session(Some(root()))).await;
    dio.store(Note {
        text: "by root".into(),
    })
    .expect("store");
    dio.commit().await.expect("the root may write");
    assert_eq!(writer.last_seq(), 1);
    let impostor = PrivateSignKey::generate(KeySize::Bit128);
    let e = client(None, Some(&impostor))
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect_err("history signed by a root this client does not pin");
    assert!(matches!(e, OpenError::Replica(_)), "{e:?}");
    drop(writer);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_file_resumes_from_its_position() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let server = server(&id, Some(&dir.path().join("server")), None).await;
    let url = server.url("resume");
    let replica_dir = dir.path().join("client");
    {
        let chain = client(Some(&replica_dir), None)
            .await
            .open_url_with(&url, &pinned(&id))
            .await
            .expect("open");
        for i in 0..20 {
            let mut dio = chain.dio(&session(None)).await;
            dio.store(Note {
                text: format!("n{i}"),
            })
            .expect("store");
            dio.commit().await.expect("commit");
        }
        assert_eq!(chain.last_seq(), 20);
    }
    let file = replica_dir.join("resume.log");
    let before = std::fs::metadata(&file).expect("replica file").len();
    // Another writer adds 5 while the replica is closed.
    {
        let other = client(None, None)
            .await
            .open_url_with(&url, &pinned(&id))
            .await
            .expect("open");
        for i in 0..5 {
            let mut dio = other.dio(&session(None)).await;
            dio.store(Note {
                text: format!("m{i}"),
            })
            .expect("store");
            dio.commit().await.expect("commit");
        }
    }
    let chain = client(Some(&replica_dir), None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("reopen");
    assert_eq!(chain.last_seq(), 25);
    assert_eq!(chain.len(), 25);
    // The file grew by the 5 new transactions only: the history was not downloaded again.
    let after = std::fs::metadata(&file).expect("replica file").len();
    let per_tx = before / 20;
    assert!(
        after - before < 7 * per_tx,
        "grew by {} bytes",
        after - before
    );
    drop(chain);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fails_promptly_while_the_server_is_away_and_resumes_after() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let first = server(&id, Some(dir.path()), None).await;
    let addr = first.local_addr();
    let url = first.url("away");
    let chain = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let mut dio = chain.dio(&session(None)).await;
    dio.store(Note { text: "1".into() }).expect("store");
    dio.commit().await.expect("commit");
    first.shutdown().await;

    // Not connected: a commit fails at once, and says it was not committed.
    let mut failed = false;
    for _ in 0..50 {
        let mut dio = chain.dio(&session(None)).await;
        dio.store(Note {
            text: "while away".into(),
        })
        .expect("store");
        let started = std::time::Instant::now();
        match dio.commit().await {
            Err(AteError::Commit(CommitError::Unreachable(_))) => {
                assert!(started.elapsed() < std::time::Duration::from_secs(5));
                failed = true;
                break;
            }
            // The link has not noticed yet (the send may even have gone out).
            Err(AteError::Commit(CommitError::OutcomeUnknown(_))) => {}
            other => panic!("expected a prompt error, got {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(failed);

    // The server comes back on the same address with the same data: the client reconnects,
    // resumes from its position, and commits again.
    let second = server_at(&id, Some(dir.path()), None, addr).await;
    let mut committed = false;
    for _ in 0..200 {
        let mut dio = chain.dio(&session(None)).await;
        dio.store(Note { text: "2".into() }).expect("store");
        if dio.commit().await.is_ok() {
            committed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(committed, "the client reconnected");
    chain.sync().await.expect("sync");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain.last_seq(), 2);
    drop(chain);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_only_client_appends_without_a_replica() {
    let id = identity();
    let server = server(&id, None, None).await;
    let url = server.url("produced");
    let full = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("a full replica opens");
    let mut dio = full.dio(&session(None)).await;
    dio.store(Note {
        text: "history".into(),
    })
    .expect("store");
    dio.commit().await.expect("commit");

    // The producer downloads nothing, and sees nothing, its own commits included.
    let producer = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id).commit_only())
        .await
        .expect("a commit-only chain opens");
    assert_eq!(producer.len(), 0);
    producer.sync().await.expect("nothing to sync");
    let mut keys = Vec::new();
    for i in 0..5 {
        let mut dio = producer.dio(&session(None)).await;
        keys.push(
            *dio.store(Note {
                text: format!("event {i}"),
            })
            .expect("store")
            .key(),
        );
        dio.commit().await.expect("durable on the server");
    }
    assert_eq!(producer.len(), 0, "a commit-only chain keeps no records");
    assert_eq!(producer.last_seq(), 0);

    // The server holds them, and the full replica receives them live.
    until_len(&full, 6).await;
    let dio = full.dio(&session(None)).await;
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            dio.load::<Note>(key).await.expect("load").text,
            format!("event {i}")
        );
    }
    drop((full, producer));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_fits_the_clients_frame_limit() {
    let id = identity();
    let server = server(&id, None, None).await;
    // Transactions of about 100 KiB each, committed on the server.
    let local = server
        .registry()
        .open(&ChainKey::from("big"))
        .await
        .expect("open");
    let session = session(None);
    for i in 0..6 {
        let mut dio = local.dio(&session).await;
        dio.store(Note {
            text: format!("{i}").repeat(100 << 10),
        })
        .expect("store");
        dio.commit().await.expect("commit");
    }
    let mut huge = local.dio(&session).await;
    huge.store(Note {
        text: "x".repeat(400 << 10),
    })
    .expect("store");

    // A client taking frames of 320 KiB: at most two of them a message, all of them arrive.
    let mut small = pinned(&id);
    small.connect.limits.max_frame_bytes = 320 << 10;
    let url = server.url("big");
    let replica = client(None, None)
        .await
        .open_url_with(&url, &small)
        .await
        .expect("opens through frames that fit");
    assert_eq!(replica.len(), 6);
    assert_eq!(replica.last_seq(), local.last_seq());
    drop(replica);

    // A transaction no frame of the client carries: the open fails and says why.
    huge.commit().await.expect("the server takes it locally");
    let err = client(None, None)
        .await
        .open_url_with(&url, &small)
        .await
        .expect_err("the replica cannot go past it");
    match err {
        OpenError::Net(NetError::Refused(reason)) => {
            assert!(reason.contains("more than a frame"), "{reason}");
        }
        other => panic!("expected a refusal naming the frame limit, got {other:?}"),
    }
    // A client with the default limit still opens.
    let replica = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("opens");
    assert_eq!(replica.len(), 7);
    drop((replica, local));
    server.shutdown().await;
}
