//! The network lab: client – r1 – r2 – r3 – target over veth, IPv4 and
//! IPv6, built fresh for each test and removed on drop.
//!
//! ```text
//! client ─ 198.18.1.0/24 ─ r1 ─ 198.18.2.0/24 ─ r2 ─ 198.18.3.0/24 ─ r3 ─ 198.18.4.0/24 ─ target
//!          fd00:1ab:1::/64      fd00:1ab:2::/64      fd00:1ab:3::/64      fd00:1ab:4::/64
//! ```
//!
//! Behind r3: 198.18.5.1 / fd00:1ab:5::1 unreachable, .2 / ::2 prohibited,
//! .3 / ::3 blackholed, .4 / ::4 without a route. Addresses come from the
//! benchmarking range (RFC 2544) and a ULA prefix, inside the lab's own
//! namespaces only. ICMP rate limits are off so error replies are not
//! thinned out; the one global knob (`net.ipv4.route.error_cost`) is set
//! through [`ErrorCostGuard`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

use super::netns::Netns;

pub const TARGET4: &str = "198.18.4.2";
pub const TARGET6: &str = "fd00:1ab:4::2";
pub const UNREACHABLE4: &str = "198.18.5.1";
pub const PROHIBITED4: &str = "198.18.5.2";
pub const BLACKHOLE4: &str = "198.18.5.3";
pub const NOROUTE4: &str = "198.18.5.4";
pub const UNREACHABLE6: &str = "fd00:1ab:5::1";
pub const PROHIBITED6: &str = "fd00:1ab:5::2";
pub const BLACKHOLE6: &str = "fd00:1ab:5::3";
pub const NOROUTE6: &str = "fd00:1ab:5::4";
/// The address each router answers from toward the client.
pub const R1_4: &str = "198.18.1.1";
pub const R2_4: &str = "198.18.2.2";
pub const R3_4: &str = "198.18.3.2";
pub const R1_6: &str = "fd00:1ab:1::1";
pub const R2_6: &str = "fd00:1ab:2::2";
pub const R3_6: &str = "fd00:1ab:3::2";

/// The five namespaces, linked and routed.
pub struct Lab {
    pub client: Netns,
    pub r1: Netns,
    pub r2: Netns,
    pub r3: Netns,
    pub target: Netns,
    _error_cost: ErrorCostGuard,
}

/// Links `a`'s `a_if` to `b`'s `b_if`, creating both ends in place.
fn link(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    super::netns::ip(&[
        "link", "add", "name", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if,
        "netns", &b.name,
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

fn addr(ns: &Netns, dev: &str, v4: &str, v6: &str) {
    ns.ip(&["addr", "add", v4, "dev", dev]);
    ns.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"]);
}

fn route(ns: &Netns, to4: &str, via4: &str, to6: &str, via6: &str) {
    ns.ip(&["route", "add", to4, "via", via4]);
    ns.ip(&["-6", "route", "add", to6, "via", via6]);
}

/// No ICMP rate limiting inside a namespace.
fn unlimited_icmp(ns: &Netns) {
    ns.sysctl("net.ipv4.icmp_ratelimit", "0");
    ns.sysctl("net.ipv4.icmp_msgs_per_sec", "100000");
    ns.sysctl("net.ipv4.icmp_msgs_burst", "100000");
    ns.sysctl("net.ipv6.icmp.ratelimit", "0");
}

const HOSTS: &str = "\
127.0.0.1 localhost
::1 localhost
198.18.4.2 target.lab
fd00:1ab:4::2 target.lab
198.18.4.2 target4.lab
fd00:1ab:4::2 target6.lab
198.18.1.1 r1.lab
198.18.5.1 unreachable.lab
";

impl Lab {
    /// Builds the lab. Needs root.
    pub fn new() -> Lab {
        let guard = ErrorCostGuard::acquire();
        let lab = Lab {
            client: Netns::new("c"),
            r1: Netns::new("r1"),
            r2: Netns::new("r2"),
            r3: Netns::new("r3"),
            target: Netns::new("t"),
            _error_cost: guard,
        };
        let (c, r1, r2, r3, t) = (&lab.client, &lab.r1, &lab.r2, &lab.r3, &lab.target);
        link(c, "eth0", r1, "eth0");
        link(r1, "eth1", r2, "eth0");
        link(r2, "eth1", r3, "eth0");
        link(r3, "eth1", t, "eth0");
        addr(c, "eth0", "198.18.1.2/24", "fd00:1ab:1::2/64");
        addr(r1, "eth0", "198.18.1.1/24", "fd00:1ab:1::1/64");
        addr(r1, "eth1", "198.18.2.1/24", "fd00:1ab:2::1/64");
        addr(r2, "eth0", "198.18.2.2/24", "fd00:1ab:2::2/64");
        addr(r2, "eth1", "198.18.3.1/24", "fd00:1ab:3::1/64");
        addr(r3, "eth0", "198.18.3.2/24", "fd00:1ab:3::2/64");
        addr(r3, "eth1", "198.18.4.1/24", "fd00:1ab:4::1/64");
        addr(t, "eth0", "198.18.4.2/24", "fd00:1ab:4::2/64");
        for r in [r1, r2, r3] {
            r.sysctl("net.ipv4.ip_forward", "1");
            r.sysctl("net.ipv6.conf.all.forwarding", "1");
        }
        for ns in [c, r1, r2, r3, t] {
            unlimited_icmp(ns);
            ns.write_etc("hosts", HOSTS);
        }
        route(c, "default", "198.18.1.1", "default", "fd00:1ab:1::1");
        route(r1, "default", "198.18.2.2", "default", "fd00:1ab:2::2");
        route(
            r2,
            "198.18.1.0/24",
            "198.18.2.1",
            "fd00:1ab:1::/64",
            "fd00:1ab:2::1",
        );
        route(r2, "default", "198.18.3.2", "default", "fd00:1ab:3::2");
        // r3 has no default route: 198.18.5.4 / fd00:1ab:5::4 go nowhere.
        for net in ["198.18.1.0/24", "198.18.2.0/24"] {
            r3.ip(&["route", "add", net, "via", "198.18.3.1"]);
        }
        for net in ["fd00:1ab:1::/64", "fd00:1ab:2::/64"] {
            r3.ip(&["-6", "route", "add", net, "via", "fd00:1ab:3::1"]);
        }
        route(t, "default", "198.18.4.1", "default", "fd00:1ab:4::1");
        for (kind, v4, v6) in [
            ("unreachable", UNREACHABLE4, UNREACHABLE6),
            ("prohibit", PROHIBITED4, PROHIBITED6),
            ("blackhole", BLACKHOLE4, BLACKHOLE6),
        ] {
            r3.ip(&["route", "add", kind, v4]);
            r3.ip(&["-6", "route", "add", kind, v6]);
        }
        lab
    }

    /// Drops the Time Exceeded messages `router` would send.
    pub fn silence(&self, router: &Netns) {
        router.nft(
            "table inet lab {
                chain out {
                    type filter hook output priority 0;
                    icmp type time-exceeded drop
                    icmpv6 type time-exceeded drop
                }
            }",
        );
    }

    /// Drops `percent` % of echo requests arriving at the target, at random,
    /// and counts the requests that do arrive (counter `requests`).
    pub fn loss_at_target(&self, percent: u32) {
        self.target.nft(&format!(
            "table inet lab {{
                counter requests {{ }}
                chain in {{
                    type filter hook input priority 0;
                    icmp type echo-request numgen random mod 100 < {percent} drop
                    icmpv6 type echo-request numgen random mod 100 < {percent} drop
                    icmp type echo-request counter name requests
                    icmpv6 type echo-request counter name requests
                }}
            }}"
        ));
    }

    /// Counts echo requests arriving at the target (counter `requests`).
    pub fn count_requests_at_target(&self) {
        self.loss_at_target(0);
    }

    /// Counts echo replies arriving at the client (counter `replies`).
    pub fn count_replies_at_client(&self) {
        self.client.nft(
            "table inet lab {
                counter replies { }
                chain in {
                    type filter hook input priority 0;
                    icmp type echo-reply counter name replies
                    icmpv6 type echo-reply counter name replies
                }
            }",
        );
    }
}

/// Holds `net.ipv4.route.error_cost` at 0 while any lab exists on this
/// machine. The kernel lets 5 forwarded unreachables through and then one
/// per `error_cost` jiffies: labs need every one. The first lab saves the
/// old value and sets 0; the last restores it. A file lock serialises
/// processes; `.ci/run` restores the saved value if a run was killed.
pub struct ErrorCostGuard;

const ERROR_COST: &str = "/proc/sys/net/ipv4/route/error_cost";
const STATE: &str = "/run/icmp-host-lab.error_cost";

fn locked_state() -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(STATE)
        .expect("opening the lab state file");
    f.lock().expect("locking the lab state file");
    f
}

/// The state file holds "<users> <saved value>".
fn read_state(f: &mut File) -> (u32, String) {
    let mut s = String::new();
    f.rewind().unwrap();
    f.read_to_string(&mut s).unwrap();
    let mut parts = s.split_whitespace();
    let users = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let saved = parts.next().unwrap_or("").to_owned();
    (users, saved)
}

fn write_state(f: &mut File, users: u32, saved: &str) {
    f.set_len(0).unwrap();
    f.rewind().unwrap();
    write!(f, "{users} {saved}").unwrap();
}

impl ErrorCostGuard {
    fn acquire() -> ErrorCostGuard {
        let mut f = locked_state();
        let (users, saved) = read_state(&mut f);
        let saved = if users == 0 || saved.is_empty() {
            let current = std::fs::read_to_string(ERROR_COST)
                .unwrap()
                .trim()
                .to_owned();
            std::fs::write(ERROR_COST, "0").unwrap();
            current
        } else {
            saved
        };
        write_state(&mut f, users + 1, &saved);
        ErrorCostGuard
    }
}

impl Drop for ErrorCostGuard {
    fn drop(&mut self) {
        let mut f = locked_state();
        let (users, saved) = read_state(&mut f);
        // The file stays (other processes may hold it open, waiting for
        // the lock); "0 <saved>" means nobody holds the setting.
        if users <= 1 && !saved.is_empty() {
            let _ = std::fs::write(ERROR_COST, &saved);
        }
        write_state(&mut f, users.saturating_sub(1), &saved);
    }
}
