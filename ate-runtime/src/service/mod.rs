//! Services: typed commands that callers send and handlers answer, whatever carries them.
//!
//! A service is declared with `#[service]` on a trait (in the `ate` crate): each
//! `async fn name(&self, ctx: &InvocationContext, req: Req) -> Result<Res, Err>` is a command,
//! answered by whatever type implements the trait, and called through a generated client. The
//! generated code stands on this module's seams, which keep it apart from the transport:
//!
//! - on the caller's side, a [`ServiceClient`] encodes the request, hands it to an [`Invoker`]
//!   (the transport) with a [`RequestId`], waits for the reply within its timeout and decodes
//!   it, or the handler's error, into [`InvokeError`];
//! - on the service's side, a [`ServiceDispatch`] takes a request's stable type name and
//!   bytes, decodes it, runs the handler with an [`InvocationContext`] (who called, verified by
//!   the transport) and encodes the reply, or a [`DispatchError`] that travels back instead;
//! - a [`ServiceTarget`] (a chain, or [`LocalServices`] in process) makes an invoker for a
//!   session: `BankClient::new(&target, &session)`.
//!
//! Requests are matched to handlers by their type's stable name ([`DaoType`](
//! crate::schema::DaoType), which `#[derive(Dao)]` and `ate::stable_name!` give), never by
//! Rust's type names. Every message is MessagePack (rmp-serde, as records are), and every
//! message received is checked before it is decoded: at most [`MAX_MESSAGE_BYTES`], one value
//! nested at most [`MAX_MESSAGE_DEPTH`] deep whose every length fits in its bytes
//! ([`decode`]). A handler's error type is serialized too, so the caller gets it back typed
//! ([`InvokeError::Handler`]).

mod client;
mod codec;
mod context;
mod dispatch;
mod error;
mod local;

pub use client::{DEFAULT_TIMEOUT, Invoker, RawRequest, ServiceClient, ServiceTarget};
pub use codec::{CodecError, MAX_MESSAGE_BYTES, MAX_MESSAGE_DEPTH, MessagePart, decode, encode};
pub use context::{InvocationContext, RequestId};
pub use dispatch::{BoxFuture, ServiceDispatch, distinct_names, run_command, unknown_request};
pub use error::{AddServiceError, DispatchError, InvokeError, TransportError};
pub use local::LocalServices;
