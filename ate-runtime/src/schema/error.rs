//! Why a schema record, or a record of an indexed type, is refused.

use crate::event::PrimaryKey;

use super::ValueError;

/// A schema record (an event of the reserved type [`SCHEMA_TYPE`](super::SCHEMA_TYPE)) or a
/// record of an indexed type breaks a rule of the chain's schema; or a linked type disagrees
/// with the schema the chain records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A schema record's body does not decode, is not canonical, or breaks a limit.
    #[error("malformed schema record: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A schema record's body has a version this build does not know.
    #[error("schema record of version {0}, this build knows version 1")]
    UnsupportedVersion(u8),
    /// A redefinition would drop an index, or make a unique index no longer unique: a schema
    /// only grows, so that no writer can lift a constraint the chain enforces.
    #[error("the schema of {type_name} cannot change its index on {field}: {how}")]
    Weakened {
        /// The type.
        type_name: String,
        /// The index's field.
        field: String,
        /// What the change would do.
        how: &'static str,
    },
    /// Two definitions of an index on one field read another position or kind: a schema
    /// record changing one, or a linked type that disagrees with the chain's record. The
    /// chain's record stands; a type whose layout changed needs a new stable name.
    #[error(
        "the index {type_name}.{field} is recorded in the chain as {recorded}, but defined as {other}; \
         a type whose fields moved or changed kind needs a new stable type name"
    )]
    Conflict {
        /// The type.
        type_name: String,
        /// The index's field.
        field: String,
        /// The chain's definition.
        recorded: String,
        /// The other definition.
        other: String,
    },
    /// A schema record is encrypted or transformed: every reader, a server without keys
    /// included, must read it.
    #[error("schema record {key} is encrypted or transformed; schema records are plaintext")]
    NotPlaintext {
        /// The record.
        key: PrimaryKey,
    },
    /// A schema record carries read or write rules of its own: it takes the chain root's.
    #[error("schema record {key} carries its own rules; schema records take the chain root's")]
    ExplicitRules {
        /// The record.
        key: PrimaryKey,
    },
    /// A schema record is deleted: a schema only grows.
    #[error("schema record {key} cannot be deleted")]
    Deleted {
        /// The record.
        key: PrimaryKey,
    },
    /// A schema record has a parent: schema records live at the chain's root.
    #[error("schema record {key} has a parent; schema records live at the chain's root")]
    HasParent {
        /// The record.
        key: PrimaryKey,
    },
    /// A schema record comes after an event of its type in its transaction, or a transaction
    /// holds two for one type.
    #[error(
        "the schema record of {type_name} must come before every event of that type in its transaction, once"
    )]
    Misplaced {
        /// The type.
        type_name: String,
    },
    /// A schema record for a type whose schema is recorded at another key, or that replaces a
    /// record instead of creating one: each type has one schema record.
    #[error(
        "the schema of {type_name} is recorded in record {existing}; write that record instead"
    )]
    AlreadyRecorded {
        /// The type.
        type_name: String,
        /// The record that holds it (the event's own key when it replaces another record).
        existing: PrimaryKey,
    },
    /// An event that is not the schema record of `type_name` is written at that record's key.
    #[error(
        "record {key} holds the schema of {type_name}; only that type's schema may be written there"
    )]
    KeyTaken {
        /// The record.
        key: PrimaryKey,
        /// The type whose schema it holds.
        type_name: String,
    },
    /// A record of an indexed type holds no value for one of its indexes (its body is not the
    /// array of the struct's fields, or the field is of another kind).
    #[error("record {key} ({type_name}) holds no value for its index on {field}: {reason}")]
    Unindexable {
        /// The record.
        key: PrimaryKey,
        /// The type.
        type_name: String,
        /// The index's field.
        field: String,
        /// Why.
        #[source]
        reason: ValueError,
    },
    /// A record of an indexed type is encrypted or transformed, so no reader without its key
    /// (a server) can index it: indexed records are stored readable by everyone.
    #[error(
        "record {key}: {type_name} has indexes, so its records must be stored readable by everyone, not encrypted or transformed"
    )]
    Sealed {
        /// The record.
        key: PrimaryKey,
        /// The type.
        type_name: String,
    },
    /// Two live records share a value of a unique index: found when an index is made unique,
    /// or when a log is replayed.
    #[error("records {key} and {existing} share a value of the unique index {type_name}.{field}")]
    Duplicate {
        /// The type.
        type_name: String,
        /// The index's field.
        field: String,
        /// The record found second.
        key: PrimaryKey,
        /// The record found first.
        existing: PrimaryKey,
    },
    /// A linked type's index reads another value at its recorded position than the type's own
    /// field holds (a serde attribute changes how the struct is encoded, e.g.
    /// `serialize_with` on the field or `into` on the struct).
    #[error(
        "the index {type_name}.{field} does not find the field's value in the stored body ({reason}); \
         an indexed field must be encoded as its own type, in its place among the struct's fields"
    )]
    Layout {
        /// The type.
        type_name: String,
        /// The index's field.
        field: String,
        /// What differs.
        reason: String,
    },
    /// Recording a type's schema needs the chain root's write right, which the session lacks
    /// (it may still write records of the type once an owner of the chain has recorded it).
    #[error(
        "the chain records no schema for {type_name} yet, and recording it needs the chain root's write right, which this session lacks"
    )]
    RootWriteNeeded {
        /// The type.
        type_name: String,
    },
}
