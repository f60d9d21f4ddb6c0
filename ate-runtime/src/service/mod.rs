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
//!
//! # Serving from a chain
//!
//! A chain is a transport too: [`Chain::add_service`](crate::chain::Chain::add_service) serves,
//! and `{Trait}Client::new(&chain, &session)` calls. Requests and replies are records of the
//! chain itself, so a service answers callers wherever the chain is open (embedded, in a client
//! of a server, or in the server's own process), and the callers do not know where it runs.
//!
//! ## Records
//!
//! Everything lies under the chain's *service root*, a record at a fixed key (the layout, byte
//! by byte, is in `docs/FORMAT.md`, "Service records"; the types are in [`layout`]):
//!
//! - a *provider record* (`ate.service.Provider`) per [`Serving`]: its service's name, the
//!   stable names of the requests it answers, the public key requests are encrypted for and
//!   the signing key its records are written for;
//! - one *queue* per request type and provider read key: a collection of the root holding the
//!   requests (`ate.service.Request`) not yet answered, each at a key derived from its
//!   [`RequestId`];
//! - the *replies* (`ate.service.Reply`), each at a key derived from its request's id.
//!
//! A caller writes its request at its id's key, into the queue of the newest provider of its
//! type, and waits for the reply at its id's reply key. A provider takes requests from its
//! queues with [`Bus::process`](crate::bus::Bus::process), runs the handler, and commits the
//! reply in the same transaction as the request's removal.
//!
//! ## What is guaranteed
//!
//! - **Answered once.** The request's removal and its reply are one transaction, and a
//!   request's key can be written once only, so a request is answered at most once, and a
//!   retry with the same id (through the same client) finds the first attempt's request or
//!   reply instead of adding another. A provider claims the request it works on, so its
//!   handler runs once; it runs again only when the provider lost its claim first (it crashed,
//!   its connection dropped, or the handler outlasted the lease), and then only one of the two
//!   replies is committed. Effects outside the chain are not covered (see [`crate::bus`]).
//! - **Confidentiality.** A provider whose session holds a private read key has its requests
//!   encrypted for the public half, and each such request carries a key (derived per client
//!   and request) its reply is encrypted for. So only the caller and the provider read either,
//!   and where the reply goes (its key derives from the request id, which travels encrypted) is
//!   known to them alone. Without a provider read key both are plaintext.
//! - **Who called.** The caller's Dio signs the request with every signing key of its session;
//!   the handler's [`InvocationContext`] lists the keys whose signature the chain verified over
//!   that request (and the writers a server vouched for). A session without signing keys calls
//!   anonymously, which the chain's rules allow only where anyone may write without signing.
//! - **Who may call and who may serve** is who may write under the service root: by default
//!   the chain root's writers (its root keys; everyone on a chain without root keys). Requests
//!   and replies are written for the provider's signing key alone.
//! - **No service.** A type no provider record lists is [`InvokeError::NoService`] at once (a
//!   replica first catches up with its source). A provider that stopped cleanly removed its
//!   record; one that crashed left it, and its callers wait until their timeout
//!   ([`InvokeError::Timeout`]), their requests staying queued for the next provider with the
//!   same read key.

mod chain;
mod client;
mod codec;
mod context;
mod dispatch;
mod error;
pub(crate) mod local;

pub use chain::{ServeOptions, Serving, layout};
pub use client::{DEFAULT_TIMEOUT, Invoker, RawRequest, ServiceClient, ServiceTarget};
pub use codec::{CodecError, MAX_MESSAGE_BYTES, MAX_MESSAGE_DEPTH, MessagePart, decode, encode};
pub use context::{InvocationContext, RequestId};
pub use dispatch::{BoxFuture, ServiceDispatch, distinct_names, run_command, unknown_request};
pub use error::{AddServiceError, DispatchError, InvokeError, TransportError};
pub use local::LocalServices;
