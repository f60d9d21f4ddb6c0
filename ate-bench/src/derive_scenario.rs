//! Scenarios D1–D3: `#[derive(Dao)]` models: generated finders beside loads by key, and the
//! cost an index adds to a commit.

use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::data;
use crate::engines::Work;
use crate::models::{self, Lookup, Variant};
use crate::util::{Res, int};
use crate::{PerEngine, Plan, Report};

/// Scenarios D1 (lookups), D2 (single commits) and D3 (1000 values per commit).
pub fn scenario_derive(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let dash = || "—".to_string();
    let n = plan.derive_records;

    // D1: lookups.
    println!(
        "\n[D1] derived models, 100 B payloads: {} records of a model with #[dao(index)] and as \
         many with #[dao(index, unique)] in one chain; {} lookups per round by random record",
        int(n as f64),
        int(plan.derive_lookups as f64)
    );
    let small: Vec<Vec<u8>> = data::values(4096, 100, 61)
        .into_iter()
        .map(|b| b.data)
        .collect();
    let dir = tempfile::tempdir_in(base)?;
    let (chain, keys) = rt.block_on(models::lookup_store(dir.path(), &small, n))?;
    let codes = models::codes(n);
    let warm: Vec<u32> = (0..n as u32).collect();
    for how in Lookup::ALL {
        rt.block_on(models::lookups(&chain, &keys, &codes, &warm, how))?;
    }
    let mut rng = SmallRng::seed_from_u64(62);
    let order: Vec<u32> = (0..plan.derive_lookups)
        .map(|_| rng.random_range(0..n as u32))
        .collect();
    let mut look = PerEngine::default();
    for r in 0..plan.rounds {
        let mut line = format!("  round {}:", r + 1);
        for k in 0..3 {
            let how = Lookup::ALL[(r + k) % 3];
            let took = rt.block_on(models::lookups(&chain, &keys, &codes, &order, how))?;
            let rate = order.len() as f64 / took.as_secs_f64();
            look.rate[how.idx()].push(rate);
            line += &format!("  {} {}/s", how.name(), int(rate));
        }
        println!("{line}");
    }
    drop(chain);
    drop(dir);
    let by_key = Lookup::Key.idx();
    rep.row(
        "D. loads/s by key, derived model, 100 B, warm (decode incl.)",
        int(look.rate(by_key)),
        dash(),
        dash(),
        "dio.load::<T>(&key)".into(),
    );
    for (how, what) in [
        (Lookup::Index, "find_by_code, #[dao(index)]"),
        (Lookup::Unique, "find_by_code, #[dao(index, unique)]"),
    ] {
        rep.row(
            &format!("D. indexed lookups/s, {what}"),
            int(look.rate(how.idx())),
            dash(),
            dash(),
            format!(
                "{:.2}x of loads by key in the same rounds",
                look.ratio_of(how.idx(), by_key)
            ),
        );
    }
    rep.metric("d1.load_by_key_per_s", look.rate(by_key));
    rep.metric("d1.find_by_index_per_s", look.rate(Lookup::Index.idx()));
    rep.metric("d1.find_by_unique_per_s", look.rate(Lookup::Unique.idx()));
    rep.metric(
        "d1.find_by_index_ratio_to_key",
        look.ratio_of(Lookup::Index.idx(), by_key),
    );
    rep.metric(
        "d1.find_by_unique_ratio_to_key",
        look.ratio_of(Lookup::Unique.idx(), by_key),
    );
    rep.metric("d1.records", n as f64);

    // D2, D3: what an index costs a commit.
    let payloads: Vec<Vec<u8>> = data::values(4096, 1024, 63)
        .into_iter()
        .map(|b| b.data)
        .collect();
    let one = Work {
        committers: 1,
        txs: plan.derive_single,
        per_tx: 1,
        warmup: plan.warmup,
        ascending: false,
    };
    let batch = Work {
        committers: 1,
        txs: plan.derive_batches,
        per_tx: 1000,
        warmup: 10,
        ascending: false,
    };
    for (label, key, w, per_value) in [("D2", "d2", one, false), ("D3", "d3", batch, true)] {
        if per_value {
            println!(
                "\n[{label}] durable values of the same struct, no index / #[dao(index)] / \
                 #[dao(index, unique)] on its code, 1000 × 1 KiB per transaction ({} \
                 transactions, unsigned chain)",
                w.txs
            );
        } else {
            println!(
                "\n[{label}] durable commits of the same struct, no index / #[dao(index)] / \
                 #[dao(index, unique)] on its code, one 1 KiB value per transaction ({} commits, \
                 unsigned chain)",
                w.txs
            );
        }
        let mut out = PerEngine::default();
        for r in 0..plan.rounds {
            let mut line = format!("  round {}:", r + 1);
            for k in 0..3 {
                let v = Variant::ALL[(r + k) % 3];
                let dir = tempfile::tempdir_in(base)?;
                let s = rt.block_on(v.commits(dir.path(), &payloads, w))?;
                drop(dir);
                let rate = if per_value {
                    s.value_rate()
                } else {
                    s.tx_rate()
                };
                out.rate[v.idx()].push(rate);
                line += &format!("  {} {}/s", v.name(), int(rate));
            }
            println!("{line}");
        }
        let none = Variant::None.idx();
        let what = if per_value {
            "D. durable values/s, 1000 × 1 KiB per tx"
        } else {
            "D. durable commits/s, 1 × 1 KiB per tx"
        };
        for v in Variant::ALL {
            let i = v.idx();
            let ratio = if v == Variant::None {
                "the same struct without an index".to_string()
            } else {
                format!(
                    "{:.2}x of no index in the same rounds",
                    out.ratio_of(i, none)
                )
            };
            rep.row(
                &format!("{what}, {}", v.name()),
                int(out.rate(i)),
                dash(),
                dash(),
                ratio,
            );
            let unit = if per_value { "values" } else { "commits" };
            rep.metric(&format!("{key}.{}.{unit}_per_s", v.tag()), out.rate(i));
            if v != Variant::None {
                rep.metric(
                    &format!("{key}.{}.ratio_to_none", v.tag()),
                    out.ratio_of(i, none),
                );
            }
        }
    }
    Ok(())
}
