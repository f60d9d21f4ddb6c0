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
