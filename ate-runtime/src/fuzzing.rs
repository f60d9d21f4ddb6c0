//! Entry points of the fuzz targets (the `fuzz/` crate), built with the `fuzzing` feature.
//!
//! Each takes any bytes, runs one decoder and every check after it that needs no outside state,
//! and returns nothing. Refusing the input is the expected outcome; a panic (or a hang, or a
//! sanitizer report) is a bug. Of what is accepted they also assert what must hold: a decoded
//! transaction or event re-encodes to exactly its bytes (the encoding is canonical), and a log
//! reopens after recovery as it was left, with a frame appended.
//!
//! Inputs are checked as belonging to the chain [`CHAIN_KEY`], whose root is open (so writes
//! reach the rules of the records themselves) and which accepts vouches
//! ([`IntegrityMode::Centralized`]); signatures are verified either way.

use std::sync::LazyLock;

use bytes::Bytes;

use crate::chain::{ChainTrust, load};
use crate::crypto::PrivateSignKey;
use crate::event::codec::encode_transaction;
use crate::event::codec::{
    EventRef, TRANSACTION_HEAD_LEN, TransactionRef, encode_event, encode_transaction_head,
};
use crate::event::{Event, decode_event};
use crate::log::{
    DEFAULT_MAX_FRAME, FILE_HEADER_LEN, FRAME_HEADER_LEN, MemoryStore, RecoveryMode, RedoLog,
    frame_in_place,
};
use crate::trust::meta::EventTrust;
use crate::trust::{IntegrityMode, TrustPolicy};

/// The chain the inputs are checked against (seeds are written for it).
pub const CHAIN_KEY: &str = "fuzz";

/// A frame limit small enough for inputs to cross it.
const SMALL_FRAME_LIMIT: usize = 256;

/// The server key whose vouches the fuzz chain accepts: a fixed key, so that the vouches of the
/// seeds (written by the tests, which vouch with it) verify in the fuzz targets. Test material,
/// not a secret.
pub fn server_key() -> &'static PrivateSignKey {
    static KEY: LazyLock<PrivateSignKey> = LazyLock::new(|| {
        rmp_serde::from_slice(include_bytes!("fuzzing/server.key")).expect("the fuzz server key")
    });
    &KEY
}

fn chain_trust() -> &'static ChainTrust {
    static TRUST: LazyLock<ChainTrust> = LazyLock::new(|| ChainTrust {
        policy: TrustPolicy::new(CHAIN_KEY, Vec::new())
            .with_integrity(IntegrityMode::Centralized)
            .with_servers(vec![server_key().hash()]),
        plugins: Default::default(),
        server_key: None,
    });
    &TRUST
}

/// A log file: recovery in both modes and under a small frame limit; every payload recovered
/// through [`transaction`]; the log replayed as opening a chain replays it. Whatever opens must
/// reopen the same, with a frame appended.
pub fn frames(data: &[u8]) {
    for (mode, max) in [
        (RecoveryMode::TolerateCorruptTail, DEFAULT_MAX_FRAME),
        (RecoveryMode::AbsoluteConsistency, DEFAULT_MAX_FRAME),
        (RecoveryMode::TolerateCorruptTail, SMALL_FRAME_LIMIT),
    ] {
        let store = MemoryStore::from_bytes(data.to_vec());
        let Ok((mut log, records, _)) = RedoLog::open(store.clone(), mode, max) else {
            continue;
        };
        for r in &records {
            transaction(&r.payload);
        }
        let _ = load(&mut log, &records, chain_trust());

        // Recovery left a log that opens, even without tolerance, to the same frames.
        let appended: &[u8] = b"appended after recovery";
        log.append(&[appended]).expect("memory store");
        log.sync().expect("memory store");
        drop(log);
        let (_, again, report) = RedoLog::open(store, RecoveryMode::AbsoluteConsistency, max)
            .expect("a recovered log reopens");
        assert_eq!(report.truncated, 0, "a recovered log reopens without cuts");
        let payloads =
            |rs: &[crate::log::LogRecord]| rs.iter().map(|r| r.payload.clone()).collect();
        let mut expected: Vec<Bytes> = payloads(&records);
        expected.push(Bytes::from_static(appended));
        assert_eq!(
            payloads(&again),
            expected,
            "a recovered log reopens to its frames"
        );
    }
}

/// Rewrites the checksum of each frame of a log, from the first, while their magic and length
/// are in place: the `frame` target's mutator calls it on most mutants, so that mutated payloads
/// get past the checksums to the decoders and the replay.
pub fn seal_frames(log: &mut [u8]) {
    let mut pos = FILE_HEADER_LEN;
    while let Some(head) = log.get(pos..pos + FRAME_HEADER_LEN) {
        // The frame magic (docs/FORMAT.md).
        if head[..4] != *b"ATEf" {
            return;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(frame) = log.get_mut(pos..pos + FRAME_HEADER_LEN + len) else {
            return;
        };
        frame_in_place(frame);
        pos += FRAME_HEADER_LEN + len;
    }
}

/// A transaction payload: decoding (which must be canonical), then the checks that need no
/// record: its trailers, each event's trust metadata, signatures over the recomputed hashes, and
/// the keys trailer against the events.
pub fn transaction(data: &[u8]) {
    let payload = Bytes::copy_from_slice(data);
    let Ok(tx) = TransactionRef::decode(&payload) else {
        return;
    };
    let owned = tx.to_transaction(&payload);
    let drafts: Vec<_> = owned.events.iter().map(Event::to_draft).collect();
    assert_eq!(
        encode_transaction(owned.seq, &drafts, &owned.trailers),
        data,
        "a decoded transaction re-encodes to its bytes"
    );
    let _ = chain_trust().verify(&tx, None, None);
}

/// One event: decoding (which must be canonical), then its trust metadata.
pub fn event(data: &[u8]) {
    let Ok(ev) = decode_event(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut again = Vec::with_capacity(data.len());
    encode_event(&ev.to_draft(), &mut again);
    assert_eq!(again, data, "a decoded event re-encodes to its bytes");
    let borrowed = EventRef::decode(data).expect("the owned decoder accepted it");
    let _ = EventTrust::from_entries(borrowed.meta);
}

/// The trailers that end a transaction payload (count, then tagged entries), read as those of a
/// transaction without events: their proofs (signatures, vouch, keys trailer), then the checks
/// of [`transaction`].
pub fn trailers(data: &[u8]) {
    let mut payload = Vec::with_capacity(TRANSACTION_HEAD_LEN + data.len());
    encode_transaction_head(&mut payload, 1, 0);
    payload.extend_from_slice(data);
    transaction(&payload);
}

/// One handshake message of the network protocol (`docs/PROTOCOL.md`): decoding, which must be
/// canonical (a decoded message re-encodes to its bytes).
#[cfg(any(feature = "client", feature = "server"))]
pub fn net_handshake_message(data: &[u8]) {
    use crate::net::handshake::messages::Message;
    if let Ok(message) = Message::decode(data) {
        assert_eq!(
            message.encode(),
            data,
            "a decoded handshake message re-encodes to its bytes"
        );
    }
}

/// One application message from a client (`net::wire::decode_client`), under the default
/// limits and under tight ones: the shape check and the decoder refuse it or give a message
/// whose encoding decodes to that same message. (The encoding is not canonical: the decoder
/// takes other forms of a value, such as a wider integer, so only the message is compared.)
#[cfg(any(feature = "client", feature = "server"))]
pub fn net_wire_client(data: &[u8]) {
    use crate::net::wire::{self, decode_client};
    for limits in wire_limits() {
        if let Ok(message) = decode_client(data, &limits) {
            assert_eq!(
                decode_client(&wire::encode(&message), &roomy(limits)).as_ref(),
                Ok(&message),
                "a decoded client message round-trips"
            );
        }
    }
}

/// One application message from a server (`net::wire::decode_server`), as
/// [`net_wire_client`]; a batch above the limit is refused, never decoded.
#[cfg(any(feature = "client", feature = "server"))]
pub fn net_wire_server(data: &[u8]) {
    use crate::net::wire::{self, ServerMsg, decode_server};
    for limits in wire_limits() {
        if let Ok(message) = decode_server(data, &limits) {
            if let ServerMsg::Events { txs } = &message {
                assert!(txs.len() <= limits.max_batch, "a batch within the limit");
            }
            assert_eq!(
                decode_server(&wire::encode(&message), &roomy(limits)).as_ref(),
                Ok(&message),
                "a decoded server message round-trips"
            );
        }
    }
}

/// `limits` with room for the encoding of a message decoded under them, which may nest a
/// value one level deeper than the form it was read from (an enum variant read by name alone).
#[cfg(any(feature = "client", feature = "server"))]
fn roomy(limits: crate::net::wire::WireLimits) -> crate::net::wire::WireLimits {
    crate::net::wire::WireLimits {
        max_depth: limits.max_depth * 2,
        ..limits
    }
}

/// The default message limits, and limits small enough for inputs to cross them.
#[cfg(any(feature = "client", feature = "server"))]
fn wire_limits() -> [crate::net::wire::WireLimits; 2] {
    use crate::net::wire::WireLimits;
    [
        WireLimits::default(),
        WireLimits {
            max_depth: 3,
            max_batch: 2,
        },
    ]
}
