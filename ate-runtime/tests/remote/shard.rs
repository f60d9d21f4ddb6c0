//! Sharding: chains spread over three servers by rendezvous hashing; a client that opens a
//! chain at the wrong server is redirected to its owner.

use std::net::TcpListener;

use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::net::ring::Ring;
use ate_runtime::prelude::*;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misdirected_open_ends_at_the_owner() {
    let id = identity();
    // Three free ports, known before the servers start (each server's ring names all three).
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port()
        })
        .collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("ws://127.0.0.1:{p}"))
        .collect();
    let ring = Ring::new(urls.clone());
    let mut servers: Vec<Server> = Vec::new();
    for (port, url) in ports.iter().zip(&urls) {
        let mut c = ServerConfig::new(id.clone());
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.chains = AteConfig::in_memory();
        c.ring = Some((ring.clone(), url.clone()));
        servers.push(Server::start(c).await.expect("start"));
    }
    let mut owners = std::collections::BTreeMap::new();
    for i in 0..12 {
        let name = format!("shard-{i}");
        let owner = ring.owner(&name).expect("owner").to_string();
        *owners.entry(owner.clone()).or_insert(0) += 1;
        // Open through the first server, whoever owns it.
        let chain = client(None, None)
            .await
            .open_url_with(&format!("{}/db/{name}", urls[0]), &pinned(&id))
            .await
            .expect("open, following a redirect if needed");
        let mut dio = chain.dio(&session(None)).await;
        dio.store(Note { text: name.clone() }).expect("store");
        dio.commit().await.expect("commit at the owner");
        drop(chain);
        // Only the owner holds the chain.
        for (url, server) in urls.iter().zip(&servers) {
            let held = server
                .registry()
                .open(&ChainKey::from(name.as_str()))
                .await
                .expect("open on the server")
                .len();
            assert_eq!(held, usize::from(*url == owner), "{name} on {url}");
        }
    }
    assert!(
        owners.len() >= 2,
        "chains spread over the servers: {owners:?}"
    );
    for s in servers {
        s.shutdown().await;
    }
}
