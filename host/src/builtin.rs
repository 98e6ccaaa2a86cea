//! Plugins compiled into the binary, so `icmp-host run ping …` needs no path
//! and no compile: `build.rs` precompiles each to native code for this
//! machine with the runtime's engine configuration.

/// A built-in plugin.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line for `icmp-host list`.
    pub summary: &'static str,
    /// The component, shrunk by `build.rs` (optimised, names demangled).
    pub wasm: &'static [u8],
    /// Its native code, as `Engine::precompile_component` wrote it at build
    /// time; empty when cross-compiled. Loaded only after wasmtime has
    /// checked it was built for this engine (else `wasm` is compiled).
    pub native: &'static [u8],
}

macro_rules! plugin {
    ($name:literal, $summary:literal) => {
        BuiltIn {
            name: $name,
            summary: $summary,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm")),
            native: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".cwasm")),
        }
    };
}

/// Every built-in plugin.
pub const BUILT_INS: &[BuiltIn] = &[
    plugin!(
        "ping",
        "send ICMP Echo Requests to one host (icmplib's ping)"
    ),
    plugin!(
        "multiping",
        "ping many hosts over shared sockets (icmplib's multiping)"
    ),
    plugin!(
        "traceroute",
        "trace the path to a host (icmplib's traceroute)"
    ),
];

/// The built-in plugin called `name`.
pub fn find(name: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Code, Runtime};

    /// `build.rs` precompiled every built-in with the engine configuration
    /// the runtime uses (else each run would compile it again).
    #[test]
    fn built_ins_load_their_precompiled_code() {
        for runtime in [Runtime::new(None), Runtime::pooled(None, 4)] {
            let runtime = runtime.unwrap();
            for b in BUILT_INS {
                let plugin = runtime.load_builtin(b).unwrap();
                assert_eq!(plugin.code(), Code::BuiltIn, "{}", b.name);
            }
        }
    }

    /// Shrinking kept every function's name, demangled: a trap in a
    /// built-in still names the SDK's functions.
    #[test]
    fn built_ins_keep_readable_function_names() {
        let contains = |wasm: &[u8], needle: &[u8]| wasm.windows(needle.len()).any(|w| w == needle);
        for b in BUILT_INS {
            assert!(
                contains(b.wasm, b"icmp_host_sdk::args::Args::next_arg"),
                "{}: the SDK's functions are named",
                b.name
            );
            assert!(
                !contains(b.wasm, b"_ZN"),
                "{}: no mangled name is left",
                b.name
            );
            assert!(
                !contains(b.wasm, b"component-name"),
                "{}: unused custom sections are dropped",
                b.name
            );
        }
    }
}
