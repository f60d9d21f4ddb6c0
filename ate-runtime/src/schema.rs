//! The type registry: what `#[derive(Dao)]` declares about a model type, found at run time.
//!
//! Each derived type submits one [`TypeRegistration`] through `inventory`; the runtime looks it
//! up by Rust `TypeId` (when storing a value) or by stable type name (when replaying a log, to
//! rebuild indexes). Plain serde types have no registration and are named by
//! `std::any::type_name`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::event::PrimaryKey;

/// The encoded value of an indexed field.
pub type IndexKey = Vec<u8>;

/// A secondary index on one field of a type.
#[derive(Debug)]
pub struct IndexSpec {
    /// The field name (what `find_by_<field>` looks up).
    pub field: &'static str,
    /// Whether two live records may not share a value.
    pub unique: bool,
    /// Decodes a body and encodes the field's value; `None` when the body does not decode.
    pub extract: fn(&[u8]) -> Option<IndexKey>,
}

/// The default read or write rule for new records of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AccessDefault {
    /// Take the parent's rule (the chain's root rule for records without a parent).
    #[default]
    Inherit,
    /// Anyone may.
    Everyone,
    /// No one may (for writes: the record is final once committed).
    Nobody,
}

/// What a model type declares (submitted by `#[derive(Dao)]`).
#[derive(Debug)]
pub struct TypeRegistration {
    /// The stable type name recorded in every event of the type.
    pub name: &'static str,
    /// The Rust type (a function because `TypeId::of` is not usable in statics).
    pub type_id: fn() -> TypeId,
    /// Default read rule for new records.
    pub read: AccessDefault,
    /// Default write rule for new records.
    pub write: AccessDefault,
    /// Tells the value's `DaoVec` fields which record owns them.
    pub attach: fn(&mut dyn Any, PrimaryKey),
    /// Secondary indexes.
    pub indexes: &'static [IndexSpec],
}

inventory::collect!(TypeRegistration);

/// Looked up on every store and every sealed event: a fast hasher, not SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct Registry {
    by_type: FastMap<TypeId, &'static TypeRegistration>,
    by_name: FastMap<&'static str, &'static TypeRegistration>,
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry {
            by_type: FastMap::default(),
            by_name: FastMap::default(),
        };
        for reg in inventory::iter::<TypeRegistration> {
            r.by_type.insert((reg.type_id)(), reg);
            if let Some(prev) = r.by_name.insert(reg.name, reg) {
                tracing::error!(
                    name = reg.name,
                    first = ?(prev.type_id)(),
                    "two model types share one stable type name; rename one with #[dao(name = ...)]"
                );
            }
        }
        r
    })
}

/// The registration of a Rust type, if it derives `Dao`.
pub fn registration_of<T: 'static>() -> Option<&'static TypeRegistration> {
    registry().by_type.get(&TypeId::of::<T>()).copied()
}

/// The registration behind a stable type name.
pub fn registration_named(name: &str) -> Option<&'static TypeRegistration> {
    registry().by_name.get(name).copied()
}

/// The stable name recorded for values of `T`.
pub fn type_name_of<T: 'static>() -> &'static str {
    registration_of::<T>()
        .map(|r| r.name)
        .unwrap_or_else(std::any::type_name::<T>)
}

/// The indexes declared for a stable type name.
pub fn indexes_for(name: &str) -> &'static [IndexSpec] {
    registration_named(name).map(|r| r.indexes).unwrap_or(&[])
}

/// Encodes an index value the way [`IndexSpec::extract`] must: MessagePack of the field value.
/// A `&str` and a `String` encode alike, so a finder can take either.
pub fn index_key<Q: serde::Serialize + ?Sized>(value: &Q) -> Result<IndexKey, String> {
    rmp_serde::to_vec(value).map_err(|e| e.to_string())
}

/// Decodes a body of `T` and encodes one of its fields as an index key (for generated
/// [`IndexSpec::extract`] functions).
pub fn extract_with<T: serde::de::DeserializeOwned, F: serde::Serialize + ?Sized>(
    body: &[u8],
    field: impl FnOnce(&T) -> &F,
) -> Option<IndexKey> {
    let value: T = rmp_serde::from_slice(body).ok()?;
    index_key(field(&value)).ok()
}

/// A model type's stable name, known at compile time. `#[derive(Dao)]` implements it; the same
/// name is in the type's [`TypeRegistration`], which the runtime uses.
pub trait DaoType {
    /// The stable type name recorded in every event of the type (the struct's name unless
    /// `#[dao(name = "...")]` overrides it).
    const TYPE_NAME: &'static str;
}
