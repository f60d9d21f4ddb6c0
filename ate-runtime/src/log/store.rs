//! The storage backend contract under the redo log.

use bytes::Bytes;

use super::LogError;

/// Where a redo log's bytes live: a file, memory, or (later) a replicated log engine.
///
/// The store is a byte sequence with a *logical end*. It knows nothing about frames; the
/// [`RedoLog`](super::RedoLog) above it does. Every backend must pass
/// [`conformance::test_all`](super::conformance::test_all).
pub trait LogStore: Send + 'static {
    /// A name for errors and logs (a path, or "memory").
    fn describe(&self) -> String;

    /// Every byte the store holds, from offset 0. It may extend past the logical end with zeros
    /// (preallocated space).
    fn read_all(&mut self) -> Result<Bytes, LogError>;

    /// Appends `data` at the logical end. Not durable until [`LogStore::sync`] returns `Ok`.
    fn append(&mut self, data: &Bytes) -> Result<(), LogError>;

    /// Makes every appended byte durable (fdatasync for files).
    fn sync(&mut self) -> Result<(), LogError>;

    /// Sets the logical end to `len` and durably discards everything after it.
    fn truncate(&mut self, len: u64) -> Result<(), LogError>;

    /// Sets the logical end to `len` when every byte after it is already zero (preallocated
    /// space), so the next append overwrites the zeros. The default discards them instead.
    fn resume_at(&mut self, len: u64) -> Result<(), LogError> {
        self.truncate(len)
    }

    /// Keeps `bytes` (the bytes from `offset` to the end of the store, which recovery is about
    /// to cut off with [`LogStore::truncate`]) durably in a new place of their own beside the
    /// log, and returns where: a file's path, or a name. It never overwrites an earlier
    /// quarantine and does not change the log. Recovery cuts a torn tail only after this
    /// returned `Ok`, so no byte a store held is ever destroyed.
    ///
    /// # Errors
    /// [`LogError::Io`] when the bytes could not be kept durably; recovery then fails and leaves
    /// the log as it is.
    fn quarantine(&mut self, offset: u64, bytes: &[u8]) -> Result<String, LogError>;

    /// Replaces every byte of the store with `contents` (a whole log: its header and frames),
    /// crash-safely: the new bytes are made durable beside the old ones, then take their place
    /// in one step (a file: written to `<log file name>.compact`, fsynced, renamed over the log,
    /// the folder fsynced). A crash, or an error, at any point leaves the store holding either
    /// its old bytes or `contents`, never a mix; after an error it holds the old ones and goes
    /// on. The logical end becomes `contents.len()`. Compaction's swap.
    ///
    /// # Errors
    /// [`LogError::Io`] when the new bytes could not be written, made durable or put in
    /// place; [`LogError::Unsupported`] from a store that cannot (the default).
    fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        let _ = contents;
        Err(LogError::Unsupported {
            store: self.describe(),
            what: "replacing its bytes",
        })
    }

    /// The logical end.
    fn len(&self) -> u64;

    /// Whether nothing has been written.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LogStore for Box<dyn LogStore> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn read_all(&mut self) -> Result<Bytes, LogError> {
        (**self).read_all()
    }
    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
        (**self).append(data)
    }
    fn sync(&mut self) -> Result<(), LogError> {
        (**self).sync()
    }
    fn truncate(&mut self, len: u64) -> Result<(), LogError> {
        (**self).truncate(len)
    }
    fn resume_at(&mut self, len: u64) -> Result<(), LogError> {
        (**self).resume_at(len)
    }
    fn quarantine(&mut self, offset: u64, bytes: &[u8]) -> Result<String, LogError> {
        (**self).quarantine(offset, bytes)
    }
    fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        (**self).replace(contents)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
}
