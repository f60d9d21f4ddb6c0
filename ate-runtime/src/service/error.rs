//! What can go wrong in a call: on the caller's side ([`InvokeError`]), on the service's side
//! ([`DispatchError`], which travels back to the caller), and when a service is added
//! ([`AddServiceError`]).

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codec::{self, CodecError, MessagePart};

/// A call failed. `E` is the error type of the command's handler (`Result<Reply, E>`): the
/// handler's own errors come back typed, as [`InvokeError::Handler`].
///
/// `InvokeError<E>` is an error type (`std::error::Error`) when `E` implements `Display` and
/// `Debug`, and converts into `AteError` when `E` is an error type itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError<E> {
    /// No reply came within the client's timeout. The request may still be served: a retry
    /// with the same request id is answered once.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// No service serves requests of this type.
    #[error("no service serves requests of type `{request_type}`")]
    NoService {
        /// The request's stable type name.
        request_type: String,
    },
    /// The service or the transport refused the request without running its handler.
    #[error("the request was refused: {0}")]
    Refused(String),
    /// The transport failed (a connection lost, no runtime to run on, a handler that panicked
    /// in process): the request may or may not have been served.
    #[error("the transport failed: {0}")]
    Transport(TransportError),
    /// A message could not be encoded: the request on the caller's side, or the reply or the
    /// handler's error on the service's side.
    #[error("could not encode {0}")]
    Encode(CodecError),
    /// A message could not be decoded: the request at the service, or the reply or the
    /// handler's error at the caller (the two sides disagree on a type).
    #[error("could not decode {0}")]
    Decode(CodecError),
    /// The handler ran and returned this error.
    #[error("the handler returned an error: {0}")]
    Handler(E),
}

impl<E> InvokeError<E> {
    /// The same error with the handler's error mapped by `f`.
    pub fn map_handler<F>(self, f: impl FnOnce(E) -> F) -> InvokeError<F> {
        self.split().unwrap_or_else(|e| InvokeError::Handler(f(e)))
    }

    /// The handler's error, if the handler ran and returned one.
    pub fn handler_error(&self) -> Option<&E> {
        match self {
            InvokeError::Handler(e) => Some(e),
            _ => None,
        }
    }

    /// The handler's error as `Err`, or any other case as an `InvokeError` of any handler type.
    fn split<F>(self) -> Result<InvokeError<F>, E> {
        Ok(match self {
            InvokeError::Handler(e) => return Err(e),
            InvokeError::Timeout(d) => InvokeError::Timeout(d),
            InvokeError::NoService { request_type } => InvokeError::NoService { request_type },
            InvokeError::Refused(reason) => InvokeError::Refused(reason),
            InvokeError::Transport(e) => InvokeError::Transport(e),
            InvokeError::Encode(e) => InvokeError::Encode(e),
            InvokeError::Decode(e) => InvokeError::Decode(e),
        })
    }
}

impl InvokeError<Vec<u8>> {
    /// Decodes the handler's error of a call of `request_type`, as received from a transport;
    /// bytes that do not decode are [`InvokeError::Decode`].
    pub fn decode_handler<E: DeserializeOwned>(self, request_type: &str) -> InvokeError<E> {
        match self.split() {
            Ok(other) => other,
            Err(bytes) => match codec::decode(MessagePart::HandlerError, request_type, &bytes) {
                Ok(e) => InvokeError::Handler(e),
                Err(e) => InvokeError::Decode(e),
            },
        }
    }
}

/// A transport's own failure, boxed (the transports' error types differ).
pub struct TransportError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl TransportError {
    /// Wraps an error, or a message (`TransportError::new("connection lost")`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        TransportError(error.into())
    }

    /// The transport's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The transport's error, unwrapped.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TransportError {
    /// What the wrapped error says its source is (its own message is this error's).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A service did not answer a request with a reply: what it sends back instead. It is
/// serializable, so a transport carries it to the caller as it is, where it becomes an
/// [`InvokeError`] ([`DispatchError::into_invoke_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DispatchError {
    /// The service serves no requests of this type.
    #[error("no handler for requests of type `{request_type}`")]
    NoService {
        /// The request's stable type name.
        request_type: String,
    },
    /// The request did not decode as the command's request type.
    #[error("could not decode {0}")]
    Decode(CodecError),
    /// The handler's reply or error did not encode.
    #[error("could not encode {0}")]
    Encode(CodecError),
    /// The service refused the request without running its handler.
    #[error("the request was refused: {0}")]
    Refused(String),
    /// The handler ran and returned an error: its encoding.
    #[error("the handler returned an error ({} bytes encoded)", .0.len())]
    Handler(#[serde(with = "as_bytes")] Vec<u8>),
    /// The handler did not finish (it panicked): the service answered this instead, so the
    /// request is not taken again. The caller sees [`InvokeError::Transport`].
    #[error("the handler did not finish: {0}")]
    Failed(String),
}

impl DispatchError {
    /// What the caller sees: the same case, with the handler's error still encoded.
    pub fn into_invoke_error(self) -> InvokeError<Vec<u8>> {
        match self {
            DispatchError::NoService { request_type } => InvokeError::NoService { request_type },
            DispatchError::Decode(e) => InvokeError::Decode(e),
            DispatchError::Encode(e) => InvokeError::Encode(e),
            DispatchError::Refused(reason) => InvokeError::Refused(reason),
            DispatchError::Handler(bytes) => InvokeError::Handler(bytes),
            DispatchError::Failed(reason) => InvokeError::Transport(TransportError::new(reason)),
        }
    }
}

/// Encoded handler errors travel as MessagePack binaries, not arrays of numbers.
mod as_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        bytes::Bytes::deserialize(d).map(Vec::from)
    }
}

/// A service could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddServiceError {
    /// Another service (or the same one, naming it twice) serves requests of this type
    /// already: a request goes to one handler.
    #[error("requests of type `{request_type}` are served already")]
    AlreadyServed {
        /// The request's stable type name.
        request_type: String,
    },
    /// A service names a request type no request can have (blank, longer than an event's
    /// type name may be, or reserved for the engine).
    #[error("a service cannot serve requests of type {request_type:?}: {reason}")]
    InvalidName {
        /// The name as the service gave it.
        request_type: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Serving from a chain runs tasks on a Tokio runtime, and the call was made outside one.
    #[error("services are served on a Tokio runtime, and there is none here")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_errors_round_trip_and_map_onto_invoke_errors() {
        let codec = CodecError::new(MessagePart::Request, "bank.Deposit", "wrong type");
        let cases = [
            DispatchError::NoService {
                request_type: "bank.Deposit".into(),
            },
            DispatchError::Decode(codec.clone()),
            DispatchError::Encode(codec.clone()),
            DispatchError::Refused("closed".into()),
            DispatchError::Handler(vec![1, 2, 3]),
            DispatchError::Failed("panicked".into()),
        ];
        for case in cases {
            let bytes = rmp_serde::to_vec(&case).unwrap();
            assert_eq!(
                rmp_serde::from_slice::<DispatchError>(&bytes).unwrap(),
                case
            );
        }
        assert!(matches!(
            DispatchError::Handler(vec![7]).into_invoke_error(),
            InvokeError::Handler(b) if b == [7]
        ));
        assert!(matches!(
            DispatchError::Decode(codec.clone()).into_invoke_error(),
            InvokeError::Decode(e) if e == codec
        ));
        assert!(matches!(
            DispatchError::Refused("closed".into()).into_invoke_error(),
            InvokeError::Refused(r) if r == "closed"
        ));
        assert!(matches!(
            DispatchError::Failed("it panicked".into()).into_invoke_error(),
            InvokeError::Transport(t) if t.to_string() == "it panicked"
        ));
    }

    #[test]
    fn an_encoded_handler_error_is_a_binary() {
        let bytes = rmp_serde::to_vec(&DispatchError::Handler(vec![0; 300])).unwrap();
        // The variant's name, then bin 16 (0xc5) with its length: not 300 array items.
        assert!(bytes.len() < 320, "{}", bytes.len());
        assert!(bytes.windows(3).any(|w| w == [0xc5, 0x01, 0x2c]));
    }

    #[test]
    fn handler_errors_are_decoded_or_reported() {
        let bytes = codec::encode(MessagePart::HandlerError, "t", &"overdrawn").unwrap();
        let e: InvokeError<String> = InvokeError::Handler(bytes).decode_handler("t");
        assert_eq!(e.handler_error().map(String::as_str), Some("overdrawn"));
        assert_eq!(e.to_string(), "the handler returned an error: overdrawn");
        let e: InvokeError<u32> = InvokeError::Handler(vec![0xa1, b'x']).decode_handler("t");
        assert!(
            matches!(&e, InvokeError::Decode(c) if c.part == MessagePart::HandlerError),
            "{e:?}"
        );
        let e: InvokeError<u32> = InvokeError::Timeout(Duration::from_secs(1)).decode_handler("t");
        assert!(matches!(e, InvokeError::Timeout(_)));
    }

    #[test]
    fn transport_errors_show_what_they_wrap() {
        let e: InvokeError<String> = InvokeError::Transport(TransportError::new("connection lost"));
        assert_eq!(e.to_string(), "the transport failed: connection lost");
    }
}
