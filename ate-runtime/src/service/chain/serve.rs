//! The service's side: [`Chain::add_service`] registers a provider and takes its requests from
//! the chain's queues, exactly once, answering each in the transaction that removes it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::callers::signers_of;
use super::layout::{
    LAYOUT_VERSION, ProviderRecord, REPLY_KEY_LEN, ReplyRecord, RequestRecord, RootRecord,
    providers, queue, replies, reply_key, request_key, root_key,
};
use crate::AteError;
use crate::bus::{Bus, BusError};
use crate::chain::{Chain, ClaimGuard, CommitError};
use crate::crypto::{EncryptKey, Hash};
use crate::dio::{Dao, Dio, DioError};
use crate::event::PrimaryKey;
use crate::service::local::check_name;
use crate::service::{
    AddServiceError, DispatchError, InvocationContext, RequestId, ServiceDispatch,
};
use crate::session::AteSession;
use crate::trust::{Authorization, ReadOption, TrustError, WriteOption};

/// How long a request that cannot be answered (unreadable, or whose answer cannot be
/// committed) is set aside, claimed, before the provider looks at it again.
const SET_ASIDE: Duration = Duration::from_secs(600);

/// The most requests one provider keeps set aside; past it the oldest is looked at again.
const MAX_SET_ASIDE: usize = 1024;

/// How long a provider waits before asking again when the chain's source cannot be reached.
const BACKOFF: Duration = Duration::from_millis(500);

/// How a chain serves a service ([`Chain::add_service_with`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The most requests answered at once (16 by default); each is answered on a task of its
    /// own.
    pub concurrency: usize,
    /// How long the provider's claim on a request it took lasts (30 s by default): another
    /// provider takes the request after it, so make it longer than a handler takes.
    pub lease: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            concurrency: 16,
            lease: crate::bus::DEFAULT_LEASE,
        }
    }
}

impl ServeOptions {
    /// The same options, answering at most `n` requests at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The same options, with claims lasting `lease`.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

/// What the provider's tasks share.
struct Provider {
    chain: Chain,
    session: AteSession,
    service: Arc<dyn ServiceDispatch>,
    /// The id of the public key requests are encrypted for.
    read_key: Option<Hash>,
    /// The signing key requests and replies are written for.
    writer: Option<Hash>,
    /// One permit per request being answered.
    slots: Arc<Semaphore>,
    concurrency: usize,
    lease: Duration,
    /// Requests that could not be answered, claimed so that they are passed by.
    set_aside: Mutex<HashMap<PrimaryKey, ClaimGuard>>,
}

/// A service served from a chain (made by [`Chain::add_service`]): it stops serving when
/// dropped, or with [`Serving::stop`].
///
/// Dropped, it stops taking requests at once; the requests being answered are answered, and
/// its provider record is removed from the chain in the background. [`Serving::stop`] does
/// the same and waits for both.
pub struct Serving {
    provider: Arc<Provider>,
    request_types: Vec<&'static str>,
    registration: Option<PrimaryKey>,
    takers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serving")
            .field("chain", self.provider.chain.key())
            .field("service", &self.provider.service.service_name())
            .field("request_types", &self.request_types)
            .finish()
    }
}

impl Serving {
    /// The request types served.
    pub fn request_types(&self) -> &[&'static str] {
        &self.request_types
    }

    /// The chain served from.
    pub fn chain(&self) -> &Chain {
        &self.provider.chain
    }

    /// Stops serving: takes no more requests, waits for those being answered, and removes the
    /// provider record. Requests left in the queue wait for another provider with the same
    /// read key.
    ///
    /// # Errors
    ///
    /// What committing the removal of the provider record returns ([`AteError::Commit`],
    /// [`AteError::Dio`]); the service has stopped anyway.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the service stopped; the provider record is then removed in
    /// the background, as when a [`Serving`] is dropped.
    pub async fn stop(mut self) -> Result<(), AteError> {
        for t in &self.takers {
            t.abort();
        }
        let all = u32::try_from(self.provider.concurrency).unwrap_or(u32::MAX);
        // Every permit back: no request is being answered.
        if let Ok(permits) = self.provider.slots.acquire_many(all).await {
            permits.forget();
        }
        match self.registration.take() {
            Some(key) => unregister(&self.provider, key).await,
            None => Ok(()),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        for t in &self.takers {
            t.abort();
        }
        let Some(key) = self.registration.take() else {
            return;
        };
        let provider = self.provider.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = unregister(&provider, key).await {
                        tracing::warn!(error = %e, "a stopped service's provider record could not be removed");
                    }
                });
            }
            Err(_) => tracing::warn!(
                %key,
                "a service stopped outside a Tokio runtime; its provider record stays in the chain"
            ),
        }
    }
}

async fn unregister(provider: &Provider, key: PrimaryKey) -> Result<(), AteError> {
    let mut dio = provider.chain.dio(&provider.session).await;
    dio.delete(&key)?;
    dio.commit().await
}

impl Chain {
    /// Serves `service` from this chain as `session`: registers a provider of its request
    /// types, then answers each request of those types written to the chain (by this process,
    /// another one through a server, or the server's own) exactly once, in the transaction
    /// that removes it from its queue. Callers reach it with `{Trait}Client::new(&chain,
    /// &session)`. See the [module](crate::service) docs for the records, who may call and
    /// what is guaranteed.
    ///
    /// The provider's session sets what its requests and replies are protected with: with a
    /// private read key (`AteSession::add_private_read_key`) requests are encrypted for its
    /// public half, and replies for a key each caller sends inside its request; with a
    /// signing key, requests and replies can be changed or removed by that key alone. The
    /// session needs the write right of the chain's service root (on a chain with root keys:
    /// a root key, unless the root was created with other rules).
    ///
    /// # Errors
    ///
    /// [`AddServiceError::InvalidName`] or [`AddServiceError::AlreadyServed`] for request types
    /// that cannot be served (as [`LocalServices::add_service`](super::super::LocalServices));
    /// [`AddServiceError::NoRuntime`] outside a Tokio runtime; the errors of committing the
    /// service root and the provider record (e.g. [`DioError::MissingWriteKey`] without the
    /// right to write there).
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, nothing is served; the service root, or a provider record,
    /// may have been written (a provider record left so points callers at a provider that
    /// never answers: their calls time out).
    pub async fn add_service<S: ServiceDispatch + 'static>(
        &self,
        session: &AteSession,
        service: S,
    ) -> Result<Serving, AteError> {
        self.add_service_with(session, Arc::new(service), ServeOptions::default())
            .await
    }

    /// [`Chain::add_service`] for a service held elsewhere too, with `options`.
    ///
    /// # Errors
    ///
    /// As [`Chain::add_service`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::add_service`].
    pub async fn add_service_with(
        &self,
        session: &AteSession,
        service: Arc<dyn ServiceDispatch>,
        options: ServeOptions,
    ) -> Result<Serving, AteError> {
        let names: Vec<&'static str> = service.request_types().to_vec();
        for (i, &name) in names.iter().enumerate() {
            check_name(name)?;
            if names[..i].contains(&name) {
                return Err(AddServiceError::AlreadyServed {
                    request_type: name.to_owned(),
                }
                .into());
            }
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| AddServiceError::NoRuntime)?;
        self.sync().await?;
        ensure_root(self, session).await?;
        let read_key = session
            .private_read_keys()
            .next()
            .map(|k| k.as_public_key());
        let writer = session.write_keys().next().map(|k| k.hash());
        let concurrency = options.concurrency.max(1);
        let provider = Arc::new(Provider {
            chain: self.clone(),
            session: session.clone(),
            service: service.clone(),
            read_key: read_key.as_ref().map(|k| k.hash()),
            writer,
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            lease: options.lease,
            set_aside: Mutex::default(),
        });
        let record = ProviderRecord {
            version: LAYOUT_VERSION,
            service: service.service_name().to_owned(),
            request_types: names.iter().map(|n| (*n).to_owned()).collect(),
            read_key,
            writer,
        };
        let registration = PrimaryKey::generate();
        let mut dio = self.dio(session).await;
        dio.store_new_at(
            registration,
            Some(providers()),
            &record,
            Authorization {
                read: ReadOption::Everyone,
                write: rule_of(writer),
            },
            false,
        )?;
        dio.commit().await?;
        let takers = names
            .iter()
            .map(|&name| runtime.spawn(take_requests(provider.clone(), name)))
            .collect();
        tracing::debug!(
            chain = %self.key(),
            service = service.service_name(),
            request_types = ?names,
            encrypted = provider.read_key.is_some(),
            "serving"
        );
        Ok(Serving {
            provider,
            request_types: names,
            registration: Some(registration),
            takers,
        })
    }
}

/// The write rule of the records written for a provider.
fn rule_of(writer: Option<Hash>) -> WriteOption {
    writer.map_or(WriteOption::Inherit, WriteOption::Specific)
}

/// Writes the chain's service root unless it is there.
async fn ensure_root(chain: &Chain, session: &AteSession) -> Result<(), AteError> {
    let root = root_key();
    loop {
        if chain.view().read().contains(&root) {
            return Ok(());
        }
        let mut dio = chain.dio(session).await;
        dio.store_new_at(
            root,
            None,
            &RootRecord {
                version: LAYOUT_VERSION,
            },
            Authorization::default(),
            false,
        )?;
        match dio.commit().await {
            Ok(()) => return Ok(()),
            // Written by another meanwhile: it is in the view once caught up.
            Err(AteError::Commit(CommitError::Trust(TrustError::VersionMismatch {
                key, ..
            }))) if key == root => {
                chain.sync().await?;
                if !chain.view().read().contains(&root) {
                    tokio::time::sleep(BACKOFF).await;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Takes the requests of one type from the provider's queue, one task per request.
async fn take_requests(provider: Arc<Provider>, request_type: &'static str) {
    let link = queue(request_type, provider.read_key.as_ref());
    let bus = Bus::<RequestRecord>::on(
        &provider.chain,
        &provider.session,
        link.parent,
        link.collection,
    );
    let mut bus = match bus {
        Ok(b) => b.with_lease(provider.lease),
        Err(e) => {
            tracing::error!(error = %e, request_type, "cannot read the request queue");
            return;
        }
    };
    loop {
        // A session of its own per request: the data key of each request is read once.
        let mut dio = provider.chain.dio(&provider.session.detached()).await;
        match bus.process(&mut dio).await {
            Ok(request) => {
                // Held (claimed) until a slot is free: takers of other types wait for items
                // without holding slots.
                let Ok(slot) = provider.slots.clone().acquire_owned().await else {
                    return;
                };
                tokio::spawn(answer(provider.clone(), request_type, dio, request, slot));
            }
            Err(BusError::Dio(e)) => {
                drop(dio);
                set_aside_unreadable(&provider, e).await;
            }
            Err(BusError::Commit(CommitError::Closed | CommitError::Poisoned(_)))
            | Err(BusError::Stream(_)) => {
                tracing::debug!(request_type, "the chain closed: no more requests");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, request_type, "cannot take requests; trying again");
                drop(dio);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// A request that cannot be read (not encrypted for this provider, not a request): removed if
/// the provider may, set aside otherwise.
async fn set_aside_unreadable(provider: &Provider, e: DioError) {
    let Some(key) = key_of(&e) else {
        tracing::warn!(error = %e, "a request cannot be read");
        tokio::time::sleep(BACKOFF).await;
        return;
    };
    tracing::debug!(%key, error = %e, "an unreadable request is removed unanswered");
    let mut dio = provider.chain.dio(&provider.session).await;
    let removed = match dio.delete(&key) {
        Ok(()) => dio.commit().await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = removed {
        tracing::debug!(%key, error = %e, "an unreadable request cannot be removed; set aside");
        set_aside(provider, key).await;
    }
}

/// Claims `key` for [`SET_ASIDE`], so that this provider's queue passes it by.
async fn set_aside(provider: &Provider, key: PrimaryKey) {
    if let Ok(Some(claim)) = provider.chain.claim(key, SET_ASIDE).await {
        let mut aside = provider.set_aside.lock();
        if aside.len() >= MAX_SET_ASIDE {
            aside.clear();
        }
        aside.insert(key, claim);
    }
}

/// The record a read failure is about.
fn key_of(e: &DioError) -> Option<PrimaryKey> {
    match e {
        DioError::MissingReadKey { key, .. }
        | DioError::MissingKeyEntry { key, .. }
        | DioError::DecryptFailed { key, .. }
        | DioError::Deserialize { key, .. }
        | DioError::WrongType { key, .. }
        | DioError::BadMetadata { key, .. }
        | DioError::Transform { key, .. } => Some(*key),
        _ => None,
    }
}

/// Answers one request taken from the queue: runs its handler and commits the reply with the
/// request's removal (staged in `dio` already).
async fn answer(
    provider: Arc<Provider>,
    request_type: &'static str,
    mut dio: Dio,
    request: Dao<RequestRecord>,
    _slot: OwnedSemaphorePermit,
) {
    let key = *request.key();
    let version = request.version();
    let record = request.into_inner();
    if record.version != LAYOUT_VERSION || request_key(record.id) != key {
        // Another layout, or a request naming another's id (whose reply it would take):
        // removed unanswered.
        tracing::debug!(%key, "a request not at its id's key is removed unanswered");
        if let Err(e) = dio.commit().await {
            tracing::debug!(%key, error = %e, "could not remove a malformed request");
        }
        return;
    }
    let id = record.id;
    let reply_secret = match record.reply_key.as_deref() {
        None => Ok(None),
        Some(k) if k.len() == REPLY_KEY_LEN => Ok(EncryptKey::from_slice(k).ok()),
        Some(_) => Err(DispatchError::Refused(format!(
            "the reply key is not {REPLY_KEY_LEN} bytes"
        ))),
    };
    let outcome = match (&reply_secret, version) {
        (Err(e), _) => Err(e.clone()),
        (Ok(_), None) => Err(DispatchError::Refused("the request has no version".into())),
        (Ok(_), Some(_)) if record.request_type != request_type => {
            Err(DispatchError::Refused(format!(
                "a `{}` request in the queue of `{request_type}`",
                record.request_type
            )))
        }
        (Ok(_), Some(seq)) => match signers_of(&provider.chain, seq, key) {
            Ok(callers) => {
                let ctx = InvocationContext::new(id, callers, Some(provider.chain.key().clone()));
                run(provider.service.clone(), ctx, request_type, record.body).await
            }
            Err(e) => Err(DispatchError::Refused(format!(
                "who sent the request cannot be read: {e}"
            ))),
        },
    };
    let reply_secret = reply_secret.ok().flatten();
    let mut auth = Authorization {
        read: ReadOption::Inherit,
        write: rule_of(provider.writer),
    };
    if let Some(k) = &reply_secret {
        dio.session_mut().add_read_key(k);
        auth.read = ReadOption::from_key(k);
    }
    if let Err(e) = reply(&mut dio, id, outcome, auth.clone()).await {
        match e {
            Answered::Elsewhere => {}
            // The request stays in the queue (or, if the commit did happen, is answered):
            // taken again once the chain's source is back.
            Answered::NotCommitted(
                e @ AteError::Commit(
                    CommitError::Unreachable(_)
                    | CommitError::OutcomeUnknown(_)
                    | CommitError::Closed
                    | CommitError::Poisoned(_),
                ),
            ) => {
                tracing::debug!(%key, error = %e, "a reply could not be committed now");
            }
            Answered::NotCommitted(e) => {
                // Try again with the reason instead of the reply (too large, say).
                let refusal = Err(DispatchError::Refused(format!(
                    "the reply could not be written: {e}"
                )));
                if let Err(again) = reply(&mut dio, id, refusal, auth).await {
                    tracing::warn!(%key, error = ?again, "a request could not be answered; set aside");
                    drop(dio);
                    set_aside(&provider, key).await;
                }
            }
        }
    }
}

/// Why a reply was not committed.
#[derive(Debug)]
enum Answered {
    /// Another provider answered the request first (its claim's lease had ended).
    Elsewhere,
    /// The commit failed.
    NotCommitted(AteError),
}

/// Stages the reply `outcome` to request `id` and commits it with what `dio` holds.
async fn reply(
    dio: &mut Dio,
    id: RequestId,
    outcome: Result<Bytes, DispatchError>,
    auth: Authorization,
) -> Result<(), Answered> {
    let record = ReplyRecord {
        version: LAYOUT_VERSION,
        id,
        outcome,
    };
    dio.store_new_at(reply_key(id), Some(replies()), &record, auth, false)
        .map_err(|e| Answered::NotCommitted(e.into()))?;
    match dio.commit().await {
        Ok(()) => Ok(()),
        Err(AteError::Commit(CommitError::Trust(
            TrustError::VersionMismatch { .. } | TrustError::Deleted { .. },
        ))) => {
            tracing::debug!(request = %id, "answered by another provider first");
            Err(Answered::Elsewhere)
        }
        Err(e) => Err(Answered::NotCommitted(e)),
    }
}

/// Runs the handler on a task of its own, so that a panic becomes an answer.
async fn run(
    service: Arc<dyn ServiceDispatch>,
    ctx: InvocationContext,
    request_type: &'static str,
    body: Bytes,
) -> Result<Bytes, DispatchError> {
    let task = tokio::spawn(async move { service.dispatch(&ctx, request_type, &body).await });
    match task.await {
        Ok(reply) => reply.map(Bytes::from),
        Err(e) => {
            tracing::warn!(
                request_type,
                "a service handler did not finish (it panicked)"
            );
            Err(DispatchError::Failed(format!(
                "the handler of `{request_type}` did not finish: {e}"
            )))
        }
    }
}
