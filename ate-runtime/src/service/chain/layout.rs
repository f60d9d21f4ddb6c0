//! The records services leave in a chain, and where they lie: what `docs/FORMAT.md` ("Service
//! records") describes, for programs that read a chain's service records themselves (tools,
//! audits, tests). Callers and providers need none of it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash, PublicEncryptKey};
use crate::event::{ParentLink, PrimaryKey};
use crate::schema::{DaoType, TypeRegistration};
use crate::service::{DispatchError, RequestId};

/// The layout version the records below carry; a record of another version is not read.
pub const LAYOUT_VERSION: u32 = 1;

/// The most request types one provider record may list; one listing more is ignored.
pub const MAX_PROVIDER_TYPES: usize = 256;

/// The most provider records a caller reads (the newest ones): the registry is read on calls,
/// so a chain flooded with registrations costs a bounded amount.
pub const MAX_PROVIDERS: usize = 1024;

/// The longest service name a provider record may carry.
pub const MAX_SERVICE_NAME: usize = 256;

/// The length of a reply key (an AES-256 key).
pub const REPLY_KEY_LEN: usize = 32;

/// The first 8 bytes of `SHA3-256(of_parts(parts))`, little-endian, as a collection id.
fn derived_collection(parts: &[&[u8]]) -> u64 {
    let h = Hash::of_parts(parts);
    let mut c = [0u8; 8];
    c.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(c)
}

/// The chain's service root: every service record lies under it.
pub fn root_key() -> PrimaryKey {
    PrimaryKey::derived(&[b"ATE/service-root/v1"])
}

/// The collection of the root holding provider records.
pub fn providers() -> ParentLink {
    ParentLink {
        parent: root_key(),
        collection: derived_collection(&[b"ATE/service-providers/v1"]),
    }
}

/// The collection of the root holding replies.
pub fn replies() -> ParentLink {
    ParentLink {
        parent: root_key(),
        collection: derived_collection(&[b"ATE/service-replies/v1"]),
    }
}

/// The queue of requests of `request_type` for providers reading with the public key
/// `read_key` (`None`: plaintext requests).
pub fn queue(request_type: &str, read_key: Option<&Hash>) -> ParentLink {
    let key: &[u8] = match read_key {
        Some(k) => k.as_bytes(),
        None => &[],
    };
    ParentLink {
        parent: root_key(),
        collection: derived_collection(&[b"ATE/service-queue/v1", request_type.as_bytes(), key]),
    }
}

/// Where request `id` is written: one key per request id, so a retry cannot add a second copy.
pub fn request_key(id: RequestId) -> PrimaryKey {
    PrimaryKey::derived(&[b"ATE/service-request/v1", &id.as_u128().to_be_bytes()])
}

/// Where the reply to request `id` is written: one reply per request id.
pub fn reply_key(id: RequestId) -> PrimaryKey {
    PrimaryKey::derived(&[b"ATE/service-reply/v1", &id.as_u128().to_be_bytes()])
}

/// The service root's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RootRecord {
    /// [`LAYOUT_VERSION`].
    pub version: u32,
}

/// A provider: a process serving some request types on this chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderRecord {
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// The service's name, for people reading the chain.
    pub service: String,
    /// The stable names of the requests it answers.
    pub request_types: Vec<String>,
    /// The public key requests are encrypted for (`None`: plaintext requests).
    pub read_key: Option<PublicEncryptKey>,
    /// The signing key its requests and replies are written for (`None`: their rules are
    /// inherited from the root).
    pub writer: Option<Hash>,
}

impl ProviderRecord {
    /// Whether the record is one this build reads, within the caps.
    pub fn is_well_formed(&self) -> bool {
        self.version == LAYOUT_VERSION
            && self.service.len() <= MAX_SERVICE_NAME
            && self.request_types.len() <= MAX_PROVIDER_TYPES
            && self
                .request_types
                .iter()
                .all(|t| super::super::local::check_name(t).is_ok())
    }
}

/// One request, as the caller writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// The request's id: its record lies at [`request_key`] of it.
    pub id: RequestId,
    /// The stable name of its type.
    pub request_type: String,
    /// The request, encoded.
    pub body: Bytes,
    /// The AES-256 key its reply is to be encrypted for (only in a request that is encrypted
    /// itself).
    pub reply_key: Option<Bytes>,
}

/// The reply to one request, as the provider writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplyRecord {
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// The request answered: the record lies at [`reply_key`] of it.
    pub id: RequestId,
    /// The reply, encoded, or why there is none.
    pub outcome: Result<Bytes, DispatchError>,
}

macro_rules! named {
    ($($ty:ty = $name:literal),* $(,)?) => {$(
        impl DaoType for $ty {
            const TYPE_NAME: &'static str = $name;
        }
        inventory::submit! { TypeRegistration::named::<$ty>($name) }
    )*};
}

named! {
    RootRecord = "ate.service.Root",
    ProviderRecord = "ate.service.Provider",
    RequestRecord = "ate.service.Request",
    ReplyRecord = "ate.service.Reply",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_collections_are_distinct_and_stable() {
        let id = RequestId::from_u128(1);
        let keys = [root_key(), request_key(id), reply_key(id)];
        assert!(
            keys.iter()
                .all(|k| keys.iter().filter(|o| *o == k).count() == 1)
        );
        assert_ne!(request_key(id), request_key(RequestId::from_u128(2)));
        let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
        let queues = [
            queue("t", None),
            queue("t", Some(&a)),
            queue("t", Some(&b)),
            queue("u", None),
            providers(),
            replies(),
        ];
        for q in &queues {
            assert_eq!(q.parent, root_key());
            assert_eq!(
                queues
                    .iter()
                    .filter(|o| o.collection == q.collection)
                    .count(),
                1
            );
        }
        // The layout is part of the format: these never change.
        assert_eq!(
            root_key(),
            PrimaryKey::from_bytes(
                Hash::of_parts(&[b"ATE/service-root/v1"]).as_bytes()[..16]
                    .try_into()
                    .unwrap()
            )
        );
    }

    /// The bodies as `docs/FORMAT.md` gives them, byte for byte.
    #[test]
    fn bodies_are_the_documented_message_pack() {
        let id = RequestId::from_u128(0x0102);
        let mut id_bytes = vec![0xc4, 0x10];
        id_bytes.extend_from_slice(&0x0102u128.to_be_bytes());
        let request = RequestRecord {
            version: 1,
            id,
            request_type: "t".into(),
            body: Bytes::from_static(&[0xc0]),
            reply_key: None,
        };
        let expected = [
            &[0x95, 0x01][..],
            &id_bytes,
            &[0xa1, b't', 0xc4, 0x01, 0xc0, 0xc0],
        ]
        .concat();
        assert_eq!(rmp_serde::to_vec(&request).unwrap(), expected);
        let ok = ReplyRecord {
            version: 1,
            id,
            outcome: Ok(Bytes::from_static(&[0xc0])),
        };
        let expected = [
            &[0x93, 0x01][..],
            &id_bytes,
            &[0x81, 0xa2, b'O', b'k', 0xc4, 0x01, 0xc0],
        ]
        .concat();
        assert_eq!(rmp_serde::to_vec(&ok).unwrap(), expected);
        let refused = ReplyRecord {
            version: 1,
            id,
            outcome: Err(DispatchError::Refused("x".into())),
        };
        let mut expected = [&[0x93, 0x01][..], &id_bytes, &[0x81, 0xa3]].concat();
        expected.extend_from_slice(b"Err");
        expected.extend_from_slice(&[0x81, 0xa7]);
        expected.extend_from_slice(b"Refused");
        expected.extend_from_slice(&[0xa1, b'x']);
        assert_eq!(rmp_serde::to_vec(&refused).unwrap(), expected);
        let root = RootRecord { version: 1 };
        assert_eq!(rmp_serde::to_vec(&root).unwrap(), [0x91, 0x01]);
        let provider = ProviderRecord {
            version: 1,
            service: "S".into(),
            request_types: vec!["t".into()],
            read_key: None,
            writer: None,
        };
        assert_eq!(
            rmp_serde::to_vec(&provider).unwrap(),
            [0x95, 0x01, 0xa1, b'S', 0x91, 0xa1, b't', 0xc0, 0xc0]
        );
    }

    #[test]
    fn the_record_types_have_their_stable_names() {
        use crate::schema::checked_type_name_of;
        assert_eq!(
            checked_type_name_of::<RootRecord>().unwrap(),
            "ate.service.Root"
        );
        assert_eq!(
            checked_type_name_of::<ProviderRecord>().unwrap(),
            "ate.service.Provider"
        );
        assert_eq!(
            checked_type_name_of::<RequestRecord>().unwrap(),
            "ate.service.Request"
        );
        assert_eq!(
            checked_type_name_of::<ReplyRecord>().unwrap(),
            "ate.service.Reply"
        );
    }
}
