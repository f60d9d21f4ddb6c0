//! Sharding with three `atedb solo` processes on loopback: chains spread over the cluster by
//! rendezvous hashing, a client opening through the ring lands on the owner, and one asking
//! the wrong server is redirected there.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ate_runtime::net::remote::RemoteOptions;
use ate_runtime::net::ring::Ring;
use ate_runtime::net::{ConnectOptions, IdentityHash, ServerTrust};
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Note {
    chain: String,
}

/// A running `atedb solo`; killed on drop.
struct Solo {
    child: Child,
    identity: IdentityHash,
}

impl Drop for Solo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, port: u16, identity: &Path, cluster: &[String]) -> Solo {
    let me = format!("ws://127.0.0.1:{port}");
    let mut args = vec![
        "solo".to_string(),
        "--data-dir".into(),
        data.to_str().expect("utf-8").into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--identity".into(),
        identity.to_str().expect("utf-8").into(),
        "--advertise".into(),
        me,
    ];
    for url in cluster {
        args.push("--cluster".into());
        args.push(url.clone());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start atedb");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines.next().expect("a line").expect("utf-8");
    assert!(listening.starts_with("listening on ws://"), "{listening}");
    let identity = lines
        .next()
        .expect("a line")
        .expect("utf-8")
        .strip_prefix("identity ")
        .expect("the identity line")
        .parse()
        .expect("an identity hash");
    Solo { child, identity }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_spread_over_three_servers_and_a_misdirected_open_ends_at_the_owner() {
    let dir = tempfile::tempdir().expect("dir");
    // One identity for the cluster (a key from `atedb keygen`), so clients pin one.
    let key = dir.path().join("cluster.key");
    let out = Command::new(env!("CARGO_BIN_EXE_atedb"))
        .args(["keygen", key.to_str().expect("utf-8")])
        .output()
        .expect("keygen");
    assert!(out.status.success());
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
    let servers: Vec<Solo> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let data = dir.path().join(format!("s{i}"));
            start(&data, *p, &key, &urls)
        })
        .collect();
    let identity = servers[0].identity;
    assert!(servers.iter().all(|s| s.identity == identity));
    let mut options = RemoteOptions::default();
    options.connect = ConnectOptions::new(ServerTrust::Pinned(identity));
    options.reconnect_min = Some(Duration::from_millis(20));
    let ring = Ring::new(urls.clone());

    let mut owners = std::collections::BTreeSet::new();
    for n in 0..12 {
        let name = format!("shard-{n}");
        let owner = ring.owner(&name).expect("an owner").to_string();
        owners.insert(owner.clone());
        let registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
        let chain = registry
            .open_in_ring(&ring, &name, &options)
            .await
            .expect("open through the ring");
        let mut dio = chain.dio(&AteSession::default()).await;
        dio.store(Note {
            chain: name.clone(),
        })
        .expect("store");
        dio.commit().await.expect("commit at the owner");
        drop(chain);

        // The chain's file is on its owner only.
        for (i, url) in urls.iter().enumerate() {
            let file = dir.path().join(format!("s{i}")).join(format!("{name}.log"));
            assert_eq!(file.exists(), *url == owner, "{name} on {url}");
        }
        // Asked at another server, the client follows the redirect and finds the record.
        let wrong = urls.iter().find(|u| **u != owner).expect("another server");
        let registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
        let chain = registry
            .open_url_with(&format!("{wrong}/db/{name}"), &options)
            .await
            .expect("redirected to the owner");
        assert_eq!(chain.len(), 1, "{name}: the owner's chain");
    }
    assert!(
        owners.len() >= 2,
        "12 chains spread over the servers: {owners:?}"
    );
}
