//! `traceroute`: icmplib's parameters, without its defects. Every probe
//! has its own sequence number, so a late reply can never count for the
//! wrong hop; a timeout does not abandon the hop's other probes; every
//! responder of a hop is kept (ECMP); the trace stops at a Destination
//! Unreachable and marks it like traceroute (`!H`, `!N`, `!P`, `!X`); a
//! silent hop stays in the result; probes for several TTLs are in flight at
//! once; and `fast` works as documented.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::Address;
use crate::codes::{self, Kind};
use crate::error::Error;
use crate::flight::{Fate, Flight, FlightOptions};
use crate::icmp::{PacketOptions, Reply};
use crate::json::{Object, ToJson, key};
use crate::model::{Probe, RttList, Stats, insert_in_order};
use crate::network::Network;
use crate::ping::{resolve_one, unique_identifier};
use crate::progress::{Event, HopProbe, ProbeKind};

/// Parameters of [`traceroute`], with icmplib 3.0.4's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TracerouteOptions {
    /// Probes per hop (2).
    pub count: u32,
    /// Time between two probes (0.05 s).
    pub interval: Duration,
    /// How long to wait for each probe's answer (2 s).
    pub timeout: Duration,
    /// First TTL (1).
    pub first_hop: u8,
    /// Last TTL (30).
    pub max_hops: u8,
    /// Move on from a hop after its first answer (icmplib documents it; its
    /// 3.x code ignores it).
    pub fast: bool,
    /// Identifier; `None` picks a fresh one.
    pub id: Option<u16>,
    /// Probes unanswered at once, at most (traceroute's `-N`, 16).
    pub in_flight: u32,
    /// Source, family, payload, traffic class, mode, interface.
    pub packet: PacketOptions,
}

impl Default for TracerouteOptions {
    fn default() -> Self {
        TracerouteOptions {
            count: 2,
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            first_hop: 1,
            max_hops: 30,
            fast: false,
            id: None,
            in_flight: 16,
            packet: PacketOptions::default(),
        }
    }
}

/// One responder of a hop and its RTTs (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Responder {
    /// Its address.
    pub address: Address,
    /// RTTs of its answers, in ms.
    pub rtts: Vec<f64>,
}

/// One hop of a trace (icmplib's `Hop`, plus what icmplib drops).
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// The TTL of this hop's probes.
    pub distance: u8,
    /// Probes sent at this distance.
    pub packets_sent: u32,
    /// RTTs (ms) of every answer, in arrival order.
    pub rtts: Vec<f64>,
    /// Every responder, in order of first answer (several under ECMP).
    pub responders: Vec<Responder>,
    /// Every probe's fate, in send order.
    pub probes: Vec<Probe>,
    /// traceroute's mark when the trace ended here with an error (`!H`, ...).
    pub mark: Option<String>,
    /// Answers that repeated an earlier one.
    pub duplicates: u32,
}

impl Hop {
    /// The first responder (icmplib's `address`); `None` for a silent hop.
    pub fn address(&self) -> Option<Address> {
        self.responders.first().map(|r| r.address)
    }

    /// Whether anything answered at this distance.
    pub fn is_alive(&self) -> bool {
        !self.rtts.is_empty()
    }
}

impl ToJson for Responder {
    fn write_json(&self, out: &mut String) {
        let mut o = Object::begin(out);
        o.known(key!("address"), &self.address)
            .known(key!("rtts"), &RttList(&self.rtts));
        o.end();
    }
}

/// Hop records, schema v1 (README): icmplib's fields, then `distance`,
/// `responders`, `probes`, `mark`, `duplicates`.
impl ToJson for Hop {
    fn write_json(&self, out: &mut String) {
        let mut o = Object::begin(out);
        let address = self.address().map(|a| a.to_string());
        Stats::of(&self.rtts, self.packets_sent).write_fields(
            &mut o,
            address.as_deref(),
            &self.rtts,
            self.packets_sent,
        );
        o.known(key!("distance"), &self.distance)
            .known(key!("responders"), &self.responders)
            .known(key!("probes"), &self.probes)
            .known(key!("mark"), &self.mark)
            .known(key!("duplicates"), &self.duplicates);
        o.end();
    }
}

/// A finished trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The target as written.
    pub target: String,
    /// Its address.
    pub address: Address,
    /// Hops from `first_hop` to the destination (or `max_hops`).
    pub hops: Vec<Hop>,
    /// The destination answered.
    pub reached: bool,
}

/// Traces the path to `target`. Built on [`Flight`]: probe `i` is the
/// `i % count`-th of hop `i / count`, with sequence `i + 1`; with `fast`,
/// a hop's next probe is queued only when the previous one timed out.
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{TracerouteOptions, traceroute};
///
/// let router = "198.51.100.1".parse().unwrap();
/// let mut net = SimNetwork::new(move |req| match req.ttl {
///     1 => vec![Response::error(Duration::from_millis(1), router, 11, 0)],
///     _ => vec![Response::echo(Duration::from_millis(2))],
/// });
/// let trace = traceroute(&mut net, "192.0.2.9", &TracerouteOptions::default())?;
/// assert!(trace.reached);
/// assert_eq!(trace.hops.len(), 2);
/// assert_eq!(trace.hops[0].address(), Some(router));
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn traceroute<N: Network>(
    net: &mut N,
    target: &str,
    options: &TracerouteOptions,
) -> Result<Trace, Error> {
    let o = options;
    if o.count == 0 || o.first_hop == 0 || o.max_hops < o.first_hop || o.in_flight == 0 {
        return Err(Error::InvalidArgument(
            "need count ≥ 1, in-flight ≥ 1 and 1 ≤ first hop ≤ max hops".into(),
        ));
    }
    let hops = usize::from(o.max_hops - o.first_hop) + 1;
    let total = hops * o.count as usize;
    if total > usize::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "{total} probes: at most {} fit in one trace",
            u16::MAX
        )));
    }
    let address = resolve_one(net, target, o.packet.family)?;
    net.emit(Event::Start {
        kind: ProbeKind::Traceroute,
        target: target.to_owned(),
        address: Some(address),
        payload_size: o.packet.payload_len(),
        max_hops: o.max_hops,
    });
    let id = o.id.unwrap_or_else(unique_identifier);
    let count = o.count as usize;
    let mut result: Vec<Hop> = (0..hops)
        .map(|h| Hop {
            distance: o.first_hop + h as u8,
            packets_sent: 0,
            rtts: Vec::new(),
            responders: Vec::new(),
            probes: Vec::new(),
            mark: None,
            duplicates: 0,
        })
        .collect();
    // Probes of each hop not settled yet (queued or out).
    let mut pending = vec![if o.fast { 1 } else { count }; hops];
    let request = |i: usize| {
        o.packet
            .request(address, id, (i + 1) as u16, o.first_hop + (i / count) as u8)
    };
    let flight_options = FlightOptions {
        spacing: o.interval,
        window: o.in_flight as usize,
        ..o.packet.flight(o.timeout)
    };
    // Hops beyond the destination are not probed or reported.
    let mut last_hop = hops - 1;
    let limit = Rc::new(Cell::new(last_hop));
    let fed = Rc::clone(&limit);
    let step = if o.fast { count } else { 1 };
    let mut flight = Flight::new(net, flight_options);
    flight.feed(
        (0..total)
            .step_by(step)
            .take_while(move |i| i / count <= fed.get())
            .map(request),
    );
    let mut reached = false;
    let mut emitted = 0usize;
    while let Some(event) = flight.next_event()? {
        let i = usize::from(event.sequence).wrapping_sub(1);
        let h = i / count;
        if event.id != id || h >= hops {
            continue;
        }
        let hop = &mut result[h];
        match event.fate {
            // Duplicates do not count.
            Fate::Duplicate(_) => {
                hop.duplicates += 1;
                continue;
            }
            Fate::Reply(reply) => {
                hop.packets_sent += 1;
                record(hop, &reply);
                let ends_trace = match reply.kind() {
                    Kind::EchoReply => true,
                    Kind::DestinationUnreachable | Kind::PacketTooBig => {
                        hop.mark =
                            codes::traceroute_mark(reply.family, reply.icmp_type, reply.code);
                        true
                    }
                    _ => false,
                };
                if ends_trace && h <= last_hop {
                    reached |= reply.is_echo_reply();
                    last_hop = h;
                    limit.set(h);
                    flight.cancel(|_, r| usize::from(r.sequence - 1) / count > h);
                }
            }
            Fate::Timeout => {
                hop.packets_sent += 1;
                insert_in_order(&mut hop.probes, Probe::timed_out(event.sequence));
                if o.fast && i % count + 1 < count && !flight.interrupted() {
                    pending[h] += 1;
                    flight.push(request(i + 1));
                }
            }
            Fate::Failed(e) if e.is_per_request() => {
                hop.probes
                    .push(Probe::failed(event.sequence, e.to_string()));
            }
            Fate::Failed(e) => return Err(e),
        }
        pending[h] -= 1;
        emitted = emit_finished(flight.net(), &result, &pending, emitted, last_hop);
        if emitted > last_hop {
            break;
        }
    }
    let interrupted = flight.interrupted();
    drop(flight);
    let probed = result
        .iter()
        .rposition(|h| h.packets_sent > 0)
        .map_or(0, |h| h + 1);
    result.truncate(if interrupted {
        probed.min(last_hop + 1)
    } else {
        last_hop + 1
    });
    Ok(Trace {
        target: target.to_owned(),
        address,
        hops: result,
        reached,
    })
}

/// Records an answer in its hop.
fn record(hop: &mut Hop, reply: &Reply) {
    let rtt = reply.rtt_ms();
    hop.rtts.push(rtt);
    insert_in_order(&mut hop.probes, Probe::answered(reply));
    match hop
        .responders
        .iter_mut()
        .find(|r| r.address == reply.source)
    {
        Some(r) => r.rtts.push(rtt),
        None => hop.responders.push(Responder {
            address: reply.source,
            rtts: vec![rtt],
        }),
    }
}

/// Emits, in order, the hops whose probes are all settled; returns how many
/// hops have been emitted.
fn emit_finished<N: Network>(
    net: &mut N,
    hops: &[Hop],
    pending: &[usize],
    mut emitted: usize,
    last_hop: usize,
) -> usize {
    while emitted <= last_hop && pending[emitted] == 0 {
        let hop = &hops[emitted];
        net.emit(Event::Hop {
            distance: hop.distance,
            probes: hop
                .probes
                .iter()
                .map(|p| HopProbe {
                    responder: p.source,
                    rtt: p
                        .rtt
                        .map(|ms| Duration::from_nanos((ms * 1e6).round() as u64)),
                    icmp_type: p.icmp_type.unwrap_or(0),
                    code: p.code.unwrap_or(0),
                })
                .collect(),
        });
        emitted += 1;
    }
    emitted
}
