//! The wasmtime configuration every compiled plugin depends on. `build.rs`
//! includes this file too and precompiles the built-in plugins with it;
//! wasmtime refuses an artifact whose engine settings differ from the
//! loading engine's (version, target, CPU features, tunables), so a drift
//! costs a compile at run time, never a wrong load.
//!
//! Only settings that shape compiled code belong here; how instances are
//! allocated (on demand or pooled) is chosen by the runtime.

/// How a plugin's linear memory receives its initial data. Artifacts
/// depend on it (wasmtime's `memory_init_cow`), so built-ins are
/// precompiled for each, and the compiled-plugin cache keeps one artifact
/// per setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataInit {
    /// Copied into each new memory. Nothing is prepared per plugin, so a
    /// process that instantiates a built-in once (`icmp-host run ping`)
    /// does least: 12-14% less CPU than `Mapped` for `run ping -c 1`. A
    /// batch of built-ins only uses it too: their few pages of data are
    /// written at once, where a mapped image is read first and then copied
    /// on write, each copy a TLB shootdown (0.92 to 0.94 of the CPU of 1,000
    /// pings).
    Copied,
    /// Mapped copy-on-write from an image of the data, made once per plugin
    /// and process, so that each later instance faults in only the pages
    /// it touches and instances share the pages they only read. Pays off
    /// where a plugin with much data is instantiated again and again
    /// (`batch`, `serve`): a CPython plugin's megabytes of data are not
    /// copied for every run.
    /// Plugin files use it everywhere, `run` included, so that one compile
    /// (cached) serves `run`, `batch` and `serve` alike.
    Mapped,
}

/// The engine configuration of plugins' native code, for memories
/// initialised as `data` says.
pub fn config(data: DataInit) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Traps name the function (from the name section); no DWARF is parsed,
    // and `WASMTIME_BACKTRACE_DETAILS` in the environment cannot change
    // the settings (and so invalidate every precompiled artifact).
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    // Frames are named from the function table; native-to-wasm offsets
    // are never shown, so artifacts do without the address map.
    config.generate_address_map(false);
    config.memory_init_cow(data == DataInit::Mapped);
    config
}
