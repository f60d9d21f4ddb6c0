//! The read path: a stored body back to plaintext.

use bytes::Bytes;

use super::DioError;
use crate::chain::Chain;
use crate::event::PrimaryKey;
use crate::session::AteSession;
use crate::trust::meta::{EventTrust, TxKey, body_aad};

/// One stored version of a record, as the view holds it.
pub(super) struct Stored<'a> {
    pub key: PrimaryKey,
    /// The transaction that wrote it.
    pub seq: u64,
    pub type_name: &'a str,
    /// Its trust metadata.
    pub trust: &'a EventTrust,
    /// The wrapped data keys of the transaction `seq` (from the view).
    pub keys: Option<&'a [TxKey]>,
    /// Its body as stored.
    pub body: Bytes,
}

/// Reads a stored body back to plaintext: decrypts it with the session's keys and reverses the
/// transformers. The data key's entry is found among the transaction's keys by the event's
/// read key (validation made sure it is the one the event binds by id).
pub(super) fn open_body(
    chain: &Chain,
    session: &AteSession,
    stored: Stored<'_>,
) -> Result<Bytes, DioError> {
    let Stored {
        key,
        seq,
        type_name,
        trust,
        keys,
        body,
    } = stored;
    let mut body = match &trust.confidentiality {
        None => body,
        Some(c) => {
            // Validation checked that the entry for the event's read key is the one it binds.
            let entry = keys
                .and_then(|k| k.iter().find(|e| e.read_key == c.read_key))
                .ok_or(DioError::MissingKeyEntry {
                    key,
                    seq,
                    read_key: c.read_key,
                })?;
            let data_key = session.unwrap_data_key(&c.read_key, &entry.wrapped).ok_or(
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
                .decrypt(
                    &body_aad(
                        chain.key().as_str(),
                        &key,
                        trust.previous,
                        &c.key_entry,
                        type_name,
                    ),
                    &sealed,
                )
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

/// A version of a record as a committed transaction holds it (the commit stream's event
/// `raw`, a slice of the transaction `seq`), opened with `session`'s keys: its key, the
/// version it replaced (`None` for a new record), and its value.
pub(crate) fn open_committed<T: super::Storable>(
    chain: &Chain,
    session: &AteSession,
    seq: u64,
    raw: Bytes,
) -> Result<(PrimaryKey, Option<u64>, T), DioError> {
    let event = crate::event::codec::decode_event(raw).map_err(|e| DioError::BadMetadata {
        key: PrimaryKey::from(0u128),
        reason: e.to_string(),
    })?;
    let key = event.key;
    let trust = EventTrust::of(&event).map_err(|e| DioError::BadMetadata {
        key,
        reason: e.to_string(),
    })?;
    let type_name = crate::schema::checked_type_name_of::<T>()?;
    let keys = chain.view().read().tx_keys(seq);
    let body = open_body(
        chain,
        session,
        Stored {
            key,
            seq,
            type_name,
            trust: &trust,
            keys: keys.as_deref(),
            body: event.body.unwrap_or_default(),
        },
    )?;
    let value = super::decode::<T>(key, &body)?;
    Ok((key, trust.previous, value))
}
