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
    /// A transaction is larger than the configured frame limit.
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The record size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or fsync failed; the handle refuses further writes until reopened.
    #[error("the log {store} is poisoned by an earlier I/O failure; reopen it to recover")]
    Poisoned {
        /// The store.
        store: String,
    },
}
