//! The keys trailer and the key directory checked against the events that use them.
//!
//! A transaction's encrypted bodies share one data key per read key; its wrapped form is in the
//! keys trailer ([`TxKeys`]), once per transaction. The trailer is not signed, so each encrypted
//! event (which is) binds its entry by id ([`key_entry_id`]): an entry that was swapped, changed,
//! removed or added is refused here, before anything is appended and on every open.

use std::sync::Arc;

use crate::crypto::{Hash, PublicEncryptKey};

use super::meta::{CheckedMeta, TxDirectory, TxKey, TxKeys, key_entry_id};
use super::{ReadKey, ReadOption, TrustError};

/// Checks the keys trailer `keys` of a transaction against the trust metadata of its events
/// (`trust`: the events that have metadata, by index, as [`TrustPolicy::verify`] lists them):
/// every encrypted event must bind, by id, the trailer's entry for its read key, and every entry
/// must be bound by some event. Returns the entries, for the view.
///
/// When an event's metadata did not decode, nothing is checked here: the transaction is refused
/// with that error when its turn comes.
///
/// [`TrustPolicy::verify`]: super::TrustPolicy
pub(crate) fn check_keys(
    keys: Option<TxKeys>,
    trust: &[(usize, Result<CheckedMeta, TrustError>)],
) -> Result<Option<Arc<[TxKey]>>, TrustError> {
    check_keys_of(keys, trust, false)
}

/// [`check_keys`] for the events of a transaction, all of them or (`pruned`) those a compaction
/// kept: an entry bound only by a dropped event is then unused here, and not an error.
pub(crate) fn check_keys_of(
    keys: Option<TxKeys>,
    trust: &[(usize, Result<CheckedMeta, TrustError>)],
    pruned: bool,
) -> Result<Option<Arc<[TxKey]>>, TrustError> {
    if trust.iter().any(|(_, t)| t.is_err()) {
        return Ok(None);
    }
    let entries: Vec<TxKey> = keys.map(|k| k.keys).unwrap_or_default();
    let ids: Vec<Hash> = entries.iter().map(key_entry_id).collect();
    let mut used = vec![false; entries.len()];
    // Events mostly bind the entry the event before them bound.
    let mut last: Option<usize> = None;
    for (i, t) in trust {
        let Ok(t) = t else { continue };
        let (Some(read_key), Some(id)) = (t.reader, t.key_entry) else {
            continue;
        };
        let index = *i as u32;
        let at = match last.filter(|at| ids[*at] == id) {
            Some(at) => Some(at),
            None => ids.iter().position(|e| *e == id),
        };
        match at {
            Some(at) if entries[at].read_key == read_key => {
                used[at] = true;
                last = Some(at);
            }
            Some(at) => {
                return Err(TrustError::KeyEntryOfAnotherReader {
                    index,
                    read_key,
                    entry_reader: entries[at].read_key,
                });
            }
            None if entries.iter().any(|e| e.read_key == read_key) => {
                return Err(TrustError::KeyEntryMismatch { index, read_key });
            }
            None => return Err(TrustError::MissingKeyEntry { index, read_key }),
        }
    }
    if let Some(at) = used.iter().position(|u| !u)
        && !pruned
    {
        return Err(TrustError::UnusedKeyEntry {
            read_key: entries[at].read_key,
        });
    }
    Ok((!entries.is_empty()).then(|| entries.into()))
}

/// Checks the key directory `directory` of a transaction against the rules of its events
/// (`trust`, as for [`check_keys`]): every NTRU public read key an event's explicit rules name
/// must be in it, and it must hold nothing else. Returns its keys, for the view.
pub(crate) fn check_directory(
    directory: Option<TxDirectory>,
    trust: &[(usize, Result<CheckedMeta, TrustError>)],
) -> Result<Option<Arc<[PublicEncryptKey]>>, TrustError> {
    check_directory_of(directory, trust, false)
}

/// [`check_directory`] for the events of a transaction, all of them or (`pruned`) those a
/// compaction kept: a key named only by a dropped event is then unused here, and not an error.
pub(crate) fn check_directory_of(
    directory: Option<TxDirectory>,
    trust: &[(usize, Result<CheckedMeta, TrustError>)],
    pruned: bool,
) -> Result<Option<Arc<[PublicEncryptKey]>>, TrustError> {
    if trust.iter().any(|(_, t)| t.is_err()) {
        return Ok(None);
    }
    // Ascending by id (checked when decoded).
    let keys: Vec<PublicEncryptKey> = directory.map(|d| d.keys).unwrap_or_default();
    let mut used = vec![false; keys.len()];
    // Records written together mostly share their rules.
    let mut last: Option<Hash> = None;
    for (i, t) in trust {
        let Ok(CheckedMeta {
            auth: Some(auth), ..
        }) = t
        else {
            continue;
        };
        let ReadOption::Specific(ReadKey::Public(pk)) = &auth.read else {
            continue;
        };
        let id = pk.id();
        if last == Some(id) {
            continue;
        }
        match keys.binary_search_by_key(&id, |k| k.hash()) {
            Ok(at) => used[at] = true,
            Err(_) => {
                return Err(TrustError::MissingDirectoryEntry {
                    index: *i as u32,
                    read_key: id,
                });
            }
        }
        last = Some(id);
    }
    if let Some(at) = used.iter().position(|u| !u)
        && !pruned
    {
        return Err(TrustError::UnusedDirectoryEntry {
            read_key: keys[at].hash(),
        });
    }
    Ok((!keys.is_empty()).then(|| keys.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::EncryptKey;
    use crate::trust::meta::{TRAILER_KEYS, keys_from, keys_trailer};

    fn entry(read: &EncryptKey) -> TxKey {
        TxKey {
            read_key: read.hash(),
            wrapped: read.wrap(&EncryptKey::generate()),
        }
    }

    fn bound(read_key: Hash, entry: &TxKey) -> CheckedMeta {
        CheckedMeta {
            reader: Some(read_key),
            key_entry: Some(key_entry_id(entry)),
            ..CheckedMeta::default()
        }
    }

    fn read(value: &[u8]) -> Result<Option<TxKeys>, TrustError> {
        keys_from([(TRAILER_KEYS, value)])
    }

    #[test]
    fn malformed_trailers_are_refused() {
        let (a, b) = (EncryptKey::generate(), EncryptKey::generate());
        let good = keys_trailer(&TxKeys {
            keys: vec![entry(&a)],
        });
        assert!(read(&good.value).unwrap().is_some());
        assert_eq!(
            keys_from([
                (TRAILER_KEYS, &good.value[..]),
                (TRAILER_KEYS, &good.value[..])
            ]),
            Err(TrustError::DuplicateKeysTrailer)
        );
        let malformed = |r: Result<Option<TxKeys>, TrustError>| {
            matches!(r, Err(TrustError::MalformedKeys { .. }))
        };
        assert!(malformed(read(b"\x93garbage")));
        assert!(malformed(read(&good.value[..good.value.len() - 1])));
        assert!(malformed(read(
            &keys_trailer(&TxKeys { keys: Vec::new() }).value
        )));
        // The same value with a wider length prefix is not canonical.
        let mut wide = rmp_serde::to_vec(&TxKeys {
            keys: vec![entry(&a)],
        })
        .unwrap();
        assert_eq!(wide[0], 0x91); // [keys]
        assert_eq!(wide[1], 0x91); // [entry]
        wide.splice(1..2, [0xdc, 0x00, 0x01]);
        assert!(rmp_serde::from_slice::<TxKeys>(&wide).is_ok());
        assert!(malformed(read(&wide)));
        // An entry whose key is wrapped for another reader.
        let mut relabelled = entry(&a);
        relabelled.read_key = b.hash();
        assert!(malformed(read(
            &keys_trailer(&TxKeys {
                keys: vec![relabelled]
            })
            .value
        )));
        let twice = keys_trailer(&TxKeys {
            keys: vec![entry(&a), entry(&a)],
        });
        assert_eq!(
            read(&twice.value),
            Err(TrustError::DuplicateKeyEntry { read_key: a.hash() })
        );
    }

    #[test]
    fn events_must_bind_the_entry_of_their_read_key() {
        let (a, b) = (EncryptKey::generate(), EncryptKey::generate());
        let (ea, eb) = (entry(&a), entry(&b));
        let both = || {
            Some(TxKeys {
                keys: vec![ea.clone(), eb.clone()],
            })
        };
        let ok = |i, m| (i, Ok(m));
        // Plaintext events need nothing; an empty transaction keeps no keys.
        assert_eq!(check_keys(None, &[ok(0, CheckedMeta::default())]), Ok(None));
        let found = check_keys(
            both(),
            &[ok(0, bound(a.hash(), &ea)), ok(3, bound(b.hash(), &eb))],
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            check_keys(None, &[ok(2, bound(a.hash(), &ea))]),
            Err(TrustError::MissingKeyEntry {
                index: 2,
                read_key: a.hash()
            })
        );
        assert_eq!(
            check_keys(both(), &[ok(0, bound(a.hash(), &entry(&a)))]),
            Err(TrustError::KeyEntryMismatch {
                index: 0,
                read_key: a.hash()
            })
        );
        assert_eq!(
            check_keys(both(), &[ok(1, bound(a.hash(), &eb))]),
            Err(TrustError::KeyEntryOfAnotherReader {
                index: 1,
                read_key: a.hash(),
                entry_reader: b.hash()
            })
        );
        assert_eq!(
            check_keys(both(), &[ok(0, bound(a.hash(), &ea))]),
            Err(TrustError::UnusedKeyEntry { read_key: b.hash() })
        );
        // Metadata that did not decode is reported by the rest of validation.
        let failed = (0, Err(TrustError::RetiredMetadata(3)));
        assert_eq!(check_keys(both(), &[failed]), Ok(None));
    }
}
