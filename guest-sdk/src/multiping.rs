//! `multiping`: many hosts over one socket per family, paced by a global
//! rate (fping's `-i`) separate from each host's own interval. A name that
//! does not resolve is a host that is not alive, with its error — never a
//! failed run (icmplib #44, #52). Results come back in input order; each
//! host can also be reported as soon as it is done (icmplib #42).

use std::time::Duration;

use crate::Address;
use crate::error::Error;
use crate::flight::{Fate, Flight, FlightOptions};
use crate::icmp::{DEFAULT_TTL, PacketOptions};
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

/// Pings every target; `on_done(index, host)` is called as each finishes.
/// Built on [`Flight`]: request `k` is round `k % count` of host
/// `k / count`, and its (id, sequence) is `k` split in two halves.
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
    let mut hosts = Vec::with_capacity(targets.len());
    let mut live: Vec<(usize, Address)> = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        match resolve_one(net, target, o.packet.family) {
            Ok(a) => {
                hosts.push(Host::new(target.as_str(), a.to_string()));
                live.push((i, a));
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                let mut h = Host::new(target.as_str(), target.as_str());
                h.error = Some(e.to_string());
                on_done(i, &h);
                hosts.push(h);
            }
        }
    }
    let mut unsettled: Vec<usize> = vec![count; targets.len()];
    let spacing = o
        .rate
        .filter(|r| *r > 0.0 && r.is_finite())
        .map_or(Duration::ZERO, |r| Duration::from_secs_f64(1.0 / r));
    let flight_options = FlightOptions {
        spacing,
        per_destination: o.interval,
        ..o.packet.flight(o.timeout)
    };
    let mut flight = Flight::new(net, flight_options);
    let packet = &o.packet;
    let live_ref = &live;
    flight.feed((0..count).flat_map(move |round| {
        live_ref.iter().map(move |&(i, address)| {
            let k = i * count + round;
            packet.request(address, (k >> 16) as u16, k as u16, o.ttl)
        })
    }));
    while let Some(event) = flight.next_event()? {
        let k = (usize::from(event.id) << 16) | usize::from(event.sequence);
        let (i, sequence) = (k / count, (k % count + 1) as u16);
        let host = &mut hosts[i];
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
        unsettled[i] -= 1;
        if unsettled[i] == 0 {
            on_done(i, host);
        }
    }
    if flight.interrupted() {
        // Hosts with requests that never went out are reported as they are.
        for &(i, _) in &live {
            if unsettled[i] > 0 {
                on_done(i, &hosts[i]);
            }
        }
    }
    Ok(hosts)
}
