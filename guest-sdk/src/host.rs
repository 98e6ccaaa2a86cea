//! The icmp-host imports, wrapped: [`IcmpSocket`], [`resolve`], progress,
//! time, and the run's limits. Conversions between generated and public
//! types live here, and only here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use wasip2::clocks::{monotonic_clock, wall_clock};

use crate::bindings::icmp_host::probe::{control, dns, limits, progress, sockets, types as wit};
use crate::error::{Error, PolicyRule};
use crate::icmp::{EchoRequest, Mode, OpenOptions, Reply, TimestampSource};
use crate::limits::Limits;
use crate::network::{Match, Socket};
use crate::progress::{Event, HopProbe, ProbeKind, Summary};
use crate::range::Cidr;
use crate::{Address, Family};

/// An ICMP socket owned by the host (icmplib's `ICMPv4Socket` /
/// `ICMPv6Socket`). Closed when dropped. Most probes use a [`crate::Flight`]
/// instead, which opens sockets as needed.
///
/// ```no_run
/// use std::time::Duration;
/// use icmp_host_sdk::{EchoRequest, Family, IcmpSocket, Match, OpenOptions, Socket};
///
/// let mut socket = IcmpSocket::open(&OpenOptions::new(Family::V4))?;
/// socket.send(&EchoRequest::new("127.0.0.1".parse().unwrap(), 1, 1))?;
/// let reply = socket.receive(Some(Match { id: 1, sequence: 1 }), Duration::from_secs(1))?;
/// println!("{} in {:?}", reply.source, reply.rtt);
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
#[derive(Debug)]
pub struct IcmpSocket {
    inner: sockets::IcmpSocket,
}

impl IcmpSocket {
    /// Opens a socket.
    pub fn open(options: &OpenOptions) -> Result<IcmpSocket, Error> {
        let options = sockets::OpenOptions {
            family: options.family.into(),
            source: options.source.map(Into::into),
            mode: match options.mode {
                Mode::Auto => wit::Mode::Auto,
                Mode::Privileged => wit::Mode::Privileged,
                Mode::Unprivileged => wit::Mode::Unprivileged,
            },
            interface: options.interface.clone(),
        };
        let inner = sockets::IcmpSocket::open(&options)?;
        Ok(IcmpSocket { inner })
    }

    /// Whether broadcast destinations are allowed.
    pub fn broadcast(&self) -> bool {
        self.inner.broadcast()
    }

    /// The source address bound at open.
    pub fn address(&self) -> Option<Address> {
        self.inner.address().map(Into::into)
    }

    /// The socket's family.
    pub fn family(&self) -> Family {
        self.inner.family().into()
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Counters since open.
    pub fn stats(&self) -> SocketStats {
        let s = self.inner.stats();
        SocketStats {
            sent: s.sent,
            received: s.received,
            queue_drops: s.queue_drops,
            corrupted: s.corrupted,
            kernel_drops: s.kernel_drops,
        }
    }

    /// Releases the socket; later calls fail with [`Error::SocketUnavailable`].
    pub fn close(&self) {
        self.inner.close()
    }
}

/// Counters of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketStats {
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Messages delivered to this socket.
    pub received: u64,
    /// Messages dropped because this socket's queue was full.
    pub queue_drops: u64,
    /// Echo replies whose payload differed from the request's.
    pub corrupted: u64,
    /// Packets the kernel dropped on the shared kernel socket.
    pub kernel_drops: u64,
}

impl Socket for IcmpSocket {
    fn send(&mut self, request: &EchoRequest) -> Result<u64, Error> {
        Ok(self.inner.send(&request.into())?)
    }

    fn send_many(&mut self, requests: &[EchoRequest]) -> Result<Vec<Result<u64, Error>>, Error> {
        let requests: Vec<wit::EchoRequest> = requests.iter().map(Into::into).collect();
        let results = self.inner.send_many(&requests)?;
        Ok(results.into_iter().map(|r| r.map_err(Into::into)).collect())
    }

    fn start_sending(
        &mut self,
        requests: &[EchoRequest],
    ) -> Result<Option<Vec<Result<u64, Error>>>, Error> {
        let requests: Vec<wit::EchoRequest> = requests.iter().map(Into::into).collect();
        self.inner.start_sending(&requests)?;
        Ok(None)
    }

    fn finish_sending(&mut self) -> Result<Vec<Result<u64, Error>>, Error> {
        let results = self.inner.finish_sending()?;
        Ok(results.into_iter().map(|r| r.map_err(Into::into)).collect())
    }

    fn receive(&mut self, matching: Option<Match>, timeout: Duration) -> Result<Reply, Error> {
        let matching = matching.map(|m| sockets::ReplyMatch {
            id: m.id,
            sequence: m.sequence,
        });
        Ok(self.inner.receive(matching, nanos(timeout))?.into())
    }

    fn receive_many(&mut self, max: u32, timeout: Duration) -> Result<Vec<Reply>, Error> {
        match self.inner.receive_many(max, nanos(timeout)) {
            Ok(replies) => Ok(replies.into_iter().map(Into::into).collect()),
            Err(wit::Error::TimeoutExceeded(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn is_privileged(&self) -> bool {
        self.inner.is_privileged()
    }

    fn set_broadcast(&mut self, enabled: bool) -> Result<(), Error> {
        Ok(self.inner.set_broadcast(enabled)?)
    }
}

/// Resolves a name or address literal to all its addresses, IPv4 first
/// (icmplib's `resolve`); `family` keeps one family only. IPv6 literals may
/// carry a scope: `fe80::1%eth0`.
///
/// ```no_run
/// let addresses = icmp_host_sdk::resolve("localhost", None)?;
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn resolve(name: &str, family: Option<Family>) -> Result<Vec<Address>, Error> {
    let found = dns::resolve(name, family.map(Into::into))?;
    Ok(found.into_iter().map(Into::into).collect())
}

/// Sleeps, waking early with [`Error::Interrupted`] when the run is ending
/// (Ctrl-C, wall-clock limit): return what you have then.
///
/// ```no_run
/// use std::time::Duration;
/// if icmp_host_sdk::sleep(Duration::from_millis(500)).is_err() {
///     // interrupted: report what was measured so far
/// }
/// ```
pub fn sleep(duration: Duration) -> Result<(), Error> {
    Ok(control::sleep(nanos(duration))?)
}

/// Reports a progress event; the host renders it (ping-like lines, NDJSON)
/// or drops it (`-q`). When nobody [`watched`] the run's events, only a
/// result line reaches the host. See also [`note`] and [`result_line`].
///
/// ```no_run
/// icmp_host_sdk::emit(icmp_host_sdk::Event::Note("warming up".into()));
/// ```
pub fn emit(event: Event) {
    if matches!(event, Event::ResultLine(_)) || watched() {
        progress::emit(&event.into())
    }
}

/// Appends `part` to the run's JSON report, ahead of the `json` that `run`
/// returns: for a report too large to hold whole, written as it grows
/// ([`crate::json::OrderedList::hand_on`]). `false` once the run's output
/// limit refuses more (the run then fails). After the first part, result
/// lines are no longer written.
///
/// ```no_run
/// icmp_host_sdk::write_report("[1,2,");
/// // ... and `run` returns `Output::Report { json: Some("3]".into()), .. }`
/// ```
pub fn write_report(part: &str) -> bool {
    progress::write_report(part)
}

/// Whether anyone sees this run's progress events (not under `run -q`):
/// skip building those that cost something, such as a sweep's per-host
/// lines. Result lines and reports are written either way. Asked of the
/// host once.
///
/// ```no_run
/// # let host = icmp_host_sdk::Host::new("x", "192.0.2.1");
/// if icmp_host_sdk::watched() {
///     icmp_host_sdk::note(format!("{}: {} sent", host.target, host.packets_sent));
/// }
/// ```
pub fn watched() -> bool {
    // 0: not asked yet; then 1 + the answer.
    static WATCHED: AtomicU8 = AtomicU8::new(0);
    match WATCHED.load(Ordering::Relaxed) {
        0 => {
            let watched = progress::watched();
            WATCHED.store(1 + u8::from(watched), Ordering::Relaxed);
            watched
        }
        known => known == 2,
    }
}

/// Reports a line of free text (shown on stderr, like ping's notes).
///
/// ```no_run
/// icmp_host_sdk::note("192.0.2.7: no answer");
/// ```
pub fn note(text: impl Into<String>) {
    emit(Event::Note(text.into()))
}

/// Streams one JSON value as a result, at once, on its own line of stdout
/// (never silenced). Return `Output::streamed(outcome)` at the end.
///
/// ```no_run
/// use icmp_host_sdk::json;
/// icmp_host_sdk::result_line(&json::object(|o| {
///     o.field("address", "192.0.2.1").field("alive", &true);
/// }));
/// ```
pub fn result_line(json: &str) {
    emit(Event::ResultLine(json.to_owned()))
}

/// Monotonic time since the plugin started: for schedules and deadlines.
///
/// ```no_run
/// let start = icmp_host_sdk::now();
/// // ... probe ...
/// let elapsed = icmp_host_sdk::now() - start;
/// ```
///
/// Both clocks are read from WASI directly rather than through
/// `std::time::{Instant, SystemTime}`: std reads them through wasi-libc's
/// `clock_gettime` and unwraps an `io::Error`, which links that error's
/// `Debug` (with Unicode escaping and libc's error strings), about 10 KB of
/// every plugin.
pub fn now() -> Duration {
    // The first reading; `u64::MAX` (585 years of uptime) until taken.
    static ORIGIN: AtomicU64 = AtomicU64::new(u64::MAX);
    let now = monotonic_clock::now();
    let origin = ORIGIN
        .compare_exchange(u64::MAX, now, Ordering::Relaxed, Ordering::Relaxed)
        .unwrap_or_else(|first| first);
    Duration::from_nanos(now.saturating_sub(origin))
}

/// The realtime clock, nanoseconds since the Unix epoch: the clock of the
/// host's send times and of [`Reply::received_at`]. To place such a
/// timestamp on the [`now`] timeline, use [`local_time`].
///
/// ```no_run
/// let ns = icmp_host_sdk::wall_clock();
/// assert!(ns > 1_700_000_000_000_000_000);
/// ```
pub fn wall_clock() -> u64 {
    let now = wall_clock::now();
    now.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(now.nanoseconds))
}

/// Where a host timestamp (a send time, [`Reply::received_at`]) falls on
/// the [`now`] timeline.
///
/// ```no_run
/// # fn demo(reply: &icmp_host_sdk::Reply) {
/// let arrived = icmp_host_sdk::local_time(reply.received_at);
/// let waiting_since = icmp_host_sdk::now() - arrived;
/// # }
/// ```
pub fn local_time(timestamp: u64) -> Duration {
    let now = now();
    now.saturating_sub(Duration::from_nanos(wall_clock().saturating_sub(timestamp)))
}

/// The policy and limits this run is under (destinations, rate, budgets,
/// batch sizes, memory, CPU, wall clock).
///
/// ```no_run
/// let rules = icmp_host_sdk::limits();
/// let batch = rules.max_batch as usize;
/// ```
pub fn limits() -> Limits {
    limits::current().into()
}

/// Whether a request to `destination` would pass the host's destination
/// rules, without sending anything. A refusal is an
/// [`Error::PolicyDenied`] naming its rule.
///
/// ```no_run
/// let a = "192.0.2.1".parse().unwrap();
/// if let Err(e) = icmp_host_sdk::check_destination(a) {
///     icmp_host_sdk::note(format!("skipping {a}: {e}"));
/// }
/// ```
pub fn check_destination(destination: Address) -> Result<(), Error> {
    limits::check_destination(destination.into()).map_err(|d| wit::Error::PolicyDenied(d).into())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl From<limits::Rules> for Limits {
    fn from(r: limits::Rules) -> Self {
        let cidrs = |list: Vec<limits::Cidr>| {
            list.into_iter()
                .filter_map(|c| Cidr::new(Address::from(c.address).ip, c.prefix))
                .collect()
        };
        Limits {
            allow: cidrs(r.allow),
            deny: cidrs(r.deny),
            allow_broadcast: r.allow_broadcast,
            allow_multicast: r.allow_multicast,
            allow_privileged: r.allow_privileged,
            allow_names: r.allow_names,
            max_payload: r.max_payload,
            max_sockets: r.max_sockets,
            max_pps: r.max_pps,
            max_packets: r.max_packets,
            packets_sent: r.packets_sent,
            max_batch: r.max_batch,
            max_batch_bytes: r.max_batch_bytes,
            max_timeout: Duration::from_nanos(r.max_timeout),
            memory: r.memory,
            cpu: Duration::from_nanos(r.cpu),
            wall: r.wall.map(Duration::from_nanos),
        }
    }
}

impl From<Family> for wit::Family {
    fn from(f: Family) -> Self {
        match f {
            Family::V4 => wit::Family::Ipv4,
            Family::V6 => wit::Family::Ipv6,
        }
    }
}

impl From<wit::Family> for Family {
    fn from(f: wit::Family) -> Self {
        match f {
            wit::Family::Ipv4 => Family::V4,
            wit::Family::Ipv6 => Family::V6,
        }
    }
}

impl From<Address> for wit::IpAddress {
    fn from(address: Address) -> Self {
        match address.ip {
            IpAddr::V4(ip) => {
                let [a, b, c, d] = ip.octets();
                wit::IpAddress::Ipv4((a, b, c, d))
            }
            IpAddr::V6(ip) => {
                let [a, b, c, d, e, f, g, h] = ip.segments();
                wit::IpAddress::Ipv6(wit::Ipv6Address {
                    segments: (a, b, c, d, e, f, g, h),
                    scope_id: address.scope_id,
                })
            }
        }
    }
}

impl From<wit::IpAddress> for Address {
    fn from(a: wit::IpAddress) -> Self {
        match a {
            wit::IpAddress::Ipv4((a, b, c, d)) => Address::new(Ipv4Addr::new(a, b, c, d).into()),
            wit::IpAddress::Ipv6(v6) => {
                let (a, b, c, d, e, f, g, h) = v6.segments;
                Address {
                    ip: Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
                    scope_id: v6.scope_id,
                }
            }
        }
    }
}

impl From<&EchoRequest> for wit::EchoRequest {
    fn from(r: &EchoRequest) -> Self {
        wit::EchoRequest {
            destination: r.destination.into(),
            id: r.id,
            sequence: r.sequence,
            payload: r.payload.clone(),
            payload_size: r.payload_size,
            ttl: r.ttl,
            traffic_class: r.traffic_class,
            dont_fragment: r.dont_fragment,
        }
    }
}

impl From<wit::Reply> for Reply {
    fn from(r: wit::Reply) -> Self {
        Reply {
            source: r.source.into(),
            family: r.family.into(),
            id: r.id,
            sequence: r.sequence,
            icmp_type: r.type_,
            code: r.code,
            bytes_received: r.bytes_received,
            received_at: r.received_at,
            timestamp_source: match r.timestamp_source {
                wit::TimestampSource::Kernel => TimestampSource::Kernel,
                wit::TimestampSource::HostMonotonic => TimestampSource::HostMonotonic,
                wit::TimestampSource::KernelBoth => TimestampSource::KernelBoth,
            },
            rtt: Duration::from_nanos(r.rtt),
            ttl: r.ttl,
            original_destination: r.original_destination.map(Into::into),
            mtu: r.mtu,
            duplicate: r.duplicate,
        }
    }
}

impl From<&Reply> for wit::Reply {
    fn from(r: &Reply) -> Self {
        wit::Reply {
            source: r.source.into(),
            family: r.family.into(),
            id: r.id,
            sequence: r.sequence,
            type_: r.icmp_type,
            code: r.code,
            bytes_received: r.bytes_received,
            received_at: r.received_at,
            timestamp_source: match r.timestamp_source {
                TimestampSource::Kernel => wit::TimestampSource::Kernel,
                TimestampSource::HostMonotonic => wit::TimestampSource::HostMonotonic,
                TimestampSource::KernelBoth => wit::TimestampSource::KernelBoth,
            },
            rtt: nanos(r.rtt),
            ttl: r.ttl,
            original_destination: r.original_destination.map(Into::into),
            mtu: r.mtu,
            duplicate: r.duplicate,
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NameLookup(m) => Error::NameLookup(m),
            wit::Error::SocketAddress(m) => Error::SocketAddress(m),
            wit::Error::SocketPermission(m) => Error::SocketPermission(m),
            wit::Error::SocketUnavailable => Error::SocketUnavailable,
            wit::Error::SocketBroadcast => Error::SocketBroadcast,
            wit::Error::TimeoutExceeded(d) => Error::TimeoutExceeded(Duration::from_nanos(d)),
            wit::Error::IcmpSocket(m) => Error::IcmpSocket(m),
            wit::Error::PolicyDenied(d) => Error::PolicyDenied {
                rule: match d.rule {
                    wit::PolicyRule::Destination => PolicyRule::Destination,
                    wit::PolicyRule::Multicast => PolicyRule::Multicast,
                    wit::PolicyRule::Broadcast => PolicyRule::Broadcast,
                    wit::PolicyRule::PacketBudget => PolicyRule::PacketBudget,
                    wit::PolicyRule::PayloadSize => PolicyRule::PayloadSize,
                    wit::PolicyRule::Sockets => PolicyRule::Sockets,
                    wit::PolicyRule::Privileged => PolicyRule::Privileged,
                    wit::PolicyRule::Names => PolicyRule::Names,
                },
                message: d.message,
            },
            wit::Error::MessageTooBig(mtu) => Error::MessageTooBig { mtu },
            wit::Error::Interrupted => Error::Interrupted,
            wit::Error::ResourceExhausted(m) => Error::ResourceExhausted(m),
            wit::Error::InvalidArgument(m) => Error::InvalidArgument(m),
            wit::Error::Unsupported(m) => Error::Unsupported(m),
        }
    }
}

impl From<Event> for progress::Event {
    fn from(e: Event) -> Self {
        match e {
            Event::Start {
                kind,
                target,
                address,
                payload_size,
                max_hops,
            } => progress::Event::Start(progress::Start {
                kind: match kind {
                    ProbeKind::Ping => progress::ProbeKind::Ping,
                    ProbeKind::Traceroute => progress::ProbeKind::Traceroute,
                    ProbeKind::Other => progress::ProbeKind::Other,
                },
                target,
                address: address.map(Into::into),
                payload_size,
                max_hops,
            }),
            Event::Reply(r) => progress::Event::Reply((&r).into()),
            Event::Timeout {
                destination,
                id,
                sequence,
            } => progress::Event::Timeout(progress::Timeout {
                destination: destination.into(),
                id,
                sequence,
            }),
            Event::Hop { distance, probes } => progress::Event::Hop(progress::Hop {
                distance,
                probes: probes.into_iter().map(Into::into).collect(),
            }),
            Event::Summary(s) => progress::Event::Summary(s.into()),
            Event::Note(n) => progress::Event::Note(n),
            Event::ResultLine(l) => progress::Event::ResultLine(l),
        }
    }
}

impl From<HopProbe> for progress::HopProbe {
    fn from(p: HopProbe) -> Self {
        progress::HopProbe {
            responder: p.responder.map(Into::into),
            rtt: p.rtt.map(nanos),
            type_: p.icmp_type,
            code: p.code,
        }
    }
}

impl From<Summary> for progress::Summary {
    fn from(s: Summary) -> Self {
        progress::Summary {
            target: s.target,
            packets_sent: s.packets_sent,
            packets_received: s.packets_received,
            duplicates: s.duplicates,
            errors: s.errors,
            min_rtt: nanos(s.min_rtt),
            avg_rtt: nanos(s.avg_rtt),
            max_rtt: nanos(s.max_rtt),
            mdev: nanos(s.mdev),
            elapsed: nanos(s.elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_keep_their_rule() {
        let e: Error = wit::Error::PolicyDenied(wit::Denial {
            rule: wit::PolicyRule::PacketBudget,
            message: "--max-packets 3 spent".into(),
        })
        .into();
        assert_eq!(e.denied_by(), Some(PolicyRule::PacketBudget));
        assert_eq!(
            e.to_string(),
            "denied by policy (packet-budget): --max-packets 3 spent"
        );
        let e: Error = wit::Error::MessageTooBig(1280).into();
        assert_eq!(e, Error::MessageTooBig { mtu: 1280 });
    }

    #[test]
    fn rules_convert_with_their_ranges() {
        let rules = limits::Rules {
            allow: vec![limits::Cidr {
                address: wit::IpAddress::Ipv4((198, 18, 0, 0)),
                prefix: 15,
            }],
            deny: vec![],
            allow_broadcast: false,
            allow_multicast: false,
            allow_privileged: true,
            allow_names: false,
            max_payload: 1472,
            max_sockets: 4,
            max_pps: Some(5.0),
            max_packets: Some(100),
            packets_sent: 7,
            max_batch: 1024,
            max_batch_bytes: 4 << 20,
            max_timeout: 60_000_000_000,
            memory: 1 << 26,
            cpu: 2_000_000_000,
            wall: None,
        };
        let l = Limits::from(rules);
        assert_eq!(l.allow, vec!["198.18.0.0/15".parse().unwrap()]);
        assert_eq!(l.packets_left(), Some(93));
        assert_eq!(l.min_spacing(), Duration::from_millis(200));
        assert_eq!(l.cpu, Duration::from_secs(2));
    }
}
