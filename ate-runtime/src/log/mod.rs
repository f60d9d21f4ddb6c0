//! The log layer: durable, framed, checksummed storage of transaction payloads.
//!
//! [`LogStore`] is the backend contract (a byte sequence with a logical end); [`FileStore`] and
//! [`MemoryStore`] implement it, and [`conformance`] is the suite every backend must pass.
//! The redo log ([`unstable::log`](crate::unstable::log)) frames transactions over any store and
//! recovers on open: a torn tail is kept aside with [`LogStore::quarantine`] before it is cut, so
//! no byte is ever destroyed.

pub mod conformance;
mod crc;
mod error;
mod file;
pub(crate) mod frame;
mod memory;
mod preallocate;
pub(crate) mod recovery;
pub(crate) mod redo;
mod search;
mod store;

pub use error::LogError;
pub use file::{FileStore, LOCK_WAIT, PREALLOCATE_CHUNK};
pub use frame::DEFAULT_MAX_FRAME;
#[cfg(test)]
pub(crate) use frame::encode_frames;
pub(crate) use frame::{FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, frame_in_place};
pub use memory::MemoryStore;
pub(crate) use recovery::LogRecord;
pub use recovery::{Quarantined, RecoveryMode, RecoveryReport};
pub(crate) use redo::{Appended, RedoLog};
pub use store::LogStore;
