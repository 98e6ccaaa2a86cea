//! The traceroute algorithm against scripted paths.

use std::time::Duration;

use icmp_host_sdk::sim::{Response, SimNetwork};
use icmp_host_sdk::{Address, Event, TracerouteOptions, traceroute};

const MS: Duration = Duration::from_millis(1);
const TARGET: &str = "192.0.2.9";

fn router(n: u8) -> Address {
    format!("198.51.100.{n}").parse().unwrap()
}

/// A path of `distance` hops: routers 1.. answer Time Exceeded, the target
/// answers from `distance` on. `silent` routers say nothing.
fn path(distance: u8, silent: &'static [u8]) -> SimNetwork {
    SimNetwork::new(move |req| {
        if req.ttl >= distance {
            vec![Response::echo(MS * 4)]
        } else if silent.contains(&req.ttl) {
            vec![]
        } else {
            vec![Response::error(
                MS * u32::from(req.ttl),
                router(req.ttl),
                11,
                0,
            )]
        }
    })
}

fn quick() -> TracerouteOptions {
    TracerouteOptions {
        timeout: Duration::from_millis(500),
        ..TracerouteOptions::default()
    }
}

#[test]
fn clean_path_reports_every_hop_and_stops_at_the_target() {
    let mut net = path(4, &[]);
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    assert!(trace.reached);
    assert_eq!(trace.hops.len(), 4);
    for (n, hop) in trace.hops.iter().enumerate() {
        assert_eq!(hop.distance as usize, n + 1);
        assert_eq!(hop.packets_sent, 2);
        assert_eq!(hop.rtts.len(), 2);
        let expected = if n < 3 {
            router(n as u8 + 1)
        } else {
            TARGET.parse().unwrap()
        };
        assert_eq!(hop.address(), Some(expected));
    }
    // Unique sequences, probes never sent past the target.
    let sent = net.sent();
    let mut seqs: Vec<u16> = sent.iter().map(|(_, r)| r.sequence).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), sent.len());
    assert!(
        sent.iter().all(|(_, r)| r.ttl <= 4),
        "{:?}",
        sent.iter().map(|(_, r)| r.ttl).collect::<Vec<_>>()
    );
    // Hop events in order, one per hop.
    let hops: Vec<u8> = net
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Hop { distance, .. } => Some(*distance),
            _ => None,
        })
        .collect();
    assert_eq!(hops, vec![1, 2, 3, 4]);
}

#[test]
fn silent_hop_stays_visible_and_does_not_stall_the_trace() {
    let mut net = path(4, &[2]);
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    assert!(trace.reached);
    assert_eq!(trace.hops.len(), 4);
    let silent = &trace.hops[1];
    assert_eq!(
        (silent.distance, silent.address(), silent.packets_sent),
        (2, None, 2)
    );
    assert!(
        silent
            .probes
            .iter()
            .all(|p| p.status == icmp_host_sdk::ProbeStatus::Timeout)
    );
    assert_eq!(trace.hops[2].address(), Some(router(3)));
    // Probes for later hops went out while hop 2 was still waiting: the
    // whole trace takes about one timeout, not one per silent probe.
    assert!(
        net.clock() < Duration::from_millis(900),
        "{:?}",
        net.clock()
    );
}

#[test]
fn unreachable_stops_the_trace_with_its_mark() {
    let mut net = SimNetwork::new(|req| match req.ttl {
        1 | 2 => vec![Response::error(MS, router(req.ttl), 11, 0)],
        _ => vec![Response::error(MS * 3, router(3), 3, 1)],
    });
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    assert!(!trace.reached);
    assert_eq!(trace.hops.len(), 3);
    assert_eq!(trace.hops[2].mark.as_deref(), Some("!H"));
    assert!(net.sent().iter().all(|(_, r)| r.ttl <= 3));
}

#[test]
fn ecmp_keeps_every_responder() {
    let mut flip = false;
    let mut net = SimNetwork::new(move |req| {
        if req.ttl >= 3 {
            return vec![Response::echo(MS)];
        }
        flip = !flip;
        let who = if req.ttl == 2 && flip {
            router(22)
        } else {
            router(req.ttl)
        };
        vec![Response::error(MS, who, 11, 0)]
    });
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    let hop2 = &trace.hops[1];
    let responders: Vec<Address> = hop2.responders.iter().map(|r| r.address).collect();
    assert_eq!(responders.len(), 2, "{responders:?}");
    assert!(responders.contains(&router(2)) && responders.contains(&router(22)));
}

#[test]
fn fast_sends_one_probe_per_answering_hop() {
    let options = TracerouteOptions {
        fast: true,
        count: 3,
        ..quick()
    };
    let mut net = path(4, &[2]);
    let trace = traceroute(&mut net, TARGET, &options).unwrap();
    let sent: Vec<u32> = trace.hops.iter().map(|h| h.packets_sent).collect();
    // A silent hop still gets all its probes: each one timed out.
    assert_eq!(sent, vec![1, 3, 1, 1]);
}

#[test]
fn first_hop_and_max_hops_are_honoured() {
    let options = TracerouteOptions {
        first_hop: 2,
        max_hops: 3,
        ..quick()
    };
    let mut net = path(6, &[]);
    let trace = traceroute(&mut net, TARGET, &options).unwrap();
    assert!(!trace.reached);
    let distances: Vec<u8> = trace.hops.iter().map(|h| h.distance).collect();
    assert_eq!(distances, vec![2, 3]);
    assert!(net.sent().iter().all(|(_, r)| (2..=3).contains(&r.ttl)));
}

#[test]
fn late_reply_never_lands_on_another_hop() {
    // Hop 1 answers after the timeout; hop 2 answers at once.
    let mut net = SimNetwork::new(|req| match req.ttl {
        1 => vec![Response::error(
            Duration::from_millis(700),
            router(1),
            11,
            0,
        )],
        2 => vec![Response::error(MS, router(2), 11, 0)],
        _ => vec![Response::echo(MS)],
    });
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    assert_eq!(trace.hops[0].address(), None);
    assert_eq!(trace.hops[1].address(), Some(router(2)));
    assert_eq!(trace.hops[1].rtts.len(), 2);
}

#[test]
fn interrupted_trace_returns_the_hops_so_far() {
    let mut net = path(30, &[]).interrupt_at(Duration::from_millis(230));
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    assert!(!trace.reached);
    assert!((2..=4).contains(&trace.hops.len()), "{}", trace.hops.len());
}

#[test]
fn hop_json_schema_v1() {
    let mut net = path(2, &[1]);
    let trace = traceroute(&mut net, TARGET, &quick()).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&icmp_host_sdk::json::ToJson::to_json(&trace.hops)).unwrap();
    let silent = &v[0];
    assert_eq!(silent["distance"], 1);
    assert!(silent["address"].is_null());
    assert_eq!(silent["is_alive"], false);
    assert_eq!(silent["packet_loss"], 1.0);
    assert_eq!(silent["responders"].as_array().unwrap().len(), 0);
    let last = &v[1];
    assert_eq!(last["address"], TARGET);
    for key in [
        "min_rtt",
        "avg_rtt",
        "max_rtt",
        "rtts",
        "packets_sent",
        "packets_received",
        "packet_loss",
        "jitter",
        "is_alive",
        "distance",
        "responders",
        "probes",
        "mark",
        "duplicates",
    ] {
        assert!(last.get(key).is_some(), "missing {key}");
    }
}
