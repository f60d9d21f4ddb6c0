//! The errors of the crypto layer.

use std::fmt;

use super::Hash;

/// The family an algorithm id belongs to (each family numbers its algorithms separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlgorithmKind {
    /// Signature schemes ([`SignAlgorithm`](super::SignAlgorithm)).
    Sign,
    /// Key encapsulation mechanisms ([`KemAlgorithm`](super::KemAlgorithm)).
    Kem,
    /// Authenticated encryption ([`AeadAlgorithm`](super::AeadAlgorithm)).
    Aead,
    /// Hash functions ([`HashAlgorithm`](super::HashAlgorithm)).
    Hash,
}

impl fmt::Display for AlgorithmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlgorithmKind::Sign => "signature",
            AlgorithmKind::Kem => "key encapsulation",
            AlgorithmKind::Aead => "AEAD",
            AlgorithmKind::Hash => "hash",
        })
    }
}

/// Why a cryptographic operation or a decoding of key material failed.
///
/// Messages never contain secret material: a failed decryption says only that it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An algorithm id this build does not know. This is how data naming an unknown (or
    /// withdrawn) algorithm is refused: ids are checked when they are decoded, before any key or
    /// signature is used.
    #[error("unknown {kind} algorithm id {id}")]
    UnknownAlgorithm {
        /// The algorithm family.
        kind: AlgorithmKind,
        /// The id found.
        id: u8,
    },
    /// Two pieces of data that must use the same algorithm do not (for example a Falcon-512
    /// signature presented to a Falcon-1024 key).
    #[error("{kind} algorithm mismatch: expected id {expected}, found id {found}")]
    AlgorithmMismatch {
        /// The algorithm family.
        kind: AlgorithmKind,
        /// The id of the key doing the work.
        expected: u8,
        /// The id carried by the data.
        found: u8,
    },
    /// A key size in bits that is not 128, 192 or 256.
    #[error("unsupported key size of {bits} bits")]
    UnsupportedKeySize {
        /// The size found.
        bits: u16,
    },
    /// A signature does not verify under the public key (altered message, altered or
    /// non-canonical signature, or another signer).
    #[error("signature does not verify")]
    BadSignature,
    /// Key bytes of the wrong length or encoding, or a private key whose halves do not match.
    #[error("malformed {what}: {detail}")]
    MalformedKey {
        /// Which kind of key.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Authenticated decryption failed: wrong key, or the ciphertext, nonce or associated data
    /// were altered. Deliberately says nothing more.
    #[error("decryption failed")]
    DecryptFailed,
    /// A wrapped key names another key as its reader.
    #[error("key is wrapped for reader {wrapped_for:?}, not for key {key:?}")]
    WrongKey {
        /// The reader named by the wrapped key.
        wrapped_for: Hash,
        /// The key it was presented to.
        key: Hash,
    },
    /// Ciphertext of impossible shape (too short, wrong length, wrong kind of wrapping).
    #[error("malformed ciphertext: {detail}")]
    MalformedCiphertext {
        /// What is wrong with it.
        detail: String,
    },
}

impl CryptoError {
    pub(crate) fn malformed_key(what: &'static str, detail: impl Into<String>) -> Self {
        CryptoError::MalformedKey {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn malformed_ciphertext(detail: impl Into<String>) -> Self {
        CryptoError::MalformedCiphertext {
            detail: detail.into(),
        }
    }

    /// A length check for key bytes.
    pub(crate) fn check_key_len(
        what: &'static str,
        expected: usize,
        actual: usize,
    ) -> Result<(), Self> {
        if expected == actual {
            Ok(())
        } else {
            Err(Self::malformed_key(
                what,
                format!("{actual} bytes, expected {expected}"),
            ))
        }
    }
}
