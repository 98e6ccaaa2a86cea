/*!
Where the service meets the runtime: one wasmtime [`Runtime`] and one ICMP
[`Engine`] for every tenant, and a run is [`Runtime::run`] under the
tenant's policy and limits. Nothing else in the service builds a
[`Session`].
*/

use std::sync::Arc;
use std::time::Duration;

use crate::icmp::Engine;
use crate::report::Entry;
use crate::runtime::{Interrupt, Plugin, ProgressSink, Runtime, Session};

use super::config::Tenant;

/// What a run produced, with what it cost.
#[derive(Debug)]
pub struct Ran {
    /// How it ended.
    pub entry: Entry,
    /// CPU time of the instance.
    pub cpu: Duration,
    /// Requests the policy admitted.
    pub packets_sent: u64,
    /// It was interrupted (DELETE, shutdown, wall clock) and returned early.
    pub interrupted: bool,
}

/// Runs plugins for tenants.
pub struct Runner {
    runtime: Arc<Runtime>,
    engine: Engine,
}

impl Runner {
    /// A runner over the process's runtime and engine.
    pub fn new(runtime: Arc<Runtime>, engine: Engine) -> Runner {
        Runner { runtime, engine }
    }

    /// The runtime (to load plugins).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The engine (for its counters).
    pub fn engine(&self) -> &Engine {
        &self.engine
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
        let policy = match tenant.policy.build() {
            Ok(p) => Arc::new(p),
            // Checked when the configuration was loaded.
            Err(e) => return failed(format!("policy: {e}")),
        };
        let mut limits = tenant.limits.clone();
        if let Some(w) = wall {
            limits.wall = Some(limits.wall.map_or(w, |l| l.min(w)));
        }
        let session = Session {
            engine: self.engine.clone(),
            policy: Arc::clone(&policy),
            sink,
            interrupt,
        };
        match self.runtime.run(plugin, args, session, &limits).await {
            Ok(finished) => Ran {
                entry: Entry::of(Ok(&finished)),
                cpu: finished.cpu,
                packets_sent: policy.packets_sent(),
                interrupted: finished.interrupted,
            },
            Err(e) => Ran {
                packets_sent: policy.packets_sent(),
                ..failed(e.to_string())
            },
        }
    }
}

fn failed(message: String) -> Ran {
    Ran {
        entry: Entry::error(message, None),
        cpu: Duration::ZERO,
        packets_sent: 0,
        interrupted: false,
    }
}
