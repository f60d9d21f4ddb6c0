//! Errors of reading and staging through a Dio.

use crate::event::PrimaryKey;

/// Reading or staging a record failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DioError {
    /// No live record has this key.
    #[error("record {0} not found")]
    NotFound(PrimaryKey),
    /// The record was stored as another type.
    #[error("record {key} is a {found}, not a {expected}")]
    WrongType {
        /// The record.
        key: PrimaryKey,
        /// The type asked for.
        expected: String,
        /// The type it was stored as.
        found: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode a {type_name}: {reason}")]
    Serialize {
        /// The type.
        type_name: String,
        /// The encoder's message.
        reason: String,
    },
    /// A stored body does not decode as its type (e.g. the struct changed incompatibly).
    #[error("record {key} does not decode as a {type_name}: {reason}")]
    Deserialize {
        /// The record.
        key: PrimaryKey,
        /// The type.
        type_name: String,
        /// The decoder's message.
        reason: String,
    },
    /// A `DaoRef` that points nowhere was loaded.
    #[error("the reference points to no record")]
    NullReference,
    /// The type has no index on that field.
    #[error("{type_name} has no index on {field}")]
    NoSuchIndex {
        /// The type.
        type_name: String,
        /// The field asked for.
        field: String,
    },
    /// The Dio this record came from was dropped, so there is nowhere to stage the change.
    #[error("the Dio this record belongs to was dropped")]
    DioClosed,
    /// A `DaoVec` that does not know its owning record was used; load the owner through a Dio
    /// (types deriving `Dao` are attached automatically) or call `DaoVec::attach`.
    #[error("the collection is not attached to a parent record")]
    DetachedCollection,
}
