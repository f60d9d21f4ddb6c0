//! The built-in validation: signatures, write rights, versions and read rules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::crypto::Hash;
use crate::event::codec::EventRef;
use crate::event::{Event, ParentLink, PrimaryKey, Transaction};

use super::meta::{CheckedMeta, EventTrust, TxProofs, chain_hash, proofs_of, signed_message};
use super::{Authorization, ReadOption, TrustError, WriteOption};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
    records: FastMap<PrimaryKey, Option<RecordState>>,
}

impl Overlay {
    /// An empty overlay.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty overlay with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        Overlay {
            records: FastMap::with_capacity_and_hasher(records, Default::default()),
        }
    }

    /// Records the state of one record (`None`: deleted).
    pub fn set(&mut self, key: PrimaryKey, state: Option<RecordState>) {
        self.records.insert(key, state);
    }

    /// Adds later changes on top of these.
    pub fn merge(&mut self, later: Overlay) {
        if self.records.is_empty() {
            // The first transaction of a group: its changes are taken as they are.
            self.records = later.records;
        } else {
            self.records.extend(later.records);
        }
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

/// How a chain establishes who wrote each transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IntegrityMode {
    /// Every transaction carries Falcon signatures over its events' hashes: anyone holding the
    /// log can verify it offline, with no trusted party.
    #[default]
    Distributed,
    /// Transactions may instead carry a server's vouch ([`TxVouch`](super::meta::TxVouch)): the
    /// server authenticated the connection they arrived on, and the writers it names hold
    /// their rights for every event without signing. Cheaper for writers; the log is then only
    /// as trustworthy as that server. Signed transactions are accepted too.
    Centralized,
}

/// The chain-wide rules: the chain's identity, its root writers and its integrity mode.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    chain_key: String,
    chain_hash: Hash,
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    /// [`TrustPolicy::root_write`], built once.
    root_rule: WriteOption,
}

impl TrustPolicy {
    /// The policy of the chain `chain_key` whose root may be written by `root_keys` (public-key
    /// hashes; none means the root is open to everyone).
    pub fn new(chain_key: &str, root_keys: Vec<Hash>) -> Self {
        let root_rule = if root_keys.is_empty() {
            WriteOption::Everyone
        } else {
            WriteOption::Any(root_keys.clone())
        };
        TrustPolicy {
            chain_key: chain_key.to_string(),
            chain_hash: chain_hash(chain_key),
            root_keys,
            integrity: IntegrityMode::Distributed,
            root_rule,
        }
    }

    /// The same policy in integrity mode `mode`.
    pub fn with_integrity(mut self, mode: IntegrityMode) -> Self {
        self.integrity = mode;
        self
    }

    /// The integrity mode.
    pub fn integrity(&self) -> IntegrityMode {
        self.integrity
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
        self.root_rule.clone()
    }

    /// Whether writes may need signatures at all.
    pub fn is_open(&self) -> bool {
        self.root_keys.is_empty()
    }

    /// The write rule in force for an existing record (its own, else inherited).
    pub fn effective_write(&self, lookup: &dyn TrustLookup, key: &PrimaryKey) -> WriteOption {
        self.write_rule(lookup, lookup.record(key))
            .get(self)
            .clone()
    }

    /// The write rule in force for the record whose state is `first` (`None`: no such record),
    /// walking parent links through `lookup`.
    fn write_rule(&self, lookup: &dyn TrustLookup, first: Option<RecordState>) -> Rule {
        let mut rec = first;
        for _ in 0..MAX_INHERIT_DEPTH {
            let Some(r) = rec else {
                return Rule::Root;
            };
            if let Some(a) = r.auth
                && a.write != WriteOption::Inherit
            {
                return Rule::Own(a);
            }
            match r.parent {
                Some(p) => rec = lookup.record(&p),
                None => return Rule::Root,
            }
        }
        Rule::TooDeep
    }

    /// The read rule in force for an existing record (its own, else inherited; the root is
    /// `Everyone`).
    pub fn effective_read(&self, lookup: &dyn TrustLookup, key: &PrimaryKey) -> ReadOption {
        match self.read_rule(lookup, key) {
            Some(a) => a.read.clone(),
            None => ReadOption::Everyone,
        }
    }

    /// The rules that set the read rule in force for an existing record (`None`: `Everyone`).
    fn read_rule(&self, lookup: &dyn TrustLookup, key: &PrimaryKey) -> Option<Arc<Authorization>> {
        let mut at = *key;
        for _ in 0..MAX_INHERIT_DEPTH {
            let rec = lookup.record(&at)?;
            if let Some(a) = rec.auth
                && a.read != ReadOption::Inherit
            {
                return Some(a);
            }
            at = rec.parent?;
        }
        None
    }

    /// The write rule a write to `key` must satisfy: the record's own (effective) rule when it
    /// exists, otherwise its parent's, otherwise the root's.
    pub fn required_write(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
        parent: Option<&PrimaryKey>,
    ) -> WriteOption {
        self.required_rule(lookup, lookup.record(key), parent)
            .get(self)
            .clone()
    }

    /// [`TrustPolicy::required_write`] for a record whose current state is `current` (looked up
    /// already), without copying the rule.
    pub(crate) fn required_rule(
        &self,
        lookup: &dyn TrustLookup,
        current: Option<RecordState>,
        parent: Option<&PrimaryKey>,
    ) -> Rule {
        if current.is_some() {
            self.write_rule(lookup, current)
        } else if let Some(p) = parent {
            self.write_rule(lookup, lookup.record(p))
        } else {
            Rule::Root
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

    /// The hash of the key a new version of a record must be encrypted for, under rules `auth`
    /// and `parent` (`None`: it may be plaintext). The same rule as [`TrustPolicy::read_for`].
    fn reader_for(
        &self,
        lookup: &dyn TrustLookup,
        auth: Option<&Authorization>,
        parent: Option<&PrimaryKey>,
    ) -> Option<Hash> {
        let specific = |r: &ReadOption| match r {
            ReadOption::Specific(rk) => Some(rk.hash()),
            _ => None,
        };
        match auth.map(|a| &a.read) {
            Some(r) if *r != ReadOption::Inherit => specific(r),
            _ => {
                let inherited = self.read_rule(lookup, parent?)?;
                specific(&inherited.read)
            }
        }
    }

    /// Validates one transaction against `base` plus `overlay` (the accepted transactions ahead
    /// of it). `hashes`, when given, are the events' hashes computed by trusted local code;
    /// otherwise (events from a file or the network) they are recomputed. Its keys trailer is
    /// checked against the events that bind its entries. On success returns the signers of each
    /// event and the transaction's effects (merge them into `overlay`).
    pub fn validate(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        tx: &Transaction,
        seq: u64,
        hashes: Option<&[Hash]>,
    ) -> Result<Validated, TrustError> {
        let verified = self.verify(&tx.events, proofs_of(tx)?, hashes, None)?;
        let mut staged = Overlay::new();
        self.check(base, overlay, &tx.events, &verified, seq, &mut staged)?;
        Ok(Validated {
            signers: verified.signers.per_event(tx.events.len()),
            changes: staged,
        })
    }

    /// The half of validation that depends only on the transaction: every signature is checked
    /// against the events' hashes (recomputed unless `hashes` are given, as in
    /// [`TrustPolicy::validate`]), and each event's trust metadata is decoded. It reads no record,
    /// so transactions can go through it on any thread, ahead of [`TrustPolicy::check`].
    ///
    /// With `hashes` given, the signatures are taken as verified too: the Dio that sealed the
    /// transaction verified each one after signing (debug builds verify them again here).
    ///
    /// `local`, when given (one per event), is what the committing Dio wrote into each event's
    /// metadata in this process (trusted, like `hashes`): it is taken instead of decoding the
    /// metadata again. Everything else is checked as usual.
    pub(crate) fn verify<E: EventFields>(
        &self,
        events: &[E],
        proofs: TxProofs,
        hashes: Option<&[Hash]>,
        local: Option<Vec<CheckedMeta>>,
    ) -> Result<Verified, TrustError> {
        let n = events.len();
        let mut signers = Signers::default();
        let TxProofs {
            signatures: sigs,
            vouch,
            keys,
        } = proofs;
        if let Some(v) = vouch {
            if self.integrity != IntegrityMode::Centralized {
                return Err(TrustError::VouchRefused);
            }
            if v.chain != self.chain_hash {
                return Err(TrustError::WrongChain);
            }
            let all: Vec<u32> = (0..n as u32).collect();
            for w in v.writers {
                signers.by_signature.push((w, all.clone()));
            }
        }
        if !sigs.is_empty() {
            let given = hashes.filter(|h| h.len() == n);
            // Otherwise all hashed at once (several events at a time).
            let computed: Vec<Hash> = match given {
                Some(_) => Vec::new(),
                None => Hash::of_many(&events.iter().map(|e| e.raw()).collect::<Vec<_>>()),
            };
            let actual = given.unwrap_or(&computed);
            for sig in sigs {
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
                    if actual[*i as usize] != *h {
                        return Err(TrustError::EventHashMismatch { index: *i });
                    }
                }
                let alg = sig.public_key.algorithm();
                if sig.signature.algorithm()? != alg {
                    return Err(TrustError::UnknownAlgorithm(
                        "signature and key algorithms differ".into(),
                    ));
                }
                let signer = sig.public_key.hash();
                // A transaction sealed in this process (`hashes` given) was signed by its Dio,
                // which verified each signature right after making it; otherwise (a file, the
                // network, `Chain::commit_transaction`) every signature is verified here.
                if given.is_none() || cfg!(debug_assertions) {
                    let msg =
                        signed_message(alg.as_u8(), &self.chain_hash, &sig.covers, &sig.hashes);
                    sig.public_key
                        .verify(&msg, &sig.signature)
                        .map_err(|_| TrustError::BadSignature { signer })?;
                }
                signers.by_signature.push((signer, sig.covers));
            }
        }
        // Events without metadata have the default (inherit, new record, plaintext).
        let mut trust = Vec::new();
        match local.filter(|l| l.len() == n) {
            Some(local) => {
                trust.reserve(n);
                for (i, (ev, t)) in events.iter().zip(local).enumerate() {
                    // Tests run every commit through this: what the Dio hands over is what
                    // decoding its metadata gives.
                    debug_assert_eq!(
                        ev.trust().map(CheckedMeta::from).ok().as_ref(),
                        Some(&t),
                        "metadata handed over differs from the metadata written"
                    );
                    if ev.has_meta() {
                        trust.push((i, Ok(t)));
                    }
                }
            }
            None => {
                // Decoded up to the first refusal, which `check` reports when it reaches that
                // event.
                for (i, ev) in events.iter().enumerate() {
                    if !ev.has_meta() {
                        continue;
                    }
                    let t = ev.trust().map(CheckedMeta::from);
                    let failed = t.is_err();
                    trust.push((i, t));
                    if failed {
                        break;
                    }
                }
            }
        }
        // Every encrypted event binds its entry of the keys trailer, every entry is bound.
        let keys = super::check_keys(keys, &trust)?;
        Ok(Verified {
            signers,
            trust,
            keys,
        })
    }

    /// The half of validation that reads the records: versions, parents, write rights and read
    /// rules, event by event against `base` plus `overlay` plus the events ahead in the same
    /// transaction. `verified` is the other half for the same events. On success `staged`
    /// (cleared first) holds the transaction's effects.
    pub(crate) fn check<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        events: &[E],
        verified: &Verified,
        seq: u64,
        staged: &mut Overlay,
    ) -> Result<(), TrustError> {
        staged.records.clear();
        staged.records.reserve(events.len());
        let plain = CheckedMeta::default();
        // Records written together mostly share their rules: they then share one allocation.
        let mut last_auth: Option<Arc<Authorization>> = None;
        let mut decoded = verified.trust.iter().peekable();
        for (i, ev) in events.iter().enumerate() {
            let trust = match decoded.next_if(|(at, _)| *at == i) {
                Some((_, t)) => t.as_ref().map_err(Clone::clone)?,
                None => &plain,
            };
            let (key, tombstone) = (ev.key(), ev.tombstone());
            let lookup = TwoLayer {
                base,
                older: overlay,
                newer: staged,
            };
            let current = lookup.record(&key);
            match (&current, trust.previous) {
                (Some(c), Some(p)) if c.seq == p => {}
                (None, None) if !tombstone => {
                    if lookup.was_deleted(&key) {
                        return Err(TrustError::Deleted { key });
                    }
                }
                (c, p) => {
                    return Err(TrustError::VersionMismatch {
                        key,
                        claimed: p,
                        current: c.as_ref().map(|c| c.seq),
                    });
                }
            }
            let parent = match (&current, ev.parent()) {
                (_, Some(link)) => {
                    if lookup.record(&link.parent).is_none() {
                        return Err(TrustError::MissingParent {
                            key,
                            parent: link.parent,
                        });
                    }
                    Some(link.parent)
                }
                (Some(c), None) if tombstone => c.parent,
                _ => None,
            };
            let required = self.required_rule(&lookup, current, parent.as_ref());
            check_right(required.get(self), verified.signers.of(i), key)?;
            if !tombstone
                && let Some(expected) =
                    self.reader_for(&lookup, trust.auth.as_ref(), parent.as_ref())
                && trust.reader != Some(expected)
            {
                return Err(TrustError::NotEncryptedForReader { key, expected });
            }
            let next = if tombstone {
                None
            } else {
                let auth = trust.auth.as_ref().map(|a| match &last_auth {
                    Some(last) if **last == *a => last.clone(),
                    _ => {
                        let new = Arc::new(a.clone());
                        last_auth = Some(new.clone());
                        new
                    }
                });
                Some(RecordState { seq, parent, auth })
            };
            staged.records.insert(key, next);
        }
        Ok(())
    }
}

/// The write rule that applies, without copying it.
pub(crate) enum Rule {
    /// The chain root's ([`TrustPolicy::root_write`]).
    Root,
    /// A record's own rule (never `Inherit`).
    Own(Arc<Authorization>),
    /// The parent chain is deeper than [`MAX_INHERIT_DEPTH`]: no one may write.
    TooDeep,
}

impl Rule {
    /// The rule itself.
    pub(crate) fn get<'a>(&'a self, policy: &'a TrustPolicy) -> &'a WriteOption {
        match self {
            Rule::Root => &policy.root_rule,
            Rule::Own(a) => &a.write,
            Rule::TooDeep => &WriteOption::Nobody,
        }
    }
}

/// What the checks against the records read of an event.
pub(crate) trait EventKeys {
    /// The record written.
    fn key(&self) -> PrimaryKey;
    /// Whether it deletes the record.
    fn tombstone(&self) -> bool;
    /// Its place in the tree.
    fn parent(&self) -> Option<ParentLink>;
}

/// What validation reads of an event, whether decoded in place or owned.
pub(crate) trait EventFields: EventKeys {
    /// The encoded bytes (what the hash covers).
    fn raw(&self) -> &[u8];
    /// Whether it carries metadata (without, its trust metadata is the default).
    fn has_meta(&self) -> bool;
    /// Its trust metadata, decoded.
    fn trust(&self) -> Result<EventTrust, TrustError>;
}

impl EventKeys for Event {
    fn key(&self) -> PrimaryKey {
        self.key
    }
    fn tombstone(&self) -> bool {
        self.tombstone
    }
    fn parent(&self) -> Option<ParentLink> {
        self.parent
    }
}

impl EventFields for Event {
    fn raw(&self) -> &[u8] {
        &self.raw
    }
    fn has_meta(&self) -> bool {
        !self.meta.is_empty()
    }
    fn trust(&self) -> Result<EventTrust, TrustError> {
        EventTrust::of(self)
    }
}

impl EventKeys for EventRef<'_> {
    fn key(&self) -> PrimaryKey {
        self.key
    }
    fn tombstone(&self) -> bool {
        self.tombstone
    }
    fn parent(&self) -> Option<ParentLink> {
        self.parent
    }
}

impl EventFields for EventRef<'_> {
    fn raw(&self) -> &[u8] {
        self.raw
    }
    fn has_meta(&self) -> bool {
        !self.meta.is_empty()
    }
    fn trust(&self) -> Result<EventTrust, TrustError> {
        EventTrust::from_entries(self.meta)
    }
}

/// The valid signatures of a transaction: each signer and the events it covers (ascending).
#[derive(Debug, Default)]
pub(crate) struct Signers {
    by_signature: Vec<(Hash, Vec<u32>)>,
}

impl Signers {
    /// The signers of event `i`, in signature order.
    pub(crate) fn of(&self, i: usize) -> impl Iterator<Item = &Hash> + Clone {
        self.by_signature
            .iter()
            .filter(move |(_, covers)| {
                u32::try_from(i).is_ok_and(|i| covers.binary_search(&i).is_ok())
            })
            .map(|(signer, _)| signer)
    }

    /// For each of `n` events, its signers in signature order.
    pub(crate) fn per_event(&self, n: usize) -> Vec<Vec<Hash>> {
        let mut out = vec![Vec::new(); n];
        for (signer, covers) in &self.by_signature {
            for i in covers {
                if let Some(s) = out.get_mut(*i as usize) {
                    s.push(*signer);
                }
            }
        }
        out
    }
}

/// The result of [`TrustPolicy::verify`].
#[derive(Debug)]
pub(crate) struct Verified {
    /// Who signed which events.
    pub(crate) signers: Signers,
    /// The trust metadata of each event that has metadata, by event index (ascending), decoded
    /// up to and including the first refusal.
    pub(crate) trust: Vec<(usize, Result<CheckedMeta, TrustError>)>,
    /// The keys trailer's entries, checked against the events that bind them (for reads).
    pub(crate) keys: Option<std::sync::Arc<[super::meta::TxKey]>>,
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

fn check_right<'a>(
    required: &WriteOption,
    mut signers: impl Iterator<Item = &'a Hash> + Clone,
    key: PrimaryKey,
) -> Result<(), TrustError> {
    match required {
        WriteOption::Everyone => Ok(()),
        WriteOption::Nobody => Err(TrustError::Final { key }),
        _ if signers.clone().next().is_none() => Err(TrustError::MissingSignature { key }),
        r if signers.any(|s| r.allows(s)) => Ok(()),
        _ => Err(TrustError::Unauthorized { key }),
    }
}

/// Public-key hashes of every signer of a transaction (for plugins).
pub fn all_signers(signers: &[Vec<Hash>]) -> HashSet<Hash> {
    signers.iter().flatten().copied().collect()
}
