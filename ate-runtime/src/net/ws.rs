//! The WebSocket underneath: the stream type, size limits, reading handshake messages, and
//! turning the WebSocket library's errors into [`NetError`]s.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::error::NetError;

/// A byte stream a connection runs over: TCP, TLS over TCP, or an in-memory pipe in tests.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> Io for T {}

/// The stream, boxed so that the channel's types do not depend on it.
pub(crate) type BoxIo = Box<dyn Io>;

/// A WebSocket over any stream.
pub(crate) type Ws = WebSocketStream<BoxIo>;

/// What is being read when a size limit is crossed, for the error reported.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// Handshake messages.
    Handshake,
    /// Channel frames, which carry this many bytes beyond their payload.
    Frames { overhead: usize },
}

/// The WebSocket settings for messages of at most `max_message` bytes: the library refuses a
/// longer frame or message from its header, before its payload is read or allocated.
pub(crate) fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The same WebSocket under a new size limit.
///
/// The library cannot change a live stream's limits, so the stream is taken out and wrapped
/// again. Bytes the old wrapper had read ahead would be lost: the handshake calls this only at
/// a point where an honest peer has sent nothing beyond the last message read (a peer that did
/// only breaks its own connection).
pub(crate) async fn with_limit(ws: Ws, role: Role, max_message: usize) -> Ws {
    let io = ws.into_inner();
    WebSocketStream::from_raw_socket(io, role, Some(config(max_message))).await
}

/// Reads the next handshake message: a binary WebSocket message of at most `max` bytes.
/// Ping and pong are skipped (the library answers pings).
pub(crate) async fn read_handshake(ws: &mut Ws, max: usize) -> Result<Bytes, NetError> {
    loop {
        let message = match ws.next().await {
            None => return Err(NetError::ConnectionClosed),
            Some(Err(e)) => return Err(map_error(e, Phase::Handshake)),
            Some(Ok(m)) => m,
        };
        match message {
            Message::Binary(bytes) if bytes.len() > max => {
                return Err(NetError::HandshakeMessageTooLarge {
                    len: bytes.len(),
                    max,
                });
            }
            Message::Binary(bytes) => return Ok(bytes),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Text(_) => return Err(NetError::TextMessage),
            Message::Close(_) => return Err(NetError::ConnectionClosed),
            Message::Frame(_) => return Err(NetError::malformed("raw WebSocket frame")),
        }
    }
}

/// Sends handshake messages and flushes them together.
pub(crate) async fn send_handshake(ws: &mut Ws, messages: Vec<Vec<u8>>) -> Result<(), NetError> {
    for m in messages {
        ws.feed(Message::Binary(m.into()))
            .await
            .map_err(|e| map_error(e, Phase::Handshake))?;
    }
    ws.flush().await.map_err(|e| map_error(e, Phase::Handshake))
}

/// The [`NetError`] for a WebSocket library error.
pub(crate) fn map_error(e: WsError, phase: Phase) -> NetError {
    match e {
        WsError::ConnectionClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            NetError::ConnectionClosed
        }
        WsError::AlreadyClosed => NetError::Closed,
        WsError::Io(e) => match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => NetError::ConnectionClosed,
            _ => NetError::Io(e),
        },
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => match phase {
            Phase::Handshake => NetError::HandshakeMessageTooLarge {
                len: size,
                max: max_size,
            },
            Phase::Frames { overhead } => NetError::FrameTooLarge {
                len: size.saturating_sub(overhead),
                max: max_size.saturating_sub(overhead),
            },
        },
        other => NetError::WebSocket {
            detail: other.to_string(),
        },
    }
}
