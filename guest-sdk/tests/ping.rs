//! The ping algorithm against scripted networks.

use std::time::Duration;

use icmp_host_sdk::sim::{Response, SimNetwork};
use icmp_host_sdk::{Address, Error, Event, Family, PacketOptions, PingOptions, ProbeStatus, ping};

const MS: Duration = Duration::from_millis(1);

fn target() -> Address {
    "192.0.2.7".parse().unwrap()
}

#[test]
fn all_replies_give_icmplib_statistics() {
    let mut rtts = [3, 1, 2, 6].into_iter();
    let mut net = SimNetwork::new(move |_| vec![Response::echo(MS * rtts.next().unwrap())]);
    let host = ping(&mut net, "192.0.2.7", &PingOptions::default()).unwrap();
    assert_eq!(host.packets_sent, 4);
    assert_eq!(host.packets_received(), 4);
    assert_eq!(host.rtts, vec![3.0, 1.0, 2.0, 6.0]);
    assert_eq!(host.min_rtt(), 1.0);
    assert_eq!(host.max_rtt(), 6.0);
    assert_eq!(host.avg_rtt(), 3.0);
    assert_eq!(host.jitter(), 2.333); // (2 + 1 + 4) / 3
    assert_eq!(host.packet_loss(), 0.0);
    assert!(host.is_alive());
    // Sends are `interval` apart, sequences start at 1, one id for the run.
    let sent = net.sent();
    let times: Vec<_> = sent.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, vec![0, 1000, 2000, 3000]);
    let seqs: Vec<_> = sent.iter().map(|(_, r)| r.sequence).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(sent.iter().all(|(_, r)| r.id == sent[0].1.id));
    assert!(
        sent.iter()
            .all(|(_, r)| r.ttl == 64 && r.payload_size == 56)
    );
}

#[test]
fn timeouts_count_as_loss_and_wait_the_timeout() {
    let mut net = SimNetwork::new(|req| {
        if req.sequence % 2 == 0 {
            vec![]
        } else {
            vec![Response::echo(MS * 10)]
        }
    });
    let options = PingOptions {
        count: 4,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.7", &options).unwrap();
    assert_eq!(host.packets_sent, 4);
    assert_eq!(host.packets_received(), 2);
    assert_eq!(host.packet_loss(), 0.5);
    let statuses: Vec<_> = host.probes.iter().map(|p| p.status).collect();
    use ProbeStatus::*;
    assert_eq!(statuses, vec![Reply, Timeout, Reply, Timeout]);
    // A lost probe holds the next send until its timeout has passed.
    let times: Vec<_> = net.sent().iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, vec![0, 100, 600, 700]);
    let timeouts = net
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Timeout { .. }))
        .count();
    assert_eq!(timeouts, 2);
}

#[test]
fn unreachable_is_kept_per_probe_not_alive() {
    let router: Address = "198.51.100.1".parse().unwrap();
    let mut net = SimNetwork::new(move |_| vec![Response::error(MS, router, 3, 1)]);
    let options = PingOptions {
        count: 2,
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.7", &options).unwrap();
    assert!(!host.is_alive());
    assert_eq!(host.packet_loss(), 1.0);
    assert_eq!(host.probes.len(), 2);
    let p = &host.probes[0];
    assert_eq!(p.status, ProbeStatus::Error);
    assert_eq!((p.icmp_type, p.code), (Some(3), Some(1)));
    assert_eq!(p.source, Some(router));
    assert_eq!(p.message.as_deref(), Some("Destination Host Unreachable"));
    let Some(Event::Summary(s)) = net.events().last().cloned() else {
        panic!("no summary")
    };
    assert_eq!((s.packets_sent, s.packets_received, s.errors), (2, 0, 2));
}

#[test]
fn duplicates_are_counted_once() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS), Response::echo(MS * 3)]);
    let options = PingOptions {
        count: 3,
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.7", &options).unwrap();
    assert_eq!(host.packets_received(), 3);
    assert_eq!(host.rtts, vec![1.0, 1.0, 1.0]);
    // The last duplicate arrives after the run ended (ping does not linger).
    assert_eq!(host.duplicates, 2);
    assert_eq!(host.packet_loss(), 0.0);
}

#[test]
fn interrupt_returns_what_was_measured() {
    let mut net =
        SimNetwork::new(|_| vec![Response::echo(MS * 2)]).interrupt_at(Duration::from_millis(1500));
    let host = ping(&mut net, "192.0.2.7", &PingOptions::default()).unwrap();
    assert_eq!(host.packets_sent, 2);
    assert_eq!(host.packets_received(), 2);
    assert!(matches!(net.events().last(), Some(Event::Summary(_))));
}

#[test]
fn names_resolve_ipv4_first_unless_family_given() {
    let v4: Address = "192.0.2.7".parse().unwrap();
    let v6: Address = "2001:db8::7".parse().unwrap();
    let make = || SimNetwork::new(|_| vec![Response::echo(MS)]).with_name("box.lab", &[v6, v4]);
    let mut net = make();
    let host = ping(
        &mut net,
        "box.lab",
        &PingOptions {
            count: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(host.address, "192.0.2.7");
    assert_eq!(host.target, "box.lab");
    let mut net = make();
    let options = PingOptions {
        count: 1,
        packet: PacketOptions {
            family: Some(Family::V6),
            ..Default::default()
        },
        ..Default::default()
    };
    let host = ping(&mut net, "box.lab", &options).unwrap();
    assert_eq!(host.address, "2001:db8::7");
    let mut net = make();
    let err = ping(&mut net, "nowhere.lab", &PingOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NameLookup(_)));
}

#[test]
fn request_fields_follow_options() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS).with_ttl(61)]);
    let options = PingOptions {
        count: 1,
        id: Some(4242),
        packet: PacketOptions {
            payload: Some(vec![1, 2, 3]),
            traffic_class: 0x10,
            ..Default::default()
        },
        ttl: 9,
        dont_fragment: true,
        ..PingOptions::default()
    };
    let host = ping(&mut net, &target().to_string(), &options).unwrap();
    assert_eq!(host.probes[0].ttl, Some(61));
    let (_, req) = &net.sent()[0];
    assert_eq!(req.id, 4242);
    assert_eq!(req.payload.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(
        (req.ttl, req.traffic_class, req.dont_fragment),
        (9, 0x10, true)
    );
}

#[test]
fn broadcast_keeps_every_responder() {
    let hosts: Vec<Address> = (1..=3)
        .map(|i| format!("192.0.2.{i}").parse().unwrap())
        .collect();
    let responders = hosts.clone();
    let mut net = SimNetwork::new(move |_| {
        responders
            .iter()
            .enumerate()
            .map(|(n, h)| Response::error(MS * (n as u32 + 1), *h, 0, 0))
            .collect()
    });
    let options = PingOptions {
        count: 1,
        broadcast: true,
        timeout: Duration::from_millis(100),
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.255", &options).unwrap();
    let sources: Vec<Address> = host.probes.iter().filter_map(|p| p.source).collect();
    assert_eq!(sources, hosts);
    assert_eq!(host.rtts.len(), 3);
    assert_eq!(host.packet_loss(), 0.0);
}
