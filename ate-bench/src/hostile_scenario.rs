//! Scenario R12: one huge transaction from outside among many small commits.
//!
//! A committer makes small signed commits while another task hands the chain 16 MiB signed
//! transactions built elsewhere (`Chain::commit_transaction`). Their hashing and signature
//! checks run on the handing task's side, never on the chain's single writer; what the small
//! commits still share with a huge one is the writer's turn to append and fsync it. The figures:
//! the small commits' latency alone and beside the huge ones, and how long the huge ones take to
//! commit (the stated bound of the delay they may add).

use std::path::Path;
use std::time::{Duration, Instant};

use ate::crypto::{KeySize, PrivateSignKey};
use ate::event::{BodyFormat, EventDraft, PrimaryKey};
use ate::prelude::*;
use ate::unstable::meta::{TxSealer, event_hashes};

use crate::util::{Res, percentile_ms};
use crate::{Plan, Report};

/// Events of the huge transactions: 16 MiB of 1 KiB bodies, the foreign transaction limit.
const HUGE_EVENTS: usize = 15_000;

/// A huge transaction of new records for `chain`, signed by `root`.
fn huge(
    chain: &Chain,
    root: &PrivateSignKey,
    seed: u8,
) -> (Vec<EventDraft>, Vec<ate::event::TxTrailer>) {
    let events: Vec<EventDraft> = (0..HUGE_EVENTS)
        .map(|i| EventDraft {
            key: PrimaryKey::generate(),
            timestamp_ms: 1,
            tombstone: false,
            parent: None,
            type_name: "bench.Huge".into(),
            format: BodyFormat::MessagePack,
            meta: Vec::new(),
            body: Some(vec![seed.wrapping_add(i as u8); 1024].into()),
        })
        .collect();
    let trailers = TxSealer {
        signers: vec![(root, (0..HUGE_EVENTS as u32).collect())],
        ..TxSealer::default()
    }
    .seal(chain.policy().chain_hash(), &event_hashes(&events))
    .expect("a fresh key signs");
    (events, trailers)
}

/// Small signed commits for `dur`; their latencies.
async fn small_commits(chain: &Chain, session: &AteSession, n: usize) -> Res<Vec<Duration>> {
    let mut dio = chain.dio(session).await;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        dio.store(vec![i as u8; 100])?;
        dio.commit().await?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// Scenario R12.
pub fn scenario_hostile(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let small = if plan.quick { 300 } else { 1500 };
    let huge_count = if plan.quick { 2 } else { 6 };
    println!(
        "\n[R12] one huge transaction among small commits: small signed commits (100 B) alone, then \
         beside {huge_count} signed 16 MiB transactions ({HUGE_EVENTS} × 1 KiB) handed to \
         Chain::commit_transaction one after the other"
    );
    let dir = tempfile::tempdir_in(base)?;
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let (alone, beside, huge_lat) = rt.block_on(async {
        let chain = ChainBuilder::new(&AteConfig::at(dir.path()))
            .await
            .add_root_public_key(&root.as_public_key())
            .build()
            .open(&ChainKey::from("r12"))
            .await?;
        let mut session = AteSession::default();
        session.add_write_key(&root);
        let prepared: Vec<_> = (0..huge_count)
            .map(|i| huge(&chain, &root, i as u8))
            .collect();
        let alone = small_commits(&chain, &session, small).await?;
        let feeder = {
            let chain = chain.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for (events, trailers) in prepared {
                    let t = Instant::now();
                    chain.commit_transaction(events, trailers).await?;
                    lat.push(t.elapsed());
                }
                Ok::<_, CommitError>(lat)
            })
        };
        let mut beside = Vec::new();
        while !feeder.is_finished() {
            beside.extend(small_commits(&chain, &session, 50).await?);
        }
        let huge_lat = feeder.await??;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((alone, beside, huge_lat))
    })?;
    let line = |l: &[Duration]| {
        format!(
            "{:.2} / {:.2} / {:.1}",
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.99),
            percentile_ms(l, 1.0)
        )
    };
    let huge_ms = percentile_ms(&huge_lat, 0.50);
    println!(
        "  alone: p50/p99/max {} ms ({} commits); beside the huge ones: {} ms ({} commits); a huge one commits in {:.0} ms (median)",
        line(&alone),
        alone.len(),
        line(&beside),
        beside.len(),
        huge_ms
    );
    let dash = || "—".to_string();
    rep.row(
        "R12. small signed commits p50 / p99 / max (ms), alone",
        line(&alone),
        dash(),
        dash(),
        format!("{} commits", alone.len()),
    );
    rep.row(
        "R12. the same beside 16 MiB foreign transactions",
        line(&beside),
        dash(),
        dash(),
        format!(
            "{} commits; a 16 MiB transaction commits in {huge_ms:.0} ms (median): the bound on the delay it adds",
            beside.len()
        ),
    );
    rep.metric("r12_alone_p99_ms", percentile_ms(&alone, 0.99));
    rep.metric("r12_beside_p99_ms", percentile_ms(&beside, 0.99));
    rep.metric("r12_beside_max_ms", percentile_ms(&beside, 1.0));
    rep.metric("r12_huge_ms", huge_ms);
    rep.target(
        "R12",
        percentile_ms(&beside, 1.0) <= huge_ms + percentile_ms(&alone, 1.0) + 5.0,
        format!(
            "beside huge foreign transactions, a small commit waits at most one huge commit more: max {:.1} ms ≤ {huge_ms:.0} + {:.1} ms (+5 ms slack)",
            percentile_ms(&beside, 1.0),
            percentile_ms(&alone, 1.0)
        ),
    );
    Ok(())
}
