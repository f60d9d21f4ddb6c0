//! Clients of a server whose chain was compacted: a new client syncs the compacted log, a
//! client whose replica file is behind the compaction rebuilds its replica from it and
//! resumes, a client past it carries on, and live changes flow to all of them after.

use std::collections::BTreeMap;

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

/// Stores `n` notes, updates each `rounds` times, deletes every third: returns the keys.
async fn churn(chain: &Chain, n: usize, rounds: usize) -> Vec<PrimaryKey> {
    let mut keys = Vec::new();
    let mut dio = chain.dio(&session(None)).await;
    for i in 0..n {
        let note = Note {
            text: format!("note {i}"),
        };
        keys.push(*dio.store(note).expect("store").key());
    }
    dio.commit().await.expect("commit");
    for r in 0..rounds {
        let mut dio = chain.dio(&session(None)).await;
        for k in &keys {
            let mut note = dio.load::<Note>(k).await.expect("load");
            note.as_mut().text = format!("round {r}");
        }
        dio.commit().await.expect("commit");
    }
    let mut dio = chain.dio(&session(None)).await;
    for k in keys.iter().step_by(3) {
        dio.delete(k).expect("delete");
    }
    dio.commit().await.expect("commit");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sync_and_resume_across_a_server_compaction() {
    let dir = tempfile::tempdir().expect("dir");
    let id = identity();
    let server = server(&id, Some(&dir.path().join("server")), None).await;
    let url = server.url("compacted");
    let writer = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("writer opens");
    let mut keys = churn(&writer, 12, 6).await;

    // A client with a replica file, closed before the server compacts.
    let behind_dir = dir.path().join("behind");
    {
        let behind = client(Some(&behind_dir), None)
            .await
            .open_url_with(&url, &pinned(&id))
            .await
            .expect("behind opens");
        assert_eq!(behind.last_seq(), writer.last_seq());
    }
    // A client that stays connected through the compaction.
    let connected = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("connected opens");

    keys.extend(churn(&writer, 6, 3).await);
    let on_server = server
        .registry()
        .open(&ChainKey::from("compacted"))
        .await
        .expect("the server's chain");
    let report = on_server.compact().await.expect("the server compacts");
    assert!(report.events_after < report.events_before, "{report:?}");
    let want = notes(&writer, &keys).await;
    assert_eq!(notes(&on_server, &keys).await, want);

    // A new client syncs the compacted log.
    let fresh = client(None, None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("a new client opens");
    assert_eq!(fresh.last_seq(), on_server.last_seq());
    assert_eq!(notes(&fresh, &keys).await, want);

    // The client behind the compaction rebuilds its replica and resumes.
    let behind = client(Some(&behind_dir), None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("behind reopens");
    behind.sync().await.expect("sync");
    assert_eq!(behind.last_seq(), on_server.last_seq());
    assert_eq!(notes(&behind, &keys).await, want);

    // Live changes reach everyone, the connected one included.
    let mut dio = writer.dio(&session(None)).await;
    let k = *dio
        .store(Note {
            text: "after".into(),
        })
        .expect("store")
        .key();
    dio.commit().await.expect("commit after the compaction");
    keys.push(k);
    let want = notes(&writer, &keys).await;
    for (name, c) in [
        ("fresh", &fresh),
        ("behind", &behind),
        ("connected", &connected),
    ] {
        c.sync().await.expect("sync");
        assert_eq!(notes(c, &keys).await, want, "{name}");
    }
    drop(behind);
    // The rebuilt replica file reopens (it is a compacted log) and catches up.
    let behind = client(Some(&behind_dir), None)
        .await
        .open_url_with(&url, &pinned(&id))
        .await
        .expect("behind reopens again");
    behind.sync().await.expect("sync");
    assert_eq!(notes(&behind, &keys).await, want);
    drop((writer, connected, fresh, behind, on_server));
    server.shutdown().await;
}
