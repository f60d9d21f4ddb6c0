//! The shape of MessagePack values, for the readers that walk untrusted MessagePack without
//! recursion (schema index values, network messages).

/// What the value that starts with `marker` spans after its marker: the bytes to skip (its
/// payload) and the values it contains (an array's items; a map's keys and values). `uint(n)`
/// reads the `n`-byte big-endian length field that follows some markers. `Ok(None)` for 0xc1,
/// which MessagePack never uses.
///
/// # Errors
///
/// Those of `uint`.
pub(crate) fn extent<E>(
    marker: u8,
    mut uint: impl FnMut(u64) -> Result<u64, E>,
) -> Result<Option<(u64, u64)>, E> {
    Ok(Some(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
        0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => (0, u64::from(marker & 0x0f)),
        0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
        0xc1 => return Ok(None),
        0xc4 | 0xd9 => (uint(1)?, 0),
        0xc5 | 0xda => (uint(2)?, 0),
        0xc6 | 0xdb => (uint(4)?, 0),
        0xc7 => (uint(1)? + 1, 0),
        0xc8 => (uint(2)? + 1, 0),
        0xc9 => (uint(4)? + 1, 0),
        0xca => (4, 0),
        0xcb => (8, 0),
        0xcc | 0xd0 => (1, 0),
        0xcd | 0xd1 => (2, 0),
        0xce | 0xd2 => (4, 0),
        0xcf | 0xd3 => (8, 0),
        0xd4 => (2, 0),
        0xd5 => (3, 0),
        0xd6 => (5, 0),
        0xd7 => (9, 0),
        0xd8 => (17, 0),
        0xdc => (0, uint(2)?),
        0xdd => (0, uint(4)?),
        0xde => (0, 2 * uint(2)?),
        0xdf => (0, 2 * uint(4)?),
    }))
}
