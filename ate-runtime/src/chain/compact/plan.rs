//! Which transactions and events a compaction keeps.
//!
//! Replay checks every write against the rules in force when it was written: an update against
//! its record's previous version's rules (its own, else its parent's, else the root's), a new
//! record against its parent's, a move against both places. A compacted log must replay to the
//! same answers, so keeping only each record's latest version is not enough. For the
//! transactions up to the cut-off the plan keeps:
//!
//! - of each record it keeps, the first version, every version whose rules or parent differ
//!   from the version before it, and the latest version (a tombstone included): between two
//!   kept versions the rules are those of the earlier one, so an update checked against "the
//!   latest kept version before it" gets the answer the whole log gave;
//! - every record live at the cut-off, and every record a kept version names as its parent
//!   (to a fixed point: a kept child needs its parent present, with the rules of the time);
//! - every version of a schema record (they only grow, and are few).
//!
//! Every other record was deleted and nothing kept depends on it: it is dropped whole, its
//! tombstone included, and its key is *retired* (the checkpoint lists it, so a new record can
//! never take the key, as the tombstone ensured).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::event::PrimaryKey;
use crate::event::codec::TransactionRef;
use crate::schema::SCHEMA_TYPE;
use crate::trust::meta::TAG_AUTHORIZATION;

/// What a compaction keeps of the transactions up to its cut-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The kept transactions by sequence number: `None` when every event is kept, else which
    /// ones are (the others are pruned to their hashes).
    pub kept: BTreeMap<u64, Option<Vec<bool>>>,
    /// The keys of the records dropped whole, ascending.
    pub retired: Vec<PrimaryKey>,
    /// Events looked at.
    pub events_before: u64,
    /// Events kept.
    pub events_after: u64,
}

/// One version of a record, as the plan sees it.
#[derive(Debug, Clone, Copy)]
struct Version<'a> {
    seq: u64,
    index: u32,
    tombstone: bool,
    /// Its explicit rules, encoded (`None`: inherits); the encoding is canonical.
    auth: Option<&'a [u8]>,
    parent: Option<PrimaryKey>,
}

impl Version<'_> {
    /// Whether replay could judge a write after this version differently from one after the
    /// version before it.
    fn changes_rules(&self, before: &Version<'_>) -> bool {
        self.tombstone || self.auth != before.auth || self.parent != before.parent
    }
}

/// Plans the compaction of `txs` (every transaction up to the cut-off, in log order, each one
/// that replay accepted: the plan does not check them again).
pub fn plan<'a>(txs: impl IntoIterator<Item = TransactionRef<'a>>) -> Plan {
    let mut versions: HashMap<PrimaryKey, Vec<Version<'a>>> = HashMap::new();
    let mut schema: HashSet<PrimaryKey> = HashSet::new();
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    let mut events_before = 0u64;
    for tx in txs {
        counts.insert(tx.seq, tx.events.len() as u32);
        for (i, ev) in tx.events.iter().enumerate() {
            events_before += 1;
            if ev.type_name == SCHEMA_TYPE {
                schema.insert(ev.key);
            }
            versions.entry(ev.key).or_default().push(Version {
                seq: tx.seq,
                index: i as u32,
                tombstone: ev.tombstone,
                auth: ev.meta(TAG_AUTHORIZATION),
                parent: ev.parent.map(|l| l.parent),
            });
        }
    }

    // The records kept: live ones and schema records, then the parents kept versions name.
    let mut kept_records: HashSet<PrimaryKey> = versions
        .iter()
        .filter(|(k, v)| schema.contains(k) || v.last().is_some_and(|v| !v.tombstone))
        .map(|(k, _)| *k)
        .collect();
    let mut todo: Vec<PrimaryKey> = kept_records.iter().copied().collect();
    let mut kept_versions: Vec<(u64, u32)> = Vec::new();
    while let Some(key) = todo.pop() {
        let Some(vs) = versions.get(&key) else {
            // A parent never written in this part of the log (written after the cut-off, or
            // never: replay refuses such a child anyway).
            continue;
        };
        let all = schema.contains(&key);
        for (n, v) in vs.iter().enumerate() {
            let keep = all || n == 0 || n + 1 == vs.len() || v.changes_rules(&vs[n - 1]);
            if !keep {
                continue;
            }
            kept_versions.push((v.seq, v.index));
            if let Some(p) = v.parent
                && kept_records.insert(p)
            {
                todo.push(p);
            }
        }
    }

    let mut retired: Vec<PrimaryKey> = versions
        .keys()
        .filter(|k| !kept_records.contains(k))
        .copied()
        .collect();
    retired.sort_unstable();

    kept_versions.sort_unstable();
    let events_after = kept_versions.len() as u64;
    let mut kept: BTreeMap<u64, Option<Vec<bool>>> = BTreeMap::new();
    let mut at = 0;
    while at < kept_versions.len() {
        let seq = kept_versions[at].0;
        let mut mask = vec![false; counts[&seq] as usize];
        while at < kept_versions.len() && kept_versions[at].0 == seq {
            mask[kept_versions[at].1 as usize] = true;
            at += 1;
        }
        let entry = if mask.iter().all(|k| *k) {
            None
        } else {
            Some(mask)
        };
        kept.insert(seq, entry);
    }
    Plan {
        kept,
        retired,
        events_before,
        events_after,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::event::{BodyFormat, EventDraft, MetaEntry, ParentLink, encode_transaction};
    use crate::trust::meta::TAG_PREVIOUS;

    /// A version of `key` (`u128`), after `previous`, under `parent`, with rules `auth`.
    fn ev(
        key: u128,
        previous: Option<u64>,
        parent: Option<u128>,
        auth: Option<&[u8]>,
    ) -> EventDraft {
        let mut meta = Vec::new();
        if let Some(a) = auth {
            meta.push(MetaEntry {
                tag: TAG_AUTHORIZATION,
                value: Bytes::copy_from_slice(a),
            });
        }
        if let Some(p) = previous {
            meta.push(MetaEntry {
                tag: TAG_PREVIOUS,
                value: Bytes::copy_from_slice(&p.to_le_bytes()),
            });
        }
        EventDraft {
            key: PrimaryKey::from(key),
            timestamp_ms: 1,
            tombstone: false,
            parent: parent.map(|p| ParentLink {
                parent: PrimaryKey::from(p),
                collection: 1,
            }),
            type_name: "t.T".into(),
            format: BodyFormat::MessagePack,
            meta,
            body: Some(Bytes::from_static(b"\x91\x01")),
        }
    }

    fn tombstone(key: u128, previous: u64) -> EventDraft {
        let mut e = ev(key, Some(previous), None, None);
        e.tombstone = true;
        e.body = None;
        e
    }

    fn planned(txs: &[Vec<EventDraft>]) -> Plan {
        let payloads: Vec<Vec<u8>> = txs
            .iter()
            .enumerate()
            .map(|(i, evs)| encode_transaction(i as u64 + 1, evs, &[]))
            .collect();
        plan(
            payloads
                .iter()
                .map(|p| TransactionRef::decode(p).expect("decodes")),
        )
    }

    fn keys(ks: &[u128]) -> Vec<PrimaryKey> {
        ks.iter().map(|k| PrimaryKey::from(*k)).collect()
    }

    #[test]
    fn a_record_keeps_its_first_and_latest_version() {
        let mut txs = vec![vec![ev(1, None, None, None)]];
        for s in 1..10 {
            txs.push(vec![ev(1, Some(s), None, None)]);
        }
        let p = planned(&txs);
        assert_eq!(p.kept.keys().copied().collect::<Vec<_>>(), vec![1, 10]);
        assert!(p.retired.is_empty());
        assert_eq!((p.events_before, p.events_after), (10, 2));
    }

    #[test]
    fn versions_that_change_rules_or_parent_are_kept() {
        let txs = vec![
            vec![ev(1, None, None, None), ev(2, None, None, None)],
            vec![ev(1, Some(1), None, Some(b"a"))], // rules change
            vec![ev(1, Some(2), None, Some(b"a"))], // data only
            vec![ev(1, Some(3), Some(2), Some(b"a"))], // moved under 2
            vec![ev(1, Some(4), Some(2), Some(b"a"))], // data only
            vec![ev(1, Some(5), Some(2), Some(b"a"))], // latest
        ];
        let p = planned(&txs);
        assert_eq!(p.kept.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4, 6]);
        assert_eq!(p.kept[&1], None, "both events of the first transaction");
    }

    #[test]
    fn deleted_records_are_retired_unless_a_kept_one_names_them() {
        let txs = vec![
            // 1 and 2 are roots; 3 lives under 1; 4 under 2 and is deleted with it.
            vec![ev(1, None, None, None), ev(2, None, None, None)],
            vec![ev(3, None, Some(1), None), ev(4, None, Some(2), None)],
            vec![tombstone(1, 1), tombstone(2, 1), tombstone(4, 2)],
        ];
        let p = planned(&txs);
        assert_eq!(p.retired, keys(&[2, 4]), "nothing kept names 2 or 4");
        // 1 is kept (3's parent), its tombstone too; 3 is live.
        assert_eq!(p.kept[&1], Some(vec![true, false]));
        assert_eq!(p.kept[&2], Some(vec![true, false]));
        assert_eq!(p.kept[&3], Some(vec![true, false, false]));
        assert_eq!(p.events_after, 3);
    }

    #[test]
    fn parents_are_kept_to_a_fixed_point() {
        // 3 under 2 under 1; 1 and 2 deleted; 3 lives: all three are kept.
        let txs = vec![
            vec![ev(1, None, None, None)],
            vec![ev(2, None, Some(1), None)],
            vec![ev(3, None, Some(2), None)],
            vec![tombstone(2, 2), tombstone(1, 1)],
        ];
        let p = planned(&txs);
        assert!(p.retired.is_empty());
        assert_eq!(p.kept.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn schema_records_keep_every_version() {
        let mut s1 = ev(9, None, None, None);
        s1.type_name = SCHEMA_TYPE.into();
        let mut s2 = ev(9, Some(1), None, None);
        s2.type_name = SCHEMA_TYPE.into();
        let mut s3 = ev(9, Some(2), None, None);
        s3.type_name = SCHEMA_TYPE.into();
        let p = planned(&[vec![s1], vec![s2], vec![s3]]);
        assert_eq!(p.kept.len(), 3);
    }
}
