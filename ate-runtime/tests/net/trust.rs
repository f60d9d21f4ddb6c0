//! Which servers a client accepts: pinned identities and trust on first use.

use ate_runtime::net::{
    AcceptOptions, ConnectOptions, IdentityError, KnownServers, NetError, ServerTrust, connect,
};

use crate::common::{IDENTITY, OTHER_IDENTITY, echo_server, within};

#[tokio::test]
async fn a_client_pinned_to_one_identity_refuses_another() {
    within(async {
        let (server, _ends) = echo_server(AcceptOptions::default()).await;
        let url = server.url("/db/pinned");
        let wrong = ConnectOptions::new(ServerTrust::Pinned(OTHER_IDENTITY.hash()));
        let err = connect(&url, &wrong).await.unwrap_err();
        assert!(
            matches!(
                &err,
                NetError::IdentityMismatch { server: s, expected, got }
                    if *expected == OTHER_IDENTITY.hash()
                        && *got == IDENTITY.hash()
                        && *s == format!("127.0.0.1:{}", server.addr.port())
            ),
            "{err:?}"
        );
        // The error converts into the crate's error.
        let ate: ate_runtime::AteError = err.into();
        assert!(ate.to_string().contains(&IDENTITY.hash().to_string()));

        let right = ConnectOptions::new(ServerTrust::Pinned(IDENTITY.hash()));
        let (mut channel, info) = connect(&url, &right).await.unwrap();
        assert_eq!(info.identity, IDENTITY.hash());
        assert!(!info.first_contact);
        channel.send(b"ok").await.unwrap();
        assert_eq!(&channel.recv().await.unwrap().unwrap()[..], b"ok");
    })
    .await;
}

#[tokio::test]
async fn first_use_records_the_identity_then_refuses_a_changed_one() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config").join("known_servers");
        let options = ConnectOptions::new(ServerTrust::FirstUse(KnownServers::at(&file)));
        let (server, _ends) = echo_server(AcceptOptions::default()).await;
        let url = server.url("/db/tofu");
        let name = format!("127.0.0.1:{}", server.addr.port());

        let (_, info) = connect(&url, &options).await.unwrap();
        assert!(info.first_contact);
        assert_eq!(info.identity, IDENTITY.hash());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&format!("{name} {}\n", IDENTITY.hash())),
            "{text}"
        );

        let (_, info) = connect(&url, &options).await.unwrap();
        assert!(!info.first_contact);

        // The same address now answers with another identity.
        server.set_identity(OTHER_IDENTITY.clone());
        let err = connect(&url, &options).await.unwrap_err();
        assert!(
            matches!(
                &err,
                NetError::IdentityMismatch { server: s, expected, got }
                    if *expected == IDENTITY.hash() && *got == OTHER_IDENTITY.hash() && *s == name
            ),
            "{err:?}"
        );
        // Nothing was recorded over the first identity.
        let store = KnownServers::at(&file);
        assert_eq!(store.get(&name).unwrap(), Some(IDENTITY.hash()));

        // An operator who knows the server changed its key records the new one.
        store.set(&name, OTHER_IDENTITY.hash()).unwrap();
        let (_, info) = connect(&url, &options).await.unwrap();
        assert_eq!(info.identity, OTHER_IDENTITY.hash());
        assert!(!info.first_contact);

        // A damaged store is a typed error, not a silent first contact.
        std::fs::write(&file, "not a known-servers line\n").unwrap();
        assert!(matches!(
            connect(&url, &options).await,
            Err(NetError::Identity(IdentityError::KnownServersCorrupt {
                line: 1,
                ..
            }))
        ));
    })
    .await;
}

#[tokio::test]
async fn an_in_memory_store_trusts_on_first_use_for_its_lifetime() {
    within(async {
        let options = ConnectOptions::new(ServerTrust::FirstUse(KnownServers::in_memory()));
        let (server, _ends) = echo_server(AcceptOptions::default()).await;
        let url = server.url("/db/memory");
        assert!(connect(&url, &options).await.unwrap().1.first_contact);
        assert!(!connect(&url, &options).await.unwrap().1.first_contact);
        server.set_identity(OTHER_IDENTITY.clone());
        assert!(matches!(
            connect(&url, &options).await,
            Err(NetError::IdentityMismatch { .. })
        ));
    })
    .await;
}
