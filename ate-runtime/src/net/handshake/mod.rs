//! The handshake: version and feature negotiation, an NTRU key exchange authenticated by the
//! server's Falcon identity key over the whole transcript, and key confirmation both ways.
//!
//! ```text
//! client                                                 server
//!   ClientHello  (versions, features, max frame,
//!                 ephemeral NTRU public key)      ---->
//!                                                 <----  ServerHello (version, features,
//!                                                          max frame, identity key,
//!                                                          NTRU encapsulation)
//!                                                 <----  ServerAuth  (Falcon signature over
//!                                                          the transcript so far)
//!                                                 <----  ServerFinished (HMAC, key confirmation)
//!   ClientFinished (HMAC, key confirmation)       ---->
//!   frames                                        <--->  frames
//! ```
//!
//! Message layouts are in [`messages`], the key schedule in [`keys`], and both in
//! `docs/PROTOCOL.md`.

pub(crate) mod keys;
pub(crate) mod messages;

use tokio_tungstenite::tungstenite::protocol::Role;

use crate::crypto::{KemAlgorithm, PrivateEncryptKey, PublicSignKey};

use super::Features;
use super::error::NetError;
use super::identity::ServerIdentity;
use super::ws::{Ws, read_handshake, send_handshake, with_limit};

use keys::{SessionKeys, Transcript, signed_bytes};
use messages::{ClientHello, Message, Refusal, RefusalReason, ServerHello};

/// What one side offers, and the limits it reads the handshake under.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    /// Protocol versions spoken, strictly increasing.
    pub versions: Vec<u16>,
    /// Features supported.
    pub features: Features,
    /// The largest frame payload accepted.
    pub max_frame: u32,
    /// The largest handshake message accepted.
    pub max_message: usize,
}

impl Offer {
    /// The WebSocket message limit once the handshake is done.
    fn frame_message_limit(&self) -> usize {
        (self.max_frame as usize).saturating_add(super::channel::FRAME_OVERHEAD)
    }
}

/// A finished handshake.
pub(crate) struct Established {
    /// The WebSocket, now under the frame size limit.
    pub ws: Ws,
    /// The session's keys.
    pub keys: SessionKeys,
    /// The version agreed.
    pub version: u16,
    /// The features agreed.
    pub features: Features,
    /// The largest frame payload the peer accepts.
    pub peer_max_frame: u32,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("version", &self.version)
            .field("features", &self.features)
            .field("peer_max_frame", &self.peer_max_frame)
            .finish_non_exhaustive()
    }
}

/// The highest version both lists hold.
pub(crate) fn negotiate(client: &[u16], server: &[u16]) -> Option<u16> {
    client.iter().copied().filter(|v| server.contains(v)).max()
}

fn unexpected(expected: &str, got: &Message) -> NetError {
    NetError::malformed(format!("expected the {expected}, got the {}", got.name()))
}

/// The client's side. `check_identity` sees the server's identity key once its signature over
/// the transcript has verified, and may refuse it.
#[cfg(feature = "client")]
pub(crate) async fn client(
    mut ws: Ws,
    offer: &Offer,
    kem: KemAlgorithm,
    check_identity: impl FnOnce(&PublicSignKey) -> Result<(), NetError>,
) -> Result<(Established, PublicSignKey), NetError> {
    let max = offer.max_message;
    let ephemeral = PrivateEncryptKey::generate_for(kem);
    let mut transcript = Transcript::new();

    let hello = Message::ClientHello(ClientHello {
        versions: offer.versions.clone(),
        features: offer.features,
        max_frame: offer.max_frame,
        kem: ephemeral.as_public_key(),
    })
    .encode();
    send_handshake(&mut ws, vec![hello.clone()]).await?;
    transcript.add(&hello);

    let bytes = read_handshake(&mut ws, max).await?;
    let server_hello = match Message::decode(&bytes)? {
        Message::ServerHello(m) => m,
        Message::Refusal(r) => return Err(refusal_error(r, offer, kem)),
        other => return Err(unexpected("server hello", &other)),
    };
    if !offer.versions.contains(&server_hello.version) {
        return Err(NetError::malformed(format!(
            "the server chose version {}, which was not offered",
            server_hello.version
        )));
    }
    if !offer.features.contains(server_hello.features) {
        return Err(NetError::malformed(
            "the server chose features that were not offered",
        ));
    }
    if server_hello.encapsulation.len() != kem.ciphertext_len() {
        return Err(NetError::malformed(format!(
            "encapsulation of {} bytes, {kem} makes {}",
            server_hello.encapsulation.len(),
            kem.ciphertext_len()
        )));
    }
    transcript.add(&bytes);

    let bytes = read_handshake(&mut ws, max).await?;
    let signature = match Message::decode(&bytes)? {
        Message::ServerAuth(sig) => sig,
        other => return Err(unexpected("server signature", &other)),
    };
    server_hello
        .identity
        .verify(&signed_bytes(&transcript.hash()), &signature)
        .map_err(|_| NetError::BadServerSignature)?;
    check_identity(&server_hello.identity)?;
    transcript.add(&bytes);

    let th = transcript.hash();
    let secret = ephemeral
        .decapsulate(&server_hello.encapsulation)
        .map_err(|e| NetError::malformed(e.to_string()))?;
    let keys = SessionKeys::derive(secret.expose(), &th);
    drop(secret);

    let bytes = read_handshake(&mut ws, max).await?;
    let mac = match Message::decode(&bytes)? {
        Message::ServerFinished(mac) => mac,
        other => return Err(unexpected("server key confirmation", &other)),
    };
    if !keys.verify_server_finished(&th, &mac) {
        return Err(NetError::KeyConfirmationFailed);
    }
    transcript.add(&bytes);

    // The server sends nothing more until it has the client's confirmation: nothing is read
    // ahead, and the frame limit can take over from the handshake's.
    let mut ws = with_limit(ws, Role::Client, offer.frame_message_limit()).await;
    let finished = Message::ClientFinished(keys.client_finished(&transcript.hash())).encode();
    send_handshake(&mut ws, vec![finished]).await?;

    let established = Established {
        ws,
        keys,
        version: server_hello.version,
        features: server_hello.features,
        peer_max_frame: server_hello.max_frame,
    };
    Ok((established, server_hello.identity))
}

#[cfg(feature = "client")]
fn refusal_error(refusal: Refusal, offer: &Offer, kem: KemAlgorithm) -> NetError {
    match refusal.reason {
        RefusalReason::NoCommonVersion => NetError::NoCommonVersion {
            ours: offer.versions.clone(),
            theirs: refusal.versions,
        },
        RefusalReason::UnsupportedKem => NetError::UnsupportedAlgorithm {
            kind: crate::crypto::AlgorithmKind::Kem,
            id: kem.as_u8(),
        },
    }
}

/// The server's side.
#[cfg(feature = "server")]
pub(crate) async fn server(
    mut ws: Ws,
    offer: &Offer,
    identity: &ServerIdentity,
) -> Result<Established, NetError> {
    let max = offer.max_message;
    let mut transcript = Transcript::new();

    let bytes = read_handshake(&mut ws, max).await?;
    let hello = match Message::decode(&bytes) {
        Ok(Message::ClientHello(m)) => m,
        Ok(other) => return Err(unexpected("client hello", &other)),
        Err(e @ NetError::UnsupportedAlgorithm { .. }) => {
            refuse(&mut ws, RefusalReason::UnsupportedKem, offer).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let Some(version) = negotiate(&hello.versions, &offer.versions) else {
        refuse(&mut ws, RefusalReason::NoCommonVersion, offer).await;
        return Err(NetError::NoCommonVersion {
            ours: offer.versions.clone(),
            theirs: hello.versions,
        });
    };
    transcript.add(&bytes);

    let (secret, encapsulation) = hello.kem.encapsulate();
    let server_hello = Message::ServerHello(ServerHello {
        version,
        features: hello.features.intersection(offer.features),
        max_frame: offer.max_frame,
        identity: identity.public_key().clone(),
        encapsulation,
    })
    .encode();
    transcript.add(&server_hello);

    let signature = identity.key().sign(&signed_bytes(&transcript.hash()));
    let auth = Message::ServerAuth(signature).encode();
    transcript.add(&auth);

    let th = transcript.hash();
    let keys = SessionKeys::derive(secret.expose(), &th);
    drop(secret);
    let finished = Message::ServerFinished(keys.server_finished(&th)).encode();
    transcript.add(&finished);
    send_handshake(&mut ws, vec![server_hello, auth, finished]).await?;

    // An honest client sends nothing between its hello and its confirmation: nothing is read
    // ahead, and the frame limit can take over from the handshake's.
    let mut ws = with_limit(ws, Role::Server, offer.frame_message_limit()).await;
    let bytes = read_handshake(&mut ws, max).await?;
    let mac = match Message::decode(&bytes)? {
        Message::ClientFinished(mac) => mac,
        other => return Err(unexpected("client key confirmation", &other)),
    };
    if !keys.verify_client_finished(&transcript.hash(), &mac) {
        return Err(NetError::KeyConfirmationFailed);
    }

    Ok(Established {
        ws,
        keys,
        version,
        features: hello.features.intersection(offer.features),
        peer_max_frame: hello.max_frame,
    })
}

/// Tells the client why its hello is refused and closes, as far as the connection allows
/// (the refusal is a courtesy: the caller reports the error either way).
#[cfg(feature = "server")]
async fn refuse(ws: &mut Ws, reason: RefusalReason, offer: &Offer) {
    let refusal = Message::Refusal(Refusal {
        reason,
        versions: offer.versions.clone(),
    })
    .encode();
    if send_handshake(ws, vec![refusal]).await.is_ok() {
        let _ = ws.close(None).await;
    }
}

#[cfg(all(test, feature = "client", feature = "server"))]
mod tests;
