//! The error every ATE operation converts into.

use crate::chain::{ChainKeyError, CommitError, OpenError, StreamError};
use crate::dio::DioError;
use crate::log::LogError;
use crate::service::{AddServiceError, InvokeError};

/// A handler's error in an [`AteError::Invoke`].
type BoxedHandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// A compaction did not happen (the chain went on with its log as it was).
    #[error(transparent)]
    Compact(#[from] crate::chain::CompactError),
    /// A connection failed.
    #[cfg(any(feature = "client", feature = "server"))]
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// A service could not be added.
    #[error(transparent)]
    AddService(#[from] AddServiceError),
    /// A service call failed (the handler's own error boxed).
    #[error(transparent)]
    Invoke(InvokeError<BoxedHandlerError>),
}

impl<E: std::error::Error + Send + Sync + 'static> From<InvokeError<E>> for AteError {
    fn from(e: InvokeError<E>) -> Self {
        AteError::Invoke(e.map_handler(|e| Box::new(e) as BoxedHandlerError))
    }
}
