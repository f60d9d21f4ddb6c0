//! The encoding of every service message: MessagePack (rmp-serde, as records are), checked for
//! size and shape before it is decoded.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::event::msgpack::check_shape;

/// The most bytes one encoded request, reply or handler error may take (16 MiB). A larger one
/// is refused where it is encoded and where it is received.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The most arrays and maps a received message may nest (64), checked before it is decoded so
/// that a hostile message cannot exhaust a decoder's stack.
pub const MAX_MESSAGE_DEPTH: usize = 64;

/// One of the messages of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MessagePart {
    /// What the caller sent.
    Request,
    /// What the handler answered.
    Reply,
    /// The error the handler returned.
    HandlerError,
}

impl fmt::Display for MessagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessagePart::Request => "request",
            MessagePart::Reply => "reply",
            MessagePart::HandlerError => "handler's error",
        })
    }
}

/// A message of a call could not be encoded or decoded: its type does not serialize, its bytes
/// are not a value of its type (the caller and the service disagree on it), or it is too large
/// or too deep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("the {part} of a `{request_type}` call: {reason}")]
#[non_exhaustive]
pub struct CodecError {
    /// Which message.
    pub part: MessagePart,
    /// The stable type name of the call's request.
    pub request_type: String,
    /// What went wrong.
    pub reason: String,
}

impl CodecError {
    /// The error of `part` in a call of `request_type`, for `reason`.
    pub fn new(part: MessagePart, request_type: &str, reason: impl fmt::Display) -> Self {
        CodecError {
            part,
            request_type: request_type.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Encodes `value`, the `part` of a call of `request_type`, as every service message is.
///
/// # Errors
///
/// [`CodecError`] when the value does not serialize, or takes more than [`MAX_MESSAGE_BYTES`].
pub fn encode<T: Serialize + ?Sized>(
    part: MessagePart,
    request_type: &str,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    let bytes = rmp_serde::to_vec(value).map_err(|e| CodecError::new(part, request_type, e))?;
    check_size(part, request_type, bytes.len())?;
    Ok(bytes)
}

/// Decodes the `part` of a call of `request_type` from bytes received: at most
/// [`MAX_MESSAGE_BYTES`], one MessagePack value nested at most [`MAX_MESSAGE_DEPTH`] deep,
/// whose every length fits in the bytes, then a `T`.
///
/// # Errors
///
/// [`CodecError`] for anything else.
pub fn decode<T: DeserializeOwned>(
    part: MessagePart,
    request_type: &str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    check_size(part, request_type, bytes.len())?;
    check_shape(bytes, MAX_MESSAGE_DEPTH).map_err(|e| CodecError::new(part, request_type, e))?;
    rmp_serde::from_slice(bytes).map_err(|e| CodecError::new(part, request_type, e))
}

fn check_size(part: MessagePart, request_type: &str, len: usize) -> Result<(), CodecError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(CodecError::new(
            part,
            request_type,
            format_args!("{len} bytes, more than the {MAX_MESSAGE_BYTES} a message may take"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Deposit {
        account: String,
        amount: u64,
    }

    #[test]
    fn messages_round_trip() {
        let d = Deposit {
            account: "42".into(),
            amount: 10,
        };
        let bytes = encode(MessagePart::Request, "bank.Deposit", &d).unwrap();
        assert_eq!(
            decode::<Deposit>(MessagePart::Request, "bank.Deposit", &bytes).unwrap(),
            d
        );
    }

    #[test]
    fn bytes_of_another_type_are_a_codec_error_naming_the_call() {
        let bytes = encode(MessagePart::Reply, "bank.Deposit", &"not a deposit").unwrap();
        let e = decode::<Deposit>(MessagePart::Reply, "bank.Deposit", &bytes).unwrap_err();
        assert_eq!(e.part, MessagePart::Reply);
        assert_eq!(e.request_type, "bank.Deposit");
        assert!(
            e.to_string()
                .starts_with("the reply of a `bank.Deposit` call: "),
            "{e}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(MessagePart::Request, "t", &7u32).unwrap();
        assert_eq!(decode::<u32>(MessagePart::Request, "t", &bytes).unwrap(), 7);
        bytes.push(0);
        let e = decode::<u32>(MessagePart::Request, "t", &bytes).unwrap_err();
        assert!(e.reason.contains("follow the value"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_before_decoding() {
        // 65 nested one-item arrays around a nil: one level too many.
        let mut bytes = vec![0x91; MAX_MESSAGE_DEPTH + 1];
        bytes.push(0xc0);
        let e = decode::<serde::de::IgnoredAny>(MessagePart::Request, "t", &bytes).unwrap_err();
        assert!(e.reason.contains("nested deeper than 64"), "{e}");
        // 64 levels pass the check (and then fail as the wrong type, not on depth).
        let e = decode::<u8>(MessagePart::Request, "t", &bytes[1..]).unwrap_err();
        assert!(!e.reason.contains("nested"), "{e}");
    }

    #[test]
    fn claimed_lengths_past_the_end_are_refused_before_allocating() {
        // A sequence claiming 2^32 - 1 items in a few bytes.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
        let e = decode::<Vec<u8>>(MessagePart::Request, "t", &bytes).unwrap_err();
        assert!(e.reason.contains("claims 4294967295"), "{e}");
    }

    #[test]
    fn messages_past_the_size_limit_are_refused_both_ways() {
        // A string of the limit's length encodes with its header: a few bytes too many.
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        let e = encode(MessagePart::Reply, "t", &big).unwrap_err();
        assert_eq!(e.part, MessagePart::Reply);
        assert!(e.reason.contains("more than the 16777216"), "{e}");
        let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
        let e = decode::<u8>(MessagePart::Request, "t", &bytes).unwrap_err();
        assert!(e.reason.contains("more than the 16777216"), "{e}");
    }
}
