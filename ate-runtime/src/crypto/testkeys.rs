//! Keys shared by the tests: asymmetric key generation is slow in debug builds, so each key is
//! made once per test binary.

use std::sync::OnceLock;

use std::fmt::Debug;

use super::{Hash, KemAlgorithm, PrivateEncryptKey, PrivateSignKey, SignAlgorithm};

/// Two Falcon keys per scheme: `(first, second)`.
pub(crate) fn sign_keys(alg: SignAlgorithm) -> &'static (PrivateSignKey, PrivateSignKey) {
    static F512: OnceLock<(PrivateSignKey, PrivateSignKey)> = OnceLock::new();
    static F1024: OnceLock<(PrivateSignKey, PrivateSignKey)> = OnceLock::new();
    let cell = match alg {
        SignAlgorithm::Falcon512 => &F512,
        SignAlgorithm::Falcon1024 => &F1024,
    };
    cell.get_or_init(|| {
        (
            PrivateSignKey::generate_for(alg),
            PrivateSignKey::generate_for(alg),
        )
    })
}

/// Two NTRU keys per parameter set: `(first, second)`.
pub(crate) fn kem_keys(alg: KemAlgorithm) -> &'static (PrivateEncryptKey, PrivateEncryptKey) {
    static K509: OnceLock<(PrivateEncryptKey, PrivateEncryptKey)> = OnceLock::new();
    static K677: OnceLock<(PrivateEncryptKey, PrivateEncryptKey)> = OnceLock::new();
    static K821: OnceLock<(PrivateEncryptKey, PrivateEncryptKey)> = OnceLock::new();
    let cell = match alg {
        KemAlgorithm::NtruHps2048509 => &K509,
        KemAlgorithm::NtruHps2048677 => &K677,
        KemAlgorithm::NtruHps4096821 => &K821,
    };
    cell.get_or_init(|| {
        (
            PrivateEncryptKey::generate_for(alg),
            PrivateEncryptKey::generate_for(alg),
        )
    })
}

/// Asserts that `Debug` of `value` (plain and pretty) shows the key id and nothing of `secret`:
/// not the whole secret, not any 4-byte window of it in hex, not its first bytes as a list of
/// integers, and nothing long enough to hide a dump.
pub(crate) fn assert_debug_redacts(value: &impl Debug, secret: &[u8], id: Hash) {
    for dbg in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(dbg.contains(&id.to_string()), "{dbg}");
        assert!(dbg.len() < 100, "{dbg}");
        assert!(!dbg.contains(&hex::encode(secret)));
        for w in secret.windows(4) {
            assert!(!dbg.contains(&hex::encode(w)), "{dbg}");
        }
        let listed = format!("{:?}", &secret[..4]);
        assert!(!dbg.contains(&listed[..listed.len() - 1]), "{dbg}");
    }
}
