//! Framing and recovery of the redo log (the byte layout is in `docs/FORMAT.md`).
//!
//! ```text
//! file   := header frame*  [zero padding]
//! header := magic "ATE-LOG\0" (8) | version u32 LE | crc32c(magic ‖ version) u32 LE     16 bytes
//! frame  := magic "ATEf" (4) | len u32 LE | crc32c(len ‖ payload) u32 LE | payload[len]
//! ```
//!
//! One frame holds one transaction, so a transaction is durable whole or not at all.
//!
//! Recovery scans frames from the header. The first frame that fails its checks ends the scan at
//! offset `p`. If every byte after `p` is zero, `p` is the clean end of the log (the rest is
//! preallocated space). Otherwise, if any well-formed frame starts after `p`, the damage is not
//! at the tail: that is [`LogError::Corrupt`] naming `p`, and nothing is skipped. If no frame
//! follows, the tail is torn (a write cut short by a crash, never acknowledged): in
//! [`RecoveryMode::TolerateCorruptTail`] it is truncated and logged, in
//! [`RecoveryMode::AbsoluteConsistency`] it is an error.

use bytes::{BufMut, Bytes, BytesMut};

use super::{LogError, LogStore};

/// The file magic.
pub const FILE_MAGIC: [u8; 8] = *b"ATE-LOG\0";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the file header.
pub const FILE_HEADER_LEN: usize = 16;
/// The frame magic.
pub const FRAME_MAGIC: [u8; 4] = *b"ATEf";
/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = 12;
/// Default upper bound on one frame's payload (one transaction).
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;

/// What to do with a damaged tail on open (names after RocksDB's WAL recovery modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Truncate a torn last frame (a crash during a write that was never acknowledged) and log a
    /// warning; damage anywhere else is an error.
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
pub struct RecoveryReport {
    /// Frames read.
    pub records: usize,
    /// The logical end of the log after recovery.
    pub end: u64,
    /// Bytes of a torn tail that were cut off (0 when the log closed cleanly).
    pub truncated: u64,
}

/// A redo log: frames over a [`LogStore`], with recovery on open and poisoning on failure.
#[derive(Debug)]
pub struct RedoLog<S: LogStore> {
    store: S,
    max_frame: usize,
    poisoned: bool,
    /// The bytes read at open, until [`RedoLog::take_buffer`] collects them.
    buffer: Option<Bytes>,
}

/// What [`RedoLog::append`] wrote.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The frames as written (one buffer).
    pub buffer: Bytes,
    /// Each payload, as a slice of `buffer`.
    pub payloads: Vec<Bytes>,
}

fn header_bytes() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the frame at `pos`; returns its payload length when the frame is whole and intact.
fn frame_at(data: &[u8], pos: usize, max_frame: usize) -> Result<usize, &'static str> {
    let Some(head) = data.get(pos..pos + FRAME_HEADER_LEN) else {
        return Err("incomplete frame header");
    };
    if head[..4] != FRAME_MAGIC {
        return Err("bad frame magic");
    }
    let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
    if len > max_frame {
        return Err("frame length over the limit");
    }
    let crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = data.get(start..start + len) else {
        return Err("frame runs past the end of the log");
    };
    let actual = crc32c::crc32c_append(crc32c::crc32c(&head[4..8]), payload);
    if actual != crc {
        return Err("frame checksum mismatch");
    }
    Ok(len)
}

/// Encodes payloads as frames, back to back.
pub fn encode_frames(payloads: &[&[u8]]) -> BytesMut {
    let total = payloads
        .iter()
        .map(|p| FRAME_HEADER_LEN + p.len())
        .sum::<usize>();
    let mut out = BytesMut::with_capacity(total);
    for p in payloads {
        let len = (p.len() as u32).to_le_bytes();
        out.put_slice(&FRAME_MAGIC);
        out.put_slice(&len);
        out.put_u32_le(crc32c::crc32c_append(crc32c::crc32c(&len), p));
        out.put_slice(p);
    }
    out
}

impl<S: LogStore> RedoLog<S> {
    /// Opens a log over `store`: writes the header of a new log, or validates an existing one and
    /// returns every transaction payload in order.
    pub fn open(
        mut store: S,
        mode: RecoveryMode,
        max_frame: usize,
    ) -> Result<(Self, Vec<LogRecord>, RecoveryReport), LogError> {
        let name = store.describe();
        let data = store.read_all()?;
        let expected = header_bytes();
        let fresh = data.iter().all(|b| *b == 0)
            || (data.len() < FILE_HEADER_LEN && expected.starts_with(&data));
        if fresh {
            // An empty file, or one whose creation was cut short before anything was written.
            store.truncate(0)?;
            store.append(&Bytes::copy_from_slice(&expected))?;
            store.sync()?;
            let report = RecoveryReport {
                records: 0,
                end: FILE_HEADER_LEN as u64,
                truncated: 0,
            };
            let log = RedoLog {
                store,
                max_frame,
                poisoned: false,
                buffer: None,
            };
            return Ok((log, Vec::new(), report));
        }
        if data.len() < FILE_HEADER_LEN || data[..8] != FILE_MAGIC {
            if next_valid_frame(&data, 0, max_frame).is_some() {
                return Err(LogError::Corrupt {
                    store: name,
                    offset: 0,
                    reason: "bad file magic before intact frames".into(),
                });
            }
            return Err(LogError::NotALog { store: name });
        }
        let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&data[..12]) {
            return Err(LogError::Corrupt {
                store: name,
                offset: 0,
                reason: "file header checksum mismatch".into(),
            });
        }
        if version > FORMAT_VERSION || version == 0 {
            return Err(LogError::UnsupportedVersion {
                store: name,
                found: version,
                supported: FORMAT_VERSION,
            });
        }

        let mut records = Vec::new();
        let mut pos = FILE_HEADER_LEN;
        let mut failure = None;
        while pos < data.len() {
            match frame_at(&data, pos, max_frame) {
                Ok(len) => {
                    let start = pos + FRAME_HEADER_LEN;
                    records.push(LogRecord {
                        offset: pos as u64,
                        payload: data.slice(start..start + len),
                    });
                    pos = start + len;
                }
                Err(reason) => {
                    failure = Some(reason);
                    break;
                }
            }
        }
        let mut report = RecoveryReport {
            records: records.len(),
            end: pos as u64,
            truncated: 0,
        };
        if let Some(reason) = failure {
            let tail = &data[pos..];
            if tail.iter().all(|b| *b == 0) {
                store.resume_at(pos as u64)?;
            } else if let Some(next) = next_valid_frame(&data, pos + 1, max_frame) {
                return Err(LogError::Corrupt {
                    store: name,
                    offset: pos as u64,
                    reason: format!("{reason} (an intact frame follows at offset {next})"),
                });
            } else if mode == RecoveryMode::AbsoluteConsistency {
                return Err(LogError::Corrupt {
                    store: name,
                    offset: pos as u64,
                    reason: format!("{reason} (torn tail)"),
                });
            } else {
                report.truncated = (data.len() - pos) as u64;
                tracing::warn!(
                    log = %name,
                    offset = pos,
                    bytes = report.truncated,
                    %reason,
                    "truncating a torn tail left by an interrupted write"
                );
                store.truncate(pos as u64)?;
            }
        } else {
            store.resume_at(pos as u64)?;
        }
        let log = RedoLog {
            store,
            max_frame,
            poisoned: false,
            buffer: Some(data),
        };
        Ok((log, records, report))
    }

    fn check(&self) -> Result<(), LogError> {
        if self.poisoned {
            Err(LogError::Poisoned {
                store: self.store.describe(),
            })
        } else {
            Ok(())
        }
    }

    /// The whole buffer the log was read into at open (the records' payloads are slices of it),
    /// once; `None` for a new log or after the first call.
    pub fn take_buffer(&mut self) -> Option<Bytes> {
        self.buffer.take()
    }

    /// Appends transaction payloads (not yet durable). Returns the written buffer and each
    /// payload as a slice of it, which the caller can keep without a copy.
    pub fn append(&mut self, payloads: &[&[u8]]) -> Result<Appended, LogError> {
        self.check()?;
        for p in payloads {
            if p.len() > self.max_frame {
                return Err(LogError::TooLarge {
                    len: p.len(),
                    max: self.max_frame,
                });
            }
        }
        let frames = encode_frames(payloads).freeze();
        if let Err(e) = self.store.append(&frames) {
            self.poisoned = true;
            return Err(e);
        }
        let mut out = Vec::with_capacity(payloads.len());
        let mut at = 0;
        for p in payloads {
            let start = at + FRAME_HEADER_LEN;
            out.push(frames.slice(start..start + p.len()));
            at = start + p.len();
        }
        Ok(Appended {
            buffer: frames,
            payloads: out,
        })
    }

    /// Makes every append durable. A failure poisons the log: the data may or may not be on
    /// disk, and a retried fsync could falsely report success, so only a reopen recovers.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.check()?;
        if let Err(e) = self.store.sync() {
            self.poisoned = true;
            return Err(e);
        }
        Ok(())
    }

    /// Whether an earlier failure poisoned this handle.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The logical end of the log.
    pub fn len(&self) -> u64 {
        self.store.len()
    }

    /// Whether the log holds no frame yet (only its header).
    pub fn is_empty(&self) -> bool {
        self.store.len() <= FILE_HEADER_LEN as u64
    }

    /// The store's name.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// The store, for inspection.
    pub fn store(&self) -> &S {
        &self.store
    }
}

fn next_valid_frame(data: &[u8], from: usize, max_frame: usize) -> Option<usize> {
    let mut at = from;
    while at + FRAME_HEADER_LEN <= data.len() {
        let rel = data[at..]
            .windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)?;
        let pos = at + rel;
        if frame_at(data, pos, max_frame).is_ok() {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}
