//! The shape of MessagePack values, for the readers that walk untrusted MessagePack without
//! recursion (schema index values, network messages), and [`check_shape`], the check a
//! service message passes before it is decoded.

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

/// Why [`check_shape`] refused a MessagePack value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShapeError {
    /// Arrays and maps nested deeper than allowed.
    #[error("nested deeper than {max} levels")]
    TooDeep {
        /// The most levels allowed.
        max: usize,
    },
    /// A length or a count claims more than the bytes left (every item takes a byte at least).
    #[error("claims {claimed} bytes or items where {left} bytes are left")]
    Truncated {
        /// What the value claims.
        claimed: u64,
        /// The bytes left after its marker and length.
        left: usize,
    },
    /// Bytes after the value.
    #[error("{0} bytes follow the value")]
    Trailing(usize),
    /// 0xc1, which MessagePack never uses.
    #[error("byte {0:#04x} is not a MessagePack marker")]
    BadMarker(u8),
}

/// Checks, without recursion and before a decoder allocates anything, that `bytes` hold exactly
/// one MessagePack value, nested at most `max_depth` arrays or maps deep, whose every length
/// and count fits in the bytes that follow it.
///
/// # Errors
///
/// The first [`ShapeError`] met, reading from the front.
pub(crate) fn check_shape(bytes: &[u8], max_depth: usize) -> Result<(), ShapeError> {
    // The values still to read in each open array or map; the bottom entry is the one value.
    let mut open: Vec<u64> = vec![1];
    let mut at = 0usize;
    while let Some(left_here) = open.last_mut() {
        if *left_here == 0 {
            open.pop();
            continue;
        }
        *left_here -= 1;
        let Some(&marker) = bytes.get(at) else {
            return Err(ShapeError::Truncated {
                claimed: 1,
                left: 0,
            });
        };
        at += 1;
        let (skip, items) = extent(marker, |width| {
            let width = width as usize;
            let field = bytes.get(at..at + width).ok_or(ShapeError::Truncated {
                claimed: width as u64,
                left: bytes.len() - at,
            })?;
            at += width;
            Ok(field.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
        })?
        .ok_or(ShapeError::BadMarker(marker))?;
        let left = bytes.len() - at;
        if skip > left as u64 || items > left as u64 {
            return Err(ShapeError::Truncated {
                claimed: skip.max(items),
                left,
            });
        }
        at += skip as usize;
        if items > 0 {
            if open.len() > max_depth {
                return Err(ShapeError::TooDeep { max: max_depth });
            }
            open.push(items);
        }
    }
    match bytes.len() - at {
        0 => Ok(()),
        trailing => Err(ShapeError::Trailing(trailing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_well_formed_value_passes() {
        let value = (1u8, "two", vec![vec![3u32; 2]; 2], Some(4.5f64));
        let bytes = rmp_serde::to_vec(&value).unwrap();
        assert_eq!(check_shape(&bytes, 3), Ok(()));
        assert_eq!(check_shape(&[0xc0], 0), Ok(()));
    }

    #[test]
    fn depth_is_counted_in_arrays_and_maps() {
        // [[[1]]]: three levels.
        let bytes = [0x91, 0x91, 0x91, 0x01];
        assert_eq!(check_shape(&bytes, 3), Ok(()));
        assert_eq!(check_shape(&bytes, 2), Err(ShapeError::TooDeep { max: 2 }));
        // {1: {2: 3}}: two levels.
        let bytes = [0x81, 0x01, 0x81, 0x02, 0x03];
        assert_eq!(check_shape(&bytes, 2), Ok(()));
        assert_eq!(check_shape(&bytes, 1), Err(ShapeError::TooDeep { max: 1 }));
    }

    #[test]
    fn claims_past_the_end_are_refused() {
        // An array of 2^32 - 1 items in six bytes.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            check_shape(&bytes, 8),
            Err(ShapeError::Truncated {
                claimed: 0xffff_ffff,
                left: 1
            })
        ));
        // A string of 5 bytes with 2 left; a length field cut short; nothing at all.
        assert!(matches!(
            check_shape(&[0xa5, b'a', b'b'], 8),
            Err(ShapeError::Truncated {
                claimed: 5,
                left: 2
            })
        ));
        assert!(matches!(
            check_shape(&[0xda, 0x01], 8),
            Err(ShapeError::Truncated {
                claimed: 2,
                left: 1
            })
        ));
        assert!(matches!(
            check_shape(&[], 8),
            Err(ShapeError::Truncated { .. })
        ));
        // An array whose second item is missing.
        assert!(matches!(
            check_shape(&[0x92, 0x01], 8),
            Err(ShapeError::Truncated { .. })
        ));
    }

    #[test]
    fn trailing_bytes_and_unused_markers_are_refused() {
        assert_eq!(check_shape(&[0x01, 0x02], 8), Err(ShapeError::Trailing(1)));
        assert_eq!(check_shape(&[0xc1], 8), Err(ShapeError::BadMarker(0xc1)));
        assert_eq!(
            check_shape(&[0x91, 0xc1], 8),
            Err(ShapeError::BadMarker(0xc1))
        );
    }
}
