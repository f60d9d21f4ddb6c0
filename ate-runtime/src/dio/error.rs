//! Errors of reading and staging through a Dio.

use crate::crypto::Hash;
use crate::event::PrimaryKey;
use crate::schema::{NameClash, SchemaError};
use crate::trust::TrustError;

/// Reading or staging a record failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DioError {
    /// No live record has this key.
    #[error("record {0} not found")]
    NotFound(PrimaryKey),
    /// The record was stored under another stable type name: another type, or this type
    /// before it was renamed or moved (a plain type's default name is its Rust name without
    /// module paths). To read old records after a rename, keep the old name:
    /// `ate::stable_name!(Type = "<old name>")`, or `#[dao(name = "<old name>")]`.
    #[error(
        "record {key} is stored as a `{found}`, not a `{expected}`; if `{found}` is the old name of \
         this type (renamed or moved), keep that name with `ate::stable_name!(YourType = \"{found}\")` \
         or `#[dao(name = \"{found}\")]`"
    )]
    WrongType {
        /// The record.
        key: PrimaryKey,
        /// The stable type name asked for.
        expected: String,
        /// The stable type name it was stored under.
        found: String,
    },
    /// The value's type is a plain (unregistered) type whose stable name another type in this
    /// process also has, so records of the two could not be told apart. Nothing is staged or
    /// read; give one of them its own name.
    #[error(transparent)]
    TypeNameClash(#[from] NameClash),
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
    /// The record is encrypted for a key this session does not hold (no plaintext is returned).
    #[error(
        "record {key} is encrypted for read key {read_key:?}, which this session does not hold"
    )]
    MissingReadKey {
        /// The record.
        key: PrimaryKey,
        /// The key it needs.
        read_key: Hash,
    },
    /// The transaction that wrote the record's version holds no wrapped data key for the read
    /// key its body is encrypted for (the view was not given that transaction's keys trailer).
    #[error(
        "record {key} is encrypted for read key {read_key:?}, but transaction {seq} holds no wrapped key for it"
    )]
    MissingKeyEntry {
        /// The record.
        key: PrimaryKey,
        /// The transaction that wrote its current version.
        seq: u64,
        /// The read key its body is encrypted for.
        read_key: Hash,
    },
    /// The ciphertext does not decrypt under the key (tampered, or the wrong key).
    #[error("record {key} does not decrypt: {reason}")]
    DecryptFailed {
        /// The record.
        key: PrimaryKey,
        /// The crypto layer's message.
        reason: String,
    },
    /// Writing the record needs a signing key this session does not hold.
    #[error(
        "writing record {key} needs one of its writers' signing keys; the session has none of them"
    )]
    MissingWriteKey {
        /// The record.
        key: PrimaryKey,
    },
    /// The record (or the parent it inherits from) is final: `WriteOption::Nobody`.
    #[error("record {key} is final (WriteOption::Nobody)")]
    Final {
        /// The record.
        key: PrimaryKey,
    },
    /// A body transformer failed or is not registered.
    #[error("body transformer {id} of record {key}: {reason}")]
    Transform {
        /// The record.
        key: PrimaryKey,
        /// The transformer id.
        id: u16,
        /// What went wrong.
        reason: String,
    },
    /// The record's trust metadata is unreadable.
    #[error("record {key}: {reason}")]
    BadMetadata {
        /// The record.
        key: PrimaryKey,
        /// What is wrong.
        reason: String,
    },
    /// The type has no index on that field.
    #[error("{type_name} has no index on {field}")]
    NoSuchIndex {
        /// The type.
        type_name: String,
        /// The field asked for.
        field: String,
    },
    /// A record of a type with indexes would be stored encrypted or transformed, so the view
    /// (which holds no keys) could not index it. Indexes cover records readable by everyone:
    /// store such records with `ReadOption::Everyone` (`#[dao(read = "everyone")]`), or drop
    /// the index and look them up by key or through a relation.
    #[error(
        "record {key}: {type_name} has indexes, but the record would be {why}; indexed records must be stored readable by everyone"
    )]
    Unindexable {
        /// The record.
        key: PrimaryKey,
        /// The type.
        type_name: String,
        /// "encrypted" or "transformed".
        why: &'static str,
    },
    /// A signature this session just made does not verify under its own public key (a fault
    /// while signing). Nothing was written; committing again signs again.
    #[error("the signature just made with key {signer:?} does not verify: {reason}")]
    SignatureSelfCheck {
        /// The id of the signing key.
        signer: Hash,
        /// The crypto layer's message.
        reason: String,
    },
    /// The Dio this record came from was dropped, so there is nowhere to stage the change.
    #[error("the Dio this record belongs to was dropped")]
    DioClosed,
    /// A record's read rule names an NTRU public key by id that neither the rule carries nor
    /// the chain knows (no transaction of the chain named it): build the rule with
    /// `ReadOption::from_public_key`.
    #[error(
        "record {key} is to be encrypted for public key {read_key:?}, which this chain does not know"
    )]
    UnknownPublicKey {
        /// The record.
        key: PrimaryKey,
        /// The public key's id.
        read_key: Hash,
    },
    /// The write breaks a rule of the chain of trust that validation would refuse too (e.g.
    /// rules inherited through too many parents, a record moved under its own descendant or
    /// to a place no session key may write).
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The write breaks a rule of the chain's schema that validation would refuse too (a
    /// linked type whose index disagrees with the chain's record, a record without a value
    /// for an index), or recording a type's schema needs a right the session lacks.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A `DaoVec` that does not know its owning record was used; load the owner through a Dio
    /// (types deriving `Dao` are attached automatically) or call `DaoVec::attach`.
    #[error("the collection is not attached to a parent record")]
    DetachedCollection,
}
