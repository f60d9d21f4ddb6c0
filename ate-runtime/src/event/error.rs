//! Errors of the event layer.

/// A byte string is not a well-formed event or transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// Bytes were left over after the last field.
    #[error("trailing bytes after the {what}")]
    TrailingBytes {
        /// The structure that was complete.
        what: &'static str,
    },
    /// The event was written by a newer format.
    #[error("unsupported event version {0}")]
    UnsupportedEventVersion(u8),
    /// Flag bits this version does not define.
    #[error("unknown event flags {0:#010b}")]
    UnknownFlags(u8),
    /// A payload kind this version does not define.
    #[error("unknown payload kind {0}")]
    UnknownPayloadKind(u8),
    /// A body format id this version does not define.
    #[error("unknown body format {0}")]
    UnknownBodyFormat(u8),
    /// A field longer than its limit.
    #[error("{what} is too long ({len} bytes)")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its declared length.
        len: usize,
    },
    /// An event slot of a pruned transaction that is neither an event nor a pruned one.
    #[error("unknown event slot {0}")]
    UnknownSlot(u8),
    /// A pruned transaction that prunes no event, or keeps none (it is written as a whole
    /// transaction, or not at all).
    #[error("a pruned transaction must keep some events and prune others")]
    NothingPruned,
    /// A text field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        what: &'static str,
    },
}
