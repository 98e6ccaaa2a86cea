//! `ping`: icmplib's stop-and-wait ping over any [`Network`].

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::flight::{Fate, Flight, FlightOptions};
use crate::icmp::{DEFAULT_TTL, PacketOptions};
use crate::model::{self, Host, Probe};
use crate::network::Network;
use crate::progress::{Event, ProbeKind, Summary};
use crate::{Address, Family};

/// Parameters of [`ping`], with icmplib 3.0.4's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PingOptions {
    /// Requests to send (4).
    pub count: u32,
    /// Time between sends (1 s).
    pub interval: Duration,
    /// How long to wait for each reply (2 s).
    pub timeout: Duration,
    /// Identifier; `None` picks a fresh one.
    pub id: Option<u16>,
    /// TTL / hop limit (64).
    pub ttl: u8,
    /// Source, family, payload, traffic class, mode, interface.
    pub packet: PacketOptions,
    /// Forbid fragmentation.
    pub dont_fragment: bool,
    /// Ping a broadcast address: every responder's reply is kept (the host
    /// must allow broadcast).
    pub broadcast: bool,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            count: 4,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            id: None,
            ttl: DEFAULT_TTL,
            packet: PacketOptions::default(),
            dont_fragment: false,
            broadcast: false,
        }
    }
}

/// A fresh identifier for a probe that did not choose one (icmplib's
/// `unique_identifier`). The host maps ids to its own wire values, so these
/// only need to be distinct within the plugin.
///
/// ```
/// let (a, b) = (icmp_host_sdk::unique_identifier(), icmp_host_sdk::unique_identifier());
/// assert_ne!(a, b);
/// ```
pub fn unique_identifier() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Resolves `target` to one address: a literal of the wanted family as is
/// (no host call), anything else through the host — a name to its first
/// address, IPv4 first unless `family` says otherwise.
///
/// ```
/// use icmp_host_sdk::{resolve_one, sim::SimNetwork};
/// let mut net = SimNetwork::new(|_| vec![]).with_name("box.lab", &["192.0.2.7".parse().unwrap()]);
/// assert_eq!(resolve_one(&mut net, "box.lab", None)?.to_string(), "192.0.2.7");
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn resolve_one<N: Network>(
    net: &mut N,
    target: &str,
    family: Option<Family>,
) -> Result<Address, Error> {
    if let Ok(a) = target.parse::<Address>()
        && family.is_none_or(|f| a.family() == f)
    {
        return Ok(a);
    }
    net.resolve(target, family)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::NameLookup(format!("{target}: no address")))
}

/// Pings `target` (icmplib's `ping`): sends `count` requests `interval`
/// apart, each waiting up to `timeout` for its reply (stop and wait: a
/// lost request holds the next until its timeout has passed). Errors from
/// the network (unreachable, TTL exceeded) are kept per probe, not
/// swallowed; a request the host could not send (Don't Fragment and too
/// big, the kernel refusing it) is reported and ping carries on, like
/// iputils. Ctrl-C or the host's wall-clock limit ends it early with what
/// it has. Built on [`Flight`].
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{PingOptions, ping};
///
/// let mut net = SimNetwork::new(|_| vec![Response::echo(Duration::from_millis(5))]);
/// let host = ping(&mut net, "192.0.2.1", &PingOptions::default())?;
/// assert_eq!((host.packets_received(), host.avg_rtt()), (4, 5.0));
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn ping<N: Network>(net: &mut N, target: &str, options: &PingOptions) -> Result<Host, Error> {
    let packet = &options.packet;
    let address = resolve_one(net, target, packet.family)?;
    net.emit(Event::Start {
        kind: ProbeKind::Ping,
        target: target.to_owned(),
        address: Some(address),
        payload_size: packet.payload_len(),
        max_hops: 0,
    });
    let id = options.id.unwrap_or_else(unique_identifier);
    let mut host = Host::new(target, address.to_string());
    let mut errors = 0u32;
    let start = net.now();
    let flight_options = FlightOptions {
        per_destination: options.interval,
        window: 1,
        broadcast: options.broadcast,
        ..packet.flight(options.timeout)
    };
    let mut flight = Flight::new(net, flight_options);
    flight.feed((1..=options.count).map(|i| {
        let sequence = i as u16;
        let mut request = packet.request(address, id, sequence, options.ttl);
        request.dont_fragment = options.dont_fragment;
        request
    }));
    while let Some(event) = flight.next_event()? {
        let sequence = event.sequence;
        match event.fate {
            Fate::Reply(reply) => {
                if reply.is_echo_reply() {
                    host.rtts.push(reply.rtt_ms());
                } else {
                    errors += 1;
                }
                model::insert_in_order(&mut host.probes, Probe::answered(&reply));
                flight.net().emit(Event::Reply(reply));
            }
            Fate::Duplicate(reply) => {
                host.duplicates += 1;
                flight.net().emit(Event::Reply(reply));
            }
            Fate::Timeout => {
                model::insert_in_order(&mut host.probes, Probe::timed_out(sequence));
                if !flight.interrupted() {
                    flight.net().emit(Event::Timeout {
                        destination: address,
                        id,
                        sequence,
                    });
                }
            }
            Fate::Failed(e) if e.is_per_request() => {
                let message = e.to_string();
                flight
                    .net()
                    .emit(Event::Note(format!("icmp_seq={sequence}: {message}")));
                model::insert_in_order(&mut host.probes, Probe::failed(sequence, message));
            }
            Fate::Failed(e) => return Err(e),
        }
    }
    host.packets_sent = u32::try_from(flight.sent()).unwrap_or(u32::MAX);
    drop(flight);

    let elapsed = net.now().saturating_sub(start);
    let ns = |ms: f64| Duration::from_nanos((ms * 1e6).round() as u64);
    let rtts = &host.rtts;
    net.emit(Event::Summary(Summary {
        target: target.to_owned(),
        packets_sent: host.packets_sent,
        packets_received: host.packets_received(),
        duplicates: host.duplicates,
        errors,
        min_rtt: ns(rtts.iter().copied().reduce(f64::min).unwrap_or(0.0)),
        avg_rtt: ns(if rtts.is_empty() {
            0.0
        } else {
            rtts.iter().sum::<f64>() / rtts.len() as f64
        }),
        max_rtt: ns(rtts.iter().copied().reduce(f64::max).unwrap_or(0.0)),
        mdev: ns(model::mdev(rtts)),
        elapsed,
    }));
    Ok(host)
}
