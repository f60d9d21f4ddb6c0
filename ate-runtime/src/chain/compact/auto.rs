//! When a chain compacts by itself ([`CompactMode`]), and what a compaction may judge (the
//! tolerance window of [`AteConfig::compact_tolerance`](crate::AteConfig::compact_tolerance)).
//!
//! The writer tells the [`Tracker`] the log's size after each group it commits; the tracker
//! wakes the chain's compaction task when the log has grown past its trigger, or the timer
//! does. Each compaction resets the baseline the growth is measured from to the compacted
//! log's size.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The smallest growth a [`CompactMode::GrowthFactor`] compacts for: a chain's log is not
/// compacted before it grew by this many bytes since it was opened or last compacted,
/// whatever the factor (so a new, small chain is not compacted at every other commit).
pub const MIN_COMPACT_GROWTH: u64 = 64 << 10;

/// The shortest period of [`CompactMode::Timer`] (a shorter one counts as this).
pub const MIN_COMPACT_PERIOD: Duration = Duration::from_millis(100);

/// The smallest factor of [`CompactMode::GrowthFactor`] (a smaller one, or NaN, counts as
/// this).
pub const MIN_COMPACT_FACTOR: f64 = 1.1;

/// When a chain compacts its log by itself ([`Chain::compact`](crate::Chain::compact)
/// compacts it when called, whatever the mode).
///
/// A compaction judges the transactions committed before the tolerance window
/// ([`AteConfig::compact_tolerance`](crate::AteConfig::compact_tolerance)); a growth is
/// measured from the log's size when the chain was opened or last compacted. A mode is checked
/// while the chain is open in a program with a Tokio runtime (each chain has a task of its own
/// that sleeps until the log grows past its trigger or its timer fires); a failed compaction
/// is logged (`tracing`, warning) and the chain goes on with its log as it was.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum CompactMode {
    /// Only when [`Chain::compact`](crate::Chain::compact) is called (the default).
    #[default]
    Never,
    /// Every period, when something was committed since the last compaction.
    Timer(Duration),
    /// When the log is this many times its size after the last compaction (or at open), and
    /// at least [`MIN_COMPACT_GROWTH`] bytes larger.
    GrowthFactor(f64),
    /// When the log grew by this many bytes since the last compaction (or the open).
    GrowthSize(u64),
    /// On a growth factor, or when the timer fires, whichever comes first (the timer starts
    /// again after each compaction).
    GrowthFactorOrTimer {
        /// As [`CompactMode::GrowthFactor`].
        growth: f64,
        /// As [`CompactMode::Timer`].
        timer: Duration,
    },
    /// On a growth in bytes, or when the timer fires, whichever comes first (the timer starts
    /// again after each compaction).
    GrowthSizeOrTimer {
        /// As [`CompactMode::GrowthSize`].
        growth: u64,
        /// As [`CompactMode::Timer`].
        timer: Duration,
    },
}

/// The growth half of a mode: the log size that triggers a compaction, from a baseline.
#[derive(Debug, Clone, Copy)]
enum Growth {
    Factor(f64),
    Size(u64),
}

impl CompactMode {
    fn growth(&self) -> Option<Growth> {
        match *self {
            CompactMode::GrowthFactor(f) | CompactMode::GrowthFactorOrTimer { growth: f, .. } => {
                Some(Growth::Factor(f.max(MIN_COMPACT_FACTOR)))
            }
            CompactMode::GrowthSize(s) | CompactMode::GrowthSizeOrTimer { growth: s, .. } => {
                Some(Growth::Size(s.max(1)))
            }
            _ => None,
        }
    }

    fn timer(&self) -> Option<Duration> {
        match *self {
            CompactMode::Timer(t)
            | CompactMode::GrowthFactorOrTimer { timer: t, .. }
            | CompactMode::GrowthSizeOrTimer { timer: t, .. } => Some(t.max(MIN_COMPACT_PERIOD)),
            _ => None,
        }
    }

    /// Whether the chain compacts by itself.
    pub(crate) fn is_active(&self) -> bool {
        self.growth().is_some() || self.timer().is_some()
    }
}

/// What the writer and the compaction task share about a chain's log.
pub(crate) struct Tracker {
    mode: CompactMode,
    tolerance: Duration,
    /// The log's size, as of the writer's last group or swap.
    size: AtomicU64,
    /// The log size at which a growth mode compacts (`u64::MAX`: none).
    trigger: AtomicU64,
    /// The log's size when the chain was opened or last compacted.
    baseline: AtomicU64,
    /// Wakes the compaction task: the log passed its trigger, or the chain is closing.
    wake: Notify,
    window: Mutex<Window>,
}

/// The transactions committed within the tolerance window, to tell how far a compaction may
/// judge.
struct Window {
    /// The last transaction known older than the window (every one the open found counts as
    /// old).
    old: u64,
    /// When each of the last groups was committed, and its last transaction, oldest first.
    recent: VecDeque<(Instant, u64)>,
}

impl Tracker {
    /// The tracker of a chain opened with a log of `size` bytes whose last transaction is
    /// `last`.
    pub(crate) fn new(mode: CompactMode, tolerance: Duration, size: u64, last: u64) -> Self {
        let t = Tracker {
            mode,
            tolerance,
            size: AtomicU64::new(size),
            trigger: AtomicU64::new(u64::MAX),
            baseline: AtomicU64::new(size),
            wake: Notify::new(),
            window: Mutex::new(Window {
                old: last,
                recent: VecDeque::new(),
            }),
        };
        t.rebase(size);
        t
    }

    /// The chain's compaction mode.
    pub(crate) fn mode(&self) -> CompactMode {
        self.mode
    }

    /// Called by the writer after a group ending at transaction `last` made the log `size`
    /// bytes long.
    pub(crate) fn committed(&self, last: u64, size: u64) {
        self.committed_at(Instant::now(), last, size);
    }

    fn committed_at(&self, now: Instant, last: u64, size: u64) {
        self.size.store(size, Ordering::Relaxed);
        if !self.tolerance.is_zero() {
            let mut w = self.window.lock();
            w.recent.push_back((now, last));
            while let Some(&(at, seq)) = w.recent.front() {
                if now.duration_since(at) < self.tolerance {
                    break;
                }
                w.old = w.old.max(seq);
                w.recent.pop_front();
            }
        }
        if size >= self.trigger.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Called after a compaction left the log `size` bytes long: growth is measured from
    /// there on.
    pub(crate) fn rebase(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
        self.baseline.store(size, Ordering::Relaxed);
        let trigger = match self.mode.growth() {
            None => u64::MAX,
            Some(Growth::Size(s)) => size.saturating_add(s),
            Some(Growth::Factor(f)) => {
                let grown = (size as f64 * f).min(u64::MAX as f64) as u64;
                grown.max(size.saturating_add(MIN_COMPACT_GROWTH))
            }
        };
        self.trigger.store(trigger, Ordering::Relaxed);
    }

    /// The log's size, as of the writer's last group or swap.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Whether the log grew past its trigger.
    pub(crate) fn grown(&self) -> bool {
        self.size.load(Ordering::Relaxed) >= self.trigger.load(Ordering::Relaxed)
    }

    /// Whether anything was committed since the open or the last compaction.
    pub(crate) fn changed(&self) -> bool {
        self.size.load(Ordering::Relaxed) != self.baseline.load(Ordering::Relaxed)
    }

    /// The last transaction a compaction may judge when the chain's last one is `last`: the
    /// last one committed before the tolerance window.
    pub(crate) fn cut_off(&self, last: u64) -> u64 {
        self.cut_off_at(Instant::now(), last)
    }

    fn cut_off_at(&self, now: Instant, last: u64) -> u64 {
        if self.tolerance.is_zero() {
            return last;
        }
        let w = self.window.lock();
        let mut upto = w.old;
        for &(at, seq) in &w.recent {
            if now.duration_since(at) < self.tolerance {
                break;
            }
            upto = seq;
        }
        upto.min(last)
    }

    /// Waits until the log grew past its trigger (or [`Tracker::close`]), or for `timer`.
    pub(crate) async fn wait(&self, timer: Option<Duration>) {
        match timer {
            Some(t) => {
                let _ = tokio::time::timeout(t, self.wake.notified()).await;
            }
            None => self.wake.notified().await,
        }
    }

    /// The timer of the mode.
    pub(crate) fn timer(&self) -> Option<Duration> {
        self.mode.timer()
    }

    /// Wakes the compaction task (the chain is closing).
    pub(crate) fn close(&self) {
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_triggers_from_the_baseline() {
        let t = Tracker::new(CompactMode::GrowthSize(100), Duration::ZERO, 1000, 5);
        t.committed(6, 1099);
        assert!(!t.grown());
        t.committed(7, 1100);
        assert!(t.grown());
        t.rebase(400);
        assert!(!t.grown());
        assert!(!t.changed());
        t.committed(8, 450);
        assert!(t.changed() && !t.grown());
    }

    #[test]
    fn a_growth_factor_waits_for_its_floor_and_small_factors_are_raised() {
        let t = Tracker::new(CompactMode::GrowthFactor(2.0), Duration::ZERO, 16, 0);
        t.committed(1, 1000);
        assert!(!t.grown(), "a small log is not compacted at twice its size");
        t.committed(2, 16 + MIN_COMPACT_GROWTH);
        assert!(t.grown());
        let t = Tracker::new(CompactMode::GrowthFactor(0.5), Duration::ZERO, 1 << 30, 0);
        t.committed(1, 1 << 30);
        assert!(!t.grown(), "a factor below 1 would compact at every commit");
        let t = Tracker::new(
            CompactMode::GrowthFactor(f64::NAN),
            Duration::ZERO,
            1 << 30,
            0,
        );
        assert!(!t.grown());
        let t = Tracker::new(CompactMode::Never, Duration::ZERO, 0, 0);
        t.committed(1, u64::MAX - 1);
        assert!(!t.grown());
    }

    #[test]
    fn the_tolerance_window_holds_back_recent_commits() {
        let t = Tracker::new(CompactMode::Never, Duration::ZERO, 0, 9);
        t.committed(10, 100);
        assert_eq!(t.cut_off(10), 10, "no window: everything is judged");
        let t = Tracker::new(CompactMode::Never, Duration::from_secs(3600), 0, 9);
        t.committed(10, 100);
        t.committed(12, 200);
        assert_eq!(t.cut_off(12), 9, "only what the open found is old enough");
        let t = Tracker::new(CompactMode::Never, Duration::from_secs(20), 0, 9);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        t.committed_at(at(0), 10, 100);
        t.committed_at(at(40), 11, 150);
        assert_eq!(t.cut_off_at(at(40), 11), 10);
        assert_eq!(t.cut_off_at(at(59), 11), 10);
        assert_eq!(t.cut_off_at(at(60), 11), 11);
        // Entries that left the window are folded into what is old.
        t.committed_at(at(100), 12, 200);
        assert_eq!(t.window.lock().recent.len(), 1);
        assert_eq!(t.cut_off_at(at(100), 12), 11);
    }

    #[test]
    fn modes_have_floors() {
        assert_eq!(
            CompactMode::Timer(Duration::ZERO).timer(),
            Some(MIN_COMPACT_PERIOD)
        );
        assert!(!CompactMode::Never.is_active());
        assert!(CompactMode::GrowthSize(0).is_active());
        assert!(
            CompactMode::GrowthSizeOrTimer {
                growth: 1,
                timer: Duration::from_secs(1)
            }
            .timer()
            .is_some()
        );
    }
}
