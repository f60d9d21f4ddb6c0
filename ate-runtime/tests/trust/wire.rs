//! R11 over the wire: the forgeries of this binary sent to a server as a client's `Commit`, over
//! a real connection on loopback. The server holds the same history as the local chain the
//! forgery was tried on (its log file is the local log's bytes) and pins the same root key;
//! it must refuse with the same typed error, which the client re-raises as the same
//! `CommitError::Trust`, store nothing, and keep serving that connection and others.
//!
//! Built with the network features only (`cargo test --workspace` has them; `-p ate-runtime`
//! alone needs `--features client,server`).

use std::path::PathBuf;
use std::sync::LazyLock;

use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::net::remote::RemoteOptions;
use ate_runtime::net::wire::{self, ClientMsg, Refusal, ServerMsg, WireLimits};
use ate_runtime::net::{ConnectOptions, ServerIdentity, ServerTrust, connect};
use bytes::Bytes;

use super::*;

static IDENTITY: LazyLock<ServerIdentity> =
    LazyLock::new(|| ServerIdentity::generate(KeySize::Bit128));

/// A server on loopback holding the chain `name` with `base`'s history, pinning the root key.
struct Hosted {
    server: Server,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hosted {
    async fn start(name: &str, base: &MemoryStore, integrity: IntegrityMode) -> Hosted {
        let dir = tempfile::tempdir().expect("dir");
        let log = ChainKey::from(name).log_file(dir.path()).expect("log path");
        std::fs::write(&log, base.bytes()).expect("the server's log");
        let mut config = ServerConfig::new(IDENTITY.clone());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let mut chains = AteConfig::at(dir.path());
        chains.preallocate = false;
        config.chains = chains;
        config.root_keys = vec![keys().root.as_public_key()];
        config.integrity = integrity;
        let server = Server::start(config).await.expect("server starts");
        Hosted {
            server,
            log,
            _dir: dir,
        }
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log)
            .expect("the server's log")
            .len()
    }

    /// A client replica of the chain (in memory, root key pinned, as the local registry).
    async fn replica(&self, name: &str, integrity: IntegrityMode) -> Chain {
        let mut options = RemoteOptions::default();
        options.connect = ConnectOptions::new(ServerTrust::Pinned(IDENTITY.hash()));
        ChainBuilder::new(&AteConfig::in_memory())
            .await
            .add_root_public_key(&keys().root.as_public_key())
            .integrity(integrity)
            .build()
            .open_url_with(&self.server.url(name), &options)
            .await
            .expect("the replica opens")
    }

    /// The history is intact and still takes commits: `client` commits one more record on its
    /// connection and it becomes the next transaction (so nothing took a number before it),
    /// and a new client downloads exactly that history.
    async fn carries_on(self, name: &str, client: &Chain, integrity: IntegrityMode) {
        let before = client.last_seq();
        let mut dio = client.dio(&root_session()).await;
        dio.store(Secret {
            text: "after the forgery".into(),
        })
        .expect("store");
        dio.commit().await.expect("the connection carries on");
        assert_eq!(client.last_seq(), before + 1, "the next number was free");
        let other = self.replica(name, integrity).await;
        other.sync().await.expect("sync");
        assert_eq!(
            other.last_seq(),
            before + 1,
            "another client sees the history"
        );
        drop(other);
        self.server.shutdown().await;
    }
}

/// `evs` with `trailers`, committed by a client of a server holding `base` as `name`, is
/// refused with `expected` (`CommitError::Trust`, as locally); nothing is appended, and the
/// connection and other clients carry on.
pub async fn refused(
    name: &str,
    base: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
    expected: &TrustError,
) {
    let integrity = IntegrityMode::Distributed;
    let hosted = Hosted::start(name, base, integrity).await;
    let client = hosted.replica(name, integrity).await;
    let len = hosted.log_len();
    let e = trust_err(
        client
            .commit_transaction(evs.to_vec(), trailers.to_vec())
            .await,
    );
    assert_eq!(&e, expected, "over the wire");
    assert_eq!(hosted.log_len(), len, "nothing appended on the server");
    hosted.carries_on(name, &client, integrity).await;
}

/// `payload` (a whole transaction, as sealed) sent in a `Commit` message on a connection of its
/// own to a server holding `base`, in `integrity` mode: the server answers `Refused` with
/// `Refusal::Trust(expected)`, appends nothing, and other clients carry on. For what a client's
/// chain refuses before sending (a vouch).
pub async fn refused_raw(
    name: &str,
    base: &MemoryStore,
    integrity: IntegrityMode,
    payload: Vec<u8>,
    expected: &TrustError,
) {
    let hosted = Hosted::start(name, base, integrity).await;
    let len = hosted.log_len();
    let options = ConnectOptions::new(ServerTrust::Pinned(IDENTITY.hash()));
    let (mut channel, _) = connect(&hosted.server.url(name), &options)
        .await
        .expect("connect");
    let limits = WireLimits::default();
    let next = |b: Option<Bytes>| wire::decode_server(&b.expect("a message"), &limits);
    assert!(matches!(
        next(channel.recv().await.expect("recv")),
        Ok(ServerMsg::Opened { .. })
    ));
    let commit = ClientMsg::Commit {
        id: 1,
        tx: payload.into(),
    };
    channel.send(&wire::encode(&commit)).await.expect("send");
    match next(channel.recv().await.expect("recv")) {
        Ok(ServerMsg::Refused {
            id: 1,
            reason: Refusal::Trust(e),
        }) => assert_eq!(&e, expected, "over the wire"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(hosted.log_len(), len, "nothing appended on the server");
    channel.close().await.expect("close");
    let client = hosted.replica(name, integrity).await;
    hosted.carries_on(name, &client, integrity).await;
}

/// `evs` with `trailers`, committed by a client of a server holding `base`, is accepted (the
/// server cannot see inside a ciphertext either), and a reader of another replica gets
/// `DecryptFailed` for `key`, as a local reader does.
pub async fn accepted_but_unreadable<T>(
    name: &str,
    base: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
    key: &PrimaryKey,
) where
    T: Storable,
{
    let integrity = IntegrityMode::Distributed;
    let hosted = Hosted::start(name, base, integrity).await;
    let writer = hosted.replica(name, integrity).await;
    writer
        .commit_transaction(evs.to_vec(), trailers.to_vec())
        .await
        .expect("accepted over the wire");
    let reader = hosted.replica(name, integrity).await;
    reader.sync().await.expect("sync");
    let dio = reader.dio(&root_session()).await;
    match dio.load::<T>(key).await {
        Err(DioError::DecryptFailed { key: k, .. }) => assert_eq!(&k, key),
        Err(e) => panic!("expected DecryptFailed, got {e:?}"),
        Ok(_) => panic!("expected DecryptFailed, got the record"),
    }
    drop((dio, reader));
    hosted.carries_on(name, &writer, integrity).await;
}
