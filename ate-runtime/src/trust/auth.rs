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
    Public(PublicEncryptKey),
}

impl ReadKey {
    /// The hash naming the key readers need.
    pub fn hash(&self) -> Hash {
        match self {
            ReadKey::Symmetric(h) => *h,
            ReadKey::Public(pk) => pk.hash(),
        }
    }
}

impl ReadOption {
    /// Readable only with `key` (a symmetric read key).
    pub fn from_key(key: &EncryptKey) -> Self {
        ReadOption::Specific(ReadKey::Symmetric(key.hash()))
    }

    /// Readable only with the private half of `key`.
    pub fn from_public_key(key: &PublicEncryptKey) -> Self {
        ReadOption::Specific(ReadKey::Public(key.clone()))
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
