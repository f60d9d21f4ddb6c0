//! Structural check of a Falcon key pair given as bytes.
//!
//! Falcon's signing loop retries until it draws a short enough signature; with a secret key that
//! is not a proper NTRU basis it never does, and signing hangs. Keys made by `generate` are
//! fine; keys decoded from bytes are checked here first, with the conditions Falcon's own key
//! generation enforces:
//!
//! * the encodings decode (public `h` mod q, secret `f`, `g`, `F` as trimmed small integers);
//! * `f·h = g (mod q)`: the halves belong together;
//! * `G = h·F (mod q)` has coefficients in `[-127, 127]` and `f·G − g·F = q` over the integers
//!   (the NTRU equation, so `(f, g, F, G)` is a basis of the lattice of `h`);
//! * `‖(g, −f)‖² < 16823` and the Gram–Schmidt norm of the second basis vector is below
//!   `1.17² · q`, the bounds under which the signing loop terminates as for generated keys.
//!
//! Polynomials live in `Z[x]/(x^n + 1)` with `n = 2^logn`; products are computed directly in
//! `O(n²)` (a few milliseconds when optimized; this runs only when a key is loaded).

use std::f64::consts::PI;

const Q: i64 = 12289;

/// Squared-norm bound of `(g, −f)` (integral form of `1.17² · q`).
const FG_NORM_MAX: i64 = 16823;

/// Bound of the squared Gram–Schmidt norm, `1.17² · q`.
const GS_NORM_MAX: f64 = 16822.4121;

/// Checks that `public` and `secret` (full encodings, header bytes included) form a usable
/// Falcon key pair of degree `2^logn`. Lengths and header bytes are checked by the caller.
pub(super) fn check_pair(logn: u32, public: &[u8], secret: &[u8]) -> Result<(), &'static str> {
    let n = 1usize << logn;
    let fg_bits = if logn <= 9 { 6 } else { 5 };
    let fg_len = n * fg_bits / 8;

    let h = decode_mod_q(&public[1..], n).ok_or("public key does not decode")?;
    let secret = &secret[1..];
    let f = decode_small(&secret[..fg_len], n, fg_bits).ok_or("private key does not decode")?;
    let g = decode_small(&secret[fg_len..2 * fg_len], n, fg_bits)
        .ok_or("private key does not decode")?;
    let big_f = decode_small(&secret[2 * fg_len..], n, 8).ok_or("private key does not decode")?;

    let norm: i64 = f.iter().chain(&g).map(|c| c * c).sum();
    if norm >= FG_NORM_MAX {
        return Err("private key vector too long");
    }

    let fh = negacyclic_mul(&f, &h);
    if fh.iter().zip(&g).any(|(a, b)| (a - b).rem_euclid(Q) != 0) {
        return Err("halves do not match");
    }

    let big_g: Vec<i64> = negacyclic_mul(&big_f, &h)
        .into_iter()
        .map(|c| {
            let c = c.rem_euclid(Q);
            if c > Q / 2 { c - Q } else { c }
        })
        .collect();
    if big_g.iter().any(|c| c.abs() > 127) {
        return Err("private key is not an NTRU basis");
    }
    let fg = negacyclic_mul(&f, &big_g);
    let gf = negacyclic_mul(&g, &big_f);
    let ntru_equation_holds = fg
        .iter()
        .zip(&gf)
        .enumerate()
        .all(|(i, (a, b))| a - b == if i == 0 { Q } else { 0 });
    if !ntru_equation_holds {
        return Err("private key is not an NTRU basis");
    }

    // Written so that a NaN (f and g sharing a root) is refused too.
    let within = gram_schmidt_norm(&f, &g) < GS_NORM_MAX;
    if !within {
        return Err("private key basis too long");
    }
    Ok(())
}

/// `a · b` in `Z[x]/(x^n + 1)`, exactly (inputs are small enough for `i64`).
fn negacyclic_mul(a: &[i64], b: &[i64]) -> Vec<i64> {
    let n = a.len();
    let mut out = vec![0i64; n];
    for (i, &ai) in a.iter().enumerate() {
        if ai == 0 {
            continue;
        }
        for (j, &bj) in b.iter().enumerate() {
            let k = i + j;
            if k < n {
                out[k] += ai * bj;
            } else {
                out[k - n] -= ai * bj;
            }
        }
    }
    out
}

/// Squared norm of the second Gram–Schmidt vector, `q·(f̄, ḡ)/(f·f̄ + g·ḡ)`: by Parseval over
/// the `n` roots `ω` of `x^n + 1`, `(q² / n) · Σ 1 / (|f(ω)|² + |g(ω)|²)`.
fn gram_schmidt_norm(f: &[i64], g: &[i64]) -> f64 {
    let n = f.len();
    let two_n = 2 * n;
    // exp(iπm/n) for m in 0..2n: the powers of every root are among these.
    let table: Vec<(f64, f64)> = (0..two_n)
        .map(|m| {
            let a = PI * m as f64 / n as f64;
            (a.cos(), a.sin())
        })
        .collect();
    let mut sum = 0.0;
    for j in 0..n {
        let step = 2 * j + 1;
        let (mut fr, mut fi, mut gr, mut gi) = (0.0, 0.0, 0.0, 0.0);
        let mut idx = 0;
        for k in 0..n {
            let (c, s) = table[idx];
            fr += f[k] as f64 * c;
            fi += f[k] as f64 * s;
            gr += g[k] as f64 * c;
            gi += g[k] as f64 * s;
            idx = (idx + step) % two_n;
        }
        sum += 1.0 / (fr * fr + fi * fi + gr * gr + gi * gi);
    }
    (Q * Q) as f64 * sum / n as f64
}

/// Big-endian bit reader over a byte string.
struct Bits<'a> {
    bytes: &'a [u8],
    acc: u32,
    acc_len: u32,
}

impl Bits<'_> {
    fn take(&mut self, bits: u32) -> Option<u32> {
        while self.acc_len < bits {
            let (first, rest) = self.bytes.split_first()?;
            self.acc = (self.acc << 8) | u32::from(*first);
            self.acc_len += 8;
            self.bytes = rest;
        }
        self.acc_len -= bits;
        Some((self.acc >> self.acc_len) & ((1 << bits) - 1))
    }

    /// All input consumed and the unused low bits of the last byte are zero.
    fn finished(&self) -> bool {
        self.bytes.is_empty() && self.acc & ((1 << self.acc_len) - 1) == 0
    }
}

/// `n` values of 14 bits, each below q.
fn decode_mod_q(bytes: &[u8], n: usize) -> Option<Vec<i64>> {
    let mut r = Bits {
        bytes,
        acc: 0,
        acc_len: 0,
    };
    let out = (0..n)
        .map(|_| r.take(14).filter(|w| i64::from(*w) < Q).map(i64::from))
        .collect::<Option<Vec<_>>>()?;
    r.finished().then_some(out)
}

/// `n` two's-complement values of `bits` bits, `-2^(bits-1)` excluded.
fn decode_small(bytes: &[u8], n: usize, bits: usize) -> Option<Vec<i64>> {
    let bits = bits as u32;
    let mut r = Bits {
        bytes,
        acc: 0,
        acc_len: 0,
    };
    let half = 1i64 << (bits - 1);
    let out = (0..n)
        .map(|_| {
            let w = i64::from(r.take(bits)?);
            let v = if w >= half { w - 2 * half } else { w };
            (v != -half).then_some(v)
        })
        .collect::<Option<Vec<_>>>()?;
    r.finished().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negacyclic_wraps_with_a_sign_change() {
        // (1 + x) · x = x + x², and x · x = x² = -1 when n = 2.
        assert_eq!(
            negacyclic_mul(&[1, 1, 0, 0], &[0, 1, 0, 0]),
            vec![0, 1, 1, 0]
        );
        assert_eq!(negacyclic_mul(&[0, 1], &[0, 1]), vec![-1, 0]);
    }

    #[test]
    fn small_decoding_refuses_the_excluded_value_and_stray_bits() {
        // 6-bit values 000001 111111 -> 1, -1 (12 bits, padded to 2 bytes with zeros).
        assert_eq!(
            decode_small(&[0b0000_0111, 0b1111_0000], 2, 6),
            Some(vec![1, -1])
        );
        assert_eq!(decode_small(&[0b1000_0000, 0b0000_0000], 2, 6), None);
        assert_eq!(decode_small(&[0b0000_0111, 0b1111_0001], 2, 6), None);
        assert_eq!(decode_mod_q(&[0xff, 0xfc], 1), None);
    }
}
