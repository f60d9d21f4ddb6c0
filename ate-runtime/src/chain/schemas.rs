//! What a chain records of its types' indexes, for programs that do not link the types.

use serde::Serialize;

use super::Chain;
use crate::dio::DioError;
use crate::event::PrimaryKey;
use crate::schema::{self, TypeSchema};

impl Chain {
    /// The indexes the chain records for the type `type_name` (its schema record), if any.
    /// These are the indexes every process enforces and builds for the type, whatever types it
    /// links.
    pub fn schema_of(&self, type_name: &str) -> Option<TypeSchema> {
        self.view()
            .read()
            .schema_of(type_name)
            .map(|(_, s)| (*s).clone())
    }

    /// Every type schema the chain records, by type name.
    pub fn schemas(&self) -> Vec<TypeSchema> {
        let mut all: Vec<TypeSchema> = self
            .view()
            .read()
            .schemas()
            .map(|s| (**s).clone())
            .collect();
        all.sort_by(|a, b| a.type_name.cmp(&b.type_name));
        all
    }

    /// The live records of type `type_name` whose index on `field` (as the chain records it)
    /// holds `value`, in key order: a lookup for programs that do not link the type (a typed
    /// program uses [`Dio::find`](crate::Dio::find)). A value not of the index's kind (see
    /// [`IndexKind`](schema::IndexKind)) matches nothing.
    ///
    /// # Errors
    ///
    /// [`DioError::NoSuchIndex`] when the chain records no such index, [`DioError::Serialize`]
    /// when `value` does not encode.
    pub fn find_keys<Q: Serialize + ?Sized>(
        &self,
        type_name: &str,
        field: &str,
        value: &Q,
    ) -> Result<Vec<PrimaryKey>, DioError> {
        let view = self.view().read();
        let def = view
            .schema_of(type_name)
            .and_then(|(_, s)| s.index(field).cloned())
            .ok_or_else(|| DioError::NoSuchIndex {
                type_name: type_name.to_string(),
                field: field.to_string(),
            })?;
        let encoded = schema::index_key(value).map_err(|reason| DioError::Serialize {
            type_name: type_name.to_string(),
            reason,
        })?;
        Ok(match schema::canonical_key(def.kind, &encoded) {
            Ok(key) => view.lookup(type_name, field, &key),
            Err(_) => Vec::new(),
        })
    }
}
