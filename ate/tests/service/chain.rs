//! The bank served from a chain: embedded, from a client of a server to another client, and
//! from the server's own process to a client. The same checks run on each: typed round trips
//! and errors, who called, retries answered once, timeouts, no service, and bodies a third
//! session cannot read.

use std::time::Duration;

use ate::service::layout::{self, ReplyRecord, RequestRecord};
use ate::service::{InvokeError, RawRequest, ServeOptions, Serving};

use super::*;

/// How long the test waits for anything before failing.
const PATIENCE: Duration = Duration::from_secs(30);

async fn in_memory(name: &str) -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from(name))
        .await
        .expect("open")
}

/// A provider's session: a signing key, and a private read key its requests are encrypted
/// for.
fn provider_session() -> AteSession {
    let mut session = AteSession::new();
    session
        .add_write_key(&PrivateSignKey::generate(KeySize::Bit128))
        .add_private_read_key(&PrivateEncryptKey::generate(KeySize::Bit128));
    session
}

/// Serves a bank from `chain`; the gate of its deposits to `"gated"` (one permit each).
async fn serve(chain: &Chain, session: &AteSession) -> (Serving, Arc<tokio::sync::Semaphore>) {
    let bank = MemoryBank::default();
    let gate = bank.gate.clone();
    let serving = chain
        .add_service(session, BankService::new(bank))
        .await
        .expect("served");
    (serving, gate)
}

/// Waits until `chain` holds `key` (a replica receives it from its server).
async fn appears(chain: &Chain, key: &PrimaryKey) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let seen = chain.last_seq();
            if chain.dio(&AteSession::default()).await.exists(key).await {
                return;
            }
            chain.wait_for(seen + 1).await.expect("wait");
        }
    })
    .await
    .expect("the record arrives");
}

/// What every deployment is checked for: `caller` and `third` are chains where callers and a
/// third party run (the same chain, or clients of one server), a bank serves `caller`'s chain,
/// and `gate` opens its gated deposits.
async fn check_a_served_bank(caller: &Chain, third: &Chain, gate: &tokio::sync::Semaphore) {
    // Typed replies, typed errors, who called.
    let (session, key) = signed_session();
    let client = BankClient::new(caller, &session);
    assert_eq!(client.deposit(deposit("42", 10)).await.unwrap().balance, 10);
    let out = client.withdraw(withdraw("42", 100)).await;
    assert!(
        matches!(
            out,
            Err(InvokeError::Handler(BankError::Overdrawn {
                balance: 10,
                wanted: 100
            }))
        ),
        "{out:?}"
    );
    assert_eq!(client.withdraw(withdraw("42", 4)).await.unwrap().balance, 6);
    assert_eq!(client.whoami(WhoAmI).await.unwrap(), vec![key.hash()]);
    let anonymous = BankClient::new(caller, &AteSession::default());
    assert!(anonymous.whoami(WhoAmI).await.unwrap().is_empty());
    let out = anonymous.withdraw(withdraw("42", 1)).await;
    assert!(
        matches!(out, Err(InvokeError::Handler(BankError::Anonymous))),
        "{out:?}"
    );

    // A request retried with its id, at once and later, is answered once.
    let raw = ServiceClient::connect(caller, &session);
    let body = encode(MessagePart::Request, "bank.Deposit", &deposit("retried", 5)).unwrap();
    let request = RawRequest::new("bank.Deposit", &body);
    let (a, b) = tokio::join!(raw.invoker().invoke(request), raw.invoker().invoke(request));
    let c = raw.invoker().invoke(request).await;
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a, b);
    assert_eq!(a, c);
    let balance: Balance = rmp_serde::from_slice(&a).unwrap();
    assert_eq!(balance.balance, 5);
    assert_eq!(
        client.deposit(deposit("retried", 0)).await.unwrap().balance,
        5
    );

    // No reply in time is a timeout; the request stays answered once, and a retry gets it.
    let body = encode(MessagePart::Request, "bank.Deposit", &deposit("gated", 3)).unwrap();
    let gated = RawRequest::new("bank.Deposit", &body);
    let impatient = raw.clone().with_timeout(Duration::from_millis(200));
    let out = tokio::time::timeout(impatient.timeout(), impatient.invoker().invoke(gated)).await;
    assert!(out.is_err(), "no reply while the gate is shut");
    let through_client = impatient.call_raw("bank.Deposit", &body).await;
    assert!(
        matches!(through_client, Err(InvokeError::Timeout(d)) if d == Duration::from_millis(200)),
        "{through_client:?}"
    );

    // While the handler waits, the request is in the chain: a third session cannot read it.
    appears(third, &layout::request_key(gated.id)).await;
    let stranger = third.dio(&AteSession::default()).await;
    let read = stranger
        .load::<RequestRecord>(&layout::request_key(gated.id))
        .await;
    assert!(
        matches!(read, Err(DioError::MissingReadKey { .. })),
        "{read:?}"
    );
    // Two gated requests wait (the one with a fresh id made by `call_raw` too).
    gate.add_permits(2);
    let reply = tokio::time::timeout(PATIENCE, raw.invoker().invoke(gated))
        .await
        .expect("answered")
        .unwrap();
    let balance: Balance = rmp_serde::from_slice(&reply).unwrap();
    assert_eq!(balance.account, "gated");
    // The reply, neither.
    appears(third, &layout::reply_key(gated.id)).await;
    let read = third
        .dio(&AteSession::default())
        .await
        .load::<ReplyRecord>(&layout::reply_key(gated.id))
        .await;
    assert!(
        matches!(read, Err(DioError::MissingReadKey { .. })),
        "{read:?}"
    );
    assert!(
        !third
            .dio(&AteSession::default())
            .await
            .exists(&layout::request_key(gated.id))
            .await
    );

    // A type nobody serves.
    let out = raw.call_raw("bank.Transfer", &body).await;
    assert!(
        matches!(&out, Err(InvokeError::NoService { request_type }) if request_type == "bank.Transfer"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_chain_serves_the_bank() {
    let chain = in_memory("bank").await;
    let (serving, gate) = serve(&chain, &provider_session()).await;
    assert_eq!(
        serving.request_types(),
        ["bank.Deposit", "bank.Withdraw", "bank.WhoAmI"]
    );
    check_a_served_bank(&chain, &chain, &gate).await;
    // Stopped, the bank's record is gone: no service.
    serving.stop().await.expect("stopped");
    let out = BankClient::new(&chain, &AteSession::default())
        .whoami(WhoAmI)
        .await;
    assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_requests_and_replies_are_plaintext() {
    let chain = in_memory("plain").await;
    let (serving, _gate) = serve(&chain, &AteSession::default()).await;
    let client = BankClient::new(&chain, &AteSession::default());
    let raw = ServiceClient::connect(&chain, &AteSession::default());
    let body = encode(MessagePart::Request, "bank.Deposit", &deposit("1", 2)).unwrap();
    let request = RawRequest::new("bank.Deposit", &body);
    raw.invoker().invoke(request).await.unwrap();
    let reply = chain
        .dio(&AteSession::default())
        .await
        .load::<ReplyRecord>(&layout::reply_key(request.id))
        .await
        .expect("a plaintext reply");
    assert!(reply.outcome.is_ok());
    assert!(client.whoami(WhoAmI).await.unwrap().is_empty());
    drop(serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_chain_with_root_keys_only_its_writers_call() {
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let chain = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&root.as_public_key())
        .build()
        .open(&ChainKey::from("guarded"))
        .await
        .expect("open");
    // Without the root's right, nothing can be served.
    let refused = chain
        .add_service(&provider_session(), BankService::new(MemoryBank::default()))
        .await;
    assert!(
        matches!(
            refused,
            Err(AteError::Dio(DioError::MissingWriteKey { .. }))
        ),
        "{refused:?}"
    );
    let mut provider = provider_session();
    provider.add_write_key(&root);
    let (_serving, _gate) = serve(&chain, &provider).await;
    let mut session = AteSession::new();
    session.add_write_key(&root);
    let client = BankClient::new(&chain, &session);
    assert_eq!(client.whoami(WhoAmI).await.unwrap(), vec![root.hash()]);
    for outsider in [AteSession::default(), signed_session().0] {
        let out = BankClient::new(&chain, &outsider).whoami(WhoAmI).await;
        assert!(matches!(out, Err(InvokeError::Refused(_))), "{out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_share_a_queue_and_each_request_is_answered_once() {
    let chain = in_memory("shared").await;
    // Two providers with the same keys: one queue, two consumers.
    let session = provider_session();
    let bank = Arc::new(BankService::new(MemoryBank::default()));
    let a = chain
        .add_service_with(&session, bank.clone(), ServeOptions::default())
        .await
        .unwrap();
    let b = chain
        .add_service_with(&session, bank, ServeOptions::default().concurrency(2))
        .await
        .unwrap();
    let client = BankClient::new(&chain, &AteSession::default());
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.deposit(deposit("shared", 1)).await })
        })
        .collect();
    let mut balances = Vec::new();
    for c in calls {
        balances.push(c.await.unwrap().unwrap().balance);
    }
    balances.sort_unstable();
    assert_eq!(balances, (1..=40).collect::<Vec<_>>(), "each deposit once");
    drop(a);
    // One provider left: still served.
    assert_eq!(
        client.deposit(deposit("shared", 0)).await.unwrap().balance,
        40
    );
    drop(b);
}

/// Over a server: a provider in one client and callers in another, and a provider in the
/// server's process with a remote caller.
#[cfg(feature = "server")]
mod over_a_server {
    use super::*;
    use ate::net::host::{Server, ServerConfig};
    use ate::net::remote::RemoteOptions;
    use ate::net::{ConnectOptions, ServerIdentity, ServerTrust};

    async fn server() -> (Server, ServerIdentity) {
        let id = ServerIdentity::generate(KeySize::Bit128);
        let mut config = ServerConfig::new(id.clone());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.chains = AteConfig::in_memory();
        (Server::start(config).await.expect("server"), id)
    }

    /// A client program of `server`: its own registry, its replica in memory.
    async fn client(server: &Server, id: &ServerIdentity) -> Chain {
        let mut o = RemoteOptions::default();
        o.connect = ConnectOptions::new(ServerTrust::Pinned(id.hash()));
        ChainBuilder::new(&AteConfig::in_memory())
            .await
            .build()
            .open_url_with(&server.url("bank"), &o)
            .await
            .expect("open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_serves_another_client() {
        let (server, id) = server().await;
        let provider = client(&server, &id).await;
        let (serving, gate) = serve(&provider, &provider_session()).await;
        let caller = client(&server, &id).await;
        let third = client(&server, &id).await;
        check_a_served_bank(&caller, &third, &gate).await;
        // Stopped, its record leaves every replica: no service.
        serving.stop().await.expect("stopped");
        caller.sync().await.expect("sync");
        let out = BankClient::new(&caller, &AteSession::default())
            .whoami(WhoAmI)
            .await;
        assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
        drop((provider, caller, third));
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_serves_a_client() {
        let (server, id) = server().await;
        let local = server
            .registry()
            .open(&ChainKey::from("bank"))
            .await
            .expect("the server's own chain");
        let (serving, gate) = serve(&local, &provider_session()).await;
        let caller = client(&server, &id).await;
        let third = client(&server, &id).await;
        check_a_served_bank(&caller, &third, &gate).await;
        drop(serving);
        drop((local, caller, third));
        server.shutdown().await;
    }
}
