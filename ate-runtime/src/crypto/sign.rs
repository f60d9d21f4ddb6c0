//! Falcon signing keys and detached signatures.

use std::fmt;

use pqcrypto_falcon::{falcon512, falcon1024};
use pqcrypto_traits::sign::{DetachedSignature as _, PublicKey as _, SecretKey as _};
use serde::{Deserialize, Serialize};

use super::alg::SignAlgorithm;
use super::domain;
use super::error::{AlgorithmKind, CryptoError};
use super::hash::Hash;
use super::keys::key_pair_impls;
use super::secret::SecretBytes;

/// Header byte + 40-byte nonce: the shortest prefix of any Falcon signature.
const SIG_PREFIX_LEN: usize = 41;

/// The operations and sizes of one Falcon parameter set.
struct FalconSuite {
    name: &'static str,
    logn: u8,
    public_len: usize,
    secret_len: usize,
    max_sig_len: usize,
    keypair: fn() -> (Vec<u8>, SecretBytes),
    /// Empty on failure (a secret key that does not decode).
    sign: fn(secret: &[u8], msg: &[u8]) -> Vec<u8>,
    verify: fn(public: &[u8], msg: &[u8], sig: &[u8]) -> bool,
}

macro_rules! falcon_suite {
    ($m:ident, $name:literal, $logn:literal) => {
        FalconSuite {
            name: $name,
            logn: $logn,
            public_len: $m::public_key_bytes(),
            secret_len: $m::secret_key_bytes(),
            max_sig_len: $m::signature_bytes(),
            keypair: || {
                let (pk, sk) = $m::keypair();
                (
                    pk.as_bytes().to_vec(),
                    SecretBytes::from_slice(sk.as_bytes()),
                )
            },
            sign: |secret, msg| match $m::SecretKey::from_bytes(secret) {
                Ok(sk) => $m::detached_sign(msg, &sk).as_bytes().to_vec(),
                Err(_) => Vec::new(),
            },
            verify: |public, msg, sig| match (
                $m::PublicKey::from_bytes(public),
                $m::DetachedSignature::from_bytes(sig),
            ) {
                (Ok(pk), Ok(sig)) => $m::verify_detached_signature(&sig, msg, &pk).is_ok(),
                _ => false,
            },
        }
    };
}

static FALCON_512: FalconSuite = falcon_suite!(falcon512, "Falcon-512 key", 9);
static FALCON_1024: FalconSuite = falcon_suite!(falcon1024, "Falcon-1024 key", 10);

impl SignAlgorithm {
    fn suite(self) -> &'static FalconSuite {
        match self {
            SignAlgorithm::Falcon512 => &FALCON_512,
            SignAlgorithm::Falcon1024 => &FALCON_1024,
        }
    }

    /// Length of a public key in bytes (897 for Falcon-512, 1793 for Falcon-1024).
    pub fn public_key_len(self) -> usize {
        self.suite().public_len
    }

    /// Length of a private key in bytes (1281 for Falcon-512, 2305 for Falcon-1024).
    pub fn secret_key_len(self) -> usize {
        self.suite().secret_len
    }

    /// Upper bound of a signature's length (signatures are variable-length; Falcon-512 ones
    /// average about 655 bytes).
    pub fn max_signature_len(self) -> usize {
        self.suite().max_sig_len
    }
}

/// A Falcon public key: verifies signatures, and names the write right of its holder through
/// [`PublicSignKey::hash`].
///
/// Its id is `Hash::of_parts([domain::SIGN_KEY_ID, [algorithm id], key bytes])`. Serialized as
/// `[algorithm id, key bytes]`. Equality and hashing are over algorithm and bytes.
#[derive(Clone)]
pub struct PublicSignKey {
    alg: SignAlgorithm,
    /// Shared: records written for or by one key hold it many times over (rules, signatures),
    /// and cloning it costs a reference count.
    bytes: std::sync::Arc<[u8]>,
    id: Hash,
}

impl PublicSignKey {
    /// A public key from its encoding; checks the length and the Falcon header byte
    /// ([`CryptoError::MalformedKey`]).
    pub fn from_bytes(alg: SignAlgorithm, bytes: &[u8]) -> Result<Self, CryptoError> {
        let suite = alg.suite();
        CryptoError::check_key_len(suite.name, suite.public_len, bytes.len())?;
        if bytes[0] != suite.logn {
            return Err(CryptoError::malformed_key(
                suite.name,
                "bad public key header",
            ));
        }
        Ok(PublicSignKey::new(alg, bytes.into()))
    }

    /// Checks a detached signature over `msg`.
    ///
    /// [`CryptoError::UnknownAlgorithm`] if the signature's id is unknown;
    /// [`CryptoError::AlgorithmMismatch`] if it is for another scheme;
    /// [`CryptoError::BadSignature`] if it does not verify or is not in canonical form.
    /// Canonical form: Falcon's decoder also accepts a signature zero-padded to the fixed
    /// "padded" length, which would give every signature a second valid encoding; such
    /// signatures are refused (a canonical compressed signature never ends in a zero byte, since
    /// its last byte holds the final coefficient's stop bit).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        if sig.algorithm()? != self.alg {
            return Err(CryptoError::AlgorithmMismatch {
                kind: AlgorithmKind::Sign,
                expected: self.alg.as_u8(),
                found: sig.alg,
            });
        }
        let suite = self.alg.suite();
        let canonical = sig.bytes.len() > SIG_PREFIX_LEN
            && sig.bytes.len() <= suite.max_sig_len
            && sig.bytes.last() != Some(&0);
        if canonical && (suite.verify)(&self.bytes, msg, &sig.bytes) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// A Falcon private key (with its public half): signs transactions.
///
/// The secret bytes are zeroized on drop and never shown by `Debug`, which prints the algorithm
/// and the public key's id. Serialization carries the secret bytes
/// (`[algorithm id, public bytes, secret bytes]`): only serialize it into storage that is
/// itself protected. Decoding checks that the two halves belong together.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateSignKey {
    public: PublicSignKey,
    secret: SecretBytes,
}

impl PrivateSignKey {
    /// A key pair from its encodings ([`CryptoError::MalformedKey`] if refused).
    ///
    /// Checks lengths and headers, that the halves belong together, and that the secret key is
    /// a well-formed Falcon basis (a malformed one would make signing loop forever); the cost
    /// is a few milliseconds, paid only here.
    pub fn from_bytes(
        alg: SignAlgorithm,
        public: &[u8],
        secret: &[u8],
    ) -> Result<Self, CryptoError> {
        let public = PublicSignKey::from_bytes(alg, public)?;
        let suite = alg.suite();
        CryptoError::check_key_len(suite.name, suite.secret_len, secret.len())?;
        if secret[0] != 0x50 + suite.logn {
            return Err(CryptoError::malformed_key(
                suite.name,
                "bad private key header",
            ));
        }
        super::falcon::check_pair(u32::from(suite.logn), &public.bytes, secret)
            .map_err(|detail| CryptoError::malformed_key(suite.name, detail))?;
        Ok(PrivateSignKey {
            public,
            secret: SecretBytes::from_slice(secret),
        })
    }

    /// A detached signature over `msg`.
    ///
    /// Every constructor checks the key, so this cannot fail in practice; should the secret
    /// bytes be unusable anyway, the signature returned is empty and never verifies (use
    /// [`PrivateSignKey::try_sign`] to see the error).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.try_sign(msg)
            .unwrap_or_else(|_| Signature::new(self.algorithm(), Vec::new()))
    }

    /// A detached signature over `msg`, or [`CryptoError::MalformedKey`] if the secret key
    /// does not decode.
    pub fn try_sign(&self, msg: &[u8]) -> Result<Signature, CryptoError> {
        let alg = self.algorithm();
        let bytes = (alg.suite().sign)(self.secret.expose(), msg);
        if bytes.len() <= SIG_PREFIX_LEN {
            return Err(CryptoError::malformed_key(
                alg.suite().name,
                "signing failed",
            ));
        }
        Ok(Signature::new(alg, bytes))
    }
}

key_pair_impls!(
    PublicSignKey,
    PrivateSignKey,
    SignAlgorithm,
    domain::SIGN_KEY_ID
);

/// A detached signature and the id of the scheme that made it.
///
/// Serialized as `[algorithm id, signature bytes]`. The id is kept as stored: a signature with
/// an id this build does not know still decodes, so the layer above can report precisely that
/// the algorithm is unknown ([`Signature::algorithm`] and [`PublicSignKey::verify`] return
/// [`CryptoError::UnknownAlgorithm`]) rather than a generic decoding failure. Nothing is ever
/// verified under an unknown id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    alg: u8,
    #[serde(with = "super::bytes")]
    bytes: Vec<u8>,
}

impl Signature {
    /// A signature from a known scheme and its bytes (checked only when verified).
    pub fn new(alg: SignAlgorithm, bytes: Vec<u8>) -> Self {
        Signature {
            alg: alg.as_u8(),
            bytes,
        }
    }

    /// A signature from a raw algorithm id and its bytes, as decoded from elsewhere.
    pub fn from_parts(alg_id: u8, bytes: Vec<u8>) -> Self {
        Signature { alg: alg_id, bytes }
    }

    /// The algorithm id as stored.
    pub fn algorithm_id(&self) -> u8 {
        self.alg
    }

    /// The scheme that made it; [`CryptoError::UnknownAlgorithm`] for an id this build does
    /// not know.
    pub fn algorithm(&self) -> Result<SignAlgorithm, CryptoError> {
        SignAlgorithm::try_from(self.alg)
    }

    /// The signature's encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature's encoding, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("alg", &self.alg)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeySize;
    use crate::crypto::testkeys::{assert_debug_redacts, sign_keys};
    use proptest::prelude::*;

    const ALGS: [SignAlgorithm; 2] = [SignAlgorithm::Falcon512, SignAlgorithm::Falcon1024];

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn sizes_and_ids() {
        for alg in ALGS {
            let (k, other) = sign_keys(alg);
            assert_eq!(k.algorithm(), alg);
            assert_eq!(k.public_key().as_bytes().len(), alg.public_key_len());
            assert_eq!(k.secret_bytes().len(), alg.secret_key_len());
            assert_eq!(k.hash(), k.as_public_key().hash());
            assert_eq!(
                k.hash(),
                Hash::of_parts(&[
                    b"ATE/crypto/v1/key-id/sign",
                    &[alg.as_u8()],
                    k.public_key().as_bytes()
                ])
            );
            assert_ne!(k.hash(), other.hash());
        }
        assert_eq!(SignAlgorithm::Falcon512.public_key_len(), 897);
        assert_eq!(SignAlgorithm::Falcon1024.public_key_len(), 1793);
    }

    #[test]
    fn generate_follows_key_size() {
        // Only the 512 case is generated here (1024 keygen is covered by the shared keys).
        let k = PrivateSignKey::generate(KeySize::Bit192);
        assert_eq!(k.algorithm(), SignAlgorithm::Falcon512);
        let sig = k.sign(b"m");
        assert_eq!(k.as_public_key().verify(b"m", &sig), Ok(()));
    }

    #[test]
    fn every_bit_flip_of_a_falcon512_signature_is_rejected() {
        let (k, _) = sign_keys(SignAlgorithm::Falcon512);
        let pk = k.as_public_key();
        let msg = b"ATE/tx-signature/v1 chain hash and event hashes";
        let sig = k.sign(msg);
        assert_eq!(pk.verify(msg, &sig), Ok(()));
        for bit in 0..sig.bytes.len() * 8 {
            let mut bad = sig.clone();
            flip(&mut bad.bytes, bit);
            assert_eq!(
                pk.verify(msg, &bad),
                Err(CryptoError::BadSignature),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn every_bit_flip_of_the_message_is_rejected() {
        for alg in ALGS {
            let (k, _) = sign_keys(alg);
            let pk = k.as_public_key();
            let msg = [0x5au8; 48];
            let sig = k.sign(&msg);
            for bit in 0..msg.len() * 8 {
                let mut bad = msg;
                flip(&mut bad, bit);
                assert_eq!(pk.verify(&bad, &sig), Err(CryptoError::BadSignature));
            }
        }
    }

    #[test]
    fn truncated_extended_and_padded_signatures_are_rejected() {
        for alg in ALGS {
            let (k, _) = sign_keys(alg);
            let pk = k.as_public_key();
            let sig = k.sign(b"msg");
            let n = sig.bytes.len();
            for len in (0..n).step_by(7).chain([n - 1]) {
                let short = Signature::new(alg, sig.bytes[..len].to_vec());
                assert_eq!(pk.verify(b"msg", &short), Err(CryptoError::BadSignature));
            }
            for extra in [&[0u8][..], &[1], &[0, 0, 0]] {
                let mut long = sig.clone();
                long.bytes.extend_from_slice(extra);
                assert_eq!(pk.verify(b"msg", &long), Err(CryptoError::BadSignature));
            }
            let huge = Signature::new(alg, vec![0x39; alg.max_signature_len() + 1]);
            assert_eq!(pk.verify(b"msg", &huge), Err(CryptoError::BadSignature));
        }
    }

    #[test]
    fn zero_padded_encoding_is_refused_although_falcon_accepts_it() {
        let (k, _) = sign_keys(SignAlgorithm::Falcon512);
        let pk = k.as_public_key();
        let sig = k.sign(b"msg");
        let padded_len = pqcrypto_falcon::falconpadded512::signature_bytes();
        assert!(sig.bytes.len() < padded_len);
        let mut padded = sig.bytes.clone();
        padded.resize(padded_len, 0);
        // The library alone would take this second encoding of the same signature...
        let raw_pk = falcon512::PublicKey::from_bytes(pk.as_bytes()).unwrap();
        let raw_sig = falcon512::DetachedSignature::from_bytes(&padded).unwrap();
        assert!(falcon512::verify_detached_signature(&raw_sig, b"msg", &raw_pk).is_ok());
        // ...this layer does not: signatures have one encoding.
        let padded = Signature::new(SignAlgorithm::Falcon512, padded);
        assert_eq!(pk.verify(b"msg", &padded), Err(CryptoError::BadSignature));
    }

    #[test]
    fn other_keys_and_other_algorithms_are_rejected() {
        let (a, b) = sign_keys(SignAlgorithm::Falcon512);
        let (c, _) = sign_keys(SignAlgorithm::Falcon1024);
        let sig = a.sign(b"m");
        assert_eq!(
            b.as_public_key().verify(b"m", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            c.as_public_key().verify(b"m", &sig),
            Err(CryptoError::AlgorithmMismatch {
                kind: AlgorithmKind::Sign,
                expected: 2,
                found: 1
            })
        );
        let relabelled = Signature::new(SignAlgorithm::Falcon1024, sig.as_bytes().to_vec());
        assert!(matches!(
            a.as_public_key().verify(b"m", &relabelled),
            Err(CryptoError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn malformed_and_mismatched_keys_are_refused() {
        let (a, b) = sign_keys(SignAlgorithm::Falcon512);
        let alg = SignAlgorithm::Falcon512;
        let pk = a.public_key().as_bytes();
        let malformed = |r: Result<PublicSignKey, CryptoError>| {
            matches!(r, Err(CryptoError::MalformedKey { .. }))
        };
        assert!(malformed(PublicSignKey::from_bytes(alg, &pk[1..])));
        assert!(malformed(PublicSignKey::from_bytes(
            SignAlgorithm::Falcon1024,
            pk
        )));
        let mut bad_header = pk.to_vec();
        bad_header[0] ^= 1;
        assert!(malformed(PublicSignKey::from_bytes(alg, &bad_header)));
        assert_eq!(
            PublicSignKey::from_bytes(alg, pk).unwrap(),
            a.as_public_key()
        );

        let private = |p: &[u8], s: &[u8]| PrivateSignKey::from_bytes(alg, p, s);
        assert_eq!(private(pk, a.secret_bytes()).unwrap(), *a);
        assert!(matches!(
            private(pk, b.secret_bytes()),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert!(matches!(
            private(pk, &a.secret_bytes()[1..]),
            Err(CryptoError::MalformedKey { .. })
        ));
        let mut bad_secret = a.secret_bytes().to_vec();
        bad_secret[0] ^= 1;
        assert!(matches!(
            private(pk, &bad_secret),
            Err(CryptoError::MalformedKey { .. })
        ));
        // Secret keys that are not a proper Falcon basis are refused when loaded (signing with
        // one would never finish).
        let mut ones = a.secret_bytes().to_vec();
        ones[1..].fill(0xff);
        let mut random = a.secret_bytes().to_vec();
        crate::crypto::aead::os_random(&mut random[1..]);
        for bad in [ones, random] {
            assert!(matches!(
                private(pk, &bad),
                Err(CryptoError::MalformedKey { .. })
            ));
        }
        // A secret key whose body does not decode: signing reports it instead of panicking.
        let mut undecodable = a.secret_bytes().to_vec();
        undecodable[1] = 0x80; // first coefficient of f = -32, an excluded value
        assert!(matches!(
            private(pk, &undecodable),
            Err(CryptoError::MalformedKey { .. })
        ));
        let broken = PrivateSignKey {
            public: a.as_public_key(),
            secret: SecretBytes::from_vec(undecodable),
        };
        assert!(matches!(
            broken.try_sign(b"m"),
            Err(CryptoError::MalformedKey { .. })
        ));
        assert_eq!(
            a.as_public_key().verify(b"m", &broken.sign(b"m")),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn serde_round_trips_every_type() {
        for alg in ALGS {
            let (k, _) = sign_keys(alg);
            let enc = rmp_serde::to_vec(k).unwrap();
            let back: PrivateSignKey = rmp_serde::from_slice(&enc).unwrap();
            assert_eq!(back, *k);
            assert_eq!(back.hash(), k.hash());
            let sig = back.sign(b"after a round trip");
            let enc_sig = rmp_serde::to_vec(&sig).unwrap();
            let sig_back: Signature = rmp_serde::from_slice(&enc_sig).unwrap();
            assert_eq!(sig_back, sig);
            let pk_enc = rmp_serde::to_vec(&k.as_public_key()).unwrap();
            let pk: PublicSignKey = rmp_serde::from_slice(&pk_enc).unwrap();
            assert_eq!(pk, k.as_public_key());
            assert_eq!(pk.hash(), k.hash());
            assert_eq!(pk.verify(b"after a round trip", &sig_back), Ok(()));
            // [alg, bin16 key]: no per-byte integer encoding.
            assert_eq!(pk_enc.len(), 2 + 3 + alg.public_key_len());
            assert_eq!(pk_enc[1], alg.as_u8());
        }
    }

    #[test]
    fn unknown_signature_ids_decode_but_never_verify() {
        let (a, _) = sign_keys(SignAlgorithm::Falcon512);
        let sig = a.sign(b"m");
        let mut enc = rmp_serde::to_vec(&sig).unwrap();
        assert_eq!(enc[1], 1, "[alg, bytes]: the id is the second byte");
        enc[1] = 0x63;
        let forged: Signature = rmp_serde::from_slice(&enc).unwrap();
        assert_eq!(forged.algorithm_id(), 0x63);
        assert_eq!(forged.as_bytes(), sig.as_bytes());
        let unknown = CryptoError::UnknownAlgorithm {
            kind: AlgorithmKind::Sign,
            id: 0x63,
        };
        assert_eq!(forged.algorithm(), Err(unknown.clone()));
        assert_eq!(a.as_public_key().verify(b"m", &forged), Err(unknown));
        let zero = Signature::from_parts(0, sig.as_bytes().to_vec());
        assert!(matches!(
            a.as_public_key().verify(b"m", &zero),
            Err(CryptoError::UnknownAlgorithm { id: 0, .. })
        ));
    }

    #[test]
    fn serde_refuses_unknown_key_algorithms_and_mismatched_halves() {
        let (a, b) = sign_keys(SignAlgorithm::Falcon512);
        let mut pk = rmp_serde::to_vec(&a.as_public_key()).unwrap();
        pk[1] = 7;
        let err = rmp_serde::from_slice::<PublicSignKey>(&pk).unwrap_err();
        assert!(
            err.to_string().contains("unknown signature algorithm id 7"),
            "{err}"
        );

        let forged = super::super::keys::PrivateRef {
            alg: SignAlgorithm::Falcon512,
            public: a.public_key().as_bytes(),
            secret: b.secret_bytes(),
        };
        let enc = rmp_serde::to_vec(&forged).unwrap();
        let err = rmp_serde::from_slice::<PrivateSignKey>(&enc).unwrap_err();
        assert!(err.to_string().contains("halves do not match"), "{err}");
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        for alg in ALGS {
            let (k, _) = sign_keys(alg);
            assert_debug_redacts(k, k.secret_bytes(), k.hash());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn sign_verify_round_trip_and_message_flips(
            msg in proptest::collection::vec(any::<u8>(), 0..512),
            big in any::<bool>(),
            pick in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let alg = if big { SignAlgorithm::Falcon1024 } else { SignAlgorithm::Falcon512 };
            let (k, other) = sign_keys(alg);
            let pk = k.as_public_key();
            let sig = k.sign(&msg);
            prop_assert_eq!(sig.algorithm(), Ok(alg));
            prop_assert!(sig.as_bytes().len() <= alg.max_signature_len());
            prop_assert_eq!(sig.as_bytes().last().copied().map(|b| b != 0), Some(true));
            prop_assert_eq!(pk.verify(&msg, &sig), Ok(()));
            prop_assert_eq!(other.as_public_key().verify(&msg, &sig), Err(CryptoError::BadSignature));
            let mut longer = msg.clone();
            longer.push(0);
            prop_assert_eq!(pk.verify(&longer, &sig), Err(CryptoError::BadSignature));
            if !msg.is_empty() {
                let mut bad = msg.clone();
                bad[pick.index(msg.len())] ^= 1 << bit;
                prop_assert_eq!(pk.verify(&bad, &sig), Err(CryptoError::BadSignature));
            }
        }

        #[test]
        fn random_signature_flips_are_rejected(
            msg in proptest::collection::vec(any::<u8>(), 0..64),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ) {
            let (k, _) = sign_keys(SignAlgorithm::Falcon1024);
            let pk = k.as_public_key();
            let sig = k.sign(&msg);
            let mut bad = sig.clone();
            for (i, bit) in &flips {
                bad.bytes[i.index(sig.bytes.len())] ^= 1 << bit;
            }
            prop_assume!(bad != sig);
            prop_assert_eq!(pk.verify(&msg, &bad), Err(CryptoError::BadSignature));
        }
    }
}
