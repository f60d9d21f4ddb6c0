//! Recovery on open: from a store's bytes to the records of the log (the rules are in
//! `docs/FORMAT.md`, "Recovery on open"), in the steps [`recover`] names.
//!
//! Recovery scans frames from the header. An intact frame (whole, checksum right) longer than
//! the configured limit stops the open with [`LogError::FrameTooLarge`]: it was acknowledged
//! under a larger limit, so it is never cut. Otherwise the first frame that fails its checks ends
//! the scan at offset `p`. If every byte after `p` is zero, `p` is the clean end of the log (the
//! rest is preallocated space). Otherwise, if acknowledged data follows, the damage is not at the
//! tail: that is [`LogError::Corrupt`] naming `p`, and nothing is skipped. Acknowledged data
//! follows when an intact frame starts after the damaged frame's declared end (after `p` itself
//! when its header is not trusted), or when the damaged frame turns out intact with a shorter
//! length that ends exactly where an intact frame starts (a damaged length field). Frame-looking
//! bytes inside a damaged frame's own declared payload are part of that payload. If no
//! acknowledged data follows, the tail is torn (a write cut short by a crash, never
//! acknowledged): in [`RecoveryMode::TolerateCorruptTail`] it is first copied aside with
//! [`LogStore::quarantine`] (a file beside the log, fsynced with its folder), then truncated,
//! and a warning names the copy, which [`RecoveryReport::quarantine`] reports too; if the copy
//! fails, the open fails with the store's [`LogError::Io`] and the log is left untouched. In
//! [`RecoveryMode::AbsoluteConsistency`] a torn tail is an error.

use bytes::Bytes;

use super::frame::{
    FILE_HEADER_LEN, FILE_MAGIC, FORMAT_VERSION, FRAME_HEADER_LEN, FrameHeader, header_at,
    header_bytes, payload_check,
};
use super::search::{After, data_after_damage, first_intact_frame};
use super::{LogError, LogStore};

/// What to do with a damaged tail on open (names after RocksDB's WAL recovery modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Truncate a torn last frame (a crash during a write that was never acknowledged) after
    /// keeping a copy of it ([`LogStore::quarantine`]), and log a warning naming the copy;
    /// damage anywhere else is an error.
    #[default]
    TolerateCorruptTail,
    /// Any damage, even at the tail, is an error.
    AbsoluteConsistency,
}

/// One transaction payload read back from the log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Byte offset of the frame in the store.
    pub offset: u64,
    /// The frame payload (shares the buffer the log was read into).
    pub payload: Bytes,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Frames read.
    pub records: usize,
    /// The logical end of the log after recovery.
    pub end: u64,
    /// Bytes of a torn tail that were cut off (0 when the log closed cleanly).
    pub truncated: u64,
    /// Where the torn tail that was cut off is kept (`None` when nothing was cut).
    pub quarantine: Option<Quarantined>,
}

/// A torn tail that recovery cut off, after keeping it aside with [`LogStore::quarantine`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// Where the cut bytes started in the log: the log's end after recovery.
    pub offset: u64,
    /// How many bytes were cut off, and kept.
    pub len: u64,
    /// Where they are kept: the quarantine file's path, or a memory store's name for them.
    pub location: String,
}

/// What [`recover`] read from a store.
pub(super) struct Recovered {
    /// Every transaction payload, in order.
    pub(super) records: Vec<LogRecord>,
    /// What recovery found.
    pub(super) report: RecoveryReport,
    /// The bytes read, which the payloads are slices of (`None` for a new log).
    pub(super) buffer: Option<Bytes>,
}

/// Recovers the log in `store`: a new log receives its header (step 1); otherwise the file
/// header is checked (step 2), the frames are read (step 3), and the damage that stopped the
/// scan, if any, is told apart: preallocated space, damage before the tail, or a torn tail.
pub(super) fn recover<S: LogStore>(
    store: &mut S,
    mode: RecoveryMode,
    max_frame: usize,
) -> Result<Recovered, LogError> {
    let name = store.describe();
    let data = store.read_all()?;
    if is_new_log(&data) {
        start_new_log(store)?;
        return Ok(Recovered {
            records: Vec::new(),
            report: RecoveryReport {
                end: FILE_HEADER_LEN as u64,
                ..RecoveryReport::default()
            },
            buffer: None,
        });
    }
    check_file_header(&data, &name)?;
    let scan = scan_frames(&data, max_frame, &name)?;
    let quarantine = match scan.damage {
        None => {
            store.resume_at(scan.end as u64)?;
            None
        }
        Some(damage) => handle_damage(store, &data, scan.end, damage, mode, &name)?,
    };
    let report = RecoveryReport {
        records: scan.records.len(),
        end: scan.end as u64,
        truncated: quarantine.as_ref().map_or(0, |q| q.len),
        quarantine,
    };
    Ok(Recovered {
        records: scan.records,
        report,
        buffer: Some(data),
    })
}

/// Step 1: a file that is empty or all zeros, or a header cut short, is a new log (its creation
/// was cut short before anything else was written).
fn is_new_log(data: &[u8]) -> bool {
    data.iter().all(|b| *b == 0)
        || (data.len() < FILE_HEADER_LEN && header_bytes().starts_with(data))
}

/// Writes the header of a new log, durably.
fn start_new_log<S: LogStore>(store: &mut S) -> Result<(), LogError> {
    store.truncate(0)?;
    store.append(&Bytes::copy_from_slice(&header_bytes()))?;
    store.sync()
}

/// Step 2: the file header. A wrong magic is [`LogError::NotALog`], unless intact frames follow
/// (the header itself was damaged); a checksum mismatch is corruption at offset 0, and a version
/// this build does not know is [`LogError::UnsupportedVersion`].
fn check_file_header(data: &[u8], name: &str) -> Result<(), LogError> {
    if data.len() < FILE_HEADER_LEN || data[..8] != FILE_MAGIC {
        if first_intact_frame(data, 0).is_some() {
            return Err(corrupt(
                name,
                0,
                "bad file magic before intact frames".into(),
            ));
        }
        return Err(LogError::NotALog {
            store: name.to_string(),
        });
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&data[..12]) {
        return Err(corrupt(name, 0, "file header checksum mismatch".into()));
    }
    if version > FORMAT_VERSION || version == 0 {
        return Err(LogError::UnsupportedVersion {
            store: name.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// The frames read by [`scan_frames`].
struct Scan {
    /// The intact frames before `end`.
    records: Vec<LogRecord>,
    /// Where the scan stopped: the end of the data, or the first frame that is not intact.
    end: usize,
    /// Why the frame at `end` is not intact, when the scan stopped before the end of the data.
    damage: Option<Damage>,
}

/// Why the scan stopped at a frame, and what of its header can be trusted.
struct Damage {
    reason: &'static str,
    /// The header, when its magic is right and its length within the limit: the frame then
    /// claims the bytes up to its declared end.
    header: Option<FrameHeader>,
}

/// Step 3: reads the frames in order, up to the first that is not intact. An intact frame over
/// the limit is [`LogError::FrameTooLarge`]: it was acknowledged, so it is refused, never cut.
fn scan_frames(data: &Bytes, max_frame: usize, name: &str) -> Result<Scan, LogError> {
    let mut records = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while pos < data.len() {
        match check_frame(data, pos, max_frame) {
            Ok(len) if len > max_frame => {
                return Err(LogError::FrameTooLarge {
                    store: name.to_string(),
                    offset: pos as u64,
                    len: len as u64,
                    max: max_frame,
                });
            }
            Ok(len) => {
                let start = pos + FRAME_HEADER_LEN;
                records.push(LogRecord {
                    offset: pos as u64,
                    payload: data.slice(start..start + len),
                });
                pos = start + len;
            }
            Err(damage) => {
                return Ok(Scan {
                    records,
                    end: pos,
                    damage: Some(damage),
                });
            }
        }
    }
    Ok(Scan {
        records,
        end: pos,
        damage: None,
    })
}

/// Checks the frame at `pos`: its payload length when it is intact (whatever the limit), or why
/// it is not.
fn check_frame(data: &[u8], pos: usize, max_frame: usize) -> Result<usize, Damage> {
    let h = header_at(data, pos).map_err(|reason| Damage {
        reason,
        header: None,
    })?;
    match payload_check(data, pos, h, h.len) {
        Ok(()) => Ok(h.len),
        // A damaged frame claiming more than the limit allows: its length is not trusted to
        // bound the search for a later frame.
        Err(_) if h.len > max_frame => Err(Damage {
            reason: "frame length over the limit",
            header: None,
        }),
        Err(reason) => Err(Damage {
            reason,
            header: Some(h),
        }),
    }
}

/// Step 3, after the scan stopped at the damaged frame at `pos`: zeros from `pos` on are
/// preallocated space (the clean end); acknowledged data after the damage is
/// [`LogError::Corrupt`]; anything else is a torn tail, refused in
/// [`RecoveryMode::AbsoluteConsistency`] and otherwise quarantined, then cut. Returns the
/// quarantined tail, if any.
fn handle_damage<S: LogStore>(
    store: &mut S,
    data: &[u8],
    pos: usize,
    damage: Damage,
    mode: RecoveryMode,
    name: &str,
) -> Result<Option<Quarantined>, LogError> {
    if data[pos..].iter().all(|b| *b == 0) {
        store.resume_at(pos as u64)?;
        return Ok(None);
    }
    if let Some(found) = data_after_damage(data, pos, damage.header) {
        return Err(damage_before_tail(name, pos, damage.reason, found));
    }
    if mode == RecoveryMode::AbsoluteConsistency {
        return Err(corrupt(name, pos, format!("{} (torn tail)", damage.reason)));
    }
    cut_torn_tail(store, data, pos, damage.reason, name)
}

/// The error for damage at `pos` that acknowledged data follows.
fn damage_before_tail(name: &str, pos: usize, reason: &str, found: After) -> LogError {
    let why = match found {
        After::Frame(next) => format!("{reason} (an intact frame follows at offset {next})"),
        After::LengthDamaged(next) => format!(
            "{reason}: the frame's length field is damaged (the frame is intact with a length \
             ending at offset {next}, where an intact frame starts)"
        ),
    };
    corrupt(name, pos, why)
}

/// Cuts the torn tail that starts at `pos`, once the store has kept a copy of it: bytes are
/// never destroyed, even those of a write that was never acknowledged. When the copy fails, the
/// open fails and the log is left as it is.
fn cut_torn_tail<S: LogStore>(
    store: &mut S,
    data: &[u8],
    pos: usize,
    reason: &str,
    name: &str,
) -> Result<Option<Quarantined>, LogError> {
    let tail = &data[pos..];
    let location = store.quarantine(pos as u64, tail)?;
    tracing::warn!(
        log = %name,
        offset = pos,
        bytes = tail.len(),
        %reason,
        quarantine = %location,
        "truncating a torn tail left by an interrupted write; the cut bytes are kept in {location}"
    );
    store.truncate(pos as u64)?;
    Ok(Some(Quarantined {
        offset: pos as u64,
        len: tail.len() as u64,
        location,
    }))
}

fn corrupt(name: &str, offset: usize, reason: String) -> LogError {
    LogError::Corrupt {
        store: name.to_string(),
        offset: offset as u64,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_MAX_FRAME, MemoryStore, RedoLog, encode_frames};
    use super::*;

    fn torn_log() -> (Vec<u8>, usize) {
        let mut bytes = header_bytes().to_vec();
        bytes.extend_from_slice(&encode_frames(&[b"kept"]));
        let torn_at = bytes.len();
        bytes.extend_from_slice(&encode_frames(&[b"torn away"])[..15]);
        (bytes, torn_at)
    }

    #[test]
    fn a_torn_tail_is_quarantined_then_cut() {
        let (bytes, torn_at) = torn_log();
        let store = MemoryStore::from_bytes(bytes.clone());
        let (_log, recs, report) =
            RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(recs.len(), 1);
        let kept = store.quarantined();
        let location = kept[0].0.clone();
        assert!(location.starts_with(&format!("memory:quarantine-{torn_at}-")));
        assert_eq!(
            report.quarantine,
            Some(Quarantined {
                offset: torn_at as u64,
                len: (bytes.len() - torn_at) as u64,
                location: location.clone(),
            })
        );
        assert_eq!(report.truncated, 15);
        assert_eq!(
            kept,
            vec![(location, Bytes::copy_from_slice(&bytes[torn_at..]))]
        );
        assert_eq!(store.bytes(), bytes[..torn_at]);
    }

    #[test]
    fn a_failed_quarantine_fails_the_open_and_leaves_the_log() {
        let (bytes, _) = torn_log();
        let store = MemoryStore::from_bytes(bytes.clone());
        // The read succeeds; the quarantine, the next I/O call, fails.
        store.fail_after(1);
        let opened = RedoLog::open(store.clone(), RecoveryMode::default(), DEFAULT_MAX_FRAME);
        assert!(matches!(opened, Err(LogError::Io { .. })));
        assert_eq!(store.bytes(), bytes, "the log is untouched");
        assert!(store.quarantined().is_empty());
    }

    #[test]
    fn nothing_is_quarantined_without_a_cut() {
        let (bytes, torn_at) = torn_log();
        let mut padded = bytes[..torn_at].to_vec();
        padded.resize(torn_at + 100, 0);
        for (data, mode) in [
            (padded, RecoveryMode::default()),
            (bytes, RecoveryMode::AbsoluteConsistency),
        ] {
            let store = MemoryStore::from_bytes(data);
            if let Ok((_, _, report)) = RedoLog::open(store.clone(), mode, DEFAULT_MAX_FRAME) {
                assert_eq!((report.truncated, report.quarantine), (0, None));
            }
            assert!(store.quarantined().is_empty());
        }
    }
}
