//! Checks a transaction must pass before it is written, against the view and the transactions
//! ahead of it in the same group commit: the chain's schema (schema records, and the indexes
//! they define) and unique index values.
//!
//! Everything here follows the schema the chain records (see [`schema`](crate::schema)), not
//! the types this process links, so a server that links none of them refuses what any other
//! process would. The rules:
//!
//! - An event of the reserved type [`SCHEMA_TYPE`] is a schema record: a plaintext body that
//!   decodes as a [`TypeSchema`], no parent, no rules of its own (it takes the chain root's,
//!   which the trust checks apply as to any record), never deleted. It comes before every
//!   event of its type in its transaction, once. A type's first schema record is a new record;
//!   a later one replaces that record and must be a successor of it
//!   ([`TypeSchema::check_successor`]: no index dropped or weakened, none moved).
//! - No other event is written at a schema record's key.
//! - Every record of an indexed type is plaintext and holds a value of each of its indexes.
//! - A unique index value belongs to one live record; an index made unique (or a unique index
//!   added) finds no two live records sharing a value.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::event::PrimaryKey;
use crate::event::codec::{EventRef, TransactionRef};
use crate::schema::{IndexKey, SCHEMA_TYPE, SchemaError, TypeSchema};
use crate::trust::EventKeys;
use crate::trust::meta::{TAG_AUTHORIZATION, TAG_PREVIOUS, is_sealed};
use crate::view::View;

use super::{CommitError, Prepared};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A unique index value: type, field, value.
type Claim = (Arc<str>, Arc<str>, IndexKey);

/// The unique index values one record holds.
#[derive(Debug, Clone)]
struct Held {
    type_name: Arc<str>,
    values: Vec<(Arc<str>, IndexKey)>,
}

/// What the accepted transactions of a group changed, over the view.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupState {
    /// Schemas recorded in the group: type -> (its record's key, schema).
    schemas: FastMap<Arc<str>, (PrimaryKey, Arc<TypeSchema>)>,
    /// The keys of the schema records written in the group.
    schema_keys: FastMap<PrimaryKey, Arc<str>>,
    /// The unique index values of records written in the group (`None`: deleted), and of every
    /// record of a type whose unique index was created in the group.
    records: FastMap<PrimaryKey, Option<Held>>,
    /// Unique values claimed in the group.
    claims: FastMap<Claim, PrimaryKey>,
    /// Unique indexes created in the group (type, field): the view has no entries for them, so
    /// `claims` holds every value.
    fresh: FastSet<(Arc<str>, Arc<str>)>,
}

/// The state after a checked transaction, until it is accepted (`None`: nothing changes).
pub(super) type Pending = Option<Box<GroupState>>;

/// Why a transaction is refused here.
#[derive(Debug)]
pub(super) enum Refusal {
    /// A unique index value held by another record.
    Unique {
        type_name: String,
        field: String,
        key: PrimaryKey,
        existing: PrimaryKey,
    },
    /// A rule of the schema.
    Schema(SchemaError),
    /// A transaction accepted earlier in the group no longer decodes (never happens: it was
    /// decoded before).
    Malformed(crate::event::DecodeError),
}

impl From<SchemaError> for Refusal {
    fn from(e: SchemaError) -> Self {
        Refusal::Schema(e)
    }
}

impl From<Refusal> for CommitError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unique {
                type_name,
                field,
                existing,
                ..
            } => CommitError::UniqueViolation {
                type_name,
                field,
                existing,
            },
            Refusal::Schema(e) => CommitError::Schema(e),
            Refusal::Malformed(e) => CommitError::Malformed(e),
        }
    }
}

impl Refusal {
    /// The refusal as a replayed log reports it.
    pub(super) fn into_schema_error(self) -> SchemaError {
        match self {
            Refusal::Unique {
                type_name,
                field,
                key,
                existing,
            } => SchemaError::Duplicate {
                type_name,
                field,
                key,
                existing,
            },
            Refusal::Schema(e) => e,
            Refusal::Malformed(e) => SchemaError::Malformed {
                reason: e.to_string(),
            },
        }
    }
}

/// Validates the transactions of one group commit, in order.
pub(super) struct GroupValidator<'v> {
    view: &'v View,
    /// What the accepted transactions of the group changed.
    state: GroupState,
    /// Their payloads, in order: read again only when a later one creates a unique index.
    earlier: Vec<Bytes>,
}

/// A schema record's own rules (those that need no record): its schema.
fn schema_of_record(ev: &EventRef<'_>) -> Result<TypeSchema, SchemaError> {
    let key = ev.key;
    if ev.tombstone {
        return Err(SchemaError::Deleted { key });
    }
    if ev.parent.is_some() {
        return Err(SchemaError::HasParent { key });
    }
    if is_sealed(|t| ev.meta(t).is_some()) {
        return Err(SchemaError::NotPlaintext { key });
    }
    if ev.meta(TAG_AUTHORIZATION).is_some() {
        return Err(SchemaError::ExplicitRules { key });
    }
    TypeSchema::from_body(ev.body.unwrap_or_default())
}

/// The plaintext body of an event (`None`: encrypted, transformed, or none).
fn plaintext<'e>(ev: &EventRef<'e>) -> Option<&'e [u8]> {
    if is_sealed(|t| ev.meta(t).is_some()) {
        None
    } else {
        ev.body
    }
}

impl<'v> GroupValidator<'v> {
    pub(super) fn new(view: &'v View) -> Self {
        GroupValidator {
            view,
            state: GroupState::default(),
            earlier: Vec::new(),
        }
    }

    /// Makes the effects of a checked transaction (its `payload`) count for the ones after it.
    pub(super) fn accept(&mut self, pending: Pending, payload: &Bytes) {
        if let Some(state) = pending {
            self.state = *state;
        }
        self.earlier.push(payload.clone());
    }

    /// The schema of a type, as the group leaves it.
    fn schema(&self, state: &GroupState, name: &str) -> Option<(PrimaryKey, Arc<TypeSchema>)> {
        match state.schemas.get(name) {
            Some(s) => Some(s.clone()),
            None => self.view.schema_of(name),
        }
    }

    /// The type whose schema record has this key, as the group leaves it.
    fn schema_record_type(&self, state: &GroupState, key: &PrimaryKey) -> Option<Arc<str>> {
        match state.schema_keys.get(key) {
            Some(t) => Some(t.clone()),
            None => self.view.schema_record_type(key).cloned(),
        }
    }

    /// Whether a transaction with events of these types and keys needs [`GroupValidator::check`]
    /// (most do not, and are not decoded for it): a schema record, a record of an indexed type,
    /// or an event at a schema record's key.
    pub(super) fn needs_check(&self, tx: &Prepared) -> bool {
        let state = &self.state;
        if tx
            .type_names()
            .any(|t| t == SCHEMA_TYPE || self.schema(state, t).is_some())
        {
            return true;
        }
        let has_keys = self.view.has_schemas() || !state.schema_keys.is_empty();
        has_keys
            && tx
                .events
                .iter()
                .any(|e| self.schema_record_type(state, &e.key()).is_some())
    }

    /// Checks one transaction; [`GroupValidator::accept`] then records its effects.
    pub(super) fn check(&self, events: &[EventRef<'_>]) -> Result<Pending, Refusal> {
        let changes_state = events.iter().any(|ev| {
            ev.type_name == SCHEMA_TYPE
                || self
                    .schema(&self.state, ev.type_name)
                    .is_some_and(|(_, s)| s.has_unique())
        });
        if !changes_state {
            // Only indexes that are not unique: each record must hold their values.
            for ev in events {
                self.refuse_at_schema_key(&self.state, ev)?;
                self.index_values(&self.state, ev)?;
            }
            return Ok(None);
        }
        let mut state = self.state.clone();
        let created = self.check_schema_records(&mut state, events)?;
        for (type_name, schema, fields) in created {
            self.seed(&mut state, &type_name, &schema, &fields)?;
        }
        for ev in events.iter().filter(|ev| ev.type_name != SCHEMA_TYPE) {
            let indexed = self.index_values(&state, ev)?;
            let Some((schema, values)) = indexed.filter(|(schema, _)| schema.has_unique()) else {
                // A record that held unique values and now has a type without any.
                if state.records.contains_key(&ev.key) {
                    release(&mut state, &ev.key);
                    state.records.insert(ev.key, None);
                }
                continue;
            };
            let type_name: Arc<str> = Arc::from(ev.type_name);
            release(&mut state, &ev.key);
            let Some(values) = values else {
                state.records.insert(ev.key, None);
                continue;
            };
            let mut held = Vec::new();
            for (def, v) in schema.indexes.iter().zip(values).filter(|(d, _)| d.unique) {
                let field: Arc<str> = Arc::from(def.field.as_str());
                self.claim(&mut state, &type_name, &field, v.clone(), ev.key)?;
                held.push((field, v));
            }
            state.records.insert(
                ev.key,
                Some(Held {
                    type_name,
                    values: held,
                }),
            );
        }
        Ok(Some(Box::new(state)))
    }

    /// Refuses an event other than a schema record at a schema record's key.
    fn refuse_at_schema_key(&self, state: &GroupState, ev: &EventRef<'_>) -> Result<(), Refusal> {
        if ev.type_name != SCHEMA_TYPE
            && let Some(owner) = self.schema_record_type(state, &ev.key)
        {
            return Err(SchemaError::KeyTaken {
                key: ev.key,
                type_name: owner.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// The schema of an event's type and the values of its indexes, in the schema's order
    /// (`None`: a tombstone); `None` for a type without indexes.
    #[allow(clippy::type_complexity)]
    fn index_values(
        &self,
        state: &GroupState,
        ev: &EventRef<'_>,
    ) -> Result<Option<(Arc<TypeSchema>, Option<Vec<IndexKey>>)>, Refusal> {
        let Some((_, schema)) = self.schema(state, ev.type_name) else {
            return Ok(None);
        };
        if ev.tombstone {
            return Ok(Some((schema, None)));
        }
        if is_sealed(|t| ev.meta(t).is_some()) {
            return Err(SchemaError::Sealed {
                key: ev.key,
                type_name: ev.type_name.to_string(),
            }
            .into());
        }
        let body = ev.body.unwrap_or_default();
        let mut values = Vec::with_capacity(schema.indexes.len());
        for def in &schema.indexes {
            let v = def
                .extract(body)
                .map_err(|reason| SchemaError::Unindexable {
                    key: ev.key,
                    type_name: ev.type_name.to_string(),
                    field: def.field.clone(),
                    reason,
                })?;
            values.push(v);
        }
        Ok(Some((schema, Some(values))))
    }

    /// Checks the transaction's schema records, in order, into `state`; returns, per type, the
    /// unique indexes they create (added, or made unique), whose values must be gathered.
    #[allow(clippy::type_complexity)]
    fn check_schema_records(
        &self,
        state: &mut GroupState,
        events: &[EventRef<'_>],
    ) -> Result<Vec<(Arc<str>, Arc<TypeSchema>, Vec<Arc<str>>)>, Refusal> {
        let mut seen: FastSet<&str> = FastSet::default();
        let mut recorded: FastSet<String> = FastSet::default();
        let mut created = Vec::new();
        for ev in events {
            self.refuse_at_schema_key(state, ev)?;
            if ev.type_name != SCHEMA_TYPE {
                seen.insert(ev.type_name);
                continue;
            }
            let next = schema_of_record(ev)?;
            let name = next.type_name.clone();
            if seen.contains(name.as_str()) || !recorded.insert(name.clone()) {
                return Err(SchemaError::Misplaced { type_name: name }.into());
            }
            let fresh: Vec<Arc<str>> = match self.schema(state, &name) {
                Some((key, current)) => {
                    if key != ev.key {
                        return Err(SchemaError::AlreadyRecorded {
                            type_name: name,
                            existing: key,
                        }
                        .into());
                    }
                    current.check_successor(&next)?;
                    current
                        .changes_to(&next)
                        .into_iter()
                        .filter(|(def, _)| def.unique)
                        .map(|(def, _)| Arc::from(def.field.as_str()))
                        .collect()
                }
                None => {
                    if let Some(owner) = self.schema_record_type(state, &ev.key) {
                        return Err(SchemaError::KeyTaken {
                            key: ev.key,
                            type_name: owner.to_string(),
                        }
                        .into());
                    }
                    if ev.meta(TAG_PREVIOUS).is_some() {
                        // It would turn another record into the schema record.
                        return Err(SchemaError::AlreadyRecorded {
                            type_name: name,
                            existing: ev.key,
                        }
                        .into());
                    }
                    next.indexes
                        .iter()
                        .filter(|def| def.unique)
                        .map(|def| Arc::from(def.field.as_str()))
                        .collect()
                }
            };
            let type_name: Arc<str> = Arc::from(name.as_str());
            let next = Arc::new(next);
            state
                .schemas
                .insert(type_name.clone(), (ev.key, next.clone()));
            state.schema_keys.insert(ev.key, type_name.clone());
            if !fresh.is_empty() {
                created.push((type_name, next, fresh));
            }
        }
        Ok(created)
    }

    /// Gathers the values of the unique indexes `fields` of `type_name`, just created by
    /// `schema`, from every live record of the type (the view's, as the group's earlier
    /// transactions left them), refusing two records that share one. Records without a value
    /// for an index are not in it (the view leaves them out alike).
    fn seed(
        &self,
        state: &mut GroupState,
        type_name: &Arc<str>,
        schema: &TypeSchema,
        fields: &[Arc<str>],
    ) -> Result<(), Refusal> {
        let mut current: FastMap<PrimaryKey, Option<&[u8]>> =
            self.view.records_of(type_name).into_iter().collect();
        for payload in &self.earlier {
            let tx = TransactionRef::decode(payload).map_err(Refusal::Malformed)?;
            for ev in &tx.events {
                if ev.type_name == &**type_name && !ev.tombstone {
                    current.insert(ev.key, plaintext(ev));
                } else {
                    current.remove(&ev.key);
                }
            }
        }
        let mut keys: Vec<PrimaryKey> = current.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let body = current.get(&key).copied().flatten().unwrap_or_default();
            let mut held = Vec::new();
            for def in schema.indexes.iter().filter(|d| d.unique) {
                let Ok(v) = def.extract(body) else {
                    continue;
                };
                let field: Arc<str> = Arc::from(def.field.as_str());
                if fields.contains(&field) {
                    let claim = (type_name.clone(), field.clone(), v.clone());
                    if let Some(existing) = state.claims.get(&claim)
                        && *existing != key
                    {
                        return Err(SchemaError::Duplicate {
                            type_name: type_name.to_string(),
                            field: def.field.clone(),
                            key,
                            existing: *existing,
                        }
                        .into());
                    }
                    state.claims.insert(claim, key);
                }
                held.push((field, v));
            }
            state.records.insert(
                key,
                Some(Held {
                    type_name: type_name.clone(),
                    values: held,
                }),
            );
        }
        for field in fields {
            state.fresh.insert((type_name.clone(), field.clone()));
        }
        Ok(())
    }

    /// Claims a unique value for `key`, unless another live record holds it.
    fn claim(
        &self,
        state: &mut GroupState,
        type_name: &Arc<str>,
        field: &Arc<str>,
        value: IndexKey,
        key: PrimaryKey,
    ) -> Result<(), Refusal> {
        let refuse = |existing: PrimaryKey| Refusal::Unique {
            type_name: type_name.to_string(),
            field: field.to_string(),
            key,
            existing,
        };
        let claim = (type_name.clone(), field.clone(), value);
        if let Some(owner) = state.claims.get(&claim)
            && *owner != key
        {
            return Err(refuse(*owner));
        }
        if !state.fresh.contains(&(type_name.clone(), field.clone())) {
            for owner in self.view.lookup(type_name, field, &claim.2) {
                // A committed owner may have released the value earlier in the group.
                let released = match state.records.get(&owner) {
                    Some(None) => true,
                    Some(Some(now)) => {
                        now.type_name != *type_name
                            || !now.values.iter().any(|(f, x)| f == field && *x == claim.2)
                    }
                    None => false,
                };
                if owner != key && !released {
                    return Err(refuse(owner));
                }
            }
        }
        state.claims.insert(claim, key);
        Ok(())
    }
}

/// Releases the unique values `key` claimed in the group.
fn release(state: &mut GroupState, key: &PrimaryKey) {
    if let Some(Some(old)) = state.records.get(key) {
        for (field, v) in &old.values {
            let claim = (old.type_name.clone(), field.clone(), v.clone());
            if state.claims.get(&claim) == Some(key) {
                state.claims.remove(&claim);
            }
        }
    }
}
