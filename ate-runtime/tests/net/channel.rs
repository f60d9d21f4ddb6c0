//! Frames both ways, split halves, and how a channel ends.

use ate_runtime::net::{
    AcceptOptions, DEFAULT_MAX_FRAME, FRAME_OVERHEAD, NetError, PROTOCOL_VERSIONS, connect,
};

use crate::common::{IDENTITY, collecting_server, echo_server, payload, pinned, within};

#[tokio::test]
async fn many_frames_both_ways_including_large_ones() {
    within(async {
        let (server, mut ends) = echo_server(AcceptOptions::default()).await;
        let (mut channel, info) = connect(&server.url("/db/echo"), &pinned()).await.unwrap();
        assert_eq!(info.identity, IDENTITY.hash());
        assert_eq!(info.version, *PROTOCOL_VERSIONS.last().unwrap());
        assert_eq!(channel.version(), info.version);
        assert!(!info.first_contact);
        assert_eq!(info.server, format!("127.0.0.1:{}", server.addr.port()));
        assert_eq!(channel.max_send_bytes(), DEFAULT_MAX_FRAME);

        // One at a time, of many sizes (frames at the limit: below, with a smaller limit; the
        // engine's AES-GCM is slow in unoptimized test builds).
        let sizes = [0, 1, 2, 15, 16, 17, 1000, 65_536, 1 << 20];
        for (n, &size) in sizes.iter().enumerate() {
            let sent = payload(n, size);
            channel.send(&sent).await.unwrap();
            let got = channel.recv().await.unwrap().unwrap();
            assert_eq!(got.len(), size);
            assert!(got[..] == sent[..], "frame {n} of {size} bytes");
        }
        // Many in a row, then their echoes.
        for n in 0..500 {
            channel.send(&payload(n, n % 700)).await.unwrap();
        }
        for n in 0..500 {
            assert_eq!(channel.recv().await.unwrap().unwrap(), payload(n, n % 700));
        }
        // One byte over the server's limit is refused here, nothing is sent, and the channel
        // goes on.
        let max = DEFAULT_MAX_FRAME;
        assert!(matches!(
            channel.send(&vec![7; max + 1]).await,
            Err(NetError::FrameTooLarge { len, max: m }) if len == max + 1 && m == max
        ));
        channel.send(b"still here").await.unwrap();
        assert_eq!(&channel.recv().await.unwrap().unwrap()[..], b"still here");

        channel.close().await.unwrap();
        assert_eq!(channel.recv().await.unwrap(), None);
        assert!(matches!(channel.send(b"x").await, Err(NetError::Closed)));
        assert_eq!(ends.recv().await.unwrap().unwrap(), "/db/echo");
    })
    .await;
}

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    within(async {
        let (server, mut ends) = echo_server(AcceptOptions::default()).await;
        let (channel, _) = connect(&server.url("/db/split"), &pinned()).await.unwrap();
        let (mut sender, mut receiver) = channel.split();
        const N: usize = 2000;
        let sending = tokio::spawn(async move {
            for n in 0..N {
                let frame = payload(n, 1 + n % 3000);
                if n % 10 == 9 {
                    sender.send(&frame).await.unwrap();
                } else {
                    sender.feed(&frame).await.unwrap();
                }
            }
            sender.flush().await.unwrap();
            sender
        });
        let receiving = tokio::spawn(async move {
            for n in 0..N {
                let got = receiver.recv().await.unwrap().unwrap();
                assert!(got[..] == payload(n, 1 + n % 3000)[..], "frame {n}");
            }
            receiver
        });
        let mut sender = sending.await.unwrap();
        let mut receiver = receiving.await.unwrap();
        sender.close().await.unwrap();
        sender.close().await.unwrap();
        assert_eq!(receiver.recv().await.unwrap(), None);
        assert_eq!(receiver.recv().await.unwrap(), None);
        assert_eq!(ends.recv().await.unwrap().unwrap(), "/db/split");
    })
    .await;
}

#[tokio::test]
async fn frames_sent_before_a_close_arrive_then_the_end() {
    within(async {
        let greeting = vec![b"one".to_vec(), b"two".to_vec()];
        let (server, mut seen) = collecting_server(AcceptOptions::default(), greeting).await;
        let (mut channel, _) = connect(&server.url("/db/c"), &pinned()).await.unwrap();
        for n in 0..3 {
            channel.send(&payload(n, 10)).await.unwrap();
        }
        channel.close().await.unwrap();
        let s = seen.recv().await.unwrap();
        assert_eq!(s.path.as_deref(), Some("/db/c"));
        assert!(s.end.is_ok(), "{:?}", s.end);
        assert_eq!(s.frames.len(), 3);
        for (n, f) in s.frames.iter().enumerate() {
            assert_eq!(f[..], payload(n, 10)[..]);
        }
        // What the server sent before it saw the close still arrives.
        assert_eq!(&channel.recv().await.unwrap().unwrap()[..], b"one");
        assert_eq!(&channel.recv().await.unwrap().unwrap()[..], b"two");
        assert_eq!(channel.recv().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_connection_dropped_without_a_close_is_an_error_not_an_end() {
    within(async {
        let (server, mut seen) = collecting_server(AcceptOptions::default(), Vec::new()).await;
        let (mut channel, _) = connect(&server.url("/db/d"), &pinned()).await.unwrap();
        channel.send(b"only").await.unwrap();
        drop(channel);
        let s = seen.recv().await.unwrap();
        assert_eq!(s.frames.len(), 1);
        assert!(
            matches!(s.end, Err(NetError::ConnectionClosed)),
            "{:?}",
            s.end
        );
    })
    .await;
}

#[tokio::test]
async fn frames_up_to_the_limit_pass_and_the_limit_is_told_to_the_peer() {
    within(async {
        for max in [1000, 256 << 10] {
            let mut options = AcceptOptions::default();
            options.limits.max_frame_bytes = max;
            let (server, _ends) = echo_server(options).await;
            let (mut channel, _) = connect(&server.url("/db/small"), &pinned()).await.unwrap();
            assert_eq!(channel.max_send_bytes(), max);
            assert!(matches!(
                channel.send(&vec![0; max + 1]).await,
                Err(NetError::FrameTooLarge { len, max: m }) if len == max + 1 && m == max
            ));
            for (n, size) in [max - 1, max].into_iter().enumerate() {
                let sent = payload(n, size);
                channel.send(&sent).await.unwrap();
                assert!(channel.recv().await.unwrap().unwrap()[..] == sent[..]);
            }
        }
        assert_eq!(FRAME_OVERHEAD, 25);
    })
    .await;
}
