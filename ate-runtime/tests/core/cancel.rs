//! Cancel safety of `Dio::commit`: a commit future dropped after its transaction reached the
//! chain's writer never stages its writes again (they may be in the log), and the Dio still
//! learns the versions it wrote. (Dropped while its transaction is sealed on the sealing pool:
//! see the unit tests of `dio`.)

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ate_runtime::prelude::*;

use crate::common::Note;

/// Polls `fut` once; whether it completed.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.poll(&mut cx), Poll::Ready(_))
}

/// Waits for `cond` (the bound only guards against a hang; nothing is measured).
async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_dropped_after_the_writer_took_it_stages_nothing_again() {
    let chain = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from("cancel-after"))
        .await
        .unwrap();
    let mut dio = chain.dio(&AteSession::default()).await;
    let key = *dio.store(Note::new(0)).unwrap().key();
    dio.commit().await.unwrap();
    // A Dao held across commits: each change names the version this Dio knows of.
    let mut held = dio.load::<Note>(&key).await.unwrap();
    let mut dropped_pending = 0;
    for n in 1..=30u64 {
        held.as_mut().text = format!("change {n}");
        // An unsigned one-record commit is sealed on this task and handed to the writer on its
        // first poll: dropped after that, whether or not it completed.
        let mut done = poll_once(pin!(dio.commit()));
        // Between the view showing the previous commit and its reply reaching this Dio, a
        // commit first waits for that reply: dropped then, it took nothing, and the writes stay
        // staged (as they must). Try again until one takes them.
        while !done && dio.has_changes() {
            tokio::task::yield_now().await;
            done = poll_once(pin!(dio.commit()));
        }
        if !done {
            dropped_pending += 1;
        }
        assert!(!dio.has_changes(), "the writes are not staged again");
        let reader = chain.dio(&AteSession::default()).await;
        let expected = format!("change {n}");
        eventually(|| futures_block(reader.load::<Note>(&key)).is_ok_and(|d| d.text == expected))
            .await;
    }
    // The next commit waits for the dropped ones and knows the version they wrote.
    held.as_mut().text = "last".into();
    dio.commit().await.unwrap();
    let reader = chain.dio(&AteSession::default()).await;
    assert_eq!(reader.load::<Note>(&key).await.unwrap().text, "last");
    eprintln!("{dropped_pending} of 30 commits were dropped while the writer had them");
}

/// Runs a future that is ready at once (a load from the view) to completion here.
fn futures_block<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
