//! R13 across compaction: a replica killed while it rebuilds from a compacted server, round
//! after round. Each round the server gets new transactions and compacts, so the replica's file
//! (caught up in the round before) is behind the server's checkpoint: the child's open receives
//! the checkpoint and rebuilds the replica from it (its own swap), and is killed at a random
//! moment, often during the rebuild. After each kill the replica reopens locally (as a chain, its
//! chain of trust checked) to its old log, whole, or to a prefix of the server's compacted log,
//! position for position; no `.compact` file is left. Opened through the server again, it ends
//! equal to the server's log.
//!
//! The child is `killed_sync`'s (this test binary started again); the server runs here.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ate_runtime::crypto::KeyFile;
use ate_runtime::prelude::*;
use bytes::Bytes;
use rand::Rng;

use super::child;
use super::common::*;
use super::killed_sync::{DIR, IDENTITY, PATIENCE, ROOT, URL, assert_prefix, board, log_of, write};

const CHAIN: &str = "r13c";
const ROUNDS_VAR: &str = "ATE_R13_COMPACT_ROUNDS";
const ROUNDS: usize = 6;
const TXS_PER_ROUND: usize = 150;

#[test]
fn a_replica_killed_while_it_rebuilds_from_a_compacted_server_reopens_and_resumes() {
    let rounds = std::env::var(ROUNDS_VAR)
        .ok()
        .map(|s| s.parse().expect("ATE_R13_COMPACT_ROUNDS is a number"))
        .unwrap_or(ROUNDS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server_dir, client_dir, keys) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let root_file = keys.path().join("root.pub");
    root.as_public_key()
        .save(&root_file)
        .expect("root key file");
    let id = identity();
    let key = ChainKey::from(CHAIN);
    let server = rt.block_on(server(&id, Some(server_dir.path()), Some(&root)));
    let url = server.url(CHAIN);
    let source = rt
        .block_on(server.registry().open(&key))
        .expect("the source chain");
    let board = rt.block_on(board(&source, &root));
    let replica_log: PathBuf = key.log_file(client_dir.path()).expect("path");
    let mut stray = replica_log.clone().into_os_string();
    stray.push(".compact");
    let stray = PathBuf::from(stray);
    let envs = [
        (URL, url.clone()),
        (IDENTITY, id.hash().to_string()),
        (DIR, client_dir.path().display().to_string()),
        (ROOT, root_file.display().to_string()),
    ];

    let mut rng = rand::rng();
    // What the replica held after the round before (equal to the server's log then).
    let mut held: Vec<(u64, Bytes)> = Vec::new();
    let mut outcomes = Vec::new();
    for round in 0..rounds {
        let sizes = (0..TXS_PER_ROUND)
            .map(|_| rng.random_range(100..2000))
            .collect();
        rt.block_on(write(&source, &root, board, sizes));
        let report = rt.block_on(source.compact()).expect("the server compacts");
        assert!(
            report.upto >= held.last().map_or(0, |(s, _)| *s),
            "round {round}: the replica is behind the checkpoint"
        );
        let expected = log_of(&source);

        let (mut child, mut out) = child::spawn("sync", &envs);
        let mut seen = Vec::new();
        let started = Instant::now();
        if round % 2 == 0 {
            // At a random moment after the child starts opening.
            while let Some(line) = out.line_within(PATIENCE) {
                let opening = line == "OPENING";
                seen.push(line);
                if opening {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=800)));
        } else {
            // Once the rebuilt replica is being written beside the old one (or it caught up).
            while !stray.exists() && started.elapsed() < PATIENCE {
                if let Some(line) = out.line_within(Duration::from_micros(200)) {
                    let synced = line.starts_with("SYNCED");
                    seen.push(line);
                    if synced {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..=2000)));
        }
        child.kill().expect("kill the child");
        let status = child.wait().expect("wait for the child");
        let (rest, stderr) = out.finish();
        seen.extend(rest);
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child ended by itself ({status}) after {seen:?}:\n{stderr}"
        );

        // Reopened locally: its old log whole, or a prefix of the server's compacted one.
        let outcome = rt.block_on(async {
            let registry = client(Some(client_dir.path()), Some(&root)).await;
            let chain = registry
                .open(&key)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the killed replica reopens: {e}"));
            assert!(!stray.exists(), "round {round}: the stray file is removed");
            let got = log_of(&chain);
            assert_eq!(chain.last_seq(), got.last().map_or(0, |(s, _)| *s));
            if got == held {
                "old"
            } else {
                assert_prefix(&got, &expected, round);
                assert!(
                    chain.last_seq() >= report.upto,
                    "round {round}: a rebuilt replica holds the whole compacted part"
                );
                if got.len() == expected.len() {
                    "rebuilt, caught up"
                } else {
                    "rebuilt"
                }
            }
        });
        outcomes.push(outcome);

        // Opened through the server again: ends equal to its log.
        rt.block_on(async {
            let chain = client(Some(client_dir.path()), Some(&root))
                .await
                .open_url_with(&url, &pinned(&id))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the replica resumes: {e}"));
            chain.sync().await.expect("sync");
            let got = log_of(&chain);
            assert_eq!(got.len(), expected.len(), "round {round}: caught up");
            assert_prefix(&got, &expected, round);
        });
        held = expected;
    }
    drop(source);
    rt.block_on(server.shutdown());
    println!("R13 across compaction: {rounds} kills: {outcomes:?}");
}
