//! Wrapping data keys for readers: under a symmetric read key, or for an NTRU public key.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::aead::{AES_KEY_LEN, EncryptKey, NONCE_LEN, TAG_LEN};
use super::alg::{AeadAlgorithm, KemAlgorithm};
use super::domain;
use super::error::{AlgorithmKind, CryptoError};
use super::hash::{Hash, HashBuilder};
use super::kem::{PrivateEncryptKey, PublicEncryptKey};
use super::secret::SecretBytes;

/// A data key wrapped for one reader key.
///
/// Records the reader ([`WrappedKey::reader`], the id of the key that can unwrap it), the KEM
/// (`None` for a symmetric read key) and the AEAD. Serialized (MessagePack, structs as arrays)
/// as `[kem id or nil, aead id, reader (32-byte bin), encapsulation (bin, empty when
/// symmetric), nonce (12-byte bin), ciphertext (48-byte bin: 32-byte key + 16-byte tag)]`.
///
/// The data key is sealed with AES-256-GCM under associated data
/// `domain::WRAP_AAD ‖ kem id (0 when symmetric) ‖ aead id ‖ reader (32)`, so a wrapped key
/// cannot be relabelled for another reader or algorithm. For a public reader the sealing key is
/// `Hash::of_parts([domain::KEM_WRAP_KEY, [kem id], reader, encapsulation, shared secret])`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrappedKey {
    kem: Option<KemAlgorithm>,
    aead: AeadAlgorithm,
    reader: Hash,
    #[serde(with = "super::bytes")]
    encapsulation: Vec<u8>,
    #[serde(with = "super::bytes")]
    nonce: [u8; NONCE_LEN],
    #[serde(with = "super::bytes")]
    ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// The id of the key that can unwrap this one (an [`EncryptKey::hash`] or a
    /// [`PublicEncryptKey::hash`]).
    pub fn reader(&self) -> Hash {
        self.reader
    }

    /// The KEM used, or `None` when wrapped under a symmetric read key.
    pub fn kem(&self) -> Option<KemAlgorithm> {
        self.kem
    }

    /// The AEAD sealing the data key.
    pub fn aead(&self) -> AeadAlgorithm {
        self.aead
    }

    /// The KEM encapsulation (empty when wrapped under a symmetric read key).
    pub fn encapsulation(&self) -> &[u8] {
        &self.encapsulation
    }

    fn aad(&self) -> Vec<u8> {
        wrap_aad(self.kem, self.aead, &self.reader)
    }

    fn check_reader(&self, key: Hash) -> Result<(), CryptoError> {
        if self.reader != key {
            return Err(CryptoError::WrongKey {
                wrapped_for: self.reader,
                key,
            });
        }
        Ok(())
    }

    fn seal(
        kem: Option<KemAlgorithm>,
        reader: Hash,
        encapsulation: Vec<u8>,
        sealing_key: &EncryptKey,
        data_key: &EncryptKey,
    ) -> WrappedKey {
        let aead = AeadAlgorithm::Aes256Gcm;
        let mut ciphertext = Vec::with_capacity(AES_KEY_LEN + TAG_LEN);
        let nonce = sealing_key.encrypt_into(
            &wrap_aad(kem, aead, &reader),
            data_key.secret_bytes(),
            &mut ciphertext,
        );
        WrappedKey {
            kem,
            aead,
            reader,
            encapsulation,
            nonce,
            ciphertext,
        }
    }

    fn open(&self, sealing_key: &EncryptKey) -> Result<EncryptKey, CryptoError> {
        match self.aead {
            AeadAlgorithm::Aes256Gcm => {}
        }
        if self.ciphertext.len() != AES_KEY_LEN + TAG_LEN {
            return Err(CryptoError::malformed_ciphertext(format!(
                "wrapped key of {} bytes, expected {}",
                self.ciphertext.len(),
                AES_KEY_LEN + TAG_LEN
            )));
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(AES_KEY_LEN + TAG_LEN));
        sealing_key.decrypt_into(&self.aad(), &self.nonce, &self.ciphertext, &mut plain)?;
        EncryptKey::from_slice(&plain)
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("reader", &self.reader)
            .field("kem", &self.kem)
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

fn wrap_aad(kem: Option<KemAlgorithm>, aead: AeadAlgorithm, reader: &Hash) -> Vec<u8> {
    let mut aad = Vec::with_capacity(domain::WRAP_AAD.len() + 2 + Hash::LEN);
    aad.extend_from_slice(domain::WRAP_AAD);
    aad.push(kem.map_or(0, KemAlgorithm::as_u8));
    aad.push(aead.as_u8());
    aad.extend_from_slice(reader.as_bytes());
    aad
}

/// The AES key sealing a data key for a public reader, derived from the KEM shared secret.
fn kem_sealing_key(
    kem: KemAlgorithm,
    reader: &Hash,
    encapsulation: &[u8],
    shared: &SecretBytes,
) -> EncryptKey {
    let mut h = HashBuilder::new();
    h.part(domain::KEM_WRAP_KEY)
        .part(&[kem.as_u8()])
        .part(reader.as_bytes())
        .part(encapsulation)
        .part(shared.expose());
    let mut key = Zeroizing::new([0u8; AES_KEY_LEN]);
    h.finish_into(&mut key);
    EncryptKey::from_bytes(*key)
}

impl EncryptKey {
    /// Wraps `data_key` for holders of this (read) key: AES-256-GCM under this key with a fresh
    /// nonce, bound to this key's id.
    pub fn wrap(&self, data_key: &EncryptKey) -> WrappedKey {
        WrappedKey::seal(None, self.hash(), Vec::new(), self, data_key)
    }

    /// Recovers a data key wrapped by [`EncryptKey::wrap`].
    ///
    /// [`CryptoError::WrongKey`] if it was wrapped for another key;
    /// [`CryptoError::MalformedCiphertext`] if it has the wrong shape (or was wrapped with a
    /// KEM); [`CryptoError::DecryptFailed`] if it was altered.
    pub fn unwrap(&self, wrapped: &WrappedKey) -> Result<EncryptKey, CryptoError> {
        wrapped.check_reader(self.hash())?;
        if wrapped.kem.is_some() || !wrapped.encapsulation.is_empty() {
            return Err(CryptoError::malformed_ciphertext(
                "a KEM-wrapped key presented to a symmetric key",
            ));
        }
        wrapped.open(self)
    }
}

impl PublicEncryptKey {
    /// Wraps `data_key` so that only the private half of this key can recover it: encapsulate
    /// a fresh shared secret, derive an AES-256 sealing key from it with SHA3-256 (see
    /// [`WrappedKey`] for the exact input), seal the data key with AES-256-GCM bound to this
    /// key's id.
    pub fn wrap(&self, data_key: &EncryptKey) -> WrappedKey {
        let (shared, encapsulation) = self.encapsulate();
        let reader = self.hash();
        let sealing_key = kem_sealing_key(self.algorithm(), &reader, &encapsulation, &shared);
        WrappedKey::seal(
            Some(self.algorithm()),
            reader,
            encapsulation,
            &sealing_key,
            data_key,
        )
    }
}

impl PrivateEncryptKey {
    /// Recovers a data key wrapped by [`PublicEncryptKey::wrap`] for this key's public half.
    ///
    /// [`CryptoError::WrongKey`] if it was wrapped for another key;
    /// [`CryptoError::AlgorithmMismatch`] if it names another KEM;
    /// [`CryptoError::MalformedCiphertext`] if it has the wrong shape;
    /// [`CryptoError::DecryptFailed`] if it was altered.
    pub fn unwrap(&self, wrapped: &WrappedKey) -> Result<EncryptKey, CryptoError> {
        wrapped.check_reader(self.hash())?;
        let alg = self.algorithm();
        match wrapped.kem {
            None => {
                return Err(CryptoError::malformed_ciphertext(
                    "a symmetrically wrapped key presented to a KEM key",
                ));
            }
            Some(found) if found != alg => {
                return Err(CryptoError::AlgorithmMismatch {
                    kind: AlgorithmKind::Kem,
                    expected: alg.as_u8(),
                    found: found.as_u8(),
                });
            }
            Some(_) => {}
        }
        let shared = self.decapsulate(&wrapped.encapsulation)?;
        let sealing_key = kem_sealing_key(alg, &wrapped.reader, &wrapped.encapsulation, &shared);
        wrapped.open(&sealing_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::testkeys::kem_keys;
    use proptest::prelude::*;

    const NTRU: KemAlgorithm = KemAlgorithm::NtruHps2048509;

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn aad_layout() {
        let reader = Hash::of(b"r");
        let aad = wrap_aad(Some(NTRU), AeadAlgorithm::Aes256Gcm, &reader);
        let mut expect = b"ATE/crypto/v1/wrap-aad".to_vec();
        expect.extend_from_slice(&[1, 1]);
        expect.extend_from_slice(reader.as_bytes());
        assert_eq!(aad, expect);
        assert_eq!(wrap_aad(None, AeadAlgorithm::Aes256Gcm, &reader)[22], 0);
    }

    #[test]
    fn symmetric_wrong_key_and_every_bit_flip() {
        let read = EncryptKey::generate();
        let data = EncryptKey::generate();
        let w = read.wrap(&data);
        assert_eq!(w.reader(), read.hash());
        assert_eq!((w.kem(), w.aead()), (None, AeadAlgorithm::Aes256Gcm));
        assert!(w.encapsulation().is_empty());
        assert_eq!(read.unwrap(&w).unwrap(), data);

        let wrong = EncryptKey::generate();
        assert_eq!(
            wrong.unwrap(&w),
            Err(CryptoError::WrongKey {
                wrapped_for: read.hash(),
                key: wrong.hash()
            })
        );
        // Relabelled for the wrong key: the AEAD binding catches it.
        let mut relabelled = w.clone();
        relabelled.reader = wrong.hash();
        assert_eq!(wrong.unwrap(&relabelled), Err(CryptoError::DecryptFailed));

        for bit in 0..w.ciphertext.len() * 8 {
            let mut bad = w.clone();
            flip(&mut bad.ciphertext, bit);
            assert_eq!(read.unwrap(&bad), Err(CryptoError::DecryptFailed));
        }
        for bit in 0..NONCE_LEN * 8 {
            let mut bad = w.clone();
            flip(&mut bad.nonce, bit);
            assert_eq!(read.unwrap(&bad), Err(CryptoError::DecryptFailed));
        }
        let mut bad = w.clone();
        bad.ciphertext.pop();
        assert!(matches!(
            read.unwrap(&bad),
            Err(CryptoError::MalformedCiphertext { .. })
        ));
        let mut bad = w.clone();
        bad.kem = Some(NTRU);
        assert!(matches!(
            read.unwrap(&bad),
            Err(CryptoError::MalformedCiphertext { .. })
        ));
    }

    #[test]
    fn kem_wrong_key_and_every_bit_flip() {
        let (k, other) = kem_keys(NTRU);
        let data = EncryptKey::generate();
        let w = k.public_key().wrap(&data);
        assert_eq!(w.reader(), k.hash());
        assert_eq!(w.kem(), Some(NTRU));
        assert_eq!(w.encapsulation().len(), NTRU.ciphertext_len());
        assert_eq!(k.unwrap(&w).unwrap(), data);

        assert_eq!(
            other.unwrap(&w),
            Err(CryptoError::WrongKey {
                wrapped_for: k.hash(),
                key: other.hash()
            })
        );
        let mut relabelled = w.clone();
        relabelled.reader = other.hash();
        assert_eq!(other.unwrap(&relabelled), Err(CryptoError::DecryptFailed));
        // A symmetric key never unwraps it, even one whose id were forged to match.
        assert!(matches!(
            EncryptKey::generate().unwrap(&w),
            Err(CryptoError::WrongKey { .. })
        ));

        for bit in 0..w.encapsulation.len() * 8 {
            let mut bad = w.clone();
            flip(&mut bad.encapsulation, bit);
            assert_eq!(k.unwrap(&bad), Err(CryptoError::DecryptFailed), "bit {bit}");
        }
        for bit in 0..w.ciphertext.len() * 8 {
            let mut bad = w.clone();
            flip(&mut bad.ciphertext, bit);
            assert_eq!(k.unwrap(&bad), Err(CryptoError::DecryptFailed));
        }
        for bit in 0..NONCE_LEN * 8 {
            let mut bad = w.clone();
            flip(&mut bad.nonce, bit);
            assert_eq!(k.unwrap(&bad), Err(CryptoError::DecryptFailed));
        }
        for bit in 0..Hash::LEN * 8 {
            let mut bad = w.clone();
            let mut r = *bad.reader.as_bytes();
            flip(&mut r, bit);
            bad.reader = Hash::from_bytes(r);
            assert!(matches!(k.unwrap(&bad), Err(CryptoError::WrongKey { .. })));
        }

        let mut bad = w.clone();
        bad.kem = None;
        assert!(matches!(
            k.unwrap(&bad),
            Err(CryptoError::MalformedCiphertext { .. })
        ));
        let mut bad = w.clone();
        bad.kem = Some(KemAlgorithm::NtruHps2048677);
        assert_eq!(
            k.unwrap(&bad),
            Err(CryptoError::AlgorithmMismatch {
                kind: AlgorithmKind::Kem,
                expected: 1,
                found: 2
            })
        );
        let mut bad = w.clone();
        bad.encapsulation.push(0);
        assert!(matches!(
            k.unwrap(&bad),
            Err(CryptoError::MalformedCiphertext { .. })
        ));
    }

    #[test]
    fn encoding_layout_and_unknown_ids() {
        let read = EncryptKey::from_bytes([7; 32]);
        let w = read.wrap(&EncryptKey::from_bytes([9; 32]));
        let enc = rmp_serde::to_vec(&w).unwrap();
        // fixarray(6), nil, aead 1, bin8 32 reader, bin8 0, bin8 12 nonce, bin8 48 ciphertext.
        assert_eq!(enc.len(), 1 + 1 + 1 + 34 + 2 + 14 + 50);
        assert_eq!(&enc[..4], &[0x96, 0xc0, 0x01, 0xc4]);
        assert_eq!(rmp_serde::from_slice::<WrappedKey>(&enc).unwrap(), w);

        let mut bad = enc.clone();
        bad[2] = 0x05;
        let err = rmp_serde::from_slice::<WrappedKey>(&bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown AEAD algorithm id 5"),
            "{err}"
        );
        let mut bad = enc.clone();
        bad[1] = 0x09;
        let err = rmp_serde::from_slice::<WrappedKey>(&bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown key encapsulation algorithm id 9"),
            "{err}"
        );

        let dbg = format!("{w:?}");
        assert!(dbg.contains(&read.hash().to_string()), "{dbg}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn symmetric_round_trip(read in any::<[u8; 32]>(), data in any::<[u8; 32]>()) {
            let read = EncryptKey::from_bytes(read);
            let data = EncryptKey::from_bytes(data);
            let w1 = read.wrap(&data);
            let w2 = read.wrap(&data);
            prop_assert_ne!(&w1, &w2);
            for w in [w1, w2] {
                let enc = rmp_serde::to_vec(&w).unwrap();
                let w: WrappedKey = rmp_serde::from_slice(&enc).unwrap();
                prop_assert_eq!(read.unwrap(&w).unwrap(), data.clone());
            }
        }

        #[test]
        fn kem_round_trip(data in any::<[u8; 32]>(), which in 0usize..3) {
            let alg = KemAlgorithm::ALL[which];
            let (k, other) = kem_keys(alg);
            let data = EncryptKey::from_bytes(data);
            let w = k.as_public_key().wrap(&data);
            let enc = rmp_serde::to_vec(&w).unwrap();
            let w: WrappedKey = rmp_serde::from_slice(&enc).unwrap();
            prop_assert_eq!(k.unwrap(&w).unwrap(), data);
            let wrong_key = matches!(other.unwrap(&w), Err(CryptoError::WrongKey { .. }));
            prop_assert!(wrong_key);
        }
    }
}
