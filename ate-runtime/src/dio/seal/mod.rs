//! The write path of a commit: rules, versions, encryption, hashes and signatures.
//!
//! 0. [`schema`]: the schema records the transaction writes first (for the types whose linked
//!    declaration adds indexes to what the chain records), and the schema each indexed type's
//!    records are checked by.
//! 1. [`plan`], under the view's read lock: for each staged write, the version it replaces, the
//!    write rules it must satisfy and the keys that sign it, and its read rule, against the
//!    view plus the writes ahead of it in the same transaction.
//! 2. [`events`], without locks: bodies transformed and encrypted (one fresh data key per read
//!    key per transaction, each event binding its entry of the keys trailer by id), events
//!    encoded and hashed.
//! 3. Here: the keys trailer and the key directory, then one signature per signing key over the
//!    transaction's digest ([`TxSealer`]).

mod events;
mod plan;
mod schema;

use std::collections::HashMap;

use super::DioError;
use super::staging::{FastMap, Staged};
use crate::chain::Chain;
use crate::crypto::{Cipher, EncryptKey, Hash, PublicEncryptKey};
use crate::event::{PrimaryKey, TxTrailer, codec, now_ms};
use crate::session::AteSession;
use crate::trust::meta::{
    CheckedMeta, TxDirectory, TxKey, TxKeys, TxSealer, directory_trailer, key_entry_id,
    keys_trailer,
};
use crate::trust::{ReadKey, ReadOption};
use events::EventSealer;
use plan::Planned;

/// A transaction ready for the writer.
pub(super) struct Sealed {
    /// The encoded transaction, its sequence number left 0 for the writer to fill in, after
    /// room for its frame header (see `Chain::commit`).
    pub payload: Vec<u8>,
    pub hashes: Option<Vec<Hash>>,
    /// What each event's trust metadata says, as written here (`None` when linters added
    /// metadata of their own: the writer then decodes it all).
    pub trust: Option<Vec<CheckedMeta>>,
}

/// Seals the staged writes `ops` into one transaction for `chain`, as `session`.
pub(super) fn seal(
    chain: &Chain,
    session: &AteSession,
    versions: &FastMap<PrimaryKey, u64>,
    ops: &[(PrimaryKey, Staged)],
) -> Result<Sealed, DioError> {
    let schemas = schema::plan(chain, ops)?;
    let with_schema: Vec<(PrimaryKey, Staged)>;
    let ops = if schemas.records.is_empty() {
        ops
    } else {
        with_schema = schemas
            .records
            .iter()
            .cloned()
            .chain(ops.iter().cloned())
            .collect();
        &with_schema
    };
    let plan = plan::plan(chain, session, versions, ops).map_err(|e| schemas.explain(e))?;
    let readers = data_keys(session, &plan.events, &plan.public_keys);
    let sealer = EventSealer {
        chain,
        chain_key: chain.key().as_str(),
        readers: &readers,
        timestamp_ms: now_ms(),
        hash: !plan.signers.is_empty(),
        schemas: &schemas.by_type,
    };
    let (mut payload, hashes, trust) = sealer.seal_all(plan.events)?;
    // Every data key made was used: each read key comes from an event whose body was encrypted.
    let keys = readers_trailer(readers);
    let directory = (!plan.directory.is_empty()).then(|| {
        directory_trailer(TxDirectory {
            keys: plan.directory,
        })
    });
    let trust = chain.linters().is_empty().then_some(trust);
    let (signing_keys, covers): (Vec<_>, Vec<_>) = plan.signers.into_values().unzip();
    let trailers: Vec<TxTrailer> = match &hashes {
        None => keys.into_iter().chain(directory).collect(),
        Some(hashes) => TxSealer {
            signers: signing_keys.iter().zip(covers).collect(),
            vouch: None,
            keys,
            directory,
        }
        .seal(chain.policy().chain_hash(), hashes)
        .map_err(|f| DioError::SignatureSelfCheck {
            signer: f.signer,
            reason: f.reason,
        })?,
    };
    codec::encode_trailers(&mut payload, &trailers);
    // The view keeps the buffer as long as the records written by the transaction: room
    // reserved and not used is given back (shrinking a buffer in place does not copy it).
    payload.shrink_to_fit();
    Ok(Sealed {
        payload,
        hashes,
        trust,
    })
}

/// How the bodies written for one read key are sealed in this transaction: a fresh data key
/// (expanded once), wrapped once for the reader into the transaction's keys trailer.
struct ReaderSeal {
    cipher: Cipher,
    /// The id each event binds the entry by.
    key_entry: Hash,
    entry: TxKey,
}

impl ReaderSeal {
    fn new(data_key: &EncryptKey, entry: TxKey) -> Self {
        ReaderSeal {
            cipher: data_key.cipher(),
            key_entry: key_entry_id(&entry),
            entry,
        }
    }
}

/// The keys trailer of the data keys made for a transaction (`None`: no body is encrypted), its
/// entries in read-key order.
fn readers_trailer(readers: HashMap<Hash, Option<ReaderSeal>>) -> Option<TxTrailer> {
    let mut keys: Vec<TxKey> = readers.into_values().flatten().map(|r| r.entry).collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable_by_key(|k| k.read_key);
    Some(keys_trailer(&TxKeys { keys }))
}

/// One data key per read key the transaction's bodies are encrypted for (`None`: a symmetric
/// read key the session does not hold; the first event needing it reports it). Public read
/// keys are found in `public_keys` (the plan found each one).
fn data_keys(
    session: &AteSession,
    planned: &[Planned<'_>],
    public_keys: &FastMap<Hash, PublicEncryptKey>,
) -> HashMap<Hash, Option<ReaderSeal>> {
    let mut out: HashMap<Hash, Option<ReaderSeal>> = HashMap::new();
    for p in planned {
        let ReadOption::Specific(rk) = &p.read else {
            continue;
        };
        if p.op.body.is_none() {
            continue;
        }
        let read_key = rk.hash();
        if out.contains_key(&read_key) {
            continue;
        }
        let data_key = EncryptKey::generate();
        let wrapped = match rk {
            ReadKey::Symmetric(h) => session.read_key(h).map(|k| k.wrap(&data_key)),
            ReadKey::Public(_) => public_keys.get(&read_key).map(|pk| pk.wrap(&data_key)),
        };
        let seal = wrapped.map(|wrapped| ReaderSeal::new(&data_key, TxKey { read_key, wrapped }));
        out.insert(read_key, seal);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{AteConfig, ChainBuilder, ChainKey};
    use crate::crypto::PrivateSignKey;
    use crate::crypto::{KeySize, NONCE_LEN, PrivateEncryptKey};
    use crate::trust::meta::faults;
    use crate::trust::meta::{Confidentiality, keys_from};

    #[test]
    fn one_entry_per_reader_and_events_bind_it() {
        let read = EncryptKey::generate();
        let ntru = PrivateEncryptKey::generate(KeySize::Bit128);
        let data_key = EncryptKey::generate();
        let mut readers = HashMap::new();
        for (reader, wrapped) in [
            (read.hash(), read.wrap(&data_key)),
            (ntru.hash(), ntru.as_public_key().wrap(&data_key)),
        ] {
            let entry = TxKey {
                read_key: reader,
                wrapped,
            };
            let seal = ReaderSeal::new(&data_key, entry.clone());
            assert_eq!(seal.key_entry, key_entry_id(&entry));
            for nonce in [[0u8; NONCE_LEN], [0xff; NONCE_LEN], [7; NONCE_LEN]] {
                let c = Confidentiality {
                    read_key: reader,
                    key_entry: seal.key_entry,
                    nonce,
                };
                assert_eq!(Confidentiality::from_bytes(&c.to_bytes()).unwrap(), c);
            }
            readers.insert(reader, Some(seal));
        }
        readers.insert(Hash::of(b"a key this session lacks"), None);
        let trailer = readers_trailer(readers).expect("two readers");
        let keys = keys_from([(trailer.tag, &trailer.value[..])])
            .unwrap()
            .expect("a keys trailer");
        assert_eq!(keys.keys.len(), 2);
        assert!(keys.keys[0].read_key < keys.keys[1].read_key);
        assert!(readers_trailer(HashMap::new()).is_none());
    }

    /// A fault while signing (a signature that does not verify under its own key) is caught by
    /// the Dio before anything reaches the chain; the writes stay staged and commit once signed
    /// correctly.
    #[tokio::test(flavor = "current_thread")]
    async fn a_fault_while_signing_never_reaches_the_log() {
        let root = PrivateSignKey::generate(KeySize::Bit128);
        let chain = ChainBuilder::new(&AteConfig::in_memory())
            .await
            .add_root_public_key(&root.as_public_key())
            .build()
            .open(&ChainKey::from("faulty"))
            .await
            .unwrap();
        let mut session = AteSession::default();
        session.add_write_key(&root);
        let mut dio = chain.dio(&session).await;
        let key = *dio.store("signed".to_string()).unwrap().key();
        faults::damage_next(root.hash());
        match dio.commit().await {
            Err(crate::AteError::Dio(DioError::SignatureSelfCheck { signer, .. })) => {
                assert_eq!(signer, root.hash())
            }
            other => panic!("expected SignatureSelfCheck, got {other:?}"),
        }
        assert!(chain.is_empty());
        assert!(dio.has_changes());
        dio.commit().await.unwrap();
        assert_eq!(*dio.load::<String>(&key).await.unwrap(), "signed");
    }
}
