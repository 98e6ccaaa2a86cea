/*!
Where the service meets the runtime: one wasmtime [`Runtime`] and one ICMP
[`Engine`] for every tenant, and a run is [`Runtime::run`] under the
tenant's policy and limits, its sockets counted against the tenant's
engine [`icmp::Tenant`] (quotas of sockets, requests in flight and queued
replies) and its sends against the tenant's rate — both shared by all its
runs. Nothing else in the service builds a [`Session`].

The tenants share the engine's key table: each gets an equal share of it
(at most the engine's default quota), so one tenant filling its share of
requests in flight fails alone.
*/

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::icmp::{self, Engine, EngineConfig, Quota};
use crate::policy::{Policy, PolicySpec, RateLimiter};
use crate::report::Entry;
use crate::runtime::{Interrupt, Plugin, ProgressSink, Runtime, Session};

use super::config::Tenant;

/// What a run produced, with what it cost.
#[derive(Debug)]
pub struct Ran {
    /// How it ended.
    pub entry: Entry,
    /// CPU time of the instance and of the host's work for it.
    pub cpu: Duration,
    /// Operations its policy refused.
    pub denials: u64,
    /// It was interrupted (DELETE, shutdown, wall clock) and returned early.
    pub interrupted: bool,
}

/// A tenant's engine counters, cumulative over the handles it had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Replies delivered to its sockets.
    pub received: u64,
    /// Replies dropped because its queues were full.
    pub queue_drops: u64,
    /// Requests refused because one of its quotas was reached.
    pub quota_refusals: u64,
}

impl Traffic {
    fn of(t: &icmp::Tenant) -> Traffic {
        let c = t.counters();
        Traffic {
            sent: c.sent.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            queue_drops: c.queue_drops.load(Ordering::Relaxed),
            quota_refusals: c.refused.load(Ordering::Relaxed),
        }
    }

    fn plus(self, o: Traffic) -> Traffic {
        Traffic {
            sent: self.sent + o.sent,
            received: self.received + o.received,
            queue_drops: self.queue_drops + o.queue_drops,
            quota_refusals: self.quota_refusals + o.quota_refusals,
        }
    }
}

/// What a tenant's runs share: its engine handle (quotas, counters) and
/// its policy's rate limiters, so that `max_pps` holds for all its runs
/// together.
struct Handle {
    tenant: icmp::Tenant,
    /// The counts of the handles this one replaced.
    before: Traffic,
    /// The policy the limiters were made for.
    policy: PolicySpec,
    send_rate: Option<Arc<RateLimiter>>,
    lookup_rate: Option<Arc<RateLimiter>>,
}

/// Runs plugins for tenants.
pub struct Runner {
    runtime: Arc<Runtime>,
    engine: Engine,
    tenants: Mutex<HashMap<String, Handle>>,
    /// Requests in flight each tenant may have.
    share: Mutex<usize>,
}

impl Runner {
    /// A runner over the process's runtime and engine.
    pub fn new(runtime: Arc<Runtime>, engine: Engine) -> Runner {
        Runner {
            runtime,
            engine,
            tenants: Mutex::default(),
            share: Mutex::new(Quota::default().in_flight),
        }
    }

    /// The runtime (to load plugins).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The engine (for its counters).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sizes the tenants' shares for `names` (the configured tenants) and
    /// forgets the handles of tenants no longer among them (their runs in
    /// progress keep theirs until they end).
    pub fn set_tenants(&self, names: &[&str]) {
        let capacity = EngineConfig::default().table_capacity;
        let share = (capacity / names.len().max(1)).min(Quota::default().in_flight);
        *self.share.lock().unwrap_or_else(|e| e.into_inner()) = share;
        self.lock().retain(|name, _| names.contains(&name.as_str()));
    }

    /// A run's policy for `tenant`, sharing the tenant's rate limiters,
    /// and the tenant's engine handle — admitted with its share on first
    /// use, or after its share changed.
    fn prepare(&self, tenant: &Tenant) -> Result<(Policy, icmp::Tenant), String> {
        let mut policy = tenant.policy.build()?;
        let share = *self.share.lock().unwrap_or_else(|e| e.into_inner());
        let mut tenants = self.lock();
        let current = tenants
            .get(&tenant.name)
            .is_some_and(|h| h.tenant.quota().in_flight == share);
        if !current {
            let before = tenants
                .remove(&tenant.name)
                .map_or_else(Traffic::default, |h| h.before.plus(Traffic::of(&h.tenant)));
            let quota = Quota {
                in_flight: share,
                ..Quota::default()
            };
            let handle = self
                .engine
                .tenant(&tenant.name, quota)
                .map_err(|e| e.to_string())?;
            tenants.insert(
                tenant.name.clone(),
                Handle {
                    tenant: handle,
                    before,
                    policy: tenant.policy.clone(),
                    send_rate: policy.send_rate.clone(),
                    lookup_rate: policy.lookup_rate.clone(),
                },
            );
        }
        let h = tenants.get_mut(&tenant.name).expect("inserted above");
        if h.policy != tenant.policy {
            // Reloaded with another policy: new limiters from now on.
            h.policy = tenant.policy.clone();
            h.send_rate = policy.send_rate.clone();
            h.lookup_rate = policy.lookup_rate.clone();
        }
        policy.send_rate = h.send_rate.clone();
        policy.lookup_rate = h.lookup_rate.clone();
        Ok((policy, h.tenant.clone()))
    }

    /// Every tenant's engine counters so far.
    pub fn traffic(&self) -> Vec<(String, Traffic)> {
        self.lock()
            .iter()
            .map(|(name, h)| (name.clone(), h.before.plus(Traffic::of(&h.tenant))))
            .collect()
    }

    /// Runs `plugin` for `tenant` until it returns, fails, hits a limit or
    /// is interrupted. `wall` narrows the tenant's wall-clock limit.
    pub async fn run(
        &self,
        plugin: &Plugin,
        args: Vec<String>,
        tenant: &Tenant,
        sink: Arc<dyn ProgressSink>,
        interrupt: Interrupt,
        wall: Option<Duration>,
    ) -> Ran {
        let (policy, handle) = match self.prepare(tenant) {
            Ok((policy, handle)) => (Arc::new(policy), handle),
            Err(e) => return failed(e, Duration::ZERO),
        };
        let mut limits = tenant.limits.clone();
        if let Some(w) = wall {
            limits.wall = Some(limits.wall.map_or(w, |l| l.min(w)));
        }
        let session = Session {
            engine: self.engine.clone(),
            tenant: handle,
            policy: Arc::clone(&policy),
            sink,
            interrupt: interrupt.clone(),
        };
        let ran = match self.runtime.run(plugin, args, session, &limits).await {
            Ok(finished) => Ran {
                entry: Entry::of(Ok(&finished)),
                cpu: finished.cpu,
                denials: 0,
                // The plugin may return before the runtime sees the latch.
                interrupted: finished.interrupted || interrupt.is_set(),
            },
            Err(stopped) => failed(stopped.error.to_string(), stopped.cpu),
        };
        Ran {
            denials: policy.denials(),
            ..ran
        }
    }
}

fn failed(message: String, cpu: Duration) -> Ran {
    Ran {
        entry: Entry::error(
            message,
            Some(cpu.as_secs_f64() * 1e3).filter(|&ms| ms > 0.0),
        ),
        cpu,
        denials: 0,
        interrupted: false,
    }
}
