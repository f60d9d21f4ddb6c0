//! The byte layout of the redo log: the file header and the frames (`docs/FORMAT.md`).
//!
//! ```text
//! file   := header frame*  [zero padding]
//! header := magic "ATE-LOG\0" (8) | version u32 LE | crc32c(magic ‖ version) u32 LE     16 bytes
//! frame  := magic "ATEf" (4) | len u32 LE | crc32c(len ‖ payload) u32 LE | payload[len]
//! ```
//!
//! One frame holds one transaction, so a transaction is durable whole or not at all.

use bytes::{BufMut, BytesMut};

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

/// The file header this build writes.
pub(crate) fn header_bytes() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A frame header whose magic is right.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameHeader {
    /// The declared payload length.
    pub(super) len: usize,
    /// The declared checksum.
    pub(super) crc: u32,
}

/// Reads the frame header at `pos`.
pub(super) fn header_at(data: &[u8], pos: usize) -> Result<FrameHeader, &'static str> {
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
pub(super) fn payload_check(
    data: &[u8],
    pos: usize,
    h: FrameHeader,
    len: usize,
) -> Result<(), &'static str> {
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
        return Err("frame runs past the end of the log");
    };
    let len_bytes = u32::try_from(len)
        .map_err(|_| "frame length out of range")?
        .to_le_bytes();
    let actual = super::crc::append(crc32c::crc32c(&len_bytes), payload);
    if actual != h.crc {
        return Err("frame checksum mismatch");
    }
    Ok(())
}

/// The header of the frame holding `payload`.
pub(super) fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
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
/// ([`RedoLog::append_frames`](super::RedoLog::append_frames)). A buffer shorter than a header
/// is left as it is.
pub fn frame_in_place(buf: &mut [u8]) {
    if let Some((head, payload)) = buf.split_at_mut_checked(FRAME_HEADER_LEN) {
        head.copy_from_slice(&frame_header(payload));
    }
}
