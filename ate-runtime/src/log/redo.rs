//! The redo log: frames over a [`LogStore`], recovered on open, poisoned by a failed write.
//!
//! The byte layout is in `frame.rs` and `docs/FORMAT.md`; what an open does with the bytes it
//! finds is in `recovery.rs`.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{FILE_HEADER_LEN, FRAME_HEADER_LEN, encode_frames, frame_header};
use super::recovery::{LogRecord, Recovered, RecoveryMode, RecoveryReport, recover};
use super::{LogError, LogStore};

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

impl<S: LogStore> RedoLog<S> {
    /// Opens a log over `store`: writes the header of a new log, or recovers an existing one
    /// (`docs/FORMAT.md`, "Recovery on open") and returns every transaction payload in order.
    /// `max_frame` bounds one payload (a frame's length field is 32 bits, so a larger value
    /// means `u32::MAX`).
    ///
    /// # Errors
    /// The store's I/O errors, and the [`LogError`] of a log that recovery refuses.
    pub fn open(
        mut store: S,
        mode: RecoveryMode,
        max_frame: usize,
    ) -> Result<(Self, Vec<LogRecord>, RecoveryReport), LogError> {
        let max_frame = max_frame.min(u32::MAX as usize);
        let Recovered {
            records,
            report,
            buffer,
        } = recover(&mut store, mode, max_frame)?;
        let log = RedoLog {
            store,
            max_frame,
            poisoned: false,
            buffer,
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

    /// Appends frames made by [`frame_in_place`](super::frame_in_place) (not yet durable), as
    /// [`RedoLog::append`] appends their payloads: one frame is written from its own buffer,
    /// without a copy; several are copied into one buffer and written together. Returns the
    /// same.
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

    /// Replaces the whole log with `contents` (its header and frames), crash-safely (see
    /// [`LogStore::replace`]). On an error the log holds its old bytes and goes on.
    pub fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        self.check()?;
        self.store.replace(contents)
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
