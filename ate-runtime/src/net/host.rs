//! A server of chains: accepts clients on `ws://host:port/db/<chain>`, streams each chain's
//! committed transactions to them and commits theirs, after validating each in full. The
//! `atedb` binary is a thin command line over [`Server`]; a program can embed one too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::admission::{ClientSlot, PerClient};
use super::ring::Ring;
use super::wire::{self, ClientMsg, Refusal, ServerMsg, WireLimits};
use super::{AcceptOptions, ServerIdentity, accept};
use crate::chain::{
    AteConfig, Chain, ChainBuilder, ChainKey, ChainRegistry, ClaimNext, Fence, MAX_CLAIM_BATCH,
    MAX_LOCK_NAME, NextClaims, OpenError, SealedTransaction,
};
use crate::crypto::PublicSignKey;
use crate::event::codec::MAX_TYPE_NAME;
use crate::event::{ParentLink, PrimaryKey};
use crate::trust::IntegrityMode;

/// The most claims one connection holds at once (more are refused as if held elsewhere).
const MAX_CLAIMS_PER_CONNECTION: usize = 4096;
/// The most locks one connection holds at once.
const MAX_LOCKS_PER_CONNECTION: usize = 1024;
/// The longest lease a client may ask for.
const MAX_LEASE: Duration = Duration::from_secs(600);

/// The most bytes of transactions put in one [`ServerMsg::Events`] (one is sent alone
/// whatever its size, within the frame limit).
const BATCH_BYTES: usize = 256 << 10;

/// How a [`Server`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen (default `0.0.0.0:5000`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// The chains' configuration: `log_path` is the data folder (`None` keeps chains in
    /// memory), and the limits, among them `max_foreign_transaction_bytes` for what clients send.
    pub chains: AteConfig,
    /// The key the server proves itself with in every handshake.
    pub identity: ServerIdentity,
    /// Root keys pinned for every chain the server hosts.
    pub root_keys: Vec<PublicSignKey>,
    /// The integrity mode of the chains.
    pub integrity: IntegrityMode,
    /// Handshake, TLS and frame limits.
    pub accept: AcceptOptions,
    /// Message limits.
    pub wire: WireLimits,
    /// Most connections at once; more are closed at once.
    pub max_connections: usize,
    /// Most connections at once from one client address (default 64): an IPv4 address, or
    /// the /64 prefix of an IPv6 one. More are closed as they are accepted, before their
    /// handshake (which costs the server a signature) starts.
    pub max_connections_per_ip: usize,
    /// Most handshakes in progress at once (default 256): a connection accepted while that
    /// many are still handshaking is closed at once. Each holds its place until its handshake
    /// ends, at the latest after [`Limits::handshake_timeout`](super::Limits).
    pub max_handshakes: usize,
    /// Most commits a connection may have outstanding; one more ends the connection.
    pub max_outstanding_commits: usize,
    /// The servers chains are spread over, and this server's URL among them: a client asking
    /// for a chain another server holds is sent there. `None`: this server holds every chain.
    pub ring: Option<(Ring, String)>,
    /// How long shutdown waits for connections to finish their commits.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A configuration with the defaults, proving itself with `identity`.
    pub fn new(identity: ServerIdentity) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], super::DEFAULT_PORT)),
            chains: AteConfig::default(),
            identity,
            root_keys: Vec::new(),
            integrity: IntegrityMode::default(),
            accept: AcceptOptions::default(),
            wire: WireLimits::default(),
            max_connections: 4096,
            max_connections_per_ip: 64,
            max_handshakes: 256,
            max_outstanding_commits: 1024,
            ring: None,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What every connection shares.
#[derive(Debug)]
struct Context {
    registry: ChainRegistry,
    identity: ServerIdentity,
    accept: AcceptOptions,
    wire: WireLimits,
    max_outstanding: usize,
    ring: Option<(Ring, String)>,
    /// Chains opened for clients, kept open while the server runs (in memory they would be
    /// gone with their last connection otherwise).
    chains: Mutex<HashMap<ChainKey, Chain>>,
    /// Commits in progress, waited for on shutdown.
    commits: TaskTracker,
    connections: Arc<Semaphore>,
    per_client: Arc<PerClient>,
    handshakes: Arc<Semaphore>,
}

/// A running server. Dropping it stops accepting; [`Server::shutdown`] also lets the
/// connections finish their commits.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept_loop: Option<JoinHandle<()>>,
    context: Arc<Context>,
    grace: Duration,
}

impl Server {
    /// Binds the listening socket and starts serving.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] if the address cannot be bound.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes starts nothing.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let mut builder = ChainBuilder::new(&config.chains)
            .await
            .integrity(config.integrity);
        for k in &config.root_keys {
            builder = builder.add_root_public_key(k);
        }
        let context = Arc::new(Context {
            registry: builder.build(),
            identity: config.identity,
            accept: config.accept,
            wire: config.wire,
            max_outstanding: config.max_outstanding_commits.max(1),
            ring: config.ring,
            chains: Mutex::new(HashMap::new()),
            commits: TaskTracker::new(),
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            per_client: PerClient::new(config.max_connections_per_ip),
            handshakes: Arc::new(Semaphore::new(config.max_handshakes.max(1))),
        });
        let (stop, stopped) = watch::channel(false);
        let accept_loop = tokio::spawn(accept_loop(listener, context.clone(), stopped));
        info!(%addr, identity = %context.identity.hash(), "serving chains");
        Ok(Server {
            addr,
            stop,
            accept_loop: Some(accept_loop),
            context,
            grace: config.shutdown_grace,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `chain` on this server, through loopback when it listens on every address.
    pub fn url(&self, chain: &str) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            self.addr.ip()
        };
        format!("ws://{}/db/{chain}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The registry the server opens chains with (to open one in the server's own process).
    pub fn registry(&self) -> &ChainRegistry {
        &self.context.registry
    }

    /// Stops accepting, tells every connection to end, waits (up to the grace period) for the
    /// commits in progress to be durable and answered, then closes the chains (their writers
    /// finish what they hold).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the server stopping in the background.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.accept_loop.take() {
            let _ = task.await;
        }
        self.context.commits.close();
        if tokio::time::timeout(self.grace, self.context.commits.wait())
            .await
            .is_err()
        {
            warn!("shutdown: commits still in progress after the grace period");
        }
        let chains: Vec<Chain> = self
            .context
            .chains
            .lock()
            .await
            .drain()
            .map(|(_, c)| c)
            .collect();
        // Each chain's writer finishes what it holds when the last handle goes.
        drop(chains);
        info!("server stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, cx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, mostly: wait a little rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Refused before anything is read from the connection: closing it costs nothing.
        let Some(admitted) = admit(&cx, peer) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (cx, stop) = (cx.clone(), stop.clone());
        connections.spawn(async move {
            serve(tcp, peer, &cx, stop, admitted.handshake).await;
            drop((admitted.connection, admitted.client));
        });
    }
    connections.close();
    connections.wait().await;
}

/// The places an accepted connection holds while it lasts (and its handshake, while that lasts).
struct Admitted {
    connection: OwnedSemaphorePermit,
    client: ClientSlot,
    handshake: OwnedSemaphorePermit,
}

/// Whether a connection from `peer` may start its handshake: a place among all connections,
/// among its client's, and among the handshakes in progress.
fn admit(cx: &Context, peer: SocketAddr) -> Option<Admitted> {
    let Ok(connection) = cx.connections.clone().try_acquire_owned() else {
        debug!(%peer, "too many connections; closing");
        return None;
    };
    let Some(client) = cx.per_client.try_acquire(peer.ip()) else {
        debug!(%peer, "too many connections from this client; closing");
        return None;
    };
    let Ok(handshake) = cx.handshakes.clone().try_acquire_owned() else {
        debug!(%peer, "too many handshakes in progress; closing");
        return None;
    };
    Some(Admitted {
        connection,
        client,
        handshake,
    })
}

/// The chain key a request path names: `/db/<chain key>`.
fn chain_of(path: &str) -> Result<ChainKey, String> {
    let path = path.split('?').next().unwrap_or_default();
    let Some(key) = path.strip_prefix("/db/") else {
        return Err(format!("no chain here: {path} (chains are at /db/<chain>)"));
    };
    let key = ChainKey::from(key);
    key.validate().map_err(|e| e.to_string())?;
    Ok(key)
}

async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    cx: &Arc<Context>,
    stop: watch::Receiver<bool>,
    handshake: OwnedSemaphorePermit,
) {
    let accepted = accept(tcp, &cx.identity, &cx.accept).await;
    drop(handshake);
    let (path, channel) = match accepted {
        Ok(a) => a,
        Err(e) => {
            debug!(%peer, error = %e, "handshake failed");
            return;
        }
    };
    // What the client takes in one frame (it said so in the handshake).
    let max_frame = channel.max_send_bytes();
    let (mut sender, receiver) = channel.split();
    let opened = match chain_of(&path) {
        Err(reason) => Err(ServerMsg::Goodbye { reason }),
        Ok(key) => match redirect(cx, &key, &path) {
            Some(url) => Err(ServerMsg::Redirect { url }),
            None => open(cx, &key).await.map_err(|e| ServerMsg::Goodbye {
                reason: format!("chain {key} does not open: {e}"),
            }),
        },
    };
    let chain = match opened {
        Ok(c) => c,
        Err(msg) => {
            let _ = sender.send(&wire::encode(&msg)).await;
            let _ = sender.close().await;
            return;
        }
    };
    debug!(%peer, chain = %chain.key(), "client connected");
    // Every message to the client goes through one queue, drained by one task.
    let (out, mut queue) = mpsc::channel::<Vec<u8>>(64);
    let drain = tokio::spawn(async move {
        while let Some(m) = queue.recv().await {
            if let Err(e) = sender.send(&m).await {
                debug!(error = %e, "send failed");
                return;
            }
        }
        let _ = sender.close().await;
    });
    let _ = out
        .send(wire::encode(&ServerMsg::Opened {
            chain: chain.key().to_string(),
            last_seq: chain.last_seq(),
        }))
        .await;
    let end = session(cx, &chain, receiver, &out, stop, max_frame).await;
    if let Some(reason) = end {
        debug!(%peer, %reason, "ending the connection");
        let _ = out.send(wire::encode(&ServerMsg::Goodbye { reason })).await;
    }
    drop(out);
    let _ = drain.await;
    debug!(%peer, "client gone");
}

/// The URL to send a client to when another server of the ring holds `key`.
fn redirect(cx: &Context, key: &ChainKey, path: &str) -> Option<String> {
    let (ring, me) = cx.ring.as_ref()?;
    let owner = ring.owner(key.as_str())?;
    (owner != me.trim_end_matches('/')).then(|| format!("{owner}{path}"))
}

async fn open(cx: &Context, key: &ChainKey) -> Result<Chain, OpenError> {
    let mut chains = cx.chains.lock().await;
    if let Some(c) = chains.get(key) {
        return Ok(c.clone());
    }
    let c = cx.registry.open(key).await?;
    chains.insert(key.clone(), c.clone());
    Ok(c)
}

/// Serves one client of `chain` (which takes frames of at most `max_frame` bytes) until it
/// leaves, breaks a rule, or the server stops; returns why the server ends it, if it does.
async fn session(
    cx: &Arc<Context>,
    chain: &Chain,
    mut receiver: super::ChannelReceiver,
    out: &mpsc::Sender<Vec<u8>>,
    mut stop: watch::Receiver<bool>,
    max_frame: usize,
) -> Option<String> {
    let outstanding = Arc::new(Semaphore::new(cx.max_outstanding));
    let mut stream: Option<JoinHandle<()>> = None;
    // The claims and locks this connection holds (they end with it).
    let mut claims: HashMap<PrimaryKey, u64> = HashMap::new();
    let mut locks: HashMap<String, u64> = HashMap::new();
    let end = loop {
        let received = tokio::select! {
            _ = stop.changed() => break Some("the server is shutting down".to_string()),
            r = receiver.recv() => r,
        };
        let bytes = match received {
            Ok(Some(b)) => b,
            Ok(None) => break None,
            Err(e) => {
                debug!(error = %e, "connection broken");
                break None;
            }
        };
        match wire::decode_client(&bytes, &cx.wire) {
            Ok(ClientMsg::Subscribe { from }) => {
                if stream.is_some() {
                    break Some("subscribed twice".into());
                }
                let last = chain.last_seq();
                if from > last + 1 {
                    break Some(format!(
                        "asked for transactions from {from}, but the chain ends at {last}: \
                         this replica is not of this chain"
                    ));
                }
                // Compacted past the client's position: it rebuilds its replica from the
                // checkpoint and every transaction the log holds.
                let mut from = from;
                if let (upto, Some(payload)) = chain.checkpoint()
                    && from <= upto
                {
                    if out
                        .send(wire::encode(&ServerMsg::Checkpoint { payload }))
                        .await
                        .is_err()
                    {
                        break None;
                    }
                    from = 1;
                }
                stream = Some(tokio::spawn(send_stream(
                    chain.clone(),
                    from,
                    last,
                    chain.last_held(last),
                    out.clone(),
                    max_frame,
                )));
            }
            Ok(ClientMsg::Commit { id, tx }) => {
                let fence = None;
                let Ok(permit) = outstanding.clone().try_acquire_owned() else {
                    break Some(format!(
                        "more than {} commits outstanding",
                        cx.max_outstanding
                    ));
                };
                let (chain, out) = (chain.clone(), out.clone());
                // Tracked, so shutdown waits for it; it runs to the end even if the client
                // leaves (its outcome is then read from the chain).
                cx.commits.spawn(async move {
                    let msg = match commit(&chain, tx, fence).await {
                        Ok(seq) => ServerMsg::Committed { id, seq },
                        Err(reason) => ServerMsg::Refused { id, reason },
                    };
                    let _ = out.send(wire::encode(&msg)).await;
                    drop(permit);
                });
            }
            Ok(ClientMsg::CommitFenced {
                id,
                tx,
                lock,
                token,
            }) => {
                let fence = Some(Fence { lock, token });
                let Ok(permit) = outstanding.clone().try_acquire_owned() else {
                    break Some(format!(
                        "more than {} commits outstanding",
                        cx.max_outstanding
                    ));
                };
                let (chain, out) = (chain.clone(), out.clone());
                // Tracked, so shutdown waits for it; it runs to the end even if the client
                // leaves (its outcome is then read from the chain).
                cx.commits.spawn(async move {
                    let msg = match commit(&chain, tx, fence).await {
                        Ok(seq) => ServerMsg::Committed { id, seq },
                        Err(reason) => ServerMsg::Refused { id, reason },
                    };
                    let _ = out.send(wire::encode(&msg)).await;
                    drop(permit);
                });
            }
            Ok(ClientMsg::Lock { id, name, lease_ms }) => {
                if locks.len() >= MAX_LOCKS_PER_CONNECTION {
                    locks.retain(|n, t| {
                        chain.lock_table().is_current(&Fence {
                            lock: n.clone(),
                            token: *t,
                        })
                    });
                }
                let token = if locks.len() >= MAX_LOCKS_PER_CONNECTION
                    || name.is_empty()
                    || name.len() > MAX_LOCK_NAME
                {
                    None
                } else {
                    let lease = Duration::from_millis(lease_ms).min(MAX_LEASE);
                    chain.lock_table().try_lock(&name, lease)
                };
                if let Some(t) = token {
                    locks.insert(name, t);
                }
                if out
                    .send(wire::encode(&ServerMsg::Locked { id, token }))
                    .await
                    .is_err()
                {
                    break None;
                }
            }
            Ok(ClientMsg::Unlock { name, token }) => {
                if locks.get(&name) == Some(&token) {
                    locks.remove(&name);
                    chain.lock_table().unlock(&name, token);
                }
            }
            Ok(ClientMsg::Claim { id, key, lease_ms }) => {
                // Expired ones first, so that a long-lived consumer is not capped by them.
                if claims.len() >= MAX_CLAIMS_PER_CONNECTION {
                    claims.retain(|k, t| chain.claim_table().holds(k, *t));
                }
                // An item already deleted (processed) is not claimable: the client's replica
                // has yet to see its deletion.
                let gone = !chain.view().read().contains(&key);
                let token = if gone || claims.len() >= MAX_CLAIMS_PER_CONNECTION {
                    None
                } else {
                    let lease = Duration::from_millis(lease_ms).min(MAX_LEASE);
                    chain.claim_table().try_claim(key, lease)
                };
                if let Some(t) = token {
                    claims.insert(key, t);
                }
                if out
                    .send(wire::encode(&ServerMsg::Claimed { id, token }))
                    .await
                    .is_err()
                {
                    break None;
                }
            }
            Ok(ClientMsg::ClaimNext {
                id,
                parent,
                collection,
                type_name,
                lease_ms,
                max,
            }) => {
                if claims.len() + MAX_CLAIM_BATCH > MAX_CLAIMS_PER_CONNECTION {
                    claims.retain(|k, t| chain.claim_table().holds(k, *t));
                }
                let room = MAX_CLAIMS_PER_CONNECTION.saturating_sub(claims.len());
                let max = usize::try_from(max).unwrap_or(usize::MAX).min(room);
                let lease = Duration::from_millis(lease_ms).min(MAX_LEASE);
                let got = if max == 0 || type_name.len() > MAX_TYPE_NAME {
                    NextClaims::new(Vec::new(), chain.last_seq())
                } else {
                    let link = ParentLink { parent, collection };
                    chain.claim_next_here(&ClaimNext::new(link, type_name, lease, max))
                };
                for c in &got.items {
                    claims.insert(c.key, c.token);
                }
                let answer = ServerMsg::ClaimedNext {
                    id,
                    items: got.items,
                    seen: got.seen,
                };
                if out.send(wire::encode(&answer)).await.is_err() {
                    break None;
                }
            }
            Ok(ClientMsg::Sync { id }) => {
                // Read now: every transaction committed before the question is at or below it.
                let seq = chain.last_seq();
                if out
                    .send(wire::encode(&ServerMsg::Synced { id, seq }))
                    .await
                    .is_err()
                {
                    break None;
                }
            }
            Ok(ClientMsg::Release { key, token }) => {
                if claims.get(&key) == Some(&token) {
                    claims.remove(&key);
                    chain.claim_table().release(&key, token);
                }
            }
            Err(e) => break Some(format!("malformed message: {e}")),
        }
    };
    if let Some(s) = stream {
        s.abort();
    }
    for (key, token) in claims {
        chain.claim_table().release(&key, token);
    }
    for (name, token) in locks {
        chain.lock_table().unlock(&name, token);
    }
    end
}

async fn commit(chain: &Chain, tx: Bytes, fence: Option<Fence>) -> Result<u64, Refusal> {
    let sealed = SealedTransaction::from_bytes(tx).map_err(|e| Refusal::of(&e))?;
    let committed = match fence {
        Some(f) => chain.commit_sealed_fenced(sealed, f).await,
        None => chain.commit_sealed(sealed).await,
    };
    committed.map_err(|e| {
        debug!(chain = %chain.key(), error = %e, "refused a transaction");
        Refusal::of(&e)
    })
}

/// Room in a message for what surrounds its transactions (the message's own fields and each
/// transaction's number and length).
const MESSAGE_ROOM: usize = 64 << 10;

/// Sends the chain's committed transactions from `from` on, in batches that fit the client's
/// frame limit `max_frame`, and a [`ServerMsg::CaughtUp`] once everything up to `target` (the
/// chain's end when the client subscribed) was sent: up to `held`, the last of them the log
/// holds (a compaction may have dropped the last ones). A transaction too large for any frame
/// the client takes ends the stream with a [`ServerMsg::Goodbye`] saying so (the replica
/// cannot go past it).
async fn send_stream(
    chain: Chain,
    from: u64,
    target: u64,
    held: u64,
    out: mpsc::Sender<Vec<u8>>,
    max_frame: usize,
) {
    let mut caught_up = from > held;
    if caught_up
        && out
            .send(wire::encode(&ServerMsg::CaughtUp { seq: target }))
            .await
            .is_err()
    {
        return;
    }
    let mut stream = chain.subscribe(from);
    drop(chain);
    let room = max_frame.saturating_sub(MESSAGE_ROOM);
    let budget = BATCH_BYTES.min(room).max(1);
    // A transaction taken from the stream that did not fit the last batch.
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(c) => c,
            None => match stream.next().await {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "commit stream ended");
                    return;
                }
            },
        };
        let mut bytes = first.payload().len();
        if bytes > room {
            let reason = format!(
                "transaction {} is {bytes} bytes, more than a frame of this connection carries \
                 ({max_frame} bytes, {MESSAGE_ROOM} of them kept for the message): the replica \
                 cannot go past it until its frame limit is raised",
                first.seq()
            );
            warn!(
                seq = first.seq(),
                bytes, max_frame, "a transaction larger than a frame cannot be sent"
            );
            let _ = out.send(wire::encode(&ServerMsg::Goodbye { reason })).await;
            return;
        }
        let mut txs = vec![(first.seq(), first.payload().clone())];
        // What is ready now joins the batch (`next` is cancel safe), while it fits.
        while bytes < budget {
            match stream.next().now_or_never() {
                Some(Ok(c)) if bytes + c.payload().len() <= room => {
                    bytes += c.payload().len();
                    txs.push((c.seq(), c.payload().clone()));
                }
                Some(Ok(c)) => {
                    carried = Some(c);
                    break;
                }
                _ => break,
            }
        }
        let last = txs.last().map_or(0, |t| t.0);
        if out
            .send(wire::encode(&ServerMsg::Events { txs }))
            .await
            .is_err()
        {
            return;
        }
        if !caught_up && last >= held {
            caught_up = true;
            if out
                .send(wire::encode(&ServerMsg::CaughtUp { seq: target }))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_chains() {
        assert_eq!(
            chain_of("/db/bank/a-1").map(|k| k.to_string()),
            Ok("bank/a-1".into())
        );
        assert_eq!(chain_of("/db/x?v=1").map(|k| k.to_string()), Ok("x".into()));
        assert!(chain_of("/").is_err());
        assert!(chain_of("/db/").is_err());
        assert!(chain_of("/db/../etc").is_err());
        assert!(chain_of("/other/x").is_err());
    }
}
