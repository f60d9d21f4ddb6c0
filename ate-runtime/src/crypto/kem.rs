//! NTRU key encapsulation: public-key readers.

use pqcrypto_ntru::{ntruhps2048509, ntruhps2048677, ntruhps4096821};
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _};

use super::alg::KemAlgorithm;
use super::domain;
use super::error::CryptoError;
use super::hash::Hash;
use super::keys::key_pair_impls;
use super::secret::SecretBytes;

/// A shared secret and its encapsulation.
type Encapsulation = (SecretBytes, Vec<u8>);

/// The operations and sizes of one NTRU parameter set.
struct NtruSuite {
    name: &'static str,
    public_len: usize,
    secret_len: usize,
    ciphertext_len: usize,
    keypair: fn() -> (Vec<u8>, SecretBytes),
    /// `(shared secret, ciphertext)`; `None` if the public key does not decode.
    encapsulate: fn(public: &[u8]) -> Option<Encapsulation>,
    /// `None` if the ciphertext or secret key does not decode.
    decapsulate: fn(ciphertext: &[u8], secret: &[u8]) -> Option<SecretBytes>,
}

macro_rules! ntru_suite {
    ($m:ident, $name:literal) => {
        NtruSuite {
            name: $name,
            public_len: $m::public_key_bytes(),
            secret_len: $m::secret_key_bytes(),
            ciphertext_len: $m::ciphertext_bytes(),
            keypair: || {
                let (pk, sk) = $m::keypair();
                (
                    pk.as_bytes().to_vec(),
                    SecretBytes::from_slice(sk.as_bytes()),
                )
            },
            encapsulate: |public| {
                let pk = $m::PublicKey::from_bytes(public).ok()?;
                let (ss, ct) = $m::encapsulate(&pk);
                Some((
                    SecretBytes::from_slice(ss.as_bytes()),
                    ct.as_bytes().to_vec(),
                ))
            },
            decapsulate: |ciphertext, secret| {
                let ct = $m::Ciphertext::from_bytes(ciphertext).ok()?;
                let sk = $m::SecretKey::from_bytes(secret).ok()?;
                Some(SecretBytes::from_slice(
                    $m::decapsulate(&ct, &sk).as_bytes(),
                ))
            },
        }
    };
}

static NTRU_509: NtruSuite = ntru_suite!(ntruhps2048509, "NTRU-HPS-2048-509 key");
static NTRU_677: NtruSuite = ntru_suite!(ntruhps2048677, "NTRU-HPS-2048-677 key");
static NTRU_821: NtruSuite = ntru_suite!(ntruhps4096821, "NTRU-HPS-4096-821 key");

impl KemAlgorithm {
    fn suite(self) -> &'static NtruSuite {
        match self {
            KemAlgorithm::NtruHps2048509 => &NTRU_509,
            KemAlgorithm::NtruHps2048677 => &NTRU_677,
            KemAlgorithm::NtruHps4096821 => &NTRU_821,
        }
    }

    /// Length of a public key in bytes.
    pub fn public_key_len(self) -> usize {
        self.suite().public_len
    }

    /// Length of a private key in bytes.
    pub fn secret_key_len(self) -> usize {
        self.suite().secret_len
    }

    /// Length of an encapsulation (KEM ciphertext) in bytes (699 for NTRU-HPS-2048-509).
    pub fn ciphertext_len(self) -> usize {
        self.suite().ciphertext_len
    }
}

/// An NTRU public key: anyone holding it can wrap data keys that only the private key's holder
/// can unwrap ([`PublicEncryptKey::wrap`]).
///
/// Its id is `Hash::of_parts([domain::KEM_KEY_ID, [algorithm id], key bytes])`. Serialized as
/// `[algorithm id, key bytes]`. Equality and hashing are over algorithm and bytes.
#[derive(Clone)]
pub struct PublicEncryptKey {
    alg: KemAlgorithm,
    /// Shared: records written for or by one key hold it many times over (rules, signatures),
    /// and cloning it costs a reference count.
    bytes: std::sync::Arc<[u8]>,
    id: Hash,
}

impl PublicEncryptKey {
    /// A public key from its encoding; checks the length ([`CryptoError::MalformedKey`]).
    pub fn from_bytes(alg: KemAlgorithm, bytes: &[u8]) -> Result<Self, CryptoError> {
        let suite = alg.suite();
        CryptoError::check_key_len(suite.name, suite.public_len, bytes.len())?;
        Ok(PublicEncryptKey::new(alg, bytes.into()))
    }

    /// A fresh shared secret (32 bytes) and its encapsulation for this key. The building block
    /// of [`PublicEncryptKey::wrap`]; also usable for key agreement.
    pub fn encapsulate(&self) -> (SecretBytes, Vec<u8>) {
        // The length was checked on construction and NTRU public keys have no further
        // structure to refuse, so this cannot fail.
        (self.alg.suite().encapsulate)(&self.bytes).expect("public key length checked")
    }
}

/// An NTRU private key (with its public half): unwraps data keys wrapped for the public half.
///
/// The secret bytes are zeroized on drop and never shown by `Debug`, which prints the algorithm
/// and the public key's id. Serialization carries the secret bytes
/// (`[algorithm id, public bytes, secret bytes]`): only serialize it into storage that is
/// itself protected. Decoding checks that the two halves belong together.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateEncryptKey {
    public: PublicEncryptKey,
    secret: SecretBytes,
}

impl PrivateEncryptKey {
    /// A key pair from its encodings. Checks lengths, then encapsulates to the public half and
    /// decapsulates with the private half to make sure they belong together
    /// ([`CryptoError::MalformedKey`]).
    pub fn from_bytes(
        alg: KemAlgorithm,
        public: &[u8],
        secret: &[u8],
    ) -> Result<Self, CryptoError> {
        let public = PublicEncryptKey::from_bytes(alg, public)?;
        let suite = alg.suite();
        CryptoError::check_key_len(suite.name, suite.secret_len, secret.len())?;
        let key = PrivateEncryptKey {
            public,
            secret: SecretBytes::from_slice(secret),
        };
        let (shared, ciphertext) = key.public.encapsulate();
        if key.decapsulate(&ciphertext)? != shared {
            return Err(CryptoError::malformed_key(
                suite.name,
                "halves do not match",
            ));
        }
        Ok(key)
    }

    /// The shared secret of an encapsulation made by [`PublicEncryptKey::encapsulate`].
    ///
    /// NTRU rejects implicitly: an altered encapsulation of the right length yields an
    /// unrelated secret rather than an error (so the AEAD layered on top is what reports it).
    /// [`CryptoError::MalformedCiphertext`] if the length is wrong.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        let suite = self.algorithm().suite();
        if ciphertext.len() != suite.ciphertext_len {
            return Err(CryptoError::malformed_ciphertext(format!(
                "encapsulation of {} bytes, expected {}",
                ciphertext.len(),
                suite.ciphertext_len
            )));
        }
        (suite.decapsulate)(ciphertext, self.secret.expose())
            .ok_or_else(|| CryptoError::malformed_key(suite.name, "secret key does not decode"))
    }
}

key_pair_impls!(
    PublicEncryptKey,
    PrivateEncryptKey,
    KemAlgorithm,
    domain::KEM_KEY_ID
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeySize;
    use crate::crypto::testkeys::{assert_debug_redacts, kem_keys};

    #[test]
    fn sizes_ids_and_generation_by_key_size() {
        for alg in KemAlgorithm::ALL.iter().copied() {
            let (k, other) = kem_keys(alg);
            assert_eq!(k.algorithm(), alg);
            assert_eq!(k.public_key().as_bytes().len(), alg.public_key_len());
            assert_eq!(k.secret_bytes().len(), alg.secret_key_len());
            assert_eq!(k.hash(), k.as_public_key().hash());
            assert_eq!(
                k.hash(),
                Hash::of_parts(&[
                    b"ATE/crypto/v1/key-id/kem",
                    &[alg.as_u8()],
                    k.public_key().as_bytes()
                ])
            );
            assert_ne!(k.hash(), other.hash());
        }
        assert_eq!(KemAlgorithm::NtruHps2048509.ciphertext_len(), 699);
        let k = PrivateEncryptKey::generate(KeySize::Bit128);
        assert_eq!(k.algorithm(), KemAlgorithm::NtruHps2048509);
    }

    #[test]
    fn encapsulation_round_trip_and_implicit_rejection() {
        for alg in KemAlgorithm::ALL.iter().copied() {
            let (k, other) = kem_keys(alg);
            let (shared, ct) = k.public_key().encapsulate();
            assert_eq!(shared.len(), 32);
            assert_eq!(ct.len(), alg.ciphertext_len());
            assert_eq!(k.decapsulate(&ct).unwrap(), shared);
            assert_ne!(other.decapsulate(&ct).unwrap(), shared);
            let mut bad = ct.clone();
            bad[3] ^= 0x10;
            assert_ne!(k.decapsulate(&bad).unwrap(), shared);
            let (shared2, ct2) = k.public_key().encapsulate();
            assert_ne!(shared2, shared);
            assert_ne!(ct2, ct);
            assert!(matches!(
                k.decapsulate(&ct[1..]),
                Err(CryptoError::MalformedCiphertext { .. })
            ));
        }
    }

    #[test]
    fn malformed_and_mismatched_keys_are_refused() {
        let alg = KemAlgorithm::NtruHps2048509;
        let (a, b) = kem_keys(alg);
        let pk = a.public_key().as_bytes();
        assert!(matches!(
            PublicEncryptKey::from_bytes(alg, &pk[1..]),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert!(matches!(
            PublicEncryptKey::from_bytes(KemAlgorithm::NtruHps4096821, pk),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert_eq!(
            PublicEncryptKey::from_bytes(alg, pk).unwrap(),
            a.as_public_key()
        );
        assert_eq!(
            PrivateEncryptKey::from_bytes(alg, pk, a.secret_bytes()).unwrap(),
            *a
        );
        assert!(matches!(
            PrivateEncryptKey::from_bytes(alg, pk, b.secret_bytes()),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert!(matches!(
            PrivateEncryptKey::from_bytes(alg, pk, &a.secret_bytes()[2..]),
            Err(CryptoError::MalformedKey { .. })
        ));
    }

    #[test]
    fn serde_round_trips_and_refuses_unknown_ids() {
        for alg in KemAlgorithm::ALL.iter().copied() {
            let (k, _) = kem_keys(alg);
            let enc = rmp_serde::to_vec(k).unwrap();
            let back: PrivateEncryptKey = rmp_serde::from_slice(&enc).unwrap();
            assert_eq!(back, *k);
            assert_eq!(back.hash(), k.hash());
            let (shared, ct) = k.public_key().encapsulate();
            assert_eq!(back.decapsulate(&ct).unwrap(), shared);

            let enc = rmp_serde::to_vec(&k.as_public_key()).unwrap();
            let back: PublicEncryptKey = rmp_serde::from_slice(&enc).unwrap();
            assert_eq!(back, k.as_public_key());
            assert_eq!(back.hash(), k.hash());

            let mut bad = enc.clone();
            assert_eq!(bad[1], alg.as_u8());
            bad[1] = 0x2a;
            let err = rmp_serde::from_slice::<PublicEncryptKey>(&bad).unwrap_err();
            assert!(
                err.to_string()
                    .contains("unknown key encapsulation algorithm id 42")
            );
        }
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        for alg in KemAlgorithm::ALL.iter().copied() {
            let (k, _) = kem_keys(alg);
            assert_debug_redacts(k, k.secret_bytes(), k.hash());
        }
    }
}
