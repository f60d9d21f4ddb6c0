//! What a handler knows about the request it answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chain::ChainKey;
use crate::crypto::Hash;

/// The identity of one request, chosen by the caller when it first sends it: a transport that
/// retries sends the same id, and a service answers each id once.
///
/// Random (128 bits from the thread-local CSPRNG), so two callers never pick the same one in
/// practice. `Display` prints 32 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(u128);

impl RequestId {
    /// A fresh random id.
    pub fn generate() -> Self {
        RequestId(rand::random::<u128>())
    }

    /// The id as a number.
    pub const fn as_u128(&self) -> u128 {
        self.0
    }

    /// The id with this number (the inverse of [`RequestId::as_u128`]).
    pub const fn from_u128(id: u128) -> Self {
        RequestId(id)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({:032x})", self.0)
    }
}

/// What a handler knows about the request it answers: who sent it, as verified by the
/// transport, which request it is, and the chain it came through.
///
/// The transport builds it; a handler reads it (`ctx.is_signed_by(&admin)` before a privileged
/// command, say). The callers are the public-key ids ([`Hash`](struct@Hash), what `PublicSignKey::hash`
/// returns) of the keys the transport checked the request against: the keys that signed the
/// request event on a chain, or the signing keys of the caller's session in process
/// ([`LocalServices`](super::LocalServices)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationContext {
    request_id: RequestId,
    /// Sorted, without duplicates (for `binary_search`).
    callers: Vec<Hash>,
    chain: Option<ChainKey>,
}

impl InvocationContext {
    /// The context of request `request_id`, sent by the holders of `callers` (public-key ids the
    /// transport verified: only a transport should build one), through `chain` if any.
    pub fn new(
        request_id: RequestId,
        callers: impl IntoIterator<Item = Hash>,
        chain: Option<ChainKey>,
    ) -> Self {
        let mut callers: Vec<Hash> = callers.into_iter().collect();
        callers.sort_unstable();
        callers.dedup();
        InvocationContext {
            request_id,
            callers,
            chain,
        }
    }

    /// The request's id (the same for every retry of one request).
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// The public-key ids of the keys that vouched for the request, sorted; empty for an
    /// anonymous request.
    pub fn callers(&self) -> &[Hash] {
        &self.callers
    }

    /// Whether the key with public-key id `key` vouched for the request.
    pub fn is_signed_by(&self, key: &Hash) -> bool {
        self.callers.binary_search(key).is_ok()
    }

    /// Whether no key vouched for the request.
    pub fn is_anonymous(&self) -> bool {
        self.callers.is_empty()
    }

    /// The chain the request came through; `None` for a call that went through no chain.
    pub fn chain(&self) -> Option<&ChainKey> {
        self.chain.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_sorted_and_deduplicated() {
        let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
        let ctx = InvocationContext::new(
            RequestId::from_u128(7),
            [b, a, b],
            Some(ChainKey::from("bank")),
        );
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(ctx.callers(), expected.as_slice());
        assert!(ctx.is_signed_by(&a) && ctx.is_signed_by(&b));
        assert!(!ctx.is_signed_by(&Hash::of(b"c")));
        assert!(!ctx.is_anonymous());
        assert_eq!(ctx.request_id().as_u128(), 7);
        assert_eq!(ctx.chain().map(ChainKey::as_str), Some("bank"));
    }

    #[test]
    fn an_anonymous_request_has_no_callers() {
        let ctx = InvocationContext::new(RequestId::generate(), [], None);
        assert!(ctx.is_anonymous());
        assert!(!ctx.is_signed_by(&Hash::of(b"a")));
        assert_eq!(ctx.chain(), None);
    }

    #[test]
    fn request_ids_print_as_hex_and_round_trip() {
        let id = RequestId::from_u128(0xab);
        assert_eq!(id.to_string(), format!("{:032x}", 0xab));
        let bytes = rmp_serde::to_vec(&id).unwrap();
        assert_eq!(rmp_serde::from_slice::<RequestId>(&bytes).unwrap(), id);
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
