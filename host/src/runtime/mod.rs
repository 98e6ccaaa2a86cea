/*!
Runs plugins: one wasmtime engine per process, compiled components cached
on disk, and a fresh `Store` per run with its limits — memory, the
instance's own CPU time, wall-clock time and output size. A plugin that
traps, overruns or imports something outside the published set is stopped
with an error naming what happened; the host carries on.

Plugins see the `icmp-host:probe` imports and WASI as `wasi.rs` serves it:
stdout and stderr (captured), clocks, random and a closed stdin; the
filesystem, sockets and environment linked in a deny-everything form (no
directory, every address refused, no variable). Nothing else links.
*/

pub mod bindings;
mod cache;
mod clocks;
mod compat;
mod convert;
mod cpu;
mod events;
mod host;
mod interrupt;
mod limiter;
mod output;
mod send_many;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};

pub use bindings::icmp_host::probe::{progress, types};
pub use cache::{CacheError, default_dir as default_cache_dir, sha256_hex};
pub use events::MAX_EVENT_BYTES;
pub use host::{HostError, ProbeCtx, SocketHandle};
pub use interrupt::Interrupt;
pub use limiter::MemoryLimitReached;
pub use wasi::{Import, Inspection, Service};

use crate::icmp::{Engine, Tenant};
use crate::policy::Policy;
use bindings::ProbePre;
use cpu::{CpuMeter, Metered};

/// Receives a plugin's progress events.
pub trait ProgressSink: Send + Sync {
    /// One event, as the plugin emitted it (within the run's output caps).
    fn emit(&self, event: progress::Event);

    /// An event was dropped: too large, over the run's output limit, or a
    /// result line that was not one JSON value.
    fn dropped(&self) {}
}

/// The largest component the host accepts (a Python plugin is ~20 MB).
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// Reads a plugin file, refusing one larger than [`MAX_PLUGIN_BYTES`]
/// before reading it (and while reading, should it grow meanwhile).
pub fn read_plugin(name: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let too_large = |size| LoadError::TooLarge {
        name: name.to_owned(),
        size,
    };
    if size > MAX_PLUGIN_BYTES as u64 {
        return Err(too_large(size).into());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_PLUGIN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_PLUGIN_BYTES {
        return Err(too_large(bytes.len() as u64).into());
    }
    Ok(bytes)
}

/// Per-run limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, bytes.
    pub memory: usize,
    /// CPU time of the instance itself.
    pub cpu: Duration,
    /// Wall-clock time; `None` for no limit.
    pub wall: Option<Duration>,
    /// Time a plugin gets to return after an interrupt.
    pub grace: Duration,
    /// Bytes of the result, and of progress events and streamed results
    /// (each event at most [`MAX_EVENT_BYTES`]), each.
    pub output: usize,
    /// Bytes of the plugin's own stdout and stderr kept; more are counted.
    pub guest_output: usize,
    /// Whether the plugin reads the host's stdin (closed otherwise).
    pub stdin: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 << 20,
            cpu: Duration::from_secs(60),
            wall: None,
            grace: Duration::from_secs(2),
            output: 64 << 20,
            guest_output: 1 << 20,
            stdin: false,
        }
    }
}

/// Limits as written in a manifest or the service's configuration
/// (`memory_mib`, `cpu_seconds`, `wall_seconds`, `output_mib`); unset ones
/// keep the defaults of [`Limits`].
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSpec {
    /// Linear memory, MiB.
    pub memory_mib: Option<usize>,
    /// CPU time of the instance, seconds.
    pub cpu_seconds: Option<f64>,
    /// Wall-clock time of the run, seconds.
    pub wall_seconds: Option<f64>,
    /// Output (the result, progress events and streamed results, each), MiB.
    pub output_mib: Option<usize>,
}

impl LimitSpec {
    /// The limits this spec describes; `Err` names the bad value.
    pub fn build(&self) -> Result<Limits, String> {
        let seconds = |what: &str, s: f64| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| format!("{what}: {s} is not a number of seconds"))
        };
        let mib = |what: &str, m: usize| {
            m.checked_mul(1 << 20)
                .ok_or_else(|| format!("{what}: {m} is too large"))
        };
        let mut limits = Limits::default();
        if let Some(m) = self.memory_mib {
            limits.memory = mib("memory_mib", m)?;
        }
        if let Some(m) = self.output_mib {
            limits.output = mib("output_mib", m)?;
        }
        if let Some(c) = self.cpu_seconds {
            limits.cpu = seconds("cpu_seconds", c)?;
        }
        if let Some(w) = self.wall_seconds {
            limits.wall = Some(seconds("wall_seconds", w)?);
        }
        Ok(limits)
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Larger than any plugin may be.
    #[error("{name} is {size} bytes; plugins may be at most {MAX_PLUGIN_BYTES} bytes")]
    TooLarge {
        /// Plugin name.
        name: String,
        /// Its size (at least), bytes.
        size: u64,
    },
    /// Not a WebAssembly component (or not valid).
    #[error("{name} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// Plugin name.
        name: String,
        /// Compiler's words.
        reason: String,
    },
    /// Imports something outside the published set.
    #[error(
        "{name} imports `{import}`, which icmp-host does not provide (plugins may import \
         icmp-host:probe and WASI 0.2's io, clocks, random, cli, filesystem and sockets; \
         `icmp-host inspect` shows how each is served)"
    )]
    ForbiddenImport {
        /// Plugin name.
        name: String,
        /// The import.
        import: String,
    },
    /// Does not fit the probe world.
    #[error("{name} does not implement the icmp-host probe world: {reason}")]
    WrongWorld {
        /// Plugin name.
        name: String,
        /// The linker's words.
        reason: String,
    },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plugin trapped.
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// It used more than its CPU budget.
    #[error("plugin exceeded its CPU time limit of {0:?}")]
    CpuLimit(Duration),
    /// It asked for more memory than allowed.
    #[error("plugin exceeded its memory limit of {} MiB", .0 >> 20)]
    MemoryLimit(usize),
    /// It did not finish in time, even after being interrupted.
    #[error("plugin did not finish within the wall-clock limit of {0:?}")]
    WallClock(Duration),
    /// It did not return after Ctrl-C.
    #[error("plugin did not return within {0:?} of the interrupt")]
    Unresponsive(Duration),
    /// Its result (report, text or error message) is larger than allowed.
    #[error("plugin output of {size} bytes exceeds the output limit of {mib} MiB", size = .0, mib = .1 >> 20)]
    OutputLimit(usize, usize),
}

/// What a run is connected to: the network, its tenant and policy, where
/// progress goes, and the signal that ends it early.
pub struct Session {
    /// The ICMP engine (shared by concurrent runs).
    pub engine: Engine,
    /// Whose quotas the run's sockets count against.
    pub tenant: Tenant,
    /// What the plugin may do.
    pub policy: Arc<Policy>,
    /// Receives progress events.
    pub sink: Arc<dyn ProgressSink>,
    /// Set on Ctrl-C; the runtime also sets it at the wall-clock limit.
    pub interrupt: Interrupt,
}

/// What a plugin wrote to its stdout and stderr (captured, never mixed
/// into results).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestOutput {
    /// The first [`Limits::guest_output`] bytes.
    pub kept: Vec<u8>,
    /// Bytes written beyond those, dropped.
    pub dropped: u64,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Finished {
    /// The plugin's answer.
    pub output: Result<types::RunOutput, types::RunError>,
    /// CPU time the run used (its instance, and the host's work for it).
    pub cpu: Duration,
    /// What the plugin wrote.
    pub guest_output: GuestOutput,
    /// The run was interrupted (Ctrl-C or wall clock) and returned early.
    pub interrupted: bool,
    /// Progress events dropped: too large, over the output limit, or a
    /// result line that was not one JSON value.
    pub events_dropped: u64,
}

/// A run the host stopped: why, and what the plugin wrote before.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Stopped {
    /// Why.
    #[source]
    pub error: RunError,
    /// CPU time used until then.
    pub cpu: Duration,
    /// What the plugin wrote before it was stopped.
    pub guest_output: GuestOutput,
}

/// A loaded plugin, ready to instantiate.
pub struct Plugin {
    name: String,
    imports: Vec<Import>,
    pre: ProbePre<ProbeCtx>,
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it imports, and how the host serves each.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }
}

/// Increments the engine's epoch every tick, on its own thread.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often plugins yield to the executor (and the CPU budget is checked).
const TICK: Duration = Duration::from_millis(10);

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Parked, not slept: `drop` wakes it at once.
                    std::thread::park_timeout(TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Everything needed to run plugins.
pub struct Runtime {
    engine: wasmtime::Engine,
    linker: Linker<ProbeCtx>,
    cache: Option<cache::Cache>,
    cache_warning: Option<String>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and linker; `cache_dir` `None` disables the cache.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For `perf`: name the plugins' compiled functions (/tmp/perf-PID.map).
        if std::env::var_os("ICMP_HOST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wasmtime::Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker)?;
        bindings::Probe::add_to_linker::<ProbeCtx, HasSelf<ProbeCtx>>(&mut linker, |c| c)?;
        send_many::link(&mut linker)?;
        compat::link(&mut linker)?;
        let (cache, cache_warning) = match cache_dir {
            None => (None, None),
            Some(dir) => match cache::Cache::open(&dir, &engine) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Ok(Runtime {
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            linker,
            cache,
            cache_warning,
        })
    }

    /// Why the compiled-plugin cache is off, when it was asked for.
    pub fn cache_warning(&self) -> Option<&str> {
        self.cache_warning.as_deref()
    }

    /// Compiles (or loads from cache) and links a plugin.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let component = self.compile(name, wasm)?;
        self.link(name, &component)
    }

    /// The compiled component: from the cache, or compiled (and cached).
    fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, LoadError> {
        if wasm.len() > MAX_PLUGIN_BYTES {
            return Err(LoadError::TooLarge {
                name: name.to_owned(),
                size: wasm.len() as u64,
            });
        }
        let sha = sha256_hex(wasm);
        if let Some(c) = self.cache.as_ref().and_then(|c| c.load(&self.engine, &sha)) {
            return Ok(c);
        }
        let c = Component::new(&self.engine, wasm).map_err(|e| LoadError::Invalid {
            name: name.to_owned(),
            reason: root_cause(&e),
        })?;
        if let Some(cache) = &self.cache {
            // A cache that cannot be written only costs a recompile.
            let _ = cache.store(&c, &sha);
        }
        Ok(c)
    }

    /// Checks the imports and links a compiled component.
    fn link(&self, name: &str, component: &Component) -> Result<Plugin, LoadError> {
        let imports = wasi::check_imports(name, component, &self.engine)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(ProbePre::new)
            .map_err(|e| LoadError::WrongWorld {
                name: name.to_owned(),
                // The whole chain: it names the import and the function.
                reason: e
                    .chain()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": "),
            })?;
        Ok(Plugin {
            name: name.to_owned(),
            imports,
            pre,
        })
    }

    /// Runs `plugin` with `args` until it returns, fails or hits a limit.
    pub async fn run(
        &self,
        plugin: &Plugin,
        args: Vec<String>,
        session: Session,
        limits: &Limits,
    ) -> Result<Finished, Stopped> {
        let Session {
            engine,
            tenant,
            policy,
            sink,
            interrupt,
        } = session;
        let meter = CpuMeter::new(limits.cpu);
        let captured = output::CapturedOutput::new(limits.guest_output);
        let wasi = wasi::context(&captured, limits.stdin);
        let events = Arc::new(events::OutputGate::new(limits.output));
        let mut table = ResourceTable::new();
        table.set_max_capacity(host::MAX_HANDLES);
        let ctx = ProbeCtx {
            table,
            wasi,
            limiter: limiter::RunLimiter::new(limits.memory),
            account: tenant.account(meter.charged()),
            meter: Arc::clone(&meter),
            engine,
            policy,
            sink,
            events: Arc::clone(&events),
            interrupt: interrupt.clone(),
            open_sockets: 0,
            run_limits: limits.clone(),
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|c| &mut c.limiter);
        store.set_max_component_handles(host::MAX_HANDLES);
        let check = Arc::clone(&meter);
        store.epoch_deadline_callback(move |_| {
            Ok(if check.exceeded() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);

        let call = async {
            let probe = plugin.pre.instantiate_async(&mut store).await?;
            probe.call_run(&mut store, &args).await
        };
        let call = Metered::new(call, Arc::clone(&meter));
        let ended = drive(call, &interrupt, limits).await;
        let (kept, dropped) = captured.take();
        let guest_output = GuestOutput { kept, dropped };
        let cpu = meter.used();
        let stopped = |error| Stopped {
            error,
            cpu,
            guest_output: guest_output.clone(),
        };
        let (result, cut_short) = ended.map_err(stopped)?;
        // A plugin may return on its own just as the interrupt comes: it
        // was interrupted all the same (its pending calls said so).
        let interrupted = cut_short || interrupt.is_set();
        let answer = result.map_err(|e| stopped(classify(e, &meter, limits)))?;
        let size = match &answer {
            Ok(types::RunOutput::Report(r)) => r.json.as_ref().map_or(0, String::len),
            Ok(types::RunOutput::Text(t)) => t.len(),
            Err(types::RunError::Usage(m) | types::RunError::Failed(m)) => m.len(),
        };
        if size > limits.output {
            return Err(stopped(RunError::OutputLimit(size, limits.output)));
        }
        Ok(Finished {
            output: answer,
            cpu,
            guest_output,
            interrupted,
            events_dropped: events.dropped(),
        })
    }
}

/// Drives a run's call to its end: its result, or the wall-clock limit or
/// an interrupt followed by the grace period; and whether it was cut short.
async fn drive<F: Future>(
    call: F,
    interrupt: &Interrupt,
    limits: &Limits,
) -> Result<(F::Output, bool), RunError> {
    tokio::pin!(call);
    let deadline = async {
        match limits.wall {
            Some(w) => tokio::time::sleep(w).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = &mut call => Ok((r, false)),
        () = deadline => {
            interrupt.trigger();
            let wall = limits.wall.unwrap_or_default();
            let r = tokio::time::timeout(limits.grace, &mut call)
                .await
                .map_err(|_| RunError::WallClock(wall))?;
            Ok((r, true))
        }
        () = interrupt.wait() => {
            let r = tokio::time::timeout(limits.grace, &mut call)
                .await
                .map_err(|_| RunError::Unresponsive(limits.grace))?;
            Ok((r, true))
        }
    }
}

/// The innermost message of an error chain.
fn root_cause(e: &wasmtime::Error) -> String {
    e.chain()
        .last()
        .map_or_else(|| e.to_string(), ToString::to_string)
}

/// Names what stopped a plugin: a limit, or the trap and where it happened.
fn classify(e: wasmtime::Error, meter: &CpuMeter, limits: &Limits) -> RunError {
    if meter.exceeded() {
        return RunError::CpuLimit(meter.budget());
    }
    if e.chain().any(|c| c.is::<MemoryLimitReached>()) {
        return RunError::MemoryLimit(limits.memory);
    }
    let mut what = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => root_cause(&e),
    };
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>()
        && let Some(name) = bt.frames().iter().find_map(|f| f.func_name())
    {
        what.push_str(&format!(" (in {name})"));
    }
    RunError::Trap(what)
}
