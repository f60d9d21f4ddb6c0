//! R5 on a real chain file: flipped bytes, torn tails, foreign files and newer versions are all
//! detected. Damage before the last transaction is a typed error naming an offset at or before
//! the damage; damage in the last transaction is a torn tail, cut off with everything before it
//! intact. Never a panic, never a silently different view, and a refused file is left as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ate_runtime::chain::OpenError;
use ate_runtime::log::{DEFAULT_MAX_FRAME, LogError, MemoryStore, RecoveryMode, RecoveryReport};
use ate_runtime::prelude::*;
use ate_runtime::unstable::log::{
    FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, RedoLog, encode_frames, frame_in_place,
};

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

/// Checks that `report` says the tail `cut`, which started at `offset`, was cut off and kept in
/// a private quarantine file beside the log, which holds exactly those bytes (nothing is kept when
/// nothing was cut).
fn assert_quarantined(report: &RecoveryReport, log: &Path, offset: usize, cut: &[u8]) {
    assert_eq!(report.truncated, cut.len() as u64);
    if cut.is_empty() {
        assert_eq!(report.quarantine, None);
        return;
    }
    let q = report
        .quarantine
        .as_ref()
        .expect("a cut tail is quarantined");
    assert_eq!((q.offset, q.len), (offset as u64, cut.len() as u64));
    let kept = Path::new(&q.location);
    assert_eq!(kept.parent(), log.parent(), "beside the log");
    assert_eq!(
        std::fs::metadata(kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read(kept).unwrap() == cut,
        "{}: the quarantine holds exactly the bytes cut",
        q.location
    );
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
            assert_quarantined(chain.recovery(), &path, last, &bad[last..]);
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
        let (path, res) = open_bytes(scratch.path(), &bad, RecoveryMode::default()).await;
        let chain = res.unwrap_or_else(|e| panic!("flip at {pos} in the padding: {e}"));
        assert_eq!(chain.recovery().records, 5);
        // The padding from the log's end is cut, with the flipped byte, and kept.
        assert_quarantined(chain.recovery(), &path, end, &bad[end..]);
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
        assert_quarantined(chain.recovery(), &path, last, &torn[last..]);
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

/// A chain of small transactions and a large last one; returns the file's path, its bytes and
/// the state after each transaction. The last transaction is the largest.
async fn chain_ending_large(dir: &Path) -> (PathBuf, Vec<u8>, Vec<Expect>) {
    let chain = open_file_chain(dir, "big").await;
    let mut states = write_workload(&chain, 4).await;
    let mut dio = chain.dio(&crate::common::session()).await;
    let text = "large ".repeat(1000);
    let key = *dio
        .store(crate::common::Note {
            n: 1,
            text: text.clone(),
        })
        .unwrap()
        .key();
    dio.commit().await.unwrap();
    let mut after = states.last().unwrap().clone();
    after.notes.insert(key, crate::common::Note { n: 1, text });
    states.push(after);
    let path = chain.path().unwrap().to_path_buf();
    drop(chain);
    let raw = std::fs::read(&path).unwrap();
    (path, raw, states)
}

fn frame_len(raw: &[u8], at: usize) -> usize {
    u32::from_le_bytes(raw[at + 4..at + 8].try_into().unwrap()) as usize
}

/// A chain reopened with a smaller transaction limit than some intact transactions in it: the
/// first intact frame over the limit is refused with a typed error naming the file and the
/// frame, in both recovery modes, and the file is left untouched (never cut as a torn tail,
/// even when that frame is the last). With the limit raised again everything is there.
#[tokio::test]
async fn an_intact_transaction_over_a_lowered_limit_is_refused_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    let key = ChainKey::from("big");
    let (path, raw, states) = chain_ending_large(dir.path()).await;
    let starts = frame_starts(&raw);
    let last = *starts.last().unwrap();
    let largest = frame_len(&raw, last);
    let earlier = starts[..starts.len() - 1]
        .iter()
        .map(|s| frame_len(&raw, *s))
        .collect::<Vec<_>>();
    assert!(earlier.iter().all(|l| *l < largest));
    let smallest = *earlier.iter().min().unwrap();

    // Only the last frame over the limit; then earlier ones too (the first is reported).
    for limit in [largest - 1, smallest] {
        let first_over = starts
            .iter()
            .copied()
            .find(|s| frame_len(&raw, *s) > limit)
            .unwrap();
        for mode in [
            RecoveryMode::TolerateCorruptTail,
            RecoveryMode::AbsoluteConsistency,
        ] {
            let mut conf = file_config(dir.path());
            conf.max_transaction_bytes = limit;
            conf.recovery_mode = mode;
            match open(&registry(&conf).await, &key).await {
                Err(OpenError::Log(LogError::FrameTooLarge {
                    store,
                    offset,
                    len,
                    max,
                })) => {
                    assert_eq!(store, path.display().to_string());
                    assert_eq!(offset as usize, first_over);
                    assert_eq!(len as usize, frame_len(&raw, first_over));
                    assert_eq!(max, limit);
                }
                other => panic!(
                    "limit {limit}, {mode:?}: expected FrameTooLarge, got {:?}",
                    other.map(|c| c.recovery().clone())
                ),
            }
            assert_eq!(std::fs::read(&path).unwrap(), raw, "the log is untouched");
        }
    }

    // A limit that fits every transaction again: nothing was lost.
    let mut conf = file_config(dir.path());
    conf.max_transaction_bytes = largest;
    let chain = open(&registry(&conf).await, &key).await.unwrap();
    assert_eq!(chain.recovery().truncated, 0);
    assert_eq!(chain.recovery().quarantine, None);
    states
        .last()
        .unwrap()
        .assert_matches(&chain, "limit raised again")
        .await;
}

/// A torn last frame that claims more than the limit is still damage: it is cut as a torn tail
/// (it was never acknowledged), and everything before it stays.
#[tokio::test]
async fn a_torn_frame_over_the_limit_is_still_a_torn_tail() {
    let source = tempfile::tempdir().unwrap();
    let (_, raw, states) = chain_ending_large(source.path()).await;
    let last = *frame_starts(&raw).last().unwrap();
    let before = &states[states.len() - 2];
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("probe.log");
    let mut conf = file_config(scratch.path());
    // Every transaction but the last fits.
    conf.max_transaction_bytes = frame_len(&raw, last) - 1;
    for cut in [
        last + FRAME_HEADER_LEN,
        last + FRAME_HEADER_LEN + 1,
        (last + raw.len()) / 2,
        raw.len() - 1,
    ] {
        std::fs::write(&path, &raw[..cut]).unwrap();
        let chain = open(&registry(&conf).await, &ChainKey::from("probe"))
            .await
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(chain.recovery().truncated, (cut - last) as u64);
        assert_quarantined(chain.recovery(), &path, last, &raw[last..cut]);
        before
            .assert_matches(&chain, &format!("cut at {cut}"))
            .await;
    }
}

/// Frame bytes that survive being embedded in a transaction unchanged: a note's text holds them
/// as a MessagePack string, so they must be valid UTF-8 (here: ASCII). The payload of the frame
/// is varied until its checksum is ASCII too.
fn ascii_frame() -> Vec<u8> {
    (0u32..)
        .map(|i| encode_frames(&[format!("an embedded frame {i}").as_bytes()]).to_vec())
        .find(|f| f.is_ascii())
        .unwrap()
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The last transaction holds, inside its own data, the bytes of a whole intact frame. A crash
/// that tears that transaction after the embedded frame leaves a torn tail whose garbage holds
/// an intact-looking frame: it is still a torn tail (cut, everything before it kept), not
/// corruption, because the embedded frame lies inside the torn frame's declared length.
#[tokio::test]
async fn a_torn_transaction_holding_frame_bytes_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open_file_chain(dir.path(), "nested").await;
    let before = write_workload(&chain, 5).await.pop().unwrap();
    let inner = ascii_frame();
    let mut dio = chain.dio(&crate::common::session()).await;
    let text = String::from_utf8(inner.clone()).unwrap();
    dio.store(crate::common::Note { n: 7, text }).unwrap();
    dio.store(crate::common::Note::new(8)).unwrap();
    dio.commit().await.unwrap();
    let path = chain.path().unwrap().to_path_buf();
    drop(chain);
    let raw = std::fs::read(&path).unwrap();
    let last = *frame_starts(&raw).last().unwrap();
    let embedded = last + position(&raw[last..], &inner).expect("the frame bytes are embedded");
    assert!(embedded > last + FRAME_HEADER_LEN);

    let scratch = tempfile::tempdir().unwrap();
    let mut tested = 0;
    for cut in embedded + inner.len()..raw.len() {
        let torn = &raw[..cut];
        // Strict mode: the torn tail is reported at the torn frame, not accepted.
        if cut % 5 == 0 {
            let (_, res) =
                open_bytes(scratch.path(), torn, RecoveryMode::AbsoluteConsistency).await;
            match res {
                Err(OpenError::Log(LogError::Corrupt { offset, .. })) => {
                    assert_eq!(offset as usize, last, "cut at {cut}")
                }
                other => panic!(
                    "cut at {cut}: expected Corrupt, got {:?}",
                    other.map(|c| c.len())
                ),
            }
        }
        let (path, res) = open_bytes(scratch.path(), torn, RecoveryMode::default()).await;
        let chain = res.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(chain.recovery().truncated, (cut - last) as u64);
        assert_quarantined(chain.recovery(), &path, last, &torn[last..]);
        before
            .assert_matches(&chain, &format!("cut at {cut}"))
            .await;
        drop(chain);
        assert_eq!(std::fs::read(&path).unwrap(), raw[..last], "cut at {cut}");

        // The same torn write in preallocated space: zeros follow it. (When every byte cut off
        // was zero, the padding restores the transaction whole.)
        if raw[cut..].iter().any(|b| *b != 0) {
            let mut padded = torn.to_vec();
            padded.resize(raw.len() + 4096, 0);
            let (path, res) = open_bytes(scratch.path(), &padded, RecoveryMode::default()).await;
            let chain = res.unwrap_or_else(|e| panic!("cut at {cut}, padded: {e}"));
            assert_eq!(chain.recovery().end as usize, last, "cut at {cut}, padded");
            assert_quarantined(chain.recovery(), &path, last, &padded[last..]);
            before
                .assert_matches(&chain, &format!("cut at {cut}, padded"))
                .await;
        }
        tested += 1;
    }
    assert!(tested > 10, "{tested} cuts after the embedded frame");
}

/// The log of `payloads`, framed, as the redo log writes it.
fn log_bytes(payloads: &[Vec<u8>]) -> Vec<u8> {
    let store = MemoryStore::new();
    let (mut log, _, _) =
        RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
    log.append(&refs).unwrap();
    log.sync().unwrap();
    store.bytes()
}

/// Frames built in place (room for the header ahead of each payload, as the chain's writer
/// receives transactions) are written exactly as `append` writes their payloads, alone or
/// several at once, and read back the same.
#[test]
fn frames_built_in_place_write_the_same_bytes() {
    let payloads: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![7; 5000], Vec::new(), b"four".to_vec()];
    let framed = |p: &Vec<u8>| {
        let mut buf = vec![0xAA; FRAME_HEADER_LEN];
        buf.extend_from_slice(p);
        frame_in_place(&mut buf);
        bytes::Bytes::from(buf)
    };
    let store = MemoryStore::new();
    let (mut log, _, _) =
        RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
    let one = log.append_frames(&[framed(&payloads[0])]).unwrap();
    assert_eq!(one.payloads[0], payloads[0]);
    let rest: Vec<bytes::Bytes> = payloads[1..].iter().map(framed).collect();
    let written = log.append_frames(&rest).unwrap();
    for (p, expected) in written.payloads.iter().zip(&payloads[1..]) {
        assert_eq!(p, expected);
    }
    log.sync().unwrap();
    assert_eq!(store.bytes(), log_bytes(&payloads));
    let (back, truncated, _) = reopen_log(&store.bytes(), RecoveryMode::default()).unwrap();
    assert_eq!((back, truncated), (payloads.clone(), 0));

    let small = MemoryStore::new();
    let (mut log, _, _) = RedoLog::open(small, RecoveryMode::default(), 4).unwrap();
    assert!(matches!(
        log.append_frames(&[framed(&payloads[1])]),
        Err(LogError::TooLarge { len: 5000, max: 4 })
    ));
}

fn reopen_log(
    bytes: &[u8],
    mode: RecoveryMode,
) -> Result<(Vec<Vec<u8>>, u64, MemoryStore), LogError> {
    let store = MemoryStore::from_bytes(bytes.to_vec());
    let (_, recs, report) = RedoLog::open(store.clone(), mode, DEFAULT_MAX_FRAME)?;
    Ok((
        recs.into_iter().map(|r| r.payload.to_vec()).collect(),
        report.truncated,
        store,
    ))
}

fn set_frame_len(bytes: &mut [u8], at: usize, len: u64) {
    bytes[at + 4..at + 8].copy_from_slice(&(len as u32).to_le_bytes());
}

/// At the log level: a torn frame whose payload holds a valid frame (even a chain of them)
/// is a torn tail; damage followed by an intact frame after the damaged frame's declared end is
/// corruption; and a damaged length field is never mistaken for a torn frame, wherever the
/// damaged length ends.
#[test]
fn the_search_for_later_frames_starts_after_the_damaged_frames_declared_end() {
    let inner: Vec<u8> = encode_frames(&[b"inner one", b"inner two"]).to_vec();
    let mut nested = b"before the embedded frames ".to_vec();
    nested.extend_from_slice(&inner);
    nested.extend_from_slice(b" and after them");
    let plain: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8 + 1; 40 + i * 9]).collect();

    // Torn at every point after the embedded frames: a torn tail.
    let mut payloads = plain.clone();
    payloads.push(nested.clone());
    let raw = log_bytes(&payloads);
    let last = raw.len() - FRAME_HEADER_LEN - nested.len();
    let inner_end = last + FRAME_HEADER_LEN + position(&nested, &inner).unwrap() + inner.len();
    for cut in inner_end..raw.len() {
        let (recs, truncated, store) = reopen_log(&raw[..cut], RecoveryMode::default())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(recs, plain, "cut at {cut}");
        assert_eq!(truncated, (cut - last) as u64);
        assert_eq!(store.bytes(), raw[..last]);
        let kept = store.quarantined();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].1[..],
            raw[last..cut],
            "cut at {cut}: the torn tail is kept"
        );
        assert!(matches!(
            reopen_log(&raw[..cut], RecoveryMode::AbsoluteConsistency),
            Err(LogError::Corrupt { offset, .. }) if offset as usize == last
        ));
    }

    // The nested frame damaged (not torn) with an intact frame after it: corruption at the
    // damaged frame, nothing skipped.
    let mut payloads = plain.clone();
    payloads.insert(2, nested.clone());
    let raw = log_bytes(&payloads);
    let starts = frame_starts(&raw);
    let damaged = starts[2];
    let mut bad = raw.clone();
    bad[damaged + FRAME_HEADER_LEN + 1] ^= 0x20;
    match reopen_log(&bad, RecoveryMode::default()) {
        Err(LogError::Corrupt { offset, .. }) => assert_eq!(offset as usize, damaged),
        other => panic!("expected Corrupt, got {:?}", other.map(|r| r.1)),
    }

    // A damaged length field, ending anywhere after the frame's true end: inside a later frame,
    // at a later frame's start, in the last frame, past the end of the log, or in zeros after
    // it. Never a torn tail: acknowledged frames follow.
    let raw = log_bytes(&plain);
    let starts = frame_starts(&raw);
    let at = starts[1];
    let true_len = (starts[2] - at - FRAME_HEADER_LEN) as u64;
    let mut padded = raw.clone();
    padded.resize(raw.len() + 1000, 0);
    let payload = (at + FRAME_HEADER_LEN) as u64;
    let ends = [
        starts[2] as u64 + 3,
        starts[3] as u64,
        starts[3] as u64 + 5,
        raw.len() as u64 - 1,
        raw.len() as u64 + 1,
        raw.len() as u64 + 500,
        raw.len() as u64 + 100_000,
    ];
    for bytes in [&raw, &padded] {
        for end in ends {
            let mut bad = bytes.clone();
            set_frame_len(&mut bad, at, end - payload);
            for mode in [
                RecoveryMode::TolerateCorruptTail,
                RecoveryMode::AbsoluteConsistency,
            ] {
                match reopen_log(&bad, mode) {
                    Err(LogError::Corrupt { offset, .. }) => {
                        assert_eq!(offset as usize, at, "length ending at {end}")
                    }
                    other => panic!(
                        "length ending at {end} (true {true_len}), {mode:?}: expected Corrupt, \
                         got {:?}",
                        other.map(|r| r.1)
                    ),
                }
            }
        }
    }
    // A shorter length: the rest of the frame's payload is not a frame; the next one is.
    let mut bad = raw.clone();
    set_frame_len(&mut bad, at, true_len - 7);
    assert!(matches!(
        reopen_log(&bad, RecoveryMode::default()),
        Err(LogError::Corrupt { offset, .. }) if offset as usize == at
    ));
}
