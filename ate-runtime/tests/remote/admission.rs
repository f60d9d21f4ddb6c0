//! Who a server lets in: at most `max_connections_per_ip` connections from one client address
//! and `max_handshakes` handshakes in progress. A connection past either is closed as it is
//! accepted, before any handshake; other addresses, and the same one once a connection ends,
//! still get in. Loopback gives the clients two addresses: 127.0.0.1 and 127.0.0.2.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::net::wire::{self, ServerMsg, WireLimits};
use ate_runtime::net::{Channel, ConnectOptions, NetError, ServerTrust, connect_stream};
use ate_runtime::prelude::*;
use tokio::net::{TcpSocket, TcpStream};

use super::common::*;

async fn server_with(
    id: &ate_runtime::net::ServerIdentity,
    per_ip: usize,
    handshakes: usize,
) -> Server {
    let mut config = ServerConfig::new(id.clone());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.chains = AteConfig::in_memory();
    config.max_connections_per_ip = per_ip;
    config.max_handshakes = handshakes;
    Server::start(config).await.expect("server starts")
}

/// A TCP connection to `to` from the address `from`.
async fn tcp_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("binding {from}: {e}"));
    socket.connect(to).await.expect("TCP connects")
}

/// A client of `server` from `from`: the handshake, then the chain's `Opened`.
async fn client_from(
    from: Ipv4Addr,
    server: &Server,
    id: &ate_runtime::net::ServerIdentity,
) -> Result<Channel, NetError> {
    let tcp = tcp_from(from, server.local_addr()).await;
    let options = ConnectOptions::new(ServerTrust::Pinned(id.hash()));
    let (mut channel, _) = connect_stream(tcp, &server.url("admitted"), &options).await?;
    let opened = channel.recv().await?.ok_or(NetError::ConnectionClosed)?;
    assert!(matches!(
        wire::decode_server(&opened, &WireLimits::default()),
        Ok(ServerMsg::Opened { .. })
    ));
    Ok(channel)
}

/// Connects from `from` until the server lets the client in (it learns of a closed connection
/// a moment after the client closed it).
async fn eventually_from(
    from: Ipv4Addr,
    server: &Server,
    id: &ate_runtime::net::ServerIdentity,
) -> Channel {
    for _ in 0..500 {
        if let Ok(channel) = client_from(from, server, id).await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never let {from} in again");
}

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_at_most_its_share_of_connections() {
    let id = identity();
    let server = server_with(&id, 2, 256).await;
    let mut a1 = client_from(A, &server, &id).await.expect("first from A");
    let _a2 = client_from(A, &server, &id).await.expect("second from A");
    // A third from A is closed before its handshake.
    let refused = client_from(A, &server, &id).await;
    assert!(refused.is_err(), "a third connection from A got in");
    // Another address is counted apart.
    let _b1 = client_from(B, &server, &id).await.expect("first from B");
    let _b2 = client_from(B, &server, &id).await.expect("second from B");
    assert!(client_from(B, &server, &id).await.is_err());
    // A connection that ends gives its place back.
    a1.close().await.expect("close");
    drop(a1);
    let _a3 = eventually_from(A, &server, &id).await;
    assert!(
        client_from(A, &server, &id).await.is_err(),
        "still two at most"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_in_progress_are_capped() {
    let id = identity();
    let server = server_with(&id, 64, 1).await;
    // A client that connects and says nothing holds the one handshake place.
    let stalled = tcp_from(B, server.local_addr()).await;
    // Accepted in order: the next connection finds the place taken and is closed.
    assert!(client_from(A, &server, &id).await.is_err());
    // Once the stalled client goes, others get in again, and an established connection does
    // not hold the place.
    drop(stalled);
    let _a = eventually_from(A, &server, &id).await;
    let _b = client_from(B, &server, &id)
        .await
        .expect("B after A's handshake");
    server.shutdown().await;
}
