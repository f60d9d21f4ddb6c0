use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn draft(
    key: u128,
    parent: Option<(u128, u64)>,
    body: Option<Vec<u8>>,
    meta: Vec<(u16, Vec<u8>)>,
) -> EventDraft {
    EventDraft {
        key: PrimaryKey::from(key),
        timestamp_ms: 1_700_000_000_000,
        tombstone: body.is_none(),
        parent: parent.map(|(p, c)| ParentLink {
            parent: PrimaryKey::from(p),
            collection: c,
        }),
        type_name: "test.Thing".into(),
        format: BodyFormat::MessagePack,
        meta: meta
            .into_iter()
            .map(|(tag, v)| MetaEntry {
                tag,
                value: Bytes::from(v),
            })
            .collect(),
        body: body.map(Bytes::from),
    }
}

fn same(d: &EventDraft, e: &Event) -> bool {
    d.key == e.key
        && d.timestamp_ms == e.timestamp_ms
        && d.tombstone == e.tombstone
        && d.parent == e.parent
        && d.type_name == e.type_name()
        && d.format == e.format
        && d.meta == e.meta
        && d.body == e.body
}

proptest! {
    #[test]
    fn transaction_round_trip(
        seq in any::<u64>(),
        evs in proptest::collection::vec(
            (any::<u128>(), proptest::option::of((any::<u128>(), any::<u64>())),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
             proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..3)),
            0..8),
    ) {
        let drafts: Vec<EventDraft> = evs.into_iter().map(|(k, p, b, m)| draft(k, p, b, m)).collect();
        let bytes = Bytes::from(encode_transaction(seq, &drafts, &[]));
        let tx = decode_transaction(bytes.clone()).unwrap();
        prop_assert_eq!(tx.seq, seq);
        prop_assert_eq!(tx.events.len(), drafts.len());
        for (d, e) in drafts.iter().zip(&tx.events) {
            prop_assert!(same(d, e));
        }
        // Canonical: re-encoding the decoded events gives the same bytes.
        let again: Vec<EventDraft> = tx.events.iter().map(|e| EventDraft {
            key: e.key, timestamp_ms: e.timestamp_ms, tombstone: e.tombstone, parent: e.parent,
            type_name: e.type_name().to_string().into(), format: e.format, meta: e.meta.clone(), body: e.body.clone(),
        }).collect();
        prop_assert_eq!(Bytes::from(encode_transaction(seq, &again, &[])), bytes);
    }

    #[test]
    fn every_truncation_is_an_error(cut in 0usize..1000) {
        let d = draft(7, Some((1, 2)), Some(vec![9; 40]), vec![(3, vec![1, 2, 3])]);
        let full = encode_transaction(5, &[d], &[]);
        let cut = cut % full.len();
        prop_assert!(decode_transaction(Bytes::copy_from_slice(&full[..cut])).is_err());
    }
}

#[test]
fn hash_is_stable_and_changes_with_content() {
    let a = draft(1, None, Some(vec![1, 2, 3]), vec![]);
    let mut b = a.clone();
    b.body = Some(Bytes::from_static(&[1, 2, 4]));
    let ta = decode_transaction(Bytes::from(encode_transaction(
        1,
        std::slice::from_ref(&a),
        &[],
    )))
    .unwrap();
    let ta2 = decode_transaction(Bytes::from(encode_transaction(9, &[a], &[]))).unwrap();
    let tb = decode_transaction(Bytes::from(encode_transaction(1, &[b], &[]))).unwrap();
    assert_eq!(ta.events[0].hash(), ta2.events[0].hash());
    assert_ne!(ta.events[0].hash(), tb.events[0].hash());
}

#[test]
fn unknown_flags_and_versions_are_rejected() {
    let d = draft(1, None, Some(vec![1]), vec![]);
    let mut raw = Vec::new();
    codec::encode_event(&d, &mut raw);
    let mut bad = raw.clone();
    bad[0] = 2;
    assert_eq!(
        decode_event(Bytes::from(bad)),
        Err(DecodeError::UnsupportedEventVersion(2))
    );
    let mut bad = raw.clone();
    bad[1] |= 0x80;
    assert!(matches!(
        decode_event(Bytes::from(bad)),
        Err(DecodeError::UnknownFlags(_))
    ));
    let mut bad = raw;
    bad.push(0);
    assert!(matches!(
        decode_event(Bytes::from(bad)),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

/// The smallest event the format allows: no parent, no metadata, no body, an empty type name.
fn minimal(key: u128) -> EventDraft {
    EventDraft {
        type_name: "".into(),
        ..draft(key, None, None, vec![])
    }
}

#[test]
fn the_minimal_event_size_follows_the_format() {
    let mut raw = Vec::new();
    codec::encode_event(&minimal(1), &mut raw);
    assert_eq!(raw.len(), codec::MIN_EVENT_LEN);
    assert_eq!(codec::MIN_EVENT_BYTES, 4 + raw.len());
    assert!(decode_event(Bytes::from(raw)).is_ok());
}

#[test]
fn a_count_beyond_the_bytes_fails_before_anything_is_reserved() {
    // u32::MAX events claimed in 15 bytes.
    let mut payload = vec![codec::PAYLOAD_TRANSACTION];
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    payload.extend_from_slice(&0u16.to_le_bytes());
    assert_eq!(
        codec::TransactionRef::decode(&payload).unwrap_err(),
        DecodeError::Truncated { what: "events" }
    );
    // One more event than the bytes hold fails the same way, before the first event is read.
    let events: Vec<EventDraft> = (0..10).map(minimal).collect();
    let mut payload = encode_transaction(1, &events, &[]);
    payload[9..13].copy_from_slice(&11u32.to_le_bytes());
    assert_eq!(
        codec::TransactionRef::decode(&payload).unwrap_err(),
        DecodeError::Truncated { what: "events" }
    );
}

#[test]
fn the_most_events_a_payload_holds_decode_within_a_bounded_reservation() {
    let events: Vec<EventDraft> = (0..2000).map(minimal).collect();
    let payload = encode_transaction(1, &events, &[]);
    let tx = codec::TransactionRef::decode(&payload).unwrap();
    assert_eq!(tx.events.len(), events.len());
    // Room for exactly the events, and one `EventRef` costs a fixed multiple of the smallest
    // event's bytes: the reservation is bounded by the payload's size.
    assert_eq!(tx.events.capacity(), events.len());
    let per_byte = std::mem::size_of::<codec::EventRef<'_>>().div_ceil(codec::MIN_EVENT_BYTES);
    assert!(
        tx.events.capacity() * std::mem::size_of::<codec::EventRef<'_>>()
            <= per_byte * payload.len()
    );
    assert!(
        per_byte <= 8,
        "an EventRef costs {per_byte} bytes per payload byte"
    );
}
