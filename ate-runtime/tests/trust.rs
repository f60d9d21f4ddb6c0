//! The chain of trust: signatures, rights, encryption and the tamper cases (R6); the forgeries
//! of `forged` (R11); and `schema`, the chain's schema records as a process that links no model
//! type enforces them.
//!
//! With the network features, every forgery here and in `forged` is also sent to a server as a
//! client's commit and refused there alike (`wire`).

use std::sync::OnceLock;

use ate_runtime::chain::{ChainRegistry, CommitError, OpenError};
use ate_runtime::crypto::Hash;
use ate_runtime::crypto::{EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey};
use ate_runtime::event::{EventDraft, Transaction, TxTrailer};
use ate_runtime::log::{MemoryStore, RecoveryMode};
use ate_runtime::prelude::*;
use ate_runtime::trust::{ReadOption, TrustError, ValidationContext, Validator, WriteOption};
use ate_runtime::unstable::codec::decode_transaction;
use ate_runtime::unstable::log::{FILE_HEADER_LEN, RedoLog, encode_frames};
use ate_runtime::unstable::meta::{
    EventTrust, SignerClaim, TRAILER_KEYS, TRAILER_SIGNATURE, TxClaims, TxSignature, event_hashes,
    proofs_of, signature_message, signature_trailer, tx_digest,
};
use serde::{Deserialize, Serialize};

#[path = "trust/forged.rs"]
mod forged;
#[path = "trust/schema.rs"]
mod schema;
#[cfg(all(feature = "client", feature = "server"))]
#[path = "trust/wire.rs"]
mod wire;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Secret {
    text: String,
}

struct Keys {
    root: PrivateSignKey,
    other: PrivateSignKey,
    read: EncryptKey,
    wrong_read: EncryptKey,
    ntru: PrivateEncryptKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        root: PrivateSignKey::generate(KeySize::Bit128),
        other: PrivateSignKey::generate(KeySize::Bit128),
        read: EncryptKey::generate(),
        wrong_read: EncryptKey::generate(),
        ntru: PrivateEncryptKey::generate(KeySize::Bit128),
    })
}

async fn registry() -> ChainRegistry {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .build()
}

fn root_session() -> AteSession {
    let mut s = AteSession::default();
    s.add_write_key(&keys().root).add_read_key(&keys().read);
    s
}

fn other_session() -> AteSession {
    let mut s = AteSession::default();
    s.add_write_key(&keys().other)
        .add_read_key(&keys().wrong_read);
    s
}

fn open(reg: &ChainRegistry, name: &str, store: &MemoryStore) -> Chain {
    reg.open_store(&ChainKey::from(name), Box::new(store.clone()))
        .expect("open chain")
}

/// Every transaction in a store, decoded.
fn transactions(store: &MemoryStore) -> Vec<Transaction> {
    let (_log, recs, _) = RedoLog::open(
        MemoryStore::from_bytes(store.bytes()),
        RecoveryMode::default(),
        1 << 30,
    )
    .expect("readable log");
    recs.into_iter()
        .map(|r| decode_transaction(r.payload).expect("decodes"))
        .collect()
}

fn drafts(tx: &Transaction) -> Vec<EventDraft> {
    tx.events.iter().map(|e| e.to_draft()).collect()
}

fn sig(t: &TxTrailer) -> TxSignature {
    rmp_serde::from_slice(&t.value).expect("a signature trailer")
}

/// The keys trailer of a transaction (its wrapped data keys), as a list of zero or one trailer.
fn keys_trailers(tx: &Transaction) -> Vec<TxTrailer> {
    tx.trailers
        .iter()
        .filter(|t| t.tag == TRAILER_KEYS)
        .cloned()
        .collect()
}

/// A chain with one secret record written (tx 1) and updated (tx 2) by the root writer.
async fn written(name: &str) -> (ChainRegistry, MemoryStore, Chain, PrimaryKey) {
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, name, &store);
    let mut dio = chain.dio(&root_session()).await;
    let mut dao = dio
        .store(Secret {
            text: "first".into(),
        })
        .unwrap();
    dao.auth_mut().read = ReadOption::from_key(&keys().read);
    let key = *dao.key();
    drop(dao);
    dio.commit().await.unwrap();
    let mut dao = dio.load::<Secret>(&key).await.unwrap();
    dao.as_mut().text = "second".into();
    dio.commit().await.unwrap();
    (reg, store, chain, key)
}

/// `evs` with `trailers`, committed by a client of a server holding `base` as `name`, is
/// refused with `expected` too (`wire::refused`), when built with the network features.
async fn refused_remotely(
    name: &str,
    base: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
    expected: &TrustError,
) {
    #[cfg(all(feature = "client", feature = "server"))]
    wire::refused(name, base, evs, trailers, expected).await;
    #[cfg(not(all(feature = "client", feature = "server")))]
    let _ = (name, base, evs, trailers, expected);
}

/// `payload` sent as is in a client's `Commit` to a server holding `base` in `integrity` mode is
/// refused with `expected` (`wire::refused_raw`), when built with the network features.
async fn refused_remotely_raw(
    name: &str,
    base: &MemoryStore,
    integrity: ate_runtime::trust::IntegrityMode,
    payload: Vec<u8>,
    expected: &TrustError,
) {
    #[cfg(all(feature = "client", feature = "server"))]
    wire::refused_raw(name, base, integrity, payload, expected).await;
    #[cfg(not(all(feature = "client", feature = "server")))]
    let _ = (name, base, integrity, payload, expected);
}

/// `evs` with `trailers`, which a chain holding `base` accepts but whose body no reader can
/// decrypt, is accepted by a server holding `base` as `name` too, and a reader of a replica
/// gets `DecryptFailed` for `key` (`wire::accepted_but_unreadable`), when built with the
/// network features.
// Without the network features there is nothing to read `T` with.
#[cfg_attr(
    not(all(feature = "client", feature = "server")),
    allow(clippy::extra_unused_type_parameters)
)]
async fn accepted_remotely_but_unreadable<T: Storable>(
    name: &str,
    base: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
    key: &PrimaryKey,
) {
    #[cfg(all(feature = "client", feature = "server"))]
    wire::accepted_but_unreadable::<T>(name, base, evs, trailers, key).await;
    #[cfg(not(all(feature = "client", feature = "server")))]
    let _ = (name, base, evs, trailers, key);
}

/// Commits `evs` with `trailers` to `chain` (whose log is `store`), which must refuse them, and
/// then through a server holding the same log (when built with the network features), which
/// must refuse them alike. Returns the error.
async fn refused_here_and_remotely(
    chain: &Chain,
    store: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
) -> TrustError {
    let e = trust_err(
        chain
            .commit_transaction(evs.to_vec(), trailers.to_vec())
            .await,
    );
    refused_remotely(chain.key().as_str(), store, evs, trailers, &e).await;
    e
}

fn trust_err(r: Result<u64, CommitError>) -> TrustError {
    match r {
        Err(CommitError::Trust(e)) => e,
        other => panic!("expected a trust error, got {other:?}"),
    }
}

async fn assert_unchanged(chain: &Chain, store: &MemoryStore, len: u64, key: &PrimaryKey) {
    use ate_runtime::log::LogStore;
    assert_eq!(store.len(), len, "nothing was appended");
    assert_eq!(chain.len(), 1);
    let dio = chain.dio(&root_session()).await;
    assert_eq!(dio.load::<Secret>(key).await.unwrap().text, "second");
}

#[tokio::test]
async fn signed_encrypted_chain_reopens_and_verifies() {
    let (reg, store, chain, key) = written("roundtrip").await;
    let txs = transactions(&store);
    assert_eq!(txs.len(), 2);
    assert!(
        txs.iter().all(|t| t.trailers.len() == 2
            && t.trailers[0].tag == TRAILER_SIGNATURE
            && t.trailers[1].tag == TRAILER_KEYS),
        "every transaction is signed and carries its wrapped data key"
    );
    drop(chain);
    let chain = open(&reg, "roundtrip", &store);
    let dio = chain.dio(&root_session()).await;
    assert_eq!(dio.load::<Secret>(&key).await.unwrap().text, "second");
    // The plaintext is nowhere in the log.
    let raw = store.bytes();
    for needle in [&b"first"[..], b"second"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "plaintext in the log"
        );
    }
}

#[tokio::test]
async fn plaintext_of_secret_records_is_absent_from_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let reg = ChainBuilder::new(&AteConfig::at(dir.path()))
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .build();
    let chain = reg.open(&ChainKey::from("file")).await.unwrap();
    let mut dio = chain.dio(&root_session()).await;
    let mut dao = dio
        .store(Secret {
            text: "the launch codes are 0000".into(),
        })
        .unwrap();
    dao.auth_mut().read = ReadOption::from_key(&keys().read);
    drop(dao);
    dio.commit().await.unwrap();
    let path = chain.path().unwrap().to_path_buf();
    drop(dio);
    drop(chain);
    let raw = std::fs::read(path).unwrap();
    let needle = b"launch codes";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
}

#[tokio::test]
async fn a_session_without_a_root_key_cannot_write() {
    let reg = registry().await;
    let chain = open(&reg, "closed", &MemoryStore::new());
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(Secret { text: "x".into() }).unwrap();
    assert!(matches!(
        dio.commit().await,
        Err(AteError::Dio(DioError::MissingWriteKey { .. }))
    ));
    assert!(chain.is_empty());
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let (_reg, store, chain, key) = written("payload").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    let mut evs = drafts(&tx);
    let mut body = evs[0].body.clone().unwrap().to_vec();
    body[3] ^= 1;
    evs[0].body = Some(body.into());
    let e = refused_here_and_remotely(&chain, &store, &evs, &tx.trailers).await;
    assert_eq!(e, TrustError::TxDigestMismatch);
    assert_unchanged(&chain, &store, len, &key).await;
}

#[tokio::test]
async fn flipped_signature_is_refused() {
    let (_reg, store, chain, key) = written("sigflip").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    let mut trailers = tx.trailers.clone();
    let mut v = trailers[0].value.to_vec();
    let last = v.len() - 1;
    v[last] ^= 0x10;
    trailers[0].value = v.into();
    let e = refused_here_and_remotely(&chain, &store, &drafts(&tx), &trailers).await;
    assert!(matches!(e, TrustError::BadSignature { .. }), "{e:?}");
    assert_unchanged(&chain, &store, len, &key).await;
}

/// The trailers of a transaction of `evs` for the chain `tx` was written for: a signature over
/// every event by `signer` (claiming to be `claimed` when given), then `rest` (a keys trailer).
fn signed_trailers(
    tx: &Transaction,
    evs: &[EventDraft],
    signer: &PrivateSignKey,
    claimed: Option<&PrivateSignKey>,
    rest: Vec<TxTrailer>,
) -> Vec<TxTrailer> {
    let chain = sig(&tx.trailers[0]).chain;
    let covers: Vec<u32> = (0..evs.len() as u32).collect();
    let public_key = claimed.unwrap_or(signer).as_public_key();
    let claims = TxClaims {
        signers: vec![SignerClaim {
            algorithm: public_key.algorithm().as_u8(),
            signer: public_key.hash(),
            covers: &covers,
        }],
        vouch: None,
        keys: rest
            .iter()
            .find(|t| t.tag == TRAILER_KEYS)
            .map(|t| Hash::of(&t.value)),
        directory: None,
    };
    let digest = tx_digest(&chain, &event_hashes(evs), &claims);
    let mut out = vec![signature_trailer(&TxSignature {
        chain,
        public_key,
        covers,
        digest,
        signature: signer.sign(&signature_message(&digest)),
    })];
    out.extend(rest);
    out
}

/// An update of the record (replacing version 2) signed by `signer`.
fn forged_update(
    tx: &Transaction,
    signer: &PrivateSignKey,
    claimed: Option<&PrivateSignKey>,
) -> (Vec<EventDraft>, Vec<TxTrailer>) {
    let mut evs = drafts(tx);
    let mut trust = EventTrust::of(&tx.events[0]).unwrap();
    trust.previous = Some(2);
    evs[0].meta = trust.to_meta();
    let trailers = signed_trailers(tx, &evs, signer, claimed, keys_trailers(tx));
    (evs, trailers)
}

#[tokio::test]
async fn forged_signer_is_refused() {
    let (_reg, store, chain, key) = written("forged").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    // Signed by `other`, claiming to be the root writer.
    let (evs, trailers) = forged_update(&tx, &keys().other, Some(&keys().root));
    let e = refused_here_and_remotely(&chain, &store, &evs, &trailers).await;
    assert!(matches!(e, TrustError::BadSignature { .. }), "{e:?}");
    assert_unchanged(&chain, &store, len, &key).await;
}

#[tokio::test]
async fn signer_without_the_right_is_refused() {
    let (_reg, store, chain, key) = written("unauthorized").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    let (evs, trailers) = forged_update(&tx, &keys().other, None);
    let e = refused_here_and_remotely(&chain, &store, &evs, &trailers).await;
    assert!(matches!(e, TrustError::Unauthorized { .. }), "{e:?}");
    let e = refused_here_and_remotely(&chain, &store, &evs, &keys_trailers(&tx)).await;
    assert!(matches!(e, TrustError::MissingSignature { .. }), "{e:?}");
    assert_unchanged(&chain, &store, len, &key).await;
    // The same update signed by the rightful writer passes: the checks above refused the signer,
    // not the event.
    let (evs, trailers) = forged_update(&tx, &keys().root, None);
    chain.commit_transaction(evs, trailers).await.unwrap();
}

#[tokio::test]
async fn event_from_another_chain_is_refused() {
    let (_reg, store, chain, key) = written("home").await;
    let (_reg2, store2, _chain2, _) = written("elsewhere").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let foreign = transactions(&store2).remove(0);
    let e = refused_here_and_remotely(&chain, &store, &drafts(&foreign), &foreign.trailers).await;
    assert_eq!(e, TrustError::WrongChain);
    assert_unchanged(&chain, &store, len, &key).await;
}

#[tokio::test]
async fn replayed_events_are_refused() {
    let (_reg, store, chain, key) = written("replay").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let txs = transactions(&store);
    for tx in &txs {
        let e = refused_here_and_remotely(&chain, &store, &drafts(tx), &tx.trailers).await;
        assert!(
            matches!(
                e,
                TrustError::VersionMismatch {
                    current: Some(2),
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_unchanged(&chain, &store, len, &key).await;
}

#[tokio::test]
async fn unknown_algorithm_id_is_refused() {
    let (_reg, store, chain, key) = written("alg").await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    let mut forged = sig(&tx.trailers[0]);
    forged.signature =
        ate_runtime::crypto::Signature::from_parts(0x63, forged.signature.as_bytes().to_vec());
    let value = rmp_serde::to_vec(&forged).unwrap();
    let mut trailers = tx.trailers.clone();
    trailers[0].value = value.into();
    let e = refused_here_and_remotely(&chain, &store, &drafts(&tx), &trailers).await;
    assert!(matches!(e, TrustError::UnknownAlgorithm(_)), "{e:?}");
    assert_unchanged(&chain, &store, len, &key).await;
}

#[tokio::test]
async fn wrong_read_key_gets_a_typed_error_not_plaintext() {
    let (_reg, _store, chain, key) = written("wrongkey").await;
    let dio = chain.dio(&other_session()).await;
    assert!(matches!(
        dio.load::<Secret>(&key).await,
        Err(DioError::MissingReadKey { .. })
    ));
    let dio = chain.dio(&AteSession::default()).await;
    assert!(matches!(
        dio.load::<Secret>(&key).await,
        Err(DioError::MissingReadKey { .. })
    ));
}

#[tokio::test]
async fn tampering_in_the_log_is_found_on_open() {
    let (reg, store, chain, _key) = written("ondisk").await;
    drop(chain);
    let txs = transactions(&store);
    // Rewrite tx 2 with a changed body and a correct frame checksum.
    let mut evs = drafts(&txs[1]);
    let mut body = evs[0].body.clone().unwrap().to_vec();
    body[0] ^= 0x80;
    evs[0].body = Some(body.into());
    let tampered = ate_runtime::unstable::codec::encode_transaction(2, &evs, &txs[1].trailers);
    let first =
        ate_runtime::unstable::codec::encode_transaction(1, &drafts(&txs[0]), &txs[0].trailers);
    let mut bytes = store.bytes()[..FILE_HEADER_LEN].to_vec();
    bytes.extend_from_slice(&encode_frames(&[&first, &tampered]));
    let bad = MemoryStore::from_bytes(bytes);
    match reg.open_store(&ChainKey::from("ondisk"), Box::new(bad)) {
        Err(OpenError::Invalid {
            seq: 2,
            source: TrustError::TxDigestMismatch,
            ..
        }) => {}
        other => panic!(
            "expected an invalid transaction, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Folder {
    name: String,
    files: DaoVec<Secret>,
}

#[tokio::test]
async fn children_inherit_their_parents_write_rule() {
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "tree", &store);
    let mut dio = chain.dio(&root_session()).await;
    let mut folder = dio
        .store(Folder {
            name: "docs".into(),
            files: DaoVec::new(),
        })
        .unwrap();
    folder.auth_mut().write = WriteOption::Specific(keys().root.hash());
    let folder_key = *folder.key();
    let files = folder.files.clone();
    drop(folder);
    dio.commit().await.unwrap();
    dio.store_child(&folder_key, &files, Secret { text: "a".into() })
        .unwrap();
    dio.commit().await.unwrap();

    // An outsider cannot add a child under the protected folder.
    let mut outsider = chain.dio(&other_session()).await;
    outsider
        .store_child(&folder_key, &files, Secret { text: "b".into() })
        .unwrap();
    assert!(matches!(
        outsider.commit().await,
        Err(AteError::Dio(DioError::MissingWriteKey { .. }))
    ));
    assert_eq!(dio.children(&folder_key, &files).await.unwrap().len(), 1);
}

#[tokio::test]
async fn nobody_is_final() {
    let reg = registry().await;
    let chain = open(&reg, "worm", &MemoryStore::new());
    let mut dio = chain.dio(&root_session()).await;
    let mut dao = dio
        .store(Secret {
            text: "forever".into(),
        })
        .unwrap();
    dao.auth_mut().write = WriteOption::Nobody;
    let key = *dao.key();
    drop(dao);
    dio.commit().await.unwrap();
    let mut dao = dio.load::<Secret>(&key).await.unwrap();
    dao.as_mut().text = "changed".into();
    assert!(matches!(
        dio.commit().await,
        Err(AteError::Dio(DioError::Final { .. }))
    ));
    dio.cancel();
    dio.delete(&key).unwrap();
    assert!(matches!(
        dio.commit().await,
        Err(AteError::Dio(DioError::Final { .. }))
    ));
    dio.cancel();
    assert_eq!(dio.load::<Secret>(&key).await.unwrap().text, "forever");
}

#[tokio::test]
async fn public_key_readers_need_the_private_key() {
    let reg = registry().await;
    let chain = open(&reg, "ntru", &MemoryStore::new());
    let mut writer = AteSession::default();
    writer.add_write_key(&keys().root);
    let mut dio = chain.dio(&writer).await;
    let mut dao = dio
        .store(Secret {
            text: "for ntru".into(),
        })
        .unwrap();
    dao.auth_mut().read = ReadOption::from_public_key(&keys().ntru.as_public_key());
    let key = *dao.key();
    drop(dao);
    dio.commit().await.unwrap();
    let dio = chain.dio(&writer).await;
    assert!(matches!(
        dio.load::<Secret>(&key).await,
        Err(DioError::MissingReadKey { .. })
    ));
    let mut reader = AteSession::default();
    reader.add_private_read_key(&keys().ntru);
    let dio = chain.dio(&reader).await;
    assert_eq!(dio.load::<Secret>(&key).await.unwrap().text, "for ntru");
}

struct NoShouting;

impl Validator for NoShouting {
    fn name(&self) -> &str {
        "no-shouting"
    }
    fn validate(&self, _ctx: &ValidationContext<'_>, tx: &Transaction) -> Result<(), String> {
        if tx.events.iter().any(|e| e.type_name().contains("Shout")) {
            Err("shouting is not allowed here".into())
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Shout {
    text: String,
}

#[tokio::test]
async fn a_custom_validator_refuses_transactions() {
    let reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_validator(NoShouting)
        .build();
    let chain = reg.open(&ChainKey::from("quiet")).await.unwrap();
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(Secret {
        text: "fine".into(),
    })
    .unwrap();
    dio.commit().await.unwrap();
    dio.store(Shout { text: "HEY".into() }).unwrap();
    match dio.commit().await {
        Err(AteError::Commit(CommitError::Trust(TrustError::Refused { validator, .. }))) => {
            assert_eq!(validator, "no-shouting")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(chain.len(), 1);
}

/// A reversible body transformer (a stand-in for compression): reverses the bytes.
struct Reverse;

impl ate_runtime::trust::Transformer for Reverse {
    fn id(&self) -> u16 {
        7
    }
    fn encode(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok(body.iter().rev().copied().collect())
    }
    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok(body.iter().rev().copied().collect())
    }
}

/// A linter that stamps every event with an extension tag.
struct Stamp;

impl ate_runtime::trust::Linter for Stamp {
    fn name(&self) -> &str {
        "stamp"
    }
    fn lint(&self, _event: &EventDraft) -> Vec<ate_runtime::event::MetaEntry> {
        vec![ate_runtime::event::MetaEntry {
            tag: ate_runtime::trust::EXTENSION_TAG_BASE + 1,
            value: bytes::Bytes::from_static(b"stamped"),
        }]
    }
}

#[tokio::test]
async fn transformers_and_linters_run_on_every_write() {
    let reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .add_transformer(Reverse)
        .add_linter(Stamp)
        .build();
    let store = MemoryStore::new();
    let chain = open(&reg, "plugins", &store);
    let mut dio = chain.dio(&root_session()).await;
    let plain = dio
        .store(Secret {
            text: "abcdefgh".into(),
        })
        .unwrap();
    let plain_key = *plain.key();
    drop(plain);
    let mut secret = dio
        .store(Secret {
            text: "ijklmnop".into(),
        })
        .unwrap();
    secret.auth_mut().read = ReadOption::from_key(&keys().read);
    let secret_key = *secret.key();
    drop(secret);
    dio.commit().await.unwrap();

    let tx = transactions(&store).remove(0);
    for ev in &tx.events {
        assert_eq!(
            ev.meta(ate_runtime::trust::EXTENSION_TAG_BASE + 1)
                .map(|b| &b[..]),
            Some(&b"stamped"[..])
        );
        assert_eq!(EventTrust::of(ev).unwrap().transforms, vec![7]);
    }
    // The plaintext body is stored reversed.
    let raw = store.bytes();
    assert!(raw.windows(8).any(|w| w == b"hgfedcba"));
    assert!(!raw.windows(8).any(|w| w == b"abcdefgh"));

    // Reads reverse the transformation, also after a reopen (which validates the stamps).
    drop(dio);
    drop(chain);
    let chain = open(&reg, "plugins", &store);
    let dio = chain.dio(&root_session()).await;
    assert_eq!(
        dio.load::<Secret>(&plain_key).await.unwrap().text,
        "abcdefgh"
    );
    assert_eq!(
        dio.load::<Secret>(&secret_key).await.unwrap().text,
        "ijklmnop"
    );

    // Without the transformer registered, the record is a typed error, not garbage.
    let bare = registry().await;
    drop(dio);
    drop(chain);
    let chain = open(&bare, "plugins", &store);
    let dio = chain.dio(&root_session()).await;
    assert!(matches!(
        dio.load::<Secret>(&plain_key).await,
        Err(DioError::Transform { id: 7, .. })
    ));
}

#[tokio::test]
async fn versions_catch_lost_updates_and_allow_repeated_changes() {
    let reg = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let chain = reg.open(&ChainKey::from("versions")).await.unwrap();
    let session = AteSession::default();
    let mut a = chain.dio(&session).await;
    let mut dao = a.store(Secret { text: "v1".into() }).unwrap();
    let key = *dao.key();
    a.commit().await.unwrap();
    // The same Dao changed and committed twice in a row.
    dao.as_mut().text = "v2".into();
    a.commit().await.unwrap();
    dao.as_mut().text = "v3".into();
    a.commit().await.unwrap();

    // Two readers of v3 both change it: the second one is stale.
    let mut b = chain.dio(&session).await;
    let mut c = chain.dio(&session).await;
    let mut from_b = b.load::<Secret>(&key).await.unwrap();
    let mut from_c = c.load::<Secret>(&key).await.unwrap();
    from_b.as_mut().text = "b".into();
    from_c.as_mut().text = "c".into();
    b.commit().await.unwrap();
    assert!(matches!(
        c.commit().await,
        Err(AteError::Commit(CommitError::Trust(
            TrustError::VersionMismatch { .. }
        )))
    ));
    assert_eq!(b.load::<Secret>(&key).await.unwrap().text, "b");
    // Reading again and retrying works.
    c.cancel();
    let mut again = c.load::<Secret>(&key).await.unwrap();
    again.as_mut().text = "c".into();
    c.commit().await.unwrap();
    assert_eq!(a.load::<Secret>(&key).await.unwrap().text, "c");
}

/// Centralized integrity: the chain's server vouches, with its own pinned key, for the writers
/// of a transaction it received on an authenticated connection; the writers' rights are still
/// checked event by event, and only chains in that mode, pinning that key, accept (or reopen)
/// such transactions. Nobody else's vouch counts.
#[tokio::test]
async fn vouched_transactions_need_centralized_integrity_and_a_pinned_server() {
    use ate_runtime::trust::IntegrityMode;
    use ate_runtime::unstable::meta::TxSealer;

    let server = PrivateSignKey::generate(KeySize::Bit128);
    // The events of a plain new record, built by an open chain.
    let open_reg = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let scratch = MemoryStore::new();
    let source = open(&open_reg, "vouch-source", &scratch);
    let mut dio = source.dio(&AteSession::default()).await;
    let key = *dio
        .store(Secret {
            text: "vouched".into(),
        })
        .unwrap()
        .key();
    dio.commit().await.unwrap();
    let events = drafts(&transactions(&scratch)[0]);
    let writers = vec![keys().root.hash()];

    // Without a server key there is nothing to vouch with; a distributed chain refuses vouches.
    let store = MemoryStore::new();
    let plain = open(&registry().await, "vouch", &store);
    assert!(matches!(
        plain
            .commit_vouched(events.clone(), vec![], writers.clone())
            .await,
        Err(CommitError::NoServerKey)
    ));
    drop(plain);
    let distributed_reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .server_key(server.clone())
        .build();
    let distributed = open(&distributed_reg, "vouch", &store);
    let e = trust_err(
        distributed
            .commit_vouched(events.clone(), vec![], writers.clone())
            .await,
    );
    assert_eq!(e, TrustError::VouchRefused);
    assert!(distributed.is_empty());
    drop(distributed);

    let centralized_reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized)
        .server_key(server.clone())
        .build();
    let chain = open(&centralized_reg, "vouch", &store);
    // A vouched writer without the right is refused, as a signer would be.
    let e = trust_err(
        chain
            .commit_vouched(events.clone(), vec![], vec![keys().other.hash()])
            .await,
    );
    assert!(matches!(e, TrustError::Unauthorized { .. }), "{e:?}");
    // No writer at all: nobody holds the right.
    let e = trust_err(chain.commit_vouched(events.clone(), vec![], vec![]).await);
    assert!(matches!(e, TrustError::MissingSignature { .. }), "{e:?}");
    // A vouch handed in from outside is refused, even one the pinned server key signed.
    let vouch_for = |chain_hash: &Hash| {
        TxSealer {
            vouch: Some((&server, writers.clone())),
            ..TxSealer::default()
        }
        .seal(chain_hash, &event_hashes(&events))
        .unwrap()
    };
    let vouched = vouch_for(chain.policy().chain_hash());
    let e = trust_err(
        chain
            .commit_transaction(events.clone(), vouched.clone())
            .await,
    );
    assert_eq!(e, TrustError::ForeignVouch);
    // Sent to a server as is (a client's chain refuses to send it), it is refused there too.
    let payload = ate_runtime::unstable::codec::encode_transaction(1, &events, &vouched);
    refused_remotely_raw(
        "vouch",
        &store,
        IntegrityMode::Centralized,
        payload,
        &TrustError::ForeignVouch,
    )
    .await;
    // The root writer, vouched for, may write at the root.
    chain
        .commit_vouched(events.clone(), vec![], writers.clone())
        .await
        .unwrap();
    assert_eq!(
        chain
            .dio(&AteSession::default())
            .await
            .load::<Secret>(&key)
            .await
            .unwrap()
            .text,
        "vouched"
    );
    drop(chain);

    // The log reopens in centralized mode with the server key pinned (through its public half
    // too), and is refused by a chain that does not pin it or trusts no server.
    let reopened = open(&centralized_reg, "vouch", &store);
    assert_eq!(reopened.len(), 1);
    drop(reopened);
    let pinned_reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized)
        .add_server_public_key(&server.as_public_key())
        .build();
    assert_eq!(open(&pinned_reg, "vouch", &store).len(), 1);
    let unpinned_reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized)
        .build();
    for (reg, expected) in [
        (
            unpinned_reg,
            TrustError::UnpinnedServer {
                server: server.hash(),
            },
        ),
        (registry().await, TrustError::VouchRefused),
    ] {
        match reg.open_store(&ChainKey::from("vouch"), Box::new(store.clone())) {
            Err(OpenError::Invalid { source, seq, .. }) => {
                assert_eq!(source, expected);
                assert_eq!(seq, 1);
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    // A vouch the server made for another chain does not move.
    let elsewhere = ate_runtime::unstable::codec::encode_transaction(
        1,
        &events,
        &vouch_for(source.policy().chain_hash()),
    );
    let mut bytes = store.bytes()[..FILE_HEADER_LEN].to_vec();
    bytes.extend_from_slice(&encode_frames(&[&elsewhere]));
    match centralized_reg.open_store(
        &ChainKey::from("vouch"),
        Box::new(MemoryStore::from_bytes(bytes)),
    ) {
        Err(OpenError::Invalid { source, .. }) => assert_eq!(source, TrustError::WrongChain),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The keys trailer: one wrapped data key per transaction and read key, each encrypted event
// binding its entry by id.

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn a_large_transaction_stores_each_wrapped_key_once() {
    use ate_runtime::unstable::meta::{Confidentiality, TAG_CONFIDENTIALITY};

    let dir = tempfile::tempdir().unwrap();
    let reg = ChainBuilder::new(&AteConfig::at(dir.path()))
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .build();
    let chain = reg.open(&ChainKey::from("wrapped-once")).await.unwrap();
    let mut writer = AteSession::default();
    writer
        .add_write_key(&keys().root)
        .add_read_key(&keys().read);
    let mut dio = chain.dio(&writer).await;
    // Transaction 1: 1000 records for an NTRU reader; transaction 2: 1000 for a symmetric one.
    let mut by_tx: Vec<Vec<PrimaryKey>> = Vec::new();
    for read in [
        ReadOption::from_public_key(&keys().ntru.as_public_key()),
        ReadOption::from_key(&keys().read),
    ] {
        let mut written = Vec::new();
        for n in 0..1000 {
            let mut dao = dio
                .store(Secret {
                    text: format!("secret number {n}"),
                })
                .unwrap();
            dao.auth_mut().read = read.clone();
            written.push(*dao.key());
        }
        dio.commit().await.unwrap();
        by_tx.push(written);
    }
    let path = chain.path().unwrap().to_path_buf();
    drop(dio);
    drop(chain);

    let raw = std::fs::read(&path).unwrap();
    let (_log, recs, _) = RedoLog::open(
        MemoryStore::from_bytes(raw.clone()),
        RecoveryMode::default(),
        1 << 30,
    )
    .unwrap();
    let txs: Vec<Transaction> = recs
        .into_iter()
        .map(|r| decode_transaction(r.payload).unwrap())
        .collect();
    assert_eq!(txs.len(), 2);
    for (tx, public) in txs.iter().zip([true, false]) {
        let entries = proofs_of(tx).unwrap().keys.expect("a keys trailer").keys;
        assert_eq!(entries.len(), 1, "one entry per read key");
        let wrapped = &entries[0].wrapped;
        if public {
            assert_eq!(wrapped.encapsulation().len(), 699);
            assert_eq!(
                count(&raw, wrapped.encapsulation()),
                1,
                "the NTRU encapsulation is in the file once"
            );
        }
        let encoded = rmp_serde::to_vec(wrapped).unwrap();
        assert_eq!(
            count(&raw, &encoded),
            1,
            "the wrapped key is in the file once"
        );
        // Each event carries only the 76-byte binding, well under a wrapped key.
        for ev in &tx.events {
            let c = ev.meta(TAG_CONFIDENTIALITY).expect("encrypted");
            assert_eq!(c.len(), Confidentiality::LEN);
            let body = ev.body.as_ref().unwrap().len();
            let meta: usize = ev.meta.iter().map(|m| 6 + m.value.len()).sum();
            assert!(
                ev.raw.len() <= body + meta + 96,
                "event of {} bytes",
                ev.raw.len()
            );
        }
    }

    // After a reopen, a reader holding both keys reads every record; a session without them
    // gets the typed missing-key error.
    let chain = reg.open(&ChainKey::from("wrapped-once")).await.unwrap();
    let mut reader = AteSession::default();
    reader
        .add_read_key(&keys().read)
        .add_private_read_key(&keys().ntru);
    let dio = chain.dio(&reader).await;
    for written in &by_tx {
        for (n, key) in written.iter().enumerate() {
            assert_eq!(
                dio.load::<Secret>(key).await.unwrap().text,
                format!("secret number {n}")
            );
        }
    }
    let dio = chain.dio(&AteSession::default()).await;
    for written in &by_tx {
        assert!(matches!(
            dio.load::<Secret>(&written[0]).await,
            Err(DioError::MissingReadKey { .. })
        ));
    }
}

/// The trailers of `tx` other than its keys trailer.
fn without_keys(tx: &Transaction) -> Vec<TxTrailer> {
    tx.trailers
        .iter()
        .filter(|t| t.tag != TRAILER_KEYS)
        .cloned()
        .collect()
}

/// A keys trailer of `tx`'s entries plus one for the `wrong_read` key (which no event uses).
fn with_extra_entry(tx: &Transaction) -> (TxTrailer, ate_runtime::crypto::Hash) {
    use ate_runtime::unstable::meta::{TxKey, key_entry_id, keys_trailer};
    let mut entries = proofs_of(tx).unwrap().keys.unwrap();
    let extra = TxKey {
        read_key: keys().wrong_read.hash(),
        wrapped: keys().wrong_read.wrap(&EncryptKey::generate()),
    };
    let id = key_entry_id(&extra);
    entries.keys.push(extra);
    (keys_trailer(&entries), id)
}

/// Commits tx 2 of a fresh `written` chain changed by `tamper` through
/// `Chain::commit_transaction` (refused, nothing changes), then writes it into a log after tx 1
/// and opens that (refused on open). Both must give `expected`.
async fn refused_on_commit_and_open(
    name: &str,
    tamper: impl Fn(&Transaction) -> (Vec<EventDraft>, Vec<TxTrailer>),
    expected: TrustError,
) {
    let (reg, store, chain, key) = written(name).await;
    use ate_runtime::log::LogStore;
    let len = store.len();
    let txs = transactions(&store);
    let (evs, trailers) = tamper(&txs[1]);
    let e = refused_here_and_remotely(&chain, &store, &evs, &trailers).await;
    assert_eq!(e, expected, "on commit");
    assert_unchanged(&chain, &store, len, &key).await;
    drop(chain);

    let first =
        ate_runtime::unstable::codec::encode_transaction(1, &drafts(&txs[0]), &txs[0].trailers);
    let second = ate_runtime::unstable::codec::encode_transaction(2, &evs, &trailers);
    let mut bytes = store.bytes()[..FILE_HEADER_LEN].to_vec();
    bytes.extend_from_slice(&encode_frames(&[&first, &second]));
    match reg.open_store(
        &ChainKey::from(name),
        Box::new(MemoryStore::from_bytes(bytes)),
    ) {
        Err(OpenError::Invalid {
            seq: 2, source: e, ..
        }) => assert_eq!(e, expected, "on open"),
        other => panic!(
            "expected an invalid transaction 2, got {:?}",
            other.map(|_| ())
        ),
    }
    // The untampered log still opens and reads.
    let chain = open(&reg, name, &store);
    let dio = chain.dio(&root_session()).await;
    assert_eq!(dio.load::<Secret>(&key).await.unwrap().text, "second");
}

#[tokio::test]
async fn a_flipped_byte_in_a_wrapped_key_is_refused() {
    refused_on_commit_and_open(
        "keys-flip",
        |tx| {
            let mut trailers = tx.trailers.clone();
            let at = trailers.iter().position(|t| t.tag == TRAILER_KEYS).unwrap();
            // The last byte of the trailer is the last byte of the sealed data key.
            let mut v = trailers[at].value.to_vec();
            let last = v.len() - 1;
            v[last] ^= 0x01;
            trailers[at].value = v.into();
            (drafts(tx), trailers)
        },
        TrustError::KeyEntryMismatch {
            index: 0,
            read_key: keys().read.hash(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_removed_keys_trailer_is_refused() {
    refused_on_commit_and_open(
        "keys-removed",
        |tx| (drafts(tx), without_keys(tx)),
        TrustError::MissingKeyEntry {
            index: 0,
            read_key: keys().read.hash(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_duplicated_keys_trailer_is_refused() {
    refused_on_commit_and_open(
        "keys-twice",
        |tx| {
            let mut trailers = tx.trailers.clone();
            trailers.extend(keys_trailers(tx));
            (drafts(tx), trailers)
        },
        TrustError::DuplicateKeysTrailer,
    )
    .await;
}

#[tokio::test]
async fn an_unused_key_entry_is_refused() {
    refused_on_commit_and_open(
        "keys-unused",
        |tx| {
            let (trailer, _) = with_extra_entry(tx);
            let mut trailers = without_keys(tx);
            trailers.push(trailer);
            (drafts(tx), trailers)
        },
        TrustError::UnusedKeyEntry {
            read_key: keys().wrong_read.hash(),
        },
    )
    .await;
}

#[tokio::test]
async fn an_event_pointed_at_another_entry_is_refused() {
    use ate_runtime::unstable::meta::Confidentiality;
    refused_on_commit_and_open(
        "keys-pointed",
        |tx| {
            let (trailer, other) = with_extra_entry(tx);
            let mut evs = drafts(tx);
            let mut trust = EventTrust::of(&tx.events[0]).unwrap();
            let c = trust.confidentiality.unwrap();
            trust.confidentiality = Some(Confidentiality {
                key_entry: other,
                ..c
            });
            evs[0].meta = trust.to_meta();
            // Re-signed by the rightful writer: the signature is not what fails.
            let trailers = signed_trailers(tx, &evs, &keys().root, None, vec![trailer]);
            (evs, trailers)
        },
        TrustError::KeyEntryOfAnotherReader {
            index: 0,
            read_key: keys().read.hash(),
            entry_reader: keys().wrong_read.hash(),
        },
    )
    .await;
}

#[tokio::test]
async fn the_retired_confidentiality_tag_is_refused() {
    use ate_runtime::unstable::meta::{TAG_CONFIDENTIALITY, TAG_RETIRED_CONFIDENTIALITY};
    refused_on_commit_and_open(
        "keys-retired",
        |tx| {
            let mut evs = drafts(tx);
            for m in &mut evs[0].meta {
                if m.tag == TAG_CONFIDENTIALITY {
                    m.tag = TAG_RETIRED_CONFIDENTIALITY;
                }
            }
            let trailers = signed_trailers(tx, &evs, &keys().root, None, keys_trailers(tx));
            (evs, trailers)
        },
        TrustError::RetiredMetadata(TAG_RETIRED_CONFIDENTIALITY),
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_chain_keeps_its_keys_trailer_across_a_reopen() {
    let reg = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let store = MemoryStore::new();
    let chain = open(&reg, "open-secret", &store);
    let mut session = AteSession::default();
    session.add_read_key(&keys().read);
    let mut dio = chain.dio(&session).await;
    let mut dao = dio
        .store(Secret {
            text: "unsigned".into(),
        })
        .unwrap();
    dao.auth_mut().read = ReadOption::from_key(&keys().read);
    let key = *dao.key();
    drop(dao);
    dio.commit().await.unwrap();
    drop(dio);
    drop(chain);
    let tx = transactions(&store).remove(0);
    assert_eq!(tx.trailers.len(), 1, "no signature, one keys trailer");
    assert_eq!(proofs_of(&tx).unwrap().keys.unwrap().keys.len(), 1);
    let chain = open(&reg, "open-secret", &store);
    let dio = chain.dio(&session).await;
    assert_eq!(dio.load::<Secret>(&key).await.unwrap().text, "unsigned");
}
