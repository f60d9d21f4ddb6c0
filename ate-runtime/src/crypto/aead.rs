//! Symmetric keys and AES-256-GCM authenticated encryption.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::alg::AeadAlgorithm;
use super::domain;
use super::error::CryptoError;
use super::hash::Hash;
use super::secret::{SecretBytes, constant_time_eq};

/// Length of an AES-256 key in bytes.
pub const AES_KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag in bytes (appended to every ciphertext).
pub const TAG_LEN: usize = 16;

const TOO_LONG: &str = "AES-GCM input over 64 GiB";

/// A fresh 96-bit nonce from the thread-local CSPRNG (ChaCha12, seeded and periodically reseeded
/// from the operating system). See the module documentation for why random nonces are safe at
/// our volumes.
fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    nonce
}

/// Fills `buf` straight from the operating system's generator (for long-lived key material).
pub(crate) fn os_random(buf: &mut [u8]) {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// A symmetric AES-256 key: a read key held by readers, or a data key encrypting bodies.
///
/// Named by [`EncryptKey::hash`], a SHA3-256 of a domain tag and the key (never the key itself);
/// `Debug` prints only that id and `std::hash::Hash` uses it. Equality compares the keys in
/// constant time. The key bytes are zeroized on drop. Serialization carries the raw key bytes
/// (a 32-byte string): only serialize it into storage that is itself protected.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EncryptKey {
    key: [u8; AES_KEY_LEN],
    #[zeroize(skip)]
    id: Hash,
}

impl EncryptKey {
    /// A new random key from the operating system's generator.
    ///
    /// Panics only if the operating system cannot supply randomness.
    pub fn generate() -> Self {
        let mut key = [0u8; AES_KEY_LEN];
        os_random(&mut key);
        let out = EncryptKey::from_bytes(key);
        key.zeroize();
        out
    }

    /// A key from its 32 bytes (the caller's copy is the caller's to wipe).
    pub fn from_bytes(key: [u8; AES_KEY_LEN]) -> Self {
        let id = Hash::of_parts(&[domain::SYMMETRIC_KEY_ID, &key]);
        EncryptKey { key, id }
    }

    /// A key from a slice, which must be exactly 32 bytes ([`CryptoError::MalformedKey`]).
    pub fn from_slice(key: &[u8]) -> Result<Self, CryptoError> {
        let key: [u8; AES_KEY_LEN] = key.try_into().map_err(|_| {
            CryptoError::malformed_key("AES-256 key", format!("{} bytes, expected 32", key.len()))
        })?;
        Ok(EncryptKey::from_bytes(key))
    }

    /// The raw key bytes. Never log or store them unprotected.
    pub fn secret_bytes(&self) -> &[u8; AES_KEY_LEN] {
        &self.key
    }

    /// The key's stable id: `Hash::of_parts([domain::SYMMETRIC_KEY_ID, key])`.
    pub fn hash(&self) -> Hash {
        self.id
    }

    /// The AEAD this key is used with.
    pub fn algorithm(&self) -> AeadAlgorithm {
        AeadAlgorithm::Aes256Gcm
    }

    /// The expanded AES-GCM state of this key, for many operations under one key and for the
    /// in-place operations (see [`Cipher`]). The methods below build one per call.
    pub fn cipher(&self) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key)),
            id: self.id,
        }
    }

    /// Encrypts `plaintext` under a fresh random nonce, authenticating `aad` too (the same `aad`
    /// must be given to decrypt). The ciphertext has the 16-byte tag appended.
    ///
    /// Panics if `plaintext` is over 64 GiB (the AES-GCM limit).
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> EncryptedData {
        self.cipher().encrypt(aad, plaintext)
    }

    /// Appends the encryption of `plaintext` (ciphertext then tag) to `out` and returns the fresh
    /// nonce used. Bytes already in `out` are left as they are.
    pub fn encrypt_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> [u8; NONCE_LEN] {
        self.cipher().encrypt_into(aad, plaintext, out)
    }

    /// Decrypts and authenticates `data` with the associated data it was encrypted with.
    ///
    /// [`CryptoError::DecryptFailed`] if the key is wrong or anything (ciphertext, tag, nonce,
    /// `aad`) was altered; [`CryptoError::MalformedCiphertext`] if it is shorter than a tag.
    pub fn decrypt(&self, aad: &[u8], data: &EncryptedData) -> Result<Vec<u8>, CryptoError> {
        self.cipher().decrypt(aad, data)
    }

    /// Decrypts `ciphertext` (with its tag) and appends the plaintext to `out`. On error `out`
    /// is left as it was.
    pub fn decrypt_into(
        &self,
        aad: &[u8],
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.cipher().decrypt_into(aad, nonce, ciphertext, out)
    }
}

/// The expanded AES-256-GCM state of one [`EncryptKey`] (round keys and GHASH key).
///
/// Building it costs about a tenth of encrypting 1 KiB; keep one while sealing or opening many
/// bodies under the same data key. It holds key material: it is not zeroized on drop (the
/// `aes-gcm` build used here has no such option), so drop it when the batch is done. The
/// operations shared with [`EncryptKey`] behave exactly as the methods of the same name there.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
    id: Hash,
}

impl Cipher {
    /// The id of the key this state was expanded from.
    pub fn key_hash(&self) -> Hash {
        self.id
    }

    /// See [`EncryptKey::encrypt`].
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> EncryptedData {
        let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
        let nonce = self.encrypt_into(aad, plaintext, &mut ciphertext);
        EncryptedData { nonce, ciphertext }
    }

    /// See [`EncryptKey::encrypt_into`].
    pub fn encrypt_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> [u8; NONCE_LEN] {
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        self.seal_from(aad, out, start)
    }

    /// Encrypts all of `buffer` in place and appends the tag; returns the fresh nonce used.
    pub fn encrypt_in_place(&self, aad: &[u8], buffer: &mut Vec<u8>) -> [u8; NONCE_LEN] {
        buffer.reserve(TAG_LEN);
        self.seal_from(aad, buffer, 0)
    }

    fn seal_from(&self, aad: &[u8], buf: &mut Vec<u8>, start: usize) -> [u8; NONCE_LEN] {
        let nonce = fresh_nonce();
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut buf[start..])
            .expect(TOO_LONG);
        buf.extend_from_slice(&tag);
        nonce
    }

    /// See [`EncryptKey::decrypt`].
    pub fn decrypt(&self, aad: &[u8], data: &EncryptedData) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(data.ciphertext.len());
        self.decrypt_into(aad, &data.nonce, &data.ciphertext, &mut out)?;
        Ok(out)
    }

    /// See [`EncryptKey::decrypt_into`].
    pub fn decrypt_into(
        &self,
        aad: &[u8],
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        check_len(ciphertext.len())?;
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let r = self.open_from(aad, nonce, out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Decrypts `buffer` (ciphertext then tag) in place and removes the tag. On error `buffer`
    /// still holds the ciphertext unchanged (the tag is checked before anything is decrypted).
    pub fn decrypt_in_place(
        &self,
        aad: &[u8],
        nonce: &[u8; NONCE_LEN],
        buffer: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        check_len(buffer.len())?;
        self.open_from(aad, nonce, buffer, 0)
    }

    fn open_from(
        &self,
        aad: &[u8],
        nonce: &[u8; NONCE_LEN],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        let split = buf.len() - TAG_LEN;
        let tag = Tag::clone_from_slice(&buf[split..]);
        self.aead
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf[start..split], &tag)
            .map_err(|_| CryptoError::DecryptFailed)?;
        buf.truncate(split);
        Ok(())
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("key", &self.id).finish()
    }
}

fn check_len(len: usize) -> Result<(), CryptoError> {
    if len < TAG_LEN {
        return Err(CryptoError::malformed_ciphertext(format!(
            "{len} bytes is shorter than the {TAG_LEN}-byte tag"
        )));
    }
    Ok(())
}

impl PartialEq for EncryptKey {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.key, &other.key)
    }
}

impl Eq for EncryptKey {}

impl std::hash::Hash for EncryptKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl fmt::Debug for EncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptKey").field("id", &self.id).finish()
    }
}

impl Serialize for EncryptKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::bytes::serialize(&self.key, serializer)
    }
}

impl<'de> Deserialize<'de> for EncryptKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: SecretBytes = super::bytes::deserialize(deserializer)?;
        EncryptKey::from_slice(bytes.expose()).map_err(serde::de::Error::custom)
    }
}

/// An AES-256-GCM ciphertext: the nonce it was sealed under and the ciphertext with its 16-byte
/// tag appended. Serialized as `[nonce (12-byte string), ciphertext (byte string)]`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EncryptedData {
    /// The 96-bit nonce (random, never reused with the same key).
    #[serde(with = "super::bytes")]
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the authentication tag.
    #[serde(with = "super::bytes")]
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedData")
            .field("nonce", &hex::encode(self.nonce))
            .field("len", &self.ciphertext.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::crypto::testkeys::assert_debug_redacts;
    use proptest::prelude::*;

    fn key() -> EncryptKey {
        EncryptKey::from_bytes(*b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn key_id_is_domain_separated_and_stable() {
        let k = key();
        assert_eq!(
            k.hash(),
            Hash::of_parts(&[b"ATE/crypto/v1/key-id/aes-256", k.secret_bytes()])
        );
        assert_ne!(k.hash(), Hash::of(k.secret_bytes()));
        assert_ne!(EncryptKey::generate().hash(), EncryptKey::generate().hash());
        assert_eq!(k.clone(), k);
        assert_ne!(EncryptKey::generate(), k);
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(matches!(
            EncryptKey::from_slice(&[0; 31]),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert_eq!(EncryptKey::from_slice(key().secret_bytes()).unwrap(), key());
    }

    #[test]
    fn nonces_are_not_repeated() {
        let k = key();
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            assert!(seen.insert(k.encrypt(b"", b"x").nonce));
        }
    }

    #[test]
    fn every_single_bit_flip_fails_with_decrypt_failed() {
        let k = key();
        let aad = b"ATE/body/v1 chain record".to_vec();
        let data = k.encrypt(&aad, b"forty bytes of plaintext, give or take!!");
        assert_eq!(k.decrypt(&aad, &data).unwrap().len(), 40);
        let mut cases = 0;
        for bit in 0..data.ciphertext.len() * 8 {
            let mut d = data.clone();
            d.ciphertext[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(k.decrypt(&aad, &d), Err(CryptoError::DecryptFailed));
            cases += 1;
        }
        for bit in 0..NONCE_LEN * 8 {
            let mut d = data.clone();
            d.nonce[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(k.decrypt(&aad, &d), Err(CryptoError::DecryptFailed));
            cases += 1;
        }
        for bit in 0..aad.len() * 8 {
            let mut a = aad.clone();
            a[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(k.decrypt(&a, &data), Err(CryptoError::DecryptFailed));
            cases += 1;
        }
        assert_eq!(cases, (56 + 12 + 24) * 8);
    }

    #[test]
    fn wrong_key_truncation_and_extension_fail() {
        let k = key();
        let data = k.encrypt(b"aad", b"hello");
        assert_eq!(
            EncryptKey::generate().decrypt(b"aad", &data),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(k.decrypt(b"", &data), Err(CryptoError::DecryptFailed));
        for len in 0..TAG_LEN {
            let d = EncryptedData {
                nonce: data.nonce,
                ciphertext: data.ciphertext[..len].to_vec(),
            };
            assert!(matches!(
                k.decrypt(b"aad", &d),
                Err(CryptoError::MalformedCiphertext { .. })
            ));
        }
        for len in TAG_LEN..data.ciphertext.len() {
            let d = EncryptedData {
                nonce: data.nonce,
                ciphertext: data.ciphertext[..len].to_vec(),
            };
            assert_eq!(k.decrypt(b"aad", &d), Err(CryptoError::DecryptFailed));
        }
        let mut longer = data.clone();
        longer.ciphertext.push(0);
        assert_eq!(k.decrypt(b"aad", &longer), Err(CryptoError::DecryptFailed));
        // The empty plaintext still carries a tag.
        let empty = k.encrypt(b"", b"");
        assert_eq!(empty.ciphertext.len(), TAG_LEN);
        assert_eq!(k.decrypt(b"", &empty).unwrap(), b"");
    }

    #[test]
    fn failed_decryption_leaves_buffers_untouched() {
        let k = key();
        let data = k.encrypt(b"a", b"some plaintext");
        let mut out = b"prefix".to_vec();
        assert!(
            k.decrypt_into(b"b", &data.nonce, &data.ciphertext, &mut out)
                .is_err()
        );
        assert_eq!(out, b"prefix");
        let mut buf = data.ciphertext.clone();
        assert!(
            k.cipher()
                .decrypt_in_place(b"b", &data.nonce, &mut buf)
                .is_err()
        );
        assert_eq!(buf, data.ciphertext);
    }

    #[test]
    fn debug_shows_the_id_not_the_key() {
        let k = EncryptKey::generate();
        assert_debug_redacts(&k, k.secret_bytes(), k.hash());
        assert_debug_redacts(&k.cipher(), k.secret_bytes(), k.hash());
    }

    #[test]
    fn a_kept_cipher_interoperates_with_the_key() {
        let k = key();
        let c = k.cipher();
        assert_eq!(c.key_hash(), k.hash());
        let a = c.encrypt(b"x", b"one");
        let b = k.encrypt(b"x", b"two");
        assert_eq!(k.decrypt(b"x", &a).unwrap(), b"one");
        assert_eq!(c.decrypt(b"x", &b).unwrap(), b"two");
        assert_ne!(a.nonce, c.encrypt(b"x", b"one").nonce);
    }

    proptest! {
        #[test]
        fn round_trip(aad in proptest::collection::vec(any::<u8>(), 0..64),
                      plain in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let k = key();
            let data = k.encrypt(&aad, &plain);
            prop_assert_eq!(data.ciphertext.len(), plain.len() + TAG_LEN);
            prop_assert_eq!(k.decrypt(&aad, &data).unwrap(), plain.clone());

            let mut out = b"head".to_vec();
            let nonce = k.encrypt_into(&aad, &plain, &mut out);
            prop_assert_eq!(&out[..4], b"head");
            let mut back = b"x".to_vec();
            k.decrypt_into(&aad, &nonce, &out[4..], &mut back).unwrap();
            prop_assert_eq!(&back[1..], &plain[..]);

            let mut buf = plain.clone();
            let nonce = k.cipher().encrypt_in_place(&aad, &mut buf);
            k.cipher().decrypt_in_place(&aad, &nonce, &mut buf).unwrap();
            prop_assert_eq!(buf, plain);
        }

        #[test]
        fn random_bit_flips_fail(plain in proptest::collection::vec(any::<u8>(), 0..512),
                                 pick in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key();
            let mut data = k.encrypt(b"aad", &plain);
            let i = pick.index(data.ciphertext.len());
            data.ciphertext[i] ^= 1 << bit;
            prop_assert_eq!(k.decrypt(b"aad", &data), Err(CryptoError::DecryptFailed));
        }

        #[test]
        fn serde_round_trip(raw in any::<[u8; 32]>(), plain in proptest::collection::vec(any::<u8>(), 0..256)) {
            let k = EncryptKey::from_bytes(raw);
            let enc = rmp_serde::to_vec(&k).unwrap();
            prop_assert_eq!(enc.len(), 34);
            let back: EncryptKey = rmp_serde::from_slice(&enc).unwrap();
            prop_assert_eq!(back.hash(), k.hash());
            prop_assert_eq!(back.secret_bytes(), k.secret_bytes());

            let data = k.encrypt(b"", &plain);
            let enc = rmp_serde::to_vec(&data).unwrap();
            let back: EncryptedData = rmp_serde::from_slice(&enc).unwrap();
            prop_assert_eq!(&back, &data);
            prop_assert_eq!(k.decrypt(b"", &back).unwrap(), plain);
        }
    }
}
