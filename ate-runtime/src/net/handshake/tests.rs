//! The handshake over in-memory pipes: negotiation, refusals, and agreement on keys.

use std::sync::LazyLock;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::*;
use crate::crypto::{AlgorithmKind, KeySize};
use crate::net::channel::Channel;
use crate::net::ws::{self, BoxIo};

static IDENTITY: LazyLock<ServerIdentity> =
    LazyLock::new(|| ServerIdentity::generate(KeySize::Bit128));

fn offer(versions: &[u16], features: u64) -> Offer {
    Offer {
        versions: versions.to_vec(),
        features: Features::from_bits(features),
        max_frame: 1 << 20,
        max_message: 16 << 10,
    }
}

async fn pipe() -> (Ws, Ws) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let config = Some(ws::config(16 << 10));
    let a = WebSocketStream::from_raw_socket(Box::new(a) as BoxIo, Role::Client, config).await;
    let b = WebSocketStream::from_raw_socket(Box::new(b) as BoxIo, Role::Server, config).await;
    (a, b)
}

type Outcome = (
    Result<(Established, PublicSignKey), NetError>,
    Result<Established, NetError>,
);

async fn run(client_offer: Offer, server_offer: Offer) -> Outcome {
    let (c, s) = pipe().await;
    let server = tokio::spawn(async move { server(s, &server_offer, &IDENTITY).await });
    let client = client(c, &client_offer, KemAlgorithm::NtruHps2048509, |_| Ok(())).await;
    (client, server.await.unwrap())
}

#[tokio::test]
async fn the_highest_common_version_and_the_common_features_are_agreed() {
    let (client, server) = run(offer(&[1, 2, 3], 0b0111), offer(&[2, 3, 5], 0b1110)).await;
    let (client, key) = client.unwrap();
    let server = server.unwrap();
    assert_eq!(key, *IDENTITY.public_key());
    assert_eq!((client.version, server.version), (3, 3));
    assert_eq!(client.features, Features::from_bits(0b0110));
    assert_eq!(server.features, Features::from_bits(0b0110));
    assert_eq!(client.peer_max_frame, 1 << 20);
    assert_eq!(server.peer_max_frame, 1 << 20);

    // Both derived the same keys: a frame sealed by one opens at the other, both ways.
    let mut c = Channel::new(client, Role::Client, 1 << 20);
    let mut s = Channel::new(server, Role::Server, 1 << 20);
    c.send(b"to the server").await.unwrap();
    assert_eq!(&s.recv().await.unwrap().unwrap()[..], b"to the server");
    s.send(b"to the client").await.unwrap();
    assert_eq!(&c.recv().await.unwrap().unwrap()[..], b"to the client");
}

#[test]
fn negotiation_picks_the_highest_common_version() {
    assert_eq!(negotiate(&[1, 2, 3], &[2, 3, 5]), Some(3));
    assert_eq!(negotiate(&[1], &[1]), Some(1));
    assert_eq!(negotiate(&[1, 4], &[2, 3]), None);
    assert_eq!(negotiate(&[], &[1]), None);
}

#[tokio::test]
async fn no_common_version_is_a_typed_error_on_both_sides() {
    let (client, server) = run(offer(&[1, 2], 0), offer(&[3, 4], 0)).await;
    assert!(matches!(
        client,
        Err(NetError::NoCommonVersion { ours, theirs }) if ours == [1, 2] && theirs == [3, 4]
    ));
    assert!(matches!(
        server,
        Err(NetError::NoCommonVersion { ours, theirs }) if ours == [3, 4] && theirs == [1, 2]
    ));
}

#[tokio::test]
async fn a_refused_identity_stops_the_client_before_it_confirms() {
    let (c, s) = pipe().await;
    let server_offer = offer(&[1], 0);
    let server = tokio::spawn(async move { server(s, &server_offer, &IDENTITY).await });
    let client = client(c, &offer(&[1], 0), KemAlgorithm::NtruHps2048509, |_| {
        Err(NetError::Closed)
    })
    .await;
    assert!(matches!(client, Err(NetError::Closed)));
    // The client's side of the pipe is gone: the server never gets a confirmation.
    assert!(matches!(
        server.await.unwrap(),
        Err(NetError::ConnectionClosed)
    ));
}

#[tokio::test]
async fn every_kem_suite_completes() {
    for kem in KemAlgorithm::ALL.iter().copied() {
        let (c, s) = pipe().await;
        let server_offer = offer(&[1], 0);
        let server = tokio::spawn(async move { server(s, &server_offer, &IDENTITY).await });
        let client = client(c, &offer(&[1], 0), kem, |_| Ok(())).await;
        assert!(client.is_ok(), "{kem}: {client:?}");
        assert!(server.await.unwrap().is_ok());
    }
}

/// A client that sends raw bytes as its first message.
async fn raw_client_hello(bytes: Vec<u8>) -> (Option<Message>, Result<Established, NetError>) {
    let (mut c, s) = pipe().await;
    let server_offer = offer(&[1], 0);
    let server = tokio::spawn(async move { server(s, &server_offer, &IDENTITY).await });
    c.send(WsMessage::Binary(bytes.into())).await.unwrap();
    let reply = match c.next().await {
        Some(Ok(WsMessage::Binary(b))) => Some(Message::decode(&b).unwrap()),
        _ => None,
    };
    (reply, server.await.unwrap())
}

#[tokio::test]
async fn an_unknown_kem_is_refused_with_a_reason() {
    let kem = crate::crypto::PrivateEncryptKey::generate(KeySize::Bit128);
    let mut hello = Message::ClientHello(ClientHello {
        versions: vec![1],
        features: Features::NONE,
        max_frame: 1024,
        kem: kem.as_public_key(),
    })
    .encode();
    // magic 4, type 1, count 1, one version 2, features 8, max frame 4: the KEM id is at 20.
    hello[20] = 99;
    let (reply, server) = raw_client_hello(hello).await;
    assert!(matches!(
        server,
        Err(NetError::UnsupportedAlgorithm {
            kind: AlgorithmKind::Kem,
            id: 99
        })
    ));
    assert!(matches!(
        reply,
        Some(Message::Refusal(Refusal {
            reason: RefusalReason::UnsupportedKem,
            ..
        }))
    ));
}

#[tokio::test]
async fn garbage_and_out_of_turn_messages_are_typed_errors() {
    let (reply, server) = raw_client_hello(b"GET / HTTP/1.1\r\n\r\n".to_vec()).await;
    assert!(reply.is_none());
    assert!(matches!(server, Err(NetError::MalformedHandshake { .. })));

    let finished = Message::ClientFinished([0; 32]).encode();
    let (_, server) = raw_client_hello(finished).await;
    assert!(
        matches!(server, Err(NetError::MalformedHandshake { detail }) if detail.contains("expected the client hello"))
    );

    let (_, server) = raw_client_hello(vec![0; 20 << 10]).await;
    assert!(matches!(
        server,
        Err(NetError::HandshakeMessageTooLarge { .. })
    ));
}

#[tokio::test]
async fn a_server_answering_garbage_is_a_typed_error() {
    let (c, mut s) = pipe().await;
    let fake = tokio::spawn(async move {
        let _hello = s.next().await;
        s.send(WsMessage::Binary(vec![0x41; 100].into()))
            .await
            .unwrap();
        s
    });
    let r = client(c, &offer(&[1], 0), KemAlgorithm::NtruHps2048509, |_| Ok(())).await;
    assert!(matches!(r, Err(NetError::MalformedHandshake { .. })));
    drop(fake.await);

    let (c, mut s) = pipe().await;
    let fake = tokio::spawn(async move {
        let _hello = s.next().await;
        s.send(WsMessage::Text("hello".into())).await.unwrap();
        s
    });
    let r = client(c, &offer(&[1], 0), KemAlgorithm::NtruHps2048509, |_| Ok(())).await;
    assert!(matches!(r, Err(NetError::TextMessage)));
    drop(fake.await);
}
