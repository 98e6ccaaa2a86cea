//! [`VirtualSocket`]: a guest's ICMP socket — its own queue and wire keys
//! over a shared raw plane, or over a private datagram plane — held
//! against its tenant's quota until closed or dropped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::clock;
use super::error::Error;
use super::lane::{self, Halt, Outgoing};
use super::plane::{OwnedPlane, Plane};
use super::queue::Queue;
use super::table::{self, Refused, Request, SendStamp, WireKey};
use super::tenant::SocketSlot;
use super::transport::{KernelSocket, Transport};
use super::types::{Address, EchoRequest, Family, Reply, SocketStats};
use super::wire;
use crate::sys::socket::{self as sys, Kind, SendOptions};

/// Largest ICMP payload per family: 65535 minus the IPv4 header and the
/// ICMP header; for IPv6 the payload length excludes the fixed header.
fn max_payload(family: Family) -> usize {
    match family {
        Family::V4 => 65_535 - 20 - 8,
        Family::V6 => 65_535 - 8,
    }
}

/// How long a receive that reached its deadline waits, at most, for the
/// reader to route what the kernel received before it.
const CATCH_UP_LIMIT: Duration = Duration::from_millis(250);

/// Sends between two looks at how full the receiving socket is.
const ROOM_CHECK_EVERY: u64 = 16;

/// Most payload bytes of a burst's part: between two looks at the
/// receiving socket's room, as many as [`ROOM_CHECK_EVERY`] of the largest
/// requests sent one by one.
const BURST_BYTES: usize = 1 << 20;

/// A burst begun by [`VirtualSocket::start_burst`]. Dropped unfinished,
/// the lane sends no more of it.
pub struct Started {
    /// Its first part, offered to the lane.
    part: Option<Part>,
    /// What is sent when it is finished.
    rest: Vec<EchoRequest>,
}

/// Part of a burst: its keys reserved, its packets offered to the lane.
struct Part {
    plane: Arc<Plane>,
    destinations: Vec<Address>,
    /// Each request's wire key and send stamp, or why it was not sent.
    prepared: Vec<Result<(WireKey, Arc<SendStamp>), Error>>,
    /// The packets of those prepared; `None` when there are none.
    offer: Option<lane::Offer>,
}

/// How many of `requests` make the next part of a burst: at most
/// [`BURST_BYTES`] of payload, and at least one request (should a payload
/// ever outgrow the limit).
fn part_len(requests: &[EchoRequest]) -> usize {
    let mut bytes = 0;
    requests
        .iter()
        .take_while(|r| {
            bytes += r.payload.as_ref().map_or(r.payload_size as usize, Vec::len);
            bytes <= BURST_BYTES
        })
        .count()
        .max(1)
}

/// How long a send waits, at most, for the reader to make room.
const ROOM_WAIT_LIMIT: Duration = Duration::from_millis(100);

/// A datagram socket owned by one virtual socket; per-socket options are
/// safe to set on it (no other tenant shares it).
pub(crate) struct PrivatePlane {
    pub(crate) plane: OwnedPlane,
    pub(crate) socket: Arc<KernelSocket>,
}

/// What a socket sends and receives through.
pub(crate) enum Route {
    /// A raw plane shared by every tenant.
    Shared(Arc<Plane>),
    /// A datagram plane of its own.
    Private(PrivatePlane),
}

/// An open socket's route and the quota it holds: both go at `close`.
pub(crate) struct Open {
    pub(crate) route: Route,
    /// Held for its `Drop`, which gives the quota back.
    pub(crate) _slot: SocketSlot,
}

/// A guest's ICMP socket: its own queue, its own wire keys, over a shared
/// (raw) or private (datagram) kernel socket.
pub struct VirtualSocket {
    pub(crate) family: Family,
    pub(crate) kind: Kind,
    /// `None` once closed: a closed socket holds no kernel socket and no quota.
    pub(crate) open: Option<Open>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) source: Option<Address>,
    pub(crate) interface: u32,
    pub(crate) broadcast: bool,
    /// Current Don't Fragment setting of a private datagram socket.
    pub(crate) dont_fragment: bool,
    pub(crate) sent: u64,
    /// Kernel drops seen on the plane, as of the last look.
    pub(crate) kernel_drops: u64,
}

impl VirtualSocket {
    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether this socket sends through a raw socket.
    pub fn is_privileged(&self) -> bool {
        self.kind == Kind::Raw
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
        self.open.is_none()
    }

    /// The plane of an open socket.
    fn plane(&self) -> Result<&Arc<Plane>, Error> {
        match &self.open.as_ref().ok_or(Error::Closed)?.route {
            Route::Shared(plane) => Ok(plane),
            Route::Private(private) => Ok(&private.plane.plane),
        }
    }

    /// The datagram socket of its own, if it has one.
    fn private(&self) -> Option<&PrivatePlane> {
        match &self.open.as_ref()?.route {
            Route::Private(private) => Some(private),
            Route::Shared(_) => None,
        }
    }

    /// Allows broadcast destinations (IPv4). The caller checks policy first.
    pub fn set_broadcast(&mut self, enabled: bool) -> Result<(), Error> {
        self.check_open()?;
        if enabled && self.family != Family::V4 {
            return Err(Error::Unsupported("IPv6 has no broadcast".into()));
        }
        if let Some(private) = self.private() {
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
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends one Echo Request; returns its send time (ns since the epoch),
    /// taken right before the system call.
    pub async fn send(&mut self, request: &EchoRequest) -> Result<u64, Error> {
        self.check_open()?;
        if self.sent.is_multiple_of(ROOM_CHECK_EVERY) {
            self.make_room().await;
        }
        let (key, out) = self.prepare(request)?;
        if let Some(private) = self.private() {
            // A queued ICMP error also leaves a pending socket error that
            // would fail this send once: clear it (its details are read
            // from the error queue).
            let _ = private.socket.socket().take_error();
        }
        if let Err(e) = self.private_dont_fragment(request.dont_fragment) {
            self.plane()?.table().release(key);
            return Err(e);
        }
        let plane = self.plane()?;
        let result = match &plane.lane {
            Some(lane) => lane.send_single(&plane.receiver, &out).await,
            None => lane::send_one(&plane.receiver, &out).await,
        };
        self.finish(key, request.destination, &out.sent, result)
    }

    /// Whether [`VirtualSocket::send_burst`] sends from two threads: an
    /// open socket on a raw plane with a lane.
    pub fn sends_in_bursts(&self) -> bool {
        self.lane_plane().is_some()
    }

    /// The shared raw plane of an open socket, if it has a lane.
    fn lane_plane(&self) -> Option<&Arc<Plane>> {
        match &self.open.as_ref()?.route {
            Route::Shared(plane) if plane.lane.is_some() => Some(plane),
            _ => None,
        }
    }

    /// Sends Echo Requests as [`VirtualSocket::send`] does, one result each,
    /// in order; on a raw plane with a lane, from two threads at once (each
    /// request once, in about the order given), in parts of at most
    /// 1 MiB of payload with a look at the receiving socket's room
    /// before each. Their wire keys are reserved a part at a time, so a part
    /// may find the tenant's in-flight quota used up where requests sent
    /// one by one would have found earlier ones answered. `stop` is asked
    /// every few sends; once it says so, nothing more is sent, and what was
    /// not is `None` (its key given back).
    pub async fn send_burst(
        &mut self,
        requests: &[EchoRequest],
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Vec<Option<Result<u64, Error>>> {
        let mut results = Vec::with_capacity(requests.len());
        let mut rest = requests;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(part_len(rest));
            if !results.is_empty() && stop() {
                results.extend(now.iter().chain(later).map(|_| None));
                break;
            }
            self.send_part(now, stop, &mut results).await;
            rest = later;
        }
        results
    }

    /// One part of [`VirtualSocket::send_burst`].
    async fn send_part(
        &mut self,
        requests: &[EchoRequest],
        stop: &mut (dyn FnMut() -> bool + Send),
        results: &mut Vec<Option<Result<u64, Error>>>,
    ) {
        match self.begin_part(requests, None).await {
            Some(part) => self.end_part(part, stop, results).await,
            None => {
                for r in requests {
                    results.push(Some(self.send(r).await));
                }
            }
        }
    }

    /// Begins a burst, as [`VirtualSocket::send_burst`] would send it, and
    /// returns once its first part is offered to the lane: the lane sends
    /// it meanwhile (until `halted` says the run is stopped), and
    /// [`VirtualSocket::finish_burst`] sends the rest and gives the
    /// results. (On a socket without a lane, all of it waits.)
    pub async fn start_burst(&mut self, mut requests: Vec<EchoRequest>, halted: Halt) -> Started {
        let first = requests.len().min(part_len(&requests));
        let part = self.begin_part(&requests[..first], Some(halted)).await;
        if part.is_some() {
            requests.drain(..first);
        }
        Started {
            part,
            rest: requests,
        }
    }

    /// Sends what `started` still holds and gives one result per request,
    /// in order, as [`VirtualSocket::send_burst`] does.
    pub async fn finish_burst(
        &mut self,
        started: Started,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Vec<Option<Result<u64, Error>>> {
        let mut results = Vec::new();
        if let Some(part) = started.part {
            self.end_part(part, stop, &mut results).await;
        }
        if started.rest.is_empty() {
            return results;
        }
        if stop() {
            results.extend(started.rest.iter().map(|_| None));
            return results;
        }
        results.extend(self.send_burst(&started.rest, stop).await);
        results
    }

    /// Reserves the keys of `requests` and offers their packets to the
    /// lane, after a look at the receiver's room; `None` on a socket
    /// without a lane.
    async fn begin_part(&mut self, requests: &[EchoRequest], halted: Option<Halt>) -> Option<Part> {
        let plane = self.lane_plane().cloned()?;
        self.make_room().await;
        let mut prepared = Vec::with_capacity(requests.len());
        let mut outgoing = Vec::with_capacity(requests.len());
        for r in requests {
            prepared.push(self.prepare(r).map(|(key, out)| {
                let sent = Arc::clone(&out.sent);
                outgoing.push(out);
                (key, sent)
            }));
        }
        let lane = plane.lane.as_ref().expect("a lane plane has a lane");
        let offer =
            (!outgoing.is_empty()).then(|| lane.offer(outgoing, self.queue.account(), halted));
        Some(Part {
            plane,
            destinations: requests.iter().map(|r| r.destination).collect(),
            prepared,
            offer,
        })
    }

    /// Sends the rest of `part` alongside the lane, and appends its results
    /// in order.
    async fn end_part(
        &mut self,
        part: Part,
        stop: &mut (dyn FnMut() -> bool + Send),
        results: &mut Vec<Option<Result<u64, Error>>>,
    ) {
        let plane = part.plane;
        let lane = plane.lane.as_ref().expect("a lane plane has a lane");
        let sent = match part.offer {
            Some(offer) => offer.join(lane, &plane.receiver, stop).await,
            None => Vec::new(),
        };
        // `join` gave the requests back in order: pair them up again.
        let mut sent = sent.into_iter();
        for (destination, key) in part.destinations.into_iter().zip(part.prepared) {
            let result = match key {
                Err(e) => Some(Err(e)),
                Ok((key, stamp)) => match sent.next().expect("one result per request sent") {
                    Some(result) => Some(self.finish(key, destination, &stamp, result)),
                    None => {
                        plane.table().release(key);
                        None
                    }
                },
            };
            results.push(result);
        }
    }

    /// Checks a request, reserves its wire key and builds its packet.
    fn prepare(&self, request: &EchoRequest) -> Result<(WireKey, Outgoing), Error> {
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
        let sent = Arc::new(SendStamp::default());
        let key = self.reserve(Request {
            queue: Arc::clone(&self.queue),
            guest_id: request.id,
            guest_seq: request.sequence,
            destination,
            broadcast: broadcast_ok,
            payload_digest: table::digest(&payload),
            sent: Arc::clone(&sent),
        })?;
        let mut packet = vec![0u8; 8 + payload.len()];
        wire::EchoRequest {
            ident: key.ident,
            seq_no: key.seq,
            data: &payload,
        }
        .emit(self.family, &mut packet);
        let via = match self.sibling_for(request, broadcast_ok) {
            Ok(via) => via,
            Err(e) => {
                self.plane()?.table().release(key);
                return Err(e);
            }
        };
        Ok((
            key,
            Outgoing {
                packet,
                destination: destination.to_socket_addr(),
                options: SendOptions {
                    ttl: request.ttl,
                    traffic_class: request.traffic_class,
                    source: self.source.map(|s| s.ip),
                    interface: self.interface,
                },
                sent,
                via,
            },
        ))
    }

    /// Counts a sent request, or gives back the key of one that failed.
    fn finish(
        &mut self,
        key: WireKey,
        destination: Address,
        sent: &SendStamp,
        result: io::Result<()>,
    ) -> Result<u64, Error> {
        if let Err(e) = result {
            self.plane()?.table().release(key);
            return Err(send_error(e, destination, self.interface));
        }
        self.sent += 1;
        let counters = &self.queue.account().tenant.counters;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(sent.realtime_ns())
    }

    /// Waits while the receiving socket is over half full — its reader is
    /// behind, on a busy host — so that a burst cannot make the kernel drop
    /// replies (a send that falls back to it, its lane's socket full, also
    /// queues its transmit stamp there). A reader that does not catch up
    /// within [`ROOM_WAIT_LIMIT`] is not waited for longer.
    async fn make_room(&self) {
        let Ok(plane) = self.plane() else { return };
        let give_up = tokio::time::Instant::now() + ROOM_WAIT_LIMIT;
        while plane.congested() && tokio::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Reserves a wire key, counting the request against the tenant.
    fn reserve(&self, request: Request) -> Result<WireKey, Error> {
        self.plane()?.table().insert(request).map_err(|r| match r {
            Refused::Full => Error::Exhausted(
                "no free ICMP identifier/sequence: too many requests in flight on this host".into(),
            ),
            Refused::Quota(q) => Error::Exhausted(q.to_string()),
        })
    }

    /// On a private datagram socket, Don't Fragment is a socket option: set
    /// it when it changes (no other tenant can race on this socket).
    fn private_dont_fragment(&mut self, wanted: bool) -> Result<(), Error> {
        let Some(private) = self.private() else {
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

    /// The sibling socket a request must leave through (broadcast, Don't
    /// Fragment on a shared plane), if any.
    fn sibling_for(
        &self,
        request: &EchoRequest,
        broadcast: bool,
    ) -> Result<Option<Arc<dyn Transport>>, Error> {
        let p = self.plane()?;
        let special = if broadcast {
            p.broadcast.as_ref()
        } else if request.dont_fragment {
            p.dont_fragment.as_ref()
        } else {
            None
        };
        Ok(special.cloned())
    }

    /// Waits up to `timeout` (at most [`table::RETENTION`]) for the reply
    /// to `(id, sequence)`, or for any reply when `None`. A reply the
    /// kernel received before the deadline counts, however late the reader
    /// gets to route it.
    pub async fn receive(
        &self,
        matching: Option<(u16, u16)>,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        self.check_open()?;
        let timeout = timeout.min(table::RETENTION);
        let deadline = Deadline::after(timeout);
        loop {
            if let Some(r) = self.queue.take(matching) {
                return Ok(r);
            }
            if !self.queue.wait_until(deadline.instant, matching).await {
                break;
            }
            self.check_open()?;
        }
        self.check_open()?;
        self.catch_up(&deadline, matching).await;
        self.queue.take(matching).ok_or(Error::Timeout(timeout))
    }

    /// Waits up to `timeout` (at most [`table::RETENTION`]) for at least
    /// one reply, then takes up to `max`.
    pub async fn receive_many(&self, max: usize, timeout: Duration) -> Result<Vec<Reply>, Error> {
        self.check_open()?;
        let timeout = timeout.min(table::RETENTION);
        let deadline = Deadline::after(timeout);
        let got = self.queue.take_many(max);
        if !got.is_empty() || max == 0 {
            return Ok(got);
        }
        if !self.queue.wait_until(deadline.instant, None).await {
            self.check_open()?;
            self.catch_up(&deadline, None).await;
        }
        let got = self.queue.take_many(max);
        if got.is_empty() {
            self.check_open()?;
            return Err(Error::Timeout(timeout));
        }
        Ok(got)
    }

    /// After a deadline: lets the reader route what the kernel received
    /// before it (it may be behind on a busy host), for a bounded time.
    async fn catch_up(&self, deadline: &Deadline, matching: Option<(u16, u16)>) {
        let give_up = tokio::time::Instant::now() + CATCH_UP_LIMIT;
        let Ok(plane) = self.plane() else { return };
        while !plane.caught_up(deadline.realtime_ns) {
            let now = tokio::time::Instant::now();
            if now >= give_up
                || self
                    .queue
                    .wait_until((now + Duration::from_millis(1)).min(give_up), matching)
                    .await
            {
                return;
            }
        }
    }

    /// Counters since open.
    pub fn stats(&self) -> SocketStats {
        SocketStats {
            sent: self.sent,
            received: self.queue.received.load(Ordering::Relaxed),
            queue_drops: self.queue.drops.load(Ordering::Relaxed),
            corrupted: self.queue.corrupted.load(Ordering::Relaxed),
            kernel_drops: self.plane().map_or(self.kernel_drops, |p| {
                p.stats.kernel_drops.load(Ordering::Relaxed)
            }),
        }
    }

    /// Closes the socket: queued replies are dropped, its kernel socket
    /// (if private) and its quota are given back, later calls fail.
    pub fn close(&mut self) {
        self.kernel_drops = self.stats().kernel_drops;
        self.queue.close();
        self.open = None;
    }
}

impl Drop for VirtualSocket {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// A receive deadline on both clocks: tokio's for waiting, realtime for
/// comparing with kernel receive stamps.
struct Deadline {
    instant: tokio::time::Instant,
    realtime_ns: u64,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline {
            instant: tokio::time::Instant::now() + timeout,
            realtime_ns: clock::realtime_ns()
                .saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)),
        }
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
