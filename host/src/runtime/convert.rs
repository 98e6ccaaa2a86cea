//! Conversions between the WIT types and the engine's, in one place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bindings::icmp_host::probe::{sockets, types};
use super::host::HostError;
use crate::icmp;

impl From<icmp::Address> for types::IpAddress {
    fn from(a: icmp::Address) -> Self {
        match a.ip {
            IpAddr::V4(ip) => {
                let [a, b, c, d] = ip.octets();
                types::IpAddress::Ipv4((a, b, c, d))
            }
            IpAddr::V6(ip) => {
                let [s0, s1, s2, s3, s4, s5, s6, s7] = ip.segments();
                types::IpAddress::Ipv6(types::Ipv6Address {
                    segments: (s0, s1, s2, s3, s4, s5, s6, s7),
                    scope_id: a.scope_id,
                })
            }
        }
    }
}

impl From<types::IpAddress> for icmp::Address {
    fn from(a: types::IpAddress) -> Self {
        match a {
            types::IpAddress::Ipv4((a, b, c, d)) => {
                icmp::Address::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            types::IpAddress::Ipv6(v6) => {
                let (s0, s1, s2, s3, s4, s5, s6, s7) = v6.segments;
                icmp::Address {
                    ip: IpAddr::V6(Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7)),
                    scope_id: v6.scope_id,
                }
            }
        }
    }
}

impl From<types::Family> for icmp::Family {
    fn from(f: types::Family) -> Self {
        match f {
            types::Family::Ipv4 => icmp::Family::V4,
            types::Family::Ipv6 => icmp::Family::V6,
        }
    }
}

impl From<icmp::Family> for types::Family {
    fn from(f: icmp::Family) -> Self {
        match f {
            icmp::Family::V4 => types::Family::Ipv4,
            icmp::Family::V6 => types::Family::Ipv6,
        }
    }
}

/// The largest payload any request may ask for (the IPv6 maximum).
const MAX_PAYLOAD_SIZE: u32 = 65_527;

impl TryFrom<types::EchoRequest> for icmp::EchoRequest {
    type Error = types::Error;

    fn try_from(r: types::EchoRequest) -> Result<Self, types::Error> {
        let size = r
            .payload
            .as_ref()
            .map_or(r.payload_size, |p| p.len() as u32);
        if size > MAX_PAYLOAD_SIZE {
            return Err(types::Error::InvalidArgument(format!(
                "payload of {size} bytes: the most an ICMP message can carry is {MAX_PAYLOAD_SIZE}"
            )));
        }
        Ok(icmp::EchoRequest {
            destination: r.destination.into(),
            id: r.id,
            sequence: r.sequence,
            payload: r.payload,
            payload_size: r.payload_size,
            ttl: r.ttl,
            traffic_class: r.traffic_class,
            dont_fragment: r.dont_fragment,
        })
    }
}

impl TryFrom<sockets::OpenOptions> for icmp::OpenOptions {
    type Error = types::Error;

    fn try_from(o: sockets::OpenOptions) -> Result<Self, types::Error> {
        Ok(icmp::OpenOptions {
            family: o.family.into(),
            source: o.source.map(Into::into),
            mode: match o.mode {
                types::Mode::Auto => icmp::Mode::Auto,
                types::Mode::Privileged => icmp::Mode::Privileged,
                types::Mode::Unprivileged => icmp::Mode::Unprivileged,
            },
            interface: o.interface,
        })
    }
}

impl From<icmp::Reply> for types::Reply {
    fn from(r: icmp::Reply) -> Self {
        types::Reply {
            source: r.source.into(),
            family: r.family.into(),
            id: r.id,
            sequence: r.sequence,
            type_: r.icmp_type,
            code: r.code,
            bytes_received: r.bytes_received,
            received_at: r.received_at_ns,
            timestamp_source: match r.timestamp_source {
                icmp::TimestampSource::Kernel => types::TimestampSource::Kernel,
                icmp::TimestampSource::HostMonotonic => types::TimestampSource::HostMonotonic,
                icmp::TimestampSource::KernelBoth => types::TimestampSource::KernelBoth,
            },
            rtt: r.rtt_ns,
            ttl: r.ttl,
            original_destination: r.original_destination.map(Into::into),
            mtu: r.mtu,
            duplicate: r.duplicate,
        }
    }
}

impl From<icmp::SocketStats> for sockets::SocketStats {
    fn from(s: icmp::SocketStats) -> Self {
        sockets::SocketStats {
            sent: s.sent,
            received: s.received,
            queue_drops: s.queue_drops,
            corrupted: s.corrupted,
            kernel_drops: s.kernel_drops,
        }
    }
}

impl From<icmp::Error> for types::Error {
    fn from(e: icmp::Error) -> Self {
        match e {
            icmp::Error::Closed => types::Error::SocketUnavailable,
            icmp::Error::Broadcast(_) => types::Error::SocketBroadcast,
            icmp::Error::Permission(m) => types::Error::SocketPermission(m),
            icmp::Error::Address(m) => types::Error::SocketAddress(m),
            icmp::Error::Exhausted(m) => types::Error::ResourceExhausted(m),
            icmp::Error::InvalidArgument(m) => types::Error::InvalidArgument(m),
            icmp::Error::Unsupported(m) => types::Error::Unsupported(m),
            icmp::Error::MessageTooBig(mtu) => types::Error::MessageTooBig(mtu),
            icmp::Error::Timeout(d) => {
                types::Error::TimeoutExceeded(d.as_nanos().min(u128::from(u64::MAX)) as u64)
            }
            e @ icmp::Error::Io { .. } => types::Error::IcmpSocket(e.to_string()),
        }
    }
}

impl From<icmp::Error> for HostError {
    fn from(e: icmp::Error) -> Self {
        types::Error::from(e).into()
    }
}

impl From<crate::policy::Denied> for types::Denial {
    fn from(d: crate::policy::Denied) -> Self {
        use crate::policy::Rule;
        let rule = match d.rule {
            Rule::Destination => types::PolicyRule::Destination,
            Rule::Multicast => types::PolicyRule::Multicast,
            Rule::Broadcast => types::PolicyRule::Broadcast,
            Rule::PacketBudget => types::PolicyRule::PacketBudget,
            Rule::PayloadSize => types::PolicyRule::PayloadSize,
            Rule::Sockets => types::PolicyRule::Sockets,
            Rule::Privileged => types::PolicyRule::Privileged,
            Rule::Names => types::PolicyRule::Names,
        };
        types::Denial {
            rule,
            message: d.message,
        }
    }
}

impl From<crate::policy::Denied> for types::Error {
    fn from(d: crate::policy::Denied) -> Self {
        types::Error::PolicyDenied(d.into())
    }
}

impl From<crate::policy::Denied> for HostError {
    fn from(d: crate::policy::Denied) -> Self {
        types::Error::from(d).into()
    }
}
