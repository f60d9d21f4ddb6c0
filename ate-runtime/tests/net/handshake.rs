//! The handshake on the wire: byte layouts and key schedule as `docs/PROTOCOL.md` states them,
//! version negotiation, hostile hellos and stalled peers.

use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use ate_runtime::crypto::{Hash, KeySize, PrivateEncryptKey, SignAlgorithm, Signature};
use ate_runtime::net::{
    AcceptOptions, ConnectOptions, DEFAULT_MAX_FRAME, NetError, ServerTrust, accept, connect,
};
use futures_util::{SinkExt, StreamExt};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use sha3::Sha3_256;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{IDENTITY, Seen, collecting_server, pinned, within};

type RawWs = WebSocketStream<TcpStream>;

async fn raw_client(addr: std::net::SocketAddr, path: &str) -> RawWs {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://{addr}{path}"), tcp)
        .await
        .unwrap()
        .0
}

async fn next_binary(ws: &mut RawWs) -> Vec<u8> {
    match ws.next().await {
        Some(Ok(Message::Binary(b))) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A client hello as `docs/PROTOCOL.md` lays it out.
fn client_hello(
    versions: &[u16],
    features: u64,
    max_frame: u32,
    kem: &PrivateEncryptKey,
) -> Vec<u8> {
    let mut m = b"ATEn\x01".to_vec();
    m.push(versions.len() as u8);
    for v in versions {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&features.to_le_bytes());
    m.extend_from_slice(&max_frame.to_le_bytes());
    m.push(kem.algorithm().as_u8());
    let key = kem.public_key().as_bytes();
    m.extend_from_slice(&(key.len() as u16).to_le_bytes());
    m.extend_from_slice(key);
    m
}

fn transcript(messages: &[&[u8]]) -> Hash {
    let mut parts: Vec<&[u8]> = vec![b"ATE/net/v1/transcript"];
    parts.extend_from_slice(messages);
    Hash::of_parts(&parts)
}

fn hmac(key: &[u8], th: &Hash) -> Vec<u8> {
    let mut m = <Hmac<Sha3_256> as Mac>::new_from_slice(key).unwrap();
    m.update(th.as_bytes());
    m.finalize().into_bytes().to_vec()
}

struct Direction {
    aead: Aes256Gcm,
    iv: [u8; 12],
}

impl Direction {
    fn nonce(&self, counter: u64) -> [u8; 12] {
        let mut n = self.iv;
        for (i, b) in counter.to_le_bytes().iter().enumerate() {
            n[4 + i] ^= b;
        }
        n
    }

    fn seal(&self, kind: u8, counter: u64, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![kind];
        frame.extend_from_slice(&counter.to_le_bytes());
        let mut body = payload.to_vec();
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&self.nonce(counter)), &frame, &mut body)
            .unwrap();
        frame.extend_from_slice(&body);
        frame.extend_from_slice(&tag);
        frame
    }

    fn open(&self, frame: &[u8]) -> (u8, u64, Vec<u8>) {
        let counter = u64_at(frame, 1);
        let mut body = frame[9..frame.len() - 16].to_vec();
        let tag = aes_gcm::Tag::from_slice(&frame[frame.len() - 16..]);
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&self.nonce(counter)),
                &frame[..9],
                &mut body,
                tag,
            )
            .unwrap();
        (frame[0], counter, body)
    }
}

#[tokio::test]
async fn a_client_written_from_the_protocol_document_alone() {
    within(async {
        let greeting = vec![b"from the server".to_vec()];
        let (server, mut seen) = collecting_server(AcceptOptions::default(), greeting).await;
        let mut ws = raw_client(server.addr, "/db/spec").await;
        let kem = PrivateEncryptKey::generate(KeySize::Bit128);

        // Versions 1 and 9: the server speaks 1 only, and chooses it.
        let ch = client_hello(&[1, 9], 0b101, 4096, &kem);
        ws.send(Message::Binary(ch.clone().into())).await.unwrap();

        let sh = next_binary(&mut ws).await;
        assert_eq!(&sh[..5], b"ATEn\x02");
        assert_eq!(u16_at(&sh, 5), 1, "version");
        assert_eq!(u64_at(&sh, 7), 0, "features: the server offers none");
        assert_eq!(u32_at(&sh, 15) as usize, DEFAULT_MAX_FRAME);
        assert_eq!(sh[19], SignAlgorithm::Falcon512.as_u8());
        assert_eq!(u16_at(&sh, 20), 897);
        assert_eq!(&sh[22..22 + 897], IDENTITY.public_key().as_bytes());
        assert_eq!(u16_at(&sh, 919), 699);
        assert_eq!(sh.len(), 921 + 699);
        let encapsulation = &sh[921..];

        let sa = next_binary(&mut ws).await;
        assert_eq!(&sa[..5], b"ATEn\x03");
        assert_eq!(sa[5], SignAlgorithm::Falcon512.as_u8());
        assert_eq!(usize::from(u16_at(&sa, 6)), sa.len() - 8);
        let mut signed = b"ATE/net/v1/server-signature".to_vec();
        signed.extend_from_slice(transcript(&[&ch, &sh]).as_bytes());
        IDENTITY
            .public_key()
            .verify(
                &signed,
                &Signature::new(SignAlgorithm::Falcon512, sa[8..].to_vec()),
            )
            .unwrap();

        let th = transcript(&[&ch, &sh, &sa]);
        let secret = kem.decapsulate(encapsulation).unwrap();
        let hk = Hkdf::<Sha3_256>::new(Some(th.as_bytes()), secret.expose());
        let okm = |label: &str, len: usize| {
            let mut out = vec![0; len];
            hk.expand(label.as_bytes(), &mut out).unwrap();
            out
        };
        let direction = |way: &str| Direction {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&okm(
                &format!("ATE/net/v1 {way} key"),
                32,
            ))),
            iv: okm(&format!("ATE/net/v1 {way} iv"), 12).try_into().unwrap(),
        };
        let (to_server, to_client) = (direction("client-to-server"), direction("server-to-client"));

        let sf = next_binary(&mut ws).await;
        assert_eq!(&sf[..5], b"ATEn\x04");
        assert_eq!(
            sf[5..],
            hmac(&okm("ATE/net/v1 server finished", 32), &th)[..]
        );

        let th = transcript(&[&ch, &sh, &sa, &sf]);
        let mut cf = b"ATEn\x05".to_vec();
        cf.extend_from_slice(&hmac(&okm("ATE/net/v1 client finished", 32), &th));
        ws.send(Message::Binary(cf.into())).await.unwrap();

        let frame = next_binary(&mut ws).await;
        assert_eq!(frame.len(), 9 + 15 + 16);
        assert_eq!(to_client.open(&frame), (1, 0, b"from the server".to_vec()));

        for (kind, counter, payload) in [(1, 0, &b"from the client"[..]), (1, 1, b""), (2, 2, b"")]
        {
            let frame = to_server.seal(kind, counter, payload);
            ws.send(Message::Binary(frame.into())).await.unwrap();
        }
        let s = seen.recv().await.unwrap();
        assert!(s.end.is_ok(), "{:?}", s.end);
        assert_eq!(s.path.as_deref(), Some("/db/spec"));
        assert_eq!(s.frames.len(), 2);
        assert_eq!(&s.frames[0][..], b"from the client");
        assert!(s.frames[1].is_empty());
    })
    .await;
}

#[tokio::test]
async fn no_common_version_on_the_wire_is_a_refusal_then_a_typed_error() {
    within(async {
        let (server, mut seen) = collecting_server(AcceptOptions::default(), Vec::new()).await;
        let mut ws = raw_client(server.addr, "/db/v").await;
        let kem = PrivateEncryptKey::generate(KeySize::Bit128);
        let ch = client_hello(&[7, 9], 0, 4096, &kem);
        ws.send(Message::Binary(ch.into())).await.unwrap();
        // Refusal: reason 1 (no common version), the server's one version, 1.
        assert_eq!(next_binary(&mut ws).await, b"ATEn\x06\x01\x01\x01\x00");
        let s = seen.recv().await.unwrap();
        assert!(matches!(
            s.end,
            Err(NetError::NoCommonVersion { ours, theirs }) if ours == [1] && theirs == [7, 9]
        ));
    })
    .await;
}

fn assert_refused_hello(s: &Seen) {
    assert!(s.path.is_none());
    assert!(
        matches!(
            s.end,
            Err(NetError::MalformedHandshake { .. }
                | NetError::UnsupportedAlgorithm { .. }
                | NetError::TextMessage)
        ),
        "{:?}",
        s.end
    );
}

#[tokio::test]
async fn random_bytes_as_a_hello_are_typed_errors_and_the_server_goes_on() {
    within(async {
        let (server, mut seen) = collecting_server(AcceptOptions::default(), Vec::new()).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for round in 0..40 {
            let len = rng.random_range(0..4096);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if round % 2 == 1 {
                // Past the magic and the type byte, into the hello's fields.
                let mut hello = b"ATEn\x01".to_vec();
                hello.append(&mut bytes);
                bytes = hello;
            }
            let mut ws = raw_client(server.addr, "/db/r").await;
            ws.send(Message::Binary(bytes.into())).await.unwrap();
            assert_refused_hello(&seen.recv().await.unwrap());
        }
        let mut ws = raw_client(server.addr, "/db/r").await;
        ws.send(Message::Text("hello".into())).await.unwrap();
        assert_refused_hello(&seen.recv().await.unwrap());

        // Not even HTTP.
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"\x16\x03\x01 binary garbage\r\n\r\n")
            .await
            .unwrap();
        let s = seen.recv().await.unwrap();
        assert!(
            matches!(s.end, Err(NetError::WebSocket { .. })),
            "{:?}",
            s.end
        );

        // The server still serves.
        let (mut channel, _) = connect(&server.url("/db/after"), &pinned()).await.unwrap();
        channel.send(b"fine").await.unwrap();
        channel.close().await.unwrap();
        let s = seen.recv().await.unwrap();
        assert!(s.end.is_ok());
        assert_eq!(&s.frames[0][..], b"fine");
    })
    .await;
}

#[tokio::test]
async fn a_stalled_handshake_times_out_without_holding_up_another() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("ws://{addr}/db/stall");

        // A client that connects and says nothing, accepted with a long timeout.
        let silent = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut long = AcceptOptions::default();
        long.limits.handshake_timeout = Duration::from_secs(3600);
        let first =
            tokio::spawn(async move { accept(stream, &IDENTITY, &long).await.map(|a| a.0) });

        // A client that upgrades to WebSocket and then says nothing, with a short timeout.
        let upgrade_url = url.clone();
        let upgrading = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tokio_tungstenite::client_async(upgrade_url, tcp)
                .await
                .map(|r| r.0)
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut short = AcceptOptions::default();
        short.limits.handshake_timeout = Duration::from_millis(200);
        let second =
            tokio::spawn(async move { accept(stream, &IDENTITY, &short).await.map(|a| a.0) });

        // A real client, accepted while the first is still waiting.
        let client = tokio::spawn({
            let url = url.clone();
            async move { connect(&url, &pinned()).await }
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (path, mut served) = accept(stream, &IDENTITY, &AcceptOptions::default())
            .await
            .unwrap();
        assert_eq!(path, "/db/stall");
        let (mut channel, _) = client.await.unwrap().unwrap();
        channel.send(b"not held up").await.unwrap();
        assert_eq!(&served.recv().await.unwrap().unwrap()[..], b"not held up");
        assert!(!first.is_finished());

        assert!(matches!(
            second.await.unwrap(),
            Err(NetError::HandshakeTimeout(d)) if d == Duration::from_millis(200)
        ));
        // (Its upgrade may or may not have completed before the timeout: either way it is
        // over now.)
        let _ = upgrading.await.unwrap();
        drop(silent);
        assert!(first.await.unwrap().is_err());
    })
    .await;
}

#[tokio::test]
async fn a_client_facing_a_silent_or_foreign_server_gets_a_typed_error() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            // The first connection gets no answer at all; the second an HTTP error.
            let (silent, _) = listener.accept().await.unwrap();
            held.push(silent);
            let (mut http, _) = listener.accept().await.unwrap();
            let _ = http
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
            held.push(http);
            held
        });
        let mut options = pinned();
        options.limits.handshake_timeout = Duration::from_millis(300);
        let url = format!("ws://{addr}/db/x");
        assert!(matches!(
            connect(&url, &options).await,
            Err(NetError::HandshakeTimeout(_))
        ));
        assert!(matches!(
            connect(&url, &pinned()).await,
            Err(NetError::WebSocket { detail }) if detail.contains("404")
        ));
        drop(keep.await.unwrap());

        // Nothing listens on a port just freed.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let options = ConnectOptions::new(ServerTrust::Pinned(IDENTITY.hash()));
        assert!(matches!(
            connect(&format!("ws://127.0.0.1:{port}/db/x"), &options).await,
            Err(NetError::Io(_))
        ));
        assert!(matches!(
            connect("http://127.0.0.1/db/x", &options).await,
            Err(NetError::InvalidUrl { .. })
        ));
    })
    .await;
}
