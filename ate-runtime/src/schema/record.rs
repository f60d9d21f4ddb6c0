//! The schema a chain records for each indexed type: events of the reserved type
//! [`SCHEMA_TYPE`], whose bodies are [`TypeSchema`]s (layout in `docs/FORMAT.md`).

use serde::{Deserialize, Serialize};

use super::error::SchemaError;
use super::value::{IndexKind, Scalar};
use super::{IndexKey, IndexSpec, TypeRegistration};
use crate::event::PrimaryKey;
use crate::event::codec::MAX_TYPE_NAME;

/// The reserved type name of schema records. No model type may take it: `#[derive(Dao)]` and
/// `ate::stable_name!` refuse it at compile time, the registry when a chain is opened, and a
/// chain refuses an event of this type that is not a valid schema record.
pub const SCHEMA_TYPE: &str = "ate.schema";

/// The version of the schema record's body written today.
pub const SCHEMA_RECORD_VERSION: u8 = 1;

/// Most indexes one type may have.
pub const MAX_INDEXES: usize = 64;

/// Longest field name an index may have, in bytes.
pub const MAX_FIELD_NAME: usize = 128;

/// Largest schema record body, in bytes (a full one of [`MAX_INDEXES`] is about 9 KiB).
pub const MAX_SCHEMA_BYTES: usize = 16 << 10;

/// One index of a type, as the chain records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexDef {
    /// The field's name (what finders look it up by).
    pub field: String,
    /// The field's position among the struct's serialized fields (0 for the first).
    pub position: u32,
    /// What the field holds.
    pub kind: IndexKind,
    /// Whether two live records may not share a value.
    pub unique: bool,
}

impl IndexDef {
    /// The index key of a record's plaintext `body`.
    ///
    /// # Errors
    ///
    /// The body holds no value of the index's kind at its position (see
    /// [`extract`](super::extract)).
    pub fn extract(&self, body: &[u8]) -> Result<IndexKey, super::ValueError> {
        super::extract(body, self.position, self.kind)
    }

    /// The definition a linked type declares.
    pub fn from_spec(spec: &IndexSpec) -> Self {
        IndexDef {
            field: spec.field.to_string(),
            position: spec.position,
            kind: spec.kind,
            unique: spec.unique,
        }
    }

    /// Whether `self` and `other` read the same value (same position and kind).
    fn same_value(&self, other: &IndexDef) -> bool {
        self.position == other.position && self.kind == other.kind
    }
}

/// The indexes of one type, as the chain records them (the body of a schema record).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeSchema {
    /// The stable type name of the records indexed.
    pub type_name: String,
    /// Its indexes, in the order recorded.
    pub indexes: Vec<IndexDef>,
}

/// A schema record's body, as encoded: `[version, type name, [[field, position, kind, optional,
/// unique], ...]]`.
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u8,
    type_name: String,
    indexes: Vec<WireIndex>,
}

#[derive(Serialize, Deserialize)]
struct WireIndex {
    field: String,
    position: u32,
    kind: u8,
    optional: bool,
    unique: bool,
}

impl TypeSchema {
    /// The schema a linked type declares (`None` when it has no index).
    pub fn of_registration(reg: &TypeRegistration) -> Option<Self> {
        (!reg.indexes.is_empty()).then(|| TypeSchema {
            type_name: reg.name.to_string(),
            indexes: reg.indexes.iter().map(IndexDef::from_spec).collect(),
        })
    }

    /// The index on `field`.
    pub fn index(&self, field: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.field == field)
    }

    /// Whether one of the indexes is unique.
    pub fn has_unique(&self) -> bool {
        self.indexes.iter().any(|i| i.unique)
    }

    /// The body of the schema record that records this schema.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Malformed`] when the schema breaks a rule [`TypeSchema::from_body`]
    /// checks (a reserved or overlong type name, too many indexes, a blank, overlong or
    /// repeated field name).
    pub fn to_body(&self) -> Result<Vec<u8>, SchemaError> {
        self.check()?;
        Ok(self.encode())
    }

    fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            version: SCHEMA_RECORD_VERSION,
            type_name: self.type_name.clone(),
            indexes: self
                .indexes
                .iter()
                .map(|i| WireIndex {
                    field: i.field.clone(),
                    position: i.position,
                    kind: i.kind.scalar.code(),
                    optional: i.kind.optional,
                    unique: i.unique,
                })
                .collect(),
        };
        rmp_serde::to_vec(&wire).expect("schema records always encode")
    }

    /// Decodes and checks a schema record's body: exactly the bytes [`TypeSchema::to_body`]
    /// writes for what it decodes to.
    ///
    /// # Errors
    ///
    /// [`SchemaError::UnsupportedVersion`] for a body of a later version,
    /// [`SchemaError::Malformed`] for anything else that is wrong.
    pub fn from_body(body: &[u8]) -> Result<Self, SchemaError> {
        let malformed = |reason: String| SchemaError::Malformed { reason };
        if body.len() > MAX_SCHEMA_BYTES {
            return Err(malformed(format!(
                "the body is {} bytes, more than {MAX_SCHEMA_BYTES}",
                body.len()
            )));
        }
        // The version comes first, so a later layout is named as such.
        if let [0x93, version, ..] = body
            && *version != SCHEMA_RECORD_VERSION
            && *version < 0x80
        {
            return Err(SchemaError::UnsupportedVersion(*version));
        }
        let wire: Wire = rmp_serde::from_slice(body)
            .map_err(|e| malformed(format!("it does not decode: {e}")))?;
        if wire.version != SCHEMA_RECORD_VERSION {
            return Err(SchemaError::UnsupportedVersion(wire.version));
        }
        let mut indexes = Vec::with_capacity(wire.indexes.len());
        for i in wire.indexes {
            let scalar = Scalar::from_code(i.kind).ok_or_else(|| {
                malformed(format!(
                    "index {:?} has the unknown kind {}",
                    i.field, i.kind
                ))
            })?;
            indexes.push(IndexDef {
                field: i.field,
                position: i.position,
                kind: IndexKind {
                    scalar,
                    optional: i.optional,
                },
                unique: i.unique,
            });
        }
        let schema = TypeSchema {
            type_name: wire.type_name,
            indexes,
        };
        schema.check()?;
        if schema.encode() != body {
            return Err(malformed(
                "it is not in the canonical encoding of what it says".into(),
            ));
        }
        Ok(schema)
    }

    /// The rules of a schema, whoever wrote it.
    fn check(&self) -> Result<(), SchemaError> {
        let malformed = |reason: String| Err(SchemaError::Malformed { reason });
        let name = &self.type_name;
        if name.trim().is_empty() || name.len() > MAX_TYPE_NAME {
            return malformed(format!(
                "the type name must be non-blank and at most {MAX_TYPE_NAME} bytes"
            ));
        }
        if name == SCHEMA_TYPE {
            return malformed(format!("{SCHEMA_TYPE} is reserved, it has no schema"));
        }
        if self.indexes.is_empty() || self.indexes.len() > MAX_INDEXES {
            return malformed(format!(
                "{name} has {} indexes; a schema records 1 to {MAX_INDEXES}",
                self.indexes.len()
            ));
        }
        for (n, i) in self.indexes.iter().enumerate() {
            if i.field.trim().is_empty() || i.field.len() > MAX_FIELD_NAME {
                return malformed(format!(
                    "{name}: an index field name must be non-blank and at most {MAX_FIELD_NAME} bytes"
                ));
            }
            if self.indexes[..n].iter().any(|o| o.field == i.field) {
                return malformed(format!("{name}: the field {:?} is indexed twice", i.field));
            }
        }
        Ok(())
    }

    /// Whether `next` may replace this schema: it keeps every index, on the same position and
    /// kind, and every unique index unique. It may add indexes and make indexes unique.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Weakened`] for an index dropped or no longer unique,
    /// [`SchemaError::Conflict`] for an index that reads another position or kind, and
    /// [`SchemaError::Malformed`] for a schema of another type.
    pub fn check_successor(&self, next: &TypeSchema) -> Result<(), SchemaError> {
        if next.type_name != self.type_name {
            return Err(SchemaError::Malformed {
                reason: format!(
                    "the schema record of {} cannot become that of {}",
                    self.type_name, next.type_name
                ),
            });
        }
        for old in &self.indexes {
            let Some(new) = next.index(&old.field) else {
                return Err(SchemaError::Weakened {
                    type_name: self.type_name.clone(),
                    field: old.field.clone(),
                    how: "the index would be dropped",
                });
            };
            if !old.same_value(new) {
                return Err(self.conflict(old, new));
            }
            if old.unique && !new.unique {
                return Err(SchemaError::Weakened {
                    type_name: self.type_name.clone(),
                    field: old.field.clone(),
                    how: "the index would no longer be unique",
                });
            }
        }
        Ok(())
    }

    fn conflict(&self, recorded: &IndexDef, other: &IndexDef) -> SchemaError {
        SchemaError::Conflict {
            type_name: self.type_name.clone(),
            field: recorded.field.clone(),
            recorded: format!("{} at position {}", recorded.kind, recorded.position),
            other: format!("{} at position {}", other.kind, other.position),
        }
    }

    /// This recorded schema extended with what `declared` (a linked type's) adds: its new
    /// indexes, and uniqueness where it asks for it. Indexes the chain records and `declared`
    /// lacks stay: the chain's record wins. `None` when `declared` adds nothing.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Conflict`] when both define an index on one field at another position or
    /// with another kind.
    pub fn extended_by(&self, declared: &TypeSchema) -> Result<Option<TypeSchema>, SchemaError> {
        let mut next = self.clone();
        let mut changed = false;
        for d in &declared.indexes {
            match next.indexes.iter_mut().find(|i| i.field == d.field) {
                Some(i) if !i.same_value(d) => return Err(self.conflict(i, d)),
                Some(i) => {
                    if d.unique && !i.unique {
                        i.unique = true;
                        changed = true;
                    }
                }
                None => {
                    next.indexes.push(d.clone());
                    changed = true;
                }
            }
        }
        Ok(changed.then_some(next))
    }

    /// Checks a record `key` of this type that a program linking the type is about to store:
    /// its plaintext `body` holds a value for every index, and for each index the linked type
    /// also declares (`declared`), the value read by position is the one its field holds.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Unindexable`] for a missing value, [`SchemaError::Layout`] for one that
    /// differs from the field's.
    pub fn check_record(
        &self,
        key: PrimaryKey,
        declared: &[IndexSpec],
        body: &[u8],
    ) -> Result<(), SchemaError> {
        for def in &self.indexes {
            let found = def
                .extract(body)
                .map_err(|reason| SchemaError::Unindexable {
                    key,
                    type_name: self.type_name.clone(),
                    field: def.field.clone(),
                    reason,
                })?;
            let Some(spec) = declared.iter().find(|s| s.field == def.field) else {
                continue;
            };
            let own = (spec.extract)(body)
                .ok_or_else(|| "the body does not decode as the type".to_string())
                .and_then(|v| super::canonical_key(def.kind, &v).map_err(|e| e.to_string()));
            match own {
                Ok(v) if v == found => {}
                Ok(_) => {
                    return Err(SchemaError::Layout {
                        type_name: self.type_name.clone(),
                        field: def.field.clone(),
                        reason: format!("position {} holds another value", def.position),
                    });
                }
                Err(reason) => {
                    return Err(SchemaError::Layout {
                        type_name: self.type_name.clone(),
                        field: def.field.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// The indexes of `next` (a successor of this schema) that have no entries yet: added, or
    /// made unique (whose values must be checked for duplicates). Together with whether each
    /// one is new.
    pub(crate) fn changes_to<'n>(&self, next: &'n TypeSchema) -> Vec<(&'n IndexDef, bool)> {
        next.indexes
            .iter()
            .filter_map(|n| match self.index(&n.field) {
                None => Some((n, true)),
                Some(o) if n.unique && !o.unique => Some((n, false)),
                Some(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the bytes, decoding gives a schema whose body is exactly those bytes, or a
        /// typed error; never a panic.
        #[test]
        fn arbitrary_bodies_decode_canonically_or_not_at_all(
            body in proptest::collection::vec(any::<u8>(), 0..96),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            if let Ok(s) = TypeSchema::from_body(&body) {
                prop_assert_eq!(s.to_body().unwrap(), body);
            }
            // Mutants of a valid body.
            let mut mutant = schema().to_body().unwrap();
            for (at, x) in flips {
                let n = mutant.len();
                mutant[at % n] ^= x;
            }
            if let Ok(s) = TypeSchema::from_body(&mutant) {
                prop_assert_eq!(s.to_body().unwrap(), mutant);
            }
        }
    }

    fn schema() -> TypeSchema {
        TypeSchema {
            type_name: "bank.Account".into(),
            indexes: vec![
                IndexDef {
                    field: "number".into(),
                    position: 0,
                    kind: IndexKind::of(Scalar::String),
                    unique: true,
                },
                IndexDef {
                    field: "branch".into(),
                    position: 1,
                    kind: IndexKind::of(Scalar::Integer).optional(),
                    unique: false,
                },
            ],
        }
    }

    #[test]
    fn a_schema_round_trips_through_its_body() {
        let s = schema();
        let body = s.to_body().unwrap();
        assert_eq!(TypeSchema::from_body(&body).unwrap(), s);
        assert_eq!(body[0], 0x93);
        assert_eq!(body[1], SCHEMA_RECORD_VERSION);
    }

    #[test]
    fn bodies_that_break_a_rule_are_refused() {
        let malformed = |s: &TypeSchema| {
            let body = s.encode();
            matches!(
                TypeSchema::from_body(&body),
                Err(SchemaError::Malformed { .. })
            ) && s.to_body().is_err()
        };
        let mut s = schema();
        s.type_name = SCHEMA_TYPE.into();
        assert!(malformed(&s));
        s.type_name = " ".into();
        assert!(malformed(&s));
        s.type_name = "x".repeat(MAX_TYPE_NAME + 1);
        assert!(malformed(&s));
        let mut s = schema();
        s.indexes.clear();
        assert!(malformed(&s));
        let mut s = schema();
        s.indexes[1].field = "number".into();
        assert!(malformed(&s));
        s.indexes[1].field = "f".repeat(MAX_FIELD_NAME + 1);
        assert!(malformed(&s));
        let mut s = schema();
        let i = s.indexes[1].clone();
        s.indexes = (0..=MAX_INDEXES)
            .map(|n| IndexDef {
                field: format!("f{n}"),
                ..i.clone()
            })
            .collect();
        assert!(malformed(&s));
        s.indexes.pop();
        assert!(TypeSchema::from_body(&s.to_body().unwrap()).is_ok());

        // Not canonical: a wider integer for the position; an unknown kind; a later version;
        // trailing bytes; too large.
        let body = schema().to_body().unwrap();
        let mut wide = body.clone();
        let pos = wide
            .windows(7)
            .position(|w| w == b"\xa6number")
            .expect("field")
            + 7;
        assert_eq!(wide[pos], 0x00);
        wide.splice(pos..pos + 1, [0xcc, 0x00]);
        assert!(matches!(
            TypeSchema::from_body(&wide),
            Err(SchemaError::Malformed { .. })
        ));
        let mut unknown = body.clone();
        unknown[pos + 1] = 9;
        assert!(matches!(
            TypeSchema::from_body(&unknown),
            Err(SchemaError::Malformed { .. })
        ));
        let mut later = body.clone();
        later[1] = 2;
        assert_eq!(
            TypeSchema::from_body(&later),
            Err(SchemaError::UnsupportedVersion(2))
        );
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(TypeSchema::from_body(&trailing).is_err());
        assert!(TypeSchema::from_body(&vec![0x93; MAX_SCHEMA_BYTES + 1]).is_err());
        assert!(TypeSchema::from_body(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn successors_keep_every_index_and_its_uniqueness() {
        let s = schema();
        assert!(s.check_successor(&s).is_ok());
        let mut more = s.clone();
        more.indexes[1].unique = true;
        more.indexes.push(IndexDef {
            field: "owner".into(),
            position: 2,
            kind: IndexKind::of(Scalar::Bool),
            unique: false,
        });
        assert!(s.check_successor(&more).is_ok());
        assert_eq!(
            s.changes_to(&more)
                .iter()
                .map(|(i, new)| (i.field.as_str(), *new))
                .collect::<Vec<_>>(),
            [("branch", false), ("owner", true)]
        );

        let mut dropped = s.clone();
        dropped.indexes.remove(0);
        assert!(matches!(
            s.check_successor(&dropped),
            Err(SchemaError::Weakened { field, .. }) if field == "number"
        ));
        let mut weaker = s.clone();
        weaker.indexes[0].unique = false;
        assert!(matches!(
            s.check_successor(&weaker),
            Err(SchemaError::Weakened { field, .. }) if field == "number"
        ));
        let mut moved = s.clone();
        moved.indexes[0].position = 3;
        assert!(matches!(
            s.check_successor(&moved),
            Err(SchemaError::Conflict { field, .. }) if field == "number"
        ));
        let mut other = s.clone();
        other.indexes[0].kind = IndexKind::of(Scalar::Integer);
        assert!(matches!(
            s.check_successor(&other),
            Err(SchemaError::Conflict { .. })
        ));
        let mut renamed = s.clone();
        renamed.type_name = "bank.Other".into();
        assert!(s.check_successor(&renamed).is_err());
    }

    #[test]
    fn a_declared_schema_extends_the_recorded_one_and_never_weakens_it() {
        let recorded = schema();
        // The linked type lacks `branch` and does not ask for `number` to be unique: nothing
        // to record, the chain's record stands.
        let mut declared = recorded.clone();
        declared.indexes.remove(1);
        declared.indexes[0].unique = false;
        assert_eq!(recorded.extended_by(&declared).unwrap(), None);
        // It adds an index and makes `branch` unique.
        let mut declared = recorded.clone();
        declared.indexes[1].unique = true;
        declared.indexes.push(IndexDef {
            field: "owner".into(),
            position: 2,
            kind: IndexKind::of(Scalar::String),
            unique: false,
        });
        let next = recorded.extended_by(&declared).unwrap().expect("a change");
        assert!(recorded.check_successor(&next).is_ok());
        assert!(next.indexes[1].unique);
        assert_eq!(next.indexes.len(), 3);
        // It reads `number` at another position.
        let mut declared = recorded.clone();
        declared.indexes[0].position = 5;
        assert!(matches!(
            recorded.extended_by(&declared),
            Err(SchemaError::Conflict { .. })
        ));
    }
}
