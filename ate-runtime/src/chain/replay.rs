//! Replaying a log into the view when a chain is opened.
//!
//! Every transaction goes through two stages. The first needs nothing but the transaction
//! itself: decoding it (in place, borrowing the log buffer), its sequence number, its signatures
//! over the recomputed event hashes, each event's trust metadata, and its keys trailer against
//! the events that bind its entries. The second reads and changes the view: versions, parents,
//! rights and read rules, the validator plugins, the chain's schema (schema records, indexed
//! records, unique values), and then the events (and the wrapped data keys) are applied.
//!
//! The first stage is most of the work on a signed chain (every event is hashed), so for a log
//! of some size it runs on worker threads, worker `k` of `W` taking transactions `k`, `k + W`,
//! `k + 2W`, …, while the opening thread takes their results strictly in log order for the
//! second stage. The outcome is that of a single pass in order: the first transaction that fails
//! is the one reported, with the error a single pass reports, and nothing after it is applied.

use std::sync::mpsc;

use crate::event::Transaction;
use crate::event::codec::{MIN_EVENT_BYTES, TransactionRef};
use crate::log::LogRecord;
use crate::schema::SchemaError;
use crate::trust::{Overlay, TrustError};
use crate::view::View;

use super::OpenError;
use super::apply::Prepared;
use super::compact;
use super::compact::checkpoint::{Checkpoint, CheckpointError};
use super::trust::ChainTrust;
use super::validate::GroupValidator;

/// Logs smaller than this are replayed on the opening thread alone.
const PARALLEL_MIN_BYTES: usize = 1 << 20;
/// Most worker threads used for the first stage.
const MAX_WORKERS: usize = 8;
/// Transactions each worker may have ready ahead of the second stage.
const QUEUE_DEPTH: usize = 4;

/// A transaction through the first stage.
struct Verified<'a> {
    prepared: Prepared,
    /// The decoded transaction (for the schema's checks and validator plugins).
    tx: TransactionRef<'a>,
}

/// Where the transactions of a replayed log lie, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// The checkpoint's last judged number (0 for a log that was never compacted): every
    /// number up to it that `kept` does not list was compacted away.
    pub upto: u64,
    /// Whether the log starts with a checkpoint (the first record).
    pub checkpoint: bool,
    /// The transactions numbered up to `upto` that the log holds: (number, frame offset).
    pub kept: Vec<(u64, u64)>,
}

/// How the transactions of a log are numbered: with a checkpoint, the first `region.len()`
/// carry the numbers it lists (some up to `upto` may be missing: compacted), and those after
/// them run on from `upto + 1`; without one, from 1.
struct Numbering {
    upto: u64,
    region: Vec<u64>,
}

impl Numbering {
    /// The number record `i` (of the transactions, the checkpoint left out) must carry.
    fn expected(&self, i: usize) -> u64 {
        match self.region.get(i) {
            Some(seq) => *seq,
            None => self.upto + (i - self.region.len()) as u64 + 1,
        }
    }

    /// Whether record `i` is in the checkpointed part (judged by the compaction).
    fn compacted(&self, i: usize) -> Option<u64> {
        (i < self.region.len()).then_some(self.upto)
    }
}

/// The number in a transaction payload's header, read without decoding it (0 when it has
/// none: it then fails to decode in its turn).
fn seq_of(payload: &[u8]) -> u64 {
    payload
        .get(1..9)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// Reads the checkpoint at the head of a compacted log and checks the transactions it
/// covers against it: their numbers rise, there are as many as it says, and the digest of
/// their payloads and of the retired keys is its own.
fn read_checkpoint(
    trust: &ChainTrust,
    head: &LogRecord,
    records: &[LogRecord],
    store: &str,
) -> Result<(Checkpoint, Numbering), OpenError> {
    let failed = |source: CheckpointError| OpenError::Checkpoint {
        store: store.to_string(),
        source,
    };
    let checkpoint = Checkpoint::decode(&head.payload).map_err(failed)?;
    let mut region: Vec<u64> = Vec::new();
    for rec in records {
        let seq = seq_of(&rec.payload);
        if seq > checkpoint.upto {
            break;
        }
        if region.last().is_some_and(|last| *last >= seq) || seq == 0 {
            return Err(failed(CheckpointError::OutOfOrder { seq }));
        }
        region.push(seq);
    }
    let digest = compact::checkpoint::digest(
        trust.policy.chain_hash(),
        checkpoint.upto,
        region
            .iter()
            .zip(records)
            .map(|(seq, r)| (*seq, &r.payload[..])),
        &checkpoint.retired,
    );
    if region.len() as u64 != checkpoint.kept || digest != checkpoint.digest {
        return Err(failed(CheckpointError::Mismatch {
            upto: checkpoint.upto,
        }));
    }
    let upto = checkpoint.upto;
    Ok((checkpoint, Numbering { upto, region }))
}

/// Replays `records` (read from the store named `store`, their payloads slices of the view's
/// current segment) into `view`, checking every transaction as a commit is checked (a compacted
/// log's checkpointed part as [`ChainTrust::check_compacted`] says). Returns where the
/// transactions lie.
pub(super) fn replay(
    view: &mut View,
    trust: &ChainTrust,
    records: &[LogRecord],
    store: &str,
) -> Result<Replayed, OpenError> {
    let checkpoint = records
        .first()
        .is_some_and(|head| Checkpoint::is_checkpoint(&head.payload));
    let (numbering, records) = match records.first() {
        Some(head) if Checkpoint::is_checkpoint(&head.payload) => {
            let (checkpoint, numbering) = read_checkpoint(trust, head, &records[1..], store)?;
            view.retire(&checkpoint.retired);
            (numbering, &records[1..])
        }
        _ => (
            Numbering {
                upto: 0,
                region: Vec::new(),
            },
            records,
        ),
    };
    view.reserve(event_count_hint(records));
    let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
        .min(records.len());
    let done = if workers < 2 || bytes < PARALLEL_MIN_BYTES {
        replay_here(view, trust, records, &numbering, store)
    } else {
        replay_with_workers(view, trust, records, &numbering, store, workers)
    };
    view.shrink_to_fit();
    done?;
    if numbering.region.is_empty() && numbering.upto > 0 {
        view.set_last_seq(view.last_seq().max(numbering.upto));
    }
    Ok(Replayed {
        upto: numbering.upto,
        checkpoint,
        kept: records[..numbering.region.len()]
            .iter()
            .zip(&numbering.region)
            .map(|(r, seq)| (*seq, r.offset))
            .collect(),
    })
}

/// Replays `records`, the transactions numbered `after + 1`, `after + 2`, … into `view` (a
/// view replayed up to `after`), with every check, on this thread.
pub(super) fn replay_after(
    view: &mut View,
    trust: &ChainTrust,
    records: &[LogRecord],
    after: u64,
) -> Result<(), OpenError> {
    let numbering = Numbering {
        upto: after,
        region: Vec::new(),
    };
    replay_here(view, trust, records, &numbering, "compacted log")
}

/// Both stages on this thread.
fn replay_here(
    view: &mut View,
    trust: &ChainTrust,
    records: &[LogRecord],
    numbering: &Numbering,
    store: &str,
) -> Result<(), OpenError> {
    let mut staged = Overlay::new();
    for (i, rec) in records.iter().enumerate() {
        let stored = numbering.compacted(i).is_some();
        let verified = prepare(trust, rec, numbering.expected(i), stored, store)?;
        finish(view, trust, rec, verified, &mut staged, numbering, i, store)?;
    }
    Ok(())
}

/// The first stage on `workers` threads, the second on this one, in log order.
fn replay_with_workers(
    view: &mut View,
    trust: &ChainTrust,
    records: &[LogRecord],
    numbering: &Numbering,
    store: &str,
    workers: usize,
) -> Result<(), OpenError> {
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(workers);
        for k in 0..workers {
            let (sender, receiver) = mpsc::sync_channel(QUEUE_DEPTH);
            std::thread::Builder::new()
                .name(format!("ate-replay-{k}"))
                .spawn_scoped(scope, move || {
                    for i in (k..records.len()).step_by(workers) {
                        let stored = numbering.compacted(i).is_some();
                        let prepared =
                            prepare(trust, &records[i], numbering.expected(i), stored, store);
                        let failed = prepared.is_err();
                        // A closed queue: the opening thread stopped at an earlier failure.
                        if sender.send(prepared).is_err() || failed {
                            break;
                        }
                    }
                })
                .map_err(|source| OpenError::Thread {
                    what: "a replay worker",
                    source,
                })?;
            queues.push(receiver);
        }
        let mut staged = Overlay::new();
        for (i, rec) in records.iter().enumerate() {
            let verified = queues[i % workers]
                .recv()
                .map_err(|_| OpenError::WorkerStopped)??;
            finish(view, trust, rec, verified, &mut staged, numbering, i, store)?;
        }
        Ok(())
        // Returning drops the queues, so workers still running stop at their next send.
    })
}

/// The first stage: decode, sequence number, proofs, trust metadata, keys and directory.
/// `stored`: the transaction is in a compacted log's checkpointed part, where it may be pruned.
fn prepare<'a>(
    trust: &ChainTrust,
    rec: &'a LogRecord,
    expected: u64,
    stored: bool,
    store: &str,
) -> Result<Verified<'a>, OpenError> {
    let decoded = if stored {
        TransactionRef::decode_stored(&rec.payload)
    } else {
        TransactionRef::decode(&rec.payload)
    };
    let tx = decoded.map_err(|source| OpenError::Malformed {
        store: store.to_string(),
        offset: rec.offset,
        source,
    })?;
    if tx.seq != expected {
        return Err(OpenError::OutOfSequence {
            store: store.to_string(),
            offset: rec.offset,
            found: tx.seq,
            expected,
        });
    }
    let verified = trust
        .verify(&tx, None, None)
        .map_err(|source| invalid(store, rec, tx.seq, source))?;
    Ok(Verified {
        prepared: Prepared::new(&tx, &rec.payload, verified),
        tx,
    })
}

/// The second stage: the checks against the view, then the transaction (record `i`) is applied.
#[allow(clippy::too_many_arguments)]
fn finish(
    view: &mut View,
    trust: &ChainTrust,
    rec: &LogRecord,
    verified: Verified<'_>,
    staged: &mut Overlay,
    numbering: &Numbering,
    i: usize,
    store: &str,
) -> Result<(), OpenError> {
    let Verified { prepared, tx } = verified;
    let seq = prepared.seq;
    if let Some(upto) = numbering.compacted(i) {
        trust
            .check_compacted(
                &*view,
                &prepared.events,
                seq,
                &prepared.verified,
                upto,
                staged,
            )
            .map_err(|source| invalid(store, rec, seq, source))?;
        // The chain's schema was checked when the transaction was committed; a unique value is
        // checked once the whole checkpointed part is in (a dropped version may have released
        // a value a kept one takes before the record's kept version shows the release).
        prepared.apply(view, &rec.payload);
        if i + 1 == numbering.region.len() {
            view.set_last_seq(numbering.upto);
            if let Some((type_name, field, key, existing)) = view.first_unique_duplicate() {
                return Err(OpenError::Schema {
                    store: store.to_string(),
                    offset: rec.offset,
                    seq,
                    source: Box::new(SchemaError::Duplicate {
                        type_name,
                        field,
                        key,
                        existing,
                    }),
                });
            }
        }
        return Ok(());
    }
    let owned: Option<Transaction> = trust
        .has_validators()
        .then(|| tx.to_transaction(&rec.payload));
    trust
        .check(
            &*view,
            &Overlay::new(),
            &prepared.events,
            seq,
            &prepared.verified,
            owned.as_ref(),
            staged,
        )
        .map_err(|source| invalid(store, rec, seq, source))?;
    // The chain's schema, as a commit checks it: schema records, and indexed records.
    let schema = GroupValidator::new(view);
    if schema.needs_check(&prepared) {
        schema
            .check(&tx.events)
            .map_err(|refusal| OpenError::Schema {
                store: store.to_string(),
                offset: rec.offset,
                seq,
                source: Box::new(refusal.into_schema_error()),
            })?;
    }
    prepared.apply(view, &rec.payload);
    Ok(())
}

fn invalid(store: &str, rec: &LogRecord, seq: u64, source: TrustError) -> OpenError {
    OpenError::Invalid {
        store: store.to_string(),
        offset: rec.offset,
        seq,
        source,
    }
}

/// How many events the records hold, read from their headers without decoding (an upper
/// bound for a damaged payload, which fails to decode later).
fn event_count_hint(records: &[LogRecord]) -> usize {
    records
        .iter()
        .map(|r| {
            let declared = r
                .payload
                .get(9..13)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            declared.min(r.payload.len() / MIN_EVENT_BYTES)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::crypto::{KeySize, PrivateSignKey};
    use crate::event::{
        BodyFormat, EventDraft, MetaEntry, PrimaryKey, TxTrailer, encode_transaction,
    };
    use crate::trust::TrustPolicy;
    use crate::trust::meta::{TAG_PREVIOUS, TxSealer, event_hashes};

    fn draft(key: u128, previous: Option<u64>, body: usize) -> EventDraft {
        EventDraft {
            key: PrimaryKey::from(key),
            timestamp_ms: 1,
            tombstone: false,
            parent: None,
            type_name: if key.is_multiple_of(3) { "t.A" } else { "t.B" }.into(),
            format: BodyFormat::MessagePack,
            meta: previous
                .map(|p| MetaEntry {
                    tag: TAG_PREVIOUS,
                    value: Bytes::copy_from_slice(&p.to_le_bytes()),
                })
                .into_iter()
                .collect(),
            body: Some(Bytes::from(vec![key as u8; body])),
        }
    }

    /// A log of `txs` transactions of 50 events of 1 KiB (so it is replayed in parallel),
    /// each transaction updating the records of the one before; `edit` may change a
    /// transaction's events or sequence number before it is encoded.
    fn log(
        txs: u64,
        signer: Option<&PrivateSignKey>,
        mut edit: impl FnMut(u64, &mut u64, &mut Vec<EventDraft>),
    ) -> (Bytes, Vec<LogRecord>) {
        let chain = TrustPolicy::new("replay", Vec::new())
            .chain_hash()
            .to_owned();
        let mut payloads = Vec::new();
        for t in 1..=txs {
            let mut seq = t;
            let mut events: Vec<EventDraft> = (0..50u128)
                .map(|k| draft(k, (t > 1).then_some(t - 1), 1024))
                .collect();
            edit(t, &mut seq, &mut events);
            let mut trailers: Vec<TxTrailer> = Vec::new();
            if let Some(key) = signer {
                let covers: Vec<u32> = (0..events.len() as u32).collect();
                trailers = TxSealer {
                    signers: vec![(key, covers)],
                    ..TxSealer::default()
                }
                .seal(&chain, &event_hashes(&events))
                .unwrap();
            }
            payloads.push(encode_transaction(seq, &events, &trailers));
        }
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for p in &payloads {
            spans.push((buf.len(), p.len()));
            buf.extend_from_slice(p);
        }
        let buf = Bytes::from(buf);
        let records = spans
            .into_iter()
            .map(|(at, len)| LogRecord {
                offset: at as u64,
                payload: buf.slice(at..at + len),
            })
            .collect();
        (buf, records)
    }

    fn trust(root: Option<&PrivateSignKey>) -> ChainTrust {
        ChainTrust {
            policy: TrustPolicy::new("replay", root.map(|k| vec![k.hash()]).unwrap_or_default()),
            plugins: Default::default(),
            server_key: None,
        }
    }

    fn dense() -> Numbering {
        Numbering {
            upto: 0,
            region: Vec::new(),
        }
    }

    /// Replays on this thread and with two workers; both must agree.
    fn both(
        trust: &ChainTrust,
        buf: &Bytes,
        records: &[LogRecord],
    ) -> (Result<View, String>, Result<View, String>) {
        let run = |parallel: bool| {
            let mut view = View::new();
            view.add_segment(buf.clone());
            let done = if parallel {
                replay_with_workers(&mut view, trust, records, &dense(), "test", 2)
            } else {
                replay_here(&mut view, trust, records, &dense(), "test")
            };
            done.map(|()| view).map_err(|e| e.to_string())
        };
        (run(false), run(true))
    }

    #[test]
    fn workers_build_the_same_view() {
        let (buf, records) = log(40, None, |_, _, _| {});
        assert!(buf.len() > PARALLEL_MIN_BYTES);
        let (here, workers) = both(&trust(None), &buf, &records);
        let (here, workers) = (here.unwrap(), workers.unwrap());
        assert_eq!(here.len(), 50);
        assert_eq!(workers.len(), 50);
        assert_eq!(workers.last_seq(), 40);
        for k in 0..50u128 {
            let (a, b) = (
                here.get(&PrimaryKey::from(k)).unwrap(),
                workers.get(&PrimaryKey::from(k)).unwrap(),
            );
            assert_eq!((a.seq, a.type_id), (b.seq, b.type_id));
            assert_eq!(here.body(a), workers.body(b));
            assert_eq!(here.type_name(b.type_id), workers.type_name(b.type_id));
        }
    }

    #[test]
    fn the_first_failure_in_log_order_is_reported() {
        // Transaction 12 claims a stale version; transaction 13 does not decode; 14 is out of
        // sequence. Only 12 is reported, whichever thread prepared what.
        let (buf, mut records) = log(40, None, |t, seq, events| match t {
            12 => events[7] = draft(7, Some(3), 1024),
            14 => *seq = 99,
            _ => {}
        });
        let cut = records[12].payload.len() - 1;
        records[12].payload = records[12].payload.slice(..cut);
        let (here, workers) = both(&trust(None), &buf, &records);
        let (here, workers) = (here.err().unwrap(), workers.err().unwrap());
        assert_eq!(here, workers);
        assert!(here.contains("transaction 12 "), "{here}");
        assert!(here.contains("version"), "{here}");

        // Without it, the malformed one comes first.
        let (buf, mut records) = log(40, None, |t, seq, _| {
            if t == 14 {
                *seq = 99;
            }
        });
        records[12].payload = records[12].payload.slice(..cut);
        let (here, workers) = both(&trust(None), &buf, &records);
        let (here, workers) = (here.err().unwrap(), workers.err().unwrap());
        assert_eq!(here, workers);
        assert!(here.contains("malformed"), "{here}");
    }

    #[test]
    fn signed_logs_verify_on_workers_and_tampering_is_found() {
        let (root, other) = (
            &PrivateSignKey::generate(KeySize::Bit128),
            &PrivateSignKey::generate(KeySize::Bit128),
        );
        let (buf, records) = log(24, Some(root), |_, _, _| {});
        let (here, workers) = both(&trust(Some(root)), &buf, &records);
        assert_eq!(here.unwrap().len(), 50);
        assert_eq!(workers.unwrap().len(), 50);

        // Signed by a key that may not write at the root.
        let (buf, records) = log(24, Some(other), |_, _, _| {});
        let (here, workers) = both(&trust(Some(root)), &buf, &records);
        let (here, workers) = (here.err().unwrap(), workers.err().unwrap());
        assert_eq!(here, workers);
        assert!(here.contains("transaction 1 "), "{here}");

        // One flipped byte in an event body of transaction 17.
        let (buf, mut records) = log(24, Some(root), |_, _, _| {});
        let mut bytes = records[16].payload.to_vec();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        let mut whole = buf.to_vec();
        let start = records[16].offset as usize;
        whole[start..start + bytes.len()].copy_from_slice(&bytes);
        let buf = Bytes::from(whole);
        for r in &mut records {
            let start = r.offset as usize;
            r.payload = buf.slice(start..start + r.payload.len());
        }
        let (here, workers) = both(&trust(Some(root)), &buf, &records);
        let (here, workers) = (here.err().unwrap(), workers.err().unwrap());
        assert_eq!(here, workers);
        assert!(here.contains("transaction 17 "), "{here}");
    }
}
