//! P12: `#[service]` round trips through a chain, the request and the reply both durable (the
//! chains are files), embedded and over loopback, beside NATS core request/reply (which keeps
//! nothing) when a NATS server is installed.
//!
//! The service echoes a number out of a 1 KiB request. Each caller calls in a closed loop,
//! awaiting each reply before the next request. A round trip is: the caller's commit of the
//! request (durable), the provider taking it from its queue (a claim), the handler, the
//! provider's commit of the reply with the request's removal (durable), and the reply reaching
//! the caller's view.
//!
//! Placements: embedded (one chain, provider and callers in this process); over loopback with
//! the provider in the server's process (on the server's own chain) or in a client of its own,
//! the callers each a client with its own registry and replica, as separate programs would be
//! (the server is embedded, as `atedb solo` runs it). Keys: *open* (a chain without root keys,
//! anonymous callers, plaintext requests and replies) or *sealed* (a signing caller; a provider
//! with a signing key and an NTRU read key, so requests are encrypted for it and replies for a
//! key each request carries).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ate::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nats::{self, NatsServer, SyncMode};
use crate::network::OpSample;
use crate::remote_scenario::{self, ClientKind};
use crate::util::{Res, int, median, percentile_ms};
use crate::{Plan, Report, Table};

/// The request: a number and 1 KiB of padding.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ping {
    n: u64,
    #[serde(with = "serde_bytes")]
    pad: Vec<u8>,
}
ate::stable_name!(Ping = "bench.Ping");

/// The benchmark's service.
#[ate::service]
pub trait Echo {
    /// The request's number.
    async fn ping(&self, ctx: &InvocationContext, request: Ping) -> Result<u64, String>;
}

struct Echoer;

impl Echo for Echoer {
    async fn ping(&self, _ctx: &InvocationContext, request: Ping) -> Result<u64, String> {
        Ok(request.n)
    }
}

/// Where the provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Provider and callers on one chain of this process.
    Embedded,
    /// The provider on the server's own chain; callers are clients.
    Server,
    /// The provider in a client of its own; callers are other clients.
    Client,
}

/// What the sessions hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    Open,
    Sealed,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    place: Place,
    keys: Keys,
    callers: usize,
}

impl Case {
    fn label(&self) -> String {
        let place = match self.place {
            Place::Embedded => "embedded",
            Place::Server => "remote, provider on the server",
            Place::Client => "remote, provider in a client",
        };
        let keys = match self.keys {
            Keys::Open => "open",
            Keys::Sealed => "signed + encrypted",
        };
        let plural = if self.callers == 1 { "" } else { "s" };
        format!("{place}, {keys}, {} caller{plural}", self.callers)
    }

    fn slug(&self) -> String {
        let place = match self.place {
            Place::Embedded => "embedded",
            Place::Server => "server",
            Place::Client => "client",
        };
        let keys = match self.keys {
            Keys::Open => "open",
            Keys::Sealed => "sealed",
        };
        format!("p12.{place}.{keys}.{}", self.callers)
    }
}

/// Round trips each caller makes: timed, and untimed before.
#[derive(Debug, Clone, Copy)]
struct Load {
    per_caller: usize,
    warmup: usize,
}

fn sessions(keys: Keys) -> (AteSession, AteSession) {
    match keys {
        Keys::Open => (AteSession::default(), AteSession::default()),
        Keys::Sealed => {
            let mut provider = AteSession::default();
            provider
                .add_write_key(&PrivateSignKey::generate(KeySize::Bit128))
                .add_private_read_key(&PrivateEncryptKey::generate(KeySize::Bit128));
            let mut caller = AteSession::default();
            caller.add_write_key(&PrivateSignKey::generate(KeySize::Bit128));
            (provider, caller)
        }
    }
}

/// Every caller on its chain calls `load` times in a closed loop, after its warm-up; the
/// clock starts when all are ready. With `floor`, each timed call is followed by a single
/// durable commit of a 1 KiB value on the same chain, timed apart (the round trip's floor,
/// measured under the same conditions: a round trip makes two such commits in a row).
async fn call(
    chains: Vec<Chain>,
    caller: AteSession,
    load: Load,
    floor: bool,
) -> Res<(OpSample, Vec<Duration>)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(chains.len() + 1));
    let pad = vec![0x5a; 1024];
    let mut tasks = Vec::with_capacity(chains.len());
    for chain in chains {
        let (barrier, pad, session) = (barrier.clone(), pad.clone(), caller.clone());
        tasks.push(tokio::spawn(async move {
            let client = EchoClient::new(&chain, &session).with_timeout(Duration::from_secs(20));
            let mut lat = Vec::with_capacity(load.per_caller);
            let mut commits = Vec::new();
            let value = crate::data::values(1, 1024, 12).remove(0);
            for i in 0..load.warmup + load.per_caller {
                if i == load.warmup {
                    barrier.wait().await;
                }
                let n = i as u64;
                let t = Instant::now();
                let echoed = client
                    .ping(Ping {
                        n,
                        pad: pad.clone(),
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                if echoed != n {
                    return Err(format!("echoed {echoed} for {n}").into());
                }
                if i >= load.warmup {
                    lat.push(t.elapsed());
                    if floor {
                        let t = Instant::now();
                        let mut dio = chain.dio(&session).await;
                        dio.store(value.clone())?;
                        dio.commit().await?;
                        commits.push(t.elapsed());
                    }
                }
            }
            if load.per_caller == 0 {
                barrier.wait().await;
            }
            Res::Ok((lat, commits))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut commits = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await? {
            Ok((l, c)) => {
                lat.extend(l);
                commits.extend(c);
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    // With the floor's commits in between, the wall time is not the round trips'.
    let secs = if floor {
        lat.iter().map(Duration::as_secs_f64).sum()
    } else {
        start.elapsed().as_secs_f64()
    };
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((
        OpSample {
            secs,
            ops: lat.len(),
            lat,
        },
        commits,
    ))
}

/// One run of `case` on fresh chains under `base`: the round trips, and with one caller the
/// floor's single commits.
async fn run(base: &Path, case: Case, load: Load) -> Res<(OpSample, Vec<Duration>)> {
    let floor = case.callers == 1;
    let dir = tempfile::tempdir_in(base)?;
    let (provider, caller) = sessions(case.keys);
    match case.place {
        Place::Embedded => {
            let registry = ChainBuilder::new(&AteConfig::at(dir.path())).await.build();
            let chain = registry.open(&ChainKey::from("p12")).await?;
            let serving = chain
                .add_service(&provider, EchoService::new(Echoer))
                .await?;
            let out = call(vec![chain; case.callers], caller, load, floor).await;
            drop(serving);
            out
        }
        Place::Server | Place::Client => {
            let (server, identity) = remote_scenario::start_server(dir.path()).await?;
            let url = server.url("p12");
            let provider_chain = match case.place {
                Place::Server => server.registry().open(&ChainKey::from("p12")).await?,
                _ => remote_scenario::open_client(&url, &identity, ClientKind::Replica).await?,
            };
            let serving = provider_chain
                .add_service(&provider, EchoService::new(Echoer))
                .await?;
            let mut chains = Vec::with_capacity(case.callers);
            for _ in 0..case.callers {
                let c = remote_scenario::open_client(&url, &identity, ClientKind::Replica).await?;
                c.sync().await?;
                chains.push(c);
            }
            let out = call(chains, caller, load, floor).await;
            drop(serving);
            drop(provider_chain);
            server.shutdown().await;
            out
        }
    }
}

/// NATS core request/reply: one responder connection answers every request with its first 8
/// bytes; each caller has its own connection. Nothing is stored.
async fn nats_request_reply(url: &str, callers: usize, load: Load) -> Res<OpSample> {
    use futures_util::StreamExt;
    let subject = format!("p12.echo.{}", rand::random::<u64>());
    let responder = async_nats::connect(url).await?;
    let mut requests = responder.subscribe(subject.clone()).await?;
    responder.flush().await?;
    let answering = tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply {
                let echoed = bytes::Bytes::copy_from_slice(&m.payload[..8.min(m.payload.len())]);
                if responder.publish(reply, echoed).await.is_err() {
                    break;
                }
            }
        }
    });
    let barrier = Arc::new(tokio::sync::Barrier::new(callers + 1));
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let client = async_nats::connect(url).await?;
        let (barrier, subject) = (barrier.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(load.per_caller);
            let mut payload = vec![0x5a; 1024 + 8];
            for i in 0..load.warmup + load.per_caller {
                if i == load.warmup {
                    barrier.wait().await;
                }
                payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let t = Instant::now();
                let reply = tokio::time::timeout(
                    Duration::from_secs(20),
                    client.request(subject.clone(), payload.clone().into()),
                )
                .await??;
                if reply.payload[..] != payload[..8] {
                    return Err("a reply to another request".into());
                }
                if i >= load.warmup {
                    lat.push(t.elapsed());
                }
            }
            if load.per_caller == 0 {
                barrier.wait().await;
            }
            Res::Ok(lat)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await? {
            Ok(l) => lat.extend(l),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    answering.abort();
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(OpSample {
        secs,
        ops: lat.len(),
        lat,
    })
}

/// The medians of a case's rounds.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
}

impl Figures {
    fn of(samples: &[OpSample]) -> Self {
        let m = |f: &dyn Fn(&OpSample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
        Figures {
            rate: m(&|s| s.rate()),
            p50: m(&|s| percentile_ms(&s.lat, 0.5)),
            p99: m(&|s| percentile_ms(&s.lat, 0.99)),
        }
    }

    fn cell(&self) -> String {
        format!("{} ({:.2} / {:.2})", int(self.rate), self.p50, self.p99)
    }
}

/// Scenario P12: service round trips, embedded and over loopback, beside NATS core
/// request/reply.
pub fn scenario_service(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let rounds = plan.rounds.min(3);
    let single = Load {
        per_caller: if plan.quick { 200 } else { 2000 },
        warmup: if plan.quick { 20 } else { 100 },
    };
    let many = Load {
        per_caller: if plan.quick { 25 } else { 200 },
        warmup: 5,
    };
    const MANY: usize = 16;
    println!(
        "\n[P12] #[service] round trips through a chain (request and reply both durable, file-backed \
         chains): a 1 KiB request echoing a number, closed loop; embedded, and over loopback \
         WebSocket with an embedded server; open (anonymous, plaintext) and signed + encrypted; \
         beside NATS core request/reply (nothing stored); {rounds} round(s)"
    );
    let cases = [
        Case {
            place: Place::Embedded,
            keys: Keys::Open,
            callers: 1,
        },
        Case {
            place: Place::Embedded,
            keys: Keys::Sealed,
            callers: 1,
        },
        Case {
            place: Place::Embedded,
            keys: Keys::Open,
            callers: MANY,
        },
        Case {
            place: Place::Server,
            keys: Keys::Open,
            callers: 1,
        },
        Case {
            place: Place::Client,
            keys: Keys::Open,
            callers: 1,
        },
        Case {
            place: Place::Client,
            keys: Keys::Sealed,
            callers: 1,
        },
        Case {
            place: Place::Client,
            keys: Keys::Open,
            callers: MANY,
        },
    ];
    let nats = match nats::find_server() {
        Ok(bin) => match NatsServer::start(&bin, base, SyncMode::Default) {
            Ok(s) => Some(s),
            Err(e) => {
                println!("  NATS core request/reply skipped: {e}");
                None
            }
        },
        Err(e) => {
            println!("  NATS core request/reply skipped: {e}");
            None
        }
    };
    let mut samples: Vec<Vec<OpSample>> = vec![Vec::new(); cases.len()];
    // Per case with one caller: the p50 of its single durable commits, per round.
    let mut floors: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut nats_samples: [Vec<OpSample>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // The order rotates from round to round.
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let case = cases[i];
            let load = if case.callers == 1 { single } else { many };
            let (s, commits) = rt.block_on(run(base, case, load))?;
            let floor = (!commits.is_empty()).then(|| percentile_ms(&commits, 0.5));
            println!(
                "  round {}: {}: {} round trips/s, p50 {:.2} p99 {:.2} ms{}",
                round + 1,
                case.label(),
                int(s.rate()),
                percentile_ms(&s.lat, 0.5),
                percentile_ms(&s.lat, 0.99),
                floor.map_or_else(String::new, |f| format!(
                    "; single durable commits between them p50 {f:.2} ms"
                ))
            );
            samples[i].push(s);
            floors[i].extend(floor);
        }
        if let Some(server) = &nats {
            for (j, (callers, load)) in [(1, single), (MANY, many)].into_iter().enumerate() {
                let s = rt.block_on(nats_request_reply(server.url(), callers, load))?;
                println!(
                    "  round {}: NATS core request/reply, {callers} caller(s): {} round trips/s, \
                     p50 {:.2} p99 {:.2} ms",
                    round + 1,
                    int(s.rate()),
                    percentile_ms(&s.lat, 0.5),
                    percentile_ms(&s.lat, 0.99)
                );
                nats_samples[j].push(s);
            }
        }
    }
    let nats_figures: Vec<Option<Figures>> = nats_samples
        .iter()
        .map(|s| (!s.is_empty()).then(|| Figures::of(s)))
        .collect();
    let mut table = Table {
        title: "Services (P12): round trips/s (p50 / p99 ms)".into(),
        head: vec![
            "scenario".into(),
            "ATE (durable)".into(),
            "NATS core request/reply (not stored)".into(),
            "note".into(),
        ],
        rows: Vec::new(),
    };
    let mut figures = Vec::with_capacity(cases.len());
    for (case, s) in cases.iter().zip(&samples) {
        let f = Figures::of(s);
        let slug = case.slug();
        rep.metric(&format!("{slug}.per_s"), f.rate);
        rep.metric(&format!("{slug}.p50_ms"), f.p50);
        rep.metric(&format!("{slug}.p99_ms"), f.p99);
        let peer = match (case.place, case.keys) {
            (Place::Embedded, _) => None,
            (_, Keys::Open) if case.callers == 1 => nats_figures[0],
            (_, Keys::Open) => nats_figures[1],
            _ => None,
        };
        // A round trip's floor: two single durable commits in a row.
        let measured = &floors[figures.len()];
        let floor = (!measured.is_empty()).then(|| 2.0 * median(measured));
        let mut note = Vec::new();
        if let Some(fl) = floor {
            rep.metric(&format!("{slug}.floor_ms"), fl);
            note.push(format!("floor (2 commits) {fl:.2} ms"));
        }
        if let Some(p) = peer {
            note.push(format!("ATE at {:.1}× NATS's p50", f.p50 / p.p50));
        }
        let note = note.join("; ");
        table.rows.push(vec![
            format!("P12. {}", case.label()),
            f.cell(),
            peer.map_or_else(|| "—".into(), |p| p.cell()),
            note,
        ]);
        figures.push(f);
    }
    for (j, f) in nats_figures.iter().enumerate() {
        if let Some(f) = f {
            let callers = if j == 0 { 1 } else { MANY };
            rep.metric(&format!("p12.nats_core.{callers}.per_s"), f.rate);
            rep.metric(&format!("p12.nats_core.{callers}.p50_ms"), f.p50);
        }
    }
    rep.tables.push(table);
    let (embedded, remote) = (figures[0], figures[4]);
    let floor = |i: usize| 2.0 * median(&floors[i]);
    let floor = [floor(0), floor(4)];
    rep.target(
        "P12 (embedded)",
        embedded.p50 <= 1.5,
        format!(
            "service round trip p50 ≤ 1.5 ms embedded (open, 1 caller, both commits durable): \
             {:.2} ms, {:.1}× its floor of two durable commits measured between them ({:.2} ms); \
             signed + encrypted {:.2} ms",
            embedded.p50,
            embedded.p50 / floor[0],
            floor[0],
            figures[1].p50
        ),
    );
    rep.target(
        "P12 (remote)",
        remote.p50 <= 3.0,
        format!(
            "service round trip p50 ≤ 3 ms over loopback (open, 1 caller, provider in another \
             client): {:.2} ms, {:.1}× its floor of two remote durable commits ({:.2} ms); \
             provider on the server {:.2} ms; signed + encrypted {:.2} ms",
            remote.p50,
            remote.p50 / floor[1],
            floor[1],
            figures[3].p50,
            figures[5].p50
        ),
    );
    rep.note(
        "P12: a round trip is two durable commits (the request, then the reply with the request's \
         removal) plus the provider's claim; over loopback each goes through the server, and the \
         reply reaches the caller's replica by the server's stream. NATS core request/reply \
         stores nothing: it is the transport's floor, not the same guarantee."
            .into(),
    );
    Ok(())
}
