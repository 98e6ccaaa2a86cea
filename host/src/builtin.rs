//! Plugins compiled into the binary, so `icmp-host run ping …` needs no path
//! and no compile: `build.rs` precompiles each to native code for this
//! machine with the runtime's engine configuration, once for each way
//! memories get their data ([`DataInit`]).

use crate::runtime::DataInit;

/// A built-in plugin.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line for `icmp-host list`.
    pub summary: &'static str,
    /// The component, shrunk by `build.rs` (optimised, names demangled).
    pub wasm: &'static [u8],
    /// Its native code for engines that copy data into memories.
    pub copied: &'static [u8],
    /// Its native code for engines that map data copy-on-write.
    pub mapped: &'static [u8],
}

impl BuiltIn {
    /// Its native code for engines whose memories get their data as `data`
    /// says, as `Engine::precompile_component` wrote it at build time;
    /// empty when cross-compiled. Loaded only after wasmtime has checked it
    /// was built for this engine (else `wasm` is compiled). It lies
    /// page-aligned in the binary's executable segment, so that on x86-64
    /// it runs where the binary maps it (`sys::code_memory`).
    pub fn native(&self, data: DataInit) -> &'static [u8] {
        match data {
            DataInit::Copied => self.copied,
            DataInit::Mapped => self.mapped,
        }
    }

    /// Its native code for every [`DataInit`].
    pub fn natives(&self) -> [&'static [u8]; 2] {
        [self.copied, self.mapped]
    }
}

/// Bytes aligned as wasmtime's code pages on x86-64, where the runtime
/// runs built-ins in place: an artifact's `.text` starts on a 4 KiB
/// boundary of the artifact.
#[repr(C, align(4096))]
struct PageAligned<T>(T);

/// A precompiled artifact of `build.rs`, placed in the binary's text
/// segment (a `.text.*` input section goes to `.text`): mapped read-only
/// and executable, never written.
macro_rules! native {
    ($name:literal, $data:literal) => {{
        const NATIVE: &[u8] =
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".", $data, ".cwasm"));
        // SAFETY: a plain immutable static; the section only places it.
        #[allow(unsafe_code)]
        #[unsafe(link_section = ".text.icmp_host_native")]
        static IN_TEXT: PageAligned<[u8; NATIVE.len()]> = match NATIVE.first_chunk() {
            Some(bytes) => PageAligned(*bytes),
            None => unreachable!(),
        };
        &IN_TEXT.0
    }};
}

macro_rules! plugin {
    ($name:literal, $summary:literal) => {
        BuiltIn {
            name: $name,
            summary: $summary,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm")),
            copied: native!($name, "copied"),
            mapped: native!($name, "mapped"),
        }
    };
}

/// Every built-in plugin.
pub static BUILT_INS: &[BuiltIn] = &[
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

    /// `build.rs` precompiled every built-in with the engine configurations
    /// the runtimes use (else each run would compile it again): copied or
    /// mapped data, for a single run or a pool.
    #[test]
    fn built_ins_load_their_precompiled_code() {
        for runtime in [
            Runtime::new(None, DataInit::Copied),
            Runtime::new(None, DataInit::Mapped),
            Runtime::pooled(None, 4, DataInit::Copied),
            Runtime::pooled(None, 4, DataInit::Mapped),
        ] {
            let runtime = runtime.unwrap();
            for b in BUILT_INS {
                let plugin = runtime.load_builtin(b).unwrap();
                assert!(matches!(plugin.code(), Code::BuiltIn { .. }), "{}", b.name);
            }
        }
    }

    /// Each built-in's native code lies page-aligned in an executable
    /// mapping of this binary, so it can run in place (`sys::code_memory`;
    /// that it does is an end-to-end test: a test process loads built-ins
    /// from many threads, and only the first load runs in place).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn built_ins_native_code_is_mapped_executable() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let executable: Vec<(usize, usize)> = maps
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let (range, perms) = (fields.next()?, fields.next()?);
                let (start, end) = range.split_once('-')?;
                let parse = |hex| usize::from_str_radix(hex, 16).ok();
                perms
                    .starts_with("r-x")
                    .then_some((parse(start)?, parse(end)?))
            })
            .collect();
        let code_memory =
            crate::sys::code_memory::CodeMemory::new(BUILT_INS.iter().flat_map(BuiltIn::natives));
        for b in BUILT_INS {
            for native in b.natives() {
                assert!(!native.is_empty(), "{}: precompiled", b.name);
                let range = native.as_ptr_range();
                let (start, end) = (range.start.addr(), range.end.addr());
                assert!(
                    executable.iter().any(|&(lo, hi)| lo <= start && end <= hi),
                    "{}: {start:#x}..{end:#x} is in no executable mapping:\n{maps}",
                    b.name
                );
                assert!(code_memory.fits(native), "{}", b.name);
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
