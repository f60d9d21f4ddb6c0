//! The handshake messages and their byte layouts (`docs/PROTOCOL.md`, "Handshake").
//!
//! Each message is one binary WebSocket message: the magic `ATEn`, a type byte, then the
//! message's fields, integers little-endian, with no trailing bytes. Decoding is a pure
//! function of the bytes ([`Message::decode`]): every length is checked against what is left
//! before anything is allocated, and every encoding is canonical (a decoded message re-encodes
//! to exactly its bytes).

use crate::crypto::{
    AlgorithmKind, KemAlgorithm, PublicEncryptKey, PublicSignKey, SignAlgorithm, Signature,
};

use super::super::Features;
use super::super::error::NetError;

/// The first bytes of every handshake message.
pub(crate) const MAGIC: &[u8; 4] = b"ATEn";
/// At most this many protocol versions in a hello or a refusal.
pub(crate) const MAX_VERSIONS: usize = 16;
/// Length of a key-confirmation MAC (HMAC-SHA3-256).
pub(crate) const MAC_LEN: usize = 32;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const SERVER_AUTH: u8 = 3;
const SERVER_FINISHED: u8 = 4;
const CLIENT_FINISHED: u8 = 5;
const REFUSAL: u8 = 6;

/// The client's offer: what it speaks, what it accepts, and its ephemeral KEM public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientHello {
    /// Protocol versions, strictly increasing, none zero.
    pub versions: Vec<u16>,
    /// Features the client supports.
    pub features: Features,
    /// The largest frame payload the client accepts.
    pub max_frame: u32,
    /// The client's ephemeral key, to which the server encapsulates.
    pub kem: PublicEncryptKey,
}

/// The server's choice, its identity, and the encapsulation of the shared secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerHello {
    /// The version chosen: the highest both sides offered.
    pub version: u16,
    /// The features chosen: those both sides support.
    pub features: Features,
    /// The largest frame payload the server accepts.
    pub max_frame: u32,
    /// The server's identity key.
    pub identity: PublicSignKey,
    /// The KEM ciphertext for the client's key.
    pub encapsulation: Vec<u8>,
}

/// Why a server refused a client hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalReason {
    /// No protocol version in common.
    NoCommonVersion = 1,
    /// The client's key encapsulation algorithm is not supported.
    UnsupportedKem = 2,
}

/// A server's refusal of a client hello (before any key exists, so unauthenticated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// The versions the server speaks.
    pub versions: Vec<u16>,
}

/// One handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Client to server, first.
    ClientHello(ClientHello),
    /// Server to client, first.
    ServerHello(ServerHello),
    /// Server to client: the identity key's signature over the transcript so far.
    ServerAuth(Signature),
    /// Server to client: key confirmation.
    ServerFinished([u8; MAC_LEN]),
    /// Client to server: key confirmation, last.
    ClientFinished([u8; MAC_LEN]),
    /// Server to client instead of a server hello.
    Refusal(Refusal),
}

impl Message {
    /// The message's name, for errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Message::ClientHello(_) => "client hello",
            Message::ServerHello(_) => "server hello",
            Message::ServerAuth(_) => "server signature",
            Message::ServerFinished(_) => "server key confirmation",
            Message::ClientFinished(_) => "client key confirmation",
            Message::Refusal(_) => "refusal",
        }
    }

    /// The message's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        match self {
            Message::ClientHello(m) => {
                out.push(CLIENT_HELLO);
                put_versions(&mut out, &m.versions);
                out.extend_from_slice(&m.features.bits().to_le_bytes());
                out.extend_from_slice(&m.max_frame.to_le_bytes());
                out.push(m.kem.algorithm().as_u8());
                put_bytes(&mut out, m.kem.as_bytes());
            }
            Message::ServerHello(m) => {
                out.push(SERVER_HELLO);
                out.extend_from_slice(&m.version.to_le_bytes());
                out.extend_from_slice(&m.features.bits().to_le_bytes());
                out.extend_from_slice(&m.max_frame.to_le_bytes());
                out.push(m.identity.algorithm().as_u8());
                put_bytes(&mut out, m.identity.as_bytes());
                put_bytes(&mut out, &m.encapsulation);
            }
            Message::ServerAuth(sig) => {
                out.push(SERVER_AUTH);
                out.push(sig.algorithm_id());
                put_bytes(&mut out, sig.as_bytes());
            }
            Message::ServerFinished(mac) => {
                out.push(SERVER_FINISHED);
                out.extend_from_slice(mac);
            }
            Message::ClientFinished(mac) => {
                out.push(CLIENT_FINISHED);
                out.extend_from_slice(mac);
            }
            Message::Refusal(r) => {
                out.push(REFUSAL);
                out.push(r.reason as u8);
                put_versions(&mut out, &r.versions);
            }
        }
        out
    }

    /// Decodes one message: [`NetError::MalformedHandshake`] for bytes that are not one,
    /// [`NetError::UnsupportedAlgorithm`] for an algorithm id this build does not know.
    /// Never panics, whatever the bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Message, NetError> {
        let mut r = Reader { rest: bytes };
        if r.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(NetError::malformed(
                "not an ATE handshake message (bad magic)",
            ));
        }
        let message = match r.u8("message type")? {
            CLIENT_HELLO => {
                let versions = r.versions()?;
                let features = Features::from_bits(r.u64("features")?);
                let max_frame = r.u32("max frame")?;
                let id = r.u8("KEM algorithm")?;
                let alg =
                    KemAlgorithm::try_from(id).map_err(|_| NetError::UnsupportedAlgorithm {
                        kind: AlgorithmKind::Kem,
                        id,
                    })?;
                let public = r.bytes("KEM public key")?;
                let kem = PublicEncryptKey::from_bytes(alg, public)
                    .map_err(|e| NetError::malformed(format!("KEM public key: {e}")))?;
                Message::ClientHello(ClientHello {
                    versions,
                    features,
                    max_frame,
                    kem,
                })
            }
            SERVER_HELLO => {
                let version = r.u16("version")?;
                let features = Features::from_bits(r.u64("features")?);
                let max_frame = r.u32("max frame")?;
                let alg = sign_algorithm(r.u8("identity algorithm")?)?;
                let identity = PublicSignKey::from_bytes(alg, r.bytes("identity key")?)
                    .map_err(|e| NetError::malformed(format!("identity key: {e}")))?;
                let encapsulation = r.bytes("encapsulation")?.to_vec();
                Message::ServerHello(ServerHello {
                    version,
                    features,
                    max_frame,
                    identity,
                    encapsulation,
                })
            }
            SERVER_AUTH => {
                let alg = sign_algorithm(r.u8("signature algorithm")?)?;
                let sig = r.bytes("signature")?;
                if sig.is_empty() || sig.len() > alg.max_signature_len() {
                    return Err(NetError::malformed(format!(
                        "signature of {} bytes for {alg}",
                        sig.len()
                    )));
                }
                Message::ServerAuth(Signature::new(alg, sig.to_vec()))
            }
            SERVER_FINISHED => Message::ServerFinished(r.mac()?),
            CLIENT_FINISHED => Message::ClientFinished(r.mac()?),
            REFUSAL => {
                let reason = match r.u8("refusal reason")? {
                    1 => RefusalReason::NoCommonVersion,
                    2 => RefusalReason::UnsupportedKem,
                    other => {
                        return Err(NetError::malformed(format!(
                            "unknown refusal reason {other}"
                        )));
                    }
                };
                let versions = r.versions()?;
                Message::Refusal(Refusal { reason, versions })
            }
            other => {
                return Err(NetError::malformed(format!(
                    "unknown handshake message type {other}"
                )));
            }
        };
        if !r.rest.is_empty() {
            return Err(NetError::malformed(format!(
                "{} trailing bytes after the {}",
                r.rest.len(),
                message.name()
            )));
        }
        Ok(message)
    }
}

fn sign_algorithm(id: u8) -> Result<SignAlgorithm, NetError> {
    SignAlgorithm::try_from(id).map_err(|_| NetError::UnsupportedAlgorithm {
        kind: AlgorithmKind::Sign,
        id,
    })
}

fn put_versions(out: &mut Vec<u8>, versions: &[u16]) {
    debug_assert!(!versions.is_empty() && versions.len() <= MAX_VERSIONS);
    out.push(versions.len() as u8);
    for v in versions {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("handshake fields are under 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over a message's bytes; every read checks what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], NetError> {
        if self.rest.len() < n {
            return Err(NetError::malformed(format!(
                "truncated at the {what} ({n} bytes needed, {} left)",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], NetError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, NetError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, NetError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, NetError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, NetError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn mac(&mut self) -> Result<[u8; MAC_LEN], NetError> {
        self.array("key confirmation")
    }

    /// A `u16` length, then that many bytes.
    fn bytes(&mut self, what: &str) -> Result<&'a [u8], NetError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// A count (1 to [`MAX_VERSIONS`]), then that many `u16` versions, strictly increasing and
    /// none zero (one encoding per set of versions).
    fn versions(&mut self) -> Result<Vec<u16>, NetError> {
        let count = usize::from(self.u8("version count")?);
        if count == 0 || count > MAX_VERSIONS {
            return Err(NetError::malformed(format!(
                "{count} versions (1 to {MAX_VERSIONS} allowed)"
            )));
        }
        let mut versions = Vec::with_capacity(count);
        for _ in 0..count {
            let v = self.u16("version")?;
            if v == 0 || versions.last().is_some_and(|&last| last >= v) {
                return Err(NetError::malformed(
                    "versions not strictly increasing from 1",
                ));
            }
            versions.push(v);
        }
        Ok(versions)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::{KeySize, PrivateEncryptKey, PrivateSignKey};
    use proptest::prelude::*;
    use std::sync::LazyLock;

    struct Keys {
        kem: PrivateEncryptKey,
        sign: PrivateSignKey,
    }

    static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
        kem: PrivateEncryptKey::generate(KeySize::Bit128),
        sign: PrivateSignKey::generate(KeySize::Bit128),
    });

    pub(crate) fn samples() -> Vec<Message> {
        let keys = &*KEYS;
        vec![
            Message::ClientHello(ClientHello {
                versions: vec![1, 2, 7],
                features: Features::from_bits(0b1011),
                max_frame: 1 << 24,
                kem: keys.kem.as_public_key(),
            }),
            Message::ServerHello(ServerHello {
                version: 2,
                features: Features::from_bits(0b0011),
                max_frame: 4096,
                identity: keys.sign.as_public_key(),
                encapsulation: keys.kem.public_key().encapsulate().1,
            }),
            Message::ServerAuth(keys.sign.sign(b"transcript")),
            Message::ServerFinished([7; MAC_LEN]),
            Message::ClientFinished([9; MAC_LEN]),
            Message::Refusal(Refusal {
                reason: RefusalReason::NoCommonVersion,
                versions: vec![3],
            }),
            Message::Refusal(Refusal {
                reason: RefusalReason::UnsupportedKem,
                versions: vec![1, 2],
            }),
        ]
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_refused() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), m);
            for len in 0..bytes.len() {
                assert!(
                    matches!(
                        Message::decode(&bytes[..len]),
                        Err(NetError::MalformedHandshake { .. })
                    ),
                    "{} cut to {len}",
                    m.name()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(matches!(
                Message::decode(&longer),
                Err(NetError::MalformedHandshake { .. })
            ));
        }
    }

    #[test]
    fn the_client_hello_layout_is_as_documented() {
        let Message::ClientHello(hello) = &samples()[0] else {
            unreachable!()
        };
        let bytes = Message::ClientHello(hello.clone()).encode();
        assert_eq!(&bytes[..5], b"ATEn\x01");
        assert_eq!(&bytes[5..12], &[3, 1, 0, 2, 0, 7, 0]);
        assert_eq!(&bytes[12..20], &0b1011u64.to_le_bytes());
        assert_eq!(&bytes[20..24], &(1u32 << 24).to_le_bytes());
        assert_eq!(bytes[24], 1);
        assert_eq!(&bytes[25..27], &699u16.to_le_bytes());
        assert_eq!(bytes.len(), 27 + 699);
    }

    #[test]
    fn bad_fields_are_refused() {
        let Message::ClientHello(hello) = &samples()[0] else {
            unreachable!()
        };
        let good = Message::ClientHello(hello.clone()).encode();
        let refused = |bytes: &[u8]| Message::decode(bytes).unwrap_err();
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(refused(&b), NetError::MalformedHandshake { .. }));
        let mut b = good.clone();
        b[4] = 0;
        assert!(matches!(refused(&b), NetError::MalformedHandshake { .. }));
        // Versions: none, too many, unordered, zero.
        for versions in [&[][..], &[0u8; 17 * 2], &[2, 0, 1, 0], &[0, 0]] {
            let mut b = good[..5].to_vec();
            b.push((versions.len() / 2) as u8);
            b.extend_from_slice(versions);
            b.extend_from_slice(&good[12..]);
            assert!(matches!(refused(&b), NetError::MalformedHandshake { .. }));
        }
        // An unknown KEM id, and a key of the wrong length for its id.
        let mut b = good.clone();
        b[24] = 42;
        assert!(matches!(
            refused(&b),
            NetError::UnsupportedAlgorithm {
                kind: AlgorithmKind::Kem,
                id: 42
            }
        ));
        let mut b = good.clone();
        b[24] = 2;
        assert!(matches!(refused(&b), NetError::MalformedHandshake { .. }));
        // A signature longer than its algorithm allows.
        let mut b = vec![b'A', b'T', b'E', b'n', SERVER_AUTH, 1];
        let len = SignAlgorithm::Falcon512.max_signature_len() + 1;
        b.extend_from_slice(&(len as u16).to_le_bytes());
        b.resize(b.len() + len, 1);
        assert!(matches!(refused(&b), NetError::MalformedHandshake { .. }));
    }

    fn mutate(bytes: &mut Vec<u8>, ops: &[(u16, u8, u8)]) {
        for &(at, op, value) in ops {
            if bytes.is_empty() {
                bytes.push(value);
                continue;
            }
            let at = usize::from(at) % bytes.len();
            match op % 4 {
                0 => bytes[at] ^= value.max(1),
                1 => bytes[at] = value,
                2 => bytes.truncate(at),
                _ => bytes.insert(at, value),
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Message::decode(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            if let Ok(m) = Message::decode(&with_magic) {
                prop_assert_eq!(m.encode(), with_magic);
            }
        }

        #[test]
        fn mutated_messages_never_panic_and_what_decodes_is_canonical(
            pick in 0usize..7,
            ops in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = samples()[pick].encode();
            mutate(&mut bytes, &ops);
            if let Ok(m) = Message::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }
}
