//! `multiping`: many hosts over one socket per family, paced by a global
//! rate (fping's `-i`) separate from each host's own interval. A name that
//! does not resolve is a host that is not alive, with its error — never a
//! failed run (icmplib #44, #52). Results come back in input order; each
//! host can also be reported as soon as it is done (icmplib #42).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::codes::Kind;
use crate::error::Error;
use crate::icmp::{DEFAULT_TTL, EchoRequest, PacketOptions};
use crate::model::{Host, Probe};
use crate::network::{Network, Socket};
use crate::ping::resolve_one;
use crate::{Address, Family};

/// Parameters of [`multiping`], with icmplib 3.0.4's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct MultipingOptions {
    /// Requests per host (2).
    pub count: u32,
    /// Time between two requests to the same host (0.5 s).
    pub interval: Duration,
    /// How long to wait for each reply (2 s).
    pub timeout: Duration,
    /// Requests per second over all hosts; `None` for as fast as possible.
    /// Replaces icmplib's `concurrent_tasks`.
    pub rate: Option<f64>,
    /// TTL (64).
    pub ttl: u8,
    /// Source, family, payload, traffic class, mode, interface.
    pub packet: PacketOptions,
}

impl Default for MultipingOptions {
    fn default() -> Self {
        MultipingOptions {
            count: 2,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            rate: Some(1000.0),
            ttl: DEFAULT_TTL,
            packet: PacketOptions::default(),
        }
    }
}

/// Requests sent per host call, at most.
const BATCH: usize = 256;

/// How much lateness the pacer makes up for.
const CATCH_UP: Duration = Duration::from_millis(10);

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting,
    InFlight(Duration),
    Done,
}

/// The books of a run: hosts, and how many requests of each are unsettled.
struct Books<F> {
    hosts: Vec<Host>,
    unsettled: Vec<usize>,
    remaining: usize,
    count: usize,
    on_done: F,
}

impl<F: FnMut(usize, &Host)> Books<F> {
    /// Request `k` is settled with `probe` (or, for a duplicate, nothing).
    fn settle(&mut self, k: usize, probe: Probe) {
        let i = k / self.count;
        let mut probe = probe;
        probe.sequence = (k % self.count + 1) as u16;
        self.hosts[i].probes.push(probe);
        self.unsettled[i] -= 1;
        if self.unsettled[i] == 0 {
            self.remaining -= 1;
            self.hosts[i].probes.sort_by_key(|p| p.sequence);
            (self.on_done)(i, &self.hosts[i]);
        }
    }
}

/// Pings every target; `on_done(index, host)` is called as each finishes.
pub fn multiping<N: Network>(
    net: &mut N,
    targets: &[String],
    options: &MultipingOptions,
    on_done: impl FnMut(usize, &Host),
) -> Result<Vec<Host>, Error> {
    let o = options;
    let family = o.packet.family;
    if o.count == 0 {
        return Err(Error::InvalidArgument("count must be at least 1".into()));
    }
    let count = o.count as usize;
    if (targets.len() as u64) * (count as u64) > u64::from(u32::MAX) {
        return Err(Error::InvalidArgument(
            "too many requests for one run".into(),
        ));
    }
    let mut books = Books {
        hosts: Vec::with_capacity(targets.len()),
        unsettled: vec![count; targets.len()],
        remaining: targets.len(),
        count,
        on_done,
    };
    let mut addresses: Vec<Option<Address>> = Vec::with_capacity(targets.len());
    for target in targets {
        match resolve_one(net, target, family) {
            Ok(a) => {
                books.hosts.push(Host::new(target.as_str(), a.to_string()));
                addresses.push(Some(a));
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                let mut h = Host::new(target.as_str(), target.as_str());
                h.error = Some(e.to_string());
                books.hosts.push(h);
                addresses.push(None);
            }
        }
    }
    for (i, a) in addresses.iter().enumerate() {
        if a.is_none() {
            books.unsettled[i] = 0;
            books.remaining -= 1;
            (books.on_done)(i, &books.hosts[i]);
        }
    }
    let mut sockets: HashMap<Family, N::Socket> = HashMap::new();
    for family in [Family::V4, Family::V6] {
        if addresses.iter().flatten().any(|a| a.family() == family) {
            let mut open = o.packet.open_options(family);
            // One source address serves the hosts of its own family.
            open.source = open.source.filter(|s| s.family() == family);
            let socket = net.open(&open)?;
            sockets.insert(family, socket);
        }
    }
    let families: Vec<Family> = sockets.keys().copied().collect();

    // Request k is round k % count of host k / count; its (id, sequence)
    // is k itself, split in two halves.
    let key = |k: usize| ((k >> 16) as u16, k as u16);
    let index = |id: u16, seq: u16| (usize::from(id) << 16) | usize::from(seq);
    let mut state = vec![State::Waiting; targets.len() * count];
    let live: Vec<usize> = (0..targets.len())
        .filter(|&i| addresses[i].is_some())
        .collect();
    let gap = o
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut round = 0usize;
    let mut sent_in_round = 0usize;
    let mut round_start = net.now();
    let mut next_send = round_start;
    let mut in_flight: VecDeque<usize> = VecDeque::new();

    let interrupted = 'run: loop {
        if books.remaining == 0 {
            break false;
        }
        let now = net.now();
        // Send what is due: this round's requests, paced by the rate.
        if round < count && now >= round_start && now >= next_send {
            // Catch up on at most CATCH_UP of lateness: a late wake-up sends a
            // small batch, never a burst.
            next_send = next_send.max(round_start).max(now.saturating_sub(CATCH_UP));
            let due = gap.map_or(BATCH, |g| {
                (((now - next_send).as_nanos() / g.as_nanos().max(1)) as usize + 1).min(BATCH)
            });
            let batch: Vec<usize> = live[sent_in_round..]
                .iter()
                .take(due)
                .map(|i| i * count + round)
                .collect();
            let mut by_family: HashMap<Family, (Vec<usize>, Vec<EchoRequest>)> = HashMap::new();
            for &k in &batch {
                let address = addresses[k / count].expect("only live hosts are sent to");
                let (id, sequence) = key(k);
                let r = o.packet.request(address, id, sequence, o.ttl);
                let entry = by_family.entry(address.family()).or_default();
                entry.0.push(k);
                entry.1.push(r);
            }
            for (family, (ks, requests)) in by_family {
                let socket = sockets.get_mut(&family).expect("a socket per family");
                let sent_at = net.now();
                for (k, result) in ks.into_iter().zip(socket.send_many(&requests)) {
                    match result {
                        Ok(_) => {
                            books.hosts[k / count].packets_sent += 1;
                            state[k] = State::InFlight(sent_at);
                            in_flight.push_back(k);
                        }
                        Err(Error::Interrupted) => break 'run true,
                        Err(e) => {
                            state[k] = State::Done;
                            books.settle(k, Probe::failed(0, e.to_string()));
                        }
                    }
                }
            }
            sent_in_round += batch.len();
            if let Some(g) = gap {
                next_send += g * batch.len() as u32;
            }
            if sent_in_round == live.len() {
                round += 1;
                sent_in_round = 0;
                round_start = (round_start + o.interval).max(net.now());
            }
            continue;
        }
        // Expire overdue requests: sent in order, so they expire in order.
        while let Some(&k) = in_flight.front() {
            match state[k] {
                State::InFlight(sent) if now >= sent + o.timeout => {
                    in_flight.pop_front();
                    state[k] = State::Done;
                    books.settle(k, Probe::timed_out(0));
                }
                State::InFlight(_) => break,
                _ => {
                    in_flight.pop_front();
                }
            }
        }
        if books.remaining == 0 {
            break false;
        }
        // Wait for replies until the next send or the next expiry.
        let expiry = in_flight.iter().find_map(|&k| match state[k] {
            State::InFlight(sent) => Some(sent + o.timeout),
            _ => None,
        });
        let send = (round < count).then(|| round_start.max(next_send));
        let wake = match (expiry, send) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(now),
        };
        let wait = wake.saturating_sub(net.now());
        for (n, family) in families.iter().enumerate() {
            let socket = sockets.get_mut(family).expect("a socket per family");
            // Every socket is drained; only the last one waits.
            let wait = if n + 1 == families.len() {
                wait
            } else {
                Duration::ZERO
            };
            let replies = match socket.receive_many(4096, wait) {
                Ok(r) => r,
                Err(Error::Interrupted) => break 'run true,
                Err(e) => return Err(e),
            };
            for reply in replies {
                let k = index(reply.id, reply.sequence);
                if k >= state.len() {
                    continue;
                }
                if reply.duplicate {
                    books.hosts[k / count].duplicates += 1;
                    continue;
                }
                if !matches!(state[k], State::InFlight(_)) {
                    continue; // answered after its timeout
                }
                state[k] = State::Done;
                if reply.kind() == Kind::EchoReply {
                    books.hosts[k / count].rtts.push(reply.rtt_ms());
                }
                books.settle(k, Probe::answered(&reply));
            }
        }
    };
    if interrupted {
        // What was still out counts as unanswered.
        for k in in_flight {
            if matches!(state[k], State::InFlight(_)) {
                books.settle(k, Probe::timed_out(0));
            }
        }
    }
    Ok(books.hosts)
}
