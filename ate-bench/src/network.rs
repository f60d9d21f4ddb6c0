//! The network part (`--only network`; `--only nats` for the NATS peer alone): remote durable
//! commits (N1, target P7), durable fan-out (N2, P10) and a work queue (N3, P11), each system
//! under test beside NATS JetStream on loopback in the same rounds.
//!
//! A system under test is a [`NetworkPeer`]: it runs one workload of closed-loop clients and
//! returns every operation's latency and the wall time ([`OpSample`]). The JetStream peer runs
//! twice, on a server with `sync_interval: always` (an fsync per write, the durable comparison)
//! and on one with the default (acknowledgements mean the page cache); see `nats.rs`. ATE takes
//! part through [`ate_peers`]: its remote commits (N1), its bus (N2) and its queue (N3), each
//! through an embedded server, as `atedb solo` runs it, and a second queue column whose workers
//! take up to [`BATCH`] items per transaction. `--only nats` leaves ATE out; `--only fanout`
//! and `--only queue` run N2 or N3 alone.
//!
//! Each round runs every peer once per row, the order rotating from round to round; a figure is
//! the median of the rounds, a ratio the median of the per-round ratios.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::bus_scenario::BATCH;
use crate::data::{self, Blob};
use crate::nats::{self, JetStreamPeer, NatsServer, SyncMode};
use crate::util::{Res, int, median, percentile_ms};
use crate::{Plan, Report, Table};
use crate::{primitives, remote_scenario};

/// The future a peer's workload returns.
pub type PeerFuture<'a> = Pin<Box<dyn Future<Output = Res<OpSample>> + Send + 'a>>;

/// The longest one workload may run before the part fails (every loop is bounded by count; this
/// bounds it in time too).
const WORKLOAD_LIMIT: Duration = Duration::from_secs(300);

/// What one workload measured.
#[derive(Debug, Clone, Default)]
pub struct OpSample {
    /// Wall time of the timed operations, from the moment every client is ready.
    pub secs: f64,
    /// Operations timed: commits, messages published, or items taken from the queue.
    pub ops: usize,
    /// One latency per operation (per receipt for fan-out).
    pub lat: Vec<Duration>,
}

impl OpSample {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// One workload of the network rows.
#[derive(Debug, Clone)]
pub struct NetWork {
    /// Concurrent clients, each on its own connection: committers (N1), subscribers (N2) or
    /// queue workers (N3).
    pub clients: usize,
    /// Commits per client (N1), messages published (N2), or items in the queue (N3).
    pub ops: usize,
    /// Untimed operations per client before the timed ones (N1, N2).
    pub warmup: usize,
    /// The values, the same for every peer: MessagePack-encoded structs of 1 KiB of
    /// pseudo-random bytes (the peers send `data::encode` of them).
    pub values: Arc<Vec<Blob>>,
}

/// A system measured in the network rows. Each method runs one workload from scratch (its own
/// stream, chain or queue) and returns what it measured; `None` means the peer has no such
/// service (its cell then reads "—").
pub trait NetworkPeer: Send {
    /// The column heading.
    fn name(&self) -> String;

    /// The name in metrics (`n1.16.<slug>.per_s`).
    fn slug(&self) -> String;

    /// N1: `w.clients` clients each make `w.ops` durable commits of one value (after `w.warmup`
    /// untimed ones), one at a time, awaiting each acknowledgement before the next. Latency:
    /// commit call to durable acknowledgement.
    fn commits<'a>(&'a mut self, _w: &'a NetWork) -> Option<PeerFuture<'a>> {
        None
    }

    /// N2: one publisher makes `w.ops` durable publishes (after `w.warmup` untimed ones), each
    /// after every one of `w.clients` subscribers received the previous. Latency: publish call to
    /// each receipt.
    fn fanout<'a>(&'a mut self, _w: &'a NetWork) -> Option<PeerFuture<'a>> {
        None
    }

    /// N3: `w.ops` values enqueued durably (not timed), then `w.clients` workers take them and
    /// acknowledge them durably (awaited) before taking more: each one on its own, or, for a
    /// peer that says so in its name, several in one acknowledgement. Timed: the draining.
    fn queue<'a>(&'a mut self, _w: &'a NetWork) -> Option<PeerFuture<'a>> {
        None
    }
}

/// ATE's side of the network rows: remote commits to a server over loopback WebSocket, with the
/// servers and their chains under `base`; with `batches`, a second column whose queue workers
/// take up to [`BATCH`] items per transaction (it has no other rows).
fn ate_peers(base: &Path, batches: bool) -> Vec<Box<dyn NetworkPeer>> {
    let mut out: Vec<Box<dyn NetworkPeer>> = vec![Box::new(AteRemote {
        base: base.to_path_buf(),
        batch: 1,
    })];
    if batches {
        out.push(Box::new(AteRemote {
            base: base.to_path_buf(),
            batch: BATCH,
        }));
    }
    out
}

/// Which rows the network part runs.
#[derive(Debug, Clone, Copy)]
pub struct NetRows {
    /// N1.
    pub commits: bool,
    /// N2.
    pub fanout: bool,
    /// N3.
    pub queue: bool,
}

impl NetRows {
    /// N1, N2 and N3.
    pub const ALL: NetRows = NetRows {
        commits: true,
        fanout: true,
        queue: true,
    };
}

/// ATE over the network: each workload starts an embedded server (as `atedb solo` runs it) on a
/// fresh file-backed data folder, connects every client with its own registry (as separate
/// programs would), and stops the server at the end.
#[derive(Debug)]
struct AteRemote {
    base: std::path::PathBuf,
    /// The most items a queue worker takes per transaction: 1 is `Bus::process` (the
    /// `ATE` column, which also runs N1 and N2), more is `Bus::process_many` (N3 only).
    batch: usize,
}

impl AteRemote {
    /// N1 on ATE: every client commits one value per transaction, awaiting each commit; the
    /// clients are commit only (they keep no replica), as JetStream's publishers keep no
    /// consumer.
    async fn commits(base: std::path::PathBuf, w: NetWork) -> Res<OpSample> {
        use ate::prelude::AteSession;
        let dir = tempfile::tempdir_in(base)?;
        let (server, identity) = remote_scenario::start_server(dir.path()).await?;
        let url = server.url("network");
        let mut clients = Vec::with_capacity(w.clients);
        for _ in 0..w.clients {
            clients.push(
                remote_scenario::open_client(
                    &url,
                    &identity,
                    remote_scenario::ClientKind::CommitOnly,
                )
                .await?,
            );
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(w.clients + 1));
        let mut tasks = Vec::with_capacity(w.clients);
        for (c, chain) in clients.into_iter().enumerate() {
            let (w, barrier) = (w.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let session = AteSession::default();
                let mut lat = Vec::with_capacity(w.ops);
                for i in 0..w.warmup + w.ops {
                    if i == w.warmup {
                        barrier.wait().await;
                    }
                    let value = w.values[(c * 131 + i) % w.values.len()].clone();
                    let t = std::time::Instant::now();
                    let mut dio = chain.dio(&session).await;
                    dio.store(value)?;
                    dio.commit().await?;
                    if i >= w.warmup {
                        lat.push(t.elapsed());
                    }
                }
                if w.ops == 0 {
                    barrier.wait().await;
                }
                Res::Ok(lat)
            }));
        }
        barrier.wait().await;
        let start = std::time::Instant::now();
        let mut lat = Vec::with_capacity(w.clients * w.ops);
        let mut failed = None;
        for t in tasks {
            match t.await? {
                Ok(l) => lat.extend(l),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        server.shutdown().await;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(OpSample {
            secs,
            ops: w.clients * w.ops,
            lat,
        })
    }
}

/// A record owning the bench's collection.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct NetTopic {
    items: ate::prelude::DaoVec<Blob>,
}

/// Creates a topic on `chain`: its collection, attached.
async fn new_topic(chain: &ate::prelude::Chain) -> Res<ate::prelude::DaoVec<Blob>> {
    use ate::prelude::*;
    let mut dio = chain.dio(&AteSession::default()).await;
    let dao = dio.store(NetTopic {
        items: DaoVec::new(),
    })?;
    let mut items = dao.items.clone();
    items.attach(*dao.key());
    dio.commit().await?;
    Ok(items)
}

impl AteRemote {
    /// N2 on ATE: a publisher (a client) commits one item per transaction to a collection;
    /// `w.clients` other clients each receive it on a bus; the next is published once every
    /// subscriber received the previous.
    async fn fanout(base: std::path::PathBuf, w: NetWork) -> Res<OpSample> {
        use ate::prelude::*;
        let dir = tempfile::tempdir_in(base)?;
        let (server, identity) = remote_scenario::start_server(dir.path()).await?;
        let url = server.url("fanout");
        let kind = remote_scenario::ClientKind::Replica;
        let publisher = remote_scenario::open_client(&url, &identity, kind).await?;
        let items = new_topic(&publisher).await?;
        let (tx, mut receipts) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
        let mut subscribers = Vec::with_capacity(w.clients);
        for _ in 0..w.clients {
            let chain = remote_scenario::open_client(&url, &identity, kind).await?;
            chain.sync().await?;
            let mut bus = items.bus(&chain.dio(&AteSession::default()).await)?;
            let tx = tx.clone();
            let total = w.warmup + w.ops;
            subscribers.push(tokio::spawn(async move {
                for _ in 0..total {
                    bus.recv().await?;
                    if tx.send(std::time::Instant::now()).is_err() {
                        break;
                    }
                }
                drop(chain);
                Res::Ok(())
            }));
        }
        let session = AteSession::default();
        let mut lat = Vec::with_capacity(w.ops * w.clients);
        let mut start = None;
        for i in 0..w.warmup + w.ops {
            if i == w.warmup {
                start = Some(std::time::Instant::now());
            }
            let t = std::time::Instant::now();
            let mut dio = publisher.dio(&session).await;
            items.push(&mut dio, w.values[i % w.values.len()].clone())?;
            dio.commit().await?;
            for _ in 0..w.clients {
                let at = receipts.recv().await.ok_or("a subscriber stopped")?;
                if i >= w.warmup {
                    lat.push(at.saturating_duration_since(t));
                }
            }
        }
        let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        for s in subscribers {
            s.await??;
        }
        drop(publisher);
        server.shutdown().await;
        Ok(OpSample {
            secs,
            ops: w.ops,
            lat,
        })
    }

    /// N3 on ATE: `w.ops` items committed to a collection on the server (not timed), then
    /// `w.clients` clients take them with `Bus::process` (`batch` 1), each committing the
    /// item's deletion (awaited) before taking the next, or with `Bus::process_many`, up to
    /// `batch` items per transaction (claimed in one ask, the next batch asked for while this
    /// one commits). Timed: the draining; each item's latency is its transaction's.
    async fn queue(base: std::path::PathBuf, w: NetWork, batch: usize) -> Res<OpSample> {
        use ate::prelude::*;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir_in(base)?;
        let (server, identity) = remote_scenario::start_server(dir.path()).await?;
        let url = server.url("queue");
        let local = server.registry().open(&ChainKey::from("queue")).await?;
        let items = new_topic(&local).await?;
        let session = AteSession::default();
        let mut n = 0;
        while n < w.ops {
            let mut dio = local.dio(&session).await;
            for _ in 0..1000.min(w.ops - n) {
                items.push(&mut dio, w.values[n % w.values.len()].clone())?;
                n += 1;
            }
            dio.commit().await?;
        }
        let kind = remote_scenario::ClientKind::Replica;
        let done = Arc::new(AtomicUsize::new(0));
        // Set once every item is processed (a watch: a worker that starts waiting later sees it).
        let (all_done_tx, all_done) = tokio::sync::watch::channel(false);
        let all_done_tx = Arc::new(all_done_tx);
        let barrier = Arc::new(tokio::sync::Barrier::new(w.clients + 1));
        let mut workers = Vec::with_capacity(w.clients);
        for _ in 0..w.clients {
            let chain = remote_scenario::open_client(&url, &identity, kind).await?;
            let bus = items.bus(&chain.dio(&session).await)?;
            let mut bus = if batch > 1 {
                bus.with_prefetch(batch)
            } else {
                bus
            };
            let (done, all_done_tx, mut all_done, barrier, total) = (
                done.clone(),
                all_done_tx.clone(),
                all_done.clone(),
                barrier.clone(),
                w.ops,
            );
            workers.push(tokio::spawn(async move {
                let session = AteSession::default();
                let mut lat = Vec::new();
                barrier.wait().await;
                while done.load(Ordering::Acquire) < total {
                    let t = std::time::Instant::now();
                    let mut dio = chain.dio(&session).await;
                    let take = async {
                        if batch == 1 {
                            bus.process(&mut dio).await.map(|_| 1)
                        } else {
                            bus.process_many(&mut dio, batch).await.map(|v| v.len())
                        }
                    };
                    let taken = tokio::select! {
                        r = take => r?,
                        _ = all_done.wait_for(|d| *d) => break,
                    };
                    match dio.commit().await {
                        Ok(()) => {
                            lat.extend(std::iter::repeat_n(t.elapsed(), taken));
                            if done.fetch_add(taken, Ordering::AcqRel) + taken >= total {
                                let _ = all_done_tx.send(true);
                            }
                        }
                        // Taken by another worker whose claim outlived a lease: not twice.
                        Err(AteError::Commit(CommitError::Trust(_))) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                drop(chain);
                Res::Ok(lat)
            }));
        }
        barrier.wait().await;
        let start = std::time::Instant::now();
        let mut lat = Vec::with_capacity(w.ops);
        for h in workers {
            lat.extend(h.await??);
        }
        let secs = start.elapsed().as_secs_f64();
        let left = items.iter(&local.dio(&session).await).await?.len();
        drop(local);
        server.shutdown().await;
        if lat.len() != w.ops || left != 0 {
            return Err(format!("{} items processed of {}, {left} left", lat.len(), w.ops).into());
        }
        Ok(OpSample {
            secs,
            ops: w.ops,
            lat,
        })
    }
}

impl NetworkPeer for AteRemote {
    fn name(&self) -> String {
        if self.batch == 1 {
            "ATE".into()
        } else {
            format!("ATE, ≤ {} items per tx", self.batch)
        }
    }

    fn slug(&self) -> String {
        if self.batch == 1 {
            "ATE".into()
        } else {
            format!("ATE_batch{}", self.batch)
        }
    }

    fn commits<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        (self.batch == 1)
            .then(|| Box::pin(AteRemote::commits(self.base.clone(), w.clone())) as PeerFuture<'a>)
    }

    fn fanout<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        (self.batch == 1)
            .then(|| Box::pin(AteRemote::fanout(self.base.clone(), w.clone())) as PeerFuture<'a>)
    }

    fn queue<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        Some(Box::pin(AteRemote::queue(
            self.base.clone(),
            w.clone(),
            self.batch,
        )))
    }
}

/// How much work each row does.
#[derive(Debug)]
struct NetPlan {
    rounds: usize,
    /// N1: (clients, commits per client).
    commits: [(usize, usize); 3],
    commit_warmup: usize,
    /// N2: subscriber counts, messages, untimed messages.
    subscribers: [usize; 2],
    messages: usize,
    message_warmup: usize,
    /// N3: workers, items.
    workers: usize,
    items: usize,
}

impl NetPlan {
    fn new(plan: &Plan) -> Self {
        let q = plan.quick;
        NetPlan {
            rounds: plan.rounds,
            commits: if q {
                [(1, 300), (16, 40), (64, 15)]
            } else {
                [(1, 2000), (16, 300), (64, 100)]
            },
            commit_warmup: if q { 5 } else { 20 },
            subscribers: [1, 10],
            messages: if q { 200 } else { 1000 },
            message_warmup: 20,
            workers: 4,
            items: if q { 1000 } else { 5000 },
        }
    }
}

/// Which workload a row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commits,
    Fanout,
    Queue,
}

/// One peer's figures of one row over the rounds.
#[derive(Debug, Default, Clone)]
struct Col {
    rate: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
}

impl Col {
    fn push(&mut self, s: &OpSample) {
        self.rate.push(s.rate());
        self.p50.push(percentile_ms(&s.lat, 0.5));
        self.p99.push(percentile_ms(&s.lat, 0.99));
    }
    fn rate(&self) -> f64 {
        median(&self.rate)
    }
    fn p50(&self) -> f64 {
        median(&self.p50)
    }
    fn p99(&self) -> f64 {
        median(&self.p99)
    }
    fn lat(&self) -> String {
        format!("{:.2} / {:.2}", self.p50(), self.p99())
    }
    /// The median over rounds of this rate divided by `other`'s in the same round.
    fn ratio(&self, other: &Col) -> f64 {
        let r: Vec<f64> = self
            .rate
            .iter()
            .zip(&other.rate)
            .map(|(a, b)| a / b)
            .collect();
        median(&r)
    }
}

/// Runs one workload on a peer, bounded in time.
fn run_one(
    rt: &tokio::runtime::Runtime,
    peer: &mut dyn NetworkPeer,
    kind: Kind,
    w: &NetWork,
) -> Res<Option<OpSample>> {
    let name = peer.name();
    let fut = match kind {
        Kind::Commits => peer.commits(w),
        Kind::Fanout => peer.fanout(w),
        Kind::Queue => peer.queue(w),
    };
    let Some(fut) = fut else { return Ok(None) };
    let s = rt
        .block_on(async { tokio::time::timeout(WORKLOAD_LIMIT, fut).await })
        .map_err(|_| format!("{name}: a workload ran over {} s", WORKLOAD_LIMIT.as_secs()))??;
    Ok(Some(s))
}

/// A reference measured beside the peers of a row: its name and its workload.
type Reference<'r> = (&'r str, &'r dyn Fn(&NetWork) -> PeerFuture<'static>);

/// One row's workload on every peer for `rounds` rounds, the order rotating; `reference`, when
/// given, runs once per round after the peers. Returns a column per peer (`None`: the peer has
/// no such service) and the reference's.
fn rounds(
    rt: &tokio::runtime::Runtime,
    rounds: usize,
    peers: &mut [Box<dyn NetworkPeer>],
    kind: Kind,
    w: &NetWork,
    mut reference: Option<Reference<'_>>,
) -> Res<(Vec<Option<Col>>, Col)> {
    let n = peers.len();
    let mut cols: Vec<Option<Col>> = vec![None; n];
    let mut refcol = Col::default();
    for r in 0..rounds {
        let mut line = format!("  round {}:", r + 1);
        for k in 0..n {
            let i = (r + k) % n;
            let peer = peers[i].as_mut();
            if let Some(s) = run_one(rt, peer, kind, w)? {
                let col = cols[i].get_or_insert_with(Col::default);
                col.push(&s);
                line += &format!(
                    "  {} {}/s (p50 {:.2} p99 {:.2} ms)",
                    peer.name(),
                    int(s.rate()),
                    percentile_ms(&s.lat, 0.5),
                    percentile_ms(&s.lat, 0.99)
                );
            }
        }
        if let Some((name, run)) = reference.as_mut() {
            let s = rt
                .block_on(async { tokio::time::timeout(WORKLOAD_LIMIT, run(w)).await })
                .map_err(|_| format!("{name}: ran over {} s", WORKLOAD_LIMIT.as_secs()))??;
            refcol.push(&s);
            line += &format!(
                "  {name} {}/s (p50 {:.2} p99 {:.2} ms)",
                int(s.rate()),
                percentile_ms(&s.lat, 0.5),
                percentile_ms(&s.lat, 0.99)
            );
        }
        println!("{line}");
    }
    Ok((cols, refcol))
}

/// The servers of the JetStream peer that could be started, with a line of explanation for each
/// that could not.
fn jetstream_peers(base: &Path, rep: &mut Report) -> Vec<JetStreamPeer> {
    let bin = match nats::find_server() {
        Ok(b) => b,
        Err(e) => {
            println!("  SKIPPED the JetStream rows: {e}");
            rep.note(format!("JetStream rows skipped: {e}"));
            return Vec::new();
        }
    };
    println!(
        "  NATS server {} at {}",
        bin.version,
        bin.path.to_string_lossy()
    );
    let mut out = Vec::new();
    for mode in [SyncMode::Always, SyncMode::Default] {
        match NatsServer::start(&bin, base, mode) {
            Ok(s) => {
                println!("  {} on {}", mode.label(), s.url());
                out.push(JetStreamPeer::new(s));
            }
            Err(e) => {
                println!("  SKIPPED {}: {e}", mode.label());
                rep.note(format!("{} skipped: {e}", mode.label()));
            }
        }
    }
    if let Some(p) = out.first() {
        rep.note(format!(
            "JetStream: nats-server {} on loopback, file storage, one replica, a connection per \
             client; \"sync always\" is `sync_interval: always` (an fsync per write before the \
             acknowledgement), \"default\" acknowledges from the page cache (the server syncs on a \
             timer: every two minutes since 2.10).",
            p.server().version()
        ));
    }
    out
}

/// The network part: the `rows` of N1, N2 and N3 on every peer; `with_ate` adds ATE's side.
pub fn scenario_network(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
    with_ate: bool,
    rows: NetRows,
) -> Res<()> {
    let np = NetPlan::new(plan);
    println!("\n[N] network: remote durable commits, fan-out and a work queue over loopback");
    let js = jetstream_peers(base, rep);
    let core_url = js
        .iter()
        .find(|p| p.server().mode() == SyncMode::Default)
        .or(js.first())
        .map(|p| p.server().url().to_string());
    let mut peers: Vec<Box<dyn NetworkPeer>> = Vec::new();
    let has_ate = with_ate;
    if with_ate {
        peers.extend(ate_peers(base, rows.queue));
    }
    for p in js {
        peers.push(Box::new(p));
    }
    if !has_ate && !peers.is_empty() {
        println!("  ATE is left out with `--only nats`");
        rep.note("N1–N3: ATE left out (`--only nats`); P7, P10 and P11 are not checked.".into());
    }
    if peers.is_empty() {
        return Ok(());
    }
    let values = Arc::new(data::values(4096, 1024, 1));
    let names: Vec<String> = peers.iter().map(|p| p.name()).collect();
    let slugs: Vec<String> = peers.iter().map(|p| p.slug()).collect();
    let mut head = vec!["scenario".to_string()];
    head.extend(names.iter().cloned());
    head.push("ratio / reference".into());
    let mut table = Table {
        title: "Network (loopback)".into(),
        head,
        rows: Vec::new(),
    };
    let find = |slug: &str| slugs.iter().position(|s| s == slug);
    let (ate_i, always_i, default_i) = (
        has_ate.then_some(0),
        find(SyncMode::Always.slug()),
        find(SyncMode::Default.slug()),
    );
    let cells = |cols: &[Option<Col>], f: &dyn Fn(&Col) -> String| -> Vec<String> {
        cols.iter()
            .map(|c| c.as_ref().map_or_else(|| "—".to_string(), f))
            .collect()
    };
    let ratio = |cols: &[Option<Col>], a: Option<usize>, b: Option<usize>| -> Option<f64> {
        Some(cols[a?].as_ref()?.ratio(cols[b?].as_ref()?))
    };
    let mut p7 = Vec::new();
    // Whether ATE took part in N2 and N3.
    let mut ate_serves_bus = true;
    // ATE's N2 p50 and JetStream's (sync always) by subscriber count, for P10.
    let mut p10: Vec<(usize, f64, Option<f64>)> = Vec::new();

    // N1: remote durable commits.
    for (clients, per_client) in np.commits.into_iter().filter(|_| rows.commits) {
        println!(
            "\n[N1] durable commits of one 1 KiB value over loopback, {clients} client(s), \
             {per_client} commits each, awaiting each acknowledgement (ATE's clients commit \
             only, keeping no replica, as publishers keep no consumer)"
        );
        let w = NetWork {
            clients,
            ops: per_client,
            warmup: np.commit_warmup,
            values: values.clone(),
        };
        // One client: the disk's floor for a durable commit beside it, in the same rounds.
        let floor = |w: &NetWork| -> PeerFuture<'static> {
            let (dir, n) = (base.to_path_buf(), w.ops);
            Box::pin(async move {
                tokio::task::spawn_blocking(move || {
                    let d = tempfile::tempdir_in(dir)?;
                    let lat = primitives::overwrite_fsync(d.path(), n)?;
                    Ok(OpSample {
                        secs: lat.iter().map(Duration::as_secs_f64).sum(),
                        ops: n,
                        lat,
                    })
                })
                .await?
            })
        };
        let reference = (clients == 1).then_some((
            "disk floor",
            &floor as &dyn Fn(&NetWork) -> PeerFuture<'static>,
        ));
        let (cols, floor_col) = rounds(rt, np.rounds, &mut peers, Kind::Commits, &w, reference)?;
        let plural = if clients == 1 { "" } else { "s" };
        let note = if has_ate {
            ratio_note(&[
                ("ATE/sync always", ratio(&cols, ate_i, always_i)),
                ("ATE/default", ratio(&cols, ate_i, default_i)),
            ])
        } else {
            let r = ratio(&cols, default_i, always_i);
            ratio_note(&[("default/sync always", r)])
                + if r.is_some() {
                    " (page-cache acknowledgements against an fsync per write)"
                } else {
                    ""
                }
        };
        let mut row = vec![format!(
            "N1. durable commits/s, 1 KiB, {clients} client{plural}"
        )];
        row.extend(cells(&cols, &|c| int(c.rate())));
        row.push(note);
        table.rows.push(row);
        let mut row = vec![format!(
            "N1. commit latency p50 / p99 (ms), {clients} client{plural}"
        )];
        row.extend(cells(&cols, &|c| c.lat()));
        row.push(if floor_col.rate.is_empty() {
            String::new()
        } else {
            rep.metric("n1.floor.per_s", floor_col.rate());
            format!(
                "disk floor (overwrite 4 KiB + fdatasync): {}/s, p50 {:.2} ms",
                int(floor_col.rate()),
                floor_col.p50()
            )
        });
        table.rows.push(row);
        for (c, slug) in cols.iter().zip(&slugs) {
            if let Some(c) = c {
                rep.metric(&format!("n1.{clients}.{slug}.per_s"), c.rate());
                rep.metric(&format!("n1.{clients}.{slug}.p50_ms"), c.p50());
                rep.metric(&format!("n1.{clients}.{slug}.p99_ms"), c.p99());
            }
        }
        if let Some(a) = ate_i.and_then(|i| cols[i].as_ref()) {
            p7.push(P7Row {
                clients,
                rate: a.rate(),
                p50: a.p50(),
                always: ratio(&cols, ate_i, always_i),
                default: ratio(&cols, ate_i, default_i),
            });
        }
    }

    // N2: durable fan-out, core NATS as the floor of messaging on loopback.
    for subs in np.subscribers.into_iter().filter(|_| rows.fanout) {
        println!(
            "\n[N2] durable fan-out of 1 KiB messages to {subs} subscriber(s), {} messages, each \
             after every subscriber received the previous",
            np.messages
        );
        let w = NetWork {
            clients: subs,
            ops: np.messages,
            warmup: np.message_warmup,
            values: values.clone(),
        };
        let core = core_url.clone().map(|url| {
            move |w: &NetWork| -> PeerFuture<'static> {
                let (url, w) = (url.clone(), w.clone());
                Box::pin(async move {
                    nats::core_fanout(&url, &w.values, w.clients, w.ops, w.warmup).await
                })
            }
        });
        let reference = core
            .as_ref()
            .map(|f| ("core NATS", f as &dyn Fn(&NetWork) -> PeerFuture<'static>));
        let (cols, core_col) = rounds(rt, np.rounds, &mut peers, Kind::Fanout, &w, reference)?;
        ate_serves_bus &= ate_i.is_some_and(|i| cols[i].is_some());
        if let Some(a) = ate_i.and_then(|i| cols[i].as_ref()) {
            p10.push((
                subs,
                a.p50(),
                always_i.and_then(|i| cols[i].as_ref()).map(Col::p50),
            ));
        }
        let plural = if subs == 1 { "" } else { "s" };
        let mut row = vec![format!(
            "N2. durable fan-out latency p50 / p99 (ms), {subs} subscriber{plural}"
        )];
        row.extend(cells(&cols, &|c| c.lat()));
        row.push(if core_col.p50.is_empty() {
            String::new()
        } else {
            format!(
                "core NATS, no storage (the loopback floor): {}",
                core_col.lat()
            )
        });
        table.rows.push(row);
        for (c, slug) in cols.iter().zip(&slugs) {
            if let Some(c) = c {
                rep.metric(&format!("n2.{subs}.{slug}.p50_ms"), c.p50());
                rep.metric(&format!("n2.{subs}.{slug}.p99_ms"), c.p99());
            }
        }
        if !core_col.p50.is_empty() {
            rep.metric(&format!("n2.{subs}.core_nats.p50_ms"), core_col.p50());
            rep.metric(&format!("n2.{subs}.core_nats.p99_ms"), core_col.p99());
        }
    }

    // N3: a work queue, with the disk's floor (overwrite 4 KiB + fdatasync, one at a time).
    if rows.queue {
        println!(
            "\n[N3] work queue: {} items of 1 KiB, {} workers, each acknowledgement awaited \
             (ATE: each item's deletion committed, or up to {BATCH} items' deletions in one \
             transaction)",
            np.items, np.workers
        );
        let w = NetWork {
            clients: np.workers,
            ops: np.items,
            warmup: 0,
            values: values.clone(),
        };
        let floor = |_: &NetWork| -> PeerFuture<'static> {
            let dir = base.to_path_buf();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || {
                    let d = tempfile::tempdir_in(dir)?;
                    let lat = primitives::overwrite_fsync(d.path(), 300)?;
                    Ok(OpSample {
                        secs: lat.iter().map(Duration::as_secs_f64).sum(),
                        ops: 300,
                        lat,
                    })
                })
                .await?
            })
        };
        let reference = Some((
            "disk floor",
            &floor as &dyn Fn(&NetWork) -> PeerFuture<'static>,
        ));
        let (cols, floor_col) = rounds(rt, np.rounds, &mut peers, Kind::Queue, &w, reference)?;
        ate_serves_bus &= ate_i.is_some_and(|i| cols[i].is_some());
        let batch_i = find(&format!("ATE_batch{BATCH}"));
        if let Some(a) = ate_i.and_then(|i| cols[i].as_ref()) {
            let always = ratio(&cols, ate_i, always_i);
            let batched = batch_i.and_then(|i| cols[i].as_ref());
            let always_b = ratio(&cols, batch_i, always_i);
            let met = |rate: f64, r: Option<f64>| rate >= 20_000.0 && r.is_some_and(|r| r >= 4.0);
            rep.target(
                "P11",
                met(a.rate(), always) || batched.is_some_and(|b| met(b.rate(), always_b)),
                format!(
                    "queue, {} workers (≥ 20,000/s and ≥ 4x a JetStream work queue with sync \
                     always): one item per transaction {}/s, {} of it; up to {BATCH} per \
                     transaction {}, {} of it",
                    np.workers,
                    int(a.rate()),
                    fmt_ratio(always),
                    batched.map_or_else(|| "n/a".into(), |b| format!("{}/s", int(b.rate()))),
                    fmt_ratio(always_b),
                ),
            );
        }
        let mut row = vec![format!(
            "N3. work queue items/s, {} workers, awaited acks",
            np.workers
        )];
        row.extend(cells(&cols, &|c| int(c.rate())));
        let mut note = if has_ate {
            ratio_note(&[
                ("ATE/sync always", ratio(&cols, ate_i, always_i)),
                (
                    &format!("ATE ≤ {BATCH} per tx/sync always"),
                    ratio(&cols, batch_i, always_i),
                ),
            ])
        } else {
            ratio_note(&[("default/sync always", ratio(&cols, default_i, always_i))])
        };
        if !floor_col.rate.is_empty() {
            rep.metric("n3.floor.per_s", floor_col.rate());
            note += &format!(
                "; disk floor (overwrite 4 KiB + fdatasync): {}/s",
                int(floor_col.rate())
            );
        }
        row.push(note);
        table.rows.push(row);
        let mut row = vec![format!(
            "N3. item latency p50 / p99 (ms), {} workers (take to durable ack)",
            np.workers
        )];
        row.extend(cells(&cols, &|c| c.lat()));
        row.push(String::new());
        table.rows.push(row);
        for (c, slug) in cols.iter().zip(&slugs) {
            if let Some(c) = c {
                rep.metric(&format!("n3.{}.{slug}.items_per_s", np.workers), c.rate());
            }
        }
    }
    if !p10.is_empty() {
        let met = p10
            .iter()
            .all(|(_, p50, js)| *p50 <= 1.0 && js.is_some_and(|j| *p50 < j));
        let parts: Vec<String> = p10
            .iter()
            .map(|(subs, p50, js)| {
                format!(
                    "{subs} subscriber(s) p50 {p50:.2} ms (≤ 1 ms remote, below JetStream sync always: {})",
                    js.map_or_else(|| "n/a".into(), |j| format!("{j:.2} ms"))
                )
            })
            .collect();
        rep.target("P10 (remote)", met, parts.join("; "));
    }
    rep.tables.push(table);
    if has_ate && (rows.fanout || rows.queue) && !ate_serves_bus {
        rep.note("N2, N3: ATE did not take part; P10 and P11 are not checked.".into());
    }
    if !p7.is_empty() {
        p7_target(rep, &p7);
    }
    Ok(())
}

/// `label 1.23x` for each ratio whose two sides were measured, joined by ` · `.
fn ratio_note(parts: &[(&str, Option<f64>)]) -> String {
    parts
        .iter()
        .filter_map(|(label, r)| r.map(|r| format!("{label} {r:.2}x")))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `1.23x`, or `n/a` when a side is missing.
fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".into(), |r| format!("{r:.2}x"))
}

/// ATE's N1 figures at one client count.
#[derive(Debug)]
struct P7Row {
    clients: usize,
    rate: f64,
    p50: f64,
    /// ATE's rate ÷ JetStream's with `sync_interval: always`, and with its default.
    always: Option<f64>,
    default: Option<f64>,
}

/// P7 from ATE's N1 figures (not checked without both JetStream columns).
fn p7_target(rep: &mut Report, rows: &[P7Row]) {
    if rows
        .iter()
        .any(|r| r.clients > 1 && (r.always.is_none() || r.default.is_none()))
    {
        rep.note(
            "P7 not checked: it needs both JetStream columns (sync always and default).".into(),
        );
        return;
    }
    let mut met = true;
    let mut parts = Vec::new();
    for &P7Row {
        clients,
        rate,
        p50,
        always,
        default,
    } in rows
    {
        if clients == 1 {
            met &= p50 <= 1.0;
            parts.push(format!("1 client p50 {p50:.2} ms (≤ 1 ms)"));
        } else {
            met &= always.is_some_and(|r| r >= 5.0) && default.is_some_and(|r| r >= 0.5);
            parts.push(format!(
                "{clients} clients {}/s = {} of sync always (≥ 5x), {} of default (≥ 0.5x)",
                int(rate),
                fmt_ratio(always),
                fmt_ratio(default)
            ));
        }
    }
    rep.target("P7", met, parts.join("; "));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer whose commits "take" a fixed number of seconds, to check the rounds' bookkeeping.
    struct Fake {
        name: &'static str,
        secs: f64,
        calls: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }

    impl NetworkPeer for Fake {
        fn name(&self) -> String {
            self.name.into()
        }
        fn slug(&self) -> String {
            self.name.into()
        }
        fn commits<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
            self.calls.lock().expect("lock").push(self.name);
            let s = OpSample {
                secs: self.secs,
                ops: w.clients * w.ops,
                lat: vec![Duration::from_millis(1); w.clients * w.ops],
            };
            Some(Box::pin(async move { Ok(s) }))
        }
    }

    #[test]
    fn rounds_rotate_the_order_and_skip_missing_services() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut peers: Vec<Box<dyn NetworkPeer>> = vec![
            Box::new(Fake {
                name: "a",
                secs: 1.0,
                calls: calls.clone(),
            }),
            Box::new(Fake {
                name: "b",
                secs: 2.0,
                calls: calls.clone(),
            }),
        ];
        let w = NetWork {
            clients: 2,
            ops: 10,
            warmup: 0,
            values: Arc::new(Vec::new()),
        };
        let (cols, reference) =
            rounds(&rt, 3, &mut peers, Kind::Commits, &w, None).expect("rounds");
        assert_eq!(*calls.lock().expect("lock"), ["a", "b", "b", "a", "a", "b"]);
        let (a, b) = (cols[0].as_ref().expect("a"), cols[1].as_ref().expect("b"));
        assert_eq!(a.rate(), 20.0);
        assert_eq!(b.rate(), 10.0);
        assert_eq!(a.ratio(b), 2.0);
        assert!(reference.rate.is_empty());
        let (cols, _) = rounds(&rt, 2, &mut peers, Kind::Fanout, &w, None).expect("rounds");
        assert!(cols.iter().all(Option::is_none));
    }
}
