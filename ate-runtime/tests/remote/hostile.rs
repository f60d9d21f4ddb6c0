//! Hostile clients (R7): what they send after a valid handshake ends their own connection or
//! is refused with a typed reason, appends nothing, and other clients carry on.

use ate_runtime::net::wire::{self, ClientMsg, Refusal, ServerMsg, WireLimits};
use ate_runtime::net::{Channel, ConnectOptions, ServerTrust, connect};
use bytes::Bytes;

use super::common::*;

async fn raw(url: &str, id: &ate_runtime::net::ServerIdentity) -> Channel {
    let (mut ch, _) = connect(url, &ConnectOptions::new(ServerTrust::Pinned(id.hash())))
        .await
        .expect("handshake");
    let opened = ch.recv().await.expect("recv").expect("a message");
    assert!(matches!(
        wire::decode_server(&opened, &WireLimits::default()),
        Ok(ServerMsg::Opened { .. })
    ));
    ch
}

/// Reads until the server ends the connection; returns the Goodbye's reason, if one came.
async fn goodbye(ch: &mut Channel) -> Option<String> {
    let mut reason = None;
    while let Ok(Some(b)) = ch.recv().await {
        if let Ok(ServerMsg::Goodbye { reason: r }) =
            wire::decode_server(&b, &WireLimits::default())
        {
            reason = Some(r);
        }
    }
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_end_only_their_connection_and_append_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let root = ate_runtime::crypto::PrivateSignKey::generate(ate_runtime::crypto::KeySize::Bit128);
    let server = server(&id, Some(dir.path()), Some(&root)).await;
    let url = server.url("hostile");
    let good = client(None, Some(&root))
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("open");
    let mut dio = good.dio(&session(Some(&root))).await;
    dio.store(Note {
        text: "before".into(),
    })
    .expect("store");
    dio.commit().await.expect("commit");
    let log = dir.path().join("hostile.log");
    let size = std::fs::metadata(&log).expect("log").len();

    let mut deep = vec![0x91u8; 100_000];
    deep.push(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "random bytes",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("deep nesting", deep),
        (
            "a lying length",
            vec![0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        ),
        (
            "an array claiming 2^32 items",
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        ),
        ("trailing bytes", {
            let mut m = wire::encode(&ClientMsg::Subscribe { from: 1 });
            m.push(0);
            m
        }),
        (
            "a server message",
            wire::encode(&ServerMsg::CaughtUp { seq: 1 }),
        ),
        (
            "subscribing beyond the chain",
            wire::encode(&ClientMsg::Subscribe { from: 1_000 }),
        ),
    ];
    for (what, bytes) in cases {
        let mut ch = raw(&url, &id).await;
        ch.send(&bytes).await.expect("send");
        let reason = goodbye(&mut ch).await;
        assert!(
            reason.is_some(),
            "{what}: the server says why it ends the connection"
        );
    }
    // Subscribing twice.
    let mut ch = raw(&url, &id).await;
    ch.send(&wire::encode(&ClientMsg::Subscribe { from: 1 }))
        .await
        .expect("send");
    ch.send(&wire::encode(&ClientMsg::Subscribe { from: 1 }))
        .await
        .expect("send");
    assert!(goodbye(&mut ch).await.expect("reason").contains("twice"));

    // Transactions that are not transactions, or forged: refused with a reason, connection kept.
    let mut ch = raw(&url, &id).await;
    let forged = {
        // A transaction signed by the root, with one byte of its event's body changed.
        let mut d = good.dio(&session(Some(&root))).await;
        d.store(Note {
            text: "forged".into(),
        })
        .expect("store");
        let sealed = d.seal().await.expect("seal").expect("something staged");
        let mut b = sealed.to_bytes().to_vec();
        let at = b
            .windows(6)
            .position(|w| w == b"forged")
            .expect("the body is in the clear");
        b[at] ^= 1;
        Bytes::from(b)
    };
    let txs = [
        Bytes::from_static(b"not a transaction"),
        Bytes::new(),
        forged,
    ];
    for (i, tx) in txs.into_iter().enumerate() {
        let id = i as u64 + 1;
        ch.send(&wire::encode(&ClientMsg::Commit { id, tx }))
            .await
            .expect("send");
        let answer = ch.recv().await.expect("recv").expect("answer");
        match wire::decode_server(&answer, &WireLimits::default()).expect("decodes") {
            ServerMsg::Refused { id: got, reason } => {
                assert_eq!(got, id);
                assert!(!matches!(reason, Refusal::Unavailable(_)), "{reason:?}");
            }
            other => panic!("transaction {i}: expected a refusal, got {other:?}"),
        }
    }
    drop(ch);

    // Nothing was appended; the good client still works.
    assert_eq!(std::fs::metadata(&log).expect("log").len(), size);
    let mut dio = good.dio(&session(Some(&root))).await;
    dio.store(Note {
        text: "after".into(),
    })
    .expect("store");
    dio.commit().await.expect("the good client carries on");
    assert_eq!(good.len(), 2);
    drop(good);
    server.shutdown().await;
}
