//! Large transactions are sealed on several threads: the result must be the same chain of
//! trust as a small one (every event encrypted for its reader, signed, replayable, readable),
//! and a failure must be the one of the first failing event.

use ate_runtime::crypto::{EncryptKey, KeySize, PrivateEncryptKey, PrivateSignKey};
use ate_runtime::log::MemoryStore;
use ate_runtime::prelude::*;
use ate_runtime::trust::{ReadOption, WriteOption};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    n: u32,
    text: String,
}

#[tokio::test]
async fn a_large_mixed_transaction_round_trips_and_replays() {
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let read = EncryptKey::generate();
    let ntru = PrivateEncryptKey::generate(KeySize::Bit128);
    let reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let store = MemoryStore::default();
    let chain = reg
        .open_store(&ChainKey::from("large"), Box::new(store.clone()))
        .expect("open");
    let mut session = AteSession::default();
    session
        .add_write_key(&root)
        .add_read_key(&read)
        .add_private_read_key(&ntru);

    let mut keys = Vec::new();
    let mut dio = chain.dio(&session).await;
    for n in 0..500u32 {
        let mut dao = dio
            .store(Note {
                n,
                text: "x".repeat(n as usize % 300),
            })
            .expect("store");
        {
            let mut auth = dao.auth_mut();
            auth.read = match n % 3 {
                0 => ReadOption::from_key(&read),
                1 => ReadOption::from_public_key(&ntru.as_public_key()),
                _ => ReadOption::Everyone,
            };
            auth.write = WriteOption::Specific(root.hash());
        }
        keys.push(*dao.key());
    }
    dio.commit().await.expect("commit");

    // Another chain handle over the same log replays and verifies everything.
    drop(dio);
    drop(chain);
    let reg2 = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let chain = reg2
        .open_store(&ChainKey::from("large"), Box::new(store.clone()))
        .expect("replay");
    let dio = chain.dio(&session).await;
    for (n, key) in keys.iter().enumerate() {
        let note = dio.load::<Note>(key).await.expect("load");
        assert_eq!(note.n, n as u32);
        assert_eq!(note.text.len(), n % 300);
    }
    // A session without the read keys reads none of the encrypted ones.
    let dio = chain.dio(&AteSession::default()).await;
    assert!(dio.load::<Note>(&keys[0]).await.is_err());
    assert!(dio.load::<Note>(&keys[1]).await.is_err());
    assert!(dio.load::<Note>(&keys[2]).await.is_ok());
}

#[tokio::test]
async fn a_large_transaction_missing_a_read_key_names_its_first_record() {
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let read = EncryptKey::generate();
    let reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let chain = reg.open(&ChainKey::from("missing")).await.expect("open");
    let mut session = AteSession::default();
    session.add_write_key(&root);
    let mut dio = chain.dio(&session).await;
    let mut first = None;
    for n in 0..300u32 {
        let mut dao = dio
            .store(Note {
                n,
                text: String::new(),
            })
            .expect("store");
        if n >= 200 {
            dao.auth_mut().read = ReadOption::from_key(&read);
            first.get_or_insert(*dao.key());
        }
    }
    let err = dio.commit().await.expect_err("no read key");
    let msg = err.to_string();
    let first = first.expect("set");
    assert!(
        msg.contains(&first.to_string()),
        "{msg} should name {first}"
    );
    assert!(dio.has_changes(), "the staged changes remain");
}
