//! Secondary indexes of the view, as the chain's schema records define them (see
//! [`schema`](crate::schema)).

use std::collections::HashMap;

use crate::event::PrimaryKey;
pub use crate::schema::IndexKey;
use crate::schema::{IndexDef, TypeSchema};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Index {
    def: IndexDef,
    /// Index value -> records, sorted by key.
    map: FastMap<IndexKey, Vec<PrimaryKey>>,
}

impl Index {
    fn insert(&mut self, key: PrimaryKey, body: &[u8]) {
        // A body without a value for the index (written before the index was, or by a
        // program that did not check it) is not in it.
        if let Ok(v) = self.def.extract(body) {
            let keys = self.map.entry(v).or_default();
            if let Err(at) = keys.binary_search(&key) {
                keys.insert(at, key);
            }
        }
    }

    fn remove(&mut self, key: PrimaryKey, body: &[u8]) {
        if let Ok(v) = self.def.extract(body)
            && let Some(keys) = self.map.get_mut(&v)
        {
            if let Ok(at) = keys.binary_search(&key) {
                keys.remove(at);
            }
            if keys.is_empty() {
                self.map.remove(&v);
            }
        }
    }
}

/// All indexes, by interned type id.
#[derive(Debug, Default)]
pub(super) struct Indexes {
    by_type: FastMap<u32, Vec<Index>>,
}

impl Indexes {
    /// Takes the recorded `schema` of a type (a successor of the one it had, checked by
    /// validation): indexes it adds are created empty, indexes it makes unique are marked so.
    /// Returns the positions of the indexes created, for the caller to fill.
    pub(super) fn define(&mut self, type_id: u32, schema: &TypeSchema) -> Vec<usize> {
        let indexes = self.by_type.entry(type_id).or_default();
        let mut created = Vec::new();
        for def in &schema.indexes {
            match indexes.iter_mut().find(|i| i.def.field == def.field) {
                Some(i) => i.def.unique |= def.unique,
                None => {
                    created.push(indexes.len());
                    indexes.push(Index {
                        def: def.clone(),
                        map: FastMap::default(),
                    });
                }
            }
        }
        created
    }

    /// Whether the type has any index (most have none, and skip all index work).
    pub(super) fn is_indexed(&self, type_id: u32) -> bool {
        !self.by_type.is_empty() && self.by_type.contains_key(&type_id)
    }

    pub(super) fn insert(&mut self, key: PrimaryKey, type_id: u32, body: &[u8]) {
        if let Some(idx) = self.by_type.get_mut(&type_id) {
            for i in idx {
                i.insert(key, body);
            }
        }
    }

    /// Adds a record to the index at `position` of its type only (an index being filled).
    pub(super) fn insert_into(
        &mut self,
        key: PrimaryKey,
        type_id: u32,
        position: usize,
        body: &[u8],
    ) {
        if let Some(i) = self
            .by_type
            .get_mut(&type_id)
            .and_then(|idx| idx.get_mut(position))
        {
            i.insert(key, body);
        }
    }

    pub(super) fn remove(&mut self, key: PrimaryKey, type_id: u32, body: &[u8]) {
        if let Some(idx) = self.by_type.get_mut(&type_id) {
            for i in idx {
                i.remove(key, body);
            }
        }
    }

    /// A value of a unique index that two records share: the type, the field, the record
    /// found second and the first.
    pub(super) fn first_duplicate(&self) -> Option<(u32, String, PrimaryKey, PrimaryKey)> {
        self.by_type.iter().find_map(|(type_id, idx)| {
            idx.iter().filter(|i| i.def.unique).find_map(|i| {
                i.map
                    .values()
                    .find(|keys| keys.len() > 1)
                    .map(|keys| (*type_id, i.def.field.to_string(), keys[1], keys[0]))
            })
        })
    }

    pub(super) fn lookup(&self, type_id: u32, field: &str, value: &[u8]) -> Vec<PrimaryKey> {
        self.by_type
            .get(&type_id)
            .and_then(|idx| idx.iter().find(|i| i.def.field == field))
            .and_then(|i| i.map.get(value))
            .cloned()
            .unwrap_or_default()
    }
}
