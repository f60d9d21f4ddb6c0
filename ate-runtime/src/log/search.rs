//! The search for acknowledged data after a damaged frame.

use super::frame::{FRAME_HEADER_LEN, FRAME_MAGIC, FrameHeader, intact_frame_at, payload_check};

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
/// followed by acknowledged frames, not a torn write.
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
    let mut at = payload;
    while let Some(q) = first_intact_frame(data, at) {
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
pub(super) fn first_intact_frame(data: &[u8], from: usize) -> Option<usize> {
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
