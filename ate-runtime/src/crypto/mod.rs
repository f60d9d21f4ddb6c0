//! The crypto layer: hashing (SHA3-256), signatures (Falcon), key encapsulation (NTRU) and
//! authenticated encryption (AES-256-GCM), behind small key types.
//!
//! Choices:
//! - **Sign per transaction, not per event.** Falcon-512 signing costs ~220 µs; SHA3 of 1 KiB
//!   ~3 µs. A transaction is signed once per key over the hashes of the events it covers.
//! - **Algorithm ids** travel with every key and signature, and are checked before use
//!   ([`SignAlgorithm`], [`KemAlgorithm`]); an unknown id is [`CryptoError::UnknownAlgorithm`].
//!   Ids leave room for ML-DSA / ML-KEM suites.
//! - **Nonces** are 96 random bits from the OS-seeded CSPRNG, under a fresh data key per
//!   transaction and read key, so a key encrypts few messages and collisions are negligible.
//! - **Key wrapping** binds the wrapping key's hash as associated data, so a wrapped key cannot
//!   be presented as wrapped for another key.
//! - Secret key bytes are zeroized on drop; `Debug` shows only the public hash.
//!
//! This layer knows nothing about events or chains.

mod error;
mod hash;
mod keys;

pub use error::CryptoError;
pub use hash::Hash;
pub use keys::{
    EncryptKey, EncryptedData, KemAlgorithm, KeySize, PrivateEncryptKey, PrivateSignKey,
    PublicEncryptKey, PublicSignKey, SignAlgorithm, Signature, WrappedKey,
};

#[cfg(test)]
mod tests;
