//! The bus and the queue on a collection, embedded and over a server.

use std::time::Duration;

use ate_runtime::bus::Bus;
use ate_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Topic {
    name: String,
    items: DaoVec<Item>,
    other: DaoVec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    n: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Done {
    n: u32,
}

async fn local_chain() -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from("bus"))
        .await
        .expect("open")
}

/// A root record owning the items, its collections attached.
async fn topic(chain: &Chain) -> Topic {
    let mut dio = chain.dio(&AteSession::default()).await;
    let dao = dio
        .store(Topic {
            name: "jobs".into(),
            items: DaoVec::new(),
            other: DaoVec::new(),
        })
        .expect("store");
    let key = *dao.key();
    let mut t = (*dao).clone();
    dio.commit().await.expect("commit");
    t.items.attach(key);
    t.other.attach(key);
    t
}

async fn push(chain: &Chain, items: &DaoVec<Item>, ns: std::ops::Range<u32>) {
    let mut dio = chain.dio(&AteSession::default()).await;
    for n in ns {
        items.push(&mut dio, Item { n }).expect("push");
    }
    dio.commit().await.expect("commit");
}

/// Receives `n` items from `bus` (failing after a while).
async fn receive(bus: &mut Bus<Item>, n: usize) -> Vec<(u64, u32)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), bus.recv())
            .await
            .expect("delivered in time")
            .expect("recv");
        seen.push((m.seq, m.value.n));
    }
    seen
}

/// Checks what a bus received from writers 1..=4 each pushing 25 items one by one.
fn check_broadcast(seen: &[(u64, u32)]) {
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "in commit order");
    for w in 1..=4u32 {
        let mine: Vec<u32> = seen.iter().map(|s| s.1).filter(|n| n / 100 == w).collect();
        assert_eq!(mine, (100 * w..100 * w + 25).collect::<Vec<_>>());
    }
    assert!(
        !seen.iter().any(|s| s.1 < 100),
        "nothing from before the bus"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bus_receives_every_item_in_commit_order() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..3).await; // before the buses: not theirs
    let dio = chain.dio(&AteSession::default()).await;
    let mut buses: Vec<Bus<Item>> = (0..3).map(|_| t.items.bus(&dio).expect("bus")).collect();
    // Writers in other tasks, one item a commit; an item of another collection.
    let writers: Vec<_> = (1..=4u32)
        .map(|w| {
            let (chain, items) = (chain.clone(), t.items.clone());
            tokio::spawn(async move {
                for n in 100 * w..100 * w + 25 {
                    push(&chain, &items, n..n + 1).await;
                }
            })
        })
        .collect();
    push(&chain, &t.other, 9999..10_000).await;
    for w in writers {
        w.await.expect("writer");
    }
    let mut orders = Vec::new();
    for bus in &mut buses {
        let seen = receive(bus, 100).await;
        check_broadcast(&seen);
        orders.push(seen);
    }
    assert!(
        orders.windows(2).all(|o| o[0] == o[1]),
        "the same order for all"
    );
}

/// `consumers` tasks on `chains` (round robin) process the queue until it stays empty, taking
/// up to `batch` items per transaction (`Bus::process` when 1, `Bus::process_many` otherwise);
/// the items each processed.
async fn consume(
    chains: &[Chain],
    items: &DaoVec<Item>,
    consumers: usize,
    batch: usize,
) -> Vec<u32> {
    let tasks: Vec<_> = (0..consumers)
        .map(|c| {
            let chain = chains[c % chains.len()].clone();
            let items = items.clone();
            tokio::spawn(async move {
                let session = AteSession::default();
                let mut bus = items.bus(&chain.dio(&session).await).expect("bus");
                let mut done = Vec::new();
                loop {
                    let mut dio = chain.dio(&session).await;
                    let wait = Duration::from_millis(1500);
                    let taken = if batch == 1 {
                        tokio::time::timeout(wait, bus.process(&mut dio))
                            .await
                            .map(|r| vec![r.expect("process")])
                    } else {
                        tokio::time::timeout(wait, bus.process_many(&mut dio, batch))
                            .await
                            .map(|r| r.expect("process_many"))
                    };
                    let Ok(taken) = taken else {
                        return done; // the queue stayed empty
                    };
                    assert!(
                        !taken.is_empty() && taken.len() <= batch,
                        "1 to {batch} items"
                    );
                    // The work's records, in the same transaction as the deletions.
                    for item in &taken {
                        dio.store(Done { n: item.n }).expect("store");
                    }
                    match dio.commit().await {
                        Ok(()) => done.extend(taken.iter().map(|i| i.n)),
                        // Another consumer processed one first: nothing of this was written.
                        Err(AteError::Commit(CommitError::Trust(_))) => {}
                        Err(e) => panic!("commit: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("consumer"));
    }
    all.sort_unstable();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_process_each_item_exactly_once() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..200).await;
    let all = consume(std::slice::from_ref(&chain), &t.items, 4, 1).await;
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "each item once");
    // Counted from the chain: no item left, one record of work each.
    let dio = chain.dio(&AteSession::default()).await;
    assert!(t.items.iter(&dio).await.expect("items").is_empty());
    assert_eq!(chain.len(), 1 + 200, "the topic and 200 records of work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_taking_batches_process_each_item_exactly_once() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..300).await;
    let all = consume(std::slice::from_ref(&chain), &t.items, 4, 16).await;
    assert_eq!(all, (0..300).collect::<Vec<_>>(), "each item once");
    let dio = chain.dio(&AteSession::default()).await;
    assert!(t.items.iter(&dio).await.expect("items").is_empty());
    assert_eq!(chain.len(), 1 + 300, "the topic and 300 records of work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_takes_the_free_items_oldest_first_and_a_dropped_one_gives_them_back() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..5).await;
    let session = AteSession::default();
    let mut bus = t.items.bus(&chain.dio(&session).await).expect("bus");
    let mut a = chain.dio(&session).await;
    let first = bus.process_many(&mut a, 3).await.expect("first batch");
    assert_eq!(first.iter().map(|i| i.n).collect::<Vec<_>>(), [0, 1, 2]);
    // The free ones only, without waiting for more.
    let mut b = chain.dio(&session).await;
    let rest = tokio::time::timeout(Duration::from_secs(5), bus.process_many(&mut b, 64))
        .await
        .expect("no wait while some are free")
        .expect("second batch");
    assert_eq!(rest.iter().map(|i| i.n).collect::<Vec<_>>(), [3, 4]);
    // `a` goes away: its three come back, and one commit processes them all.
    drop(a);
    let mut c = chain.dio(&session).await;
    let again = tokio::time::timeout(Duration::from_secs(5), bus.process_many(&mut c, 64))
        .await
        .expect("given back at once")
        .expect("third batch");
    assert_eq!(again.iter().map(|i| i.n).collect::<Vec<_>>(), [0, 1, 2]);
    let before = chain.last_seq();
    c.commit().await.expect("commit");
    assert_eq!(
        chain.last_seq(),
        before + 1,
        "one transaction for the batch"
    );
    b.commit().await.expect("commit");
    assert!(
        t.items
            .iter(&chain.dio(&session).await)
            .await
            .expect("items")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_or_cancelled_consumer_gives_its_item_back() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..2).await;
    let session = AteSession::default();
    let mut bus = t.items.bus(&chain.dio(&session).await).expect("bus");
    let mut a = chain.dio(&session).await;
    let first = bus.process(&mut a).await.expect("first");
    assert_eq!(first.n, 0);
    // Claimed by `a`: another consumer gets the next one.
    let mut b = chain.dio(&session).await;
    assert_eq!(bus.process(&mut b).await.expect("second").n, 1);
    // Nothing else is free until `a` lets go.
    let mut c = chain.dio(&session).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), bus.process(&mut c))
            .await
            .is_err()
    );
    drop(a);
    let again = tokio::time::timeout(Duration::from_secs(5), bus.process(&mut c))
        .await
        .expect("given back at once")
        .expect("process");
    assert_eq!(again.n, 0);
    c.cancel();
    let mut d = chain.dio(&session).await;
    assert_eq!(bus.process(&mut d).await.expect("after cancel").n, 0);
    d.commit().await.expect("commit");
    b.commit().await.expect("commit");
    assert!(
        t.items
            .iter(&chain.dio(&session).await)
            .await
            .expect("items")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_ends_with_its_lease() {
    let chain = local_chain().await;
    let t = topic(&chain).await;
    push(&chain, &t.items, 0..1).await;
    let session = AteSession::default();
    let mut bus = t
        .items
        .bus(&chain.dio(&session).await)
        .expect("bus")
        .with_lease(Duration::from_millis(200));
    let mut slow = chain.dio(&session).await;
    bus.process(&mut slow).await.expect("taken");
    // The slow consumer's lease ends; another takes the item and commits first.
    let mut fast = chain.dio(&session).await;
    let item = tokio::time::timeout(Duration::from_secs(5), bus.process(&mut fast))
        .await
        .expect("taken after the lease")
        .expect("process");
    assert_eq!(item.n, 0);
    fast.commit().await.expect("the first commit wins");
    let err = slow.commit().await.expect_err("the late one is refused");
    assert!(
        matches!(err, AteError::Commit(CommitError::Trust(_))),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_excludes_and_a_stale_fencing_token_is_refused() {
    let chain = local_chain().await;
    let session = AteSession::default();
    let first = chain
        .lock_with_lease("leader", Duration::from_millis(300))
        .await
        .expect("free");
    assert!(
        chain
            .try_lock("leader", Duration::from_secs(5))
            .await
            .expect("ask")
            .is_none(),
        "held"
    );
    // A commit under the current grant goes through.
    let mut dio = chain.dio(&session).await;
    dio.fence(&first);
    dio.store(Done { n: 1 }).expect("store");
    dio.commit().await.expect("fenced commit while held");
    // The lease ends; a waiter gets the lock with a larger token.
    let second = tokio::time::timeout(Duration::from_secs(5), chain.lock("leader"))
        .await
        .expect("granted after the lease")
        .expect("lock");
    assert!(second.token() > first.token());
    // The first holder's commit is refused: nothing written.
    let before = chain.len();
    dio.store(Done { n: 2 }).expect("store");
    let err = dio.commit().await.expect_err("stale token");
    assert!(
        matches!(&err, AteError::Commit(CommitError::Fenced { lock, token }) if lock == "leader" && *token == first.token()),
        "{err}"
    );
    assert_eq!(chain.len(), before);
    // Released on drop: the next waiter gets it at once.
    drop(second);
    let third = tokio::time::timeout(Duration::from_secs(1), chain.lock("leader"))
        .await
        .expect("released at once")
        .expect("lock");
    assert!(third.token() > first.token());
    assert!(
        chain.try_lock("", Duration::from_secs(1)).await.is_err(),
        "empty name"
    );
}

/// A replica whose upstream only commits and claims item by item (no `claim_next` of its
/// own): the default `Upstream::claim_next` walks the replica's view.
mod plain_upstream {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;
    use ate_runtime::chain::{SealedTransaction, Upstream};
    use parking_lot::Mutex;

    #[derive(Debug)]
    struct ClaimOnly {
        source: Chain,
        claimed: Mutex<HashSet<PrimaryKey>>,
    }

    #[async_trait::async_trait]
    impl Upstream for ClaimOnly {
        async fn commit(&self, tx: SealedTransaction) -> Result<u64, CommitError> {
            let tx = SealedTransaction::from_bytes(tx.to_bytes())?;
            self.source.commit_sealed(tx).await
        }

        async fn claim(
            &self,
            key: PrimaryKey,
            _lease: Duration,
        ) -> Result<Option<u64>, CommitError> {
            Ok(self.claimed.lock().insert(key).then_some(1))
        }

        fn release(&self, key: PrimaryKey, _token: u64) {
            self.claimed.lock().remove(&key);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumers_of_an_upstream_without_claim_next_take_each_item_once() {
        let source = local_chain().await;
        let t = topic(&source).await;
        push(&source, &t.items, 0..40).await;
        let up = Arc::new(ClaimOnly {
            source: source.clone(),
            claimed: Mutex::new(HashSet::new()),
        });
        let replica = ChainBuilder::new(&AteConfig::in_memory())
            .await
            .build()
            .open_replica(&ChainKey::from("bus"), up.clone())
            .await
            .expect("replica");
        // Applies the source's transactions to the replica as they come.
        let mut stream = source.subscribe(1);
        let pump = {
            let replica = replica.clone();
            tokio::spawn(async move {
                while let Ok(c) = stream.next().await {
                    let batch = vec![(c.seq(), c.payload().clone())];
                    replica.apply_replicated_batch(batch).await.expect("apply");
                }
            })
        };
        replica
            .wait_for(source.last_seq())
            .await
            .expect("caught up");
        let all = consume(std::slice::from_ref(&replica), &t.items, 3, 1).await;
        assert_eq!(all, (0..40).collect::<Vec<_>>(), "each item once");
        assert!(up.claimed.lock().is_empty(), "every claim released");
        assert_eq!(source.len(), 1 + 40, "the topic and 40 records of work");
        pump.abort();
    }
}

mod remote {
    use super::*;
    use ate_runtime::crypto::KeySize;
    use ate_runtime::net::host::{Server, ServerConfig};
    use ate_runtime::net::remote::RemoteOptions;
    use ate_runtime::net::wire::{self, ClientMsg, ServerMsg, WireLimits};
    use ate_runtime::net::{ConnectOptions, ServerIdentity, ServerTrust, connect};

    async fn server() -> (Server, ServerIdentity) {
        let id = ServerIdentity::generate(KeySize::Bit128);
        let mut config = ServerConfig::new(id.clone());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.chains = AteConfig::in_memory();
        (Server::start(config).await.expect("server"), id)
    }

    async fn client(server: &Server, id: &ServerIdentity) -> Chain {
        let mut o = RemoteOptions::default();
        o.connect = ConnectOptions::new(ServerTrust::Pinned(id.hash()));
        ChainBuilder::new(&AteConfig::in_memory())
            .await
            .build()
            .open_url_with(&server.url("bus"), &o)
            .await
            .expect("open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_buses_receive_every_item() {
        let (server, id) = server().await;
        let a = client(&server, &id).await;
        let b = client(&server, &id).await;
        let t = topic(&a).await;
        b.sync().await.expect("sync");
        let mut bus_b: Bus<Item> = t
            .items
            .bus(&b.dio(&AteSession::default()).await)
            .expect("bus");
        let local = server
            .registry()
            .open(&ChainKey::from("bus"))
            .await
            .expect("open on the server");
        let mut bus_server: Bus<Item> = t
            .items
            .bus(&local.dio(&AteSession::default()).await)
            .expect("bus");
        // Writers on both clients and on the server itself.
        let writers: Vec<_> = (1..=4u32)
            .map(|w| {
                let chain = [a.clone(), b.clone(), local.clone()][w as usize % 3].clone();
                let items = t.items.clone();
                tokio::spawn(async move {
                    for n in 100 * w..100 * w + 25 {
                        push(&chain, &items, n..n + 1).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        let on_b = receive(&mut bus_b, 100).await;
        let on_server = receive(&mut bus_server, 100).await;
        check_broadcast(&on_b);
        assert_eq!(on_b, on_server, "the same items in the same order");
        drop((a, b, local));
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_consumers_process_each_item_once_and_disconnects_free_claims() {
        let (server, id) = server().await;
        let a = client(&server, &id).await;
        let b = client(&server, &id).await;
        let t = topic(&a).await;
        push(&a, &t.items, 0..60).await;
        b.sync().await.expect("sync");

        // A consumer that claims the oldest item (a long lease) and goes away without
        // committing or releasing: its claim ends with its connection.
        let session = AteSession::default();
        let oldest = *t.items.iter(&a.dio(&session).await).await.expect("items")[0].key();
        let (mut raw, _) = connect(
            &server.url("bus"),
            &ConnectOptions::new(ServerTrust::Pinned(id.hash())),
        )
        .await
        .expect("handshake");
        let claim = wire::encode(&ClientMsg::Claim {
            id: 1,
            key: oldest,
            lease_ms: 600_000,
        });
        raw.send(&claim).await.expect("send");
        let token = loop {
            let b = raw.recv().await.expect("recv").expect("a message");
            if let Ok(ServerMsg::Claimed { id: 1, token }) =
                wire::decode_server(&b, &WireLimits::default())
            {
                break token;
            }
        };
        assert!(token.is_some(), "granted");
        // While it is held, a consumer passes the oldest item by.
        {
            let mut bus = t.items.bus(&a.dio(&session).await).expect("bus");
            let mut dio = a.dio(&session).await;
            let next = bus.process(&mut dio).await.expect("process");
            assert_ne!(*next.key(), oldest);
        }
        drop(raw);
        let taken = a
            .dio(&session)
            .await
            .load::<Item>(&oldest)
            .await
            .expect("still there");

        let all = consume(&[a.clone(), b.clone()], &t.items, 3, 1).await;
        assert_eq!(all, (0..60).collect::<Vec<_>>(), "each item once");
        assert!(all.contains(&taken.n));
        a.sync().await.expect("sync");
        assert!(
            t.items
                .iter(&a.dio(&session).await)
                .await
                .expect("items")
                .is_empty()
        );
        assert_eq!(a.len(), 1 + 60);
        drop((a, b));
        server.shutdown().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_consumers_taking_batches_process_each_item_once() {
        let (server, id) = server().await;
        let a = client(&server, &id).await;
        let b = client(&server, &id).await;
        let t = topic(&a).await;
        push(&a, &t.items, 0..200).await;
        b.sync().await.expect("sync");
        let all = consume(&[a.clone(), b.clone()], &t.items, 4, 16).await;
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "each item once");
        a.sync().await.expect("sync");
        let session = AteSession::default();
        assert!(
            t.items
                .iter(&a.dio(&session).await)
                .await
                .expect("items")
                .is_empty()
        );
        assert_eq!(a.len(), 1 + 200);
        drop((a, b));
        server.shutdown().await;
    }

    /// Sends `msg` on `raw` and returns the server's `ClaimedNext` answer to request `id`.
    async fn ask(
        raw: &mut ate_runtime::net::Channel,
        id: u64,
        msg: ClientMsg,
    ) -> (Vec<PrimaryKey>, u64) {
        raw.send(&wire::encode(&msg)).await.expect("send");
        loop {
            let b = raw.recv().await.expect("recv").expect("a message");
            match wire::decode_server(&b, &WireLimits::default()) {
                Ok(ServerMsg::ClaimedNext { id: i, items, seen }) if i == id => {
                    return (items.iter().map(|c| c.key).collect(), seen);
                }
                Ok(ServerMsg::Goodbye { reason }) => panic!("goodbye: {reason}"),
                _ => {}
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claim_next_is_capped_per_ask_and_per_connection() {
        let (server, id) = server().await;
        let a = client(&server, &id).await;
        let t = topic(&a).await;
        for from in (0..5000).step_by(1000) {
            push(&a, &t.items, from..from + 1000).await;
        }
        let session = AteSession::default();
        let order: Vec<PrimaryKey> = t
            .items
            .iter(&a.dio(&session).await)
            .await
            .expect("items")
            .iter()
            .map(|d| *d.key())
            .collect();
        let (mut raw, _) = connect(
            &server.url("bus"),
            &ConnectOptions::new(ServerTrust::Pinned(id.hash())),
        )
        .await
        .expect("handshake");
        let owner = t.items.parent().expect("attached");
        let next = |id: u64, type_name: String, collection: u64, max: u64| ClientMsg::ClaimNext {
            id,
            parent: owner,
            collection,
            type_name,
            lease_ms: u64::MAX,
            max,
        };
        let item_type = ate_runtime::schema::type_name_of::<Item>().to_string();
        // Nothing for none, for another type, another collection, or a name too long.
        for (i, msg) in [
            next(1, item_type.clone(), t.items.id(), 0),
            next(2, "other.Type".into(), t.items.id(), 5),
            next(3, item_type.clone(), t.other.id(), 5),
            next(4, "x".repeat(100_000), t.items.id(), 5),
        ]
        .into_iter()
        .enumerate()
        {
            let (got, seen) = ask(&mut raw, i as u64 + 1, msg).await;
            assert!(got.is_empty(), "case {i}: {got:?}");
            assert_eq!(seen, a.last_seq(), "case {i}: the server's position");
        }
        // An ask for 2^64 - 1 items gets at most 64, the oldest first.
        let (got, _) = ask(
            &mut raw,
            5,
            next(5, item_type.clone(), t.items.id(), u64::MAX),
        )
        .await;
        assert_eq!(got, order[..64].to_vec());
        // A connection holds at most 4,096 claims however it asks.
        let mut held = got.len();
        for i in 6.. {
            let (got, _) = ask(&mut raw, i, next(i, item_type.clone(), t.items.id(), 64)).await;
            if got.is_empty() {
                break;
            }
            held += got.len();
        }
        assert_eq!(held, 4096);
        // The claims it holds are passed by: another consumer takes the next free item.
        let mut bus = t.items.bus(&a.dio(&session).await).expect("bus");
        let mut dio = a.dio(&session).await;
        assert_eq!(
            *bus.process(&mut dio).await.expect("process").key(),
            order[4096]
        );
        dio.cancel();
        drop((bus, dio));
        // They end with the connection (once the server has seen it end).
        drop(raw);
        let mut freed = false;
        for _ in 0..500 {
            let mut bus = t
                .items
                .bus(&a.dio(&session).await)
                .expect("bus")
                .with_prefetch(0);
            let mut dio = a.dio(&session).await;
            if *bus.process(&mut dio).await.expect("process").key() == order[0] {
                freed = true;
                break;
            }
            dio.cancel();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(freed, "the oldest item is free again");
        drop(a);
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_held_by_a_dead_connection_is_freed_and_stale_tokens_are_refused() {
        let (server, id) = server().await;
        let a = client(&server, &id).await;
        let b = client(&server, &id).await;
        let held = a.lock("leader").await.expect("a locks");
        assert!(
            b.try_lock("leader", Duration::from_secs(5))
                .await
                .expect("ask")
                .is_none()
        );
        // a's connection ends without a release: the server frees the lock.
        std::mem::forget(held);
        drop(a);
        let by_b = tokio::time::timeout(Duration::from_secs(10), b.lock("leader"))
            .await
            .expect("freed with the connection")
            .expect("lock");

        // A grant that expired: the server refuses the commit it fences.
        let c = client(&server, &id).await;
        let short = c
            .lock_with_lease("short", Duration::from_millis(200))
            .await
            .expect("lock");
        let mut dio = c.dio(&AteSession::default()).await;
        dio.fence(&short);
        dio.store(Done { n: 1 }).expect("store");
        dio.commit().await.expect("while held");
        let _taken = tokio::time::timeout(Duration::from_secs(5), b.lock("short"))
            .await
            .expect("after the lease")
            .expect("lock");
        dio.store(Done { n: 2 }).expect("store");
        let err = dio.commit().await.expect_err("stale");
        assert!(
            matches!(err, AteError::Commit(CommitError::Fenced { .. })),
            "{err}"
        );
        assert_eq!(c.len(), 1, "only the commit made while held");
        drop((by_b, b, c));
        server.shutdown().await;
    }
}
