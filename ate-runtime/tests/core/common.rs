//! Record types, configurations and a deterministic workload shared by the test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ate_runtime::chain::{ChainRegistry, OpenError};
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// A leaf record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub n: u64,
    pub text: String,
}

impl Note {
    pub fn new(n: u64) -> Self {
        Note {
            n,
            text: format!("note {n}"),
        }
    }
}

/// A record with a collection of children.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Folder {
    pub name: String,
    pub items: DaoVec<Note>,
    pub blob: Vec<u8>,
}

impl Folder {
    pub fn new(name: impl Into<String>) -> Self {
        Folder {
            name: name.into(),
            items: DaoVec::new(),
            blob: Vec::new(),
        }
    }
}

/// Another type, to load records as the wrong one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub on: bool,
}

/// The collection of a stored or loaded folder, attached to its owner (plain serde types are
/// not attached automatically).
pub fn items_of(folder: &Dao<Folder>) -> DaoVec<Note> {
    let mut items = folder.items.clone();
    items.attach(*folder.key());
    items
}

/// Logs under `dir`, without preallocation (the file holds exactly the log).
pub fn file_config(dir: &Path) -> AteConfig {
    let mut conf = AteConfig::at(dir);
    conf.preallocate = false;
    conf
}

pub async fn registry(conf: &AteConfig) -> ChainRegistry {
    ChainBuilder::new(conf).await.build()
}

/// Held (shared) while a test opens a log file, and (exclusively) while a child process is
/// started.
///
/// A log's lock belongs to its open file description, and a child process shares every
/// descriptor of this process from its fork until its exec has closed them. A test that closes
/// a chain and reopens it in that window would find its own log locked by the starting child
/// for a moment. `FileStore::open` waits for that (up to `LOCK_WAIT`, see
/// `api::reopening_while_another_thread_starts_processes_is_never_locked`); this guard keeps the
/// other tests independent of that bound on a loaded machine: no log is opened through [`open`]
/// while a child starts (`child::spawn` holds it until the child has printed its first line).
pub static FORK: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

/// Opens a chain through `reg` (see [`FORK`]).
// The guard is shared across the await on purpose; it is only ever taken exclusively, briefly,
// by `child::spawn` on a thread that holds no guard, so this cannot deadlock.
#[allow(clippy::await_holding_lock)]
pub async fn open(reg: &ChainRegistry, key: &ChainKey) -> Result<Chain, OpenError> {
    let _no_fork = FORK.read_recursive();
    reg.open(key).await
}

/// Opens `name` under `dir` through a new builder (a real reopen once earlier handles are gone).
pub async fn open_file_chain(dir: &Path, name: &str) -> Chain {
    open(&registry(&file_config(dir)).await, &ChainKey::from(name))
        .await
        .expect("open chain")
}

pub fn session() -> AteSession {
    AteSession::default()
}

/// What a chain written by [`transaction`] must show: live notes, live folders with their
/// children in commit order, and deleted keys.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub notes: BTreeMap<PrimaryKey, Note>,
    pub folders: BTreeMap<PrimaryKey, ExpectFolder>,
    pub gone: BTreeSet<PrimaryKey>,
}

#[derive(Clone, Debug)]
pub struct ExpectFolder {
    pub name: String,
    pub items: DaoVec<Note>,
    pub blob: Vec<u8>,
    pub children: Vec<PrimaryKey>,
}

impl Expect {
    /// The first difference between this state and what a fresh Dio on `chain` sees.
    pub async fn diff(&self, chain: &Chain) -> Option<String> {
        let dio = chain.dio(&session()).await;
        let live = self.notes.len() + self.folders.len();
        if chain.len() != live {
            return Some(format!("{} live records, expected {live}", chain.len()));
        }
        for (k, want) in &self.notes {
            match dio.load::<Note>(k).await {
                Ok(got) if *got == *want => {}
                Ok(got) => return Some(format!("note {k}: {:?}, expected {want:?}", *got)),
                Err(e) => return Some(format!("note {k}: {e}")),
            }
        }
        for (k, want) in &self.folders {
            match dio.load::<Folder>(k).await {
                Ok(got) if got.name == want.name && got.blob == want.blob => {}
                Ok(got) => return Some(format!("folder {k}: {:?}", got.name)),
                Err(e) => return Some(format!("folder {k}: {e}")),
            }
            match dio.children(k, &want.items).await {
                Ok(kids) => {
                    let keys: Vec<PrimaryKey> = kids.iter().map(|d| *d.key()).collect();
                    if keys != want.children {
                        return Some(format!(
                            "children of {k}: {keys:?}, expected {:?}",
                            want.children
                        ));
                    }
                }
                Err(e) => return Some(format!("children of {k}: {e}")),
            }
        }
        for k in &self.gone {
            match dio.load::<Note>(k).await {
                Err(DioError::NotFound(_)) => {}
                Err(DioError::WrongType { .. }) => {
                    return Some(format!("deleted record {k} is still there"));
                }
                other => return Some(format!("deleted note {k}: {:?}", other.map(|d| d.n))),
            }
        }
        None
    }

    pub async fn assert_matches(&self, chain: &Chain, what: &str) {
        if let Some(d) = self.diff(chain).await {
            panic!("{what}: {d}");
        }
    }
}

/// Stages and commits transaction `i` of a deterministic workload over the state `before`:
/// a new folder with two children, an update of an earlier note, and (every third
/// transaction) the deletion of another earlier note. Returns the state the chain must show if
/// the commit took effect, and the commit's result.
pub async fn transaction(chain: &Chain, before: &Expect, i: u64) -> (Expect, Result<(), AteError>) {
    let mut after = before.clone();
    let mut dio = chain.dio(&session()).await;
    let mut folder = Folder::new(format!("folder {i}"));
    folder.blob = vec![i as u8; (i as usize * 53) % 700];
    let folder = dio.store(folder).expect("stage folder");
    let items = items_of(&folder);
    let mut children = Vec::new();
    for j in 0..2 {
        let note = Note::new(i * 10 + j);
        let dao = items.push(&mut dio, note.clone()).expect("stage child");
        after.notes.insert(*dao.key(), note);
        children.push(*dao.key());
    }
    after.folders.insert(
        *folder.key(),
        ExpectFolder {
            name: folder.name.clone(),
            items: items.clone(),
            blob: folder.blob.clone(),
            children,
        },
    );
    let live: Vec<PrimaryKey> = before.notes.keys().copied().collect();
    let mut updated = None;
    if !live.is_empty() {
        let k = live[(i as usize * 7) % live.len()];
        let mut dao = dio.load::<Note>(&k).await.expect("load an earlier note");
        {
            let mut m = dao.as_mut();
            m.n += 1000;
            m.text.push('!');
        }
        after.notes.insert(k, (*dao).clone());
        updated = Some(k);
    }
    if i % 3 == 2 && live.len() >= 2 {
        let k = live[(i as usize * 5 + 1) % live.len()];
        if Some(k) != updated {
            if i.is_multiple_of(2) {
                dio.delete(&k).expect("stage delete");
            } else {
                dio.load::<Note>(&k)
                    .await
                    .expect("load")
                    .delete()
                    .expect("stage delete");
            }
            after.notes.remove(&k);
            after.gone.insert(k);
            for f in after.folders.values_mut() {
                f.children.retain(|c| *c != k);
            }
        }
    }
    let res = dio.commit().await;
    (after, res)
}

/// Commits transactions `0..n` of the workload; returns the state after each (index 0: empty).
pub async fn write_workload(chain: &Chain, n: u64) -> Vec<Expect> {
    let mut states = vec![Expect::default()];
    for i in 0..n {
        let (after, res) = transaction(chain, states.last().expect("a state"), i).await;
        res.unwrap_or_else(|e| panic!("commit {i}: {e}"));
        states.push(after);
    }
    states
}
