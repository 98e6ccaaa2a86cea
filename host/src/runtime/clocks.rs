//! `wasi:clocks/monotonic-clock` whose subscriptions also wake when the run
//! is interrupted (Ctrl-C, the wall-clock limit). A guest asleep in
//! `std::thread::sleep`, or blocked in `wasi:io/poll` on a clock, wakes
//! like it does in `control.sleep`, and can return what it has measured
//! instead of being cut off after the grace period with nothing.
//!
//! `now` and `resolution` are wasmtime-wasi's own.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::interrupt::Interrupt;

/// Marks the monotonic clock's view of the store.
pub(super) struct InterruptibleClock;

impl HasData for InterruptibleClock {
    type Data<'a> = ClockView<'a>;
}

/// The clocks of a store, with the run's interrupt.
pub(super) struct ClockView<'a> {
    pub(super) clocks: WasiClocksCtxView<'a>,
    pub(super) interrupt: &'a Interrupt,
}

impl ClockView<'_> {
    fn subscribe(&mut self, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let deadline = Deadline {
            // Beyond what the clock can express: wait for the interrupt only.
            at: tokio::time::Instant::now().checked_add(wait),
            zero: wait.is_zero(),
            yielded: false,
            interrupt: self.interrupt.clone(),
        };
        let resource = self.clocks.table.push(deadline)?;
        subscribe(self.clocks.table, resource)
    }
}

impl monotonic_clock::Host for ClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.clocks)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks)?;
        self.subscribe(Duration::from_nanos(when.saturating_sub(now)))
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.subscribe(Duration::from_nanos(duration))
    }
}

/// Ready at `at`, or as soon as the run is interrupted.
struct Deadline {
    at: Option<tokio::time::Instant>,
    zero: bool,
    yielded: bool,
    interrupt: Interrupt,
}

// `Pollable` is an `async_trait`; this is its desugared signature.
impl Pollable for Deadline {
    fn ready<'life, 'fut>(&'life mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'fut>>
    where
        'life: 'fut,
        Self: 'fut,
    {
        Box::pin(async move {
            if self.zero {
                // As wasmtime-wasi does: a guest polling with a zero timeout
                // in a loop must still let the executor run once.
                if !self.yielded {
                    self.yielded = true;
                    tokio::task::yield_now().await;
                }
                return;
            }
            match self.at {
                Some(at) => {
                    let _ = self.interrupt.run(tokio::time::sleep_until(at)).await;
                }
                None => self.interrupt.wait().await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_sleep_wakes_on_interrupt() {
        let interrupt = Interrupt::new();
        let mut d = Deadline {
            at: tokio::time::Instant::now().checked_add(Duration::from_secs(3600)),
            zero: false,
            yielded: false,
            interrupt: interrupt.clone(),
        };
        let trigger = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            interrupt.trigger();
        });
        tokio::time::timeout(Duration::from_secs(5), d.ready())
            .await
            .expect("woke on the interrupt");
        trigger.await.unwrap();
        // Once interrupted, every later subscription is ready at once.
        tokio::time::timeout(Duration::from_millis(100), d.ready())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_short_sleep_ends_on_time() {
        let mut d = Deadline {
            at: tokio::time::Instant::now().checked_add(Duration::from_millis(10)),
            zero: false,
            yielded: false,
            interrupt: Interrupt::new(),
        };
        tokio::time::timeout(Duration::from_secs(5), d.ready())
            .await
            .unwrap();
    }
}
