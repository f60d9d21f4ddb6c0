//! Remote chains: a local replica of a chain on a server, kept in sync over a connection that
//! reconnects by itself, whose commits go to the server ([`ChainRegistry::open_url`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::client::{ConnectOptions, connect};
use super::wire::{self, ClientMsg, Refusal, ServerMsg, WireLimits};
use super::{ChannelReceiver, ChannelSender, NetError};
use crate::chain::{
    Chain, ChainKey, ChainRegistry, ClaimNext, CommitError, Fence, NextClaims, OpenError,
    SealedTransaction, Upstream, WeakChain,
};
use crate::event::PrimaryKey;

/// How a remote chain connects and reconnects.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// How to connect (which server identities to trust, TLS roots, limits).
    pub connect: ConnectOptions,
    /// Message limits.
    pub wire: WireLimits,
    /// The first wait before reconnecting (doubled after each failure, up to
    /// `reconnect_max`); default 100 ms.
    pub reconnect_min: Option<Duration>,
    /// The longest wait between reconnection attempts; default 5 s.
    pub reconnect_max: Option<Duration>,
    /// Most redirects followed when opening (sharding); default 4.
    pub max_redirects: Option<usize>,
    /// Commit only: the chain sends its commits to the server and receives nothing else (no
    /// history, no other writers' commits), for programs that only append, as producers of
    /// events do. The open returns once the server opened the chain; a commit returns once
    /// the server made it durable, but the local view holds none of the server's records,
    /// the committed ones included (reads find nothing the server has), so a commit can only
    /// create records at the root or under parents the Dio is given. Default `false`: a full
    /// replica.
    pub commit_only: bool,
}

impl RemoteOptions {
    /// These options, commit only ([`RemoteOptions::commit_only`]).
    pub fn commit_only(mut self) -> Self {
        self.commit_only = true;
        self
    }
}

impl ChainRegistry {
    /// Opens the chain at `url` (`ws://host[:port]/db/<chain>`, or `wss://`; port 5000 unless
    /// named) with default [`RemoteOptions`]: see [`ChainRegistry::open_url_with`].
    ///
    /// # Errors
    ///
    /// As [`ChainRegistry::open_url_with`].
    ///
    /// # Cancel safety
    ///
    /// As [`ChainRegistry::open_url_with`].
    pub async fn open_url(&self, url: &str) -> Result<Chain, OpenError> {
        self.open_url_with(url, &RemoteOptions::default()).await
    }

    /// Opens the chain at `url` as a local replica (in memory, or under this registry's
    /// `log_path` where a reopen resumes from its position) and returns once the replica has
    /// downloaded and verified the server's history (with this registry's pinned root keys:
    /// a server cannot change them). The chain then has the same API as a local one: reads
    /// come from the replica, commits go to the server and return once the server made them
    /// durable and the replica applied them; other writers' commits arrive live. The
    /// connection reconnects by itself, with backoff, and resumes from the replica's position.
    ///
    /// # Errors
    ///
    /// [`OpenError::Net`] when the server cannot be reached or refuses (its identity, the
    /// handshake, a chain it does not serve, too many redirects); [`OpenError::Replica`] when
    /// what it sends fails the replica's checks (its transactions are validated in full); the
    /// errors of [`ChainRegistry::open_replica`] for the local replica.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection; the replica keeps what it applied.
    pub async fn open_url_with(
        &self,
        url: &str,
        options: &RemoteOptions,
    ) -> Result<Chain, OpenError> {
        let key = chain_key_of(url)?;
        let (requests, queue) = mpsc::channel(1024);
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let upstream = Arc::new(Remote {
            url: url.to_string(),
            requests,
            state,
            commit_only: options.commit_only,
        });
        let chain = self.open_replica(&key, upstream.clone()).await?;
        let (ready_tx, ready) = oneshot::channel();
        let link = Link {
            url: url.to_string(),
            key,
            chain: chain.downgrade(),
            options: options.clone(),
            queue,
            state: state_tx,
        };
        tokio::spawn(link.run(ready_tx));
        match ready.await {
            Ok(Ok(())) => Ok(chain),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OpenError::Net(NetError::ConnectionClosed)),
        }
    }
}

impl ChainRegistry {
    /// Opens `chain` on the server of `ring` that holds it (rendezvous hashing of the chain
    /// key, as the servers of the ring compute it), as [`ChainRegistry::open_url_with`]. The
    /// servers of a ring usually share one identity key, so one pinned identity serves.
    ///
    /// # Errors
    ///
    /// [`OpenError::Net`] with [`NetError::InvalidUrl`] for an empty ring; the rest as
    /// [`ChainRegistry::open_url_with`].
    ///
    /// # Cancel safety
    ///
    /// As [`ChainRegistry::open_url_with`].
    pub async fn open_in_ring(
        &self,
        ring: &super::ring::Ring,
        chain: &str,
        options: &RemoteOptions,
    ) -> Result<Chain, OpenError> {
        let url = ring.url_of(chain).ok_or_else(|| {
            OpenError::Net(NetError::InvalidUrl {
                url: String::new(),
                reason: "the ring names no server",
            })
        })?;
        self.open_url_with(&url, options).await
    }
}

/// The chain key of `url`'s path, `/db/<chain key>`.
fn chain_key_of(url: &str) -> Result<ChainKey, OpenError> {
    let bad = |reason: &'static str| {
        OpenError::Net(NetError::InvalidUrl {
            url: url.to_string(),
            reason,
        })
    };
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| bad("not a ws:// or wss:// URL"))?;
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let key = path
        .strip_prefix("/db/")
        .ok_or_else(|| bad("chains are at /db/<chain>"))?;
    let key = ChainKey::from(key);
    key.validate()?;
    Ok(key)
}

/// Where the connection stands, for the commits and `sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// Connected; `caught_up` is the server's position when it had sent its history, once
    /// the replica applied it (`None` before).
    Connected {
        /// Counts connections, so a waiter can tell a new one from the one it saw.
        generation: u64,
        caught_up: Option<u64>,
    },
    /// The chain was dropped, or the server refused for good.
    Stopped,
}

/// What the chain asks the connection's task to send.
#[derive(Debug)]
enum Request {
    /// A commit (under a lock grant, when fenced).
    Commit {
        tx: SealedTransaction,
        fence: Option<Fence>,
        reply: oneshot::Sender<Result<u64, CommitError>>,
    },
    /// A lock.
    Lock {
        name: String,
        lease: Duration,
        reply: oneshot::Sender<Result<Option<u64>, CommitError>>,
    },
    /// The release of a lock (no answer).
    Unlock { name: String, token: u64 },
    /// A claim on a queue item.
    Claim {
        key: PrimaryKey,
        lease: Duration,
        reply: oneshot::Sender<Result<Option<u64>, CommitError>>,
    },
    /// Claims on the next free items of a collection.
    ClaimNext {
        ask: ClaimNext,
        reply: oneshot::Sender<Result<NextClaims, CommitError>>,
    },
    /// The end of a claim (no answer).
    Release { key: PrimaryKey, token: u64 },
    /// The server's last sequence number now.
    Sync {
        reply: oneshot::Sender<Result<u64, CommitError>>,
    },
}

impl Request {
    /// Answers the request with the error of not being sent.
    fn fail(self, e: CommitError) {
        match self {
            Request::Commit { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Request::Claim { reply, .. } | Request::Lock { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Request::Sync { reply } => {
                let _ = reply.send(Err(e));
            }
            Request::ClaimNext { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            // The claim or lock ends with the connection that held it.
            Request::Release { .. } | Request::Unlock { .. } => {}
        }
    }
}

/// The replica's [`Upstream`]: hands commits to the connection's task.
#[derive(Debug)]
struct Remote {
    url: String,
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<LinkState>,
    /// Nothing comes back from the server but answers ([`RemoteOptions::commit_only`]).
    commit_only: bool,
}

impl Remote {
    async fn send_commit(
        &self,
        tx: SealedTransaction,
        fence: Option<Fence>,
    ) -> Result<u64, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Commit { tx, fence, reply })
            .await
            .map_err(|_| unreachable(format!("{}: the connection stopped", self.url)))?;
        // The task answers every request it took; it is gone only if it panicked.
        answer.await.unwrap_or(Err(outcome_unknown(format!(
            "{}: the connection task stopped",
            self.url
        ))))
    }
}

#[async_trait::async_trait]
impl Upstream for Remote {
    async fn commit(&self, tx: SealedTransaction) -> Result<u64, CommitError> {
        self.send_commit(tx, None).await
    }

    async fn commit_fenced(&self, tx: SealedTransaction, fence: Fence) -> Result<u64, CommitError> {
        self.send_commit(tx, Some(fence)).await
    }

    async fn lock(&self, name: &str, lease: Duration) -> Result<Option<u64>, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Lock {
                name: name.to_string(),
                lease,
                reply,
            })
            .await
            .map_err(|_| unreachable(format!("{}: the connection stopped", self.url)))?;
        answer.await.unwrap_or(Err(unreachable(format!(
            "{}: the connection task stopped",
            self.url
        ))))
    }

    fn unlock(&self, name: &str, token: u64) {
        // Best effort: a lock also ends with its lease and its connection.
        let _ = self.requests.try_send(Request::Unlock {
            name: name.to_string(),
            token,
        });
    }

    async fn claim(&self, key: PrimaryKey, lease: Duration) -> Result<Option<u64>, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Claim { key, lease, reply })
            .await
            .map_err(|_| unreachable(format!("{}: the connection stopped", self.url)))?;
        answer.await.unwrap_or(Err(unreachable(format!(
            "{}: the connection task stopped",
            self.url
        ))))
    }

    async fn claim_next(
        &self,
        _replica: &Chain,
        ask: &ClaimNext,
    ) -> Result<NextClaims, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::ClaimNext {
                ask: ask.clone(),
                reply,
            })
            .await
            .map_err(|_| unreachable(format!("{}: the connection stopped", self.url)))?;
        answer.await.unwrap_or(Err(unreachable(format!(
            "{}: the connection task stopped",
            self.url
        ))))
    }

    fn release(&self, key: PrimaryKey, token: u64) {
        // Best effort: a claim also ends with its lease and its connection.
        let _ = self.requests.try_send(Request::Release { key, token });
    }

    async fn wait_applied(&self, replica: &Chain, seq: u64) -> Result<(), CommitError> {
        if self.commit_only {
            // Durable on the server is all a commit-only chain waits for.
            return Ok(());
        }
        let mut state = self.state.clone();
        let generation = match *state.borrow() {
            LinkState::Connected { generation, .. } => Some(generation),
            _ => None,
        };
        tokio::select! {
            r = replica.wait_for(seq) => r,
            _ = async {
                loop {
                    let now = *state.borrow_and_update();
                    match now {
                        LinkState::Connected { generation: g, .. } if Some(g) == generation => {}
                        _ => return,
                    }
                    if state.changed().await.is_err() {
                        return;
                    }
                }
            } => {
                // The server committed it, but the connection that would bring it is gone.
                Err(outcome_unknown(format!(
                    "{}: committed as {seq}, but the connection dropped before the replica received it",
                    self.url
                )))
            }
        }
    }

    async fn sync(&self, replica: &Chain) -> Result<(), CommitError> {
        if self.commit_only {
            // Nothing comes back to catch up with: the server's answers are all there is.
            return Ok(());
        }
        let mut state = self.state.clone();
        let mut tries = 0;
        loop {
            // Connected and through the history first (the server's answer comes after it).
            loop {
                let now = *state.borrow_and_update();
                match now {
                    LinkState::Connected {
                        caught_up: Some(_), ..
                    } => break,
                    LinkState::Stopped => {
                        return Err(unreachable(format!("{}: the connection stopped", self.url)));
                    }
                    _ => {}
                }
                if state.changed().await.is_err() {
                    return Err(CommitError::Closed);
                }
            }
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(Request::Sync { reply })
                .await
                .map_err(|_| unreachable(format!("{}: the connection stopped", self.url)))?;
            let asked = answer.await.unwrap_or(Err(unreachable(format!(
                "{}: the connection task stopped",
                self.url
            ))));
            match asked {
                // Every transaction committed before the question is at or below `seq`, and
                // comes on the stream, this connection's or the next one's.
                Ok(seq) => {
                    return tokio::select! {
                        r = replica.wait_for(seq) => r,
                        _ = state.wait_for(|s| matches!(s, LinkState::Stopped)) => Err(unreachable(
                            format!("{}: the connection stopped", self.url),
                        )),
                    };
                }
                // The connection dropped before the answer: ask the next one.
                Err(CommitError::Unreachable(_)) if tries < SYNC_TRIES => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where the answer to an ask for the next free items goes, with the most it asked for.
type NextReply = (usize, oneshot::Sender<Result<NextClaims, CommitError>>);

/// The task behind a remote chain: connects, streams the server's transactions into the
/// replica, carries commits, reconnects.
struct Link {
    url: String,
    key: ChainKey,
    chain: WeakChain,
    options: RemoteOptions,
    queue: mpsc::Receiver<Request>,
    state: watch::Sender<LinkState>,
}

/// How a connection ended.
enum Ended {
    /// Reconnect (after a pause).
    Retry(String),
    /// Go to this URL instead (sharding), at once.
    Redirect(String),
    /// Stop for good: the chain is gone, or the server cannot be this chain's source.
    Stop(OpenError),
}

impl Link {
    async fn run(mut self, ready: oneshot::Sender<Result<(), OpenError>>) {
        let min = self
            .options
            .reconnect_min
            .unwrap_or(Duration::from_millis(100));
        let max = self.options.reconnect_max.unwrap_or(Duration::from_secs(5));
        let max_redirects = self.options.max_redirects.unwrap_or(4);
        let mut ready = Some(ready);
        let mut url = self.url.clone();
        let mut redirects = 0usize;
        let mut pause = min;
        let mut generation = 0u64;
        loop {
            generation += 1;
            let ended = match connect(&url, &self.options.connect).await {
                Ok((channel, info)) => {
                    debug!(%url, identity = %info.identity, "connected");
                    pause = min;
                    let (sender, receiver) = channel.split();
                    self.session(sender, receiver, generation, &mut ready).await
                }
                Err(e) if ready.is_some() => Ended::Stop(OpenError::Net(e)),
                Err(e) => Ended::Retry(e.to_string()),
            };
            let _ = self.state.send(LinkState::Connecting);
            match ended {
                Ended::Redirect(to) => {
                    redirects += 1;
                    if redirects > max_redirects {
                        let e = OpenError::Net(NetError::Redirects {
                            url: to,
                            max: max_redirects,
                        });
                        self.stop(&mut ready, e);
                        return;
                    }
                    info!(from = %url, to = %to, "redirected to the chain's server");
                    url = to;
                }
                Ended::Stop(e) => {
                    self.stop(&mut ready, e);
                    return;
                }
                Ended::Retry(why) => {
                    if self.chain.upgrade().is_none() {
                        let _ = self.state.send(LinkState::Stopped);
                        return;
                    }
                    warn!(%url, reason = %why, retry_in = ?pause, "connection lost; reconnecting");
                    // Commits asked for meanwhile fail at once: nothing of them was sent.
                    let deadline = tokio::time::sleep(pause);
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            _ = &mut deadline => break,
                            r = self.queue.recv() => match r {
                                Some(r) => r.fail(unreachable(format!(
                                    "{url}: not connected ({why})"
                                ))),
                                None => {
                                    let _ = self.state.send(LinkState::Stopped);
                                    return;
                                }
                            }
                        }
                    }
                    pause = (pause * 2).min(max);
                }
            }
        }
    }

    fn stop(&mut self, ready: &mut Option<oneshot::Sender<Result<(), OpenError>>>, e: OpenError) {
        warn!(url = %self.url, error = %e, "remote chain stopped");
        let _ = self.state.send(LinkState::Stopped);
        if let Some(r) = ready.take() {
            let _ = r.send(Err(e));
        }
        self.queue.close();
        while let Ok(r) = self.queue.try_recv() {
            r.fail(unreachable(format!("{}: stopped", self.url)));
        }
    }

    /// One connection, until it ends.
    async fn session(
        &mut self,
        mut sender: ChannelSender,
        mut receiver: ChannelReceiver,
        generation: u64,
        ready: &mut Option<oneshot::Sender<Result<(), OpenError>>>,
    ) -> Ended {
        let limits = self.options.wire;
        // The server speaks first: the chain is open (or not here).
        let first = match receiver.recv().await {
            Ok(Some(b)) => wire::decode_server(&b, &limits),
            Ok(None) => return Ended::Retry("closed before opening the chain".into()),
            Err(e) => return Ended::Retry(e.to_string()),
        };
        let server_last = match first {
            Ok(ServerMsg::Opened { chain, last_seq }) if chain == self.key.as_str() => last_seq,
            Ok(ServerMsg::Redirect { url }) => return Ended::Redirect(url),
            Ok(ServerMsg::Goodbye { reason }) if ready.is_some() => {
                return Ended::Stop(OpenError::Net(NetError::Refused(reason)));
            }
            Ok(ServerMsg::Goodbye { reason }) => return Ended::Retry(reason),
            Ok(other) => {
                return Ended::Retry(format!("expected the chain to open, got {other:?}"));
            }
            Err(e) => return Ended::Retry(e.to_string()),
        };
        let Some(chain) = self.chain.upgrade() else {
            return Ended::Stop(OpenError::Net(NetError::ConnectionClosed));
        };
        let mine = chain.last_seq();
        drop(chain);
        if mine > server_last {
            // The replica holds transactions the server does not: another chain, or a server
            // that lost what it confirmed. Never merge the two.
            return Ended::Stop(OpenError::Net(NetError::Refused(format!(
                "the replica holds {mine} transactions, the server's chain {server_last}: not the same chain"
            ))));
        }
        if self.options.commit_only {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(()));
            }
        } else {
            let subscribe = wire::encode(&ClientMsg::Subscribe { from: mine + 1 });
            if let Err(e) = sender.send(&subscribe).await {
                return Ended::Retry(e.to_string());
            }
        }
        let _ = self.state.send(LinkState::Connected {
            generation,
            caught_up: None,
        });

        let mut pending: HashMap<u64, oneshot::Sender<Result<u64, CommitError>>> = HashMap::new();
        let mut claims: HashMap<u64, oneshot::Sender<Result<Option<u64>, CommitError>>> =
            HashMap::new();
        let mut locks: HashMap<u64, oneshot::Sender<Result<Option<u64>, CommitError>>> =
            HashMap::new();
        // The asks for the next free items, with the most each asked for.
        let mut nexts: HashMap<u64, NextReply> = HashMap::new();
        let mut syncs: HashMap<u64, oneshot::Sender<Result<u64, CommitError>>> = HashMap::new();
        let mut next_id = 0u64;
        // Whether the server said the history is sent (a checkpoint comes only before).
        let mut caught_up_seen = false;
        let url = self.url.clone();
        let (to_apply, apply_queue) = mpsc::channel(APPLY_QUEUE);
        let (applied_tx, mut applied) = mpsc::channel(4);
        let applier = tokio::spawn(apply_loop(self.chain.clone(), apply_queue, applied_tx));
        let ended = loop {
            tokio::select! {
                a = applied.recv() => match a {
                    Some(Applied::CaughtUp(seq)) => {
                        let _ = self.state.send(LinkState::Connected {
                            generation,
                            caught_up: Some(seq),
                        });
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        }
                    }
                    // The server sent what this replica's checks refuse (its pinned root keys,
                    // say): never take it; stop rather than loop.
                    Some(Applied::Refused(e)) => break Ended::Stop(OpenError::Replica(Box::new(e))),
                    Some(Applied::Gone) | None => {
                        break Ended::Stop(OpenError::Net(NetError::ConnectionClosed));
                    }
                },
                r = self.queue.recv() => {
                    let Some(request) = r else {
                        break Ended::Stop(OpenError::Net(NetError::ConnectionClosed));
                    };
                    next_id += 1;
                    let id = next_id;
                    let msg = match &request {
                        Request::Commit { tx, fence: None, .. } => {
                            wire::encode(&ClientMsg::Commit { id, tx: tx.to_bytes() })
                        }
                        Request::Commit {
                            tx,
                            fence: Some(f),
                            ..
                        } => wire::encode(&ClientMsg::CommitFenced {
                            id,
                            tx: tx.to_bytes(),
                            lock: f.lock.clone(),
                            token: f.token,
                        }),
                        Request::Lock { name, lease, .. } => wire::encode(&ClientMsg::Lock {
                            id,
                            name: name.clone(),
                            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
                        }),
                        Request::Unlock { name, token } => wire::encode(&ClientMsg::Unlock {
                            name: name.clone(),
                            token: *token,
                        }),
                        Request::Claim { key, lease, .. } => wire::encode(&ClientMsg::Claim {
                            id,
                            key: *key,
                            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
                        }),
                        Request::ClaimNext { ask, .. } => wire::encode(&ClientMsg::ClaimNext {
                            id,
                            parent: ask.link.parent,
                            collection: ask.link.collection,
                            type_name: ask.type_name.clone(),
                            lease_ms: u64::try_from(ask.lease.as_millis()).unwrap_or(u64::MAX),
                            max: ask.max as u64,
                        }),
                        Request::Release { key, token } => wire::encode(&ClientMsg::Release {
                            key: *key,
                            token: *token,
                        }),
                        Request::Sync { .. } => wire::encode(&ClientMsg::Sync { id }),
                    };
                    match sender.send(&msg).await {
                        Ok(()) => match request {
                            Request::Commit { reply, .. } => {
                                pending.insert(id, reply);
                            }
                            Request::Claim { reply, .. } => {
                                claims.insert(id, reply);
                            }
                            Request::Lock { reply, .. } => {
                                locks.insert(id, reply);
                            }
                            Request::ClaimNext { ask, reply } => {
                                nexts.insert(id, (ask.max, reply));
                            }
                            Request::Sync { reply } => {
                                syncs.insert(id, reply);
                            }
                            Request::Release { .. } | Request::Unlock { .. } => {}
                        },
                        Err(e) => {
                            // A commit may have left in part or whole before the error.
                            if let Request::Commit { reply, .. } = request {
                                let _ = reply.send(Err(outcome_unknown(format!(
                                    "{url}: the connection broke while sending ({e})"
                                ))));
                            } else {
                                request.fail(unreachable(format!(
                                    "{url}: the connection broke while sending ({e})"
                                )));
                            }
                            break Ended::Retry(e.to_string());
                        }
                    }
                }
                r = receiver.recv() => {
                    let msg = match r {
                        Ok(Some(b)) => match wire::decode_server(&b, &limits) {
                            Ok(m) => m,
                            Err(e) => break Ended::Retry(format!("malformed message: {e}")),
                        },
                        Ok(None) => break Ended::Retry("the server closed the connection".into()),
                        Err(e) => break Ended::Retry(e.to_string()),
                    };
                    match msg {
                        // Applied by the applier task, in order, while the next ones arrive.
                        ServerMsg::Events { txs } => {
                            if to_apply.send(Apply::Events(txs)).await.is_err() {
                                break Ended::Retry("the applier stopped".into());
                            }
                        }
                        ServerMsg::CaughtUp { seq } => {
                            caught_up_seen = true;
                            if to_apply.send(Apply::CaughtUp(seq)).await.is_err() {
                                break Ended::Retry("the applier stopped".into());
                            }
                        }
                        // Before the history only: the stream starts over from the checkpoint.
                        ServerMsg::Checkpoint { payload } if !caught_up_seen => {
                            if to_apply.send(Apply::Checkpoint(payload)).await.is_err() {
                                break Ended::Retry("the applier stopped".into());
                            }
                        }
                        ServerMsg::Committed { id, seq } => {
                            if let Some(r) = pending.remove(&id) {
                                let _ = r.send(Ok(seq));
                            }
                        }
                        ServerMsg::Claimed { id, token } => {
                            if let Some(r) = claims.remove(&id) {
                                let _ = r.send(Ok(token));
                            }
                        }
                        ServerMsg::ClaimedNext { id, items, seen } => {
                            let Some((max, reply)) = nexts.remove(&id) else {
                                continue;
                            };
                            if items.len() > max {
                                // More than asked for: the claims end with this connection.
                                let _ = reply.send(Err(unreachable(format!(
                                    "{url}: the server claimed {} items where {max} were asked for",
                                    items.len()
                                ))));
                                break Ended::Retry("claimed more items than asked for".into());
                            }
                            let _ = reply.send(Ok(NextClaims::new(items, seen)));
                        }
                        ServerMsg::Locked { id, token } => {
                            if let Some(r) = locks.remove(&id) {
                                let _ = r.send(Ok(token));
                            }
                        }
                        ServerMsg::Synced { id, seq } => {
                            if let Some(r) = syncs.remove(&id) {
                                let _ = r.send(Ok(seq));
                            }
                        }
                        ServerMsg::Refused { id, reason } => {
                            if let Some(r) = pending.remove(&id) {
                                let _ = r.send(Err(refusal_error(reason)));
                            }
                        }
                        // Before the open returned, the caller hears why; afterwards the link
                        // tries again.
                        ServerMsg::Goodbye { reason } if ready.is_some() => {
                            break Ended::Stop(OpenError::Net(NetError::Refused(reason)));
                        }
                        ServerMsg::Goodbye { reason } => break Ended::Retry(reason),
                        other => break Ended::Retry(format!("unexpected message {other:?}")),
                    }
                }
            }
        };
        drop(to_apply);
        applier.abort();
        for (_, reply) in pending.drain() {
            let _ = reply.send(Err(outcome_unknown(format!(
                "{url}: the connection dropped before the server answered"
            ))));
        }
        // A claim or lock the server granted ended with the connection.
        for (_, reply) in claims.drain().chain(locks.drain()) {
            let _ = reply.send(Err(unreachable(format!(
                "{url}: the connection dropped before the server answered a claim"
            ))));
        }
        for (_, (_, reply)) in nexts.drain() {
            let _ = reply.send(Err(unreachable(format!(
                "{url}: the connection dropped before the server answered a claim"
            ))));
        }
        for (_, reply) in syncs.drain() {
            let _ = reply.send(Err(unreachable(format!(
                "{url}: the connection dropped before the server answered a sync"
            ))));
        }
        let _ = sender.close().await;
        ended
    }
}

/// How many connections a [`Chain::sync`] asks before it gives up.
const SYNC_TRIES: u32 = 8;

fn unreachable(why: String) -> CommitError {
    CommitError::Unreachable(why.into())
}

fn outcome_unknown(why: String) -> CommitError {
    CommitError::OutcomeUnknown(why.into())
}

/// Messages queued for the applier before the receiving side waits (each holds up to 256 KiB).
const APPLY_QUEUE: usize = 64;
/// The most bytes of transactions the applier hands the replica at once.
const APPLY_BYTES: usize = 8 << 20;

/// What the receiving side hands the applier, in the server's order.
enum Apply {
    Events(Vec<(u64, bytes::Bytes)>),
    CaughtUp(u64),
    /// The server's log was compacted past the replica: rebuild from this checkpoint and the
    /// history that follows, up to the next `CaughtUp`.
    Checkpoint(bytes::Bytes),
}

/// What the applier reports.
enum Applied {
    /// Everything up to the server's position at subscription is applied.
    CaughtUp(u64),
    /// The replica refused a transaction the server sent.
    Refused(CommitError),
    /// The chain is gone.
    Gone,
}

/// Applies the server's transactions to the replica in order, joining what has queued up into
/// one batch (one verification pass and group commit), while the connection receives the next.
async fn apply_loop(
    chain: WeakChain,
    mut queue: mpsc::Receiver<Apply>,
    report: mpsc::Sender<Applied>,
) {
    // A rebuild under way: the checkpoint, and the history received so far.
    let mut rebuilding: Option<(bytes::Bytes, Vec<(u64, bytes::Bytes)>)> = None;
    while let Some(first) = queue.recv().await {
        if let Some((checkpoint, history)) = rebuilding.as_mut() {
            match first {
                Apply::Events(txs) => history.extend(txs),
                Apply::Checkpoint(_) => {
                    let _ = report
                        .send(Applied::Refused(CommitError::Refused(
                            "the server sent a second checkpoint".into(),
                        )))
                        .await;
                    return;
                }
                Apply::CaughtUp(seq) => {
                    let (checkpoint, history) = (checkpoint.clone(), std::mem::take(history));
                    rebuilding = None;
                    let Some(replica) = chain.upgrade() else {
                        let _ = report.send(Applied::Gone).await;
                        return;
                    };
                    if let Err(e) = replica.rebuild(checkpoint, history, seq).await {
                        let _ = report
                            .send(Applied::Refused(CommitError::Refused(format!(
                                "the server's compacted log: {e}"
                            ))))
                            .await;
                        return;
                    }
                    let _ = report.send(Applied::CaughtUp(seq)).await;
                }
            }
            continue;
        }
        let mut txs = match first {
            Apply::CaughtUp(seq) => {
                let _ = report.send(Applied::CaughtUp(seq)).await;
                continue;
            }
            Apply::Checkpoint(payload) => {
                rebuilding = Some((payload, Vec::new()));
                continue;
            }
            Apply::Events(txs) => txs,
        };
        let mut bytes: usize = txs.iter().map(|(_, p)| p.len()).sum();
        let mut caught_up = None;
        while bytes < APPLY_BYTES {
            match queue.try_recv() {
                Ok(Apply::Events(more)) => {
                    bytes += more.iter().map(|(_, p)| p.len()).sum::<usize>();
                    txs.extend(more);
                }
                Ok(Apply::CaughtUp(seq)) => {
                    caught_up = Some(seq);
                    break;
                }
                Ok(Apply::Checkpoint(_)) => {
                    let _ = report
                        .send(Applied::Refused(CommitError::Refused(
                            "the server sent a checkpoint in the live stream".into(),
                        )))
                        .await;
                    return;
                }
                Err(_) => break,
            }
        }
        let Some(replica) = chain.upgrade() else {
            let _ = report.send(Applied::Gone).await;
            return;
        };
        if let Err(e) = replica.apply_replicated_batch(txs).await {
            let _ = report.send(Applied::Refused(e)).await;
            return;
        }
        drop(replica);
        if let Some(seq) = caught_up {
            let _ = report.send(Applied::CaughtUp(seq)).await;
        }
    }
}

/// The local error of a server's refusal.
fn refusal_error(r: Refusal) -> CommitError {
    match r {
        Refusal::Trust(t) => CommitError::Trust(t),
        Refusal::Unique {
            type_name,
            field,
            existing,
        } => CommitError::UniqueViolation {
            type_name,
            field,
            existing,
        },
        Refusal::Schema(m) => CommitError::Refused(format!("schema: {m}")),
        Refusal::TooLarge { size, max } => CommitError::TooLarge { size, max },
        Refusal::Malformed(m) => CommitError::Refused(format!("malformed: {m}")),
        Refusal::Unavailable(m) => CommitError::Refused(m),
        Refusal::Fenced { lock, token } => CommitError::Fenced { lock, token },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_chains() {
        let k = |u: &str| chain_key_of(u).map(|k| k.to_string()).map_err(|_| ());
        assert_eq!(k("ws://h/db/x"), Ok("x".into()));
        assert_eq!(k("ws://h:1/db/a/b?x=1"), Ok("a/b".into()));
        assert_eq!(k("wss://h/db/a.b"), Ok("a.b".into()));
        assert!(k("http://h/db/x").is_err());
        assert!(k("ws://h/x").is_err());
        assert!(k("ws://h").is_err());
        assert!(k("ws://h/db/../x").is_err());
    }
}
