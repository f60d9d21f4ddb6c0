//! Claims on records: who is working on which queue item, for how long.
//!
//! A claim is advisory: it keeps consumers of a queue from taking the same item at once, but
//! what makes an item processed exactly once is the chain itself (the consumer's commit
//! deletes the item naming the version it read, and a second deletion is refused as stale).
//! A local chain keeps its claims here; a server keeps its chains' claims here on behalf of
//! its clients and drops a connection's claims when the connection ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::event::{ParentLink, PrimaryKey};

/// The most claims one table holds (a client cannot make a server hold more).
pub(crate) const MAX_CLAIMS: usize = 1 << 20;

/// The most items one ask for the next free items of a collection claims
/// ([`ClaimNext::max`] is capped at it; `ClaimNext` on the wire).
pub const MAX_CLAIM_BATCH: usize = 64;

/// The most records of a collection one ask for its next free items looks at: the oldest ones,
/// whether claimed already or of another type (so an ask costs a bounded amount of work even
/// when many items at the front are claimed).
pub const MAX_CLAIM_SCAN: usize = 16_384;

/// An ask for the oldest items of a collection that nobody has claimed
/// ([`Upstream::claim_next`](super::Upstream::claim_next)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimNext {
    /// The collection.
    pub link: ParentLink,
    /// The items' stable type name: records of other types in the collection are passed by.
    pub type_name: String,
    /// How long each claim lasts unless it ends sooner.
    pub lease: Duration,
    /// The most items to claim (1 to [`MAX_CLAIM_BATCH`]).
    pub max: usize,
}

impl ClaimNext {
    /// An ask for up to `max` items of type `type_name` in the collection `link`, each
    /// claimed for `lease`.
    pub fn new(
        link: ParentLink,
        type_name: impl Into<String>,
        lease: Duration,
        max: usize,
    ) -> Self {
        ClaimNext {
            link,
            type_name: type_name.into(),
            lease,
            max,
        }
    }
}

/// An item claimed by a [`ClaimNext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClaimedItem {
    /// The item's record.
    pub key: PrimaryKey,
    /// The claim's token (to release it).
    pub token: u64,
    /// The transaction that wrote the item's current version (a replica shows the item once
    /// it has applied it).
    pub seq: u64,
}

impl ClaimedItem {
    /// The claim `token` on the record `key`, whose current version transaction `seq` wrote.
    pub fn new(key: PrimaryKey, token: u64, seq: u64) -> Self {
        ClaimedItem { key, token, seq }
    }
}

/// The answer to a [`ClaimNext`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextClaims {
    /// The items claimed, oldest first (none while every item is claimed or the collection is
    /// empty).
    pub items: Vec<ClaimedItem>,
    /// The last transaction the answer took into account: an item committed later, or a
    /// deletion, arrives after it.
    pub seen: u64,
}

impl NextClaims {
    /// The claims `items`, made as of transaction `seen`.
    pub fn new(items: Vec<ClaimedItem>, seen: u64) -> Self {
        NextClaims { items, seen }
    }
}

/// The claims of one chain.
#[derive(Debug, Default)]
pub(crate) struct ClaimTable {
    claims: Mutex<HashMap<PrimaryKey, Held>>,
    next: AtomicU64,
    /// Woken when a claim ends.
    released: Notify,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    token: u64,
    until: Instant,
}

impl ClaimTable {
    /// Claims `key` for `lease` unless someone else holds a claim that has not expired:
    /// the claim's token, or `None`.
    pub(crate) fn try_claim(&self, key: PrimaryKey, lease: Duration) -> Option<u64> {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        if let Some(h) = claims.get(&key)
            && h.until > now
        {
            return None;
        }
        if claims.len() >= MAX_CLAIMS {
            claims.retain(|_, h| h.until > now);
            if claims.len() >= MAX_CLAIMS {
                return None;
            }
        }
        let token = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        claims.insert(
            key,
            Held {
                token,
                until: now.checked_add(lease).unwrap_or(now),
            },
        );
        Some(token)
    }

    /// Claims up to `max` of `candidates` (keys with their version), in order, that nobody
    /// holds a current claim on, each for `lease`.
    pub(crate) fn claim_first(
        &self,
        candidates: impl Iterator<Item = (PrimaryKey, u64)>,
        max: usize,
        lease: Duration,
    ) -> Vec<ClaimedItem> {
        let now = Instant::now();
        let until = now.checked_add(lease).unwrap_or(now);
        let mut claims = self.claims.lock();
        let mut taken = Vec::new();
        for (key, seq) in candidates {
            if taken.len() >= max {
                break;
            }
            if claims.get(&key).is_some_and(|h| h.until > now) {
                continue;
            }
            if claims.len() >= MAX_CLAIMS {
                claims.retain(|_, h| h.until > now);
                if claims.len() >= MAX_CLAIMS {
                    break;
                }
            }
            let token = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            claims.insert(key, Held { token, until });
            taken.push(ClaimedItem { key, token, seq });
        }
        taken
    }

    /// Ends the claim `token` on `key` (nothing if it is not the current one).
    pub(crate) fn release(&self, key: &PrimaryKey, token: u64) {
        let mut claims = self.claims.lock();
        if claims.get(key).is_some_and(|h| h.token == token) {
            claims.remove(key);
            drop(claims);
            self.released.notify_waiters();
        }
    }

    /// Whether the claim `token` on `key` is current (not released, not expired).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn holds(&self, key: &PrimaryKey, token: u64) -> bool {
        self.claims
            .lock()
            .get(key)
            .is_some_and(|h| h.token == token && h.until > Instant::now())
    }

    /// Waits until a claim ends (or `max` passes, so that expired leases are seen).
    pub(crate) async fn changed(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.released.notified()).await;
    }

    /// How long until the first current claim expires (to wait no longer than that).
    pub(crate) fn next_expiry(&self) -> Option<Duration> {
        let now = Instant::now();
        self.claims
            .lock()
            .values()
            .map(|h| h.until.saturating_duration_since(now))
            .min()
    }
}

/// A claim held on a record of a chain: ends when dropped.
pub(crate) struct ClaimGuard {
    chain: super::WeakChain,
    key: PrimaryKey,
    token: u64,
}

impl std::fmt::Debug for ClaimGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimGuard")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

impl ClaimGuard {
    /// The claimed record.
    pub(crate) fn key(&self) -> &PrimaryKey {
        &self.key
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(chain) = self.chain.upgrade() {
            match chain.upstream() {
                Some(up) => up.release(self.key, self.token),
                None => chain.inner.claims.release(&self.key, self.token),
            }
        }
    }
}

impl super::Chain {
    /// Claims the oldest free items the ask names, here (a chain that commits locally, or a
    /// server for its clients): at most [`MAX_CLAIM_BATCH`], looking at no more than
    /// [`MAX_CLAIM_SCAN`] records of the collection.
    pub(crate) fn claim_next_here(&self, ask: &ClaimNext) -> NextClaims {
        let view = self.view().read();
        let seen = view.last_seq();
        let Some(type_id) = view.type_id(&ask.type_name) else {
            return NextClaims::new(Vec::new(), seen);
        };
        let candidates = view
            .children(&ask.link)
            .take(MAX_CLAIM_SCAN)
            .filter_map(|k| {
                view.get(&k)
                    .filter(|e| e.type_id == type_id)
                    .map(|e| (k, e.seq))
            });
        let items =
            self.inner
                .claims
                .claim_first(candidates, ask.max.min(MAX_CLAIM_BATCH), ask.lease);
        NextClaims::new(items, seen)
    }

    /// Claims `key` for `lease` (here, or at the source of a replica): a guard that ends the
    /// claim when dropped, or `None` while someone else holds it.
    pub(crate) async fn claim(
        &self,
        key: PrimaryKey,
        lease: Duration,
    ) -> Result<Option<ClaimGuard>, super::CommitError> {
        let token = match self.upstream() {
            Some(up) => up.claim(key, lease).await?,
            None => self.inner.claims.try_claim(key, lease),
        };
        Ok(token.map(|token| ClaimGuard {
            chain: self.downgrade(),
            key,
            token,
        }))
    }

    /// Claims the oldest free items the ask names (here, or at the source of a replica),
    /// each with a guard that ends its claim when dropped.
    pub(crate) async fn claim_next(
        &self,
        ask: &ClaimNext,
    ) -> Result<(Vec<(ClaimGuard, u64)>, u64), super::CommitError> {
        let got = match self.upstream() {
            Some(up) => up.claim_next(self, ask).await?,
            None => self.claim_next_here(ask),
        };
        let guards = got
            .items
            .into_iter()
            .map(|c| {
                let guard = ClaimGuard {
                    chain: self.downgrade(),
                    key: c.key,
                    token: c.token,
                };
                (guard, c.seq)
            })
            .collect();
        Ok((guards, got.seen))
    }

    /// Waits until a claim of this chain may have ended (at most `max`).
    pub(crate) async fn claims_changed(&self, max: Duration) {
        let max = match self.inner.claims.next_expiry() {
            Some(d) => d.min(max),
            None => max,
        };
        self.inner.claims.changed(max).await;
    }

    /// The claim table (the server holds its chains' claims for its clients).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn claim_table(&self) -> &ClaimTable {
        &self.inner.claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_excludes_others_until_released_or_expired() {
        let t = ClaimTable::default();
        let k = PrimaryKey::from(7u128);
        let a = t.try_claim(k, Duration::from_secs(60)).expect("free");
        assert!(t.try_claim(k, Duration::from_secs(60)).is_none());
        t.release(&k, a + 1); // not the holder's token: nothing
        assert!(t.try_claim(k, Duration::from_secs(60)).is_none());
        t.release(&k, a);
        let b = t.try_claim(k, Duration::ZERO).expect("free again");
        assert_ne!(a, b);
        // A zero lease has expired at once.
        assert!(t.try_claim(k, Duration::from_secs(60)).is_some());
    }

    #[test]
    fn claim_first_takes_the_oldest_free_ones_up_to_max() {
        let t = ClaimTable::default();
        let keys: Vec<(PrimaryKey, u64)> = (1..=6u128).map(|i| (PrimaryKey::from(i), 10)).collect();
        let lease = Duration::from_secs(60);
        let held = t.try_claim(keys[0].0, lease).expect("free");
        let got = t.claim_first(keys.iter().copied(), 2, lease);
        assert_eq!(
            got.iter().map(|c| c.key).collect::<Vec<_>>(),
            vec![keys[1].0, keys[2].0],
            "the held one passed by"
        );
        assert!(got.iter().all(|c| c.seq == 10 && c.token != held));
        let rest = t.claim_first(keys.iter().copied(), 64, lease);
        assert_eq!(rest.len(), 3, "the three left");
        assert!(t.claim_first(keys.iter().copied(), 64, lease).is_empty());
        t.release(&keys[0].0, held);
        assert_eq!(t.claim_first(keys.iter().copied(), 0, lease).len(), 0);
        assert_eq!(
            t.claim_first(keys.iter().copied(), 1, lease)[0].key,
            keys[0].0
        );
    }
}
