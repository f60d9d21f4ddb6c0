//! The log layer: durable, framed, checksummed storage of transaction payloads.
//!
//! [`LogStore`] is the backend contract (a byte sequence with a logical end); [`FileStore`] and
//! [`MemoryStore`] implement it, and [`conformance`] is the suite every backend must pass.
//! [`RedoLog`] frames transactions over any store and recovers on open: a torn tail is kept
//! aside with [`LogStore::quarantine`] before it is cut, so no byte is ever destroyed.

pub mod conformance;
mod crc;
mod error;
mod file;
mod frame;
mod memory;
mod preallocate;
mod recovery;
mod redo;
mod search;
mod store;

pub use error::LogError;
pub use file::{FileStore, LOCK_WAIT, PREALLOCATE_CHUNK};
pub use frame::{
    DEFAULT_MAX_FRAME, FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, encode_frames,
    frame_in_place,
};
pub use memory::MemoryStore;
pub use recovery::{LogRecord, Quarantined, RecoveryMode, RecoveryReport};
pub use redo::{Appended, RedoLog};
pub use store::LogStore;
