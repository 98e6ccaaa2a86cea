/*!
Wire-key allocation and reply routing.

Every request sent gets a fresh [`WireKey`] (identifier and sequence on the
wire) from a randomised space. The [`Table`] remembers who sent it, to
where, with which payload and when, and routes the answer back to the
owner's [`Queue`] with the guest's own id and sequence restored.

Bounds, all set by the host (never by a guest):
- a key is remembered for [`RETENTION`] after its send, so a late reply
  cannot land on a newer request; a receive timeout longer than that is cut;
- a request counts against its tenant's in-flight quota until it is
  answered, expires or its socket closes ([`Queue::start_request`]);
- an answered key is kept [`QUARANTINE`] longer (so a duplicate is
  recognised), then freed. Expiry and eviction pop from FIFOs: O(1)
  amortised, whatever the table holds, so the lock is never held long.
*/

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustc_hash::{FxBuildHasher, FxHasher};

use super::clock;
use super::queue::Queue;
use super::types::{Address, Reply, TimestampSource};

/// Identifier and sequence number as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireKey {
    /// ICMP identifier.
    pub ident: u16,
    /// ICMP sequence number.
    pub seq: u16,
}

/// Which part of the key the engine controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpace {
    /// Raw sockets: identifier and sequence, 2^32 keys.
    Full,
    /// Datagram sockets: the kernel owns the identifier; 2^16 sequences.
    SequenceOnly,
}

/// How long a request is remembered after its send.
pub const RETENTION: Duration = Duration::from_secs(60);

/// An answered key is not reused before this (late duplicates still match).
pub const QUARANTINE: Duration = Duration::from_secs(1);

/// Distinct responders remembered per request (for duplicate detection);
/// more (a broadcast on a big LAN, or spoofing) are delivered, not remembered.
const MAX_RESPONDERS: usize = 256;

/// A digest of a payload, to recognise the echo of our own request. Not a
/// keyed hash, nor needs to be: it tells a changed echo from the one sent,
/// and whoever could forge a reply could as well echo the payload.
pub fn digest(payload: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    payload.hash(&mut h);
    h.finish()
}

/// When a request left: written just before the send syscall (after any
/// lock or readiness wait), read by the reader to compute the RTT.
#[derive(Debug, Default)]
pub struct SendStamp {
    realtime_ns: AtomicU64,
    mono_ns: AtomicU64,
    /// The kernel's transmit stamp (realtime), when it reported one; 0 until.
    kernel_ns: AtomicU64,
}

impl SendStamp {
    /// Stamps now.
    pub fn mark(&self) {
        self.mono_ns.store(clock::mono_ns(), Ordering::Release);
        self.realtime_ns
            .store(clock::realtime_ns(), Ordering::Release);
    }

    /// The send time, ns since the Unix epoch (realtime clock).
    pub fn realtime_ns(&self) -> u64 {
        self.realtime_ns.load(Ordering::Acquire)
    }

    fn mono_ns(&self) -> u64 {
        self.mono_ns.load(Ordering::Acquire)
    }

    #[cfg(test)]
    fn set(&self, realtime_ns: u64, mono_ns: u64) {
        self.realtime_ns.store(realtime_ns, Ordering::Release);
        self.mono_ns.store(mono_ns, Ordering::Release);
    }
}

/// A request about to be sent, as the table needs it.
#[derive(Debug)]
pub struct Request {
    /// Where replies go.
    pub queue: Arc<Queue>,
    /// The guest's identifier.
    pub guest_id: u16,
    /// The guest's sequence number.
    pub guest_seq: u16,
    /// Destination of the request.
    pub destination: Address,
    /// Replies may come from anyone (a broadcast destination).
    pub broadcast: bool,
    /// Digest of the payload sent.
    pub payload_digest: u64,
    /// Its send time.
    pub sent: Arc<SendStamp>,
}

/// A request in the table.
#[derive(Debug)]
struct Entry {
    request: Request,
    /// Unique per insertion: stale FIFO records of a reused key are skipped.
    serial: u64,
    /// Still counted in flight against the tenant.
    live: bool,
    /// Sources that already answered (for duplicate detection).
    answered: Responders,
}

/// Who answered a request: nearly always its destination alone, which
/// takes one flag; others (routers, broadcast responders) go to a list, at
/// most [`MAX_RESPONDERS`]. (Every request in the table carries this.)
#[derive(Debug, Default)]
struct Responders {
    destination: bool,
    #[expect(
        clippy::box_collection,
        reason = "one word in every entry of the table, where a list takes three"
    )]
    others: Option<Box<Vec<IpAddr>>>,
}

impl Responders {
    /// Records `ip` answering a request to `destination`; whether it had
    /// answered before.
    fn record(&mut self, ip: IpAddr, destination: IpAddr) -> bool {
        if ip == destination {
            return std::mem::replace(&mut self.destination, true);
        }
        let others = self.others.get_or_insert_default();
        if others.contains(&ip) {
            return true;
        }
        if others.len() + usize::from(self.destination) < MAX_RESPONDERS {
            others.push(ip);
        }
        false
    }
}

/// What arrived, as the reader parsed it, before routing.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The key it answers.
    pub key: WireKey,
    /// Sender.
    pub source: Address,
    /// ICMP type and code.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// ICMP message length.
    pub len: usize,
    /// For echo replies: the echoed payload.
    pub payload: Option<&'a [u8]>,
    /// For errors: the quoted destination.
    pub quoted_destination: Option<IpAddr>,
    /// MTU of a too-big error.
    pub mtu: Option<u32>,
    /// TTL on arrival.
    pub ttl: Option<u8>,
    /// Kernel receive time.
    pub kernel_ns: Option<u64>,
}

/// Why an arrival was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No request with that key (another process's, or long expired).
    Unknown,
    /// The reply came from somewhere other than where the request went.
    WrongSource,
    /// The echoed payload differs from what was sent.
    Corrupted,
    /// The owner's queue is full.
    QueueFull,
    /// The owner closed its socket.
    Closed,
}

/// Why no key was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every key is held by a request in flight or answered too recently.
    Full,
    /// The sender's tenant has its quota of requests in flight.
    Quota(super::tenant::QuotaExceeded),
}

/// A FIFO record: which insertion of a key, and when.
#[derive(Debug, Clone, Copy)]
struct Mark {
    key: WireKey,
    serial: u64,
    at_ns: u64,
}

/// The key table of one plane.
#[derive(Debug)]
pub struct Table {
    space: KeySpace,
    capacity: usize,
    /// By key. The host draws every key at random (peers and guests only
    /// look keys up), so no one can aim collisions at a fast unkeyed hash.
    entries: HashMap<WireKey, Entry, FxBuildHasher>,
    /// Every insertion in send order, for expiry.
    sent: VecDeque<Mark>,
    /// Answered keys in answer order, for eviction.
    answered: VecDeque<Mark>,
    next_serial: u64,
}

impl Table {
    /// An empty table holding at most `capacity` keys.
    pub fn new(space: KeySpace, capacity: usize) -> Table {
        let capacity = match space {
            KeySpace::Full => capacity,
            KeySpace::SequenceOnly => capacity.min(1 << 16),
        };
        Table {
            space,
            capacity,
            entries: HashMap::default(),
            sent: VecDeque::new(),
            answered: VecDeque::new(),
            next_serial: 0,
        }
    }

    /// Keys currently reserved.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_current(&self, m: &Mark) -> bool {
        self.entries
            .get(&m.key)
            .is_some_and(|e| e.serial == m.serial)
    }

    fn remove(&mut self, key: &WireKey) {
        if let Some(e) = self.entries.remove(key)
            && e.live
        {
            e.request.queue.settle_request();
        }
    }

    /// Forgets requests sent more than [`RETENTION`] ago.
    fn expire(&mut self, now_ns: u64) {
        let retention = RETENTION.as_nanos() as u64;
        while let Some(m) = self.sent.front().copied() {
            if now_ns.saturating_sub(m.at_ns) < retention {
                break;
            }
            self.sent.pop_front();
            if self.is_current(&m) {
                self.remove(&m.key);
            }
        }
    }

    /// Drops the send-order records of keys already freed once they are
    /// most of the list (amortised O(1): the list never holds more than
    /// twice the table).
    fn compact_sent(&mut self) {
        if self.sent.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.sent
                .retain(|m| entries.get(&m.key).is_some_and(|e| e.serial == m.serial));
        }
    }

    /// Frees the key answered longest ago, if that was over `quarantine` ago.
    fn evict_answered(&mut self, now_ns: u64, quarantine: Duration) -> bool {
        let quarantine = quarantine.as_nanos() as u64;
        while let Some(m) = self.answered.front().copied() {
            if !self.is_current(&m) {
                self.answered.pop_front();
                continue;
            }
            if now_ns.saturating_sub(m.at_ns) < quarantine {
                return false;
            }
            self.answered.pop_front();
            self.remove(&m.key);
            return true;
        }
        false
    }

    /// Reserves a fresh random key for `request` and counts it in flight
    /// against its tenant.
    pub fn insert(&mut self, request: Request) -> Result<WireKey, Refused> {
        self.insert_at(request, clock::mono_ns())
    }

    fn insert_at(&mut self, request: Request, now: u64) -> Result<WireKey, Refused> {
        self.expire(now);
        // Answered keys only serve to spot duplicates: past the quarantine
        // they go, so the table holds what is in flight and what was
        // answered in the last second — not a minute of answers.
        while self.evict_answered(now, QUARANTINE) {}
        self.compact_sent();
        // Full: answered keys go even within their quarantine (a late
        // duplicate then counts as unknown) — only requests in flight,
        // bounded by the tenants' quotas together, may fill the table.
        if self.entries.len() >= self.capacity && !self.evict_answered(now, Duration::ZERO) {
            return Err(Refused::Full);
        }
        let key = self.free_key().ok_or(Refused::Full)?;
        request.queue.start_request().map_err(Refused::Quota)?;
        let serial = self.next_serial;
        self.next_serial += 1;
        self.entries.insert(
            key,
            Entry {
                request,
                serial,
                live: true,
                answered: Responders::default(),
            },
        );
        self.sent.push_back(Mark {
            key,
            serial,
            at_ns: now,
        });
        Ok(key)
    }

    fn free_key(&self) -> Option<WireKey> {
        let make = |r: u32| match self.space {
            KeySpace::Full => WireKey {
                ident: (r >> 16) as u16,
                seq: r as u16,
            },
            KeySpace::SequenceOnly => WireKey {
                ident: 0,
                seq: r as u16,
            },
        };
        for _ in 0..64 {
            let key = make(rand::random());
            if !self.entries.contains_key(&key) {
                return Some(key);
            }
        }
        // Nearly full (only the private datagram space gets here): walk
        // from a random start.
        let start: u32 = rand::random();
        (0..=u32::from(u16::MAX))
            .map(|i| make(start.wrapping_add(i)))
            .find(|k| !self.entries.contains_key(k))
    }

    /// Records the kernel's transmit stamp of the request holding `key`.
    pub fn stamp_sent(&mut self, key: WireKey, kernel_ns: u64) {
        let key = self.in_space(key);
        if let Some(e) = self.entries.get(&key) {
            e.request.sent.kernel_ns.store(kernel_ns, Ordering::Release);
        }
    }

    /// `key` as this table's key space holds it (datagram sockets: the
    /// kernel owns the identifier, only the sequence is ours).
    fn in_space(&self, key: WireKey) -> WireKey {
        match self.space {
            KeySpace::Full => key,
            KeySpace::SequenceOnly => WireKey {
                ident: 0,
                seq: key.seq,
            },
        }
    }

    /// Forgets a key whose packet never left (the send failed).
    pub fn release(&mut self, key: WireKey) {
        self.remove(&key);
    }

    /// Matches an arrival to its request and builds the guest's reply.
    pub fn route(&mut self, a: &Arrival<'_>) -> Result<(Arc<Queue>, Reply), Rejected> {
        let key = self.in_space(a.key);
        let entry = self.entries.get_mut(&key).ok_or(Rejected::Unknown)?;
        let r = &entry.request;
        // Echo replies come from the destination, errors quote it (RFC 1122
        // §3.2.2.6); broadcast replies come from anyone.
        let from_destination = match a.quoted_destination {
            Some(quoted) => quoted == r.destination.ip,
            None => r.broadcast || a.source.ip == r.destination.ip,
        };
        if !from_destination {
            return Err(Rejected::WrongSource);
        }
        if let Some(payload) = a.payload
            && digest(payload) != r.payload_digest
        {
            r.queue.corrupted.fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::Corrupted);
        }
        let duplicate = entry.answered.record(a.source.ip, r.destination.ip);
        let (rtt_ns, timestamp_source, received_at_ns) = rtt(&r.sent, a.kernel_ns);
        let reply = Reply {
            source: a.source,
            family: a.source.family(),
            id: r.guest_id,
            sequence: r.guest_seq,
            icmp_type: a.icmp_type,
            code: a.code,
            bytes_received: u32::try_from(a.len).unwrap_or(u32::MAX),
            received_at_ns,
            timestamp_source,
            rtt_ns,
            ttl: a.ttl,
            original_destination: a.quoted_destination.map(|ip| Address {
                ip,
                scope_id: r.destination.scope_id,
            }),
            mtu: a.mtu,
            duplicate,
        };
        let queue = Arc::clone(&r.queue);
        if entry.live {
            entry.live = false;
            let serial = entry.serial;
            queue.settle_request();
            self.answered.push_back(Mark {
                key,
                serial,
                at_ns: clock::mono_ns(),
            });
        }
        // Answered all the same: its socket is gone, so is the reply.
        if queue.is_closed() {
            return Err(Rejected::Closed);
        }
        Ok((queue, reply))
    }
}

/// The RTT from the kernel's stamps when they agree with the monotonic
/// clock: receive minus transmit when the kernel stamped both, receive
/// minus the host's send time otherwise; the monotonic measure when the
/// realtime clock stepped (or no stamp came).
fn rtt(sent: &SendStamp, kernel_ns: Option<u64>) -> (u64, TimestampSource, u64) {
    let mono = clock::mono_ns().saturating_sub(sent.mono_ns());
    // The kernel stamps before the reader wakes: a kernel RTT longer than
    // the monotonic one (plus slack for the clock reads) means the realtime
    // clock moved.
    let plausible = |rtt: u64| rtt <= mono + 1_000_000;
    if let Some(k) = kernel_ns {
        let transmit = sent.kernel_ns.load(Ordering::Acquire);
        if transmit != 0
            && let Some(rtt) = k.checked_sub(transmit)
            && plausible(rtt)
        {
            return (rtt, TimestampSource::KernelBoth, k);
        }
        if let Some(rtt) = k.checked_sub(sent.realtime_ns())
            && plausible(rtt)
        {
            return (rtt, TimestampSource::Kernel, k);
        }
    }
    (
        mono,
        TimestampSource::HostMonotonic,
        sent.realtime_ns() + mono,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::tenant::{Quota, QuotaExceeded, Tenant, TenantState};

    fn addr(s: &str) -> Address {
        Address::new(s.parse().unwrap())
    }

    fn tenant(in_flight: usize) -> Tenant {
        let quota = Quota {
            in_flight,
            ..Quota::default()
        };
        Tenant {
            state: Arc::new(TenantState::new("t", quota, Box::new(|_| {}))),
        }
    }

    fn queue(t: &Tenant) -> Arc<Queue> {
        Arc::new(Queue::new(1000, t.account(Arc::default())))
    }

    fn request(queue: &Arc<Queue>, id: u16, seq: u16, dst: &str, payload: &[u8]) -> Request {
        let sent = Arc::new(SendStamp::default());
        sent.mark();
        Request {
            queue: Arc::clone(queue),
            guest_id: id,
            guest_seq: seq,
            destination: addr(dst),
            broadcast: false,
            payload_digest: digest(payload),
            sent,
        }
    }

    fn arrival(key: WireKey, source: &str, payload: &'static [u8]) -> Arrival<'static> {
        Arrival {
            key,
            source: addr(source),
            icmp_type: 0,
            code: 0,
            len: 8 + payload.len(),
            payload: Some(payload),
            quoted_destination: None,
            mtu: None,
            ttl: Some(64),
            kernel_ns: None,
        }
    }

    #[test]
    fn colliding_guest_ids_route_to_their_owners() {
        let t = tenant(100);
        let mut table = Table::new(KeySpace::Full, 1000);
        let (a, b) = (queue(&t), queue(&t));
        let ka = table.insert(request(&a, 7, 1, "192.0.2.1", b"x")).unwrap();
        let kb = table.insert(request(&b, 7, 1, "192.0.2.1", b"x")).unwrap();
        assert_ne!(ka, kb);
        let (q, r) = table.route(&arrival(kb, "192.0.2.1", b"x")).unwrap();
        assert!(Arc::ptr_eq(&q, &b));
        assert_eq!((r.id, r.sequence, r.duplicate), (7, 1, false));
        let (q, _) = table.route(&arrival(ka, "192.0.2.1", b"x")).unwrap();
        assert!(Arc::ptr_eq(&q, &a));
    }

    #[test]
    fn checks_source_payload_and_duplicates() {
        let t = tenant(100);
        let mut table = Table::new(KeySpace::Full, 1000);
        let q = queue(&t);
        let k = table
            .insert(request(&q, 1, 2, "192.0.2.1", b"abc"))
            .unwrap();
        assert_eq!(
            table.route(&arrival(k, "192.0.2.66", b"abc")).unwrap_err(),
            Rejected::WrongSource
        );
        assert_eq!(
            table.route(&arrival(k, "192.0.2.1", b"abd")).unwrap_err(),
            Rejected::Corrupted
        );
        assert_eq!(q.corrupted.load(Ordering::Relaxed), 1);
        let (_, first) = table.route(&arrival(k, "192.0.2.1", b"abc")).unwrap();
        let (_, second) = table.route(&arrival(k, "192.0.2.1", b"abc")).unwrap();
        assert!(!first.duplicate && second.duplicate);
        let unknown = WireKey {
            ident: k.ident ^ 1,
            seq: k.seq,
        };
        assert_eq!(
            table
                .route(&arrival(unknown, "192.0.2.1", b"abc"))
                .unwrap_err(),
            Rejected::Unknown
        );
    }

    #[test]
    fn responders_are_remembered_each_once_up_to_the_cap() {
        let dst: IpAddr = "192.0.2.255".parse().unwrap();
        let mut r = Responders::default();
        assert!(!r.record(dst, dst));
        assert!(r.record(dst, dst));
        let router: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(!r.record(router, dst));
        assert!(r.record(router, dst));
        // A broadcast on a big LAN: the first MAX_RESPONDERS are
        // remembered, later ones delivered as firsts.
        for i in 0..2 * MAX_RESPONDERS as u32 {
            r.record(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), dst);
        }
        let remembered = usize::from(r.destination) + r.others.as_ref().map_or(0, |o| o.len());
        assert_eq!(remembered, MAX_RESPONDERS);
        assert!(r.record(router, dst));
    }

    #[test]
    fn errors_match_on_the_quoted_destination() {
        let t = tenant(100);
        let mut table = Table::new(KeySpace::Full, 10);
        let q = queue(&t);
        let k = table.insert(request(&q, 1, 1, "192.0.2.1", b"")).unwrap();
        let mut err = arrival(k, "198.51.100.1", b"");
        err.payload = None;
        err.icmp_type = 11;
        err.quoted_destination = Some("192.0.2.1".parse().unwrap());
        let (_, r) = table.route(&err).unwrap();
        assert_eq!(r.source, addr("198.51.100.1"));
        assert_eq!(r.original_destination, Some(addr("192.0.2.1")));
        err.quoted_destination = Some("192.0.2.2".parse().unwrap());
        assert_eq!(table.route(&err).unwrap_err(), Rejected::WrongSource);
    }

    #[test]
    fn sequence_space_is_exhausted_then_refuses() {
        let t = tenant(usize::MAX);
        let mut table = Table::new(KeySpace::SequenceOnly, usize::MAX);
        let q = queue(&t);
        for i in 0..=u16::MAX {
            let k = table.insert(request(&q, 0, i, "192.0.2.1", b""));
            assert!(k.is_ok(), "key {i}");
        }
        assert_eq!(
            table.insert(request(&q, 0, 0, "192.0.2.1", b"")),
            Err(Refused::Full)
        );
        assert_eq!(table.len(), 1 << 16);
    }

    #[test]
    fn a_tenant_at_its_quota_is_refused_alone() {
        let (greedy, polite) = (tenant(3), tenant(3));
        let mut table = Table::new(KeySpace::Full, 1000);
        let (g, p) = (queue(&greedy), queue(&polite));
        for seq in 0..3 {
            table.insert(request(&g, 1, seq, "192.0.2.9", b"")).unwrap();
        }
        assert_eq!(
            table.insert(request(&g, 1, 3, "192.0.2.9", b"")),
            Err(Refused::Quota(QuotaExceeded::InFlight(3)))
        );
        let k = table.insert(request(&p, 1, 0, "192.0.2.1", b"")).unwrap();
        // An answer gives the slot back at once.
        table.route(&arrival(k, "192.0.2.1", b"")).unwrap();
        assert_eq!(polite.in_flight(), 0);
        // Closing the greedy socket and opening another does not: its
        // three are in the table until answered or expired.
        g.close();
        let g2 = queue(&greedy);
        assert_eq!(
            table.insert(request(&g2, 1, 4, "192.0.2.9", b"")),
            Err(Refused::Quota(QuotaExceeded::InFlight(3)))
        );
        assert_eq!(greedy.in_flight(), 3);
    }

    #[test]
    fn only_requests_in_flight_can_fill_the_table() {
        let t = tenant(100);
        let mut table = Table::new(KeySpace::Full, 2);
        let q = queue(&t);
        let k = table.insert(request(&q, 1, 1, "192.0.2.1", b"")).unwrap();
        table.insert(request(&q, 1, 2, "192.0.2.1", b"")).unwrap();
        // Full, nothing answered: refused.
        assert_eq!(
            table.insert(request(&q, 1, 3, "192.0.2.1", b"")),
            Err(Refused::Full)
        );
        // An answered key stays for its quarantine (duplicates match)...
        table.route(&arrival(k, "192.0.2.1", b"")).unwrap();
        let (_, again) = table.route(&arrival(k, "192.0.2.1", b"")).unwrap();
        assert!(again.duplicate);
        // ...unless the table is full: then it makes room at once.
        table.insert(request(&q, 1, 3, "192.0.2.1", b"")).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.route(&arrival(k, "192.0.2.1", b"")).unwrap_err(),
            Rejected::Unknown
        );
    }

    #[test]
    fn records_of_freed_keys_do_not_pile_up() {
        let t = tenant(100);
        let mut table = Table::new(KeySpace::Full, 1 << 20);
        let q = queue(&t);
        let mut now = clock::mono_ns();
        for seq in 0..20_000u16 {
            let k = table
                .insert_at(request(&q, 1, seq, "192.0.2.1", b""), now)
                .unwrap();
            table.route(&arrival(k, "192.0.2.1", b"")).unwrap();
            now += QUARANTINE.as_nanos() as u64;
        }
        assert!(table.len() <= 2, "{}", table.len());
        assert!(
            table.sent.len() <= 2 * table.len() + 1025,
            "{}",
            table.sent.len()
        );
        assert!(table.answered.len() <= 2, "{}", table.answered.len());
    }

    #[test]
    fn expired_requests_leave_and_give_their_slot_back() {
        let t = tenant(1);
        let mut table = Table::new(KeySpace::Full, 10);
        let q = queue(&t);
        table.insert(request(&q, 1, 1, "192.0.2.9", b"")).unwrap();
        assert!(table.insert(request(&q, 1, 2, "192.0.2.9", b"")).is_err());
        // Only the expiry of the first makes room for the second.
        let later = clock::mono_ns() + RETENTION.as_nanos() as u64;
        table
            .insert_at(request(&q, 1, 2, "192.0.2.9", b""), later)
            .unwrap();
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn kernel_stamp_used_unless_the_clock_stepped() {
        let s = SendStamp::default();
        s.mark();
        std::thread::sleep(Duration::from_millis(5));
        s.set(1_000_000_000, s.mono_ns());
        let (rtt_ns, src, _) = rtt(&s, Some(1_003_000_000));
        assert_eq!((rtt_ns, src), (3_000_000, TimestampSource::Kernel));
        // Realtime went backwards: the kernel stamp is before the send.
        let (rtt_ns, src, _) = rtt(&s, Some(900_000_000));
        assert_eq!(src, TimestampSource::HostMonotonic);
        assert!(rtt_ns >= 5_000_000);
        // Realtime jumped forward an hour.
        let (_, src, _) = rtt(&s, Some(3_601_000_000_000));
        assert_eq!(src, TimestampSource::HostMonotonic);
    }
}
