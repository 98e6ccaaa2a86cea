//! What a plugin sees besides the probe contract: the WASI interfaces the
//! host serves — stdio (captured), clocks and random as WASI defines them;
//! filesystem, sockets and environment in a deny-everything form — and the
//! check that refuses a component importing anything else, naming it.
//!
//! The deny-everything interfaces are there for guests whose toolchain
//! imports them whether or not they are used (a componentize-py Python
//! component imports the filesystem and sockets): linked, they let such a
//! plugin load, and every use fails the way a missing file or a refused
//! connection does. Nothing a plugin can reach through them exists: no
//! preopened directory, no network it may use, no variable, no argument.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::clocks::{ClockView, InterruptibleClock};
use super::host::ProbeCtx;
use super::{Code, LoadError, Runtime};
use crate::builtin::BuiltIn;

/// How the host serves an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Provided as its definition says, within the run's limits.
    Provided(&'static str),
    /// Linked, but every operation is refused or finds nothing.
    Denied(&'static str),
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Service::Provided(how) => write!(f, "provided: {how}"),
            Service::Denied(why) => write!(f, "denied: {why}"),
        }
    }
}

/// One import of a plugin and how the host serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The import as the component names it, e.g. `wasi:io/poll@0.2.9`.
    pub name: String,
    /// How the host serves it.
    pub service: Service,
}

/// The `icmp-host:probe` interfaces this host serves (`wit/`), exactly.
/// Earlier compatible versions of them are served too (see
/// [`probe_interface`]).
const PROBE_INTERFACES: &[&str] = &[
    "icmp-host:probe/types@0.2.2",
    "icmp-host:probe/sockets@0.2.2",
    "icmp-host:probe/dns@0.2.2",
    "icmp-host:probe/progress@0.2.2",
    "icmp-host:probe/control@0.2.2",
    "icmp-host:probe/limits@0.2.2",
    // Served beside 0.2 (runtime/compat.rs).
    "icmp-host:probe/types@0.1.0",
    "icmp-host:probe/sockets@0.1.0",
    "icmp-host:probe/dns@0.1.0",
    "icmp-host:probe/progress@0.1.0",
    "icmp-host:probe/control@0.1.0",
];

/// Defines one WASI interface in a linker.
type Define = fn(&mut Linker<ProbeCtx>) -> wasmtime::Result<()>;

/// Every WASI interface a plugin may import (any 0.2.x version): how it is
/// served, and how it is defined in a linker. The denied ones are served
/// by wasmtime-wasi with a context that has nothing in them (see
/// [`context`]).
const SERVED_WASI: &[(&str, Service, Define)] = {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random, sockets};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
    &[
        (
            "wasi:io/error",
            Service::Provided("errors of the streams below"),
            |l| io::error::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table),
        ),
        (
            "wasi:io/poll",
            Service::Provided("waiting on clocks and streams"),
            |l| io::poll::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table),
        ),
        (
            "wasi:io/streams",
            Service::Provided("the stdio streams below"),
            |l| io::streams::add_to_linker::<ProbeCtx, HasIo>(l, |t| &mut t.table),
        ),
        (
            "wasi:clocks/wall-clock",
            Service::Provided("the realtime clock"),
            |l| clocks::wall_clock::add_to_linker::<ProbeCtx, WasiClocks>(l, ProbeCtx::clocks),
        ),
        // Clock subscriptions wake on the run's interrupt (`time.sleep`,
        // WASI poll).
        (
            "wasi:clocks/monotonic-clock",
            Service::Provided("the monotonic clock; waits end on the run's interrupt"),
            |l| {
                clocks::monotonic_clock::add_to_linker::<ProbeCtx, InterruptibleClock>(l, |t| {
                    ClockView {
                        clocks: WasiClocksCtxView {
                            ctx: t.wasi.clocks(),
                            table: &mut t.table,
                        },
                        interrupt: &t.interrupt,
                    }
                })
            },
        ),
        (
            "wasi:random/random",
            Service::Provided("the host's CSPRNG"),
            |l| random::random::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random()),
        ),
        (
            "wasi:random/insecure",
            Service::Provided("a fast PRNG"),
            |l| random::insecure::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random()),
        ),
        (
            "wasi:random/insecure-seed",
            Service::Provided("a random seed"),
            |l| {
                random::insecure_seed::add_to_linker::<ProbeCtx, WasiRandom>(l, |t| t.wasi.random())
            },
        ),
        (
            "wasi:cli/exit",
            Service::Provided("ends the run, reported as an error"),
            |l| cli::exit::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/stdin",
            Service::Provided("closed (the host's stdin with --stdin)"),
            |l| cli::stdin::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/stdout",
            Service::Provided("captured, never mixed into results"),
            |l| cli::stdout::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/stderr",
            Service::Provided("captured, shown as the plugin's lines"),
            |l| cli::stderr::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/terminal-input",
            Service::Denied("no terminal"),
            |l| cli::terminal_input::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/terminal-output",
            Service::Denied("no terminal"),
            |l| cli::terminal_output::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/terminal-stdin",
            Service::Denied("no terminal"),
            |l| cli::terminal_stdin::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/terminal-stdout",
            Service::Denied("no terminal"),
            |l| cli::terminal_stdout::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/terminal-stderr",
            Service::Denied("no terminal"),
            |l| cli::terminal_stderr::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:cli/environment",
            Service::Denied("empty: no variables, no arguments, no working directory"),
            |l| cli::environment::add_to_linker::<ProbeCtx, WasiCli>(l, ProbeCtx::cli),
        ),
        (
            "wasi:filesystem/types",
            Service::Denied("no directories: nothing to open"),
            |l| {
                filesystem::types::add_to_linker::<ProbeCtx, WasiFilesystem>(
                    l,
                    ProbeCtx::filesystem,
                )
            },
        ),
        (
            "wasi:filesystem/preopens",
            Service::Denied("no directories are preopened"),
            |l| {
                filesystem::preopens::add_to_linker::<ProbeCtx, WasiFilesystem>(
                    l,
                    ProbeCtx::filesystem,
                )
            },
        ),
        (
            "wasi:sockets/network",
            Service::Denied("every address is refused"),
            |l| {
                sockets::network::add_to_linker::<ProbeCtx, WasiSockets>(
                    l,
                    &Default::default(),
                    ProbeCtx::sockets,
                )
            },
        ),
        (
            "wasi:sockets/instance-network",
            Service::Denied("a network that refuses every address"),
            |l| {
                sockets::instance_network::add_to_linker::<ProbeCtx, WasiSockets>(
                    l,
                    ProbeCtx::sockets,
                )
            },
        ),
        (
            "wasi:sockets/tcp-create-socket",
            Service::Denied("TCP is refused before any socket exists"),
            |l| {
                sockets::tcp_create_socket::add_to_linker::<ProbeCtx, WasiSockets>(
                    l,
                    ProbeCtx::sockets,
                )
            },
        ),
        ("wasi:sockets/tcp", Service::Denied("TCP is refused"), |l| {
            sockets::tcp::add_to_linker::<ProbeCtx, WasiSockets>(l, ProbeCtx::sockets)
        }),
        (
            "wasi:sockets/udp-create-socket",
            Service::Denied("UDP is refused before any socket exists"),
            |l| {
                sockets::udp_create_socket::add_to_linker::<ProbeCtx, WasiSockets>(
                    l,
                    ProbeCtx::sockets,
                )
            },
        ),
        ("wasi:sockets/udp", Service::Denied("UDP is refused"), |l| {
            sockets::udp::add_to_linker::<ProbeCtx, WasiSockets>(l, ProbeCtx::sockets)
        }),
        (
            "wasi:sockets/ip-name-lookup",
            Service::Denied("every lookup fails (names resolve through icmp-host:probe/dns)"),
            |l| {
                sockets::ip_name_lookup::add_to_linker::<ProbeCtx, WasiSockets>(
                    l,
                    ProbeCtx::sockets,
                )
            },
        ),
    ]
};

/// Whether `import` is a served `icmp-host:probe` interface, or the same
/// interface of an earlier compatible version (`@0.2.0` of a served
/// `@0.2.2`: a later version only adds functions). The linker resolves
/// imports by semver; this accepts a subset of what it would (no later
/// patch, no build metadata), and it is the gate.
fn probe_interface(import: &str) -> bool {
    let Some((name, wanted)) = import.split_once('@') else {
        return false;
    };
    PROBE_INTERFACES.iter().any(|served| {
        served
            .split_once('@')
            .is_some_and(|(n, version)| n == name && serves(version, wanted))
    })
}

/// Whether a `served` version answers imports of `wanted`: the same major
/// version (minor while below 1.0), and not later.
fn serves(served: &str, wanted: &str) -> bool {
    let parse = |v: &str| -> Option<[u64; 3]> {
        let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
        let version = [parts.next()??, parts.next()??, parts.next()??];
        parts.next().is_none().then_some(version)
    };
    let (Some(s), Some(w)) = (parse(served), parse(wanted)) else {
        return false;
    };
    let same_line = match s[0] {
        0 => s[..2] == w[..2],
        _ => s[0] == w[0],
    };
    same_line && w <= s
}

/// How the host serves `import`, or `None` when it does not.
pub fn service(import: &str) -> Option<Service> {
    if probe_interface(import) {
        return Some(Service::Provided("icmp-host, under the run's policy"));
    }
    let version = import.split_once('@').map_or("", |(_, v)| v);
    if !(version.is_empty() || version.starts_with("0.2.")) {
        return None;
    }
    SERVED_WASI
        .iter()
        .find(|(name, _, _)| *name == unversioned(import))
        .map(|(_, service, _)| *service)
}

/// Marks the WASI I/O interfaces' view of the store: its resource table.
struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Defines the interfaces of [`SERVED_WASI`] that `imports` name (at any
/// version: the linker answers 0.2.x imports by semver), and no others.
pub(super) fn add_to_linker(l: &mut Linker<ProbeCtx>, imports: &[Import]) -> wasmtime::Result<()> {
    for (interface, _, define) in SERVED_WASI {
        if imports.iter().any(|i| unversioned(&i.name) == *interface) {
            define(l)?;
        }
    }
    Ok(())
}

/// An interface's name without its version: `wasi:io/poll`.
fn unversioned(import: &str) -> &str {
    import.split_once('@').map_or(import, |(name, _)| name)
}

/// The WASI context of one run: stdout and stderr into `captured`, stdin
/// closed unless `stdin`, and nothing else — no preopened directory, no
/// environment variable or argument, TCP, UDP and name lookups off, and
/// an address check that refuses every address.
pub(super) fn context(captured: &(impl StdoutStream + Clone + 'static), stdin: bool) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.stdout(captured.clone()).stderr(captured.clone());
    if stdin {
        b.inherit_stdin();
    }
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
}

/// Every import of `component` and how it is served (`None`: it is not).
fn services(component: &Component, engine: &wasmtime::Engine) -> Vec<(String, Option<Service>)> {
    component
        .component_type()
        .imports(engine)
        .map(|(import, _)| (import.to_owned(), service(import)))
        .collect()
}

/// Refuses a component importing anything the host does not serve, naming
/// the import; returns every import with how it is served.
pub(super) fn check_imports(
    name: &str,
    component: &Component,
    engine: &wasmtime::Engine,
) -> Result<Vec<Import>, LoadError> {
    services(component, engine)
        .into_iter()
        .map(|(import, service)| match service {
            Some(service) => Ok(Import {
                name: import,
                service,
            }),
            None => Err(LoadError::ForbiddenImport {
                name: name.to_owned(),
                import,
            }),
        })
        .collect()
}

/// What `icmp-host inspect` reports about a component.
#[derive(Debug)]
pub struct Inspection {
    /// Every import and how the host serves it; `None`: not served.
    pub imports: Vec<(String, Option<Service>)>,
    /// Where its native code came from.
    pub code: Code,
    /// Whether it loads; the error names what stops it (the first import
    /// not served, or a missing export).
    pub load: Result<(), LoadError>,
}

impl Runtime {
    /// Compiles `wasm` as `run` would (through the cache), lists every
    /// import with how it is served, and links it: `load` says whether it
    /// would run, and if not, why. Fails only when `wasm` is not a
    /// component at all.
    pub fn inspect(&self, name: &str, wasm: &[u8]) -> Result<Inspection, LoadError> {
        let (component, code) = self.component(name, wasm)?;
        Ok(self.inspection(name, component, code))
    }

    /// [`Runtime::inspect`] of a built-in plugin.
    pub fn inspect_builtin(&self, builtin: &BuiltIn) -> Result<Inspection, LoadError> {
        let (component, code) = self.builtin_component(builtin)?;
        Ok(self.inspection(builtin.name, component, code))
    }

    fn inspection(&self, name: &str, component: Component, code: Code) -> Inspection {
        Inspection {
            imports: services(&component, &self.engine),
            code,
            load: self.link(name, component, code).map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_contract_and_wasi_0_2_are_served() {
        assert!(matches!(
            service("icmp-host:probe/sockets@0.2.0"),
            Some(Service::Provided(_))
        ));
        assert!(matches!(
            service("wasi:clocks/monotonic-clock@0.2.9"),
            Some(Service::Provided(_))
        ));
        assert!(matches!(
            service("wasi:io/poll"),
            Some(Service::Provided(_))
        ));
        let fs = service("wasi:filesystem/types@0.2.9").unwrap();
        assert_eq!(fs.to_string(), "denied: no directories: nothing to open");
        for denied in [
            "wasi:filesystem/preopens@0.2.0",
            "wasi:sockets/tcp@0.2.9",
            "wasi:sockets/udp-create-socket@0.2.3",
            "wasi:sockets/ip-name-lookup@0.2.9",
            "wasi:cli/environment@0.2.9",
        ] {
            assert!(
                matches!(service(denied), Some(Service::Denied(_))),
                "{denied}"
            );
        }
    }

    #[test]
    fn anything_else_is_not_served() {
        for refused in [
            "wasi:http/outgoing-handler@0.2.9",
            "wasi:filesystem/types@0.3.0",
            "wasi:sockets/tcp@1.0.0",
            "wasi:keyvalue/store@0.2.0",
            "evil:exfil/upload",
            "icmp-host:probe-extra/x@0.2.0",
            "icmp-host:probe/sockets@0.3.0",
            "icmp-host:probe/limits@0.1.0",
            "wasi:io/poll-extended@0.2.9",
        ] {
            assert_eq!(service(refused), None, "{refused}");
        }
    }

    #[test]
    fn every_served_wasi_interface_is_named_once() {
        let mut names: Vec<&str> = SERVED_WASI.iter().map(|(n, _, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERVED_WASI.len());
    }

    #[test]
    fn earlier_compatible_probe_versions_are_served() {
        for (import, served) in [
            ("icmp-host:probe/progress@0.2.2", true),
            ("icmp-host:probe/progress@0.2.1", true),
            ("icmp-host:probe/progress@0.2.0", true),
            ("icmp-host:probe/sockets@0.1.0", true),
            ("icmp-host:probe/progress@0.2.3", false),
            ("icmp-host:probe/progress@0.3.0", false),
            ("icmp-host:probe/limits@0.1.0", false),
            ("icmp-host:probe/telepathy@0.2.0", false),
            ("icmp-host:probe/progress@0.2", false),
            ("icmp-host:probe/progress@0.2.0-rc1", false),
            ("icmp-host:probe/progress", false),
        ] {
            assert_eq!(service(import).is_some(), served, "{import}");
        }
    }

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
