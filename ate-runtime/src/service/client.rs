//! The caller's side: an [`Invoker`] (the transport) under a [`ServiceClient`], which the
//! clients `#[service]` generates wrap.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{self, MessagePart};
use super::context::RequestId;
use super::error::InvokeError;
use crate::schema::DaoType;
use crate::session::AteSession;

/// How long a [`ServiceClient`] waits for a reply unless told otherwise: 30 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as a transport sends it: its id, its type's stable name and its encoding.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RawRequest<'a> {
    /// The request's id, the same on every retry of this request.
    pub id: RequestId,
    /// The request type's stable name ([`DaoType::TYPE_NAME`]).
    pub request_type: &'a str,
    /// The request, encoded ([`encode`](super::encode)).
    pub body: &'a [u8],
}

impl<'a> RawRequest<'a> {
    /// A new request (with a fresh id) of type `request_type`, encoded as `body`.
    pub fn new(request_type: &'a str, body: &'a [u8]) -> Self {
        RawRequest {
            id: RequestId::generate(),
            request_type,
            body,
        }
    }
}

/// A transport: takes a request to the service that serves its type, as one caller (the
/// session it was made for), and brings back the reply.
///
/// [`LocalServices`](super::LocalServices) is one (calls within the process); a chain is
/// another. Clients built on an invoker do not depend on which.
#[async_trait::async_trait]
pub trait Invoker: Send + Sync + fmt::Debug {
    /// Sends `request` and waits for its reply: the reply's encoding, or why there is none
    /// (the handler's own error encoded, as [`InvokeError::Handler`]).
    ///
    /// # Errors
    ///
    /// [`InvokeError::NoService`] when nothing serves the type; the service's refusals and
    /// codec errors ([`DispatchError::into_invoke_error`](super::DispatchError::into_invoke_error));
    /// [`InvokeError::Transport`] for the transport's own failures. Timeouts are the client's
    /// ([`ServiceClient`]), though a transport may report one of its own.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the reply, not the request: the request may be served
    /// anyway (once), and a retry with the same id is not served twice.
    async fn invoke(&self, request: RawRequest<'_>) -> Result<Vec<u8>, InvokeError<Vec<u8>>>;
}

/// Something services can be called through as a session: a chain, or [`LocalServices`](
/// super::LocalServices). The clients `#[service]` generates are made from one
/// (`BankClient::new(&target, &session)`).
pub trait ServiceTarget {
    /// An invoker that sends requests as `session` (with its keys as the caller's identity).
    fn invoker(&self, session: &AteSession) -> Arc<dyn Invoker>;
}

/// Calls commands through an [`Invoker`], with a timeout: what a generated `{Trait}Client`
/// holds, and a client for any request type.
#[derive(Clone)]
pub struct ServiceClient {
    invoker: Arc<dyn Invoker>,
    timeout: Duration,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("invoker", &self.invoker)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ServiceClient {
    /// A client whose requests go through `invoker`, waiting [`DEFAULT_TIMEOUT`] for replies.
    pub fn new(invoker: Arc<dyn Invoker>) -> Self {
        ServiceClient {
            invoker,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client calling through `target` as `session`.
    pub fn connect<T: ServiceTarget + ?Sized>(target: &T, session: &AteSession) -> Self {
        ServiceClient::new(target.invoker(session))
    }

    /// The same client, waiting at most `timeout` for each reply.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the client waits for a reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The transport.
    pub fn invoker(&self) -> &Arc<dyn Invoker> {
        &self.invoker
    }

    /// Calls the command that takes `Req`: encodes the request, sends it, waits for the reply
    /// and decodes it, or the handler's error `E`.
    ///
    /// The request is encoded before this returns; the future holds only its bytes.
    ///
    /// # Errors
    ///
    /// [`InvokeError::Handler`] with the handler's error; [`InvokeError::Timeout`] after
    /// [`ServiceClient::timeout`] without a reply; [`InvokeError::Encode`] and
    /// [`InvokeError::Decode`] for messages that do not encode or decode (the caller and the
    /// service disagree on a type); what the invoker reports ([`Invoker::invoke`]).
    ///
    /// # Cancel safety
    ///
    /// As [`Invoker::invoke`]: dropping the future abandons the reply; the request may be
    /// served anyway.
    pub fn call<Req, Res, E>(
        &self,
        request: Req,
    ) -> impl Future<Output = Result<Res, InvokeError<E>>> + Send + '_
    where
        Req: DaoType + Serialize,
        Res: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.call_as(Req::TYPE_NAME, request)
    }

    /// [`ServiceClient::call`] with the request type's stable name given: what generated
    /// clients call, with `<Req as DaoType>::TYPE_NAME`.
    ///
    /// # Errors
    ///
    /// As [`ServiceClient::call`].
    ///
    /// # Cancel safety
    ///
    /// As [`ServiceClient::call`].
    pub fn call_as<Req, Res, E>(
        &self,
        request_type: &'static str,
        request: Req,
    ) -> impl Future<Output = Result<Res, InvokeError<E>>> + Send + '_
    where
        Req: Serialize,
        Res: DeserializeOwned,
        E: DeserializeOwned,
    {
        let body = codec::encode(MessagePart::Request, request_type, &request);
        async move {
            let body = body.map_err(InvokeError::Encode)?;
            let bytes = self
                .call_raw(request_type, &body)
                .await
                .map_err(|e| e.decode_handler(request_type))?;
            codec::decode(MessagePart::Reply, request_type, &bytes).map_err(InvokeError::Decode)
        }
    }

    /// Sends a request already encoded, of the type named `request_type`, and waits for the
    /// encoded reply (for callers that do not link the request type).
    ///
    /// # Errors
    ///
    /// As [`ServiceClient::call`], with the handler's error still encoded.
    ///
    /// # Cancel safety
    ///
    /// As [`ServiceClient::call`].
    pub async fn call_raw(
        &self,
        request_type: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, InvokeError<Vec<u8>>> {
        let request = RawRequest::new(request_type, body);
        match tokio::time::timeout(self.timeout, self.invoker.invoke(request)).await {
            Ok(reply) => reply,
            Err(_) => Err(InvokeError::Timeout(self.timeout)),
        }
    }
}
