/*!
The runs the service knows: each tenant's running ones (at most its
`max_concurrent`, counted by [`Slot`]s that free themselves however a run
ends) and its finished ones, kept for a bounded time and count. Ids are
random 128-bit values; a lookup names the tenant, so another tenant's id
is simply not found.
*/

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::events::EventLog;
use crate::report::Entry;
use crate::runtime::Interrupt;

/// A run's id: 32 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId(u128);

impl RunId {
    fn random() -> RunId {
        RunId(rand::random())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for RunId {
    type Err = ();

    fn from_str(s: &str) -> Result<RunId, ()> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u128::from_str_radix(s, 16).map(RunId).map_err(|_| ())
    }
}

/// What `GET /v1/runs/<id>` answers: a batch entry plus `id`, `tenant`
/// and `state`.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// The run's id.
    pub id: String,
    /// Whose run it is.
    pub tenant: String,
    /// The plugin: a built-in name or `sha256:<hex>`.
    pub plugin: String,
    /// `running` or `done`.
    pub state: &'static str,
    /// 0 reached, 1 not reached, 2 error; `null` while running.
    pub exit: Option<u8>,
    /// How it ended; `null` while running.
    pub outcome: Option<&'static str>,
    /// CPU time used.
    pub cpu_ms: Option<f64>,
    /// The plugin's result.
    pub result: Value,
    /// Why it failed.
    pub error: Option<String>,
    /// The results it streamed while it ran (`result-line` events).
    pub result_lines: Vec<Value>,
    /// It was interrupted (DELETE, shutdown, wall-clock limit) and
    /// returned what it had.
    pub interrupted: bool,
    /// Progress events not kept (over the run's output caps).
    pub events_dropped: u64,
}

/// One run, running or done.
#[derive(Debug)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// Whose run.
    pub tenant: String,
    /// Which plugin.
    pub plugin: String,
    /// Its progress events.
    pub events: Arc<EventLog>,
    /// Ends it early.
    pub interrupt: Interrupt,
    done: watch::Sender<Option<(Entry, bool)>>,
}

impl Run {
    /// The envelope as of now.
    pub fn envelope(&self) -> Envelope {
        let done = self.done.borrow().clone();
        let (state, entry, interrupted) = match done {
            Some((entry, interrupted)) => ("done", Some(entry), interrupted),
            None => ("running", None, false),
        };
        Envelope {
            id: self.id.to_string(),
            tenant: self.tenant.clone(),
            plugin: self.plugin.clone(),
            state,
            exit: entry.as_ref().map(|e| e.exit),
            outcome: entry.as_ref().map(|e| e.outcome),
            cpu_ms: entry.as_ref().and_then(|e| e.cpu_ms),
            result: entry.as_ref().map_or(Value::Null, |e| e.result.clone()),
            error: entry.and_then(|e| e.error),
            result_lines: self.events.results(),
            interrupted,
            events_dropped: self.events.dropped(),
        }
    }

    /// Waits until the run is done, then returns its envelope.
    pub async fn finished(&self) -> Envelope {
        let mut rx = self.done.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = rx.wait_for(Option::is_some).await;
        self.envelope()
    }

    /// Whether it is done.
    pub fn is_done(&self) -> bool {
        self.done.borrow().is_some()
    }
}

/// Why a run could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The tenant has `max_concurrent` runs going.
    #[error("this tenant already has {0} runs going, its limit (max_concurrent)")]
    Busy(usize),
    /// The service is shutting down.
    #[error("the service is stopping")]
    Closing,
}

/// A tenant's finished runs that are kept, oldest first, and their size.
#[derive(Debug, Default)]
struct Kept {
    runs: VecDeque<(RunId, Instant, usize)>,
    bytes: usize,
}

impl Kept {
    /// Forgets (here and in `all`) the oldest runs until what is left fits
    /// `retention`; the newest stays unless it is too old.
    fn trim(&mut self, retention: Retention, all: &mut HashMap<RunId, Arc<Run>>) {
        loop {
            let Some(&(id, at, bytes)) = self.runs.front() else {
                return;
            };
            let over = self.runs.len() > retention.count
                || (self.runs.len() > 1 && self.bytes > retention.bytes);
            if !over && at.elapsed() <= retention.age {
                return;
            }
            self.runs.pop_front();
            self.bytes -= bytes;
            all.remove(&id);
        }
    }
}

/// A tenant's running and finished runs.
#[derive(Debug, Default)]
struct TenantRuns {
    active: AtomicUsize,
    kept: Mutex<Kept>,
}

/// Every run of every tenant.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Mutex<HashMap<RunId, Arc<Run>>>,
    tenants: Mutex<HashMap<String, Arc<TenantRuns>>>,
    closing: AtomicBool,
}

/// A place among a tenant's concurrent runs, given back on drop.
#[derive(Debug)]
pub struct Slot {
    tenant: Arc<TenantRuns>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.tenant.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long, how many and how much of its finished runs a tenant keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Most finished runs kept.
    pub count: usize,
    /// Longest a finished run is kept.
    pub age: Duration,
    /// Most bytes of results and events kept (the newest run is kept
    /// whatever its size, until its age or count says otherwise).
    pub bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runs {
    fn tenant(&self, name: &str) -> Arc<TenantRuns> {
        Arc::clone(lock(&self.tenants).entry(name.to_owned()).or_default())
    }

    /// A slot for one more run of `tenant`, unless it has `max` going.
    pub fn admit(&self, tenant: &str, max: usize) -> Result<Slot, Refused> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Refused::Closing);
        }
        let t = self.tenant(tenant);
        t.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Refused::Busy(max))?;
        Ok(Slot { tenant: t })
    }

    /// Runs of `tenant` going now.
    pub fn active(&self, tenant: &str) -> usize {
        self.tenant(tenant).active.load(Ordering::Acquire)
    }

    /// Registers a new run; `kept` runs can be looked up by id.
    pub fn start(&self, tenant: &str, plugin: &str, kept: bool) -> Arc<Run> {
        let run = Arc::new(Run {
            id: RunId::random(),
            tenant: tenant.to_owned(),
            plugin: plugin.to_owned(),
            events: Arc::default(),
            interrupt: Interrupt::new(),
            done: watch::Sender::new(None),
        });
        if kept {
            lock(&self.runs).insert(run.id, Arc::clone(&run));
        }
        run
    }

    /// Records how `run` ended and drops what `retention` no longer keeps.
    pub fn finish(&self, run: &Run, entry: Entry, interrupted: bool, retention: Retention) {
        run.events.close();
        let size = run.events.bytes()
            + serde_json::to_vec(&entry.result).map_or(0, |v| v.len())
            + entry.error.as_ref().map_or(0, String::len);
        run.done.send_replace(Some((entry, interrupted)));
        let mut runs = lock(&self.runs);
        if !runs.contains_key(&run.id) {
            return;
        }
        let t = self.tenant(&run.tenant);
        let mut kept = lock(&t.kept);
        kept.runs.push_back((run.id, Instant::now(), size));
        kept.bytes += size;
        kept.trim(retention, &mut runs);
    }

    /// Drops finished runs past their tenant's retention (a tenant no
    /// longer configured keeps nothing).
    pub fn sweep(&self, retention: impl Fn(&str) -> Option<Retention>) {
        let tenants: Vec<(String, Arc<TenantRuns>)> = lock(&self.tenants)
            .iter()
            .map(|(n, t)| (n.clone(), Arc::clone(t)))
            .collect();
        let mut runs = lock(&self.runs);
        for (name, t) in tenants {
            let nothing = Retention {
                count: 0,
                age: Duration::ZERO,
                bytes: 0,
            };
            lock(&t.kept).trim(retention(&name).unwrap_or(nothing), &mut runs);
        }
    }

    /// `tenant`'s run `id`, if it has one by that id.
    pub fn get(&self, tenant: &str, id: &str) -> Option<Arc<Run>> {
        let id = id.parse::<RunId>().ok()?;
        lock(&self.runs)
            .get(&id)
            .filter(|r| r.tenant == tenant)
            .cloned()
    }

    /// `tenant`'s kept runs, oldest first.
    pub fn list(&self, tenant: &str) -> Vec<Arc<Run>> {
        let mut runs: Vec<Arc<Run>> = lock(&self.runs)
            .values()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect();
        runs.sort_by_key(|r| r.events.started());
        runs
    }

    /// Refuses new runs from now on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Runs going now, over all tenants.
    pub fn total_active(&self) -> usize {
        lock(&self.tenants)
            .values()
            .map(|t| t.active.load(Ordering::Acquire))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_concurrency_and_free_themselves() {
        let runs = Runs::default();
        let a = runs.admit("a", 2).unwrap();
        let _b = runs.admit("a", 2).unwrap();
        assert_eq!(runs.admit("a", 2).unwrap_err(), Refused::Busy(2));
        // Another tenant's quota is its own.
        let _other = runs.admit("b", 1).unwrap();
        drop(a);
        assert_eq!(runs.active("a"), 1);
        let _c = runs.admit("a", 2).unwrap();
        runs.close();
        assert_eq!(runs.admit("c", 5).unwrap_err(), Refused::Closing);
    }

    #[test]
    fn runs_are_found_only_by_their_tenant_and_kept_within_bounds() {
        let runs = Runs::default();
        let keep = Retention {
            count: 2,
            age: Duration::from_secs(60),
            bytes: 1 << 20,
        };
        let ids: Vec<String> = (0..3)
            .map(|_| {
                let run = runs.start("a", "ping", true);
                runs.finish(&run, Entry::error("x".into(), None), false, keep);
                run.id.to_string()
            })
            .collect();
        assert!(runs.get("a", &ids[0]).is_none(), "the oldest is dropped");
        assert!(runs.get("a", &ids[2]).is_some());
        assert!(runs.get("b", &ids[2]).is_none(), "another tenant's id");
        assert!(runs.get("a", "not-an-id").is_none());
        assert_eq!(runs.list("a").len(), 2);
        let unkept = runs.start("a", "ping", false);
        assert!(runs.get("a", &unkept.id.to_string()).is_none());
        runs.sweep(|_| {
            Some(Retention {
                count: 2,
                age: Duration::ZERO,
                bytes: 1 << 20,
            })
        });
        assert!(runs.list("a").is_empty());
    }

    #[test]
    fn finished_runs_are_kept_within_a_byte_budget() {
        let runs = Runs::default();
        let keep = Retention {
            count: 100,
            age: Duration::from_secs(60),
            bytes: 1000,
        };
        let big = || Entry {
            result: Value::String("x".repeat(600)),
            ..Entry::error(String::new(), None)
        };
        let first = runs.start("a", "ping", true);
        runs.finish(&first, big(), false, keep);
        let second = runs.start("a", "ping", true);
        runs.finish(&second, big(), false, keep);
        assert!(
            runs.get("a", &first.id.to_string()).is_none(),
            "over the budget"
        );
        // The newest stays, even alone over the budget.
        assert!(runs.get("a", &second.id.to_string()).is_some());
        assert_eq!(runs.list("a").len(), 1);
    }

    #[test]
    fn ids_round_trip() {
        let id = RunId::random();
        assert_eq!(id.to_string().parse::<RunId>(), Ok(id));
        assert!("0".repeat(31).parse::<RunId>().is_err());
        assert!("g".repeat(32).parse::<RunId>().is_err());
    }
}
