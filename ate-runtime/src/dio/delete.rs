//! Deleting records: a tombstone for the record and for every record below it in the tree.
//!
//! A record's children (and theirs, recursively) are deleted in the same transaction, each before
//! its parent, so no record is ever left pointing at a parent that no longer exists. Each deletion
//! needs the write right on that record, as any other change does. A record created in the same
//! Dio and never committed is simply forgotten.

use std::collections::HashSet;

use super::DioError;
use super::staging::{Staged, Staging};
use crate::event::{ParentLink, PrimaryKey};
use crate::view::View;

impl Staging {
    /// Stages the deletion of `key` and of everything below it. `read_at` is the version the
    /// caller read the record at, when it went through a `Dao` (a change made since is then a
    /// lost update, refused at commit).
    pub fn delete(&mut self, key: &PrimaryKey, read_at: Option<u64>) -> Result<(), DioError> {
        let chain = self.chain.clone();
        let view = chain.view().read();
        if !self.is_live(&view, key) {
            return Err(DioError::NotFound(*key));
        }
        // Depth-first pre-order, then reversed: every record comes after all of its descendants.
        let mut order = Vec::new();
        let mut seen = HashSet::from([*key]);
        let mut stack = vec![*key];
        while let Some(k) = stack.pop() {
            for child in self.children_of_record(&view, &k) {
                if seen.insert(child) {
                    order.push(child);
                    stack.push(child);
                }
            }
        }
        for child in order.iter().rev() {
            self.delete_one(&view, child, None);
        }
        self.delete_one(&view, key, read_at);
        Ok(())
    }

    fn is_live(&self, view: &View, key: &PrimaryKey) -> bool {
        match self.get(key) {
            Some(op) => op.body.is_some(),
            None => view.contains(key),
        }
    }

    /// The live children of a record in all of its collections: committed ones still under it,
    /// then staged ones.
    fn children_of_record(&self, view: &View, parent: &PrimaryKey) -> Vec<PrimaryKey> {
        let mut links: Vec<ParentLink> = view.collections_of(parent);
        for k in self.keys() {
            if let Some(link) = self.get(&k).and_then(|op| op.parent)
                && link.parent == *parent
                && !links.contains(&link)
            {
                links.push(link);
            }
        }
        let mut out = Vec::new();
        for link in links {
            out.extend(view.children(&link).filter(|k| {
                self.get(k)
                    .is_none_or(|op| op.body.is_some() && op.parent == Some(link))
            }));
            out.extend(
                self.children_of(link)
                    .filter(|k| view.parent_of(k) != Some(link)),
            );
        }
        out
    }

    /// Stages one tombstone (or forgets a record that was never committed).
    fn delete_one(&mut self, view: &View, key: &PrimaryKey, read_at: Option<u64>) {
        let staged = match self.get(key) {
            Some(op) if op.body.is_some() => {
                if op.previous.is_none() && self.version(key).is_none() && !view.contains(key) {
                    self.unstage(key);
                    return;
                }
                Staged {
                    type_name: op.type_name.clone(),
                    parent: op.parent,
                    body: None,
                    auth: op.auth.clone(),
                    previous: op.previous.or(read_at),
                    create: false,
                    sign_all: false,
                }
            }
            // Already deleted here.
            Some(_) => return,
            None => {
                let Some(entry) = view.get(key) else {
                    return;
                };
                Staged {
                    type_name: view.type_name(entry.type_id).to_string().into(),
                    parent: view.parent_of(key),
                    body: None,
                    auth: view.auth_of(key).map(|a| (*a).clone()).unwrap_or_default(),
                    previous: read_at.or(Some(entry.seq)),
                    create: false,
                    sign_all: false,
                }
            }
        };
        self.stage_last(*key, staged);
    }
}
