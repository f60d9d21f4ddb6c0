//! The bus and the queue on an embedded, file-backed chain (P10 and P11 embedded): fan-out
//! latency from a durable commit to each subscriber's receipt, and items processed exactly once
//! per second by 1 and 4 consumers.

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
/// received the previous: latency from the commit call to each receipt.
async fn fanout(dir: &Path, subs: usize, messages: usize, values: &[Blob]) -> Res<Vec<Duration>> {
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
    for i in 0..messages {
        let t = Instant::now();
        let mut dio = chain.dio(&session).await;
        items.push(&mut dio, values[i % values.len()].clone())?;
        dio.commit().await?;
        for _ in 0..subs {
            let at = rx.recv().await.ok_or("a bus stopped")?;
            lat.push(at.saturating_duration_since(t));
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok(lat)
}

/// `items` values queued (not timed), then `consumers` tasks process them, each committing
/// the item's deletion (awaited) before the next: items per second.
async fn queue(dir: &Path, consumers: usize, items_n: usize, values: &[Blob]) -> Res<f64> {
    let (chain, items) = chain(dir, &format!("queue-{consumers}")).await?;
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
    let finished = Arc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (chain, items, done, finished) =
            (chain.clone(), items.clone(), done.clone(), finished.clone());
        tasks.push(tokio::spawn(async move {
            let session = AteSession::default();
            let mut bus = items.bus(&chain.dio(&session).await)?;
            while done.load(Ordering::Acquire) < items_n {
                let mut dio = chain.dio(&session).await;
                tokio::select! {
                    item = bus.process(&mut dio) => { item?; }
                    _ = finished.notified() => break,
                }
                match dio.commit().await {
                    Ok(()) => {
                        if done.fetch_add(1, Ordering::AcqRel) + 1 == items_n {
                            finished.notify_waiters();
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
    if processed != items_n {
        return Err(format!("{processed} items processed of {items_n}").into());
    }
    Ok(items_n as f64 / secs)
}

/// P10 and P11 on an embedded chain.
pub fn scenario_bus(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &crate::Plan,
    rep: &mut crate::Report,
) -> Res<()> {
    let rounds = plan.rounds.min(3);
    let messages = if plan.quick { 200 } else { 1000 };
    let items_n = if plan.quick { 2000 } else { 10_000 };
    println!(
        "\n[P10/P11 embedded] a bus and a queue on a collection of a file-backed chain: {messages} \
         items of 1 KiB committed one per transaction, each after every bus received the \
         previous; a queue of {items_n} items processed exactly once (each deletion committed \
         and awaited)"
    );
    let values = crate::data::values(100, 1024, 11);
    let mut p10_met = true;
    let mut parts = Vec::new();
    for subs in [1usize, 10] {
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for _ in 0..rounds {
            let dir = tempfile::tempdir_in(base)?;
            let lat = rt.block_on(fanout(dir.path(), subs, messages, &values))?;
            p50.push(percentile_ms(&lat, 0.5));
            p99.push(percentile_ms(&lat, 0.99));
        }
        let (p50, p99) = (median(&p50), median(&p99));
        println!("  fan-out, {subs} bus(es): p50 {p50:.2} ms, p99 {p99:.2} ms");
        rep.metric(&format!("p10_embedded_{subs}_p50_ms"), p50);
        rep.row(
            &format!("10e. bus fan-out p50 / p99 ms, embedded, {subs} subscriber(s)"),
            format!("{p50:.2} / {p99:.2}"),
            "—".into(),
            "—".into(),
            "commit call to each receipt; the commit is durable (fdatasync)".into(),
        );
        p10_met &= p50 <= 0.5;
        parts.push(format!("{subs}: {p50:.2} ms"));
    }
    rep.target(
        "P10 (embedded)",
        p10_met,
        format!("bus fan-out p50 ≤ 0.5 ms embedded: {}", parts.join(", ")),
    );
    for consumers in [1usize, 4] {
        let mut rates = Vec::new();
        for _ in 0..rounds {
            let dir = tempfile::tempdir_in(base)?;
            rates.push(rt.block_on(queue(dir.path(), consumers, items_n, &values))?);
        }
        let rate = median(&rates);
        println!("  queue, {consumers} consumer(s): {} items/s", int(rate));
        rep.metric(&format!("p11_embedded_{consumers}_per_s"), rate);
        rep.row(
            &format!(
                "11e. queue items/s processed exactly once, embedded, {consumers} consumer(s)"
            ),
            int(rate),
            "—".into(),
            "—".into(),
            "each deletion a durable commit, awaited".into(),
        );
    }
    Ok(())
}
