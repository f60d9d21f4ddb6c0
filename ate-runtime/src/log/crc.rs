//! CRC-32C arithmetic for recovery: the checksum of a range of bytes derived from the checksums
//! of two prefixes, so a search can check many overlapping frames after one pass over the data.
//!
//! A CRC-32C checksum is affine in its message: for byte strings `A` and `B`,
//! `crc(A ‖ B) = shift(crc(A), |B|) ^ crc(B)`, where [`shift`] multiplies by `x^(8·|B|)` modulo
//! the polynomial. So `crc(B) = shift(crc(A), |B|) ^ crc(A ‖ B)`: the checksum of
//! `data[a..b]` follows from those of `data[..a]` and `data[..b]`.
//!
//! `crc32c::crc32c_combine(c1, c2, n)` computes `shift(c1, n) ^ c2` too (the tests check it),
//! but it rebuilds 32×32 bit matrices on every call (tens of µs, even in a release build) and
//! returns `c1` unchanged when `n` is 0, which is right only for a real `crc(B)`. [`shift`]
//! uses a table of `x^(8·2^k)` instead: one 32-step product per set bit of `n`.

/// The CRC-32C (Castagnoli) polynomial, bit-reflected as the checksums are.
const POLY: u32 = 0x82F6_3B78;

/// `X8N[k]` is `x^(8·2^k)` modulo the polynomial: appending `2^k` zero bytes multiplies a
/// checksum's polynomial by it.
const X8N: [u32; 64] = x8n_table();

/// The product `a·b` modulo the polynomial, in the reflected bit order of the checksums (bit 31
/// holds the coefficient of `x^0`).
const fn mul_mod_poly(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 0;
    while bit < 32 {
        if a & (1 << (31 - bit)) != 0 {
            product ^= b;
        }
        // b·x: the coefficient of x^31 (bit 0) overflows into x^32, which the polynomial reduces.
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        bit += 1;
    }
    product
}

const fn x8n_table() -> [u32; 64] {
    let mut table = [0; 64];
    // x^8, in the reflected order.
    table[0] = 1 << (31 - 8);
    let mut k = 1;
    while k < table.len() {
        table[k] = mul_mod_poly(table[k - 1], table[k - 1]);
        k += 1;
    }
    table
}

/// `crc` as it contributes to the checksum of a string that continues for `len` more bytes:
/// `crc(A ‖ B) = shift(crc(A), |B|) ^ crc(B)`. Linear: `shift(a ^ b, n) = shift(a, n) ^ shift(b, n)`.
pub(super) fn shift(crc: u32, len: u64) -> u32 {
    let mut crc = crc;
    let mut rest = len;
    let mut k = 0;
    while rest != 0 {
        if rest & 1 != 0 {
            crc = mul_mod_poly(X8N[k], crc);
        }
        rest >>= 1;
        k += 1;
    }
    crc
}

/// `crc32c::crc32c_append`; in tests, also counts the bytes checksummed on this thread (see
/// [`checksummed`]).
pub(super) fn append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(test)]
    CHECKSUMMED.with(|n| n.set(n.get() + data.len() as u64));
    crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
thread_local! {
    static CHECKSUMMED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The bytes [`append`] has checksummed on this thread so far.
#[cfg(test)]
pub(super) fn checksummed() -> u64 {
    CHECKSUMMED.with(|n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7919 % 251) as u8 ^ (i >> 3) as u8)
            .collect()
    }

    /// What the crate's combine does, including the degenerate length 0, which is why the
    /// derivation of a range's checksum does not rely on it.
    #[test]
    fn the_crates_combine_appends_the_second_checksum_shifted_by_the_second_length() {
        let data = bytes(3000);
        for split in [0, 1, 5, 64, 1000, 2999, 3000] {
            let (a, b) = data.split_at(split);
            let (ca, cb) = (crc32c::crc32c(a), crc32c::crc32c(b));
            assert_eq!(
                crc32c::crc32c_combine(ca, cb, b.len()),
                crc32c::crc32c(&data)
            );
            if !b.is_empty() {
                // crc(B) from crc(A) and crc(A ‖ B).
                assert_eq!(
                    crc32c::crc32c_combine(ca, crc32c::crc32c(&data), b.len()),
                    cb
                );
            }
        }
        // With a length of 0 the second checksum is ignored, not XORed in.
        assert_eq!(crc32c::crc32c_combine(0x1234, 0x5678, 0), 0x1234);
    }

    #[test]
    fn shift_is_the_crates_combine_with_nothing_appended() {
        for crc in [0, 1, 0xDEAD_BEEF, u32::MAX] {
            for len in (0..70).chain([255, 256, 4097, 1 << 20, (1 << 28) + 12345, usize::MAX >> 3])
            {
                assert_eq!(
                    shift(crc, len as u64),
                    crc32c::crc32c_combine(crc, 0, len),
                    "crc {crc:#x}, len {len}"
                );
            }
        }
        assert_eq!(shift(0xABCD, 0), 0xABCD);
    }

    #[test]
    fn a_ranges_checksum_follows_from_two_prefix_checksums() {
        let data = bytes(300);
        let prefix: Vec<u32> = (0..=data.len())
            .map(|i| crc32c::crc32c(&data[..i]))
            .collect();
        for start in 0..=data.len() {
            for end in start..=data.len() {
                let len = (end - start) as u64;
                assert_eq!(
                    shift(prefix[start], len) ^ prefix[end],
                    crc32c::crc32c(&data[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn append_counts_what_it_checksums() {
        let before = checksummed();
        let crc = append(append(0, b"abc"), b"defg");
        assert_eq!(crc, crc32c::crc32c(b"abcdefg"));
        assert_eq!(checksummed() - before, 7);
    }
}
