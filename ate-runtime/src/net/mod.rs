//! The network layer: the secure channel, the messages, the server and the client of remote
//! chains (`docs/PROTOCOL.md`). Built with the `client` and `server` features.

pub mod ring;
pub mod wire;
