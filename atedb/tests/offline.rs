//! The offline commands, run as the binary: `keygen`, `verify` (valid, tampered, wrong root key,
//! wrong chain key, torn tail) and `dump`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ate_runtime::crypto::{KeyFile, PrivateSignKey};
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Note {
    text: String,
}

fn atedb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args(args)
        .output()
        .expect("run atedb")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A chain `notes` under `dir`, signed by the root key in `key` (written by `atedb keygen`),
/// with `n` notes, one deleted; returns the log file.
async fn signed_chain(dir: &Path, key: &Path, n: usize) -> PathBuf {
    let root = PrivateSignKey::load(key).expect("load the root key");
    let mut conf = AteConfig::default();
    conf.log_path = Some(dir.join("data"));
    let registry = ChainBuilder::new(&conf)
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let chain = registry.open(&ChainKey::from("notes")).await.expect("open");
    let mut session = AteSession::default();
    session.add_write_key(&root);
    let mut keys = Vec::new();
    for i in 0..n {
        let mut dio = chain.dio(&session).await;
        let note = dio
            .store(Note {
                text: format!("note {i}"),
            })
            .expect("store");
        keys.push(*note.key());
        dio.commit().await.expect("commit");
    }
    let mut dio = chain.dio(&session).await;
    dio.delete(&keys[0]).expect("delete");
    dio.commit().await.expect("commit");
    dir.join("data").join("notes.log")
}

/// A chain `notes` under `dir`, signed by the root key in `key`: `notes` notes in one
/// transaction, then each updated `rounds` times (one transaction a round, `padding` bytes
/// more each), the first deleted when `delete`; returns the log file.
async fn churned_chain(
    dir: &Path,
    key: &Path,
    notes: usize,
    rounds: usize,
    padding: usize,
    delete: bool,
) -> PathBuf {
    let root = PrivateSignKey::load(key).expect("load the root key");
    let mut conf = AteConfig::default();
    conf.log_path = Some(dir.join("data"));
    conf.preallocate = false;
    let registry = ChainBuilder::new(&conf)
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let chain = registry.open(&ChainKey::from("notes")).await.expect("open");
    let mut session = AteSession::default();
    session.add_write_key(&root);
    let mut keys = Vec::new();
    let mut dio = chain.dio(&session).await;
    for i in 0..notes {
        let note = Note {
            text: format!("note {i}"),
        };
        keys.push(*dio.store(note).expect("store").key());
    }
    dio.commit().await.expect("commit");
    for round in 0..rounds {
        let mut dio = chain.dio(&session).await;
        for k in &keys {
            let mut dao = dio.load::<Note>(k).await.expect("load");
            dao.as_mut().text = format!("round {round}{}", "x".repeat(padding));
        }
        dio.commit().await.expect("commit");
    }
    if delete {
        let mut dio = chain.dio(&session).await;
        dio.delete(&keys[0]).expect("delete");
        dio.commit().await.expect("commit");
    }
    dir.join("data").join("notes.log")
}

#[tokio::test]
async fn keygen_verify_and_dump() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("root.key");
    let out = atedb(&["keygen", s(&key)]);
    assert!(out.status.success(), "{}", text(&out));
    let public = dir.path().join("root.key.pub");
    assert!(public.exists());
    // Never replaced.
    assert!(!atedb(&["keygen", s(&key)]).status.success());

    let log = signed_chain(dir.path(), &key, 5).await;

    let out = atedb(&["verify", s(&log), "--root-key", s(&public)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("valid"), "{t}");
    assert!(
        t.contains("6 transactions, 6 events (1 deletions, 0 encrypted), 4 records live"),
        "{t}"
    );
    assert!(t.contains("1 signing keys"), "{t}");

    // Another root key: the first transaction is refused.
    let other = dir.path().join("other.key");
    assert!(atedb(&["keygen", s(&other)]).status.success());
    let out = atedb(&[
        "verify",
        s(&log),
        "--root-key",
        s(&dir.path().join("other.key.pub")),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("INVALID at offset") && t.contains("transaction 1"),
        "{t}"
    );

    // Another chain key: the signatures do not cover it.
    let out = atedb(&[
        "verify",
        s(&log),
        "--chain",
        "elsewhere",
        "--root-key",
        s(&public),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The dump shows every event, bodies included (not encrypted here).
    let out = atedb(&["dump", s(&log)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("chain notes: 6 transactions"), "{t}");
    assert!(t.contains("\"note 3\""), "{t}");
    assert!(t.contains("delete"), "{t}");
    assert!(t.contains("signed by"), "{t}");
    let out = atedb(&["dump", s(&log), "--limit", "2"]);
    assert_eq!(text(&out).lines().filter(|l| l.starts_with('#')).count(), 2);

    // A byte changed in the middle of the file: invalid, with the offset, and the file untouched.
    let original = std::fs::read(&log).expect("read");
    let mut bytes = original.clone();
    let at = original.iter().rposition(|b| *b != 0).expect("data") / 2;
    bytes[at] ^= 0x40;
    let tampered = dir.path().join("notes.log");
    std::fs::write(&tampered, &bytes).expect("write");
    let out = atedb(&["verify", s(&tampered), "--root-key", s(&public)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("INVALID"), "{t}");
    assert_eq!(
        std::fs::read(&tampered).expect("read"),
        bytes,
        "verify changes nothing"
    );

    // A torn tail is reported, not cut.
    let end = original.iter().rposition(|b| *b != 0).expect("data") + 1;
    let torn = &original[..end - 3];
    std::fs::write(&tampered, torn).expect("write");
    let out = atedb(&["verify", s(&tampered), "--root-key", s(&public)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read(&tampered).expect("read"), torn);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing.log");
    let out = atedb(&["verify", s(&missing)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let junk = dir.path().join("junk.pub");
    std::fs::write(&junk, "not a key").expect("write");
    std::fs::write(&missing, b"").expect("write");
    let out = atedb(&["verify", s(&missing), "--root-key", s(&junk)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("junk.pub"), "{}", text(&out));
    let out = atedb(&["verify", s(&missing), "--chain", "../x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = atedb(&["--help"]);
    assert!(out.status.success());
    for cmd in ["verify", "dump", "keygen"] {
        assert!(text(&out).contains(cmd));
    }
}

/// `atedb compact` shrinks a signed chain's file and prints what it did; `verify` passes on the
/// compacted file (with the root key pinned, every kept signature checked again) and `dump`
/// reads it; a compacted file changed behind the chain's back is refused by `verify`.
#[tokio::test]
async fn compact_then_verify_and_dump() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("root.key");
    assert!(atedb(&["keygen", s(&key)]).status.success());
    let public = dir.path().join("root.key.pub");
    // Every note updated a few times (superseded versions to drop), one deleted.
    let log = churned_chain(dir.path(), &key, 6, 4, 0, true).await;
    let before = std::fs::metadata(&log).unwrap().len();

    let out = atedb(&["compact", s(&log), "--root-key", s(&public)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("compacted") && t.contains("bytes:"), "{t}");
    let after = std::fs::metadata(&log).unwrap().len();
    assert!(after < before, "{before} -> {after}");

    let out = atedb(&["verify", s(&log), "--root-key", s(&public)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("compacted through transaction"), "{t}");
    assert!(t.contains("5 records live"), "{t}");
    let out = atedb(&["dump", s(&log)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("round 3"), "{}", text(&out));

    // A byte of a kept signature changed, and its frame's checksum made to match: refused.
    let mut bytes = std::fs::read(&log).unwrap();
    let first = 16 + 12 + u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(bytes[first + 4..first + 8].try_into().unwrap()) as usize;
    let payload = first + 12;
    bytes[payload + len - 40] ^= 1;
    let mut crc_input = bytes[first + 4..first + 8].to_vec();
    crc_input.extend_from_slice(&bytes[payload..payload + len]);
    let crc = crc32c::crc32c(&crc_input);
    bytes[first + 8..first + 12].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&log, &bytes).unwrap();
    let out = atedb(&["verify", s(&log), "--root-key", s(&public)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("INVALID"), "{}", text(&out));
}

/// R4 for the operator's command: `atedb compact` killed with SIGKILL at random moments leaves
/// a file that verifies, with the same live records, compacted or not; the next compaction
/// (and open) finishes the job.
#[tokio::test]
async fn compact_killed_at_random_moments_leaves_a_whole_log() {
    use rand::Rng;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("root.key");
    assert!(atedb(&["keygen", s(&key)]).status.success());
    let public = dir.path().join("root.key.pub");
    let log = churned_chain(dir.path(), &key, 100, 10, 2000, false).await;
    let original = std::fs::read(&log).unwrap();
    let live = "100 records live";

    // How long a whole compaction takes here: the kills land within it.
    let started = Instant::now();
    let out = atedb(&["compact", s(&log), "--root-key", s(&public)]);
    assert!(out.status.success(), "{}", text(&out));
    let whole = started.elapsed().as_micros() as u64;

    let (mut old, mut new) = (0, 0);
    for round in 0..8 {
        std::fs::write(&log, &original).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_atedb"))
            .args(["compact", s(&log), "--root-key", s(&public)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run atedb compact");
        // Most of the work comes before the swap, at the end: the kills aim at its second half.
        let wait = rand::rng().random_range(whole / 3..=whole + whole / 10);
        std::thread::sleep(Duration::from_micros(wait));
        let _ = child.kill();
        let _ = child.wait();

        let out = atedb(&["verify", s(&log), "--root-key", s(&public)]);
        let t = text(&out);
        assert!(out.status.success(), "round {round}: {t}");
        assert!(t.contains(live), "round {round}: {t}");
        if t.contains("compacted through transaction") {
            new += 1;
        } else {
            assert_eq!(std::fs::read(&log).unwrap(), original, "round {round}");
            old += 1;
        }
        // The next compaction finishes the job, whatever was left beside the log.
        let out = atedb(&["compact", s(&log), "--root-key", s(&public)]);
        assert!(out.status.success(), "round {round}: {}", text(&out));
        let compact = dir.path().join("data").join("notes.log.compact");
        assert!(!compact.exists(), "round {round}: a stray compaction file");
        let out = atedb(&["verify", s(&log), "--root-key", s(&public)]);
        assert!(text(&out).contains(live), "round {round}: {}", text(&out));
    }
    eprintln!("atedb compact killed 8 times: {old} left the old log, {new} the compacted one");
}
