//! Valid encodings made by the real write path, for the mutation tests and the fuzz seeds.
//!
//! Each sample is a small log of the chain [`CHAIN`] (open root, centralized integrity: the
//! policy the fuzz targets check against), written by a Dio or through `commit_vouched`, so its
//! transactions carry what commits really write: authorization, previous versions, parents,
//! tombstones, encrypted bodies, signatures, a keys trailer (for a symmetric reader and for an
//! NTRU reader), a vouch, transforms and an extension tag.

use ate_runtime::chain::ChainRegistry;
use ate_runtime::crypto::{EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey};
use ate_runtime::event::{BodyFormat, EventDraft, PrimaryKey};
use ate_runtime::log::{DEFAULT_MAX_FRAME, MemoryStore, RecoveryMode};
use ate_runtime::prelude::*;
use ate_runtime::trust::{Authorization, IntegrityMode, ReadOption, WriteOption};
use ate_runtime::unstable::log::RedoLog;
use ate_runtime::unstable::meta::EventTrust;
use tokio::sync::OnceCell;

use super::common::{Folder, Note, items_of};

/// The chain the samples belong to (`ate_runtime::fuzzing::CHAIN_KEY`).
pub const CHAIN: &str = "fuzz";

/// One log, as its file bytes and its transaction payloads.
#[derive(Debug)]
pub struct Sample {
    /// What the log shows.
    pub name: &'static str,
    /// The whole log: file header and frames.
    pub log: Vec<u8>,
    /// Each transaction payload, in order.
    pub payloads: Vec<Vec<u8>>,
}

/// The server key the fuzz targets' chain pins (`ate_runtime::fuzzing::server_key`).
pub fn server_key() -> PrivateSignKey {
    rmp_serde::from_slice(include_bytes!("../../src/fuzzing/server.key")).expect("the key")
}

/// A registry opening chains as the fuzz targets check them.
pub async fn registry() -> ChainRegistry {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .integrity(IntegrityMode::Centralized)
        .server_key(server_key())
        .build()
}

/// The samples, made once per test binary.
pub async fn samples() -> &'static [Sample] {
    static SAMPLES: OnceCell<Vec<Sample>> = OnceCell::const_new();
    SAMPLES.get_or_init(make).await
}

struct Keys {
    writer: PrivateSignKey,
    read: EncryptKey,
    ntru: PrivateEncryptKey,
}

async fn make() -> Vec<Sample> {
    let keys = Keys {
        writer: PrivateSignKey::generate(KeySize::Bit128),
        read: EncryptKey::from_bytes([7; 32]),
        ntru: PrivateEncryptKey::generate(KeySize::Bit128),
    };
    let mut session = AteSession::default();
    session.add_write_key(&keys.writer).add_read_key(&keys.read);
    let reg = registry().await;
    let mut out = Vec::new();
    for name in ["plain", "signed-tree", "aes", "ntru", "vouch"] {
        let store = MemoryStore::new();
        let chain = reg
            .open_store(&ChainKey::from(CHAIN), Box::new(store.clone()))
            .expect("open a sample chain");
        let mut dio = chain.dio(&session).await;
        match name {
            "plain" => plain(&mut dio).await,
            "signed-tree" => signed_tree(&mut dio, &keys).await,
            "aes" => encrypted(&mut dio, &keys, ReadOption::from_key(&keys.read)).await,
            "ntru" => {
                let reader = ReadOption::from_public_key(&keys.ntru.as_public_key());
                encrypted(&mut dio, &keys, reader).await
            }
            _ => vouched(&chain, &mut dio, &keys).await,
        }
        drop(dio);
        drop(chain);
        out.push(sample(name, store.bytes()));
    }
    out
}

fn sample(name: &'static str, log: Vec<u8>) -> Sample {
    let (_, records, _) = RedoLog::open(
        MemoryStore::from_bytes(log.clone()),
        RecoveryMode::AbsoluteConsistency,
        DEFAULT_MAX_FRAME,
    )
    .expect("a sample log opens");
    let payloads = records.into_iter().map(|r| r.payload.to_vec()).collect();
    Sample {
        name,
        log,
        payloads,
    }
}

/// A record written, updated and deleted; unsigned (the root is open).
async fn plain(dio: &mut Dio) {
    let key = *dio.store(Note::new(1)).unwrap().key();
    dio.store(Note::new(2)).unwrap();
    dio.commit().await.unwrap();
    dio.load::<Note>(&key).await.unwrap().as_mut().text = "changed".into();
    dio.commit().await.unwrap();
    dio.delete(&key).unwrap();
    dio.commit().await.unwrap();
}

/// A folder only the writer may change, then a child under it and its deletion: signed.
async fn signed_tree(dio: &mut Dio, keys: &Keys) {
    let mut folder = dio.store(Folder::new("docs")).unwrap();
    folder.auth_mut().write = WriteOption::Specific(keys.writer.hash());
    let key = *folder.key();
    drop(folder);
    dio.commit().await.unwrap();
    let mut folder = dio.load::<Folder>(&key).await.unwrap();
    folder.as_mut().blob = vec![1, 2, 3];
    let items = items_of(&folder);
    drop(folder);
    dio.commit().await.unwrap();
    let child = *items.push(dio, Note::new(3)).unwrap().key();
    dio.commit().await.unwrap();
    dio.delete(&child).unwrap();
    dio.commit().await.unwrap();
}

/// Two records encrypted for `reader`, one of them then updated under a signed write rule (when
/// the session can read it).
async fn encrypted(dio: &mut Dio, keys: &Keys, reader: ReadOption) {
    let mut first = dio.store(Note::new(4)).unwrap();
    first.auth_mut().read = reader.clone();
    first.auth_mut().write = WriteOption::Specific(keys.writer.hash());
    let key = *first.key();
    drop(first);
    dio.store(Note::new(5)).unwrap().auth_mut().read = reader;
    dio.commit().await.unwrap();
    // Only a reader can update it (the session holds the symmetric key, not the NTRU one).
    if let Ok(mut note) = dio.load::<Note>(&key).await {
        note.as_mut().text = "changed".into();
        drop(note);
        dio.commit().await.unwrap();
    }
}

/// A record whose writer a server vouches for, then an update carrying transforms and an
/// extension tag, vouched for too.
async fn vouched(chain: &Chain, dio: &mut Dio, keys: &Keys) {
    let mut note = dio.store(Note::new(6)).unwrap();
    note.auth_mut().write = WriteOption::Specific(keys.writer.hash());
    let key = *note.key();
    drop(note);
    dio.commit().await.unwrap();
    let mut meta = EventTrust {
        auth: Some(Authorization {
            read: ReadOption::Everyone,
            write: WriteOption::Any(vec![keys.writer.hash(), keys.read.hash()]),
        }),
        previous: Some(1),
        transforms: vec![7],
        ..EventTrust::default()
    }
    .to_meta();
    meta.push(ate_runtime::event::MetaEntry {
        tag: 0x8001,
        value: b"linted".to_vec().into(),
    });
    let update = EventDraft {
        key,
        timestamp_ms: 1_700_000_000_000,
        tombstone: false,
        parent: None,
        type_name: ate_runtime::schema::type_name_of::<Note>().into(),
        format: BodyFormat::MessagePack,
        meta,
        body: Some(rmp_serde::to_vec(&Note::new(7)).unwrap().into()),
    };
    let created = EventDraft {
        key: PrimaryKey::generate(),
        meta: Vec::new(),
        ..update.clone()
    };
    chain
        .commit_vouched(vec![update, created], vec![], vec![keys.writer.hash()])
        .await
        .expect("a vouched update");
}
