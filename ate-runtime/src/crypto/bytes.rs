//! Serde helper for byte strings (`#[serde(with = "super::bytes")]`).
//!
//! Compact formats (MessagePack, bincode) get a native byte string (`bin` in MessagePack, so a
//! 32-byte hash costs 34 bytes instead of up to 65 as an array of integers); human-readable
//! formats get lowercase hex. Decoding accepts a byte string, a hex string or a sequence of
//! integers, and checks the length of fixed-size fields.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use super::secret::SecretBytes;

/// Serializes anything byte-like as a byte string (hex when human-readable).
pub(crate) fn serialize<S, T>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: AsRef<[u8]> + ?Sized,
{
    if serializer.is_human_readable() {
        serializer.serialize_str(&hex::encode(value.as_ref()))
    } else {
        serializer.serialize_bytes(value.as_ref())
    }
}

/// Deserializes a byte string into `T`, checking its length where `T` has a fixed one.
pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromByteVec,
{
    let bytes = if deserializer.is_human_readable() {
        deserializer.deserialize_str(BytesVisitor)?
    } else {
        deserializer.deserialize_byte_buf(BytesVisitor)?
    };
    T::from_byte_vec(bytes).map_err(de::Error::custom)
}

/// Deserializes a byte string of exactly `N` bytes without allocating (hashes are decoded by
/// the thousand per transaction): the same inputs as [`deserialize`], the same length check.
pub(crate) fn deserialize_array<'de, D, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error>
where
    D: Deserializer<'de>,
{
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(ArrayVisitor::<N>)
    } else {
        deserializer.deserialize_bytes(ArrayVisitor::<N>)
    }
}

struct ArrayVisitor<const N: usize>;

impl<const N: usize> ArrayVisitor<N> {
    fn fit<E: de::Error>(v: &[u8]) -> Result<[u8; N], E> {
        v.try_into()
            .map_err(|_| E::custom(format!("expected {N} bytes, found {}", v.len())))
    }
}

impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{N} bytes as a byte string, a hex string or a sequence of bytes"
        )
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
        Self::fit(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        hex::decode_to_slice(v, &mut out).map_err(|_| {
            E::custom(format!(
                "expected {} hex digits, found {:?}",
                2 * N,
                v.len()
            ))
        })?;
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
        let mut out = [0u8; N];
        let mut n = 0;
        while let Some(b) = seq.next_element::<u8>()? {
            if n == N {
                return Err(de::Error::custom(format!("expected {N} bytes, found more")));
            }
            out[n] = b;
            n += 1;
        }
        if n != N {
            return Err(de::Error::custom(format!("expected {N} bytes, found {n}")));
        }
        Ok(out)
    }
}

/// Types built from a decoded byte vector.
pub(crate) trait FromByteVec: Sized {
    /// Builds the value, or says why the bytes do not fit.
    fn from_byte_vec(bytes: Vec<u8>) -> Result<Self, String>;
}

impl FromByteVec for Vec<u8> {
    fn from_byte_vec(bytes: Vec<u8>) -> Result<Self, String> {
        Ok(bytes)
    }
}

impl FromByteVec for Box<[u8]> {
    fn from_byte_vec(bytes: Vec<u8>) -> Result<Self, String> {
        Ok(bytes.into_boxed_slice())
    }
}

impl<const N: usize> FromByteVec for [u8; N] {
    fn from_byte_vec(bytes: Vec<u8>) -> Result<Self, String> {
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| format!("expected {N} bytes, found {len}"))
    }
}

impl FromByteVec for SecretBytes {
    fn from_byte_vec(bytes: Vec<u8>) -> Result<Self, String> {
        Ok(SecretBytes::from_vec(bytes))
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string, a hex string or a sequence of bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        hex::decode(v).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // Cap the preallocation: the hint comes from untrusted input.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}
