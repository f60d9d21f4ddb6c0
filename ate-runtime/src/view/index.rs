//! Secondary indexes of the view, declared per type in the [`schema`](crate::schema) registry.

use std::collections::HashMap;

use crate::event::PrimaryKey;
pub use crate::schema::{IndexKey, IndexSpec};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Index {
    spec: &'static IndexSpec,
    /// Index value -> records, sorted by key.
    map: FastMap<IndexKey, Vec<PrimaryKey>>,
}

/// All indexes, by interned type id.
#[derive(Debug, Default)]
pub(super) struct Indexes {
    by_type: FastMap<u32, Vec<Index>>,
}

impl Indexes {
    pub(super) fn register_type(&mut self, type_id: u32, name: &str) {
        let specs = crate::schema::indexes_for(name);
        if !specs.is_empty() {
            self.by_type.insert(
                type_id,
                specs
                    .iter()
                    .map(|spec| Index {
                        spec,
                        map: FastMap::default(),
                    })
                    .collect(),
            );
        }
    }

    /// Whether the type has any index (most have none, and skip all index work).
    pub(super) fn is_indexed(&self, type_id: u32) -> bool {
        !self.by_type.is_empty() && self.by_type.contains_key(&type_id)
    }

    pub(super) fn insert(&mut self, key: PrimaryKey, type_id: u32, body: &[u8]) {
        let Some(idx) = self.by_type.get_mut(&type_id) else {
            return;
        };
        for i in idx {
            if let Some(v) = (i.spec.extract)(body) {
                let keys = i.map.entry(v).or_default();
                if let Err(at) = keys.binary_search(&key) {
                    keys.insert(at, key);
                }
            }
        }
    }

    pub(super) fn remove(&mut self, key: PrimaryKey, type_id: u32, body: &[u8]) {
        let Some(idx) = self.by_type.get_mut(&type_id) else {
            return;
        };
        for i in idx {
            if let Some(v) = (i.spec.extract)(body)
                && let Some(keys) = i.map.get_mut(&v)
            {
                if let Ok(at) = keys.binary_search(&key) {
                    keys.remove(at);
                }
                if keys.is_empty() {
                    i.map.remove(&v);
                }
            }
        }
    }

    pub(super) fn lookup(&self, type_id: u32, field: &str, value: &[u8]) -> Vec<PrimaryKey> {
        self.by_type
            .get(&type_id)
            .and_then(|idx| idx.iter().find(|i| i.spec.field == field))
            .and_then(|i| i.map.get(value))
            .cloned()
            .unwrap_or_default()
    }
}
