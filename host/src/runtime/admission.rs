//! Admission to a pooled runtime: which runs may start now.
//!
//! A pool slot holds what a run touched: a slot freed and taken again
//! keeps its tables resident and its mappings made (and a mapped plugin's
//! image, for the same plugin), where a slot no run used before costs its
//! mappings, page faults and, at the end, the `madvise` that hands its
//! pages back. Started all at once, a batch of a thousand short runs uses
//! a thousand fresh slots.
//!
//! So runs start a few at a time: at most [`Admission`]'s window of
//! *young* runs at once. A run is young from its start until it ends or
//! [`SETTLE`] has passed; then it makes room for the next, though it
//! keeps its slot. Short runs (a ping on a quiet network) end young and
//! their slots are taken again, warm. A run that waits (a dead host, a
//! long round trip) settles on time; one that spins settles when its
//! poll yields, which wasm does every epoch tick (10 ms). Neither holds
//! anyone back for longer. Once its interrupt is set (Ctrl-C), a run
//! waits for a slot only: it will stop at once, as the young ones do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Interrupt;

/// How long a run counts against the window at most.
pub const SETTLE: Duration = Duration::from_millis(2);

/// Young runs per core that can be running at once: enough to keep every
/// core busy while some wait for their first reply.
const YOUNG_PER_CORE: usize = 8;

/// Admits runs: up to the pool's slots, and a window of young runs.
#[derive(Debug)]
pub struct Admission {
    /// Free instance slots.
    slots: Arc<Semaphore>,
    /// Places in the window.
    young: Arc<Semaphore>,
}

impl Admission {
    /// Admission to `slots` slots, with a window sized for this machine's
    /// cores.
    pub fn new(slots: usize) -> Admission {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Admission::with_window(slots, cores * YOUNG_PER_CORE)
    }

    /// Admission to `slots` slots, `young` of them young at once (at least
    /// one each).
    pub fn with_window(slots: usize, young: usize) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            young: Arc::new(Semaphore::new(young.max(1))),
        }
    }

    /// Waits for a free slot, then for a place in the window unless
    /// `interrupt` is set first; the run is young from now.
    pub async fn admit(&self, interrupt: &Interrupt) -> Admitted {
        // Neither semaphore is ever closed.
        let slot = Arc::clone(&self.slots).acquire_owned().await.ok();
        let young = interrupt
            .run(Arc::clone(&self.young).acquire_owned())
            .await
            .and_then(Result::ok);
        Admitted {
            _slot: slot,
            young,
            settle: Box::pin(tokio::time::sleep(SETTLE)),
        }
    }
}

/// A run's admission: its slot until dropped (after the run's `Store`),
/// and its place in the window until the run ends or settles.
#[derive(Debug)]
pub struct Admitted {
    _slot: Option<OwnedSemaphorePermit>,
    young: Option<OwnedSemaphorePermit>,
    settle: Pin<Box<tokio::time::Sleep>>,
}

/// A run's future, giving its place in the window back when it ends or
/// settles (or is dropped).
pub struct Young<'a, F> {
    run: F,
    admitted: Option<&'a mut Admitted>,
}

impl<'a, F: Future + Unpin> Young<'a, F> {
    /// `run`, young as `admitted` says (always, without an admission).
    pub fn new(run: F, admitted: Option<&'a mut Admitted>) -> Young<'a, F> {
        Young { run, admitted }
    }
}

impl<F: Future + Unpin> Future for Young<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if let Some(a) = this.admitted.as_deref_mut()
            && a.young.is_some()
            && a.settle.as_mut().poll(cx).is_ready()
        {
            a.young = None;
        }
        let out = Pin::new(&mut this.run).poll(cx);
        // A poll that spun past the deadline settles the run at once: its
        // timer's wake-up waits for a worker like any other.
        if let Some(a) = this.admitted.as_deref_mut()
            && (out.is_ready() || tokio::time::Instant::now() >= a.settle.deadline())
        {
            a.young = None;
        }
        out
    }
}

impl<F> Drop for Young<'_, F> {
    fn drop(&mut self) {
        if let Some(a) = self.admitted.as_deref_mut() {
            a.young = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run admitted by `admission` (failing the test if that takes a
    /// second) and spawned: `run` polled as young.
    async fn spawn<F>(admission: &Admission, run: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        let interrupt = Interrupt::new();
        let admitted = admission.admit(&interrupt);
        let admitted = tokio::time::timeout(Duration::from_secs(1), admitted).await;
        let mut admitted = admitted.expect("not admitted within a second");
        tokio::spawn(async move { Young::new(Box::pin(run), Some(&mut admitted)).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_makes_room_when_it_ends_or_settles() {
        let admission = Admission::with_window(10, 1);
        // The first run never ends: the second starts once it settles.
        let first = spawn(&admission, std::future::pending::<()>()).await;
        let start = tokio::time::Instant::now();
        let second = spawn(&admission, async { 2 }).await;
        assert_eq!(start.elapsed(), SETTLE);
        // The second ends at once: the third need not wait.
        assert_eq!(second.await.unwrap(), 2);
        let third = spawn(&admission, async { 3 }).await;
        assert_eq!(start.elapsed(), SETTLE);
        assert_eq!(third.await.unwrap(), 3);
        first.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_run_makes_room() {
        let admission = Admission::with_window(10, 1);
        let mut admitted = admission.admit(&Interrupt::new()).await;
        let mut young = Young::new(Box::pin(std::future::pending::<()>()), Some(&mut admitted));
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut young).poll(cx))).await;
        assert!(polled.is_pending());
        assert_eq!(admission.young.available_permits(), 0);
        // Dropped young, while its admission (and slot) lives on.
        drop(young);
        assert_eq!(admission.young.available_permits(), 1);
        assert_eq!(admission.slots.available_permits(), 9);
        drop(admitted);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_holds_as_many_young_runs_as_it_says() {
        let admission = Admission::with_window(10, 3);
        let mut young = Vec::new();
        for _ in 0..3 {
            young.push(spawn(&admission, std::future::pending::<()>()).await);
        }
        let start = tokio::time::Instant::now();
        spawn(&admission, async {}).await.await.unwrap();
        assert_eq!(start.elapsed(), SETTLE);
        young.iter().for_each(tokio::task::JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn settled_runs_keep_their_slots() {
        let admission = Admission::with_window(2, 10);
        let first = spawn(&admission, std::future::pending::<()>()).await;
        let second = spawn(&admission, std::future::pending::<()>()).await;
        // Both settled long ago: the third waits for a slot, not a place.
        let interrupt = Interrupt::new();
        let third = tokio::time::timeout(SETTLE * 100, admission.admit(&interrupt)).await;
        assert!(third.is_err(), "admitted beyond the pool's slots");
        first.abort();
        let _ = first.await;
        let third = tokio::time::timeout(SETTLE, admission.admit(&interrupt)).await;
        assert!(third.is_ok(), "a freed slot was not taken");
        second.abort();
    }

    /// Real time: the poll below takes it.
    #[tokio::test]
    async fn a_run_that_spins_past_the_deadline_settles_in_that_poll() {
        let admission = Admission::with_window(10, 1);
        // One poll that takes three times the deadline and stays pending.
        let spin = std::future::poll_fn(|_| {
            std::thread::sleep(SETTLE * 3);
            Poll::<()>::Pending
        });
        let mut admitted = admission.admit(&Interrupt::new()).await;
        let mut young = Young::new(Box::pin(spin), Some(&mut admitted));
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut young).poll(cx))).await;
        assert!(polled.is_pending());
        // The place is back while the run still exists.
        assert_eq!(admission.young.available_permits(), 1);
        drop(young);
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_run_needs_a_slot_only() {
        let admission = Admission::with_window(10, 1);
        let first = spawn(&admission, std::future::pending::<()>()).await;
        let interrupt = Interrupt::new();
        interrupt.trigger();
        let start = tokio::time::Instant::now();
        let admitted = admission.admit(&interrupt).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(admitted.young.is_none());
        first.abort();
    }
}
