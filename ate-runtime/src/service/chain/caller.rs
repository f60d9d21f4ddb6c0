//! The caller's side of a chain's services: [`ChainInvoker`], what
//! `ServiceTarget::invoker` gives for a [`Chain`].

use std::fmt;

use bytes::Bytes;
use parking_lot::Mutex;

use super::layout::{
    LAYOUT_VERSION, MAX_PROVIDERS, ProviderRecord, ReplyRecord, RequestRecord, providers, queue,
    reply_key, request_key,
};
use crate::AteError;
use crate::chain::{Chain, CommitError};
use crate::crypto::{EncryptKey, Hash, PublicEncryptKey};
use crate::event::{ParentLink, PrimaryKey};
use crate::service::{InvokeError, Invoker, RawRequest, RequestId, TransportError};
use crate::session::AteSession;
use crate::trust::{Authorization, ReadOption, TrustError, TrustLookup, WriteOption};

type Outcome<T> = Result<T, InvokeError<Vec<u8>>>;

/// Calls the services of a chain as one session: writes each request into the queue of the
/// newest provider of its type, and waits for the reply to appear in the chain.
pub(crate) struct ChainInvoker {
    chain: Chain,
    session: AteSession,
    /// Reply keys are derived from it and the request id, so that a retry through this
    /// invoker reads the reply to the first attempt. Never leaves the process but inside an
    /// encrypted request.
    secret: EncryptKey,
    /// The provider records last read, by the keys they were read from.
    providers: Mutex<ProviderCache>,
}

impl fmt::Debug for ChainInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainInvoker")
            .field("chain", self.chain.key())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct ProviderCache {
    /// The provider records' keys and versions when last read (newest first).
    read_at: Vec<(PrimaryKey, u64)>,
    /// The well-formed ones, newest first.
    records: Vec<ProviderRecord>,
}

/// Where a request of one type goes, and the rules it is written with.
struct Target {
    queue: ParentLink,
    read_key: Option<PublicEncryptKey>,
    writer: Option<Hash>,
}

impl ChainInvoker {
    pub(crate) fn new(chain: Chain, session: AteSession) -> Self {
        ChainInvoker {
            chain,
            session,
            secret: EncryptKey::generate(),
            providers: Mutex::default(),
        }
    }

    /// The key the reply to request `id` is encrypted for, when the request is encrypted.
    fn reply_secret(&self, id: RequestId) -> EncryptKey {
        let h = Hash::of_parts(&[
            b"ATE/service-reply-key/v1",
            self.secret.secret_bytes(),
            &id.as_u128().to_be_bytes(),
        ]);
        EncryptKey::from_bytes(*h.as_bytes())
    }

    /// Whether the request at `at` was written already (it is there, or was answered).
    fn sent(&self, at: &PrimaryKey) -> bool {
        let view = self.chain.view().read();
        view.contains(at) || view.was_deleted(at)
    }

    /// The newest provider of `request_type`; on a replica that knows none, after catching up
    /// with its source.
    async fn target(&self, request_type: &str) -> Outcome<Option<Target>> {
        if let Some(t) = self.lookup(request_type).await {
            return Ok(Some(t));
        }
        if self.chain.is_replica() {
            self.chain.sync().await.map_err(transport)?;
            return Ok(self.lookup(request_type).await);
        }
        Ok(None)
    }

    async fn lookup(&self, request_type: &str) -> Option<Target> {
        let read_at: Vec<(PrimaryKey, u64)> = {
            let view = self.chain.view().read();
            let keys: Vec<PrimaryKey> = view.children(&providers()).collect();
            keys.iter()
                // Newest first: the collection is in commit order.
                .rev()
                .take(MAX_PROVIDERS)
                .filter_map(|k| view.get(k).map(|e| (*k, e.seq)))
                .collect()
        };
        let stale = self.providers.lock().read_at != read_at;
        if stale {
            // Provider records are plaintext: any session reads them.
            let dio = self.chain.dio(&AteSession::default()).await;
            let mut records = Vec::with_capacity(read_at.len());
            for (key, _) in &read_at {
                match dio.load::<ProviderRecord>(key).await {
                    Ok(r) if r.is_well_formed() => records.push(r.into_inner()),
                    Ok(_) => {
                        tracing::debug!(%key, "a provider record of another layout is ignored")
                    }
                    Err(e) => {
                        tracing::debug!(%key, error = %e, "an unreadable provider record is ignored")
                    }
                }
            }
            *self.providers.lock() = ProviderCache { read_at, records };
        }
        let cache = self.providers.lock();
        let p = cache
            .records
            .iter()
            .find(|r| r.request_types.iter().any(|t| t == request_type))?;
        Some(Target {
            queue: queue(request_type, p.read_key.as_ref().map(|k| k.hash()).as_ref()),
            read_key: p.read_key.clone(),
            writer: p.writer,
        })
    }

    /// Writes the request at `at`, into `target`'s queue; `Ok` also when an earlier attempt
    /// wrote it (or may have).
    async fn send(
        &self,
        request: &RawRequest<'_>,
        at: PrimaryKey,
        target: &Target,
        reply_secret: &EncryptKey,
    ) -> Outcome<()> {
        let encrypted = target.read_key.is_some();
        let record = RequestRecord {
            version: LAYOUT_VERSION,
            id: request.id,
            request_type: request.request_type.to_owned(),
            body: Bytes::copy_from_slice(request.body),
            // Only inside an encrypted request: in the clear it would protect nothing.
            reply_key: encrypted.then(|| Bytes::copy_from_slice(reply_secret.secret_bytes())),
        };
        let mut auth = Authorization::default();
        if let Some(pk) = &target.read_key {
            auth.read = ReadOption::from_public_key(pk);
        }
        if let Some(w) = target.writer {
            auth.write = WriteOption::Specific(w);
        }
        let mut dio = self.chain.dio(&self.session).await;
        dio.store_new_at(at, Some(target.queue), &record, auth, true)
            .map_err(|e| InvokeError::Refused(e.to_string()))?;
        match dio.commit().await {
            Ok(()) => Ok(()),
            // Perhaps written: the reply says.
            Err(AteError::Commit(CommitError::OutcomeUnknown(_))) => Ok(()),
            // Written by an earlier attempt: its reply is this one's.
            Err(AteError::Commit(CommitError::Trust(
                TrustError::VersionMismatch { key, .. } | TrustError::Deleted { key },
            ))) if key == at => Ok(()),
            Err(_) if self.sent(&at) => Ok(()),
            Err(e @ AteError::Commit(CommitError::Unreachable(_) | CommitError::Closed)) => {
                Err(transport(e))
            }
            Err(e @ AteError::Commit(CommitError::Poisoned(_) | CommitError::Log(_))) => {
                Err(transport(e))
            }
            Err(e) => Err(InvokeError::Refused(e.to_string())),
        }
    }

    /// The reply at `at`, once it is in the chain.
    async fn wait_reply(
        &self,
        at: PrimaryKey,
        id: RequestId,
        reply_secret: &EncryptKey,
    ) -> Outcome<Vec<u8>> {
        loop {
            let seen = self.chain.last_seq();
            if let Some(reply) = self.read_reply(at, id, reply_secret).await {
                return reply;
            }
            self.chain.wait_for(seen + 1).await.map_err(transport)?;
        }
    }

    /// The reply at `at`, if it is there: read with the reply key alone (a plaintext reply
    /// needs none).
    async fn read_reply(
        &self,
        at: PrimaryKey,
        id: RequestId,
        reply_secret: &EncryptKey,
    ) -> Option<Outcome<Vec<u8>>> {
        if !self.chain.view().read().contains(&at) {
            return None;
        }
        let mut session = AteSession::new();
        session.add_read_key(reply_secret);
        let dio = self.chain.dio(&session).await;
        let reply = match dio.load::<ReplyRecord>(&at).await {
            Ok(r) => r.into_inner(),
            Err(e) => return Some(Err(transport(e))),
        };
        if reply.version != LAYOUT_VERSION || reply.id != id {
            return Some(Err(transport(format!(
                "the reply at {at} is not a reply to request {id}"
            ))));
        }
        Some(match reply.outcome {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => Err(e.into_invoke_error()),
        })
    }
}

fn transport(
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> InvokeError<Vec<u8>> {
    InvokeError::Transport(TransportError::new(e))
}

#[async_trait::async_trait]
impl Invoker for ChainInvoker {
    async fn invoke(&self, request: RawRequest<'_>) -> Outcome<Vec<u8>> {
        let id = request.id;
        let (request_at, reply_at) = (request_key(id), reply_key(id));
        let reply_secret = self.reply_secret(id);
        // A retry of a request answered already gets the same reply.
        if let Some(reply) = self.read_reply(reply_at, id, &reply_secret).await {
            return reply;
        }
        if !self.sent(&request_at) {
            let Some(target) = self.target(request.request_type).await? else {
                return Err(InvokeError::NoService {
                    request_type: request.request_type.to_owned(),
                });
            };
            self.send(&request, request_at, &target, &reply_secret)
                .await?;
        }
        self.wait_reply(reply_at, id, &reply_secret).await
    }
}
