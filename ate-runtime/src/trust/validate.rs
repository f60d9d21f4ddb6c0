//! The built-in validation: signatures, write rights, versions and read rules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::crypto::Hash;
use crate::event::{Event, PrimaryKey, Transaction};

use super::meta::{EventTrust, chain_hash, signatures_of, signed_message};
use super::{Authorization, ReadOption, TrustError, WriteOption};

/// Deepest parent chain the rules are inherited through; deeper trees are refused writes.
pub const MAX_INHERIT_DEPTH: usize = 256;

/// What validation needs to know about a live record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordState {
    /// Sequence number of the transaction that wrote the current version.
    pub seq: u64,
    /// The parent record, if it is a child.
    pub parent: Option<PrimaryKey>,
    /// Its explicit rules (`None`: inherit / inherit).
    pub auth: Option<Arc<Authorization>>,
}

/// Read access to the records a transaction is validated against.
pub trait TrustLookup {
    /// The live record with this key.
    fn record(&self, key: &PrimaryKey) -> Option<RecordState>;
    /// Whether a record with this key existed and was deleted.
    fn was_deleted(&self, key: &PrimaryKey) -> bool;
}

/// Changes made by transactions validated earlier in the same group, over a base lookup.
#[derive(Debug, Default)]
pub struct Overlay {
    records: HashMap<PrimaryKey, Option<RecordState>>,
}

impl Overlay {
    /// An empty overlay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the state of one record (`None`: deleted).
    pub fn set(&mut self, key: PrimaryKey, state: Option<RecordState>) {
        self.records.insert(key, state);
    }

    /// Adds later changes on top of these.
    pub fn merge(&mut self, later: Overlay) {
        self.records.extend(later.records);
    }

    /// A lookup that sees these changes over `base`.
    pub fn over<'a>(&'a self, base: &'a dyn TrustLookup) -> impl TrustLookup + 'a {
        TwoLayer {
            base,
            older: self,
            newer: &EMPTY,
        }
    }
}

static EMPTY: std::sync::LazyLock<Overlay> = std::sync::LazyLock::new(Overlay::default);

/// The result of validating one transaction.
#[derive(Debug)]
pub struct Validated {
    /// For each event, the public-key hashes of the keys whose valid signatures cover it.
    pub signers: Vec<Vec<Hash>>,
    /// The transaction's effects, to merge into the group's overlay once every check passed.
    pub changes: Overlay,
}

/// The chain-wide rules: the chain's identity and its root writers.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    chain_key: String,
    chain_hash: Hash,
    root_keys: Vec<Hash>,
}

impl TrustPolicy {
    /// The policy of the chain `chain_key` whose root may be written by `root_keys` (public-key
    /// hashes; none means the root is open to everyone).
    pub fn new(chain_key: &str, root_keys: Vec<Hash>) -> Self {
        TrustPolicy {
            chain_key: chain_key.to_string(),
            chain_hash: chain_hash(chain_key),
            root_keys,
        }
    }

    /// The chain key.
    pub fn chain_key(&self) -> &str {
        &self.chain_key
    }

    /// The chain hash named in signatures.
    pub fn chain_hash(&self) -> &Hash {
        &self.chain_hash
    }

    /// Who may write at the root.
    pub fn root_write(&self) -> WriteOption {
        if self.root_keys.is_empty() {
            WriteOption::Everyone
        } else {
            WriteOption::Any(self.root_keys.clone())
        }
    }

    /// Whether writes may need signatures at all.
    pub fn is_open(&self) -> bool {
        self.root_keys.is_empty()
    }

    /// The write rule in force for an existing record (its own, else inherited).
    pub fn effective_write(&self, lookup: &dyn TrustLookup, key: &PrimaryKey) -> WriteOption {
        let mut at = *key;
        for _ in 0..MAX_INHERIT_DEPTH {
            let Some(rec) = lookup.record(&at) else {
                return self.root_write();
            };
            if let Some(a) = &rec.auth
                && a.write != WriteOption::Inherit
            {
                return a.write.clone();
            }
            match rec.parent {
                Some(p) => at = p,
                None => return self.root_write(),
            }
        }
        WriteOption::Nobody
    }

    /// The read rule in force for an existing record (its own, else inherited; the root is
    /// `Everyone`).
    pub fn effective_read(&self, lookup: &dyn TrustLookup, key: &PrimaryKey) -> ReadOption {
        let mut at = *key;
        for _ in 0..MAX_INHERIT_DEPTH {
            let Some(rec) = lookup.record(&at) else {
                return ReadOption::Everyone;
            };
            if let Some(a) = &rec.auth
                && a.read != ReadOption::Inherit
            {
                return a.read.clone();
            }
            match rec.parent {
                Some(p) => at = p,
                None => return ReadOption::Everyone,
            }
        }
        ReadOption::Everyone
    }

    /// The write rule a write to `key` must satisfy: the record's own (effective) rule when it
    /// exists, otherwise its parent's, otherwise the root's.
    pub fn required_write(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
        parent: Option<&PrimaryKey>,
    ) -> WriteOption {
        if lookup.record(key).is_some() {
            self.effective_write(lookup, key)
        } else if let Some(p) = parent {
            self.effective_write(lookup, p)
        } else {
            self.root_write()
        }
    }

    /// The read rule a new version of `key` will have with rules `auth` under `parent`.
    pub fn read_for(
        &self,
        lookup: &dyn TrustLookup,
        auth: Option<&Authorization>,
        parent: Option<&PrimaryKey>,
    ) -> ReadOption {
        match auth.map(|a| &a.read) {
            Some(r) if *r != ReadOption::Inherit => r.clone(),
            _ => match parent {
                Some(p) => self.effective_read(lookup, p),
                None => ReadOption::Everyone,
            },
        }
    }

    /// Validates one transaction against `base` plus `overlay` (the accepted transactions ahead
    /// of it). `hashes`, when given, are the events' hashes computed by trusted local code;
    /// otherwise (events from a file or the network) they are recomputed. On success returns the
    /// signers of each event and the transaction's effects (merge them into `overlay`).
    pub fn validate(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        tx: &Transaction,
        seq: u64,
        hashes: Option<&[Hash]>,
    ) -> Result<Validated, TrustError> {
        let n = tx.events.len();
        let mut signers: Vec<Vec<Hash>> = vec![Vec::new(); n];
        let sigs = signatures_of(tx)?;
        if !sigs.is_empty() {
            let computed: Vec<Hash>;
            let hashes = match hashes {
                Some(h) if h.len() == n => h,
                _ => {
                    computed = tx.events.iter().map(Event::hash).collect();
                    &computed
                }
            };
            for sig in &sigs {
                if sig.chain != self.chain_hash {
                    return Err(TrustError::WrongChain);
                }
                if sig.covers.len() != sig.hashes.len()
                    || sig.covers.windows(2).any(|w| w[0] >= w[1])
                    || sig.covers.last().is_some_and(|i| *i as usize >= n)
                {
                    return Err(TrustError::BadCoverage);
                }
                for (i, h) in sig.covers.iter().zip(&sig.hashes) {
                    if hashes[*i as usize] != *h {
                        return Err(TrustError::EventHashMismatch { index: *i });
                    }
                }
                let alg = sig.public_key.algorithm();
                if sig.signature.algorithm()? != alg {
                    return Err(TrustError::UnknownAlgorithm(
                        "signature and key algorithms differ".into(),
                    ));
                }
                let msg = signed_message(alg.as_u8(), &self.chain_hash, &sig.covers, &sig.hashes);
                let signer = sig.public_key.hash();
                sig.public_key
                    .verify(&msg, &sig.signature)
                    .map_err(|_| TrustError::BadSignature { signer })?;
                for i in &sig.covers {
                    signers[*i as usize].push(signer);
                }
            }
        }

        let mut staged = Overlay::new();
        for (i, ev) in tx.events.iter().enumerate() {
            let trust = EventTrust::of(ev)?;
            let lookup = TwoLayer {
                base,
                older: overlay,
                newer: &staged,
            };
            let current = lookup.record(&ev.key);
            match (&current, trust.previous) {
                (Some(c), Some(p)) if c.seq == p => {}
                (None, None) if !ev.tombstone => {
                    if lookup.was_deleted(&ev.key) {
                        return Err(TrustError::Deleted { key: ev.key });
                    }
                }
                (c, p) => {
                    return Err(TrustError::VersionMismatch {
                        key: ev.key,
                        claimed: p,
                        current: c.as_ref().map(|c| c.seq),
                    });
                }
            }
            let parent = match (&current, ev.parent) {
                (_, Some(link)) => {
                    if lookup.record(&link.parent).is_none() {
                        return Err(TrustError::MissingParent {
                            key: ev.key,
                            parent: link.parent,
                        });
                    }
                    Some(link.parent)
                }
                (Some(c), None) if ev.tombstone => c.parent,
                _ => None,
            };
            let required = self.required_write(&lookup, &ev.key, parent.as_ref());
            check_right(&required, &signers[i], ev.key)?;
            if !ev.tombstone {
                let read = self.read_for(&lookup, trust.auth.as_ref(), parent.as_ref());
                if let ReadOption::Specific(rk) = &read {
                    let expected = rk.hash();
                    if trust.confidentiality.as_ref().map(|c| c.read_key) != Some(expected) {
                        return Err(TrustError::NotEncryptedForReader {
                            key: ev.key,
                            expected,
                        });
                    }
                }
            }
            let next = if ev.tombstone {
                None
            } else {
                Some(RecordState {
                    seq,
                    parent,
                    auth: trust.auth.map(Arc::new),
                })
            };
            staged.records.insert(ev.key, next);
        }
        Ok(Validated {
            signers,
            changes: staged,
        })
    }
}

struct TwoLayer<'a> {
    base: &'a dyn TrustLookup,
    older: &'a Overlay,
    newer: &'a Overlay,
}

impl TrustLookup for TwoLayer<'_> {
    fn record(&self, key: &PrimaryKey) -> Option<RecordState> {
        if let Some(r) = self.newer.records.get(key) {
            return r.clone();
        }
        if let Some(r) = self.older.records.get(key) {
            return r.clone();
        }
        self.base.record(key)
    }
    fn was_deleted(&self, key: &PrimaryKey) -> bool {
        if let Some(r) = self.newer.records.get(key) {
            return r.is_none();
        }
        if let Some(r) = self.older.records.get(key) {
            return r.is_none();
        }
        self.base.was_deleted(key)
    }
}

fn check_right(
    required: &WriteOption,
    signers: &[Hash],
    key: PrimaryKey,
) -> Result<(), TrustError> {
    match required {
        WriteOption::Everyone => Ok(()),
        WriteOption::Nobody => Err(TrustError::Final { key }),
        _ if signers.is_empty() => Err(TrustError::MissingSignature { key }),
        r if signers.iter().any(|s| r.allows(s)) => Ok(()),
        _ => Err(TrustError::Unauthorized { key }),
    }
}

/// Public-key hashes of every signer of a transaction (for plugins).
pub fn all_signers(signers: &[Vec<Hash>]) -> HashSet<Hash> {
    signers.iter().flatten().copied().collect()
}
