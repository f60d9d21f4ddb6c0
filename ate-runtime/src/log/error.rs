//! Errors of the log layer.

use std::path::PathBuf;

/// A redo-log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An I/O call failed.
    #[error("I/O error on {store}: {source}")]
    Io {
        /// The store (a file path or "memory").
        store: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A record before the tail failed its checks: the log is damaged, nothing was skipped.
    #[error("corrupt log {store} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The store (a file path or "memory").
        store: String,
        /// Where the damaged record starts.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The file is not a redo log of ours (its magic differs).
    #[error("{store} is not an ATE redo log")]
    NotALog {
        /// The store.
        store: String,
    },
    /// The log was written by a newer format version.
    #[error("{store} has format version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// The store.
        store: String,
        /// The version in the file header.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another handle (maybe another process) holds the log.
    #[error("{path} is locked by another process or handle")]
    Locked {
        /// The log file.
        path: PathBuf,
    },
    /// An intact frame in the log is larger than the configured limit
    /// (`AteConfig::max_transaction_bytes`), which is smaller than when the frame was written.
    /// The frame passed its checksum, so it is acknowledged data: the log is refused and left
    /// untouched, never cut. Reopen with a limit of at least `len`.
    #[error(
        "log {store}: the intact frame at byte offset {offset} holds {len} bytes, over the \
         configured limit of {max} bytes; reopen with a limit of at least {len}"
    )]
    FrameTooLarge {
        /// The store (a file path or "memory").
        store: String,
        /// Where the frame starts.
        offset: u64,
        /// The frame's payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A record to append is larger than the configured frame limit (nothing was written).
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The record size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The store cannot do what was asked (a backend without the operation).
    #[error("the log store {store} does not support {what}")]
    Unsupported {
        /// The store.
        store: String,
        /// The operation.
        what: &'static str,
    },
    /// An earlier write or fsync failed; the handle refuses further writes until reopened.
    #[error("the log {store} is poisoned by an earlier I/O failure; reopen it to recover")]
    Poisoned {
        /// The store.
        store: String,
    },
}

impl LogError {
    /// A copy of this error, to report one failure to several callers (a failed group commit
    /// answers every transaction in the group). Every variant and field is kept; an I/O error is
    /// re-created from its operating-system error code when it has one, otherwise from its kind
    /// and message (its inner source, if any, is kept only as text).
    pub fn duplicate(&self) -> LogError {
        match self {
            LogError::Io { store, source } => LogError::Io {
                store: store.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            LogError::Corrupt {
                store,
                offset,
                reason,
            } => LogError::Corrupt {
                store: store.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            LogError::NotALog { store } => LogError::NotALog {
                store: store.clone(),
            },
            LogError::UnsupportedVersion {
                store,
                found,
                supported,
            } => LogError::UnsupportedVersion {
                store: store.clone(),
                found: *found,
                supported: *supported,
            },
            LogError::Locked { path } => LogError::Locked { path: path.clone() },
            LogError::FrameTooLarge {
                store,
                offset,
                len,
                max,
            } => LogError::FrameTooLarge {
                store: store.clone(),
                offset: *offset,
                len: *len,
                max: *max,
            },
            LogError::TooLarge { len, max } => LogError::TooLarge {
                len: *len,
                max: *max,
            },
            LogError::Unsupported { store, what } => LogError::Unsupported {
                store: store.clone(),
                what,
            },
            LogError::Poisoned { store } => LogError::Poisoned {
                store: store.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogError;

    #[test]
    fn a_duplicate_keeps_the_variant_kind_and_os_code() {
        let os = LogError::Io {
            store: "a.log".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        match os.duplicate() {
            LogError::Io { store, source } => {
                assert_eq!(store, "a.log");
                assert_eq!(source.raw_os_error(), Some(28));
            }
            other => panic!("{other:?}"),
        }
        let custom = LogError::Io {
            store: "memory".into(),
            source: std::io::Error::other("injected failure"),
        };
        let copy = custom.duplicate();
        assert_eq!(copy.to_string(), custom.to_string());
        assert!(
            matches!(&copy, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::Other)
        );
        let corrupt = LogError::Corrupt {
            store: "b.log".into(),
            offset: 7,
            reason: "why".into(),
        };
        assert_eq!(corrupt.duplicate().to_string(), corrupt.to_string());
    }
}
