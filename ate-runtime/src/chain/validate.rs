//! Checks a transaction must pass before it is written, against the view and the transactions
//! ahead of it in the same group commit.

use std::collections::HashMap;

use crate::event::PrimaryKey;
use crate::event::codec::EventRef;
use crate::schema::{self, IndexKey};
use crate::trust::meta::is_sealed;
use crate::view::View;

use super::CommitError;

type Touched = HashMap<PrimaryKey, Option<Vec<(&'static str, IndexKey)>>>;
type Claims = HashMap<(String, &'static str, IndexKey), PrimaryKey>;

/// The state after a checked transaction, until it is accepted (`None`: nothing changes).
pub(super) type Pending = Option<(Touched, Claims)>;

/// Validates the transactions of one group commit, in order.
pub(super) struct GroupValidator<'v> {
    view: &'v View,
    /// Latest state of each record (of a type with unique indexes) touched by an accepted
    /// transaction of this group:
    /// its unique index values (`None` when deleted).
    touched: Touched,
    /// Unique values claimed by accepted transactions of this group.
    claims: Claims,
}

fn unique_values(ev: &EventRef<'_>) -> Vec<(&'static str, IndexKey)> {
    let Some(body) = ev.body else {
        return Vec::new();
    };
    // As in the view: an encrypted or transformed body is not indexed.
    if is_sealed(|t| ev.meta(t).is_some()) {
        return Vec::new();
    }
    schema::indexes_for(ev.type_name)
        .iter()
        .filter(|s| s.unique)
        .filter_map(|s| (s.extract)(body).map(|v| (s.field, v)))
        .collect()
}

impl<'v> GroupValidator<'v> {
    pub(super) fn new(view: &'v View) -> Self {
        GroupValidator {
            view,
            touched: HashMap::new(),
            claims: HashMap::new(),
        }
    }

    /// Makes the effects of a checked transaction count for the ones after it.
    pub(super) fn accept(&mut self, pending: Pending) {
        if let Some((touched, claims)) = pending {
            self.touched = touched;
            self.claims = claims;
        }
    }

    /// Checks one transaction; [`GroupValidator::accept`] then records its effects.
    pub(super) fn check<'e>(&self, events: &[EventRef<'e>]) -> Result<Pending, CommitError> {
        // Only types with unique indexes take part; most transactions skip all of this. Records
        // written together mostly share their type: it is looked up once per run of a type.
        let mut last: Option<(&'e str, bool)> = None;
        let mut has_unique = |ev: &EventRef<'e>| match last {
            Some((name, unique)) if name == ev.type_name => unique,
            _ => {
                let unique = schema::indexes_for(ev.type_name).iter().any(|s| s.unique);
                last = Some((ev.type_name, unique));
                unique
            }
        };
        let with_unique: Vec<&EventRef<'e>> = events.iter().filter(|ev| has_unique(ev)).collect();
        if with_unique.is_empty() {
            return Ok(None);
        }
        let mut touched = self.touched.clone();
        let mut claims = self.claims.clone();
        for ev in with_unique {
            let values = if ev.tombstone {
                None
            } else {
                Some(unique_values(ev))
            };
            // Release what this record claimed before in the group.
            if let Some(Some(old)) = touched.get(&ev.key) {
                for (field, v) in old {
                    claims.remove(&(ev.type_name.to_string(), *field, v.clone()));
                }
            }
            if let Some(values) = &values {
                for (field, v) in values {
                    let claim = (ev.type_name.to_string(), *field, v.clone());
                    if let Some(owner) = claims.get(&claim)
                        && *owner != ev.key
                    {
                        return Err(CommitError::UniqueViolation {
                            type_name: ev.type_name.to_string(),
                            field,
                            existing: *owner,
                        });
                    }
                    if let Some(owner) = self.view.unique_owner(ev.type_name, field, v)
                        && owner != ev.key
                    {
                        // The committed owner may have released the value earlier in the group.
                        let released = match touched.get(&owner) {
                            Some(None) => true,
                            Some(Some(now)) => !now.iter().any(|(f, x)| f == field && x == v),
                            None => false,
                        };
                        if !released {
                            return Err(CommitError::UniqueViolation {
                                type_name: ev.type_name.to_string(),
                                field,
                                existing: owner,
                            });
                        }
                    }
                    claims.insert(claim, ev.key);
                }
            }
            touched.insert(ev.key, values);
        }
        Ok(Some((touched, claims)))
    }
}
