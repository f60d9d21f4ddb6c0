//! A chain of trust: only the root key may write, records are encrypted for a read key, and a
//! session without the key gets a typed error instead of the data.

use ate::crypto::{EncryptKey, KeySize, PrivateSignKey};
use ate::prelude::*;
use ate::trust::{ReadOption, WriteOption};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Note {
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), AteError> {
    let folder = std::env::temp_dir().join(format!("ate-vault-{}", std::process::id()));
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let read_key = EncryptKey::generate();

    // The chain's root writer is pinned when chains are opened.
    let chains = ChainBuilder::new(&AteConfig::at(&folder))
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let chain = chains.open(&ChainKey::from("vault")).await?;

    let mut owner = AteSession::default();
    owner.add_write_key(&root).add_read_key(&read_key);

    // Store a note that only holders of `read_key` can read, and nobody can change.
    let mut dio = chain.dio(&owner).await;
    let mut note = dio.store(Note {
        text: "the combination is 12-34-56".into(),
    })?;
    note.auth_mut().read = ReadOption::from_key(&read_key);
    note.auth_mut().write = WriteOption::Nobody;
    let key = *note.key();
    drop(note);
    dio.commit().await?; // encrypted, signed once with Falcon, fsynced

    // A stranger can neither read it nor write to the chain.
    let stranger = AteSession::default();
    let mut dio2 = chain.dio(&stranger).await;
    match dio2.load::<Note>(&key).await {
        Err(DioError::MissingReadKey { .. }) => println!("stranger: cannot read the note"),
        other => panic!("unexpected: {other:?}"),
    }
    dio2.store(Note {
        text: "graffiti".into(),
    })?;
    match dio2.commit().await {
        Err(AteError::Dio(DioError::MissingWriteKey { .. })) => {
            println!("stranger: cannot write to the chain")
        }
        other => panic!("unexpected: {other:?}"),
    }

    // Reopen: every signature and right is checked again; the owner reads the note.
    drop((dio, dio2, chain));
    let chain = chains.open(&ChainKey::from("vault")).await?;
    let dio = chain.dio(&owner).await;
    println!("owner: {}", dio.load::<Note>(&key).await?.text);

    // The log file holds no plaintext.
    let raw = std::fs::read(chain.path().expect("on disk")).map_err(|e| {
        AteError::Log(ate::log::LogError::Io {
            store: "vault".into(),
            source: e,
        })
    })?;
    assert!(!raw.windows(11).any(|w| w == b"combination"));
    println!("log file: no plaintext in {} bytes", raw.len());

    drop((dio, chain));
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
