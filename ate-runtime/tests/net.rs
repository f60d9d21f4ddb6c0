//! Integration tests of the network transport (`ate_runtime::net`), as one binary, over
//! loopback sockets bound to port 0.
//!
//! - `channel`: frames both ways (many, large, at the limit), split halves on two tasks, clean
//!   and unclean ends.
//! - `trust`: pinned identities, trust on first use recorded and then enforced.
//! - `handshake`: stalled handshakes time out without holding up others, garbage and random
//!   bytes as hellos, version negotiation on the wire as `docs/PROTOCOL.md` lays it out.
//! - `tamper`: a man in the middle forwarding WebSocket messages replays, reorders, drops,
//!   alters and injects them, during and after the handshake; oversized frames.
//! - `tls`: `wss://` with a certificate authority made by the test.

#[path = "net/channel.rs"]
mod channel;
#[path = "net/common.rs"]
mod common;
#[path = "net/handshake.rs"]
mod handshake;
#[path = "net/tamper.rs"]
mod tamper;
#[path = "net/tls.rs"]
mod tls;
#[path = "net/trust.rs"]
mod trust;
