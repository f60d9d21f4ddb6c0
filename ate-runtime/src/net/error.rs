//! The errors of the network layer.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::crypto::AlgorithmKind;

use super::identity::IdentityHash;

/// Why a connection could not be made, or why it ended.
///
/// Every failure of the handshake or of a frame ends the connection: the channel is not usable
/// afterwards (its halves answer [`NetError::Closed`]). Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The URL is not a `ws://` or `wss://` URL this layer can connect to.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server ended the connection with this reason (a chain it does not open or serve, a
    /// protocol rule the client broke, a replica that is not of its chain).
    #[error("the server refused: {0}")]
    Refused(String),
    /// More redirects than allowed while looking for a chain's server.
    #[error("more than {max} redirects (the last to {url})")]
    Redirects {
        /// The last URL redirected to.
        url: String,
        /// The limit.
        max: usize,
    },
    /// The operating system refused an operation on the connection.
    #[error("network I/O: {0}")]
    Io(#[from] io::Error),
    /// TLS (`wss://`) failed: certificate not trusted, bad certificate or key file, or the TLS
    /// handshake itself.
    #[error("TLS: {detail}")]
    Tls {
        /// What failed.
        detail: String,
    },
    /// The WebSocket layer failed: a refused upgrade, or a protocol violation below the
    /// channel's frames.
    #[error("WebSocket: {detail}")]
    WebSocket {
        /// What failed.
        detail: String,
    },
    /// The connection was not established within the handshake timeout
    /// ([`Limits::handshake_timeout`](super::Limits::handshake_timeout)).
    #[error("handshake not finished after {0:?}")]
    HandshakeTimeout(Duration),
    /// A handshake message does not decode, or is not the message due at this point.
    #[error("malformed handshake: {detail}")]
    MalformedHandshake {
        /// What is wrong.
        detail: String,
    },
    /// A handshake message is larger than
    /// [`Limits::max_handshake_message_bytes`](super::Limits::max_handshake_message_bytes).
    #[error("handshake message of {len} bytes, over the limit of {max}")]
    HandshakeMessageTooLarge {
        /// The message's size (as announced by its WebSocket frame header).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The two sides speak no protocol version in common.
    #[error("no protocol version in common: ours {ours:?}, the peer's {theirs:?}")]
    NoCommonVersion {
        /// The versions this side offered.
        ours: Vec<u16>,
        /// The versions the peer offered.
        theirs: Vec<u16>,
    },
    /// The peer named an algorithm the other side does not support (the server refuses a key
    /// encapsulation algorithm it does not know; the client an identity key algorithm).
    #[error("{kind} algorithm id {id} is not supported")]
    UnsupportedAlgorithm {
        /// The algorithm family.
        kind: AlgorithmKind,
        /// The id named.
        id: u8,
    },
    /// The server's signature over the handshake transcript does not verify: the server does
    /// not hold the identity key it presented, or a byte of the handshake was changed in
    /// transit (a downgrade or a splice).
    #[error("the server's signature over the handshake does not verify")]
    BadServerSignature,
    /// A key-confirmation message does not match: the peer derived other keys (the handshake
    /// was tampered with, or the peer does not hold the KEM secret).
    #[error("key confirmation failed")]
    KeyConfirmationFailed,
    /// The server presented another identity than the one pinned for it, or than the one
    /// recorded at first contact.
    #[error("server {server} presented identity {got}, expected {expected}")]
    IdentityMismatch {
        /// The server, as `host:port`.
        server: String,
        /// The identity pinned or recorded.
        expected: IdentityHash,
        /// The identity presented.
        got: IdentityHash,
    },
    /// An identity key file or the known-servers file could not be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A frame over the size limit: on send, over the peer's limit (nothing is sent); on
    /// receipt, over this side's limit, refused from its WebSocket header before its payload is
    /// read or allocated.
    #[error("frame of {len} bytes, over the limit of {max}")]
    FrameTooLarge {
        /// The frame's payload size in bytes (on receipt, as announced by its header).
        len: usize,
        /// The limit in payload bytes.
        max: usize,
    },
    /// A frame arrived out of turn: a replayed (`got < expected`), dropped (`got > expected`)
    /// or reordered frame.
    #[error("frame number {got} received where number {expected} was due")]
    FrameOutOfOrder {
        /// The number due.
        expected: u64,
        /// The number the frame carries.
        got: u64,
    },
    /// A frame failed authentication: a byte was changed in transit.
    #[error("frame number {counter} failed authentication")]
    FrameAuthFailed {
        /// The frame's number.
        counter: u64,
    },
    /// A frame too short to be one, or of an unknown kind.
    #[error("malformed frame: {detail}")]
    MalformedFrame {
        /// What is wrong.
        detail: &'static str,
    },
    /// A WebSocket text message: this protocol sends binary messages only.
    #[error("text message received; only binary messages are allowed")]
    TextMessage,
    /// The peer, or something between, ended the connection without the authenticated closing
    /// frame: the stream may have been cut short.
    #[error("the connection ended without a closing frame")]
    ConnectionClosed,
    /// This channel is closed: it was closed by this side, or it failed earlier.
    #[error("the channel is closed")]
    Closed,
    /// 2^64 - 1 frames were sent in one direction (reconnect to get fresh keys).
    #[error("frame counter exhausted")]
    CounterExhausted,
}

impl NetError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        NetError::MalformedHandshake {
            detail: detail.into(),
        }
    }

    pub(crate) fn tls(detail: impl std::fmt::Display) -> Self {
        NetError::Tls {
            detail: detail.to_string(),
        }
    }
}

/// An identity key file or the known-servers file could not be read, written or trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not a valid identity key file (bad magic, wrong length, bad checksum, or a
    /// key that does not decode).
    #[error("{}: not a valid identity key file: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The identity key file is of a format version this build does not know.
    #[error("{}: identity key file version {version} is not supported", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// The identity key file can be read or written by other users; it holds a private key
    /// (restrict it with `chmod 600`).
    #[error("{}: other users have access to this private key file (mode {mode:o}); restrict it to its owner (chmod 600)", path.display())]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line of the known-servers file does not parse.
    #[error("{}: line {line}: {detail}", path.display())]
    KnownServersCorrupt {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A string that is not an identity hash (64 hex digits).
    #[error("invalid identity hash {0:?}: expected 64 hex digits")]
    InvalidHash(String),
}

impl IdentityError {
    pub(crate) fn io(path: &std::path::Path, source: io::Error) -> Self {
        IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, detail: impl Into<String>) -> Self {
        IdentityError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}
