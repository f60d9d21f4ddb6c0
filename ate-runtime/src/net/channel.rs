//! The secure channel: AES-256-GCM frames over binary WebSocket messages.
//!
//! ```text
//! size  field
//! 1     kind: 1 = data, 2 = close
//! 8     frame number (u64 LE): 0 for the first frame of a direction, then +1
//! L     AES-256-GCM ciphertext of the payload (L = payload length; the close frame has none)
//! 16    GCM tag
//! ```
//!
//! Each direction has its own key and nonce base (the handshake's key schedule). The nonce is
//! the direction's 12-byte base with the frame number XORed into its last 8 bytes
//! (little-endian), so a key never sees a nonce twice. The 9 header bytes are the associated
//! data: the kind and the number are authenticated. A receiver takes frames strictly in order:
//! a number other than the one due (a replayed, reordered or dropped frame) or a failed tag
//! ends the connection with a typed error. The close frame authenticates the end of the
//! stream, so a connection cut short by someone in between is an error, not a clean end.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use zeroize::Zeroizing;

use crate::crypto::TAG_LEN;

use super::Features;
use super::error::NetError;
use super::handshake::Established;
use super::handshake::keys::{DirectionKeys, IV_LEN};
use super::ws::{Phase, Ws, map_error};

/// Bytes before a frame's ciphertext: the kind and the frame number.
pub(crate) const FRAME_HEADER_LEN: usize = 9;
/// Bytes a frame adds to its payload: the header and the GCM tag.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + TAG_LEN;

const KIND_DATA: u8 = 1;
const KIND_CLOSE: u8 = 2;

const PHASE: Phase = Phase::Frames {
    overhead: FRAME_OVERHEAD,
};

/// The AEAD state of one direction.
struct FrameKey {
    aead: Aes256Gcm,
    iv: Zeroizing<[u8; IV_LEN]>,
}

impl FrameKey {
    fn new(keys: &DirectionKeys) -> Self {
        FrameKey {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&keys.key[..])),
            iv: keys.iv.clone(),
        }
    }

    fn nonce(&self, counter: u64) -> [u8; IV_LEN] {
        let mut nonce = *self.iv;
        for (n, c) in nonce[IV_LEN - 8..].iter_mut().zip(counter.to_le_bytes()) {
            *n ^= c;
        }
        nonce
    }
}

/// State both halves of a channel see.
#[derive(Debug, Default)]
struct Shared {
    /// This side sent its close frame: the peer ending the connection afterwards is clean.
    closed_by_us: AtomicBool,
    /// The receiver failed (a tampered frame, a broken connection): the sender stops too.
    failed: AtomicBool,
}

/// An established connection: authenticated, encrypted frames both ways.
///
/// Made by `connect` (client) or `accept` (server). Use it from one task, or
/// [`split`](Channel::split) it into a sender and a receiver for two tasks. Frames arrive whole,
/// in order, unaltered, or the connection ends with an error; [`recv`](Channel::recv) answers
/// `None` only after the peer's authenticated close.
pub struct Channel {
    sender: ChannelSender,
    receiver: ChannelReceiver,
    version: u16,
    features: Features,
}

impl Channel {
    pub(crate) fn new(established: Established, role: Role, own_max_frame: usize) -> Self {
        let Established {
            ws,
            keys,
            version,
            features,
            peer_max_frame,
        } = established;
        let (send_keys, recv_keys) = match role {
            Role::Client => (&keys.client_to_server, &keys.server_to_client),
            Role::Server => (&keys.server_to_client, &keys.client_to_server),
        };
        let shared = Arc::new(Shared::default());
        let (sink, stream) = ws.split();
        Channel {
            sender: ChannelSender {
                sink,
                key: FrameKey::new(send_keys),
                next: 0,
                peer_max: peer_max_frame as usize,
                shared: shared.clone(),
                closed: false,
                broken: false,
            },
            receiver: ChannelReceiver {
                stream,
                key: FrameKey::new(recv_keys),
                next: 0,
                max: own_max_frame,
                shared,
                ended: false,
                failed: false,
            },
            version,
            features,
        }
    }

    /// The protocol version both sides agreed on.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The features both sides support.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The largest payload the peer accepts in one frame.
    pub fn max_send_bytes(&self) -> usize {
        self.sender.max_send_bytes()
    }

    /// Sends one frame. See [`ChannelSender::send`].
    ///
    /// # Errors
    ///
    /// As [`ChannelSender::send`].
    ///
    /// # Cancel safety
    ///
    /// As [`ChannelSender::send`].
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), NetError> {
        self.sender.send(payload).await
    }

    /// Receives one frame. See [`ChannelReceiver::recv`].
    ///
    /// # Errors
    ///
    /// As [`ChannelReceiver::recv`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`ChannelReceiver::recv`].
    pub async fn recv(&mut self) -> Result<Option<Bytes>, NetError> {
        self.receiver.recv().await
    }

    /// Closes the connection. See [`ChannelSender::close`].
    ///
    /// # Errors
    ///
    /// As [`ChannelSender::close`].
    ///
    /// # Cancel safety
    ///
    /// As [`ChannelSender::close`].
    pub async fn close(&mut self) -> Result<(), NetError> {
        self.sender.close().await
    }

    /// The two directions, for two tasks: each half owns its direction's key and counter.
    /// When the receiver fails, the sender refuses to send ([`NetError::Closed`]); dropping
    /// both halves drops the connection.
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.sender, self.receiver)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("version", &self.version)
            .field("features", &self.features)
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .finish()
    }
}

/// The sending half of a [`Channel`].
pub struct ChannelSender {
    sink: SplitSink<Ws, Message>,
    key: FrameKey,
    next: u64,
    peer_max: usize,
    shared: Arc<Shared>,
    /// Closed by this side.
    closed: bool,
    /// A write failed: what reached the connection is unknown.
    broken: bool,
}

impl ChannelSender {
    /// The largest payload the peer accepts in one frame (it said so in its hello).
    pub fn max_send_bytes(&self) -> usize {
        self.peer_max
    }

    /// Encrypts `payload` as one frame and sends it (written to the connection before this
    /// returns).
    ///
    /// # Errors
    ///
    /// [`NetError::FrameTooLarge`] if `payload` is over the peer's limit (nothing is sent and
    /// the channel stays usable); [`NetError::Closed`] after [`close`](Self::close), after a
    /// failed send, or once the receiving half failed; [`NetError::ConnectionClosed`] or
    /// [`NetError::Io`] if the connection broke (the channel is unusable afterwards).
    ///
    /// # Cancel safety
    ///
    /// If dropped before it completes, the frame is either not sent at all (and not counted),
    /// or queued whole and written by the next `send`, [`flush`](Self::flush) or
    /// [`close`](Self::close). Frames are never sent in part or out of order.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), NetError> {
        self.feed(payload).await?;
        self.flush().await
    }

    /// Encrypts `payload` as one frame and queues it, without waiting for it to be written:
    /// for many frames in a row, followed by one [`flush`](Self::flush).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// As [`send`](Self::send).
    pub async fn feed(&mut self, payload: &[u8]) -> Result<(), NetError> {
        if payload.len() > self.peer_max {
            return Err(NetError::FrameTooLarge {
                len: payload.len(),
                max: self.peer_max,
            });
        }
        self.push(KIND_DATA, payload).await
    }

    /// Writes every queued frame to the connection.
    ///
    /// # Errors
    ///
    /// [`NetError::Closed`] after a failed send; [`NetError::ConnectionClosed`] or
    /// [`NetError::Io`] if the connection broke.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: frames not yet written stay queued.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        if self.broken {
            return Err(NetError::Closed);
        }
        if self.closed {
            // Closing flushed everything.
            return Ok(());
        }
        let r = self.sink.flush().await.map_err(|e| map_error(e, PHASE));
        self.break_on_error(r)
    }

    /// Sends the authenticated close frame, then closes the WebSocket. The peer's receiver
    /// answers `None` after the frames sent before it; this side's receiver may still take the
    /// frames the peer sent before it saw the close, and answers `None` once the peer is gone.
    /// Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`NetError::Closed`] if the channel had already failed; [`NetError::ConnectionClosed`]
    /// or [`NetError::Io`] if the connection broke while closing.
    ///
    /// # Cancel safety
    ///
    /// If dropped before it completes, the close frame may or may not have been sent; the
    /// channel counts as closed either way.
    pub async fn close(&mut self) -> Result<(), NetError> {
        if self.broken {
            return Err(NetError::Closed);
        }
        if self.closed {
            return Ok(());
        }
        // Set first: the peer may drop the connection as soon as it has the close frame.
        self.shared.closed_by_us.store(true, Ordering::Release);
        if let Err(e) = self.push(KIND_CLOSE, &[]).await {
            self.shared.closed_by_us.store(false, Ordering::Release);
            return Err(e);
        }
        self.closed = true;
        match self.sink.close().await.map_err(|e| map_error(e, PHASE)) {
            Ok(()) | Err(NetError::ConnectionClosed | NetError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn push(&mut self, kind: u8, payload: &[u8]) -> Result<(), NetError> {
        if self.closed || self.broken || self.shared.failed.load(Ordering::Acquire) {
            return Err(NetError::Closed);
        }
        if self.next == u64::MAX {
            return Err(NetError::CounterExhausted);
        }
        // Wait for room before sealing, so that a cancelled wait leaves no numbered frame
        // behind; from here to `start_send` nothing awaits.
        let ready = poll_fn(|cx| self.sink.poll_ready_unpin(cx))
            .await
            .map_err(|e| map_error(e, PHASE));
        self.break_on_error(ready)?;
        let frame = self.seal(kind, payload);
        let sent = self
            .sink
            .start_send_unpin(Message::Binary(frame.into()))
            .map_err(|e| map_error(e, PHASE));
        self.break_on_error(sent)?;
        self.next += 1;
        Ok(())
    }

    fn seal(&self, kind: u8, payload: &[u8]) -> Vec<u8> {
        let counter = self.next;
        let mut frame = Vec::with_capacity(FRAME_OVERHEAD + payload.len());
        frame.push(kind);
        frame.extend_from_slice(&counter.to_le_bytes());
        frame.extend_from_slice(payload);
        let (header, body) = frame.split_at_mut(FRAME_HEADER_LEN);
        let nonce = self.key.nonce(counter);
        let tag = self
            .key
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), header, body)
            .expect("frames are far below AES-GCM's 64 GiB limit");
        frame.extend_from_slice(&tag);
        frame
    }

    fn break_on_error<T>(&mut self, r: Result<T, NetError>) -> Result<T, NetError> {
        if r.is_err() {
            self.broken = true;
        }
        r
    }
}

impl std::fmt::Debug for ChannelSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSender")
            .field("next", &self.next)
            .field("peer_max", &self.peer_max)
            .field("closed", &self.closed)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The receiving half of a [`Channel`].
pub struct ChannelReceiver {
    stream: SplitStream<Ws>,
    key: FrameKey,
    next: u64,
    max: usize,
    shared: Arc<Shared>,
    /// The peer closed (or, after this side closed, went away): `None` from now on.
    ended: bool,
    /// An error was returned: [`NetError::Closed`] from now on.
    failed: bool,
}

impl ChannelReceiver {
    /// The next frame's payload, in order; `None` once the peer closed the channel.
    ///
    /// # Errors
    ///
    /// Any error ends the channel: later calls answer [`NetError::Closed`], and the sending
    /// half refuses to send.
    /// [`NetError::FrameOutOfOrder`] for a replayed, reordered or dropped frame;
    /// [`NetError::FrameAuthFailed`] for an altered frame; [`NetError::FrameTooLarge`] for a
    /// frame over this side's limit (refused from its header, before it is read);
    /// [`NetError::MalformedFrame`] for bytes that are no frame; [`NetError::TextMessage`] for
    /// a text message; [`NetError::ConnectionClosed`] if the connection ended without the
    /// peer's close frame (unless this side had closed); [`NetError::Io`] or
    /// [`NetError::WebSocket`] if the connection broke.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a frame is taken off the connection only by the call that returns it.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, NetError> {
        if self.ended {
            return Ok(None);
        }
        if self.failed {
            return Err(NetError::Closed);
        }
        let r = self.next_frame().await;
        match &r {
            Ok(None) => self.ended = true,
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "channel receive failed");
                self.failed = true;
                self.shared.failed.store(true, Ordering::Release);
            }
        }
        r
    }

    async fn next_frame(&mut self) -> Result<Option<Bytes>, NetError> {
        loop {
            let message = match self.stream.next().await {
                None => return self.end_without_close_frame(),
                Some(Err(e)) => match map_error(e, PHASE) {
                    NetError::ConnectionClosed => return self.end_without_close_frame(),
                    other => return Err(other),
                },
                Some(Ok(m)) => m,
            };
            match message {
                Message::Binary(frame) => return self.open(frame),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Text(_) => return Err(NetError::TextMessage),
                Message::Close(_) => return self.end_without_close_frame(),
                Message::Frame(_) => {
                    return Err(NetError::MalformedFrame {
                        detail: "raw WebSocket frame",
                    });
                }
            }
        }
    }

    /// The connection ended before the peer's close frame: clean only if this side closed.
    fn end_without_close_frame(&self) -> Result<Option<Bytes>, NetError> {
        if self.shared.closed_by_us.load(Ordering::Acquire) {
            Ok(None)
        } else {
            Err(NetError::ConnectionClosed)
        }
    }

    /// Checks and decrypts one frame: size, number, then tag, then kind.
    fn open(&mut self, frame: Bytes) -> Result<Option<Bytes>, NetError> {
        if frame.len() > self.max.saturating_add(FRAME_OVERHEAD) {
            return Err(NetError::FrameTooLarge {
                len: frame.len() - FRAME_OVERHEAD,
                max: self.max,
            });
        }
        if frame.len() < FRAME_OVERHEAD {
            return Err(NetError::MalformedFrame {
                detail: "shorter than a frame header and tag",
            });
        }
        let counter = u64::from_le_bytes(frame[1..FRAME_HEADER_LEN].try_into().expect("8 bytes"));
        if counter != self.next {
            return Err(NetError::FrameOutOfOrder {
                expected: self.next,
                got: counter,
            });
        }
        if counter == u64::MAX {
            return Err(NetError::CounterExhausted);
        }
        // The WebSocket library hands over its buffer: decrypt in place, without a copy.
        let mut buf = frame
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let tag_at = buf.len() - TAG_LEN;
        let (header, rest) = buf.split_at_mut(FRAME_HEADER_LEN);
        let (body, tag) = rest.split_at_mut(tag_at - FRAME_HEADER_LEN);
        let nonce = self.key.nonce(counter);
        self.key
            .aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                header,
                body,
                Tag::from_slice(tag),
            )
            .map_err(|_| NetError::FrameAuthFailed { counter })?;
        self.next += 1;
        match buf[0] {
            KIND_DATA => {
                buf.truncate(tag_at);
                buf.advance(FRAME_HEADER_LEN);
                Ok(Some(buf.freeze()))
            }
            KIND_CLOSE if tag_at == FRAME_HEADER_LEN => Ok(None),
            KIND_CLOSE => Err(NetError::MalformedFrame {
                detail: "close frame with a payload",
            }),
            _ => Err(NetError::MalformedFrame {
                detail: "unknown frame kind",
            }),
        }
    }
}

impl std::fmt::Debug for ChannelReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReceiver")
            .field("next", &self.next)
            .field("max", &self.max)
            .field("ended", &self.ended)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
