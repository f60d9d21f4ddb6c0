//! A man in the middle replays, reorders, drops, alters and injects WebSocket messages, during
//! the handshake and after it: each attempt ends the connection with its typed error.

use ate_runtime::net::{AcceptOptions, DEFAULT_MAX_FRAME, NetError, connect};
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{
    Act, Dir, Seen, Tamper, collecting_server, forward, man_in_the_middle, payload, pinned, within,
};

/// Messages to the server: the hello and the confirmation, then frames from number 0.
const FIRST_FRAME_TO_SERVER: usize = 2;
/// Messages to the client: hello, signature, confirmation, then frames.
const FIRST_FRAME_TO_CLIENT: usize = 3;

fn binary(bytes: Bytes) -> Act {
    Act::Send(Message::Binary(bytes))
}

fn flipped(bytes: &Bytes, at: usize) -> Bytes {
    let mut v = bytes.to_vec();
    v[at] ^= 0x20;
    v.into()
}

/// Tampers with one message to the server (`index` counts every binary message that way).
fn on_server_message(
    index: usize,
    mut f: impl FnMut(Bytes) -> Vec<Act> + Send + 'static,
) -> Tamper {
    Box::new(move |dir, n, m| {
        if dir == Dir::ToServer && n == index {
            f(m)
        } else {
            forward(dir, n, m)
        }
    })
}

/// The client connects through `tamper`, sends five frames and closes; what did the server
/// see?
async fn frames_through(tamper: Tamper, options: AcceptOptions) -> Seen {
    let (server, mut seen) = collecting_server(options, Vec::new()).await;
    let url = man_in_the_middle(server.addr, tamper).await;
    let (mut channel, _) = connect(&url, &pinned()).await.unwrap();
    for n in 0..5 {
        // The server may already have hung up: what it saw is what counts.
        if channel.send(&payload(n, 40)).await.is_err() {
            break;
        }
    }
    let _ = channel.close().await;
    seen.recv().await.unwrap()
}

fn assert_first_frames(s: &Seen, n: usize) {
    assert_eq!(s.frames.len(), n, "{s:?}");
    for (i, f) in s.frames.iter().enumerate() {
        assert_eq!(f[..], payload(i, 40)[..]);
    }
}

#[tokio::test]
async fn an_untouched_connection_delivers_everything() {
    within(async {
        let s = frames_through(Box::new(forward), AcceptOptions::default()).await;
        assert!(s.end.is_ok(), "{:?}", s.end);
        assert_eq!(s.path.as_deref(), Some("/db/through"));
        assert_first_frames(&s, 5);
    })
    .await;
}

#[tokio::test]
async fn a_replayed_frame_ends_the_connection() {
    within(async {
        let at = FIRST_FRAME_TO_SERVER + 2;
        let tamper = on_server_message(at, |m| vec![binary(m.clone()), binary(m)]);
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 3);
        assert!(matches!(
            s.end,
            Err(NetError::FrameOutOfOrder {
                expected: 3,
                got: 2
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn a_dropped_frame_ends_the_connection() {
    within(async {
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 2, |_| Vec::new());
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 2);
        assert!(matches!(
            s.end,
            Err(NetError::FrameOutOfOrder {
                expected: 2,
                got: 3
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn reordered_frames_end_the_connection() {
    within(async {
        let mut held = None;
        let tamper: Tamper = Box::new(move |dir, n, m| match (dir, n) {
            (Dir::ToServer, n) if n == FIRST_FRAME_TO_SERVER + 2 => {
                held = Some(m);
                Vec::new()
            }
            (Dir::ToServer, n) if n == FIRST_FRAME_TO_SERVER + 3 => {
                vec![binary(m), binary(held.take().unwrap())]
            }
            _ => forward(dir, n, m),
        });
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 2);
        assert!(matches!(
            s.end,
            Err(NetError::FrameOutOfOrder {
                expected: 2,
                got: 3
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn an_altered_frame_ends_the_connection() {
    within(async {
        // A bit of the ciphertext, of the tag, and of the kind byte: authentication fails.
        for at in [9, 30, 9 + 40 + 15, 0] {
            let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 1, move |m| {
                vec![binary(flipped(&m, at))]
            });
            let s = frames_through(tamper, AcceptOptions::default()).await;
            assert_first_frames(&s, 1);
            assert!(
                matches!(s.end, Err(NetError::FrameAuthFailed { counter: 1 })),
                "byte {at}: {:?}",
                s.end
            );
        }
        // The number: out of order before anything is decrypted.
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 1, |m| vec![binary(flipped(&m, 1))]);
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert!(matches!(
            s.end,
            Err(NetError::FrameOutOfOrder {
                expected: 1,
                got: 33
            })
        ));
        // Cut short, and cut below a header and tag.
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER, |m| {
            vec![binary(m.slice(..m.len() - 1))]
        });
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert!(matches!(
            s.end,
            Err(NetError::FrameAuthFailed { counter: 0 })
        ));
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER, |m| vec![binary(m.slice(..24))]);
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert!(matches!(s.end, Err(NetError::MalformedFrame { .. })));
    })
    .await;
}

#[tokio::test]
async fn injected_text_and_unauthenticated_closes_end_the_connection() {
    within(async {
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 1, |_| {
            vec![Act::Send(Message::Text("injected".into()))]
        });
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 1);
        assert!(matches!(s.end, Err(NetError::TextMessage)));

        // A WebSocket close in place of the rest of the stream is a cut, not an end.
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 1, |_| {
            vec![Act::Send(Message::Close(None))]
        });
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 1);
        assert!(
            matches!(s.end, Err(NetError::ConnectionClosed)),
            "{:?}",
            s.end
        );
    })
    .await;
}

#[tokio::test]
async fn a_frame_altered_on_its_way_to_the_client_ends_the_connection_both_halves() {
    within(async {
        let greeting = vec![b"first".to_vec(), b"second".to_vec()];
        let (server, _seen) = collecting_server(AcceptOptions::default(), greeting).await;
        let tamper: Tamper = Box::new(|dir, n, m| {
            if dir == Dir::ToClient && n == FIRST_FRAME_TO_CLIENT + 1 {
                vec![binary(flipped(&m, 12))]
            } else {
                forward(dir, n, m)
            }
        });
        let url = man_in_the_middle(server.addr, tamper).await;
        let (channel, _) = connect(&url, &pinned()).await.unwrap();
        let (mut sender, mut receiver) = channel.split();
        assert_eq!(&receiver.recv().await.unwrap().unwrap()[..], b"first");
        assert!(matches!(
            receiver.recv().await,
            Err(NetError::FrameAuthFailed { counter: 1 })
        ));
        assert!(matches!(receiver.recv().await, Err(NetError::Closed)));
        assert!(matches!(sender.send(b"x").await, Err(NetError::Closed)));
    })
    .await;
}

#[tokio::test]
async fn oversized_frames_are_refused_from_their_header() {
    within(async {
        // A header announcing 1 GiB, and no payload behind it: refused at once, nothing
        // allocated or awaited.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER + 1, move |_| {
            vec![Act::RawToServer(header.clone())]
        });
        let s = frames_through(tamper, AcceptOptions::default()).await;
        assert_first_frames(&s, 1);
        assert!(
            matches!(
                s.end,
                Err(NetError::FrameTooLarge { len, max })
                    if len == (1 << 30) - 25 && max == DEFAULT_MAX_FRAME
            ),
            "{:?}",
            s.end
        );

        // A whole message over a small limit.
        let mut options = AcceptOptions::default();
        options.limits.max_frame_bytes = 100;
        let tamper = on_server_message(FIRST_FRAME_TO_SERVER, |_| {
            vec![binary(vec![0u8; 2000].into())]
        });
        let s = frames_through(tamper, options).await;
        assert!(matches!(
            s.end,
            Err(NetError::FrameTooLarge {
                len: 1975,
                max: 100
            })
        ));
    })
    .await;
}

/// The client's and the server's results when a handshake message is altered.
async fn handshake_through(tamper: Tamper) -> (Result<(), NetError>, Seen) {
    let (server, mut seen) = collecting_server(AcceptOptions::default(), Vec::new()).await;
    let url = man_in_the_middle(server.addr, tamper).await;
    let client = match connect(&url, &pinned()).await {
        Ok((mut channel, _)) => {
            // The server may refuse the confirmation after the client is done: the channel
            // then ends without a close.
            match channel.recv().await {
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    (client, seen.recv().await.unwrap())
}

fn on_message(dir: Dir, index: usize, at: usize) -> Tamper {
    Box::new(move |d, n, m| {
        if d == dir && n == index {
            vec![binary(flipped(&m, at.min(m.len() - 1)))]
        } else {
            forward(d, n, m)
        }
    })
}

#[tokio::test]
async fn an_altered_handshake_is_refused() {
    within(async {
        // The client hello: features (a downgrade), its frame limit, its KEM key. The server
        // signs what it received; the client checks against what it sent.
        for at in [12, 16, 40] {
            let (client, _) = handshake_through(on_message(Dir::ToServer, 0, at)).await;
            assert!(
                matches!(client, Err(NetError::BadServerSignature)),
                "client hello byte {at}: {client:?}"
            );
        }
        // The server hello: version, features, frame limit, identity key, encapsulation.
        for at in [5, 8, 16, 100, 2000] {
            let (client, _) = handshake_through(on_message(Dir::ToClient, 0, at)).await;
            assert!(
                matches!(
                    client,
                    Err(NetError::BadServerSignature | NetError::MalformedHandshake { .. })
                ),
                "server hello byte {at}: {client:?}"
            );
        }
        // The signature.
        let (client, _) = handshake_through(on_message(Dir::ToClient, 1, 100)).await;
        assert!(
            matches!(client, Err(NetError::BadServerSignature)),
            "{client:?}"
        );
        // The server's confirmation.
        let (client, _) = handshake_through(on_message(Dir::ToClient, 2, 10)).await;
        assert!(
            matches!(client, Err(NetError::KeyConfirmationFailed)),
            "{client:?}"
        );
        // The client's confirmation: the server refuses, the client's channel ends unclean.
        let (client, seen) = handshake_through(on_message(Dir::ToServer, 1, 10)).await;
        assert!(
            matches!(seen.end, Err(NetError::KeyConfirmationFailed)),
            "{seen:?}"
        );
        assert!(
            matches!(client, Err(NetError::ConnectionClosed)),
            "{client:?}"
        );
    })
    .await;
}
