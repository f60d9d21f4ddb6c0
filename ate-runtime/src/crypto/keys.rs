//! Key types: symmetric keys, Falcon signing keys, NTRU encryption keys, and what they produce.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _};
use pqcrypto_traits::sign::{DetachedSignature as _, PublicKey as _, SecretKey as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use super::hash::serde_bytes_array::{Bytes12, Bytes32};
use super::{CryptoError, Hash};

/// Strength of asymmetric keys. 128 and 192 use Falcon-512, 256 uses Falcon-1024; NTRU's
/// parameter set follows the size. The default is 128 (the fastest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum KeySize {
    /// ~128-bit security.
    #[default]
    Bit128,
    /// ~192-bit security.
    Bit192,
    /// ~256-bit security.
    Bit256,
}

/// Signature algorithms (ids are stable; ML-DSA will take new ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignAlgorithm {
    /// Falcon-512 (padded signatures).
    Falcon512 = 1,
    /// Falcon-1024 (padded signatures).
    Falcon1024 = 2,
}

impl SignAlgorithm {
    /// The stable id.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for SignAlgorithm {
    type Error = CryptoError;
    fn try_from(id: u8) -> Result<Self, CryptoError> {
        match id {
            1 => Ok(SignAlgorithm::Falcon512),
            2 => Ok(SignAlgorithm::Falcon1024),
            id => Err(CryptoError::UnknownAlgorithm {
                kind: "signature",
                id,
            }),
        }
    }
}

/// Key encapsulation algorithms (ids are stable; ML-KEM will take new ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KemAlgorithm {
    /// NTRU-HPS-2048-509 (128-bit).
    NtruHps2048509 = 1,
    /// NTRU-HPS-2048-677 (192-bit).
    NtruHps2048677 = 2,
    /// NTRU-HPS-4096-821 (256-bit).
    NtruHps4096821 = 3,
}

impl KemAlgorithm {
    /// The stable id.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for KemAlgorithm {
    type Error = CryptoError;
    fn try_from(id: u8) -> Result<Self, CryptoError> {
        match id {
            1 => Ok(KemAlgorithm::NtruHps2048509),
            2 => Ok(KemAlgorithm::NtruHps2048677),
            3 => Ok(KemAlgorithm::NtruHps4096821),
            id => Err(CryptoError::UnknownAlgorithm { kind: "kem", id }),
        }
    }
}

fn domain_hash(domain: &[u8], bytes: &[u8]) -> Hash {
    Hash::of_parts(&[domain, bytes])
}

// ---------------------------------------------------------------------------------------------
// Symmetric keys and AEAD

/// A 256-bit AES key: a read key, or the data key of a transaction.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptKey(Zeroizing<[u8; 32]>);

/// AES-256-GCM output: the nonce and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedData {
    /// The 96-bit nonce.
    #[serde(with = "nonce_serde")]
    pub nonce: [u8; 12],
    /// Ciphertext followed by the 16-byte tag.
    #[serde(with = "serde_bytes_vec")]
    pub ciphertext: Vec<u8>,
}

impl EncryptKey {
    /// A fresh random key from the OS-seeded CSPRNG.
    pub fn generate() -> Self {
        EncryptKey(Zeroizing::new(rand::random::<[u8; 32]>()))
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncryptKey(Zeroizing::new(bytes))
    }

    /// The key bytes (secret).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's stable public id: a hash of a domain tag and the key, never the key.
    pub fn hash(&self) -> Hash {
        domain_hash(b"ATE/encrypt-key/v1", &self.0[..])
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0[..]).expect("32-byte key")
    }

    /// Encrypts with a fresh random nonce, authenticating `aad` too.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> EncryptedData {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of in-memory data cannot fail");
        EncryptedData { nonce, ciphertext }
    }

    /// Decrypts and authenticates; any change to nonce, ciphertext or `aad` fails.
    pub fn decrypt(&self, aad: &[u8], data: &EncryptedData) -> Result<Vec<u8>, CryptoError> {
        if data.ciphertext.len() < 16 {
            return Err(CryptoError::MalformedCiphertext);
        }
        self.cipher()
            .decrypt(
                Nonce::from_slice(&data.nonce),
                Payload {
                    msg: &data.ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::DecryptFailed)
    }

    /// Wraps a data key for the holders of this key.
    pub fn wrap(&self, data_key: &EncryptKey) -> WrappedKey {
        let for_key = self.hash();
        let sealed = self.encrypt(for_key.as_bytes(), &data_key.0[..]);
        WrappedKey {
            for_key,
            kem: 0,
            kem_ciphertext: Vec::new(),
            sealed,
        }
    }

    /// Unwraps a data key wrapped by [`EncryptKey::wrap`].
    pub fn unwrap(&self, wrapped: &WrappedKey) -> Result<EncryptKey, CryptoError> {
        if wrapped.for_key != self.hash() || wrapped.kem != 0 {
            return Err(CryptoError::WrongKey);
        }
        let plain = Zeroizing::new(self.decrypt(wrapped.for_key.as_bytes(), &wrapped.sealed)?);
        let bytes: [u8; 32] = plain[..]
            .try_into()
            .map_err(|_| CryptoError::MalformedCiphertext)?;
        Ok(EncryptKey::from_bytes(bytes))
    }
}

impl fmt::Debug for EncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptKey({:?})", self.hash())
    }
}

impl Serialize for EncryptKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0[..])
    }
}

impl<'de> Deserialize<'de> for EncryptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut b = Bytes32::deserialize(d)?;
        let k = EncryptKey::from_bytes(b.0);
        b.0.zeroize();
        Ok(k)
    }
}

/// A data key wrapped for one reader key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The hash of the key it is wrapped for.
    pub for_key: Hash,
    /// 0 for a symmetric key, else the [`KemAlgorithm`] id of the public key.
    pub kem: u8,
    /// The KEM ciphertext (empty for symmetric wrapping).
    #[serde(with = "serde_bytes_vec")]
    pub kem_ciphertext: Vec<u8>,
    /// The data key under AES-256-GCM, with the reader key's hash as associated data.
    pub sealed: EncryptedData,
}

impl std::hash::Hash for EncryptedData {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nonce.hash(state);
        self.ciphertext.hash(state);
    }
}

// ---------------------------------------------------------------------------------------------
// Falcon signatures

macro_rules! with_falcon {
    ($alg:expr, $m:ident => $body:expr) => {
        match $alg {
            SignAlgorithm::Falcon512 => {
                use pqcrypto_falcon::falconpadded512 as $m;
                $body
            }
            SignAlgorithm::Falcon1024 => {
                use pqcrypto_falcon::falconpadded1024 as $m;
                $body
            }
        }
    };
}

/// A Falcon public key: verifies signatures; its hash names a writer in write rules.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicSignKey {
    alg: SignAlgorithm,
    bytes: Vec<u8>,
}

/// A Falcon private key (secret bytes zeroized on drop).
#[derive(Clone)]
pub struct PrivateSignKey {
    public: PublicSignKey,
    secret: Zeroizing<Vec<u8>>,
}

/// A detached signature with its algorithm id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    alg: u8,
    #[serde(with = "serde_bytes_vec")]
    bytes: Vec<u8>,
}

impl Signature {
    /// A signature from its parts (for decoding and tests).
    pub fn from_parts(alg: u8, bytes: Vec<u8>) -> Self {
        Signature { alg, bytes }
    }

    /// The algorithm id as stored.
    pub fn algorithm_id(&self) -> u8 {
        self.alg
    }

    /// The algorithm, if this build knows the id.
    pub fn algorithm(&self) -> Result<SignAlgorithm, CryptoError> {
        SignAlgorithm::try_from(self.alg)
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl PrivateSignKey {
    /// A fresh key pair: Falcon-512 for 128/192, Falcon-1024 for 256.
    pub fn generate(size: KeySize) -> Self {
        let alg = match size {
            KeySize::Bit128 | KeySize::Bit192 => SignAlgorithm::Falcon512,
            KeySize::Bit256 => SignAlgorithm::Falcon1024,
        };
        with_falcon!(alg, m => {
            let (pk, sk) = m::keypair();
            PrivateSignKey {
                public: PublicSignKey { alg, bytes: pk.as_bytes().to_vec() },
                secret: Zeroizing::new(sk.as_bytes().to_vec()),
            }
        })
    }

    /// The public half.
    pub fn as_public_key(&self) -> PublicSignKey {
        self.public.clone()
    }

    /// The public key's hash (the writer's id).
    pub fn hash(&self) -> Hash {
        self.public.hash()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignAlgorithm {
        self.public.alg
    }

    /// Signs `msg` (detached).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        let bytes = with_falcon!(self.public.alg, m => {
            let sk = m::SecretKey::from_bytes(&self.secret).expect("secret key bytes we made");
            m::detached_sign(msg, &sk).as_bytes().to_vec()
        });
        Signature {
            alg: self.public.alg.as_u8(),
            bytes,
        }
    }
}

impl PublicSignKey {
    /// The key's stable id.
    pub fn hash(&self) -> Hash {
        Hash::of_parts(&[b"ATE/sign-key/v1", &[self.alg.as_u8()], &self.bytes])
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignAlgorithm {
        self.alg
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks a detached signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        if sig.algorithm()? != self.alg {
            return Err(CryptoError::BadSignature);
        }
        with_falcon!(self.alg, m => {
            let pk = m::PublicKey::from_bytes(&self.bytes).map_err(|_| CryptoError::MalformedKey)?;
            let s = m::DetachedSignature::from_bytes(&sig.bytes).map_err(|_| CryptoError::BadSignature)?;
            m::verify_detached_signature(&s, msg, &pk).map_err(|_| CryptoError::BadSignature)
        })
    }

    fn checked(alg: u8, bytes: Vec<u8>) -> Result<Self, CryptoError> {
        let alg = SignAlgorithm::try_from(alg)?;
        with_falcon!(alg, m => {
            m::PublicKey::from_bytes(&bytes).map_err(|_| CryptoError::MalformedKey)?;
        });
        Ok(PublicSignKey { alg, bytes })
    }
}

impl fmt::Debug for PublicSignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicSignKey({:?}, {:?})", self.alg, self.hash())
    }
}

impl fmt::Debug for PrivateSignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateSignKey({:?}, {:?})",
            self.public.alg,
            self.hash()
        )
    }
}

#[derive(Serialize, Deserialize)]
struct KeyRepr {
    alg: u8,
    #[serde(with = "serde_bytes_vec")]
    public: Vec<u8>,
    #[serde(
        with = "serde_bytes_vec",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    secret: Vec<u8>,
}

impl Drop for KeyRepr {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Serialize for PublicSignKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.alg.as_u8(), serde_bytes_ref(&self.bytes)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicSignKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (alg, bytes): (u8, ByteVec) = Deserialize::deserialize(d)?;
        PublicSignKey::checked(alg, bytes.0).map_err(serde::de::Error::custom)
    }
}

/// Serializes the secret key bytes: handle the output as a secret.
impl Serialize for PrivateSignKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KeyRepr {
            alg: self.public.alg.as_u8(),
            public: self.public.bytes.clone(),
            secret: self.secret.to_vec(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PrivateSignKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut r = KeyRepr::deserialize(d)?;
        let public = PublicSignKey::checked(r.alg, std::mem::take(&mut r.public))
            .map_err(serde::de::Error::custom)?;
        with_falcon!(public.alg, m => {
            m::SecretKey::from_bytes(&r.secret).map_err(|_| serde::de::Error::custom(CryptoError::MalformedKey))?;
        });
        Ok(PrivateSignKey {
            public,
            secret: Zeroizing::new(std::mem::take(&mut r.secret)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// NTRU key encapsulation

macro_rules! with_ntru {
    ($alg:expr, $m:ident => $body:expr) => {
        match $alg {
            KemAlgorithm::NtruHps2048509 => {
                use pqcrypto_ntru::ntruhps2048509 as $m;
                $body
            }
            KemAlgorithm::NtruHps2048677 => {
                use pqcrypto_ntru::ntruhps2048677 as $m;
                $body
            }
            KemAlgorithm::NtruHps4096821 => {
                use pqcrypto_ntru::ntruhps4096821 as $m;
                $body
            }
        }
    };
}

/// An NTRU public key: anyone can wrap a data key for it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicEncryptKey {
    alg: KemAlgorithm,
    bytes: Vec<u8>,
}

/// An NTRU private key: unwraps data keys wrapped for its public half.
#[derive(Clone)]
pub struct PrivateEncryptKey {
    public: PublicEncryptKey,
    secret: Zeroizing<Vec<u8>>,
}

fn kem_wrapping_key(shared: &[u8]) -> EncryptKey {
    let h = Hash::of_parts(&[b"ATE/kem-wrap/v1", shared]);
    EncryptKey::from_bytes(*h.as_bytes())
}

impl PrivateEncryptKey {
    /// A fresh key pair with the NTRU parameter set of `size`.
    pub fn generate(size: KeySize) -> Self {
        let alg = match size {
            KeySize::Bit128 => KemAlgorithm::NtruHps2048509,
            KeySize::Bit192 => KemAlgorithm::NtruHps2048677,
            KeySize::Bit256 => KemAlgorithm::NtruHps4096821,
        };
        with_ntru!(alg, m => {
            let (pk, sk) = m::keypair();
            PrivateEncryptKey {
                public: PublicEncryptKey { alg, bytes: pk.as_bytes().to_vec() },
                secret: Zeroizing::new(sk.as_bytes().to_vec()),
            }
        })
    }

    /// The public half.
    pub fn as_public_key(&self) -> PublicEncryptKey {
        self.public.clone()
    }

    /// The public key's hash.
    pub fn hash(&self) -> Hash {
        self.public.hash()
    }

    /// Unwraps a data key wrapped for the public half.
    pub fn unwrap(&self, wrapped: &WrappedKey) -> Result<EncryptKey, CryptoError> {
        if wrapped.for_key != self.hash() || wrapped.kem != self.public.alg.as_u8() {
            return Err(CryptoError::WrongKey);
        }
        let shared = with_ntru!(self.public.alg, m => {
            let sk = m::SecretKey::from_bytes(&self.secret).map_err(|_| CryptoError::MalformedKey)?;
            let ct = m::Ciphertext::from_bytes(&wrapped.kem_ciphertext)
                .map_err(|_| CryptoError::MalformedCiphertext)?;
            Zeroizing::new(m::decapsulate(&ct, &sk).as_bytes().to_vec())
        });
        let kek = kem_wrapping_key(&shared);
        let plain = Zeroizing::new(kek.decrypt(wrapped.for_key.as_bytes(), &wrapped.sealed)?);
        let bytes: [u8; 32] = plain[..]
            .try_into()
            .map_err(|_| CryptoError::MalformedCiphertext)?;
        Ok(EncryptKey::from_bytes(bytes))
    }
}

impl PublicEncryptKey {
    /// The key's stable id.
    pub fn hash(&self) -> Hash {
        Hash::of_parts(&[b"ATE/kem-key/v1", &[self.alg.as_u8()], &self.bytes])
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KemAlgorithm {
        self.alg
    }

    /// Wraps a data key so only the private half can unwrap it.
    pub fn wrap(&self, data_key: &EncryptKey) -> WrappedKey {
        let (shared, ct) = with_ntru!(self.alg, m => {
            let pk = m::PublicKey::from_bytes(&self.bytes).expect("checked when built");
            let (ss, ct) = m::encapsulate(&pk);
            (Zeroizing::new(ss.as_bytes().to_vec()), ct.as_bytes().to_vec())
        });
        let for_key = self.hash();
        let sealed = kem_wrapping_key(&shared).encrypt(for_key.as_bytes(), &data_key.0[..]);
        WrappedKey {
            for_key,
            kem: self.alg.as_u8(),
            kem_ciphertext: ct,
            sealed,
        }
    }

    fn checked(alg: u8, bytes: Vec<u8>) -> Result<Self, CryptoError> {
        let alg = KemAlgorithm::try_from(alg)?;
        with_ntru!(alg, m => {
            m::PublicKey::from_bytes(&bytes).map_err(|_| CryptoError::MalformedKey)?;
        });
        Ok(PublicEncryptKey { alg, bytes })
    }
}

impl fmt::Debug for PublicEncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicEncryptKey({:?}, {:?})", self.alg, self.hash())
    }
}

impl fmt::Debug for PrivateEncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateEncryptKey({:?}, {:?})",
            self.public.alg,
            self.hash()
        )
    }
}

impl Serialize for PublicEncryptKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.alg.as_u8(), serde_bytes_ref(&self.bytes)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicEncryptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (alg, bytes): (u8, ByteVec) = Deserialize::deserialize(d)?;
        PublicEncryptKey::checked(alg, bytes.0).map_err(serde::de::Error::custom)
    }
}

/// Serializes the secret key bytes: handle the output as a secret.
impl Serialize for PrivateEncryptKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KeyRepr {
            alg: self.public.alg.as_u8(),
            public: self.public.bytes.clone(),
            secret: self.secret.to_vec(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PrivateEncryptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut r = KeyRepr::deserialize(d)?;
        let public = PublicEncryptKey::checked(r.alg, std::mem::take(&mut r.public))
            .map_err(serde::de::Error::custom)?;
        with_ntru!(public.alg, m => {
            m::SecretKey::from_bytes(&r.secret).map_err(|_| serde::de::Error::custom(CryptoError::MalformedKey))?;
        });
        Ok(PrivateEncryptKey {
            public,
            secret: Zeroizing::new(std::mem::take(&mut r.secret)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// serde helpers for byte strings (MessagePack `bin`, not arrays of integers)

struct ByteVec(Vec<u8>);

impl<'de> Deserialize<'de> for ByteVec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_bytes_vec::deserialize(d).map(ByteVec)
    }
}

struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn serde_bytes_ref(b: &[u8]) -> BytesRef<'_> {
    BytesRef(b)
}

mod serde_bytes_vec {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

mod nonce_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Bytes12;

    pub fn serialize<S: Serializer>(v: &[u8; 12], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 12], D::Error> {
        Bytes12::deserialize(d).map(|b| b.0)
    }
}
