// Shared by the hostile test plugins written directly against `wit/`
// (`include!`d, not a crate: each plugin stays one file a reader can audit).
// Bindings straight from the contract, and a few helpers over them.

// What `wit_bindgen::generate!({ path: "../../../wit", world: "probe" })`
// expands to, generated ahead of time (guest-sdk/tests/bindings.rs); in a
// module of its own so the generated code is not linted as ours.
#[allow(clippy::all, dead_code)]
mod bindings {
    include!("bindings.rs");
}
use bindings::*;

#[allow(unused_imports)]
use icmp_host::probe::sockets::{IcmpSocket, OpenOptions, ReplyMatch};
#[allow(unused_imports)]
use icmp_host::probe::types::{
    self, EchoRequest, Family, IpAddress, Ipv6Address, Mode, Outcome, Report,
};

/// An address literal as the contract's type.
#[allow(dead_code)]
fn ip(text: &str) -> IpAddress {
    match text.parse::<std::net::IpAddr>().expect("an address literal") {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddress::Ipv6(Ipv6Address {
                segments: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                scope_id: 0,
            })
        }
    }
}

/// The family of an address.
#[allow(dead_code)]
fn family_of(a: &IpAddress) -> Family {
    match a {
        IpAddress::Ipv4(_) => Family::Ipv4,
        IpAddress::Ipv6(_) => Family::Ipv6,
    }
}

/// A plain Echo Request.
#[allow(dead_code)]
fn request(destination: IpAddress, id: u16, sequence: u16) -> EchoRequest {
    EchoRequest {
        destination,
        id,
        sequence,
        payload: None,
        payload_size: 56,
        ttl: 64,
        traffic_class: 0,
        dont_fragment: false,
    }
}

/// Opens a socket of `family` in `mode`.
#[allow(dead_code)]
fn open(family: Family, mode: Mode) -> Result<IcmpSocket, types::Error> {
    IcmpSocket::open(&OpenOptions {
        family,
        source: None,
        mode,
        interface: None,
    })
}

/// Ends the run with `failed(message)` (exit 2).
#[allow(dead_code)]
fn failed(message: impl Into<String>) -> Result<RunOutput, RunError> {
    Err(RunError::Failed(message.into()))
}

/// The value of `--name value` in `args`.
#[allow(dead_code)]
fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
