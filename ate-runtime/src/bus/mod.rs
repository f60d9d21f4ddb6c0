//! A bus and a queue on a record's child collection.
//!
//! Any [`DaoVec`] is also a channel: [`Bus::recv`] yields every item committed to the
//! collection after the bus was made, in commit order, to every bus on it (whoever wrote
//! the item: another task, another process through a server); [`Bus::process`] takes the next
//! item still in the collection exactly once, for one consumer among many.
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
//! after a lease ([`Bus::with_lease`], 30 s by default).
//!
//! What it does not cover: effects outside the chain. A consumer that sends an e-mail and
//! then crashes before its commit leaves the item for another consumer, which sends the
//! e-mail again; make such effects idempotent, or record them in the same commit and check
//! first.

use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use crate::chain::{Chain, CommitError, CommitStream, StreamError};
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
    /// Items whose claim another consumer held when last asked: asked again only after a
    /// scan found nothing else (each ask of a remote chain is a round trip).
    passed: HashSet<PrimaryKey>,
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
            passed: HashSet::new(),
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
        loop {
            let seen = self.chain.last_seq();
            let candidates: Vec<PrimaryKey> = {
                let view = self.chain.view().read();
                view.children(&self.link)
                    .filter(|k| {
                        view.get(k)
                            .is_some_and(|e| view.type_name(e.type_id) == self.type_name)
                    })
                    .collect()
            };
            // Those passed by last time come last.
            let (fresh, passed): (Vec<_>, Vec<_>) = candidates
                .into_iter()
                .partition(|k| !self.passed.contains(k));
            for key in fresh.into_iter().chain(passed) {
                if dio.holds(&key) {
                    continue;
                }
                let Some(claim) = self.chain.claim(key, self.lease).await? else {
                    self.passed.insert(key);
                    continue;
                };
                self.passed.remove(&key);
                let dao = match dio.load::<T>(&key).await {
                    Ok(d) => d,
                    // Processed meanwhile (its deletion reached the view after the scan).
                    Err(DioError::NotFound(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                dio.delete(&key)?;
                dio.hold(claim);
                return Ok(dao);
            }
            // Nothing free: wait for a new commit or for a claim to end.
            self.passed.clear();
            tokio::select! {
                r = self.chain.wait_for(seen + 1) => r?,
                _ = self.chain.claims_changed(RESCAN) => {}
            }
        }
    }

    /// The chain the bus is on.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}
