//! A server and two clients in one program: the server holds the chain, each client keeps a
//! replica, one writes and the other sees it arrive live.
//!
//! ```text
//! cargo run -p ate-examples --example server-client                 # embedded server
//! cargo run -p ate-examples --example server-client -- --url ws://localhost:5000/db/demo
//! ```
//! With `--url` it uses a running `atedb solo` instead (trusting its identity on first use).

use std::time::{Duration, Instant};

use ate::net::host::{Server, ServerConfig};
use ate::net::remote::RemoteOptions;
use ate::net::{ConnectOptions, ServerIdentity, ServerTrust};
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Message {
    from: String,
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1).cloned());

    // The server: on loopback, a free port, chains in memory, a fresh identity that the
    // clients pin (a real deployment runs `atedb solo` and clients pin its printed identity).
    let (server, url, options) = match given {
        Some(url) => (None, url, RemoteOptions::default()),
        None => {
            let identity = ServerIdentity::generate(KeySize::Bit128);
            let mut config = ServerConfig::new(identity.clone());
            config.listen = "127.0.0.1:0".parse()?;
            config.chains = AteConfig::in_memory();
            let server = Server::start(config).await?;
            let url = server.url("demo");
            let mut options = RemoteOptions::default();
            options.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
            println!(
                "server on {} (identity {})",
                server.local_addr(),
                identity.hash()
            );
            (Some(server), url, options)
        }
    };

    // Two programs' worth of clients: each its own registry and replica.
    let alice = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(&url, &options)
        .await?;
    let bob = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(&url, &options)
        .await?;
    println!(
        "alice and bob opened {url} (history: {} transactions)",
        alice.last_seq()
    );

    // Alice writes; her commit returns once the server made it durable and her replica has it.
    let started = Instant::now();
    let mut dio = alice.dio(&AteSession::default()).await;
    let key = *dio
        .store(Message {
            from: "alice".into(),
            text: "hello from alice".into(),
        })?
        .key();
    dio.commit().await?;
    println!(
        "alice committed {key} through the server in {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // Bob's replica receives it live.
    let dio = bob.dio(&AteSession::default()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dio.exists(&key).await {
        if Instant::now() > deadline {
            return Err("bob never saw alice's message".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = dio.load::<Message>(&key).await?;
    println!(
        "bob sees {:?} from {} after {:.2} ms",
        seen.text,
        seen.from,
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(seen.text, "hello from alice");

    drop((alice, bob));
    if let Some(server) = server {
        server.shutdown().await;
    }
    println!("done");
    Ok(())
}
