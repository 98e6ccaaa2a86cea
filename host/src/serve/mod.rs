/*!
`icmp-host serve`: the multi-tenant probe service. Tenants run plugins —
built-in or their own uploads — over HTTP, each under its own policy,
limits and concurrency; Prometheus scrapes `/probe` (blackbox_exporter's
way) and `/metrics` (the service, and its schedules smokeping_prober's
way).

The service adds no second runtime: every run, whether asked for over
`/v1/runs`, by `/probe` or by a schedule, is a [`crate::runtime::Runtime::run`]
on the process's one runtime and ICMP engine ([`runner`]).

- [`config`]: the TOML file (or the local default), checked as a whole.
- [`auth`]: bearer tokens, stored as SHA-256, compared in constant time.
- [`runs`]: running and finished runs, per tenant, with the 429 quota.
- [`events`]: a run's progress events, streamed live as NDJSON.
- [`plugins`]: built-ins and content-addressed uploads.
- [`probe`], [`metrics`]: the Prometheus text of `/probe` and `/metrics`.
- [`schedule`]: continuous probing that feeds `/metrics`.
- [`http`], [`server`]: routes, errors, and the listener.
*/

pub mod auth;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod plugins;
pub mod probe;
pub mod runner;
pub mod runs;
pub mod schedule;
pub mod server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use crate::icmp::{Engine, EngineConfig, RawSockets, ReaderPlace};
use crate::runtime::{DataInit, Interrupt, Runtime};

use config::{Config, Tenant};
use metrics::{Metrics, OutcomeLabels, ReasonLabels, TenantLabel};
use plugins::{PluginError, Plugins};
use runner::Runner;
use runs::{Refused, Retention, Run, Runs};

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin is unknown, not the tenant's, or not allowed to it.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The tenant is at its concurrency limit, or the service is stopping.
    #[error(transparent)]
    Refused(Refused),
}

/// The running service: its configuration and everything it keeps.
pub struct Service {
    config: RwLock<Arc<Config>>,
    config_path: Option<PathBuf>,
    listen_override: bool,
    runner: Runner,
    plugins: Plugins,
    runs: Runs,
    metrics: Metrics,
    /// Set when the service stops: every run is interrupted.
    stopping: Interrupt,
    schedules: Mutex<schedule::Schedules>,
}

/// Writes one line to the service's log (stderr).
pub fn log(message: impl std::fmt::Display) {
    eprintln!("icmp-host serve: {message}");
}

fn retention(t: &Tenant) -> Retention {
    Retention {
        count: t.keep_runs,
        age: t.keep_for,
        bytes: t.keep_bytes,
    }
}

impl Service {
    /// Builds the service: the runtime, the engine over `raw`, the
    /// built-in plugins. Nothing runs yet.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        listen_override: bool,
        raw: RawSockets,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Arc<Service>> {
        use anyhow::Context;
        let runtime = Arc::new(Runtime::new(cache_dir, DataInit::Mapped)?.compile_serially());
        if let Some(w) = runtime.cache_warning() {
            log(format!("warning: compiled-plugin cache disabled: {w}"));
        }
        let engine = Engine::new(
            EngineConfig {
                // Tenants' plugins must not delay each other's replies.
                readers: ReaderPlace::Thread,
                ..EngineConfig::default()
            },
            raw,
        )
        .context("starting the ICMP engine")?;
        let plugins = Plugins::new(&runtime).context("loading the built-in plugins")?;
        let service = Arc::new_cyclic(|weak: &std::sync::Weak<Service>| {
            let weak = weak.clone();
            let live = Box::new(move || {
                weak.upgrade()
                    .map(|s| metrics::Snapshot {
                        uploads: s.plugins.usage(),
                        traffic: s.runner.traffic(),
                    })
                    .unwrap_or_default()
            });
            let metrics = Metrics::new(engine.clone(), live);
            Service {
                config: RwLock::new(Arc::new(config)),
                config_path,
                listen_override,
                runner: Runner::new(runtime, engine),
                plugins,
                runs: Runs::default(),
                metrics,
                stopping: Interrupt::new(),
                schedules: Mutex::new(schedule::Schedules::default()),
            }
        });
        service.runner.set_tenants(&service.config().tenant_names());
        service.metrics.reload_ok.set(1);
        service.metrics.reload_time.set(unix_now());
        Ok(service)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The plugins.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// The runs.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Starts `plugin` with `args` for `tenant`. `kept` runs can be looked
    /// up by id (`/v1/runs`); `/probe` and schedule runs are not. `wall`
    /// narrows the tenant's wall-clock limit.
    pub fn start(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        plugin_name: &str,
        args: Vec<String>,
        kept: bool,
        wall: Option<Duration>,
    ) -> Result<Arc<Run>, StartError> {
        let plugin = self.plugins.resolve(tenant, plugin_name)?;
        let slot = self
            .runs
            .admit(&tenant.name, tenant.max_concurrent)
            .inspect_err(|r| {
                let reason = match r {
                    Refused::Busy(_) => "concurrency",
                    Refused::Closing => "stopping",
                };
                self.metrics
                    .refused
                    .get_or_create(&ReasonLabels {
                        tenant: tenant.name.clone(),
                        reason: reason.into(),
                    })
                    .inc();
            })
            .map_err(StartError::Refused)?;
        let run = self.runs.start(&tenant.name, plugin_name, kept);
        let active = TenantLabel {
            tenant: tenant.name.clone(),
        };
        self.metrics.active.get_or_create(&active).inc();
        let (service, tenant, task_run) = (Arc::clone(self), Arc::clone(tenant), Arc::clone(&run));
        // The run in a task of its own (its epoch yields must not delay
        // anything else), watched by a second task so that even a panic
        // finishes the run with an error instead of leaving waiters hanging.
        let inner = tokio::spawn({
            let (service, tenant, run) =
                (Arc::clone(&service), Arc::clone(&tenant), Arc::clone(&run));
            async move {
                let sink: Arc<dyn crate::runtime::ProgressSink> = run.events.clone();
                let going =
                    service
                        .runner
                        .run(&plugin, args, &tenant, sink, run.interrupt.clone(), wall);
                tokio::pin!(going);
                tokio::select! {
                    ran = &mut going => ran,
                    () = service.stopping.wait() => {
                        run.interrupt.trigger();
                        going.await
                    }
                }
            }
        });
        tokio::spawn(async move {
            let (entry, interrupted) = service.account(&tenant, inner.await);
            service
                .runs
                .finish(&task_run, entry, interrupted, retention(&tenant));
            service.metrics.active.get_or_create(&active).dec();
            drop(slot);
        });
        Ok(run)
    }

    /// Counts a run that ended (or whose task failed) in the metrics;
    /// how it ended, and whether it was interrupted.
    fn account(
        &self,
        tenant: &Tenant,
        ran: Result<runner::Ran, tokio::task::JoinError>,
    ) -> (crate::report::Entry, bool) {
        let label = TenantLabel {
            tenant: tenant.name.clone(),
        };
        let (entry, interrupted) = match ran {
            Ok(ran) => {
                self.charge(tenant, ran.cpu);
                if ran.denials > 0 {
                    self.metrics
                        .denials
                        .get_or_create(&label)
                        .inc_by(ran.denials);
                }
                (ran.entry, ran.interrupted)
            }
            Err(e) => (
                crate::report::Entry::error(format!("the run failed: {e}"), None),
                false,
            ),
        };
        self.metrics
            .runs
            .get_or_create(&OutcomeLabels {
                tenant: tenant.name.clone(),
                outcome: entry.outcome.into(),
            })
            .inc();
        (entry, interrupted)
    }

    /// Charges CPU time spent on `tenant`'s behalf: its runs, its compiles.
    pub fn charge(&self, tenant: &Tenant, cpu: Duration) {
        self.metrics
            .cpu
            .get_or_create(&TenantLabel {
                tenant: tenant.name.clone(),
            })
            .inc_by(cpu.as_secs_f64());
    }

    /// Re-reads the configuration file. A file that does not parse leaves
    /// the running configuration as it is (and says why).
    pub fn reload(self: &Arc<Self>) {
        let Some(path) = &self.config_path else {
            log("SIGHUP: no configuration file to reload (started without --config)");
            return;
        };
        match Config::load(path) {
            Ok(new) => self.apply(new),
            Err(e) => {
                self.metrics.reload_ok.set(0);
                log(format!(
                    "reload failed, keeping the running configuration: {e}"
                ));
            }
        }
    }

    /// Puts `new` in force: tenants, policies, modules and schedules. Runs
    /// going on carry on under the rules they started with.
    pub fn apply(self: &Arc<Self>, mut new: Config) {
        let old = self.config();
        if self.listen_override || new.listen != old.listen {
            if new.listen != old.listen && !self.listen_override {
                log(format!(
                    "listen changed to {}: restart to move (still on {})",
                    new.listen, old.listen
                ));
            }
            new.listen = old.listen;
        }
        let names = new.tenant_names();
        self.plugins
            .retain_tenants(&names.iter().copied().collect());
        self.runner.set_tenants(&names);
        let summary = format!(
            "configuration loaded: {} tenants, {} modules, {} schedules",
            new.tenants.len(),
            new.modules.len(),
            new.schedules.len()
        );
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        self.restart_schedules();
        self.metrics.reload_ok.set(1);
        self.metrics.reload_time.set(unix_now());
        log(summary);
    }

    /// Stops the schedules of the old configuration (their runs in
    /// progress finish) and starts the current ones.
    pub fn restart_schedules(self: &Arc<Self>) {
        let config = self.config();
        let mut schedules = self.schedules.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut *schedules);
        old.stop();
        let new = schedule::Schedules::start(self, &config);
        self.metrics.forget_schedules(old.probes(), new.probes());
        *schedules = new;
    }

    /// Refuses new runs and interrupts every run going (they return what
    /// they have, as after Ctrl-C).
    pub fn stop(&self) {
        self.runs.close();
        self.schedules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop();
        self.stopping.trigger();
    }

    /// Drops finished runs past their tenant's retention.
    pub fn sweep(&self) {
        let config = self.config();
        self.runs
            .sweep(|name| config.tenant(name).map(|t| retention(t)));
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs the service on `listener` until SIGTERM or SIGINT: SIGHUP reloads
/// the configuration; the stop interrupts every run, lets the requests in
/// progress answer with what their runs have, and returns within seconds.
pub async fn run(service: Arc<Service>, listener: std::net::TcpListener) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::from_std(listener).context("listening")?;
    let address = listener.local_addr().context("listening")?;
    let mut hangup = signal(SignalKind::hangup()).context("watching SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    service.restart_schedules();
    let housekeeping = tokio::spawn({
        let service = Arc::clone(&service);
        async move {
            loop {
                tokio::select! {
                    _ = hangup.recv() => service.reload(),
                    () = tokio::time::sleep(Duration::from_secs(10)) => service.sweep(),
                }
            }
        }
    });
    let stop = {
        let service = Arc::clone(&service);
        async move {
            let why = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            log(format!(
                "{why}: stopping (interrupting {} runs)",
                service.runs.total_active()
            ));
            service.stop();
        }
    };
    log(format!("listening on http://{address}"));
    let app = http::router(Arc::clone(&service));
    let grace = service
        .config()
        .tenants
        .iter()
        .map(|t| t.limits.grace)
        .max()
        .unwrap_or_default();
    server::serve(listener, app, stop, grace + Duration::from_secs(2)).await;
    housekeeping.abort();
    // Runs not tied to a request (schedules, async runs) end the same way.
    let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(1);
    while service.runs.total_active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log("stopped");
    Ok(())
}
