//! [`Engine`]: the owner of every ICMP socket of the process — the shared
//! raw planes, the private datagram planes, and the tenants they serve.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::Error;
use super::lane::Lane;
use super::plane::{OwnedPlane, Plane, PlaneStats};
use super::queue::Queue;
use super::raw::{RawFamilySockets, RawSockets};
use super::reader::{ReaderPlace, Readers};
use super::socket::{Open, PrivatePlane, Route, VirtualSocket};
use super::tenant::{Account, DatagramSlot, Quota, SocketSlot, Tenant, TenantState};
use super::transport::Transport;
use super::types::{Address, Family, Mode};
use crate::sys::socket::{self as sys, Kind};

/// Tunables of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Replies one virtual socket queues before dropping.
    pub queue_capacity: usize,
    /// Wire keys a raw plane holds at most; tenants' in-flight quotas are
    /// admitted only while their sum fits.
    pub table_capacity: usize,
    /// Kernel receive buffer of shared sockets, in bytes.
    pub receive_buffer: usize,
    /// Datagram sockets (file descriptors) open at once, over all tenants.
    pub max_datagram_sockets: usize,
    /// Where replies are read. Engines shared by tenants read on a thread
    /// of their own ([`ReaderPlace::Thread`]): their plugins keep the async
    /// workers busy and would delay the routing of a neighbour's replies
    /// past its deadlines. A single run reads on its one worker
    /// ([`ReaderPlace::Worker`]): a thread of its own costs 0.2–0.3 ms of
    /// start-up.
    pub readers: ReaderPlace,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_capacity: 65_536,
            table_capacity: 1 << 20,
            receive_buffer: 8 << 20,
            max_datagram_sockets: 4096,
            readers: ReaderPlace::Shared,
        }
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
    /// Sum of the in-flight quotas of the tenants admitted.
    reserved: Arc<AtomicUsize>,
    /// Datagram sockets open, over all tenants.
    datagram_sockets: Arc<AtomicUsize>,
    /// Where the planes' readers run ([`EngineConfig::readers`]).
    /// Last: dropped after the planes above.
    readers: Readers,
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
        let readers = Readers::new(config.readers)?;
        let start = |sockets: Option<RawFamilySockets>, family| -> io::Result<Option<OwnedPlane>> {
            let Some(s) = sockets else { return Ok(None) };
            // Its error queue carries the transmit stamps of sends that
            // fall back to it (a lane socket full).
            let mut receiver = readers.register(s.receiver, true)?;
            let lane = s.lane.map(Arc::new);
            for sender in &lane {
                receiver.read_stamps_of(Arc::clone(sender));
            }
            let receiver: Arc<dyn Transport> = Arc::new(receiver);
            let mut plane = Plane::new(family, Kind::Raw, receiver, config.table_capacity);
            plane.lane = Some(Lane::new(lane));
            plane.dont_fragment = Some(Arc::new(readers.register(s.dont_fragment, false)?));
            if let Some(b) = s.broadcast {
                plane.broadcast = Some(Arc::new(readers.register(b, false)?));
            }
            Ok(Some(readers.read(plane)))
        };
        let raw_v4 = start(raw.v4, Family::V4)?;
        let raw_v6 = start(raw.v6, Family::V6)?;
        Ok(Engine::assemble(
            config,
            raw_v4,
            raw_v6,
            raw.unavailable,
            readers,
        ))
    }

    fn assemble(
        config: EngineConfig,
        raw_v4: Option<OwnedPlane>,
        raw_v6: Option<OwnedPlane>,
        raw_unavailable: Option<String>,
        readers: Readers,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                config,
                raw_v4,
                raw_v6,
                raw_unavailable,
                reserved: Arc::default(),
                datagram_sockets: Arc::default(),
                readers,
            }),
        }
    }

    /// An engine over given transports, for tests: one raw plane per family.
    #[cfg(test)]
    pub(crate) fn with_transports(
        v4: Option<Arc<dyn Transport>>,
        v6: Option<Arc<dyn Transport>>,
        config: EngineConfig,
    ) -> Engine {
        let readers = Readers::new(config.readers).expect("starting the readers");
        let start = |t: Option<Arc<dyn Transport>>, family| {
            t.map(|t| readers.read(Plane::new(family, Kind::Raw, t, config.table_capacity)))
        };
        let (v4, v6) = (start(v4, Family::V4), start(v6, Family::V6));
        Engine::assemble(config, v4, v6, None, readers)
    }

    /// Admits a tenant with `quota`. Refused when the in-flight quotas of
    /// the tenants admitted would no longer fit the key table together —
    /// so that no tenant can ever be refused a key because of another.
    pub fn tenant(&self, name: &str, quota: Quota) -> Result<Tenant, Error> {
        let capacity = self.inner.config.table_capacity;
        let reserved = &self.inner.reserved;
        reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                r.checked_add(quota.in_flight)
                    .filter(|&total| total <= capacity)
            })
            .map_err(|r| {
                Error::Exhausted(format!(
                    "cannot admit tenant {name:?} with {} requests in flight: {} of the \
                     host's {capacity} are promised to other tenants",
                    quota.in_flight, r
                ))
            })?;
        let give_back = Arc::clone(reserved);
        let release = Box::new(move |n: usize| {
            give_back.fetch_sub(n, Ordering::AcqRel);
        });
        Ok(Tenant {
            state: Arc::new(TenantState::new(name, quota, release)),
        })
    }

    /// Requests in flight the engine can still promise to a new tenant.
    pub fn unreserved_in_flight(&self) -> usize {
        self.inner
            .config
            .table_capacity
            .saturating_sub(self.inner.reserved.load(Ordering::Acquire))
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

    /// Opens a virtual socket for `account`'s tenant, within its quota.
    pub fn open(&self, account: &Account, options: &OpenOptions) -> Result<VirtualSocket, Error> {
        let family = options.family;
        if let Some(source) = options.source {
            if source.family() != family {
                return Err(Error::Address(format!(
                    "source {source} is not an {family} address"
                )));
            }
            sys::check_local_address(source.to_socket_addr())
                .map_err(|e| Error::Address(format!("cannot send from {source}: {e}")))?;
        }
        let interface = match &options.interface {
            Some(name) => sys::interface_index(name).map_err(|e| Error::Address(e.to_string()))?,
            None => 0,
        };
        let raw = self.raw_plane(family).cloned();
        let datagram = match (options.mode, &raw) {
            (Mode::Auto | Mode::Privileged, Some(_)) => false,
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
            (Mode::Auto | Mode::Unprivileged, _) => true,
        };
        let quota = |q: super::tenant::QuotaExceeded| Error::Exhausted(q.to_string());
        let slot = SocketSlot::take(account).map_err(quota)?;
        let datagram_slot = match datagram {
            true => Some(DatagramSlot::take(account).map_err(quota)?),
            false => None,
        };
        let (kind, route) = match (raw.filter(|_| !datagram), datagram_slot) {
            (Some(plane), _) => (Kind::Raw, Route::Shared(plane)),
            (None, slot) => (
                Kind::Datagram,
                Route::Private(self.open_datagram(family, options, slot)?),
            ),
        };
        Ok(VirtualSocket {
            family,
            kind,
            queue: Arc::new(Queue::new(
                self.inner.config.queue_capacity,
                slot.account().clone(),
            )),
            open: Some(Open { route, _slot: slot }),
            source: options.source,
            interface,
            broadcast: false,
            dont_fragment: false,
            sent: 0,
            kernel_drops: 0,
        })
    }

    fn open_datagram(
        &self,
        family: Family,
        options: &OpenOptions,
        slot: Option<DatagramSlot>,
    ) -> Result<PrivatePlane, Error> {
        let open = &self.inner.datagram_sockets;
        let most = self.inner.config.max_datagram_sockets;
        let taken = open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            return Err(Error::Exhausted(format!(
                "the host has {most} datagram ICMP sockets open, its most"
            )));
        }
        let hold = DatagramHold {
            _tenant: slot,
            _engine: DatagramCount(Arc::clone(open)),
        };
        let socket = sys::open(family, Kind::Datagram).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => Error::Permission(format!(
                "cannot open an ICMP socket: {e}. Datagram (unprivileged) ICMP sockets need \
                 the user's group inside net.ipv4.ping_group_range (for example `sysctl -w \
                 net.ipv4.ping_group_range=\"0 2147483647\"`); raw sockets need root or \
                 CAP_NET_RAW (`setcap cap_net_raw+ep icmp-host`)"
            )),
            _ => Error::io("opening a datagram ICMP socket", e),
        })?;
        sys::prepare_datagram(
            &socket,
            family,
            options.source.map(Address::to_socket_addr),
            options.interface.as_deref(),
        )
        .map_err(|e| Error::io("setting up a datagram ICMP socket", e))?;
        let socket = Arc::new(
            self.inner
                .readers
                .register(socket, true)
                .map_err(|e| Error::io("registering a socket", e))?,
        );
        let receiver: Arc<dyn Transport> = socket.clone();
        let mut plane = Plane::new(
            family,
            Kind::Datagram,
            receiver,
            self.inner.config.table_capacity,
        );
        plane.hold = Some(hold);
        Ok(PrivatePlane {
            plane: self.inner.readers.read(plane),
            socket,
        })
    }
}

/// A datagram socket's place under the engine's ceiling and its tenant's
/// quota, held by its plane: given back when the descriptor closes.
pub(crate) struct DatagramHold {
    _tenant: Option<DatagramSlot>,
    _engine: DatagramCount,
}

/// One datagram socket counted against the engine's ceiling.
struct DatagramCount(Arc<AtomicUsize>);

impl Drop for DatagramCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::icmp::scripted::{Scripted, Sent};
    use crate::icmp::types::{EchoRequest, Reply};
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

    fn engine(wire: Arc<Scripted>) -> Engine {
        Engine::with_transports(None, Some(wire), EngineConfig::default())
    }

    fn account(engine: &Engine) -> Account {
        engine
            .tenant("test", Quota::default())
            .unwrap()
            .account(Arc::default())
    }

    fn open(engine: &Engine) -> VirtualSocket {
        engine
            .open(
                &account(engine),
                &OpenOptions {
                    family: Family::V6,
                    source: None,
                    mode: Mode::Privileged,
                    interface: None,
                },
            )
            .unwrap()
    }

    #[tokio::test]
    async fn colliding_guest_ids_never_see_each_other() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = engine(wire.clone());
        let (mut a, mut b) = (open(&engine), open(&engine));
        for seq in 1..=50 {
            a.send(&request("2001:db8::1", 7, seq)).await.unwrap();
            b.send(&request("2001:db8::1", 7, seq)).await.unwrap();
        }
        // The reader routes in batches: collect until each has its 50.
        async fn fifty(s: &VirtualSocket) -> Vec<Reply> {
            let mut got = Vec::new();
            while got.len() < 50 {
                got.extend(s.receive_many(1000, Duration::from_secs(1)).await.unwrap());
            }
            got
        }
        let (got_a, got_b) = (fifty(&a).await, fifty(&b).await);
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
        let engine = engine(wire.clone());
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

    #[tokio::test(start_paused = true)]
    async fn a_send_waits_while_the_receiving_socket_is_over_half_full() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = engine(wire.clone());
        let mut s = open(&engine);
        // The reader is behind: the kernel's buffer is 3/4 full.
        wire.set_backlog(Some((3 << 20, 4 << 20)));
        let start = tokio::time::Instant::now();
        let first = request("2001:db8::1", 1, 1);
        {
            let send = s.send(&first);
            tokio::pin!(send);
            // Nothing goes while it stays full...
            let waited = tokio::time::timeout(Duration::from_millis(20), &mut send).await;
            assert!(waited.is_err());
            assert!(wire.sent().is_empty());
            // ...and the request goes as soon as the reader has made room.
            wire.set_backlog(Some((1 << 20, 4 << 20)));
            send.await.unwrap();
        }
        assert_eq!(wire.sent().len(), 1);
        assert!(start.elapsed() < Duration::from_millis(30));
        // A reader that never catches up is not waited for forever.
        wire.set_backlog(Some((4 << 20, 4 << 20)));
        let start = tokio::time::Instant::now();
        for seq in 2..=17 {
            s.send(&request("2001:db8::1", 1, seq)).await.unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_millis(150));
        assert_eq!(wire.sent().len(), 17);
    }

    #[tokio::test]
    async fn closed_socket_is_unavailable() {
        let wire = Arc::new(Scripted::new(echo_v6));
        let engine = engine(wire);
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
        let engine = engine(wire.clone());
        let mut s = open(&engine);
        let mut r = request("2001:db8::1", 1, 1);
        r.payload_size = 70_000;
        assert!(matches!(s.send(&r).await, Err(Error::InvalidArgument(_))));
        assert!(wire.sent().is_empty());
    }
}
