//! Address families and addresses, as the host and plugins both see them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Family {
    /// IPv4.
    #[cfg_attr(feature = "serde", serde(rename = "4"))]
    V4,
    /// IPv6.
    #[cfg_attr(feature = "serde", serde(rename = "6"))]
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An IP address plus, for scoped IPv6 (link-local) addresses, the interface
/// index it is reachable through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// The address itself.
    pub ip: IpAddr,
    /// Interface index for `fe80::…%eth0`-style addresses; 0 when unscoped.
    pub scope_id: u32,
}

impl Address {
    /// An unscoped address.
    pub const fn new(ip: IpAddr) -> Address {
        Address { ip, scope_id: 0 }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.ip)
    }

    /// As a socket address (ICMP has no ports: port 0).
    pub fn to_socket_addr(self) -> SocketAddr {
        match self.ip {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, 0)),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, self.scope_id)),
        }
    }

    /// From a socket address, keeping the IPv6 scope.
    pub fn from_socket_addr(a: SocketAddr) -> Address {
        match a {
            SocketAddr::V4(a) => Address::new((*a.ip()).into()),
            SocketAddr::V6(a) => Address {
                ip: (*a.ip()).into(),
                scope_id: a.scope_id(),
            },
        }
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Address {
        Address::new(ip)
    }
}

impl From<Ipv4Addr> for Address {
    fn from(ip: Ipv4Addr) -> Address {
        Address::new(ip.into())
    }
}

impl From<Ipv6Addr> for Address {
    fn from(ip: Ipv6Addr) -> Address {
        Address::new(ip.into())
    }
}

/// Written like `ping` prints it; the scope, when present, as `%index`.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope_id {
            0 => fmt::Display::fmt(&self.ip, f),
            scope => write!(f, "{}%{}", self.ip, scope),
        }
    }
}

/// Parses an address literal; a numeric scope (`fe80::1%2`) is accepted.
/// Interface names (`%eth0`) need the host: the SDK's `resolve` takes them.
impl FromStr for Address {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Address, Self::Err> {
        if let Some((ip, scope)) = s.split_once('%')
            && let (Ok(ip), Ok(scope_id)) = (ip.parse::<Ipv6Addr>(), scope.parse::<u32>())
        {
            return Ok(Address {
                ip: ip.into(),
                scope_id,
            });
        }
        s.parse::<IpAddr>().map(Address::new)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_scoped_addresses() {
        let a: Address = "fe80::1%3".parse().unwrap();
        assert_eq!(a.scope_id, 3);
        assert_eq!(a.to_string(), "fe80::1%3");
        let b: Address = "192.0.2.1".parse().unwrap();
        assert_eq!(b.family(), Family::V4);
        assert_eq!(b.to_string(), "192.0.2.1");
        assert!("fe80::1%eth0".parse::<Address>().is_err());
    }
}
