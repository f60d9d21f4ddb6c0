//! Scenarios 1s–4s and 9: the chain of trust (signed, encrypted) beside the unsigned chain in
//! the same rounds, and the pipeline efficiency of its commits.

use std::path::Path;
use std::sync::Arc;

use crate::data;
use crate::engines::Work;
use crate::pipeline::{self, Costs};
use crate::trust::{self, Setup, Shape, TrustKeys};
use crate::util::{Res, int, median, percentile_ms};
use crate::{PerEngine, Plan, Report};

/// The naive single-thread pipeline of `docs/PERFORMANCE.md`, at 1000 events per transaction
/// (events/s).
const NAIVE_P3: f64 = 110_000.0;

/// Per round and setup: the primitive costs and the efficiency they give.
#[derive(Debug, Default)]
struct Efficiency {
    costs: [Vec<Costs>; 3],
    eff: [Vec<f64>; 3],
    sum_us: [Vec<f64>; 3],
}

impl Efficiency {
    fn eff(&self, s: Setup) -> f64 {
        median(&self.eff[s.idx()])
    }
    fn sum_us(&self, s: Setup) -> f64 {
        median(&self.sum_us[s.idx()])
    }
    /// The median over rounds of one cost.
    fn cost(&self, s: Setup, f: impl Fn(&Costs) -> f64) -> f64 {
        let v: Vec<f64> = self.costs[s.idx()].iter().map(f).collect();
        median(&v)
    }
}

/// Runs a commit workload on every setup for `plan.rounds` rounds, rotating the order; with
/// `shapes`, each round also measures the primitives of each signed setup's transaction shape
/// and the efficiency of that round's throughput.
#[allow(clippy::too_many_arguments)]
fn rounds(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    keys: &Arc<TrustKeys>,
    vals: &Arc<Vec<data::Blob>>,
    w: Work,
    per_value: bool,
    shapes: Option<&[Shape; 3]>,
) -> Res<(PerEngine, Efficiency)> {
    let mut out = PerEngine::default();
    let mut eff = Efficiency::default();
    for r in 0..plan.rounds {
        let mut line = format!("  round {}:", r + 1);
        for k in 0..3 {
            let s = Setup::ALL[(r + k) % 3];
            let dir = tempfile::tempdir_in(base)?;
            let sample =
                rt.block_on(trust::commits(dir.path(), keys.clone(), vals.clone(), w, s))?;
            drop(dir);
            let rate = if per_value {
                sample.value_rate()
            } else {
                sample.tx_rate()
            };
            let (p50, p99) = (
                percentile_ms(&sample.lat, 0.5),
                percentile_ms(&sample.lat, 0.99),
            );
            let max = percentile_ms(&sample.lat, 1.0);
            let i = s.idx();
            out.rate[i].push(rate);
            out.p50[i].push(p50);
            out.p99[i].push(p99);
            out.max[i].push(max);
            line += &format!(
                "  {} {}/s (p50 {p50:.2} p99 {p99:.2} max {max:.1} ms)",
                s.name(),
                int(rate)
            );
        }
        if let Some(shapes) = shapes {
            for s in Setup::SIGNED {
                let shape = &shapes[s.idx()];
                let dir = tempfile::tempdir_in(base)?;
                let c = pipeline::measure(dir.path(), keys, shape, plan.iters)?;
                drop(dir);
                let sum = c.sum_us(shape);
                let rate = *out.rate[s.idx()].last().expect("just pushed");
                let e = rate * sum * 1e-6;
                line += &format!(
                    "  · {} primitives {sum:.1} us/event → efficiency {e:.2}",
                    s.name()
                );
                eff.costs[s.idx()].push(c);
                eff.sum_us[s.idx()].push(sum);
                eff.eff[s.idx()].push(e);
            }
        }
        println!("{line}");
    }
    Ok((out, eff))
}

fn shapes_for(
    rt: &tokio::runtime::Runtime,
    keys: &TrustKeys,
    vals: &[data::Blob],
    per_tx: usize,
) -> Res<[Shape; 3]> {
    let mut out = Vec::with_capacity(3);
    for s in Setup::ALL {
        out.push(rt.block_on(trust::shape(keys, vals, s, per_tx))?);
    }
    Ok([out[0], out[1], out[2]])
}

/// Scenarios 1s, 2s, 3s, 4s and 9.
pub fn scenario_trust(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let dash = || "—".to_string();
    let keys = Arc::new(TrustKeys::generate());
    let vals = Arc::new(data::values(4096, 1024, 1));
    let unsigned = Setup::Unsigned.idx();

    println!(
        "\n[T] chain of trust: root key Falcon-512 pinned; every value stored with write = \
         Specific(root) and read = a symmetric AES-256 key (AES reader) or an NTRU-HPS-2048-509 \
         public key (NTRU reader); the unsigned Quick Start chain runs in the same rounds"
    );
    let one_shapes = shapes_for(rt, &keys, &vals, 1)?;
    let batch_shapes = shapes_for(rt, &keys, &vals, 1000)?;
    for s in Setup::ALL {
        let (a, b) = (&one_shapes[s.idx()], &batch_shapes[s.idx()]);
        println!(
            "  {}: event {} B · 1-event transaction frame {} B · 1000-event frame {:.2} MB",
            s.name(),
            int(a.event_bytes as f64),
            int(a.tx_bytes as f64),
            b.tx_bytes as f64 / 1e6
        );
        rep.metric(
            &format!("trust.{}.event_bytes", s.tag()),
            a.event_bytes as f64,
        );
        rep.metric(&format!("trust.{}.tx1_bytes", s.tag()), a.tx_bytes as f64);
        rep.metric(
            &format!("trust.{}.tx1000_bytes", s.tag()),
            b.tx_bytes as f64,
        );
    }

    // 1s: one committer, one value per transaction.
    println!(
        "\n[1s] durable signed+encrypted commits, one 1 KiB value per transaction, one committer \
         ({} commits; primitives of each signed setup timed in each round)",
        plan.trust_single
    );
    let one = Work {
        committers: 1,
        txs: plan.trust_single,
        per_tx: 1,
        warmup: plan.warmup,
        ascending: false,
    };
    let (s1, e1) = rounds(rt, base, plan, &keys, &vals, one, false, Some(&one_shapes))?;
    for s in Setup::SIGNED {
        let i = s.idx();
        rep.row(
            &format!(
                "1s. durable commits/s, signed+encrypted, 1 × 1 KiB, 1 committer, {}",
                s.name()
            ),
            int(s1.rate(i)),
            dash(),
            dash(),
            format!(
                "{:.2}x of unsigned ATE ({}/s) in the same rounds",
                s1.ratio_of(i, unsigned),
                int(s1.rate(unsigned))
            ),
        );
        rep.row(
            &format!("1s. commit latency p50 / p99 / max (ms), {}", s.name()),
            s1.lat(i),
            dash(),
            dash(),
            format!("unsigned: {}", s1.lat(unsigned)),
        );
        let t = s.tag();
        rep.metric(&format!("s1s.{t}.commits_per_s"), s1.rate(i));
        rep.metric(&format!("s1s.{t}.p50_ms"), s1.p50(i));
        rep.metric(&format!("s1s.{t}.p99_ms"), s1.p99(i));
        rep.metric(&format!("s1s.{t}.max_ms"), s1.max(i));
        rep.metric(
            &format!("s1s.{t}.ratio_to_unsigned"),
            s1.ratio_of(i, unsigned),
        );
        rep.target(
            "P1s",
            s1.rate(i) >= 1700.0,
            format!(
                "signed+encrypted single commits ≥ 1,700/s, {}: {}/s",
                s.name(),
                int(s1.rate(i))
            ),
        );
    }
    rep.metric("s1s.unsigned.commits_per_s", s1.rate(unsigned));

    // 2s: 16 committers.
    println!(
        "\n[2s] durable signed+encrypted commits, one 1 KiB value per transaction, {} concurrent \
         committers ({} commits each)",
        plan.committers, plan.per_committer
    );
    let many = Work {
        committers: plan.committers,
        txs: plan.per_committer,
        per_tx: 1,
        warmup: plan.warmup,
        ascending: false,
    };
    let (s2, _) = rounds(rt, base, plan, &keys, &vals, many, false, None)?;
    let ceilings: Vec<f64> = (0..3)
        .map(|_| pipeline::sign_verify_ceiling(&keys, if plan.quick { 300 } else { 1000 }))
        .collect();
    let ceiling = median(&ceilings);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  Falcon-512 sign + verify on {threads} threads at once: {}/s (samples: {})",
        int(ceiling),
        ceilings
            .iter()
            .map(|c| int(*c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rep.row(
        &format!("2s. ceiling: Falcon-512 sign + verify, {threads} threads at once"),
        format!("{}/s", int(ceiling)),
        dash(),
        dash(),
        format!(
            "primitive (same run): every signed commit signs and verifies once; with 16 \
             committers at this rate the mean latency is at least {:.2} ms",
            16.0 / ceiling * 1e3
        ),
    );
    rep.metric("s2s.falcon_sign_verify_ceiling_per_s", ceiling);
    for s in Setup::SIGNED {
        let i = s.idx();
        rep.row(
            &format!(
                "2s. durable commits/s, signed+encrypted, 16 committers, {}",
                s.name()
            ),
            int(s2.rate(i)),
            dash(),
            dash(),
            format!(
                "{:.2}x of unsigned ATE ({}/s) · {:.2}x of the Falcon ceiling",
                s2.ratio_of(i, unsigned),
                int(s2.rate(unsigned)),
                s2.rate(i) / ceiling
            ),
        );
        rep.row(
            &format!(
                "2s. commit latency p50 / p99 / max (ms), 16 committers, {}",
                s.name()
            ),
            s2.lat(i),
            dash(),
            dash(),
            format!("unsigned: {}", s2.lat(unsigned)),
        );
        let t = s.tag();
        rep.metric(&format!("s2s.{t}.commits_per_s"), s2.rate(i));
        rep.metric(&format!("s2s.{t}.p50_ms"), s2.p50(i));
        rep.metric(&format!("s2s.{t}.p99_ms"), s2.p99(i));
        rep.metric(&format!("s2s.{t}.max_ms"), s2.max(i));
        rep.metric(
            &format!("s2s.{t}.ratio_to_unsigned"),
            s2.ratio_of(i, unsigned),
        );
        rep.target(
            "P2s",
            s2.rate(i) >= 4000.0 && s2.p99(i) <= 5.0,
            format!(
                "(P2's bar on the signed chain) 16 committers ≥ 4,000/s with p99 ≤ 5 ms, {}: \
                 {}/s, p99 {:.2} ms",
                s.name(),
                int(s2.rate(i)),
                s2.p99(i)
            ),
        );
    }
    rep.metric("s2s.unsigned.commits_per_s", s2.rate(unsigned));

    // 3s: 1000 values per transaction.
    println!(
        "\n[3s] durable signed+encrypted values, 1000 × 1 KiB per transaction, one committer \
         ({} transactions; primitives timed in each round)",
        plan.batches
    );
    let batch = Work {
        committers: 1,
        txs: plan.batches,
        per_tx: 1000,
        warmup: 10,
        ascending: false,
    };
    let (s3, e3) = rounds(
        rt,
        base,
        plan,
        &keys,
        &vals,
        batch,
        true,
        Some(&batch_shapes),
    )?;
    for s in Setup::SIGNED {
        let i = s.idx();
        rep.row(
            &format!(
                "3s. durable values/s, signed+encrypted, 1000 × 1 KiB per tx, {}",
                s.name()
            ),
            int(s3.rate(i)),
            dash(),
            dash(),
            format!(
                "{:.2}x of unsigned ATE ({}/s) · {:.2}x of the naive pipeline (110k/s)",
                s3.ratio_of(i, unsigned),
                int(s3.rate(unsigned)),
                s3.rate(i) / NAIVE_P3
            ),
        );
        let t = s.tag();
        rep.metric(&format!("s3s.{t}.values_per_s"), s3.rate(i));
        rep.metric(
            &format!("s3s.{t}.ratio_to_unsigned"),
            s3.ratio_of(i, unsigned),
        );
        rep.target(
            "P3 (encrypted)",
            s3.rate(i) >= 150_000.0,
            format!(
                "signed+encrypted ≥ 150,000 values/s at 1000 per tx, {}: {}/s",
                s.name(),
                int(s3.rate(i))
            ),
        );
    }
    rep.metric("s3s.unsigned.values_per_s", s3.rate(unsigned));

    // 4s: full-verify replay.
    scenario_replay(rt, base, plan, &keys, &batch_shapes, &e3, rep)?;

    // 9: pipeline efficiency.
    pipeline_rows(rep, &one_shapes, &batch_shapes, &s1, &e1, &s3, &e3);
    Ok(())
}

/// Scenario 4s: open/replay of signed, encrypted logs beside an unsigned one of as many values.
fn scenario_replay(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    keys: &TrustKeys,
    shapes: &[Shape; 3],
    e3: &Efficiency,
    rep: &mut Report,
) -> Res<()> {
    let dash = || "—".to_string();
    let n = plan.trust_records;
    let vals = data::values(8192, 1024, 51);
    println!(
        "\n[4s] open/replay with full verification: {} values of 1 KiB written 1000 per tx, per \
         setup (each event hashed, each signature verified, rights and versions checked)",
        int(n as f64)
    );
    let mut logs = Vec::new();
    for s in Setup::ALL {
        let dir = tempfile::tempdir_in(base)?;
        let (path, build) = rt.block_on(trust::build_log(dir.path(), keys, s, &vals, n, 1000))?;
        let bytes = std::fs::metadata(&path)?.len();
        println!(
            "  {} log written in {build:.1} s ({} values/s); file {:.0} MB (with preallocation)",
            s.name(),
            int(n as f64 / build),
            bytes as f64 / 1e6
        );
        logs.push((dir, path));
    }
    drop(vals);
    let mut out = PerEngine::default();
    // Events per second of CPU time (all threads of the process) while opening.
    let mut per_cpu: [Vec<f64>; 3] = Default::default();
    for r in 0..plan.rounds.min(3) {
        let mut line = format!("  round {}:", r + 1);
        for k in 0..3 {
            let s = Setup::ALL[(r + k) % 3];
            let (dir, path) = &logs[s.idx()];
            let (secs, cpu) = rt.block_on(trust::reopen(dir.path(), keys, s, path, n))?;
            let rate = n as f64 / secs;
            out.rate[s.idx()].push(rate);
            per_cpu[s.idx()].push(n as f64 / cpu.max(1e-9));
            line += &format!(
                "  {} open {secs:.3} s ({}/s, {:.2} CPU-s)",
                s.name(),
                int(rate),
                cpu
            );
        }
        println!("{line}");
    }
    let unsigned = Setup::Unsigned.idx();
    for s in Setup::SIGNED {
        let i = s.idx();
        let shape = &shapes[i];
        let crypto_us = median(
            &e3.costs[i]
                .iter()
                .map(|c| c.replay_sum_us(shape))
                .collect::<Vec<_>>(),
        );
        let eff = out.rate(i) * crypto_us * 1e-6;
        rep.row(
            &format!(
                "4s. open/replay events/s, full verify, {} × 1 KiB, {}",
                int(n as f64),
                s.name()
            ),
            int(out.rate(i)),
            dash(),
            dash(),
            format!(
                "{}/s per CPU-second · {:.2}x of unsigned replay ({}/s) · {eff:.2} of its \
                 SHA3+verify floor ({crypto_us:.2} us/event)",
                int(median(&per_cpu[i])),
                out.ratio_of(i, unsigned),
                int(out.rate(unsigned))
            ),
        );
        let t = s.tag();
        rep.metric(&format!("s4s.{t}.open_events_per_s"), out.rate(i));
        rep.metric(
            &format!("s4s.{t}.ratio_to_unsigned"),
            out.ratio_of(i, unsigned),
        );
        rep.metric(&format!("s4s.{t}.crypto_us_per_event"), crypto_us);
        rep.metric(&format!("s4s.{t}.crypto_efficiency"), eff);
        rep.metric(
            &format!("s4s.{t}.open_events_per_cpu_s"),
            median(&per_cpu[i]),
        );
        rep.target(
            "P4 (full verify)",
            median(&per_cpu[i]) >= 150_000.0,
            format!(
                "signed+encrypted replay ≥ 150,000 events/s per core, {}: {}/s per CPU-second \
                 ({}/s on the clock)",
                s.name(),
                int(median(&per_cpu[i])),
                int(out.rate(i))
            ),
        );
    }
    rep.metric("s4s.unsigned.open_events_per_s", out.rate(unsigned));
    rep.metric("s4s.records", n as f64);
    rep.note(
        "4s: the replay floor counts SHA3-256 of each event (batched, as replay hashes a \
         transaction's events) plus one Falcon verification per 1000-event transaction (÷ 1000), \
         on one core, with costs from the rounds of 3s; replay verifies on every core, so the \
         ratio can pass 1; decryption is not part of opening a chain (bodies are decrypted when \
         loaded)."
            .into(),
    );
    Ok(())
}

/// Scenario 9's rows: the primitive costs and the efficiency of 1s and 3s.
fn pipeline_rows(
    rep: &mut Report,
    one: &[Shape; 3],
    batch: &[Shape; 3],
    s1: &PerEngine,
    e1: &Efficiency,
    s3: &PerEngine,
    e3: &Efficiency,
) {
    let dash = || "—".to_string();
    let prim = || "primitive (same run)".to_string();
    let (a, n) = (Setup::Aes, Setup::Ntru);
    rep.row(
        "9. Falcon-512 sign / verify, 1-event tx message",
        format!(
            "{:.0} / {:.0} us",
            e1.cost(a, |c| c.sign_us),
            e1.cost(a, |c| c.verify_us)
        ),
        dash(),
        dash(),
        prim(),
    );
    rep.row(
        "9. Falcon-512 sign / verify, 1000-event tx message",
        format!(
            "{:.0} / {:.0} us",
            e3.cost(a, |c| c.sign_us),
            e3.cost(a, |c| c.verify_us)
        ),
        dash(),
        dash(),
        prim(),
    );
    rep.row(
        "9. NTRU-HPS-2048-509 encapsulate / decapsulate",
        format!(
            "{:.1} / {:.1} us",
            e1.cost(n, |c| c.encaps_us),
            e1.cost(n, |c| c.decaps_us)
        ),
        dash(),
        dash(),
        prim(),
    );
    rep.row(
        "9. AES-256-GCM of 1 KiB · rmp encode of the 1 KiB value",
        format!(
            "{:.2} us · {:.2} us",
            e1.cost(a, |c| c.aes_us),
            e1.cost(a, |c| c.rmp_us)
        ),
        dash(),
        dash(),
        prim(),
    );
    rep.row(
        "9. SHA3-256 of one event, AES / NTRU reader",
        format!(
            "{:.2} us ({} B) / {:.2} us ({} B)",
            e1.cost(a, |c| c.sha3_us),
            int(one[a.idx()].event_bytes as f64),
            e1.cost(n, |c| c.sha3_us),
            int(one[n.idx()].event_bytes as f64)
        ),
        dash(),
        dash(),
        prim(),
    );
    rep.row(
        "9. SHA3-256 of one event in batches of 64, AES / NTRU reader",
        format!(
            "{:.2} us ({} B) / {:.2} us ({} B)",
            e3.cost(a, |c| c.sha3_batch_us),
            int(batch[a.idx()].event_bytes as f64),
            e3.cost(n, |c| c.sha3_batch_us),
            int(batch[n.idx()].event_bytes as f64)
        ),
        dash(),
        dash(),
        format!(
            "primitive (same run): {:.1}x / {:.1}x the throughput of one at a time",
            e3.cost(a, |c| c.sha3_us) / e3.cost(a, |c| c.sha3_batch_us),
            e3.cost(n, |c| c.sha3_us) / e3.cost(n, |c| c.sha3_batch_us)
        ),
    );
    rep.row(
        "9. write tx to preallocated space + fdatasync, 1-event tx",
        format!(
            "{:.0} us ({} B) / {:.0} us ({} B)",
            e1.cost(a, |c| c.fsync_us),
            int(one[a.idx()].tx_bytes as f64),
            e1.cost(n, |c| c.fsync_us),
            int(one[n.idx()].tx_bytes as f64)
        ),
        dash(),
        dash(),
        "primitive (same run), AES / NTRU reader".into(),
    );
    rep.row(
        "9. write tx to preallocated space + fdatasync, 1000-event tx",
        format!(
            "{:.0} us ({:.2} MB) / {:.0} us ({:.2} MB)",
            e3.cost(a, |c| c.fsync_us),
            batch[a.idx()].tx_bytes as f64 / 1e6,
            e3.cost(n, |c| c.fsync_us),
            batch[n.idx()].tx_bytes as f64 / 1e6
        ),
        dash(),
        dash(),
        "primitive (same run), AES / NTRU reader".into(),
    );
    for (label, key, shapes, s, e) in [("1s", "p1s", one, s1, e1), ("3s", "p3s", batch, s3, e3)] {
        for setup in Setup::SIGNED {
            let i = setup.idx();
            let sum = e.sum_us(setup);
            rep.row(
                &format!("9. pipeline efficiency, {label}, {}", setup.name()),
                format!("{:.2}", e.eff(setup)),
                dash(),
                dash(),
                format!(
                    "{}/s measured ÷ {}/s from the primitives ({sum:.2} us per event)",
                    int(s.rate(i)),
                    int(1e6 / sum)
                ),
            );
            let t = setup.tag();
            rep.metric(&format!("p9.{key}.{t}.efficiency"), e.eff(setup));
            rep.metric(&format!("p9.{key}.{t}.sum_us_per_event"), sum);
            rep.target(
                "P9",
                e.eff(setup) >= 0.6,
                format!(
                    "pipeline efficiency ≥ 0.6, {label} {}: {:.2}",
                    setup.name(),
                    e.eff(setup)
                ),
            );
            rep.note(format!(
                "9, {label}, {}: {}.",
                setup.name(),
                pipeline::counted(&shapes[i])
            ));
        }
    }
    for (key, e) in [("p1s", e1), ("p3s", e3)] {
        for setup in Setup::SIGNED {
            let t = setup.tag();
            let m = |f: fn(&Costs) -> f64| e.cost(setup, f);
            rep.metric(&format!("p9.{key}.{t}.rmp_us"), m(|c| c.rmp_us));
            rep.metric(&format!("p9.{key}.{t}.aes_1k_us"), m(|c| c.aes_us));
            rep.metric(&format!("p9.{key}.{t}.sha3_event_us"), m(|c| c.sha3_us));
            rep.metric(
                &format!("p9.{key}.{t}.sha3_event_batched_us"),
                m(|c| c.sha3_batch_us),
            );
            rep.metric(&format!("p9.{key}.{t}.falcon_sign_us"), m(|c| c.sign_us));
            rep.metric(
                &format!("p9.{key}.{t}.falcon_verify_us"),
                m(|c| c.verify_us),
            );
            rep.metric(&format!("p9.{key}.{t}.ntru_encaps_us"), m(|c| c.encaps_us));
            rep.metric(&format!("p9.{key}.{t}.ntru_decaps_us"), m(|c| c.decaps_us));
            rep.metric(&format!("p9.{key}.{t}.write_fsync_us"), m(|c| c.fsync_us));
        }
    }
    rep.note(
        "9: not counted in any sum: NTRU decapsulation (paid by a reader once per transaction \
         per session), the AES wrap of the data key for a symmetric reader, framing, CRC, \
         transaction encode/decode, rule and version checks, the view update, scheduling; \
         efficiency = measured × sum, median of the per-round products."
            .into(),
    );
}
