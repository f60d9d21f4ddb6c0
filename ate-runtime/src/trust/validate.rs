//! The built-in validation: signatures, write rights, versions and read rules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::crypto::{Hash, PublicEncryptKey};
use crate::event::codec::EventRef;
use crate::event::{Event, ParentLink, PrimaryKey};

use super::meta::{
    CheckedMeta, EventTrust, TxProofs, chain_hash, signature_message, tx_digest, vouch_message,
};
use super::{Authorization, ReadOption, TrustError, WriteOption};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Whether the proofs of a transaction sealed in this process are verified again by the chain
/// (debug builds, where every test commit checks the Dio's sign-then-verify).
const REVERIFY_LOCAL: bool = cfg!(debug_assertions);

/// Deepest parent chain the rules are inherited through: a write whose read or write rule would
/// be inherited from further up is refused ([`TrustError::TooDeep`]), on commit and on open.
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
pub(crate) struct Overlay {
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

/// How a chain establishes who wrote each transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IntegrityMode {
    /// Every transaction carries Falcon signatures over its events' hashes: anyone holding the
    /// log can verify it offline, with no trusted party.
    #[default]
    Distributed,
    /// Transactions may instead carry a server's vouch ([`TxVouch`](super::meta::TxVouch)),
    /// signed by a server key the chain pins: the server authenticated the connection they
    /// arrived on, and the writers it names hold their rights for every event without signing.
    /// Cheaper for writers; the log is then only as trustworthy as that server. Signed
    /// transactions are accepted too.
    Centralized,
}

/// The chain-wide rules: the chain's identity, its root writers, its integrity mode and the
/// servers whose vouches it accepts.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    chain_key: String,
    chain_hash: Hash,
    root_keys: Vec<Hash>,
    integrity: IntegrityMode,
    /// Ids of the server keys whose vouches count (centralized integrity).
    servers: Vec<Hash>,
    /// [`TrustPolicy::root_write`], built once.
    root_rule: WriteOption,
}

/// A parent chain longer than [`MAX_INHERIT_DEPTH`] was walked without finding the rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TooDeep;

/// The rules a write must satisfy (see [`TrustPolicy::write_rules`]).
pub(crate) struct WriteRules {
    /// The record's own rule (inherited when it has none); for a new record its parent's, or
    /// the root's.
    pub own: Rule,
    /// When the write moves an existing record to another parent (or to the root): that place
    /// and its rule, which the write must satisfy too.
    pub moved_to: Option<(Option<PrimaryKey>, Rule)>,
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
            servers: Vec::new(),
            root_rule,
        }
    }

    /// The same policy in integrity mode `mode`.
    pub fn with_integrity(mut self, mode: IntegrityMode) -> Self {
        self.integrity = mode;
        self
    }

    /// The same policy accepting vouches signed by the server keys with these ids.
    pub fn with_servers(mut self, servers: Vec<Hash>) -> Self {
        self.servers = servers;
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

    /// The nearest record, from `first` up the parent links, whose own rules set the rule that
    /// `sets` tells; `Ok(None)`: none does, the root's rule applies.
    fn nearest(
        lookup: &dyn TrustLookup,
        first: Option<RecordState>,
        sets: impl Fn(&Authorization) -> bool,
    ) -> Result<Option<Arc<Authorization>>, TooDeep> {
        let mut rec = first;
        for _ in 0..MAX_INHERIT_DEPTH {
            let Some(r) = rec else {
                return Ok(None);
            };
            if let Some(a) = r.auth
                && sets(&a)
            {
                return Ok(Some(a));
            }
            match r.parent {
                Some(p) => rec = lookup.record(&p),
                None => return Ok(None),
            }
        }
        Err(TooDeep)
    }

    /// The write rule in force for the record whose state is `first` (`None`: no such record,
    /// the root's), walking parent links through `lookup`.
    fn write_rule(
        &self,
        lookup: &dyn TrustLookup,
        first: Option<RecordState>,
    ) -> Result<Rule, TooDeep> {
        Ok(
            match Self::nearest(lookup, first, |a| a.write != WriteOption::Inherit)? {
                Some(a) => Rule::Own(a),
                None => Rule::Root,
            },
        )
    }

    /// The rules that set the read rule in force for the record whose state is `first` (`None`:
    /// `Everyone`).
    fn read_rule(
        &self,
        lookup: &dyn TrustLookup,
        first: Option<RecordState>,
    ) -> Result<Option<Arc<Authorization>>, TooDeep> {
        Self::nearest(lookup, first, |a| a.read != ReadOption::Inherit)
    }

    /// The write rule in force for an existing record (its own, else inherited).
    pub fn effective_write(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
    ) -> Result<WriteOption, TrustError> {
        let rule = self
            .write_rule(lookup, lookup.record(key))
            .map_err(|TooDeep| TrustError::TooDeep { key: *key })?;
        Ok(rule.get(self).clone())
    }

    /// The read rule in force for an existing record (its own, else inherited; the root is
    /// `Everyone`).
    pub fn effective_read(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
    ) -> Result<ReadOption, TrustError> {
        match self.read_rule(lookup, lookup.record(key)) {
            Ok(Some(a)) => Ok(a.read.clone()),
            Ok(None) => Ok(ReadOption::Everyone),
            Err(TooDeep) => Err(TrustError::TooDeep { key: *key }),
        }
    }

    /// The rules a write to `key` must satisfy, the record's current state being `current`
    /// (looked up already) and its parent after the write `parent` (for a deletion, its
    /// current parent): its own (effective) rule when it exists, otherwise its parent's,
    /// otherwise the root's; and, when the write moves it to another parent (or to the root),
    /// that place's rule too. A move that would make the record its own ancestor is refused.
    pub(crate) fn write_rules(
        &self,
        lookup: &dyn TrustLookup,
        key: PrimaryKey,
        current: Option<&RecordState>,
        parent: Option<PrimaryKey>,
    ) -> Result<WriteRules, TrustError> {
        let too_deep = |TooDeep| TrustError::TooDeep { key };
        let place = |p: Option<PrimaryKey>| match p {
            Some(p) => self.write_rule(lookup, lookup.record(&p)).map_err(too_deep),
            None => Ok(Rule::Root),
        };
        let Some(current) = current else {
            return Ok(WriteRules {
                own: place(parent)?,
                moved_to: None,
            });
        };
        let own = self
            .write_rule(lookup, Some(current.clone()))
            .map_err(too_deep)?;
        let moved_to = if current.parent == parent {
            None
        } else {
            if let Some(p) = parent {
                refuse_cycle(lookup, key, p)?;
            }
            Some((parent, place(parent)?))
        };
        Ok(WriteRules { own, moved_to })
    }

    /// The read rule a new version of `key` will have with rules `auth` under `parent`.
    pub fn read_for(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
        auth: Option<&Authorization>,
        parent: Option<&PrimaryKey>,
    ) -> Result<ReadOption, TrustError> {
        match auth.map(|a| &a.read) {
            Some(r) if *r != ReadOption::Inherit => Ok(r.clone()),
            _ => match parent {
                Some(p) => match self.read_rule(lookup, lookup.record(p)) {
                    Ok(Some(a)) => Ok(a.read.clone()),
                    Ok(None) => Ok(ReadOption::Everyone),
                    Err(TooDeep) => Err(TrustError::TooDeep { key: *key }),
                },
                None => Ok(ReadOption::Everyone),
            },
        }
    }

    /// The hash of the key a new version of a record must be encrypted for, under rules `auth`
    /// and `parent` (`None`: it may be plaintext). The same rule as [`TrustPolicy::read_for`].
    fn reader_for(
        &self,
        lookup: &dyn TrustLookup,
        key: &PrimaryKey,
        auth: Option<&Authorization>,
        parent: Option<&PrimaryKey>,
    ) -> Result<Option<Hash>, TrustError> {
        let specific = |r: &ReadOption| match r {
            ReadOption::Specific(rk) => Some(rk.hash()),
            _ => None,
        };
        match auth.map(|a| &a.read) {
            Some(r) if *r != ReadOption::Inherit => Ok(specific(r)),
            _ => {
                let Some(p) = parent else {
                    return Ok(None);
                };
                match self.read_rule(lookup, lookup.record(p)) {
                    Ok(inherited) => Ok(inherited.and_then(|a| specific(&a.read))),
                    Err(TooDeep) => Err(TrustError::TooDeep { key: *key }),
                }
            }
        }
    }

    /// The half of validation that depends only on the transaction: its proofs (signatures and
    /// vouch) are checked against its digest over the events' hashes (recomputed unless
    /// `hashes` are given, as in [`TrustPolicy::validate`]), each event's trust metadata is
    /// decoded, and the keys trailer and key directory are checked against the events. It reads
    /// no record, so transactions can go through it on any thread, ahead of
    /// [`TrustPolicy::check`].
    ///
    /// With `hashes` given, the proofs are taken as verified too: the Dio that sealed the
    /// transaction verified each signature after making it (debug builds verify them again
    /// here).
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
        let trust = decode_trust(events, local);
        // Every encrypted event binds its entry of the keys trailer, every entry is bound; every
        // public read key a rule names is in the key directory, and nothing else is. These
        // cheap checks come first: they name what is wrong more precisely than a digest.
        let keys = super::check_keys(proofs.keys.clone(), &trust)?;
        let directory = super::check_directory(proofs.directory.clone(), &trust)?;
        let signers = self.verify_proofs(events, &proofs, hashes, REVERIFY_LOCAL)?;
        Ok(Verified {
            signers,
            trust,
            keys,
            directory,
        })
    }

    /// Checks the signatures and the vouch of a transaction against its digest, and returns who
    /// signed which events. With `hashes` given (sealed in this process), the proofs are taken
    /// as verified unless `reverify`.
    fn verify_proofs<E: EventFields>(
        &self,
        events: &[E],
        proofs: &TxProofs,
        hashes: Option<&[Hash]>,
        reverify: bool,
    ) -> Result<Signers, TrustError> {
        self.verify_counted(
            events.len(),
            || Hash::of_many(&events.iter().map(|e| e.raw()).collect::<Vec<_>>()),
            proofs,
            hashes,
            reverify,
        )
    }

    /// [`TrustPolicy::verify`] for a pruned transaction (kept by a compaction): `events` are
    /// the events kept, `slots` every event's place in order (`None` for the next kept event,
    /// the hash of a dropped one otherwise). The digest is recomputed over every slot, so the
    /// kept events' signatures verify as they did before the compaction; who signed which
    /// events is then told by the kept events' indices. A keys-trailer entry or directory key
    /// bound only by dropped events is not an error.
    pub(crate) fn verify_pruned<E: EventFields>(
        &self,
        events: &[E],
        slots: &[Option<Hash>],
        proofs: TxProofs,
    ) -> Result<Verified, TrustError> {
        let trust = decode_trust(events, None);
        let keys = super::check_keys_of(proofs.keys.clone(), &trust, true)?;
        let directory = super::check_directory_of(proofs.directory.clone(), &trust, true)?;
        let kept = Hash::of_many(&events.iter().map(|e| e.raw()).collect::<Vec<_>>());
        let mut kept_hashes = kept.into_iter();
        // The kept index of each slot.
        let mut kept_at: Vec<Option<u32>> = Vec::with_capacity(slots.len());
        let mut all = Vec::with_capacity(slots.len());
        let mut next_kept = 0u32;
        for slot in slots {
            match slot {
                Some(h) => {
                    kept_at.push(None);
                    all.push(*h);
                }
                None => {
                    let h = kept_hashes.next().ok_or(TrustError::BadCoverage)?;
                    kept_at.push(Some(next_kept));
                    next_kept += 1;
                    all.push(h);
                }
            }
        }
        if kept_hashes.next().is_some() {
            return Err(TrustError::BadCoverage);
        }
        let n = all.len();
        let mut signers = self.verify_counted(n, Vec::new, &proofs, Some(&all), true)?;
        for (_, covers) in &mut signers.by_signature {
            if let Covers::Some(list) = covers {
                *list = list
                    .iter()
                    .filter_map(|i| kept_at.get(*i as usize).copied().flatten())
                    .collect();
            }
        }
        Ok(Verified {
            signers,
            trust,
            keys,
            directory,
        })
    }

    /// Checks the proofs of a transaction of `n` events whose hashes `hashes` gives (trusted
    /// unless `reverify`) or `compute` computes.
    fn verify_counted(
        &self,
        n: usize,
        compute: impl FnOnce() -> Vec<Hash>,
        proofs: &TxProofs,
        hashes: Option<&[Hash]>,
        reverify: bool,
    ) -> Result<Signers, TrustError> {
        if let Some(v) = &proofs.vouch {
            if self.integrity != IntegrityMode::Centralized {
                return Err(TrustError::VouchRefused);
            }
            if v.chain != self.chain_hash {
                return Err(TrustError::WrongChain);
            }
            if !self.servers.contains(&v.server.hash()) {
                return Err(TrustError::UnpinnedServer {
                    server: v.server.hash(),
                });
            }
            if v.signature.algorithm()? != v.server.algorithm() {
                return Err(TrustError::UnknownAlgorithm(
                    "signature and key algorithms differ".into(),
                ));
            }
        }
        for sig in &proofs.signatures {
            if sig.chain != self.chain_hash {
                return Err(TrustError::WrongChain);
            }
            if sig.covers.windows(2).any(|w| w[0] >= w[1])
                || sig.covers.last().is_some_and(|i| *i as usize >= n)
            {
                return Err(TrustError::BadCoverage);
            }
            if sig.signature.algorithm()? != sig.public_key.algorithm() {
                return Err(TrustError::UnknownAlgorithm(
                    "signature and key algorithms differ".into(),
                ));
            }
        }
        if !proofs.is_signed() {
            return Ok(Signers::default());
        }
        // A transaction sealed in this process (`hashes` given) was signed by its Dio, which
        // verified each signature right after making it; otherwise (a file, the network,
        // `Chain::commit_transaction`, a vouch) every proof is verified here.
        let trusted = hashes.filter(|h| h.len() == n);
        if trusted.is_none() || reverify {
            let computed: Vec<Hash>;
            let actual = match trusted {
                Some(h) => h,
                None => {
                    computed = compute();
                    &computed
                }
            };
            let digest = tx_digest(&self.chain_hash, actual, &proofs.claims());
            for sig in &proofs.signatures {
                if sig.digest != digest {
                    return Err(TrustError::TxDigestMismatch);
                }
                sig.public_key
                    .verify(&signature_message(&digest), &sig.signature)
                    .map_err(|_| TrustError::BadSignature {
                        signer: sig.public_key.hash(),
                    })?;
            }
            if let Some(v) = &proofs.vouch {
                if v.digest != digest {
                    return Err(TrustError::TxDigestMismatch);
                }
                v.server
                    .verify(&vouch_message(&digest), &v.signature)
                    .map_err(|_| TrustError::BadSignature {
                        signer: v.server.hash(),
                    })?;
            }
        }
        let mut signers = Signers::default();
        for sig in &proofs.signatures {
            signers
                .by_signature
                .push((sig.public_key.hash(), Covers::Some(sig.covers.clone())));
        }
        if let Some(v) = &proofs.vouch {
            for w in &v.writers {
                signers.by_signature.push((*w, Covers::All));
            }
        }
        Ok(signers)
    }

    /// The half of validation that reads the records: versions, parents, write rights (of the
    /// record, and of its new place when it moves) and read rules, event by event against
    /// `base` plus `overlay` plus the events ahead in the same transaction. `verified` is the
    /// other half for the same events. On success `staged` (cleared first) holds the
    /// transaction's effects.
    pub(crate) fn check<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        events: &[E],
        verified: &Verified,
        seq: u64,
        staged: &mut Overlay,
    ) -> Result<(), TrustError> {
        self.check_in(base, overlay, events, verified, seq, staged, None)
    }

    /// [`TrustPolicy::check`] for a transaction of a compacted log's checkpointed part
    /// (`compacted`: the checkpoint's last judged number), where a record's versions between
    /// two kept ones were dropped: an event may name as the version it replaces a number
    /// after the record's kept version and up to `compacted` (one dropped). Everything else
    /// is checked as for any transaction: the kept versions carry the rules that were in force.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_in<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        events: &[E],
        verified: &Verified,
        seq: u64,
        staged: &mut Overlay,
        compacted: Option<u64>,
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
            let dropped_before = |p: u64| {
                compacted.is_some_and(|upto| {
                    p <= upto && p < seq && current.as_ref().is_some_and(|c| c.seq < p)
                })
            };
            match trust.previous {
                Some(p) if dropped_before(p) => {}
                previous => check_version(&lookup, key, tombstone, current.as_ref(), previous)?,
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
            let rules = self.write_rules(&lookup, key, current.as_ref(), parent)?;
            check_right(rules.own.get(self), verified.signers.of(i), key)?;
            if let Some((to, rule)) = &rules.moved_to
                && check_right(rule.get(self), verified.signers.of(i), key).is_err()
            {
                return Err(TrustError::UnauthorizedMove { key, to: *to });
            }
            if !tombstone
                && let Some(expected) =
                    self.reader_for(&lookup, &key, trust.auth.as_ref(), parent.as_ref())?
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

/// The version an event claims to replace must be the record's current one; a new record's key
/// must never have been used.
fn check_version(
    lookup: &dyn TrustLookup,
    key: PrimaryKey,
    tombstone: bool,
    current: Option<&RecordState>,
    previous: Option<u64>,
) -> Result<(), TrustError> {
    match (current, previous) {
        (Some(c), Some(p)) if c.seq == p => Ok(()),
        (None, None) if !tombstone => {
            if lookup.was_deleted(&key) {
                Err(TrustError::Deleted { key })
            } else {
                Ok(())
            }
        }
        (c, p) => Err(TrustError::VersionMismatch {
            key,
            claimed: p,
            current: c.map(|c| c.seq),
        }),
    }
}

/// Refuses to put `key` under `parent` when `key` is `parent` or one of its ancestors.
fn refuse_cycle(
    lookup: &dyn TrustLookup,
    key: PrimaryKey,
    parent: PrimaryKey,
) -> Result<(), TrustError> {
    let mut at = parent;
    for _ in 0..=MAX_INHERIT_DEPTH {
        if at == key {
            return Err(TrustError::ParentCycle { key });
        }
        match lookup.record(&at).and_then(|r| r.parent) {
            Some(up) => at = up,
            None => return Ok(()),
        }
    }
    Err(TrustError::TooDeep { key })
}

/// Each event's trust metadata, by index, for the events that have some: `local` when the
/// committing Dio handed it over, otherwise decoded (up to the first refusal, which
/// [`TrustPolicy::check`] reports when it reaches that event).
fn decode_trust<E: EventFields>(
    events: &[E],
    local: Option<Vec<CheckedMeta>>,
) -> Vec<(usize, Result<CheckedMeta, TrustError>)> {
    let mut trust = Vec::new();
    match local.filter(|l| l.len() == events.len()) {
        Some(local) => {
            trust.reserve(events.len());
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
    trust
}

/// The write rule that applies, without copying it.
pub(crate) enum Rule {
    /// The chain root's ([`TrustPolicy::root_write`]).
    Root,
    /// A record's own rule (never `Inherit`).
    Own(Arc<Authorization>),
}

impl Rule {
    /// The rule itself.
    pub(crate) fn get<'a>(&'a self, policy: &'a TrustPolicy) -> &'a WriteOption {
        match self {
            Rule::Root => &policy.root_rule,
            Rule::Own(a) => &a.write,
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

/// The events a signer's rights count for.
#[derive(Debug)]
enum Covers {
    /// Every event (the writers a vouch names).
    All,
    /// These, ascending.
    Some(Vec<u32>),
}

impl Covers {
    fn contains(&self, i: usize) -> bool {
        match self {
            Covers::All => true,
            Covers::Some(c) => u32::try_from(i).is_ok_and(|i| c.binary_search(&i).is_ok()),
        }
    }
}

/// The valid proofs of a transaction: each signer and the events it covers.
#[derive(Debug, Default)]
pub(crate) struct Signers {
    by_signature: Vec<(Hash, Covers)>,
}

impl Signers {
    /// The signers of event `i`, in signature order.
    pub(crate) fn of(&self, i: usize) -> impl Iterator<Item = &Hash> + Clone {
        self.by_signature
            .iter()
            .filter(move |(_, covers)| covers.contains(i))
            .map(|(signer, _)| signer)
    }

    /// For each of `n` events, its signers in signature order.
    pub(crate) fn per_event(&self, n: usize) -> Vec<Vec<Hash>> {
        (0..n).map(|i| self.of(i).copied().collect()).collect()
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
    pub(crate) keys: Option<Arc<[super::meta::TxKey]>>,
    /// The key directory's keys, checked against the rules that name them (for writers).
    pub(crate) directory: Option<Arc<[PublicEncryptKey]>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeySize, PrivateSignKey, Signature};
    use crate::event::codec::TransactionRef;
    use crate::event::{BodyFormat, EventDraft, encode_transaction};
    use crate::trust::meta::{TRAILER_SIGNATURE, TxSealer, TxSignature, event_hashes, proofs_from};

    fn drafts(n: u128) -> Vec<EventDraft> {
        (0..n)
            .map(|k| EventDraft {
                key: PrimaryKey::from(k + 1),
                timestamp_ms: 1,
                tombstone: false,
                parent: None,
                type_name: "t.T".into(),
                format: BodyFormat::MessagePack,
                meta: Vec::new(),
                body: Some(vec![k as u8; 40].into()),
            })
            .collect()
    }

    /// The release-mode path: proofs of a transaction sealed in this process, its hashes handed
    /// over, are taken as verified; what it finds is what full verification finds.
    #[test]
    fn locally_sealed_proofs_are_taken_as_verified_with_the_same_result() {
        let (a, b) = (
            PrivateSignKey::generate(KeySize::Bit128),
            PrivateSignKey::generate(KeySize::Bit128),
        );
        let policy = TrustPolicy::new("local", vec![a.hash()]);
        let evs = drafts(4);
        let hashes = event_hashes(&evs);
        let trailers = TxSealer {
            signers: vec![(&a, vec![0, 1, 3]), (&b, vec![2, 3])],
            ..TxSealer::default()
        }
        .seal(policy.chain_hash(), &hashes)
        .unwrap();
        let payload = encode_transaction(1, &evs, &trailers);
        let tx = TransactionRef::decode(&payload).unwrap();
        let proofs = || proofs_from(tx.trailers).unwrap();
        let full = policy
            .verify_proofs(&tx.events, &proofs(), None, false)
            .unwrap();
        let trusted = policy
            .verify_proofs(&tx.events, &proofs(), Some(&hashes), false)
            .unwrap();
        assert_eq!(full.per_event(4), trusted.per_event(4));
        let mut both = vec![a.hash(), b.hash()];
        both.sort();
        assert_eq!(trusted.per_event(4)[3], both);

        // What "taken as verified" means: a signature broken after sealing is not looked at on
        // that path, and is refused on every other.
        let mut broken = trailers.clone();
        let mut sig: TxSignature = rmp_serde::from_slice(&broken[0].value).unwrap();
        let mut bytes = sig.signature.as_bytes().to_vec();
        bytes[10] ^= 1;
        sig.signature = Signature::from_parts(sig.signature.algorithm_id(), bytes);
        broken[0] = crate::trust::meta::signature_trailer(&sig);
        assert_eq!(broken[0].tag, TRAILER_SIGNATURE);
        let payload = encode_transaction(1, &evs, &broken);
        let tx = TransactionRef::decode(&payload).unwrap();
        let proofs = || proofs_from(tx.trailers).unwrap();
        assert!(
            policy
                .verify_proofs(&tx.events, &proofs(), Some(&hashes), false)
                .is_ok()
        );
        for (hashes, reverify) in [(None, false), (Some(&hashes[..]), true)] {
            assert!(matches!(
                policy.verify_proofs(&tx.events, &proofs(), hashes, reverify),
                Err(TrustError::BadSignature { .. })
            ));
        }
    }
}
