//! `traceroute`: icmplib's parameters, without its defects. Every probe
//! has its own sequence number, so a late reply can never count for the
//! wrong hop; a timeout does not abandon the hop's other probes; every
//! responder of a hop is kept (ECMP); the trace stops at a Destination
//! Unreachable and marks it like traceroute (`!H`, `!N`, `!P`, `!X`); a
//! silent hop stays in the result; probes for several TTLs are in flight at
//! once; and `fast` works as documented.

use std::time::Duration;

use serde::Serialize;

use crate::Address;
use crate::codes::{self, Kind};
use crate::error::Error;
use crate::icmp::{PacketOptions, Reply};
use crate::model::{Probe, Stats};
use crate::network::{Network, Socket};
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Hop records, schema v1 (README): icmplib's fields, then `distance`,
/// `responders`, `probes`, `mark`, `duplicates`.
impl Serialize for Hop {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Hop", 15)?;
        let address = self.address().map(|a| a.to_string());
        Stats::of(&self.rtts, self.packets_sent).serialize_into(
            &mut st,
            address.as_deref(),
            &self.rtts,
            self.packets_sent,
        )?;
        st.serialize_field("distance", &self.distance)?;
        st.serialize_field("responders", &self.responders)?;
        st.serialize_field("probes", &self.probes)?;
        st.serialize_field("mark", &self.mark)?;
        st.serialize_field("duplicates", &self.duplicates)?;
        st.end()
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting,
    InFlight(Duration),
    Answered,
    TimedOut,
    /// Not sent: `fast` had an answer already, or the trace ended before.
    Skipped,
}

/// Traces the path to `target`.
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
    let mut socket = net.open(&o.packet.open_options(address.family()))?;
    let id = o.id.unwrap_or_else(unique_identifier);
    let count = o.count as usize;
    // Probe i: hop i / count, sequence i + 1.
    let mut state = vec![State::Waiting; total];
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
    // Hops beyond the destination are not probed or reported.
    let mut last_hop = hops - 1;
    let mut reached = false;
    let mut emitted = 0usize;
    let mut next_send = net.now();
    let mut interrupted = false;

    loop {
        let now = net.now();
        // Expire probes whose answer is overdue.
        for (i, s) in state.iter_mut().enumerate() {
            if let State::InFlight(sent) = *s
                && now >= sent + o.timeout
            {
                *s = State::TimedOut;
                result[i / count]
                    .probes
                    .push(Probe::timed_out((i + 1) as u16));
            }
        }
        // With `fast`, a hop's later probes go only if the earlier ones failed.
        if o.fast {
            for (h, hop) in result.iter().enumerate().take(last_hop + 1) {
                if hop.is_alive() {
                    for s in &mut state[h * count..(h + 1) * count] {
                        if *s == State::Waiting {
                            *s = State::Skipped;
                        }
                    }
                }
            }
        }
        emitted = emit_finished(net, &result, &state, count, emitted, last_hop);
        if emitted > last_hop || interrupted {
            break;
        }
        // Send the next eligible probe when it is time and the window allows.
        let in_flight = state
            .iter()
            .filter(|s| matches!(s, State::InFlight(_)))
            .count();
        let eligible = (0..(last_hop + 1) * count).find(|&i| {
            state[i] == State::Waiting
                && (!o.fast
                    || state[(i / count) * count..i]
                        .iter()
                        .all(|s| *s == State::TimedOut))
        });
        if let Some(i) = eligible
            && in_flight < o.in_flight as usize
            && now >= next_send
        {
            let request = o
                .packet
                .request(address, id, (i + 1) as u16, result[i / count].distance);
            match socket.send(&request) {
                Ok(_) => {
                    state[i] = State::InFlight(now);
                    result[i / count].packets_sent += 1;
                }
                Err(Error::Interrupted) => interrupted = true,
                Err(Error::IcmpSocket(message)) => {
                    state[i] = State::TimedOut;
                    result[i / count]
                        .probes
                        .push(Probe::failed((i + 1) as u16, message));
                }
                Err(e) => return Err(e),
            }
            next_send = now + o.interval;
            continue;
        }
        // Wait for answers until the next send or the next expiry.
        let mut wake = state
            .iter()
            .filter_map(|s| match s {
                State::InFlight(sent) => Some(*sent + o.timeout),
                _ => None,
            })
            .min();
        if eligible.is_some() && in_flight < o.in_flight as usize {
            wake = Some(wake.map_or(next_send, |w| w.min(next_send)));
        }
        let Some(wake) = wake else {
            // Nothing in flight and nothing left to send.
            for s in &mut state {
                if *s == State::Waiting {
                    *s = State::Skipped;
                }
            }
            continue;
        };
        let replies = match socket.receive_many(1024, wake.saturating_sub(now)) {
            Ok(r) => r,
            Err(Error::Interrupted) => {
                interrupted = true;
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for reply in replies {
            let i = usize::from(reply.sequence).wrapping_sub(1);
            if reply.id != id || i >= total {
                continue;
            }
            let hop = &mut result[i / count];
            // Duplicates, and answers after their probe's timeout, do not count.
            if reply.duplicate || !matches!(state[i], State::InFlight(_)) {
                hop.duplicates += u32::from(reply.duplicate);
                continue;
            }
            state[i] = State::Answered;
            record(hop, &reply);
            let ends_trace = match reply.kind() {
                Kind::EchoReply => true,
                Kind::DestinationUnreachable | Kind::PacketTooBig => {
                    hop.mark = codes::traceroute_mark(reply.family, reply.icmp_type, reply.code);
                    true
                }
                _ => false,
            };
            if ends_trace && i / count <= last_hop {
                reached |= reply.is_echo_reply();
                last_hop = i / count;
                for s in &mut state[(last_hop + 1) * count..] {
                    if *s == State::Waiting {
                        *s = State::Skipped;
                    }
                }
            }
        }
    }
    // Whatever is still out when interrupted counts as unanswered.
    for (i, s) in state.iter().enumerate() {
        if matches!(s, State::InFlight(_)) && i / count <= last_hop {
            result[i / count]
                .probes
                .push(Probe::timed_out((i + 1) as u16));
        }
    }
    let probed = result
        .iter()
        .rposition(|h| h.packets_sent > 0)
        .map_or(0, |h| h + 1);
    result.truncate(if interrupted {
        probed.min(last_hop + 1)
    } else {
        last_hop + 1
    });
    for hop in &mut result {
        hop.probes.sort_by_key(|p| p.sequence);
    }
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
    hop.probes.push(Probe::answered(reply));
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
    state: &[State],
    count: usize,
    mut emitted: usize,
    last_hop: usize,
) -> usize {
    while emitted <= last_hop {
        let settled = state[emitted * count..(emitted + 1) * count]
            .iter()
            .all(|s| matches!(s, State::Answered | State::TimedOut | State::Skipped));
        if !settled {
            break;
        }
        let hop = &hops[emitted];
        let mut probes: Vec<&Probe> = hop.probes.iter().collect();
        probes.sort_by_key(|p| p.sequence);
        net.emit(Event::Hop {
            distance: hop.distance,
            probes: probes
                .into_iter()
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
