//! The bus and the queue on an embedded, file-backed chain (P10 and P11 embedded): fan-out
//! latency from a durable commit to each subscriber's receipt, and items processed exactly once
//! per second by 1 and 4 consumers, one item per transaction and in batches.
//!
//! Beside each, the primitive it stands on, timed in the same rounds on the same chain: a
//! single durable commit of a 1 KiB value (its latency after each fan-out message, its rate
//! after each queue run). The disk's latency varies several-fold on a shared machine, so the
//! figure to read is the ratio to that primitive.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ate::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Blob;
use crate::util::{Res, int, median, percentile_ms};

#[derive(Clone, Serialize, Deserialize)]
struct Topic {
    items: DaoVec<Blob>,
}

async fn chain(dir: &Path, name: &str) -> Res<(Chain, DaoVec<Blob>)> {
    let chain = ChainBuilder::new(&AteConfig::at(dir))
        .await
        .build()
        .open(&ChainKey::from(name))
        .await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    let dao = dio.store(Topic {
        items: DaoVec::new(),
    })?;
    let mut items = dao.items.clone();
    items.attach(*dao.key());
    dio.commit().await?;
    Ok((chain, items))
}

/// `messages` items committed one per transaction, each after every one of `subs` buses
/// received the previous: latency from the commit call to each receipt, and, timed apart after
/// each message, a single durable commit of a value outside the collection (the floor).
async fn fanout(
    dir: &Path,
    subs: usize,
    messages: usize,
    values: &[Blob],
) -> Res<(Vec<Duration>, Vec<Duration>)> {
    let (chain, items) = chain(dir, &format!("fanout-{subs}")).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let mut bus = items.bus(&chain.dio(&AteSession::default()).await)?;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..messages {
                bus.recv().await?;
                let _ = tx.send(Instant::now());
            }
            Res::Ok(())
        }));
    }
    let session = AteSession::default();
    let mut lat = Vec::with_capacity(messages * subs);
    let mut floor = Vec::with_capacity(messages);
    for i in 0..messages {
        let t = Instant::now();
        let mut dio = chain.dio(&session).await;
        items.push(&mut dio, values[i % values.len()].clone())?;
        dio.commit().await?;
        for _ in 0..subs {
            let at = rx.recv().await.ok_or("a bus stopped")?;
            lat.push(at.saturating_duration_since(t));
        }
        let t = Instant::now();
        let mut dio = chain.dio(&session).await;
        dio.store(values[(i + 1) % values.len()].clone())?;
        dio.commit().await?;
        floor.push(t.elapsed());
    }
    for t in tasks {
        t.await??;
    }
    Ok((lat, floor))
}

/// Single durable commits of 1 KiB values on `chain`, one at a time, for about `budget` (at
/// least 20): commits per second.
async fn commit_rate(chain: &Chain, values: &[Blob], budget: Duration) -> Res<f64> {
    let session = AteSession::default();
    let start = Instant::now();
    let mut n = 0;
    while n < 20 || start.elapsed() < budget {
        let mut dio = chain.dio(&session).await;
        dio.store(values[n % values.len()].clone())?;
        dio.commit().await?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// `items` values queued (not timed), then `consumers` tasks process them, each taking up to
/// `batch` items per transaction (`Bus::process` when 1, `Bus::process_many` otherwise) and
/// committing their deletion (awaited) before the next: items per second, and then the rate
/// of single durable commits on the same chain (timed apart for about as long, at most 2 s).
async fn queue(
    dir: &Path,
    consumers: usize,
    batch: usize,
    items_n: usize,
    values: &[Blob],
) -> Res<(f64, f64)> {
    let (chain, items) = chain(dir, &format!("queue-{consumers}-{batch}")).await?;
    let session = AteSession::default();
    let mut n = 0;
    while n < items_n {
        let mut dio = chain.dio(&session).await;
        for _ in 0..1000.min(items_n - n) {
            items.push(&mut dio, values[n % values.len()].clone())?;
            n += 1;
        }
        dio.commit().await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    // Set once every item is processed (a watch: a consumer that starts waiting later sees it).
    let (finished_tx, finished) = tokio::sync::watch::channel(false);
    let finished_tx = Arc::new(finished_tx);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (chain, items, done, finished_tx, mut finished) = (
            chain.clone(),
            items.clone(),
            done.clone(),
            finished_tx.clone(),
            finished.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let session = AteSession::default();
            let mut bus = items.bus(&chain.dio(&session).await)?;
            while done.load(Ordering::Acquire) < items_n {
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
                    _ = finished.wait_for(|f| *f) => break,
                };
                match dio.commit().await {
                    Ok(()) => {
                        let before = done.fetch_add(taken, Ordering::AcqRel);
                        if before + taken >= items_n {
                            let _ = finished_tx.send(true);
                        }
                    }
                    Err(AteError::Commit(CommitError::Trust(_))) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let processed = done.load(Ordering::Acquire);
    let left = items.iter(&chain.dio(&session).await).await?.len();
    if processed != items_n || left != 0 {
        return Err(format!("{processed} items processed of {items_n}, {left} left").into());
    }
    let floor = commit_rate(&chain, values, Duration::from_secs_f64(secs.min(2.0))).await?;
    Ok((items_n as f64 / secs, floor))
}

/// The most items a batched consumer takes per transaction.
pub const BATCH: usize = 64;

/// P10 (`fanout`) and P11 (`queue`) on an embedded chain.
pub fn scenario_bus(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &crate::Plan,
    rep: &mut crate::Report,
    fanout_rows: bool,
    queue_rows: bool,
) -> Res<()> {
    let rounds = plan.rounds.min(3);
    let messages = if plan.quick { 200 } else { 1000 };
    let items_n = if plan.quick { 2000 } else { 10_000 };
    let values = crate::data::values(100, 1024, 11);
    if fanout_rows {
        println!(
            "\n[P10 embedded] a bus on a collection of a file-backed chain: {messages} items of \
             1 KiB committed one per transaction, each after every bus received the previous; \
             after each, a single durable commit timed apart (the floor)"
        );
        let mut p10_met = true;
        let mut parts = Vec::new();
        for subs in [1usize, 10] {
            let (mut p50, mut p99, mut fl) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let dir = tempfile::tempdir_in(base)?;
                let (lat, floor) = rt.block_on(fanout(dir.path(), subs, messages, &values))?;
                p50.push(percentile_ms(&lat, 0.5));
                p99.push(percentile_ms(&lat, 0.99));
                fl.push(percentile_ms(&floor, 0.5));
                println!(
                    "  round: {subs} bus(es) p50 {:.2} ms p99 {:.2} ms; single commit p50 {:.2} ms",
                    p50[p50.len() - 1],
                    p99[p99.len() - 1],
                    fl[fl.len() - 1]
                );
            }
            let (p50, p99, fl) = (median(&p50), median(&p99), median(&fl));
            println!(
                "  fan-out, {subs} bus(es): p50 {p50:.2} ms, p99 {p99:.2} ms; a single durable \
                 commit p50 {fl:.2} ms"
            );
            rep.metric(&format!("p10_embedded_{subs}_p50_ms"), p50);
            rep.metric(&format!("p10_embedded_{subs}_floor_ms"), fl);
            rep.row(
                &format!("10e. bus fan-out p50 / p99 ms, embedded, {subs} subscriber(s)"),
                format!("{p50:.2} / {p99:.2}"),
                "—".into(),
                "—".into(),
                format!(
                    "commit call to each receipt (the commit is durable); a single durable \
                     commit p50 {fl:.2} ms, same rounds"
                ),
            );
            p10_met &= p50 <= 0.5;
            parts.push(format!("{subs}: {p50:.2} ms (single commit {fl:.2} ms)"));
        }
        rep.target(
            "P10 (embedded)",
            p10_met,
            format!("bus fan-out p50 ≤ 0.5 ms embedded: {}", parts.join(", ")),
        );
    }
    if !queue_rows {
        return Ok(());
    }
    println!(
        "\n[P11 embedded] a queue of {items_n} items of 1 KiB on a file-backed chain, processed \
         exactly once, each transaction's deletions committed and awaited; one item per \
         transaction (`process`) or up to {BATCH} (`process_many`); after each run, single \
         durable commits timed apart (the floor)"
    );
    for (consumers, batch) in [(1usize, 1usize), (4, 1), (1, BATCH), (4, BATCH)] {
        let (mut rates, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let dir = tempfile::tempdir_in(base)?;
            let (rate, floor) =
                rt.block_on(queue(dir.path(), consumers, batch, items_n, &values))?;
            println!(
                "  round: {consumers} consumer(s), {batch} per tx: {} items/s; single commits {}/s",
                int(rate),
                int(floor)
            );
            rates.push(rate);
            floors.push(floor);
            ratios.push(rate / floor);
        }
        let (rate, floor, ratio) = (median(&rates), median(&floors), median(&ratios));
        println!(
            "  queue, {consumers} consumer(s), up to {batch} per transaction: {} items/s \
             ({ratio:.2}× single durable commits/s, {})",
            int(rate),
            int(floor)
        );
        rep.metric(&format!("p11_embedded_{consumers}_{batch}_per_s"), rate);
        rep.metric(
            &format!("p11_embedded_{consumers}_{batch}_floor_per_s"),
            floor,
        );
        rep.row(
            &format!(
                "11e. queue items/s processed exactly once, embedded, {consumers} consumer(s), \
                 up to {batch} per tx"
            ),
            int(rate),
            "—".into(),
            "—".into(),
            format!(
                "each transaction's deletions durable, awaited; {ratio:.2}× single durable \
                 commits/s ({}), same rounds",
                int(floor)
            ),
        );
    }
    Ok(())
}
