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
    let mut config = ServerConfig::new(identity.clone());
    config.listen = "127.0.0.1:0".parse()?;
    config.chains = AteConfig::at(dir);
    Ok((Server::start(config).await?, identity))
}

fn options(identity: &ServerIdentity) -> RemoteOptions {
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
    o
}

/// A client of `url` with its replica in memory (each client its own registry, as separate
/// programs would be).
pub async fn open_client(url: &str, identity: &ServerIdentity) -> Res<Chain> {
    Ok(ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(url, &options(identity))
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
        chains.push(open_client(&url, identity).await?);
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

/// Fills `chain` on the server with `events` 1 KiB values, 1000 per transaction, through the
/// server's own registry (as local writers of the server would).
pub async fn fill(server: &Server, chain: &str, events: usize, values: &[Blob]) -> Res<()> {
    let c = server.registry().open(&ChainKey::from(chain)).await?;
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
    Ok(())
}

/// A client opening `chain` with its replica under `replica_dir` (downloading, verifying and
/// applying what it lacks): seconds until open returned.
pub async fn sync_once(
    server: &Server,
    identity: &ServerIdentity,
    chain: &str,
    replica_dir: &Path,
) -> Res<(f64, usize)> {
    let mut conf = AteConfig::at(replica_dir);
    conf.preallocate = false;
    let registry = ChainBuilder::new(&conf).await.build();
    let t = Instant::now();
    let c = registry
        .open_url_with(&server.url(chain), &options(identity))
        .await?;
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, c.len()))
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
        "\n[P7/P8] remote chains over loopback WebSocket: an embedded atedb server (file-backed) and \
         clients each with its own registry; commits are 1 KiB values, one per transaction, closed \
         loop for {secs} s; sync downloads, verifies and applies {sync_events} × 1 KiB events (1000 \
         per transaction) into a file replica, then resumes after 1 % new events"
    );
    let values = crate::data::values(1000, 1024, 7);
    let dir = tempfile::tempdir_in(base)?;
    let mut p7 = Vec::new();
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
            &format!("7r. remote durable commits/s, {clients} clients, p50 / p99 ms"),
            format!("{} ({p50:.2} / {p99:.2})", int(rate)),
            "—".into(),
            "—".into(),
            "over loopback WebSocket; JetStream beside it in the network part".into(),
        );
        p7.push((clients, rate, p50));
    }
    if let Some((_, _, p50)) = p7.first() {
        rep.target(
            "P7 (latency)",
            *p50 <= 1.0,
            format!("remote durable commit p50 ≤ 1 ms at 1 client: {p50:.2} ms"),
        );
    }

    // P8: sync from empty, then a resume after 1 % new events.
    let mut full = Vec::new();
    let mut resume = Vec::new();
    for round in 0..rounds {
        let (f, r, n) = rt.block_on(async {
            let (server, identity) = start_server(dir.path()).await?;
            let name = format!("p8-{round}");
            fill(&server, &name, sync_events, &values).await?;
            let replica = tempfile::tempdir_in(base)?;
            let (f, n) = sync_once(&server, &identity, &name, replica.path()).await?;
            fill(&server, &name, sync_events / 100, &values).await?;
            let (r, m) = sync_once(&server, &identity, &name, replica.path()).await?;
            assert_eq!(
                m,
                n + sync_events / 100,
                "the resume brought the new events"
            );
            server.shutdown().await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((f, r, n))
        })?;
        println!(
            "  sync round {}: {} events in {:.2} s ({} events/s); resume after 1 %: {:.3} s ({:.1} % of the full sync)",
            round + 1,
            int(n as f64),
            f,
            int(n as f64 / f),
            r,
            100.0 * r / f
        );
        full.push(sync_events as f64 / f);
        resume.push(r / (sync_events as f64 / (sync_events as f64 / f)));
    }
    let rate = median(&full);
    let ratio = median(&resume);
    rep.metric("p8_unsigned_rate", rate);
    rep.metric("p8_resume_ratio", ratio);
    rep.row(
        "8. client sync events/s (download + verify + apply), unsigned, 1 KiB",
        int(rate),
        "—".into(),
        "—".into(),
        format!(
            "resume after 1 % new: {:.1} % of a full sync's time",
            100.0 * ratio
        ),
    );
    rep.target(
        "P8 (unsigned)",
        rate >= 300_000.0,
        format!("sync ≥ 300,000 events/s unsigned: {}", int(rate)),
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
