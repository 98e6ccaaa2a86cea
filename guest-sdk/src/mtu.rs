//! Size searches with Don't Fragment: [`largest_fitting`], a binary
//! search that jumps to any MTU it is told, and [`path_mtu`], path-MTU
//! discovery built on it (like `tracepath`, over ICMP echo).

use std::time::Duration;

use crate::codes::Kind;
use crate::error::Error;
use crate::flight::{Fate, Flight};
use crate::icmp::{EchoRequest, PacketOptions, header_len};
use crate::network::Network;
use crate::ping::{resolve_one, unique_identifier};
use crate::progress::Event;
use crate::{Address, Family};

/// What a probe of one size found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// It got through.
    Fits,
    /// Too big; with the MTU when someone said which (every size above it
    /// is then too big as well).
    TooBig(Option<u32>),
}

/// The largest size in `min..=max` for which `probe` says [`Fit::Fits`],
/// or `None` when not even `min` does. Tries `max` first (most paths are
/// clean), jumps to an MTU a [`Fit::TooBig`] names, and bisects otherwise.
///
/// ```
/// use icmp_host_sdk::{Fit, largest_fitting};
/// let mut tried = Vec::new();
/// let found = largest_fitting(68, 9000, |size| {
///     tried.push(size);
///     Ok(match size {
///         s if s > 1500 => Fit::TooBig(Some(1500)), // the local link
///         s if s > 1400 => Fit::TooBig(None),        // silently dropped
///         _ => Fit::Fits,
///     })
/// })?;
/// assert_eq!(found, Some(1400));
/// assert_eq!(&tried[..2], &[9000, 1500]);
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn largest_fitting(
    min: u32,
    max: u32,
    mut probe: impl FnMut(u32) -> Result<Fit, Error>,
) -> Result<Option<u32>, Error> {
    if min > max {
        return Ok(None);
    }
    // Invariant: every size ≤ `good` fits (`None`: none known), every size
    // ≥ `bad` does not.
    let mut good: Option<u32> = None;
    let mut bad = u64::from(max) + 1;
    let mut next = max;
    loop {
        let named = match probe(next)? {
            Fit::Fits => {
                good = Some(next);
                None
            }
            Fit::TooBig(Some(mtu)) if mtu < next => {
                bad = bad.min(u64::from(mtu) + 1);
                Some(u64::from(mtu))
            }
            Fit::TooBig(_) => {
                bad = bad.min(u64::from(next));
                None
            }
        };
        let floor = good.map_or(u64::from(min), |g| u64::from(g) + 1);
        if floor >= bad {
            return Ok(good);
        }
        // An MTU someone named is tried at once; otherwise halve the gap.
        next = match named {
            Some(mtu) if (floor..bad).contains(&mtu) => mtu as u32,
            _ => ((floor + bad - 1) / 2) as u32,
        };
    }
}

/// Who set the path MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// This host: the interface's MTU, or a path MTU the kernel had cached
    /// (the send failed with "message too long").
    Local,
    /// A router's Packet Too Big / Fragmentation Needed, from this address.
    Router(Address),
    /// Nobody: larger requests went unanswered (an ICMP black hole).
    Silence,
}

/// `"local"`, `"silence"`, or the router's address.
impl crate::json::ToJson for Reporter {
    fn write_json(&self, out: &mut String) {
        match self {
            Reporter::Local => "local".write_json(out),
            Reporter::Silence => "silence".write_json(out),
            Reporter::Router(a) => a.write_json(out),
        }
    }
}

/// The outcome of [`path_mtu`].
#[derive(Debug, Clone, PartialEq)]
pub struct PathMtu {
    /// The destination probed.
    pub address: Address,
    /// The largest packet (IP header included) that reached it.
    pub mtu: u32,
    /// Who said larger ones do not pass; `None` when the largest size
    /// tried passed.
    pub reported_by: Option<Reporter>,
    /// Requests sent.
    pub probes: u32,
}

/// Parameters of [`path_mtu`].
#[derive(Debug, Clone, PartialEq)]
pub struct MtuOptions {
    /// How long each probe waits for its answer (1 s).
    pub timeout: Duration,
    /// Probes per size before silence counts as "too big" (2).
    pub tries: u32,
    /// Largest packet size to try; `None`: as large as the host's payload
    /// limit allows (at most 65535).
    pub max: Option<u32>,
    /// Source, family, traffic class, mode, interface.
    pub packet: PacketOptions,
}

impl Default for MtuOptions {
    fn default() -> Self {
        MtuOptions {
            timeout: Duration::from_secs(1),
            tries: 2,
            max: None,
            packet: PacketOptions::default(),
        }
    }
}

/// Finds the path MTU to `target` with Don't-Fragment echo requests:
/// starts at the largest size, jumps to each MTU the local host or a
/// router reports, and bisects where larger packets vanish silently. Each
/// step is reported as a progress note. Fails when even the smallest
/// packet (68 bytes for IPv4, 1280 for IPv6) gets no answer, or when the
/// path answers with another ICMP error (unreachable, ...).
///
/// ```
/// use std::time::Duration;
/// use icmp_host_sdk::sim::{Response, SimNetwork};
/// use icmp_host_sdk::{Error, Family, MtuOptions, Reporter, path_mtu};
///
/// let router = "198.51.100.2".parse().unwrap();
/// let ms = Duration::from_millis(1);
/// let mut net = SimNetwork::new(move |req| match req.packet_len() {
///     n if n > 1280 => vec![Response::too_big(ms, router, Family::V4, 1280)],
///     _ => vec![Response::echo(ms)],
/// })
/// .failing_sends(|req| (req.packet_len() > 1500).then_some(Error::MessageTooBig { mtu: 1500 }));
/// let found = path_mtu(&mut net, "192.0.2.9", &MtuOptions::default())?;
/// assert_eq!((found.mtu, found.reported_by), (1280, Some(Reporter::Router(router))));
/// assert_eq!(found.probes, 2); // 1500 (told 1280), 1280 (fits); 65535 was refused locally
/// # Ok::<(), icmp_host_sdk::Error>(())
/// ```
pub fn path_mtu<N: Network>(
    net: &mut N,
    target: &str,
    options: &MtuOptions,
) -> Result<PathMtu, Error> {
    let address = resolve_one(net, target, options.packet.family)?;
    let family = address.family();
    let header = header_len(family) as u32;
    let min = match family {
        Family::V4 => 68,
        Family::V6 => 1280,
    };
    let limit = net.limits().max_payload.saturating_add(header).min(65_535);
    let max = options.max.unwrap_or(limit).min(limit);
    let id = unique_identifier();
    let mut sequence = 0u16;
    let mut bound: Option<(u64, Reporter)> = None;
    let mut flight = Flight::new(
        net,
        crate::flight::FlightOptions {
            window: 1,
            ..options.packet.flight(options.timeout)
        },
    );
    let found = largest_fitting(min, max, |size| {
        for _ in 0..options.tries.max(1) {
            sequence = sequence.wrapping_add(1);
            let request = EchoRequest {
                traffic_class: options.packet.traffic_class,
                ..EchoRequest::new(address, id, sequence)
                    .with_payload_size(size - header)
                    .with_dont_fragment(true)
            };
            flight.push(request);
            let (fit, reporter) = loop {
                let Some(event) = flight.next_event()? else {
                    return Err(Error::Interrupted);
                };
                match event.fate {
                    Fate::Reply(r) if r.is_echo_reply() => break (Fit::Fits, None),
                    Fate::Reply(r) if r.kind() == Kind::PacketTooBig => {
                        break (Fit::TooBig(r.mtu), Some(Reporter::Router(r.source)));
                    }
                    Fate::Reply(r) => {
                        let what = r.describe().unwrap_or_default();
                        return Err(Error::IcmpSocket(format!("{what} from {}", r.source)));
                    }
                    Fate::Failed(Error::MessageTooBig { mtu }) => {
                        break (Fit::TooBig(Some(mtu)), Some(Reporter::Local));
                    }
                    Fate::Failed(e) => return Err(e),
                    Fate::Timeout if flight.interrupted() => return Err(Error::Interrupted),
                    Fate::Timeout => break (Fit::TooBig(None), None),
                    Fate::Duplicate(_) => {}
                }
            };
            let note = match (fit, reporter) {
                (Fit::Fits, _) => format!("{size} bytes: reply"),
                (Fit::TooBig(Some(mtu)), Some(Reporter::Local)) => {
                    format!("{size} bytes: too big here (mtu {mtu})")
                }
                (Fit::TooBig(Some(mtu)), Some(Reporter::Router(from))) => {
                    format!("{size} bytes: too big (mtu {mtu} from {from})")
                }
                _ => format!("{size} bytes: no answer"),
            };
            flight.net().emit(Event::Note(note));
            let new_bound = match fit {
                Fit::Fits => return Ok(Fit::Fits),
                Fit::TooBig(Some(mtu)) if mtu < size => (u64::from(mtu) + 1, reporter),
                Fit::TooBig(_) if reporter.is_some() => (u64::from(size), reporter),
                Fit::TooBig(_) => continue, // silence: try again
            };
            if let (b, Some(r)) = new_bound
                && bound.is_none_or(|(old, _)| b <= old)
            {
                bound = Some((b, r));
            }
            return Ok(fit);
        }
        if bound.is_none_or(|(old, _)| u64::from(size) <= old) {
            bound = Some((u64::from(size), Reporter::Silence));
        }
        Ok(Fit::TooBig(None))
    })?;
    let probes = u32::try_from(flight.sent()).unwrap_or(u32::MAX);
    let mtu = found.ok_or(Error::TimeoutExceeded(options.timeout))?;
    let reported_by = bound
        .filter(|(b, _)| *b == u64::from(mtu) + 1)
        .map(|(_, r)| r);
    Ok(PathMtu {
        address,
        mtu,
        reported_by,
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(path_mtu: u32, hint: bool) -> (Option<u32>, Vec<u32>) {
        let mut tried = Vec::new();
        let found = largest_fitting(68, 9000, |size| {
            tried.push(size);
            Ok(if size <= path_mtu {
                Fit::Fits
            } else {
                Fit::TooBig(hint.then_some(path_mtu))
            })
        })
        .unwrap();
        (found, tried)
    }

    #[test]
    fn a_named_mtu_is_tried_at_once() {
        assert_eq!(search(1280, true), (Some(1280), vec![9000, 1280]));
        assert_eq!(search(9000, true), (Some(9000), vec![9000]));
    }

    #[test]
    fn silence_is_bisected_to_the_exact_size() {
        for mtu in [68, 69, 576, 1279, 1280, 1500, 8999] {
            let (found, tried) = search(mtu, false);
            assert_eq!(found, Some(mtu), "mtu {mtu}");
            assert!(tried.len() <= 15, "{mtu}: {} probes", tried.len());
        }
        assert_eq!(search(10, false).0, None);
    }
}
