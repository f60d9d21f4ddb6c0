//! Errors of the crypto layer. They say what failed, never why in detail (no oracle).

/// A cryptographic operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An algorithm id this build does not know.
    #[error("unknown {kind} algorithm id {id}")]
    UnknownAlgorithm {
        /// Which kind of algorithm (signature, kem).
        kind: &'static str,
        /// The id found.
        id: u8,
    },
    /// A signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Key bytes of the wrong length or shape.
    #[error("malformed key")]
    MalformedKey,
    /// Authenticated decryption failed (wrong key or tampered data).
    #[error("decryption failed")]
    DecryptFailed,
    /// The data was wrapped for another key.
    #[error("wrapped for another key")]
    WrongKey,
    /// Ciphertext of the wrong length or shape.
    #[error("malformed ciphertext")]
    MalformedCiphertext,
}
