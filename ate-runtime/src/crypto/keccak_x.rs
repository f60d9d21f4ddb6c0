//! Multi-buffer SHA3-256: many independent messages hashed at once, eight in AVX-512 registers
//! or four in AVX2 registers, one 64-bit lane of each message's Keccak state per vector element.
//!
//! Written from FIPS 202: Keccak-f[1600] (θ, ρ, π, χ, ι over 24 rounds; the ρ offsets, the π
//! permutation and the round constants are computed from the specification's algorithms at
//! compile time), and the SHA3-256 sponge (rate 136 bytes, suffix `01` then `pad10*1`, that is
//! the bytes `0x06 … 0x80`, or `0x86` alone when one padding byte fits).
//!
//! Messages of different lengths: the messages of a call are grouped by their number of blocks
//! (sorted when they are not in order already), each group of eight (four) is absorbed together,
//! and a lane whose message is finished absorbs zero blocks while the others go on; its digest is
//! read out right after the permutation of its last block, so what follows does not matter.
//! A group of one message, and everything on a CPU without AVX2, goes to the `sha3` crate.
//!
//! The vector code is in functions carrying `#[target_feature]`, called only once the feature is
//! detected at run time ([`Backend::best`], cached). Its only `unsafe` are those calls and the
//! unaligned loads and stores of vectors from and to arrays of the right size.

// Elsewhere only the scalar backend is built: the tables and the sponge are for the vectors.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::sync::OnceLock;

use sha3::{Digest, Sha3_256};

/// The rate of SHA3-256 in bytes: the 1600-bit state minus the 512-bit capacity (twice the
/// digest length).
pub(crate) const RATE: usize = 136;

/// The rate in 64-bit lanes.
#[cfg(target_arch = "x86_64")]
const RATE_LANES: usize = RATE / 8;

/// One lane of the state per message, for `W` messages: `state[x + 5 * y][message]` is the lane
/// A[x, y] of that message (FIPS 202, 3.1.2: bytes `8 (x + 5 y) ..` of the state string, little
/// endian).
type States<const W: usize> = [[u64; W]; 25];

/// The round constants RC[i_r] of ι (FIPS 202, algorithms 5 and 6).
const RC: [u64; 24] = round_constants();

/// The ρ offset of each lane, by index `x + 5 y` (FIPS 202, algorithm 2).
const RHO: [i32; 25] = rho_offsets();

/// Where π moves each lane: A'[x, y] = A[(x + 3y) mod 5, x], so the lane at `(x, y)` goes to
/// `(y, (2x + 3y) mod 5)`; by index `x + 5 y` (FIPS 202, algorithm 3).
const PI: [usize; 25] = pi_targets();

/// The bit rc(t) of the LFSR of FIPS 202, algorithm 5.
const fn rc_bit(t: usize) -> u64 {
    if t.is_multiple_of(255) {
        return 1;
    }
    // R[0] is bit 0; R = 10000000.
    let mut r: u16 = 1;
    let mut i = 1;
    while i <= t % 255 {
        // R = 0 ‖ R (nine bits), then R[0, 4, 5, 6] ^= R[8], then truncate to eight bits.
        r <<= 1;
        let r8 = (r >> 8) & 1;
        r ^= r8 * 0b0111_0001;
        r &= 0xff;
        i += 1;
    }
    (r & 1) as u64
}

const fn round_constants() -> [u64; 24] {
    let mut out = [0u64; 24];
    let mut ir = 0;
    while ir < 24 {
        let mut rc = 0u64;
        let mut j = 0;
        while j <= 6 {
            // RC[2^j − 1] = rc(j + 7 i_r).
            rc |= rc_bit(j + 7 * ir) << ((1usize << j) - 1);
            j += 1;
        }
        out[ir] = rc;
        ir += 1;
    }
    out
}

const fn rho_offsets() -> [i32; 25] {
    let mut out = [0i32; 25];
    let (mut x, mut y) = (1usize, 0usize);
    let mut t = 0usize;
    while t < 24 {
        out[x + 5 * y] = (((t + 1) * (t + 2) / 2) % 64) as i32;
        let next = (y, (2 * x + 3 * y) % 5);
        x = next.0;
        y = next.1;
        t += 1;
    }
    out
}

const fn pi_targets() -> [usize; 25] {
    let mut out = [0usize; 25];
    let mut i = 0;
    while i < 25 {
        let (x, y) = (i % 5, i / 5);
        out[i] = y + 5 * ((2 * x + 3 * y) % 5);
        i += 1;
    }
    out
}

/// The 24 rounds of Keccak-f[1600] over the state `$a: [V; 25]` of vectors `V`, given the
/// vector operations of a backend: `$xor(a, b)`, `$xor3(a, b, c)`, `$xor5(a, b, c, d, e)`,
/// `$rotl!(v, n)` (rotate each 64-bit element left by the constant `n`),
/// `$chi(a, b, c) = a ^ (!b & c)` and `$splat(u64)`. Expanded inside a function enabling the
/// backend's target features, so that every operation is inlined into it.
#[cfg(target_arch = "x86_64")]
macro_rules! keccak_f1600 {
    (@rho_pi $b:ident, $a:ident, $c:ident, $r:ident, $xor3:ident, $rotl:ident; $($i:literal)*) => {
        $( $b[PI[$i]] = $rotl!($xor3($a[$i], $c[($i + 4) % 5], $r[$i % 5]), RHO[$i]); )*
    };
    ($a:ident, $xor:ident, $xor3:ident, $xor5:ident, $rotl:ident, $chi:ident, $splat:ident) => {
        for rc in RC {
            // θ: C[x] = A[x, 0] ^ … ^ A[x, 4]; D[x] = C[x − 1] ^ ROT(C[x + 1], 1).
            let mut c = [$a[0]; 5];
            for x in 0..5 {
                c[x] = $xor5($a[x], $a[x + 5], $a[x + 10], $a[x + 15], $a[x + 20]);
            }
            let mut r = [$a[0]; 5];
            for x in 0..5 {
                r[x] = $rotl!(c[(x + 1) % 5], 1);
            }
            // θ applied, ρ and π: B[π(x, y)] = ROT(A[x, y] ^ C[x − 1] ^ ROT(C[x + 1], 1), r[x, y])
            // (a three-way xor per lane where there is one; otherwise `$xor3` xors the last two
            // first, and the compiler computes D[x] once for the five lanes that share it).
            let mut b = [$a[0]; 25];
            keccak_f1600!(@rho_pi b, $a, c, r, $xor3, $rotl;
                0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
            // χ: A[x, y] = B[x, y] ^ (!B[x + 1, y] & B[x + 2, y]).
            for y in 0..5 {
                for x in 0..5 {
                    $a[x + 5 * y] = $chi(
                        b[x + 5 * y],
                        b[(x + 1) % 5 + 5 * y],
                        b[(x + 2) % 5 + 5 * y],
                    );
                }
            }
            // ι.
            $a[0] = $xor($a[0], $splat(rc));
        }
    };
}

/// How [`sha3_256_many`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// One message after the other, with the `sha3` crate.
    Scalar,
    /// Four messages at a time in AVX2 registers.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Eight messages at a time in AVX-512 registers (AVX-512F).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Backend {
    /// Every backend of this build, fastest first.
    pub(crate) const ALL: &[Backend] = &[
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2,
        Backend::Scalar,
    ];

    /// Whether this CPU can run it.
    pub(crate) fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => std::is_x86_feature_detected!("avx512f"),
        }
    }

    /// The name `ATE_REQUIRE_SIMD` knows this backend by (`None`: not a SIMD backend).
    #[cfg(test)]
    pub(crate) fn simd_name(self) -> Option<&'static str> {
        match self {
            Backend::Scalar => None,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Some("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => Some("avx512"),
        }
    }

    /// The fastest backend this CPU can run (detected once).
    pub(crate) fn best() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            Backend::ALL
                .iter()
                .copied()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Scalar)
        })
    }
}

/// What the tests run: every backend this CPU has, and a failure, not a skip, for a backend the
/// machine is required to have.
///
/// `ATE_REQUIRE_SIMD` (comma-separated `avx512`, `avx2`; CI sets it from `/proc/cpuinfo`) names
/// the SIMD backends that must be tested. Without it, a test skips a backend the CPU lacks, so a
/// runner that lost AVX-512 would pass without having tested it.
#[cfg(test)]
pub(crate) mod testing {
    use super::Backend;

    /// The variable naming the backends a test must not skip.
    pub(crate) const REQUIRE_VAR: &str = "ATE_REQUIRE_SIMD";

    /// The backends named by a comma-separated list (spaces and empty items ignored). A name
    /// that is not a SIMD backend of this build is an error, so a typo cannot pass unnoticed.
    pub(crate) fn parse_required(list: &str) -> Result<Vec<Backend>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let backend = Backend::ALL
                .iter()
                .copied()
                .find(|b| b.simd_name() == Some(name))
                .ok_or_else(|| {
                    format!(
                        "{REQUIRE_VAR} names {name:?}, which is not a SIMD backend of this build \
                         (known: {:?})",
                        Backend::ALL
                            .iter()
                            .filter_map(|b| b.simd_name())
                            .collect::<Vec<_>>()
                    )
                })?;
            if !out.contains(&backend) {
                out.push(backend);
            }
        }
        Ok(out)
    }

    /// The backends `ATE_REQUIRE_SIMD` names (none when it is unset).
    ///
    /// # Panics
    ///
    /// When it names something that is not a SIMD backend of this build.
    pub(crate) fn required() -> Vec<Backend> {
        let list = std::env::var(REQUIRE_VAR).unwrap_or_default();
        parse_required(&list).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kernel` (the kernel of `backend` if this CPU can run it) when a test should run it.
    ///
    /// # Panics
    ///
    /// When the CPU lacks a backend that `ATE_REQUIRE_SIMD` names: that test fails instead of
    /// skipping it.
    pub(crate) fn unless_required<K>(backend: Backend, kernel: Option<K>) -> Option<K> {
        assert!(
            kernel.is_some() || !required().contains(&backend),
            "{REQUIRE_VAR} requires the {backend:?} SHA3 backend, but this CPU cannot run it \
             (unset {REQUIRE_VAR}, or run the tests on a CPU with it)"
        );
        kernel
    }

    /// Asserts that every backend `ATE_REQUIRE_SIMD` names is among those a test ran.
    pub(crate) fn assert_required_ran(ran: &[Backend]) {
        for backend in required() {
            assert!(
                ran.contains(&backend),
                "{REQUIRE_VAR} requires the {backend:?} SHA3 backend; it did not run (ran: {ran:?})"
            );
        }
    }

    /// Every backend this CPU can run, checked against `ATE_REQUIRE_SIMD`.
    ///
    /// # Panics
    ///
    /// When the CPU lacks a backend it names.
    pub(crate) fn available() -> Vec<Backend> {
        let all: Vec<Backend> = Backend::ALL
            .iter()
            .copied()
            .filter(|b| unless_required(*b, b.is_available().then_some(())).is_some())
            .collect();
        assert_required_ran(&all);
        all
    }
}

/// SHA3-256 of each message into `out`, in order, with the fastest backend of this CPU.
///
/// # Panics
///
/// If `out` and `messages` differ in length.
pub(crate) fn sha3_256_many<T: From<[u8; 32]>>(messages: &[&[u8]], out: &mut [T]) {
    sha3_256_many_with(Backend::best(), messages, out);
}

/// [`sha3_256_many`] with the given backend.
///
/// # Panics
///
/// If `out` and `messages` differ in length, or if this CPU cannot run `backend`.
pub(crate) fn sha3_256_many_with<T: From<[u8; 32]>>(
    backend: Backend,
    messages: &[&[u8]],
    out: &mut [T],
) {
    assert_eq!(
        messages.len(),
        out.len(),
        "one output per message is needed"
    );
    match backend {
        Backend::Scalar => scalar(messages, out),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => multi(messages, out, &avx2_kernel().expect("this CPU has no AVX2")),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => multi(
            messages,
            out,
            &avx512_kernel().expect("this CPU has no AVX-512F"),
        ),
    }
}

fn scalar<T: From<[u8; 32]>>(messages: &[&[u8]], out: &mut [T]) {
    for (m, o) in messages.iter().zip(out) {
        *o = T::from(Sha3_256::digest(m).into());
    }
}

/// The AVX-512 kernel (absorb one block into each of eight states, then permute them), if this
/// CPU can run it.
#[cfg(target_arch = "x86_64")]
fn avx512_kernel() -> Option<impl Fn(&mut States<8>, &[&[u8; RATE]; 8])> {
    Backend::Avx512
        .is_available()
        .then_some(|s: &mut States<8>, b: &[&[u8; RATE]; 8]| {
            // SAFETY: the CPU has AVX-512F, detected just above (the closure exists only then).
            unsafe { avx512::absorb_permute(s, b) }
        })
}

/// The AVX2 kernel (absorb one block into each of four states, then permute them), if this CPU
/// can run it.
#[cfg(target_arch = "x86_64")]
fn avx2_kernel() -> Option<impl Fn(&mut States<4>, &[&[u8; RATE]; 4])> {
    Backend::Avx2
        .is_available()
        .then_some(|s: &mut States<4>, b: &[&[u8; RATE]; 4]| {
            // SAFETY: the CPU has AVX2, detected just above (the closure exists only then).
            unsafe { avx2::absorb_permute(s, b) }
        })
}

/// Hashes `messages` `W` at a time with `kernel`, grouped by their number of blocks.
#[cfg(target_arch = "x86_64")]
fn multi<const W: usize, T: From<[u8; 32]>>(
    messages: &[&[u8]],
    out: &mut [T],
    kernel: &impl Fn(&mut States<W>, &[&[u8; RATE]; W]),
) {
    let blocks = |i: &usize| messages[*i].len() / RATE;
    let mut order: Vec<usize> = (0..messages.len()).collect();
    if !order.is_sorted_by_key(blocks) {
        order.sort_unstable_by_key(blocks);
    }
    for group in order.chunks(W) {
        if let [i] = group {
            out[*i] = T::from(Sha3_256::digest(messages[*i]).into());
            continue;
        }
        let batch: [&[u8]; W] =
            std::array::from_fn(|l| group.get(l).map_or(&[][..], |i| messages[*i]));
        let digests = absorb_group(&batch[..group.len()], kernel);
        for (i, d) in group.iter().zip(digests) {
            out[*i] = T::from(d);
        }
    }
}

/// SHA3-256 of up to `W` messages of any lengths, absorbed side by side by `kernel`; the
/// digests of the lanes past `messages.len()` are zero.
#[cfg(target_arch = "x86_64")]
fn absorb_group<const W: usize>(
    messages: &[&[u8]],
    kernel: &impl Fn(&mut States<W>, &[&[u8; RATE]; W]),
) -> [[u8; 32]; W] {
    assert!(messages.len() <= W);
    // Padded blocks per lane (none for an unused lane), and each lane's last, padded block.
    let mut blocks = [0usize; W];
    let mut last = [[0u8; RATE]; W];
    for (l, m) in messages.iter().enumerate() {
        let full = m.len() / RATE;
        blocks[l] = full + 1;
        let tail = &m[full * RATE..];
        last[l][..tail.len()].copy_from_slice(tail);
        last[l][tail.len()] ^= 0x06;
        last[l][RATE - 1] ^= 0x80;
    }
    let zero = [0u8; RATE];
    let mut state: States<W> = [[0; W]; 25];
    let mut digests = [[0u8; 32]; W];
    let rounds = blocks.iter().copied().max().unwrap_or(0);
    for b in 0..rounds {
        let input: [&[u8; RATE]; W] = std::array::from_fn(|l| match (b + 1).cmp(&blocks[l]) {
            std::cmp::Ordering::Less => messages[l][b * RATE..(b + 1) * RATE]
                .try_into()
                .expect("a block is RATE bytes"),
            std::cmp::Ordering::Equal => &last[l],
            // Finished (or unused): its digest is taken already.
            std::cmp::Ordering::Greater => &zero,
        });
        kernel(&mut state, &input);
        for l in 0..messages.len() {
            if blocks[l] == b + 1 {
                for (w, out) in digests[l].chunks_exact_mut(8).enumerate() {
                    out.copy_from_slice(&state[w][l].to_le_bytes());
                }
            }
        }
    }
    digests
}

/// Eight states in `__m512i` vectors (one state per 64-bit element).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PI, RATE, RATE_LANES, RC, RHO, States};

    /// Rotates each element left by the constant `n`.
    macro_rules! rotl {
        ($v:expr, $n:expr) => {
            _mm512_rol_epi64::<{ $n }>($v)
        };
    }

    /// XORs one block into each state (block `l` into state `l`), then applies Keccak-f[1600]
    /// to each.
    #[target_feature(enable = "avx512f")]
    pub(super) fn absorb_permute(state: &mut States<8>, blocks: &[&[u8; RATE]; 8]) {
        let mut a = [_mm512_setzero_si512(); 25];
        for (v, s) in a.iter_mut().zip(state.iter()) {
            *v = load_u64s(s);
        }
        // Lanes 0..8 and 8..16: eight lanes of each block, transposed to one vector per lane.
        for half in 0..2 {
            let rows: [__m512i; 8] = std::array::from_fn(|l| {
                load_bytes(
                    blocks[l][64 * half..64 * (half + 1)]
                        .try_into()
                        .expect("64 bytes"),
                )
            });
            for (j, v) in transpose(rows).into_iter().enumerate() {
                a[8 * half + j] = _mm512_xor_si512(a[8 * half + j], v);
            }
        }
        let lane =
            |l: usize| i64::from_le_bytes(blocks[l][8 * 16..RATE].try_into().expect("8 bytes"));
        const _: () = assert!(RATE_LANES == 17);
        a[16] = _mm512_xor_si512(
            a[16],
            _mm512_set_epi64(
                lane(7),
                lane(6),
                lane(5),
                lane(4),
                lane(3),
                lane(2),
                lane(1),
                lane(0),
            ),
        );

        keccak_f1600!(a, xor, xor3, xor5, rotl, chi, splat);

        for (s, v) in state.iter_mut().zip(a) {
            store_u64s(s, v);
        }
    }

    /// Rows `r[i]` (eight lanes of block `i`) to columns (lane `j` of the eight blocks).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn transpose(r: [__m512i; 8]) -> [__m512i; 8] {
        // Pairs: t0 = r0[0] r1[0] r0[2] r1[2] r0[4] r1[4] r0[6] r1[6], t1 the odd lanes.
        let t0 = _mm512_unpacklo_epi64(r[0], r[1]);
        let t1 = _mm512_unpackhi_epi64(r[0], r[1]);
        let t2 = _mm512_unpacklo_epi64(r[2], r[3]);
        let t3 = _mm512_unpackhi_epi64(r[2], r[3]);
        let t4 = _mm512_unpacklo_epi64(r[4], r[5]);
        let t5 = _mm512_unpackhi_epi64(r[4], r[5]);
        let t6 = _mm512_unpacklo_epi64(r[6], r[7]);
        let t7 = _mm512_unpackhi_epi64(r[6], r[7]);
        // 128-bit pieces 0 and 2 (EVEN) or 1 and 3 (ODD) of a, then the same of b.
        const EVEN: i32 = 0b10_00_10_00;
        const ODD: i32 = 0b11_01_11_01;
        // u0: lanes 0 and 4 of r0..r3; u1: lanes 2 and 6; u2, u3 the same of r4..r7.
        let u0 = _mm512_shuffle_i64x2::<EVEN>(t0, t2);
        let u1 = _mm512_shuffle_i64x2::<ODD>(t0, t2);
        let u2 = _mm512_shuffle_i64x2::<EVEN>(t4, t6);
        let u3 = _mm512_shuffle_i64x2::<ODD>(t4, t6);
        // v0: lanes 1 and 5 of r0..r3; v1: lanes 3 and 7; v2, v3 the same of r4..r7.
        let v0 = _mm512_shuffle_i64x2::<EVEN>(t1, t3);
        let v1 = _mm512_shuffle_i64x2::<ODD>(t1, t3);
        let v2 = _mm512_shuffle_i64x2::<EVEN>(t5, t7);
        let v3 = _mm512_shuffle_i64x2::<ODD>(t5, t7);
        [
            _mm512_shuffle_i64x2::<EVEN>(u0, u2),
            _mm512_shuffle_i64x2::<EVEN>(v0, v2),
            _mm512_shuffle_i64x2::<EVEN>(u1, u3),
            _mm512_shuffle_i64x2::<EVEN>(v1, v3),
            _mm512_shuffle_i64x2::<ODD>(u0, u2),
            _mm512_shuffle_i64x2::<ODD>(v0, v2),
            _mm512_shuffle_i64x2::<ODD>(u1, u3),
            _mm512_shuffle_i64x2::<ODD>(v1, v3),
        ]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load_u64s(s: &[u64; 8]) -> __m512i {
        // SAFETY: `s` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load_bytes(b: &[u8; 64]) -> __m512i {
        // SAFETY: `b` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn store_u64s(s: &mut [u64; 8], v: __m512i) {
        // SAFETY: `s` is 64 writable bytes; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512(s.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor(a: __m512i, b: __m512i) -> __m512i {
        _mm512_xor_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        // 0x96 = 0xf0 ^ 0xcc ^ 0xaa: a ^ b ^ c.
        _mm512_ternarylogic_epi64::<0x96>(a, b, c)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor5(a: __m512i, b: __m512i, c: __m512i, d: __m512i, e: __m512i) -> __m512i {
        xor3(xor3(a, b, c), d, e)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn chi(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        // 0xd2 = 0xf0 ^ (!0xcc & 0xaa): a ^ (!b & c).
        _mm512_ternarylogic_epi64::<0xd2>(a, b, c)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(x: u64) -> __m512i {
        _mm512_set1_epi64(x as i64)
    }
}

/// Four states in `__m256i` vectors (one state per 64-bit element).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{PI, RATE, RATE_LANES, RC, RHO, States};

    /// Rotates each element left by the constant `n`: `(v << n) | (v >> (64 - n))` (a shift by
    /// 64 gives zero).
    macro_rules! rotl {
        ($v:expr, $n:expr) => {{
            let v = $v;
            _mm256_or_si256(
                _mm256_slli_epi64::<{ $n }>(v),
                _mm256_srli_epi64::<{ 64 - $n }>(v),
            )
        }};
    }

    /// XORs one block into each state (block `l` into state `l`), then applies Keccak-f[1600]
    /// to each.
    #[target_feature(enable = "avx2")]
    pub(super) fn absorb_permute(state: &mut States<4>, blocks: &[&[u8; RATE]; 4]) {
        let mut a = [_mm256_setzero_si256(); 25];
        for (v, s) in a.iter_mut().zip(state.iter()) {
            *v = load_u64s(s);
        }
        // Lanes 0..16, four at a time: four lanes of each block, transposed to one vector per
        // lane.
        for quarter in 0..4 {
            let rows: [__m256i; 4] = std::array::from_fn(|l| {
                load_bytes(
                    blocks[l][32 * quarter..32 * (quarter + 1)]
                        .try_into()
                        .expect("32 bytes"),
                )
            });
            for (j, v) in transpose(rows).into_iter().enumerate() {
                a[4 * quarter + j] = _mm256_xor_si256(a[4 * quarter + j], v);
            }
        }
        let lane =
            |l: usize| i64::from_le_bytes(blocks[l][8 * 16..RATE].try_into().expect("8 bytes"));
        const _: () = assert!(RATE_LANES == 17);
        a[16] = _mm256_xor_si256(a[16], _mm256_set_epi64x(lane(3), lane(2), lane(1), lane(0)));

        keccak_f1600!(a, xor, xor3, xor5, rotl, chi, splat);

        for (s, v) in state.iter_mut().zip(a) {
            store_u64s(s, v);
        }
    }

    /// Rows `r[i]` (four lanes of block `i`) to columns (lane `j` of the four blocks).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(r: [__m256i; 4]) -> [__m256i; 4] {
        // t0 = r0[0] r1[0] r0[2] r1[2], t1 = r0[1] r1[1] r0[3] r1[3]; t2, t3 the same of r2, r3.
        let t0 = _mm256_unpacklo_epi64(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi64(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi64(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi64(r[2], r[3]);
        // 0x20: the low halves of a and b; 0x31: their high halves.
        [
            _mm256_permute2x128_si256::<0x20>(t0, t2),
            _mm256_permute2x128_si256::<0x20>(t1, t3),
            _mm256_permute2x128_si256::<0x31>(t0, t2),
            _mm256_permute2x128_si256::<0x31>(t1, t3),
        ]
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load_u64s(s: &[u64; 4]) -> __m256i {
        // SAFETY: `s` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load_bytes(b: &[u8; 32]) -> __m256i {
        // SAFETY: `b` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store_u64s(s: &mut [u64; 4], v: __m256i) {
        // SAFETY: `s` is 32 writable bytes; the store has no alignment requirement.
        unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor(a: __m256i, b: __m256i) -> __m256i {
        _mm256_xor_si256(a, b)
    }

    /// `a ^ (b ^ c)`: the inner xor is the same for the lanes sharing `b` and `c`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor3(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        _mm256_xor_si256(a, _mm256_xor_si256(b, c))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor5(a: __m256i, b: __m256i, c: __m256i, d: __m256i, e: __m256i) -> __m256i {
        _mm256_xor_si256(
            _mm256_xor_si256(a, b),
            _mm256_xor_si256(_mm256_xor_si256(c, d), e),
        )
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn chi(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        _mm256_xor_si256(a, _mm256_andnot_si256(b, c))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn splat(x: u64) -> __m256i {
        _mm256_set1_epi64x(x as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_required_ran, unless_required};
    use super::*;

    #[test]
    fn tables_follow_the_specification() {
        // FIPS 202, 3.2.2, table 2, and the first and last round constants.
        assert_eq!(
            RHO,
            [
                0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2,
                61, 56, 14
            ]
        );
        assert_eq!(RC[0], 1);
        assert_eq!(RC[1], 0x8082);
        assert_eq!(RC[23], 0x8000_0000_8000_8008);
        let mut seen = PI;
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, p)| i == *p));
        assert_eq!((PI[0], PI[1], PI[5]), (0, 10, 16));
    }

    /// Keccak-f[1600] of the all-zero state (the Keccak team's intermediate values).
    const ZERO_PERMUTED: [u64; 25] = [
        0xF1258F7940E1DDE7,
        0x84D5CCF933C0478A,
        0xD598261EA65AA9EE,
        0xBD1547306F80494D,
        0x8B284E056253D057,
        0xFF97A42D7F8E6FD4,
        0x90FEE5A0A44647C4,
        0x8C5BDA0CD6192E76,
        0xAD30A6F71B19059C,
        0x30935AB7D08FFC64,
        0xEB5AA93F2317D635,
        0xA9A6E6260D712103,
        0x81A57C16DBCF555F,
        0x43B831CD0347C826,
        0x01F22F1A11A5569F,
        0x05E5635A21D9AE61,
        0x64BEFEF28CC970F2,
        0x613670957BC46611,
        0xB87C5A554FD00ECB,
        0x8C3EE88A1CCF32C8,
        0x940C7922AE3A2614,
        0x1841F924A2C509E4,
        0x16F53526E70465C2,
        0x75F644E97F30A13B,
        0xEAF1FF7B5CECA249,
    ];

    #[cfg(target_arch = "x86_64")]
    fn check_zero_permutation<const W: usize>(kernel: impl Fn(&mut States<W>, &[&[u8; RATE]; W])) {
        let mut state: States<W> = [[0; W]; 25];
        kernel(&mut state, &[&[0; RATE]; W]);
        for (lanes, expected) in state.iter().zip(ZERO_PERMUTED) {
            assert_eq!(*lanes, [expected; W]);
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn kernels_permute_like_the_specification() {
        let mut ran = Vec::new();
        if let Some(k) = unless_required(Backend::Avx512, avx512_kernel()) {
            check_zero_permutation(k);
            ran.push(Backend::Avx512);
        }
        if let Some(k) = unless_required(Backend::Avx2, avx2_kernel()) {
            check_zero_permutation(k);
            ran.push(Backend::Avx2);
        }
        assert_required_ran(&ran);
    }

    /// Groups of every size up to `W`, with lanes finishing at different blocks.
    #[cfg(target_arch = "x86_64")]
    fn check_groups<const W: usize>(kernel: impl Fn(&mut States<W>, &[&[u8; RATE]; W])) {
        let data: Vec<u8> = (0..3100u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let lengths = [0, 1, 135, 136, 137, 271, 272, 273, 1400, 2999, 5, 408];
        for k in 0..=W {
            for shift in 0..lengths.len() {
                let msgs: Vec<&[u8]> = (0..k)
                    .map(|l| &data[l..l + lengths[(l + shift) % lengths.len()]])
                    .collect();
                let digests = absorb_group(&msgs, &kernel);
                for (l, d) in digests.iter().enumerate() {
                    let expected: [u8; 32] = match msgs.get(l) {
                        Some(m) => Sha3_256::digest(m).into(),
                        None => [0; 32],
                    };
                    assert_eq!(*d, expected, "lane {l} of {k}, shift {shift}");
                }
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn kernels_hash_groups_of_any_size_and_lengths() {
        let mut ran = Vec::new();
        if let Some(k) = unless_required(Backend::Avx512, avx512_kernel()) {
            check_groups(k);
            ran.push(Backend::Avx512);
        }
        if let Some(k) = unless_required(Backend::Avx2, avx2_kernel()) {
            check_groups(k);
            ran.push(Backend::Avx2);
        }
        assert_required_ran(&ran);
    }

    #[test]
    fn required_backends_are_available() {
        // The backends `ATE_REQUIRE_SIMD` names: fails here, with the reason, when one is
        // missing, whichever other test would have skipped it.
        for backend in testing::required() {
            assert!(
                backend.is_available(),
                "ATE_REQUIRE_SIMD requires the {backend:?} SHA3 backend, but this CPU cannot \
                 run it"
            );
        }
        assert!(!testing::available().is_empty());
    }

    #[test]
    fn the_required_list_is_parsed_strictly() {
        use testing::parse_required;
        assert_eq!(parse_required(""), Ok(vec![]));
        assert_eq!(parse_required(" , "), Ok(vec![]));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            parse_required("avx512, avx2,avx512"),
            Ok(vec![Backend::Avx512, Backend::Avx2])
        );
        #[cfg(not(target_arch = "x86_64"))]
        assert!(parse_required("avx2").is_err());
        for bad in ["sse", "AVX2", "avx512f", "scalar"] {
            let e = parse_required(bad).unwrap_err();
            assert!(e.contains("ATE_REQUIRE_SIMD") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn detection_picks_an_available_backend() {
        let best = Backend::best();
        assert!(best.is_available());
        assert_eq!(
            Some(best),
            Backend::ALL.iter().copied().find(|b| b.is_available())
        );
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            assert_eq!(best, Backend::Avx512);
        }
    }
}
