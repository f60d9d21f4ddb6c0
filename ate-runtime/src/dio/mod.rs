//! Reading and writing records: [`Dio`] (a transaction), [`Dao`] (a typed record), and the
//! relations [`DaoVec`] and [`DaoRef`].
//!
//! A Dio reads the chain's materialized view plus its own staged writes (read-your-writes).
//! Writes are staged in memory until [`Dio::commit`], which writes them as one atomic, durable
//! transaction. Dropping a Dio without committing writes nothing.

mod dao;
mod delete;
mod error;
mod find;
mod pool;
mod read;
mod relations;
mod seal;
mod staging;

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

pub use dao::{AuthMut, Dao, DaoMut};
pub use error::DioError;
pub(crate) use read::open_committed;
pub use relations::{DaoRef, DaoVec};
use staging::{Staged, Staging};

use crate::AteError;
use crate::chain::{Chain, CommitError, SealedTransaction, Submitted};
use crate::event::{ParentLink, PrimaryKey};
use crate::schema;
use crate::session::AteSession;
use crate::trust::Authorization;
use crate::trust::meta::EventTrust;

/// What can be stored: any serde type that is `Clone + Send + Sync + 'static`.
pub trait Storable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Storable for T {}

pub(crate) fn encode<T: Storable>(value: &T) -> Result<Bytes, DioError> {
    rmp_serde::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| DioError::Serialize {
            type_name: schema::type_name_of::<T>().to_string(),
            reason: e.to_string(),
        })
}

fn decode<T: Storable>(key: PrimaryKey, body: &[u8]) -> Result<T, DioError> {
    let mut value: T = rmp_serde::from_slice(body).map_err(|e| DioError::Deserialize {
        key,
        type_name: schema::type_name_of::<T>().to_string(),
        reason: e.to_string(),
    })?;
    attach(&mut value, key);
    Ok(value)
}

fn attach<T: Storable>(value: &mut T, key: PrimaryKey) {
    if let Some(reg) = schema::registration_of::<T>() {
        (reg.attach)(value as &mut dyn Any, key);
    }
}

/// A unit of work on one chain for one session: reads, staged writes, then one commit.
pub struct Dio {
    chain: Chain,
    session: AteSession,
    staging: Arc<Mutex<Staging>>,
    /// Queue items this Dio took ([`Bus::process`](crate::bus::Bus::process)): claimed until
    /// its commit deletes them, or until it is dropped or cancelled.
    claims: Vec<crate::chain::ClaimGuard>,
    /// The lock grant its commits are made under ([`Dio::fence`]).
    fence: Option<crate::chain::Fence>,
}

impl std::fmt::Debug for Dio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dio")
            .field("chain", self.chain.key())
            .field("staged", &!self.staging.lock().is_empty())
            .finish()
    }
}

impl Dio {
    pub(crate) fn new(chain: Chain, session: AteSession) -> Self {
        Dio {
            staging: Arc::new(Mutex::new(Staging::new(chain.clone()))),
            chain,
            session,
            claims: Vec::new(),
            fence: None,
        }
    }

    /// The chain this Dio works on.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The session this Dio reads and writes as.
    pub fn session(&self) -> &AteSession {
        &self.session
    }

    fn make<T>(
        &self,
        key: PrimaryKey,
        type_name: &'static str,
        value: T,
        parent: Option<ParentLink>,
        auth: Authorization,
        version: Option<u64>,
    ) -> Dao<T>
    where
        T: Storable,
    {
        Dao {
            key,
            value,
            parent,
            type_name,
            auth,
            version,
            staging: Arc::downgrade(&self.staging),
        }
    }

    fn stage_new<T: Storable>(
        &mut self,
        value: T,
        parent: Option<ParentLink>,
    ) -> Result<Dao<T>, DioError> {
        self.stage_new_at(PrimaryKey::generate(), false, value, parent)
    }

    /// Stages a new record at `key`; with `create`, written as new whatever the view holds.
    fn stage_new_at<T: Storable>(
        &mut self,
        key: PrimaryKey,
        create: bool,
        mut value: T,
        parent: Option<ParentLink>,
    ) -> Result<Dao<T>, DioError> {
        let type_name = schema::checked_type_name_of::<T>()?;
        let body = encode(&value)?;
        let auth = staging::default_auth(schema::registration_of::<T>());
        self.staging.lock().stage(
            key,
            Staged {
                type_name: type_name.into(),
                parent,
                body: Some(body),
                auth: auth.clone(),
                previous: None,
                create,
                sign_all: false,
            },
        );
        attach(&mut value, key);
        Ok(self.make(key, type_name, value, parent, auth, None))
    }

    /// Stages a new record at a key of the caller's choosing (at the chain's root; its rules
    /// are its type's defaults, as [`Dio::store`]'s). It is written as new whatever this Dio
    /// sees: the commit is refused if the key is taken
    /// ([`TrustError::VersionMismatch`](crate::trust::TrustError::VersionMismatch)) or was ever
    /// used ([`TrustError::Deleted`](crate::trust::TrustError::Deleted)), so of two writers of
    /// one key only the first succeeds, once. A key derived from what the record stands for
    /// (a request's idempotency key, a coin's serial number) makes a write that happens once
    /// however often it is tried.
    ///
    /// # Errors
    ///
    /// As [`Dio::store`].
    pub fn store_at<T: Storable>(&mut self, key: PrimaryKey, value: T) -> Result<Dao<T>, DioError> {
        self.stage_new_at(key, true, value, None)
    }

    /// [`Dio::store_at`], as a child in the collection `vec` of the record `parent`.
    ///
    /// # Errors
    ///
    /// As [`Dio::store`].
    pub fn store_child_at<T: Storable>(
        &mut self,
        key: PrimaryKey,
        parent: &PrimaryKey,
        vec: &DaoVec<T>,
        value: T,
    ) -> Result<Dao<T>, DioError> {
        let link = ParentLink {
            parent: *parent,
            collection: vec.id(),
        };
        self.stage_new_at(key, true, value, Some(link))
    }

    /// Stages a new record with a fresh random key. Its read and write rules are its type's
    /// defaults (`Inherit` for plain types); change them with [`Dao::auth_mut`].
    pub fn store<T: Storable>(&mut self, value: T) -> Result<Dao<T>, DioError> {
        self.stage_new(value, None)
    }

    /// Stages a new record as a child in the collection `vec` of the record `parent`.
    pub fn store_child<T: Storable>(
        &mut self,
        parent: &PrimaryKey,
        vec: &DaoVec<T>,
        value: T,
    ) -> Result<Dao<T>, DioError> {
        let link = ParentLink {
            parent: *parent,
            collection: vec.id(),
        };
        self.stage_new(value, Some(link))
    }

    /// Stages a new record at `key` (under `parent`, with rules `auth`), written as new
    /// whatever this Dio's view holds: the commit is refused if the key is taken
    /// ([`TrustError::VersionMismatch`](crate::trust::TrustError::VersionMismatch)) or was ever
    /// used ([`TrustError::Deleted`](crate::trust::TrustError::Deleted)), so of two writers of
    /// one key only the first succeeds. With `sign_all`, every signing key of the session signs
    /// it (its transaction then proves who wrote it, whatever its rules need).
    pub(crate) fn store_new_at<T: Storable>(
        &mut self,
        key: PrimaryKey,
        parent: Option<ParentLink>,
        value: &T,
        auth: Authorization,
        sign_all: bool,
    ) -> Result<(), DioError> {
        let type_name = schema::checked_type_name_of::<T>()?;
        let body = encode(value)?;
        self.staging.lock().stage(
            key,
            Staged {
                type_name: type_name.into(),
                parent,
                body: Some(body),
                auth,
                previous: None,
                create: true,
                sign_all,
            },
        );
        Ok(())
    }

    /// Stages a new record of type `type_name` holding `body` as it is, whatever its type:
    /// for tests that write what a program never would.
    #[cfg(test)]
    pub(crate) fn stage_raw(
        &mut self,
        key: PrimaryKey,
        type_name: &'static str,
        parent: Option<ParentLink>,
        body: Bytes,
    ) {
        self.staging.lock().stage(
            key,
            Staged {
                type_name: type_name.into(),
                parent,
                body: Some(body),
                auth: Authorization::default(),
                previous: None,
                create: true,
                sign_all: false,
            },
        );
    }

    /// The session, to add keys to for this Dio alone (a reply's read key).
    pub(crate) fn session_mut(&mut self) -> &mut AteSession {
        &mut self.session
    }

    /// Loads the latest version of a record as a `T` (this Dio's staged write of it, if any).
    ///
    /// # Errors
    ///
    /// [`DioError::NotFound`] for no live record; [`DioError::WrongType`] for a record of
    /// another type; [`DioError::MissingReadKey`], [`DioError::DecryptFailed`] and
    /// [`DioError::MissingKeyEntry`] for a body this session cannot read;
    /// [`DioError::Deserialize`] for a body that does not decode as a `T`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn load<T: Storable>(&self, key: &PrimaryKey) -> Result<Dao<T>, DioError> {
        self.load_now(key)
    }

    fn load_now<T: Storable>(&self, key: &PrimaryKey) -> Result<Dao<T>, DioError> {
        let expected = schema::checked_type_name_of::<T>()?;
        let staging = self.staging.lock();
        if let Some(op) = staging.get(key) {
            if op.type_name != expected {
                return Err(DioError::WrongType {
                    key: *key,
                    expected: expected.to_string(),
                    found: op.type_name.to_string(),
                });
            }
            let Some(body) = &op.body else {
                return Err(DioError::NotFound(*key));
            };
            let (parent, auth, previous) = (op.parent, op.auth.clone(), op.previous);
            let value = decode::<T>(*key, body)?;
            return Ok(self.make(*key, expected, value, parent, auth, previous));
        }
        drop(staging);
        let (event, seq, parent, keys) = {
            let view = self.chain.view().read();
            let entry = view.get(key).ok_or(DioError::NotFound(*key))?;
            let found = view.type_name(entry.type_id);
            if found != expected {
                return Err(DioError::WrongType {
                    key: *key,
                    expected: expected.to_string(),
                    found: found.to_string(),
                });
            }
            let keys = view.tx_keys(entry.seq);
            (view.event(entry), entry.seq, view.parent_of(key), keys)
        };
        let trust = EventTrust::of(&event).map_err(|e| DioError::BadMetadata {
            key: *key,
            reason: e.to_string(),
        })?;
        let body = read::open_body(
            &self.chain,
            &self.session,
            read::Stored {
                key: *key,
                seq,
                type_name: expected,
                trust: &trust,
                keys: keys.as_deref(),
                body: event.body.unwrap_or_default(),
            },
        )?;
        let value = decode::<T>(*key, &body)?;
        Ok(self.make(
            *key,
            expected,
            value,
            parent,
            trust.auth.unwrap_or_default(),
            Some(seq),
        ))
    }

    /// Whether a live record has this key (staged writes included).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn exists(&self, key: &PrimaryKey) -> bool {
        if let Some(op) = self.staging.lock().get(key) {
            return op.body.is_some();
        }
        self.chain.view().read().contains(key)
    }

    /// Stages the deletion of a record (a tombstone), and of every record below it in the tree
    /// (its children, theirs, and so on), each before its parent. Deleting a missing record is
    /// an error. A record created in this Dio and never committed is just forgotten.
    pub fn delete(&mut self, key: &PrimaryKey) -> Result<(), DioError> {
        self.staging.lock().delete(key, None)
    }

    /// The children of `parent` in the collection `vec`, in commit order, then the ones staged
    /// here.
    ///
    /// # Errors
    ///
    /// The errors of [`Dio::load`] for each child.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn children<T: Storable>(
        &self,
        parent: &PrimaryKey,
        vec: &DaoVec<T>,
    ) -> Result<Vec<Dao<T>>, DioError> {
        let link = ParentLink {
            parent: *parent,
            collection: vec.id(),
        };
        let mut keys: Vec<PrimaryKey> = self.chain.view().read().children(&link).collect();
        {
            let staging = self.staging.lock();
            keys.retain(|k| {
                staging
                    .get(k)
                    .is_none_or(|op| op.body.is_some() && op.parent == Some(link))
            });
            let known: std::collections::HashSet<PrimaryKey> = keys.iter().copied().collect();
            keys.extend(staging.children_of(link).filter(|k| !known.contains(k)));
        }
        keys.iter().map(|k| self.load_now(k)).collect()
    }

    /// Whether anything is staged.
    pub fn has_changes(&self) -> bool {
        !self.staging.lock().is_empty()
    }

    /// Discards everything staged (and gives back the queue items it took).
    pub fn cancel(&mut self) {
        self.staging.lock().clear();
        self.claims.clear();
    }

    /// Makes this Dio's commits conditional on `lock` (a grant from [`Chain::lock`]): each is
    /// refused with [`CommitError::Fenced`] unless that grant is still the current one when
    /// the chain's writer (or, on a replica, the server) checks the transaction, so a holder
    /// that lost its lock cannot commit as if it still held it.
    pub fn fence(&mut self, lock: &crate::chain::LockGuard) {
        self.fence = Some(lock.fence().clone());
    }

    /// Keeps a claim until this Dio commits, cancels or is dropped.
    pub(crate) fn hold(&mut self, claim: crate::chain::ClaimGuard) {
        self.claims.push(claim);
    }

    /// Writes everything staged as one transaction. Returns once it is durable (fsynced) and
    /// visible in the view.
    ///
    /// On a replica chain ([`ChainRegistry::open_replica`](crate::ChainRegistry::open_replica))
    /// the sealed transaction goes to the chain's source through the chain's
    /// [`Upstream`](crate::chain::Upstream) instead of the local writer, and this returns once
    /// the source committed it and the replica applied it (so this Dio, and any other on the
    /// replica, reads it back at once), with the errors a local commit gets. The source is
    /// then what "the writer" means below.
    ///
    /// # Errors
    ///
    /// [`DioError`]s found while sealing (a missing write or read key, a final record, …) and
    /// [`CommitError`]s from the chain (refused by validation, a unique
    /// index violated, a transaction too large, …; on a replica, also
    /// `CommitError::Unreachable` and `CommitError::OutcomeUnknown` from its upstream). A refused commit writes nothing and keeps
    /// every write staged, so the caller can fix what was refused and commit again, or
    /// discard the writes with [`Dio::cancel`] (dropping the Dio discards them too). A failed
    /// write or fsync of the log (`CommitError::Log`) keeps them staged as well, but poisons
    /// the chain: reopen it, and look there for the transaction, which may or may not have
    /// reached the log.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before the transaction reached the chain's writer leaves the writes
    /// staged as they were. Once the writer has it, it may be committed whatever happens to
    /// the future: dropping the future then takes the writes out of this Dio for good (they
    /// are not staged again, since they may be in the log), and if the commit does happen the
    /// Dio still learns the versions it wrote (its next commit waits for that outcome first),
    /// so a later change of the same records names the right version. Read the records to
    /// know whether it happened.
    pub async fn commit(&mut self) -> Result<(), AteError> {
        self.settle_dropped().await;
        let Some((taken, ready)) = self.seal_staged(seal_and_verify).await? else {
            return Ok(());
        };
        let submitted = match ready {
            Ready::Local(payload, mut prepared) => {
                prepared.fence = self.fence.clone();
                self.chain.submit(payload, prepared)?
            }
            Ready::Upstream(tx) => self.chain.send_upstream(tx, self.fence.clone())?,
        };
        taken.submitted(submitted).outcome().await?;
        // The items it took are deleted now: their claims have done their work.
        self.claims.clear();
        Ok(())
    }

    /// Seals everything staged as one transaction, as [`Dio::commit`] would, and returns it
    /// instead of committing it: to be sent elsewhere and committed there with
    /// [`Chain::commit_sealed`] (on this chain, a replica of it, or its source), without being
    /// encoded again. It is sealed against this Dio's view of the chain: the versions it
    /// replaces, the rights it needs and the keys its bodies are encrypted for are this
    /// chain's as of now.
    ///
    /// The staged writes are taken out of the Dio: the transaction holds them now, and this
    /// Dio does not learn whether or when it is committed. Reload a record to change it again
    /// after the transaction is committed (a Dao of this Dio still names the version it was
    /// read at). Nothing is staged afterwards. `None` when nothing was staged.
    ///
    /// # Errors
    ///
    /// The [`DioError`]s of sealing that [`Dio::commit`] returns (a missing write or read key,
    /// a final record, a signature that fails its self-check, …); the writes stay staged.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, the writes stay staged.
    pub async fn seal(&mut self) -> Result<Option<SealedTransaction>, DioError> {
        self.settle_dropped().await;
        let sealed = self.seal_staged(seal_only).await?;
        Ok(sealed.map(|(taken, tx)| {
            taken.forget();
            tx
        }))
    }

    /// Waits for the outcome of the commits dropped while the writer had them, so this Dio
    /// knows the versions they wrote.
    async fn settle_dropped(&self) {
        loop {
            let dropped = self.staging.lock().pop_in_flight();
            let Some((outcome, ops)) = dropped else {
                break;
            };
            InFlight {
                staging: self.staging.clone(),
                ops,
                outcome: Some(outcome),
            }
            .settle()
            .await;
        }
    }

    /// Takes the staged writes out and seals them with `job` (here, or on the sealing pool
    /// when that is worth it); `None` when nothing is staged. On an error, or when the future
    /// is dropped, the writes are staged again.
    async fn seal_staged<T, E>(&self, job: SealJob<T, E>) -> Result<Option<(Taken<'_>, T)>, E>
    where
        T: Send + 'static,
        E: From<DioError> + Send + 'static,
    {
        let (mut taken, versions) = {
            let mut staging = self.staging.lock();
            let ops = staging.take_ops()?;
            if ops.is_empty() {
                return Ok(None);
            }
            let versions = staging.versions_of(&ops);
            (Taken::new(&self.staging, ops), versions)
        };
        let sealed = if self.seals_aside(taken.ops()) {
            let ops = taken.take();
            let (chain, session) = (self.chain.clone(), self.session.clone());
            let staging = self.staging.clone();
            let (ops, sealed) = pool::run(
                move || {
                    let sealed = job(&chain, &session, &versions, &ops);
                    (ops, sealed)
                },
                move |(ops, _)| staging.lock().restore(ops),
            )
            .await;
            taken.put(ops);
            sealed?
        } else {
            let _sealing = pool::Sealing::here();
            job(&self.chain, &self.session, &versions, taken.ops())?
        };
        Ok(Some((taken, sealed)))
    }

    /// Whether the transaction is sealed on the sealing pool rather than on this task: when it
    /// will be signed (the costly part) or is large, and other commits are being sealed at the
    /// same time (alone, it is sealed here at once, without a hand-over).
    fn seals_aside(&self, ops: &[(PrimaryKey, Staged)]) -> bool {
        let costly = ops.len() >= LARGE_TRANSACTION
            || (!self.chain.policy().is_open() && self.session.write_keys().next().is_some());
        costly && pool::busy()
    }
}

/// From this many writes a transaction is sealed on the sealing pool, signed or not.
const LARGE_TRANSACTION: usize = 64;

/// A way to seal staged writes (run here or on the sealing pool).
type SealJob<T, E> = fn(
    &Chain,
    &AteSession,
    &staging::FastMap<PrimaryKey, u64>,
    &[(PrimaryKey, Staged)],
) -> Result<T, E>;

/// A transaction sealed for its chain: for the local writer, or for a replica's upstream.
enum Ready {
    /// Its buffer for the writer, and what the checks that need no record found.
    Local(Vec<u8>, crate::chain::Prepared),
    /// For the chain's source, which checks it in full.
    Upstream(SealedTransaction),
}

/// Seals `ops` into a transaction; for a local chain, also runs the checks that need no record
/// on it (a replica's source runs them all).
fn seal_and_verify(
    chain: &Chain,
    session: &AteSession,
    versions: &staging::FastMap<PrimaryKey, u64>,
    ops: &[(PrimaryKey, Staged)],
) -> Result<Ready, AteError> {
    let sealed = seal::seal(chain, session, versions, ops)?;
    if chain.is_replica() {
        return Ok(Ready::Upstream(SealedTransaction::from_writer_buffer(
            sealed.payload,
        )));
    }
    let prepared = chain.verify_local(&sealed.payload, sealed.hashes.as_deref(), sealed.trust)?;
    Ok(Ready::Local(sealed.payload, prepared))
}

/// Seals `ops` into a transaction, for [`Dio::seal`].
fn seal_only(
    chain: &Chain,
    session: &AteSession,
    versions: &staging::FastMap<PrimaryKey, u64>,
    ops: &[(PrimaryKey, Staged)],
) -> Result<SealedTransaction, DioError> {
    let sealed = seal::seal(chain, session, versions, ops)?;
    Ok(SealedTransaction::from_writer_buffer(sealed.payload))
}

/// Staged writes taken out for a commit, until the transaction reaches the chain's writer: put
/// back unless it does (on an error, and when the commit is dropped before).
struct Taken<'a> {
    staging: &'a Arc<Mutex<Staging>>,
    ops: Option<Vec<(PrimaryKey, Staged)>>,
}

impl<'a> Taken<'a> {
    fn new(staging: &'a Arc<Mutex<Staging>>, ops: Vec<(PrimaryKey, Staged)>) -> Self {
        Taken {
            staging,
            ops: Some(ops),
        }
    }

    fn ops(&self) -> &[(PrimaryKey, Staged)] {
        self.ops.as_deref().unwrap_or_default()
    }

    /// The writes, taken out while they are sealed elsewhere (which restores them if that is
    /// abandoned).
    fn take(&mut self) -> Vec<(PrimaryKey, Staged)> {
        self.ops.take().unwrap_or_default()
    }

    /// The writes back from being sealed elsewhere.
    fn put(&mut self, ops: Vec<(PrimaryKey, Staged)>) {
        self.ops = Some(ops);
    }

    /// The writes are in a sealed transaction the caller holds now: not staged again.
    fn forget(mut self) {
        self.ops = None;
    }

    /// The transaction reached the chain's writer as `submitted`.
    fn submitted(mut self, submitted: Submitted) -> InFlight {
        InFlight {
            staging: self.staging.clone(),
            ops: self.ops.take().unwrap_or_default(),
            outcome: Some(submitted.into_receiver()),
        }
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(ops) = self.ops.take() {
            self.staging.lock().restore(ops);
        }
    }
}

/// Staged writes whose transaction is with the chain's writer.
struct InFlight {
    staging: Arc<Mutex<Staging>>,
    ops: Vec<(PrimaryKey, Staged)>,
    /// `None` once the outcome arrived.
    outcome: Option<oneshot::Receiver<Result<u64, CommitError>>>,
}

impl InFlight {
    /// Waits for the outcome: committed, the Dio has seen the new versions; refused or failed,
    /// the writes are staged again.
    async fn outcome(mut self) -> Result<u64, CommitError> {
        // Awaited in place: dropped while waiting, the receiver goes to the Dio (see `Drop`).
        let Some(rx) = self.outcome.as_mut() else {
            return Err(CommitError::Closed);
        };
        let outcome = rx.await.unwrap_or(Err(CommitError::Closed));
        self.outcome = None;
        let ops = std::mem::take(&mut self.ops);
        let mut staging = self.staging.lock();
        match &outcome {
            Ok(seq) => staging.committed(*seq, &ops),
            Err(_) => staging.restore(ops),
        }
        outcome
    }

    /// Waits for the outcome of a commit that was dropped: committed, the Dio has seen the new
    /// versions; otherwise the writes are dropped (the caller gave them up).
    async fn settle(mut self) {
        let Some(rx) = self.outcome.as_mut() else {
            return;
        };
        let outcome = rx.await;
        self.outcome = None;
        if let Ok(Ok(seq)) = outcome {
            self.staging.lock().committed(seq, &self.ops);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The commit was dropped while the writer had the transaction: it may be committed, so
        // the writes are not staged again. The Dio's next commit waits for the outcome first,
        // and learns the versions written if it happened.
        if let Some(outcome) = self.outcome.take() {
            let ops = std::mem::take(&mut self.ops);
            self.staging.lock().in_flight(outcome, ops);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::chain::{AteConfig, ChainBuilder, ChainKey};
    use crate::crypto::{KeySize, PrivateSignKey};

    /// A commit dropped while its transaction waits for, or is on, the sealing pool gives its
    /// writes back: they never reached the writer.
    #[tokio::test(flavor = "current_thread")]
    async fn a_commit_dropped_while_it_is_sealed_keeps_its_writes_staged() {
        pool::tests::ALWAYS_BUSY.with(|b| b.set(true));
        let root = PrivateSignKey::generate(KeySize::Bit128);
        let chain = ChainBuilder::new(&AteConfig::in_memory())
            .await
            .add_root_public_key(&root.as_public_key())
            .build()
            .open(&ChainKey::from("cancel-sealing"))
            .await
            .unwrap();
        let mut session = AteSession::default();
        session.add_write_key(&root);
        let mut dio = chain.dio(&session).await;
        let mut restaged = 0;
        for n in 0..10u64 {
            dio.store(format!("record {n}")).unwrap();
            let before = chain.len();
            let done = {
                let mut cx = Context::from_waker(Waker::noop());
                matches!(pin!(dio.commit()).poll(&mut cx), Poll::Ready(_))
            };
            if done {
                continue;
            }
            // Back from the pool (or, had it been sealed before the first poll returned, in the
            // chain).
            for _ in 0..4000 {
                if dio.has_changes() || chain.len() > before {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if dio.has_changes() {
                restaged += 1;
            }
        }
        assert!(restaged > 0, "no commit was dropped while it was sealed");
        dio.commit().await.unwrap();
        assert_eq!(chain.len(), 10, "every record is written exactly once");
        pool::tests::ALWAYS_BUSY.with(|b| b.set(false));
    }
}
