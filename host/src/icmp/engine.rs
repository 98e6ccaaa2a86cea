//! [`Engine`] and [`VirtualSocket`]: planes of kernel sockets, their reader
//! tasks, and the per-guest sockets multiplexed over them.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::demux::{Arrival, Entry, KeySpace, Queue, Rejected, Table, WireKey};
use super::error::Error;
use super::transport::{self, Incoming, KernelSocket, Transport};
use super::types::{Address, EchoRequest, Family, Mode, Reply, SocketStats};
use super::wire::{self, Body, IcmpPacket};
use crate::sys::socket::{self as sys, Kind, SendOptions};

/// Tunables of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Replies a virtual socket queues before dropping.
    pub queue_capacity: usize,
    /// Wire keys a plane keeps reserved at most.
    pub table_capacity: usize,
    /// Kernel receive buffer of shared sockets, in bytes.
    pub receive_buffer: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_capacity: 65_536,
            table_capacity: 1 << 20,
            receive_buffer: 8 << 20,
        }
    }
}

/// ICMP types a raw receiving socket lets through (ICMP_FILTER): echo
/// replies and the errors that quote our requests. Everything else — our
/// own echo requests on loopback, neighbour discovery — stays in the kernel.
const PASS_V4: &[u8] = &[0, 3, 4, 5, 11, 12];
const PASS_V6: &[u8] = &[1, 2, 3, 4, 129];

/// Largest ICMP payload per family: 65535 minus the IPv4 header and the
/// ICMP header; for IPv6 the payload length excludes the fixed header.
fn max_payload(family: Family) -> usize {
    match family {
        Family::V4 => 65_535 - 20 - 8,
        Family::V6 => 65_535 - 8,
    }
}

/// The raw sockets of one family, opened while privileged.
#[derive(Debug)]
struct RawFamilySockets {
    receiver: socket2::Socket,
    dont_fragment: socket2::Socket,
    broadcast: Option<socket2::Socket>,
}

/// Raw sockets opened up front, so that capabilities can be dropped before
/// any plugin runs.
#[derive(Debug, Default)]
pub struct RawSockets {
    v4: Option<RawFamilySockets>,
    v6: Option<RawFamilySockets>,
    /// Why raw sockets are unavailable, when they are.
    unavailable: Option<String>,
}

impl RawSockets {
    /// Opens the raw sockets of both families, if this process may.
    pub fn open(receive_buffer: usize) -> RawSockets {
        let mut raw = RawSockets::default();
        for family in [Family::V4, Family::V6] {
            match Self::open_family(family, receive_buffer) {
                Ok(s) => match family {
                    Family::V4 => raw.v4 = Some(s),
                    Family::V6 => raw.v6 = Some(s),
                },
                Err(e) => {
                    raw.unavailable.get_or_insert_with(|| e.to_string());
                }
            }
        }
        raw
    }

    /// No raw sockets (unprivileged runs, tests).
    pub fn none(reason: &str) -> RawSockets {
        RawSockets {
            unavailable: Some(reason.to_owned()),
            ..RawSockets::default()
        }
    }

    /// Whether any raw socket is open.
    pub fn any(&self) -> bool {
        self.v4.is_some() || self.v6.is_some()
    }

    fn open_family(family: Family, receive_buffer: usize) -> io::Result<RawFamilySockets> {
        let receiver = sys::open(family, Kind::Raw)?;
        let pass = match family {
            Family::V4 => PASS_V4,
            Family::V6 => PASS_V6,
        };
        sys::filter_types(&receiver, family, pass)?;
        sys::enable_receive_metadata(&receiver, family, Kind::Raw)?;
        sys::set_receive_buffer(&receiver, receive_buffer)?;
        // Send-only sockets for socket-wide options: they receive nothing
        // (the shared receiver sees every reply anyway).
        let dont_fragment = sys::open(family, Kind::Raw)?;
        sys::filter_types(&dont_fragment, family, &[])?;
        sys::set_dont_fragment(&dont_fragment, family)?;
        let broadcast = match family {
            Family::V4 => {
                let s = sys::open(family, Kind::Raw)?;
                sys::filter_types(&s, family, &[])?;
                s.set_broadcast(true)?;
                Some(s)
            }
            Family::V6 => None,
        };
        Ok(RawFamilySockets {
            receiver,
            dont_fragment,
            broadcast,
        })
    }
}

/// Counters of a plane (a receiving kernel socket and its table).
#[derive(Debug, Default)]
pub struct PlaneStats {
    /// Datagrams read.
    pub packets: AtomicU64,
    /// Datagrams that failed to parse (short, bad checksum, cut).
    pub invalid: AtomicU64,
    /// Valid ICMP that is not for any request (other types, other traffic).
    pub ignored: AtomicU64,
    /// Replies to keys this process does not hold.
    pub unknown: AtomicU64,
    /// Replies from the wrong source, or with a foreign payload.
    pub rejected: AtomicU64,
    /// Kernel drops (`SO_RXQ_OVFL`), cumulative.
    pub kernel_drops: AtomicU64,
}

/// A receiving kernel socket, its send-only siblings, its key table and
/// counters. Raw planes are shared per family; datagram planes belong to
/// one virtual socket.
struct Plane {
    family: Family,
    kind: Kind,
    receiver: Arc<dyn Transport>,
    dont_fragment: Option<Arc<dyn Transport>>,
    broadcast: Option<Arc<dyn Transport>>,
    table: Mutex<Table>,
    stats: PlaneStats,
}

impl Plane {
    fn new(
        family: Family,
        kind: Kind,
        receiver: Arc<dyn Transport>,
        table_capacity: usize,
    ) -> Plane {
        let space = match kind {
            Kind::Raw => KeySpace::Full,
            Kind::Datagram => KeySpace::SequenceOnly,
        };
        Plane {
            family,
            kind,
            receiver,
            dont_fragment: None,
            broadcast: None,
            table: Mutex::new(Table::new(space, table_capacity)),
            stats: PlaneStats::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parses one delivery and hands it to the owning virtual socket.
    fn handle(&self, buf: &[u8], incoming: Incoming) {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        let Some(arrival) = self.arrival(buf, incoming) else {
            return;
        };
        let routed = self.table().route(&arrival);
        let counter = match routed {
            Ok((queue, reply)) => match queue.push(reply) {
                Ok(()) | Err(_) => return, // a full queue counts its own drops
            },
            Err(Rejected::Unknown) => &self.stats.unknown,
            Err(Rejected::Closed) | Err(Rejected::QueueFull) => return,
            Err(Rejected::WrongSource) | Err(Rejected::Corrupted) => &self.stats.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn arrival<'a>(&self, buf: &'a [u8], incoming: Incoming) -> Option<Arrival<'a>> {
        match incoming {
            Incoming::Packet(meta) => {
                if let Some(d) = meta.drops {
                    self.stats
                        .kernel_drops
                        .store(u64::from(d), Ordering::Relaxed);
                }
                if meta.truncated {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let parsed = match (self.family, self.kind) {
                    (Family::V4, Kind::Raw) => wire::parse_ipv4_datagram(buf)
                        .map(|(ip, m)| (Address::new(IpAddr::V4(ip.source)), Some(ip.ttl), m)),
                    (family, kind) => wire::parse_icmp(family, buf, kind == Kind::Raw)
                        .map(|m| (Address::from_socket_addr(meta.source), meta.ttl, m)),
                };
                let Ok((source, ttl, m)) = parsed else {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let (key, payload, quoted_destination, mtu) = match m.body {
                    Body::EchoReply {
                        ident,
                        seq_no,
                        data,
                    } => (WireKey { ident, seq: seq_no }, Some(data), None, None),
                    Body::Error { quote, mtu } => (
                        WireKey {
                            ident: quote.ident,
                            seq: quote.seq_no,
                        },
                        None,
                        Some(quote.destination),
                        mtu,
                    ),
                    Body::Other => {
                        self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                };
                Some(Arrival {
                    key,
                    source,
                    icmp_type: m.icmp_type,
                    code: m.code,
                    len: m.len,
                    payload,
                    quoted_destination,
                    mtu,
                    ttl,
                    kernel_ns: meta.timestamp_ns,
                })
            }
            Incoming::Error(e) => {
                // The error queue hands back our own request; the kernel
                // names the router that complained (SO_EE_OFFENDER).
                let Ok(original) = IcmpPacket::new_checked(buf) else {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let Some(offender) = e.offender else {
                    self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let too_big = matches!(
                    (self.family, e.icmp_type, e.code),
                    (Family::V4, 3, 4) | (Family::V6, 2, _)
                );
                Some(Arrival {
                    key: WireKey {
                        ident: original.echo_ident(),
                        seq: original.echo_seq_no(),
                    },
                    source: Address::from_socket_addr(offender),
                    icmp_type: e.icmp_type,
                    code: e.code,
                    // The error's own size is not reported: header + quote.
                    len: 8 + original.total_len(),
                    payload: None,
                    quoted_destination: Some(e.received.source.ip()),
                    mtu: too_big.then_some(e.info),
                    ttl: e.received.ttl,
                    kernel_ns: e.received.timestamp_ns,
                })
            }
        }
    }
}

/// Reads a plane's receiving socket until aborted.
async fn read_loop(plane: Arc<Plane>) {
    // Room for the largest IPv4 datagram, options included.
    let mut buf = vec![0u8; 65_536 + 64];
    loop {
        match plane.receiver.recv(&mut buf).await {
            Ok(incoming) => {
                let len = match incoming {
                    Incoming::Packet(m) => m.len,
                    Incoming::Error(e) => e.received.len,
                };
                plane.handle(&buf[..len], incoming);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // Unexpected socket errors (ENOMEM, ...): count, back off a
                // little rather than spin.
                plane.stats.invalid.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A plane plus its reader task; the reader stops when this is dropped.
struct OwnedPlane {
    plane: Arc<Plane>,
    reader: JoinHandle<()>,
}

impl OwnedPlane {
    fn start(plane: Plane) -> OwnedPlane {
        let plane = Arc::new(plane);
        let reader = tokio::spawn(read_loop(Arc::clone(&plane)));
        OwnedPlane { plane, reader }
    }
}

impl Drop for OwnedPlane {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How to open a virtual socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Address family.
    pub family: Family,
    /// Source address of requests.
    pub source: Option<Address>,
    /// Raw, datagram or automatic.
    pub mode: Mode,
    /// Interface to send through.
    pub interface: Option<String>,
}

struct Inner {
    config: EngineConfig,
    raw_v4: Option<OwnedPlane>,
    raw_v6: Option<OwnedPlane>,
    raw_unavailable: Option<String>,
}

/// The ICMP engine: owns every ICMP socket of the process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the engine with raw sockets opened earlier (or none). Must run
    /// inside a tokio runtime.
    pub fn new(config: EngineConfig, raw: RawSockets) -> io::Result<Engine> {
        let start = |sockets: Option<RawFamilySockets>, family| -> io::Result<Option<OwnedPlane>> {
            let Some(s) = sockets else { return Ok(None) };
            let receiver: Arc<dyn Transport> = Arc::new(KernelSocket::new(s.receiver, false)?);
            let mut plane = Plane::new(family, Kind::Raw, receiver, config.table_capacity);
            plane.dont_fragment = Some(Arc::new(KernelSocket::new(s.dont_fragment, false)?));
            if let Some(b) = s.broadcast {
                plane.broadcast = Some(Arc::new(KernelSocket::new(b, false)?));
            }
            Ok(Some(OwnedPlane::start(plane)))
        };
        let raw_v4 = start(raw.v4, Family::V4)?;
        let raw_v6 = start(raw.v6, Family::V6)?;
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                raw_v4,
                raw_v6,
                raw_unavailable: raw.unavailable,
            }),
        })
    }

    /// An engine over given transports, for tests: one raw plane per family.
    #[cfg(test)]
    pub(crate) fn with_transports(
        v4: Option<Arc<dyn Transport>>,
        v6: Option<Arc<dyn Transport>>,
    ) -> Engine {
        let config = EngineConfig::default();
        let start = |t: Option<Arc<dyn Transport>>, family| {
            t.map(|t| OwnedPlane::start(Plane::new(family, Kind::Raw, t, config.table_capacity)))
        };
        Engine {
            inner: Arc::new(Inner {
                raw_v4: start(v4, Family::V4),
                raw_v6: start(v6, Family::V6),
                config,
                raw_unavailable: None,
            }),
        }
    }

    fn raw_plane(&self, family: Family) -> Option<&Arc<Plane>> {
        match family {
            Family::V4 => self.inner.raw_v4.as_ref(),
            Family::V6 => self.inner.raw_v6.as_ref(),
        }
        .map(|p| &p.plane)
    }

    /// Whether raw (privileged) sockets are available for `family`.
    pub fn has_raw(&self, family: Family) -> bool {
        self.raw_plane(family).is_some()
    }

    /// Counters of the shared raw plane of `family`.
    pub fn raw_stats(&self, family: Family) -> Option<&PlaneStats> {
        self.raw_plane(family).map(|p| &p.stats)
    }

    /// Opens a virtual socket.
    pub fn open(&self, options: &OpenOptions) -> Result<VirtualSocket, Error> {
        let family = options.family;
        if let Some(source) = options.source {
            if source.family() != family {
                return Err(Error::Address(format!(
                    "source {source} is not an {family} address"
                )));
            }
            check_local_address(source)?;
        }
        let interface = match &options.interface {
            Some(name) => sys::interface_index(name).map_err(|e| Error::Address(e.to_string()))?,
            None => 0,
        };
        let raw = self.raw_plane(family).cloned();
        let (plane, owned) = match (options.mode, raw) {
            (Mode::Auto | Mode::Privileged, Some(plane)) => (plane, None),
            (Mode::Privileged, None) => {
                return Err(Error::Permission(format!(
                    "raw ICMP sockets are not available ({}): run as root or give the binary \
                     CAP_NET_RAW (`setcap cap_net_raw+ep icmp-host`), or use unprivileged mode",
                    self.inner
                        .raw_unavailable
                        .as_deref()
                        .unwrap_or("not opened")
                )));
            }
            (Mode::Auto | Mode::Unprivileged, _) => {
                let private = self.open_datagram(family, options)?;
                (Arc::clone(&private.plane.plane), Some(private))
            }
        };
        Ok(VirtualSocket {
            family,
            privileged: plane.kind == Kind::Raw,
            plane,
            private: owned,
            queue: Arc::new(Queue::new(self.inner.config.queue_capacity)),
            source: options.source,
            interface,
            broadcast: false,
            closed: false,
            dont_fragment: false,
            sent: 0,
        })
    }

    fn open_datagram(&self, family: Family, options: &OpenOptions) -> Result<PrivatePlane, Error> {
        let socket = sys::open(family, Kind::Datagram).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => Error::Permission(format!(
                "cannot open an ICMP socket: {e}. Datagram (unprivileged) ICMP sockets need \
                 the user's group inside net.ipv4.ping_group_range (for example `sysctl -w \
                 net.ipv4.ping_group_range=\"0 2147483647\"`); raw sockets need root or \
                 CAP_NET_RAW (`setcap cap_net_raw+ep icmp-host`)"
            )),
            _ => Error::io("opening a datagram ICMP socket", e),
        })?;
        let setup = || -> io::Result<()> {
            sys::enable_receive_metadata(&socket, family, Kind::Datagram)?;
            sys::enable_error_queue(&socket, family)?;
            sys::set_receive_buffer(&socket, 1 << 20)?;
            if let Some(source) = options.source {
                socket.bind(&source.to_socket_addr().into())?;
            }
            if let Some(name) = &options.interface {
                socket.bind_device(Some(name.as_bytes()))?;
            }
            Ok(())
        };
        setup().map_err(|e| Error::io("setting up a datagram ICMP socket", e))?;
        let socket = Arc::new(
            KernelSocket::new(socket, true).map_err(|e| Error::io("registering a socket", e))?,
        );
        let receiver: Arc<dyn Transport> = socket.clone();
        let plane = Plane::new(
            family,
            Kind::Datagram,
            receiver,
            self.inner.config.table_capacity,
        );
        Ok(PrivatePlane {
            plane: OwnedPlane::start(plane),
            socket,
        })
    }
}

/// Checks that `source` belongs to this host: a throwaway bind.
fn check_local_address(source: Address) -> Result<(), Error> {
    std::net::UdpSocket::bind(source.to_socket_addr())
        .map(drop)
        .map_err(|e| Error::Address(format!("cannot send from {source}: {e}")))
}

/// A datagram socket owned by one virtual socket; per-socket options are
/// safe to set on it (no other tenant shares it).
struct PrivatePlane {
    plane: OwnedPlane,
    socket: Arc<KernelSocket>,
}

/// A guest's ICMP socket: its own queue, its own wire keys, over a shared
/// (raw) or private (datagram) kernel socket.
pub struct VirtualSocket {
    family: Family,
    privileged: bool,
    plane: Arc<Plane>,
    /// A datagram plane belongs to this socket alone.
    private: Option<PrivatePlane>,
    queue: Arc<Queue>,
    source: Option<Address>,
    interface: u32,
    broadcast: bool,
    closed: bool,
    /// Current Don't Fragment setting of a private datagram socket.
    dont_fragment: bool,
    sent: u64,
}

impl VirtualSocket {
    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether this socket sends through a raw socket.
    pub fn is_privileged(&self) -> bool {
        self.privileged
    }

    /// Source address given at open.
    pub fn source(&self) -> Option<Address> {
        self.source
    }

    /// Whether broadcast destinations are allowed.
    pub fn broadcast(&self) -> bool {
        self.broadcast
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Allows broadcast destinations (IPv4). The caller checks policy first.
    pub fn set_broadcast(&mut self, enabled: bool) -> Result<(), Error> {
        self.check_open()?;
        if enabled && self.family != Family::V4 {
            return Err(Error::Unsupported("IPv6 has no broadcast".into()));
        }
        if let Some(private) = &self.private {
            private
                .socket
                .socket()
                .set_broadcast(enabled)
                .map_err(|e| Error::io("setting SO_BROADCAST", e))?;
        }
        self.broadcast = enabled;
        Ok(())
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends one Echo Request; returns its send time (ns since the epoch).
    pub async fn send(&mut self, request: &EchoRequest) -> Result<u64, Error> {
        self.check_open()?;
        let destination = request.destination;
        if destination.family() != self.family {
            return Err(Error::Address(format!(
                "{destination} is not an {} address",
                self.family
            )));
        }
        if request.ttl == 0 {
            return Err(Error::InvalidArgument("TTL must be at least 1".into()));
        }
        let size = request
            .payload
            .as_ref()
            .map_or(request.payload_size as usize, Vec::len);
        if size > max_payload(self.family) {
            return Err(Error::InvalidArgument(format!(
                "payload of {size} bytes is larger than the {} maximum of {}",
                self.family,
                max_payload(self.family)
            )));
        }
        let payload = match &request.payload {
            Some(p) => p.clone(),
            None => {
                let mut p = vec![0u8; size];
                rand::fill(&mut p[..]);
                p
            }
        };
        let broadcast_ok = self.broadcast && destination.family() == Family::V4;
        let entry = Entry::new(
            Arc::clone(&self.queue),
            request.id,
            request.sequence,
            destination,
            broadcast_ok,
            &payload,
        );
        let sent_at = entry.sent_realtime_ns;
        let key = self.plane.table().insert(entry).ok_or_else(|| {
            Error::Exhausted("no free ICMP identifier/sequence: too many requests in flight".into())
        })?;
        let mut packet = vec![0u8; 8 + payload.len()];
        wire::EchoRequest {
            ident: key.ident,
            seq_no: key.seq,
            data: &payload,
        }
        .emit(self.family, &mut packet);
        let options = SendOptions {
            ttl: request.ttl,
            traffic_class: request.traffic_class,
            source: self.source.map(|s| s.ip),
            interface: self.interface,
        };
        if let Some(private) = &self.private {
            // A queued ICMP error also leaves a pending socket error that
            // would fail this send once: clear it (its details are read
            // from the error queue).
            let _ = private.socket.socket().take_error();
        }
        self.private_dont_fragment(request.dont_fragment)?;
        let transport = self.transport_for(request, broadcast_ok);
        let result =
            transport::send(&*transport, &packet, destination.to_socket_addr(), &options).await;
        if let Err(e) = result {
            self.plane.table().release(key);
            return Err(send_error(e, destination, self.interface));
        }
        self.sent += 1;
        Ok(sent_at)
    }

    /// On a private datagram socket, Don't Fragment is a socket option: set
    /// it when it changes (no other tenant can race on this socket).
    fn private_dont_fragment(&mut self, wanted: bool) -> Result<(), Error> {
        let Some(private) = &self.private else {
            return Ok(());
        };
        if wanted != self.dont_fragment {
            let s = private.socket.socket();
            let result = if wanted {
                sys::set_dont_fragment(s, self.family)
            } else {
                sys::clear_dont_fragment(s, self.family)
            };
            result.map_err(|e| Error::io("setting Don't Fragment", e))?;
            self.dont_fragment = wanted;
        }
        Ok(())
    }

    fn transport_for(&self, request: &EchoRequest, broadcast: bool) -> Arc<dyn Transport> {
        let p = &self.plane;
        let special = if broadcast {
            p.broadcast.as_ref()
        } else if request.dont_fragment {
            p.dont_fragment.as_ref()
        } else {
            None
        };
        Arc::clone(special.unwrap_or(&p.receiver))
    }

    /// Waits up to `timeout` for the reply to `(id, sequence)`, or for any
    /// reply when `None`.
    pub async fn receive(
        &self,
        matching: Option<(u16, u16)>,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        self.check_open()?;
        self.plane.table().note_timeout(timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.queue.take(matching) {
                return Ok(r);
            }
            if !self.queue.wait_until(deadline, matching).await {
                return Err(Error::Timeout(timeout));
            }
            self.check_open()?;
        }
    }

    /// Waits up to `timeout` for at least one reply, then takes up to `max`.
    pub async fn receive_many(&self, max: usize, timeout: Duration) -> Result<Vec<Reply>, Error> {
        self.check_open()?;
        self.plane.table().note_timeout(timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let got = self.queue.take_many(max);
        if !got.is_empty() || max == 0 {
            return Ok(got);
        }
        if !self.queue.wait_until(deadline, None).await {
            return Err(Error::Timeout(timeout));
        }
        Ok(self.queue.take_many(max))
    }

    /// Counters since open.
    pub fn stats(&self) -> SocketStats {
        SocketStats {
            sent: self.sent,
            received: self.queue.received.load(Ordering::Relaxed),
            queue_drops: self.queue.drops.load(Ordering::Relaxed),
            corrupted: self.queue.corrupted.load(Ordering::Relaxed),
            kernel_drops: self.plane.stats.kernel_drops.load(Ordering::Relaxed),
        }
    }

    /// Closes the socket: queued replies are dropped, later calls fail.
    pub fn close(&mut self) {
        self.closed = true;
        self.queue.close();
        self.private = None;
    }
}

impl Drop for VirtualSocket {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Maps a failed send to what the guest should hear.
fn send_error(e: io::Error, destination: Address, interface: u32) -> Error {
    match e.raw_os_error() {
        // Without SO_BROADCAST the kernel refuses broadcast destinations.
        Some(libc::EACCES) if destination.family() == Family::V4 => {
            Error::Broadcast(destination.ip)
        }
        // Don't Fragment and larger than the route's MTU: say which MTU,
        // as iputils does ("local error: message too long, mtu=1280").
        Some(libc::EMSGSIZE) => match sys::path_mtu(destination.to_socket_addr(), interface) {
            Ok(mtu) => Error::MessageTooBig(mtu),
            Err(_) => Error::InvalidArgument(format!(
                "message too long for the path to {destination} with Don't Fragment set"
            )),
        },
        Some(libc::EPERM) => Error::Permission(format!(
            "sending to {destination} was refused by the local firewall: {e}"
        )),
        _ => Error::io("sending an echo request", e),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::icmp::scripted::{Scripted, Sent};
    use crate::sys::socket::Received;

    /// Answers every echo request as the destination would, over raw IPv6
    /// (no IP header, so the scripted packets are plain ICMPv6).
    fn echo_v6(sent: &Sent) -> Vec<(Vec<u8>, Received)> {
        let mut reply = sent.packet.clone();
        reply[0] = 129;
        vec![(reply, received_from(sent.destination))]
    }

    fn received_from(source: SocketAddr) -> Received {
        Received {
            len: 0,
            truncated: false,
            source,
            timestamp_ns: None,
            ttl: Some(64),
            drops: None,
        }
    }

    fn request(dst: &str, id: u16, sequence: u16) -> EchoRequest {
        EchoRequest {
            destination: Address::new(dst.parse().unwrap()),
            id,
            sequence,
            payload: None,
            payload_size: 16,
            ttl: 64,
            traffic_class: 0,
            dont_fragment: false,
        }
    }

    fn open(engine: &Engine) -> VirtualSocket {
        engine
            .open(&OpenOptions {
                family: Family::V6,
                source: None,
                mode: Mode::Privileged,
                interface: None,
            })
            .unwrap()
    }

    #[tokio::test]
    async fn colliding_guest_ids_never_see_each_other() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = Engine::with_transports(None, Some(wire.clone()));
        let (mut a, mut b) = (open(&engine), open(&engine));
        for seq in 1..=50 {
            a.send(&request("2001:db8::1", 7, seq)).await.unwrap();
            b.send(&request("2001:db8::1", 7, seq)).await.unwrap();
        }
        let timeout = Duration::from_secs(1);
        let got_a = a.receive_many(1000, timeout).await.unwrap();
        let got_b = b.receive_many(1000, timeout).await.unwrap();
        // Every reply reached its own sender exactly once.
        for got in [&got_a, &got_b] {
            let mut seqs: Vec<u16> = got.iter().map(|r| r.sequence).collect();
            seqs.sort();
            assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
            assert!(got.iter().all(|r| r.id == 7 && !r.duplicate));
        }
        // On the wire, every request had its own (ident, sequence).
        let keys: std::collections::HashSet<[u8; 4]> = wire
            .sent()
            .iter()
            .map(|s| [s.packet[4], s.packet[5], s.packet[6], s.packet[7]])
            .collect();
        assert_eq!(keys.len(), 100);
        // TTL travels with each packet, never as a socket option.
        assert!(wire.sent().iter().all(|s| s.options.ttl == 64));
    }

    #[tokio::test]
    async fn replies_from_elsewhere_and_strangers_are_dropped() {
        let wire = Arc::new(Scripted::new(|sent: &Sent| {
            let mut reply = sent.packet.clone();
            reply[0] = 129;
            let mut stranger = reply.clone();
            stranger[4] ^= 0xff; // an identifier we never used
            vec![
                (
                    reply.clone(),
                    received_from("[2001:db8::66]:0".parse().unwrap()),
                ),
                (stranger, received_from(sent.destination)),
            ]
        }));
        let engine = Engine::with_transports(None, Some(wire.clone()));
        let mut s = open(&engine);
        s.send(&request("2001:db8::1", 1, 1)).await.unwrap();
        let err = s
            .receive(Some((1, 1)), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)));
        let stats = engine.raw_stats(Family::V6).unwrap();
        assert_eq!(stats.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(stats.unknown.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn closed_socket_is_unavailable() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = Engine::with_transports(None, Some(wire));
        let mut s = open(&engine);
        s.close();
        assert!(matches!(
            s.send(&request("2001:db8::1", 1, 1)).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            s.receive(None, Duration::ZERO).await,
            Err(Error::Closed)
        ));
    }

    #[tokio::test]
    async fn oversized_payload_is_refused_before_anything_is_sent() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = Engine::with_transports(None, Some(wire.clone()));
        let mut s = open(&engine);
        let mut r = request("2001:db8::1", 1, 1);
        r.payload_size = 70_000;
        assert!(matches!(s.send(&r).await, Err(Error::InvalidArgument(_))));
        assert!(wire.sent().is_empty());
    }
}
