//! CPU budget: the instance's own CPU time, summed over the polls of its
//! future (`CLOCK_THREAD_CPUTIME_ID` before and after each poll). Time
//! spent waiting for replies, or for a core, is not counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// CPU time used by one run, against its budget.
#[derive(Debug)]
pub struct CpuMeter {
    budget_ns: u64,
    used_ns: AtomicU64,
}

impl CpuMeter {
    /// A meter with nothing used.
    pub fn new(budget: Duration) -> Arc<CpuMeter> {
        Arc::new(CpuMeter {
            budget_ns: budget.as_nanos().min(u128::from(u64::MAX)) as u64,
            used_ns: AtomicU64::new(0),
        })
    }

    /// CPU time used so far.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.used_ns.load(Ordering::Relaxed))
    }

    /// Whether the budget is spent.
    pub fn exceeded(&self) -> bool {
        self.used_ns.load(Ordering::Relaxed) > self.budget_ns
    }

    /// The budget.
    pub fn budget(&self) -> Duration {
        Duration::from_nanos(self.budget_ns)
    }
}

fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
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
        let out = self.inner.as_mut().poll(cx);
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
