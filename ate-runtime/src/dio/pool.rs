//! Sealing off the async runtime's workers.
//!
//! Sealing a signed transaction is a few hundred microseconds of CPU (a Falcon signature and its
//! check). Done on the committing task, it holds one of the runtime's workers that long, and
//! the tasks whose commits the chain's writer has just confirmed wait behind it to be polled,
//! in no particular order: with many concurrent signing committers that wait, not the commit,
//! is the tail of the latency. So such transactions are sealed on a small pool of threads, one
//! per core, that takes them strictly in arrival order, while the runtime's workers stay free
//! to return confirmed commits at once.
//!
//! A commit that seals while no other is sealing does so on its own task, at once: the pool is
//! for when commits queue ([`busy`]).
//!
//! [`run`] hands a job to the pool and returns a [`Handoff`] for its result. Dropping the
//! handoff never loses the result: whatever the job produces is given to the handoff's
//! `abandoned` callback instead (the Dio puts its staged writes back with it).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Transactions being sealed now, on committing tasks or on the pool.
static SEALING: AtomicUsize = AtomicUsize::new(0);

/// Whether another transaction is being sealed (then a costly one goes to the pool, in turn).
pub(super) fn busy() -> bool {
    #[cfg(test)]
    if tests::ALWAYS_BUSY.with(|b| b.get()) {
        return true;
    }
    SEALING.load(Ordering::Relaxed) > 0
}

/// Counts one transaction as being sealed while it lives.
#[derive(Debug)]
pub(super) struct Sealing(());

impl Sealing {
    /// A transaction sealed on this task.
    pub(super) fn here() -> Self {
        SEALING.fetch_add(1, Ordering::Relaxed);
        Sealing(())
    }
}

impl Drop for Sealing {
    fn drop(&mut self) {
        SEALING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pool's queue (first come, first served) and its threads, started on first use.
fn queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("ate-seal-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue at a time, so jobs start in order.
                        let job = rx.lock().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = started {
                tracing::warn!(error = %e, "cannot start a sealing thread");
            }
        }
        Mutex::new(tx)
    })
}

/// Where a job's result waits for its handoff.
enum Slot<T> {
    Running,
    Done(T),
    /// The handoff was dropped first: the job gives its result to this.
    Abandoned(Box<dyn FnOnce(T) + Send>),
    Taken,
}

/// The result of a job handed to the pool, to come.
pub(super) struct Handoff<T: Send + 'static> {
    slot: Arc<Mutex<Slot<T>>>,
    ready: oneshot::Receiver<()>,
    abandoned: Option<Box<dyn FnOnce(T) + Send>>,
}

/// Runs `job` on the pool, after the jobs handed in before it. When the returned handoff is
/// dropped before it yields the result, `abandoned` receives the result instead (on the pool
/// thread, or on the dropping thread when the job is already done). Without a pool thread the
/// job runs here, at once.
pub(super) fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
    abandoned: impl FnOnce(T) + Send + 'static,
) -> Handoff<T> {
    let slot = Arc::new(Mutex::new(Slot::Running));
    let (done, ready) = oneshot::channel();
    let shared = slot.clone();
    let counted = Sealing::here();
    let work: Job = Box::new(move || {
        let result = job();
        drop(counted);
        let mut slot = shared.lock();
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Abandoned(give) => {
                drop(slot);
                give(result);
            }
            _ => {
                *slot = Slot::Done(result);
                drop(slot);
                let _ = done.send(());
            }
        }
    });
    if let Err(mpsc::SendError(work)) = queue().lock().send(work) {
        work();
    }
    Handoff {
        slot,
        ready,
        abandoned: Some(Box::new(abandoned)),
    }
}

impl<T: Send + 'static> Future for Handoff<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // A job always finishes and reports; a closed channel means it is done too.
        if Pin::new(&mut self.ready).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Done(result) => Poll::Ready(result),
            other => {
                // Unreachable: the job stores its result before it reports.
                *slot = other;
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> Drop for Handoff<T> {
    fn drop(&mut self) {
        let Some(give) = self.abandoned.take() else {
            return;
        };
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Running => *slot = Slot::Abandoned(give),
            Slot::Done(result) => {
                drop(slot);
                give(result);
            }
            Slot::Abandoned(_) | Slot::Taken => {}
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Handoff<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff").finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes every costly commit on this thread go to the pool.
        pub(in crate::dio) static ALWAYS_BUSY: Cell<bool> = const { Cell::new(false) };
    }

    #[tokio::test(flavor = "current_thread")]
    async fn results_arrive_and_dropped_handoffs_give_theirs_back() {
        assert_eq!(run(|| 40 + 2, |_| {}).await, 42);
        // Dropped before the job ran or while it runs, or after it is done: the result reaches
        // the callback exactly once.
        let given = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let g = given.clone();
            let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
            let h = run(
                move || {
                    let _ = gate_rx.recv();
                    7
                },
                move |v| {
                    g.fetch_add(v, Ordering::SeqCst);
                },
            );
            drop(h);
            gate_tx.send(()).unwrap();
        }
        let g = given.clone();
        let h = run(
            || 7,
            move |v| {
                g.fetch_add(v, Ordering::SeqCst);
            },
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(h);
        for _ in 0..200 {
            if given.load(Ordering::SeqCst) == 51 * 7 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(given.load(Ordering::SeqCst), 51 * 7);
    }
}
