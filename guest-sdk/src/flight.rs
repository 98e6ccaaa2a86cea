/*!
"Send these requests and tell me about each answer as it happens": the
engine under `ping`, `multiping` and `traceroute`, for probes of your own.

A [`Flight`] sends queued [`EchoRequest`]s over one socket per family —
paced (a least spacing between sends, and per destination), windowed (a
most unanswered at once), in batches of `send-many` — and hands back one
[`FlightEvent`] per reply, duplicate, timeout or failed send, in the order
they happen. It keeps to the host's rules by itself: it never sends faster
than the host's `max_pps` nor more per call than its batch limits.

Timeouts are per request, measured from that request's own send time as
the host reports it (a send may wait inside the host under a rate limit),
and judged by the reply's kernel-stamped RTT: a reply that arrived within
the timeout counts, however late the plugin gets to see it.

An overlapped flight ([`Flight::overlapped`]) begins each batch that
nothing paces ([`Socket::start_sending`]) before it settles the one
before, so that the host sends while the probe works on what came back:
a sweep's way to use both cores. Its events are the same.

ICMP Redirect and Source Quench are never an answer: the flight passes
them on as progress events, which the host shows as notes (`From
192.0.2.1 icmp_seq=1 Redirect Host`, `"note": true` in NDJSON), and keeps
waiting for the real reply, as iputils does.

```
use std::time::Duration;
use icmp_host_sdk::sim::{Response, SimNetwork};
use icmp_host_sdk::{EchoRequest, Fate, Flight, FlightOptions};

let mut net = SimNetwork::new(|req| match req.sequence {
    2 => vec![],                                    // lost
    _ => vec![Response::echo(Duration::from_millis(3))],
});
let options = FlightOptions { timeout: Duration::from_secs(1), ..FlightOptions::default() };
let mut flight = Flight::new(&mut net, options);
for (seq, last) in [(1, 1), (2, 2), (3, 3)] {
    flight.push(EchoRequest::new(format!("192.0.2.{last}").parse().unwrap(), 7, seq));
}
let mut seen = Vec::new();
while let Some(event) = flight.next_event()? {
    seen.push(match event.fate {
        Fate::Reply(r) => format!("{} in {:?}", r.source, r.rtt),
        Fate::Timeout => format!("{} timed out", event.destination),
        other => format!("{other:?}"),
    });
}
assert_eq!(seen, ["192.0.2.1 in 3ms", "192.0.2.3 in 3ms", "192.0.2.2 timed out"]);
# Ok::<(), icmp_host_sdk::Error>(())
```
*/

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use crate::error::Error;
use crate::icmp::{EchoRequest, Mode, OpenOptions, Reply};
use crate::network::{Network, Socket};
use crate::progress::Event;
use crate::{Address, Family};

/// How a [`Flight`] sends and waits.
#[derive(Debug, Clone, PartialEq)]
pub struct FlightOptions {
    /// How long each request waits for its answer, from its own send (2 s).
    pub timeout: Duration,
    /// Least time between two sends over all requests (`1 / rate`);
    /// `ZERO` sends as fast as the host allows. The host's `max_pps` is
    /// kept to in any case.
    pub spacing: Duration,
    /// Least time between two sends to the same destination (fping's `-p`,
    /// ping's `-i`); `ZERO` for none.
    pub per_destination: Duration,
    /// Most requests unanswered at once (1 makes a stop-and-wait ping).
    pub window: usize,
    /// Broadcast: enable it on the sockets, and let every request listen
    /// for its whole timeout, reporting each responder's reply.
    pub broadcast: bool,
    /// Remember answered requests for as long as the flight lasts, to
    /// report their duplicates ([`Fate::Duplicate`]), as ping does. Off, a
    /// request is forgotten once settled, and a duplicate is dropped like
    /// a late reply: a sweep of a /16 that has no use for them then keeps
    /// no book of 65,536 answers (true).
    pub duplicates: bool,
    /// Source address; used by the socket of its own family only.
    pub source: Option<Address>,
    /// Raw, datagram or automatic sockets.
    pub mode: Mode,
    /// Interface to send through.
    pub interface: Option<String>,
}

impl Default for FlightOptions {
    fn default() -> Self {
        FlightOptions {
            timeout: Duration::from_secs(2),
            spacing: Duration::ZERO,
            per_destination: Duration::ZERO,
            window: usize::MAX,
            broadcast: false,
            duplicates: true,
            source: None,
            mode: Mode::Auto,
            interface: None,
        }
    }
}

/// What became of a request (or what else came back for it).
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// An answer within the timeout: an Echo Reply, or an ICMP error quoting
    /// the request. Settles the request (unless broadcast: then every
    /// responder's reply is reported until the timeout).
    Reply(Reply),
    /// Another copy of an answer already reported.
    Duplicate(Reply),
    /// Nothing in time. Requests still out when the run is interrupted end
    /// this way too (see [`Flight::interrupted`]).
    Timeout,
    /// The request could not be sent (see [`Error::is_per_request`]).
    Failed(Error),
}

/// One thing that happened to a request of a [`Flight`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlightEvent {
    /// The request's number: 0 for the first pushed (or fed), and so on.
    pub index: usize,
    /// Where the request went.
    pub destination: Address,
    /// The request's identifier.
    pub id: u16,
    /// The request's sequence number.
    pub sequence: u16,
    /// When it was sent, on the [`Network::now`] timeline (`None` if never).
    pub sent_at: Option<Duration>,
    /// What happened.
    pub fate: Fate,
}

/// Replies are matched by family, identifier and sequence, packed into
/// one number: one multiply to hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key(u64);

impl Key {
    fn new(family: Family, id: u16, sequence: u16) -> Key {
        let family = match family {
            Family::V4 => 0,
            Family::V6 => 1,
        };
        Key(family << 32 | u64::from(id) << 16 | u64::from(sequence))
    }

    fn of(request: &EchoRequest) -> Key {
        Key::new(request.destination.family(), request.id, request.sequence)
    }

    fn id(self) -> u16 {
        (self.0 >> 16) as u16
    }

    fn sequence(self) -> u16 {
        self.0 as u16
    }
}

/// Maps keyed by our own numbers need no protection from chosen
/// collisions: a multiplicative hash is enough, and small.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<Mix>>;
type Set<K> = HashSet<K, BuildHasherDefault<Mix>>;

/// FxHash's mixing step.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    /// The product's high bits are its well-mixed ones; hash tables index
    /// by the low bits (of a 32-bit `usize` in wasm): rotate them down. The
    /// low bits alone depend only on the inputs' low bits — 65,536
    /// addresses of a /16 would share them, and one bucket chain.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    destination: Address,
    /// `None` for a request that was never sent.
    sent_at: Option<Duration>,
    deadline: Duration,
    /// Broadcast: some reply came already.
    answered: bool,
}

impl Slot {
    fn unsent(index: usize, destination: Address) -> Slot {
        Slot {
            index,
            destination,
            sent_at: None,
            deadline: Duration::ZERO,
            answered: false,
        }
    }
}

/// Requests in flight over one socket per family; see the [module
/// docs](self).
pub struct Flight<'n, N: Network, const OVERLAP: bool = false> {
    net: &'n mut N,
    options: FlightOptions,
    sockets: Vec<(Family, N::Socket)>,
    queue: VecDeque<(usize, EchoRequest)>,
    feed: Option<Box<dyn Iterator<Item = EchoRequest> + 'n>>,
    next_index: usize,
    in_flight: Map<Key, Slot>,
    /// Keys (and indexes) in send order, hence in deadline order (one
    /// timeout for all); entries of settled requests are skipped.
    order: VecDeque<(Key, usize)>,
    /// Answered requests (index and destination), for their duplicates.
    answered: Map<Key, (usize, Address)>,
    last_to: Map<IpAddr, Duration>,
    /// `last_to` is pruned when it has grown to this.
    prune_at: usize,
    /// Scratch sets of [`Flight::due`], kept for their room.
    batch_to: Set<IpAddr>,
    batch_keys: Set<Key>,
    next_send: Duration,
    spacing: Duration,
    max_batch: usize,
    max_batch_bytes: usize,
    events: VecDeque<FlightEvent>,
    /// Batches the host is sending ([`Socket::start_sending`]), earliest
    /// first: their requests, in flight already (their send times
    /// unknown), and their indexes; results to come.
    sending: VecDeque<(Vec<usize>, Vec<EchoRequest>)>,
    /// Messages for requests of those batches, taken in once they are
    /// settled (their events carry the real send time).
    held: Vec<Reply>,
    sent: u64,
    interrupted: bool,
    done: bool,
}

/// How much lateness the pacer makes up for: a late wake-up sends a small
/// batch, never a burst.
const CATCH_UP: Duration = Duration::from_millis(10);

/// With sockets of both families, how long one may wait while the other
/// might have answers.
const SHARED_WAIT: Duration = Duration::from_millis(10);

/// Size of the per-destination books at which they are first pruned.
const PRUNE_FROM: usize = 4096;

impl<'n, N: Network> Flight<'n, N> {
    /// A flight over `net`; sockets are opened as requests of each family
    /// come. Reads the host's limits once.
    pub fn new(net: &'n mut N, options: FlightOptions) -> Flight<'n, N> {
        Flight::with(net, options)
    }
}

impl<'n, N: Network> Flight<'n, N, true> {
    /// A flight that, when nothing paces it (no `spacing`, no
    /// `per_destination`), begins each batch ([`Socket::start_sending`])
    /// before it settles the one before: the host sends while the probe
    /// works on what came back. For sweeps; a probe that does not use it
    /// carries none of its code.
    pub fn overlapped(net: &'n mut N, options: FlightOptions) -> Flight<'n, N, true> {
        Flight::with(net, options)
    }
}

impl<'n, N: Network, const OVERLAP: bool> Flight<'n, N, OVERLAP> {
    fn with(net: &'n mut N, options: FlightOptions) -> Flight<'n, N, OVERLAP> {
        let limits = net.limits();
        let spacing = options.spacing.max(limits.min_spacing());
        let start = net.now();
        Flight {
            net,
            sockets: Vec::new(),
            queue: VecDeque::new(),
            feed: None,
            next_index: 0,
            in_flight: Map::default(),
            order: VecDeque::new(),
            answered: Map::default(),
            last_to: Map::default(),
            prune_at: PRUNE_FROM,
            batch_to: Set::default(),
            batch_keys: Set::default(),
            next_send: start,
            spacing,
            options: FlightOptions {
                window: options.window.max(1),
                ..options
            },
            max_batch: limits.max_batch.clamp(1, 1024) as usize,
            max_batch_bytes: limits.max_batch_bytes.max(1) as usize,
            events: VecDeque::new(),
            sending: VecDeque::new(),
            held: Vec::new(),
            sent: 0,
            interrupted: false,
            done: false,
        }
    }

    /// Queues a request; returns its index. A request whose (id, sequence)
    /// is still in flight waits until that one is settled.
    pub fn push(&mut self, request: EchoRequest) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        self.queue.push_back((index, request));
        self.done = false;
        index
    }

    /// Takes requests from `requests` as room comes, after the queued ones:
    /// a sweep of a /8 need not exist in memory at once. Indexes continue
    /// from the pushed ones, in order.
    pub fn feed(&mut self, requests: impl IntoIterator<Item = EchoRequest> + 'n) {
        self.feed = Some(Box::new(requests.into_iter()));
        self.done = false;
    }

    /// Drops queued (not yet sent) requests for which `drop` says so.
    pub fn cancel(&mut self, mut drop: impl FnMut(usize, &EchoRequest) -> bool) {
        self.queue.retain(|(i, r)| !drop(*i, r));
    }

    /// Requests queued, not yet sent (not counting the feed).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests sent and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Requests handed to the kernel so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether the run was interrupted (Ctrl-C, wall clock): the flight
    /// then ends, its requests still out reported as timeouts.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The network, to report progress or look at the clock between events.
    pub fn net(&mut self) -> &mut N {
        self.net
    }

    /// The next thing that happens; `None` when every request is settled
    /// (or the run was interrupted). Waits as long as needed, no longer.
    /// `Err` for a failure of the whole flight (a socket that cannot be
    /// opened or fails).
    pub fn next_event(&mut self) -> Result<Option<FlightEvent>, Error> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            self.refill();
            if self.queue.is_empty() && self.in_flight.is_empty() {
                // (A batch still being sent may fail yet.)
                if OVERLAP {
                    self.settle_sending()?;
                }
                // Duplicates already queued still count, as in ping.
                self.receive(Duration::ZERO)?;
                self.done = true;
                continue;
            }
            let now = self.net.now();
            let (batch, send_at) = self.due(now);
            if batch > 0 {
                self.send(batch)?;
                // Take in what already arrived after every batch: the
                // host's queues are bounded, a long burst must not fill them.
                self.receive(Duration::ZERO)?;
                // Nor may the send order grow with the burst: the settled
                // requests at its head go.
                self.next_deadline();
                continue;
            }
            // Nothing to send now: before any wait or expiry, the batches
            // the host is sending get their real send times (and failures).
            if OVERLAP {
                self.settle_sending()?;
            }
            let expiry = self.next_deadline();
            if expiry.is_some_and(|t| t <= now) {
                // Whatever arrived in time is taken before anything expires.
                self.receive(Duration::ZERO)?;
                self.expire(now);
                continue;
            }
            let wake = match (expiry, send_at) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(now),
            };
            self.receive(wake.saturating_sub(now))?;
        }
    }

    /// Moves requests from the feed into the queue, a batch ahead.
    fn refill(&mut self) {
        while self.queue.len() < self.max_batch {
            let Some(feed) = self.feed.as_mut() else {
                return;
            };
            match feed.next() {
                Some(r) => {
                    let index = self.next_index;
                    self.next_index += 1;
                    self.queue.push_back((index, r));
                }
                None => self.feed = None,
            }
        }
    }

    /// How many queued requests may go now (all of one family, from the
    /// head), or else when the head may go.
    fn due(&mut self, now: Duration) -> (usize, Option<Duration>) {
        let Some((_, head)) = self.queue.front() else {
            return (0, None);
        };
        let family = head.destination.family();
        let mut room = self.options.window.saturating_sub(self.in_flight.len());
        if room == 0 {
            return (0, None); // an answer or a timeout frees room
        }
        let mut at = now;
        if !self.spacing.is_zero() {
            if now < self.next_send {
                return (0, Some(self.next_send));
            }
            self.next_send = self.next_send.max(now.saturating_sub(CATCH_UP));
            let behind = nanos(now - self.next_send) / nanos(self.spacing).max(1);
            room = room.min(usize::try_from(behind).map_or(usize::MAX, |b| b.saturating_add(1)));
        }
        let (mut count, mut bytes) = (0, 0);
        // Sets, not lists: a batch holds up to a thousand requests.
        self.batch_to.clear();
        self.batch_keys.clear();
        for (_, r) in self.queue.iter().take(room.min(self.max_batch)) {
            let key = Key::of(r);
            if r.destination.family() != family
                || self.in_flight.contains_key(&key)
                || !self.batch_keys.insert(key)
            {
                break;
            }
            if !self.options.per_destination.is_zero() {
                let ip = r.destination.ip;
                if let Some(&last) = self.last_to.get(&ip)
                    && last + self.options.per_destination > now
                {
                    at = last + self.options.per_destination;
                    break;
                }
                if !self.batch_to.insert(ip) {
                    break;
                }
            }
            bytes += r.payload_len();
            if count > 0 && bytes > self.max_batch_bytes {
                break;
            }
            count += 1;
        }
        (count, (count == 0 && at > now).then_some(at))
    }

    /// Sends the first `count` queued requests; an overlapped flight only
    /// begins sending them, when nothing paces it (see `track`).
    fn send(&mut self, count: usize) -> Result<(), Error> {
        let (indexes, requests): (Vec<usize>, Vec<EchoRequest>) =
            (0..count).filter_map(|_| self.queue.pop_front()).unzip();
        // Overlapped only when no pacing needs the sends counted at once.
        let overlap = OVERLAP && self.spacing.is_zero() && self.options.per_destination.is_zero();
        let socket = self.socket(requests[0].destination.family())?;
        let results = if overlap {
            match socket.start_sending(&requests) {
                Ok(None) => return self.track(indexes, requests),
                begun => begun.map(Option::unwrap_or_default),
            }
        } else {
            socket.send_many(&requests)
        };
        let results = each_request(&requests, results);
        self.settle::<false>(indexes, &requests, results);
        if self.interrupted {
            self.interrupt();
        }
        Ok(())
    }

    /// A batch the host has begun sending: in flight from now, then the
    /// one before it (if any) is settled, so that the host always has the
    /// next one in hand.
    fn track(&mut self, indexes: Vec<usize>, requests: Vec<EchoRequest>) -> Result<(), Error> {
        // Replies may come before the results (they wait in `held`), and
        // the deadline is no earlier.
        let now = self.net.now();
        for (&index, request) in indexes.iter().zip(&requests) {
            let key = Key::of(request);
            self.order.push_back((key, index));
            let slot = Slot {
                sent_at: None,
                ..self.slot(index, request, now)
            };
            self.in_flight.insert(key, slot);
        }
        self.sending.push_back((indexes, requests));
        if self.sending.len() > 1 {
            self.settle_one()?;
        }
        Ok(())
    }

    /// Takes in the results of every batch the host is sending.
    fn settle_sending(&mut self) -> Result<(), Error> {
        while !self.sending.is_empty() {
            self.settle_one()?;
        }
        Ok(())
    }

    /// Takes in the results of the earliest batch the host is sending.
    fn settle_one(&mut self) -> Result<(), Error> {
        let Some((indexes, requests)) = self.sending.pop_front() else {
            return Ok(());
        };
        let socket = self.socket(requests[0].destination.family())?;
        let mut results = each_request(&requests, socket.finish_sending());
        // One per request, whatever the host says.
        results.resize_with(requests.len(), || {
            Err(Error::IcmpSocket("the host gave no result for it".into()))
        });
        self.settle::<true>(indexes, &requests, results);
        for reply in std::mem::take(&mut self.held) {
            self.take(reply);
        }
        // (After the replies it held: those answered are answers.)
        if self.interrupted {
            self.interrupt();
        }
        Ok(())
    }

    /// A request in flight since `sent_at`.
    fn slot(&self, index: usize, request: &EchoRequest, sent_at: Duration) -> Slot {
        Slot {
            index,
            destination: request.destination,
            sent_at: Some(sent_at),
            deadline: sent_at + self.options.timeout,
            answered: false,
        }
    }

    /// Books the send results of `requests`; `TRACKED` when they have been
    /// in flight since their batch was begun (their slots, unless answered
    /// already, get the real send time, or go when the send failed).
    fn settle<const TRACKED: bool>(
        &mut self,
        indexes: Vec<usize>,
        requests: &[EchoRequest],
        results: Vec<Result<u64, Error>>,
    ) {
        let sent_before = self.sent;
        // Both clocks read once for the batch: send times are on the host's
        // realtime clock, deadlines on the monotonic one.
        let (now, wall) = (self.net.now(), self.net.wall_clock());
        for ((index, request), result) in indexes.into_iter().zip(requests).zip(results) {
            let key = Key::of(request);
            let slot = match TRACKED {
                true => self.in_flight.get_mut(&key).filter(|s| s.index == index),
                false => None,
            };
            match result {
                Ok(timestamp) => {
                    // The host's own send time: a send may have waited
                    // for its turn under a rate limit.
                    let age = Duration::from_nanos(wall.saturating_sub(timestamp));
                    let sent_at = now.saturating_sub(age);
                    self.sent += 1;
                    if !self.options.per_destination.is_zero() {
                        self.last_to.insert(request.destination.ip, sent_at);
                    }
                    if let Some(slot) = slot {
                        slot.sent_at = Some(sent_at);
                        slot.deadline = sent_at + self.options.timeout;
                    } else if !TRACKED {
                        self.order.push_back((key, index));
                        let slot = self.slot(index, request, sent_at);
                        self.in_flight.insert(key, slot);
                    }
                }
                Err(error) => {
                    if slot.is_some() {
                        self.in_flight.remove(&key);
                    }
                    match error {
                        Error::Interrupted => self.interrupted = true,
                        error => {
                            let failed = Slot::unsent(index, request.destination);
                            self.report(key, &failed, Fate::Failed(error));
                        }
                    }
                }
            }
        }
        let sent = u32::try_from(self.sent - sent_before).unwrap_or(u32::MAX);
        self.next_send += self.spacing * sent;
        self.forget_old_destinations();
    }

    /// The open socket of `family`, opening it on first use.
    fn socket(&mut self, family: Family) -> Result<&mut N::Socket, Error> {
        let at = match self.sockets.iter().position(|(f, _)| *f == family) {
            Some(at) => at,
            None => {
                let options = OpenOptions {
                    family,
                    source: self.options.source.filter(|s| s.family() == family),
                    mode: self.options.mode,
                    interface: self.options.interface.clone(),
                };
                let mut socket = self.net.open(&options)?;
                if self.options.broadcast {
                    socket.set_broadcast(true)?;
                }
                self.sockets.push((family, socket));
                self.sockets.len() - 1
            }
        };
        Ok(&mut self.sockets[at].1)
    }

    /// Waits up to `wait` for answers on every socket, and takes them in.
    fn receive(&mut self, wait: Duration) -> Result<(), Error> {
        let sockets = self.sockets.len();
        let wait = if sockets > 1 {
            wait.min(SHARED_WAIT)
        } else {
            wait
        };
        for n in 0..sockets {
            // Every socket is drained; only the last one waits.
            let wait = if n + 1 == sockets {
                wait
            } else {
                Duration::ZERO
            };
            let max = self.max_batch as u32;
            let replies = match self.sockets[n].1.receive_many(max, wait) {
                Ok(r) => r,
                Err(Error::Interrupted) => {
                    self.interrupt();
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            for reply in replies {
                self.take(reply);
            }
        }
        Ok(())
    }

    /// One message from the host.
    fn take(&mut self, reply: Reply) {
        let key = Key::new(reply.family, reply.id, reply.sequence);
        if reply.kind().is_note() {
            // The host renders it as iputils does ("From … Redirect Host").
            self.net.emit(Event::Reply(reply));
            return;
        }
        if OVERLAP
            && self
                .in_flight
                .get(&key)
                .is_some_and(|slot| slot.sent_at.is_none())
        {
            // Its batch is still being sent: taken in once it is settled.
            self.held.push(reply);
            return;
        }
        let Some(slot) = self.in_flight.get_mut(&key) else {
            // A duplicate of an answer reported already; anything else
            // answers a request that timed out.
            if reply.duplicate
                && let Some(&(index, destination)) = self.answered.get(&key)
            {
                let slot = Slot::unsent(index, destination);
                self.report(key, &slot, Fate::Duplicate(reply));
            }
            return;
        };
        if self.options.broadcast {
            // Every responder counts until the timeout.
            if reply.rtt <= self.options.timeout {
                slot.answered = true;
                let slot = *slot;
                let fate = if reply.duplicate {
                    Fate::Duplicate(reply)
                } else {
                    Fate::Reply(reply)
                };
                self.report(key, &slot, fate);
            }
            return;
        }
        let slot = self.in_flight.remove(&key).expect("present");
        if reply.rtt > self.options.timeout {
            // The kernel stamped it after the deadline: a timeout.
            self.report(key, &slot, Fate::Timeout);
        } else {
            self.report(key, &slot, Fate::Reply(reply));
            if self.options.duplicates {
                self.answered.insert(key, (slot.index, slot.destination));
            }
        }
    }

    /// Queues the event of `slot`'s request.
    fn report(&mut self, key: Key, slot: &Slot, fate: Fate) {
        self.events.push_back(FlightEvent {
            index: slot.index,
            destination: slot.destination,
            id: key.id(),
            sequence: key.sequence(),
            sent_at: slot.sent_at,
            fate,
        });
    }

    /// The deadline of the oldest request still out.
    fn next_deadline(&mut self) -> Option<Duration> {
        while let Some(&(key, index)) = self.order.front() {
            match self.in_flight.get(&key) {
                Some(slot) if slot.index == index => return Some(slot.deadline),
                _ => {
                    self.order.pop_front(); // settled already
                }
            }
        }
        None
    }

    /// Times out every request whose deadline has passed.
    fn expire(&mut self, now: Duration) {
        while let Some(deadline) = self.next_deadline() {
            if deadline > now {
                break;
            }
            let (key, _) = self.order.pop_front().expect("a deadline has an entry");
            let slot = self.in_flight.remove(&key).expect("present");
            if !slot.answered {
                self.report(key, &slot, Fate::Timeout);
            } else if self.options.duplicates {
                self.answered.insert(key, (slot.index, slot.destination));
            }
        }
    }

    /// The run is ending: what is out is unanswered, what is queued stays unsent.
    fn interrupt(&mut self) {
        // What of the batches being sent was not sent is not out.
        if OVERLAP {
            let _ = self.settle_sending();
        }
        self.interrupted = true;
        self.queue.clear();
        self.feed = None;
        let order = std::mem::take(&mut self.order);
        for (key, index) in order {
            let Some(slot) = self.in_flight.remove(&key).filter(|s| s.index == index) else {
                continue;
            };
            if !slot.answered {
                self.report(key, &slot, Fate::Timeout);
            }
        }
        self.done = true;
    }

    /// Keeps the per-destination books from growing with every target.
    /// Amortised O(1) per send: a pruning that keeps most entries (a sweep
    /// faster than the gap) waits until the books have doubled.
    fn forget_old_destinations(&mut self) {
        let gap = self.options.per_destination;
        if gap.is_zero() || self.last_to.len() < self.prune_at {
            return;
        }
        let now = self.net.now();
        self.last_to.retain(|_, &mut t| t + gap > now);
        self.prune_at = (2 * self.last_to.len()).max(PRUNE_FROM);
    }
}

/// One send result per request: those of a call, or its error for each.
fn each_request(
    requests: &[EchoRequest],
    results: Result<Vec<Result<u64, Error>>, Error>,
) -> Vec<Result<u64, Error>> {
    results.unwrap_or_else(|e| requests.iter().map(|_| Err(e.clone())).collect())
}

/// Sends every request of `requests` (lazily, as room comes) and calls
/// `on_event` with each reply, duplicate, timeout and failure as it
/// happens. Returns whether the run was interrupted.
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{Cidr, EchoRequest, Fate, FlightOptions, probe_all};
///
/// let mut net = SimNetwork::new(|req| match req.destination.to_string().as_str() {
///     "192.0.2.2" => vec![Response::echo(Duration::from_millis(4))],
///     _ => vec![],
/// });
/// let subnet: Cidr = "192.0.2.0/29".parse().unwrap();
/// let requests = subnet.hosts().enumerate().map(|(i, a)| EchoRequest::new(a, 1, i as u16));
/// let mut alive = Vec::new();
/// probe_all(&mut net, requests, FlightOptions::default(), |_, e| {
///     if let Fate::Reply(r) = e.fate {
///         alive.push(r.source.to_string());
///     }
/// })?;
/// assert_eq!(alive, ["192.0.2.2"]);
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn probe_all<'n, N: Network>(
    net: &'n mut N,
    requests: impl IntoIterator<Item = EchoRequest> + 'n,
    options: FlightOptions,
    mut on_event: impl FnMut(&mut N, FlightEvent),
) -> Result<bool, Error> {
    let mut flight = Flight::new(net, options);
    flight.feed(requests);
    while let Some(event) = flight.next_event()? {
        on_event(flight.net(), event);
    }
    Ok(flight.interrupted())
}
