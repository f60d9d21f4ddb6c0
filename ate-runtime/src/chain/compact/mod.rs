//! Compacting a chain's log: [`Chain::compact`](super::Chain::compact) rewrites it keeping
//! what [`plan`] says, headed by a [`checkpoint`], and swaps it in for the old one.

pub(crate) mod auto;
pub(crate) mod checkpoint;
pub(crate) mod plan;

use bytes::Bytes;

use crate::crypto::Hash;
use crate::event::DecodeError;
use crate::event::codec::{TransactionRef, encode_pruned};
use crate::log::LogError;
use crate::log::frame::{encode_frames, header_bytes};

use checkpoint::Checkpoint;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// The last transaction the compaction judged: what came after it was kept as it was.
    pub upto: u64,
    /// Transactions in the log before and after.
    pub transactions_before: u64,
    /// Transactions in the log after.
    pub transactions_after: u64,
    /// Events (record versions and tombstones) up to `upto`, before.
    pub events_before: u64,
    /// Events up to `upto`, after.
    pub events_after: u64,
    /// Records dropped whole (deleted, and nothing kept depends on them) by this compaction.
    pub retired: u64,
    /// The log's bytes before.
    pub bytes_before: u64,
    /// The log's bytes after.
    pub bytes_after: u64,
}

/// Why a compaction did not happen (the chain goes on with its log as it was).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The chain is closed or poisoned, or its writer is gone.
    #[error(transparent)]
    Commit(#[from] super::CommitError),
    /// The log's store could not write the compacted log or put it in place.
    #[error("the compacted log could not be put in place: {0}")]
    Log(#[source] LogError),
    /// The chain's transactions do not decode (its log was changed behind its back).
    #[error("a transaction of the chain does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The compacted log does not replay to a view (a fault of the compaction: nothing was
    /// swapped in).
    #[error("the compacted log does not replay: {0}")]
    Replay(#[source] Box<super::OpenError>),
    /// The compaction's task stopped before it finished.
    #[error("the compaction stopped before it finished")]
    Stopped,
}

/// A compacted log, built from a chain's transactions.
#[derive(Debug)]
pub(crate) struct Built {
    /// The whole log: its header, the checkpoint and the kept transactions' frames.
    pub contents: Bytes,
    /// What was done (the byte counts are filled in by the swap).
    pub report: CompactReport,
}

/// Builds the compacted log of a chain whose hash is `chain`, from its transactions `txs`
/// (every one it holds, in order, as stored: kept ones of an earlier compaction pruned, maybe)
/// and its current checkpoint's payload (`None` if never compacted), judging those numbered up
/// to `upto`.
///
/// # Errors
///
/// A transaction or checkpoint that does not decode (the chain replayed it, so this happens
/// only with a log changed behind the chain's back).
pub(crate) fn build(
    chain: &Hash,
    previous: Option<&[u8]>,
    txs: &[(u64, Bytes)],
    upto: u64,
) -> Result<Built, DecodeError> {
    let previous = match previous {
        Some(p) => Some(Checkpoint::decode(p).map_err(|_| DecodeError::UnknownPayloadKind(2))?),
        None => None,
    };
    let upto = upto.max(previous.as_ref().map_or(0, |c| c.upto));
    let judged = txs.partition_point(|(seq, _)| *seq <= upto);
    let decoded = txs[..judged]
        .iter()
        .map(|(_, p)| TransactionRef::decode_stored(p))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = plan::plan(decoded);
    let mut kept: Vec<(u64, Bytes)> = Vec::with_capacity(plan.kept.len());
    let by_seq = |seq: u64| {
        txs[..judged]
            .binary_search_by_key(&seq, |(s, _)| *s)
            .map(|i| &txs[i].1)
    };
    for (seq, mask) in &plan.kept {
        let Ok(payload) = by_seq(*seq) else { continue };
        let payload = match mask {
            None => payload.clone(),
            Some(mask) => Bytes::from(encode_pruned(payload, mask)?),
        };
        kept.push((*seq, payload));
    }
    let mut retired = plan.retired.clone();
    if let Some(c) = &previous {
        retired.extend_from_slice(&c.retired);
        retired.sort_unstable();
        retired.dedup();
    }
    let digest = checkpoint::digest(
        chain,
        upto,
        kept.iter().map(|(seq, p)| (*seq, &p[..])),
        &retired,
    );
    let head = Checkpoint {
        upto,
        kept: kept.len() as u64,
        retired,
        digest,
    }
    .encode();
    let mut payloads: Vec<&[u8]> = Vec::with_capacity(1 + kept.len() + txs.len() - judged);
    payloads.push(&head);
    payloads.extend(kept.iter().map(|(_, p)| &p[..]));
    payloads.extend(txs[judged..].iter().map(|(_, p)| &p[..]));
    let contents = log_of(&payloads);
    let report = CompactReport {
        upto,
        transactions_before: txs.len() as u64,
        transactions_after: (kept.len() + txs.len() - judged) as u64,
        events_before: plan.events_before,
        events_after: plan.events_after,
        retired: plan.retired.len() as u64,
        ..CompactReport::default()
    };
    Ok(Built { contents, report })
}

/// A whole log holding `payloads`, in order: its header and their frames.
pub(crate) fn log_of(payloads: &[&[u8]]) -> Bytes {
    let frames = encode_frames(payloads);
    let mut contents = Vec::with_capacity(header_bytes().len() + frames.len());
    contents.extend_from_slice(&header_bytes());
    contents.extend_from_slice(&frames);
    Bytes::from(contents)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::chain::trust::ChainTrust;
    use crate::crypto::{KeySize, PrivateSignKey};
    use crate::event::codec::{TransactionRef, encode_pruned};
    use crate::event::{BodyFormat, DecodeError, EventDraft, PrimaryKey, encode_transaction};
    use crate::trust::meta::{TxSealer, event_hashes};
    use crate::trust::{TrustError, TrustPolicy};

    fn ev(key: u128) -> EventDraft {
        EventDraft {
            key: PrimaryKey::from(key),
            timestamp_ms: 1,
            tombstone: false,
            parent: None,
            type_name: "t.T".into(),
            format: BodyFormat::MessagePack,
            meta: Vec::new(),
            body: Some(Bytes::from(vec![key as u8; 40])),
        }
    }

    fn trust(root: &[&PrivateSignKey]) -> ChainTrust {
        ChainTrust {
            policy: TrustPolicy::new("pruned", root.iter().map(|k| k.hash()).collect()),
            plugins: Default::default(),
            server_key: None,
        }
    }

    /// Three events; `a` signs events 0 and 1, `b` signs 1 and 2.
    fn signed(a: &PrivateSignKey, b: &PrivateSignKey) -> Vec<u8> {
        let events = vec![ev(1), ev(2), ev(3)];
        let chain = TrustPolicy::new("pruned", Vec::new())
            .chain_hash()
            .to_owned();
        let trailers = TxSealer {
            signers: vec![(a, vec![0, 1]), (b, vec![1, 2])],
            ..TxSealer::default()
        }
        .seal(&chain, &event_hashes(&events))
        .expect("sealed");
        encode_transaction(7, &events, &trailers)
    }

    #[test]
    fn a_pruned_transaction_keeps_its_signatures_verifiable() {
        let (a, b) = (
            PrivateSignKey::generate(KeySize::Bit128),
            PrivateSignKey::generate(KeySize::Bit128),
        );
        let whole = signed(&a, &b);
        let pruned = encode_pruned(&whole, &[false, true, false]).expect("pruned");
        assert!(pruned.len() < whole.len());
        // Only a stored log may hold one.
        assert_eq!(
            TransactionRef::decode(&pruned).map(|_| ()),
            Err(DecodeError::UnknownPayloadKind(3))
        );
        let tx = TransactionRef::decode_stored(&pruned).expect("decodes");
        assert_eq!(tx.seq, 7);
        assert_eq!(tx.events.len(), 1);
        assert_eq!(tx.events[0].key, PrimaryKey::from(2u128));
        let verified = trust(&[&a, &b]).verify(&tx, None, None).expect("verifies");
        // Both signed the kept event, now at index 0.
        let signers: Vec<_> = verified.signers.of(0).copied().collect();
        assert!(signers.contains(&a.hash()) && signers.contains(&b.hash()));

        // Keeping event 2 only: `a` signed none of what is kept.
        let tx2 = encode_pruned(&whole, &[false, false, true]).expect("pruned");
        let tx2 = TransactionRef::decode_stored(&tx2).expect("decodes");
        let verified = trust(&[&a, &b]).verify(&tx2, None, None).expect("verifies");
        assert_eq!(
            verified.signers.of(0).copied().collect::<Vec<_>>(),
            vec![b.hash()]
        );
    }

    #[test]
    fn a_changed_pruned_hash_or_kept_event_breaks_the_digest() {
        let (a, b) = (
            PrivateSignKey::generate(KeySize::Bit128),
            PrivateSignKey::generate(KeySize::Bit128),
        );
        let whole = signed(&a, &b);
        let pruned = encode_pruned(&whole, &[false, true, false]).expect("pruned");
        // The first slot's hash starts after kind, seq, count and the slot tag.
        let mut bad = pruned.clone();
        bad[1 + 8 + 4 + 1] ^= 1;
        let tx = TransactionRef::decode_stored(&bad).expect("still decodes");
        assert!(matches!(
            trust(&[&a]).verify(&tx, None, None),
            Err(TrustError::TxDigestMismatch)
        ));
        // A byte of the kept event's body (it ends with it, before the trailers).
        let tx = TransactionRef::decode_stored(&pruned).expect("decodes");
        let at = tx.events[0].raw.as_ptr() as usize - pruned.as_ptr() as usize
            + tx.events[0].raw.len()
            - 1;
        let mut bad = pruned.clone();
        bad[at] ^= 1;
        let tx = TransactionRef::decode_stored(&bad).expect("still decodes");
        assert!(matches!(
            trust(&[&a]).verify(&tx, None, None),
            Err(TrustError::TxDigestMismatch)
        ));
    }

    #[test]
    fn a_pruned_transaction_must_keep_some_and_prune_some() {
        let whole = encode_transaction(1, &[ev(1), ev(2)], &[]);
        for keep in [&[true, true][..], &[false, false], &[true]] {
            assert_eq!(encode_pruned(&whole, keep), Err(DecodeError::NothingPruned));
        }
        // A stored payload claiming every slot pruned is refused too.
        let ok = encode_pruned(&whole, &[true, false]).expect("pruned");
        let mut none_kept = ok[..13].to_vec();
        for _ in 0..2 {
            none_kept.push(1);
            none_kept.extend_from_slice(&[0u8; 32]);
        }
        none_kept.extend_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            TransactionRef::decode_stored(&none_kept).map(|_| ()),
            Err(DecodeError::NothingPruned)
        );
        // An unknown slot tag, and a count the bytes cannot hold.
        let mut bad = ok.clone();
        bad[13] = 9;
        assert_eq!(
            TransactionRef::decode_stored(&bad).map(|_| ()),
            Err(DecodeError::UnknownSlot(9))
        );
        let mut bad = ok;
        bad[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            TransactionRef::decode_stored(&bad),
            Err(DecodeError::Truncated { .. })
        ));
    }

    /// A version of record `key` replacing the one `previous` wrote.
    fn update(key: u128, previous: u64) -> EventDraft {
        let mut e = ev(key);
        e.meta.push(crate::event::MetaEntry {
            tag: crate::trust::meta::TAG_PREVIOUS,
            value: Bytes::copy_from_slice(&previous.to_le_bytes()),
        });
        e
    }

    /// What a server's compacted log gives a replica to rebuild from: its checkpoint and every
    /// transaction it holds. A changed checkpoint, a transaction left out or changed, or a
    /// wrong end is refused, and the chain stays as it was.
    #[tokio::test]
    async fn a_rebuild_refuses_what_does_not_match_and_leaves_the_chain_as_it_was() {
        use crate::chain::{AteConfig, ChainBuilder, ChainKey};
        let chain = ChainBuilder::new(&AteConfig::in_memory())
            .await
            .build()
            .open(&ChainKey::from("rebuild"))
            .await
            .expect("open");
        for k in 1..=3u128 {
            chain
                .commit_transaction(vec![ev(k)], Vec::new())
                .await
                .expect("create");
        }
        let mut last = [1u64, 2, 3];
        for _ in 0..3 {
            let seq = chain
                .commit_transaction(
                    (1..=3u128)
                        .map(|k| update(k, last[k as usize - 1]))
                        .collect(),
                    Vec::new(),
                )
                .await
                .expect("update");
            last = [seq; 3];
        }
        chain
            .commit_transaction(vec![ev(9)], Vec::new())
            .await
            .expect("create");
        // Drops the middle versions; the last one prunes none.
        chain.compact().await.expect("compact");
        let (upto, checkpoint) = chain.checkpoint();
        let checkpoint = checkpoint.expect("compacted");
        let txs = chain
            .inner
            .shared
            .history
            .read()
            .payloads_from(1, usize::MAX);
        let through = chain.last_seq();
        assert_eq!(upto, through);
        assert!(txs.len() >= 2);

        let mut bad_digest = checkpoint.to_vec();
        let n = bad_digest.len();
        bad_digest[n - 1] ^= 1;
        let mut one_left_out = txs.clone();
        one_left_out.remove(0);
        let mut changed = txs.clone();
        let mut body = changed[0].1.to_vec();
        let at = body.len() - 3;
        body[at] ^= 1;
        changed[0].1 = Bytes::from(body);
        let cases = [
            (
                "a changed checkpoint",
                Bytes::from(bad_digest),
                txs.clone(),
                through,
            ),
            (
                "a transaction left out",
                checkpoint.clone(),
                one_left_out,
                through,
            ),
            (
                "a changed transaction",
                checkpoint.clone(),
                changed,
                through,
            ),
            ("a wrong end", checkpoint.clone(), txs.clone(), through + 5),
        ];
        let before = chain.last_seq();
        for (what, cp, txs, through) in cases {
            assert!(chain.rebuild(cp, txs, through).await.is_err(), "{what}");
            assert_eq!(chain.last_seq(), before, "{what}");
            assert_eq!(chain.len(), 4, "{what}: the chain is as it was");
        }
        chain
            .rebuild(checkpoint, txs, through)
            .await
            .expect("the server's own log rebuilds");
        assert_eq!((chain.len(), chain.last_seq()), (4, through));
    }
}
