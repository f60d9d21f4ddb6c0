//! Servers and clients for the tests.

use std::path::Path;

use ate_runtime::crypto::{KeySize, PrivateSignKey};
use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::net::remote::RemoteOptions;
use ate_runtime::net::{ConnectOptions, ServerIdentity, ServerTrust};
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

/// A server on loopback, port 0, keeping chains under `dir` (memory when `None`), with `root`
/// pinned when given.
pub async fn server(
    identity: &ServerIdentity,
    dir: Option<&Path>,
    root: Option<&PrivateSignKey>,
) -> Server {
    server_at(identity, dir, root, "127.0.0.1:0".parse().expect("addr")).await
}

pub async fn server_at(
    identity: &ServerIdentity,
    dir: Option<&Path>,
    root: Option<&PrivateSignKey>,
    listen: std::net::SocketAddr,
) -> Server {
    let mut config = ServerConfig::new(identity.clone());
    config.listen = listen;
    config.chains = match dir {
        Some(d) => {
            let mut c = AteConfig::at(d);
            c.preallocate = false;
            c
        }
        None => AteConfig::in_memory(),
    };
    config.root_keys = root.map(|r| vec![r.as_public_key()]).unwrap_or_default();
    Server::start(config).await.expect("server starts")
}

pub fn identity() -> ServerIdentity {
    ServerIdentity::generate(KeySize::Bit128)
}

/// Options pinning `identity`.
pub fn pinned(identity: &ServerIdentity) -> RemoteOptions {
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
    o.reconnect_min = Some(std::time::Duration::from_millis(20));
    o.reconnect_max = Some(std::time::Duration::from_millis(200));
    o
}

/// A client registry in memory (or under `dir`), with `root` pinned when given.
pub async fn client(dir: Option<&Path>, root: Option<&PrivateSignKey>) -> ChainRegistry {
    let conf = match dir {
        Some(d) => {
            let mut c = AteConfig::at(d);
            c.preallocate = false;
            c
        }
        None => AteConfig::in_memory(),
    };
    let mut b = ChainBuilder::new(&conf).await;
    if let Some(r) = root {
        b = b.add_root_public_key(&r.as_public_key());
    }
    b.build()
}

pub fn session(key: Option<&PrivateSignKey>) -> AteSession {
    let mut s = AteSession::default();
    if let Some(k) = key {
        s.add_write_key(k);
    }
    s
}

/// Waits until `chain` holds `n` records (changes arrive live).
pub async fn until_len(chain: &Chain, n: usize) {
    for _ in 0..500 {
        if chain.len() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the chain holds {} records, not {n}", chain.len());
}
