//! A server whose chains compact by themselves (`CompactMode` on its config) while clients
//! write to it at once and another watches: every acknowledged commit is there, and every
//! client, old or new, ends with the server's view.

use std::collections::BTreeMap;
use std::time::Duration;

use ate_runtime::chain::CompactMode;
use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::prelude::*;

use super::common::*;

/// Every note a chain shows, by key.
async fn notes(chain: &Chain, keys: &[PrimaryKey]) -> BTreeMap<PrimaryKey, String> {
    let dio = chain.dio(&session(None)).await;
    let mut out = BTreeMap::new();
    for k in keys {
        if let Ok(n) = dio.load::<Note>(k).await {
            out.insert(*k, n.text.clone());
        }
    }
    out
}

/// Writes 8 notes, then rewrites each `rounds` times, one transaction a round, and deletes
/// two; returns the keys and the texts the writer was acknowledged last.
async fn write(
    chain: Chain,
    who: usize,
    rounds: usize,
) -> (Vec<PrimaryKey>, BTreeMap<PrimaryKey, String>) {
    let mut dio = chain.dio(&session(None)).await;
    let mut keys = Vec::new();
    for i in 0..8 {
        let note = Note {
            text: format!("{who}/{i}"),
        };
        keys.push(*dio.store(note).expect("store").key());
    }
    dio.commit().await.expect("commit");
    let mut last = BTreeMap::new();
    for r in 0..rounds {
        let mut dio = chain.dio(&session(None)).await;
        for k in &keys {
            let mut note = dio.load::<Note>(k).await.expect("load");
            let text = format!("{who} round {r} {}", "x".repeat(300));
            note.as_mut().text = text.clone();
            last.insert(*k, text);
        }
        dio.commit().await.expect("commit");
    }
    let mut dio = chain.dio(&session(None)).await;
    for k in &keys[..2] {
        dio.delete(k).expect("delete");
        last.remove(k);
    }
    dio.commit().await.expect("delete commit");
    (keys, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_compacting_by_itself_loses_nothing_its_clients_wrote() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let mut config = ServerConfig::new(id.clone());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.chains = AteConfig::at(dir.path().join("server"));
    config.chains.preallocate = false;
    config.chains.compact_mode = CompactMode::GrowthSize(48 << 10);
    let server = Server::start(config).await.expect("server starts");
    let url = server.url("auto");
    let open = || async {
        client(None, None)
            .await
            .open_url_with(&url, &pinned(&id))
            .await
            .expect("client opens")
    };
    let watcher = open().await;
    let on_server = server
        .registry()
        .open(&ChainKey::from("auto"))
        .await
        .expect("the server's chain");
    let writers = [open().await, open().await];
    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(who, c)| tokio::spawn(write(c.clone(), who, 60)))
        .collect();
    let mut keys = Vec::new();
    let mut acked = BTreeMap::new();
    for t in tasks {
        let (k, last) = t.await.expect("writer");
        keys.extend(k);
        acked.extend(last);
    }
    // 2 writers × 60 rounds × 8 notes × 300 bytes: about 290 KiB, several compactions.
    for _ in 0..600 {
        if on_server.compacted_upto() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(on_server.compacted_upto() > 0, "the server never compacted");
    assert_eq!(notes(&on_server, &keys).await, acked, "the server's view");
    for (name, c) in [
        ("watcher", &watcher),
        ("writer 0", &writers[0]),
        ("writer 1", &writers[1]),
    ] {
        c.sync().await.expect("sync");
        assert_eq!(notes(c, &keys).await, acked, "{name}");
    }
    let fresh = open().await;
    assert_eq!(notes(&fresh, &keys).await, acked, "a new client");
    drop((watcher, writers, fresh, on_server));
    server.shutdown().await;
}

/// Writes that failed (cut off) and were tried again.
static CUT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Writes note `n` of writer `who` at its own key, with the writer's counter updated in the
/// same transaction (superseded versions for the compactions to drop); across a cut
/// connection it syncs and writes again until the note is there (written once: a second
/// writer of the key is refused). Returns once the note is acknowledged as there.
async fn write_once(chain: &Chain, counter: &PrimaryKey, who: u128, n: u128) -> PrimaryKey {
    let key = PrimaryKey::from((who << 64) | (n + 1));
    for _ in 0..600 {
        let mut dio = chain.dio(&session(None)).await;
        if dio.exists(&key).await {
            return key;
        }
        let written = async {
            dio.store_at(
                key,
                Note {
                    text: format!("{who}/{n} {}", "y".repeat(300)),
                },
            )?;
            let mut c = dio.load::<Note>(counter).await?;
            c.as_mut().text = format!("{who} wrote {n} {}", "z".repeat(300));
            drop(c);
            dio.commit().await
        }
        .await;
        match written {
            Ok(()) => return key,
            // Cut off: the outcome is learnt from the replica once it is back.
            Err(_) => {
                CUT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = tokio::time::timeout(Duration::from_secs(5), chain.sync()).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    panic!("note {who}/{n} never written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_cut_off_while_the_server_compacts_lose_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let start = |listen: std::net::SocketAddr| {
        let mut config = ServerConfig::new(id.clone());
        config.listen = listen;
        config.chains = AteConfig::at(dir.path().join("server"));
        config.chains.preallocate = false;
        config.chains.compact_mode = CompactMode::GrowthSize(32 << 10);
        Server::start(config)
    };
    let server = start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("server starts");
    let addr = server.local_addr();
    let url = server.url("cut");
    let open = || async {
        client(None, None)
            .await
            .open_url_with(&url, &pinned(&id))
            .await
            .expect("client opens")
    };
    let writers = [open().await, open().await];
    let mut counters = Vec::new();
    for w in &writers {
        let mut dio = w.dio(&session(None)).await;
        let c = *dio
            .store(Note {
                text: "counter".into(),
            })
            .expect("store")
            .key();
        dio.commit().await.expect("commit");
        counters.push(c);
    }
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = writers
        .iter()
        .zip(&counters)
        .enumerate()
        .map(|(who, (w, c))| {
            let (w, c, acked) = (w.clone(), *c, acked_tx.clone());
            tokio::spawn(async move {
                for n in 0..150u128 {
                    let key = write_once(&w, &c, who as u128, n).await;
                    let _ = acked.send(key);
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Once the writers are under way (and the server has compacted), the server stops,
    // cutting every connection mid-commit, and starts again on the same folder and port.
    let mut acked = Vec::new();
    let on_server = server
        .registry()
        .open(&ChainKey::from("cut"))
        .await
        .expect("the server's chain");
    while acked.len() < 60 || on_server.compacted_upto() == 0 {
        match tokio::time::timeout(Duration::from_secs(60), acked_rx.recv()).await {
            Ok(Some(k)) => acked.push(k),
            _ => panic!("the writers stalled ({} acknowledged)", acked.len()),
        }
    }
    drop(on_server);
    server.shutdown().await;
    let server = start(addr).await.expect("the server starts again");
    for t in tasks {
        t.await.expect("writer");
    }
    while let Some(k) = acked_rx.recv().await {
        acked.push(k);
    }
    assert_eq!(acked.len(), 300);
    let on_server = server
        .registry()
        .open(&ChainKey::from("cut"))
        .await
        .expect("the server's chain");
    let dio = on_server.dio(&session(None)).await;
    for k in &acked {
        assert!(dio.exists(k).await, "acknowledged note {k} lost");
    }
    assert!(on_server.compacted_upto() > 0);
    eprintln!(
        "300 notes acknowledged, all on the server after its restart; {} writes cut off and tried again; compacted up to {}",
        CUT.load(std::sync::atomic::Ordering::Relaxed),
        on_server.compacted_upto()
    );
    for w in &writers {
        w.sync().await.expect("sync");
        let dio = w.dio(&session(None)).await;
        for k in &acked {
            assert!(dio.exists(k).await, "a writer's replica misses {k}");
        }
    }
    drop((writers, dio, on_server));
    server.shutdown().await;
}
