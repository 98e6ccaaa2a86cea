/*!
What a plugin may do: one check before every send, resolve, open and
broadcast grant, run before any syscall. A refusal is a [`Denied`] with a
reason the guest receives as `policy-denied`; it is never a trap.

Destinations are checked for where a packet actually goes:
- IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are the IPv4 address they
  carry, and so are IPv4-mapped prefixes (`::ffff:10.0.0.0/104` is
  `10.0.0.0/8`);
- IPv6 forms that embed an IPv4 address — IPv4-compatible (`::7f00:1`),
  NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`), Teredo,
  ISATAP, IPv4-translated — must pass the rules as themselves *and* as
  that IPv4 address;
- the unspecified addresses `0.0.0.0` and `::` reach this host's loopback,
  so they must pass the rules as `127.0.0.1` / `::1` too.
*/

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which rule refused (the guest sees it as `policy-rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Outside the allowed ranges or inside a denied one.
    Destination,
    /// Multicast destinations are not allowed.
    Multicast,
    /// Broadcast is not allowed.
    Broadcast,
    /// The run's budget of requests is spent.
    PacketBudget,
    /// The payload is larger than allowed.
    PayloadSize,
    /// Too many sockets are open.
    Sockets,
    /// Raw sockets are not allowed.
    Privileged,
    /// Name lookups are not allowed.
    Names,
}

/// A refusal: the rule that refused, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The rule.
    pub rule: Rule,
    /// The refusal in words.
    pub message: String,
}

impl Denied {
    fn new(rule: Rule, message: impl Into<String>) -> Denied {
        Denied {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denied {}

/// An address prefix such as `10.0.0.0/8` or `fe80::/10`, stored masked
/// and canonical (an IPv4-mapped prefix is the IPv4 prefix it denotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// The netmask of a `prefix`-bit IPv4 prefix (`prefix` ≤ 32).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The netmask of a `prefix`-bit IPv6 prefix (`prefix` ≤ 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    /// The prefix of `prefix` bits containing `ip`; `Err` names the problem.
    pub fn new(ip: IpAddr, prefix: u8) -> Result<Cidr, String> {
        match ip {
            IpAddr::V4(v4) if prefix <= 32 => Ok(Cidr {
                network: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
                prefix,
            }),
            IpAddr::V6(v6) if prefix <= 128 => match v6.to_ipv4_mapped() {
                // ::ffff:0:0/96 and longer: the IPv4 prefix it denotes.
                Some(v4) if prefix >= 96 => Cidr::new(IpAddr::V4(v4), prefix - 96),
                Some(_) => Err(format!(
                    "{ip}/{prefix}: an IPv4-mapped prefix must be /96 or longer \
                     (write the IPv4 prefix instead, e.g. 192.0.2.0/24)"
                )),
                None => Ok(Cidr {
                    network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
                    prefix,
                }),
            },
            IpAddr::V4(_) => Err(format!("{ip}/{prefix}: prefix length must be 0..=32")),
            IpAddr::V6(_) => Err(format!("{ip}/{prefix}: prefix length must be 0..=128")),
        }
    }

    /// Whether `ip` (in canonical form, see [`canonical`]) lies inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(n) == u32::from(a) & mask_v4(self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(n) == u128::from(a) & mask_v6(self.prefix),
            _ => false,
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// A single address.
    pub fn host(ip: IpAddr) -> Cidr {
        let ip = canonical(ip);
        Cidr {
            network: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR prefix"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
            None => max,
        };
        Cidr::new(network, prefix).map_err(|e| format!("{s:?}: {e}"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// An IPv4 address carried inside an IPv6 one, and the form that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    /// The IPv4 address.
    pub ipv4: Ipv4Addr,
    /// The form, in words.
    pub form: &'static str,
}

/// Every IPv4 address `ip` may lead to through a tunnel or translator,
/// by the forms of RFC 4291 (IPv4-compatible), RFC 6052 and RFC 8215
/// (NAT64), RFC 3056 (6to4), RFC 4380 (Teredo), RFC 5214 (ISATAP) and
/// RFC 6145 (IPv4-translated). Where the form does not fix the position
/// (the local-use NAT64 prefix), every position RFC 6052 allows is listed.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Vec<Embedded> {
    let o = ip.octets();
    let v4 = |a: u8, b: u8, c: u8, d: u8| Ipv4Addr::new(a, b, c, d);
    let s = ip.segments();
    let mut found = Vec::new();
    let mut add = |ipv4, form| found.push(Embedded { ipv4, form });
    // ::a.b.c.d, but not :: and ::1, which are IPv6's own.
    if s[..6] == [0; 6] && u128::from(ip) > 1 {
        add(v4(o[12], o[13], o[14], o[15]), "IPv4-compatible");
    }
    // ::ffff:0:a.b.c.d
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        add(v4(o[12], o[13], o[14], o[15]), "IPv4-translated");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        add(v4(o[12], o[13], o[14], o[15]), "NAT64");
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        // A local-use NAT64 prefix of /48, /56, /64 or /96 (octet 8 is
        // reserved and skipped).
        add(v4(o[6], o[7], o[9], o[10]), "local-use NAT64");
        add(v4(o[7], o[9], o[10], o[11]), "local-use NAT64");
        add(v4(o[9], o[10], o[11], o[12]), "local-use NAT64");
        add(v4(o[12], o[13], o[14], o[15]), "local-use NAT64");
    }
    if s[0] == 0x2002 {
        add(v4(o[2], o[3], o[4], o[5]), "6to4");
    }
    if s[..2] == [0x2001, 0] {
        add(v4(o[4], o[5], o[6], o[7]), "Teredo server");
        add(v4(!o[12], !o[13], !o[14], !o[15]), "Teredo client");
    }
    if matches!(o[8], 0x00 | 0x02) && o[9..12] == [0x00, 0x5e, 0xfe] {
        add(v4(o[12], o[13], o[14], o[15]), "ISATAP");
    }
    found
}

fn is_multicast(ip: IpAddr) -> bool {
    ip.is_multicast()
}

fn is_limited_broadcast(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// Prefixes the `strict` preset denies: this network, loopback, link-local
/// (and with it 169.254.169.254, the cloud metadata address), private,
/// shared (carrier-grade NAT), benchmarking and reserved ranges, IPv6
/// site-local and unique-local. Multicast and broadcast are denied by
/// default anyway; IPv6 forms embedding one of these IPv4 addresses are
/// denied through it.
pub const STRICT_DENY: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "198.18.0.0/15",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fec0::/10",
    "fc00::/7",
];

/// A token bucket: `rate` per second, bursts up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            state: Mutex::new((burst.max(1.0), Instant::now())),
        }
    }

    /// Tokens per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A bucket no faster and no burstier than `self` or `rate` per second.
    pub fn narrowed(&self, rate: f64) -> RateLimiter {
        RateLimiter::new(self.rate.min(rate), self.burst.min(rate.max(1.0)))
    }

    /// Takes a token; returns how long to wait first (zero when one was there).
    pub fn reserve(&self) -> Duration {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = *st;
        let tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst) - 1.0;
        *st = (tokens, now);
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Saturates: a rate too slow to express waits "forever".
            Duration::try_from_secs_f64(-tokens / self.rate).unwrap_or(Duration::MAX)
        }
    }
}

/// The slowest send rate a policy may set: one request in 1000 s.
pub const MIN_PPS: f64 = 0.001;

/// The fastest send rate a policy may set.
pub const MAX_PPS: f64 = 1e9;

/// A policy as written: command-line flags and manifest entries both become
/// one of these, and [`PolicySpec::build`] turns it into a [`Policy`].
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySpec {
    /// Start from [`Policy::strict`] instead of the default.
    pub strict: bool,
    /// Only these destinations (CIDR).
    pub allow: Vec<String>,
    /// Never these destinations (CIDR).
    pub deny: Vec<String>,
    /// Broadcast may be enabled.
    pub allow_broadcast: bool,
    /// Multicast may be probed.
    pub allow_multicast: bool,
    /// Raw sockets are refused.
    pub no_privileged: bool,
    /// Name lookups are refused.
    pub no_names: bool,
    /// Sends per second.
    pub max_pps: Option<f64>,
    /// Requests in all.
    pub max_packets: Option<u64>,
    /// Largest payload, bytes.
    pub max_payload: Option<usize>,
    /// Sockets open at once.
    pub max_sockets: Option<usize>,
}

/// Requests per second a tenant of a shared host (`batch`, `serve`) may
/// send unless its policy says otherwise: tenants share the host's raw
/// sockets and their kernel buffers, and one sending as fast as a core
/// allows would make the kernel drop its neighbours' replies.
pub const SHARED_HOST_PPS: f64 = 10_000.0;

impl PolicySpec {
    /// This spec, with `max_pps` set to `pps` unless it sets its own.
    pub fn with_default_rate(mut self, pps: f64) -> PolicySpec {
        self.max_pps.get_or_insert(pps);
        self
    }

    /// The policy this spec describes; `Err` names the bad value.
    pub fn build(&self) -> Result<Policy, String> {
        let mut p = if self.strict {
            Policy::strict()
        } else {
            Policy::default()
        };
        for (list, out) in [(&self.allow, &mut p.allow), (&self.deny, &mut p.deny)] {
            for c in list {
                out.push(c.parse()?);
            }
        }
        p.allow_broadcast |= self.allow_broadcast;
        p.allow_multicast |= self.allow_multicast;
        p.allow_privileged &= !self.no_privileged;
        p.allow_names &= !self.no_names;
        if let Some(pps) = self.max_pps {
            if !(MIN_PPS..=MAX_PPS).contains(&pps) {
                return Err(format!(
                    "max pps must be between {MIN_PPS} and {MAX_PPS}, not {pps}"
                ));
            }
            // Narrows a preset's rate, never widens it.
            p.send_rate = Some(Arc::new(match &p.send_rate {
                Some(preset) => preset.narrowed(pps),
                None => RateLimiter::new(pps, pps.max(1.0)),
            }));
        }
        // Limits only narrow what the preset allows.
        if let Some(n) = self.max_packets {
            p.max_packets = Some(p.max_packets.map_or(n, |m| m.min(n)));
        }
        if let Some(n) = self.max_payload {
            p.max_payload = p.max_payload.min(n);
        }
        if let Some(n) = self.max_sockets {
            p.max_sockets = p.max_sockets.min(n);
        }
        Ok(p)
    }
}

/// A policy: built once from flags or a manifest, shared by a run.
#[derive(Debug)]
pub struct Policy {
    /// When non-empty, only these destinations.
    pub allow: Vec<Cidr>,
    /// Never these destinations (wins over `allow`).
    pub deny: Vec<Cidr>,
    /// Broadcast may be enabled on sockets.
    pub allow_broadcast: bool,
    /// Multicast destinations may be probed.
    pub allow_multicast: bool,
    /// Raw (privileged) sockets may be used.
    pub allow_privileged: bool,
    /// Names may be resolved (literals always may).
    pub allow_names: bool,
    /// Largest payload in bytes.
    pub max_payload: usize,
    /// Sockets open at once.
    pub max_sockets: usize,
    /// Requests per run.
    pub max_packets: Option<u64>,
    /// Sends per second (token bucket; shared when several runs should
    /// keep to one rate together, as a service tenant's do).
    pub send_rate: Option<Arc<RateLimiter>>,
    /// Lookups per second (token bucket, shareable likewise).
    pub lookup_rate: Option<Arc<RateLimiter>>,
    /// Requests sent so far.
    sent: Mutex<u64>,
    /// Operations refused so far (dry-run checks not counted).
    refused: AtomicU64,
}

impl Default for Policy {
    /// Suits one user on their own machine: anything but multicast and
    /// broadcast, any size, no rate limit.
    fn default() -> Self {
        Policy {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_broadcast: false,
            allow_multicast: false,
            allow_privileged: true,
            allow_names: true,
            max_payload: 65_527,
            max_sockets: 1024,
            max_packets: None,
            send_rate: None,
            lookup_rate: None,
            sent: Mutex::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl Policy {
    /// The preset for shared hosts: denies [`STRICT_DENY`] and the host's
    /// own addresses, limits rates and budgets.
    pub fn strict() -> Policy {
        let mut deny: Vec<Cidr> = STRICT_DENY.iter().map(|c| c.parse().unwrap()).collect();
        deny.extend(
            crate::sys::socket::local_addresses()
                .into_iter()
                .map(Cidr::host),
        );
        Policy {
            deny,
            max_packets: Some(100_000),
            send_rate: Some(Arc::new(RateLimiter::new(100.0, 100.0))),
            lookup_rate: Some(Arc::new(RateLimiter::new(10.0, 10.0))),
            max_sockets: 16,
            ..Policy::default()
        }
    }

    /// [`Policy::check_destination`] for a request about to be sent: a
    /// refusal is counted.
    pub fn admit_destination(&self, ip: IpAddr) -> Result<(), Denied> {
        self.check_destination(ip).inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Operations refused so far: requests, opens, broadcast grants and
    /// lookups (not [`Policy::check_destination`]'s dry runs).
    pub fn denials(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A refusal of an operation, counted.
    fn deny(&self, rule: Rule, message: impl Into<String>) -> Denied {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Denied::new(rule, message)
    }

    /// May requests go to `ip`? Checks every address a packet to `ip`
    /// may reach (see the module docs).
    pub fn check_destination(&self, ip: IpAddr) -> Result<(), Denied> {
        let ip = canonical(ip);
        self.check_address(ip)?;
        if let IpAddr::V6(v6) = ip {
            for e in embedded_ipv4(v6) {
                self.check_address(IpAddr::V4(e.ipv4)).map_err(|d| Denied {
                    message: format!("{ip} carries {} ({}): {}", e.ipv4, e.form, d.message),
                    ..d
                })?;
            }
        }
        if ip.is_unspecified() {
            let loopback = match ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            self.check_address(loopback).map_err(|d| Denied {
                message: format!("{ip} reaches this host's loopback: {}", d.message),
                ..d
            })?;
        }
        Ok(())
    }

    /// The rules for one address as it is.
    fn check_address(&self, ip: IpAddr) -> Result<(), Denied> {
        if let Some(c) = self.deny.iter().find(|c| c.contains(ip)) {
            return Err(Denied::new(
                Rule::Destination,
                format!("{ip} is in the denied range {c}"),
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            return Err(Denied::new(
                Rule::Destination,
                format!("{ip} is outside the allowed ranges"),
            ));
        }
        if is_multicast(ip) && !self.allow_multicast {
            return Err(Denied::new(
                Rule::Multicast,
                format!("{ip} is a multicast address"),
            ));
        }
        if is_limited_broadcast(ip) && !self.allow_broadcast {
            return Err(Denied::new(
                Rule::Broadcast,
                format!("{ip} is the broadcast address"),
            ));
        }
        Ok(())
    }

    /// May one more request of `payload` bytes be sent? Counts it.
    pub fn check_send(&self, payload: usize) -> Result<(), Denied> {
        if payload > self.max_payload {
            return Err(self.deny(
                Rule::PayloadSize,
                format!(
                    "payload of {payload} bytes exceeds the limit of {}",
                    self.max_payload
                ),
            ));
        }
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(max) = self.max_packets
            && *sent >= max
        {
            return Err(self.deny(
                Rule::PacketBudget,
                format!("the budget of {max} requests is spent"),
            ));
        }
        *sent += 1;
        Ok(())
    }

    /// Requests admitted so far.
    pub fn packets_sent(&self) -> u64 {
        *self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a socket be opened, `privileged` or not, with `open` already open?
    pub fn check_open(&self, privileged: bool, open: usize) -> Result<(), Denied> {
        if privileged && !self.allow_privileged {
            return Err(self.deny(Rule::Privileged, "privileged (raw) sockets are not allowed"));
        }
        if open >= self.max_sockets {
            return Err(self.deny(
                Rule::Sockets,
                format!("at most {} sockets may be open", self.max_sockets),
            ));
        }
        Ok(())
    }

    /// May broadcast be enabled?
    pub fn check_broadcast(&self) -> Result<(), Denied> {
        if self.allow_broadcast {
            Ok(())
        } else {
            Err(self.deny(
                Rule::Broadcast,
                "broadcast is not allowed (host option --allow-broadcast)",
            ))
        }
    }

    /// May `name` be looked up? Literals need no lookup and always may.
    pub fn check_resolve(&self, name: &str) -> Result<(), Denied> {
        if self.allow_names {
            Ok(())
        } else {
            Err(self.deny(
                Rule::Names,
                format!("name lookups are not allowed ({name:?})"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let v6: Cidr = "fe80::/10".parse().unwrap();
        assert!(v6.contains(ip("fe80::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        // Stored masked.
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "fe80::1/10".parse::<Cidr>().unwrap().to_string(),
            "fe80::/10"
        );
        assert!(Cidr::new(ip("10.0.0.0"), 33).is_err());
        assert!(Cidr::new(ip("::"), 129).is_err());
    }

    #[test]
    fn mapped_prefixes_are_the_ipv4_prefixes_they_denote() {
        // A mapped address is one IPv4 address (/32, not /128).
        assert_eq!(
            "::ffff:10.1.2.3".parse::<Cidr>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            "::ffff:10.1.2.3/128".parse::<Cidr>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            "::ffff:192.0.2.0/120".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            "::ffff:0:0/96".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        // Shorter than /96 it would cover more than IPv4: refused by name.
        let e = "::ffff:192.0.2.0/95".parse::<Cidr>().unwrap_err();
        assert!(e.contains("/96 or longer"), "{e}");
        // Allowing a mapped /120 allows that /24, not every IPv4 address.
        let p = PolicySpec {
            allow: vec!["::ffff:192.0.2.0/120".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        assert!(p.check_destination(ip("192.0.2.200")).is_ok());
        assert!(p.check_destination(ip("::ffff:192.0.2.7")).is_ok());
        for outside in ["192.0.3.1", "10.0.0.1", "127.0.0.1", "::ffff:127.0.0.1"] {
            assert!(p.check_destination(ip(outside)).is_err(), "{outside}");
        }
        let p = PolicySpec {
            allow: vec!["::ffff:192.0.2.9".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        assert!(p.check_destination(ip("192.0.2.9")).is_ok());
        assert!(p.check_destination(ip("192.0.2.10")).is_err());
        // Denying one mapped address denies that address, not all of IPv4.
        let p = PolicySpec {
            deny: vec!["::ffff:192.0.2.9".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        let e = p.check_destination(ip("192.0.2.9")).unwrap_err();
        assert_eq!(e.message, "192.0.2.9 is in the denied range 192.0.2.9/32");
        assert!(p.check_destination(ip("192.0.2.10")).is_ok());
        assert!(p.check_destination(ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn embedded_ipv4_forms_are_checked_as_ipv4() {
        let p = PolicySpec {
            deny: vec!["127.0.0.0/8".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        for (v6, form) in [
            ("::7f00:1", "IPv4-compatible"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::ffff:0:7f00:1", "IPv4-translated"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("64:ff9b::127.0.0.1", "NAT64"),
            ("64:ff9b:1:7f00:0:100::", "local-use NAT64"), // a /48 prefix
            ("64:ff9b:1:0:7f:0:100:0", "local-use NAT64"), // a /64 prefix
            ("64:ff9b:1::7f00:1", "local-use NAT64"),      // a /96 prefix
            ("2002:7f00:1::1", "6to4"),
            ("2001:0:7f00:1::1", "Teredo server"),
            ("2001:0:c000:201::80ff:fffe", "Teredo client"),
            ("fd00::5efe:127.0.0.1", "ISATAP"),
            ("fd00::200:5efe:7f00:1", "ISATAP"),
        ] {
            let e = p.check_destination(ip(v6)).unwrap_err();
            assert_eq!(e.rule, Rule::Destination);
            assert!(e.message.contains(form), "{v6}: {e}");
            assert!(
                e.message.contains("is in the denied range 127.0.0.0/8"),
                "{v6}: {e}"
            );
        }
        // Multicast and broadcast hide no better.
        let p = Policy::default();
        assert_eq!(
            p.check_destination(ip("64:ff9b::224.0.0.1"))
                .unwrap_err()
                .rule,
            Rule::Multicast
        );
        assert_eq!(
            p.check_destination(ip("2002:ffff:ffff::1"))
                .unwrap_err()
                .rule,
            Rule::Broadcast
        );
        // IPv6's own addresses and ordinary ones are not taken for IPv4.
        for fine in ["::1", "2001:db8::1", "fd00::1", "64:ff9b::c000:201"] {
            assert!(p.check_destination(ip(fine)).is_ok(), "{fine}");
        }
        // An allow list must admit both the IPv6 form and the IPv4 inside.
        let p = PolicySpec {
            allow: vec!["64:ff9b::/96".into(), "198.18.0.0/15".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        assert!(p.check_destination(ip("64:ff9b::198.18.0.1")).is_ok());
        assert!(p.check_destination(ip("64:ff9b::192.0.2.1")).is_err());
    }

    #[test]
    fn unspecified_addresses_are_loopback() {
        let p = PolicySpec {
            deny: vec!["127.0.0.0/8".into(), "::1".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        let e = p.check_destination(ip("0.0.0.0")).unwrap_err();
        assert_eq!(
            e.message,
            "0.0.0.0 reaches this host's loopback: 127.0.0.1 is in the denied range 127.0.0.0/8"
        );
        let e = p.check_destination(ip("::")).unwrap_err();
        assert!(e.message.contains(":: reaches this host's loopback"), "{e}");
        let p = PolicySpec {
            allow: vec!["0.0.0.0/32".into()],
            ..PolicySpec::default()
        }
        .build()
        .unwrap();
        assert!(p.check_destination(ip("0.0.0.0")).is_err());
        assert!(Policy::default().check_destination(ip("0.0.0.0")).is_ok());
    }

    #[test]
    fn default_denies_multicast_and_broadcast_only() {
        let p = Policy::default();
        assert!(p.check_destination(ip("127.0.0.1")).is_ok());
        assert!(p.check_destination(ip("224.0.0.1")).is_err());
        assert!(p.check_destination(ip("ff02::1")).is_err());
        assert!(p.check_destination(ip("255.255.255.255")).is_err());
        assert!(p.check_broadcast().is_err());
    }

    #[test]
    fn strict_denies_private_loopback_metadata_and_mapped_forms() {
        let p = Policy::strict();
        for denied in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "::",
            "fec0::1",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "::7f00:1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            let e = p.check_destination(ip(denied)).unwrap_err();
            assert!(e.message.contains("denied"), "{denied}: {e}");
        }
        assert!(p.check_destination(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn allow_list_and_deny_wins() {
        let p = Policy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            deny: vec!["10.9.0.0/16".parse().unwrap()],
            ..Policy::default()
        };
        assert!(p.check_destination(ip("10.1.0.1")).is_ok());
        assert!(
            p.check_destination(ip("10.9.0.1"))
                .unwrap_err()
                .message
                .contains("10.9.0.0/16")
        );
        assert!(
            p.check_destination(ip("192.0.2.1"))
                .unwrap_err()
                .message
                .contains("outside")
        );
    }

    #[test]
    fn budgets_and_sizes() {
        let p = Policy {
            max_packets: Some(2),
            max_payload: 100,
            ..Policy::default()
        };
        assert!(p.check_send(101).unwrap_err().message.contains("payload"));
        p.check_send(10).unwrap();
        p.check_send(10).unwrap();
        assert!(
            p.check_send(10)
                .unwrap_err()
                .message
                .contains("budget of 2")
        );
        assert_eq!(p.packets_sent(), 2);
        let p = Policy {
            allow_privileged: false,
            max_sockets: 1,
            ..Policy::default()
        };
        assert!(p.check_open(true, 0).is_err());
        assert!(p.check_open(false, 0).is_ok());
        assert!(p.check_open(false, 1).is_err());
    }

    #[test]
    fn specs_build_policies_and_only_narrow_presets() {
        let spec = PolicySpec {
            strict: true,
            allow: vec!["192.0.2.0/24".into()],
            max_packets: Some(10_000_000),
            max_sockets: Some(2),
            ..PolicySpec::default()
        };
        let p = spec.build().unwrap();
        assert_eq!(
            p.max_packets,
            Policy::strict().max_packets,
            "cannot widen the preset"
        );
        assert_eq!(p.max_sockets, 2);
        assert!(p.check_destination(ip("192.0.2.7")).is_ok());
        assert!(p.check_destination(ip("10.0.0.1")).is_err());
        let bad = PolicySpec {
            deny: vec!["10.0.0.0/40".into()],
            ..PolicySpec::default()
        };
        assert!(bad.build().unwrap_err().contains("10.0.0.0/40"));
        for pps in [-1.0, 0.0, 1e-30, f64::NAN, f64::INFINITY, 1e300] {
            let bad = PolicySpec {
                max_pps: Some(pps),
                ..PolicySpec::default()
            };
            assert!(bad.build().unwrap_err().contains("max pps"), "{pps}");
        }
    }

    #[test]
    fn max_pps_narrows_the_strict_rate() {
        let strict = Policy::strict().send_rate.unwrap().rate();
        let rate = |strict: bool, pps: f64| {
            PolicySpec {
                strict,
                max_pps: Some(pps),
                ..PolicySpec::default()
            }
            .build()
            .unwrap()
            .send_rate
            .unwrap()
            .rate()
        };
        assert_eq!(
            rate(true, strict * 100.0),
            strict,
            "cannot widen the preset"
        );
        assert_eq!(rate(true, 2.0), 2.0);
        assert_eq!(rate(false, 1e6), 1e6);
    }

    #[test]
    fn the_slowest_bucket_waits_without_overflow() {
        let r = RateLimiter::new(MIN_PPS, 1.0);
        assert_eq!(r.reserve(), Duration::ZERO);
        let wait = r.reserve();
        assert!(wait > Duration::from_secs(990), "{wait:?}");
        // Below the policy's floor the wait saturates instead of panicking.
        let r = RateLimiter::new(1e-300, 1.0);
        r.reserve();
        assert_eq!(r.reserve(), Duration::MAX);
    }

    #[test]
    fn refusals_are_counted_but_not_dry_runs() {
        let p = Policy {
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            allow_names: false,
            max_payload: 100,
            ..Policy::default()
        };
        assert!(p.check_destination(ip("10.0.0.1")).is_err());
        assert_eq!(p.denials(), 0, "a dry run");
        assert!(p.admit_destination(ip("10.0.0.1")).is_err());
        assert!(p.admit_destination(ip("192.0.2.1")).is_ok());
        assert!(p.check_send(101).is_err());
        assert!(p.check_resolve("example.org").is_err());
        assert!(p.check_broadcast().is_err());
        assert_eq!(p.denials(), 4);
    }

    #[test]
    fn token_bucket_spaces_requests() {
        let r = RateLimiter::new(100.0, 2.0);
        assert_eq!(r.reserve(), Duration::ZERO);
        assert_eq!(r.reserve(), Duration::ZERO);
        let wait = r.reserve();
        assert!(
            wait > Duration::from_millis(5) && wait <= Duration::from_millis(10),
            "{wait:?}"
        );
    }
}
