//! What a plugin sees besides the probe contract: the published WASI
//! subset (stdio captured, clocks, random, an empty environment, a closed
//! stdin), and the check that refuses a component importing anything else.

use wasmtime::component::{Component, Linker, ResourceTable};

use super::LoadError;
use super::clocks::{ClockView, InterruptibleClock};
use super::host::ProbeCtx;

/// WASI interfaces a plugin may import (any 0.2.x version).
const ALLOWED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// The `icmp-host:probe` interfaces this host serves (`wit/`), exactly.
const PROBE_INTERFACES: &[&str] = &[
    "icmp-host:probe/types@0.2.0",
    "icmp-host:probe/sockets@0.2.0",
    "icmp-host:probe/dns@0.2.0",
    "icmp-host:probe/progress@0.2.0",
    "icmp-host:probe/control@0.2.0",
    "icmp-host:probe/limits@0.2.0",
    // Served beside 0.2.0 (runtime/compat.rs).
    "icmp-host:probe/types@0.1.0",
    "icmp-host:probe/sockets@0.1.0",
    "icmp-host:probe/dns@0.1.0",
    "icmp-host:probe/progress@0.1.0",
    "icmp-host:probe/control@0.1.0",
];

/// Marks the WASI I/O interfaces' view of the store: its resource table.
struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds the published WASI subset (and nothing else) to the linker.
pub(super) fn add_wasi_subset(l: &mut Linker<ProbeCtx>) -> anyhow::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
    use wasmtime_wasi::random::WasiRandom;

    io::error::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table)?;
    io::poll::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table)?;
    io::streams::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<ProbeCtx, WasiClocks>(l, ProbeCtx::clocks)?;
    // Clock subscriptions wake on the run's interrupt (`std::thread::sleep`).
    clocks::monotonic_clock::add_to_linker::<ProbeCtx, InterruptibleClock>(l, |t| ClockView {
        clocks: WasiClocksCtxView {
            ctx: t.wasi.clocks(),
            table: &mut t.table,
        },
        interrupt: &t.interrupt,
    })?;
    random::random::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::environment::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::stdin::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::stdout::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::stderr::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::terminal_input::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::terminal_output::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::terminal_stdin::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::terminal_stdout::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    cli::terminal_stderr::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli)?;
    Ok(())
}

/// Refuses a component importing anything outside the published set,
/// naming the import; returns the imports.
pub(super) fn check_imports(
    name: &str,
    component: &Component,
    engine: &wasmtime::Engine,
) -> Result<Vec<String>, LoadError> {
    let mut imports = Vec::new();
    for (import, _) in component.component_type().imports(engine) {
        let unversioned = import.split('@').next().unwrap_or(import);
        if !PROBE_INTERFACES.contains(&import) && !ALLOWED_WASI.contains(&unversioned) {
            return Err(LoadError::ForbiddenImport {
                name: name.to_owned(),
                import: import.to_owned(),
            });
        }
        imports.push(import.to_owned());
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The served list is the contract: every interface of `wit/`, at the
    /// package's version, and nothing else.
    #[test]
    fn probe_interfaces_are_those_of_the_wit() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit");
        let mut found = Vec::new();
        let current = std::fs::read_dir(dir).unwrap();
        let older = std::fs::read_dir(format!("{dir}/0.1.0")).unwrap();
        for entry in current.chain(older) {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wit") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let version = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("package icmp-host:probe@"))
                .map(|v| v.trim_end_matches(';').to_owned())
                .unwrap();
            for l in text.lines() {
                if let Some(name) = l.trim().strip_prefix("interface ") {
                    let name = name.trim_end_matches('{').trim();
                    found.push(format!("icmp-host:probe/{name}@{version}"));
                }
            }
        }
        found.sort();
        let mut served: Vec<String> = PROBE_INTERFACES.iter().map(|s| s.to_string()).collect();
        served.sort();
        assert_eq!(found, served);
    }
}
