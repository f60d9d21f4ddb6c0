//! The ATE engine: an immutable, encrypted, distributed data store with an in-memory
//! materialized view.
//!
//! Users depend on the `ate` crate, which re-exports this one with the derive macros. Layers,
//! lowest first (a layer never imports a higher one): [`crypto`], [`event`], [`log`], [`trust`],
//! [`schema`], [`view`], [`chain`], [`session`], [`dio`].

// Denied rather than forbidden so that one module, the SIMD SHA3 of `crypto::keccak_x`, can allow
// it.
#![deny(unsafe_code)]

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
pub mod schema;
pub mod session;
pub mod trust;
pub mod view;

pub use chain::{AteConfig, Chain, ChainBuilder, ChainKey, ChainRegistry, CommitError, OpenError};
pub use dio::{Dao, DaoMut, DaoRef, DaoVec, Dio, DioError, Storable};
pub use error::AteError;
pub use event::PrimaryKey;
pub use session::AteSession;

/// The names a program needs: `use ate_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::chain::{AteConfig, Chain, ChainBuilder, ChainKey, ChainRegistry, CommitError};
    pub use crate::crypto::{
        EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey, PublicEncryptKey, PublicSignKey,
    };
    pub use crate::dio::{Dao, DaoMut, DaoRef, DaoVec, Dio, DioError};
    pub use crate::error::AteError;
    pub use crate::event::PrimaryKey;
    pub use crate::session::AteSession;
    pub use crate::trust::{ReadOption, WriteOption};
}
