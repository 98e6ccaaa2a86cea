//! The "run is ending" signal (Ctrl-C, wall-clock limit): once set, every
//! pending and later host call returns `interrupted`, so a plugin can
//! return what it has measured.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    set: AtomicBool,
    notify: Notify,
}

/// A cloneable one-way latch.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    state: Arc<State>,
}

impl Interrupt {
    /// A latch not yet set.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Sets the latch and wakes every waiter.
    pub fn trigger(&self) {
        self.state.set.store(true, Ordering::SeqCst);
        self.state.notify.notify_waiters();
    }

    /// Whether it was set.
    pub fn is_set(&self) -> bool {
        self.state.set.load(Ordering::SeqCst)
    }

    /// Resolves once the latch is set.
    pub async fn wait(&self) {
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `f` unless the latch is set first (`None`).
    pub async fn run<F: Future>(&self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.wait() => None,
            out = f => Some(out),
        }
    }

    /// Sleeps; `Err` when interrupted.
    pub async fn sleep(&self, d: Duration) -> Result<(), ()> {
        self.run(tokio::time::sleep(d)).await.ok_or(())
    }
}
