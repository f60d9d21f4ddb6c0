//! The handshake transcript and the key schedule.
//!
//! ```text
//! th        = SHA3-256 over (tag "ATE/net/v1/transcript", then each handshake message so far,
//!             each part framed by its length as u64 LE)
//! signature = Falcon(identity key, "ATE/net/v1/server-signature" ‖ th after the server hello)
//! prk       = HKDF-Extract-SHA3-256(salt = th after the server signature, ikm = KEM secret)
//! key, iv   = HKDF-Expand(prk, label, 32 or 12 bytes) for each label below
//! finished  = HMAC-SHA3-256(finished key, th before the finished message)
//! ```

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha3::Sha3_256;
use zeroize::Zeroizing;

use crate::crypto::{Hash, HashBuilder};

use super::messages::MAC_LEN;

/// First part of the transcript hash.
pub(crate) const TRANSCRIPT_TAG: &[u8] = b"ATE/net/v1/transcript";
/// Prefix of the bytes the server's identity key signs.
pub(crate) const SIGNATURE_CONTEXT: &[u8] = b"ATE/net/v1/server-signature";

const LABEL_C2S_KEY: &[u8] = b"ATE/net/v1 client-to-server key";
const LABEL_C2S_IV: &[u8] = b"ATE/net/v1 client-to-server iv";
const LABEL_S2C_KEY: &[u8] = b"ATE/net/v1 server-to-client key";
const LABEL_S2C_IV: &[u8] = b"ATE/net/v1 server-to-client iv";
const LABEL_SERVER_FINISHED: &[u8] = b"ATE/net/v1 server finished";
const LABEL_CLIENT_FINISHED: &[u8] = b"ATE/net/v1 client finished";

/// Length of a frame key (AES-256).
pub(crate) const KEY_LEN: usize = 32;
/// Length of a direction's nonce base (AES-GCM nonce).
pub(crate) const IV_LEN: usize = 12;

/// Every handshake byte, both ways, in order: each message is one part of a
/// [`HashBuilder`] (so message boundaries count), after a domain tag.
#[derive(Clone, Debug)]
pub(crate) struct Transcript(HashBuilder);

impl Transcript {
    pub(crate) fn new() -> Self {
        let mut h = HashBuilder::new();
        h.part(TRANSCRIPT_TAG);
        Transcript(h)
    }

    /// Adds one handshake message, as sent or received.
    pub(crate) fn add(&mut self, message: &[u8]) {
        self.0.part(message);
    }

    /// The hash of the messages added so far.
    pub(crate) fn hash(&self) -> Hash {
        self.0.clone().finish()
    }
}

/// The bytes the server's identity key signs: the context, then the transcript hash.
pub(crate) fn signed_bytes(transcript: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_CONTEXT.len() + Hash::LEN);
    out.extend_from_slice(SIGNATURE_CONTEXT);
    out.extend_from_slice(transcript.as_bytes());
    out
}

/// The key and nonce base of one direction of the channel.
pub(crate) struct DirectionKeys {
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) iv: Zeroizing<[u8; IV_LEN]>,
}

/// Everything derived from one handshake.
pub(crate) struct SessionKeys {
    pub(crate) client_to_server: DirectionKeys,
    pub(crate) server_to_client: DirectionKeys,
    server_finished: Zeroizing<[u8; 32]>,
    client_finished: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// Derives the session's keys from the KEM shared secret and the transcript hash after
    /// the server's signature.
    pub(crate) fn derive(shared_secret: &[u8], transcript: &Hash) -> Self {
        let hk = Hkdf::<Sha3_256>::new(Some(transcript.as_bytes()), shared_secret);
        let expand = |label: &[u8], out: &mut [u8]| {
            hk.expand(label, out)
                .expect("HKDF-SHA3-256 expands up to 8160 bytes");
        };
        let mut keys = SessionKeys {
            client_to_server: DirectionKeys {
                key: Zeroizing::new([0; KEY_LEN]),
                iv: Zeroizing::new([0; IV_LEN]),
            },
            server_to_client: DirectionKeys {
                key: Zeroizing::new([0; KEY_LEN]),
                iv: Zeroizing::new([0; IV_LEN]),
            },
            server_finished: Zeroizing::new([0; 32]),
            client_finished: Zeroizing::new([0; 32]),
        };
        expand(LABEL_C2S_KEY, &mut keys.client_to_server.key[..]);
        expand(LABEL_C2S_IV, &mut keys.client_to_server.iv[..]);
        expand(LABEL_S2C_KEY, &mut keys.server_to_client.key[..]);
        expand(LABEL_S2C_IV, &mut keys.server_to_client.iv[..]);
        expand(LABEL_SERVER_FINISHED, &mut keys.server_finished[..]);
        expand(LABEL_CLIENT_FINISHED, &mut keys.client_finished[..]);
        keys
    }

    /// The server's key confirmation over the transcript so far.
    pub(crate) fn server_finished(&self, transcript: &Hash) -> [u8; MAC_LEN] {
        mac(&self.server_finished, transcript)
    }

    /// The client's key confirmation over the transcript so far.
    pub(crate) fn client_finished(&self, transcript: &Hash) -> [u8; MAC_LEN] {
        mac(&self.client_finished, transcript)
    }

    /// Whether `got` is the server's key confirmation (compared in constant time).
    pub(crate) fn verify_server_finished(&self, transcript: &Hash, got: &[u8; MAC_LEN]) -> bool {
        verify(&self.server_finished, transcript, got)
    }

    /// Whether `got` is the client's key confirmation (compared in constant time).
    pub(crate) fn verify_client_finished(&self, transcript: &Hash, got: &[u8; MAC_LEN]) -> bool {
        verify(&self.client_finished, transcript, got)
    }
}

fn hmac(key: &[u8; 32], transcript: &Hash) -> Hmac<Sha3_256> {
    let mut m = <Hmac<Sha3_256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(transcript.as_bytes());
    m
}

fn mac(key: &[u8; 32], transcript: &Hash) -> [u8; MAC_LEN] {
    hmac(key, transcript).finalize().into_bytes().into()
}

fn verify(key: &[u8; 32], transcript: &Hash, got: &[u8; MAC_LEN]) -> bool {
    hmac(key, transcript).verify_slice(got).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(messages: &[&[u8]]) -> Hash {
        let mut t = Transcript::new();
        for m in messages {
            t.add(m);
        }
        t.hash()
    }

    fn fingerprint(keys: &SessionKeys) -> Vec<[u8; 32]> {
        let th = Hash::of(b"x");
        vec![
            *keys.client_to_server.key,
            *keys.server_to_client.key,
            Hash::of(&keys.client_to_server.iv[..])
                .as_bytes()
                .to_owned(),
            Hash::of(&keys.server_to_client.iv[..])
                .as_bytes()
                .to_owned(),
            keys.server_finished(&th),
            keys.client_finished(&th),
        ]
    }

    #[test]
    fn both_sides_derive_the_same_keys_and_every_key_differs() {
        let secret = [5u8; 32];
        let th = transcript(&[b"client hello", b"server hello", b"signature"]);
        let a = fingerprint(&SessionKeys::derive(&secret, &th));
        let b = fingerprint(&SessionKeys::derive(&secret, &th));
        assert_eq!(a, b);
        for i in 0..a.len() {
            for j in 0..i {
                assert_ne!(a[i], a[j], "{i} and {j}");
            }
        }
        let keys = SessionKeys::derive(&secret, &th);
        let mac = keys.server_finished(&th);
        assert!(keys.verify_server_finished(&th, &mac));
        assert!(!keys.verify_client_finished(&th, &mac));
        let mut bad = mac;
        bad[31] ^= 1;
        assert!(!keys.verify_server_finished(&th, &bad));
        assert!(!keys.verify_server_finished(&Hash::of(b"other"), &mac));
        assert_eq!(format!("{keys:?}"), "SessionKeys(<redacted>)");
    }

    #[test]
    fn any_changed_transcript_byte_or_secret_bit_changes_every_key() {
        let messages: [&[u8]; 3] = [b"client hello bytes", b"server hello bytes", b"sig"];
        let secret = [9u8; 32];
        let base = fingerprint(&SessionKeys::derive(&secret, &transcript(&messages)));
        for m in 0..messages.len() {
            for i in 0..messages[m].len() {
                for bit in [0x01u8, 0x80] {
                    let mut changed: Vec<Vec<u8>> = messages.iter().map(|m| m.to_vec()).collect();
                    changed[m][i] ^= bit;
                    let refs: Vec<&[u8]> = changed.iter().map(|v| &v[..]).collect();
                    let other = fingerprint(&SessionKeys::derive(&secret, &transcript(&refs)));
                    for k in 0..base.len() {
                        assert_ne!(base[k], other[k], "message {m} byte {i} key {k}");
                    }
                }
            }
        }
        // Moving a byte across a message boundary changes the transcript too.
        assert_ne!(transcript(&[b"ab", b"c"]), transcript(&[b"a", b"bc"]));
        assert_ne!(transcript(&[b"abc"]), transcript(&[b"abc", b""]));
        for i in 0..secret.len() * 8 {
            let mut s = secret;
            s[i / 8] ^= 1 << (i % 8);
            let other = fingerprint(&SessionKeys::derive(&s, &transcript(&messages)));
            for k in 0..base.len() {
                assert_ne!(base[k], other[k]);
            }
        }
    }

    #[test]
    fn the_transcript_hash_is_framed_parts_after_the_tag() {
        let th = transcript(&[b"one", b"two"]);
        assert_eq!(th, Hash::of_parts(&[TRANSCRIPT_TAG, b"one", b"two"]));
        let signed = signed_bytes(&th);
        assert_eq!(&signed[..SIGNATURE_CONTEXT.len()], SIGNATURE_CONTEXT);
        assert_eq!(&signed[SIGNATURE_CONTEXT.len()..], th.as_bytes());
    }
}
