//! The engine's encodings and internals, for tools, tests, benchmarks and fuzzing.
//!
//! Not covered by semantic versioning: what is here changes with the on-disk and wire formats
//! (`docs/FORMAT.md`), and a program that only stores and reads records never needs it.

/// The canonical encodings of events and transaction payloads.
pub mod codec {
    pub use crate::event::codec::*;
    pub use crate::event::{DecodeError, Event, Transaction};
}

/// The redo log over a [`LogStore`](crate::log::LogStore): framing, recovery, appends.
pub mod log {
    pub use crate::log::frame::{
        FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, encode_frames, frame_in_place,
    };
    pub use crate::log::recovery::LogRecord;
    pub use crate::log::redo::{Appended, RedoLog};
}

/// The trust layer's event metadata, transaction trailers and transaction digest.
pub mod meta {
    pub use crate::trust::meta::*;
}

/// The checkpoint heading a compacted log (`docs/FORMAT.md`, "Compaction").
pub mod checkpoint {
    pub use crate::chain::compact::checkpoint::{Checkpoint, CheckpointError};
}
