//! A bus and a queue on a record's child collection.
//!
//! Any [`DaoVec`] is also a channel: [`Bus::recv`] yields every item committed to the
//! collection after the bus was made, in commit order, to every bus on it (whoever wrote
//! the item: another task, another process through a server); [`Bus::process`] takes the next
//! item still in the collection exactly once, for one consumer among many, and
//! [`Bus::process_many`] up to [`MAX_CLAIM_BATCH`] of them at once, deleted by one commit (one
//! durable write for the batch instead of one per item).
//!
//! # What exactly once means here
//!
//! [`Bus::process`] stages the item's deletion in the consumer's [`Dio`]: the item is
//! processed when, and only when, that Dio commits, in the same transaction as whatever else
//! the consumer wrote to the chain. A deletion names the version it read, so of two
//! consumers that took the same item only one can commit; the other's commit is refused as
//! stale and writes nothing. Hence every item is deleted once, and the chain holds the
//! effects of exactly one processing of it. If the consumer cancels, drops its Dio, crashes
//! or disconnects before its commit, the item stays and another consumer takes it.
//!
//! Consumers also claim the item they take, so that the others pass it by instead of doing
//! the same work twice: a claim ends when the Dio commits, is cancelled or dropped, when the
//! connection of a remote consumer ends (the server holds remote claims), and otherwise
//! after a lease ([`Bus::with_lease`], 30 s by default). The chain that holds the claims picks
//! the items: one ask claims the oldest items nobody has claimed. A consumer of a remote chain
//! asks for its next items while it processes the one it took ([`Bus::with_prefetch`]), so
//! that the round trip is not on its way; the items it claimed ahead go back when the bus is
//! dropped.
//!
//! What it does not cover: effects outside the chain. A consumer that sends an e-mail and
//! then crashes before its commit leaves the item for another consumer, which sends the
//! e-mail again; make such effects idempotent, or record them in the same commit and check
//! first.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::chain::{
    Chain, ClaimGuard, ClaimNext, CommitError, CommitStream, MAX_CLAIM_BATCH, StreamError,
};
use crate::dio::{Dao, DaoVec, Dio, DioError, Storable};
use crate::event::{ParentLink, PrimaryKey};
use crate::schema;
use crate::session::AteSession;

/// How long a consumer's claim on an item lasts unless it ends sooner (default of
/// [`Bus::with_lease`]).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How often a consumer waiting for an item looks again even when nothing woke it (claims
/// held elsewhere end without telling).
const RESCAN: Duration = Duration::from_millis(250);

/// How many items a consumer of a remote chain claims ahead by default
/// ([`Bus::with_prefetch`]).
pub const DEFAULT_PREFETCH: usize = 1;

/// Claims on items and the transactions that wrote their versions, and the last transaction
/// the chain that made them had seen.
type Taken = (Vec<(ClaimGuard, u64)>, u64);

/// Why a bus could not deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// Reading the chain's committed transactions failed (the chain closed, or it is
    /// poisoned).
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// An item could not be read (a missing read key, a body of another type, …).
    #[error(transparent)]
    Dio(#[from] DioError),
    /// A claim could not be asked for (a remote chain's connection is down).
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// An item delivered by [`Bus::recv`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Message<T> {
    /// The item's record.
    pub key: PrimaryKey,
    /// The transaction that committed it.
    pub seq: u64,
    /// The item as committed.
    pub value: T,
}

/// A bus and queue on the collection `(owner, collection id)` of a chain, for items of type
/// `T`. Made by [`DaoVec::bus`] or [`Bus::on`]; see the [module](self) docs.
pub struct Bus<T> {
    chain: Chain,
    session: AteSession,
    link: ParentLink,
    type_name: &'static str,
    stream: Option<CommitStream>,
    /// Where the stream starts (made on the first `recv`).
    from: u64,
    ready: VecDeque<Message<T>>,
    lease: Duration,
    /// Items claimed and not handed out yet (with the transaction of their version), oldest
    /// first.
    claimed: VecDeque<(ClaimGuard, u64)>,
    /// An ask for the next items, sent while the last one is processed (remote chains).
    /// Dropped with the bus, its task drops the answer, which gives the claims back.
    ahead: Option<JoinHandle<Result<Taken, CommitError>>>,
    /// Items claimed ahead on a remote chain.
    prefetch: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Bus<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("chain", self.chain.key())
            .field("owner", &self.link.parent)
            .field("collection", &self.link.collection)
            .field("type", &self.type_name)
            .finish()
    }
}

impl<T: Storable> DaoVec<T> {
    /// A bus on this collection, reading as `dio`'s session: [`Bus::recv`] yields the items
    /// committed from now on.
    ///
    /// # Errors
    ///
    /// [`DioError::DetachedCollection`] when the collection does not know its owner;
    /// [`DioError::TypeNameClash`] when `T`'s stable name is ambiguous.
    pub fn bus(&self, dio: &Dio) -> Result<Bus<T>, DioError> {
        let owner = self.parent().ok_or(DioError::DetachedCollection)?;
        Bus::on(dio.chain(), dio.session(), owner, self.id())
    }
}

impl<T: Storable> Bus<T> {
    /// A bus on the collection `collection` of the record `owner` (for plain types, whose
    /// collections are not attached by a derive), reading as `session`: [`Bus::recv`] yields
    /// the items committed from now on.
    ///
    /// # Errors
    ///
    /// [`DioError::TypeNameClash`] when `T`'s stable name is ambiguous.
    pub fn on(
        chain: &Chain,
        session: &AteSession,
        owner: PrimaryKey,
        collection: u64,
    ) -> Result<Self, DioError> {
        Ok(Bus {
            chain: chain.clone(),
            session: session.clone(),
            link: ParentLink {
                parent: owner,
                collection,
            },
            type_name: schema::checked_type_name_of::<T>()?,
            stream: None,
            from: chain.last_seq() + 1,
            ready: VecDeque::new(),
            lease: DEFAULT_LEASE,
            claimed: VecDeque::new(),
            ahead: None,
            prefetch: DEFAULT_PREFETCH,
            _t: PhantomData,
        })
    }

    /// How long a claim taken by [`Bus::process`] lasts unless it ends sooner (default
    /// [`DEFAULT_LEASE`]). Longer than the processing takes, or another consumer takes the
    /// item meanwhile (and one of the two commits is refused).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many items [`Bus::process`] claims ahead on a remote chain (default
    /// [`DEFAULT_PREFETCH`], at most [`MAX_CLAIM_BATCH`]): while the consumer processes one
    /// item, the bus asks the server for the next, so that the round trip is not on the
    /// consumer's way. Items claimed ahead are passed by by the other consumers until this one
    /// takes them, or they go back when the bus is dropped (or at the end of their lease).
    /// Zero claims nothing ahead: each item is asked for when it is wanted. A local chain
    /// claims nothing ahead (its claims cost no round trip).
    pub fn with_prefetch(mut self, items: usize) -> Self {
        self.prefetch = items.min(MAX_CLAIM_BATCH);
        self
    }

    /// The next item committed to the collection since the bus was made, in commit order
    /// (every bus on the collection receives every item, whoever committed it). Items are new
    /// records of type `T` in the collection; their later changes and deletions are not
    /// items.
    ///
    /// # Errors
    ///
    /// [`BusError::Stream`] when the chain's transactions cannot be read (the chain closed,
    /// or is poisoned); [`BusError::Dio`] when an item cannot be read with this bus's session
    /// (its read key is missing, its body is not a `T`): the item is skipped, and the next
    /// call goes on after it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item is delivered only by a call that returns it.
    pub async fn recv(&mut self) -> Result<Message<T>, BusError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(m);
            }
            let from = self.from;
            let chain = self.chain.clone();
            let stream = self.stream.get_or_insert_with(|| chain.subscribe(from));
            let committed = stream.next().await?;
            let mut failed = None;
            for ev in committed.events() {
                if ev.tombstone || ev.parent != Some(self.link) || ev.type_name != self.type_name {
                    continue;
                }
                let raw = committed.payload().slice_ref(ev.raw);
                match crate::dio::open_committed::<T>(
                    &self.chain,
                    &self.session,
                    committed.seq(),
                    raw,
                ) {
                    // A new record: an item. A later version is not.
                    Ok((key, None, value)) => self.ready.push_back(Message {
                        key,
                        seq: committed.seq(),
                        value,
                    }),
                    Ok(_) => {}
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failed {
                // The readable items of the transaction are delivered next.
                return Err(e.into());
            }
        }
    }

    /// Takes the next item still in the collection for `dio`'s consumer, exactly once: it is
    /// claimed, loaded into `dio`, and its deletion is staged there, so it is processed when
    /// `dio` commits (with whatever else the consumer staged). Waits while the collection
    /// holds no item that another consumer has not claimed. Items are taken oldest first.
    ///
    /// If `dio` is cancelled or dropped instead, the claim ends and another consumer gets the
    /// item. See the [module](self) docs for what exactly once covers.
    ///
    /// # Errors
    ///
    /// [`BusError::Commit`] when a claim cannot be asked for (a remote chain's connection is
    /// down: [`CommitError::Unreachable`]); [`BusError::Dio`] when an item cannot be read or
    /// deleted with `dio`'s session (it stays in the collection).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item is taken only by a call that returns it (a claim asked for by a
    /// cancelled call ends with its lease at the latest).
    pub async fn process(&mut self, dio: &mut Dio) -> Result<Dao<T>, BusError> {
        let mut taken = self.take(dio, 1).await?;
        Ok(taken.remove(0))
    }

    /// Takes up to `max` items still in the collection for `dio`'s consumer (at most
    /// [`MAX_CLAIM_BATCH`]), each exactly once as [`Bus::process`] takes one: they are claimed
    /// with one ask, loaded into `dio`, and their deletions are staged there, so they are all
    /// processed when `dio` commits, in one transaction (one durable write for the batch).
    /// Waits while the collection holds no item that another consumer has not claimed, then
    /// takes those free at that moment, oldest first, without waiting for more: the batch
    /// holds at least one item.
    ///
    /// A batch commits or fails as a whole: if another consumer processed one of its items
    /// meanwhile (its claim outlived by a slow consumer's lease), the commit is refused as
    /// stale and every item of the batch stays for the others.
    ///
    /// # Errors
    ///
    /// Those of [`Bus::process`]. When an item of the batch cannot be deleted with `dio`'s
    /// session, the items staged before it are returned, and the error comes with the next
    /// call (the item stays in the collection).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: items are staged in `dio` only by a call that returns them (the claims of
    /// a cancelled call end when it is dropped, or with their lease).
    pub async fn process_many(
        &mut self,
        dio: &mut Dio,
        max: usize,
    ) -> Result<Vec<Dao<T>>, BusError> {
        self.take(dio, max.clamp(1, MAX_CLAIM_BATCH)).await
    }

    /// Takes 1 to `max` items: waits for the first, then takes the ones claimed already.
    async fn take(&mut self, dio: &mut Dio, max: usize) -> Result<Vec<Dao<T>>, BusError> {
        // Loaded first, staged at the end with no await in between: a cancelled call stages
        // nothing, and its claims end as they are dropped.
        let mut loaded: Vec<(Dao<T>, ClaimGuard)> = Vec::new();
        while loaded.is_empty() {
            if self.claimed.is_empty() {
                self.ask_for(max).await?;
                continue;
            }
            let batch: Vec<_> = self.claimed.drain(..max.min(self.claimed.len())).collect();
            if self.claimed.is_empty() && self.ahead.is_none() && self.ahead_size() > 0 {
                let (chain, ask) = (self.chain.clone(), self.ask(self.ahead_size()));
                self.ahead = Some(tokio::spawn(async move { chain.claim_next(&ask).await }));
            }
            for (claim, seq) in batch {
                if let Some(dao) = self.load(dio, &claim, seq).await? {
                    loaded.push((dao, claim));
                }
            }
        }
        let mut out = Vec::with_capacity(loaded.len());
        for (dao, claim) in loaded {
            if let Err(e) = dio.delete(dao.key()) {
                if out.is_empty() {
                    return Err(e.into());
                }
                // The rest go back (their claims end here); the error comes again next time.
                break;
            }
            dio.hold(claim);
            out.push(dao);
        }
        Ok(out)
    }

    /// Claims the next items (the answer of the ask sent ahead, or a new ask for `want` of
    /// them), or waits for a commit or a claim's end when none is free.
    async fn ask_for(&mut self, want: usize) -> Result<(), BusError> {
        let (taken, seen) = match self.ahead.as_mut() {
            Some(ask) => {
                let answer = ask.await;
                self.ahead = None;
                answer.map_err(|e| {
                    CommitError::Unreachable(format!("the ask for items failed: {e}").into())
                })??
            }
            None => {
                self.chain
                    .claim_next(&self.ask(want + self.ahead_size()))
                    .await?
            }
        };
        if taken.is_empty() {
            // Nothing free: wait for a commit after the answer, or for a claim to end.
            tokio::select! {
                r = self.chain.wait_for(seen + 1) => r?,
                _ = self.chain.claims_changed(RESCAN) => {}
            }
        }
        self.claimed.extend(taken);
        Ok(())
    }

    /// The claimed item into `dio`, unless it is gone (processed meanwhile, or moved).
    async fn load(
        &self,
        dio: &mut Dio,
        claim: &ClaimGuard,
        seq: u64,
    ) -> Result<Option<Dao<T>>, BusError> {
        // A replica shows the item once it has applied the version the claim saw.
        self.chain.wait_for(seq).await?;
        let key = *claim.key();
        if self.chain.view().read().parent_of(&key) != Some(self.link) {
            // Processed meanwhile (its deletion reached the view first), or moved.
            return Ok(None);
        }
        match dio.load::<T>(&key).await {
            Ok(d) => Ok(Some(d)),
            Err(DioError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// How many items to claim ahead: none on a local chain.
    fn ahead_size(&self) -> usize {
        if self.chain.is_replica() {
            self.prefetch
        } else {
            0
        }
    }

    /// An ask for `max` items of this bus's collection.
    fn ask(&self, max: usize) -> ClaimNext {
        ClaimNext::new(
            self.link,
            self.type_name,
            self.lease,
            max.clamp(1, MAX_CLAIM_BATCH),
        )
    }

    /// The chain the bus is on.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}
