//! Who may read and who may write a record.

use serde::{Deserialize, Serialize};

use crate::crypto::{EncryptKey, Hash, PublicEncryptKey};

/// Who may read a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum ReadOption {
    /// Whatever the parent allows (the chain root allows everyone).
    #[default]
    Inherit,
    /// Stored in plaintext: anyone holding the log can read it.
    Everyone,
    /// Encrypted for one read key.
    Specific(ReadKey),
}

/// The key a record is encrypted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReadKey {
    /// A symmetric key (`EncryptKey`) held by readers; named by its hash. A writer must hold it
    /// too, in its session.
    Symmetric(Hash),
    /// An NTRU public key: anyone can write for it, only the private key's holder can read.
    /// Rules name it by its id; the key itself travels once per transaction, in its key
    /// directory.
    Public(PublicReadKey),
}

impl ReadKey {
    /// The hash naming the key readers need.
    pub fn hash(&self) -> Hash {
        match self {
            ReadKey::Symmetric(h) => *h,
            ReadKey::Public(pk) => pk.id,
        }
    }
}

/// An NTRU public read key as a rule names it: by its id ([`PublicEncryptKey::hash`]).
///
/// Encoded as the id alone, so a record's rules stay small; the key is written once per
/// transaction that names it, in the transaction's key directory, and the chain's view keeps
/// every key its transactions named. A rule made from a key in this process
/// ([`ReadOption::from_public_key`]) carries the key too, so the writer of the first record
/// for it can wrap data keys; one decoded from a log carries the id only. Equality and hashing
/// are by id.
#[derive(Clone)]
pub struct PublicReadKey {
    id: Hash,
    key: Option<PublicEncryptKey>,
}

impl PublicReadKey {
    /// The rule's name for `key`, carrying the key.
    pub fn new(key: &PublicEncryptKey) -> Self {
        PublicReadKey {
            id: key.hash(),
            key: Some(key.clone()),
        }
    }

    /// A name for the key with id `id`, without the key.
    pub fn from_id(id: Hash) -> Self {
        PublicReadKey { id, key: None }
    }

    /// The key's id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The key itself, when this rule was made from it in this process.
    pub fn key(&self) -> Option<&PublicEncryptKey> {
        self.key.as_ref()
    }
}

impl PartialEq for PublicReadKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for PublicReadKey {}

impl std::hash::Hash for PublicReadKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Debug for PublicReadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicReadKey({:?})", self.id)
    }
}

impl Serialize for PublicReadKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicReadKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Hash::deserialize(d).map(PublicReadKey::from_id)
    }
}

impl ReadOption {
    /// Readable only with `key` (a symmetric read key).
    pub fn from_key(key: &EncryptKey) -> Self {
        ReadOption::Specific(ReadKey::Symmetric(key.hash()))
    }

    /// Readable only with the private half of `key`.
    pub fn from_public_key(key: &PublicEncryptKey) -> Self {
        ReadOption::Specific(ReadKey::Public(PublicReadKey::new(key)))
    }
}

/// Who may write (update, delete, re-authorize, add children under) a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum WriteOption {
    /// Whatever the parent allows (at the root: the chain's root keys, or everyone when the
    /// chain has none).
    #[default]
    Inherit,
    /// Anyone, unsigned.
    Everyone,
    /// No one: the record is final (write once, read many).
    Nobody,
    /// The holder of the signing key with this public-key hash.
    Specific(Hash),
    /// The holder of any of these signing keys.
    Any(Vec<Hash>),
}

impl WriteOption {
    /// Whether a signer with this public-key hash satisfies the option (`Inherit` is resolved
    /// before this is asked).
    pub fn allows(&self, signer: &Hash) -> bool {
        match self {
            WriteOption::Everyone => true,
            WriteOption::Specific(h) => h == signer,
            WriteOption::Any(hs) => hs.contains(signer),
            WriteOption::Nobody | WriteOption::Inherit => false,
        }
    }
}

/// The read and write rules of one record, as carried in its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Authorization {
    /// Who may read.
    pub read: ReadOption,
    /// Who may write.
    pub write: WriteOption,
}

impl Authorization {
    /// Whether both rules are `Inherit` (then no metadata is written).
    pub fn is_inherit(&self) -> bool {
        self.read == ReadOption::Inherit && self.write == WriteOption::Inherit
    }
}
