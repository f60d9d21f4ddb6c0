//! Finding records by a secondary index.

use std::borrow::Cow;

use serde::Serialize;

use super::{Dao, Dio, DioError, Storable};
use crate::event::PrimaryKey;
use crate::schema::{self, IndexDef};

impl Dio {
    /// Records of type `T` whose indexed field `field` equals `value` (staged writes included),
    /// in key order. The index is the chain's (see [`Chain::schema_of`](crate::Chain::schema_of)),
    /// or `T`'s own (`#[dao(index)]`) until the chain records it: then every record of the type
    /// is read, which the chain's index makes unnecessary once a record of `T` is written.
    ///
    /// # Errors
    ///
    /// [`DioError::NoSuchIndex`] when neither the chain nor `T` has an index on `field`;
    /// [`DioError::Serialize`] when `value` does not encode; the errors of
    /// [`Dio::load`] for each record found. A value not of the index's kind matches nothing.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn find<T: Storable, Q: Serialize + ?Sized>(
        &self,
        field: &str,
        value: &Q,
    ) -> Result<Vec<Dao<T>>, DioError> {
        let type_name = schema::checked_type_name_of::<T>()?;
        let recorded = self.chain.view().read().schema_of(type_name);
        let (def, indexed) = match recorded.as_ref().and_then(|(_, s)| s.index(field)) {
            Some(def) => (Cow::Borrowed(def), true),
            None => {
                let spec = schema::registration_of::<T>()
                    .and_then(|r| r.indexes.iter().find(|s| s.field == field))
                    .ok_or_else(|| DioError::NoSuchIndex {
                        type_name: type_name.to_string(),
                        field: field.to_string(),
                    })?;
                (Cow::Owned(IndexDef::from_spec(spec)), false)
            }
        };
        let encoded = schema::index_key(value).map_err(|reason| DioError::Serialize {
            type_name: type_name.to_string(),
            reason,
        })?;
        let Ok(wanted) = schema::canonical_key(def.kind, &encoded) else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<PrimaryKey> = {
            let view = self.chain.view().read();
            if indexed {
                view.lookup(type_name, field, &wanted)
            } else {
                // The chain does not index the field yet: every record of the type is read.
                let mut keys: Vec<PrimaryKey> = view
                    .records_of(type_name)
                    .into_iter()
                    .filter(|(_, body)| {
                        body.is_some_and(|b| def.extract(b).is_ok_and(|v| v == wanted))
                    })
                    .map(|(k, _)| k)
                    .collect();
                keys.sort_unstable();
                keys
            }
        };
        {
            let staging = self.staging.lock();
            if staging.is_empty() {
                // The lists are in key order already.
                drop(staging);
                return keys.iter().map(|k| self.load_now(k)).collect();
            }
            keys.retain(|k| staging.get(k).is_none());
            keys.extend(staging.keys().filter(|k| {
                staging.get(k).is_some_and(|op| {
                    op.type_name == type_name
                        && op
                            .body
                            .as_ref()
                            .is_some_and(|b| def.extract(b).is_ok_and(|v| v == wanted))
                })
            }));
        }
        keys.sort();
        keys.iter().map(|k| self.load_now(k)).collect()
    }
}
