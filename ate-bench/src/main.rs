//! `ate-bench`: ATE beside redb and SQLite on the same work, on this machine, in one run.
//!
//! ```text
//! cargo run --release -p ate-bench -- [--quick] [--records N] [--rounds R] [--dir D]
//!     [--json FILE] [--only primitives,commits,loads,replay,trust,derive,hostile,remote,bus,
//!     fanout,queue,service,compact,apps,network,nats] [--no-cold]
//! ```
//!
//! Every scenario runs each engine on the same data (MessagePack-encoded structs holding
//! pseudo-random bytes, random 128-bit keys) in fresh temporary folders on the same disk, in
//! rounds whose engine order rotates; it prints the median of the rounds and, for ratios, the
//! median of the per-round ratios, so a noisy neighbour hits every engine alike. The targets are
//! those of `docs/PERFORMANCE.md` (P1..P6, P9).
//!
//! The chain-of-trust scenarios (1s–4s, 9) run ATE's unsigned chain beside two signed,
//! encrypted setups in rotating rounds (see `trust.rs`), and time the crypto primitives in each
//! round to give the pipeline efficiency (see `pipeline.rs` for what its sums count). The
//! derive scenarios (D1–D3) compare generated finders with loads by key, and the same struct
//! with and without an index (see `models.rs`).
//!
//! Scenario 13 compacts a log holding ten versions of every key, beside a plain copy of its
//! file, and opens it before and after (see `compact_scenario.rs`).
//!
//! Scenario A runs the bank and coin applications of `ate_examples` (transfers/s, embedded and
//! over loopback) beside the same transfers as SQLite transactions (see `apps_scenario.rs`).
//!
//! The network part (N1–N3) runs remote durable commits, fan-out and a work queue over loopback
//! beside NATS JetStream, which the benchmark starts and stops itself when a server is installed
//! (see `network.rs` and `nats.rs`); without one it says so and skips those rows.

mod apps_scenario;
mod bus_scenario;
mod compact_scenario;
mod data;
mod derive_scenario;
mod engines;
mod hostile_scenario;
mod models;
mod nats;
mod network;
mod pipeline;
mod primitives;
mod remote_scenario;
mod replay;
mod service_scenario;
mod trust;
mod trust_scenario;
mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use data::Blob;
use engines::{Engine, Sample, Work};
use util::{Res, int, median, percentile_ms};

/// Prints ATE's throughput and latency beside redb and SQLite on the same work.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Smaller sizes and fewer rounds (well under a minute).
    #[arg(long)]
    quick: bool,
    /// Records in the log that is replayed and measured for memory (default 1,000,000;
    /// 100,000 with --quick).
    #[arg(long)]
    records: Option<usize>,
    /// Rounds of each scenario; medians are reported (default 5; 3 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Folder for the temporary stores (default: the system temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write every figure to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip the replay from a cold page cache.
    #[arg(long)]
    no_cold: bool,
    /// Internal: open the chain in this folder, print the RSS growth, exit (the memory probe).
    #[arg(long, hide = true)]
    measure_open: Option<PathBuf>,
    /// Internal: the chain the memory probe opens.
    #[arg(long, hide = true, default_value = "replay")]
    measure_name: String,
    /// Run only these scenarios (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
}

/// The scenarios, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// 7: SHA3, MessagePack, fdatasync floors.
    Primitives,
    /// 1, 2, 3: durable commits.
    Commits,
    /// 4: loads from warm stores.
    Loads,
    /// 5, 6: open/replay and view memory.
    Replay,
    /// 1s, 2s, 3s, 4s, 9: signed, encrypted chains and the pipeline efficiency.
    Trust,
    /// D1, D2, D3: derived models, finders and the cost of an index.
    Derive,
    /// R12: a huge foreign transaction among small commits.
    Hostile,
    /// P7, P8: remote commits and sync over loopback WebSocket.
    Remote,
    /// P10, P11 embedded: a bus and a queue on a local chain.
    Bus,
    /// P10 alone: the bus embedded, and N2 (fan-out over loopback beside NATS).
    Fanout,
    /// P11 alone: the queue embedded, and N3 (a work queue over loopback beside NATS
    /// JetStream).
    Queue,
    /// N1, N2, N3: remote commits, fan-out and a work queue over loopback, beside NATS
    /// JetStream.
    Network,
    /// N1, N2, N3 on the NATS JetStream peer alone.
    Nats,
    /// P12: `#[service]` round trips, embedded and over loopback, beside NATS core
    /// request/reply.
    Service,
    /// P13: compaction of a log of 10 versions per key, beside a plain copy of its file.
    Compact,
    /// A1–A3: the bank and coin apps' transfers, embedded and over loopback, beside the same
    /// transfers as SQLite transactions.
    Apps,
}

/// How much work each scenario does.
#[derive(Debug)]
struct Plan {
    quick: bool,
    rounds: usize,
    /// Scenario 1: timed single-value commits per round.
    single: usize,
    /// Untimed single-value commits before each timed run.
    warmup: usize,
    /// Scenario 2: committers, and commits per committer per round.
    committers: usize,
    per_committer: usize,
    /// Scenario 3: transactions of 1000 values per round.
    batches: usize,
    /// Scenario 4: records per store, and random loads per round.
    load_records: usize,
    loads: usize,
    /// Scenarios 5 and 6: records in the replayed logs.
    records: usize,
    /// Scenario 7: iterations.
    fsyncs: usize,
    hashes: usize,
    cold: bool,
    /// Scenario 1s: timed signed single-value commits per setup and round.
    trust_single: usize,
    /// Scenario 4s: values in each replayed signed log.
    trust_records: usize,
    /// Scenario 9: iterations of each primitive per round.
    iters: pipeline::Iters,
    /// Scenario D1: records of each indexed model, and lookups per round.
    derive_records: usize,
    derive_lookups: usize,
    /// Scenarios D2, D3: single commits, and transactions of 1000 values, per round.
    derive_single: usize,
    derive_batches: usize,
    /// Scenario 13: events in the compacted log (10 versions per key).
    compact_events: usize,
}

impl Plan {
    fn new(a: &Args) -> Self {
        let q = a.quick;
        Plan {
            quick: q,
            rounds: a.rounds.unwrap_or(if q { 3 } else { 5 }).max(1),
            single: if q { 500 } else { 5000 },
            warmup: if q { 50 } else { 200 },
            committers: 16,
            per_committer: if q { 100 } else { 1000 },
            batches: if q { 20 } else { 100 },
            load_records: if q { 20_000 } else { 100_000 },
            loads: if q { 200_000 } else { 1_000_000 },
            records: a
                .records
                .unwrap_or(if q { 100_000 } else { 1_000_000 })
                .max(1),
            fsyncs: if q { 300 } else { 2000 },
            hashes: if q { 20_000 } else { 100_000 },
            cold: !a.no_cold,
            trust_single: if q { 500 } else { 3000 },
            trust_records: if q { 50_000 } else { 300_000 },
            iters: pipeline::Iters {
                fast: if q { 2000 } else { 10_000 },
                sign: if q { 30 } else { 100 },
                kem: if q { 100 } else { 300 },
                fsync: if q { 100 } else { 300 },
            },
            derive_records: if q { 20_000 } else { 100_000 },
            derive_lookups: if q { 200_000 } else { 1_000_000 },
            derive_single: if q { 500 } else { 3000 },
            derive_batches: if q { 10 } else { 50 },
            compact_events: if q { 100_000 } else { 1_000_000 },
        }
    }
}

/// One line of the final table.
#[derive(Debug, Serialize)]
struct Row {
    scenario: String,
    ate: String,
    redb: String,
    sqlite: String,
    ratio: String,
}

/// A table of its own, for rows whose peers are not redb and SQLite.
#[derive(Debug, Serialize)]
struct Table {
    title: String,
    /// The headings: the scenario, one per column, and the ratio or note.
    head: Vec<String>,
    /// Cells in the order of `head`.
    rows: Vec<Vec<String>>,
}

/// Everything printed, and the raw figures behind it.
#[derive(Debug, Default, Serialize)]
struct Report {
    machine: String,
    mode: String,
    rows: Vec<Row>,
    /// Tables printed after the main one.
    tables: Vec<Table>,
    targets: Vec<String>,
    /// What the less obvious figures count.
    notes: Vec<String>,
    metrics: BTreeMap<String, f64>,
}

impl Report {
    fn row(&mut self, scenario: &str, ate: String, redb: String, sqlite: String, ratio: String) {
        self.rows.push(Row {
            scenario: scenario.to_string(),
            ate,
            redb,
            sqlite,
            ratio,
        });
    }

    fn metric(&mut self, name: &str, v: f64) {
        self.metrics.insert(name.to_string(), v);
    }

    fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    fn target(&mut self, id: &str, met: bool, text: String) {
        let verdict = if met { "met" } else { "NOT met" };
        self.targets.push(format!("{id} {verdict}: {text}"));
    }

    fn print_table(&self) {
        let head = ["scenario", "ATE", "redb", "SQLite", "ratio"].map(String::from);
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.scenario.clone(),
                    r.ate.clone(),
                    r.redb.clone(),
                    r.sqlite.clone(),
                    r.ratio.clone(),
                ]
            })
            .collect();
        let mut first = true;
        if !cells.is_empty() {
            print_grid(&head, &cells);
            first = false;
        }
        for t in &self.tables {
            if !first {
                println!();
            }
            first = false;
            println!("{}:", t.title);
            println!();
            print_grid(&t.head, &t.rows);
        }
    }
}

/// A Markdown table: the first and last columns (scenario, ratio) left-aligned, the figures
/// right-aligned.
fn print_grid(head: &[String], rows: &[Vec<String>]) {
    let n = head.len();
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let left = |i: usize| i == 0 || i + 1 == n;
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, w) in width.iter().enumerate() {
            let v = cells.get(i).map_or("", String::as_str);
            let pad = " ".repeat(w - v.chars().count());
            s += &if left(i) {
                format!(" {v}{pad} |")
            } else {
                format!(" {pad}{v} |")
            };
        }
        s
    };
    println!("{}", line(head));
    let mut sep = String::from("|");
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        sep += &if left(i) {
            format!(" {dashes} |")
        } else {
            format!(" {}: |", &dashes[1..])
        };
    }
    println!("{sep}");
    for r in rows {
        println!("{}", line(r));
    }
}

/// Per-engine figures of one scenario over the rounds (indexed like [`Engine::ALL`]).
#[derive(Debug, Default)]
struct PerEngine {
    rate: [Vec<f64>; 3],
    p50: [Vec<f64>; 3],
    p99: [Vec<f64>; 3],
    max: [Vec<f64>; 3],
    /// Rounds' rates of the commit floor (overwrite 4 KiB + fdatasync), when measured.
    floor: Vec<f64>,
}

impl PerEngine {
    fn rate(&self, e: usize) -> f64 {
        median(&self.rate[e])
    }
    fn p50(&self, e: usize) -> f64 {
        median(&self.p50[e])
    }
    fn p99(&self, e: usize) -> f64 {
        median(&self.p99[e])
    }
    fn max(&self, e: usize) -> f64 {
        median(&self.max[e])
    }
    /// `p50 / p99 / max` of engine `e`, in milliseconds.
    fn lat(&self, e: usize) -> String {
        format!(
            "{:.2} / {:.2} / {:.1}",
            self.p50(e),
            self.p99(e),
            self.max(e)
        )
    }
    /// Median over rounds of ATE's rate divided by engine `e`'s in the same round.
    fn ratio(&self, e: usize) -> f64 {
        let r: Vec<f64> = self.rate[0]
            .iter()
            .zip(&self.rate[e])
            .map(|(a, b)| a / b)
            .collect();
        median(&r)
    }
    /// Median over rounds of variant `a`'s rate divided by variant `b`'s in the same round (for
    /// scenarios whose three columns are variants of ATE).
    fn ratio_of(&self, a: usize, b: usize) -> f64 {
        let r: Vec<f64> = self.rate[a]
            .iter()
            .zip(&self.rate[b])
            .map(|(x, y)| x / y)
            .collect();
        median(&r)
    }
    /// Median over rounds of ATE's rate divided by the floor's in the same round.
    fn floor_ratio(&self) -> f64 {
        let r: Vec<f64> = self.rate[0]
            .iter()
            .zip(&self.floor)
            .map(|(a, b)| a / b)
            .collect();
        median(&r)
    }
    fn ratios(&self) -> String {
        format!(
            "ATE/redb {:.2}x · ATE/SQLite {:.2}x",
            self.ratio(1),
            self.ratio(2)
        )
    }
}

fn idx(e: Engine) -> usize {
    Engine::ALL.iter().position(|x| *x == e).expect("listed")
}

/// Runs a commit workload on every engine for `plan.rounds` rounds, rotating the order; with
/// `floor`, each round also times as many overwrite-4-KiB-and-fdatasync operations.
fn commit_rounds(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    vals: &Arc<Vec<Blob>>,
    w: Work,
    per_value: bool,
    floor: bool,
) -> Res<PerEngine> {
    let mut out = PerEngine::default();
    for r in 0..plan.rounds {
        let mut line = format!("  round {}:", r + 1);
        for k in 0..3 {
            let e = Engine::ALL[(r + k) % 3];
            let dir = tempfile::tempdir_in(base)?;
            let s: Sample = e.commits(rt, dir.path(), vals, w)?;
            drop(dir);
            let rate = if per_value {
                s.value_rate()
            } else {
                s.tx_rate()
            };
            let (p50, p99) = (percentile_ms(&s.lat, 0.5), percentile_ms(&s.lat, 0.99));
            let max = percentile_ms(&s.lat, 1.0);
            let i = idx(e);
            out.rate[i].push(rate);
            out.p50[i].push(p50);
            out.p99[i].push(p99);
            out.max[i].push(max);
            line += &format!(
                "  {} {}/s (p50 {p50:.2} p99 {p99:.2} max {max:.1} ms)",
                e.name(),
                int(rate)
            );
        }
        if floor {
            let dir = tempfile::tempdir_in(base)?;
            let rate = primitives::rate(&primitives::overwrite_fsync(dir.path(), w.txs)?);
            out.floor.push(rate);
            line += &format!("  floor {}/s", int(rate));
        }
        println!("{line}");
    }
    Ok(out)
}

fn main() -> Res<()> {
    let args = Args::parse();
    let plan = Plan::new(&args);
    if let Some(dir) = &args.measure_open {
        return replay::measure_open(dir, &args.measure_name, plan.records);
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rep = Report {
        machine: util::machine_line(&base),
        mode: if plan.quick { "quick" } else { "default" }.into(),
        ..Report::default()
    };
    println!("ate-bench ({} run) · {}", rep.mode, rep.machine);
    println!(
        "values: MessagePack of a struct with one serde_bytes field of pseudo-random bytes; \
         random 128-bit keys; medians of {} rounds, engine order rotating",
        plan.rounds
    );
    let started = std::time::Instant::now();

    let run = |p: Part| args.only.is_empty() || args.only.contains(&p);

    // 7 at the start and the end (its rows go last): the primitives the other figures are read
    // against.
    let mut prims = Primitives::default();
    if run(Part::Primitives) {
        prims.sample(&base, &plan, "start of the run")?;
    }
    if run(Part::Commits) {
        scenario_commits(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Loads) {
        scenario_loads(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Replay) {
        scenario_replay(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Trust) {
        trust_scenario::scenario_trust(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Derive) {
        derive_scenario::scenario_derive(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Remote) {
        remote_scenario::scenario_remote(&rt, &base, &plan, &mut rep)?;
    }
    let (fanout, queue) = (
        run(Part::Bus) || run(Part::Fanout),
        run(Part::Bus) || run(Part::Queue),
    );
    if fanout || queue {
        bus_scenario::scenario_bus(&rt, &base, &plan, &mut rep, fanout, queue)?;
    }
    if run(Part::Hostile) {
        hostile_scenario::scenario_hostile(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Service) {
        service_scenario::scenario_service(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Compact) {
        compact_scenario::scenario_compact(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Apps) {
        apps_scenario::scenario_apps(&rt, &base, &plan, &mut rep)?;
    }
    if run(Part::Network) {
        network::scenario_network(&rt, &base, &plan, &mut rep, true, network::NetRows::ALL)?;
    } else if args.only.contains(&Part::Nats) {
        network::scenario_network(&rt, &base, &plan, &mut rep, false, network::NetRows::ALL)?;
    } else if args.only.contains(&Part::Fanout) || args.only.contains(&Part::Queue) {
        let rows = network::NetRows {
            commits: false,
            fanout: args.only.contains(&Part::Fanout),
            queue: args.only.contains(&Part::Queue),
        };
        network::scenario_network(&rt, &base, &plan, &mut rep, true, rows)?;
    }

    if run(Part::Primitives) {
        prims.sample(&base, &plan, "end of the run")?;
        prims.report(&mut rep);
    }
    rep.targets.sort();

    println!();
    println!("## Results ({} run, {})", rep.mode, util::utc_date());
    println!();
    rep.print_table();
    if !rep.targets.is_empty() {
        println!();
        println!(
            "Targets (docs/PERFORMANCE.md; P1–P6 on the unsigned Quick Start chain, the ones marked \
             s, encrypted or full verify on signed, encrypted chains):"
        );
        for t in &rep.targets {
            println!("- {t}");
        }
    }
    if !rep.notes.is_empty() {
        println!();
        println!("Notes:");
        for n in &rep.notes {
            println!("- {n}");
        }
    }
    println!();
    println!("Machine: {}", rep.machine);
    println!("Total time {:.0} s.", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rep)?)?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

/// Scenario 7's samples: SHA3, MessagePack, and the two fdatasync floors, taken at the start
/// and again at the end of the run (a burst of a neighbour's I/O then moves one sample, not the
/// median).
#[derive(Debug, Default)]
struct Primitives {
    sha_us: Vec<f64>,
    sha_batch_us: Vec<f64>,
    rmp_us: Vec<f64>,
    append_p50: Vec<f64>,
    append_rate: Vec<f64>,
    over_p50: Vec<f64>,
    over_rate: Vec<f64>,
}

impl Primitives {
    /// Takes three samples of each primitive.
    fn sample(&mut self, base: &Path, plan: &Plan, when: &str) -> Res<()> {
        println!("\n[7] primitives ({when})");
        let n = (plan.fsyncs / 3).max(10);
        for r in 0..3 {
            let sha = primitives::sha3_1k_us(plan.hashes / 3);
            let sha_batch = primitives::sha3_1k_batched_us(plan.hashes / 3);
            let rmp = primitives::rmp_roundtrip_us(1024, plan.hashes / 3);
            let dir = tempfile::tempdir_in(base)?;
            let append = primitives::append_fsync(dir.path(), n)?;
            let over = primitives::overwrite_fsync(dir.path(), n)?;
            drop(dir);
            let (a50, o50) = (percentile_ms(&append, 0.5), percentile_ms(&over, 0.5));
            let (a_rate, o_rate) = (primitives::rate(&append), primitives::rate(&over));
            println!(
                "  sample {}: SHA3-256 1 KiB {sha:.2} us ({sha_batch:.2} us batched) · rmp enc+dec {rmp:.2} us · append 4 KiB \
                 + fdatasync p50 {:.0} us ({}/s) · overwrite preallocated 4 KiB + fdatasync p50 \
                 {:.0} us ({}/s)",
                r + 1,
                a50 * 1e3,
                int(a_rate),
                o50 * 1e3,
                int(o_rate)
            );
            self.sha_us.push(sha);
            self.sha_batch_us.push(sha_batch);
            self.rmp_us.push(rmp);
            self.append_p50.push(a50);
            self.append_rate.push(a_rate);
            self.over_p50.push(o50);
            self.over_rate.push(o_rate);
        }
        Ok(())
    }

    /// The table rows (medians of every sample).
    fn report(&self, rep: &mut Report) {
        let dash = || "—".to_string();
        let sha = median(&self.sha_us);
        let sha_batch = median(&self.sha_batch_us);
        let rmp = median(&self.rmp_us);
        let (a50, a_rate) = (median(&self.append_p50), median(&self.append_rate));
        let (o50, o_rate) = (median(&self.over_p50), median(&self.over_rate));
        rep.row(
            "7. SHA3-256 of 1 KiB",
            format!("{sha:.2} us ({:.0} MB/s)", 1024.0 / sha),
            dash(),
            dash(),
            "primitive".into(),
        );
        rep.row(
            "7. SHA3-256 of 1 KiB, 64 messages at a time",
            format!("{sha_batch:.2} us ({:.0} MB/s)", 1024.0 / sha_batch),
            dash(),
            dash(),
            format!(
                "primitive: {:.1}x one at a time (the engine hashes a transaction's events so)",
                sha / sha_batch
            ),
        );
        rep.row(
            "7. rmp encode+decode, 1 KiB struct",
            format!("{rmp:.2} us"),
            dash(),
            dash(),
            "primitive".into(),
        );
        rep.row(
            "7. append 4 KiB + fdatasync",
            format!("p50 {:.0} us · {}/s", a50 * 1e3, int(a_rate)),
            dash(),
            dash(),
            "primitive".into(),
        );
        rep.row(
            "7. overwrite preallocated 4 KiB + fdatasync",
            format!("p50 {:.0} us · {}/s", o50 * 1e3, int(o_rate)),
            dash(),
            dash(),
            "floor of a durable commit (also timed in each round of 1.)".into(),
        );
        rep.metric("prim.sha3_1k_us", sha);
        rep.metric("prim.sha3_1k_batched_us", sha_batch);
        rep.metric("prim.rmp_1k_us", rmp);
        rep.metric("prim.append_fsync_p50_ms", a50);
        rep.metric("prim.append_fsync_per_s", a_rate);
        rep.metric("prim.overwrite_fsync_p50_ms", o50);
        rep.metric("prim.overwrite_fsync_per_s", o_rate);
    }
}

/// Scenarios 1, 2 and 3: durable commits.
fn scenario_commits(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let vals = Arc::new(data::values(4096, 1024, 1));

    println!(
        "\n[1] durable commits, one 1 KiB value per transaction, one committer ({} commits)",
        plan.single
    );
    let one = Work {
        committers: 1,
        txs: plan.single,
        per_tx: 1,
        warmup: plan.warmup,
        ascending: false,
    };
    let s1 = commit_rounds(rt, base, plan, &vals, one, false, true)?;
    rep.row(
        "1. durable commits/s, 1 × 1 KiB per tx, 1 committer",
        int(s1.rate(0)),
        int(s1.rate(1)),
        int(s1.rate(2)),
        s1.ratios(),
    );
    rep.row(
        "1. commit latency p50 / p99 / max (ms)",
        s1.lat(0),
        s1.lat(1),
        s1.lat(2),
        format!(
            "ATE at {:.2}x of the floor (overwrite 4 KiB + fdatasync: {}/s)",
            s1.floor_ratio(),
            int(median(&s1.floor))
        ),
    );
    for (i, e) in Engine::ALL.iter().enumerate() {
        rep.metric(&format!("s1.{}.commits_per_s", e.name()), s1.rate(i));
        rep.metric(&format!("s1.{}.p50_ms", e.name()), s1.p50(i));
        rep.metric(&format!("s1.{}.p99_ms", e.name()), s1.p99(i));
    }
    rep.metric("s1.floor.ops_per_s", median(&s1.floor));
    rep.metric("s1.ATE.floor_ratio", s1.floor_ratio());
    let p1 = s1.ratio(1) >= 1.0 && s1.ratio(2) >= 1.0;
    rep.target(
        "P1",
        p1,
        format!(
            "single commits ≥ redb and ≥ SQLite: {}/s = {} of redb, {} of SQLite",
            int(s1.rate(0)),
            format_args!("{:.2}x", s1.ratio(1)),
            format_args!("{:.2}x", s1.ratio(2)),
        ),
    );

    println!(
        "\n[2] durable commits, one 1 KiB value per transaction, {} concurrent committers \
         ({} commits each)",
        plan.committers, plan.per_committer
    );
    let many = Work {
        committers: plan.committers,
        txs: plan.per_committer,
        per_tx: 1,
        warmup: plan.warmup,
        ascending: false,
    };
    let s2 = commit_rounds(rt, base, plan, &vals, many, false, false)?;
    rep.row(
        "2. durable commits/s, 16 committers (peers: 16 threads)",
        int(s2.rate(0)),
        format!("{} (1 writer)", int(s2.rate(1))),
        format!("{} (1 conn)", int(s2.rate(2))),
        s2.ratios(),
    );
    rep.row(
        "2. commit latency p50 / p99 / max (ms), 16 committers",
        s2.lat(0),
        s2.lat(1),
        s2.lat(2),
        "target P2: ≥ 4,000/s, p99 ≤ 5 ms".into(),
    );
    for (i, e) in Engine::ALL.iter().enumerate() {
        rep.metric(&format!("s2.{}.commits_per_s", e.name()), s2.rate(i));
        rep.metric(&format!("s2.{}.p50_ms", e.name()), s2.p50(i));
        rep.metric(&format!("s2.{}.p99_ms", e.name()), s2.p99(i));
        rep.metric(&format!("s2.{}.max_ms", e.name()), s2.max(i));
    }
    rep.target(
        "P2",
        s2.rate(0) >= 4000.0 && s2.p99(0) <= 5.0,
        format!(
            "16 committers ≥ 4,000/s with p99 ≤ 5 ms: {}/s, p99 {:.2} ms",
            int(s2.rate(0)),
            s2.p99(0)
        ),
    );

    println!(
        "\n[3] durable values, 1000 × 1 KiB per transaction, one committer ({} transactions)",
        plan.batches
    );
    let batch = Work {
        committers: 1,
        txs: plan.batches,
        per_tx: 1000,
        warmup: 10,
        ascending: false,
    };
    let s3 = commit_rounds(rt, base, plan, &vals, batch, true, false)?;
    rep.row(
        "3. durable values/s, 1000 × 1 KiB per tx",
        int(s3.rate(0)),
        int(s3.rate(1)),
        int(s3.rate(2)),
        s3.ratios(),
    );
    for (i, e) in Engine::ALL.iter().enumerate() {
        rep.metric(&format!("s3.{}.values_per_s", e.name()), s3.rate(i));
    }

    println!(
        "\n[3b] the same with ascending keys for the peers (their best case; ATE's keys are \
         always random)"
    );
    let s3b = commit_rounds(
        rt,
        base,
        plan,
        &vals,
        Work {
            ascending: true,
            ..batch
        },
        true,
        false,
    )?;
    rep.row(
        "3. the same, peers inserting ascending keys",
        int(s3b.rate(0)),
        int(s3b.rate(1)),
        int(s3b.rate(2)),
        s3b.ratios(),
    );
    for (i, e) in Engine::ALL.iter().enumerate() {
        rep.metric(&format!("s3b.{}.values_per_s", e.name()), s3b.rate(i));
    }
    rep.target(
        "P3",
        s3.rate(0) >= 150_000.0,
        format!(
            "(unencrypted here) ≥ 150,000 values/s at 1000 per tx: {}/s",
            int(s3.rate(0))
        ),
    );
    Ok(())
}

/// Scenario 4: point loads by random key from warm stores, for two value sizes.
fn scenario_loads(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    for size in [100usize, 1024] {
        let label = if size == 1024 { "1 KiB" } else { "100 B" };
        println!(
            "\n[4] loads by random key, {label} values: {} records per store, {} loads per round",
            int(plan.load_records as f64),
            int(plan.loads as f64)
        );
        let vals = data::values(4096, size, 30 + size as u64);
        let n = plan.load_records;
        let (ate_dir, redb_dir, sql_dir) = (
            tempfile::tempdir_in(base)?,
            tempfile::tempdir_in(base)?,
            tempfile::tempdir_in(base)?,
        );
        let chain = rt.block_on(engines::ate_open(ate_dir.path(), "loads"))?;
        let ate_keys = rt.block_on(engines::ate_populate(&chain, &vals, n, 1000))?;
        let db = engines::redb_open(redb_dir.path())?;
        let redb_keys = engines::redb_populate(&db, &vals, n, 1000)?;
        let mut conn = engines::sqlite_open(sql_dir.path())?;
        // Warm caches: SQLite's page cache sized to hold the whole table (redb's default cache
        // of 1 GiB already does; ATE's view holds everything).
        let cache_kib = (n * (size + 200) * 2 / 1024).max(2000) as i64;
        conn.pragma_update(None, "cache_size", -cache_kib)?;
        let sql_keys = engines::sqlite_populate(&mut conn, &vals, n, 1000)?;

        let warm: Vec<u32> = (0..n as u32).collect();
        rt.block_on(engines::ate_loads(&chain, &ate_keys, &warm))?;
        engines::redb_loads(&db, &redb_keys, &warm)?;
        engines::sqlite_loads(&conn, &sql_keys, &warm)?;

        let mut rng = SmallRng::seed_from_u64(40 + size as u64);
        let order: Vec<u32> = (0..plan.loads)
            .map(|_| rng.random_range(0..n as u32))
            .collect();
        let mut out = PerEngine::default();
        for r in 0..plan.rounds {
            let mut line = format!("  round {}:", r + 1);
            for k in 0..3 {
                let e = Engine::ALL[(r + k) % 3];
                let secs = match e {
                    Engine::Ate => rt.block_on(engines::ate_loads(&chain, &ate_keys, &order))?,
                    Engine::Redb => engines::redb_loads(&db, &redb_keys, &order)?,
                    Engine::Sqlite => engines::sqlite_loads(&conn, &sql_keys, &order)?,
                };
                let rate = order.len() as f64 / secs;
                out.rate[idx(e)].push(rate);
                line += &format!("  {} {}/s", e.name(), int(rate));
            }
            println!("{line}");
        }
        rep.row(
            &format!("4. loads/s, {label} values, random keys, warm (decode incl.)"),
            int(out.rate(0)),
            int(out.rate(1)),
            int(out.rate(2)),
            out.ratios(),
        );
        for (i, e) in Engine::ALL.iter().enumerate() {
            rep.metric(&format!("s4.{size}.{}.loads_per_s", e.name()), out.rate(i));
        }
        if size == 100 {
            rep.target(
                "P5",
                out.rate(0) >= 1_000_000.0,
                format!(
                    "≥ 1,000,000 loads/s per core for 100 B values: {}/s (one task)",
                    int(out.rate(0))
                ),
            );
        }
        drop((chain, db, conn));
    }
    Ok(())
}

/// Scenarios 5 and 6: open/replay speed and view memory, for 1 KiB and 100 B values.
fn scenario_replay(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let n = plan.records;
    let dash = || "—".to_string();
    let mut p4_rate = f64::NAN;
    let mut p6_worst = 0f64;
    let mut mem_rows = Vec::new();
    for size in [1024usize, 100] {
        let label = if size == 1024 { "1 KiB" } else { "100 B" };
        let dir = tempfile::tempdir_in(base)?;
        let vals = data::values(8192, size, 50 + size as u64);
        println!(
            "\n[5/6] open/replay and view memory: {} records of {label} (written 1000 per tx)",
            int(n as f64)
        );
        let (path, build) = rt.block_on(replay::build_log(dir.path(), "replay", &vals, n, 1000))?;
        drop(vals);
        let file_bytes = std::fs::metadata(&path)?.len();
        println!(
            "  log written: {:.1} MB in {build:.1} s ({} values/s)",
            file_bytes as f64 / 1e6,
            int(n as f64 / build)
        );
        let mut raw = Vec::new();
        let mut open = Vec::new();
        let mut mem = Vec::new();
        for r in 0..plan.rounds.min(3) {
            let first_raw = r % 2 == 0;
            if first_raw {
                raw.push(replay::raw_read(&path)?);
            }
            let secs = rt.block_on(replay::reopen(dir.path(), "replay", &path, n))?;
            if !first_raw {
                raw.push(replay::raw_read(&path)?);
            }
            let rss_delta = replay::memory_in_child(dir.path(), "replay", &path, n)?;
            let per_rec = (rss_delta - file_bytes as i64) as f64 / n as f64;
            println!(
                "  round {}: fs::read {:.3} s ({:.2} GB/s) · ATE open {secs:.3} s ({} values/s) · \
                 RSS +{:.1} MB = log {:.1} MB + {per_rec:.1} B/record",
                r + 1,
                raw[r],
                file_bytes as f64 / raw[r] / 1e9,
                int(n as f64 / secs),
                rss_delta as f64 / 1e6,
                file_bytes as f64 / 1e6,
            );
            open.push(secs);
            mem.push(per_rec);
        }
        let ratios: Vec<f64> = raw.iter().zip(&open).map(|(r, o)| r / o).collect();
        let (raw_s, open_s, per_rec) = (median(&raw), median(&open), median(&mem));
        let scale = if n == 1_000_000 {
            "1M".to_string()
        } else {
            int(n as f64)
        };
        rep.row(
            &format!("5. open/replay values/s, {scale} × {label}, warm page cache"),
            int(n as f64 / open_s),
            dash(),
            dash(),
            format!("{:.2}x of fs::read", median(&ratios)),
        );
        rep.row(
            &format!(
                "5. fs::read of that log ({:.0} MB), as values/s",
                file_bytes as f64 / 1e6
            ),
            format!(
                "{} ({:.2} GB/s)",
                int(n as f64 / raw_s),
                file_bytes as f64 / raw_s / 1e9
            ),
            dash(),
            dash(),
            "primitive".into(),
        );
        rep.metric(&format!("s5.{size}.open_values_per_s"), n as f64 / open_s);
        rep.metric(&format!("s5.{size}.read_values_per_s"), n as f64 / raw_s);
        rep.metric(&format!("s5.{size}.file_bytes"), file_bytes as f64);
        if size == 1024 {
            p4_rate = n as f64 / open_s;
        } else {
            p4_rate = p4_rate.min(n as f64 / open_s);
        }

        if plan.cold && size == 1024 {
            let mut raw_c = Vec::new();
            let mut open_c = Vec::new();
            for r in 0..plan.rounds.min(3) {
                replay::evict(&path)?;
                raw_c.push(replay::raw_read(&path)?);
                replay::evict(&path)?;
                open_c.push(rt.block_on(replay::reopen(dir.path(), "replay", &path, n))?);
                println!(
                    "  cold round {}: fs::read {:.3} s ({:.2} GB/s) · ATE open {:.3} s",
                    r + 1,
                    raw_c[r],
                    file_bytes as f64 / raw_c[r] / 1e9,
                    open_c[r]
                );
            }
            let ratios: Vec<f64> = raw_c.iter().zip(&open_c).map(|(r, o)| r / o).collect();
            rep.row(
                &format!("5. open/replay values/s, {scale} × {label}, cold page cache"),
                int(n as f64 / median(&open_c)),
                dash(),
                dash(),
                format!(
                    "{:.2}x of cold fs::read ({:.2} GB/s)",
                    median(&ratios),
                    file_bytes as f64 / median(&raw_c) / 1e9
                ),
            );
            rep.metric("s5.cold.open_values_per_s", n as f64 / median(&open_c));
            rep.metric("s5.cold.read_values_per_s", n as f64 / median(&raw_c));
        }

        mem_rows.push(Row {
            scenario: format!("6. view memory per record, {scale} × {label}"),
            ate: format!("{per_rec:.0} B"),
            redb: dash(),
            sqlite: dash(),
            ratio: "(RSS growth of open − log bytes) ÷ records; P6 ≤ 100 B".into(),
        });
        rep.metric(&format!("s6.{size}.bytes_per_record"), per_rec);
        p6_worst = p6_worst.max(per_rec);
        drop(dir);
    }
    rep.rows.extend(mem_rows);
    rep.target(
        "P4",
        p4_rate >= 1_000_000.0,
        format!(
            "unencrypted, unsigned replay ≥ 1,000,000 values/s: slowest {}/s (warm cache)",
            int(p4_rate)
        ),
    );
    rep.target(
        "P6",
        p6_worst <= 100.0,
        format!(
            "view ≤ 100 B per record beyond the log bytes at {} records: worst {p6_worst:.0} B",
            int(n as f64)
        ),
    );
    Ok(())
}
