//! Address ranges a probe iterates: [`Cidr`] (`192.0.2.0/28`,
//! `2001:db8::/120`) and [`Range`] (`192.0.2.10-192.0.2.20`), both lazy,
//! so a /8 costs nothing until it is walked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::{Address, Family};

/// An address prefix: `192.0.2.0/24`, `fd00::/64`. A bare address is a
/// prefix of one address (`/32`, `/128`).
///
/// ```
/// use icmp_host_sdk::Cidr;
/// let net: Cidr = "192.0.2.0/30".parse().unwrap();
/// let all: Vec<String> = net.addresses().map(|a| a.to_string()).collect();
/// assert_eq!(all, ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]);
/// // Hosts leave out the network and broadcast addresses (IPv4, up to /30).
/// assert_eq!(net.hosts().count(), 2);
/// assert!(net.contains("192.0.2.3".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a prefix or range did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError(String);

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RangeError {}

/// A prefix or range given on the command line is a usage error.
impl From<RangeError> for crate::UsageError {
    fn from(e: RangeError) -> Self {
        crate::UsageError(e.0)
    }
}

fn bits(family: Family) -> u8 {
    match family {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

impl Cidr {
    /// The prefix of `prefix` bits containing `address` (host bits are
    /// cleared); `None` when `prefix` is longer than the address.
    pub fn new(address: IpAddr, prefix: u8) -> Option<Cidr> {
        let family = Family::of(address);
        if prefix > bits(family) {
            return None;
        }
        let n = to_u128(address) & Cidr::mask(family, prefix);
        Some(Cidr {
            network: from_u128(family, n),
            prefix,
        })
    }

    fn all(family: Family) -> u128 {
        match family {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    fn mask(family: Family, prefix: u8) -> u128 {
        let host_bits = u32::from(bits(family) - prefix);
        let all = Cidr::all(family);
        all.checked_shr(host_bits).map_or(0, |m| m << host_bits) & all
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.network)
    }

    /// How many addresses the prefix holds (2^128 saturates to `u128::MAX`).
    pub fn len(&self) -> u128 {
        let host_bits = u32::from(bits(self.family()) - self.prefix);
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }

    /// Always false: a prefix holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` lies inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family()
            && to_u128(ip) & Cidr::mask(self.family(), self.prefix) == to_u128(self.network)
    }

    /// Every address of the prefix, in order.
    pub fn addresses(&self) -> Range {
        let family = self.family();
        let first = to_u128(self.network);
        Range {
            family,
            next: first,
            last: first | (!Cidr::mask(family, self.prefix) & Cidr::all(family)),
            done: false,
        }
    }

    /// The addresses a host may have: for IPv4 prefixes up to /30, without
    /// the network and broadcast addresses (as `fping -g`); otherwise all.
    pub fn hosts(&self) -> Range {
        let mut all = self.addresses();
        if self.family() == Family::V4 && self.prefix <= 30 {
            all.next += 1;
            all.last -= 1;
        }
        all
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Cidr, RangeError> {
        let bad = |why: &str| RangeError(format!("{s:?} is not an address prefix: {why}"));
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad("bad address"))?;
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad("bad prefix length"))?,
            None => bits(Family::of(ip)),
        };
        Cidr::new(ip, prefix).ok_or_else(|| bad("prefix length too long"))
    }
}

/// An inclusive run of addresses of one family, iterated in order:
/// `192.0.2.10-192.0.2.20` (fping's `-g start end`).
///
/// ```
/// use icmp_host_sdk::Range;
/// let r: Range = "192.0.2.254-192.0.3.1".parse().unwrap();
/// assert_eq!(r.map(|a| a.to_string()).collect::<Vec<_>>(),
///            ["192.0.2.254", "192.0.2.255", "192.0.3.0", "192.0.3.1"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    family: Family,
    next: u128,
    last: u128,
    done: bool,
}

impl Range {
    /// The addresses from `first` to `last`, both included; `None` when
    /// the families differ or `last` comes before `first`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Range> {
        let family = Family::of(first);
        let same = Family::of(last) == family;
        let (next, last) = (to_u128(first), to_u128(last));
        (same && next <= last).then_some(Range {
            family,
            next,
            last,
            done: false,
        })
    }

    /// Addresses left.
    pub fn remaining(&self) -> u128 {
        if self.done || self.next > self.last {
            0
        } else {
            (self.last - self.next).saturating_add(1)
        }
    }
}

impl Iterator for Range {
    type Item = Address;

    fn next(&mut self) -> Option<Address> {
        if self.done || self.next > self.last {
            return None;
        }
        let ip = from_u128(self.family, self.next);
        match self.next.checked_add(1) {
            Some(n) => self.next = n,
            None => self.done = true,
        }
        Some(Address::new(ip))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (
            usize::try_from(n).unwrap_or(usize::MAX),
            usize::try_from(n).ok(),
        )
    }
}

/// Parses `first-last`, a prefix (`a/n`, all its addresses) or one address.
impl FromStr for Range {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Range, RangeError> {
        let Some((first, last)) = s.split_once('-') else {
            return s.parse::<Cidr>().map(|c| c.addresses());
        };
        let bad = || RangeError(format!("{s:?} is not an address range (FIRST-LAST)"));
        let first: IpAddr = first.parse().map_err(|_| bad())?;
        let last: IpAddr = last.parse().map_err(|_| bad())?;
        Range::new(first, last).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_normalise_and_count() {
        let c: Cidr = "192.0.2.77/28".parse().unwrap();
        assert_eq!(c.to_string(), "192.0.2.64/28");
        assert_eq!(c.len(), 16);
        assert_eq!(c.hosts().count(), 14);
        assert_eq!(c.hosts().next().unwrap().to_string(), "192.0.2.65");
        let one: Cidr = "192.0.2.9".parse().unwrap();
        assert_eq!((one.prefix(), one.addresses().count()), (32, 1));
        assert_eq!(one.hosts().count(), 1);
        let v6: Cidr = "2001:db8::/126".parse().unwrap();
        let list: Vec<String> = v6.hosts().map(|a| a.to_string()).collect();
        assert_eq!(
            list,
            ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]
        );
        assert!("192.0.2.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
        let all: Cidr = "::/0".parse().unwrap();
        assert_eq!(all.len(), u128::MAX);
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!(!all.contains("192.0.2.1".parse().unwrap()));
        let top: Cidr = "255.255.255.254/31".parse().unwrap();
        assert_eq!(top.addresses().count(), 2);
    }

    #[test]
    fn ranges_iterate_inclusively_and_stop_at_the_end_of_the_space() {
        let r: Range =
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse()
                .unwrap();
        assert_eq!(r.count(), 2);
        assert!("192.0.2.9-192.0.2.1".parse::<Range>().is_err());
        assert!("192.0.2.1-2001:db8::1".parse::<Range>().is_err());
        let c: Range = "198.18.0.0/31".parse().unwrap();
        assert_eq!(c.remaining(), 2);
    }
}
