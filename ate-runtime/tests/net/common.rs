//! Servers, identities and a man in the middle shared by the network tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ate_runtime::crypto::KeySize;
use ate_runtime::net::{
    AcceptOptions, Channel, ConnectOptions, NetError, ServerIdentity, ServerTrust, accept,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// The identity most test servers use (Falcon key generation is not free).
pub static IDENTITY: LazyLock<ServerIdentity> =
    LazyLock::new(|| ServerIdentity::generate(KeySize::Bit128));
/// Another identity.
pub static OTHER_IDENTITY: LazyLock<ServerIdentity> =
    LazyLock::new(|| ServerIdentity::generate(KeySize::Bit128));

/// Fails a test that hangs instead of letting it run forever (a safety net, not a timing).
pub async fn within<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .expect("the test hung")
}

/// Options that pin [`IDENTITY`].
pub fn pinned() -> ConnectOptions {
    ConnectOptions::new(ServerTrust::Pinned(IDENTITY.hash()))
}

/// A frame's payload made from its number, of the given size.
pub fn payload(n: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| (i.wrapping_mul(31) ^ n) as u8).collect()
}

/// A listening server; each connection is accepted on a task of its own and handed to the
/// handler. Dropping it stops accepting.
pub struct Server {
    pub addr: SocketAddr,
    identity: Arc<Mutex<ServerIdentity>>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The identity later connections are accepted with.
    pub fn set_identity(&self, identity: ServerIdentity) {
        *self.identity.lock().unwrap() = identity;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve<H, F>(options: AcceptOptions, handle: H) -> Server
where
    H: Fn(Result<(String, Channel), NetError>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let identity = Arc::new(Mutex::new(IDENTITY.clone()));
    let handle = Arc::new(handle);
    let current = identity.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let identity = current.lock().unwrap().clone();
            let (options, handle) = (options.clone(), handle.clone());
            tokio::spawn(async move {
                let accepted = accept(stream, &identity, &options).await;
                handle(accepted).await;
            });
        }
    });
    Server {
        addr,
        identity,
        task,
    }
}

/// What a server saw of one connection.
#[derive(Debug)]
pub struct Seen {
    /// The request path, if the handshake completed.
    pub path: Option<String>,
    /// The frames received, in order.
    pub frames: Vec<Bytes>,
    /// How it ended: `Ok` after the client's close, or the error.
    pub end: Result<(), NetError>,
}

/// A server that sends `greeting` frames, then receives until the end, and reports.
pub async fn collecting_server(
    options: AcceptOptions,
    greeting: Vec<Vec<u8>>,
) -> (Server, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let greeting = Arc::new(greeting);
    let server = serve(options, move |accepted| {
        let (tx, greeting) = (tx.clone(), greeting.clone());
        async move {
            let (path, mut channel) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    let _ = tx.send(Seen {
                        path: None,
                        frames: Vec::new(),
                        end: Err(e),
                    });
                    return;
                }
            };
            for frame in greeting.iter() {
                if channel.send(frame).await.is_err() {
                    break;
                }
            }
            let mut frames = Vec::new();
            let end = loop {
                match channel.recv().await {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let _ = tx.send(Seen {
                path: Some(path),
                frames,
                end,
            });
        }
    })
    .await;
    (server, rx)
}

/// A server that sends every frame back, on two tasks (the channel split in halves), and
/// closes after the client; reports how each connection ended.
pub async fn echo_server(
    options: AcceptOptions,
) -> (Server, mpsc::UnboundedReceiver<Result<String, NetError>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = serve(options, move |accepted| {
        let tx = tx.clone();
        async move {
            let (path, channel) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let (mut sender, mut receiver) = channel.split();
            let (queue, mut queued) = mpsc::channel::<Bytes>(8);
            let forward = tokio::spawn(async move {
                while let Some(frame) = queued.recv().await {
                    if sender.send(&frame).await.is_err() {
                        return;
                    }
                }
                let _ = sender.close().await;
            });
            let end = loop {
                match receiver.recv().await {
                    Ok(Some(frame)) => {
                        if queue.send(frame).await.is_err() {
                            break Ok(path);
                        }
                    }
                    Ok(None) => break Ok(path),
                    Err(e) => break Err(e),
                }
            };
            drop(queue);
            let _ = forward.await;
            let _ = tx.send(end);
        }
    })
    .await;
    (server, rx)
}

/// Which way a message goes through the man in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// What the man in the middle does in place of forwarding a message.
pub enum Act {
    /// Send this message on.
    Send(Message),
    /// Write these bytes on the server's connection below the WebSocket.
    RawToServer(Vec<u8>),
}

/// Decides, for each binary message (numbered from 0 in each direction: to the server 0 is the
/// client hello and 1 the client's confirmation; to the client 0, 1 and 2 are the server hello,
/// signature and confirmation), what to send instead.
pub type Tamper = Box<dyn FnMut(Dir, usize, Bytes) -> Vec<Act> + Send>;

/// Forwards every message unchanged.
pub fn forward(_: Dir, _: usize, m: Bytes) -> Vec<Act> {
    vec![Act::Send(Message::Binary(m))]
}

/// A man in the middle for one connection: a WebSocket server for the client, a WebSocket
/// client for `server`, forwarding messages both ways through `tamper`. Returns its URL.
pub async fn man_in_the_middle(server: SocketAddr, mut tamper: Tamper) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/db/through", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut path = String::new();
        #[allow(clippy::result_large_err)] // the WebSocket library's callback type
        let record = |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            Ok(response)
        };
        let Ok(mut client) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
            return;
        };
        let tcp = TcpStream::connect(server).await.unwrap();
        let Ok((mut upstream, _)) =
            tokio_tungstenite::client_async(format!("ws://{server}{path}"), tcp).await
        else {
            return;
        };
        let (mut to_server, mut to_client) = (0usize, 0usize);
        loop {
            let (dir, message) = tokio::select! {
                m = client.next() => (Dir::ToServer, m),
                m = upstream.next() => (Dir::ToClient, m),
            };
            let Some(Ok(message)) = message else {
                // One side is gone: drop the other.
                return;
            };
            let acts = match message {
                Message::Binary(bytes) => {
                    let n = match dir {
                        Dir::ToServer => &mut to_server,
                        Dir::ToClient => &mut to_client,
                    };
                    *n += 1;
                    tamper(dir, *n - 1, bytes)
                }
                other => vec![Act::Send(other)],
            };
            for act in acts {
                let sent = match (act, dir) {
                    (Act::Send(m), Dir::ToServer) => upstream.send(m).await,
                    (Act::Send(m), Dir::ToClient) => client.send(m).await,
                    (Act::RawToServer(bytes), _) => {
                        upstream.flush().await.ok();
                        upstream
                            .get_mut()
                            .write_all(&bytes)
                            .await
                            .map_err(Into::into)
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    });
    url
}
