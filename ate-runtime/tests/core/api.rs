//! The public API end to end: what a user of the embedded store relies on.

use std::path::Path;

use ate_runtime::chain::{ChainKeyError, ChainRegistry, CommitError, OpenError};
use ate_runtime::log::{FileStore, LogError};
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;
use serde::{Deserialize, Serialize};

use crate::child;
use crate::common::{
    Flag, Folder, Note, file_config, items_of, open, open_file_chain, registry, session,
    write_workload,
};

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Chain>();
    send_sync::<ChainRegistry>();
    send::<Dio>();
    send::<Dao<Note>>();
};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Holder {
    target: DaoRef<Note>,
    nothing: DaoRef<Note>,
}

async fn note(dio: &Dio, key: &PrimaryKey) -> Result<Note, DioError> {
    dio.load::<Note>(key).await.map(Dao::into_inner)
}

#[tokio::test]
async fn reopen_keeps_everything() {
    for preallocate in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut conf = file_config(dir.path());
        conf.preallocate = preallocate;
        let key = ChainKey::from("reopen");
        let chain = open(&registry(&conf).await, &key).await.unwrap();
        let states = write_workload(&chain, 12).await;
        let last = states.last().unwrap();
        last.assert_matches(&chain, "before reopen").await;
        assert!(last.notes.len() > 10 && !last.gone.is_empty());
        drop(chain);

        let chain = open(&registry(&conf).await, &key).await.unwrap();
        assert_eq!(chain.recovery().records, 12, "the log was replayed");
        assert_eq!(chain.recovery().truncated, 0);
        last.assert_matches(&chain, "after reopen").await;

        // Writing continues the same log.
        let (more, res) = crate::common::transaction(&chain, last, 12).await;
        res.unwrap();
        drop(chain);
        let chain = open(&registry(&conf).await, &key).await.unwrap();
        assert_eq!(chain.recovery().records, 13);
        more.assert_matches(&chain, "after a second reopen").await;
    }
}

#[tokio::test]
async fn updates_through_as_mut_are_isolated_until_commit_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "updates").await;
    let mut dio = chain.dio(&session()).await;
    let key = *dio.store(Note::new(1)).unwrap().key();
    dio.commit().await.unwrap();

    dio = chain.dio(&session()).await;
    let mut dao = dio.load::<Note>(&key).await.unwrap();
    dao.as_mut().text = "changed".into();
    assert_eq!(dao.text, "changed");
    assert_eq!(
        note(&dio, &key).await.unwrap().text,
        "changed",
        "read your writes"
    );
    let other = chain.dio(&session()).await;
    assert_eq!(note(&other, &key).await.unwrap().text, "note 1", "isolated");
    dio.commit().await.unwrap();
    assert_eq!(note(&other, &key).await.unwrap().text, "changed");

    // The same Dao changed again after its commit.
    dao.as_mut().n = 2;
    dio.commit().await.unwrap();
    dao.as_mut().n = 3;
    dio.commit().await.unwrap();
    drop((dao, dio, other, chain));

    let chain = open_file_chain(dir.path(), "updates").await;
    assert_eq!(chain.recovery().records, 4, "the log was replayed");
    let dio = chain.dio(&session()).await;
    assert_eq!(
        note(&dio, &key).await.unwrap(),
        Note {
            n: 3,
            text: "changed".into()
        }
    );
    assert_eq!(chain.len(), 1);
}

#[tokio::test]
async fn tombstones_remove_records_now_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "tombstones").await;
    let mut dio = chain.dio(&session()).await;
    let keys: Vec<PrimaryKey> = (0..3)
        .map(|i| *dio.store(Note::new(i)).unwrap().key())
        .collect();
    dio.commit().await.unwrap();

    dio = chain.dio(&session()).await;
    dio.delete(&keys[0]).unwrap();
    dio.load::<Note>(&keys[1]).await.unwrap().delete().unwrap();
    assert!(matches!(
        dio.load::<Note>(&keys[0]).await,
        Err(DioError::NotFound(k)) if k == keys[0]
    ));
    assert!(!dio.exists(&keys[1]).await);
    assert!(matches!(dio.delete(&keys[0]), Err(DioError::NotFound(_))));
    let other = chain.dio(&session()).await;
    assert!(other.exists(&keys[0]).await, "not deleted before commit");
    dio.commit().await.unwrap();
    assert_eq!(chain.len(), 1);
    for k in &keys[..2] {
        assert!(matches!(
            other.load::<Note>(k).await,
            Err(DioError::NotFound(_))
        ));
    }

    dio = chain.dio(&session()).await;
    assert!(matches!(dio.delete(&keys[0]), Err(DioError::NotFound(_))));
    let never = PrimaryKey::generate();
    assert!(matches!(dio.delete(&never), Err(DioError::NotFound(k)) if k == never));
    assert!(!dio.has_changes(), "a refused delete stages nothing");
    drop((dio, other, chain));

    let chain = open_file_chain(dir.path(), "tombstones").await;
    assert_eq!(chain.recovery().records, 2, "the log was replayed");
    let mut dio = chain.dio(&session()).await;
    assert_eq!(chain.len(), 1);
    assert!(matches!(
        dio.load::<Note>(&keys[1]).await,
        Err(DioError::NotFound(_))
    ));
    assert_eq!(note(&dio, &keys[2]).await.unwrap(), Note::new(2));
    assert!(matches!(dio.delete(&keys[0]), Err(DioError::NotFound(_))));
}

#[tokio::test]
async fn children_keep_commit_order_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "children").await;
    let mut dio = chain.dio(&session()).await;
    let folder = dio.store(Folder::new("inbox")).unwrap();
    let fkey = *folder.key();
    let items = items_of(&folder);
    let a = *items.push(&mut dio, Note::new(1)).unwrap().key();
    let b = *items.push(&mut dio, Note::new(2)).unwrap().key();
    // Through the Dio as well as the collection.
    let c = *dio.store_child(&fkey, &items, Note::new(3)).unwrap().key();
    let keys = |v: Vec<Dao<Note>>| v.iter().map(|d| *d.key()).collect::<Vec<_>>();
    assert_eq!(keys(items.iter(&dio).await.unwrap()), [a, b, c], "staged");
    dio.commit().await.unwrap();

    dio = chain.dio(&session()).await;
    let d = *items.push(&mut dio, Note::new(4)).unwrap().key();
    let e = *items.push(&mut dio, Note::new(5)).unwrap().key();
    assert_eq!(
        keys(dio.children(&fkey, &items).await.unwrap()),
        [a, b, c, d, e],
        "committed children, then staged ones"
    );
    let other = chain.dio(&session()).await;
    assert_eq!(keys(items.iter(&other).await.unwrap()), [a, b, c]);
    dio.commit().await.unwrap();

    // An update keeps a child's place; a deleted child vanishes.
    dio = chain.dio(&session()).await;
    let mut cc = dio.load::<Note>(&c).await.unwrap();
    cc.as_mut().text = "third, changed".into();
    dio.delete(&b).unwrap();
    assert_eq!(keys(items.iter(&dio).await.unwrap()), [a, c, d, e]);
    dio.commit().await.unwrap();
    let values: Vec<Note> = items
        .iter(&other)
        .await
        .unwrap()
        .into_iter()
        .map(Dao::into_inner)
        .collect();
    assert_eq!(values.len(), 4);
    assert_eq!(values[1].text, "third, changed");
    drop((cc, dio, other, chain));

    let chain = open_file_chain(dir.path(), "children").await;
    assert_eq!(chain.recovery().records, 3, "the log was replayed");
    let mut dio = chain.dio(&session()).await;
    let loaded = dio.load::<Folder>(&fkey).await.unwrap();
    // A plain serde type's collection does not know its owner until attached.
    assert!(matches!(
        loaded.items.iter(&dio).await,
        Err(DioError::DetachedCollection)
    ));
    assert!(matches!(
        loaded.items.push(&mut dio, Note::new(9)),
        Err(DioError::DetachedCollection)
    ));
    assert_eq!(
        keys(dio.children(&fkey, &loaded.items).await.unwrap()),
        [a, c, d, e]
    );
    assert_eq!(
        keys(items_of(&loaded).iter(&dio).await.unwrap()),
        [a, c, d, e]
    );
    // Another collection of the same parent is empty.
    let elsewhere = DaoVec::<Note>::new();
    assert!(dio.children(&fkey, &elsewhere).await.unwrap().is_empty());
}

#[tokio::test]
async fn references_load_their_target_and_fail_typed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "refs").await;
    let mut dio = chain.dio(&session()).await;
    let target = dio.store(Note::new(7)).unwrap();
    let holder = dio
        .store(Holder {
            target: DaoRef::from(&target),
            nothing: DaoRef::default(),
        })
        .unwrap();
    let hkey = *holder.key();
    let tkey = *target.key();
    dio.commit().await.unwrap();
    drop((target, holder, dio, chain));

    let chain = open_file_chain(dir.path(), "refs").await;
    assert_eq!(chain.recovery().records, 1, "the log was replayed");
    let mut dio = chain.dio(&session()).await;
    let holder = dio.load::<Holder>(&hkey).await.unwrap();
    assert_eq!(holder.target.key(), Some(tkey));
    assert_eq!(*holder.target.load(&dio).await.unwrap(), Note::new(7));
    assert!(holder.nothing.is_null());
    assert!(matches!(
        holder.nothing.load(&dio).await,
        Err(DioError::NullReference)
    ));
    let wrong: DaoRef<Flag> = DaoRef::to(tkey);
    assert!(matches!(
        wrong.load(&dio).await,
        Err(DioError::WrongType { .. })
    ));
    dio.delete(&tkey).unwrap();
    dio.commit().await.unwrap();
    assert!(matches!(
        holder.target.load(&dio).await,
        Err(DioError::NotFound(k)) if k == tkey
    ));
}

#[tokio::test]
async fn loading_as_another_type_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "types").await;
    let mut dio = chain.dio(&session()).await;
    let staged = *dio.store(Note::new(1)).unwrap().key();
    // Staged, not yet committed.
    match dio.load::<Flag>(&staged).await {
        Err(DioError::WrongType {
            key,
            expected,
            found,
        }) => {
            assert_eq!(key, staged);
            assert!(expected.ends_with("Flag"), "{expected}");
            assert!(found.ends_with("Note"), "{found}");
        }
        other => panic!("expected WrongType, got {:?}", other.map(Dao::into_inner)),
    }
    dio.commit().await.unwrap();
    drop((dio, chain));

    let chain = open_file_chain(dir.path(), "types").await;
    assert_eq!(chain.recovery().records, 1, "the log was replayed");
    let mut dio = chain.dio(&session()).await;
    assert!(matches!(
        dio.load::<Flag>(&staged).await,
        Err(DioError::WrongType { .. })
    ));
    assert!(matches!(
        dio.load::<Folder>(&staged).await,
        Err(DioError::WrongType { .. })
    ));
    // Deleting and updating go by key, and the record stays a Note.
    assert_eq!(note(&dio, &staged).await.unwrap(), Note::new(1));
    dio.delete(&staged).unwrap();
    dio.commit().await.unwrap();
    assert!(matches!(
        dio.load::<Flag>(&staged).await,
        Err(DioError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_dropped_or_cancelled_dio_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "dropped").await;
    let path = chain.path().unwrap().to_path_buf();
    let mut dio = chain.dio(&session()).await;
    let kept = *dio.store(Note::new(1)).unwrap().key();
    dio.commit().await.unwrap();
    let before = std::fs::read(&path).unwrap();

    dio = chain.dio(&session()).await;
    let lost = *dio.store(Note::new(2)).unwrap().key();
    dio.load::<Note>(&kept).await.unwrap().as_mut().n = 99;
    assert!(dio.has_changes());
    // Dropping the Dio (by replacing it) discards what it staged.
    dio = chain.dio(&session()).await;
    dio.store(Note::new(3)).unwrap();
    dio.delete(&kept).unwrap();
    dio.cancel();
    assert!(!dio.has_changes());
    dio.commit().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
    assert_eq!(chain.len(), 1);
    assert_eq!(note(&dio, &kept).await.unwrap(), Note::new(1));
    assert!(matches!(
        dio.load::<Note>(&lost).await,
        Err(DioError::NotFound(_))
    ));

    // A cancelled Dio is still usable.
    let again = *dio.store(Note::new(4)).unwrap().key();
    dio.commit().await.unwrap();
    assert!(std::fs::read(&path).unwrap().len() > before.len());
    drop((dio, chain));
    let chain = open_file_chain(dir.path(), "dropped").await;
    assert_eq!(chain.recovery().records, 2);
    let dio = chain.dio(&session()).await;
    assert_eq!(note(&dio, &kept).await.unwrap(), Note::new(1));
    assert_eq!(note(&dio, &again).await.unwrap(), Note::new(4));
    assert!(matches!(
        dio.load::<Note>(&lost).await,
        Err(DioError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_refused_commit_keeps_what_was_staged() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "refused").await;
    let mut dio = chain.dio(&session()).await;
    let key = *dio.store(Note::new(1)).unwrap().key();
    dio.commit().await.unwrap();

    let mut a = chain.dio(&session()).await;
    let mut b = chain.dio(&session()).await;
    a.load::<Note>(&key).await.unwrap().as_mut().text = "a".into();
    b.load::<Note>(&key).await.unwrap().as_mut().text = "b".into();
    let extra = *b.store(Note::new(2)).unwrap().key();
    a.commit().await.unwrap();
    // b read the version a replaced: a lost update, refused.
    let err = b.commit().await.unwrap_err();
    assert!(
        matches!(
            err,
            AteError::Commit(CommitError::Trust(TrustError::VersionMismatch { key: k, .. })) if k == key
        ),
        "{err}"
    );
    assert!(b.has_changes(), "the staged writes are kept");
    assert_eq!(note(&b, &key).await.unwrap().text, "b");
    assert!(b.exists(&extra).await);
    let fresh = chain.dio(&session()).await;
    assert_eq!(note(&fresh, &key).await.unwrap().text, "a");
    assert!(!fresh.exists(&extra).await, "nothing of the refused commit");
    assert_eq!(chain.len(), 1);

    // Retrying on the new version works.
    b.cancel();
    assert_eq!(note(&b, &key).await.unwrap().text, "a");
    b.load::<Note>(&key).await.unwrap().as_mut().text = "a then b".into();
    b.commit().await.unwrap();
    assert_eq!(note(&fresh, &key).await.unwrap().text, "a then b");
}

#[tokio::test]
async fn one_key_one_chain_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let conf = file_config(dir.path());
    let reg = registry(&conf).await;
    let key = ChainKey::from("shared");
    let (one, two) = tokio::join!(open(&reg, &key), open(&reg, &key));
    let (one, two) = (one.unwrap(), two.unwrap());
    // Another builder on the same folder shares the chain too.
    let three = open(&registry(&conf).await, &key).await.unwrap();
    assert_eq!(one.path(), three.path());

    let mut dio = one.dio(&session()).await;
    let k = *dio.store(Note::new(1)).unwrap().key();
    dio.commit().await.unwrap();
    for c in [&two, &three] {
        let d = c.dio(&session()).await;
        assert_eq!(note(&d, &k).await.unwrap(), Note::new(1));
    }
    let mut dio = three.dio(&session()).await;
    dio.load::<Note>(&k).await.unwrap().as_mut().n = 2;
    dio.commit().await.unwrap();
    assert_eq!(note(&one.dio(&session()).await, &k).await.unwrap().n, 2);

    // Memory-only chains are shared within their registry.
    let mem = registry(&AteConfig::in_memory()).await;
    let m1 = open(&mem, &key).await.unwrap();
    let m2 = open(&mem.clone(), &key).await.unwrap();
    let mut dio = m1.dio(&session()).await;
    let mk = *dio.store(Note::new(5)).unwrap().key();
    dio.commit().await.unwrap();
    assert_eq!(note(&m2.dio(&session()).await, &mk).await.unwrap().n, 5);
}

#[tokio::test]
async fn chain_keys_never_escape_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let reg = registry(&file_config(&dir)).await;
    for bad in [
        "../x",
        "..",
        "a/../../x",
        "a\0b",
        "\0",
        "",
        "/",
        "a//b",
        "a\\..\\x",
        "./x",
        "~/x",
    ] {
        match open(&reg, &ChainKey::from(bad)).await {
            Err(OpenError::InvalidKey(ChainKeyError { key, .. })) => assert_eq!(key, bad),
            other => panic!("{bad:?}: expected InvalidKey, got {other:?}"),
        }
        let err: AteError = open(&reg, &ChainKey::from(bad)).await.unwrap_err().into();
        assert!(matches!(err, AteError::Open(OpenError::InvalidKey(_))));
    }
    let mem = registry(&AteConfig::in_memory()).await;
    assert!(matches!(
        open(&mem, &ChainKey::from("../x")).await,
        Err(OpenError::InvalidKey(_))
    ));
    assert!(!root.path().join("x.log").exists());
    assert!(!root.path().join("x").exists());

    // An absolute-looking key is refused, not quietly read as a path inside the folder.
    match open(&reg, &ChainKey::from("/etc/passwd")).await {
        Err(OpenError::InvalidKey(ChainKeyError { reason, .. })) => {
            assert!(reason.contains("leading `/`"), "{reason}")
        }
        other => panic!("a leading `/` must be refused, got {other:?}"),
    }
    assert!(!dir.join("etc").exists());
    let chain = open(&reg, &ChainKey::from("etc/passwd")).await.unwrap();
    let path = chain.path().unwrap();
    assert_eq!(path, dir.join("etc").join("passwd.log"));
    assert!(path.exists());
    let mut dio = chain.dio(&session()).await;
    dio.store(Note::new(1)).unwrap();
    dio.commit().await.unwrap();
    let nested = open(&reg, &ChainKey::from("a/b/c")).await.unwrap();
    assert!(nested.path().unwrap().starts_with(&dir));
}

#[tokio::test]
async fn memory_only_chains_work_and_write_no_file() {
    let conf = AteConfig::in_memory();
    let name = format!("memory-only-{}", PrimaryKey::generate());
    let reg = registry(&conf).await;
    let chain = open(&reg, &ChainKey::from(name.as_str())).await.unwrap();
    assert!(chain.path().is_none());
    let states = write_workload(&chain, 5).await;
    states
        .last()
        .unwrap()
        .assert_matches(&chain, "memory")
        .await;
    let default_root = AteConfig::default().log_path.unwrap();
    assert!(!default_root.join(format!("{name}.log")).exists());
    drop(chain);
    // Nothing survives the last handle.
    let chain = open(&reg, &ChainKey::from(name.as_str())).await.unwrap();
    assert!(chain.is_empty());
}

#[test]
fn many_tasks_commit_concurrently() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        const TASKS: u64 = 16;
        const COMMITS: u64 = 50;
        let dir = tempfile::tempdir().unwrap();
        let chain = open_file_chain(dir.path(), "busy").await;
        let counter = {
            let mut dio = chain.dio(&session()).await;
            let counter = *dio.store(Note::new(0)).unwrap().key();
            dio.commit().await.unwrap();
            counter
        };

        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let chain = chain.clone();
            tasks.push(tokio::spawn(async move {
                let mut keys = Vec::new();
                for i in 0..COMMITS {
                    let mut dio = chain.dio(&session()).await;
                    let n = t * 1000 + i;
                    keys.push((n, *dio.store(Note::new(n)).unwrap().key()));
                    dio.commit().await.unwrap();
                    if i % 10 == 0 {
                        // A read-modify-write of a shared record, retried when another task
                        // changed it first (lost updates are refused, never silent).
                        loop {
                            let mut dio = chain.dio(&session()).await;
                            dio.load::<Note>(&counter).await.unwrap().as_mut().n += 1;
                            match dio.commit().await {
                                Ok(()) => break,
                                Err(AteError::Commit(CommitError::Trust(
                                    TrustError::VersionMismatch { .. },
                                ))) => continue,
                                Err(e) => panic!("commit: {e}"),
                            }
                        }
                    }
                }
                keys
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len() as u64, TASKS * COMMITS);
        let check = |chain: Chain, all: Vec<(u64, PrimaryKey)>| async move {
            let dio = chain.dio(&session()).await;
            for (n, k) in &all {
                assert_eq!(note(&dio, k).await.unwrap(), Note::new(*n));
            }
            assert_eq!(note(&dio, &counter).await.unwrap().n, TASKS * COMMITS / 10);
            assert_eq!(chain.len() as u64, TASKS * COMMITS + 1);
        };
        check(chain.clone(), all.clone()).await;
        drop(chain);
        let chain = open_file_chain(dir.path(), "busy").await;
        // A transaction per stored note, per counter increment, and the counter's creation.
        assert_eq!(
            chain.recovery().records as u64,
            TASKS * COMMITS + TASKS * COMMITS / 10 + 1
        );
        check(chain, all).await;
    });
}

/// The child side of the lock test: keeps the chain open until its stdin closes.
pub async fn child_hold() {
    use std::io::{Read, Write};
    let dir = std::env::var("ATE_HOLD_DIR").expect("ATE_HOLD_DIR");
    let chain = open_file_chain(Path::new(&dir), "held").await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nOPEN").unwrap();
    out.flush().unwrap();
    drop(out);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(chain);
}

#[tokio::test]
async fn a_log_open_elsewhere_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChainKey::from("held");

    // Another process.
    let (mut child, mut out) = child::spawn(
        "hold",
        &[("ATE_HOLD_DIR", dir.path().display().to_string())],
    );
    while let Some(line) = out.next_line() {
        if line == "OPEN" {
            break;
        }
    }
    let reg = registry(&file_config(dir.path())).await;
    let path = dir.path().join("held.log");
    match open(&reg, &key).await {
        Err(OpenError::Log(LogError::Locked { path: p })) => assert_eq!(p, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    let (_, stderr) = out.finish();
    assert!(status.success(), "the holding child failed: {stderr}");
    let chain = open(&reg, &key).await.unwrap();

    // Another handle in this process, through a store opened by hand.
    let by_hand = {
        let _no_fork = crate::common::FORK.read_recursive();
        FileStore::open(&path, 0).map_err(OpenError::from)
    };
    let res = by_hand.and_then(|store| reg.open_store(&key, Box::new(store)));
    assert!(matches!(res, Err(OpenError::Log(LogError::Locked { .. }))));

    // The same file under another name (a symlinked folder) is not the same registry entry; the
    // lock still refuses it.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let via_link = open(&registry(&file_config(&link)).await, &key).await;
    assert!(matches!(
        via_link,
        Err(OpenError::Log(LogError::Locked { .. }))
    ));
    drop(chain);
    let chain = open(&registry(&file_config(&link)).await, &key)
        .await
        .unwrap();
    assert!(chain.is_empty());
}

/// A file held by another open store of this process is refused with `Locked` (once the bounded
/// wait for the lock is over), and opens again as soon as the holder is dropped.
#[test]
fn a_second_store_on_a_held_file_is_locked_until_the_holder_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.log");
    let holder = FileStore::open(&path, 0).unwrap();
    match FileStore::open(&path, 0) {
        Err(LogError::Locked { path: p }) => assert_eq!(p, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(holder);
    let again = FileStore::open(&path, 0).expect("open after the holder dropped");
    assert_eq!(again.path(), path);
}

/// An open that waits for a lock takes it when the holder lets go during the wait.
#[test]
fn an_open_waiting_for_the_lock_takes_it_when_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handover.log");
    let holder = FileStore::open(&path, 0).unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn({
        let path = path.clone();
        move || {
            started_tx.send(()).unwrap();
            // A wait far longer than this test needs: the outcome does not depend on timing.
            FileStore::open_with_lock_wait(&path, 0, std::time::Duration::from_secs(600))
        }
    });
    started.recv().unwrap();
    drop(holder);
    waiter
        .join()
        .unwrap()
        .expect("the waiting open gets the lock");
}

/// A child process started by another thread shares this process's open files from its fork
/// until its exec. Closing and reopening a chain meanwhile must not fail with `Locked`: the open
/// waits for the starting child to let go of the lock.
#[test]
fn reopening_while_another_thread_starts_processes_is_never_locked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const REOPENS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let spawner = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut started = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut child = std::process::Command::new("true")
                    .spawn()
                    .expect("start a child process");
                child.wait().expect("wait for it");
                started += 1;
            }
            started
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conf = file_config(dir.path());
    let key = ChainKey::from("reopened");
    let result = rt.block_on(async {
        for i in 0..REOPENS {
            // Not through `common::open`: nothing here keeps processes from starting.
            let chain = registry(&conf).await.open(&key).await?;
            assert_eq!(chain.len() as u64, i, "every earlier commit is there");
            let mut dio = chain.dio(&session()).await;
            dio.store(Note::new(i)).unwrap();
            dio.commit().await.unwrap();
        }
        Ok::<_, OpenError>(())
    });
    stop.store(true, Ordering::Relaxed);
    let started = spawner.join().unwrap();
    result.unwrap_or_else(|e| panic!("a reopen failed while processes started: {e}"));
    assert!(started > 0);
}

#[tokio::test]
async fn a_record_stored_at_a_chosen_key_is_written_once() {
    let chain = open(
        &registry(&AteConfig::in_memory()).await,
        &ChainKey::from("at"),
    )
    .await
    .expect("open");
    let key = PrimaryKey::from(42u128);
    let note = |n: u64| Note {
        n,
        text: format!("note {n}"),
    };
    // Two writers of one key, both staged before either commits: the first wins.
    let mut a = chain.dio(&session()).await;
    let mut b = chain.dio(&session()).await;
    a.store_at(key, note(1)).expect("stage");
    let mut staged = b.store_at(key, note(2)).expect("stage");
    staged.as_mut().n = 20; // changed before its commit: still a new record
    drop(staged);
    a.commit().await.expect("the first writer");
    assert!(matches!(
        b.commit().await,
        Err(AteError::Commit(CommitError::Trust(
            TrustError::VersionMismatch { .. }
        )))
    ));
    let dio = chain.dio(&session()).await;
    assert_eq!(note_n(&dio, &key).await, 1);
    // The same key again, once the record is gone: never written again.
    let mut d = chain.dio(&session()).await;
    d.delete(&key).expect("delete");
    d.commit().await.expect("delete");
    let mut c = chain.dio(&session()).await;
    c.store_at(key, note(3)).expect("stage");
    assert!(matches!(
        c.commit().await,
        Err(AteError::Commit(CommitError::Trust(
            TrustError::Deleted { .. }
        )))
    ));
}

async fn note_n(dio: &Dio, key: &PrimaryKey) -> u64 {
    note(dio, key).await.expect("the note").n
}
