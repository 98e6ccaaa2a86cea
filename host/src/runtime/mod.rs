/*!
Runs plugins: one wasmtime engine per process, built-in plugins
precompiled into the binary, other plugins' compiled code cached on disk,
and a fresh `Store` per run with its limits — memory, the instance's own
CPU time, wall-clock time and output size. A plugin that traps, overruns
or imports something outside the published set is stopped with an error
naming what happened; the host carries on.

A [`Plugin`] is loaded once and shared by all its runs (one `InstancePre`);
many concurrent runs use a [`Runtime::pooled`] runtime, whose instances
come from wasmtime's pooling allocator.

Plugins see the `icmp-host:probe` imports and WASI as `wasi.rs` serves it:
stdout and stderr (captured), clocks, random and a closed stdin; the
filesystem, sockets and environment linked in a deny-everything form (no
directory, every address refused, no variable). Nothing else links.
*/

mod admission;
pub mod bindings;
mod cache;
mod clocks;
mod compat;
mod convert;
mod cpu;
mod document;
mod engine_config;
mod events;
mod host;
mod interrupt;
mod limiter;
mod output;
mod send_many;
mod symbols;
mod wasi;

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

pub use bindings::icmp_host::probe::{progress, types};
pub use cache::{CacheError, default_dir as default_cache_dir, sha256_hex};
pub use document::{PartSink, ReportTo};
pub use engine_config::DataInit;
pub use events::MAX_EVENT_BYTES;
pub use host::{HostError, MAX_REPORT_BACKLOG, ProbeCtx, SocketHandle};
pub use interrupt::Interrupt;
pub use limiter::MemoryLimitReached;
pub use wasi::{Import, Inspection, Service};

use crate::builtin::BuiltIn;
use crate::icmp::{Engine, Tenant};
use crate::policy::Policy;
use crate::sys::clock::{process_cpu_ns, thread_cpu_ns};
use crate::sys::code_memory::CodeMemory;
use admission::{Admission, Young};
use bindings::ProbePre;
use cpu::{CpuMeter, Metered};
use document::Document;

/// Receives a plugin's progress events.
pub trait ProgressSink: Send + Sync {
    /// One event, as the plugin emitted it (within the run's output caps).
    fn emit(&self, event: progress::Event);

    /// An event was dropped: too large, over the run's output limit, or a
    /// result line that was not one JSON value.
    fn dropped(&self) {}

    /// Whether events other than result lines are shown or kept (the
    /// plugin's `progress.watched`); fixed for the run.
    fn watched(&self) -> bool {
        true
    }
}

/// The largest component the host accepts (a Python plugin is ~20 MB).
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// Reads a plugin file, refusing one larger than [`MAX_PLUGIN_BYTES`]
/// before reading it (and while reading, should it grow meanwhile).
pub fn read_plugin(name: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    Ok(read_open_plugin(name, path, &file)?)
}

/// [`read_plugin`] of a file already open.
fn read_open_plugin(
    name: &str,
    path: &std::path::Path,
    file: &std::fs::File,
) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let unreadable = |source| LoadError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let size = file.metadata().map_err(unreadable)?.len();
    let too_large = |size| LoadError::TooLarge {
        name: name.to_owned(),
        size,
    };
    if size > MAX_PLUGIN_BYTES as u64 {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_PLUGIN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > MAX_PLUGIN_BYTES {
        return Err(too_large(bytes.len() as u64));
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
    /// (each event at most [`MAX_EVENT_BYTES`]), each. A report handed over
    /// in parts may reach this in the host's memory (batch, the service)
    /// whatever the plugin's memory limit.
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
    /// The plugin file cannot be read.
    #[error("cannot read plugin {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
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
    /// The compiler cannot be set up.
    #[error("cannot compile plugins: {0}")]
    Compiler(String),
    /// The host functions cannot be set up.
    #[error("cannot define the host functions: {0}")]
    Linker(String),
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

/// A loaded plugin, ready to instantiate; clones share the compiled code
/// and the linked `InstancePre`.
#[derive(Clone)]
pub struct Plugin {
    name: Arc<str>,
    imports: Arc<[Import]>,
    code: Code,
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

    /// Where its native code came from.
    pub fn code(&self) -> Code {
        self.code
    }
}

/// Where a plugin's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Precompiled at build time, part of the binary.
    BuiltIn {
        /// Run where the binary maps it (else copied to memory of its
        /// own: off x86-64, when profiled, or loaded before).
        in_place: bool,
    },
    /// The compiled-plugin cache.
    Cached,
    /// Compiled by this process.
    Compiled {
        /// The CPU time compiling took (the loading thread's when the
        /// runtime compiles serially, else the whole process's).
        cpu: Duration,
    },
}

impl Code {
    /// The CPU time compiling took in this process (zero unless compiled).
    pub fn compile_cpu(self) -> Duration {
        match self {
            Code::Compiled { cpu } => cpu,
            Code::BuiltIn { .. } | Code::Cached => Duration::ZERO,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::BuiltIn { in_place: true } => {
                f.write_str("precompiled into the binary, run where the binary maps it")
            }
            Code::BuiltIn { in_place: false } => {
                f.write_str("precompiled into the binary, copied to memory")
            }
            Code::Cached => f.write_str("from the compiled-plugin cache"),
            Code::Compiled { cpu } => write!(f, "compiled now ({:.2} s CPU)", cpu.as_secs_f64()),
        }
    }
}

/// The runtime's own thread: it increments the engine's epoch every tick.
struct Helper {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

/// How often plugins yield to the executor (and the CPU budget is checked).
const TICK: Duration = Duration::from_millis(10);

/// The host functions a plugin with `imports` calls, defined for
/// `engine`: the WASI interfaces it imports, the probe contract, and its
/// 0.1 version only for a plugin that imports it. Every plugin gets a
/// linker of its own: all of WASI took `run ping` five times as long to
/// define as the interfaces it imports.
fn linker(engine: &wasmtime::Engine, imports: &[Import]) -> Result<Linker<ProbeCtx>, LoadError> {
    let mut linker = Linker::new(engine);
    let defined = wasi::add_to_linker(&mut linker, imports)
        .and_then(|()| {
            bindings::Probe::add_to_linker::<ProbeCtx, HasSelf<ProbeCtx>>(&mut linker, |c| c)
        })
        .and_then(|()| send_many::link(&mut linker))
        .and_then(|()| match compat::imported(imports) {
            true => compat::link(&mut linker),
            false => Ok(()),
        });
    defined
        .map(|()| linker)
        .map_err(|e| LoadError::Linker(format!("{e:#}")))
}

impl Helper {
    /// Starts the thread.
    fn start(engine: wasmtime::Engine) -> std::io::Result<Helper> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("runtime".into())
            .stack_size(256 << 10)
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Parked, not slept: `drop` wakes it at once.
                    std::thread::park_timeout(TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Helper {
            stop,
            thread: thread.thread().clone(),
        })
    }
}

impl Drop for Helper {
    /// Stops the thread without waiting for it: it only touches the engine
    /// it owns a handle to, and it leaves as soon as it wakes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// Wasm resources one run may use in a pooled runtime: the pool holds this
/// much per instance, so no tenant's component can use up its neighbours'
/// share. (Rust plugins use 1 memory, 2 tables, 3 core instances; the run's
/// memory limit, in bytes, still bounds all its memories together.) A
/// memory slot is address space until used: 4 GiB plus guard.
const POOL_MEMORIES_PER_RUN: u32 = 8;
const POOL_TABLES_PER_RUN: u32 = 4;
const POOL_CORE_INSTANCES_PER_RUN: u32 = 32;
/// Elements per table (CPython's indirect-call table has tens of thousands).
const POOL_TABLE_ELEMENTS: usize = 100_000;

/// Bytes of each pooled table zeroed in place at the end of a run (the
/// rest is returned to the kernel), and so kept resident for the slot's
/// next run: a Rust plugin's two tables are a page each.
const POOL_TABLE_KEEP_RESIDENT: usize = 16 << 10;

/// For `perf`: with `ICMP_HOST_PERFMAP` set, plugins' native functions are
/// named in `/tmp/perf-PID.map` (a run-time choice: artifacts do not depend
/// on it); whether it is set.
fn profiled(config: &mut wasmtime::Config) -> bool {
    let profiled = std::env::var_os("ICMP_HOST_PERFMAP").is_some();
    if profiled {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    profiled
}

/// Why a process that gained privileges at exec uses no cache.
const NO_CACHE_WHEN_ELEVATED: &str = "this binary gains capabilities when run (setcap or \
     setuid), and a cache you can write would run your native code with them; plugin \
     files are compiled every run (built-ins are precompiled into the binary)";

/// Everything needed to run plugins.
pub struct Runtime {
    /// Runs plugins. It loads native code but never compiles: building
    /// the compiler costs more than a built-in's whole load.
    engine: wasmtime::Engine,
    /// Makes the engine's code executable, so that built-ins run where
    /// the binary maps them; `None`: wasmtime's own (built-ins copied).
    code_memory: Option<Arc<CodeMemory>>,
    /// Compiles plugins that have no native code yet, with the same
    /// settings; made when first needed.
    compiler: std::sync::OnceLock<Result<wasmtime::Engine, String>>,
    /// Where the compiled-plugin cache is, if it is wanted.
    cache_dir: Option<PathBuf>,
    /// The cache, opened when first needed (built-ins never need it), or
    /// why it cannot be used.
    cache: std::sync::OnceLock<Result<cache::Cache, String>>,
    /// Which runs of a pooled runtime may start.
    admission: Option<Admission>,
    /// Compile on the loading thread alone (pooled, multi-tenant runtimes):
    /// one tenant's compile takes one core, not all, and its CPU time is
    /// exactly the thread's (charged to the tenant). Otherwise wasmtime
    /// compiles functions in parallel, for the one user waiting.
    serial_compile: bool,
    /// How plugins' memories get their data; built-ins' native code is
    /// picked for it.
    data: DataInit,
    _helper: Helper,
}

impl Runtime {
    /// A runtime for a few runs: instance memory is mapped per run, nothing
    /// is reserved up front, and plugins' data reaches it as `data` says.
    /// `cache_dir` `None` disables the cache.
    pub fn new(cache_dir: Option<PathBuf>, data: DataInit) -> anyhow::Result<Runtime> {
        Runtime::build(engine_config::config(data), data, cache_dir, None)
    }

    /// A runtime for up to `instances` concurrent runs, from a pool of
    /// instance slots reserved once (address space only; pages are touched
    /// as runs use them and returned when they end, but for a table's first
    /// ones, zeroed and kept). Runs beyond `instances` wait for a slot,
    /// and runs start a few at a time (`admission.rs`), to take slots
    /// others freed while they are warm.
    /// Plugins' data reaches their memories as `data` says; mapped
    /// ([`DataInit::Mapped`]), a slot that runs the same plugin again
    /// keeps its image mapped.
    pub fn pooled(
        cache_dir: Option<PathBuf>,
        instances: u32,
        data: DataInit,
    ) -> anyhow::Result<Runtime> {
        let instances = instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances * POOL_CORE_INSTANCES_PER_RUN)
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_RUN)
            .total_memories(instances * POOL_MEMORIES_PER_RUN)
            .max_memories_per_component(POOL_MEMORIES_PER_RUN)
            .max_memories_per_module(POOL_MEMORIES_PER_RUN)
            .total_tables(instances * POOL_TABLES_PER_RUN)
            .max_tables_per_component(POOL_TABLES_PER_RUN)
            .max_tables_per_module(POOL_TABLES_PER_RUN)
            .table_elements(POOL_TABLE_ELEMENTS)
            .total_stacks(instances);
        // A table's pages are zeroed in place when its run ends (the table
        // as large as the run made it, up to the bound), not handed back
        // with `madvise`, whose TLB shootdown interrupts every other core.
        // Memories are handed back: in place, wasmtime would zero their
        // first bytes whether a run touched them or not (a Rust plugin's
        // untouched stack end), unless the kernel's page map picked the
        // written pages, and that misses a page swapped out or migrating
        // at the time (neither reset nor handed back: the next tenant of
        // the slot would read it). Page maps stay off.
        pool.table_keep_resident(POOL_TABLE_KEEP_RESIDENT);
        let mut config = engine_config::config(data);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let admission = Admission::new(instances as usize);
        Runtime::build(config, data, cache_dir, Some(admission))
    }

    fn build(
        mut config: wasmtime::Config,
        data: DataInit,
        cache_dir: Option<PathBuf>,
        admission: Option<Admission>,
    ) -> anyhow::Result<Runtime> {
        config.enable_compiler(false);
        // Built-ins run in place where the hook does all that wasmtime's
        // own would: on x86-64, making code executable is the `mprotect`
        // alone (no instruction-cache maintenance, no branch protection).
        // perf reads its map file for code in anonymous memory only:
        // profiled, built-ins are copied like any code.
        let profiled = profiled(&mut config);
        let code_memory = (cfg!(target_arch = "x86_64") && !profiled).then(|| {
            let hook = Arc::new(CodeMemory::new(
                crate::builtin::BUILT_INS
                    .iter()
                    .flat_map(crate::builtin::BuiltIn::natives),
            ));
            config.with_custom_code_memory(Some(hook.clone()));
            hook
        });
        let engine = wasmtime::Engine::new(&config)?;
        Ok(Runtime {
            _helper: Helper::start(engine.clone()).context("starting the runtime's thread")?,
            engine,
            code_memory,
            compiler: std::sync::OnceLock::new(),
            cache_dir,
            cache: std::sync::OnceLock::new(),
            serial_compile: admission.is_some(),
            data,
            admission,
        })
    }

    /// Compiles plugins serially on the loading thread, as a pooled
    /// runtime does: for runtimes whose plugins belong to tenants, so that
    /// one compile takes one core and its CPU time is exactly the tenant's.
    pub fn compile_serially(mut self) -> Runtime {
        self.serial_compile = true;
        self
    }

    /// The engine that compiles (never instantiates: no instance pool).
    fn compiler(&self) -> Result<&wasmtime::Engine, LoadError> {
        self.compiler
            .get_or_init(|| {
                let mut config = engine_config::config(self.data);
                let _ = profiled(&mut config);
                config.parallel_compilation(!self.serial_compile);
                wasmtime::Engine::new(&config).map_err(|e| root_cause(&e))
            })
            .as_ref()
            .map_err(|reason| LoadError::Compiler(reason.clone()))
    }

    /// The compiled-plugin cache, when wanted and usable.
    fn cache(&self) -> Option<&cache::Cache> {
        let dir = self.cache_dir.as_ref()?;
        self.cache
            .get_or_init(|| {
                // The cache holds native code the host runs unchecked, and
                // it is the user's to write: in a binary that holds raw
                // sockets the user could not open alone (setcap, setuid),
                // it would hand them those sockets without any policy.
                if crate::sys::privilege::gained_privileges_at_exec() {
                    return Err(NO_CACHE_WHEN_ELEVATED.to_owned());
                }
                let compiler = self.compiler().map_err(|e| e.to_string())?;
                cache::Cache::open(dir, compiler).map_err(|e| e.to_string())
            })
            .as_ref()
            .ok()
    }

    /// Why the compiled-plugin cache is off, when it was needed but
    /// cannot be used.
    pub fn cache_warning(&self) -> Option<&str> {
        self.cache.get()?.as_ref().err().map(String::as_str)
    }

    /// Loads a built-in plugin: its native code from the binary when
    /// wasmtime accepts it for this engine, else its component compiled
    /// (through the cache).
    pub fn load_builtin(&self, builtin: &BuiltIn) -> Result<Plugin, LoadError> {
        let (component, code) = self.builtin_component(builtin)?;
        self.link(builtin.name, component, code)
    }

    /// A built-in's compiled component: see [`Runtime::load_builtin`].
    fn builtin_component(&self, builtin: &BuiltIn) -> Result<(Component, Code), LoadError> {
        let native = builtin.native(self.data);
        if !native.is_empty() {
            let in_place = (self.code_memory.as_ref()).is_some_and(|c| c.claim(native));
            // SAFETY: `deserialize` runs native code from these bytes. They
            // are part of this executable, written by `build.rs` with
            // `Engine::precompile_component` of the same wasmtime and
            // engine configuration; wasmtime checks version, target, CPU
            // features and settings against this engine and refuses a
            // mismatch (handled by compiling below). In place, they are a
            // `'static` immutable in the binary's text segment, which
            // nothing ever writes (`deserialize_raw`'s extra condition).
            #[allow(unsafe_code)]
            let component = match in_place {
                true => unsafe { Component::deserialize_raw(&self.engine, NonNull::from(native)) },
                false => unsafe { Component::deserialize(&self.engine, native) },
            };
            if let Ok(component) = component {
                return Ok((component, Code::BuiltIn { in_place }));
            }
        }
        self.component(builtin.name, builtin.wasm)
    }

    /// Loads the plugin in file `path`, named `name`. With a cache, a file
    /// loaded before is neither read nor hashed again: the cache knows it
    /// by device, inode, size and times (any write changes them).
    pub fn load_file(&self, name: &str, path: &Path) -> Result<Plugin, LoadError> {
        let unreadable = |source| LoadError::Unreadable {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let identity = cache::FileIdentity::of(&file).map_err(unreadable)?;
        if let Some(cache) = self.cache()
            && let Some(sha) = cache.digest_of(&identity)
            && let Some(component) = cache.load(&self.engine, &sha)
        {
            return self.link(name, component, Code::Cached);
        }
        let wasm = read_open_plugin(name, path, &file)?;
        let sha = sha256_hex(&wasm);
        let plugin = self.load_hashed(name, &wasm, &sha)?;
        if let Some(cache) = self.cache()
            // Unchanged while read: the bytes hashed are the file's; and
            // settled, so that a later change gets a new identity.
            && cache::FileIdentity::of(&file).is_ok_and(|now| now == identity)
            && identity.settled()
        {
            // A cache that cannot be written only costs a hash next time.
            let _ = cache.remember(&identity, &sha);
        }
        Ok(plugin)
    }

    /// Compiles (or loads from cache) and links the plugin `wasm`.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let (component, code) = self.component(name, wasm)?;
        self.link(name, component, code)
    }

    /// [`Runtime::load`] of bytes whose SHA-256 is `sha`.
    fn load_hashed(&self, name: &str, wasm: &[u8], sha: &str) -> Result<Plugin, LoadError> {
        let (component, code) = self.component_hashed(name, wasm, sha)?;
        self.link(name, component, code)
    }

    /// The compiled component of `wasm`: from the cache, or compiled (and
    /// cached).
    fn component(&self, name: &str, wasm: &[u8]) -> Result<(Component, Code), LoadError> {
        if wasm.len() > MAX_PLUGIN_BYTES {
            return Err(LoadError::TooLarge {
                name: name.to_owned(),
                size: wasm.len() as u64,
            });
        }
        self.component_hashed(name, wasm, &sha256_hex(wasm))
    }

    /// [`Runtime::component`] of bytes whose SHA-256 is `sha`.
    fn component_hashed(
        &self,
        name: &str,
        wasm: &[u8],
        sha: &str,
    ) -> Result<(Component, Code), LoadError> {
        if let Some(component) = self.cache().and_then(|c| c.load(&self.engine, sha)) {
            return Ok((component, Code::Cached));
        }
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: name.to_owned(),
            reason: root_cause(&e),
        };
        let compiler = self.compiler()?;
        let clock = match self.serial_compile {
            true => thread_cpu_ns,
            false => process_cpu_ns,
        };
        let start = clock();
        let artifact = compiler.precompile_component(wasm).map_err(invalid)?;
        let cpu = Duration::from_nanos(clock().saturating_sub(start));
        // SAFETY: `deserialize` runs native code from these bytes: this
        // process's compiler just produced them, with the settings of
        // `self.engine`.
        #[allow(unsafe_code)]
        let component =
            unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(invalid)?;
        if let Some(cache) = self.cache() {
            // A cache that cannot be written only costs a recompile.
            let _ = cache.store(&artifact, sha);
        }
        Ok((component, Code::Compiled { cpu }))
    }

    /// Checks a component's imports and links it against the host.
    fn link(&self, name: &str, component: Component, code: Code) -> Result<Plugin, LoadError> {
        let imports = wasi::check_imports(name, &component, &self.engine)?;
        let pre = linker(&self.engine, &imports)?
            .instantiate_pre(&component)
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
            name: name.into(),
            imports: imports.into(),
            code,
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
        self.run_to(plugin, args, session, limits, ReportTo::Caller)
            .await
    }

    /// Like [`Runtime::run`], with the report's JSON going to `report`.
    pub async fn run_to(
        &self,
        plugin: &Plugin,
        args: Vec<String>,
        session: Session,
        limits: &Limits,
        report: ReportTo,
    ) -> Result<Finished, Stopped> {
        let Session {
            engine,
            tenant,
            policy,
            sink,
            interrupt,
        } = session;
        // Before the store, so dropped after it (wasmtime refuses an
        // instance beyond the pool).
        let mut admitted = match &self.admission {
            Some(admission) => Some(admission.admit(&interrupt).await),
            None => None,
        };
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
            started_batches: 0,
            run_limits: limits.clone(),
            document: Document::new(report, limits.output),
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
        let call = Young::new(call, admitted.as_mut());
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
        let document = std::mem::replace(
            &mut store.data_mut().document,
            Document::new(ReportTo::Caller, 0),
        );
        // Parts past the output limit fail the run whatever it returns;
        // anything but a report drops them.
        let answer = match answer {
            Ok(types::RunOutput::Report(types::Report { json, outcome })) => {
                let json = document.finish(json).map_err(stopped)?;
                Ok(types::RunOutput::Report(types::Report { json, outcome }))
            }
            other => {
                document.finish(None).map_err(stopped)?;
                other
            }
        };
        let size = match &answer {
            Ok(types::RunOutput::Report(_)) => 0, // within the limit: `finish` saw to it
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
        what.push_str(&format!(" (in {})", symbols::readable(name)));
    }
    RunError::Trap(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::{EngineConfig, Quota};

    struct Quiet;

    impl ProgressSink for Quiet {
        fn emit(&self, _: progress::Event) {}
    }

    /// A pooled slot's next run finds the instance as the component built
    /// it: its data segment restored, every page of memory it wrote zero
    /// again (returned to the kernel), its table empty (zeroed in place).
    #[tokio::test]
    async fn a_pooled_slot_keeps_nothing_of_its_last_run() {
        let wasm = wat::parse_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/tests/residue.wat"
        ))
        .unwrap();
        for data in [DataInit::Mapped, DataInit::Copied] {
            let runtime = Runtime::pooled(None, 1, data).unwrap();
            let plugin = runtime.load("residue", &wasm).unwrap();
            runs_find_no_residue(&runtime, &plugin, data).await;
        }
    }

    /// Three runs of `plugin` in turn, in `runtime`'s one slot.
    async fn runs_find_no_residue(runtime: &Runtime, plugin: &Plugin, data: DataInit) {
        let engine = Engine::with_transports(None, None, EngineConfig::default());
        let limits = Limits::default();
        for run in 0..3 {
            let session = Session {
                tenant: engine.tenant("t", Quota::default()).unwrap(),
                engine: engine.clone(),
                policy: Arc::default(),
                sink: Arc::new(Quiet),
                interrupt: Interrupt::new(),
            };
            let finished = runtime.run(plugin, Vec::new(), session, &limits).await;
            let output = finished.map(|f| f.output).map_err(|e| e.error.to_string());
            assert!(
                matches!(&output, Ok(Err(types::RunError::Failed(m))) if m == "residue: none"),
                "{data:?}, run {run}: {output:?}"
            );
        }
    }
}
