//! The search for acknowledged data after a damaged frame, in one pass over the data.
//!
//! A frame is intact when its checksum over (length ‖ payload) matches. Checking every
//! frame-looking header after the damage over its whole declared payload would cost the sum of
//! their lengths: quadratic in the size of a file full of frame magics that each claim a long
//! payload. Instead, [`IntactFrames::after`] finds the candidate headers, checksums the data once
//! while it records the running CRC-32C at every offset a check needs (each candidate's start,
//! payload start and declared end), and derives each candidate's checksum from two of those
//! prefix checksums (`crc.rs`). For `n` bytes and `k` candidates that is `O(n + k·log n)`.

use super::crc;
use super::frame::{FRAME_HEADER_LEN, FRAME_MAGIC, FrameHeader, header_at};

/// What [`data_after_damage`] found after a damaged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
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
/// followed by acknowledged frames, not a torn write. The first offset that is either is the
/// answer.
///
/// Without a trusted header the search starts right after `pos`.
pub(super) fn data_after_damage(
    data: &[u8],
    pos: usize,
    header: Option<FrameHeader>,
) -> Option<After> {
    let Some(h) = header else {
        return first_intact_frame(data, pos + 1).map(After::Frame);
    };
    let payload = pos + FRAME_HEADER_LEN;
    let declared_end = payload.saturating_add(h.len);
    let later = IntactFrames::after(data, payload);
    later.starts.iter().find_map(|&q| {
        if q >= declared_end {
            Some(After::Frame(q))
        } else if later.prefixes.frame_crc(payload, q) == Some(h.crc) {
            Some(After::LengthDamaged(q))
        } else {
            None
        }
    })
}

/// The first offset at or after `from` where an intact frame starts (whatever its length: an
/// intact frame over the configured limit is still acknowledged data).
pub(super) fn first_intact_frame(data: &[u8], from: usize) -> Option<usize> {
    IntactFrames::after(data, from).starts.first().copied()
}

/// The intact frames that start at or after an offset.
struct IntactFrames {
    /// Where they start, in order.
    starts: Vec<usize>,
    /// Prefix checksums at the search's start and at each candidate's start, payload and end.
    prefixes: PrefixCrcs,
}

impl IntactFrames {
    /// Finds every intact frame that starts at or after `from`, in one pass over the data.
    fn after(data: &[u8], from: usize) -> Self {
        let candidates = candidates(data, from);
        let mut offsets = Vec::with_capacity(1 + 3 * candidates.len());
        offsets.push(from);
        for c in &candidates {
            offsets.extend([c.start, c.payload(), c.end()]);
        }
        let prefixes = PrefixCrcs::new(data, offsets);
        let starts = candidates
            .iter()
            .filter(|c| prefixes.frame_crc(c.payload(), c.end()) == Some(c.header.crc))
            .map(|c| c.start)
            .collect();
        IntactFrames { starts, prefixes }
    }
}

/// A frame header whose declared payload lies within the data: the frame may be intact.
struct Candidate {
    start: usize,
    header: FrameHeader,
}

impl Candidate {
    fn payload(&self) -> usize {
        self.start + FRAME_HEADER_LEN
    }

    fn end(&self) -> usize {
        self.payload() + self.header.len
    }
}

/// Every frame header at or after `from` whose declared payload ends within the data.
fn candidates(data: &[u8], from: usize) -> Vec<Candidate> {
    let mut found = Vec::new();
    let mut at = from;
    while let Some(rel) = data.get(at..).and_then(|rest| {
        rest.windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)
    }) {
        let start = at + rel;
        if let Ok(header) = header_at(data, start) {
            let payload = start + FRAME_HEADER_LEN;
            if payload
                .checked_add(header.len)
                .is_some_and(|end| end <= data.len())
            {
                found.push(Candidate { start, header });
            }
        }
        at = start + 1;
    }
    found
}

/// The checksums of the prefixes of the data that end at chosen offsets.
struct PrefixCrcs {
    /// The offsets, sorted, without duplicates.
    offsets: Vec<usize>,
    /// `crcs[i]` is the CRC-32C of `data[..offsets[i]]`.
    crcs: Vec<u32>,
}

impl PrefixCrcs {
    /// Checksums `data` once, up to the largest of `offsets` (each at most `data.len()`).
    fn new(data: &[u8], mut offsets: Vec<usize>) -> Self {
        offsets.sort_unstable();
        offsets.dedup();
        let mut crcs = Vec::with_capacity(offsets.len());
        let (mut crc, mut done) = (0, 0);
        for &at in &offsets {
            crc = crc::append(crc, &data[done..at]);
            crcs.push(crc);
            done = at;
        }
        PrefixCrcs { offsets, crcs }
    }

    /// The checksum of `data[..at]`, for a recorded offset `at`.
    fn at(&self, at: usize) -> u32 {
        let i = self.offsets.binary_search(&at).expect("a recorded offset");
        self.crcs[i]
    }

    /// The checksum a frame holding `data[start..end]` as its payload carries:
    /// CRC-32C of (length ‖ payload), for recorded offsets. `None` when the length does not fit
    /// a frame's 32-bit length field.
    fn frame_crc(&self, start: usize, end: usize) -> Option<u32> {
        let len = u32::try_from(end - start).ok()?;
        let len_crc = crc32c::crc32c(&len.to_le_bytes());
        // crc(len ‖ payload) = shift(crc(len), |payload|) ^ crc(payload), and
        // crc(payload) = shift(crc(data[..start]), |payload|) ^ crc(data[..end]).
        Some(crc::shift(len_crc ^ self.at(start), u64::from(len)) ^ self.at(end))
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{FILE_HEADER_LEN, encode_frames, header_bytes, payload_check};
    use super::super::{LogError, MemoryStore, RecoveryMode, RedoLog};
    use super::*;

    /// Whether an intact frame starts at `pos`, whatever its length.
    fn intact_frame_at(data: &[u8], pos: usize) -> bool {
        header_at(data, pos).is_ok_and(|h| payload_check(data, pos, h, h.len).is_ok())
    }

    /// The search as it was written first: every candidate checked over its whole payload.
    /// Quadratic on a crafted file, but plainly right; the one-pass search must agree with it.
    fn reference(data: &[u8], pos: usize, header: Option<FrameHeader>) -> Option<After> {
        let next = |from: usize| {
            (from..data.len().saturating_sub(FRAME_HEADER_LEN - 1))
                .find(|p| intact_frame_at(data, *p))
        };
        let Some(h) = header else {
            return next(pos + 1).map(After::Frame);
        };
        let payload = pos + FRAME_HEADER_LEN;
        let declared_end = payload.saturating_add(h.len);
        let mut at = payload;
        while let Some(q) = next(at) {
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

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Bytes made of intact frames, frames with a flipped byte or a changed length, bare
    /// magics with random lengths, and random bytes.
    fn messy_bytes(rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(12) {
            let payload: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            let mut frame = encode_frames(&[&payload]).to_vec();
            match rng.below(5) {
                0 => {
                    let i = rng.below(frame.len());
                    frame[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let len = rng.below(80) as u32;
                    frame[4..8].copy_from_slice(&len.to_le_bytes());
                }
                2 => frame.truncate(4 + rng.below(frame.len() - 4)),
                3 => frame = (0..rng.below(20)).map(|_| rng.next() as u8).collect(),
                _ => {}
            }
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn the_one_pass_search_agrees_with_checking_every_candidate() {
        let mut rng = Rng(0x5EED_0FA7);
        let mut found = [0usize; 3];
        for _ in 0..3000 {
            let data = messy_bytes(&mut rng);
            if data.is_empty() {
                continue;
            }
            // Half the time at a frame magic, where the damaged frame's header can be trusted.
            let magics: Vec<usize> = (0..data.len())
                .filter(|p| data[*p..].starts_with(&FRAME_MAGIC))
                .collect();
            let pos = match magics.len() {
                0 => rng.below(data.len()),
                n if rng.below(2) == 0 => magics[rng.below(n)],
                _ => rng.below(data.len()),
            };
            for header in [None, header_at(&data, pos).ok()] {
                let expected = reference(&data, pos, header);
                assert_eq!(
                    data_after_damage(&data, pos, header),
                    expected,
                    "{data:?} at {pos}"
                );
                found[match expected {
                    None => 0,
                    Some(After::Frame(_)) => 1,
                    Some(After::LengthDamaged(_)) => 2,
                }] += 1;
            }
            assert_eq!(
                first_intact_frame(&data, 0),
                (0..data.len()).find(|p| intact_frame_at(&data, *p))
            );
        }
        assert!(found.iter().all(|n| *n > 20), "cases seen: {found:?}");
    }

    /// A log whose first frame is damaged, followed by `count` frame magics 16 bytes apart, each
    /// claiming a payload that runs to the end of the file (none intact). Returns the file and
    /// the sum of the declared payloads, what checking each candidate on its own would cost.
    fn magics_claiming_long_payloads(count: usize, trusted: bool) -> (Vec<u8>, u64) {
        let mut data = header_bytes().to_vec();
        // The damaged frame: a good header whose checksum does not match, or a bad magic.
        let damaged = FILE_HEADER_LEN;
        data.extend_from_slice(if trusted { b"ATEf" } else { b"ATEx" });
        data.extend_from_slice(&8u32.to_le_bytes());
        data.extend_from_slice(&[0xEE; 4 + 8]);
        let total = data.len() + count * 16 + count * 16;
        let mut claimed = 0u64;
        for i in 0..count {
            let start = data.len();
            let len = (total - start - FRAME_HEADER_LEN) as u32;
            data.extend_from_slice(&FRAME_MAGIC);
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&(i as u32).to_le_bytes());
            data.extend_from_slice(b"junk");
            claimed += u64::from(len);
        }
        data.resize(total, 0x55);
        assert!(header_at(&data, damaged).is_ok() == trusted);
        (data, claimed)
    }

    #[test]
    fn recovery_checksums_a_file_full_of_long_frame_magics_about_once() {
        for trusted in [true, false] {
            let (data, claimed) = magics_claiming_long_payloads(4000, trusted);
            let n = data.len() as u64;
            assert!(
                claimed > 500 * n,
                "the file is crafted: {claimed} claimed, {n} bytes"
            );
            for mode in [
                RecoveryMode::AbsoluteConsistency,
                RecoveryMode::TolerateCorruptTail,
            ] {
                let store = MemoryStore::from_bytes(data.clone());
                let before = crc::checksummed();
                let opened = RedoLog::open(store.clone(), mode, 1 << 20);
                let checksummed = crc::checksummed() - before;
                assert!(
                    checksummed <= 3 * n,
                    "{checksummed} bytes checksummed for a file of {n} (trusted {trusted})"
                );
                match (mode, opened) {
                    (RecoveryMode::AbsoluteConsistency, Err(LogError::Corrupt { offset, .. })) => {
                        assert_eq!(offset as usize, FILE_HEADER_LEN)
                    }
                    (RecoveryMode::TolerateCorruptTail, Ok((_, records, report))) => {
                        assert!(records.is_empty());
                        assert_eq!(report.truncated, n - FILE_HEADER_LEN as u64);
                    }
                    (mode, other) => panic!("{mode:?}: {:?}", other.map(|o| o.2)),
                }
            }
        }
    }

    #[test]
    fn a_file_of_magics_without_a_log_header_is_refused_after_one_pass() {
        let (mut data, _) = magics_claiming_long_payloads(4000, true);
        data[..8].copy_from_slice(b"#!/bin/s");
        let n = data.len() as u64;
        let before = crc::checksummed();
        let opened = RedoLog::open(
            MemoryStore::from_bytes(data),
            RecoveryMode::default(),
            1 << 20,
        );
        assert!(matches!(opened, Err(LogError::NotALog { .. })));
        assert!(crc::checksummed() - before <= n);
    }
}
