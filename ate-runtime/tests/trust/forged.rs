//! R11: forged transactions from outside the process, each refused with its own typed error on
//! commit (`Chain::commit_transaction`), on open, and by a server a client sends it to (with the
//! network features, `wire`), nothing appended, no plaintext below an encrypted root; and the
//! same rules kept by the Dio.

use ate_runtime::crypto::PublicEncryptKey;
use ate_runtime::log::LogStore;
use ate_runtime::trust::{Authorization, MAX_INHERIT_DEPTH};
use ate_runtime::unstable::codec::encode_transaction;
use ate_runtime::unstable::meta::{
    TAG_AUTHORIZATION, TRAILER_DIRECTORY, TxDirectory, TxSealer, directory_trailer,
};

use super::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Node {
    name: String,
    kids: DaoVec<Node>,
}

fn node(name: &str) -> Node {
    Node {
        name: name.into(),
        kids: DaoVec::new(),
    }
}

/// A store holding the header and the first `n` transactions of `store`.
fn prefix(store: &MemoryStore, n: usize) -> MemoryStore {
    let txs = transactions(store);
    let payloads: Vec<Vec<u8>> = txs[..n]
        .iter()
        .map(|tx| encode_transaction(tx.seq, &drafts(tx), &tx.trailers))
        .collect();
    let mut bytes = store.bytes()[..FILE_HEADER_LEN].to_vec();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    bytes.extend_from_slice(&encode_frames(&refs));
    MemoryStore::from_bytes(bytes)
}

/// `evs` with `trailers`, handed to a chain holding `base`, is refused with `expected` and
/// nothing changes; a log of `base` followed by it does not open, for the same reason; and a
/// server holding `base` refuses it from a client alike.
async fn refused_everywhere(
    reg: &ChainRegistry,
    name: &str,
    base: &MemoryStore,
    evs: &[EventDraft],
    trailers: &[TxTrailer],
    expected: TrustError,
) {
    let store = MemoryStore::from_bytes(base.bytes());
    let chain = open(reg, name, &store);
    let (len, records) = (store.len(), chain.len());
    let e = trust_err(
        chain
            .commit_transaction(evs.to_vec(), trailers.to_vec())
            .await,
    );
    assert_eq!(e, expected, "on commit");
    assert_eq!(store.len(), len, "nothing appended");
    assert_eq!(chain.len(), records, "nothing in the view");
    drop(chain);

    let seq = transactions(base).len() as u64 + 1;
    let forged = encode_transaction(seq, evs, trailers);
    let mut bytes = base.bytes();
    bytes.extend_from_slice(&encode_frames(&[&forged]));
    match reg.open_store(
        &ChainKey::from(name),
        Box::new(MemoryStore::from_bytes(bytes)),
    ) {
        Err(OpenError::Invalid {
            seq: at, source, ..
        }) => {
            assert_eq!(at, seq);
            assert_eq!(source, expected, "on open");
        }
        other => panic!(
            "expected an invalid transaction, got {:?}",
            other.map(|_| ())
        ),
    }
    refused_remotely(name, base, evs, trailers, &expected).await;
}

/// The trailers of `evs` signed by each of `signers` (covering the events given) for `chain`,
/// then `rest`.
fn sealed(
    chain: &Chain,
    evs: &[EventDraft],
    signers: Vec<(&PrivateSignKey, Vec<u32>)>,
    rest: Vec<TxTrailer>,
) -> Vec<TxTrailer> {
    let mut sealer = TxSealer {
        signers,
        ..TxSealer::default()
    };
    for t in rest {
        match t.tag {
            TRAILER_KEYS => sealer.keys = Some(t),
            TRAILER_DIRECTORY => sealer.directory = Some(t),
            other => panic!("unexpected trailer {other}"),
        }
    }
    sealer
        .seal(chain.policy().chain_hash(), &event_hashes(evs))
        .unwrap()
}

/// `ev`'s metadata with its previous version set to `previous` and its rules to `auth`.
fn with_meta(ev: &mut EventDraft, previous: Option<u64>, auth: Option<Authorization>) {
    let mut trust =
        EventTrust::from_entries(ev.meta.iter().map(|m| (m.tag, &m.value[..]))).unwrap();
    trust.previous = previous;
    if let Some(a) = auth {
        trust.auth = Some(a);
    }
    ev.meta = trust.to_meta();
}

fn session_of(keys: &[&PrivateSignKey]) -> AteSession {
    let mut s = AteSession::default();
    for k in keys {
        s.add_write_key(k);
    }
    s.add_read_key(&super::keys().read);
    s
}

// ---------------------------------------------------------------------------------------------
// 1. Moving a record needs the write right of its new place.

#[tokio::test]
async fn moving_a_record_needs_its_new_parents_write_right() {
    let (root, other) = (&keys().root, &keys().other);
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "move", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let mut folder = dio.store(node("root's folder")).unwrap();
    folder.auth_mut().write = WriteOption::Specific(root.hash());
    let mut owned = dio.store(node("other's record")).unwrap();
    owned.auth_mut().write = WriteOption::Specific(other.hash());
    let (folder_key, owned_key) = (*folder.key(), *owned.key());
    let mut folder_kids = folder.kids.clone();
    folder_kids.attach(folder_key);
    drop((folder, owned));
    dio.commit().await.unwrap();
    let base = prefix(&store, 1);

    // The owner of a record moves it into a folder it may not write, and makes it final.
    let tx = transactions(&store).remove(0);
    let at = tx.events.iter().position(|e| e.key == owned_key).unwrap();
    let mut ev = tx.events[at].to_draft();
    ev.parent = Some(ate_runtime::event::ParentLink {
        parent: folder_key,
        collection: folder_kids.id(),
    });
    with_meta(
        &mut ev,
        Some(1),
        Some(Authorization {
            read: ReadOption::Inherit,
            write: WriteOption::Nobody,
        }),
    );
    let evs = vec![ev];
    let trailers = sealed(&chain, &evs, vec![(other, vec![0])], vec![]);
    let expected = TrustError::UnauthorizedMove {
        key: owned_key,
        to: Some(folder_key),
    };
    refused_everywhere(&reg, "move", &base, &evs, &trailers, expected.clone()).await;

    // The Dio refuses the same move.
    let mut dio = chain.dio(&session_of(&[other])).await;
    let mut dao = dio.load::<Node>(&owned_key).await.unwrap();
    dao.move_to(&folder_kids).unwrap();
    match dio.commit().await {
        Err(AteError::Dio(DioError::Trust(e))) => assert_eq!(e, expected),
        other => panic!("expected the move refused, got {other:?}"),
    }
    dio.cancel();

    // A writer holding both rights moves it (signed by both keys), and the log reopens.
    let mut dio = chain.dio(&session_of(&[root, other])).await;
    let mut dao = dio.load::<Node>(&owned_key).await.unwrap();
    dao.move_to(&folder_kids).unwrap();
    drop(dao);
    dio.commit().await.unwrap();
    let moved = transactions(&store).remove(1);
    assert_eq!(proofs_of(&moved).unwrap().signatures.len(), 2);
    let kids = dio.children(&folder_key, &folder_kids).await.unwrap();
    assert_eq!(kids.len(), 1);
    drop((dio, chain));
    let chain = open(&reg, "move", &store);
    let dio = chain.dio(&AteSession::default()).await;
    assert_eq!(
        dio.load::<Node>(&owned_key)
            .await
            .unwrap()
            .parent()
            .unwrap()
            .parent,
        folder_key
    );

    // Moving a child of the owner's own folder to the chain root needs the root's right.
    let mut dio = chain.dio(&session_of(&[root])).await;
    let mut own_folder = dio.store(node("other's folder")).unwrap();
    own_folder.auth_mut().write = WriteOption::Specific(other.hash());
    let own_folder_key = *own_folder.key();
    drop(own_folder);
    dio.commit().await.unwrap();
    let mut dio = chain.dio(&session_of(&[other])).await;
    let kids = DaoVec::<Node>::new();
    let child = *dio
        .store_child(&own_folder_key, &kids, node("child"))
        .unwrap()
        .key();
    dio.commit().await.unwrap();
    let mut dao = dio.load::<Node>(&child).await.unwrap();
    dao.move_to_root();
    match dio.commit().await {
        Err(AteError::Dio(DioError::Trust(e))) => assert_eq!(
            e,
            TrustError::UnauthorizedMove {
                key: child,
                to: None
            }
        ),
        other => panic!("expected the move refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_record_cannot_move_under_its_own_descendant() {
    let root = &keys().root;
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "cycle", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let top = dio.store(node("top")).unwrap();
    let top_key = *top.key();
    let kids = top.kids.clone();
    drop(top);
    let below = *dio
        .store_child(&top_key, &kids, node("below"))
        .unwrap()
        .key();
    let mut below_kids = DaoVec::<Node>::new();
    below_kids.attach(below);
    dio.commit().await.unwrap();
    let base = prefix(&store, 1);

    let mut dao = dio.load::<Node>(&top_key).await.unwrap();
    dao.move_to(&below_kids).unwrap();
    drop(dao);
    match dio.commit().await {
        Err(AteError::Dio(DioError::Trust(e))) => {
            assert_eq!(e, TrustError::ParentCycle { key: top_key })
        }
        other => panic!("expected the cycle refused, got {other:?}"),
    }
    dio.cancel();
    // A record under itself, too.
    let mut self_kids = DaoVec::<Node>::new();
    self_kids.attach(top_key);

    let tx = transactions(&store).remove(0);
    for (parent, collection) in [(below, below_kids.id()), (top_key, self_kids.id())] {
        let at = tx.events.iter().position(|e| e.key == top_key).unwrap();
        let mut ev = tx.events[at].to_draft();
        ev.parent = Some(ate_runtime::event::ParentLink { parent, collection });
        with_meta(&mut ev, Some(1), None);
        let evs = vec![ev];
        let trailers = sealed(&chain, &evs, vec![(root, vec![0])], vec![]);
        refused_everywhere(
            &reg,
            "cycle",
            &base,
            &evs,
            &trailers,
            TrustError::ParentCycle { key: top_key },
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A vouch comes only from the chain's own server.

#[tokio::test]
async fn a_self_made_vouch_is_refused() {
    use ate_runtime::trust::IntegrityMode;
    let server = PrivateSignKey::generate(KeySize::Bit128);
    let attacker = &keys().other;
    let reg = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized)
        .server_key(server)
        .build();
    let store = MemoryStore::new();
    let chain = open(&reg, "self-vouch", &store);
    // A record at the root, which needs the root key; the attacker vouches for its writer.
    let evs = {
        let scratch = MemoryStore::new();
        let open_reg = ChainBuilder::new(&AteConfig::in_memory()).await.build();
        let c = open(&open_reg, "scratch", &scratch);
        let mut d = c.dio(&AteSession::default()).await;
        d.store(node("claims root")).unwrap();
        d.commit().await.unwrap();
        drafts(&transactions(&scratch)[0])
    };
    let trailers = TxSealer {
        vouch: Some((attacker, vec![keys().root.hash()])),
        ..TxSealer::default()
    }
    .seal(chain.policy().chain_hash(), &event_hashes(&evs))
    .unwrap();
    let e = trust_err(
        chain
            .commit_transaction(evs.clone(), trailers.clone())
            .await,
    );
    assert_eq!(e, TrustError::ForeignVouch);
    assert!(chain.is_empty());
    drop(chain);
    let forged = encode_transaction(1, &evs, &trailers);
    refused_remotely_raw(
        "self-vouch",
        &store,
        IntegrityMode::Centralized,
        forged.clone(),
        &TrustError::ForeignVouch,
    )
    .await;
    let mut bytes = store.bytes();
    bytes.extend_from_slice(&encode_frames(&[&forged]));
    match reg.open_store(
        &ChainKey::from("self-vouch"),
        Box::new(MemoryStore::from_bytes(bytes)),
    ) {
        Err(OpenError::Invalid { source, .. }) => assert_eq!(
            source,
            TrustError::UnpinnedServer {
                server: attacker.hash()
            }
        ),
        other => panic!("expected Invalid, got {:?}", other.map(|_| ())),
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Rules inherited past the depth limit are an error, for reads as for writes.

#[tokio::test]
async fn read_rules_past_the_inherit_limit_are_refused() {
    let root = &keys().root;
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "deep", &store);
    let session = session_of(&[root]);
    let mut dio = chain.dio(&session).await;
    // An encrypted record, and a line of descendants each writable by everyone but inheriting
    // its read rule.
    let mut top = dio.store(node("secret root")).unwrap();
    top.auth_mut().read = ReadOption::from_key(&keys().read);
    top.auth_mut().write = WriteOption::Everyone;
    let mut parent = *top.key();
    drop(top);
    let kids = DaoVec::<Node>::new();
    let mut line = Vec::new();
    for depth in 1..=MAX_INHERIT_DEPTH {
        let mut dao = dio
            .store_child(&parent, &kids, node(&format!("level {depth}")))
            .unwrap();
        dao.auth_mut().write = WriteOption::Everyone;
        parent = *dao.key();
        line.push(parent);
    }
    dio.commit().await.unwrap();
    // One level more: its read rule would come from further up than the limit.
    let mut dao = dio.store_child(&parent, &kids, node("too deep")).unwrap();
    dao.auth_mut().write = WriteOption::Everyone;
    let deep = *dao.key();
    drop(dao);
    match dio.commit().await {
        Err(AteError::Dio(DioError::Trust(e))) => assert_eq!(e, TrustError::TooDeep { key: deep }),
        other => panic!("expected TooDeep, got {other:?}"),
    }
    dio.cancel();
    // Every record written is encrypted: none of their names is in the log in plaintext.
    assert!(!store.bytes().windows(9).any(|w| w == b"level 256"));

    // A stranger writes the deeper record in plaintext.
    let base = prefix(&store, 1);
    let plain = ate_runtime::event::EventDraft {
        key: PrimaryKey::generate(),
        timestamp_ms: 1,
        tombstone: false,
        parent: Some(ate_runtime::event::ParentLink {
            parent,
            collection: kids.id(),
        }),
        type_name: ate_runtime::schema::type_name_of::<Node>().into(),
        format: ate_runtime::event::BodyFormat::MessagePack,
        meta: Vec::new(),
        body: Some(rmp_serde::to_vec(&node("in plaintext")).unwrap().into()),
    };
    let expected = TrustError::TooDeep { key: plain.key };
    refused_everywhere(&reg, "deep", &base, &[plain], &[], expected).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Every signature covers the whole transaction.

#[tokio::test]
async fn a_relayed_transaction_cannot_change_without_breaking_its_signatures() {
    let root = &keys().root;
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "relay", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let mut board = dio.store(node("public board")).unwrap();
    board.auth_mut().write = WriteOption::Everyone;
    let board_key = *board.key();
    drop(board);
    dio.commit().await.unwrap();
    // One signed event (at the root) and two unsigned ones (on the public board).
    let kids = DaoVec::<Node>::new();
    dio.store(node("signed")).unwrap();
    dio.store_child(&board_key, &kids, node("unsigned b"))
        .unwrap();
    dio.store_child(&board_key, &kids, node("unsigned c"))
        .unwrap();
    dio.commit().await.unwrap();
    let base = prefix(&store, 1);
    let tx = transactions(&store).remove(1);
    let sig = proofs_of(&tx).unwrap().signatures.remove(0);
    assert_eq!(sig.covers, vec![0], "the board's events need no signature");
    let evs = drafts(&tx);
    let trailers = tx.trailers.clone();

    let mut dropped = evs.clone();
    dropped.pop();
    let mut added = evs.clone();
    let mut extra = evs[2].clone();
    extra.key = PrimaryKey::generate();
    added.push(extra);
    let mut swapped = evs.clone();
    swapped.swap(1, 2);
    let mut changed = evs.clone();
    changed[1].body = Some(rmp_serde::to_vec(&node("changed")).unwrap().into());
    let mut recovered = trailers.clone();
    let mut wider = sig.clone();
    wider.covers = vec![0, 1];
    recovered[0] = signature_trailer(&wider);
    for (what, evs, trailers) in [
        ("an event dropped", &dropped, &trailers),
        ("an event added", &added, &trailers),
        ("events swapped", &swapped, &trailers),
        ("an unsigned event changed", &changed, &trailers),
        ("coverage widened", &evs, &recovered),
    ] {
        eprintln!("relay: {what}");
        refused_everywhere(
            &reg,
            "relay",
            &base,
            evs,
            trailers,
            TrustError::TxDigestMismatch,
        )
        .await;
    }
    // The transaction as it was signed is accepted.
    let chain = open(&reg, "relay", &MemoryStore::from_bytes(base.bytes()));
    chain.commit_transaction(evs, trailers).await.unwrap();
}

#[tokio::test]
async fn the_chain_hash_is_inside_the_signed_bytes() {
    let (_reg, store, chain, key) = written("signed-chain").await;
    let len = store.len();
    let tx = transactions(&store).remove(1);
    let (mut evs, _) = forged_update(&tx, &keys().root, None);
    with_meta(&mut evs[0], Some(2), None);
    // Signed for another chain, then relabelled: the chain field and digest are this chain's.
    let elsewhere = ate_runtime::unstable::meta::chain_hash("elsewhere");
    let signed = TxSealer {
        signers: vec![(&keys().root, vec![0])],
        keys: keys_trailers(&tx).pop(),
        ..TxSealer::default()
    }
    .seal(&elsewhere, &event_hashes(&evs))
    .unwrap();
    let ours = TxSealer {
        signers: vec![(&keys().root, vec![0])],
        keys: keys_trailers(&tx).pop(),
        ..TxSealer::default()
    }
    .seal(chain.policy().chain_hash(), &event_hashes(&evs))
    .unwrap();
    let mut relabelled = sig(&signed[0]);
    let genuine = sig(&ours[0]);
    relabelled.chain = genuine.chain;
    relabelled.digest = genuine.digest;
    let mut trailers = ours.clone();
    trailers[0] = signature_trailer(&relabelled);
    let e = refused_here_and_remotely(&chain, &store, &evs, &trailers).await;
    assert_eq!(
        e,
        TrustError::BadSignature {
            signer: keys().root.hash()
        }
    );
    assert_unchanged(&chain, &store, len, &key).await;
    // The genuine one is accepted.
    chain.commit_transaction(evs, ours).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. A writer without the read key cannot roll a record back to an old content.

#[tokio::test]
async fn an_old_ciphertext_copied_into_a_new_version_does_not_decrypt() {
    let (root, other) = (&keys().root, &keys().other);
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "rollback", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let mut dao = dio.store(node("first")).unwrap();
    dao.auth_mut().read = ReadOption::from_key(&keys().read);
    dao.auth_mut().write = WriteOption::Any(vec![root.hash(), other.hash()]);
    let key = *dao.key();
    drop(dao);
    dio.commit().await.unwrap();
    let mut dao = dio.load::<Node>(&key).await.unwrap();
    dao.as_mut().name = "second".into();
    drop(dao);
    dio.commit().await.unwrap();

    // `other` may write the record but cannot read it: it replays version 1's ciphertext and
    // key entry as version 3.
    let old = transactions(&store).remove(0);
    let mut ev = old.events[0].to_draft();
    with_meta(&mut ev, Some(2), None);
    let evs = vec![ev];
    let trailers = sealed(&chain, &evs, vec![(other, vec![0])], keys_trailers(&old));
    let base = MemoryStore::from_bytes(store.bytes());
    chain
        .commit_transaction(evs.clone(), trailers.clone())
        .await
        .unwrap();
    accepted_remotely_but_unreadable::<Node>("rollback", &base, &evs, &trailers, &key).await;
    let reader = chain.dio(&root_session()).await;
    match reader.load::<Node>(&key).await {
        Err(DioError::DecryptFailed { key: k, .. }) => assert_eq!(k, key),
        other => panic!(
            "expected DecryptFailed, got {:?}",
            other.map(|d| d.name.clone())
        ),
    }
}

#[tokio::test]
async fn a_tampered_ciphertext_does_not_decrypt() {
    let (_reg, store, chain, key) = written("tampered-ciphertext").await;
    let tx = transactions(&store).remove(1);
    let mut evs = drafts(&tx);
    let mut body = evs[0].body.clone().unwrap().to_vec();
    body[0] ^= 1;
    evs[0].body = Some(body.into());
    with_meta(&mut evs[0], Some(2), None);
    // Re-signed by the rightful writer: validation cannot see inside the ciphertext.
    let trailers = sealed(
        &chain,
        &evs,
        vec![(&keys().root, vec![0])],
        keys_trailers(&tx),
    );
    let base = MemoryStore::from_bytes(store.bytes());
    chain
        .commit_transaction(evs.clone(), trailers.clone())
        .await
        .unwrap();
    accepted_remotely_but_unreadable::<Secret>("tampered-ciphertext", &base, &evs, &trailers, &key)
        .await;
    let dio = chain.dio(&root_session()).await;
    assert!(matches!(
        dio.load::<Secret>(&key).await,
        Err(DioError::DecryptFailed { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// 6. A chain is shared within a process only under the same trust settings.

#[tokio::test]
async fn a_chain_is_shared_only_with_the_same_trust_settings() {
    use ate_runtime::trust::IntegrityMode;
    let dir = tempfile::tempdir().unwrap();
    let conf = AteConfig::at(dir.path());
    let with_root = |key: &PrivateSignKey| {
        let key = key.as_public_key();
        let conf = conf.clone();
        async move {
            ChainBuilder::new(&conf)
                .await
                .add_root_public_key(&key)
                .build()
        }
    };
    let first = with_root(&keys().root).await;
    let chain = first.open(&ChainKey::from("shared")).await.unwrap();
    // The same settings share the open chain.
    let again = with_root(&keys().root)
        .await
        .open(&ChainKey::from("shared"))
        .await
        .unwrap();
    assert_eq!(chain.path(), again.path());
    let other_root = with_root(&keys().other).await;
    let centralized = ChainBuilder::new(&conf)
        .await
        .add_root_public_key(&keys().root.as_public_key())
        .integrity(IntegrityMode::Centralized)
        .build();
    let no_root = ChainBuilder::new(&conf).await.build();
    for reg in [other_root, centralized, no_root] {
        match reg.open(&ChainKey::from("shared")).await {
            Err(OpenError::OtherSettings { path }) => {
                assert_eq!(Some(path.as_path()), chain.path())
            }
            other => panic!("expected OtherSettings, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. NTRU public read keys travel once per transaction, in its key directory.

fn count_in(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn public_read_keys_travel_once_per_transaction() {
    let root = &keys().root;
    let public = keys().ntru.as_public_key();
    let reg = registry().await;
    let store = MemoryStore::new();
    let chain = open(&reg, "directory", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let mut written = Vec::new();
    for n in 0..20 {
        let mut dao = dio.store(node(&format!("for ntru {n}"))).unwrap();
        dao.auth_mut().read = ReadOption::from_public_key(&public);
        written.push(*dao.key());
    }
    dio.commit().await.unwrap();
    let tx = transactions(&store).remove(0);
    for ev in &tx.events {
        let auth = ev.meta(TAG_AUTHORIZATION).expect("explicit rules");
        assert!(auth.len() < 64, "rules of {} bytes", auth.len());
    }
    let directory = proofs_of(&tx).unwrap().directory.expect("a key directory");
    assert_eq!(directory.keys, vec![public.clone()]);
    assert_eq!(
        count_in(&store.bytes(), public.as_bytes()),
        1,
        "the key is in the log once"
    );

    // After a reopen, a child inheriting the rule is encrypted for the key the chain learnt.
    drop((dio, chain));
    let chain = open(&reg, "directory", &store);
    let mut dio = chain.dio(&session_of(&[root])).await;
    let kids = DaoVec::<Node>::new();
    let child = *dio
        .store_child(&written[0], &kids, node("inherits"))
        .unwrap()
        .key();
    dio.commit().await.unwrap();
    let mut reader = AteSession::default();
    reader.add_private_read_key(&keys().ntru);
    let dio = chain.dio(&reader).await;
    assert_eq!(dio.load::<Node>(&child).await.unwrap().name, "inherits");
    assert_eq!(
        dio.load::<Node>(&written[3]).await.unwrap().name,
        "for ntru 3"
    );

    // Forged directories, re-signed by the rightful writer.
    let base = prefix(&store, 0);
    let evs = drafts(&tx);
    let keys_t = keys_trailers(&tx);
    let stranger = PrivateEncryptKey::generate(KeySize::Bit128).as_public_key();
    let with_dir = |dir: Option<TxTrailer>| {
        let mut rest = keys_t.clone();
        rest.extend(dir);
        sealed(&chain, &evs, vec![(root, (0..20).collect())], rest)
    };
    let dir = |keys: Vec<PublicEncryptKey>| directory_trailer(TxDirectory { keys });
    let garbage = TxTrailer {
        tag: TRAILER_DIRECTORY,
        value: vec![0x91, 0xc0].into(),
    };
    let cases = [
        (
            with_dir(None),
            TrustError::MissingDirectoryEntry {
                index: 0,
                read_key: public.hash(),
            },
        ),
        (
            with_dir(Some(dir(vec![stranger.clone()]))),
            TrustError::MissingDirectoryEntry {
                index: 0,
                read_key: public.hash(),
            },
        ),
        (
            with_dir(Some(dir(vec![public.clone(), stranger.clone()]))),
            TrustError::UnusedDirectoryEntry {
                read_key: stranger.hash(),
            },
        ),
    ];
    for (trailers, expected) in cases {
        refused_everywhere(&reg, "directory", &base, &evs, &trailers, expected).await;
    }
    let mut trailers = with_dir(None);
    trailers.push(garbage);
    let chain2 = open(&reg, "directory", &MemoryStore::from_bytes(base.bytes()));
    assert!(matches!(
        refused_here_and_remotely(&chain2, &base, &evs, &trailers).await,
        TrustError::MalformedDirectory { .. }
    ));
    // Unsorted keys are not the canonical directory.
    let mut two = vec![public.clone(), stranger.clone()];
    two.sort_by_key(|k| std::cmp::Reverse(k.hash()));
    let unsorted = TxTrailer {
        tag: TRAILER_DIRECTORY,
        value: rmp_serde::to_vec(&TxDirectory { keys: two })
            .unwrap()
            .into(),
    };
    let mut trailers = with_dir(None);
    trailers.push(unsorted);
    assert!(matches!(
        refused_here_and_remotely(&chain2, &base, &evs, &trailers).await,
        TrustError::MalformedDirectory { .. }
    ));
}
