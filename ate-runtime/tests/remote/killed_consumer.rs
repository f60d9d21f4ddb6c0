//! R9: an exactly-once queue whose consumers are killed mid-processing. A server (in this
//! process) holds a queue of 10,000 items; three consumers in two child processes take them
//! with `Bus::process`, each processing committing a `Done` record for its item in the same
//! transaction as the item's deletion (one to sixteen items a transaction). One child is killed
//! with SIGKILL mid-way, holding claims and commits in flight; the other drains the rest. At
//! the end the server's chain itself says what happened: no item is left, and there is exactly
//! one `Done` per item (none lost, none processed twice).
//!
//! The children are this test binary started again (`child`).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use ate_runtime::net::IdentityHash;
use ate_runtime::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::child::{self, say};
use super::common::*;

const CHAIN: &str = "r9";
const ITEMS: u32 = 10_000;
/// How long a child may take to do what the parent waits for (guards a hung child only).
const PATIENCE: Duration = Duration::from_secs(120);
/// A consumer that finds nothing to take for this long looks whether the queue is empty.
const IDLE: Duration = Duration::from_millis(300);

const URL: &str = "ATE_R9_URL";
const IDENTITY: &str = "ATE_R9_IDENTITY";
const TOPIC: &str = "ATE_R9_TOPIC";
const CONSUMERS: &str = "ATE_R9_CONSUMERS";

/// The record owning the queue and the records of work.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Topic {
    items: DaoVec<Job>,
    done: DaoVec<Done>,
}

/// A queue item.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Job {
    n: u32,
}

/// What processing item `n` wrote (with the item's deletion).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Done {
    n: u32,
    /// Which consumer did it: `<process>/<consumer>`.
    by: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The topic at `key` of `chain`, its collections attached.
async fn load_topic(chain: &Chain, key: PrimaryKey) -> Topic {
    let dio = chain.dio(&AteSession::default()).await;
    let mut t = (*dio.load::<Topic>(&key).await.expect("the topic")).clone();
    t.items.attach(key);
    t.done.attach(key);
    t
}

/// The child: `CONSUMERS` consumers on one remote chain take items until the queue is empty,
/// each saying `PROCESSED <consumer> <total>` every 50 items; `EXIT` at the end.
pub async fn child_consume() {
    let identity: IdentityHash = var(IDENTITY).parse().expect("an identity hash");
    let key: PrimaryKey = var(TOPIC).parse().expect("a key");
    let consumers: usize = var(CONSUMERS).parse().expect("a count");
    let chain = client(None, None)
        .await
        .open_url_with(&var(URL), &pinned_to(identity))
        .await
        .expect("the queue's chain opens");
    let topic = load_topic(&chain, key).await;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..consumers {
        let (chain, topic) = (chain.clone(), topic.clone());
        tasks.spawn(async move {
            let session = AteSession::default();
            // Claiming items ahead: the victim holds claims on items it has not taken yet.
            let mut bus = topic
                .items
                .bus(&chain.dio(&session).await)
                .expect("bus")
                .with_prefetch(8);
            let by = format!("{}/{c}", std::process::id());
            let mut processed = 0usize;
            loop {
                let mut dio = chain.dio(&session).await;
                let batch = rand::rng().random_range(1..=16);
                let mut taken = Vec::new();
                while taken.len() < batch {
                    match tokio::time::timeout(IDLE, bus.process(&mut dio)).await {
                        Ok(job) => taken.push(job.expect("process").n),
                        Err(_) => break,
                    }
                }
                if taken.is_empty() {
                    // Nothing free: done once no item is left at all (claimed ones included).
                    let items = topic.items.iter(&dio).await.expect("items");
                    if items.is_empty() {
                        break;
                    }
                    continue;
                }
                for n in &taken {
                    let done = Done {
                        n: *n,
                        by: by.clone(),
                    };
                    topic
                        .done
                        .push(&mut dio, done)
                        .expect("stage the record of work");
                }
                match dio.commit().await {
                    Ok(()) => {
                        let before = processed;
                        processed += taken.len();
                        if before / 50 != processed / 50 {
                            say(&format!("PROCESSED {c} {processed}"));
                        }
                    }
                    // Taken by another consumer too (a claim is advisory): nothing of this
                    // transaction was written.
                    Err(AteError::Commit(CommitError::Trust(_))) => {}
                    Err(e) => panic!("commit: {e}"),
                }
            }
            processed
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a consumer");
    }
    say("EXIT");
}

fn pinned_to(identity: IdentityHash) -> ate_runtime::net::remote::RemoteOptions {
    let mut o = ate_runtime::net::remote::RemoteOptions::default();
    o.connect =
        ate_runtime::net::ConnectOptions::new(ate_runtime::net::ServerTrust::Pinned(identity));
    o
}

/// Reads `out` until the consumers of a child have processed `at_least` items between them.
fn until_processed(out: &mut child::Output, at_least: usize, seen: &mut Vec<String>) {
    let started = Instant::now();
    let mut totals: HashMap<String, usize> = HashMap::new();
    while totals.values().sum::<usize>() < at_least {
        assert!(started.elapsed() < PATIENCE, "the child stalled: {seen:?}");
        let Some(line) = out.line_within(PATIENCE) else {
            panic!("the child said nothing more: {seen:?}");
        };
        if let Some(rest) = line.strip_prefix("PROCESSED ")
            && let Some((c, n)) = rest.split_once(' ')
        {
            totals.insert(c.to_string(), n.parse().expect("a count"));
        }
        seen.push(line);
    }
}

#[test]
fn each_item_is_processed_once_when_a_consumer_process_is_killed() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let id = identity();
    let server = rt.block_on(server(&id, None, None));
    let source = rt
        .block_on(server.registry().open(&ChainKey::from(CHAIN)))
        .expect("the queue's chain");
    // The topic and its items, written on the server directly.
    let topic_key = rt.block_on(async {
        let session = AteSession::default();
        let mut dio = source.dio(&session).await;
        let dao = dio
            .store(Topic {
                items: DaoVec::new(),
                done: DaoVec::new(),
            })
            .expect("store");
        let key = *dao.key();
        drop(dao);
        dio.commit().await.expect("commit");
        let topic = load_topic(&source, key).await;
        for from in (0..ITEMS).step_by(1000) {
            let mut dio = source.dio(&session).await;
            for n in from..(from + 1000).min(ITEMS) {
                topic.items.push(&mut dio, Job { n }).expect("push");
            }
            dio.commit().await.expect("commit");
        }
        key
    });
    let envs = |consumers: usize| {
        [
            (URL, server.url(CHAIN)),
            (IDENTITY, id.hash().to_string()),
            (TOPIC, topic_key.to_string()),
            (CONSUMERS, consumers.to_string()),
        ]
    };
    // Two consumers in one process, one in the other; either may be the one killed.
    let (mut pair, mut pair_out) = child::spawn("consume", &envs(2));
    let (mut single, mut single_out) = child::spawn("consume", &envs(1));
    let mut rng = rand::rng();
    let kill_pair = rng.random_bool(0.5);
    let (victim, victim_out, survivor, survivor_out) = if kill_pair {
        (&mut pair, &mut pair_out, &mut single, single_out)
    } else {
        (&mut single, &mut single_out, &mut pair, pair_out)
    };
    // Mid-way: once the victim processed a random share of the items.
    let mut seen = Vec::new();
    let kill_at = rng.random_range(1000..3000);
    until_processed(victim_out, kill_at, &mut seen);
    victim.kill().expect("kill the child");
    let status = victim.wait().expect("wait for the child");
    assert_eq!(
        status.signal(),
        Some(9),
        "the victim ended by itself ({status}) after {seen:?}"
    );

    // The survivor drains the queue, the victim's claims freed with its connection.
    let status = survivor.wait().expect("wait for the survivor");
    let (lines, stderr) = survivor_out.finish();
    assert!(
        status.success(),
        "the survivor failed ({status}):\n{stderr}"
    );
    assert!(lines.iter().any(|l| l == "EXIT"), "{lines:?}");

    // Counted from the chain: no item left, and one record of work per item.
    rt.block_on(async {
        let topic = load_topic(&source, topic_key).await;
        let dio = source.dio(&AteSession::default()).await;
        let left = topic.items.iter(&dio).await.expect("items");
        assert!(
            left.is_empty(),
            "{} items lost (never processed), e.g. {:?}",
            left.len(),
            left.iter().take(5).map(|j| j.n).collect::<Vec<_>>()
        );
        let mut times = vec![0u32; ITEMS as usize];
        let mut by: HashMap<String, usize> = HashMap::new();
        for d in topic.done.iter(&dio).await.expect("records of work") {
            times[d.n as usize] += 1;
            *by.entry(d.by.split('/').next().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        let twice: Vec<usize> = (0..times.len()).filter(|&n| times[n] > 1).collect();
        let never: Vec<usize> = (0..times.len()).filter(|&n| times[n] == 0).collect();
        assert!(
            twice.is_empty(),
            "{} items processed twice: {twice:?}",
            twice.len()
        );
        assert!(
            never.is_empty(),
            "{} items without a record: {never:?}",
            never.len()
        );
        assert_eq!(by.len(), 2, "both processes did work: {by:?}");
        let victim_id = victim.id().to_string();
        println!(
            "R9: {ITEMS} items, 3 consumers in 2 processes; the one with {} consumer(s) killed \
             once it had processed {kill_at}+: {} committed by it, {} by the survivor; \
             0 left, 0 processed twice",
            if kill_pair { 2 } else { 1 },
            by.get(&victim_id).copied().unwrap_or(0),
            by.iter()
                .filter(|(p, _)| **p != victim_id)
                .map(|(_, n)| n)
                .sum::<usize>(),
        );
    });
    drop(source);
    rt.block_on(server.shutdown());
}
