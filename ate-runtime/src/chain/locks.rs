//! Distributed locks on names, with fencing tokens.
//!
//! A lock is held by one holder at a time, until it is released, its lease ends, or (for a
//! remote holder) its connection ends; the server of a remote chain holds the locks of its
//! chains. Each grant carries a fencing token, a number that only grows. A commit can name
//! the lock and token it was made under ([`Dio::fence`](crate::Dio::fence)): the chain's
//! writer refuses it with [`CommitError::Fenced`] unless that grant is still the current one
//! when the transaction is checked, so a holder that lost its lock (its lease ended while it
//! was paused, say) cannot commit as if it still held it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Chain, CommitError, WeakChain};

/// The longest lock name.
pub const MAX_LOCK_NAME: usize = 256;
/// The most locks one table holds.
pub(crate) const MAX_LOCKS: usize = 1 << 16;
/// How long a lock lasts unless released sooner (default of [`Chain::lock`]).
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(30);

/// A lock grant a commit names: the writer refuses the commit unless it is still current.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lock's name.
    pub lock: String,
    /// The grant's fencing token.
    pub token: u64,
}

/// The locks of one chain.
#[derive(Debug, Default)]
pub(crate) struct LockTable {
    inner: Mutex<Locks>,
    released: Notify,
}

#[derive(Debug, Default)]
struct Locks {
    held: HashMap<String, (u64, Instant)>,
    /// The last token granted (tokens grow across every lock of the chain).
    last: u64,
}

impl LockTable {
    /// Grants `name` for `lease` unless another grant of it is current: its token.
    pub(crate) fn try_lock(&self, name: &str, lease: Duration) -> Option<u64> {
        let now = Instant::now();
        let mut l = self.inner.lock();
        if l.held.get(name).is_some_and(|(_, until)| *until > now) {
            return None;
        }
        if l.held.len() >= MAX_LOCKS && !l.held.contains_key(name) {
            l.held.retain(|_, (_, until)| *until > now);
            if l.held.len() >= MAX_LOCKS {
                return None;
            }
        }
        l.last += 1;
        let token = l.last;
        l.held.insert(
            name.to_string(),
            (token, now.checked_add(lease).unwrap_or(now)),
        );
        Some(token)
    }

    /// Ends the grant `token` of `name` (nothing if it is not the current one).
    pub(crate) fn unlock(&self, name: &str, token: u64) {
        let mut l = self.inner.lock();
        if l.held.get(name).is_some_and(|(t, _)| *t == token) {
            l.held.remove(name);
            drop(l);
            self.released.notify_waiters();
        }
    }

    /// Whether `fence` is the current grant of its lock (not released, not expired).
    pub(crate) fn is_current(&self, fence: &Fence) -> bool {
        self.inner
            .lock()
            .held
            .get(&fence.lock)
            .is_some_and(|(t, until)| *t == fence.token && *until > Instant::now())
    }

    /// Waits until a lock is released, or `max` passes (leases end without telling).
    async fn changed(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.released.notified()).await;
    }
}

/// Checks a lock name: not empty, at most [`MAX_LOCK_NAME`] bytes.
pub(crate) fn check_name(name: &str) -> Result<(), CommitError> {
    if name.is_empty() || name.len() > MAX_LOCK_NAME {
        return Err(CommitError::Refused(format!(
            "a lock name has 1 to {MAX_LOCK_NAME} bytes, not {}",
            name.len()
        )));
    }
    Ok(())
}

/// A lock held on a chain: released when dropped.
pub struct LockGuard {
    chain: WeakChain,
    fence: Fence,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("fence", &self.fence)
            .finish()
    }
}

impl LockGuard {
    /// The grant's fencing token (larger than every earlier grant's on this chain).
    pub fn token(&self) -> u64 {
        self.fence.token
    }

    /// The grant, for [`Dio::fence`](crate::Dio::fence).
    pub fn fence(&self) -> &Fence {
        &self.fence
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(chain) = self.chain.upgrade() {
            match chain.upstream() {
                Some(up) => up.unlock(&self.fence.lock, self.fence.token),
                None => chain
                    .inner
                    .shared
                    .locks
                    .unlock(&self.fence.lock, self.fence.token),
            }
        }
    }
}

/// How often a remote waiter asks again (the server does not tell it of releases).
const REMOTE_RETRY: Duration = Duration::from_millis(20);

impl Chain {
    /// Takes the lock `name` of this chain (held by this process for a local chain, by the
    /// server for a remote one), waiting while another holder has it. It lasts until the
    /// guard is dropped, or [`DEFAULT_LOCK_LEASE`] passes, or (remote) the connection ends.
    ///
    /// # Errors
    ///
    /// [`CommitError::Refused`] for a name that is empty or longer than [`MAX_LOCK_NAME`];
    /// on a remote chain, [`CommitError::Unreachable`] when the server cannot be asked.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a grant obtained by a cancelled call ends with its lease at the latest.
    pub async fn lock(&self, name: &str) -> Result<LockGuard, CommitError> {
        self.lock_with_lease(name, DEFAULT_LOCK_LEASE).await
    }

    /// [`Chain::lock`] with a lease of `lease`.
    ///
    /// # Errors
    ///
    /// As [`Chain::lock`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::lock`].
    pub async fn lock_with_lease(
        &self,
        name: &str,
        lease: Duration,
    ) -> Result<LockGuard, CommitError> {
        loop {
            if let Some(g) = self.try_lock(name, lease).await? {
                return Ok(g);
            }
            match self.upstream() {
                Some(_) => tokio::time::sleep(REMOTE_RETRY).await,
                None => {
                    self.inner
                        .shared
                        .locks
                        .changed(Duration::from_millis(250).min(lease.max(REMOTE_RETRY)))
                        .await
                }
            }
        }
    }

    /// Takes the lock `name` for `lease` if nobody holds it: the guard, or `None`.
    ///
    /// # Errors
    ///
    /// As [`Chain::lock`].
    ///
    /// # Cancel safety
    ///
    /// As [`Chain::lock`].
    pub async fn try_lock(
        &self,
        name: &str,
        lease: Duration,
    ) -> Result<Option<LockGuard>, CommitError> {
        check_name(name)?;
        let token = match self.upstream() {
            Some(up) => up.lock(name, lease).await?,
            None => self.inner.shared.locks.try_lock(name, lease),
        };
        Ok(token.map(|token| LockGuard {
            chain: self.downgrade(),
            fence: Fence {
                lock: name.to_string(),
                token,
            },
        }))
    }

    /// The lock table (the server holds its chains' locks for its clients).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn lock_table(&self) -> &LockTable {
        &self.inner.shared.locks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grow_and_stale_grants_are_not_current() {
        let t = LockTable::default();
        let a = t.try_lock("x", Duration::from_secs(60)).expect("free");
        assert!(t.try_lock("x", Duration::from_secs(60)).is_none());
        let fa = Fence {
            lock: "x".into(),
            token: a,
        };
        assert!(t.is_current(&fa));
        t.unlock("x", a);
        assert!(!t.is_current(&fa));
        let b = t.try_lock("x", Duration::ZERO).expect("free");
        assert!(b > a);
        // A zero lease is over at once: not current, and free again.
        assert!(!t.is_current(&Fence {
            lock: "x".into(),
            token: b
        }));
        let c = t.try_lock("x", Duration::from_secs(60)).expect("expired");
        assert!(c > b);
        t.unlock("x", b); // the old holder's release does nothing
        assert!(t.try_lock("x", Duration::from_secs(60)).is_none());
    }
}
