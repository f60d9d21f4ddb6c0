//! The network layer's transport: WebSocket connections carrying authenticated, encrypted
//! frames between a client and a server (`docs/PROTOCOL.md`).
//!
//! A connection is a WebSocket (`ws://host[:port]/path`, port [`DEFAULT_PORT`] unless named;
//! `wss://` adds TLS through rustls) over which the two sides run a handshake, then exchange
//! [`Channel`] frames:
//!
//! * the **handshake** agrees on the highest protocol version and the features both support,
//!   exchanges an ephemeral NTRU key, and has the server sign the whole transcript with its
//!   Falcon identity key ([`ServerIdentity`]); both sides then confirm they derived the same keys;
//! * the client accepts the server's identity only if it matches the [`IdentityHash`] pinned for
//!   it, or, trusting on first use, the one recorded in [`KnownServers`] at first contact;
//! * **frames** are AES-256-GCM with a key and a counter per direction: a replayed, reordered,
//!   dropped or altered frame ends the connection with a typed [`NetError`].
//!
//! Clients call `connect` (feature `client`); servers hand each accepted stream to `accept`
//! (feature `server`) in a task of its own, so a slow handshake stalls only itself. Both sides
//! bound what a peer can make them hold with [`Limits`].
//!
//! ```
//! # #[cfg(all(feature = "client", feature = "server"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ate_runtime::net::NetError> {
//! use ate_runtime::crypto::KeySize;
//! use ate_runtime::net::{self, AcceptOptions, ConnectOptions, ServerIdentity, ServerTrust};
//!
//! let identity = ServerIdentity::generate(KeySize::Bit128);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/db/example", listener.local_addr()?);
//! let server_identity = identity.clone();
//! tokio::spawn(async move {
//!     while let Ok((stream, _)) = listener.accept().await {
//!         let identity = server_identity.clone();
//!         tokio::spawn(async move {
//!             let (path, mut channel) =
//!                 net::accept(stream, &identity, &AcceptOptions::default()).await?;
//!             while let Some(frame) = channel.recv().await? {
//!                 channel.send(&frame).await?;
//!             }
//!             Ok::<_, net::NetError>(path)
//!         });
//!     }
//! });
//!
//! let options = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
//! let (mut channel, info) = net::connect(&url, &options).await?;
//! assert_eq!(info.identity, identity.hash());
//! channel.send(b"hello").await?;
//! assert_eq!(&channel.recv().await?.unwrap()[..], b"hello");
//! channel.close().await?;
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "client", feature = "server")))]
//! # fn main() {}
//! ```

// Most of the layer serves both sides; a build with one side leaves the other's half unused.
#![cfg_attr(
    not(all(feature = "client", feature = "server")),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "server")]
mod admission;
mod channel;
#[cfg(feature = "client")]
mod client;
mod error;
#[cfg(test)]
mod fuzz_seeds;
pub(crate) mod handshake;
#[cfg(feature = "server")]
pub mod host;
mod identity;
#[cfg(feature = "client")]
pub mod remote;
pub mod ring;
#[cfg(feature = "server")]
mod server;
pub mod wire;
mod ws;

use std::time::Duration;

pub use channel::{Channel, ChannelReceiver, ChannelSender, FRAME_OVERHEAD};
#[cfg(feature = "client")]
pub use client::{ConnectInfo, ConnectOptions, ServerTrust, TlsRoots, connect, connect_stream};
pub use error::{IdentityError, NetError};
pub use identity::{IdentityHash, KnownServers, ServerIdentity};
#[cfg(feature = "server")]
pub use server::{AcceptOptions, ServerTls, accept};

/// The port of a `ws://` or `wss://` URL that names none.
pub const DEFAULT_PORT: u16 = 5000;

/// The protocol versions this build speaks, oldest first. The handshake settles on the
/// highest one both sides speak.
pub const PROTOCOL_VERSIONS: &[u16] = &[1];

/// Optional protocol features, one bit each, negotiated at the handshake: a connection has
/// the features both sides offered. Bits are assigned in `docs/PROTOCOL.md`; a bit this build
/// does not know is never offered, and one the peer offers is dropped by the intersection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(u64);

impl Features {
    /// No feature.
    pub const NONE: Features = Features(0);

    /// The features of the set bits.
    pub const fn from_bits(bits: u64) -> Self {
        Features(bits)
    }

    /// The set bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The features in both sets.
    pub const fn intersection(self, other: Features) -> Self {
        Features(self.0 & other.0)
    }

    /// Whether every feature of `other` is in this set.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Default of [`Limits::max_frame_bytes`]: 16 MiB (the largest transaction a server takes from
/// a client by default) and 64 KiB for the message around it.
pub const DEFAULT_MAX_FRAME: usize = (16 << 20) + (64 << 10);

/// Bounds on what a peer can make this side hold or wait for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame payload this side accepts (default [`DEFAULT_MAX_FRAME`]). A larger
    /// frame is refused from its WebSocket header, before its payload is read or memory is
    /// allocated for it, and ends the connection. The peer learns the limit at the handshake
    /// and refuses to send more (values above `u32::MAX - FRAME_OVERHEAD` count as that).
    pub max_frame_bytes: usize,
    /// Time allowed to establish a connection (default 10 s). On a client it covers
    /// everything `connect` does: name resolution, TCP, TLS, the WebSocket upgrade and the
    /// handshake; on a server everything `accept` does.
    pub handshake_timeout: Duration,
    /// The largest handshake message this side accepts (default 16 KiB, over five times the
    /// largest message, 3047 bytes with the strongest suite). Until the handshake is done, no WebSocket
    /// message larger than this is read.
    pub max_handshake_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(10),
            max_handshake_message_bytes: 16 << 10,
        }
    }
}

impl Limits {
    /// The frame limit as said in a hello.
    fn advertised_max_frame(&self) -> u32 {
        self.max_frame_bytes
            .min(u32::MAX as usize - FRAME_OVERHEAD)
            .try_into()
            .expect("bounded by u32::MAX")
    }

    /// What this side offers in a handshake.
    fn offer(&self, features: Features) -> handshake::Offer {
        handshake::Offer {
            versions: PROTOCOL_VERSIONS.to_vec(),
            features,
            max_frame: self.advertised_max_frame(),
            max_message: self.max_handshake_message_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_intersect() {
        let a = Features::from_bits(0b1101);
        let b = Features::from_bits(0b0111);
        assert_eq!(a.intersection(b), Features::from_bits(0b0101));
        assert!(a.contains(Features::from_bits(0b0101)));
        assert!(!a.contains(b));
        assert!(a.contains(Features::NONE));
        assert_eq!(Features::default(), Features::NONE);
    }

    #[test]
    fn limits_advertise_at_most_what_a_hello_can_say() {
        let mut limits = Limits::default();
        assert_eq!(limits.advertised_max_frame() as usize, DEFAULT_MAX_FRAME);
        limits.max_frame_bytes = usize::MAX;
        assert_eq!(
            limits.advertised_max_frame() as usize,
            u32::MAX as usize - FRAME_OVERHEAD
        );
    }
}
