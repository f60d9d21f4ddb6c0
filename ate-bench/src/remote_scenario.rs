//! Remote chains over loopback: durable commits through an `atedb` server (P7) and a client's
//! sync of a chain's history (P8), the server embedded in this process (a `net::host::Server`
//! on a file-backed data folder, as `atedb solo` runs it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ate::net::host::{Server, ServerConfig};
use ate::net::remote::RemoteOptions;
use ate::net::{ConnectOptions, ServerIdentity, ServerTrust};
use ate::prelude::*;

use crate::data::Blob;
use crate::util::Res;

/// A server on loopback keeping chains under `dir`.
pub async fn start_server(dir: &Path) -> Res<(Server, ServerIdentity)> {
    let identity = ServerIdentity::generate(KeySize::Bit128);
    let server = restart_server(dir, &identity, "127.0.0.1:0".parse()?).await?;
    Ok((server, identity))
}

/// A server with `identity` on `addr` keeping chains under `dir` (a restart, when another
/// served there before).
async fn restart_server(
    dir: &Path,
    identity: &ServerIdentity,
    addr: std::net::SocketAddr,
) -> Res<Server> {
    let mut config = ServerConfig::new(identity.clone());
    config.listen = addr;
    config.chains = AteConfig::at(dir);
    Ok(Server::start(config).await?)
}

fn options(identity: &ServerIdentity) -> RemoteOptions {
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
    o
}

/// What a benchmark client keeps of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A full replica in memory: the history, then every writer's commits live.
    Replica,
    /// Commits only ([`RemoteOptions::commit_only`]): the work of a publisher awaiting its
    /// acknowledgements.
    CommitOnly,
}

/// A client of `url` (each client its own registry, as separate programs would be).
pub async fn open_client(url: &str, identity: &ServerIdentity, kind: ClientKind) -> Res<Chain> {
    let mut o = options(identity);
    if kind == ClientKind::CommitOnly {
        o = o.commit_only();
    }
    Ok(ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(url, &o)
        .await?)
}

/// `clients` clients commit one 1 KiB value per transaction in a closed loop for `secs`
/// seconds: commits/s and every commit's latency.
pub async fn remote_commits(
    server: &Server,
    identity: &ServerIdentity,
    chain: &str,
    clients: usize,
    secs: f64,
    value: &Blob,
) -> Res<(f64, Vec<Duration>)> {
    let url = server.url(chain);
    let mut chains = Vec::with_capacity(clients);
    for _ in 0..clients {
        chains.push(open_client(&url, identity, ClientKind::Replica).await?);
    }
    // Every client has connected and caught up before the clock starts.
    let start = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let deadline = Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(clients);
    for chain in chains {
        let (start, value) = (start.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let session = AteSession::default();
            let mut lat = Vec::new();
            start.wait().await;
            let began = Instant::now();
            while began.elapsed() < deadline {
                let t = Instant::now();
                let mut dio = chain.dio(&session).await;
                dio.store(value.clone())?;
                dio.commit().await?;
                lat.push(t.elapsed());
            }
            Ok::<_, AteError>(lat)
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = began.elapsed().as_secs_f64();
    Ok((all.len() as f64 / elapsed, all))
}

/// Fills `chain` with `events` 1 KiB values, 1000 per transaction, through `registry` (the
/// server's own, as local writers of the server would, or one on its data folder while no
/// server runs).
pub async fn fill(
    registry: &ChainRegistry,
    chain: &str,
    events: usize,
    values: &[Blob],
) -> Res<u64> {
    let c = registry.open(&ChainKey::from(chain)).await?;
    let session = AteSession::default();
    let mut i = 0;
    while i < events {
        let mut dio = c.dio(&session).await;
        for _ in 0..1000.min(events - i) {
            dio.store(values[i % values.len()].clone())?;
            i += 1;
        }
        dio.commit().await?;
    }
    Ok(c.last_seq())
}

/// A sync's figures, in seconds.
struct SyncRun {
    events: usize,
    /// Open (download, verify, apply) into an in-memory replica.
    memory: f64,
    /// The same into a file replica (each batch appended and made durable).
    file: f64,
    /// The in-memory replica, still open, catching up with 1 % new events after its server
    /// restarted (reconnect, handshake, download, verify, apply).
    resume: f64,
    /// The file replica reopened after 1 % new events: its local replay, then the catch-up.
    reopen: f64,
}

/// One P8 round: a chain of `events` values on a server under `dir`, synced by an in-memory
/// replica and by a file replica under `replica_dir`; then 1 % new events while both are away
/// (the in-memory one connected to a server that stops and restarts, the file one closed).
async fn sync_round(
    dir: &Path,
    replica_dir: &Path,
    name: &str,
    events: usize,
    values: &[Blob],
) -> Res<SyncRun> {
    let (server, identity) = start_server(dir).await?;
    let addr = server.local_addr();
    let url = server.url(name);
    fill(server.registry(), name, events, values).await?;

    let mut o = options(&identity);
    // Reconnect at once when the server is back (the default backs off from 100 ms).
    o.reconnect_min = Some(Duration::from_millis(1));
    o.reconnect_max = Some(Duration::from_millis(2));
    let memory_registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let t = Instant::now();
    let live = memory_registry.open_url_with(&url, &o).await?;
    let memory = t.elapsed().as_secs_f64();
    assert_eq!(
        live.len(),
        events,
        "the in-memory replica holds every event"
    );

    let mut conf = AteConfig::at(replica_dir);
    conf.preallocate = false;
    let file_registry = ChainBuilder::new(&conf).await.build();
    let t = Instant::now();
    let file_replica = file_registry.open_url_with(&url, &o).await?;
    let file = t.elapsed().as_secs_f64();
    assert_eq!(
        file_replica.len(),
        events,
        "the file replica holds every event"
    );
    drop(file_replica);
    drop(file_registry);

    // 1 % new events while no server runs (the in-memory replica keeps trying to reconnect).
    server.shutdown().await;
    let extra = events / 100;
    let target = {
        let local = ChainBuilder::new(&AteConfig::at(dir)).await.build();
        fill(&local, name, extra, values).await?
    };
    let server = restart_server(dir, &identity, addr).await?;
    // The server's own open of the chain (a replay of its log) is not the client's resume.
    let held = server.registry().open(&ChainKey::from(name)).await?;
    let t = Instant::now();
    live.wait_for(target).await?;
    let resume = t.elapsed().as_secs_f64();
    assert_eq!(
        live.len(),
        events + extra,
        "the resume brought the new events"
    );

    let file_registry = ChainBuilder::new(&conf).await.build();
    let t = Instant::now();
    let file_replica = file_registry.open_url_with(&url, &o).await?;
    let reopen = t.elapsed().as_secs_f64();
    assert_eq!(
        file_replica.len(),
        events + extra,
        "the reopen brought the new events"
    );
    drop(file_replica);
    drop(live);
    drop(held);
    server.shutdown().await;
    Ok(SyncRun {
        events,
        memory,
        file,
        resume,
        reopen,
    })
}
/// Scenarios P7 (remote durable commits, 1 / 16 / 64 clients) and P8 (a client's sync of 1 KiB
/// events, and its resume after 1 % new events), ATE only; the JetStream rows of the same
/// work are the `network` part's.
pub fn scenario_remote(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &crate::Plan,
    rep: &mut crate::Report,
) -> Res<()> {
    use crate::util::{int, median, percentile_ms};
    let rounds = plan.rounds.min(3);
    let secs = if plan.quick { 1.0 } else { 3.0 };
    let sync_events = if plan.quick { 50_000 } else { 200_000 };
    println!(
        "\n[P7r/P8] remote chains over loopback WebSocket: an embedded atedb server (file-backed) and \
         clients each with its own registry and a full in-memory replica (every client applies \
         every commit: N clients do N× the work of one); commits are 1 KiB values, one per \
         transaction, closed loop for {secs} s (P7 itself, with commit-only clients beside \
         JetStream, is the network part's N1); sync downloads, verifies and applies \
         {sync_events} × 1 KiB events (1000 per transaction) into an in-memory replica and a file \
         replica, then resumes after 1 % new events"
    );
    let values = crate::data::values(1000, 1024, 7);
    let dir = tempfile::tempdir_in(base)?;
    for clients in [1usize, 16, 64] {
        let mut rates = Vec::new();
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for round in 0..rounds {
            let (rate, lat) = rt.block_on(async {
                let (server, identity) = start_server(dir.path()).await?;
                let r = remote_commits(
                    &server,
                    &identity,
                    &format!("p7-{clients}-{round}"),
                    clients,
                    secs,
                    &values[0],
                )
                .await;
                server.shutdown().await;
                r
            })?;
            println!(
                "  {clients} clients, round {}: {} commits/s, p50 {:.2} p99 {:.2} ms",
                round + 1,
                int(rate),
                percentile_ms(&lat, 0.5),
                percentile_ms(&lat, 0.99)
            );
            rates.push(rate);
            p50.push(percentile_ms(&lat, 0.5));
            p99.push(percentile_ms(&lat, 0.99));
        }
        let (rate, p50, p99) = (median(&rates), median(&p50), median(&p99));
        rep.metric(&format!("p7_{clients}_rate"), rate);
        rep.metric(&format!("p7_{clients}_p50_ms"), p50);
        rep.metric(&format!("p7_{clients}_p99_ms"), p99);
        rep.row(
            &format!(
                "7r. remote durable commits/s, {clients} clients with full replicas, p50 / p99 ms"
            ),
            format!("{} ({p50:.2} / {p99:.2})", int(rate)),
            "—".into(),
            "—".into(),
            "every client applies every commit; P7 is N1 (commit-only clients, beside JetStream)"
                .into(),
        );
    }
    // P8: sync from empty, then a resume after 1 % new events.
    let mut runs = Vec::new();
    for round in 0..rounds {
        let replica = tempfile::tempdir_in(base)?;
        let r = rt.block_on(sync_round(
            dir.path(),
            replica.path(),
            &format!("p8-{round}"),
            sync_events,
            &values,
        ))?;
        let n = r.events as f64;
        println!(
            "  sync round {}: {} events: in memory {:.2} s ({} events/s), to a file {:.2} s ({} events/s); \
             resume after 1 % new: {:.3} s ({:.1} % of the in-memory sync); file replica reopened: \
             {:.3} s ({:.1} % of the file sync)",
            round + 1,
            int(n),
            r.memory,
            int(n / r.memory),
            r.file,
            int(n / r.file),
            r.resume,
            100.0 * r.resume / r.memory,
            r.reopen,
            100.0 * r.reopen / r.file,
        );
        runs.push(r);
    }
    let m = |f: &dyn Fn(&SyncRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let rate = m(&|r| r.events as f64 / r.memory);
    let file_rate = m(&|r| r.events as f64 / r.file);
    let ratio = m(&|r| r.resume / r.memory);
    let reopen_ratio = m(&|r| r.reopen / r.file);
    // The file replica's bound: its bytes appended and made durable (about 1.1 KiB an event).
    let disk = crate::primitives::sequential_write_mb_s(base, 64)?;
    rep.metric("p8_unsigned_rate", rate);
    rep.metric("p8_file_rate", file_rate);
    rep.metric("p8_resume_ratio", ratio);
    rep.metric("p8_reopen_ratio", reopen_ratio);
    rep.metric("disk_seq_write_mb_s", disk);
    rep.row(
        "8. client sync events/s (download + verify + apply), unsigned, 1 KiB, in-memory replica",
        int(rate),
        "—".into(),
        "—".into(),
        format!(
            "resume after 1 % new (connected replica, server restarted): {:.1} % of a full sync's time",
            100.0 * ratio
        ),
    );
    rep.row(
        "8f. the same into a file replica",
        int(file_rate),
        "—".into(),
        "—".into(),
        format!(
            "disk: {disk:.0} MB/s sequential write + fdatasync (≈ {} events/s of 1.1 KiB); \
             reopen after 1 % new: {:.1} % of the file sync (local replay included)",
            int(disk * 1e6 / 1126.0),
            100.0 * reopen_ratio
        ),
    );
    rep.target(
        "P8 (unsigned)",
        rate >= 300_000.0,
        format!(
            "sync ≥ 300,000 events/s unsigned (in-memory replica): {}",
            int(rate)
        ),
    );
    rep.target(
        "P8 (resume)",
        ratio <= 0.02,
        format!(
            "resume after 1 % new ≤ 2 % of a full sync: {:.1} %",
            100.0 * ratio
        ),
    );
    Ok(())
}
