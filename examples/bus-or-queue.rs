//! One collection used as a bus and as a queue: every subscriber receives every job as it is
//! committed, and three workers process each job exactly once (the deletion of the job and
//! the record of its result commit together).
//!
//! ```text
//! cargo run -p ate-examples --example bus-or-queue                  # an embedded chain
//! cargo run -p ate-examples --example bus-or-queue -- --url ws://localhost:5000/db/jobs
//! ```
//! With `--url` the chain is on a running `atedb solo` (trusting its identity on first use):
//! the same code, the items arrive from the server and the claims are held there.

use std::time::Duration;

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Jobs {
    name: String,
    queue: DaoVec<Job>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Job {
    n: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Result_ {
    n: u32,
    square: u64,
    worker: usize,
}

const JOBS: u32 = 30;
const WORKERS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1).cloned());
    let registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let chain = match &url {
        Some(url) => registry.open_url(url).await?,
        None => registry.open(&ChainKey::from("jobs")).await?,
    };
    let session = AteSession::default();

    // The record that owns the queue.
    let mut dio = chain.dio(&session).await;
    let jobs = dio.store(Jobs {
        name: "squares".into(),
        queue: DaoVec::new(),
    })?;
    let mut queue = jobs.queue.clone();
    queue.attach(*jobs.key());
    dio.commit().await?;

    // A subscriber: every job, in commit order, whoever commits it.
    let mut bus = queue.bus(&chain.dio(&session).await)?;
    let watcher = tokio::spawn(async move {
        let mut seen = 0;
        while seen < JOBS {
            let m = bus.recv().await?;
            seen += 1;
            if m.value.n % 10 == 0 {
                println!("bus: job {} committed (transaction {})", m.value.n, m.seq);
            }
        }
        Ok::<_, BusError>(seen)
    });

    // Workers: each job once.
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (chain, queue, session) = (chain.clone(), queue.clone(), session.clone());
        workers.push(tokio::spawn(async move {
            let mut bus = queue.bus(&chain.dio(&session).await)?;
            let mut done = 0u32;
            loop {
                let mut dio = chain.dio(&session).await;
                let job =
                    match tokio::time::timeout(Duration::from_millis(500), bus.process(&mut dio))
                        .await
                    {
                        Ok(job) => job?,
                        Err(_) => return Ok::<_, AteError>(done), // nothing left
                    };
                let n = job.n;
                dio.store(Result_ {
                    n,
                    square: u64::from(n) * u64::from(n),
                    worker: w,
                })?;
                match dio.commit().await {
                    Ok(()) => done += 1,
                    // Another worker processed it first; nothing of this was written.
                    Err(AteError::Commit(CommitError::Trust(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }));
    }

    // The producer.
    for n in 0..JOBS {
        let mut dio = chain.dio(&session).await;
        queue.push(&mut dio, Job { n })?;
        dio.commit().await?;
    }

    let seen = watcher.await??;
    let mut processed = 0;
    for (w, h) in workers.into_iter().enumerate() {
        let done = h.await??;
        println!("worker {w} processed {done} jobs");
        processed += done;
    }
    let left = queue.iter(&chain.dio(&session).await).await?.len();
    println!("{seen} jobs seen on the bus, {processed} processed, {left} left in the queue");
    assert_eq!(seen, JOBS);
    assert_eq!(processed, JOBS, "each job exactly once");
    assert_eq!(left, 0);
    Ok(())
}
