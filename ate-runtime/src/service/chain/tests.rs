//! Requests written by hand into a provider's queue, past what a caller would write: each is
//! answered with a refusal or removed unanswered, and the provider goes on serving.

use std::time::Duration;

use bytes::Bytes;

use super::layout::{self, LAYOUT_VERSION, ReplyRecord, RequestRecord};
use crate::chain::{AteConfig, Chain, ChainBuilder, ChainKey};
use crate::crypto::{EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey};
use crate::event::PrimaryKey;
use crate::schema::DaoType;
use crate::service::{
    BoxFuture, DispatchError, InvocationContext, InvokeError, MessagePart, RawRequest, RequestId,
    ServiceClient, ServiceDispatch, encode, run_command, unknown_request,
};
use crate::session::AteSession;
use crate::trust::{Authorization, ReadOption};

const PATIENCE: Duration = Duration::from_secs(30);

/// Answers with the callers' ids.
#[derive(serde::Serialize, serde::Deserialize)]
struct WhoAmI;
impl DaoType for WhoAmI {
    const TYPE_NAME: &'static str = "test.WhoAmI";
}

/// Panics.
#[derive(serde::Serialize, serde::Deserialize)]
struct Explode;
impl DaoType for Explode {
    const TYPE_NAME: &'static str = "test.Explode";
}

struct Probe;

impl ServiceDispatch for Probe {
    fn service_name(&self) -> &'static str {
        "Probe"
    }

    fn request_types(&self) -> &[&'static str] {
        &["test.WhoAmI", "test.Explode"]
    }

    fn dispatch<'a>(
        &'a self,
        ctx: &'a InvocationContext,
        request_type: &'a str,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>> {
        match request_type {
            "test.WhoAmI" => run_command(request_type, body, |WhoAmI| async move {
                Ok::<_, String>(ctx.callers().to_vec())
            }),
            "test.Explode" => run_command(request_type, body, |Explode| async move {
                panic!("the handler exploded");
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            }),
            _ => unknown_request(request_type),
        }
    }
}

async fn chain(name: &str) -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from(name))
        .await
        .unwrap()
}

/// Waits until `key` is in the chain (`true`) or gone from it (`false`).
async fn until(chain: &Chain, key: PrimaryKey, present: bool) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let seen = chain.last_seq();
            if chain.view().read().contains(&key) == present {
                return;
            }
            chain.wait_for(seen + 1).await.unwrap();
        }
    })
    .await
    .expect("in time");
}

/// Writes `record` at `key` into the queue of `request_type` (plaintext providers), read rule
/// `read`.
async fn forge<T: crate::dio::Storable>(
    chain: &Chain,
    key: PrimaryKey,
    request_type: &str,
    record: &T,
    read: ReadOption,
    session: &AteSession,
) {
    let mut dio = chain.dio(session).await;
    let auth = Authorization {
        read,
        ..Authorization::default()
    };
    dio.store_new_at(
        key,
        Some(layout::queue(request_type, None)),
        record,
        auth,
        false,
    )
    .unwrap();
    dio.commit().await.unwrap();
}

fn request(id: RequestId, request_type: &str, reply_key: Option<Bytes>) -> RequestRecord {
    RequestRecord {
        version: LAYOUT_VERSION,
        id,
        request_type: request_type.into(),
        body: encode(MessagePart::Request, request_type, &WhoAmI)
            .unwrap()
            .into(),
        reply_key,
    }
}

async fn reply_to(chain: &Chain, id: RequestId) -> ReplyRecord {
    until(chain, layout::reply_key(id), true).await;
    chain
        .dio(&AteSession::default())
        .await
        .load::<ReplyRecord>(&layout::reply_key(id))
        .await
        .unwrap()
        .into_inner()
}

/// The provider still answers.
async fn still_serves(chain: &Chain) {
    let client = ServiceClient::connect(chain, &AteSession::default());
    let callers: Vec<crate::crypto::Hash> = client.call::<_, _, String>(WhoAmI).await.unwrap();
    assert!(callers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_another_ids_key_is_removed_unanswered() {
    let chain = chain("forged-key").await;
    let _serving = chain
        .add_service(&AteSession::default(), Probe)
        .await
        .unwrap();
    // Claims a victim's id from a key of its own: answering it would take the victim's reply.
    let victim = RequestId::generate();
    let at = PrimaryKey::generate();
    forge(
        &chain,
        at,
        "test.WhoAmI",
        &request(victim, "test.WhoAmI", None),
        ReadOption::Inherit,
        &AteSession::default(),
    )
    .await;
    until(&chain, at, false).await;
    assert!(!chain.view().read().contains(&layout::reply_key(victim)));
    still_serves(&chain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_are_removed_and_serving_goes_on() {
    let chain = chain("unreadable").await;
    let _serving = chain
        .add_service(&AteSession::default(), Probe)
        .await
        .unwrap();
    // Encrypted for a key the provider does not hold.
    let key = EncryptKey::generate();
    let mut holder = AteSession::new();
    holder.add_read_key(&key);
    let id = RequestId::generate();
    forge(
        &chain,
        layout::request_key(id),
        "test.WhoAmI",
        &request(id, "test.WhoAmI", None),
        ReadOption::from_key(&key),
        &holder,
    )
    .await;
    until(&chain, layout::request_key(id), false).await;
    // Not a request at all (a string where a request record belongs).
    let id = RequestId::generate();
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.stage_raw(
        layout::request_key(id),
        "ate.service.Request",
        Some(layout::queue("test.WhoAmI", None)),
        rmp_serde::to_vec("not a request").unwrap().into(),
    );
    dio.commit().await.unwrap();
    until(&chain, layout::request_key(id), false).await;
    assert!(!chain.view().read().contains(&layout::reply_key(id)));
    still_serves(&chain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_out_of_place_or_with_a_bad_reply_key_are_refused() {
    let chain = chain("misplaced").await;
    let _serving = chain
        .add_service(&AteSession::default(), Probe)
        .await
        .unwrap();
    // A request of one type in the queue of another.
    let id = RequestId::generate();
    forge(
        &chain,
        layout::request_key(id),
        "test.Explode",
        &request(id, "test.WhoAmI", None),
        ReadOption::Inherit,
        &AteSession::default(),
    )
    .await;
    let reply = reply_to(&chain, id).await;
    assert!(
        matches!(&reply.outcome, Err(DispatchError::Refused(r)) if r.contains("in the queue of")),
        "{:?}",
        reply.outcome
    );
    // A reply key of the wrong length.
    let id = RequestId::generate();
    forge(
        &chain,
        layout::request_key(id),
        "test.WhoAmI",
        &request(id, "test.WhoAmI", Some(Bytes::from_static(b"short"))),
        ReadOption::Inherit,
        &AteSession::default(),
    )
    .await;
    let reply = reply_to(&chain, id).await;
    assert!(
        matches!(&reply.outcome, Err(DispatchError::Refused(r)) if r.contains("reply key")),
        "{:?}",
        reply.outcome
    );
    still_serves(&chain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_answered_with_a_transport_error() {
    let chain = chain("explode").await;
    let mut session = AteSession::new();
    session
        .add_write_key(&PrivateSignKey::generate(KeySize::Bit128))
        .add_private_read_key(&PrivateEncryptKey::generate(KeySize::Bit128));
    let _serving = chain.add_service(&session, Probe).await.unwrap();
    let client = ServiceClient::connect(&chain, &AteSession::default());
    let out = client.call::<_, (), String>(Explode).await;
    let Err(InvokeError::Transport(e)) = out else {
        panic!("{out:?}");
    };
    assert!(e.to_string().contains("test.Explode"), "{e}");
    // Answered, so not taken again; the provider goes on.
    still_serves(&chain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_record_past_the_caps_is_ignored() {
    let chain = chain("caps").await;
    let serving = chain
        .add_service(&AteSession::default(), Probe)
        .await
        .unwrap();
    // A newer record listing too many types, one of them the probe's.
    let mut types: Vec<String> = (0..layout::MAX_PROVIDER_TYPES)
        .map(|i| format!("t{i}"))
        .collect();
    types.push("test.WhoAmI".into());
    let record = layout::ProviderRecord {
        version: LAYOUT_VERSION,
        service: "flood".into(),
        request_types: types,
        read_key: None,
        writer: None,
    };
    assert!(!record.is_well_formed());
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store_new_at(
        PrimaryKey::generate(),
        Some(layout::providers()),
        &record,
        Authorization::default(),
        false,
    )
    .unwrap();
    dio.commit().await.unwrap();
    // Had it counted, the request would wait in its queue, which nobody reads.
    still_serves(&chain).await;
    drop(serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_reply_gets_it_without_a_provider() {
    let chain = chain("retry-late").await;
    let serving = chain
        .add_service(&AteSession::default(), Probe)
        .await
        .unwrap();
    let client = ServiceClient::connect(&chain, &AteSession::default());
    let body = encode(MessagePart::Request, "test.WhoAmI", &WhoAmI).unwrap();
    let request = RawRequest::new("test.WhoAmI", &body);
    let first = client.invoker().invoke(request).await.unwrap();
    serving.stop().await.unwrap();
    let again = client.invoker().invoke(request).await.unwrap();
    assert_eq!(first, again);
    // A new request finds no provider.
    let out = client
        .call::<_, Vec<crate::crypto::Hash>, String>(WhoAmI)
        .await;
    assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
}
