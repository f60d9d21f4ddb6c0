//! The first step of sealing, under the view's read lock: for each staged write, the version
//! it replaces, the write rules it must satisfy (its own, and its new place's when it moves),
//! the keys that sign it, and its read rule; the public read keys the transaction needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::DioError;
use super::super::staging::{FastMap, Staged};
use crate::chain::Chain;
use crate::crypto::{Hash, PrivateSignKey, PublicEncryptKey};
use crate::event::PrimaryKey;
use crate::session::AteSession;
use crate::trust::{
    Authorization, Overlay, ReadKey, ReadOption, RecordState, TrustError, TrustLookup, TrustPolicy,
    WriteOption,
};
use crate::view::View;

/// One staged write, planned.
pub(super) struct Planned<'a> {
    pub key: PrimaryKey,
    pub op: &'a Staged,
    /// The version it replaces (`None`: a new record).
    pub previous: Option<u64>,
    /// Its read rule after the write (`Specific` means its body is encrypted).
    pub read: ReadOption,
    /// The ids of the session keys that sign it (none, one, or two when it moves to a place
    /// another key guards).
    pub signers: Signers,
}

/// The ids of the keys signing one event.
pub(super) type Signers = [Option<Hash>; 2];

/// The plan of a whole transaction.
pub(super) struct Plan<'a> {
    pub events: Vec<Planned<'a>>,
    /// Each signing key, by id, and the events it covers (ascending).
    pub signers: BTreeMap<Hash, (PrivateSignKey, Vec<u32>)>,
    /// The NTRU public read keys bodies are encrypted for, by id.
    pub public_keys: FastMap<Hash, PublicEncryptKey>,
    /// The public read keys the events' own rules name: the transaction's key directory.
    pub directory: Vec<PublicEncryptKey>,
}

/// Plans `ops` against the chain's view (under its read lock) plus the writes ahead of each in
/// the same transaction. `versions` are the versions this Dio committed itself.
pub(super) fn plan<'a>(
    chain: &Chain,
    session: &AteSession,
    versions: &FastMap<PrimaryKey, u64>,
    ops: &'a [(PrimaryKey, Staged)],
) -> Result<Plan<'a>, DioError> {
    let view = chain.view().read();
    let mut planner = Planner {
        policy: chain.policy(),
        session,
        view: &view,
        overlay: Overlay::with_capacity(ops.len()),
        last_signer: None,
        last_auth: None,
        keys: FastMap::default(),
        public_keys: FastMap::default(),
        directory: BTreeMap::new(),
    };
    let mut events = Vec::with_capacity(ops.len());
    for (key, op) in ops {
        events.push(planner.plan_one(*key, op, versions)?);
    }
    let Planner {
        keys,
        public_keys,
        directory,
        ..
    } = planner;
    let mut signers: BTreeMap<Hash, (PrivateSignKey, Vec<u32>)> = BTreeMap::new();
    for (i, p) in events.iter().enumerate() {
        for id in p.signers.iter().flatten() {
            let (_, covers) = signers.entry(*id).or_insert_with(|| {
                let key = keys
                    .get(id)
                    .cloned()
                    .expect("planned signers were looked up");
                (key, Vec::new())
            });
            covers.push(i as u32);
        }
        if p.op.sign_all {
            for key in session.write_keys() {
                let (_, covers) = signers
                    .entry(key.hash())
                    .or_insert_with(|| (key.clone(), Vec::new()));
                // Each event once per key (its rules may have chosen the key already).
                if covers.last() != Some(&(i as u32)) {
                    covers.push(i as u32);
                }
            }
        }
    }
    Ok(Plan {
        events,
        signers,
        public_keys,
        directory: directory.into_values().collect(),
    })
}

struct Planner<'v> {
    policy: &'v TrustPolicy,
    session: &'v AteSession,
    view: &'v View,
    /// The writes planned so far in this transaction.
    overlay: Overlay,
    /// Records written together mostly need the same rule: the same key signs.
    last_signer: Option<(WriteOption, Hash)>,
    /// Records written together mostly share their rules, and then one allocation.
    last_auth: Option<Arc<Authorization>>,
    /// Each signing key, copied once per transaction.
    keys: FastMap<Hash, PrivateSignKey>,
    public_keys: FastMap<Hash, PublicEncryptKey>,
    directory: BTreeMap<Hash, PublicEncryptKey>,
}

impl Planner<'_> {
    fn plan_one<'a>(
        &mut self,
        key: PrimaryKey,
        op: &'a Staged,
        versions: &FastMap<PrimaryKey, u64>,
    ) -> Result<Planned<'a>, DioError> {
        let lookup = self.overlay.over(self.view);
        // A record created at a chosen key is written as new whatever the view holds: the
        // writer refuses it if the key is taken or was used before.
        let current = if op.create { None } else { lookup.record(&key) };
        // The newest version this Dio knows of: the one its Dao was read at, or the one it
        // committed itself since.
        let previous = current.as_ref().filter(|c| c.seq != 0).map(|c| {
            op.previous
                .max(versions.get(&key).copied())
                .unwrap_or(c.seq)
        });
        let parent = match (&op.body, &current) {
            (None, Some(c)) => c.parent,
            _ => op.parent.map(|l| l.parent),
        };
        let rules = self
            .policy
            .write_rules(&lookup, key, current.as_ref(), parent)?;
        let explicit = (!op.auth.is_inherit()).then_some(&op.auth);
        let read = self
            .policy
            .read_for(&lookup, &key, explicit, parent.as_ref())?;
        drop(lookup);
        let policy = self.policy;
        let own = match rules.own.get(policy) {
            WriteOption::Nobody => return Err(DioError::Final { key }),
            rule => self.signer_for(rule, key)?,
        };
        // A move also needs the write right of the record's new place.
        let moved = match &rules.moved_to {
            Some((to, rule)) => match rule.get(policy) {
                rule if own.is_some_and(|id| rule.allows(&id)) => None,
                rule => self
                    .signer_for(rule, key)
                    .map_err(|_| TrustError::UnauthorizedMove { key, to: *to })?,
            },
            None => None,
        };
        // The key directory carries every public read key the events' own rules name; a body
        // is encrypted for the key its (perhaps inherited) read rule names.
        if let Some(a) = explicit {
            self.public_key_of(key, &a.read, true)?;
        }
        if op.body.is_some() {
            self.public_key_of(key, &read, false)?;
        }
        let state = op.body.as_ref().map(|_| RecordState {
            // Written by this transaction: its number is not known yet and is never 0.
            seq: 0,
            parent,
            auth: explicit.map(|a| self.shared_auth(a)),
        });
        self.overlay.set(key, state);
        Ok(Planned {
            key,
            op,
            previous,
            read,
            signers: [own, moved],
        })
    }

    /// The id of a session key satisfying `rule` (`None` when anyone may write).
    fn signer_for(
        &mut self,
        rule: &WriteOption,
        key: PrimaryKey,
    ) -> Result<Option<Hash>, DioError> {
        match rule {
            WriteOption::Everyone => Ok(None),
            WriteOption::Nobody => Err(DioError::Final { key }),
            r if self.last_signer.as_ref().is_some_and(|(last, _)| last == r) => {
                Ok(self.last_signer.as_ref().map(|(_, id)| *id))
            }
            r => {
                let k = self
                    .session
                    .write_keys()
                    .find(|k| r.allows(&k.hash()))
                    .ok_or(DioError::MissingWriteKey { key })?;
                let id = k.hash();
                self.keys.entry(id).or_insert_with(|| k.clone());
                self.last_signer = Some((r.clone(), id));
                Ok(Some(id))
            }
        }
    }

    /// Finds the public key a body is encrypted for, when its read rule names one: from the
    /// rule itself, the transaction's directory so far, or the chain's. `named`: the record's
    /// own rule names it, so the transaction's key directory must carry it.
    fn public_key_of(
        &mut self,
        key: PrimaryKey,
        read: &ReadOption,
        named: bool,
    ) -> Result<(), DioError> {
        let ReadOption::Specific(ReadKey::Public(rk)) = read else {
            return Ok(());
        };
        let id = rk.id();
        let found = match self.public_keys.get(&id) {
            Some(k) => k.clone(),
            None => {
                let k = rk
                    .key()
                    .cloned()
                    .or_else(|| self.view.public_key(&id))
                    .ok_or(DioError::UnknownPublicKey { key, read_key: id })?;
                self.public_keys.insert(id, k.clone());
                k
            }
        };
        if named {
            self.directory.entry(id).or_insert(found);
        }
        Ok(())
    }

    fn shared_auth(&mut self, a: &Authorization) -> Arc<Authorization> {
        match &self.last_auth {
            Some(last) if **last == *a => last.clone(),
            _ => {
                let new = Arc::new(a.clone());
                self.last_auth = Some(new.clone());
                new
            }
        }
    }
}
