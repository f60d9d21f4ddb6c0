//! A log store in memory, with the crash simulation the tests need.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::{LogError, LogStore};

#[derive(Debug, Default)]
struct Inner {
    /// Appended chunks, shared with the view (no copy of the data is made).
    chunks: Vec<Bytes>,
    len: u64,
    synced: u64,
    fail_after: Option<u64>,
    /// The tails recovery cut off, with their names, oldest first.
    quarantined: Vec<(String, Bytes)>,
}

/// A log kept in memory. Clones share the same bytes, so a test can "reopen" a log by opening a
/// clone, and [`MemoryStore::crash`] can drop what was never synced.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding exactly `bytes` (shared, not copied), all durable.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        let s = Self::new();
        {
            let mut i = s.inner.lock();
            i.len = bytes.len() as u64;
            i.synced = i.len;
            i.chunks = vec![bytes];
        }
        s
    }

    /// The bytes held, from offset 0.
    pub fn bytes(&self) -> Vec<u8> {
        let i = self.inner.lock();
        concat(&i.chunks).to_vec()
    }

    /// Every tail recovery kept aside before cutting it ([`LogStore::quarantine`]), oldest
    /// first: the name it returned, and the bytes.
    pub fn quarantined(&self) -> Vec<(String, Bytes)> {
        self.inner.lock().quarantined.clone()
    }

    /// Simulates a power cut: of the bytes appended since the last sync, only the first
    /// `keep_unsynced` survive (a torn write), and the rest are lost.
    pub fn crash(&self, keep_unsynced: u64) {
        let mut i = self.inner.lock();
        let keep = (i.synced + keep_unsynced).min(i.len);
        let all = concat(&i.chunks);
        i.chunks = vec![all.slice(..keep as usize)];
        i.len = keep;
        i.synced = keep;
    }

    /// Makes every I/O call fail once `n` more calls have succeeded (fault injection).
    pub fn fail_after(&self, n: u64) {
        self.inner.lock().fail_after = Some(n);
    }

    fn tick(i: &mut Inner) -> Result<(), LogError> {
        match &mut i.fail_after {
            Some(0) => Err(LogError::Io {
                store: "memory".into(),
                source: std::io::Error::other("injected failure"),
            }),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn concat(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut b = BytesMut::with_capacity(many.iter().map(|c| c.len()).sum());
            for c in many {
                b.extend_from_slice(c);
            }
            b.freeze()
        }
    }
}

impl LogStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn read_all(&mut self) -> Result<Bytes, LogError> {
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        let all = concat(&i.chunks);
        i.chunks = vec![all.clone()];
        Ok(all)
    }

    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        i.len += data.len() as u64;
        i.chunks.push(data.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        i.synced = i.len;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> Result<(), LogError> {
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        let all = concat(&i.chunks);
        let len = len.min(all.len() as u64);
        i.chunks = vec![all.slice(..len as usize)];
        i.len = len;
        i.synced = i.synced.min(len);
        Ok(())
    }

    /// Keeps the bytes in memory, under the name `memory:quarantine-<offset>-<n>`, where `n`
    /// counts the quarantines of every memory store of the process; a power cut
    /// ([`MemoryStore::crash`]) keeps them.
    fn quarantine(&mut self, offset: u64, bytes: &[u8]) -> Result<String, LogError> {
        static QUARANTINES: AtomicU64 = AtomicU64::new(0);
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        let n = QUARANTINES.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("memory:quarantine-{offset}-{n}");
        i.quarantined
            .push((name.clone(), Bytes::copy_from_slice(bytes)));
        Ok(name)
    }

    /// Two steps, each of which may fail ([`MemoryStore::fail_after`]): writing the new bytes
    /// aside, then the swap; a power cut ([`MemoryStore::crash`]) after it keeps the new bytes.
    fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        let mut i = self.inner.lock();
        Self::tick(&mut i)?;
        let new = Bytes::copy_from_slice(contents);
        Self::tick(&mut i)?;
        i.chunks = vec![new];
        i.len = contents.len() as u64;
        i.synced = i.len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.inner.lock().len
    }
}
