//! Growing a log file ahead of its data with zeros, on a thread of its own.
//!
//! A small commit's fdatasync is cheap when it overwrites blocks the file already has: there is
//! no size or extent change to flush. So the file is kept ahead of the writer's logical end by a
//! zone of zeros written by a [`Preallocator`] thread: when less than half a chunk of zone is
//! left after an append, the thread writes zeros at the end of the file up to a chunk past the
//! logical end, fdatasyncs, and only then publishes the new end of the zone. The writer never
//! writes zeros itself, and never waits for that work: an append that outruns the zone simply
//! goes past it, as a plain append (its own fdatasync then flushes the size change).
//!
//! The two never write the same bytes. The thread writes only at or after the physical end
//! ([`Extent::physical`]), one piece of at most [`PIECE`] bytes at a time while it holds the
//! extent; an append that reaches past the published zone first takes the extent and moves
//! the physical end past itself. So the one wait the writer can meet is for the piece of zeros
//! being written at that moment, when its append reaches into it.
//!
//! Each piece of zeros is made durable before the next is written: zeros left dirty in the page
//! cache would be written out by whichever commit's fdatasync came next, on that commit's time
//! (one 8 MiB chunk made single commits wait 15–25 ms on the benchmark machine; a piece of
//! 256 KiB at most costs a few milliseconds).
//!
//! Nothing here is needed for durability or recovery: an acknowledged append is durable by the
//! writer's own fdatasync, and zeros after the log are its clean end whether the thread wrote
//! them or not. An I/O error on the thread is logged, never reported to the writer; the writer's
//! own next write reports real trouble.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// The most zeros the thread writes in one call, holding the extent.
const PIECE: u64 = 256 << 10;
static ZEROS: [u8; PIECE as usize] = [0; PIECE as usize];

/// Owns the thread that keeps a zone of zeros ahead of a log file's data. Dropping it finishes
/// the extension asked for, if any, and joins the thread.
#[derive(Debug)]
pub(super) struct Preallocator {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the store's writer and the thread share.
#[derive(Debug)]
struct Shared {
    /// The log file (a handle of its own, on the same open file).
    file: File,
    path: PathBuf,
    /// How far ahead of the logical end the thread writes zeros.
    chunk: u64,
    /// The end of the zone: below it every byte is in the file, and the thread never writes.
    zone_end: AtomicU64,
    /// The writer's logical end.
    logical: AtomicU64,
    extent: Mutex<Extent>,
    requests: Mutex<Requests>,
    /// Wakes the thread for a request, and a test waiting for the thread to be idle.
    wake: Condvar,
}

/// The file's size, held by the thread while it writes a piece of zeros.
#[derive(Debug)]
struct Extent {
    /// The physical end: the size of the file, as far as this process wrote it. The thread
    /// writes only at or after it; an append past the zone moves it past itself.
    physical: u64,
    /// Counts the resizes (truncation, reading the file), which void an extension under way.
    generation: u64,
}

#[derive(Debug, Default)]
struct Requests {
    /// The zone should grow.
    extend: bool,
    /// The thread is growing it.
    busy: bool,
    /// The store is being dropped.
    stop: bool,
}

impl Preallocator {
    /// Starts the thread for `file` (whose size is `physical`), to keep `chunk` bytes of zeros
    /// ahead of the data.
    pub(super) fn start(
        file: &File,
        path: &Path,
        chunk: u64,
        physical: u64,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            file: file.try_clone()?,
            path: path.to_path_buf(),
            chunk,
            zone_end: AtomicU64::new(physical),
            logical: AtomicU64::new(physical),
            extent: Mutex::new(Extent {
                physical,
                generation: 0,
            }),
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ate-preallocate".into())
            .spawn(move || worker.run())?;
        Ok(Preallocator {
            shared,
            thread: Some(thread),
        })
    }

    /// Before the writer writes up to `end`: when that passes the zone, moves the physical end
    /// past it so the thread writes no zeros there (waiting for a piece of zeros being written
    /// at that moment, if any).
    pub(super) fn before_append(&self, end: u64) {
        if end > self.shared.zone_end.load(Ordering::Acquire) {
            let mut extent = self.shared.extent.lock();
            extent.physical = extent.physical.max(end);
        }
    }

    /// After an append moved the logical end to `end`: asks the thread for more zeros when
    /// less than half a chunk of zone is left.
    pub(super) fn appended(&self, end: u64) {
        self.shared.logical.store(end, Ordering::Release);
        let zone_end = self.shared.zone_end.load(Ordering::Acquire);
        if zone_end < end.saturating_add(self.shared.chunk / 2) {
            self.shared.request();
        }
    }

    /// The logical end moved to `len` without an append (recovery resumed or cut the log).
    pub(super) fn resumed_at(&self, len: u64) {
        self.shared.logical.store(len, Ordering::Release);
    }

    /// Runs `resize`, which changes the file's size (or reads it whole) and returns a value and
    /// the file's size, with the thread held off; the zone then starts again at that size, and
    /// an extension under way stops.
    pub(super) fn resized<T>(
        &self,
        resize: impl FnOnce() -> std::io::Result<(T, u64)>,
    ) -> std::io::Result<T> {
        let mut extent = self.shared.extent.lock();
        extent.generation += 1;
        let (value, size) = resize()?;
        extent.physical = size;
        self.shared.zone_end.store(size, Ordering::Release);
        self.shared.logical.store(size, Ordering::Release);
        Ok(value)
    }

    /// Waits until the thread has no extension to do or under way.
    #[cfg(test)]
    pub(super) fn settle(&self) {
        let mut requests = self.shared.requests.lock();
        while requests.extend || requests.busy {
            self.shared.wake.wait(&mut requests);
        }
    }

    /// The end of the zone (test inspection).
    #[cfg(test)]
    pub(super) fn zone_end(&self) -> u64 {
        self.shared.zone_end.load(Ordering::Acquire)
    }
}

impl Drop for Preallocator {
    fn drop(&mut self) {
        self.shared.requests.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic on the thread has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Shared {
    /// The thread: grows the zone on each request, until the store is dropped.
    fn run(&self) {
        // After a failure, the logical end below which the thread does not try again (so a full
        // disk is logged once per chunk of appends, not once per append).
        let mut retry_from = 0;
        while let Some(logical) = self.next_request() {
            if logical >= retry_from {
                let target = logical.saturating_add(self.chunk);
                if let Err(error) = self.extend_to(target) {
                    retry_from = target;
                    tracing::warn!(
                        log = %self.path.display(),
                        %error,
                        "could not write zeros ahead of the log; appends go on past its end"
                    );
                }
            }
            self.finished();
        }
    }

    /// Asks the thread to grow the zone.
    fn request(&self) {
        let mut requests = self.requests.lock();
        if !requests.extend {
            requests.extend = true;
            self.wake.notify_all();
        }
    }

    /// Waits for a request; returns the logical end to grow the zone from, or `None` once the
    /// store is being dropped (a request made before is served first).
    fn next_request(&self) -> Option<u64> {
        let mut requests = self.requests.lock();
        loop {
            if requests.extend {
                requests.extend = false;
                requests.busy = true;
                return Some(self.logical.load(Ordering::Acquire));
            }
            if requests.stop {
                return None;
            }
            self.wake.wait(&mut requests);
        }
    }

    fn finished(&self) {
        self.requests.lock().busy = false;
        self.wake.notify_all();
    }

    /// Writes zeros from the physical end up to `target`, a piece at a time, each fdatasynced,
    /// so the new size is durable before the zone that holds it is published. A resize in the
    /// meantime voids it.
    fn extend_to(&self, target: u64) -> std::io::Result<()> {
        let generation = self.extent.lock().generation;
        let mut wrote = false;
        while self.write_piece(generation, target)? {
            // Each piece is made durable at once: zeros left dirty in the page cache would be
            // written out by the next commit's fdatasync, on the commit's time.
            self.file.sync_data()?;
            wrote = true;
        }
        if wrote {
            self.file.sync_data()?;
            let extent = self.extent.lock();
            if extent.generation == generation {
                self.zone_end.store(extent.physical, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Writes the next piece of zeros at the physical end, holding the extent so no append
    /// lands there meanwhile. Returns whether it wrote anything.
    fn write_piece(&self, generation: u64, target: u64) -> std::io::Result<bool> {
        let mut extent = self.extent.lock();
        if extent.generation != generation || extent.physical >= target {
            return Ok(false);
        }
        let len = (target - extent.physical).min(PIECE);
        self.file
            .write_all_at(&ZEROS[..len as usize], extent.physical)?;
        extent.physical += len;
        Ok(true)
    }
}
