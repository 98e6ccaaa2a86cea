//! What is shipped: the built-in plugins' sizes (components and their
//! precompiled native code) and the host binary's.

#[path = "common.rs"]
mod common;

use icmp_host::builtin::BUILT_INS;

fn main() {
    // Native code is built twice: data copied (`run`), data mapped (pools).
    println!(
        "{:<14} {:>12} {:>14} {:>14}",
        "plugin", "wasm KiB", "native KiB", "(mapped) KiB"
    );
    for b in BUILT_INS {
        println!(
            "{:<14} {:>12.1} {:>14.1} {:>14.1}",
            b.name,
            kib(b.wasm.len() as u64),
            kib(b.copied.len() as u64),
            kib(b.mapped.len() as u64)
        );
    }
    if let Some(ping) = BUILT_INS.iter().find(|b| b.name == "ping") {
        println!(
            "  => ping.wasm: {:.1} KiB  (goal: <= 120 KiB)",
            kib(ping.wasm.len() as u64)
        );
    }
    let bin = std::env::var_os("ICMP_HOST_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_icmp-host").into());
    if let Ok(meta) = std::fs::metadata(&bin) {
        println!("icmp-host binary: {:.1} MiB", common::mib(meta.len()));
    }
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}
