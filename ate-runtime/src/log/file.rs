//! A log store in one append-only file.
//!
//! Durability: `sync` is `fdatasync`. To keep that cheap for small commits, the file is grown
//! ahead of the data by writing zeros (never by a sparse `set_len`): an fdatasync that overwrites
//! already-allocated blocks has no file-size or extent metadata to flush. A thread of the store's
//! own writes those zeros and fdatasyncs them (`preallocate.rs`), so an append never stalls on
//! them; an append that outruns them goes past the end of the file. Recovery treats an all-zero
//! tail as the clean end of the log.
//!
//! Quarantine: before recovery cuts a torn tail, the store copies it to a new file beside the log,
//! `<log file name>.quarantine-<offset>-<unix ms>`, fsynced with its folder (see
//! [`LogStore::quarantine`]). The engine never reads or removes these files.
//!
//! Privacy: the files the store creates (logs and quarantine files) have mode 0600 and the folders
//! it creates 0700; a file or folder that already exists keeps its mode.
//!
//! Locking: an open store holds an exclusive lock on its file (`flock`), so a second handle in
//! this or another process gets [`LogError::Locked`]. The lock belongs to the open file, and a
//! child process started by any thread of this process shares the file from its `fork` until its
//! `exec` closes it; a log closed and reopened in that window would find itself locked for a
//! moment. So an open that finds the file locked tries again with short sleeps for up to
//! [`LOCK_WAIT`] before it reports `Locked`.

use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::preallocate::Preallocator;
use super::{LogError, LogStore};

/// The mode of the folders the store creates: the owner's only (what the umask leaves of it).
const DIR_MODE: u32 = 0o700;
/// The mode of the files the store creates: read and write for the owner only.
const FILE_MODE: u32 = 0o600;

/// The engine's preallocation chunk: a store keeps up to this many bytes of zeros ahead of its
/// data, and grows them again when fewer than half are left.
pub const PREALLOCATE_CHUNK: u64 = 8 << 20;
/// Appends at least this large do not ask for preallocated zeros: their own size change is
/// amortised over many bytes.
const LARGE_APPEND: usize = 256 << 10;

/// How long [`FileStore::open`] keeps trying to lock a file that another handle holds before it
/// reports [`LogError::Locked`].
///
/// The lock belongs to the open file, and a child process started by any thread of this process
/// shares the file from its `fork` until its `exec` closes it. A log closed and reopened in that
/// window finds itself locked for a moment; the bounded wait rides that out, while a file that
/// really is open elsewhere is still refused once the wait is over.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);
/// The first pause between two attempts to lock; it doubles up to [`MAX_LOCK_PAUSE`].
const FIRST_LOCK_PAUSE: Duration = Duration::from_millis(1);
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(50);

/// A redo log in a file, locked against other handles and processes while open.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// The thread that writes zeros ahead of the data (`None`: no preallocation). Dropped
    /// first: its handle on the file is closed once it has stopped.
    zone: Option<Preallocator>,
    file: File,
    /// The logical end (where the next append goes).
    len: u64,
    /// The preallocation chunk it was opened with (0: none).
    preallocate: u64,
    /// A replacement was renamed over the log but its folder's fsync failed: the next
    /// [`LogStore::sync`] fsyncs the folder before it returns.
    folder_unsynced: bool,
}

impl FileStore {
    /// Opens (creating if needed, with its folder) the log at `path` and locks it. A new file
    /// gets mode 0600 and new folders 0700 (folders that exist are left as they are). When
    /// `preallocate` is non-zero, a thread of the store's own keeps up to that many bytes of
    /// zeros ahead of the data once appends begin ([`PREALLOCATE_CHUNK`] is the engine's
    /// default); dropping the store finishes the extension under way and joins the thread.
    ///
    /// A file locked by another handle is tried again, with short sleeps, for up to
    /// [`LOCK_WAIT`] before the open fails with [`LogError::Locked`].
    ///
    /// A new file's folder is fsynced so the file itself survives a crash.
    pub fn open(path: &Path, preallocate: u64) -> Result<Self, LogError> {
        Self::open_with_lock_wait(path, preallocate, LOCK_WAIT)
    }

    /// [`FileStore::open`], waiting up to `lock_wait` (which may be zero) for a lock held
    /// elsewhere to be released.
    pub fn open_with_lock_wait(
        path: &Path,
        preallocate: u64,
        lock_wait: Duration,
    ) -> Result<Self, LogError> {
        let io = |source| LogError::Io {
            store: path.display().to_string(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io)?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(path)
            .map_err(io)?;
        let deadline = Instant::now().checked_add(lock_wait);
        let mut pause = FIRST_LOCK_PAUSE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
                    if left.is_zero() {
                        return Err(LogError::Locked {
                            path: path.to_path_buf(),
                        });
                    }
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(MAX_LOCK_PAUSE);
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        if !existed {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        // What a compaction that did not finish left beside the log (the log itself is whole:
        // the new one takes its place only once complete and durable).
        let stray = replacement_path(path);
        if stray.exists() {
            std::fs::remove_file(&stray).map_err(io)?;
        }
        let physical = file.metadata().map_err(io)?.len();
        let zone = match preallocate {
            0 => None,
            chunk => Some(Preallocator::start(&file, path, chunk, physical).map_err(io)?),
        };
        Ok(FileStore {
            path: path.to_path_buf(),
            zone,
            file,
            len: physical,
            preallocate,
            folder_unsynced: false,
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> LogError {
        LogError::Io {
            store: self.path.display().to_string(),
            source,
        }
    }
}

impl LogStore for FileStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn read_all(&mut self) -> Result<Bytes, LogError> {
        let read = || read_whole(&self.file).map(|buf| (buf.len() as u64, buf));
        let buf = match &self.zone {
            Some(zone) => zone.resized(|| read().map(|(size, buf)| (buf, size))),
            None => read().map(|(_, buf)| buf),
        }
        .map_err(|e| self.io(e))?;
        self.len = buf.len() as u64;
        Ok(Bytes::from(buf))
    }

    fn append(&mut self, data: &Bytes) -> Result<(), LogError> {
        let end = self.len + data.len() as u64;
        if let Some(zone) = &self.zone {
            zone.before_append(end);
        }
        self.file
            .write_all_at(data, self.len)
            .map_err(|e| self.io(e))?;
        self.len = end;
        // Only small appends ask for zeros ahead: a large one amortises its own size change, and
        // a log growing by large appends would otherwise be written twice (zeros, then data).
        if let Some(zone) = &self.zone
            && data.len() < LARGE_APPEND
        {
            zone.appended(end);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|e| self.io(e))?;
        if self.folder_unsynced {
            fault::at(fault::Step::SyncFolder)
                .and_then(|()| sync_folder(&self.path))
                .map_err(|e| self.io(e))?;
            self.folder_unsynced = false;
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> Result<(), LogError> {
        let cut = || {
            self.file.set_len(len)?;
            self.file.sync_all()
        };
        match &self.zone {
            Some(zone) => zone.resized(|| cut().map(|()| ((), len))),
            None => cut(),
        }
        .map_err(|e| self.io(e))?;
        self.len = len;
        Ok(())
    }

    fn resume_at(&mut self, len: u64) -> Result<(), LogError> {
        self.len = len;
        if let Some(zone) = &self.zone {
            zone.resumed_at(len);
        }
        Ok(())
    }

    /// Writes the bytes to a new file beside the log, named
    /// `<log file name>.quarantine-<offset>-<unix ms>`, mode 0600, and fsyncs it and its folder
    /// before returning its path.
    fn quarantine(&mut self, offset: u64, bytes: &[u8]) -> Result<String, LogError> {
        let path = write_quarantine(&self.path, offset, bytes).map_err(|e| self.io(e))?;
        Ok(path.display().to_string())
    }

    /// Writes the new log to `<log file name>.compact`, fsyncs it, renames it over the log and
    /// fsyncs the folder. An error before the rename leaves the old log in place (the new file
    /// is removed). Once renamed, the new file is the log whatever follows: should the folder's
    /// fsync fail, the next [`LogStore::sync`] does it again before it returns (a crash before
    /// then leaves the old log or the new one, and nothing written since was acknowledged).
    fn replace(&mut self, contents: &[u8]) -> Result<(), LogError> {
        let next = replacement_path(&self.path);
        let file = write_replacement(&next, contents).map_err(|e| {
            let _ = std::fs::remove_file(&next);
            self.io(e)
        })?;
        // The zeros ahead of the old file's data are no longer wanted; its thread stops first.
        self.zone = None;
        let renamed =
            fault::at(fault::Step::Rename).and_then(|()| std::fs::rename(&next, &self.path));
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&next);
            self.restart_zone();
            return Err(self.io(e));
        }
        // The path names the new file now: every later write goes to it (the old file's
        // handle, and its lock on the old file, close here).
        self.file = file;
        self.len = contents.len() as u64;
        self.restart_zone();
        if let Err(e) = fault::at(fault::Step::SyncFolder).and_then(|()| sync_folder(&self.path)) {
            tracing::warn!(log = %self.path.display(), error = %e, "the folder of a replaced log is not fsynced yet; the next sync does it");
            self.folder_unsynced = true;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl FileStore {
    /// Starts preallocating again (after a replacement), if the store was opened to; a failure
    /// only leaves the log without preallocation, as a failing preallocation thread does.
    fn restart_zone(&mut self) {
        if self.preallocate == 0 || self.zone.is_some() {
            return;
        }
        let physical = self.file.metadata().map_or(self.len, |m| m.len());
        match Preallocator::start(&self.file, &self.path, self.preallocate, physical) {
            Ok(zone) => self.zone = Some(zone),
            Err(e) => {
                tracing::warn!(log = %self.path.display(), error = %e, "preallocation stopped")
            }
        }
    }
}

/// Fsyncs the folder holding `path` (a file created or renamed in it survives a crash).
fn sync_folder(path: &Path) -> std::io::Result<()> {
    File::open(path.parent().unwrap_or(Path::new("."))).and_then(|d| d.sync_all())
}

/// Fault points in [`FileStore::replace`], for the tests: a step told to fail returns an I/O
/// error instead of running. Without `cfg(test)` nothing ever fails here.
mod fault {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Step {
        /// Writing the new file (after it was created).
        Write,
        /// Fsyncing the new file.
        Sync,
        /// Renaming it over the log.
        Rename,
        /// Fsyncing the folder after the rename (and in the next sync).
        SyncFolder,
    }

    #[cfg(test)]
    thread_local! {
        /// The step to fail, and how many more times.
        static FAIL: std::cell::Cell<Option<(Step, u32)>> = const { std::cell::Cell::new(None) };
    }

    /// Makes `step` fail its next `times` times on this thread.
    #[cfg(test)]
    pub(super) fn fail(step: Step, times: u32) {
        FAIL.set(Some((step, times)));
    }

    #[cfg(test)]
    pub(super) fn at(step: Step) -> std::io::Result<()> {
        match FAIL.get() {
            Some((s, n)) if s == step && n > 0 => {
                FAIL.set(Some((s, n - 1)));
                Err(std::io::Error::other(format!(
                    "injected failure at {step:?}"
                )))
            }
            _ => Ok(()),
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn at(_: Step) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a replacement of the log at `log` is written before it takes the log's place.
fn replacement_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or(OsStr::new("log")).to_os_string();
    name.push(".compact");
    log.with_file_name(name)
}

/// Writes `contents` to a new file at `path` (mode 0600), locked, and fsyncs it.
fn write_replacement(path: &Path, contents: &[u8]) -> std::io::Result<File> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.try_lock().map_err(std::io::Error::other)?;
    fault::at(fault::Step::Write)?;
    file.write_all_at(contents, 0)?;
    fault::at(fault::Step::Sync)?;
    file.sync_all()?;
    Ok(file)
}

/// Every byte of `file`, from offset 0.
fn read_whole(file: &File) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(file.metadata()?.len() as usize);
    let mut f = file;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// The longest file name most file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The name of the file that keeps the tail cut at `offset` from the log file `log_name`:
/// `<log_name>.quarantine-<offset>-<unix_ms>`, then `.<attempt>` when `attempt` is not 0 (the
/// name was taken). The log's name is shortened when the whole would be longer than
/// [`NAME_MAX`] bytes.
fn quarantine_name(log_name: &OsStr, offset: u64, unix_ms: u128, attempt: u32) -> OsString {
    let mut suffix = format!(".quarantine-{offset}-{unix_ms}");
    if attempt > 0 {
        suffix.push_str(&format!(".{attempt}"));
    }
    let log_name = log_name.as_bytes();
    let keep = log_name.len().min(NAME_MAX.saturating_sub(suffix.len()));
    let mut name = log_name[..keep].to_vec();
    name.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(name)
}

/// Writes `bytes` to a new quarantine file beside the log at `log` (mode 0600, never an existing
/// file), fsyncs it, then its folder; returns its path. What it created is removed when a later
/// step fails. Trailing zeros (a torn tail is mostly followed by preallocated space) are not
/// written but left as a hole: the file reads back as `bytes`, without taking their room on disk.
fn write_quarantine(log: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let (path, mut file) = create_quarantine_file(log, offset)?;
    let dir = log.parent().unwrap_or(Path::new("."));
    let data = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let written = file
        .write_all(&bytes[..data])
        .and_then(|()| file.set_len(bytes.len() as u64))
        .and_then(|()| file.sync_all())
        .and_then(|()| File::open(dir)?.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Creates the quarantine file for the tail at `offset` of the log at `log`, under the first
/// name of [`quarantine_name`] that is free.
fn create_quarantine_file(log: &Path, offset: u64) -> std::io::Result<(PathBuf, File)> {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let log_name = log.file_name().unwrap_or(OsStr::new("log"));
    let mut attempt = 0;
    loop {
        let path = log.with_file_name(quarantine_name(log_name, offset, unix_ms, attempt));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::{DEFAULT_MAX_FRAME, RecoveryMode, RedoLog, encode_frames};
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_replaced_log_is_private_locked_and_what_an_unfinished_one_leaves_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut store = FileStore::open(&path, PREALLOCATE_CHUNK).unwrap();
        store.append(&Bytes::from_static(b"old bytes")).unwrap();
        store.sync().unwrap();
        store.replace(b"new log").unwrap();
        assert_eq!(store.len(), 7);
        store.append(&Bytes::from_static(b"!")).unwrap();
        store.sync().unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(
            !replacement_path(&path).exists(),
            "nothing left beside the log"
        );
        // The lock moved to the new file.
        assert!(matches!(
            FileStore::open_with_lock_wait(&path, 0, Duration::ZERO),
            Err(LogError::Locked { .. })
        ));
        drop(store);
        let read = std::fs::read(&path).unwrap();
        assert_eq!(&read[..8], b"new log!");
        assert!(
            read[8..].iter().all(|b| *b == 0),
            "only preallocated zeros after"
        );

        // A crash before the rename leaves the old log whole and a partial new one beside it,
        // which the next open removes.
        std::fs::write(replacement_path(&path), b"half a new lo").unwrap();
        let mut store = FileStore::open(&path, 0).unwrap();
        assert!(!replacement_path(&path).exists());
        assert_eq!(&store.read_all().unwrap()[..8], b"new log!");
    }

    /// A store at `path` holding `bytes`, synced.
    fn store_with(path: &Path, bytes: &'static [u8]) -> FileStore {
        let mut store = FileStore::open(path, 0).unwrap();
        store.append(&Bytes::from_static(bytes)).unwrap();
        store.sync().unwrap();
        store
    }

    /// Each step of a replacement failing: before the rename, an error, the old log in place and
    /// going on, nothing left beside it. The folder's fsync failing after the rename: the new
    /// file is the log (what is written next goes where a reopen finds it), and the next sync
    /// fsyncs the folder before it returns.
    #[test]
    fn a_replacement_failing_at_each_step_leaves_one_whole_log_that_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        for step in [fault::Step::Write, fault::Step::Sync, fault::Step::Rename] {
            let path = dir.path().join(format!("{step:?}.log"));
            let mut store = store_with(&path, b"old log");
            fault::fail(step, 1);
            match store.replace(b"new log") {
                Err(LogError::Io { source, .. }) => {
                    assert!(source.to_string().contains(&format!("{step:?}")))
                }
                other => panic!("{step:?}: {other:?}"),
            }
            assert!(!replacement_path(&path).exists(), "{step:?}");
            assert_eq!(store.len(), 7);
            store.append(&Bytes::from_static(b"+more")).unwrap();
            store.sync().unwrap();
            drop(store);
            assert_eq!(std::fs::read(&path).unwrap(), b"old log+more", "{step:?}");
        }

        for failures in [1, 2] {
            let path = dir.path().join(format!("folder{failures}.log"));
            let mut store = store_with(&path, b"old log");
            fault::fail(fault::Step::SyncFolder, failures);
            store.replace(b"new log").expect("in place once renamed");
            assert!(!replacement_path(&path).exists());
            store.append(&Bytes::from_static(b"+more")).unwrap();
            if failures == 2 {
                // Not durable yet: the sync fails (a commit would fail), then succeeds.
                assert!(matches!(store.sync(), Err(LogError::Io { .. })));
            }
            store.sync().unwrap();
            assert!(!store.folder_unsynced);
            drop(store);
            assert_eq!(std::fs::read(&path).unwrap(), b"new log+more", "{failures}");
        }
    }

    #[test]
    fn new_logs_and_folders_are_private_and_existing_ones_keep_their_mode() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = root.path().join("a/b/x.log");
        drop(FileStore::open(&path, 0).unwrap());
        assert_eq!(
            mode(root.path()),
            0o755,
            "an existing folder is not changed"
        );
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        assert_eq!(mode(&path), 0o600);

        let shared = root.path().join("a/shared.log");
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(FileStore::open(&shared, 0).unwrap());
        assert_eq!(mode(&shared), 0o640, "an existing file is not changed");
    }

    /// A log of one frame followed by a torn one; returns its bytes and where the torn frame starts.
    fn log_with_torn_tail(path: &Path) -> (Vec<u8>, usize) {
        let store = FileStore::open(path, 0).unwrap();
        let (mut log, _, _) =
            RedoLog::open(store, RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        log.append(&[b"acknowledged"]).unwrap();
        log.sync().unwrap();
        drop(log);
        let mut bytes = std::fs::read(path).unwrap();
        let torn_at = bytes.len();
        bytes.extend_from_slice(&encode_frames(&[b"never acknowledged"])[..20]);
        std::fs::write(path, &bytes).unwrap();
        (bytes, torn_at)
    }

    #[test]
    fn a_torn_tail_is_kept_in_a_private_file_beside_the_log_before_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.log");
        let (bytes, torn_at) = log_with_torn_tail(&path);
        let store = FileStore::open(&path, 0).unwrap();
        let (_log, recs, report) =
            RedoLog::open(store, RecoveryMode::default(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(recs.len(), 1);
        let q = report.quarantine.expect("the torn tail is quarantined");
        assert_eq!(
            (q.offset, q.len),
            (torn_at as u64, (bytes.len() - torn_at) as u64)
        );
        let kept = Path::new(&q.location);
        assert_eq!(kept.parent(), Some(dir.path()));
        let name = kept.file_name().unwrap().to_str().unwrap();
        let unix_ms = name
            .strip_prefix(&format!("tail.log.quarantine-{torn_at}-"))
            .unwrap_or_else(|| panic!("{name}"));
        assert!(unix_ms.parse::<u128>().is_ok(), "{name}");
        assert_eq!(mode(kept), 0o600);
        assert_eq!(std::fs::read(kept).unwrap(), bytes[torn_at..]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes[..torn_at],
            "then the log is cut"
        );
    }

    #[test]
    fn quarantine_names_fit_the_file_system_and_never_replace_a_file() {
        let name = |log: &str, attempt| quarantine_name(OsStr::new(log), 5, 17, attempt);
        assert_eq!(name("a.log", 0), "a.log.quarantine-5-17");
        assert_eq!(name("a.log", 2), "a.log.quarantine-5-17.2");
        let long = format!("{}.log", "x".repeat(251));
        let cut = name(&long, 3);
        assert_eq!(cut.len(), NAME_MAX);
        assert!(cut.to_str().unwrap().ends_with("xx.quarantine-5-17.3"));

        // A log with the longest name a file system allows still has its tail kept.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&long);
        let mut store = FileStore::open(&path, 0).unwrap();
        let first = store.quarantine(5, b"one").unwrap();
        let second = store.quarantine(5, b"two").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
    }

    #[test]
    fn a_quarantined_tail_of_zeros_takes_no_room() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(&dir.path().join("z.log"), 0).unwrap();
        let mut tail = vec![7u8; 100];
        tail.resize(PREALLOCATE_CHUNK as usize, 0);
        let kept = store.quarantine(16, &tail).unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), tail);
        let blocks = std::fs::metadata(&kept).unwrap().blocks() * 512;
        assert!(
            blocks < 1 << 20,
            "{blocks} bytes allocated for 100 bytes of data"
        );
    }

    #[test]
    fn a_quarantine_that_cannot_be_written_fails_the_open_and_leaves_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.log");
        let (bytes, _) = log_with_torn_tail(&path);
        let store = FileStore::open(&path, 0).unwrap();
        // The open file is still readable, but no file can be created beside it any more.
        let moved = dir.path().join("moved");
        std::fs::rename(dir.path().join("sub"), &moved).unwrap();
        match RedoLog::open(store, RecoveryMode::default(), DEFAULT_MAX_FRAME) {
            Err(LogError::Io { store, source }) => {
                assert_eq!(store, path.display().to_string());
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {:?}", other.map(|o| o.2)),
        }
        assert_eq!(
            std::fs::read(moved.join("x.log")).unwrap(),
            bytes,
            "the log is untouched"
        );
        assert_eq!(
            std::fs::read_dir(&moved).unwrap().count(),
            1,
            "nothing else was written"
        );
    }

    /// Appends of many sizes, from a few bytes to more than a chunk, the larger ones rarer.
    fn appends(seed: u64, total: usize) -> Vec<Vec<u8>> {
        let mut state = seed;
        let mut out = Vec::new();
        let mut written = 0;
        while written < total {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = match state >> 60 {
                0 => 9000 + (state >> 20) as usize % 9000,
                1..=3 => 500 + (state >> 20) as usize % 3000,
                _ => 1 + (state >> 20) as usize % 200,
            };
            out.push((0..len).map(|i| (i as u64 ^ state) as u8 | 1).collect());
            written += len;
        }
        out
    }

    #[test]
    fn appends_across_many_chunk_boundaries_read_back_exactly() {
        for chunk in [64, 4096] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("grown.log");
            let mut store = FileStore::open(&path, chunk).unwrap();
            let mut expected = Vec::new();
            for (i, data) in appends(chunk, 60 * 4096).into_iter().enumerate() {
                store.append(&Bytes::from(data.clone())).unwrap();
                expected.extend_from_slice(&data);
                if i % 7 == 0 {
                    store.sync().unwrap();
                }
            }
            store.sync().unwrap();
            let zone = store.zone.as_ref().unwrap();
            zone.settle();
            assert!(
                zone.zone_end() >= store.len() + chunk / 2,
                "chunk {chunk}: the zone is ahead again once the thread is idle"
            );
            drop(store);
            let raw = std::fs::read(&path).unwrap();
            assert!(raw.len() as u64 >= expected.len() as u64 + chunk / 2);
            assert!(raw[..expected.len()] == expected, "chunk {chunk}: the data");
            assert!(raw[expected.len()..].iter().all(|b| *b == 0), "then zeros");
        }
    }

    #[test]
    fn a_log_reopened_after_drop_ends_where_the_zeros_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros.log");
        let payloads = appends(7, 50_000);
        let mut end = 0;
        for round in 0..2 {
            let store = FileStore::open(&path, 4096).unwrap();
            let (mut log, recs, report) =
                RedoLog::open(store, RecoveryMode::AbsoluteConsistency, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(recs.len(), round * payloads.len());
            assert_eq!((report.truncated, report.quarantine), (0, None));
            if round == 1 {
                assert_eq!(report.end, end);
            }
            for p in &payloads {
                log.append(&[p]).unwrap();
                log.sync().unwrap();
            }
            end = log.len();
            drop(log);
            // The thread has stopped and closed its handle: the file is free.
            let free = FileStore::open_with_lock_wait(&path, 0, Duration::ZERO);
            assert!(
                free.is_ok(),
                "round {round}: the store's thread let go of the file"
            );
            drop(free);
            let raw = std::fs::read(&path).unwrap();
            assert!(raw.len() as u64 > end, "zeros follow the log");
            assert!(raw[end as usize..].iter().all(|b| *b == 0));
        }
        let store = FileStore::open(&path, 4096).unwrap();
        let (_, recs, report) =
            RedoLog::open(store, RecoveryMode::AbsoluteConsistency, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(recs.len(), 2 * payloads.len());
        assert_eq!(report.end, end);
        for (r, p) in recs.iter().zip(payloads.iter().chain(&payloads)) {
            assert_eq!(&r.payload[..], &p[..]);
        }
    }

    #[test]
    fn truncate_and_read_all_see_the_zeros_the_thread_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resize.log");
        let mut store = FileStore::open(&path, 4096).unwrap();
        store.append(&Bytes::from(vec![7u8; 100])).unwrap();
        store.zone.as_ref().unwrap().settle();
        let grown = std::fs::metadata(&path).unwrap().len();
        assert!(grown >= 100 + 4096, "the thread grew the file to {grown}");
        let all = store.read_all().unwrap();
        assert_eq!(all.len() as u64, grown);
        assert_eq!((all[..100] == [7u8; 100], store.len()), (true, grown));

        store.truncate(50).unwrap();
        store.zone.as_ref().unwrap().settle();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            50,
            "a cut stays cut"
        );
        assert_eq!(store.read_all().unwrap()[..], [7u8; 50]);

        store.resume_at(40).unwrap();
        store.append(&Bytes::from(vec![9u8; 30])).unwrap();
        store.zone.as_ref().unwrap().settle();
        drop(store);
        let raw = std::fs::read(&path).unwrap();
        assert!(raw.len() >= 70 + 4096 / 2);
        assert_eq!(raw[..40], [7u8; 40]);
        assert_eq!(raw[40..70], [9u8; 30]);
        assert!(raw[70..].iter().all(|b| *b == 0));
    }
}
