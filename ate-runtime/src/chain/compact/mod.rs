//! Compacting a chain's log (being built; `docs/FORMAT.md` will describe the checkpoint once
//! a compacted log can be written and opened).

pub(crate) mod plan;

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
}
