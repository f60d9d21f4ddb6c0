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
//! acknowledged): in [`RecoveryMode::TolerateCorruptTail`] it is truncated and logged, in
//! [`RecoveryMode::AbsoluteConsistency`] it is an error.

use bytes::{BufMut, Bytes, BytesMut};

use super::{LogError, LogStore};

/// The file magic.
pub const FILE_MAGIC: [u8; 8] = *b"ATE-LOG\0";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;
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

/// A frame header whose magic is right.
#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    /// The declared payload length.
    len: usize,
    /// The declared checksum.
    crc: u32,
}

/// Reads the frame header at `pos`.
fn header_at(data: &[u8], pos: usize) -> Result<FrameHeader, &'static str> {
    let Some(head) = pos
        .checked_add(FRAME_HEADER_LEN)
        .and_then(|end| data.get(pos..end))
    else {
        return Err("incomplete frame header");
    };
    if head[..4] != FRAME_MAGIC {
        return Err("bad frame magic");
    }
    Ok(FrameHeader {
        len: u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize,
        crc: u32::from_le_bytes([head[8], head[9], head[10], head[11]]),
    })
}

/// Whether the frame at `pos` with header `h`, read as holding `len` payload bytes, is whole and
/// passes its checksum. (`len` differs from `h.len` only when testing whether the length field
/// itself was damaged.)
fn payload_check(data: &[u8], pos: usize, h: FrameHeader, len: usize) -> Result<(), &'static str> {
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
        return Err("frame runs past the end of the log");
    };
    let len_bytes = u32::try_from(len)
        .map_err(|_| "frame length out of range")?
        .to_le_bytes();
    let actual = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload);
    if actual != h.crc {
        return Err("frame checksum mismatch");
    }
    Ok(())
}

/// Checks the frame at `pos` without regard to the configured limit; returns its payload length
/// when the frame is whole and intact.
fn intact_frame_at(data: &[u8], pos: usize) -> Result<usize, &'static str> {
    let h = header_at(data, pos)?;
    payload_check(data, pos, h, h.len)?;
    Ok(h.len)
}

/// Why the scan stopped at a frame, and where the search for a later intact frame starts.
struct Damage {
    reason: &'static str,
    /// The header, when its magic is right and its length within the limit: the frame then
    /// claims the bytes up to its declared end.
    header: Option<FrameHeader>,
}

/// The header of the frame holding `payload`.
fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&FRAME_MAGIC);
    h[4..8].copy_from_slice(&len);
    h[8..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes payloads as frames, back to back.
pub fn encode_frames(payloads: &[&[u8]]) -> BytesMut {
    let total = payloads
        .iter()
        .map(|p| FRAME_HEADER_LEN + p.len())
        .sum::<usize>();
    let mut out = BytesMut::with_capacity(total);
    for p in payloads {
        out.put_slice(&frame_header(p));
        out.put_slice(p);
    }
    out
}

/// Makes `buf` one frame, as [`encode_frames`] would encode its payload: the payload is
/// everything after its first [`FRAME_HEADER_LEN`] bytes, which receive the frame header. A
/// writer that keeps that room ahead of the payload it builds has it written without a copy
/// ([`RedoLog::append_frames`]). A buffer shorter than a header is left as it is.
pub fn frame_in_place(buf: &mut [u8]) {
    if let Some((head, payload)) = buf.split_at_mut_checked(FRAME_HEADER_LEN) {
        head.copy_from_slice(&frame_header(payload));
    }
}

impl<S: LogStore> RedoLog<S> {
    /// Opens a log over `store`: writes the header of a new log, or validates an existing one and
    /// returns every transaction payload in order. `max_frame` bounds one payload (a frame's
    /// length field is 32 bits, so a larger value means `u32::MAX`).
    pub fn open(
        mut store: S,
        mode: RecoveryMode,
        max_frame: usize,
    ) -> Result<(Self, Vec<LogRecord>, RecoveryReport), LogError> {
        let max_frame = max_frame.min(u32::MAX as usize);
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
            if next_intact_frame(&data, 0).is_some() {
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
            let checked = header_at(&data, pos)
                .map_err(|reason| Damage {
                    reason,
                    header: None,
                })
                .and_then(|h| match payload_check(&data, pos, h, h.len) {
                    Ok(()) => Ok(h.len),
                    // A damaged frame claiming more than the limit allows: its length is not
                    // trusted to bound the search for a later frame.
                    Err(_) if h.len > max_frame => Err(Damage {
                        reason: "frame length over the limit",
                        header: None,
                    }),
                    Err(reason) => Err(Damage {
                        reason,
                        header: Some(h),
                    }),
                });
            match checked {
                // An intact frame over the limit was acknowledged when the limit was larger: it
                // is refused, never cut as if it were a torn write.
                Ok(len) if len > max_frame => {
                    return Err(LogError::FrameTooLarge {
                        store: name,
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
                    failure = Some(damage);
                    break;
                }
            }
        }
        let mut report = RecoveryReport {
            records: records.len(),
            end: pos as u64,
            truncated: 0,
        };
        if let Some(Damage { reason, header }) = failure {
            let tail = &data[pos..];
            if tail.iter().all(|b| *b == 0) {
                store.resume_at(pos as u64)?;
            } else if let Some(found) = data_after_damage(&data, pos, header) {
                return Err(LogError::Corrupt {
                    store: name,
                    offset: pos as u64,
                    reason: match found {
                        After::Frame(next) => {
                            format!("{reason} (an intact frame follows at offset {next})")
                        }
                        After::LengthDamaged(next) => format!(
                            "{reason}: the frame's length field is damaged (the frame is intact \
                             with a length ending at offset {next}, where an intact frame starts)"
                        ),
                    },
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
        self.check_sizes(payloads.iter().map(|p| p.len()))?;
        let frames = encode_frames(payloads).freeze();
        self.write_frames(frames, payloads.iter().map(|p| FRAME_HEADER_LEN + p.len()))
    }

    /// Appends frames made by [`frame_in_place`] (not yet durable), as [`RedoLog::append`]
    /// appends their payloads: one frame is written from its own buffer, without a copy;
    /// several are copied into one buffer and written together. Returns the same.
    pub fn append_frames(&mut self, frames: &[Bytes]) -> Result<Appended, LogError> {
        self.check()?;
        self.check_sizes(
            frames
                .iter()
                .map(|f| f.len().saturating_sub(FRAME_HEADER_LEN)),
        )?;
        debug_assert!(
            frames.iter().all(|f| f.len() >= FRAME_HEADER_LEN
                && f[..FRAME_HEADER_LEN] == frame_header(&f[FRAME_HEADER_LEN..])),
            "frames not made by frame_in_place"
        );
        let buffer = match frames {
            [one] => one.clone(),
            _ => {
                let mut all = BytesMut::with_capacity(frames.iter().map(|f| f.len()).sum());
                for f in frames {
                    all.put_slice(f);
                }
                all.freeze()
            }
        };
        self.write_frames(buffer, frames.iter().map(|f| f.len()))
    }

    /// Refuses the append when a payload is beyond the limit.
    fn check_sizes(&self, mut lens: impl Iterator<Item = usize>) -> Result<(), LogError> {
        match lens.find(|len| *len > self.max_frame) {
            Some(len) => Err(LogError::TooLarge {
                len,
                max: self.max_frame,
            }),
            None => Ok(()),
        }
    }

    /// Writes `frames`, frames of the sizes `sizes` back to back; returns them with each
    /// payload as a slice.
    fn write_frames(
        &mut self,
        frames: Bytes,
        sizes: impl Iterator<Item = usize>,
    ) -> Result<Appended, LogError> {
        if let Err(e) = self.store.append(&frames) {
            self.poisoned = true;
            return Err(e);
        }
        let mut payloads = Vec::with_capacity(sizes.size_hint().0);
        let mut at = 0;
        for size in sizes {
            payloads.push(frames.slice(at + FRAME_HEADER_LEN..at + size));
            at += size;
        }
        Ok(Appended {
            buffer: frames,
            payloads,
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

    /// The largest payload (transaction) this log accepts, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
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

/// What [`data_after_damage`] found after a damaged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// An intact frame starts at this offset, at or after the damaged frame's declared end (or
    /// anywhere after it when its header is not trusted).
    Frame(usize),
    /// The damaged frame is intact once its length field is read as ending at this offset,
    /// where an intact frame starts: the length field was damaged, and acknowledged frames
    /// follow.
    LengthDamaged(usize),
}

/// Looks for acknowledged data after the frame at `pos` that failed its checks.
///
/// When the damaged frame's header is trusted (`header`: right magic, length within the limit),
/// the bytes up to its declared end are its own payload; a torn write leaves them partly
/// written, and frame-looking bytes among them (a payload may hold anything, even a log) are not
/// later frames. The search for a later intact frame therefore starts at the declared end. One
/// case inside the payload still counts: an intact frame at an offset `q` where the damaged frame
/// itself would be intact with its length read as ending at `q`. That is a damaged length field
/// followed by acknowledged frames, not a torn write.
///
/// Without a trusted header the search starts right after `pos`.
fn data_after_damage(data: &[u8], pos: usize, header: Option<FrameHeader>) -> Option<After> {
    let Some(h) = header else {
        return next_intact_frame(data, pos + 1).map(After::Frame);
    };
    let payload = pos + FRAME_HEADER_LEN;
    let declared_end = payload.saturating_add(h.len);
    let mut at = payload;
    while let Some(q) = next_intact_frame(data, at) {
        if q >= declared_end {
            return Some(After::Frame(q));
        }
        if payload_check(data, pos, h, q - payload).is_ok() {
            return Some(After::LengthDamaged(q));
        }
        at = q + 1;
    }
    None
}

/// The first offset at or after `from` where an intact frame starts (whatever its length: an
/// intact frame over the configured limit is still acknowledged data).
fn next_intact_frame(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + FRAME_HEADER_LEN <= data.len() {
        let rel = data[at..]
            .windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)?;
        let pos = at + rel;
        if intact_frame_at(data, pos).is_ok() {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}
