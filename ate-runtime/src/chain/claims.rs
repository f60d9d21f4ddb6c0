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
use tokio::sync::Notify;

use crate::event::PrimaryKey;

/// The most claims one table holds (a client cannot make a server hold more).
pub(crate) const MAX_CLAIMS: usize = 1 << 20;

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
}
