//! The server's side: `accept`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::Role;

use super::channel::Channel;
use super::error::NetError;
use super::handshake;
use super::identity::ServerIdentity;
use super::ws::{self, BoxIo, Phase, map_error};
use super::{Features, Limits};

/// A server's TLS certificate and key, for `wss://`.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl ServerTls {
    /// From PEM text: the certificate chain (the server's certificate first) and its private
    /// key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`NetError::Tls`] if either does not parse or the key does not fit the certificate.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<Self, NetError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NetError::tls(format!("certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(NetError::tls("no certificate in the certificate chain"));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|e| NetError::tls(format!("private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(NetError::tls)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(NetError::tls)?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// From PEM files; see [`ServerTls::from_pem`].
    ///
    /// # Errors
    ///
    /// [`NetError::Tls`] if a file cannot be read, or as [`ServerTls::from_pem`].
    pub fn from_pem_files(cert_chain: &Path, private_key: &Path) -> Result<Self, NetError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| NetError::tls(format!("{}: {e}", path.display())))
        };
        let key = zeroize::Zeroizing::new(read(private_key)?);
        ServerTls::from_pem(&read(cert_chain)?, &key)
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// How [`accept`] accepts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AcceptOptions {
    /// Limits on what a client can make the server hold or wait for.
    pub limits: Limits,
    /// Features to offer.
    pub features: Features,
    /// TLS for `wss://`; `None` serves `ws://`.
    pub tls: Option<ServerTls>,
}

/// Accepts one connection on `stream` (a freshly accepted TCP stream, or any byte stream):
/// TLS if configured, the WebSocket upgrade, then the handshake signed with `identity`.
/// Returns the path of the upgrade request (`/db/<chain>` for a chain; path and query as sent,
/// unvalidated) and the channel.
///
/// Run it in a task of its own for each connection (not in the accept loop): a client that
/// stalls then holds only its own task, until [`Limits::handshake_timeout`].
///
/// # Errors
///
/// [`NetError::HandshakeTimeout`]; [`NetError::Tls`] for a failed TLS handshake;
/// [`NetError::WebSocket`] for a request that is not a WebSocket upgrade;
/// [`NetError::MalformedHandshake`], [`NetError::HandshakeMessageTooLarge`],
/// [`NetError::TextMessage`], [`NetError::NoCommonVersion`],
/// [`NetError::UnsupportedAlgorithm`] and [`NetError::KeyConfirmationFailed`] for a client
/// that does not complete the handshake as it should; [`NetError::ConnectionClosed`] or
/// [`NetError::Io`] if the connection breaks.
///
/// # Cancel safety
///
/// Dropping the future drops the connection.
pub async fn accept<S>(
    stream: S,
    identity: &ServerIdentity,
    options: &AcceptOptions,
) -> Result<(String, Channel), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &options.limits;
    let work = async {
        let io: BoxIo = match &options.tls {
            Some(tls) => Box::new(tls.acceptor.accept(stream).await.map_err(NetError::tls)?),
            None => Box::new(stream),
        };
        let mut path = None;
        // The callback's type is the WebSocket library's.
        #[allow(clippy::result_large_err)]
        let record_path = |request: &Request, response: Response| {
            path = Some(
                request
                    .uri()
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            );
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async_with_config(
            io,
            record_path,
            Some(ws::config(limits.max_handshake_message_bytes)),
        )
        .await
        .map_err(|e| map_error(e, Phase::Handshake))?;
        let path = path.unwrap_or_else(|| "/".to_owned());

        let offer = limits.offer(options.features);
        let established = handshake::server(ws, &offer, identity).await?;
        tracing::debug!(path, version = established.version, "accepted");
        let channel = Channel::new(established, Role::Server, offer.max_frame as usize);
        Ok((path, channel))
    };
    tokio::time::timeout(limits.handshake_timeout, work)
        .await
        .unwrap_or(Err(NetError::HandshakeTimeout(limits.handshake_timeout)))
}
