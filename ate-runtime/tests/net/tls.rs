//! `wss://`: TLS with a certificate authority the test makes, under the same handshake.

use ate_runtime::net::{AcceptOptions, NetError, ServerTls, TlsRoots, connect};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::common::{echo_server, pinned, within};

/// A certificate authority and a server certificate it issued for 127.0.0.1, as PEM:
/// `(authority, server certificate, server key)`.
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ATE test authority");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

#[tokio::test]
async fn wss_with_a_private_authority() {
    within(async {
        let (ca, cert, key) = certificates();
        let mut options = AcceptOptions::default();
        options.tls = Some(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
        let (server, mut ends) = echo_server(options).await;
        let url = format!("wss://127.0.0.1:{}/db/tls", server.addr.port());

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        let mut client = pinned();
        client.tls_roots = TlsRoots::CaFile(ca_file.clone());
        let (mut channel, info) = connect(&url, &client).await.unwrap();
        assert_eq!(info.server, format!("127.0.0.1:{}", server.addr.port()));
        for n in 0..50 {
            let frame = crate::common::payload(n, n * 1000);
            channel.send(&frame).await.unwrap();
            assert_eq!(channel.recv().await.unwrap().unwrap(), frame);
        }
        channel.close().await.unwrap();
        assert_eq!(ends.recv().await.unwrap().unwrap(), "/db/tls");

        // The same from PEM text, and from files on the server's side.
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&cert_file, &cert).unwrap();
        std::fs::write(&key_file, &key).unwrap();
        assert!(ServerTls::from_pem_files(&cert_file, &key_file).is_ok());
        client.tls_roots = TlsRoots::CaPem(ca.clone().into_bytes());
        assert!(connect(&url, &client).await.is_ok());

        // The public authorities do not know this server's certificate.
        client.tls_roots = TlsRoots::WebPki;
        assert!(matches!(
            connect(&url, &client).await,
            Err(NetError::Tls { .. })
        ));
        // Nor does another private authority.
        let (other_ca, _, _) = certificates();
        client.tls_roots = TlsRoots::CaPem(other_ca.into_bytes());
        assert!(matches!(
            connect(&url, &client).await,
            Err(NetError::Tls { .. })
        ));
        // Plain ws:// to a TLS server does not get through.
        let plain = format!("ws://127.0.0.1:{}/db/tls", server.addr.port());
        assert!(connect(&plain, &pinned()).await.is_err());
    })
    .await;
}

#[test]
fn bad_certificates_and_keys_are_typed_errors() {
    let (ca, cert, key) = certificates();
    for (c, k) in [
        ("", key.as_str()),
        (cert.as_str(), ""),
        ("not pem", key.as_str()),
        (
            cert.as_str(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
    ] {
        assert!(matches!(
            ServerTls::from_pem(c.as_bytes(), k.as_bytes()),
            Err(NetError::Tls { .. })
        ));
    }
    // A key that is not the certificate's.
    let (_, _, other_key) = certificates();
    assert!(matches!(
        ServerTls::from_pem(cert.as_bytes(), other_key.as_bytes()),
        Err(NetError::Tls { .. })
    ));
    assert!(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
    let missing = std::path::Path::new("/nonexistent/ate/cert.pem");
    assert!(matches!(
        ServerTls::from_pem_files(missing, missing),
        Err(NetError::Tls { .. })
    ));
    assert!(!ca.is_empty());
}
