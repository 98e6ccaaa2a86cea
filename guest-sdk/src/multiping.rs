//! `multiping`: many hosts over one socket per family, paced by a global
//! rate (fping's `-i`) separate from each host's own interval. A name that
//! does not resolve is a host that is not alive, with its error — never a
//! failed run (icmplib #44, #52). Results come back in input order; each
//! host can also be reported as soon as it is done (icmplib #42).

use std::collections::VecDeque;
use std::time::Duration;

use crate::Address;
use crate::error::Error;
use crate::flight::{Fate, Flight, FlightOptions};
use crate::icmp::{DEFAULT_TTL, PacketOptions};
use crate::json::address_text;
use crate::model::{Host, Probe, insert_in_order};
use crate::network::Network;
use crate::ping::resolve_one;

/// Parameters of [`multiping`], with icmplib 3.0.4's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct MultipingOptions {
    /// Requests per host (2).
    pub count: u32,
    /// Time between two requests to the same host (0.5 s).
    pub interval: Duration,
    /// How long to wait for each reply, from its own send (2 s).
    pub timeout: Duration,
    /// Requests per second over all hosts; `None` for as fast as the host
    /// allows. Replaces icmplib's `concurrent_tasks`.
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

/// Pings every target; `on_done(index, host)` is called as each finishes,
/// and the hosts come back in input order. See [`multiping_each`] for
/// sweeps too large to keep every host.
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{MultipingOptions, multiping};
///
/// let mut net = SimNetwork::new(|r| match r.destination.to_string().as_str() {
///     "192.0.2.2" => vec![],
///     _ => vec![Response::echo(Duration::from_millis(1))],
/// });
/// let targets = ["192.0.2.1".to_string(), "192.0.2.2".to_string()];
/// let hosts = multiping(&mut net, &targets, &MultipingOptions::default(), |_, _| {})?;
/// assert_eq!((hosts[0].is_alive(), hosts[1].is_alive()), (true, false));
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn multiping<N: Network>(
    net: &mut N,
    targets: &[String],
    options: &MultipingOptions,
    mut on_done: impl FnMut(usize, &Host),
) -> Result<Vec<Host>, Error> {
    let mut hosts: Vec<Option<Host>> = Vec::with_capacity(targets.len());
    hosts.resize_with(targets.len(), || None);
    multiping_each(net, targets, options, |i, host| {
        on_done(i, &host);
        hosts[i] = Some(host);
    })?;
    Ok(hosts
        .into_iter()
        .zip(targets)
        // Every host is handed over; a gap would be a bug, never a panic.
        .map(|(h, t)| h.unwrap_or_else(|| Host::new(t.as_str(), t.as_str())))
        .collect())
}

/// Pings every target and hands each host over, by value, as it is done
/// (in completion order; `index` is its place in `targets`): only hosts
/// with requests still out are kept, so a sweep of a /16 need not hold
/// 65,536 records. Every target is handed over exactly once — a name that
/// does not resolve at once, with its error; after an interruption, the
/// hosts still out as they are.
///
/// Built on [`Flight`]: request `k` is round `k % count` of host
/// `k / count`, and its (id, sequence) is `k` split in two halves.
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{MultipingOptions, multiping_each};
///
/// let mut net = SimNetwork::new(|_| vec![Response::echo(Duration::from_millis(1))]);
/// let targets: Vec<String> = (1..=200).map(|i| format!("192.0.2.{i}")).collect();
/// let mut alive = 0;
/// multiping_each(&mut net, &targets, &MultipingOptions::default(), |_, host| {
///     alive += usize::from(host.is_alive());
/// })?;
/// assert_eq!(alive, 200);
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn multiping_each<N: Network>(
    net: &mut N,
    targets: &[String],
    options: &MultipingOptions,
    mut on_done: impl FnMut(usize, Host),
) -> Result<(), Error> {
    let o = options;
    if o.count == 0 {
        return Err(Error::InvalidArgument("count must be at least 1".into()));
    }
    let count = o.count as usize;
    if (targets.len() as u64) * (count as u64) > u64::from(u32::MAX) {
        return Err(Error::InvalidArgument(
            "too many requests for one run".into(),
        ));
    }
    let mut addresses: Vec<Option<Address>> = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        match resolve_one(net, target, o.packet.family) {
            Ok(a) => addresses.push(Some(a)),
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                let mut h = Host::new(target.as_str(), target.as_str());
                h.error = Some(e.to_string());
                on_done(i, h);
                addresses.push(None);
            }
        }
    }
    let spacing = o
        .rate
        .filter(|r| *r > 0.0 && r.is_finite())
        .map_or(Duration::ZERO, |r| Duration::from_secs_f64(1.0 / r));
    let flight_options = FlightOptions {
        spacing,
        // One request per host: there is no second one to space (a target
        // listed twice is two hosts, as in fping and icmplib).
        per_destination: if count == 1 {
            Duration::ZERO
        } else {
            o.interval
        },
        // With one request per host, a host is handed over with its reply:
        // a later duplicate has no host left to count in.
        duplicates: count > 1,
        ..o.packet.flight(o.timeout)
    };
    let mut flight = Flight::overlapped(net, flight_options);
    let packet = &o.packet;
    let addresses = &addresses;
    flight.feed((0..count).flat_map(move |round| {
        addresses
            .iter()
            .enumerate()
            .filter_map(move |(i, address)| {
                let k = i * count + round;
                address.map(|a| packet.request(a, (k >> 16) as u16, k as u16, o.ttl))
            })
    }));
    let mut open = Open::new(targets, addresses, count);
    while let Some(event) = flight.next_event()? {
        let k = (usize::from(event.id) << 16) | usize::from(event.sequence);
        let (i, sequence) = (k / count, (k % count + 1) as u16);
        let Some(pending) = open.get(i) else {
            continue; // not a request of ours (cannot happen)
        };
        let host = &mut pending.host;
        let mut probe = match event.fate {
            Fate::Duplicate(_) => {
                host.duplicates += 1;
                continue;
            }
            Fate::Reply(reply) => {
                host.packets_sent += 1;
                if reply.is_echo_reply() {
                    host.rtts.push(reply.rtt_ms());
                }
                Probe::answered(&reply)
            }
            Fate::Timeout => {
                host.packets_sent += 1;
                Probe::timed_out(sequence)
            }
            Fate::Failed(e) => Probe::failed(sequence, e.to_string()),
        };
        probe.sequence = sequence;
        insert_in_order(&mut host.probes, probe);
        pending.unsettled -= 1;
        if pending.unsettled == 0
            && let Some(host) = open.finish(i)
        {
            on_done(i, host);
        }
    }
    // Interrupted: hosts with requests still out, or never sent, are
    // reported as they are. (After a full run nothing is left.)
    open.drain(&mut on_done);
    Ok(())
}

/// A host with requests out.
struct Pending {
    host: Host,
    unsettled: usize,
}

/// A host's place in the window of [`Open`].
enum Place {
    /// Nothing heard yet.
    Waiting,
    Running(Pending),
    /// Handed over (or never pinged: its name did not resolve).
    Done,
}

/// The hosts of a multiping between the first not yet done and the last
/// heard of: requests go out in input order (round after round), so this
/// window is what is in flight, not the whole list.
struct Open<'t> {
    targets: &'t [String],
    addresses: &'t [Option<Address>],
    count: usize,
    /// Index of `window[0]`.
    base: usize,
    window: VecDeque<Place>,
}

impl<'t> Open<'t> {
    fn new(targets: &'t [String], addresses: &'t [Option<Address>], count: usize) -> Open<'t> {
        Open {
            targets,
            addresses,
            count,
            base: 0,
            window: VecDeque::new(),
        }
    }

    fn initial(&self, i: usize) -> Place {
        match self.addresses[i] {
            Some(_) => Place::Waiting,
            None => Place::Done,
        }
    }

    /// Host `i`, started when first heard of; `None` if it is done.
    fn get(&mut self, i: usize) -> Option<&mut Pending> {
        if i < self.base || i >= self.targets.len() {
            return None;
        }
        while self.base + self.window.len() <= i {
            let next = self.initial(self.base + self.window.len());
            self.window.push_back(next);
        }
        let place = &mut self.window[i - self.base];
        if let Place::Waiting = place {
            let address = self.addresses[i]?;
            *place = Place::Running(Pending {
                host: Host::new(self.targets[i].as_str(), address_text(&address)),
                unsettled: self.count,
            });
        }
        match place {
            Place::Running(p) => Some(p),
            _ => None,
        }
    }

    /// Takes host `i` out, done; the window moves past the hosts done.
    fn finish(&mut self, i: usize) -> Option<Host> {
        let place = self.window.get_mut(i.checked_sub(self.base)?)?;
        let Place::Running(p) = std::mem::replace(place, Place::Done) else {
            return None;
        };
        while let Some(Place::Done) = self.window.front() {
            self.window.pop_front();
            self.base += 1;
        }
        Some(p.host)
    }

    /// Hands over every host not yet done, in input order.
    fn drain(&mut self, on_done: &mut impl FnMut(usize, Host)) {
        for i in self.base..self.targets.len() {
            let place = match self.window.get_mut(i - self.base) {
                Some(place) => std::mem::replace(place, Place::Done),
                None => self.initial(i),
            };
            let host = match place {
                Place::Running(p) => p.host,
                Place::Waiting => {
                    let address = self.addresses[i].map_or_else(String::new, |a| address_text(&a));
                    Host::new(self.targets[i].as_str(), address)
                }
                Place::Done => continue,
            };
            on_done(i, host);
        }
        self.window.clear();
        self.base = self.targets.len();
    }
}
