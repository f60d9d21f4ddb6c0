//! The crypto layer: hashes, signatures, key encapsulation, authenticated encryption, keys and
//! the algorithm ids written into headers. It knows nothing of events or chains; the layers
//! above decide what is hashed, signed and encrypted, and with which associated data.
//!
//! | need | type | primitive |
//! |---|---|---|
//! | identity of bytes, key ids | [`Hash`](struct@Hash), [`HashBuilder`] | SHA3-256 (`sha3`; many messages at once, [`Hash::of_many`]: a multi-buffer Keccak of our own, AVX-512 or AVX2) |
//! | authorship of a transaction | [`PrivateSignKey`], [`PublicSignKey`], [`Signature`] | Falcon-512 / Falcon-1024 (`pqcrypto-falcon`) |
//! | confidentiality of bodies | [`EncryptKey`], [`Cipher`], [`EncryptedData`] | AES-256-GCM (`aes-gcm`) |
//! | giving a data key to readers | [`WrappedKey`], [`PrivateEncryptKey`], [`PublicEncryptKey`] | AES-256-GCM, or NTRU-HPS KEM (`pqcrypto-ntru`) + SHA3 + AES-256-GCM |
//! | naming algorithms on disk | [`SignAlgorithm`], [`KemAlgorithm`], [`AeadAlgorithm`], [`HashAlgorithm`], [`KeySize`] | |
//!
//! # Choices
//!
//! **Sign per transaction, not per event.** A Falcon-512 signature costs about 220 µs and a
//! verification about 38 µs, against about 3 µs to hash 1 KiB alone (about 0.5 µs when a
//! transaction's events are hashed together, [`Hash::of_many`]). Each event is therefore hashed
//! once, and a transaction carries one detached signature per signing key over the hashes of
//! the events it covers (the trust layer builds those signed bytes, including the algorithm id
//! and the chain, so a signature cannot be replayed on another chain or reinterpreted under
//! another algorithm). A 1000-event transaction pays one signature, not a thousand.
//! Signatures have exactly one valid encoding: Falcon's decoder would also accept a copy
//! zero-padded to the fixed "padded" length, and [`PublicSignKey::verify`] refuses it.
//!
//! **Associated data binds ciphertext to its place.** Every AEAD call takes associated data
//! that is authenticated but not stored in the ciphertext. The layers above bind a body to its
//! chain and record, so it cannot be moved elsewhere; a [`WrappedKey`] binds its data key to the
//! reader's key id and the algorithm ids (`domain::WRAP_AAD ‖ kem id ‖ aead id ‖ reader id`),
//! so it cannot be relabelled for another reader or a weaker suite.
//!
//! **Nonces are random, 96 bits, from a CSPRNG, and callers cannot choose them.** Each
//! encryption draws a fresh nonce from the thread-local generator (ChaCha12, seeded and reseeded
//! from the operating system; 17 ns against about 400 ns for a system call per nonce). With
//! random nonces the chance that any two of `m` messages under one key share a nonce is about
//! `m² / 2^97`; NIST SP 800-38D caps random-nonce use at 2^32 messages per key, which keeps it
//! under 2^-32. Here a data key is fresh per transaction and read key, so it seals at most one
//! transaction's bodies (a million bodies: about 10^-17), and a long-lived read key seals one
//! wrapped key per transaction (the cap is four billion transactions per read key). Users of
//! this layer for other purposes (transport frames) must keep under 2^32 messages per key and
//! rotate keys beyond. The thread-local generator is not reseeded when a process forks: a child
//! must not encrypt under keys its parent also uses unless it reseeds (ATE does not fork).
//!
//! **Key ids are hashes, never keys.** [`EncryptKey::hash`], [`PublicSignKey::hash`] and
//! [`PublicEncryptKey::hash`] hash a domain tag, the algorithm id and the key bytes (see
//! [`domain`]). A private key has the id of its public half, so a write right names the public
//! key hash and the holder of the private key can find its key by it.
//!
//! **Algorithm ids refuse the unknown.** Ids are one byte per family, numbered from 1 (0 is
//! never assigned). An id this build does not know is [`CryptoError::UnknownAlgorithm`]:
//! keys and wrapped keys refuse it when decoded; a [`Signature`] keeps its id as stored (so
//! the layer above can report an unknown algorithm as such) and [`Signature::algorithm`] and
//! [`PublicSignKey::verify`] refuse it before anything is verified. Room is left for ML-DSA
//! (signatures) and ML-KEM (encapsulation) as new ids; existing ids never change meaning.
//! [`KeySize`] picks the suite: 128 and 192 bits sign with Falcon-512, 256 with Falcon-1024;
//! encapsulation uses NTRU-HPS-2048-509, -2048-677 and -4096-821 respectively. The default is
//! 128 bits, the fastest.
//!
//! **Secrets.** Secret key bytes live in [`SecretBytes`] or a zeroize-on-drop field and are
//! wiped when dropped; `Debug` of every secret-holding type shows only the algorithm and the
//! public id. Serializing a private or symmetric key writes the secret bytes (that is what
//! serialization of a key is for): protect where they go. Private keys decoded from bytes are
//! checked (lengths, headers, that the halves match; for Falcon also that the secret key is a
//! proper basis, since signing with a malformed one would never finish). Known limits: the
//! post-quantum libraries' key types are plain `Copy` arrays, so transient stack copies made
//! while signing or decapsulating are not wiped, nor are AES round keys held by a [`Cipher`]
//! (the `aes-gcm` build used here has no zeroize option) nor SHA3 states that absorbed a secret.
//!
//! # Byte layouts
//!
//! * [`Hash::of_parts`]: SHA3-256 of `(len(part) as u64 LE ‖ part)` for each part; by
//!   convention the first part is a tag from [`domain`].
//! * Key ids: `of_parts([tag, key])` for symmetric keys, `of_parts([tag, [alg id], public key])`
//!   for signing and KEM keys.
//! * [`EncryptedData`]: `nonce (12) ‖ ciphertext ‖ tag (16)` as two fields,
//!   `[bin nonce, bin ciphertext]` in MessagePack.
//! * [`WrappedKey`]: `[kem id or nil, aead id, reader id, encapsulation, nonce, sealed key]`; the
//!   sealed key is AES-256-GCM of the 32-byte data key (48 bytes with the tag). For a KEM reader
//!   the sealing key is `of_parts([domain::KEM_WRAP_KEY, [kem id], reader id, encapsulation,
//!   shared secret])`.
//! * Keys and signatures in MessagePack (structs as arrays, byte fields as `bin`):
//!   [`Signature`] `[alg id, bytes]`; public keys `[alg id, bytes]`; private keys
//!   `[alg id, public bytes, secret bytes]`; [`EncryptKey`] the 32 key bytes; [`Hash`](struct@Hash) 32 bytes.
//!   Human-readable formats get hex strings for byte fields.

pub mod domain;

mod aead;
mod alg;
mod bytes;
mod error;
mod falcon;
mod hash;
// The multi-buffer SHA3-256 kernels: the crate's only unsafe code (target-feature calls after
// detection, unaligned vector loads and stores).
#[allow(unsafe_code)]
mod keccak_x;
mod kem;
pub mod keyfile;
mod keys;
mod secret;
mod sign;
mod wrap;

#[cfg(test)]
mod testkeys;

pub use aead::{AES_KEY_LEN, Cipher, EncryptKey, EncryptedData, NONCE_LEN, TAG_LEN};
pub use alg::{AeadAlgorithm, HashAlgorithm, KemAlgorithm, KeySize, SignAlgorithm};
pub use error::{AlgorithmKind, CryptoError};
pub use hash::{Hash, HashBuilder};
pub use kem::{PrivateEncryptKey, PublicEncryptKey};
pub use keyfile::{KeyFile, KeyFileError};
pub use secret::SecretBytes;
pub use sign::{PrivateSignKey, PublicSignKey, Signature};
pub use wrap::WrappedKey;
