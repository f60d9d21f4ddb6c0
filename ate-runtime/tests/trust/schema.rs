//! The schema in the chain, seen from a process that links no model type (a server): schema
//! records and records written by hand, as a remote writer sends them. Unique indexes hold,
//! the same index entries are built, and no writer can weaken or remove what is recorded.

use bytes::Bytes;

use ate_runtime::chain::{CommitError, OpenError};
use ate_runtime::event::{BodyFormat, EventDraft, MetaEntry, TxTrailer};
use ate_runtime::log::{LogStore, MemoryStore};
use ate_runtime::prelude::*;
use ate_runtime::schema::{
    IndexDef, IndexKind, SCHEMA_TYPE, Scalar, SchemaError, TypeSchema, ValueError,
};
use ate_runtime::trust::TrustError;
use ate_runtime::unstable::codec::encode_transaction;
use ate_runtime::unstable::log::{FILE_HEADER_LEN, encode_frames};
use ate_runtime::unstable::meta::{TAG_AUTHORIZATION, TAG_PREVIOUS, TAG_TRANSFORMS, TxSealer};
use serde::Serialize;

use super::{keys, registry};

/// The type a remote program writes; this process never declares it.
const USER: &str = "remote.User";

/// How the remote program's struct is laid out: `User { email, team, nick }`.
#[derive(Serialize)]
struct User<'a> {
    email: &'a str,
    team: u32,
    nick: &'a str,
}

fn user(email: &str, team: u32, nick: &str) -> Bytes {
    Bytes::from(rmp_serde::to_vec(&User { email, team, nick }).expect("encodes"))
}

fn index(field: &str, position: u32, scalar: Scalar, unique: bool) -> IndexDef {
    IndexDef {
        field: field.into(),
        position,
        kind: IndexKind::of(scalar),
        unique,
    }
}

/// `email` unique, `team` not.
fn user_schema() -> TypeSchema {
    TypeSchema {
        type_name: USER.into(),
        indexes: vec![
            index("email", 0, Scalar::String, true),
            index("team", 1, Scalar::Integer, false),
        ],
    }
}

fn previous(v: Option<u64>) -> Vec<MetaEntry> {
    v.map(|v| MetaEntry {
        tag: TAG_PREVIOUS,
        value: Bytes::copy_from_slice(&v.to_le_bytes()),
    })
    .into_iter()
    .collect()
}

fn event(key: PrimaryKey, type_name: &str, body: Option<Bytes>, prev: Option<u64>) -> EventDraft {
    EventDraft {
        key,
        timestamp_ms: 1,
        tombstone: body.is_none(),
        parent: None,
        type_name: type_name.to_string().into(),
        format: BodyFormat::MessagePack,
        meta: previous(prev),
        body,
    }
}

fn schema_event(key: PrimaryKey, schema: &TypeSchema, prev: Option<u64>) -> EventDraft {
    let body = schema.to_body().expect("a valid schema");
    event(key, SCHEMA_TYPE, Some(body.into()), prev)
}

/// Signatures over every event by `signer`, for `chain`.
fn signed(chain: &Chain, events: &[EventDraft], signer: &PrivateSignKey) -> Vec<TxTrailer> {
    let covers = (0..events.len() as u32).collect();
    TxSealer {
        signers: vec![(signer, covers)],
        ..TxSealer::default()
    }
    .seal(
        chain.policy().chain_hash(),
        &ate_runtime::unstable::meta::event_hashes(events),
    )
    .expect("signs")
}

async fn commit(
    chain: &Chain,
    events: Vec<EventDraft>,
    signer: &PrivateSignKey,
) -> Result<u64, CommitError> {
    let trailers = signed(chain, &events, signer);
    chain.commit_transaction(events, trailers).await
}

fn schema_err(r: Result<u64, CommitError>) -> SchemaError {
    match r {
        Err(CommitError::Schema(e)) => e,
        other => panic!("expected a schema error, got {other:?}"),
    }
}

fn is_unique_violation(r: &Result<u64, CommitError>, owner: PrimaryKey) -> bool {
    matches!(r, Err(CommitError::UniqueViolation { type_name, field, existing })
        if type_name == USER && field == "email" && *existing == owner)
}

/// A chain with the schema of [`USER`] (its key) and two users (`a@x` team 1, `b@x` team 2),
/// written by the root writer in transaction 1.
struct Fixture {
    store: MemoryStore,
    chain: Chain,
    schema_key: PrimaryKey,
    a: PrimaryKey,
    b: PrimaryKey,
}

async fn fixture(name: &str) -> Fixture {
    let store = MemoryStore::new();
    let chain = registry()
        .await
        .open_store(&ChainKey::from(name), Box::new(store.clone()))
        .expect("open");
    let (schema_key, a, b) = (
        PrimaryKey::generate(),
        PrimaryKey::generate(),
        PrimaryKey::generate(),
    );
    let events = vec![
        schema_event(schema_key, &user_schema(), None),
        event(a, USER, Some(user("a@x", 1, "n")), None),
        event(b, USER, Some(user("b@x", 2, "n")), None),
    ];
    assert_eq!(
        commit(&chain, events, &keys().root).await.expect("commit"),
        1
    );
    Fixture {
        store,
        chain,
        schema_key,
        a,
        b,
    }
}

fn sorted(mut keys: Vec<PrimaryKey>) -> Vec<PrimaryKey> {
    keys.sort();
    keys
}

#[tokio::test]
async fn a_process_without_the_type_enforces_the_recorded_unique_index() {
    let f = fixture("schema-unique").await;
    let root = &keys().root;
    assert_eq!(f.chain.schema_of(USER), Some(user_schema()));
    assert_eq!(f.chain.schemas(), [user_schema()]);
    // Schema records are not counted as records.
    assert_eq!(f.chain.len(), 2);
    let len = f.store.len();

    // A duplicate, in the encoder's own bytes and in every other encoding the type's decoder
    // would read as the same value: `bin`, a long length prefix.
    let c = PrimaryKey::generate();
    let dup = user("a@x", 3, "c");
    let mut as_bin = dup.to_vec();
    as_bin.splice(1..2, [0xc4, 3]);
    let mut as_str16 = dup.to_vec();
    as_str16.splice(1..2, [0xda, 0, 3]);
    for body in [dup, Bytes::from(as_bin), Bytes::from(as_str16)] {
        let r = commit(&f.chain, vec![event(c, USER, Some(body), None)], root).await;
        assert!(is_unique_violation(&r, f.a), "{r:?}");
    }
    // The same struct encoded as a map has no value by position: refused, not left out.
    let named = rmp_serde::to_vec_named(&User {
        email: "c@x",
        team: 3,
        nick: "c",
    })
    .unwrap();
    let e = schema_err(
        commit(
            &f.chain,
            vec![event(c, USER, Some(named.into()), None)],
            root,
        )
        .await,
    );
    assert!(
        matches!(&e, SchemaError::Unindexable { key, field, reason: ValueError::NotAnArray, .. }
            if *key == c && field == "email"),
        "{e:?}"
    );
    // A body the index cannot read as plaintext (here: transformed) is refused too.
    let mut sealed = event(c, USER, Some(user("c@x", 3, "c")), None);
    sealed.meta.push(MetaEntry {
        tag: TAG_TRANSFORMS,
        value: Bytes::from_static(&[1, 0]),
    });
    let e = schema_err(commit(&f.chain, vec![sealed], root).await);
    assert!(
        matches!(e, SchemaError::Sealed { key, .. } if key == c),
        "{e:?}"
    );
    assert_eq!(f.store.len(), len, "nothing refused was written");

    // A new value is accepted, and indexed like the others.
    commit(
        &f.chain,
        vec![event(c, USER, Some(user("c@x", 1, "c")), None)],
        root,
    )
    .await
    .expect("a new value");
    assert_eq!(f.chain.find_keys(USER, "email", "c@x").unwrap(), [c]);
    assert_eq!(
        f.chain.find_keys(USER, "team", &1u8).unwrap(),
        sorted(vec![f.a, c])
    );
    // A value of another kind matches nothing; an index the chain does not record is an error.
    assert!(f.chain.find_keys(USER, "team", "1").unwrap().is_empty());
    assert!(matches!(
        f.chain.find_keys(USER, "nick", "n"),
        Err(DioError::NoSuchIndex { .. })
    ));

    // The owner releases its value in the transaction that gives it to another record.
    let r = commit(
        &f.chain,
        vec![
            event(f.a, USER, Some(user("z@x", 1, "n")), Some(1)),
            event(
                PrimaryKey::generate(),
                USER,
                Some(user("a@x", 4, "d")),
                None,
            ),
        ],
        root,
    )
    .await;
    assert!(r.is_ok(), "{r:?}");

    // A reopen rebuilds the same index from the log.
    let before: Vec<_> = ["a@x", "b@x", "c@x", "z@x"]
        .iter()
        .map(|e| f.chain.find_keys(USER, "email", e).unwrap())
        .collect();
    drop(f.chain);
    let chain = registry()
        .await
        .open_store(
            &ChainKey::from("schema-unique"),
            Box::new(MemoryStore::from_bytes(f.store.bytes())),
        )
        .expect("reopen");
    let after: Vec<_> = ["a@x", "b@x", "c@x", "z@x"]
        .iter()
        .map(|e| chain.find_keys(USER, "email", e).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(chain.find_keys(USER, "email", "z@x").unwrap(), [f.a]);
}

#[tokio::test]
async fn a_schema_may_grow_but_never_weaken() {
    let f = fixture("schema-grow").await;
    let root = &keys().root;
    let redefine_at =
        |schema: TypeSchema, prev: u64| vec![schema_event(f.schema_key, &schema, Some(prev))];
    let redefine = |schema: TypeSchema| redefine_at(schema, 1);
    let len = f.store.len();

    let mut dropped = user_schema();
    dropped.indexes.remove(0);
    let e = schema_err(commit(&f.chain, redefine(dropped), root).await);
    assert!(
        matches!(&e, SchemaError::Weakened { field, .. } if field == "email"),
        "{e}"
    );
    let mut weaker = user_schema();
    weaker.indexes[0].unique = false;
    let e = schema_err(commit(&f.chain, redefine(weaker), root).await);
    assert!(
        matches!(&e, SchemaError::Weakened { field, .. } if field == "email"),
        "{e}"
    );
    let mut moved = user_schema();
    moved.indexes[0].position = 2;
    let e = schema_err(commit(&f.chain, redefine(moved), root).await);
    assert!(
        matches!(&e, SchemaError::Conflict { field, .. } if field == "email"),
        "{e}"
    );
    // A unique index over values two records share.
    let mut nick_unique = user_schema();
    nick_unique
        .indexes
        .push(index("nick", 2, Scalar::String, true));
    let e = schema_err(commit(&f.chain, redefine(nick_unique.clone()), root).await);
    assert!(
        matches!(&e, SchemaError::Duplicate { field, key, existing, .. }
            if field == "nick" && sorted(vec![*key, *existing]) == sorted(vec![f.a, f.b])),
        "{e}"
    );
    assert_eq!(f.store.len(), len, "nothing refused was written");

    // An index that is not unique is added, and indexes the records already there.
    let mut nick = user_schema();
    nick.indexes.push(index("nick", 2, Scalar::String, false));
    commit(&f.chain, redefine(nick.clone()), root)
        .await
        .expect("an index added");
    assert_eq!(f.chain.schema_of(USER), Some(nick));
    assert_eq!(
        f.chain.find_keys(USER, "nick", "n").unwrap(),
        sorted(vec![f.a, f.b])
    );
    // Once `b` has a nick of its own, the index can become unique (the schema record is
    // checked against the records as the transactions before it left them); the values are
    // then unique.
    commit(
        &f.chain,
        vec![event(f.b, USER, Some(user("b@x", 2, "m")), Some(1))],
        root,
    )
    .await
    .expect("b's own nick");
    commit(&f.chain, redefine_at(nick_unique, 2), root)
        .await
        .expect("made unique");
    let r = commit(
        &f.chain,
        vec![event(
            PrimaryKey::generate(),
            USER,
            Some(user("q@x", 2, "m")),
            None,
        )],
        root,
    )
    .await;
    assert!(
        matches!(&r, Err(CommitError::UniqueViolation { field, existing, .. }) if field == "nick" && *existing == f.b),
        "{r:?}"
    );
}

#[tokio::test]
async fn schema_records_are_written_by_the_roots_writers_and_keep_their_place() {
    let f = fixture("schema-place").await;
    let (root, other) = (&keys().root, &keys().other);
    let len = f.store.len();
    let mut more = user_schema();
    more.indexes.push(index("nick", 2, Scalar::String, false));

    // Only a writer of the chain's root may record a schema.
    let r = commit(
        &f.chain,
        vec![schema_event(f.schema_key, &more, Some(1))],
        other,
    )
    .await;
    assert!(
        matches!(r, Err(CommitError::Trust(TrustError::Unauthorized { key })) if key == f.schema_key),
        "{r:?}"
    );
    let fresh = schema_event(
        PrimaryKey::generate(),
        &TypeSchema {
            type_name: "remote.Other".into(),
            indexes: vec![index("x", 0, Scalar::Integer, true)],
        },
        None,
    );
    let r = commit(&f.chain, vec![fresh], other).await;
    assert!(
        matches!(r, Err(CommitError::Trust(TrustError::Unauthorized { .. }))),
        "{r:?}"
    );

    // Even the root's writers cannot delete it, put another record in its place, start a second
    // one for the type, or turn another record into one.
    type Case = (Vec<EventDraft>, fn(&SchemaError) -> bool);
    let cases: Vec<Case> = vec![
        (vec![event(f.schema_key, SCHEMA_TYPE, None, Some(1))], |e| {
            matches!(e, SchemaError::Deleted { .. })
        }),
        (
            vec![event(
                f.schema_key,
                USER,
                Some(user("s@x", 1, "s")),
                Some(1),
            )],
            |e| matches!(e, SchemaError::KeyTaken { type_name, .. } if type_name == USER),
        ),
        (
            vec![schema_event(PrimaryKey::generate(), &more, None)],
            |e| matches!(e, SchemaError::AlreadyRecorded { .. }),
        ),
        (
            vec![schema_event(
                f.a,
                &TypeSchema {
                    type_name: "remote.Other".into(),
                    indexes: vec![index("x", 0, Scalar::Integer, true)],
                },
                Some(1),
            )],
            |e| matches!(e, SchemaError::AlreadyRecorded { .. }),
        ),
        (
            // After a record of its type in the same transaction.
            vec![
                event(
                    PrimaryKey::generate(),
                    USER,
                    Some(user("t@x", 1, "t")),
                    None,
                ),
                schema_event(f.schema_key, &more, Some(1)),
            ],
            |e| matches!(e, SchemaError::Misplaced { .. }),
        ),
        (
            // Twice in one transaction.
            vec![
                schema_event(f.schema_key, &more, Some(1)),
                schema_event(PrimaryKey::generate(), &more, None),
            ],
            |e| matches!(e, SchemaError::Misplaced { .. }),
        ),
        (
            vec![event(
                f.schema_key,
                SCHEMA_TYPE,
                Some(Bytes::from_static(b"\x93\x01\xa1x")),
                Some(1),
            )],
            |e| matches!(e, SchemaError::Malformed { .. }),
        ),
    ];
    for (events, expected) in cases {
        let e = schema_err(commit(&f.chain, events, root).await);
        assert!(expected(&e), "{e:?}");
    }
    // Its own rules: it takes the root's.
    let mut ruled = schema_event(f.schema_key, &more, Some(1));
    ruled.meta.insert(
        0,
        MetaEntry {
            tag: TAG_AUTHORIZATION,
            value: rmp_serde::to_vec(&ate_runtime::trust::Authorization::default())
                .unwrap()
                .into(),
        },
    );
    let e = schema_err(commit(&f.chain, vec![ruled], root).await);
    assert!(matches!(e, SchemaError::ExplicitRules { .. }), "{e:?}");
    assert_eq!(f.store.len(), len, "nothing refused was written");
    assert_eq!(f.chain.schema_of(USER), Some(user_schema()));
}

#[tokio::test]
async fn a_log_that_breaks_the_schema_does_not_open() {
    let f = fixture("schema-forged").await;
    let root = &keys().root;
    let first = f.store.bytes();
    let payload = |seq: u64, events: Vec<EventDraft>| {
        let trailers = signed(&f.chain, &events, root);
        encode_transaction(seq, &events, &trailers)
    };
    let mut weaker = user_schema();
    weaker.indexes[0].unique = false;
    // Signed by the root's writer, but never through a writer that checks it: a weakened
    // schema, a duplicate unique value.
    let cases = [
        payload(2, vec![schema_event(f.schema_key, &weaker, Some(1))]),
        payload(
            2,
            vec![event(
                PrimaryKey::generate(),
                USER,
                Some(user("a@x", 9, "x")),
                None,
            )],
        ),
    ];
    for (n, tx) in cases.iter().enumerate() {
        let mut bytes = first.clone().to_vec();
        bytes.extend_from_slice(&encode_frames(&[tx]));
        let opened = registry().await.open_store(
            &ChainKey::from("schema-forged"),
            Box::new(MemoryStore::from_bytes(bytes)),
        );
        let source = match opened {
            Err(OpenError::Schema { seq: 2, source, .. }) => *source,
            other => panic!("case {n}: {:?}", other.map(|_| ())),
        };
        match (n, source) {
            (0, SchemaError::Weakened { .. }) => {}
            (1, SchemaError::Duplicate { existing, .. }) if existing == f.a => {}
            (n, other) => panic!("case {n}: {other:?}"),
        }
    }
    assert!(first.len() > FILE_HEADER_LEN);
}
