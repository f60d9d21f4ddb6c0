//! Compaction against a model, with what a compaction must keep for the chain of trust:
//! random transactions of new records (top level and children), updates, deletes and changes
//! of a record's writer, on records with a unique and a plain index and on records encrypted
//! for one of two read keys, written by three signers (each transaction signed by exactly the
//! keys its writes need), with compactions and reopens at random points. After every step the
//! chain shows the model: every record (value and write rule), every child list, every lookup
//! of both indexes, which read key opens which record. At each compaction, the compacted chain
//! also shows exactly what the log before it shows when opened on its own; a reopen checks the
//! whole compacted log again (every signature and right); and probes write to a record with
//! each signer, as a transaction built outside the Dio (refused with `Unauthorized` for a key
//! without the right, accepted for one with it) and through the Dio (refused before signing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use ate_runtime::chain::{ChainRegistry, CommitError};
use ate_runtime::crypto::{EncryptKey, KeySize, PrivateSignKey};
use ate_runtime::event::{BodyFormat, EventDraft, ParentLink};
use ate_runtime::log::MemoryStore;
use ate_runtime::prelude::*;
use ate_runtime::schema::{
    AccessDefault, IndexKind, IndexSpec, Scalar, TypeRegistration, extract_with,
};
use ate_runtime::trust::{Authorization, ReadOption, TrustError, WriteOption};
use ate_runtime::unstable::meta::{EventTrust, TxSealer, event_hashes};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A plaintext record with a unique index (`email`) and a plain one (`team`), and two
/// collections of children.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Member {
    email: String,
    team: u32,
    v: u32,
    kids: DaoVec<Member>,
    secrets: DaoVec<Secret>,
}

/// A record encrypted for a read key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Secret {
    text: String,
}

const MEMBER: &str = "core.CompactMember";

fn member_email(body: &[u8]) -> Option<Vec<u8>> {
    extract_with::<Member, _>(body, |m| &m.email)
}

fn member_team(body: &[u8]) -> Option<Vec<u8>> {
    extract_with::<Member, _>(body, |m| &m.team)
}

static MEMBER_INDEXES: [IndexSpec; 2] = [
    IndexSpec {
        field: "email",
        unique: true,
        position: 0,
        kind: IndexKind::of(Scalar::String),
        extract: member_email,
    },
    IndexSpec {
        field: "team",
        unique: false,
        position: 1,
        kind: IndexKind::of(Scalar::Integer),
        extract: member_team,
    },
];

fn attach_nothing(_: &mut dyn std::any::Any, _: PrimaryKey) {}

inventory::submit! {
    TypeRegistration {
        name: MEMBER,
        type_id: std::any::TypeId::of::<Member>,
        rust_name: std::any::type_name::<Member>,
        read: AccessDefault::Inherit,
        write: AccessDefault::Inherit,
        attach: attach_nothing,
        indexes: &MEMBER_INDEXES,
    }
}

inventory::submit! {
    TypeRegistration::named::<Secret>("core.CompactSecret")
}

/// Values of the unique index (few, so that released ones are taken again).
const EMAILS: usize = 5;
/// Values of the plain index.
const TEAMS: u32 = 3;
/// What every secret's plaintext starts with (never in the log).
const PLAIN: &str = "PLAINTEXT-OF-A-SECRET";

fn email(i: usize) -> String {
    format!("user{i}@example.org")
}

struct Keys {
    /// Signer 0 is the chain's root writer.
    signers: [PrivateSignKey; 3],
    reads: [EncryptKey; 2],
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        signers: std::array::from_fn(|_| PrivateSignKey::generate(KeySize::Bit128)),
        reads: std::array::from_fn(|_| EncryptKey::generate()),
    })
}

/// A session holding these signers' keys and every read key.
fn writer(signers: &BTreeSet<usize>) -> AteSession {
    let mut s = AteSession::default();
    for &i in signers {
        s.add_write_key(&keys().signers[i]);
    }
    for r in &keys().reads {
        s.add_read_key(r);
    }
    s
}

/// A session holding one read key and no signer.
fn reader(i: usize) -> AteSession {
    let mut s = AteSession::default();
    s.add_read_key(&keys().reads[i]);
    s
}

fn all_readers() -> AteSession {
    writer(&BTreeSet::new())
}

/// A record's own write rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Inherit,
    Key(usize),
    /// Signer 1 or signer 2.
    Pair,
}

impl Owner {
    fn option(self) -> WriteOption {
        match self {
            Owner::Inherit => WriteOption::Inherit,
            Owner::Key(i) => WriteOption::Specific(keys().signers[i].hash()),
            Owner::Pair => {
                WriteOption::Any(vec![keys().signers[1].hash(), keys().signers[2].hash()])
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Member { email: usize, team: u32 },
    Secret { reader: usize },
}

#[derive(Clone, Debug)]
struct Rec {
    kind: Kind,
    v: u32,
    owner: Owner,
    parent: Option<PrimaryKey>,
    live: bool,
    /// The transaction that wrote the current version.
    version: u64,
}

/// The committed state.
#[derive(Default)]
struct Model {
    recs: BTreeMap<PrimaryKey, Rec>,
    /// Keys in creation order.
    order: Vec<PrimaryKey>,
    /// The collections of each member, attached.
    kids: BTreeMap<PrimaryKey, (DaoVec<Member>, DaoVec<Secret>)>,
    /// Live children of each member: members, then secrets, each in commit order.
    children: BTreeMap<PrimaryKey, (Vec<PrimaryKey>, Vec<PrimaryKey>)>,
}

impl Model {
    fn live(&self) -> Vec<PrimaryKey> {
        self.order
            .iter()
            .copied()
            .filter(|k| self.recs[k].live)
            .collect()
    }

    fn live_members(&self) -> Vec<PrimaryKey> {
        self.live()
            .into_iter()
            .filter(|k| matches!(self.recs[k].kind, Kind::Member { .. }))
            .collect()
    }

    /// The signers allowed to write `k` (its own rule, else its parent's, else the root's).
    fn rule(&self, k: &PrimaryKey) -> BTreeSet<usize> {
        let r = &self.recs[k];
        match r.owner {
            Owner::Key(i) => BTreeSet::from([i]),
            Owner::Pair => BTreeSet::from([1, 2]),
            Owner::Inherit => match &r.parent {
                Some(p) => self.rule(p),
                None => BTreeSet::from([0]),
            },
        }
    }

    /// `k` and every live record below it.
    fn subtree(&self, k: &PrimaryKey) -> Vec<PrimaryKey> {
        let mut out = vec![*k];
        if let Some((ms, ss)) = self.children.get(k) {
            for c in ms {
                out.extend(self.subtree(c));
            }
            out.extend(ss.iter().copied());
        }
        out
    }

    fn has_children(&self, k: &PrimaryKey) -> bool {
        self.children
            .get(k)
            .is_some_and(|(ms, ss)| !ms.is_empty() || !ss.is_empty())
    }

    fn link(&self, parent: &PrimaryKey, secret: bool) -> ParentLink {
        let (ms, ss) = &self.kids[parent];
        ParentLink {
            parent: *parent,
            collection: if secret { ss.id() } else { ms.id() },
        }
    }

    fn member_value(&self, k: &PrimaryKey) -> Member {
        let r = &self.recs[k];
        let Kind::Member { email: e, team } = r.kind else {
            panic!("{k} is not a member");
        };
        let (ms, ss) = &self.kids[k];
        Member {
            email: email(e),
            team,
            v: r.v,
            kids: ms.clone(),
            secrets: ss.clone(),
        }
    }

    /// What a chain holding this state shows.
    fn expected(&self) -> Seen {
        let mut seen = Seen::default();
        for (k, r) in &self.recs {
            let record = if !r.live {
                Shown::Gone
            } else {
                match r.kind {
                    Kind::Member { email: e, team } => {
                        seen.by_email.entry(email(e)).or_default().push(*k);
                        seen.by_team.entry(team).or_default().push(*k);
                        Shown::Member {
                            email: email(e),
                            team,
                            v: r.v,
                            write: r.owner.option(),
                        }
                    }
                    Kind::Secret { reader } => {
                        seen.readers.insert(*k, [reader == 0, reader == 1]);
                        Shown::Secret {
                            text: secret_text(r.v),
                            write: r.owner.option(),
                        }
                    }
                }
            };
            seen.records.insert(*k, record);
            if r.live && matches!(r.kind, Kind::Member { .. }) {
                let lists = self.children.get(k).cloned().unwrap_or_default();
                seen.children.insert(*k, lists);
            }
        }
        for e in 0..EMAILS {
            seen.by_email.entry(email(e)).or_default();
        }
        for t in 0..TEAMS {
            seen.by_team.entry(t).or_default();
        }
        for list in seen.by_email.values_mut().chain(seen.by_team.values_mut()) {
            list.sort_unstable();
        }
        seen
    }
}

fn secret_text(v: u32) -> String {
    format!("{PLAIN} {v}")
}

/// A record as a chain shows it.
#[derive(Debug, PartialEq)]
enum Shown {
    Member {
        email: String,
        team: u32,
        v: u32,
        write: WriteOption,
    },
    Secret {
        text: String,
        write: WriteOption,
    },
    Gone,
}

/// Everything the checks compare.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    records: BTreeMap<PrimaryKey, Shown>,
    children: BTreeMap<PrimaryKey, (Vec<PrimaryKey>, Vec<PrimaryKey>)>,
    by_email: BTreeMap<String, Vec<PrimaryKey>>,
    by_team: BTreeMap<u32, Vec<PrimaryKey>>,
    /// Of each live secret: whether a session holding only read key 0, and only read key 1,
    /// reads it (the other gets `MissingReadKey`).
    readers: BTreeMap<PrimaryKey, [bool; 2]>,
}

/// What `chain` shows of the records the model knows.
async fn observe(chain: &Chain, model: &Model) -> Seen {
    let dio = chain.dio(&all_readers()).await;
    let only = [chain.dio(&reader(0)).await, chain.dio(&reader(1)).await];
    let mut seen = Seen::default();
    for (k, r) in &model.recs {
        let shown = match r.kind {
            Kind::Member { .. } => match dio.load::<Member>(k).await {
                Ok(m) => {
                    let (ms, ss) = &model.kids[k];
                    let kids = dio.children(k, ms).await.expect("children");
                    let secrets = dio.children(k, ss).await.expect("secrets");
                    seen.children.insert(
                        *k,
                        (
                            kids.iter().map(|d| *d.key()).collect(),
                            secrets.iter().map(|d| *d.key()).collect(),
                        ),
                    );
                    Shown::Member {
                        email: m.email.clone(),
                        team: m.team,
                        v: m.v,
                        write: m.auth().write.clone(),
                    }
                }
                Err(DioError::NotFound(_)) => Shown::Gone,
                Err(e) => panic!("member {k}: {e}"),
            },
            Kind::Secret { .. } => match dio.load::<Secret>(k).await {
                Ok(s) => {
                    let mut readable = [false; 2];
                    for (i, d) in only.iter().enumerate() {
                        readable[i] = match d.load::<Secret>(k).await {
                            Ok(t) => {
                                assert_eq!(t.text, s.text);
                                true
                            }
                            Err(DioError::MissingReadKey { .. }) => false,
                            Err(e) => panic!("secret {k} with read key {i} only: {e}"),
                        };
                    }
                    seen.readers.insert(*k, readable);
                    Shown::Secret {
                        text: s.text.clone(),
                        write: s.auth().write.clone(),
                    }
                }
                Err(DioError::NotFound(_)) => Shown::Gone,
                Err(e) => panic!("secret {k}: {e}"),
            },
        };
        seen.records.insert(*k, shown);
    }
    for e in 0..EMAILS {
        let found = dio
            .find::<Member, _>("email", &email(e))
            .await
            .expect("find");
        seen.by_email
            .insert(email(e), found.iter().map(|d| *d.key()).collect());
    }
    for t in 0..TEAMS {
        let found = dio.find::<Member, _>("team", &t).await.expect("find");
        seen.by_team
            .insert(t, found.iter().map(|d| *d.key()).collect());
    }
    seen
}

#[derive(Clone, Debug)]
enum Action {
    NewMember {
        parent: Option<usize>,
        email: usize,
        team: u32,
        owner: Owner,
    },
    NewSecret {
        parent: Option<usize>,
        reader: usize,
        owner: Owner,
    },
    /// A new version of a live record (for a member, maybe another email and team).
    Update {
        target: usize,
        email: Option<usize>,
        team: Option<u32>,
    },
    SetOwner {
        target: usize,
        owner: Owner,
    },
    Delete {
        target: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    /// One transaction of these writes (those that do not apply are skipped).
    Tx(Vec<Action>),
    Compact,
    Reopen,
    /// Writes to a live member with each signer.
    Probe(usize),
}

fn owner() -> impl Strategy<Value = Owner> {
    prop_oneof![
        3 => Just(Owner::Inherit),
        1 => Just(Owner::Key(0)),
        2 => Just(Owner::Key(1)),
        2 => Just(Owner::Key(2)),
        1 => Just(Owner::Pair),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let parent = prop::option::weighted(0.6, any::<usize>());
    prop_oneof![
        3 => (parent.clone(), 0..EMAILS, 0..TEAMS, owner()).prop_map(
            |(parent, email, team, owner)| Action::NewMember { parent, email, team, owner }
        ),
        2 => (parent, 0..2usize, owner())
            .prop_map(|(parent, reader, owner)| Action::NewSecret { parent, reader, owner }),
        8 => (
            any::<usize>(),
            prop::option::of(0..EMAILS),
            prop::option::of(0..TEAMS)
        )
            .prop_map(|(target, email, team)| Action::Update { target, email, team }),
        2 => (any::<usize>(), owner()).prop_map(|(target, owner)| Action::SetOwner { target, owner }),
        2 => any::<usize>().prop_map(|target| Action::Delete { target }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec(action(), 1..6).prop_map(Op::Tx),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => any::<usize>().prop_map(Op::Probe),
    ]
}

/// One write of a transaction, with every choice made.
enum Planned {
    NewMember {
        parent: Option<PrimaryKey>,
        email: usize,
        team: u32,
        owner: Owner,
    },
    NewSecret {
        parent: Option<PrimaryKey>,
        reader: usize,
        owner: Owner,
    },
    Update {
        key: PrimaryKey,
        kind: Kind,
    },
    SetOwner {
        key: PrimaryKey,
        owner: Owner,
    },
    Delete {
        key: PrimaryKey,
    },
}

/// The writes of `actions` that apply to `m`, and the signers they need. A record is written
/// at most once per transaction; no record is written below one whose rules change in it; an
/// email is taken only when no live member held it when the transaction began.
fn plan(m: &Model, actions: &[Action]) -> (Vec<Planned>, BTreeSet<usize>) {
    let live = m.live();
    let members = m.live_members();
    let mut touched: BTreeSet<PrimaryKey> = BTreeSet::new();
    let mut taken: BTreeSet<usize> = members
        .iter()
        .map(|k| match m.recs[k].kind {
            Kind::Member { email, .. } => email,
            Kind::Secret { .. } => unreachable!(),
        })
        .collect();
    let free_email = |want: usize, taken: &mut BTreeSet<usize>| {
        let free: Vec<usize> = (0..EMAILS).filter(|e| !taken.contains(e)).collect();
        let e = *free.get(want % free.len().max(1))?;
        taken.insert(e);
        Some(e)
    };
    let mut out = Vec::new();
    let mut needed = BTreeSet::new();
    for a in actions {
        match a {
            Action::NewMember { parent, .. } | Action::NewSecret { parent, .. } => {
                let parent = match parent {
                    Some(i) if !members.is_empty() => {
                        let p = members[i % members.len()];
                        if touched.contains(&p) {
                            continue;
                        }
                        Some(p)
                    }
                    _ => None,
                };
                let planned = match a {
                    Action::NewMember {
                        email, team, owner, ..
                    } => {
                        let Some(email) = free_email(*email, &mut taken) else {
                            continue;
                        };
                        Planned::NewMember {
                            parent,
                            email,
                            team: *team,
                            owner: *owner,
                        }
                    }
                    Action::NewSecret { reader, owner, .. } => Planned::NewSecret {
                        parent,
                        reader: *reader,
                        owner: *owner,
                    },
                    _ => unreachable!(),
                };
                needed.extend(match &parent {
                    Some(p) => m.rule(p),
                    None => BTreeSet::from([0]),
                });
                if let Some(p) = parent {
                    touched.insert(p);
                }
                out.push(planned);
            }
            Action::Update {
                target,
                email,
                team,
            } => {
                let Some(&k) = live.get(target % live.len().max(1)) else {
                    continue;
                };
                if touched.contains(&k) {
                    continue;
                }
                let kind = match m.recs[&k].kind {
                    Kind::Member {
                        email: old,
                        team: old_team,
                    } => {
                        let email = match email {
                            Some(want) => free_email(*want, &mut taken).unwrap_or(old),
                            None => old,
                        };
                        Kind::Member {
                            email,
                            team: team.unwrap_or(old_team),
                        }
                    }
                    secret => secret,
                };
                needed.extend(m.rule(&k));
                touched.insert(k);
                out.push(Planned::Update { key: k, kind });
            }
            Action::SetOwner { target, owner } => {
                let Some(&k) = live.get(target % live.len().max(1)) else {
                    continue;
                };
                let below = m.subtree(&k);
                if below.iter().any(|c| touched.contains(c)) {
                    continue;
                }
                needed.extend(m.rule(&k));
                touched.extend(below);
                out.push(Planned::SetOwner {
                    key: k,
                    owner: *owner,
                });
            }
            Action::Delete { target } => {
                let Some(&k) = live.get(target % live.len().max(1)) else {
                    continue;
                };
                if touched.contains(&k) || m.has_children(&k) {
                    continue;
                }
                needed.extend(m.rule(&k));
                touched.insert(k);
                out.push(Planned::Delete { key: k });
            }
        }
    }
    (out, needed)
}

struct Run {
    reg: ChainRegistry,
    store: MemoryStore,
    chain: Chain,
    m: Model,
    /// The next value written (every version's value is distinct).
    counter: u32,
}

async fn registry() -> ChainRegistry {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().signers[0].as_public_key())
        .build()
}

const CHAIN: &str = "compact-model";

fn open(reg: &ChainRegistry, store: MemoryStore) -> Chain {
    reg.open_store(&ChainKey::from(CHAIN), Box::new(store))
        .expect("open")
}

impl Run {
    async fn new() -> Self {
        let reg = registry().await;
        let store = MemoryStore::new();
        let chain = open(&reg, store.clone());
        let mut run = Run {
            reg,
            store,
            chain,
            m: Model::default(),
            counter: 0,
        };
        // The root writes the first member (and with it the schema of its indexes).
        run.tx(&[Action::NewMember {
            parent: None,
            email: 0,
            team: 0,
            owner: Owner::Inherit,
        }])
        .await;
        run
    }

    async fn tx(&mut self, actions: &[Action]) {
        let (planned, needed) = plan(&self.m, actions);
        if planned.is_empty() {
            return;
        }
        let mut dio = self.chain.dio(&writer(&needed)).await;
        // Applied to the model once committed.
        let mut applied: Vec<(PrimaryKey, Rec)> = Vec::new();
        let mut new_children: Vec<(PrimaryKey, bool, PrimaryKey)> = Vec::new();
        for p in planned {
            match p {
                Planned::NewMember {
                    parent,
                    email: e,
                    team,
                    owner,
                } => {
                    self.counter += 1;
                    let value = Member {
                        email: email(e),
                        team,
                        v: self.counter,
                        kids: DaoVec::new(),
                        secrets: DaoVec::new(),
                    };
                    let mut dao = match &parent {
                        Some(p) => dio.store_child(p, &self.m.kids[p].0, value).expect("stage"),
                        None => dio.store(value).expect("stage"),
                    };
                    dao.auth_mut().write = owner.option();
                    let k = *dao.key();
                    let (mut ms, mut ss) = (dao.kids.clone(), dao.secrets.clone());
                    ms.attach(k);
                    ss.attach(k);
                    self.m.kids.insert(k, (ms, ss));
                    if let Some(p) = parent {
                        new_children.push((p, false, k));
                    }
                    applied.push((
                        k,
                        Rec {
                            kind: Kind::Member { email: e, team },
                            v: self.counter,
                            owner,
                            parent,
                            live: true,
                            version: 0,
                        },
                    ));
                }
                Planned::NewSecret {
                    parent,
                    reader,
                    owner,
                } => {
                    self.counter += 1;
                    let value = Secret {
                        text: secret_text(self.counter),
                    };
                    let mut dao = match &parent {
                        Some(p) => dio.store_child(p, &self.m.kids[p].1, value).expect("stage"),
                        None => dio.store(value).expect("stage"),
                    };
                    {
                        let mut auth = dao.auth_mut();
                        auth.read = ReadOption::from_key(&keys().reads[reader]);
                        auth.write = owner.option();
                    }
                    let k = *dao.key();
                    if let Some(p) = parent {
                        new_children.push((p, true, k));
                    }
                    applied.push((
                        k,
                        Rec {
                            kind: Kind::Secret { reader },
                            v: self.counter,
                            owner,
                            parent,
                            live: true,
                            version: 0,
                        },
                    ));
                }
                Planned::Update { key, kind } => {
                    self.counter += 1;
                    let mut rec = self.m.recs[&key].clone();
                    rec.v = self.counter;
                    rec.kind = kind;
                    match kind {
                        Kind::Member { email: e, team } => {
                            let mut dao = dio.load::<Member>(&key).await.expect("load");
                            let mut w = dao.as_mut();
                            w.email = email(e);
                            w.team = team;
                            w.v = rec.v;
                        }
                        Kind::Secret { .. } => {
                            let mut dao = dio.load::<Secret>(&key).await.expect("load");
                            dao.as_mut().text = secret_text(rec.v);
                        }
                    }
                    applied.push((key, rec));
                }
                Planned::SetOwner { key, owner } => {
                    let mut rec = self.m.recs[&key].clone();
                    rec.owner = owner;
                    match rec.kind {
                        Kind::Member { .. } => {
                            let mut dao = dio.load::<Member>(&key).await.expect("load");
                            dao.auth_mut().write = owner.option();
                        }
                        Kind::Secret { .. } => {
                            let mut dao = dio.load::<Secret>(&key).await.expect("load");
                            dao.auth_mut().write = owner.option();
                        }
                    }
                    applied.push((key, rec));
                }
                Planned::Delete { key } => {
                    dio.delete(&key).expect("stage delete");
                    let mut rec = self.m.recs[&key].clone();
                    rec.live = false;
                    applied.push((key, rec));
                }
            }
        }
        if let Err(e) = dio.commit().await {
            panic!("commit signed by {needed:?} failed: {e}");
        }
        let seq = self.chain.last_seq();
        for (k, mut rec) in applied {
            rec.version = seq;
            if !rec.live
                && let Some(p) = rec.parent
                && let Some((ms, ss)) = self.m.children.get_mut(&p)
            {
                ms.retain(|c| *c != k);
                ss.retain(|c| *c != k);
            }
            if !self.m.recs.contains_key(&k) {
                self.m.order.push(k);
            }
            self.m.recs.insert(k, rec);
        }
        for (p, secret, k) in new_children {
            let lists = self.m.children.entry(p).or_default();
            if secret {
                lists.1.push(k);
            } else {
                lists.0.push(k);
            }
        }
    }

    async fn check(&self, what: &str) {
        assert_eq!(
            self.chain.len(),
            self.m.live().len(),
            "{what}: live records"
        );
        let seen = observe(&self.chain, &self.m).await;
        assert_eq!(seen, self.m.expected(), "{what}: the chain and the model");
    }

    async fn compact(&mut self, what: &str) -> ate_runtime::chain::CompactReport {
        let before = self.store.bytes();
        let report = self
            .chain
            .compact()
            .await
            .unwrap_or_else(|e| panic!("{what}: compaction failed: {e}"));
        assert!(report.events_after <= report.events_before, "{what}");
        assert_eq!(report.upto, self.chain.last_seq(), "{what}");
        // The log before the compaction, opened on its own, shows what the compacted chain
        // shows.
        let uncompacted = open(&registry().await, MemoryStore::from_bytes(before));
        let (a, b) = (
            observe(&self.chain, &self.m).await,
            observe(&uncompacted, &self.m).await,
        );
        assert_eq!(a, b, "{what}: compacted and uncompacted chains differ");
        let bytes = self.store.bytes();
        assert!(
            !bytes.windows(PLAIN.len()).any(|w| w == PLAIN.as_bytes()),
            "{what}: plaintext in the compacted log"
        );
        report
    }

    async fn reopen(&mut self) {
        // Closed first (a stand-in holds its place).
        drop(std::mem::replace(
            &mut self.chain,
            open(&self.reg, MemoryStore::new()),
        ));
        // The whole log is checked again: every signature, right and index.
        self.chain = open(&self.reg, self.store.clone());
    }

    /// Writes to a live member with each signer: built outside the Dio and handed to the
    /// chain, refused with `Unauthorized` for a signer without the right; through a Dio,
    /// refused before signing; then accepted from one signer with the right.
    async fn probe(&mut self, i: usize, what: &str) {
        let members = self.m.live_members();
        let Some(&k) = members.get(i % members.len().max(1)) else {
            return;
        };
        let allowed = self.m.rule(&k);
        for s in 0..3 {
            if allowed.contains(&s) {
                continue;
            }
            match self.forged_update(&k, s, self.counter + 1).await {
                Err(CommitError::Trust(TrustError::Unauthorized { key })) => {
                    assert_eq!(key, k, "{what}")
                }
                other => panic!("{what}: signer {s} wrote {k}: {other:?}"),
            }
            let mut dio = self.chain.dio(&writer(&BTreeSet::from([s]))).await;
            let mut dao = dio.load::<Member>(&k).await.expect("load");
            dao.as_mut().v += 1;
            drop(dao);
            match dio.commit().await {
                Err(AteError::Dio(DioError::MissingWriteKey { key })) => {
                    assert_eq!(key, k, "{what}")
                }
                other => panic!("{what}: signer {s} wrote {k} through a Dio: {other:?}"),
            }
        }
        let s = *allowed.iter().nth(i % allowed.len()).expect("a writer");
        self.counter += 1;
        let seq = self
            .forged_update(&k, s, self.counter)
            .await
            .unwrap_or_else(|e| panic!("{what}: signer {s} may write {k}: {e}"));
        let rec = self.m.recs.get_mut(&k).expect("known");
        rec.v = self.counter;
        rec.version = seq;
    }

    /// A new version of member `k` with the value `v` (its rules and parent as they are),
    /// signed by signer `s` alone, handed to the chain as a transaction from outside.
    async fn forged_update(&self, k: &PrimaryKey, s: usize, v: u32) -> Result<u64, CommitError> {
        let rec = &self.m.recs[k];
        let mut value = self.m.member_value(k);
        value.v = v;
        let trust = EventTrust {
            auth: (rec.owner != Owner::Inherit).then(|| Authorization {
                read: ReadOption::Inherit,
                write: rec.owner.option(),
            }),
            previous: Some(rec.version),
            ..EventTrust::default()
        };
        let events = vec![EventDraft {
            key: *k,
            timestamp_ms: 1,
            tombstone: false,
            parent: rec.parent.map(|p| self.m.link(&p, false)),
            type_name: MEMBER.into(),
            format: BodyFormat::MessagePack,
            meta: trust.to_meta(),
            body: Some(rmp_serde::to_vec(&value).expect("encodes").into()),
        }];
        let trailers = TxSealer {
            signers: vec![(&keys().signers[s], vec![0])],
            ..TxSealer::default()
        }
        .seal(self.chain.policy().chain_hash(), &event_hashes(&events))
        .expect("signs");
        self.chain.commit_transaction(events, trailers).await
    }
}

async fn run(ops: Vec<Op>) {
    let mut run = Run::new().await;
    run.check("start").await;
    for (step, op) in ops.into_iter().enumerate() {
        let what = format!("step {step} ({op:?})");
        match op {
            Op::Tx(actions) => run.tx(&actions).await,
            Op::Compact => {
                run.compact(&what).await;
            }
            Op::Reopen => run.reopen().await,
            Op::Probe(i) => run.probe(i, &what).await,
        }
        run.check(&what).await;
    }
    run.compact("the end").await;
    run.check("compacted at the end").await;
    run.reopen().await;
    run.check("reopened at the end").await;
}

/// A new member of `run` with `email`, committed by the root; its commit's result.
async fn new_member(run: &Run, e: usize) -> Result<(), AteError> {
    let mut dio = run.chain.dio(&writer(&BTreeSet::from([0]))).await;
    dio.store(Member {
        email: email(e),
        team: 0,
        v: 0,
        kids: DaoVec::new(),
        secrets: DaoVec::new(),
    })?;
    dio.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_values_released_and_taken_again_before_compacting() {
    let mut run = Run::new().await;
    let m0 = run.m.order[0];
    let update = |target, email| Action::Update {
        target,
        email,
        team: None,
    };
    let member = |email| Action::NewMember {
        parent: None,
        email,
        team: 1,
        owner: Owner::Inherit,
    };
    // The first member moves from email 0 to email 1 (its first version, which a compaction
    // keeps, still holds email 0), and a second member takes email 0.
    run.tx(&[update(0, Some(0))]).await;
    run.tx(&[member(0)]).await;
    let m1 = run.m.order[1];
    // A third member takes email 2, is deleted, and a fourth takes email 2.
    run.tx(&[member(0)]).await;
    run.tx(&[Action::Delete { target: 2 }]).await;
    run.tx(&[member(0)]).await;
    let m3 = run.m.order[3];
    // The first member's last version (email 1).
    run.tx(&[update(0, None)]).await;
    let held = |k: PrimaryKey| match run.m.recs[&k].kind {
        Kind::Member { email, .. } => email,
        Kind::Secret { .. } => unreachable!(),
    };
    assert_eq!((held(m0), held(m1), held(m3)), (1, 0, 2));
    run.check("before compacting").await;

    let report = run.compact("compacting").await;
    // The first member's middle version is gone, and the third member with it.
    assert_eq!(report.retired, 1, "{report:?}");
    assert!(report.events_after < report.events_before, "{report:?}");
    run.check("compacted").await;
    for round in ["compacted", "reopened"] {
        // Each value is held once, and taking one again is refused.
        for (e, owner) in [(0, m1), (1, m0), (2, m3)] {
            match new_member(&run, e).await {
                Err(AteError::Commit(CommitError::UniqueViolation {
                    type_name,
                    field,
                    existing,
                })) => {
                    assert_eq!((type_name.as_str(), field.as_str()), (MEMBER, "email"));
                    assert_eq!(existing, owner, "{round}: email {e}");
                }
                other => panic!("{round}: email {e} taken twice: {other:?}"),
            }
        }
        run.reopen().await;
        run.check("reopened").await;
    }
    // A value no one holds is free.
    new_member(&run, 3).await.expect("a free email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_old_writer_stays_refused_after_compacting() {
    let mut run = Run::new().await;
    let update = |target| Action::Update {
        target,
        email: None,
        team: None,
    };
    let to_signer_2 = |target| Action::SetOwner {
        target,
        owner: Owner::Key(2),
    };
    // A member and a secret written by signer 1, handed to signer 2, then written by it.
    run.tx(&[
        Action::NewMember {
            parent: None,
            email: 0,
            team: 0,
            owner: Owner::Key(1),
        },
        Action::NewSecret {
            parent: None,
            reader: 1,
            owner: Owner::Key(1),
        },
    ])
    .await;
    let (member, secret) = (run.m.order[1], run.m.order[2]);
    for _ in 0..3 {
        run.tx(&[update(1), update(2)]).await;
    }
    run.tx(&[to_signer_2(1), to_signer_2(2)]).await;
    for _ in 0..3 {
        run.tx(&[update(1), update(2)]).await;
    }
    assert_eq!(run.m.rule(&member), BTreeSet::from([2]));
    assert_eq!(run.m.rule(&secret), BTreeSet::from([2]));
    let report = run.compact("compacting").await;
    assert!(report.events_after < report.events_before, "{report:?}");
    for round in ["compacted", "reopened"] {
        run.check(round).await;
        match run.forged_update(&member, 1, 0).await {
            Err(CommitError::Trust(TrustError::Unauthorized { key })) => assert_eq!(key, member),
            other => panic!("{round}: the old writer wrote the member: {other:?}"),
        }
        let mut dio = run.chain.dio(&writer(&BTreeSet::from([1]))).await;
        dio.load::<Secret>(&secret)
            .await
            .expect("load")
            .as_mut()
            .text = "x".into();
        match dio.commit().await {
            Err(AteError::Dio(DioError::MissingWriteKey { key })) => assert_eq!(key, secret),
            other => panic!("{round}: the old writer wrote the secret: {other:?}"),
        }
        drop(dio);
        // Signer 2 writes both (and signers 0 and 1 are refused the member again).
        run.probe(1, round).await;
        run.tx(&[update(2)]).await;
        run.check(round).await;
        run.reopen().await;
    }
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(20),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn compaction_keeps_views_indexes_secrets_and_rights(ops in prop::collection::vec(op(), 5..40)) {
        block_on(run(ops));
    }
}
