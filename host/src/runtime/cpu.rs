//! CPU budget: the instance's own CPU time, summed over the polls of its
//! future (`CLOCK_THREAD_CPUTIME_ID` before and after each poll) — host
//! calls run inside those polls, so their CPU counts too — plus the CPU the
//! engine's reader spent routing the run's replies (charged to `charged`).
//! Time spent waiting for replies, or for a core, is not counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::sys::clock::thread_cpu_ns;

/// CPU time used by one run, against its budget.
#[derive(Debug)]
pub struct CpuMeter {
    budget_ns: u64,
    used_ns: AtomicU64,
    /// Work done elsewhere on the run's behalf (the engine's reader).
    charged: Arc<AtomicU64>,
    /// Thread CPU time when the current poll began; 0 between polls.
    poll_start_ns: AtomicU64,
}

impl CpuMeter {
    /// A meter with nothing used.
    pub fn new(budget: Duration) -> Arc<CpuMeter> {
        Arc::new(CpuMeter {
            budget_ns: budget.as_nanos().min(u128::from(u64::MAX)) as u64,
            used_ns: AtomicU64::new(0),
            charged: Arc::default(),
            poll_start_ns: AtomicU64::new(0),
        })
    }

    /// The counter others charge the run's work to.
    pub fn charged(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.charged)
    }

    fn total_ns(&self) -> u64 {
        self.used_ns
            .load(Ordering::Relaxed)
            .saturating_add(self.charged.load(Ordering::Relaxed))
    }

    /// CPU time used so far.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.total_ns())
    }

    /// Whether the budget is spent (as of the last poll).
    pub fn exceeded(&self) -> bool {
        self.total_ns() > self.budget_ns
    }

    /// Whether the budget is spent, counting the poll in progress: for host
    /// calls that loop, which must stop inside the poll.
    pub fn exceeded_now(&self) -> bool {
        let start = self.poll_start_ns.load(Ordering::Relaxed);
        let current = match start {
            0 => 0,
            s => thread_cpu_ns().saturating_sub(s),
        };
        self.total_ns().saturating_add(current) > self.budget_ns
    }

    /// The budget.
    pub fn budget(&self) -> Duration {
        Duration::from_nanos(self.budget_ns)
    }
}

/// A future whose polls are charged to a [`CpuMeter`].
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Arc<CpuMeter>,
}

impl<F> Metered<F> {
    /// Charges `inner`'s polls to `meter`.
    pub fn new(inner: F, meter: Arc<CpuMeter>) -> Metered<F> {
        Metered {
            inner: Box::pin(inner),
            meter,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = thread_cpu_ns();
        self.meter.poll_start_ns.store(start, Ordering::Relaxed);
        let out = self.inner.as_mut().poll(cx);
        self.meter.poll_start_ns.store(0, Ordering::Relaxed);
        let spent = thread_cpu_ns().saturating_sub(start);
        self.meter.used_ns.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_is_free_spinning_is_not() {
        let meter = CpuMeter::new(Duration::from_millis(20));
        Metered::new(tokio::time::sleep(Duration::from_millis(50)), meter.clone()).await;
        assert!(
            meter.used() < Duration::from_millis(5),
            "{:?}",
            meter.used()
        );
        assert!(!meter.exceeded());
        // Burn 30 ms of this thread's CPU time (not wall time: the machine
        // may be busy).
        Metered::new(
            async {
                let start = thread_cpu_ns();
                while thread_cpu_ns() - start < 30_000_000 {
                    std::hint::spin_loop();
                }
            },
            meter.clone(),
        )
        .await;
        assert!(meter.exceeded(), "{:?}", meter.used());
    }
}
