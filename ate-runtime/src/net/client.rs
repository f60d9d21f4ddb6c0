//! The client's side: `connect`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::crypto::{KemAlgorithm, KeySize, PublicSignKey};

use super::channel::Channel;
use super::error::NetError;
use super::handshake;
use super::identity::{IdentityHash, Known, KnownServers};
use super::ws::{self, BoxIo, Phase, map_error};
use super::{DEFAULT_PORT, Features, Limits};

/// How a client decides to trust a server's identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerTrust {
    /// Only this identity is accepted.
    Pinned(IdentityHash),
    /// Trust on first use: the identity a server presents the first time it is reached is
    /// recorded in the store, and only that one is accepted there afterwards.
    FirstUse(KnownServers),
}

/// Where a `wss://` client finds the certificate authorities it trusts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The Mozilla root program's authorities, built in (the `webpki-roots` crate).
    #[default]
    WebPki,
    /// The certificates of a PEM file (for a private authority, or a self-signed server).
    CaFile(PathBuf),
    /// The certificates of PEM text.
    CaPem(Vec<u8>),
}

/// How [`connect`] connects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Which server identities to accept. The default trusts on first use, recorded in
    /// [`KnownServers::default_path`].
    pub trust: ServerTrust,
    /// Limits on what the server can make this client hold or wait for.
    pub limits: Limits,
    /// Features to offer.
    pub features: Features,
    /// The size of the ephemeral key exchanged (the NTRU parameter set; default 128 bits).
    pub key_size: KeySize,
    /// Certificate authorities for `wss://`.
    pub tls_roots: TlsRoots,
}

impl ConnectOptions {
    /// Default options with the given trust.
    pub fn new(trust: ServerTrust) -> Self {
        ConnectOptions {
            trust,
            limits: Limits::default(),
            features: Features::NONE,
            key_size: KeySize::default(),
            tls_roots: TlsRoots::default(),
        }
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions::new(ServerTrust::FirstUse(KnownServers::at(
            KnownServers::default_path(),
        )))
    }
}

/// What a client learned while connecting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The server, as `host:port` (the name its identity is recorded under).
    pub server: String,
    /// The hash of the server's identity key.
    pub identity: IdentityHash,
    /// The server's identity key.
    pub server_key: PublicSignKey,
    /// The protocol version agreed.
    pub version: u16,
    /// The features agreed.
    pub features: Features,
    /// Whether this was the first contact: the identity was just recorded (trust on first
    /// use). Always `false` with a pinned identity.
    pub first_contact: bool,
}

/// Connects to `url` (`ws://host[:port]/path` or `wss://…`, port [`DEFAULT_PORT`] unless
/// named), runs the handshake and returns the channel.
///
/// # Errors
///
/// [`NetError::InvalidUrl`]; [`NetError::HandshakeTimeout`] if it takes longer than
/// [`Limits::handshake_timeout`]; [`NetError::Io`] if the server cannot be reached;
/// [`NetError::Tls`] for `wss://` failures; [`NetError::WebSocket`] if the upgrade is refused;
/// [`NetError::IdentityMismatch`] if the server's identity is not the one trusted;
/// [`NetError::NoCommonVersion`], [`NetError::BadServerSignature`],
/// [`NetError::KeyConfirmationFailed`], [`NetError::MalformedHandshake`] and the other
/// handshake errors if the handshake fails; [`NetError::Identity`] if the known-servers file
/// cannot be used.
///
/// # Cancel safety
///
/// Dropping the future drops the connection. The first contact with a server is recorded only
/// once the handshake has completed.
pub async fn connect(
    url: &str,
    options: &ConnectOptions,
) -> Result<(Channel, ConnectInfo), NetError> {
    let target = Target::parse(url)?;
    with_timeout(&options.limits, async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        tcp.set_nodelay(true)?;
        connect_io(Box::new(tcp), &target, options).await
    })
    .await
}

/// [`connect`] over a stream the caller opened (a pipe, a proxy, a test's in-memory duplex):
/// `url` names the server (for the WebSocket request, TLS and the identity record), but no
/// connection is made to it.
///
/// # Errors
///
/// As [`connect`].
///
/// # Cancel safety
///
/// As [`connect`].
pub async fn connect_stream<S>(
    stream: S,
    url: &str,
    options: &ConnectOptions,
) -> Result<(Channel, ConnectInfo), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let target = Target::parse(url)?;
    with_timeout(
        &options.limits,
        connect_io(Box::new(stream), &target, options),
    )
    .await
}

async fn with_timeout<T>(
    limits: &Limits,
    work: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(limits.handshake_timeout, work)
        .await
        .unwrap_or(Err(NetError::HandshakeTimeout(limits.handshake_timeout)))
}

async fn connect_io(
    io: BoxIo,
    target: &Target,
    options: &ConnectOptions,
) -> Result<(Channel, ConnectInfo), NetError> {
    let io: BoxIo = if target.tls {
        Box::new(tls_connect(io, target, &options.tls_roots).await?)
    } else {
        io
    };
    let limits = &options.limits;
    let (ws, _response) = tokio_tungstenite::client_async_with_config(
        target.request_url.as_str(),
        io,
        Some(ws::config(limits.max_handshake_message_bytes)),
    )
    .await
    .map_err(|e| map_error(e, Phase::Handshake))?;

    let server = target.authority.as_str();
    let check_identity = |key: &PublicSignKey| -> Result<(), NetError> {
        let got = IdentityHash::of(key);
        match &options.trust {
            ServerTrust::Pinned(expected) if *expected != got => Err(NetError::IdentityMismatch {
                server: server.to_owned(),
                expected: *expected,
                got,
            }),
            ServerTrust::Pinned(_) => Ok(()),
            ServerTrust::FirstUse(known) => known.check(server, got).map(|_| ()),
        }
    };
    let offer = limits.offer(options.features);
    let kem = KemAlgorithm::for_key_size(options.key_size);
    let (established, server_key) = handshake::client(ws, &offer, kem, check_identity).await?;

    let identity = IdentityHash::of(&server_key);
    let first_contact = match &options.trust {
        ServerTrust::Pinned(_) => false,
        ServerTrust::FirstUse(known) => known.check_or_record(server, identity)? == Known::New,
    };
    let info = ConnectInfo {
        server: target.authority.clone(),
        identity,
        server_key,
        version: established.version,
        features: established.features,
        first_contact,
    };
    tracing::debug!(
        server = %info.server,
        identity = %info.identity,
        version = info.version,
        first_contact,
        "connected"
    );
    let channel = Channel::new(established, Role::Client, offer.max_frame as usize);
    Ok((channel, info))
}

async fn tls_connect(
    io: BoxIo,
    target: &Target,
    roots: &TlsRoots,
) -> Result<tokio_rustls::client::TlsStream<BoxIo>, NetError> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::CaFile(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| NetError::tls(format!("{}: {e}", path.display())))?;
            add_pem_roots(&mut store, &pem)?;
        }
        TlsRoots::CaPem(pem) => add_pem_roots(&mut store, pem)?,
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(NetError::tls)?
        .with_root_certificates(store)
        .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| NetError::tls(format!("server name {:?}: {e}", target.host)))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
        .map_err(NetError::tls)
}

fn add_pem_roots(store: &mut rustls::RootCertStore, pem: &[u8]) -> Result<(), NetError> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| NetError::tls(format!("CA certificates: {e}")))?;
        store
            .add(cert)
            .map_err(|e| NetError::tls(format!("CA certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(NetError::tls("no certificate in the CA file"));
    }
    Ok(())
}

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// The host to connect to (no brackets around an IPv6 address).
    host: String,
    port: u16,
    /// `host:port`, host lowercased, IPv6 in brackets: the name identities are recorded under.
    authority: String,
    /// The URL sent in the WebSocket request, with the port explicit.
    request_url: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, NetError> {
        let invalid = |reason| NetError::InvalidUrl {
            url: url.chars().take(256).collect(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let (scheme, tls) = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => ("ws", false),
            Some(s) if s.eq_ignore_ascii_case("wss") => ("wss", true),
            _ => return Err(invalid("the scheme must be ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information is not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        // What follows the host (the library reads an unparsable port as none).
        let port = match &authority.as_str()[authority.host().len()..] {
            "" => DEFAULT_PORT,
            rest => rest
                .strip_prefix(':')
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| invalid("bad port"))?,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let request_url = format!("{scheme}://{authority}{path}");
        Ok(Target {
            tls,
            host,
            port,
            authority,
            request_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_the_default_port() {
        let t = Target::parse("ws://Example.COM/db/chain").unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "example.com".into(),
                port: 5000,
                authority: "example.com:5000".into(),
                request_url: "ws://example.com:5000/db/chain".into(),
            }
        );
        let t = Target::parse("wss://127.0.0.1:7001/db/a?x=1").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 7001);
        assert_eq!(t.authority, "127.0.0.1:7001");
        assert_eq!(t.request_url, "wss://127.0.0.1:7001/db/a?x=1");
        let t = Target::parse("ws://[::1]").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority, "[::1]:5000");
        assert_eq!(t.request_url, "ws://[::1]:5000/");
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for url in [
            "",
            "http://host/db/x",
            "host:5000/db/x",
            "ws://",
            "ws:///db/x",
            "ws://user@host/db/x",
            "ws://host:99999/db/x",
            "ws://host:/db/x",
            "ws://[::1/db",
            "\u{0}",
        ] {
            assert!(
                matches!(Target::parse(url), Err(NetError::InvalidUrl { .. })),
                "{url:?}"
            );
        }
    }
}
