//! The write path of a commit: rules, versions, encryption, hashes and signatures.
//!
//! For each staged write, in order: the version it replaces, its effective read rule and the
//! write rule it must satisfy are computed against the view plus the writes ahead of it in the
//! same transaction (under the view's read lock, which is cheap); then, without the lock, bodies
//! are transformed and encrypted (one fresh data key per read key per transaction, wrapped once),
//! events are encoded and hashed, and each signing key signs once over the hashes it covers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::DioError;
use super::staging::Staged;
use crate::chain::Chain;
use crate::crypto::{EncryptKey, Hash, PrivateSignKey};
use crate::event::{BodyFormat, EventDraft, PrimaryKey, TxTrailer, codec, now_ms};
use crate::session::AteSession;
use crate::trust::meta::{
    Confidentiality, EventTrust, TxSignature, body_aad, signature_trailer, signed_message,
};
use crate::trust::{
    Authorization, Overlay, ReadKey, ReadOption, RecordState, TrustLookup, WriteOption,
};

/// A transaction ready for the writer.
pub(super) struct Sealed {
    pub drafts: Vec<EventDraft>,
    pub trailers: Vec<TxTrailer>,
    pub hashes: Option<Vec<Hash>>,
}

struct Planned {
    key: PrimaryKey,
    op: Staged,
    previous: Option<u64>,
    read: ReadOption,
    signer: Option<PrivateSignKey>,
}

pub(super) fn seal(
    chain: &Chain,
    session: &AteSession,
    versions: &HashMap<PrimaryKey, u64>,
    ops: Vec<(PrimaryKey, Staged)>,
) -> Result<Sealed, DioError> {
    let policy = chain.policy();
    // Phase 1, under the read lock: versions and rules.
    let planned: Vec<Planned> = {
        let view = chain.view().read();
        let mut overlay = Overlay::new();
        let mut out = Vec::with_capacity(ops.len());
        for (key, op) in ops {
            let lookup = overlay.over(&*view);
            let current = lookup.record(&key);
            // The newest version this Dio knows of: the one its Dao was read at, or the one it
            // committed itself since.
            let previous = current.as_ref().filter(|c| c.seq != 0).map(|c| {
                op.previous
                    .max(versions.get(&key).copied())
                    .unwrap_or(c.seq)
            });
            let parent = op.parent.map(|l| l.parent).or_else(|| {
                if op.body.is_none() {
                    current.as_ref().and_then(|c| c.parent)
                } else {
                    None
                }
            });
            let required = policy.required_write(&lookup, &key, parent.as_ref());
            let signer = match &required {
                WriteOption::Everyone => None,
                WriteOption::Nobody => return Err(DioError::Final { key }),
                r => Some(
                    session
                        .write_keys()
                        .find(|k| r.allows(&k.hash()))
                        .cloned()
                        .ok_or(DioError::MissingWriteKey { key })?,
                ),
            };
            let explicit = (!op.auth.is_inherit()).then_some(&op.auth);
            let read = policy.read_for(&lookup, explicit, parent.as_ref());
            drop(lookup);
            let state = op.body.as_ref().map(|_| RecordState {
                // Written by this transaction: its number is not known yet and is never 0.
                seq: 0,
                parent,
                auth: explicit.cloned().map(Arc::new),
            });
            overlay.set(key, state);
            out.push(Planned {
                key,
                op,
                previous,
                read,
                signer,
            });
        }
        out
    };

    // Phase 2, without locks: bodies, metadata, hashes, signatures.
    let chain_key = chain.key().as_str();
    let ts = now_ms();
    let mut data_keys: HashMap<Hash, (EncryptKey, crate::crypto::WrappedKey)> = HashMap::new();
    let mut drafts = Vec::with_capacity(planned.len());
    let mut signers: BTreeMap<Hash, (PrivateSignKey, Vec<u32>)> = BTreeMap::new();
    for (i, p) in planned.into_iter().enumerate() {
        let mut trust = EventTrust {
            auth: (!p.op.auth.is_inherit()).then(|| p.op.auth.clone()),
            previous: p.previous,
            ..EventTrust::default()
        };
        let body = match p.op.body {
            None => None,
            Some(plain) => {
                if !crate::schema::indexes_for(&p.op.type_name).is_empty() {
                    let why = if matches!(p.read, ReadOption::Specific(_)) {
                        Some("encrypted")
                    } else if !chain.transformers().is_empty() {
                        Some("transformed")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        return Err(DioError::Unindexable {
                            key: p.key,
                            type_name: p.op.type_name.to_string(),
                            why,
                        });
                    }
                }
                let mut body = plain.to_vec();
                for t in chain.transformers() {
                    body = t.encode(&body).map_err(|reason| DioError::Transform {
                        key: p.key,
                        id: t.id(),
                        reason,
                    })?;
                    trust.transforms.push(t.id());
                }
                if let ReadOption::Specific(rk) = &p.read {
                    let read_key = rk.hash();
                    let (data_key, wrapped) = match data_keys.get(&read_key) {
                        Some(k) => k.clone(),
                        None => {
                            let data_key = EncryptKey::generate();
                            let wrapped = match rk {
                                ReadKey::Symmetric(h) => session
                                    .read_key(h)
                                    .ok_or(DioError::MissingReadKey {
                                        key: p.key,
                                        read_key,
                                    })?
                                    .wrap(&data_key),
                                ReadKey::Public(pk) => pk.wrap(&data_key),
                            };
                            data_keys.insert(read_key, (data_key.clone(), wrapped.clone()));
                            (data_key, wrapped)
                        }
                    };
                    let sealed = data_key.encrypt(&body_aad(chain_key, &p.key), &body);
                    trust.confidentiality = Some(Confidentiality {
                        read_key,
                        wrapped,
                        nonce: sealed.nonce,
                    });
                    body = sealed.ciphertext;
                }
                Some(Bytes::from(body))
            }
        };
        let mut draft = EventDraft {
            key: p.key,
            timestamp_ms: ts,
            tombstone: body.is_none(),
            parent: p.op.parent,
            type_name: p.op.type_name,
            format: BodyFormat::MessagePack,
            meta: trust.to_meta(),
            body,
        };
        for l in chain.linters() {
            draft.meta.extend(l.lint(&draft));
        }
        if let Some(k) = p.signer {
            signers
                .entry(k.hash())
                .or_insert_with(|| (k, Vec::new()))
                .1
                .push(i as u32);
        }
        drafts.push(draft);
    }

    if signers.is_empty() {
        return Ok(Sealed {
            drafts,
            trailers: Vec::new(),
            hashes: None,
        });
    }
    let hashes: Vec<Hash> = drafts
        .iter()
        .map(|d| {
            let mut raw = Vec::with_capacity(codec::encoded_event_len(d));
            codec::encode_event(d, &mut raw);
            Hash::of(&raw)
        })
        .collect();
    let chain_hash = *policy.chain_hash();
    let trailers = signers
        .into_values()
        .map(|(key, covers)| {
            let covered: Vec<Hash> = covers.iter().map(|i| hashes[*i as usize]).collect();
            let public_key = key.as_public_key();
            let msg = signed_message(
                public_key.algorithm().as_u8(),
                &chain_hash,
                &covers,
                &covered,
            );
            signature_trailer(&TxSignature {
                chain: chain_hash,
                public_key,
                covers,
                hashes: covered,
                signature: key.sign(&msg),
            })
        })
        .collect();
    Ok(Sealed {
        drafts,
        trailers,
        hashes: Some(hashes),
    })
}

/// Reads a stored body back to plaintext: decrypts it with the session's keys and reverses the
/// transformers.
pub(super) fn open_body(
    chain: &Chain,
    session: &AteSession,
    key: PrimaryKey,
    trust: &EventTrust,
    body: Bytes,
) -> Result<Bytes, DioError> {
    let mut body = match &trust.confidentiality {
        None => body,
        Some(c) => {
            let data_key = session.unwrap_data_key(&c.read_key, &c.wrapped).ok_or(
                DioError::MissingReadKey {
                    key,
                    read_key: c.read_key,
                },
            )?;
            let sealed = crate::crypto::EncryptedData {
                nonce: c.nonce,
                ciphertext: body.to_vec(),
            };
            let plain = data_key
                .decrypt(&body_aad(chain.key().as_str(), &key), &sealed)
                .map_err(|e| DioError::DecryptFailed {
                    key,
                    reason: e.to_string(),
                })?;
            Bytes::from(plain)
        }
    };
    for id in trust.transforms.iter().rev() {
        let t = chain
            .transformers()
            .iter()
            .find(|t| t.id() == *id)
            .ok_or_else(|| DioError::Transform {
                key,
                id: *id,
                reason: "no transformer with this id is registered".into(),
            })?;
        body = Bytes::from(t.decode(&body).map_err(|reason| DioError::Transform {
            key,
            id: *id,
            reason,
        })?);
    }
    Ok(body)
}

/// The default rules of a new record of a type (from `#[derive(Dao)]`).
pub(super) fn default_auth(reg: Option<&crate::schema::TypeRegistration>) -> Authorization {
    use crate::schema::AccessDefault;
    let Some(reg) = reg else {
        return Authorization::default();
    };
    Authorization {
        read: match reg.read {
            AccessDefault::Everyone => ReadOption::Everyone,
            _ => ReadOption::Inherit,
        },
        write: match reg.write {
            AccessDefault::Everyone => WriteOption::Everyone,
            AccessDefault::Nobody => WriteOption::Nobody,
            _ => WriteOption::Inherit,
        },
    }
}
