//! What a Dio has staged but not committed.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;

use tokio::sync::oneshot;

use super::DioError;
use crate::chain::CommitError;

/// Keyed by random primary keys, touched on every store: a fast hasher, not SipHash.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use crate::chain::Chain;
use crate::event::{ParentLink, PrimaryKey};
use crate::trust::{Authorization, ReadOption, WriteOption};

/// One staged write: a new version (plaintext body) or a deletion.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub type_name: Cow<'static, str>,
    pub parent: Option<ParentLink>,
    /// `None` stages a deletion.
    pub body: Option<Bytes>,
    /// The record's explicit rules.
    pub auth: Authorization,
    /// The version of the record the change was made on (`None`: not read through a Dao).
    pub previous: Option<u64>,
    /// A new record at a chosen key: written as new (no previous version) even if the view
    /// holds the key, so the commit is refused if the key is taken or was ever used.
    pub create: bool,
    /// Signed by every signing key of the session, whether its rules need them or not, so
    /// that its transaction proves who wrote it.
    pub sign_all: bool,
}

/// Staged writes, in the order each key was first staged (the last write of a key wins), and
/// the versions this Dio itself committed (so a Dao changed again after a commit replaces the
/// version it wrote).
#[derive(Debug)]
pub(crate) struct Staging {
    /// The chain the staged writes are for (deletions look at its view).
    pub chain: Chain,
    order: Vec<PrimaryKey>,
    ops: FastMap<PrimaryKey, Staged>,
    versions: FastMap<PrimaryKey, u64>,
    error: Option<DioError>,
    /// Writes whose commit was dropped while the chain's writer had it, with its outcome to
    /// come.
    in_flight: Vec<InFlightOps>,
}

/// A commit's outcome to come, and the writes it carries.
pub(crate) type InFlightOps = (
    oneshot::Receiver<Result<u64, CommitError>>,
    Vec<(PrimaryKey, Staged)>,
);

impl Staging {
    pub fn new(chain: Chain) -> Self {
        Staging {
            chain,
            order: Vec::new(),
            ops: FastMap::default(),
            versions: FastMap::default(),
            error: None,
            in_flight: Vec::new(),
        }
    }

    /// Stages `op` for `key`, moving the key to the end of the transaction (a record is
    /// deleted after the children deleted with it).
    pub fn stage_last(&mut self, key: PrimaryKey, op: Staged) {
        if self.ops.insert(key, op).is_some() {
            self.order.retain(|k| *k != key);
        }
        self.order.push(key);
    }

    pub fn stage(&mut self, key: PrimaryKey, mut op: Staged) {
        // A record staged at a chosen key and changed before its commit is still new.
        if let Some(old) = self.ops.get(&key)
            && old.create
            && op.previous.is_none()
            && op.body.is_some()
        {
            op.create = true;
        }
        if self.ops.insert(key, op).is_none() {
            self.order.push(key);
        }
    }

    /// Forgets a staged write (a record created and deleted in the same Dio).
    pub fn unstage(&mut self, key: &PrimaryKey) {
        if self.ops.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    /// Replaces the rules of a record staged with a value; `false` when there is none.
    pub fn set_auth(&mut self, key: &PrimaryKey, auth: &Authorization) -> bool {
        match self.ops.get_mut(key) {
            Some(op) if op.body.is_some() => {
                op.auth = auth.clone();
                true
            }
            _ => false,
        }
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

    /// The version of a record this Dio last committed.
    pub fn version(&self, key: &PrimaryKey) -> Option<u64> {
        self.versions.get(key).copied()
    }

    /// The versions of the records this Dio committed, for the keys of `ops` (none looked up
    /// when it committed nothing yet).
    pub fn versions_of(&self, ops: &[(PrimaryKey, Staged)]) -> FastMap<PrimaryKey, u64> {
        if self.versions.is_empty() {
            return FastMap::default();
        }
        ops.iter()
            .filter_map(|(k, _)| self.versions.get(k).map(|v| (*k, *v)))
            .collect()
    }

    /// Keeps the writes of a commit dropped while the chain's writer had it, until its outcome.
    pub fn in_flight(
        &mut self,
        outcome: oneshot::Receiver<Result<u64, CommitError>>,
        ops: Vec<(PrimaryKey, Staged)>,
    ) {
        self.in_flight.push((outcome, ops));
    }

    /// A commit dropped while the writer had it, to wait for.
    pub fn pop_in_flight(&mut self) -> Option<InFlightOps> {
        self.in_flight.pop()
    }

    /// Staged live records under `link`, in staging order.
    pub fn children_of(&self, link: ParentLink) -> impl Iterator<Item = PrimaryKey> + '_ {
        self.order.iter().copied().filter(move |k| {
            self.ops
                .get(k)
                .is_some_and(|op| op.body.is_some() && op.parent == Some(link))
        })
    }

    /// The staged writes in order, taken out (a failed commit puts them back with
    /// [`Staging::restore`]), or the deferred error.
    pub fn take_ops(&mut self) -> Result<Vec<(PrimaryKey, Staged)>, DioError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let order = std::mem::take(&mut self.order);
        Ok(order
            .into_iter()
            .filter_map(|k| self.ops.remove(&k).map(|op| (k, op)))
            .collect())
    }

    /// Puts back the writes of a commit that did not happen, ahead of anything staged since (a
    /// record staged again since keeps its newer write, in its newer place).
    pub fn restore(&mut self, ops: Vec<(PrimaryKey, Staged)>) {
        let since = std::mem::take(&mut self.order);
        self.order.reserve(ops.len() + since.len());
        for (k, op) in ops {
            if let std::collections::hash_map::Entry::Vacant(e) = self.ops.entry(k) {
                e.insert(op);
                self.order.push(k);
            }
        }
        self.order.extend(since);
    }

    /// After a commit of the writes `ops` (taken by [`Staging::take_ops`]): the Dio has seen
    /// their new versions.
    pub fn committed(&mut self, seq: u64, ops: &[(PrimaryKey, Staged)]) {
        for (k, op) in ops {
            if op.body.is_some() {
                self.versions.insert(*k, seq);
            } else {
                self.versions.remove(k);
            }
        }
    }
}

/// The default rules of a new record of a type (from `#[derive(Dao)]`).
pub(crate) fn default_auth(reg: Option<&crate::schema::TypeRegistration>) -> Authorization {
    use crate::schema::AccessDefault;
    let Some(reg) = reg else {
        return Authorization::default();
    };
    Authorization {
        read: match reg.read {
            AccessDefault::Everyone => ReadOption::Everyone,
            _ => ReadOption::Inherit,
        },
        write: match reg.write {
            AccessDefault::Everyone => WriteOption::Everyone,
            AccessDefault::Nobody => WriteOption::Nobody,
            _ => WriteOption::Inherit,
        },
    }
}
