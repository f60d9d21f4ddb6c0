//! What a Dio has staged but not committed.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;

use super::DioError;
use crate::event::{BodyFormat, EventDraft, ParentLink, PrimaryKey, now_ms};

#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub type_name: Cow<'static, str>,
    pub parent: Option<ParentLink>,
    /// `None` stages a deletion.
    pub body: Option<Bytes>,
}

/// Staged writes, in the order each key was first staged (the last write of a key wins).
#[derive(Debug, Default)]
pub(crate) struct Staging {
    order: Vec<PrimaryKey>,
    ops: HashMap<PrimaryKey, Staged>,
    error: Option<DioError>,
}

impl Staging {
    fn stage(&mut self, key: PrimaryKey, op: Staged) {
        if self.ops.insert(key, op).is_none() {
            self.order.push(key);
        }
    }

    pub fn put(
        &mut self,
        key: PrimaryKey,
        type_name: Cow<'static, str>,
        parent: Option<ParentLink>,
        body: Bytes,
    ) {
        self.stage(
            key,
            Staged {
                type_name,
                parent,
                body: Some(body),
            },
        );
    }

    pub fn delete(&mut self, key: PrimaryKey, type_name: Cow<'static, str>) {
        self.stage(
            key,
            Staged {
                type_name,
                parent: None,
                body: None,
            },
        );
    }

    /// Remembers a failure that happened where it could not be returned (a guard's drop).
    pub fn fail(&mut self, e: DioError) {
        self.error.get_or_insert(e);
    }

    pub fn get(&self, key: &PrimaryKey) -> Option<&Staged> {
        self.ops.get(key)
    }

    /// Every staged key, in staging order.
    pub fn keys(&self) -> impl Iterator<Item = PrimaryKey> + '_ {
        self.order.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.error.is_none()
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.ops.clear();
        self.error = None;
    }

    /// Staged live records under `link`, in staging order.
    pub fn children_of(&self, link: ParentLink) -> impl Iterator<Item = PrimaryKey> + '_ {
        self.order.iter().copied().filter(move |k| {
            self.ops
                .get(k)
                .is_some_and(|op| op.body.is_some() && op.parent == Some(link))
        })
    }

    /// The events of the transaction, or the deferred error.
    pub fn drafts(&mut self) -> Result<Vec<EventDraft>, DioError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let ts = now_ms();
        Ok(self
            .order
            .iter()
            .map(|k| {
                let op = &self.ops[k];
                EventDraft {
                    key: *k,
                    timestamp_ms: ts,
                    tombstone: op.body.is_none(),
                    parent: op.parent,
                    type_name: op.type_name.clone(),
                    format: BodyFormat::MessagePack,
                    meta: Vec::new(),
                    body: op.body.clone(),
                }
            })
            .collect())
    }
}
