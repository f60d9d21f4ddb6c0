//! The schema records a transaction writes, and the schema its indexed records are checked by.
//!
//! The chain records each indexed type's indexes ([`TypeSchema`]) in a schema record, written
//! by the Dio in the same transaction as the first record of the type that declares them, and
//! again (the same record, a new version) when a type declares more than the chain records: an
//! index added, an index made unique. The chain's record wins otherwise: an index it records
//! and the type lacks stays, and is checked; an index recorded at another position or of
//! another kind is [`SchemaError::Conflict`].

use std::borrow::Cow;
use std::sync::Arc;

use super::super::DioError;
use super::super::staging::{FastMap, Staged};
use crate::chain::Chain;
use crate::event::PrimaryKey;
use crate::schema::{self, SCHEMA_TYPE, SchemaError, TypeSchema};
use crate::trust::Authorization;

/// What [`plan`] found.
pub(super) struct SchemaPlan {
    /// Schema records to write ahead of the transaction's writes.
    pub records: Vec<(PrimaryKey, Staged)>,
    /// The schema each indexed type of the transaction is checked by.
    pub by_type: FastMap<String, Arc<TypeSchema>>,
}

impl SchemaPlan {
    /// A planning error, told as a schema error when it is about a schema record (the session
    /// lacks the root's write right it needs).
    pub fn explain(&self, e: DioError) -> DioError {
        if let DioError::MissingWriteKey { key } = &e
            && let Some((_, op)) = self.records.iter().find(|(k, _)| k == key)
        {
            let type_name = op
                .body
                .as_deref()
                .and_then(|b| TypeSchema::from_body(b).ok())
                .map(|s| s.type_name)
                .unwrap_or_default();
            return SchemaError::RootWriteNeeded { type_name }.into();
        }
        e
    }
}

/// The schema records the staged writes `ops` need, against the chain's view.
pub(super) fn plan(chain: &Chain, ops: &[(PrimaryKey, Staged)]) -> Result<SchemaPlan, DioError> {
    let mut out = SchemaPlan {
        records: Vec::new(),
        by_type: FastMap::default(),
    };
    let view = chain.view().read();
    // Types looked at already (records written together mostly share theirs).
    let mut seen: FastMap<&str, ()> = FastMap::default();
    let mut last: Option<&str> = None;
    for (_, op) in ops {
        let name = &*op.type_name;
        if op.body.is_none() || name == SCHEMA_TYPE || last == Some(name) {
            continue;
        }
        last = Some(name);
        if seen.insert(name, ()).is_some() {
            continue;
        }
        let recorded = view.schema_of(name);
        let declared = schema::registration_named(name).and_then(TypeSchema::of_registration);
        let (write, schema) = match (recorded, declared) {
            (None, None) => continue,
            (Some((_, r)), None) => (None, r),
            (None, Some(d)) => (Some(PrimaryKey::generate()), Arc::new(d)),
            (Some((key, r)), Some(d)) => match r.extended_by(&d)? {
                None => (None, r),
                Some(next) => (Some(key), Arc::new(next)),
            },
        };
        if let Some(key) = write {
            let staged = Staged {
                type_name: Cow::Borrowed(SCHEMA_TYPE),
                parent: None,
                body: Some(schema.to_body()?.into()),
                // The chain root's rules: plaintext, written by the root's writers.
                auth: Authorization::default(),
                previous: None,
                create: false,
                sign_all: false,
            };
            out.records.push((key, staged));
        }
        out.by_type.insert(name.to_string(), schema);
    }
    Ok(out)
}
