//! The error every ATE operation converts into.

use crate::chain::{ChainKeyError, CommitError, OpenError, StreamError};
use crate::dio::DioError;
use crate::log::LogError;

/// Any failure of ATE; each layer's error converts into it, so `?` works in `main`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AteError {
    /// Opening a chain failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Committing a transaction failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Reading or staging through a Dio failed.
    #[error(transparent)]
    Dio(#[from] DioError),
    /// The redo log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading a chain's committed transactions failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A bus or queue could not deliver.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    /// A chain key was refused.
    #[error(transparent)]
    ChainKey(#[from] ChainKeyError),
    /// A connection failed.
    #[cfg(any(feature = "client", feature = "server"))]
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}
