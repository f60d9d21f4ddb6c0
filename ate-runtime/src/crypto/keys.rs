//! Serialized forms shared by the asymmetric key types.
//!
//! With MessagePack (structs as arrays) a public key is `[algorithm id, public bytes]` and a
//! private key is `[algorithm id, public bytes, secret bytes]`, byte fields as `bin` strings.
//! Decoding goes through the key types' `from_bytes` constructors, so every check they make
//! (algorithm id, lengths, headers, matching halves) applies to decoded keys too.

use serde::{Deserialize, Serialize};

use super::hash::Hash;
use super::secret::SecretBytes;

/// A public key, borrowed for serialization.
#[derive(Serialize)]
pub(crate) struct PublicRef<'a, A> {
    pub(crate) alg: A,
    #[serde(with = "super::bytes")]
    pub(crate) public: &'a [u8],
}

/// A public key as decoded, before validation.
#[derive(Deserialize)]
pub(crate) struct PublicOwned<A> {
    pub(crate) alg: A,
    #[serde(with = "super::bytes")]
    pub(crate) public: Box<[u8]>,
}

/// A private key, borrowed for serialization.
#[derive(Serialize)]
pub(crate) struct PrivateRef<'a, A> {
    pub(crate) alg: A,
    #[serde(with = "super::bytes")]
    pub(crate) public: &'a [u8],
    #[serde(with = "super::bytes")]
    pub(crate) secret: &'a [u8],
}

/// A private key as decoded, before validation; the secret half is wiped when this is dropped.
#[derive(Deserialize)]
pub(crate) struct PrivateOwned<A> {
    pub(crate) alg: A,
    #[serde(with = "super::bytes")]
    pub(crate) public: Box<[u8]>,
    #[serde(with = "super::bytes")]
    pub(crate) secret: SecretBytes,
}

/// The items every asymmetric key pair type shares. The public type has fields
/// `alg: $alg, bytes: Arc<[u8]>, id: Hash`; the private type has `public: $public,
/// secret: SecretBytes`; both have a `from_bytes` constructor that checks everything (used when
/// decoding). Generates, for the public type: `new` (computes the id as
/// `Hash::of_parts([$tag, [algorithm id], key bytes])`), `algorithm`, `as_bytes`, `hash`,
/// equality and hashing over algorithm and bytes, a `Debug` showing algorithm and id, serde.
/// For the private type: `generate`, `generate_for`, `algorithm`, `public_key`, `as_public_key`, `hash`, `secret_bytes`, a
/// `Debug` showing only algorithm and public id, serde.
/// How many recently named public keys each thread remembers (see [`key_id`]).
const KEY_ID_CACHE: usize = 4;

/// A public key's id, `Hash::of_parts([tag, [alg], bytes])`.
///
/// The same few public keys are decoded over and over (the signer of every transaction, the
/// reader named by every event's rules), and hashing one costs microseconds while comparing its
/// bytes costs nanoseconds; so each thread remembers the last few keys it named, by their exact
/// bytes, and only hashes a key it has not seen. The bytes are public; a hit returns exactly the
/// hash that would have been computed.
pub(crate) fn key_id(tag: &'static [u8], alg: u8, bytes: &[u8]) -> Hash {
    type Entry = (&'static [u8], u8, Box<[u8]>, Hash);
    thread_local! {
        static RECENT: std::cell::RefCell<Vec<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let hit = RECENT.with_borrow_mut(|recent| {
        let at = recent
            .iter()
            .position(|(t, a, b, _)| *t == tag && *a == alg && &b[..] == bytes)?;
        // Most recently used first.
        let entry = recent.remove(at);
        let id = entry.3;
        recent.insert(0, entry);
        Some(id)
    });
    if let Some(id) = hit {
        return id;
    }
    let id = Hash::of_parts(&[tag, &[alg], bytes]);
    RECENT.with_borrow_mut(|recent| {
        recent.truncate(KEY_ID_CACHE - 1);
        recent.insert(0, (tag, alg, bytes.into(), id));
    });
    id
}

macro_rules! key_pair_impls {
    ($public:ident, $private:ident, $alg:ty, $tag:expr) => {
        impl $public {
            fn new(alg: $alg, bytes: std::sync::Arc<[u8]>) -> Self {
                let id = $crate::crypto::keys::key_id($tag, alg.as_u8(), &bytes);
                $public { alg, bytes, id }
            }

            /// The algorithm.
            pub fn algorithm(&self) -> $alg {
                self.alg
            }

            /// The key's encoding.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes
            }

            /// The key's stable id: `Hash::of_parts([tag, [algorithm id], key bytes])` with this
            /// key type's tag from [`domain`](super::domain). Its private key has the same id.
            pub fn hash(&self) -> Hash {
                self.id
            }
        }

        impl PartialEq for $public {
            fn eq(&self, other: &Self) -> bool {
                // Clones share their bytes: no need to compare them then.
                self.alg == other.alg
                    && (std::sync::Arc::ptr_eq(&self.bytes, &other.bytes)
                        || self.bytes == other.bytes)
            }
        }

        impl Eq for $public {}

        impl std::hash::Hash for $public {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.id.hash(state);
            }
        }

        impl std::fmt::Debug for $public {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($public))
                    .field("alg", &self.alg)
                    .field("id", &self.id)
                    .finish()
            }
        }

        impl serde::Serialize for $public {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::keys::PublicRef {
                    alg: self.alg,
                    public: &self.bytes,
                }
                .serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $public {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let w = super::keys::PublicOwned::deserialize(d)?;
                $public::from_bytes(w.alg, &w.public).map_err(serde::de::Error::custom)
            }
        }

        impl $private {
            /// A new key pair of the algorithm chosen for `size` (see
            /// [`KeySize`](super::KeySize)), from the operating system's randomness.
            pub fn generate(size: super::KeySize) -> Self {
                $private::generate_for(<$alg>::for_key_size(size))
            }

            /// A new key pair of algorithm `alg`.
            pub fn generate_for(alg: $alg) -> Self {
                let (public, secret) = (alg.suite().keypair)();
                $private {
                    public: $public::new(alg, public.into()),
                    secret,
                }
            }

            /// The algorithm.
            pub fn algorithm(&self) -> $alg {
                self.public.alg
            }

            /// The public half.
            pub fn public_key(&self) -> &$public {
                &self.public
            }

            /// The public half, owned.
            pub fn as_public_key(&self) -> $public {
                self.public.clone()
            }

            /// The id of the public half: a private key and its public key have the same id.
            pub fn hash(&self) -> Hash {
                self.public.id
            }

            /// The secret key's encoding. Never log it or store it unprotected.
            pub fn secret_bytes(&self) -> &[u8] {
                self.secret.expose()
            }
        }

        impl std::fmt::Debug for $private {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($private))
                    .field("alg", &self.public.alg)
                    .field("id", &self.public.id)
                    .finish_non_exhaustive()
            }
        }

        impl serde::Serialize for $private {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::keys::PrivateRef {
                    alg: self.public.alg,
                    public: &self.public.bytes,
                    secret: self.secret.expose(),
                }
                .serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $private {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let w = super::keys::PrivateOwned::deserialize(d)?;
                $private::from_bytes(w.alg, &w.public, w.secret.expose())
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use key_pair_impls;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_key_ids_are_the_computed_ones() {
        let keys: Vec<Vec<u8>> = (0..KEY_ID_CACHE as u8 + 3).map(|i| vec![i; 64]).collect();
        for _ in 0..3 {
            for (i, k) in keys.iter().enumerate() {
                for (tag, alg) in [
                    (b"tag-a" as &'static [u8], 1u8),
                    (b"tag-b", 1),
                    (b"tag-a", 2),
                ] {
                    let expected = Hash::of_parts(&[tag, &[alg], k]);
                    assert_eq!(key_id(tag, alg, k), expected, "key {i}");
                    assert_eq!(key_id(tag, alg, k), expected, "key {i} again");
                }
            }
        }
    }
}
