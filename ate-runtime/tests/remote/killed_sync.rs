//! R13: a client syncing a chain into a replica file is killed with SIGKILL at a random moment,
//! round after round. After each kill the replica reopens locally (as a chain, its chain of
//! trust checked) to a prefix of the server's log: the same transactions, byte for byte, at the
//! same sequence numbers, and never fewer than it held before. Opened through `open_url` again,
//! it resumes from there (what it held stays as it was in the file) and ends equal to the
//! server's log. Each round the server gets new transactions first, so every child has a sync
//! to be killed in: the first a whole download, the others a resume.
//!
//! The child is this test binary started again (`child`); the server runs in this process.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ate_runtime::crypto::KeyFile;
use ate_runtime::net::remote::RemoteOptions;
use ate_runtime::net::{ConnectOptions, IdentityHash, ServerTrust};
use ate_runtime::prelude::*;
use bytes::Bytes;
use rand::Rng;

use super::child::{self, say};
use super::common::*;

const CHAIN: &str = "r13";
const ROUNDS: usize = 5;
const TXS_PER_ROUND: usize = 400;
/// How long a child may take to do what the parent waits for (guards a hung child only).
pub(super) const PATIENCE: Duration = Duration::from_secs(120);

pub(super) const URL: &str = "ATE_R13_URL";
pub(super) const IDENTITY: &str = "ATE_R13_IDENTITY";
pub(super) const DIR: &str = "ATE_R13_DIR";
pub(super) const ROOT: &str = "ATE_R13_ROOT";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn replica_config(dir: &Path) -> AteConfig {
    let mut conf = AteConfig::at(dir);
    conf.preallocate = false;
    conf
}

/// The child: opens the chain at `URL` into a replica under `DIR`, says when it starts and
/// when it has caught up, then waits to be killed.
pub async fn child_sync() {
    let root = PublicSignKey::load(Path::new(&var(ROOT))).expect("the root key file");
    let identity: IdentityHash = var(IDENTITY).parse().expect("an identity hash");
    let registry = ChainBuilder::new(&replica_config(Path::new(&var(DIR))))
        .await
        .add_root_public_key(&root)
        .build();
    let mut options = RemoteOptions::default();
    options.connect = ConnectOptions::new(ServerTrust::Pinned(identity));
    say("OPENING");
    let chain = registry
        .open_url_with(&var(URL), &options)
        .await
        .expect("the replica opens");
    say(&format!("SYNCED {}", chain.last_seq()));
    std::future::pending::<()>().await;
}

/// Every transaction of `chain`: its sequence number and payload.
pub(super) fn log_of(chain: &Chain) -> Vec<(u64, Bytes)> {
    chain
        .read_from(1, usize::MAX)
        .expect("the chain's history")
        .into_iter()
        .map(|c| (c.seq(), c.payload().clone()))
        .collect()
}

/// A record at the root that everyone may write below: most transactions go there unsigned,
/// so that writing them is quick; the replica still checks the right they inherit.
pub(super) async fn board(source: &Chain, root: &PrivateSignKey) -> PrimaryKey {
    let mut dio = source.dio(&session(Some(root))).await;
    let mut board = dio
        .store(Note {
            text: "board".into(),
        })
        .expect("store");
    board.auth_mut().write = WriteOption::Everyone;
    let key = *board.key();
    drop(board);
    dio.commit().await.expect("commit");
    key
}

/// Commits one transaction per size (four writers at once): one in ten a record at the root
/// signed by `root`, the others an unsigned record on the board, of about that many bytes.
pub(super) async fn write(
    source: &Chain,
    root: &PrivateSignKey,
    board: PrimaryKey,
    sizes: Vec<usize>,
) {
    let mut writers = tokio::task::JoinSet::new();
    for (w, part) in sizes.chunks(sizes.len().div_ceil(4)).enumerate() {
        let (source, root, part) = (source.clone(), root.clone(), part.to_vec());
        writers.spawn(async move {
            let kids = DaoVec::<Note>::new();
            for (i, size) in part.into_iter().enumerate() {
                let text = format!("writer {w} transaction {i} ").repeat(size / 24 + 1);
                if i % 10 == 0 {
                    let mut dio = source.dio(&session(Some(&root))).await;
                    dio.store(Note { text }).expect("store");
                    dio.commit().await.expect("commit");
                } else {
                    let mut dio = source.dio(&session(None)).await;
                    dio.store_child(&board, &kids, Note { text })
                        .expect("store");
                    dio.commit().await.expect("commit");
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
}

/// `got` is `expected[..got.len()]`; says where it is not.
pub(super) fn assert_prefix(got: &[(u64, Bytes)], expected: &[(u64, Bytes)], round: usize) {
    assert!(
        got.len() <= expected.len(),
        "round {round}: the replica holds {} transactions, the server {}",
        got.len(),
        expected.len()
    );
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g.0, e.0, "round {round}: transaction {i}'s number");
        assert!(
            g.1 == e.1,
            "round {round}: transaction {} differs from the server's",
            g.0
        );
    }
}

#[test]
fn a_client_killed_during_sync_reopens_to_a_prefix_and_resumes() {
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
    // The chain the server serves, written here directly.
    let source = rt
        .block_on(server.registry().open(&key))
        .expect("the source chain");
    let board = rt.block_on(board(&source, &root));
    let server_log: PathBuf = key.log_file(server_dir.path()).expect("path");
    let replica_log: PathBuf = key.log_file(client_dir.path()).expect("path");
    let envs = [
        (URL, url.clone()),
        (IDENTITY, id.hash().to_string()),
        (DIR, client_dir.path().display().to_string()),
        (ROOT, root_file.display().to_string()),
    ];
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);

    let mut rng = rand::rng();
    let mut held = 0usize;
    let mut before_the_end = 0;
    let mut outcomes = Vec::new();
    for round in 0..ROUNDS {
        let sizes = (0..TXS_PER_ROUND)
            .map(|_| rng.random_range(100..4000))
            .collect();
        rt.block_on(write(&source, &root, board, sizes));
        let expected = log_of(&source);

        let (mut child, mut out) = child::spawn("sync", &envs);
        let mut seen = Vec::new();
        let started = Instant::now();
        if round % 2 == 0 {
            // At a random moment after the child starts opening (its sync takes about a second
            // in a debug build here; a kill after it is fine too).
            while let Some(line) = out.line_within(PATIENCE) {
                let opening = line == "OPENING";
                seen.push(line);
                if opening {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=1000)));
        } else {
            // Once the replica file has grown a random part of the way to the server's size.
            let from = file_len(&replica_log) as f64;
            let to = file_len(&server_log) as f64;
            let target = from + rng.random_range(0.0..0.9) * (to - from).max(0.0);
            while (file_len(&replica_log) as f64) < target && started.elapsed() < PATIENCE {
                if let Some(line) = out.line_within(Duration::from_millis(1)) {
                    let synced = line.starts_with("SYNCED");
                    seen.push(line);
                    if synced {
                        break;
                    }
                }
            }
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

        // Reopened locally: a prefix of the server's log, no shorter than before.
        let kept = rt.block_on(async {
            let registry = client(Some(client_dir.path()), Some(&root)).await;
            let chain = registry
                .open(&key)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the killed replica reopens: {e}"));
            let got = log_of(&chain);
            assert_prefix(&got, &expected, round);
            assert_eq!(chain.last_seq(), got.len() as u64);
            got.len()
        });
        assert!(
            kept >= held,
            "round {round}: the replica held {held} transactions, {kept} after the kill"
        );
        let synced = seen.iter().any(|l| l.starts_with("SYNCED"));
        if !synced {
            before_the_end += 1;
        }
        outcomes.push((held, kept, expected.len(), synced));
        let before = std::fs::read(&replica_log).expect("the replica's log");

        // Opened through the server again: resumes from there and ends equal to its log.
        rt.block_on(async {
            let chain = client(Some(client_dir.path()), Some(&root))
                .await
                .open_url_with(&url, &pinned(&id))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the replica resumes: {e}"));
            chain.sync().await.expect("sync");
            let got = log_of(&chain);
            assert_prefix(&got, &expected, round);
            assert_eq!(got.len(), expected.len(), "round {round}: caught up");
        });
        let after = std::fs::read(&replica_log).expect("the replica's log");
        assert!(
            after.starts_with(&before),
            "round {round}: resuming appended to what the replica held"
        );
        held = expected.len();
    }
    drop(source);
    rt.block_on(server.shutdown());
    println!(
        "R13: {ROUNDS} kills, {before_the_end} before the child had caught up \
         (transactions held before, kept after the kill, the server's; caught up): {outcomes:?}"
    );
}
