//! Key sizes and the algorithm ids written into headers.
//!
//! Every family numbers its algorithms from 1; id 0 is never assigned, so zeroed bytes never
//! name an algorithm. Ids are stable on disk and on the wire: a number is never reused for
//! another algorithm. Decoding an id this build does not know fails with
//! [`CryptoError::UnknownAlgorithm`], which is how unknown or downgraded suites are refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AlgorithmKind, CryptoError};

/// Security level of generated asymmetric keys.
///
/// The default is [`KeySize::Bit128`]: the fastest signing (Falcon-512) and the smallest KEM
/// ciphertexts (NTRU-HPS-2048-509), which is what a store that signs every transaction wants.
/// Choose [`KeySize::Bit256`] for long-lived root keys if the extra cost is acceptable.
/// Symmetric keys are always AES-256 whatever the size chosen here.
///
/// Encoded as the number of bits (`u16`: 128, 192 or 256).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(into = "u16", try_from = "u16")]
pub enum KeySize {
    /// NIST level 1 (Falcon-512, NTRU-HPS-2048-509).
    #[default]
    Bit128,
    /// NIST level 3 (Falcon-512, NTRU-HPS-2048-677).
    Bit192,
    /// NIST level 5 (Falcon-1024, NTRU-HPS-4096-821).
    Bit256,
}

impl KeySize {
    /// The nominal security in bits.
    pub const fn bits(self) -> u16 {
        match self {
            KeySize::Bit128 => 128,
            KeySize::Bit192 => 192,
            KeySize::Bit256 => 256,
        }
    }
}

impl From<KeySize> for u16 {
    fn from(size: KeySize) -> u16 {
        size.bits()
    }
}

impl TryFrom<u16> for KeySize {
    type Error = CryptoError;

    fn try_from(bits: u16) -> Result<Self, CryptoError> {
        match bits {
            128 => Ok(KeySize::Bit128),
            192 => Ok(KeySize::Bit192),
            256 => Ok(KeySize::Bit256),
            _ => Err(CryptoError::UnsupportedKeySize { bits }),
        }
    }
}

impl fmt::Display for KeySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bits", self.bits())
    }
}

/// Defines an algorithm-id enum: `as_u8`, `TryFrom<u8>` (typed error), serde as the `u8` id,
/// `Display` as the algorithm's name and `ALL`.
macro_rules! algorithm_ids {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:expr;
        $( $(#[$vmeta:meta])* $variant:ident = $id:literal, $label:literal; )+
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(Serialize, Deserialize)]
        #[serde(into = "u8", try_from = "u8")]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $id, )+
        }

        impl $name {
            /// Every algorithm of this family known to this build.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The id written on disk and on the wire.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }

            /// The algorithm's conventional name.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl From<$name> for u8 {
            fn from(alg: $name) -> u8 {
                alg.as_u8()
            }
        }

        impl TryFrom<u8> for $name {
            type Error = CryptoError;

            /// Decodes an id; an id this build does not know is
            /// [`CryptoError::UnknownAlgorithm`].
            fn try_from(id: u8) -> Result<Self, CryptoError> {
                match id {
                    $($id => Ok($name::$variant),)+
                    _ => Err(CryptoError::UnknownAlgorithm { kind: $kind, id }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

algorithm_ids! {
    /// A signature scheme.
    ///
    /// Reserved for later: ML-DSA-44 / ML-DSA-65 / ML-DSA-87 (FIPS 204) will take new ids
    /// (3, 4, 5); existing ids keep their meaning.
    SignAlgorithm, AlgorithmKind::Sign;
    /// Falcon-512 (NIST level 1), variable-length compressed signatures.
    Falcon512 = 1, "Falcon-512";
    /// Falcon-1024 (NIST level 5), variable-length compressed signatures.
    Falcon1024 = 2, "Falcon-1024";
}

algorithm_ids! {
    /// A key encapsulation mechanism (used to wrap data keys for public-key readers).
    ///
    /// Reserved for later: ML-KEM-512 / ML-KEM-768 / ML-KEM-1024 (FIPS 203) will take new ids
    /// (4, 5, 6).
    KemAlgorithm, AlgorithmKind::Kem;
    /// NTRU-HPS-2048-509 (NIST level 1).
    NtruHps2048509 = 1, "NTRU-HPS-2048-509";
    /// NTRU-HPS-2048-677 (NIST level 3).
    NtruHps2048677 = 2, "NTRU-HPS-2048-677";
    /// NTRU-HPS-4096-821 (NIST level 5).
    NtruHps4096821 = 3, "NTRU-HPS-4096-821";
}

algorithm_ids! {
    /// An authenticated encryption scheme.
    AeadAlgorithm, AlgorithmKind::Aead;
    /// AES-256 in Galois/Counter Mode, 96-bit nonce, 128-bit tag.
    Aes256Gcm = 1, "AES-256-GCM";
}

algorithm_ids! {
    /// A hash function.
    HashAlgorithm, AlgorithmKind::Hash;
    /// SHA3-256 (FIPS 202).
    Sha3_256 = 1, "SHA3-256";
}

impl SignAlgorithm {
    /// The signature scheme used for keys of this size: Falcon-512 for 128 and 192 bits,
    /// Falcon-1024 for 256.
    pub const fn for_key_size(size: KeySize) -> Self {
        match size {
            KeySize::Bit128 | KeySize::Bit192 => SignAlgorithm::Falcon512,
            KeySize::Bit256 => SignAlgorithm::Falcon1024,
        }
    }
}

impl KemAlgorithm {
    /// The NTRU parameter set used for keys of this size.
    pub const fn for_key_size(size: KeySize) -> Self {
        match size {
            KeySize::Bit128 => KemAlgorithm::NtruHps2048509,
            KeySize::Bit192 => KemAlgorithm::NtruHps2048677,
            KeySize::Bit256 => KemAlgorithm::NtruHps4096821,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_family<A>(all: &[A], kind: AlgorithmKind)
    where
        A: Copy + Eq + fmt::Debug + Into<u8> + TryFrom<u8, Error = CryptoError>,
    {
        for id in 0..=u8::MAX {
            match A::try_from(id) {
                Ok(alg) => {
                    assert!(all.contains(&alg));
                    assert_eq!(alg.into(), id);
                }
                Err(e) => {
                    assert_eq!(e, CryptoError::UnknownAlgorithm { kind, id });
                    assert!(e.to_string().contains(&id.to_string()));
                }
            }
        }
        assert!(A::try_from(0).is_err(), "id 0 is never assigned");
        for alg in all {
            assert_eq!(A::try_from((*alg).into()), Ok(*alg));
        }
    }

    #[test]
    fn every_id_round_trips_and_unknown_ids_are_typed_errors() {
        check_family(SignAlgorithm::ALL, AlgorithmKind::Sign);
        check_family(KemAlgorithm::ALL, AlgorithmKind::Kem);
        check_family(AeadAlgorithm::ALL, AlgorithmKind::Aead);
        check_family(HashAlgorithm::ALL, AlgorithmKind::Hash);
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(SignAlgorithm::Falcon512.as_u8(), 1);
        assert_eq!(SignAlgorithm::Falcon1024.as_u8(), 2);
        assert_eq!(KemAlgorithm::NtruHps2048509.as_u8(), 1);
        assert_eq!(KemAlgorithm::NtruHps2048677.as_u8(), 2);
        assert_eq!(KemAlgorithm::NtruHps4096821.as_u8(), 3);
        assert_eq!(AeadAlgorithm::Aes256Gcm.as_u8(), 1);
        assert_eq!(HashAlgorithm::Sha3_256.as_u8(), 1);
    }

    #[test]
    fn serde_uses_the_id_and_refuses_unknown_ids() {
        let bytes = rmp_serde::to_vec(&SignAlgorithm::Falcon1024).unwrap();
        assert_eq!(bytes, [2u8]);
        let back: SignAlgorithm = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, SignAlgorithm::Falcon1024);
        let err = rmp_serde::from_slice::<SignAlgorithm>(&[0x63]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown signature algorithm id 99"),
            "{err}"
        );
        let err = rmp_serde::from_slice::<KemAlgorithm>(&[0]).unwrap_err();
        assert!(
            err.to_string().contains("unknown key encapsulation"),
            "{err}"
        );
    }

    #[test]
    fn key_sizes_map_to_the_designed_suites() {
        assert_eq!(KeySize::default(), KeySize::Bit128);
        use KemAlgorithm::*;
        use SignAlgorithm::*;
        let expect = [
            (KeySize::Bit128, Falcon512, NtruHps2048509),
            (KeySize::Bit192, Falcon512, NtruHps2048677),
            (KeySize::Bit256, Falcon1024, NtruHps4096821),
        ];
        for (size, sign, kem) in expect {
            assert_eq!(SignAlgorithm::for_key_size(size), sign);
            assert_eq!(KemAlgorithm::for_key_size(size), kem);
            let bytes = rmp_serde::to_vec(&size).unwrap();
            assert_eq!(rmp_serde::from_slice::<KeySize>(&bytes).unwrap(), size);
            assert_eq!(KeySize::try_from(size.bits()), Ok(size));
        }
        assert_eq!(
            KeySize::try_from(512),
            Err(CryptoError::UnsupportedKeySize { bits: 512 })
        );
    }
}
