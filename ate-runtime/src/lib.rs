//! The ATE engine: an immutable, encrypted, distributed data store with an in-memory
//! materialized view.
//!
//! Users depend on the `ate` crate, which re-exports this one with the derive macros. Layers,
//! lowest first (a layer never imports a higher one): [`crypto`], [`event`], [`log`], [`trust`],
//! [`schema`], the materialized view, [`chain`], [`session`], [`dio`], [`bus`], [`service`], and,
//! with the features `client` and `server`, `net` (connections between clients and servers).
//!
//! The modules above are the public API: what a program, a plugin or a storage backend needs.
//! The engine's encodings and internals (codecs, framing, trust metadata and trailers) are in
//! [`unstable`], outside the semantic-versioning promise: they change with the format.

// Denied rather than forbidden so that one module, the SIMD SHA3 of `crypto::keccak_x`, can allow
// it.
#![deny(unsafe_code)]

pub mod bus;
pub mod chain;
pub mod crypto;
pub mod dio;
mod error;
pub mod event;
// Entry points of the fuzz targets in `fuzz/`: not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod log;
#[cfg(any(feature = "client", feature = "server"))]
pub mod net;
pub mod schema;
pub mod service;
pub mod session;
pub mod trust;
pub mod unstable;
pub(crate) mod view;

pub use chain::{
    AteConfig, Chain, ChainBuilder, ChainKey, ChainKeyError, ChainRegistry, CommitError,
    CompactError, CompactMode, CompactReport, OpenError, StreamError,
};
pub use dio::{Dao, DaoMut, DaoRef, DaoVec, Dio, DioError, Storable};
pub use error::AteError;
pub use event::PrimaryKey;
pub use log::{LogError, RecoveryMode, RecoveryReport};
pub use service::{InvocationContext, InvokeError, LocalServices};
pub use session::AteSession;
pub use trust::{IntegrityMode, ReadOption, TrustError, WriteOption};

/// The names a program needs: `use ate_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::bus::{Bus, BusError};
    pub use crate::chain::{
        AteConfig, Chain, ChainBuilder, ChainKey, ChainKeyError, ChainRegistry, CommitError,
        CompactMode, OpenError,
    };
    pub use crate::crypto::{
        EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey, PublicEncryptKey, PublicSignKey,
    };
    pub use crate::dio::{Dao, DaoMut, DaoRef, DaoVec, Dio, DioError, Storable};
    pub use crate::error::AteError;
    pub use crate::event::PrimaryKey;
    pub use crate::log::{LogError, RecoveryMode};
    pub use crate::service::{InvocationContext, InvokeError, LocalServices};
    pub use crate::session::AteSession;
    pub use crate::trust::{IntegrityMode, ReadOption, WriteOption};
}
