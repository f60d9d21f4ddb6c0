//! `atedb solo` as a process: clients over loopback, SIGTERM, and SIGKILL during a stream of
//! commits from 16 clients (R10): every commit a client saw confirmed is there after the
//! restart, and the clients resume. Its identity is a key file (one from `atedb keygen` serves),
//! and it caps connections per client address.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ate_runtime::chain::CommitError;
use ate_runtime::net::remote::RemoteOptions;
use ate_runtime::net::{ConnectOptions, IdentityHash, ServerTrust};
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    client: usize,
    n: usize,
}

/// A running `atedb solo`; killed on drop.
struct Solo {
    child: Child,
    url: String,
    identity: IdentityHash,
}

impl Drop for Solo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn solo(data: &Path, listen: &str) -> Solo {
    solo_with(data, listen, &[])
}

fn solo_with(data: &Path, listen: &str, extra: &[&str]) -> Solo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args([
            "solo",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--listen",
            listen,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start atedb");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = lines
        .next()
        .expect("a line")
        .expect("utf-8")
        .strip_prefix("listening on ws://")
        .expect("the address line")
        .to_string();
    let identity = lines
        .next()
        .expect("a line")
        .expect("utf-8")
        .strip_prefix("identity ")
        .expect("the identity line")
        .parse()
        .expect("an identity hash");
    Solo {
        child,
        url: format!("ws://{addr}"),
        identity,
    }
}

fn options(identity: IdentityHash) -> RemoteOptions {
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(identity));
    o.reconnect_min = Some(Duration::from_millis(20));
    o.reconnect_max = Some(Duration::from_millis(200));
    o
}

async fn open(url: &str, identity: IdentityHash) -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(url, &options(identity))
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_every_commit_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = solo(dir.path(), "127.0.0.1:0");
    let url = format!("{}/db/clean", server.url);
    let chain = open(&url, server.identity).await;
    for n in 0..10 {
        let mut dio = chain.dio(&AteSession::default()).await;
        dio.store(Entry { client: 0, n }).expect("store");
        dio.commit().await.expect("commit");
    }
    drop(chain);
    let pid = server.child.id();
    // SAFETY-free: the kill command sends the signal.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    // The log verifies offline and holds the 10 transactions.
    let out = Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args([
            "verify",
            dir.path().join("clean.log").to_str().expect("utf-8"),
        ])
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("10 transactions"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_confirmed_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let server = solo(dir.path(), "127.0.0.1:0");
    let listen = server.url.trim_start_matches("ws://").to_string();
    let url = format!("{}/db/r10", server.url);
    let identity = server.identity;
    let confirmed: Arc<Mutex<BTreeMap<(usize, usize), PrimaryKey>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..16 {
        let chain = open(&url, identity).await;
        let (confirmed, stop, errors) = (confirmed.clone(), stop.clone(), errors.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            let mut after_restart = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || after_restart < 3 {
                let mut dio = chain.dio(&AteSession::default()).await;
                let key = *dio.store(Entry { client, n }).expect("store").key();
                match dio.commit().await {
                    Ok(()) => {
                        confirmed.lock().await.insert((client, n), key);
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            after_restart += 1;
                        }
                    }
                    Err(AteError::Commit(
                        CommitError::Unreachable(_) | CommitError::OutcomeUnknown(_),
                    )) => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("client {client}: unexpected error {e}"),
                }
                n += 1;
            }
            chain
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = confirmed.lock().await.len();
    assert!(before > 16, "commits flowed before the kill ({before})");
    drop(server); // SIGKILL
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = solo(dir.path(), &listen);
    assert_eq!(
        restarted.identity, identity,
        "the identity is kept in the data folder"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut chains = Vec::new();
    for c in clients {
        chains.push(
            tokio::time::timeout(Duration::from_secs(60), c)
                .await
                .expect("every client resumes")
                .expect("client task"),
        );
    }
    assert!(
        errors.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the clients saw the server go"
    );

    // A fresh client: every confirmed entry is there, in a chain without gaps.
    let check = open(&url, identity).await;
    check.sync().await.expect("sync");
    let dio = check.dio(&AteSession::default()).await;
    let confirmed = confirmed.lock().await;
    for ((client, n), key) in confirmed.iter() {
        let e = dio
            .load::<Entry>(key)
            .await
            .unwrap_or_else(|e| panic!("confirmed entry ({client}, {n}) lost: {e}"));
        assert_eq!((e.client, e.n), (*client, *n));
    }
    assert_eq!(
        check.len() as u64,
        check.last_seq(),
        "one record per transaction, none missing"
    );
    for c in &chains {
        c.sync().await.expect("sync");
        assert_eq!(c.last_seq(), check.last_seq());
    }
    eprintln!(
        "R10: {} commits confirmed ({before} before the kill), {} in the chain, every confirmed one kept",
        confirmed.len(),
        check.len()
    );
}

/// A connection to `solo` from the address `from`, through the handshake and the chain's
/// first message.
async fn raw_from(
    from: std::net::Ipv4Addr,
    solo: &Solo,
) -> Result<ate_runtime::net::Channel, ate_runtime::net::NetError> {
    let addr: std::net::SocketAddr = solo
        .url
        .trim_start_matches("ws://")
        .parse()
        .expect("the address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("binding {from}: {e}"));
    let tcp = socket.connect(addr).await.expect("TCP connects");
    let url = format!("{}/db/capped", solo.url);
    let options = ConnectOptions::new(ServerTrust::Pinned(solo.identity));
    let (mut channel, _) = ate_runtime::net::connect_stream(tcp, &url, &options).await?;
    channel
        .recv()
        .await?
        .ok_or(ate_runtime::net::NetError::ConnectionClosed)?;
    Ok(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped() {
    let dir = tempfile::tempdir().expect("dir");
    let server = solo_with(
        dir.path(),
        "127.0.0.1:0",
        &["--max-connections-per-ip", "1", "--memory"],
    );
    let a = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let b = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let _first = raw_from(a, &server)
        .await
        .expect("the first from 127.0.0.1");
    assert!(
        raw_from(a, &server).await.is_err(),
        "a second from 127.0.0.1 got in"
    );
    let _other = raw_from(b, &server).await.expect("127.0.0.2 gets in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_is_a_key_file_and_a_keygen_key_serves() {
    use ate_runtime::crypto::{KeyFile, PrivateSignKey};
    let dir = tempfile::tempdir().expect("dir");
    // Generated on first start, as a key file of the server's private key.
    let server = solo(dir.path(), "127.0.0.1:0");
    let file = dir.path().join("server.identity");
    let text = std::fs::read_to_string(&file).expect("the identity file");
    assert!(text.contains("ate-key 1 sign-private "), "{text}");
    let key = PrivateSignKey::load(&file).expect("a private signing key");
    assert_eq!(IdentityHash::of(key.public_key()), server.identity);
    drop(server);
    // A key from `atedb keygen`, named with --identity.
    let keyfile = dir.path().join("identity.key");
    let out = Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args(["keygen", keyfile.to_str().expect("utf-8")])
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{out:?}");
    let key = PrivateSignKey::load(&keyfile).expect("the key");
    let server = solo_with(
        dir.path(),
        "127.0.0.1:0",
        &["--identity", keyfile.to_str().expect("utf-8")],
    );
    assert_eq!(server.identity, IdentityHash::of(key.public_key()));
    let chain = open(&format!("{}/db/keyed", server.url), server.identity).await;
    assert!(chain.is_empty());
}
