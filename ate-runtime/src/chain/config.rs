//! Settings of the embedded engine.

use std::path::PathBuf;
use std::time::Duration;

use super::compact::auto::CompactMode;

use crate::log::{DEFAULT_MAX_FRAME, RecoveryMode};

/// Default of [`AteConfig::max_foreign_transaction_bytes`]: 16 MiB.
pub const DEFAULT_MAX_FOREIGN_TRANSACTION: usize = 16 << 20;

/// Default of [`AteConfig::commit_stream_capacity`].
pub const DEFAULT_COMMIT_STREAM_CAPACITY: usize = 1024;

/// How chains are stored and recovered. `AteConfig::default()` is what the Quick Start uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AteConfig {
    /// The folder that holds one `<chain>.log` file per chain; `None` keeps chains in memory
    /// only (nothing survives the process). The default is [`default_log_path`]:
    /// `<temp>/ate-<uid>` on Unix (`/tmp/ate-1000` for the user of id 1000), a folder of each
    /// user's own, so that users of one machine do not share chains (`<temp>/ate` elsewhere,
    /// where the temporary folder is per user already).
    pub log_path: Option<PathBuf>,
    /// What to do with a damaged tail when a log is opened (default: truncate a torn last
    /// transaction, refuse any other damage).
    pub recovery_mode: RecoveryMode,
    /// Upper bound on one transaction's encoded size, on write and on read (default 256 MiB).
    /// A larger commit is refused with `CommitError::TooLarge` before anything is written. A log
    /// that already holds an intact larger transaction (written under a larger limit) is refused
    /// on open with `LogError::FrameTooLarge` and left untouched: raise the limit to open it.
    pub max_transaction_bytes: usize,
    /// Upper bound on one transaction built outside this process and handed to
    /// `Chain::commit_transaction` (default 16 MiB): much lower than
    /// [`AteConfig::max_transaction_bytes`], since a stranger's transaction is decoded and
    /// verified before anything else is known about it.
    pub max_foreign_transaction_bytes: usize,
    /// Grow log files ahead of the data with zeros so small commits fsync without a metadata
    /// update (default `true`; costs up to 8 MiB of zeros at the end of each log).
    pub preallocate: bool,
    /// Upper bound on transactions written by one group commit (one fsync). Default 1024.
    pub max_group_commit: usize,
    /// How many committed transactions a chain's commit stream keeps for subscribers that
    /// fall behind (default [`DEFAULT_COMMIT_STREAM_CAPACITY`]; at least 1, at most 2^20). A subscriber
    /// further behind reads what it missed from the chain's history instead
    /// (`Chain::subscribe`): a larger value saves it that work, at the cost of holding more
    /// transactions (references to bytes the chain keeps anyway).
    pub commit_stream_capacity: usize,
    /// When each chain compacts its log by itself (default [`CompactMode::Never`]: only when
    /// [`Chain::compact`](crate::Chain::compact) is called).
    pub compact_mode: CompactMode,
    /// How long a transaction stays as it was committed before a compaction may judge it
    /// (default zero: a compaction judges everything committed before it starts). Counted
    /// from when this process committed or received it; what a chain's log held when it was
    /// opened is old enough. Applies to [`Chain::compact`](crate::Chain::compact) and to
    /// [`AteConfig::compact_mode`].
    pub compact_tolerance: Duration,
}

impl Default for AteConfig {
    fn default() -> Self {
        AteConfig {
            log_path: Some(default_log_path()),
            recovery_mode: RecoveryMode::default(),
            max_transaction_bytes: DEFAULT_MAX_FRAME,
            max_foreign_transaction_bytes: DEFAULT_MAX_FOREIGN_TRANSACTION,
            preallocate: true,
            max_group_commit: 1024,
            commit_stream_capacity: DEFAULT_COMMIT_STREAM_CAPACITY,
            compact_mode: CompactMode::Never,
            compact_tolerance: Duration::ZERO,
        }
    }
}

impl AteConfig {
    /// A configuration that keeps every chain in memory only.
    pub fn in_memory() -> Self {
        AteConfig {
            log_path: None,
            ..Self::default()
        }
    }

    /// A configuration that keeps logs under `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        AteConfig {
            log_path: Some(path.into()),
            ..Self::default()
        }
    }
}

/// Where chains are stored by default: `ate-<uid>` under the system temporary folder
/// (`std::env::temp_dir()`) on Unix, so each user of a machine has a folder of their own;
/// `ate` under it elsewhere.
pub fn default_log_path() -> PathBuf {
    std::env::temp_dir().join(default_folder_name())
}

#[cfg(unix)]
fn default_folder_name() -> String {
    // SAFETY: getuid has no preconditions, touches no memory of ours and cannot fail.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::getuid() };
    format!("ate-{uid}")
}

#[cfg(not(unix))]
fn default_folder_name() -> String {
    "ate".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_is_per_user() {
        let path = AteConfig::default().log_path.expect("on disk");
        assert_eq!(path.parent(), Some(std::env::temp_dir().as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // The owner of a file this process creates is the user it runs as.
            let probe = tempfile::NamedTempFile::new().expect("probe");
            let uid = probe.as_file().metadata().expect("probe").uid();
            assert_eq!(path.file_name(), Some(format!("ate-{uid}").as_ref()));
        }
        assert_eq!(AteConfig::in_memory().log_path, None);
    }
}
