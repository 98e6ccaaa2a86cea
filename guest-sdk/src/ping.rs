//! `ping`: icmplib's stop-and-wait ping over any [`Network`].

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::icmp::{DEFAULT_TTL, PacketOptions};
use crate::model::{self, Host, Probe};
use crate::network::{Match, Network, Socket};
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
pub fn unique_identifier() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Resolves `target` to one address: a literal of the wanted family as is
/// (no host call), anything else through the host — a name to its first
/// address, IPv4 first unless `family` says otherwise.
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
/// apart, each waiting up to `timeout` for its reply. Errors from the
/// network (unreachable, TTL exceeded) are kept per probe, not swallowed.
/// Ctrl-C or the host's wall-clock limit ends it early with what it has.
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
    let mut socket = net.open(&packet.open_options(address.family()))?;
    if options.broadcast {
        socket.set_broadcast(true)?;
    }
    let id = options.id.unwrap_or_else(unique_identifier);
    let mut host = Host::new(target, address.to_string());
    let mut errors = 0u32;
    let start = net.now();

    let mut last_send: Option<std::time::Duration> = None;
    for i in 0..options.count {
        // Sends keep to the `interval` grid, but never closer than `interval`
        // to the previous one: a probe that waited out its timeout does not
        // cause a burst of catch-up sends.
        if let Some(last) = last_send {
            let due = (start + options.interval * i).max(last + options.interval);
            let now = net.now();
            if due > now && net.sleep(due - now).is_err() {
                break; // interrupted
            }
        }
        last_send = Some(net.now());
        drain_duplicates(net, &mut socket, &mut host);
        let sequence = (i + 1) as u16;
        let mut request = packet.request(address, id, sequence, options.ttl);
        request.dont_fragment = options.dont_fragment;

        match socket.send(&request) {
            Ok(_) => host.packets_sent += 1,
            Err(Error::Interrupted) => break,
            Err(Error::IcmpSocket(message)) => {
                // The kernel refused this one packet (no route, ...): keep going.
                net.emit(Event::Note(format!("icmp_seq={sequence}: {message}")));
                host.probes.push(Probe::failed(sequence, message));
                continue;
            }
            Err(e) => return Err(e),
        }

        let deadline = net.now() + options.timeout;
        let mut answered = false;
        let interrupted = loop {
            let remaining = deadline.saturating_sub(net.now());
            match socket.receive(Some(Match { id, sequence }), remaining) {
                Ok(reply) if reply.duplicate => {
                    host.duplicates += 1;
                    net.emit(Event::Reply(reply));
                }
                Ok(reply) => {
                    if reply.is_echo_reply() {
                        host.rtts.push(reply.rtt_ms());
                    } else {
                        errors += 1;
                    }
                    host.probes.push(Probe::answered(&reply));
                    net.emit(Event::Reply(reply));
                    if !options.broadcast {
                        break false;
                    }
                    // Broadcast: every responder answers; listen until the timeout.
                    answered = true;
                }
                Err(Error::TimeoutExceeded(_)) if answered => break false,
                Err(Error::TimeoutExceeded(_)) => {
                    host.probes.push(Probe::timed_out(sequence));
                    net.emit(Event::Timeout {
                        destination: address,
                        id,
                        sequence,
                    });
                    break false;
                }
                Err(Error::Interrupted) => {
                    host.probes.push(Probe::timed_out(sequence));
                    break true;
                }
                Err(e) => return Err(e),
            }
        };
        if interrupted {
            break;
        }
    }
    drain_duplicates(net, &mut socket, &mut host);

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

/// Counts and reports duplicates already queued; late originals (after
/// their timeout) stay lost, as in ping.
fn drain_duplicates<N: Network>(net: &mut N, socket: &mut N::Socket, host: &mut Host) {
    if let Ok(queued) = socket.receive_many(u32::MAX, Duration::ZERO) {
        for reply in queued.into_iter().filter(|r| r.duplicate) {
            host.duplicates += 1;
            net.emit(Event::Reply(reply));
        }
    }
}
