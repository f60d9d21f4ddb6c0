//! The application messages carried by the secure channel, one MessagePack value per channel
//! frame (`docs/PROTOCOL.md`, "Messages").
//!
//! Every message is checked before it is deserialized: its nesting depth and the counts it
//! claims are bounded by [`WireLimits`] and by the bytes received ([`check_shape`]), so a hostile
//! peer cannot make the decoder recurse deeply or reserve more than the frame holds.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::chain::{ClaimedItem, CommitError, MAX_CLAIM_BATCH};
use crate::event::PrimaryKey;
use crate::event::msgpack;
use crate::trust::TrustError;

/// The version of the messages below (negotiated in the handshake's hello).
pub const MESSAGES_VERSION: u16 = 1;

/// Caps on what one message may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireLimits {
    /// Deepest nesting of arrays and maps in a message.
    pub max_depth: usize,
    /// Most transactions in one [`ServerMsg::Events`].
    pub max_batch: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits {
            max_depth: 16,
            max_batch: 65_536,
        }
    }
}

/// What a client sends, once the channel is open on `/db/<chain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClientMsg {
    /// Send me every committed transaction from `from` on (history, then live); the server
    /// answers with [`ServerMsg::Events`] batches and one [`ServerMsg::CaughtUp`]. Once per
    /// connection.
    Subscribe {
        /// The first sequence number wanted (the replica's last + 1).
        from: u64,
    },
    /// Commit this sealed transaction; the server answers [`ServerMsg::Committed`] or
    /// [`ServerMsg::Refused`] with the same `id`.
    Commit {
        /// The client's number for the request (unique among its outstanding ones).
        id: u64,
        /// The transaction's bytes as sealed by a Dio.
        tx: Bytes,
    },
    /// Claim the record `key` (a queue item) for `lease_ms` milliseconds (the server may
    /// shorten it); the server answers [`ServerMsg::Claimed`] with the same `id`. The claim
    /// ends with the lease, a [`ClientMsg::Release`], or the connection.
    Claim {
        /// The client's number for the request.
        id: u64,
        /// The record.
        key: PrimaryKey,
        /// How long the claim lasts unless it ends sooner.
        lease_ms: u64,
    },
    /// [`ClientMsg::Commit`] under a lock grant: refused with [`Refusal::Fenced`] unless the
    /// grant `token` of `lock` is current when the chain's writer checks the transaction.
    CommitFenced {
        /// The client's number for the request.
        id: u64,
        /// The transaction's bytes as sealed by a Dio.
        tx: Bytes,
        /// The lock's name.
        lock: String,
        /// The grant's fencing token.
        token: u64,
    },
    /// Take the lock `name` for `lease_ms` milliseconds (the server may shorten it) if nobody
    /// holds it; the server answers [`ServerMsg::Locked`] with the same `id`. The lock is
    /// held until a [`ClientMsg::Unlock`], the lease's end, or the connection's.
    Lock {
        /// The client's number for the request.
        id: u64,
        /// The lock's name (1 to 256 bytes).
        name: String,
        /// How long the lock lasts unless released sooner.
        lease_ms: u64,
    },
    /// Release the grant `token` of the lock `name` (no answer).
    Unlock {
        /// The lock's name.
        name: String,
        /// The grant's fencing token, from [`ServerMsg::Locked`].
        token: u64,
    },
    /// Claim the oldest records of type `type_name` in the collection `collection` of
    /// `parent` that nobody has claimed (queue items), at most `max` of them (capped at
    /// [`MAX_CLAIM_BATCH`]), each for `lease_ms` milliseconds (the server may shorten it); the
    /// server answers [`ServerMsg::ClaimedNext`] with the same `id`. Each claim ends as one
    /// taken by [`ClientMsg::Claim`] does.
    ClaimNext {
        /// The client's number for the request.
        id: u64,
        /// The collection's owner.
        parent: PrimaryKey,
        /// Which of its collections.
        collection: u64,
        /// The items' stable type name (at most 1,024 bytes).
        type_name: String,
        /// How long each claim lasts unless it ends sooner.
        lease_ms: u64,
        /// The most items to claim.
        max: u64,
    },
    /// End the claim `token` on `key` (no answer).
    Release {
        /// The record.
        key: PrimaryKey,
        /// The claim's token, from [`ServerMsg::Claimed`].
        token: u64,
    },
    /// What is the chain's last sequence number now? The server answers [`ServerMsg::Synced`]
    /// with the same `id`; a replica that has applied up to it has seen every transaction
    /// committed before it asked (its own and other clients').
    Sync {
        /// The client's number for the request.
        id: u64,
    },
}

/// What a server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ServerMsg {
    /// The chain is open: its key and the last sequence number committed so far.
    Opened {
        /// The chain key.
        chain: String,
        /// The last sequence number (0 for an empty chain).
        last_seq: u64,
    },
    /// Committed transactions, in log order, without gaps: `(sequence number, payload)`.
    Events {
        /// The transactions.
        txs: Vec<(u64, Bytes)>,
    },
    /// Every transaction up to `seq` has been sent: from here on the stream is live.
    CaughtUp {
        /// The last sequence number sent with the history.
        seq: u64,
    },
    /// The transaction of request `id` is durable, as number `seq`.
    Committed {
        /// The request.
        id: u64,
        /// Its sequence number.
        seq: u64,
    },
    /// The transaction of request `id` was refused; nothing of it was stored.
    Refused {
        /// The request.
        id: u64,
        /// Why.
        reason: Refusal,
    },
    /// The answer to [`ClientMsg::Claim`] `id`: the claim's token, or `None` while someone
    /// else holds a claim on the record.
    Claimed {
        /// The request.
        id: u64,
        /// The claim's token.
        token: Option<u64>,
    },
    /// The answer to [`ClientMsg::ClaimNext`] `id`: the items claimed, oldest first (none
    /// while every item of the collection is claimed, or there is none).
    ClaimedNext {
        /// The request.
        id: u64,
        /// The items claimed, each with its claim's token and the transaction that wrote its
        /// current version (at most [`MAX_CLAIM_BATCH`]).
        items: Vec<ClaimedItem>,
        /// The server's last transaction when it answered: an item committed later arrives
        /// after it.
        seen: u64,
    },
    /// The answer to [`ClientMsg::Lock`] `id`: the grant's fencing token, or `None` while
    /// another holds the lock.
    Locked {
        /// The request.
        id: u64,
        /// The grant's fencing token.
        token: Option<u64>,
    },
    /// This server does not hold the chain; `url` does.
    Redirect {
        /// Where the chain lives.
        url: String,
    },
    /// The connection ends (a protocol violation, the server shutting down, a chain that does
    /// not open); the text says why.
    Goodbye {
        /// Why.
        reason: String,
    },
    /// The answer to [`ClientMsg::Sync`] `id`: the chain's last sequence number when the
    /// server read the request. The transactions up to it reach the client on its stream.
    Synced {
        /// The request.
        id: u64,
        /// The chain's last sequence number.
        seq: u64,
    },
    /// The chain's log was compacted past the position the client subscribed from: the
    /// stream that follows starts over with every transaction the server holds (the kept
    /// ones of the compacted part, some pruned, then the rest), and the client rebuilds its
    /// replica from this checkpoint and them once [`ServerMsg::CaughtUp`] arrives
    /// (`docs/FORMAT.md`, "Compaction").
    Checkpoint {
        /// The checkpoint's payload, as the server's log holds it.
        payload: Bytes,
    },
}

/// Why a server refused a transaction, as the client re-raises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Refusal {
    /// The chain-of-trust checks refused it (stale version, no write right, bad signature ...).
    Trust(TrustError),
    /// A unique index already holds a value it writes.
    Unique {
        /// The type.
        type_name: String,
        /// The indexed field.
        field: String,
        /// The record holding the value.
        existing: PrimaryKey,
    },
    /// Larger than the server takes from outside.
    TooLarge {
        /// Its size.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// It does not decode.
    Malformed(String),
    /// It breaks a rule of the chain's schema (a unique index made over shared values, a
    /// schema record weakened or misplaced, a record of an indexed type sealed).
    Schema(String),
    /// The server could not store it (its log failed, or it is closing); it was not stored.
    Unavailable(String),
    /// It named a lock grant that is no longer current.
    Fenced {
        /// The lock.
        lock: String,
        /// The token it named.
        token: u64,
    },
}

impl Refusal {
    /// The refusal of `e`, a local commit's error on the server.
    pub fn of(e: &CommitError) -> Self {
        match e {
            CommitError::Trust(t) => Refusal::Trust(t.clone()),
            CommitError::UniqueViolation {
                type_name,
                field,
                existing,
            } => Refusal::Unique {
                type_name: type_name.clone(),
                field: field.clone(),
                existing: *existing,
            },
            CommitError::Schema(s) => Refusal::Schema(s.to_string()),
            CommitError::TooLarge { size, max } => Refusal::TooLarge {
                size: *size,
                max: *max,
            },
            CommitError::Malformed(d) => Refusal::Malformed(d.to_string()),
            CommitError::Fenced { lock, token } => Refusal::Fenced {
                lock: lock.clone(),
                token: *token,
            },
            other => Refusal::Unavailable(other.to_string()),
        }
    }
}

/// Why a message was refused before or while it was decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Nested deeper than [`WireLimits::max_depth`].
    #[error("message nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A length or count reaches past the message's end.
    #[error("message claims {claimed} more bytes or items than the {left} left")]
    Truncated {
        /// What it claims.
        claimed: u64,
        /// What is left.
        left: usize,
    },
    /// Bytes after the message's one value.
    #[error("{0} bytes after the message")]
    Trailing(usize),
    /// A byte that is no MessagePack marker (0xc1).
    #[error("invalid MessagePack marker 0x{0:02x}")]
    BadMarker(u8),
    /// The value is not a message of this version.
    #[error("not a message: {0}")]
    Decode(String),
    /// More claimed items in one [`ServerMsg::ClaimedNext`] than [`MAX_CLAIM_BATCH`].
    #[error("{count} claimed items in one answer, above the limit of {max}")]
    TooManyClaims {
        /// Its count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A batch above [`WireLimits::max_batch`].
    #[error("a batch of {count} transactions, above the limit of {max}")]
    BatchTooLarge {
        /// Its count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Encodes a message.
pub fn encode<M: Serialize>(msg: &M) -> Vec<u8> {
    // Only the message types above are encoded: plain data that always serializes.
    rmp_serde::to_vec(msg).unwrap_or_default()
}

/// Decodes a client message after checking its shape.
///
/// # Errors
///
/// [`WireError`] for anything but exactly one well-formed message within `limits`.
pub fn decode_client(bytes: &[u8], limits: &WireLimits) -> Result<ClientMsg, WireError> {
    check_shape(bytes, limits.max_depth)?;
    rmp_serde::from_slice(bytes).map_err(|e| WireError::Decode(e.to_string()))
}

/// Decodes a server message after checking its shape (and the size of an
/// [`ServerMsg::Events`] batch or of a [`ServerMsg::ClaimedNext`] answer).
///
/// # Errors
///
/// [`WireError`] for anything but exactly one well-formed message within `limits`.
pub fn decode_server(bytes: &[u8], limits: &WireLimits) -> Result<ServerMsg, WireError> {
    check_shape(bytes, limits.max_depth)?;
    let msg: ServerMsg =
        rmp_serde::from_slice(bytes).map_err(|e| WireError::Decode(e.to_string()))?;
    match &msg {
        ServerMsg::Events { txs } if txs.len() > limits.max_batch => {
            return Err(WireError::BatchTooLarge {
                count: txs.len(),
                max: limits.max_batch,
            });
        }
        ServerMsg::ClaimedNext { items, .. } if items.len() > MAX_CLAIM_BATCH => {
            return Err(WireError::TooManyClaims {
                count: items.len(),
                max: MAX_CLAIM_BATCH,
            });
        }
        _ => {}
    }
    Ok(msg)
}

/// Walks one MessagePack value without recursion: every array and map count and every string,
/// binary and extension length must fit in the bytes left (each item takes at least one byte),
/// nesting stays within `max_depth`, and nothing follows the value.
///
/// # Errors
///
/// [`WireError::TooDeep`], [`WireError::Truncated`], [`WireError::BadMarker`],
/// [`WireError::Trailing`].
pub fn check_shape(bytes: &[u8], max_depth: usize) -> Result<(), WireError> {
    // Items still to read at each open level; the outermost level holds the one value.
    let mut pending: Vec<u64> = vec![1];
    let mut at = 0usize;
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let left = bytes.len() - at;
        let marker = *bytes.get(at).ok_or(WireError::Truncated {
            claimed: 1,
            left: 0,
        })?;
        at += 1;
        // (bytes to skip, items to open)
        let (skip, open) = msgpack::extent(marker, |n| {
            let n = n as usize;
            let b = bytes.get(at..at + n).ok_or(WireError::Truncated {
                claimed: n as u64,
                left: bytes.len() - at,
            })?;
            at += n;
            Ok(b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
        })?
        .ok_or(WireError::BadMarker(marker))?;
        let left_now = bytes.len() - at;
        if skip > left_now as u64 || open > left_now as u64 {
            return Err(WireError::Truncated {
                claimed: skip.max(open),
                left: left.saturating_sub(1),
            });
        }
        at += skip as usize;
        if open > 0 {
            if pending.len() > max_depth {
                return Err(WireError::TooDeep { max: max_depth });
            }
            pending.push(open);
        }
    }
    if at != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> WireLimits {
        WireLimits::default()
    }

    #[test]
    fn messages_round_trip() {
        let msgs = [
            ClientMsg::Subscribe { from: 7 },
            ClientMsg::Sync { id: 11 },
            ClientMsg::Claim {
                id: 4,
                key: PrimaryKey::from(9u128),
                lease_ms: 30_000,
            },
            ClientMsg::Release {
                key: PrimaryKey::from(9u128),
                token: 12,
            },
            ClientMsg::ClaimNext {
                id: 5,
                parent: PrimaryKey::from(3u128),
                collection: 77,
                type_name: "jobs.Job".into(),
                lease_ms: 30_000,
                max: 8,
            },
            ClientMsg::Lock {
                id: 6,
                name: "leader".into(),
                lease_ms: 1000,
            },
            ClientMsg::Unlock {
                name: "leader".into(),
                token: 3,
            },
            ClientMsg::CommitFenced {
                id: 7,
                tx: Bytes::from_static(b"tx"),
                lock: "leader".into(),
                token: 3,
            },
            ClientMsg::Commit {
                id: 3,
                tx: Bytes::from_static(b"tx bytes"),
            },
        ];
        for m in msgs {
            assert_eq!(decode_client(&encode(&m), &limits()), Ok(m));
        }
        let msgs = [
            ServerMsg::Opened {
                chain: "a/b".into(),
                last_seq: 9,
            },
            ServerMsg::Events {
                txs: vec![(1, Bytes::from_static(b"one")), (2, Bytes::new())],
            },
            ServerMsg::CaughtUp { seq: 2 },
            ServerMsg::Synced { id: 11, seq: 2 },
            ServerMsg::Checkpoint {
                payload: Bytes::from_static(b"\x02checkpoint"),
            },
            ServerMsg::Claimed {
                id: 4,
                token: Some(12),
            },
            ServerMsg::Claimed { id: 5, token: None },
            ServerMsg::ClaimedNext {
                id: 6,
                items: vec![
                    ClaimedItem::new(PrimaryKey::from(1u128), 4, 9),
                    ClaimedItem::new(PrimaryKey::from(2u128), 5, 9),
                ],
                seen: 12,
            },
            ServerMsg::ClaimedNext {
                id: 7,
                items: Vec::new(),
                seen: 12,
            },
            ServerMsg::Locked {
                id: 6,
                token: Some(3),
            },
            ServerMsg::Committed { id: 1, seq: 3 },
            ServerMsg::Refused {
                id: 2,
                reason: Refusal::Trust(TrustError::VersionMismatch {
                    key: PrimaryKey::generate(),
                    claimed: Some(1),
                    current: Some(2),
                }),
            },
            ServerMsg::Refused {
                id: 2,
                reason: Refusal::Unique {
                    type_name: "t".into(),
                    field: "f".into(),
                    existing: PrimaryKey::generate(),
                },
            },
            ServerMsg::Redirect {
                url: "ws://x:5000/db/a".into(),
            },
            ServerMsg::Goodbye {
                reason: "bye".into(),
            },
        ];
        for m in msgs {
            assert_eq!(decode_server(&encode(&m), &limits()), Ok(m));
        }
    }

    #[test]
    fn deep_nesting_and_lying_lengths_are_refused_before_decoding() {
        // 10,000 nested one-element arrays.
        let mut deep = vec![0x91u8; 10_000];
        deep.push(0x00);
        assert_eq!(
            decode_client(&deep, &limits()),
            Err(WireError::TooDeep { max: 16 })
        );
        // An array claiming 2^32 - 1 items in 5 bytes.
        let lying = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            check_shape(&lying, 16),
            Err(WireError::Truncated { .. })
        ));
        // A binary string claiming 4 GiB.
        let lying = [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(matches!(
            check_shape(&lying, 16),
            Err(WireError::Truncated { .. })
        ));
        // A map claiming more pairs than bytes.
        assert!(matches!(
            check_shape(&[0x8f, 0x01], 16),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(check_shape(&[0xc1], 16), Err(WireError::BadMarker(0xc1)));
        assert_eq!(check_shape(&[0x01, 0x02], 16), Err(WireError::Trailing(1)));
        assert!(matches!(
            check_shape(&[], 16),
            Err(WireError::Truncated { .. })
        ));
        // Well-formed MessagePack that is no message.
        assert!(matches!(
            decode_client(&[0x93, 0x01, 0x02, 0x03], &limits()),
            Err(WireError::Decode(_))
        ));
    }

    #[test]
    fn a_batch_above_the_limit_is_refused() {
        let small = WireLimits {
            max_batch: 2,
            ..limits()
        };
        let m = ServerMsg::Events {
            txs: vec![(1, Bytes::new()), (2, Bytes::new()), (3, Bytes::new())],
        };
        assert_eq!(
            decode_server(&encode(&m), &small),
            Err(WireError::BatchTooLarge { count: 3, max: 2 })
        );
    }

    #[test]
    fn an_answer_with_more_claims_than_the_limit_is_refused() {
        let item = ClaimedItem::new(PrimaryKey::from(1u128), 1, 1);
        let m = ServerMsg::ClaimedNext {
            id: 1,
            items: vec![item; MAX_CLAIM_BATCH + 1],
            seen: 1,
        };
        assert_eq!(
            decode_server(&encode(&m), &limits()),
            Err(WireError::TooManyClaims {
                count: MAX_CLAIM_BATCH + 1,
                max: MAX_CLAIM_BATCH
            })
        );
        let m = ServerMsg::ClaimedNext {
            id: 1,
            items: vec![item; MAX_CLAIM_BATCH],
            seen: 1,
        };
        assert!(decode_server(&encode(&m), &limits()).is_ok());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_client(&bytes, &limits());
            let _ = decode_server(&bytes, &limits());
        }

        #[test]
        fn every_encoding_passes_the_shape_check(from in any::<u64>(), id in any::<u64>(),
                tx in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = ClientMsg::Commit { id, tx: Bytes::from(tx) };
            prop_assert!(check_shape(&encode(&m), 16).is_ok());
            let m = ClientMsg::Subscribe { from };
            prop_assert!(check_shape(&encode(&m), 16).is_ok());
        }

        #[test]
        fn truncations_of_a_message_are_errors(cut in 0usize..40) {
            let m = encode(&ServerMsg::Events {
                txs: vec![(1, Bytes::from_static(b"0123456789")), (2, Bytes::from_static(b"abc"))],
            });
            let cut = cut.min(m.len() - 1);
            prop_assert!(decode_server(&m[..cut], &limits()).is_err());
        }
    }
}
