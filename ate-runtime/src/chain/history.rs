//! Where each committed transaction lies: the index that reads a chain from a position
//! without reading its whole log.
//!
//! The log's bytes are already in memory: the view keeps the buffer the log was read into at
//! open and the buffer of every group commit since (record bodies are slices of them). The
//! history holds a second reference to those same buffers (`chunks`, each with the log offset
//! its first byte has) and one log offset per transaction, the offset of its frame (8 bytes a
//! transaction, and a chunk per group commit). A transaction's payload is then a slice of its
//! chunk, found by a binary search and the length in its frame header: no copy, no I/O.
//!
//! Offsets are the log's own byte offsets, so a store that no longer keeps every buffer in
//! memory can read a frame from the store at the same offset instead.

use bytes::Bytes;

use crate::log::{FRAME_HEADER_LEN, LogRecord};

use super::replay::Replayed;

/// One buffer of frames and the log offset of its first byte.
#[derive(Debug)]
struct Chunk {
    at: u64,
    bytes: Bytes,
}

/// The committed transactions' frames, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct History {
    chunks: Vec<Chunk>,
    /// A compacted log's checkpoint: the numbers up to it are those of `kept` only.
    upto: u64,
    /// That checkpoint's payload.
    checkpoint: Option<Bytes>,
    /// The transactions numbered up to `upto` the log holds: (number, frame offset), ascending.
    kept: Vec<(u64, u64)>,
    /// The log offset of the frame of transaction `upto + i + 1`.
    frames: Vec<u64>,
}

impl History {
    /// The history of a log just replayed: `records` are slices of `buffer`, the bytes read
    /// from offset 0, and `replayed` tells how they are numbered.
    pub fn replayed(buffer: Option<Bytes>, records: &[LogRecord], replayed: &Replayed) -> Self {
        let mut history = History {
            upto: replayed.upto,
            ..History::default()
        };
        if let Some(bytes) = buffer {
            history.chunks.push(Chunk { at: 0, bytes });
            history.kept = replayed.kept.clone();
            if replayed.checkpoint {
                history.checkpoint = records.first().map(|r| r.payload.clone());
            }
            // The checkpoint's frame (if any) and the kept ones come first.
            let skip = usize::from(replayed.checkpoint) + replayed.kept.len();
            history.frames = records.iter().skip(skip).map(|r| r.offset).collect();
        }
        history
    }

    /// Records a group commit: `buffer`, appended at log offset `at`, holds the frames of the
    /// next transactions, back to back, of the lengths `lens` (headers included).
    pub fn append_group(&mut self, at: u64, buffer: Bytes, lens: impl Iterator<Item = usize>) {
        let mut next = at;
        self.frames.extend(lens.map(|len| {
            let frame = next;
            next += len as u64;
            frame
        }));
        self.chunks.push(Chunk { at, bytes: buffer });
    }

    /// The last number the checkpoint heading a compacted log judged (0: never compacted).
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The last transaction numbered `seq` or less that the history holds (0: none): `seq`
    /// itself, unless a compaction dropped it.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub fn last_held(&self, seq: u64) -> u64 {
        if seq > self.upto {
            return seq.min(self.upto + self.frames.len() as u64);
        }
        let at = self.kept.partition_point(|(s, _)| *s <= seq);
        at.checked_sub(1).map_or(0, |i| self.kept[i].0)
    }

    /// The payload of the checkpoint heading a compacted log (`None`: never compacted).
    pub fn checkpoint(&self) -> Option<Bytes> {
        self.checkpoint.clone()
    }

    /// The sequence number of the last transaction recorded (0 for none).
    #[cfg(test)]
    pub fn last_seq(&self) -> u64 {
        self.upto + self.frames.len() as u64
    }

    /// The payload of transaction `seq`, as stored in its frame (`None` when it is not
    /// recorded).
    pub fn payload(&self, seq: u64) -> Option<Bytes> {
        let at = if seq <= self.upto {
            let i = self.kept.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
            self.kept[i].1
        } else {
            *self
                .frames
                .get(usize::try_from(seq - self.upto - 1).ok()?)?
        };
        let i = self.chunks.partition_point(|c| c.at <= at).checked_sub(1)?;
        let chunk = &self.chunks[i];
        let start = usize::try_from(at - chunk.at).ok()?;
        let header = chunk
            .bytes
            .get(start..start.checked_add(FRAME_HEADER_LEN)?)?;
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let payload = start + FRAME_HEADER_LEN;
        let end = payload.checked_add(len)?;
        (end <= chunk.bytes.len()).then(|| chunk.bytes.slice(payload..end))
    }

    /// The payloads from `from` on, in order, up to `max_bytes` in all (at least one when
    /// `from` is recorded, however large).
    pub fn payloads_from(&self, from: u64, max_bytes: usize) -> Vec<(u64, Bytes)> {
        let mut out = Vec::new();
        let mut total = 0usize;
        // The kept ones of a compacted part first, then every number after it.
        let first_kept = self.kept.partition_point(|(s, _)| *s < from);
        let kept = self.kept[first_kept..].iter().map(|(s, _)| *s);
        let mut seq = from.max(self.upto + 1);
        for s in kept {
            let Some(payload) = self.payload(s) else {
                return out;
            };
            total = total.saturating_add(payload.len());
            if total > max_bytes && !out.is_empty() {
                return out;
            }
            out.push((s, payload));
        }
        while let Some(payload) = self.payload(seq) {
            total = total.saturating_add(payload.len());
            if total > max_bytes && !out.is_empty() {
                break;
            }
            out.push((seq, payload));
            seq += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{FILE_HEADER_LEN, encode_frames};

    #[test]
    fn payloads_are_found_in_the_replayed_buffer_and_in_later_groups() {
        let replayed = encode_frames(&[b"one", b"two!"]);
        let mut file = vec![0u8; FILE_HEADER_LEN];
        file.extend_from_slice(&replayed);
        let file = Bytes::from(file);
        let records = vec![
            LogRecord {
                offset: FILE_HEADER_LEN as u64,
                payload: file.slice(FILE_HEADER_LEN + 12..FILE_HEADER_LEN + 15),
            },
            LogRecord {
                offset: (FILE_HEADER_LEN + 15) as u64,
                payload: file.slice(FILE_HEADER_LEN + 27..FILE_HEADER_LEN + 31),
            },
        ];
        let mut h = History::replayed(Some(file.clone()), &records, &Replayed::default());
        let group = encode_frames(&[b"three", b"", b"five"]).freeze();
        h.append_group(file.len() as u64, group, [17, 12, 16].into_iter());
        assert_eq!(h.last_seq(), 5);
        let all: Vec<Vec<u8>> = h
            .payloads_from(0, usize::MAX)
            .into_iter()
            .map(|(_, p)| p.to_vec())
            .collect();
        assert_eq!(all, [&b"one"[..], b"two!", b"three", b"", b"five"]);
        assert_eq!(h.payloads_from(4, 0).len(), 1, "one at least");
        assert_eq!(h.payloads_from(2, 9).len(), 3, "an empty payload fits");
        assert_eq!(h.payloads_from(2, 8).len(), 1);
        assert!(h.payloads_from(6, usize::MAX).is_empty());
        assert!(h.payload(0).is_none());
        assert!(h.payload(u64::MAX).is_none());
    }
}
