//! The wasmtime configuration every compiled plugin depends on. `build.rs`
//! includes this file too and precompiles the built-in plugins with it;
//! wasmtime refuses an artifact whose engine settings differ from the
//! loading engine's (version, target, CPU features, tunables), so a drift
//! costs a compile at run time, never a wrong load.
//!
//! Only settings that shape compiled code belong here; how instances are
//! allocated (on demand or pooled) is chosen by the runtime.

/// The engine configuration of plugins' native code.
pub fn config() -> wasmtime::Config {
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
    config
}
