//! Domain-separation tags of the crypto layer.
//!
//! Every hash or key derivation made for a purpose starts with its own tag, so a value made for
//! one purpose can never be taken for another. Tags are versioned (`v1`); changing a layout
//! means a new tag, never a changed meaning for an old one. Hashes are built with
//! [`Hash::of_parts`](super::Hash::of_parts) (each part length-prefixed) with the tag as the
//! first part.

/// Id of a symmetric key: `of_parts([SYMMETRIC_KEY_ID, key (32)])`.
pub const SYMMETRIC_KEY_ID: &[u8] = b"ATE/crypto/v1/key-id/aes-256";

/// Id of a signing key pair: `of_parts([SIGN_KEY_ID, [algorithm id], public key bytes])`.
/// The private key has the same id as its public half.
pub const SIGN_KEY_ID: &[u8] = b"ATE/crypto/v1/key-id/sign";

/// Id of a KEM key pair: `of_parts([KEM_KEY_ID, [algorithm id], public key bytes])`.
/// The private key has the same id as its public half.
pub const KEM_KEY_ID: &[u8] = b"ATE/crypto/v1/key-id/kem";

/// Wrapping key derived from a KEM shared secret:
/// `of_parts([KEM_WRAP_KEY, [kem id], reader id (32), encapsulation, shared secret])`.
pub const KEM_WRAP_KEY: &[u8] = b"ATE/crypto/v1/kem-wrap-key";

/// Associated data of a wrapped key (raw bytes, not hashed):
/// `WRAP_AAD ‖ kem id (u8, 0 = symmetric wrapping) ‖ aead id (u8) ‖ reader id (32)`.
pub const WRAP_AAD: &[u8] = b"ATE/crypto/v1/wrap-aad";
