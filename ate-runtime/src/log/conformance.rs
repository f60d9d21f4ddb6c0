//! The conformance suite every [`LogStore`] backend must pass, through a [`RedoLog`].
//!
//! A backend crate runs it from a test with a [`StoreHarness`] for its store:
//! `ate_runtime::log::conformance::test_all(&mut MyHarness::new())`. Each check panics with a
//! message naming the check and the backend when the contract is broken.

use bytes::Bytes;

use super::{
    DEFAULT_MAX_FRAME, FILE_HEADER_LEN, LogError, LogStore, RecoveryMode, RecoveryReport, RedoLog,
};

/// Gives the suite one log location, opened and reopened, with raw access to its bytes.
pub trait StoreHarness {
    /// The backend under test.
    type Store: LogStore;
    /// Opens the harness's log (creating it when absent). Only one store is open at a time.
    fn open(&mut self) -> Self::Store;
    /// The log's physical bytes (no store is open).
    fn raw(&mut self) -> Vec<u8>;
    /// Replaces the log's physical bytes (no store is open).
    fn set_raw(&mut self, bytes: Vec<u8>);
    /// Removes the log entirely (no store is open).
    fn reset(&mut self);
    /// The bytes kept at `location`, a place [`LogStore::quarantine`] returned for the current
    /// log (since the last [`StoreHarness::reset`] or [`StoreHarness::set_raw`]); `None` when
    /// there are none.
    fn quarantined(&mut self, location: &str) -> Option<Vec<u8>>;
}

fn open<H: StoreHarness>(
    h: &mut H,
    mode: RecoveryMode,
) -> Result<(RedoLog<H::Store>, Vec<Bytes>), LogError> {
    open_reporting(h, mode).map(|(log, recs, _)| (log, recs))
}

/// A log opened by the suite: the log, its payloads and what recovery found.
type Opened<S> = (RedoLog<S>, Vec<Bytes>, RecoveryReport);

fn open_reporting<H: StoreHarness>(
    h: &mut H,
    mode: RecoveryMode,
) -> Result<Opened<H::Store>, LogError> {
    let (log, recs, report) = RedoLog::open(h.open(), mode, DEFAULT_MAX_FRAME)?;
    Ok((log, recs.into_iter().map(|r| r.payload).collect(), report))
}

/// Checks that `report` says the tail `cut`, which started at `offset`, was cut and kept, and
/// that the harness finds exactly those bytes where the report says; returns that location.
fn assert_quarantined<H: StoreHarness>(
    h: &mut H,
    report: &RecoveryReport,
    offset: usize,
    cut: &[u8],
) -> String {
    assert_eq!(report.truncated, cut.len() as u64, "bytes cut");
    let q = report
        .quarantine
        .as_ref()
        .expect("a cut tail is quarantined");
    assert_eq!(
        (q.offset, q.len),
        (offset as u64, cut.len() as u64),
        "the quarantine's offset and length"
    );
    let kept = h.quarantined(&q.location);
    assert!(
        kept.as_deref() == Some(cut),
        "{}: the quarantine holds exactly the bytes cut",
        q.location
    );
    q.location.clone()
}

fn payload(i: usize) -> Vec<u8> {
    (0..(i * 37 % 300 + 1))
        .map(|j| (i * 31 + j) as u8)
        .collect()
}

fn write_n<H: StoreHarness>(h: &mut H, n: usize) -> Vec<Vec<u8>> {
    h.reset();
    let (mut log, recs) = open(h, RecoveryMode::default()).expect("open a new log");
    assert!(recs.is_empty(), "a new log has no records");
    let all: Vec<Vec<u8>> = (0..n).map(payload).collect();
    for chunk in all.chunks(3) {
        let refs: Vec<&[u8]> = chunk.iter().map(|p| p.as_slice()).collect();
        log.append(&refs).expect("append");
        log.sync().expect("sync");
    }
    all
}

/// A new log is empty; appended, synced records come back in order after reopen.
pub fn round_trip<H: StoreHarness>(h: &mut H) {
    let all = write_n(h, 20);
    let (_log, recs) = open(h, RecoveryMode::default()).expect("reopen");
    assert_eq!(recs.len(), all.len(), "record count after reopen");
    for (a, b) in all.iter().zip(&recs) {
        assert_eq!(a.as_slice(), &b[..], "record bytes after reopen");
    }
}

/// Appending after a reopen continues the same log.
pub fn append_after_reopen<H: StoreHarness>(h: &mut H) {
    let mut all = write_n(h, 5);
    {
        let (mut log, _) = open(h, RecoveryMode::default()).expect("reopen");
        let extra = payload(99);
        log.append(&[&extra]).expect("append");
        log.sync().expect("sync");
        all.push(extra);
    }
    let (_log, recs) = open(h, RecoveryMode::default()).expect("reopen again");
    assert_eq!(recs.len(), all.len());
    assert_eq!(recs.last().map(|b| b.to_vec()), all.last().cloned());
}

/// Every cut of the last frame is a torn tail: quarantined then truncated in the tolerant mode
/// (earlier records intact, each cut kept in a place of its own), an error in the strict mode.
pub fn torn_tail_is_truncated<H: StoreHarness>(h: &mut H) {
    let all = write_n(h, 6);
    let full = h.raw();
    let logical = logical_len(&full);
    let last_len = all.last().expect("records").len() + super::FRAME_HEADER_LEN;
    let last_start = logical - last_len;
    let mut locations = std::collections::HashSet::new();
    for cut in last_start + 1..logical {
        h.set_raw(full[..cut].to_vec());
        match open(h, RecoveryMode::AbsoluteConsistency) {
            Err(LogError::Corrupt { offset, .. }) => assert_eq!(offset as usize, last_start),
            other => panic!(
                "strict mode must refuse a torn tail at cut {cut}: {:?}",
                other.map(|r| r.1.len())
            ),
        }
        assert_eq!(h.raw(), full[..cut], "strict mode leaves the log as it is");
        let (mut log, recs, report) =
            open_reporting(h, RecoveryMode::TolerateCorruptTail).expect("tolerant open");
        assert_eq!(
            recs.len(),
            all.len() - 1,
            "cut at {cut}: earlier records survive"
        );
        let location = assert_quarantined(h, &report, last_start, &full[last_start..cut]);
        assert!(locations.insert(location), "cut at {cut}: a new quarantine");
        let again = payload(7);
        log.append(&[&again]).expect("append after truncation");
        log.sync().expect("sync");
        drop(log);
        let (_log, recs) = open(h, RecoveryMode::default()).expect("reopen");
        assert_eq!(
            recs.len(),
            all.len(),
            "cut at {cut}: the new record follows the old ones"
        );
        assert_eq!(&recs.last().expect("records")[..], again.as_slice());
    }
}

/// A changed byte anywhere before the last frame is a typed error naming the damaged frame,
/// and a changed byte inside the last frame is a torn tail (detected, truncated).
pub fn flipped_bytes_are_detected<H: StoreHarness>(h: &mut H) {
    let all = write_n(h, 8);
    let full = h.raw();
    let logical = logical_len(&full);
    let last_start = logical - (all.last().expect("records").len() + super::FRAME_HEADER_LEN);
    let mut checked = 0;
    for pos in (0..logical).step_by(3) {
        let mut bad = full.clone();
        bad[pos] ^= 0x41;
        h.set_raw(bad);
        let res = open_reporting(h, RecoveryMode::TolerateCorruptTail);
        if pos >= last_start {
            let (_log, recs, report) =
                res.unwrap_or_else(|e| panic!("flip at {pos} in the tail: {e}"));
            assert_eq!(
                recs.len(),
                all.len() - 1,
                "flip at {pos}: the damaged tail frame is cut"
            );
            let mut bad = full.clone();
            bad[pos] ^= 0x41;
            assert_quarantined(h, &report, last_start, &bad[last_start..]);
        } else {
            match res {
                Err(LogError::Corrupt { offset, .. }) => {
                    assert!(offset as usize <= pos, "flip at {pos} reported at {offset}")
                }
                Err(LogError::NotALog { .. }) | Err(LogError::UnsupportedVersion { .. }) => {
                    assert!(pos < FILE_HEADER_LEN, "flip at {pos}")
                }
                Err(e) => panic!("flip at {pos}: unexpected error {e}"),
                Ok((_, recs, _)) => {
                    panic!("flip at {pos} went unnoticed ({} records)", recs.len())
                }
            }
        }
        checked += 1;
    }
    assert!(checked > 50);
}

/// A quarantine keeps its bytes where it says, in a new place each time (even for the same
/// offset), without changing the log.
pub fn quarantine_keeps_bytes_aside<H: StoreHarness>(h: &mut H) {
    write_n(h, 3);
    let before = h.raw();
    let mut store = h.open();
    let first = store.quarantine(40, b"the first tail").expect("quarantine");
    let second = store.quarantine(40, b"another tail").expect("quarantine");
    let empty = store.quarantine(7, b"").expect("quarantine nothing");
    drop(store);
    assert!(
        first != second && second != empty && first != empty,
        "each quarantine has a place of its own: {first}, {second}, {empty}"
    );
    assert_eq!(h.quarantined(&first), Some(b"the first tail".to_vec()));
    assert_eq!(h.quarantined(&second), Some(b"another tail".to_vec()));
    assert_eq!(h.quarantined(&empty), Some(Vec::new()));
    assert_eq!(h.raw(), before, "the log is unchanged");
    let (_log, recs) = open(h, RecoveryMode::AbsoluteConsistency).expect("reopen");
    assert_eq!(recs.len(), 3);
}

/// A log with a newer format version is refused.
pub fn newer_version_is_refused<H: StoreHarness>(h: &mut H) {
    write_n(h, 1);
    let mut raw = h.raw();
    raw[8..12].copy_from_slice(&(super::FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&raw[..12]);
    raw[12..16].copy_from_slice(&crc.to_le_bytes());
    h.set_raw(raw);
    assert!(matches!(
        open(h, RecoveryMode::default()),
        Err(LogError::UnsupportedVersion { .. })
    ));
}

/// Bytes that are not a log are refused, not overwritten.
pub fn foreign_bytes_are_refused<H: StoreHarness>(h: &mut H) {
    h.reset();
    h.set_raw(b"#!/bin/sh\necho this is not a log\n".to_vec());
    assert!(matches!(
        open(h, RecoveryMode::default()),
        Err(LogError::NotALog { .. })
    ));
    assert_eq!(
        h.raw(),
        b"#!/bin/sh\necho this is not a log\n".to_vec(),
        "left untouched"
    );
}

/// Runs every check.
pub fn test_all<H: StoreHarness>(h: &mut H) {
    round_trip(h);
    append_after_reopen(h);
    torn_tail_is_truncated(h);
    flipped_bytes_are_detected(h);
    quarantine_keeps_bytes_aside(h);
    newer_version_is_refused(h);
    foreign_bytes_are_refused(h);
    replace_swaps_the_whole_log(h);
}

/// [`LogStore::replace`] puts a whole new log in place: the store's end is the new log's,
/// appends continue after it, and a reopen finds the new records and the appended ones only.
pub fn replace_swaps_the_whole_log<H: StoreHarness>(h: &mut H) {
    write_n(h, 10);
    let fresh: Vec<Vec<u8>> = (100..104).map(payload).collect();
    let mut contents = super::frame::header_bytes().to_vec();
    contents.extend_from_slice(&super::frame::encode_frames(
        &fresh.iter().map(|p| p.as_slice()).collect::<Vec<_>>(),
    ));
    {
        let (mut log, recs) = open(h, RecoveryMode::default()).expect("reopen");
        assert_eq!(recs.len(), 10);
        log.replace(&contents).expect("replace");
        assert_eq!(log.len(), contents.len() as u64, "the end after a replace");
        log.append(&[&payload(7)]).expect("append after a replace");
        log.sync().expect("sync");
    }
    let (_log, recs) = open(h, RecoveryMode::default()).expect("reopen after a replace");
    let mut expected = fresh;
    expected.push(payload(7));
    assert_eq!(
        recs.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        expected,
        "the new records, then the appended one"
    );
}

/// The end of the last intact frame (ignores zero padding).
fn logical_len(raw: &[u8]) -> usize {
    let mut pos = FILE_HEADER_LEN;
    while let Some(head) = raw.get(pos..pos + super::FRAME_HEADER_LEN) {
        if head[..4] != *b"ATEf" {
            break;
        }
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
        pos += super::FRAME_HEADER_LEN + len;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{FileStore, MemoryStore};

    struct Mem(MemoryStore);
    impl StoreHarness for Mem {
        type Store = MemoryStore;
        fn open(&mut self) -> MemoryStore {
            self.0.clone()
        }
        fn raw(&mut self) -> Vec<u8> {
            self.0.bytes()
        }
        fn set_raw(&mut self, bytes: Vec<u8>) {
            self.0 = MemoryStore::from_bytes(bytes);
        }
        fn reset(&mut self) {
            self.0 = MemoryStore::new();
        }
        fn quarantined(&mut self, location: &str) -> Option<Vec<u8>> {
            let kept = self.0.quarantined();
            let found = kept.into_iter().find(|(name, _)| name == location);
            found.map(|(_, bytes)| bytes.to_vec())
        }
    }

    struct Disk(tempfile::TempDir, u64);
    impl Disk {
        fn path(&self) -> std::path::PathBuf {
            self.0.path().join("conformance.log")
        }
    }
    impl StoreHarness for Disk {
        type Store = FileStore;
        fn open(&mut self) -> FileStore {
            FileStore::open(&self.path(), self.1).expect("open file store")
        }
        fn raw(&mut self) -> Vec<u8> {
            std::fs::read(self.path()).unwrap_or_default()
        }
        fn set_raw(&mut self, bytes: Vec<u8>) {
            std::fs::write(self.path(), bytes).expect("write raw");
        }
        fn reset(&mut self) {
            let _ = std::fs::remove_file(self.path());
        }
        fn quarantined(&mut self, location: &str) -> Option<Vec<u8>> {
            let path = std::path::Path::new(location);
            assert_eq!(path.parent(), Some(self.0.path()), "beside the log");
            std::fs::read(path).ok()
        }
    }

    #[test]
    fn memory_store_conforms() {
        test_all(&mut Mem(MemoryStore::new()));
    }

    #[test]
    fn file_store_conforms() {
        test_all(&mut Disk(tempfile::tempdir().unwrap(), 0));
    }

    #[test]
    fn preallocating_file_store_conforms() {
        test_all(&mut Disk(tempfile::tempdir().unwrap(), 4096));
    }

    #[test]
    fn file_is_locked_while_open() {
        let d = Disk(tempfile::tempdir().unwrap(), 0);
        let _a = FileStore::open(&d.path(), 0).unwrap();
        assert!(matches!(
            FileStore::open(&d.path(), 0),
            Err(LogError::Locked { .. })
        ));
    }

    #[test]
    fn failed_sync_poisons_the_log() {
        let store = MemoryStore::new();
        let (mut log, _, _) =
            RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        log.append(&[b"one"]).unwrap();
        store.fail_after(0);
        assert!(matches!(log.sync(), Err(LogError::Io { .. })));
        assert!(log.is_poisoned());
        assert!(matches!(
            log.append(&[b"two"]),
            Err(LogError::Poisoned { .. })
        ));
        assert!(matches!(log.sync(), Err(LogError::Poisoned { .. })));
    }

    #[test]
    fn crash_keeps_only_synced_frames() {
        let lost = b"lost in the crash";
        let frame = (super::super::FRAME_HEADER_LEN + lost.len()) as u64;
        for keep in 0..=frame {
            let store = MemoryStore::new();
            let (mut log, _, _) =
                RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
            log.append(&[b"durable"]).unwrap();
            log.sync().unwrap();
            log.append(&[lost]).unwrap();
            drop(log);
            store.crash(keep);
            let (_l, recs, report) =
                RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(&recs[0].payload[..], b"durable");
            if keep == frame {
                assert_eq!(recs.len(), 2, "a whole frame that reached the disk is kept");
                assert!(report.quarantine.is_none());
            } else {
                assert_eq!(recs.len(), 1, "torn at {keep}");
                assert_eq!(report.truncated, keep);
                let torn = &super::super::encode_frames(&[lost])[..keep as usize];
                let kept = store.quarantined();
                match &report.quarantine {
                    None => assert_eq!(keep, 0, "torn at {keep}: nothing kept"),
                    Some(q) => {
                        assert_eq!(kept, vec![(q.location.clone(), Bytes::from(torn.to_vec()))])
                    }
                }
            }
        }
    }
}
