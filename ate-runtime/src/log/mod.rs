//! The log layer: durable, framed, checksummed storage of transaction payloads.
//!
//! [`LogStore`] is the backend contract (a byte sequence with a logical end); [`FileStore`] and
//! [`MemoryStore`] implement it, and [`conformance`] is the suite every backend must pass.
//! [`RedoLog`] frames transactions over any store and recovers on open.

pub mod conformance;
mod error;
mod file;
mod memory;
mod redo;
mod store;

pub use error::LogError;
pub use file::{FileStore, LOCK_WAIT, PREALLOCATE_CHUNK};
pub use memory::MemoryStore;
pub use redo::{
    Appended, DEFAULT_MAX_FRAME, FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, LogRecord,
    RecoveryMode, RecoveryReport, RedoLog, encode_frames, frame_in_place,
};
pub use store::LogStore;
