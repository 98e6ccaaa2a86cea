//! Plugins compiled into the binary, so `icmp-host run ping …` needs no path.

/// A built-in plugin.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line for `icmp-host list`.
    pub summary: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

macro_rules! plugin {
    ($name:literal, $summary:literal) => {
        BuiltIn {
            name: $name,
            summary: $summary,
            wasm: include_bytes!(concat!(env!("ICMP_HOST_PLUGIN_DIR"), "/", $name, ".wasm")),
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
