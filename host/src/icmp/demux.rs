//! Wire-id allocation and reply routing.
//!
//! Every request sent gets a fresh [`WireKey`] (identifier and sequence on
//! the wire) from a randomised space. The [`Table`] remembers who sent it,
//! to where, with which payload and when, and routes the answer back to the
//! owner's [`Queue`] with the guest's own id and sequence restored. Keys
//! stay reserved ("quarantined") for longer than any receive timeout used so
//! far, so a late reply can never land on a newer request.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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

/// A digest of a payload, to recognise the echo of our own request.
pub fn digest(payload: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// One request in flight (or recently answered).
#[derive(Debug)]
pub struct Entry {
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
    /// Send time, ns since the Unix epoch (realtime clock).
    pub sent_realtime_ns: u64,
    /// Send time on the monotonic clock.
    pub sent_mono: Instant,
    /// Sources that already answered (for duplicate detection).
    answered: Vec<IpAddr>,
}

impl Entry {
    /// A new entry stamped now.
    pub fn new(
        queue: Arc<Queue>,
        guest_id: u16,
        guest_seq: u16,
        destination: Address,
        broadcast: bool,
        payload: &[u8],
    ) -> Entry {
        Entry {
            queue,
            guest_id,
            guest_seq,
            destination,
            broadcast,
            payload_digest: digest(payload),
            sent_realtime_ns: realtime_ns(),
            sent_mono: Instant::now(),
            answered: Vec::new(),
        }
    }
}

/// Nanoseconds since the Unix epoch on the realtime clock.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
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

/// The key table of one plane.
#[derive(Debug)]
pub struct Table {
    space: KeySpace,
    capacity: usize,
    entries: HashMap<WireKey, Entry>,
    /// Keys in send order, for expiry.
    order: VecDeque<WireKey>,
    /// How long keys stay reserved after their send.
    retention: Duration,
}

/// Keys are kept this much longer than the longest timeout seen.
const QUARANTINE_MARGIN: Duration = Duration::from_secs(1);

/// How long a key stays reserved after its send, unless a longer receive
/// timeout is seen: a plugin's own timeouts are per call (multiping waits in
/// short slices), so the host keeps keys long enough for any sane timeout.
const DEFAULT_RETENTION: Duration = Duration::from_secs(60);

/// The longest a request is remembered: receive timeouts beyond it are cut.
pub const MAX_RETENTION: Duration = DEFAULT_RETENTION;

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
            entries: HashMap::new(),
            order: VecDeque::new(),
            retention: DEFAULT_RETENTION,
        }
    }

    /// Keys currently reserved.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// A receive will wait up to `timeout`: keep keys at least that long.
    pub fn note_timeout(&mut self, timeout: Duration) {
        self.retention = self
            .retention
            .max(timeout.saturating_add(QUARANTINE_MARGIN));
    }

    fn expire(&mut self, now: Instant) {
        while let Some(key) = self.order.front() {
            match self.entries.get(key) {
                Some(e) if now.duration_since(e.sent_mono) < self.retention => break,
                Some(_) => {
                    self.entries.remove(key);
                    self.order.pop_front();
                }
                None => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// When full, frees the oldest key that was answered more than the
    /// quarantine margin ago (it then only served to spot duplicates).
    fn evict_answered(&mut self, now: Instant) -> bool {
        let found = self.order.iter().position(|k| {
            self.entries.get(k).is_some_and(|e| {
                !e.answered.is_empty() && now.duration_since(e.sent_mono) > QUARANTINE_MARGIN
            })
        });
        match found.and_then(|at| self.order.remove(at)) {
            Some(key) => {
                self.entries.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Reserves a fresh random key for `entry`; `None` when the space is full.
    pub fn insert(&mut self, entry: Entry) -> Option<WireKey> {
        self.expire(entry.sent_mono);
        if self.entries.len() >= self.capacity && !self.evict_answered(entry.sent_mono) {
            return None;
        }
        let key = self.free_key()?;
        self.entries.insert(key, entry);
        self.order.push_back(key);
        Some(key)
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
        // Nearly full (datagram space): walk from a random start.
        let start: u32 = rand::random();
        (0..=u32::from(u16::MAX))
            .map(|i| make(start.wrapping_add(i)))
            .find(|k| !self.entries.contains_key(k))
    }

    /// Forgets a key whose packet never left (the send failed).
    pub fn release(&mut self, key: WireKey) {
        self.entries.remove(&key);
    }

    /// Matches an arrival to its request and builds the guest's reply.
    pub fn route(&mut self, a: &Arrival<'_>) -> Result<(Arc<Queue>, Reply), Rejected> {
        let key = match self.space {
            KeySpace::Full => a.key,
            KeySpace::SequenceOnly => WireKey {
                ident: 0,
                seq: a.key.seq,
            },
        };
        let entry = self.entries.get_mut(&key).ok_or(Rejected::Unknown)?;
        // Echo replies come from the destination, errors quote it (RFC 1122
        // §3.2.2.6); broadcast replies come from anyone.
        let from_destination = match a.quoted_destination {
            Some(quoted) => quoted == entry.destination.ip,
            None => entry.broadcast || a.source.ip == entry.destination.ip,
        };
        if !from_destination {
            return Err(Rejected::WrongSource);
        }
        if let Some(payload) = a.payload
            && digest(payload) != entry.payload_digest
        {
            entry.queue.corrupted.fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::Corrupted);
        }
        if entry.queue.is_closed() {
            return Err(Rejected::Closed);
        }
        let duplicate = entry.answered.contains(&a.source.ip);
        if !duplicate {
            entry.answered.push(a.source.ip);
        }
        let (rtt_ns, timestamp_source, received_at_ns) = rtt(entry, a.kernel_ns);
        let reply = Reply {
            source: a.source,
            family: a.source.family(),
            id: entry.guest_id,
            sequence: entry.guest_seq,
            icmp_type: a.icmp_type,
            code: a.code,
            bytes_received: a.len as u32,
            received_at_ns,
            timestamp_source,
            rtt_ns,
            ttl: a.ttl,
            original_destination: a.quoted_destination.map(|ip| Address {
                ip,
                scope_id: entry.destination.scope_id,
            }),
            mtu: a.mtu,
            duplicate,
        };
        Ok((Arc::clone(&entry.queue), reply))
    }
}

/// The RTT from the kernel's receive stamp when it agrees with the
/// monotonic clock; the monotonic measure when the realtime clock stepped
/// (or no stamp came).
fn rtt(entry: &Entry, kernel_ns: Option<u64>) -> (u64, TimestampSource, u64) {
    let mono = entry.sent_mono.elapsed().as_nanos() as u64;
    if let Some(k) = kernel_ns
        && let Some(rtt) = k.checked_sub(entry.sent_realtime_ns)
        // The kernel stamps before the reader wakes: a kernel RTT longer
        // than the monotonic one (plus slack for the two clock reads) means
        // the realtime clock moved.
        && rtt <= mono + 1_000_000
    {
        return (rtt, TimestampSource::Kernel, k);
    }
    (
        mono,
        TimestampSource::HostMonotonic,
        entry.sent_realtime_ns + mono,
    )
}

/// A virtual socket's inbox: bounded, never blocks the reader.
#[derive(Debug)]
pub struct Queue {
    items: Mutex<VecDeque<Reply>>,
    notify: Notify,
    capacity: usize,
    closed: AtomicBool,
    /// Messages delivered.
    pub received: AtomicU64,
    /// Messages dropped because the queue was full.
    pub drops: AtomicU64,
    /// Echo replies with a foreign payload.
    pub corrupted: AtomicU64,
}

impl Queue {
    /// An empty queue of `capacity` messages.
    pub fn new(capacity: usize) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            capacity,
            closed: AtomicBool::new(false),
            received: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
        }
    }

    /// Adds a reply, or drops and counts it when full.
    pub fn push(&self, reply: Reply) -> Result<(), Rejected> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() >= self.capacity {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::QueueFull);
        }
        items.push_back(reply);
        self.received.fetch_add(1, Ordering::Relaxed);
        drop(items);
        self.notify.notify_waiters();
        Ok(())
    }

    /// Takes the first reply matching `matching` (any when `None`).
    pub fn take(&self, matching: Option<(u16, u16)>) -> Option<Reply> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let at = items
            .iter()
            .position(|r| matching.is_none_or(|(id, seq)| r.id == id && r.sequence == seq))?;
        items.remove(at)
    }

    /// Takes up to `max` replies.
    pub fn take_many(&self, max: usize) -> Vec<Reply> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let n = max.min(items.len());
        items.drain(..n).collect()
    }

    /// Waits until `take` may find something new, or `deadline` passes.
    /// Returns false on timeout.
    pub async fn wait_until(
        &self,
        deadline: tokio::time::Instant,
        matching: Option<(u16, u16)>,
    ) -> bool {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
                if items
                    .iter()
                    .any(|r| matching.is_none_or(|(id, seq)| r.id == id && r.sequence == seq))
                {
                    return true;
                }
            }
            // A deadline already reached (a zero timeout: "what is queued?")
            // returns now; the timer would round it up to its next tick (1 ms).
            if deadline <= tokio::time::Instant::now() {
                return false;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops deliveries and wakes waiters.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.notify.notify_waiters();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        Address::new(s.parse().unwrap())
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
        let mut table = Table::new(KeySpace::Full, 1000);
        let (a, b) = (Arc::new(Queue::new(8)), Arc::new(Queue::new(8)));
        let ka = table
            .insert(Entry::new(a.clone(), 7, 1, addr("192.0.2.1"), false, b"x"))
            .unwrap();
        let kb = table
            .insert(Entry::new(b.clone(), 7, 1, addr("192.0.2.1"), false, b"x"))
            .unwrap();
        assert_ne!(ka, kb);
        let (q, r) = table.route(&arrival(kb, "192.0.2.1", b"x")).unwrap();
        assert!(Arc::ptr_eq(&q, &b));
        assert_eq!((r.id, r.sequence, r.duplicate), (7, 1, false));
        let (q, _) = table.route(&arrival(ka, "192.0.2.1", b"x")).unwrap();
        assert!(Arc::ptr_eq(&q, &a));
    }

    #[test]
    fn checks_source_payload_and_duplicates() {
        let mut table = Table::new(KeySpace::Full, 1000);
        let q = Arc::new(Queue::new(8));
        let k = table
            .insert(Entry::new(
                q.clone(),
                1,
                2,
                addr("192.0.2.1"),
                false,
                b"abc",
            ))
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
    fn errors_match_on_the_quoted_destination() {
        let mut table = Table::new(KeySpace::Full, 10);
        let q = Arc::new(Queue::new(8));
        let k = table
            .insert(Entry::new(q, 1, 1, addr("192.0.2.1"), false, b""))
            .unwrap();
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
        let mut table = Table::new(KeySpace::SequenceOnly, usize::MAX);
        let q = Arc::new(Queue::new(1));
        for i in 0..=u16::MAX {
            let k = table.insert(Entry::new(q.clone(), 0, i, addr("192.0.2.1"), false, b""));
            assert!(k.is_some(), "key {i}");
        }
        assert!(
            table
                .insert(Entry::new(q, 0, 0, addr("192.0.2.1"), false, b""))
                .is_none()
        );
        assert_eq!(table.len(), 1 << 16);
    }

    #[test]
    fn full_table_reuses_answered_keys_first() {
        let mut table = Table::new(KeySpace::Full, 2);
        let q = Arc::new(Queue::new(8));
        let old = Instant::now() - Duration::from_secs(5);
        let mut answered = Entry::new(q.clone(), 1, 1, addr("192.0.2.1"), false, b"");
        answered.sent_mono = old;
        let k = table.insert(answered).unwrap();
        let mut pending = Entry::new(q.clone(), 1, 2, addr("192.0.2.1"), false, b"");
        pending.sent_mono = old;
        table.insert(pending).unwrap();
        // Full, nothing answered yet: refused.
        assert!(
            table
                .insert(Entry::new(q.clone(), 1, 3, addr("192.0.2.1"), false, b""))
                .is_none()
        );
        table.route(&arrival(k, "192.0.2.1", b"")).unwrap();
        // Full, but one key was answered long ago: it makes room.
        assert!(
            table
                .insert(Entry::new(q, 1, 3, addr("192.0.2.1"), false, b""))
                .is_some()
        );
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn kernel_stamp_used_unless_the_clock_stepped() {
        let q = Arc::new(Queue::new(1));
        let mut e = Entry::new(q, 0, 0, addr("192.0.2.1"), false, b"");
        e.sent_mono = Instant::now() - Duration::from_millis(5);
        e.sent_realtime_ns = 1_000_000_000;
        let (rtt_ns, src, _) = rtt(&e, Some(1_003_000_000));
        assert_eq!((rtt_ns, src), (3_000_000, TimestampSource::Kernel));
        // Realtime went backwards: the kernel stamp is before the send.
        let (rtt_ns, src, _) = rtt(&e, Some(900_000_000));
        assert_eq!(src, TimestampSource::HostMonotonic);
        assert!(rtt_ns >= 5_000_000);
        // Realtime jumped forward an hour.
        let (_, src, _) = rtt(&e, Some(3_601_000_000_000));
        assert_eq!(src, TimestampSource::HostMonotonic);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let q = Queue::new(1);
        let r = |seq| Reply {
            source: addr("192.0.2.1"),
            family: super::super::Family::V4,
            id: 1,
            sequence: seq,
            icmp_type: 0,
            code: 0,
            bytes_received: 8,
            received_at_ns: 0,
            timestamp_source: TimestampSource::Kernel,
            rtt_ns: 0,
            ttl: None,
            original_destination: None,
            mtu: None,
            duplicate: false,
        };
        q.push(r(1)).unwrap();
        assert_eq!(q.push(r(2)).unwrap_err(), Rejected::QueueFull);
        assert_eq!(q.drops.load(Ordering::Relaxed), 1);
        assert_eq!(q.take(Some((1, 2))), None);
        assert_eq!(q.take(Some((1, 1))).map(|r| r.sequence), Some(1));
    }
}
