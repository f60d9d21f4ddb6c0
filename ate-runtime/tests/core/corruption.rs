//! R5 on a real chain file: flipped bytes, torn tails, foreign files and newer versions are all
//! detected. Damage before the last transaction is a typed error naming an offset at or before
//! the damage; damage in the last transaction is a torn tail, cut off with everything before it
//! intact. Never a panic, never a silently different view, and a refused file is left as it was.

use std::path::{Path, PathBuf};

use ate_runtime::chain::OpenError;
use ate_runtime::log::{FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, LogError, RecoveryMode};
use ate_runtime::prelude::*;

use crate::common::{
    Expect, file_config, open, open_file_chain, registry, transaction, write_workload,
};

const TXS: u64 = 20;

/// Start offsets of the frames of a log (no padding: written without preallocation).
fn frame_starts(raw: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while pos + FRAME_HEADER_LEN <= raw.len() && raw[pos..pos + 4] == *b"ATEf" {
        starts.push(pos);
        let len = u32::from_le_bytes(raw[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += FRAME_HEADER_LEN + len;
    }
    starts
}

/// A chain of [`TXS`] transactions; returns its bytes and the state after each transaction.
async fn written_chain() -> (Vec<u8>, Vec<Expect>) {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "source").await;
    let states = write_workload(&chain, TXS).await;
    let path = chain.path().unwrap().to_path_buf();
    drop(chain);
    let raw = std::fs::read(path).unwrap();
    assert_eq!(frame_starts(&raw).len(), TXS as usize);
    (raw, states)
}

/// Opens the chain `probe` under `dir` whose file holds `bytes`.
async fn open_bytes(
    dir: &Path,
    bytes: &[u8],
    mode: RecoveryMode,
) -> (PathBuf, Result<Chain, OpenError>) {
    let path = dir.join("probe.log");
    std::fs::write(&path, bytes).unwrap();
    let mut conf = file_config(dir);
    conf.recovery_mode = mode;
    let res = open(&registry(&conf).await, &ChainKey::from("probe")).await;
    (path, res)
}

#[tokio::test]
async fn every_flipped_byte_is_detected() {
    let (raw, states) = written_chain().await;
    let starts = frame_starts(&raw);
    let last = *starts.last().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let positions: Vec<usize> = (0..FILE_HEADER_LEN)
        .chain((FILE_HEADER_LEN..raw.len()).step_by(7))
        .chain(last..last + FRAME_HEADER_LEN)
        .chain([raw.len() - 1])
        .collect();
    let (mut refused, mut cut) = (0, 0);
    for pos in positions {
        let mut bad = raw.clone();
        bad[pos] ^= (pos % 255) as u8 + 1;
        let (path, res) = open_bytes(scratch.path(), &bad, RecoveryMode::default()).await;
        if pos >= last {
            let chain = res.unwrap_or_else(|e| panic!("flip at {pos} (last tx): {e}"));
            assert_eq!(chain.recovery().truncated, (raw.len() - last) as u64);
            assert_eq!(chain.recovery().records, TXS as usize - 1);
            states[TXS as usize - 1]
                .assert_matches(&chain, &format!("flip at {pos}"))
                .await;
            drop(chain);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                raw[..last],
                "the tail is cut"
            );
            cut += 1;
            continue;
        }
        // The damaged frame: the one holding `pos` (0 for the file header).
        let frame = starts
            .iter()
            .rev()
            .find(|s| **s <= pos)
            .copied()
            .unwrap_or(0);
        match res {
            Err(OpenError::Log(LogError::Corrupt { offset, .. })) => assert_eq!(
                offset as usize, frame,
                "flip at {pos}: reported at {offset}, the damaged frame is at {frame}"
            ),
            Err(OpenError::Malformed { offset, .. } | OpenError::OutOfSequence { offset, .. }) => {
                assert_eq!(offset as usize, frame, "flip at {pos}")
            }
            Err(OpenError::Log(LogError::NotALog { .. } | LogError::UnsupportedVersion { .. })) => {
                assert!(pos < FILE_HEADER_LEN, "flip at {pos}")
            }
            Err(e) => panic!("flip at {pos}: unexpected error {e}"),
            Ok(chain) => panic!(
                "flip at {pos} went unnoticed ({} records replayed)",
                chain.recovery().records
            ),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bad,
            "a refused log is left as it was"
        );
        refused += 1;
    }
    println!("{refused} flips refused with a typed error, {cut} cut as a torn tail");
    assert!(refused > 1000 && cut > 100, "{refused} refused, {cut} cut");
}

#[tokio::test]
async fn flips_in_the_preallocated_space_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChainKey::from("padded");
    let mut conf = file_config(dir.path());
    conf.preallocate = true;
    let chain = open(&registry(&conf).await, &key).await.unwrap();
    let states = write_workload(&chain, 5).await;
    let path = chain.path().unwrap().to_path_buf();
    drop(chain);
    let raw = std::fs::read(&path).unwrap();
    let end = *frame_starts(&raw).last().unwrap();
    let end = end
        + FRAME_HEADER_LEN
        + u32::from_le_bytes(raw[end + 4..end + 8].try_into().unwrap()) as usize;
    assert!(raw.len() > end + 4096, "zeros follow the log");
    assert!(raw[end..].iter().all(|b| *b == 0));
    let scratch = tempfile::tempdir().unwrap();
    for pos in [end, end + 1, end + 11, end + 4095, raw.len() - 1] {
        let mut bad = raw.clone();
        bad[pos] = 0x41;
        let (_, res) = open_bytes(scratch.path(), &bad, RecoveryMode::default()).await;
        let chain = res.unwrap_or_else(|e| panic!("flip at {pos} in the padding: {e}"));
        assert_eq!(chain.recovery().records, 5);
        states[5]
            .assert_matches(&chain, &format!("flip at {pos} in the padding"))
            .await;
    }
}

#[tokio::test]
async fn torn_tails_are_cut_in_the_tolerant_mode_only() {
    let (raw, states) = written_chain().await;
    let last = *frame_starts(&raw).last().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let before = &states[TXS as usize - 1];
    // Every cut through the frame header and the start of the transaction, then every fifth.
    let cuts = (last..last + FRAME_HEADER_LEN + 16)
        .chain((last + FRAME_HEADER_LEN + 16..raw.len()).step_by(5))
        .chain([raw.len() - 1]);
    for (i, cut) in cuts.enumerate() {
        let torn = &raw[..cut];
        if cut > last && i % 4 == 1 {
            let (path, res) =
                open_bytes(scratch.path(), torn, RecoveryMode::AbsoluteConsistency).await;
            match res {
                Err(OpenError::Log(LogError::Corrupt { offset, .. })) => {
                    assert_eq!(offset as usize, last, "cut at {cut}")
                }
                other => panic!("cut at {cut}: strict mode must refuse, got {other:?}"),
            }
            assert_eq!(
                std::fs::read(&path).unwrap(),
                torn,
                "strict mode changes nothing"
            );
        }
        let (path, res) = open_bytes(scratch.path(), torn, RecoveryMode::default()).await;
        let chain = res.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(chain.recovery().truncated, (cut - last) as u64);
        before
            .assert_matches(&chain, &format!("cut at {cut}"))
            .await;
        if i % 40 == 3 {
            // The log goes on after the cut, with the next sequence number.
            let (after, res) = transaction(&chain, before, 1000).await;
            res.unwrap();
            drop(chain);
            let (_, res) = open_bytes(
                scratch.path(),
                &std::fs::read(&path).unwrap(),
                RecoveryMode::AbsoluteConsistency,
            )
            .await;
            let chain = res.unwrap();
            assert_eq!(chain.recovery().records, TXS as usize);
            after
                .assert_matches(&chain, &format!("cut at {cut}, then a commit"))
                .await;
        }
    }
}

#[tokio::test]
async fn newer_versions_and_foreign_files_are_refused_untouched() {
    let (raw, _) = written_chain().await;
    let dir = tempfile::tempdir().unwrap();

    let mut newer = raw.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&newer[..12]);
    newer[12..16].copy_from_slice(&crc.to_le_bytes());
    let (path, res) = open_bytes(dir.path(), &newer, RecoveryMode::default()).await;
    match res {
        Err(OpenError::Log(LogError::UnsupportedVersion {
            found, supported, ..
        })) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), newer);

    for foreign in [
        b"#!/bin/sh\necho this is not a log\n".to_vec(),
        b"hi".to_vec(),
        b"ATE-LOG".iter().copied().chain([1u8]).collect(),
        (0..4096u32).map(|i| (i * 7 + 1) as u8).collect(),
    ] {
        let (path, res) = open_bytes(dir.path(), &foreign, RecoveryMode::default()).await;
        assert!(
            matches!(res, Err(OpenError::Log(LogError::NotALog { .. }))),
            "{:?}",
            res.map(|c| c.len())
        );
        assert_eq!(std::fs::read(&path).unwrap(), foreign, "left untouched");
    }
}

/// Frames whose checksum is right but whose content is not a transaction of this chain in
/// sequence: typed errors naming the frame.
#[tokio::test]
async fn intact_frames_out_of_place_are_refused() {
    use ate_runtime::log::encode_frames;
    let (raw, _) = written_chain().await;
    let starts = frame_starts(&raw);
    let dir = tempfile::tempdir().unwrap();

    let mut garbage = raw.clone();
    garbage.extend_from_slice(&encode_frames(&[b"not a transaction"]));
    let (_, res) = open_bytes(dir.path(), &garbage, RecoveryMode::default()).await;
    assert!(
        matches!(res, Err(OpenError::Malformed { offset, .. }) if offset as usize == raw.len()),
        "{:?}",
        res.map(|c| c.len())
    );

    // A transaction replayed at the end.
    let mut replayed = raw.clone();
    replayed.extend_from_slice(&raw[starts[3]..starts[4]]);
    let (_, res) = open_bytes(dir.path(), &replayed, RecoveryMode::default()).await;
    match res {
        Err(OpenError::OutOfSequence {
            offset,
            found,
            expected,
            ..
        }) => {
            assert_eq!(offset as usize, raw.len());
            assert_eq!((found, expected), (4, TXS + 1));
        }
        other => panic!("expected OutOfSequence, got {:?}", other.map(|c| c.len())),
    }

    // Two transactions swapped.
    let mut swapped = raw[..starts[5]].to_vec();
    swapped.extend_from_slice(&raw[starts[6]..starts[7]]);
    swapped.extend_from_slice(&raw[starts[5]..starts[6]]);
    swapped.extend_from_slice(&raw[starts[7]..]);
    let (_, res) = open_bytes(dir.path(), &swapped, RecoveryMode::default()).await;
    assert!(
        matches!(res, Err(OpenError::OutOfSequence { offset, found: 7, expected: 6, .. }) if offset as usize == starts[5]),
        "{:?}",
        res.map(|c| c.len())
    );

    // A transaction dropped from the middle.
    let mut gap = raw[..starts[9]].to_vec();
    gap.extend_from_slice(&raw[starts[10]..]);
    let (_, res) = open_bytes(dir.path(), &gap, RecoveryMode::default()).await;
    assert!(matches!(
        res,
        Err(OpenError::OutOfSequence {
            found: 11,
            expected: 10,
            ..
        })
    ));
}
