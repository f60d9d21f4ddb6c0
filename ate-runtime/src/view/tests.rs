use bytes::Bytes;

use super::*;

impl View {
    fn apply_test(&mut self, ev: &Event) {
        self.apply_one(ev, 1)
    }

    fn apply_one(&mut self, ev: &Event, seq: u64) {
        let auth = ev
            .meta(crate::trust::meta::TAG_AUTHORIZATION)
            .map(|bytes| rmp_serde::from_slice::<Authorization>(bytes).unwrap());
        let view_event = ViewEvent {
            key: ev.key,
            parent: ev.parent,
            raw: &ev.raw,
            type_name: ev.type_name(),
            tombstone: ev.tombstone,
        };
        self.apply_event(&view_event, seq, auth)
    }
}
use crate::event::{BodyFormat, EventDraft, decode_transaction, encode_transaction};

fn ev(key: u128, parent: Option<(u128, u64)>, body: Option<&'static [u8]>) -> Event {
    let d = EventDraft {
        key: PrimaryKey::from(key),
        timestamp_ms: 1,
        tombstone: body.is_none(),
        parent: parent.map(|(p, c)| ParentLink {
            parent: PrimaryKey::from(p),
            collection: c,
        }),
        type_name: "T".into(),
        format: BodyFormat::MessagePack,
        meta: vec![],
        body: body.map(Bytes::from_static),
    };
    decode_transaction(Bytes::from(encode_transaction(1, &[d], &[])))
        .unwrap()
        .events
        .remove(0)
}

fn kids(v: &View, p: u128, c: u64) -> Vec<u128> {
    v.children(&ParentLink {
        parent: PrimaryKey::from(p),
        collection: c,
    })
    .map(|k| k.as_u128())
    .collect()
}

#[test]
fn latest_version_wins_and_tombstones_remove() {
    let mut v = View::new();
    v.apply_test(&ev(1, None, Some(b"a")));
    v.apply_test(&ev(1, None, Some(b"b")));
    assert_eq!(&v.body(v.get(&PrimaryKey::from(1)).unwrap())[..], b"b");
    assert_eq!(
        v.type_name(v.get(&PrimaryKey::from(1)).unwrap().type_id),
        "T"
    );
    v.apply_test(&ev(1, None, None));
    assert!(v.get(&PrimaryKey::from(1)).is_none());
    assert!(v.is_empty());
    // A tombstone of a missing key changes nothing.
    v.apply_test(&ev(9, None, None));
    assert!(v.is_empty());
}

#[test]
fn children_keep_commit_order_across_updates() {
    let mut v = View::new();
    v.apply_test(&ev(10, Some((1, 7)), Some(b"x")));
    v.apply_test(&ev(11, Some((1, 7)), Some(b"y")));
    v.apply_test(&ev(12, Some((1, 8)), Some(b"z")));
    v.apply_test(&ev(10, Some((1, 7)), Some(b"x2")));
    assert_eq!(kids(&v, 1, 7), vec![10, 11]);
    assert_eq!(kids(&v, 1, 8), vec![12]);
    v.apply_test(&ev(10, None, None));
    assert_eq!(kids(&v, 1, 7), vec![11]);
    assert_eq!(v.parent_of(&PrimaryKey::from(11)).unwrap().collection, 7);
    // Moving a record to another collection moves it to the end of that one.
    v.apply_test(&ev(11, Some((1, 8)), Some(b"y2")));
    assert_eq!(kids(&v, 1, 7), Vec::<u128>::new());
    assert_eq!(kids(&v, 1, 8), vec![12, 11]);
}

#[test]
fn interning_is_stable() {
    let mut v = View::new();
    let a = v.intern("a");
    let b = v.intern("b");
    assert_ne!(a, b);
    assert_eq!(v.intern("a"), a);
    assert_eq!(v.type_name(b), "b");
}

#[test]
fn bodies_are_slices_of_their_segment() {
    let d = |k: u128, b: &'static [u8]| EventDraft {
        key: PrimaryKey::from(k),
        timestamp_ms: 1,
        tombstone: false,
        parent: None,
        type_name: "T".into(),
        format: BodyFormat::MessagePack,
        meta: vec![],
        body: Some(Bytes::from_static(b)),
    };
    let payload = Bytes::from(encode_transaction(1, &[d(1, b"one"), d(2, b"two")], &[]));
    let tx = decode_transaction(payload.clone()).unwrap();
    let mut v = View::new();
    v.add_segment(payload);
    for e in &tx.events {
        v.apply_one(e, 1);
    }
    assert_eq!(&v.body(v.get(&PrimaryKey::from(1)).unwrap())[..], b"one");
    assert_eq!(&v.body(v.get(&PrimaryKey::from(2)).unwrap())[..], b"two");
    assert_eq!(v.segments.len(), 1, "no copy, no extra segment");
    assert_eq!(std::mem::size_of::<Entry>(), 24);
}

#[test]
fn collections_of_a_record_follow_its_children() {
    let mut v = View::new();
    let colls = |v: &View, p: u128| {
        let mut c: Vec<u64> = v
            .collections_of(&PrimaryKey::from(p))
            .iter()
            .map(|l| l.collection)
            .collect();
        c.sort();
        c
    };
    v.apply_test(&ev(1, None, Some(b"p")));
    assert!(colls(&v, 1).is_empty());
    v.apply_test(&ev(2, Some((1, 7)), Some(b"a")));
    v.apply_test(&ev(3, Some((1, 7)), Some(b"b")));
    v.apply_test(&ev(4, Some((1, 9)), Some(b"c")));
    assert_eq!(colls(&v, 1), [7, 9]);
    // An update keeps the child where it is; deleting the last child of a collection drops it.
    v.apply_test(&ev(4, Some((1, 9)), Some(b"C")));
    assert_eq!(colls(&v, 1), [7, 9]);
    v.apply_test(&ev(4, None, None));
    assert_eq!(colls(&v, 1), [7]);
    v.apply_test(&ev(2, None, None));
    assert_eq!(colls(&v, 1), [7]);
    v.apply_test(&ev(3, None, None));
    assert!(colls(&v, 1).is_empty());
    assert!(v.collections.is_empty());
}

fn typed(key: u128, type_name: &str, body: Vec<u8>) -> Event {
    let d = EventDraft {
        key: PrimaryKey::from(key),
        timestamp_ms: 1,
        tombstone: false,
        parent: None,
        type_name: type_name.to_string().into(),
        format: BodyFormat::MessagePack,
        meta: vec![],
        body: Some(Bytes::from(body)),
    };
    decode_transaction(Bytes::from(encode_transaction(1, &[d], &[])))
        .unwrap()
        .events
        .remove(0)
}

#[test]
fn schema_records_define_the_indexes_and_cover_the_records_already_there() {
    use crate::schema::{IndexDef, IndexKind, SCHEMA_TYPE, Scalar, TypeSchema};
    let item = |key: u128, code: &str, n: u32| {
        typed(key, "t.Item", rmp_serde::to_vec(&(code, n)).unwrap())
    };
    let def = |field: &str, position: u32, scalar: Scalar| IndexDef {
        field: field.into(),
        position,
        kind: IndexKind::of(scalar),
        unique: false,
    };
    let key = |s: &str| rmp_serde::to_vec(s).unwrap();
    let num = |n: u32| rmp_serde::to_vec(&n).unwrap();
    let mut v = View::new();
    v.apply_test(&item(1, "a", 7));
    v.apply_test(&item(2, "b", 7));
    // No schema recorded: nothing is indexed, whatever types this process links.
    assert!(v.lookup("t.Item", "code", &key("a")).is_empty());

    let mut schema = TypeSchema {
        type_name: "t.Item".into(),
        indexes: vec![def("code", 0, Scalar::String)],
    };
    v.apply_test(&typed(100, SCHEMA_TYPE, schema.to_body().unwrap()));
    assert_eq!(v.len(), 2, "a schema record is not counted");
    assert_eq!(
        v.schema_of("t.Item").map(|(k, _)| k),
        Some(PrimaryKey::from(100))
    );
    assert_eq!(
        v.schema_record_type(&PrimaryKey::from(100)).map(|t| &**t),
        Some("t.Item")
    );
    assert_eq!(v.lookup("t.Item", "code", &key("a")), [PrimaryKey::from(1)]);
    v.apply_test(&item(3, "a", 8));
    v.apply_test(&item(1, "c", 7));
    assert_eq!(v.lookup("t.Item", "code", &key("a")), [PrimaryKey::from(3)]);
    assert_eq!(v.lookup("t.Item", "code", &key("c")), [PrimaryKey::from(1)]);

    // A new version adds an index over the records already there.
    schema.indexes.push(def("n", 1, Scalar::Integer));
    v.apply_test(&typed(100, SCHEMA_TYPE, schema.to_body().unwrap()));
    assert_eq!(
        v.lookup("t.Item", "n", &num(7)),
        [PrimaryKey::from(1), PrimaryKey::from(2)]
    );
    assert_eq!(v.lookup("t.Item", "n", &num(8)), [PrimaryKey::from(3)]);
    assert_eq!(v.records_of("t.Item").len(), 3);
    assert_eq!(v.schemas().count(), 1);
}
