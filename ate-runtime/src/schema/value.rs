//! Index values read from a record's body without its Rust type.
//!
//! A record's body is the MessagePack of its struct, encoded as an array of its fields in
//! declaration order (rmp-serde's default). An index names the position of its field in that
//! array and the kind of value the field holds ([`IndexKind`]); from those the engine finds the
//! value in any body, so a process that does not link the model type (a server) computes the
//! same index keys as one that does.
//!
//! The decoder that reads a body back into its type accepts more than one encoding of a value
//! (an integer in any width that holds it, a string as MessagePack `str` or `bin`, a short string
//! behind a long length prefix). Two records whose bytes differ would then read as the same value
//! and slip past a unique index. So an index key is never the raw bytes: the value is decoded by
//! its kind and encoded again in the one form the encoder itself writes ([`canonical_key`]).
//! Only kinds whose accepted encodings are known exactly can be indexed: strings, integers,
//! booleans, and optional ones ([`IndexValue`] is implemented for exactly those).

use super::IndexKey;
use crate::event::msgpack;

/// What an indexed field holds: how [`extract`] reads its value from a body, and how
/// [`canonical_key`] keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexKind {
    /// The value's scalar kind.
    pub scalar: Scalar,
    /// Whether the field is an `Option` (MessagePack `nil` for `None`).
    pub optional: bool,
}

impl IndexKind {
    /// A field of this scalar kind, not optional.
    pub const fn of(scalar: Scalar) -> Self {
        IndexKind {
            scalar,
            optional: false,
        }
    }

    /// The same kind, optional.
    pub const fn optional(self) -> Self {
        IndexKind {
            scalar: self.scalar,
            optional: true,
        }
    }
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.scalar {
            Scalar::String => "string",
            Scalar::Integer => "integer",
            Scalar::Bool => "boolean",
        };
        if self.optional {
            write!(f, "optional {name}")
        } else {
            f.write_str(name)
        }
    }
}

/// The scalar kinds an index can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scalar {
    /// UTF-8 text (`String`, `Box<str>`, `char`); recorded as 1.
    String,
    /// A signed or unsigned integer of at most 64 bits; recorded as 2.
    Integer,
    /// `bool`; recorded as 3.
    Bool,
}

impl Scalar {
    /// The number a schema record stores for this kind.
    pub const fn code(self) -> u8 {
        match self {
            Scalar::String => 1,
            Scalar::Integer => 2,
            Scalar::Bool => 3,
        }
    }

    /// The kind a schema record's number stands for.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Scalar::String),
            2 => Some(Scalar::Integer),
            3 => Some(Scalar::Bool),
            _ => None,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A field type a `#[dao(index)]` can be put on, and the [`IndexKind`] it is recorded as.
///
/// Implemented for `String`, `Box<str>`, `char`, `bool`, the integer types up to 64 bits, and
/// `Option` of any of them. Other types (floats, enums, structs, collections) have more than one
/// encoding their decoder accepts that the engine cannot tell apart without their Rust type, so
/// a unique index over them could be bypassed by a writer choosing another encoding: index a
/// field of one of these types instead (for an enum, e.g. its name as a `String`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be indexed",
    label = "an indexed field must be a string, an integer, a bool, or an Option of one",
    note = "the engine reads index values from stored bodies without the Rust type, so only these kinds have exactly one meaning per encoding"
)]
pub trait IndexValue: sealed::Sealed {
    /// How the field is recorded in the chain's schema.
    const KIND: IndexKind;
}

macro_rules! index_value {
    ($scalar:ident: $($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl IndexValue for $ty {
            const KIND: IndexKind = IndexKind::of(Scalar::$scalar);
        }
    )*};
}

index_value!(String: String, Box<str>, char);
index_value!(Integer: u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
index_value!(Bool: bool);

impl<T: IndexValue> sealed::Sealed for Option<T> {}
impl<T: IndexValue> IndexValue for Option<T> {
    const KIND: IndexKind = T::KIND.optional();
}

/// Why a body holds no value for an index, or a value is not of the index's kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The body is not a MessagePack array (a struct encoded as a map, or not a struct).
    #[error("the body is not a MessagePack array of the struct's fields")]
    NotAnArray,
    /// The array ends before the field's position.
    #[error("the body has {len} fields, the index reads field {position}")]
    Missing {
        /// Fields in the body.
        len: u64,
        /// The field's position.
        position: u32,
    },
    /// The bytes end inside a value, or use the unused marker `0xc1`.
    #[error("the body is not valid MessagePack")]
    Malformed,
    /// The value is not of the index's kind.
    #[error("the value is {found}, the index holds {expected}")]
    WrongKind {
        /// What the value is.
        found: &'static str,
        /// The index's kind.
        expected: IndexKind,
    },
    /// A string value is not UTF-8.
    #[error("the string value is not UTF-8")]
    NotUtf8,
    /// Bytes follow the value (for a key given on its own).
    #[error("bytes follow the value")]
    Trailing,
}

/// Reads MessagePack from a slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], ValueError> {
        let n = usize::try_from(n).map_err(|_| ValueError::Malformed)?;
        if n > self.buf.len() {
            return Err(ValueError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, width: u64) -> Result<u64, ValueError> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    }

    /// The length of an array that starts here.
    fn array_len(&mut self) -> Result<u64, ValueError> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok(u64::from(m & 0x0f)),
            0xdc => self.uint(2),
            0xdd => self.uint(4),
            _ => Err(ValueError::NotAnArray),
        }
    }

    /// Skips `count` values, nested ones included, without recursion: each nested container
    /// adds its items to the count. Every value takes at least one byte, so a count beyond the
    /// bytes left is malformed at once, whatever a length prefix claims.
    fn skip(&mut self, mut count: u64) -> Result<(), ValueError> {
        while count > 0 {
            if count > self.buf.len() as u64 {
                return Err(ValueError::Malformed);
            }
            count -= 1;
            let m = self.byte()?;
            let (bytes, items) =
                msgpack::extent(m, |n| self.uint(n))?.ok_or(ValueError::Malformed)?;
            self.take(bytes)?;
            count = count.checked_add(items).ok_or(ValueError::Malformed)?;
        }
        Ok(())
    }

    /// Reads one scalar value of kind `kind` and appends its canonical encoding to `out`.
    fn canonical(&mut self, kind: IndexKind, out: &mut Vec<u8>) -> Result<(), ValueError> {
        let wrong = |found| ValueError::WrongKind {
            found,
            expected: kind,
        };
        let m = self.byte()?;
        match m {
            0xc0 if kind.optional => {
                out.push(0xc0);
                Ok(())
            }
            0xc0 => Err(wrong("nil")),
            0xc2 | 0xc3 if kind.scalar == Scalar::Bool => {
                out.push(m);
                Ok(())
            }
            0xc2 | 0xc3 => Err(wrong("a boolean")),
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => {
                if kind.scalar != Scalar::Integer {
                    return Err(wrong("an integer"));
                }
                let value: i128 = match m {
                    0x00..=0x7f => i128::from(m),
                    0xe0..=0xff => i128::from(m as i8),
                    0xcc => i128::from(self.uint(1)?),
                    0xcd => i128::from(self.uint(2)?),
                    0xce => i128::from(self.uint(4)?),
                    0xcf => i128::from(self.uint(8)?),
                    0xd0 => i128::from(self.uint(1)? as u8 as i8),
                    0xd1 => i128::from(self.uint(2)? as u16 as i16),
                    0xd2 => i128::from(self.uint(4)? as u32 as i32),
                    _ => i128::from(self.uint(8)? as i64),
                };
                encode_integer(value, out);
                Ok(())
            }
            0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6 => {
                if kind.scalar != Scalar::String {
                    return Err(wrong(if (0xc4..=0xc6).contains(&m) {
                        "binary"
                    } else {
                        "a string"
                    }));
                }
                let len = match m {
                    0xa0..=0xbf => u64::from(m & 0x1f),
                    0xd9 | 0xc4 => self.uint(1)?,
                    0xda | 0xc5 => self.uint(2)?,
                    _ => self.uint(4)?,
                };
                // The decoder reads a string from `bin` too, when it is UTF-8.
                let text = std::str::from_utf8(self.take(len)?).map_err(|_| ValueError::NotUtf8)?;
                encode_str(text, out);
                Ok(())
            }
            0xca | 0xcb => Err(wrong("a float")),
            0x80..=0x8f | 0xde | 0xdf => Err(wrong("a map")),
            0x90..=0x9f | 0xdc | 0xdd => Err(wrong("an array")),
            0xc7..=0xc9 | 0xd4..=0xd8 => Err(wrong("an extension value")),
            0xc1 => Err(ValueError::Malformed),
        }
    }
}

/// Appends the encoding rmp-serde writes for an integer: the shortest form, unsigned markers
/// for values from 0 up, signed ones below.
fn encode_integer(v: i128, out: &mut Vec<u8>) {
    if v >= 0 {
        let v = v as u64;
        if v < 0x80 {
            out.push(v as u8);
        } else if v <= u64::from(u8::MAX) {
            out.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= u64::from(u16::MAX) {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= u64::from(u32::MAX) {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    } else {
        let v = v as i64;
        if v >= -32 {
            out.push(v as i8 as u8);
        } else if v >= i64::from(i8::MIN) {
            out.extend_from_slice(&[0xd0, v as i8 as u8]);
        } else if v >= i64::from(i16::MIN) {
            out.push(0xd1);
            out.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i64::from(i32::MIN) {
            out.push(0xd2);
            out.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Appends the encoding rmp-serde writes for a string: `str` with the shortest length prefix.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// The index key of one encoded value of kind `kind` (e.g. a finder's query, encoded with
/// [`index_key`](super::index_key)): the value in the one encoding the encoder writes.
///
/// # Errors
///
/// [`ValueError::WrongKind`] and [`ValueError::NotUtf8`] for a value that is not of the kind,
/// [`ValueError::Malformed`] for bytes that end inside it, [`ValueError::Trailing`] when bytes
/// follow it.
pub fn canonical_key(kind: IndexKind, encoded: &[u8]) -> Result<IndexKey, ValueError> {
    let mut r = Reader { buf: encoded };
    let mut out = Vec::with_capacity(encoded.len());
    r.canonical(kind, &mut out)?;
    if !r.buf.is_empty() {
        return Err(ValueError::Trailing);
    }
    Ok(out)
}

/// The index key a record's `body` holds at `position` (0 for the struct's first serialized
/// field), for an index of kind `kind`.
///
/// # Errors
///
/// [`ValueError::NotAnArray`] when the body is not an array of fields,
/// [`ValueError::Missing`] when it has no field at `position`, and the errors of
/// [`canonical_key`] for the value there (bytes after it are the next fields).
pub fn extract(body: &[u8], position: u32, kind: IndexKind) -> Result<IndexKey, ValueError> {
    let mut r = Reader { buf: body };
    let len = r.array_len()?;
    if u64::from(position) >= len {
        return Err(ValueError::Missing { len, position });
    }
    r.skip(u64::from(position))?;
    let mut out = Vec::new();
    r.canonical(kind, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;

    const STR: IndexKind = IndexKind::of(Scalar::String);
    const INT: IndexKind = IndexKind::of(Scalar::Integer);
    const BOOL: IndexKind = IndexKind::of(Scalar::Bool);

    fn enc<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec(v).expect("encodes")
    }

    #[derive(Serialize)]
    struct Row {
        id: u32,
        tags: Vec<Vec<String>>,
        meta: std::collections::BTreeMap<String, f64>,
        name: String,
        owner: Option<i64>,
        on: bool,
    }

    fn row() -> Row {
        Row {
            id: 7,
            tags: vec![vec!["a".into(), "b".into()], vec![]],
            meta: [("x".to_string(), 1.5)].into_iter().collect(),
            name: "Ada".into(),
            owner: Some(-300),
            on: true,
        }
    }

    #[test]
    fn fields_are_found_by_position_past_nested_values() {
        let body = enc(&row());
        assert_eq!(extract(&body, 0, INT), Ok(enc(&7u32)));
        assert_eq!(extract(&body, 3, STR), Ok(enc("Ada")));
        assert_eq!(extract(&body, 4, INT.optional()), Ok(enc(&-300i64)));
        assert_eq!(extract(&body, 5, BOOL), Ok(enc(&true)));
        let none = Row {
            owner: None,
            ..row()
        };
        assert_eq!(extract(&enc(&none), 4, INT.optional()), Ok(vec![0xc0]));
        assert_eq!(
            extract(&enc(&none), 4, INT),
            Err(ValueError::WrongKind {
                found: "nil",
                expected: INT
            })
        );
        assert_eq!(
            extract(&body, 6, BOOL),
            Err(ValueError::Missing {
                len: 6,
                position: 6
            })
        );
        assert!(matches!(
            extract(&body, 1, STR),
            Err(ValueError::WrongKind { .. })
        ));
        assert!(matches!(
            extract(&body, 2, INT),
            Err(ValueError::WrongKind { found: "a map", .. })
        ));
    }

    #[test]
    fn a_struct_encoded_as_a_map_or_a_scalar_is_not_a_body_of_fields() {
        let named = rmp_serde::to_vec_named(&row()).expect("encodes");
        assert_eq!(extract(&named, 0, INT), Err(ValueError::NotAnArray));
        assert_eq!(extract(&enc("x"), 0, STR), Err(ValueError::NotAnArray));
        assert_eq!(extract(&[], 0, STR), Err(ValueError::Malformed));
    }

    #[test]
    fn every_encoding_the_decoder_accepts_gives_one_key() {
        // What rmp-serde reads back as the same value: wider integer markers, `bin` for a
        // string, long length prefixes for a short string.
        let key = enc(&5u32);
        for encoded in [
            vec![0x05],
            vec![0xcc, 5],
            vec![0xcd, 0, 5],
            vec![0xce, 0, 0, 0, 5],
            vec![0xcf, 0, 0, 0, 0, 0, 0, 0, 5],
            vec![0xd0, 5],
            vec![0xd1, 0, 5],
            vec![0xd2, 0, 0, 0, 5],
            vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 5],
        ] {
            assert_eq!(
                canonical_key(INT, &encoded),
                Ok(key.clone()),
                "{encoded:02x?}"
            );
        }
        assert_eq!(
            canonical_key(INT, &[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb]),
            Ok(enc(&-5i8))
        );
        let key = enc("hi");
        for encoded in [
            vec![0xa2, b'h', b'i'],
            vec![0xd9, 2, b'h', b'i'],
            vec![0xda, 0, 2, b'h', b'i'],
            vec![0xdb, 0, 0, 0, 2, b'h', b'i'],
            vec![0xc4, 2, b'h', b'i'],
            vec![0xc5, 0, 2, b'h', b'i'],
            vec![0xc6, 0, 0, 0, 2, b'h', b'i'],
        ] {
            assert_eq!(
                canonical_key(STR, &encoded),
                Ok(key.clone()),
                "{encoded:02x?}"
            );
        }
        assert_eq!(
            canonical_key(STR, &[0xc4, 1, 0xff]),
            Err(ValueError::NotUtf8)
        );
        assert_eq!(
            canonical_key(STR, &[0xa2, b'h']),
            Err(ValueError::Malformed)
        );
        assert_eq!(
            canonical_key(STR, &[0xa1, b'h', 0]),
            Err(ValueError::Trailing)
        );
        assert_eq!(canonical_key(BOOL, &[0xc1]), Err(ValueError::Malformed));
    }

    #[test]
    fn lying_lengths_are_malformed_without_allocating() {
        // An array claiming 2^32 - 1 items, a map claiming as many pairs, a string past the end.
        for body in [
            vec![0x92, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
            vec![0x92, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01],
            vec![0x92, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x01],
            vec![0x92, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
        ] {
            assert_eq!(
                extract(&body, 1, INT),
                Err(ValueError::Malformed),
                "{body:02x?}"
            );
        }
        // Deep nesting is skipped without recursion.
        let mut deep = vec![0x92];
        deep.extend(std::iter::repeat_n(0x91, 100_000));
        deep.push(0x01);
        deep.push(0x2a);
        assert_eq!(extract(&deep, 1, INT), Ok(vec![0x2a]));
    }

    proptest! {
        #[test]
        fn integer_keys_are_what_the_encoder_writes(v in any::<i64>(), u in any::<u64>()) {
            prop_assert_eq!(canonical_key(INT, &enc(&v)), Ok(enc(&v)));
            prop_assert_eq!(canonical_key(INT, &enc(&u)), Ok(enc(&u)));
            // Any width that holds the value reads as the same key.
            let mut wide = vec![0xd3];
            wide.extend_from_slice(&v.to_be_bytes());
            prop_assert_eq!(canonical_key(INT, &wide), Ok(enc(&v)));
            let mut wide = vec![0xcf];
            wide.extend_from_slice(&u.to_be_bytes());
            prop_assert_eq!(canonical_key(INT, &wide), Ok(enc(&u)));
        }

        #[test]
        fn string_keys_are_what_the_encoder_writes(s in ".{0,80}", n in 0usize..70_000) {
            prop_assert_eq!(canonical_key(STR, &enc(&s)), Ok(enc(&s)));
            let long = "x".repeat(n);
            prop_assert_eq!(canonical_key(STR, &enc(&long)), Ok(enc(&long)));
            let c = s.chars().next().unwrap_or('z');
            prop_assert_eq!(canonical_key(STR, &enc(&c)), Ok(enc(&c.to_string())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64), pos in 0u32..8) {
            for kind in [STR, INT, BOOL, STR.optional()] {
                let _ = extract(&body, pos, kind);
                let _ = canonical_key(kind, &body);
            }
        }
    }
}
